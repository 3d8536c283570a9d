"""Container commands that need no attached streams: ps, stop, rm, logs, inspect, top..."""

import json
import sys

from actors.client import api
from actors.client.cli import (
    Command,
    CommandError,
    UsageError,
    bool_flag,
    int_flag,
    list_flag,
    string_flag,
)
from actors.client.commands.common import (
    confirm,
    filter_flag,
    filters_query,
    for_each,
    format_flag,
    get_timestamp,
    inspect_output,
    parse_filters,
    quote_path,
    refuse_terminal,
    write_stream,
)


def container_path(name: str, suffix: str = "") -> str:
    return f"/containers/{quote_path(name)}{suffix}"


# --------------------------------------------------------------------------- ps


def _read_config_format(cli, key: str) -> str:
    import os

    try:
        with open(os.path.join(cli.config_dir(), "config.json"), encoding="utf-8") as handle:
            value = json.load(handle).get(key, "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def run_ps(cli, options, args) -> int:
    from actors.client import tables

    format_text = options.format
    if options.quiet and format_text:
        cli.err("WARNING: Ignoring custom format, because both --format and --quiet are set.\n")
        format_text = ""
    if not format_text and not options.quiet:
        format_text = _read_config_format(cli, "psFormat")
    if options.quiet:
        format_text = "{{.ID}}"
    elif not format_text or format_text == "table":
        format_text = tables.CONTAINER_TABLE + ("\\t{{.Size}}" if options.size else "")
    elif format_text == "raw":
        format_text = (
            "container_id: {{.ID}}\\nimage: {{.Image}}\\ncommand: {{.Command}}\\n"
            "created_at: {{.CreatedAt}}\\nstate: {{- pad .State 1 0}}\\n"
            "status: {{- pad .Status 1 0}}\\nnames: {{.Names}}\\n"
            "labels: {{- pad .Labels 1 0}}\\nports: {{- pad .Ports 1 0}}\\n"
        )
    # Check the template before talking to the daemon, so a bad one fails fast.
    tables.check(format_text, tables.ContainerContext({}))
    filters = parse_filters(options.filter)
    limit = options.last
    if options.latest and limit == -1:
        limit = 1
    query = {
        "all": True if options.all else None,
        "limit": limit if limit > 0 else None,
        "size": True if options.size or ".Size" in format_text else None,
        "filters": filters_query(filters),
    }
    containers = cli.client.get_json("/containers/json", query) or []
    contexts = [tables.ContainerContext(item, trunc=not options.no_trunc) for item in containers]
    cli.out(tables.render(format_text, contexts, tables.ContainerContext.HEADERS))
    return 0


# --------------------------------------------------------------------------- lifecycle


def _stop_like(cli, options, args, suffix: str) -> int:
    query = {}
    if "timeout" in options.given or "time" in options.given:
        query["t"] = options.timeout if "timeout" in options.given else options.time
    if options.signal:
        query["signal"] = options.signal
    return for_each(cli, args, lambda name: cli.client.request(
        "POST", container_path(name, suffix), query).close())


def run_stop(cli, options, args) -> int:
    return _stop_like(cli, options, args, "/stop")


def run_restart(cli, options, args) -> int:
    return _stop_like(cli, options, args, "/restart")


def run_kill(cli, options, args) -> int:
    query = {"signal": options.signal} if options.signal else None
    return for_each(cli, args, lambda name: cli.client.request(
        "POST", container_path(name, "/kill"), query).close())


def run_pause(cli, options, args) -> int:
    return for_each(cli, args, lambda name: cli.client.request(
        "POST", container_path(name, "/pause")).close())


def run_unpause(cli, options, args) -> int:
    return for_each(cli, args, lambda name: cli.client.request(
        "POST", container_path(name, "/unpause")).close())


def run_rm(cli, options, args) -> int:
    query = {
        "force": True if options.force else None,
        "v": True if options.volumes else None,
        "link": True if options.link else None,
    }
    errors = []
    for name in args:
        try:
            cli.client.request("DELETE", container_path(name.lstrip("/") or name), query).close()
        except api.APIError as error:
            if options.force and error.status == 404:
                # With --force a missing container is reported but is not a failure.
                cli.err(f"{error}\n")
                continue
            errors.append(str(error))
            continue
        cli.out(name + "\n")
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def run_wait(cli, options, args) -> int:
    errors = []
    for name in args:
        try:
            result = cli.client.post_json(container_path(name, "/wait")) or {}
        except api.APIError as error:
            errors.append(str(error))
            continue
        cli.out(f"{result.get('StatusCode', 0)}\n")
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def run_rename(cli, options, args) -> int:
    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise CommandError("Error: Neither old nor new names may be empty")
    try:
        cli.client.request("POST", container_path(old, "/rename"), {"name": new}).close()
    except api.APIError as error:
        raise CommandError(f"{error}\nError: failed to rename container named {old}") from None
    return 0


# --------------------------------------------------------------------------- logs


def run_logs(cli, options, args) -> int:
    from actors.client import streams

    name = args[0]
    info = cli.client.get_json(container_path(name, "/json")) or {}
    tty = bool((info.get("Config") or {}).get("Tty"))
    query = {
        "stdout": True,
        "stderr": True,
        "since": get_timestamp(options.since) if options.since else None,
        "until": get_timestamp(options.until) if options.until else None,
        "timestamps": True if options.timestamps else None,
        "details": True if options.details else None,
        "follow": True if options.follow else None,
        "tail": options.tail,
    }
    response = cli.client.request("GET", container_path(info.get("Id") or name, "/logs"), query)
    cli.flush()
    with response:
        try:
            streams.copy_output(response.iter_raw(), tty, sys.stdout.buffer, sys.stderr.buffer)
        except streams.StreamError as error:
            raise CommandError(str(error)) from None
    return 0


# --------------------------------------------------------------------------- inspect


def run_inspect(cli, options, args) -> int:
    objects = []
    errors = []
    for name in args:
        query = {"size": True} if options.size else None
        try:
            objects.append(cli.client.get_json(container_path(name, "/json"), query))
        except api.APIError as error:
            if error.status != 404:
                raise
            errors.append(str(error))
    inspect_output(cli, objects, options.format)
    if errors:
        raise CommandError("\n".join(errors))
    return 0


# --------------------------------------------------------------------------- top, stats, port


def run_top(cli, options, args) -> int:
    from actors.client import formatting

    query = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    result = cli.client.get_json(container_path(args[0], "/top"), query) or {}
    lines = ["\t".join(result.get("Titles") or [])]
    for process in result.get("Processes") or []:
        lines.append("\t".join(process))
    cli.out(formatting.tabwrite("\n".join(lines) + "\n", min_width=20))
    return 0


STATS_TABLE = (
    "table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}"
    "\\t{{.BlockIO}}\\t{{.PIDs}}"
)
STATS_HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def stats_fields(stats: dict, requested_name: str = "") -> dict:
    """docker stats' columns computed from one /stats sample."""
    from actors.client import formatting

    cpu = stats.get("cpu_stats") or {}
    previous = stats.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - (
        (previous.get("cpu_usage") or {}).get("total_usage") or 0
    )
    system_delta = (cpu.get("system_cpu_usage") or 0) - (previous.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    cpu_percent = 0.0
    if cpu_delta > 0 and system_delta > 0:
        cpu_percent = cpu_delta / system_delta * (online or 1) * 100.0
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage") or 0
    memory_details = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in memory_details and memory_details[key] < usage:
            usage -= memory_details[key]
            break
    limit = memory.get("limit") or 0
    memory_percent = usage / limit * 100.0 if limit else 0.0
    received = sum((n.get("rx_bytes") or 0) for n in (stats.get("networks") or {}).values())
    sent = sum((n.get("tx_bytes") or 0) for n in (stats.get("networks") or {}).values())
    read = written = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        operation = (entry.get("op") or "").lower()
        if operation == "read":
            read += entry.get("value") or 0
        elif operation == "write":
            written += entry.get("value") or 0
    name = (stats.get("name") or requested_name).lstrip("/")
    identifier = stats.get("id") or ""

    def size(value: float) -> str:
        return formatting.human_size(value, 3)

    return {
        "Container": requested_name or name,
        "ID": identifier[:12],
        "Name": name or "--",
        "CPUPerc": f"{cpu_percent:.2f}%",
        "MemUsage": f"{formatting.binary_size(usage)} / {formatting.binary_size(limit)}",
        "MemPerc": f"{memory_percent:.2f}%",
        "NetIO": f"{size(received)} / {size(sent)}",
        "BlockIO": f"{size(read)} / {size(written)}",
        "PIDs": str((stats.get("pids_stats") or {}).get("current") or 0),
    }


def run_stats(cli, options, args) -> int:
    import time

    from actors.client import tables

    format_text = options.format or STATS_TABLE
    if format_text == "table":
        format_text = STATS_TABLE
    tables.validate(format_text, STATS_HEADERS)
    names = list(args)
    if not names:
        query = {"all": True} if options.all else None
        names = [item["Id"] for item in cli.client.get_json("/containers/json", query) or []]
    while True:
        contexts = []
        errors = []
        for name in names:
            try:
                sample = cli.client.get_json(container_path(name, "/stats"), {"stream": False})
            except api.APIError as error:
                errors.append(str(error))
                continue
            contexts.append(tables.MapContext(stats_fields(sample or {}, name), STATS_HEADERS))
        text = tables.render(format_text, contexts, STATS_HEADERS)
        if options.no_stream:
            cli.out(text)
            if errors:
                raise CommandError("\n".join(errors))
            return 0
        if cli.stdout_is_tty():
            cli.out("\x1b[2J\x1b[H")
        cli.out(text)
        cli.flush()
        time.sleep(1.0)


def run_port(cli, options, args) -> int:
    from actors.client import formatting

    info = cli.client.get_json(container_path(args[0], "/json")) or {}
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) > 1:
        wanted = args[1]
        port, _, proto = wanted.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        bindings = ports.get(key)
        if bindings:
            for binding in bindings:
                cli.out(formatting.join_host_port(binding.get("HostIp") or "0.0.0.0",
                                                  binding.get("HostPort")) + "\n")
            return 0
        raise CommandError(f"Error: No public port '{wanted}' published for {args[0]}")

    def sort_key(key: str):
        number, _, proto = key.partition("/")
        return (int(number) if number.isdigit() else 0, proto)

    for key in sorted(ports, key=sort_key):
        for binding in ports[key] or []:
            address = formatting.join_host_port(binding.get("HostIp") or "0.0.0.0",
                                                binding.get("HostPort"))
            cli.out(f"{key} -> {address}\n")
    return 0


# --------------------------------------------------------------------------- commit, export, diff


def run_commit(cli, options, args) -> int:
    from actors.client.reference import ReferenceError, parse_normalized_named

    repository = tag = ""
    if len(args) > 1:
        try:
            reference = parse_normalized_named(args[1])
        except ReferenceError as error:
            raise CommandError(str(error)) from None
        if reference.digest:
            raise CommandError("refusing to create a tag with a digest reference")
        repository = reference.name
        tag = reference.tag
    query = {
        "container": args[0],
        "repo": repository,
        "tag": tag,
        "comment": options.message,
        "author": options.author,
        "changes": options.change or None,
        "pause": None if options.pause else False,
    }
    result = cli.client.post_json("/commit", query, None) or {}
    cli.out(f"{result.get('Id', '')}\n")
    return 0


def run_export(cli, options, args) -> int:
    refuse_terminal(cli, options.output, "save")
    response = cli.client.request("GET", container_path(args[0], "/export"))
    with response:
        write_stream(cli, response, options.output)
    return 0


def run_diff(cli, options, args) -> int:
    changes = cli.client.get_json(container_path(args[0], "/changes")) or []
    kinds = {0: "C", 1: "A", 2: "D"}
    for change in changes:
        cli.out(f"{kinds.get(change.get('Kind'), '?')} {change.get('Path', '')}\n")
    return 0


# --------------------------------------------------------------------------- update, prune


def update_body(options) -> dict:
    """The UpdateConfig docker sends: every Resources field (zero = unchanged) + policy."""
    from actors.client import opts

    def flag_error(display: str, value: str, message: str) -> UsageError:
        return UsageError(f'invalid argument "{value}" for "{display}" flag: {message}')

    def size(flag: str, display: str, parser=opts.ram_in_bytes) -> int:
        if not options[flag]:
            return 0
        try:
            return parser(options[flag])
        except opts.OptionError as error:
            raise flag_error(display, options[flag], str(error)) from None

    nano_cpus = 0
    if options.cpus:
        try:
            nano_cpus = opts.parse_nano_cpus(options.cpus)
        except opts.OptionError as error:
            raise flag_error("--cpus", options.cpus, str(error)) from None
    restart = {"Name": "", "MaximumRetryCount": 0}
    if options.restart:
        try:
            restart = opts.parse_restart_policy(options.restart)
        except opts.OptionError as error:
            raise CommandError(str(error)) from None
    if not options.given:
        raise CommandError("you must provide one or more flags when using this command")
    return {
        "CpuShares": options.cpu_shares,
        "Memory": size("memory", "-m, --memory"),
        "NanoCpus": nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": options.blkio_weight,
        "BlkioWeightDevice": None,
        "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None,
        "CpuPeriod": options.cpu_period,
        "CpuQuota": options.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": options.cpuset_cpus,
        "CpusetMems": options.cpuset_mems,
        "Devices": None,
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": size("memory_reservation", "--memory-reservation"),
        "MemorySwap": size("memory_swap", "--memory-swap", opts.memory_swap_bytes),
        "MemorySwappiness": None,
        "OomKillDisable": None,
        "PidsLimit": options.pids_limit if "pids_limit" in options.given else None,
        "Ulimits": None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "RestartPolicy": restart,
    }


def run_update(cli, options, args) -> int:
    body = update_body(options)
    warnings: list[str] = []

    def update(name: str) -> None:
        result = cli.client.post_json(container_path(name, "/update"), None, body) or {}
        warnings.extend(result.get("Warnings") or [])

    code = for_each(cli, args, update)
    for warning in warnings:
        cli.err(f"WARNING: {warning}\n")
    return code


def run_prune(cli, options, args) -> int:
    from actors.client import formatting

    if not options.force and not confirm(
        cli, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
    ):
        return 0
    result = cli.client.post_json(
        "/containers/prune", {"filters": filters_query(parse_filters(options.filter))}
    ) or {}
    deleted = result.get("ContainersDeleted") or []
    if deleted:
        cli.out("Deleted Containers:\n" + "".join(f"{item}\n" for item in deleted) + "\n")
    cli.out(f"Total reclaimed space: {formatting.human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0


# --------------------------------------------------------------------------- table

_TIMEOUT_FLAGS = [
    int_flag("timeout", "t", "Seconds to wait before killing the container"),
    int_flag("time", "", "Seconds to wait before killing the container (deprecated)",
             hidden=True),
    string_flag("signal", "s", "Signal to send to the container"),
]

COMMANDS = {
    "ps": Command(
        "ps", "[OPTIONS]", "List containers",
        [
            bool_flag("all", "a", "Show all containers (default shows just running)"),
            filter_flag(),
            format_flag(),
            int_flag("last", "n", "Show n last created containers (includes all states)",
                     default=-1),
            bool_flag("latest", "l", "Show the latest created container (includes all states)"),
            bool_flag("no-trunc", "", "Don't truncate output"),
            bool_flag("quiet", "q", "Only display container IDs"),
            bool_flag("size", "s", "Display total file sizes"),
        ],
        run_ps, args_max=0,
    ),
    "stop": Command("stop", "[OPTIONS] CONTAINER [CONTAINER...]",
                    "Stop one or more running containers", _TIMEOUT_FLAGS, run_stop, args_min=1),
    "restart": Command("restart", "[OPTIONS] CONTAINER [CONTAINER...]",
                       "Restart one or more containers", _TIMEOUT_FLAGS, run_restart,
                       args_min=1),
    "kill": Command("kill", "[OPTIONS] CONTAINER [CONTAINER...]",
                    "Kill one or more running containers",
                    [string_flag("signal", "s", "Signal to send to the container")],
                    run_kill, args_min=1),
    "pause": Command("pause", "CONTAINER [CONTAINER...]",
                     "Pause all processes within one or more containers", [], run_pause,
                     args_min=1),
    "unpause": Command("unpause", "CONTAINER [CONTAINER...]",
                       "Unpause all processes within one or more containers", [], run_unpause,
                       args_min=1),
    "rm": Command(
        "rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
        [
            bool_flag("force", "f", "Force the removal of a running container (uses SIGKILL)"),
            bool_flag("link", "l", "Remove the specified link"),
            bool_flag("volumes", "v", "Remove anonymous volumes associated with the container"),
        ],
        run_rm, args_min=1,
    ),
    "wait": Command("wait", "CONTAINER [CONTAINER...]",
                    "Block until one or more containers stop, then print their exit codes", [],
                    run_wait, args_min=1),
    "rename": Command("rename", "CONTAINER NEW_NAME", "Rename a container", [], run_rename,
                      args_min=2, args_max=2),
    "logs": Command(
        "logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container",
        [
            bool_flag("details", "", "Show extra details provided to logs"),
            bool_flag("follow", "f", "Follow log output"),
            string_flag("since", "", "Show logs since timestamp or relative (e.g. 42m)"),
            string_flag("tail", "n", "Number of lines to show from the end of the logs",
                        default="all"),
            bool_flag("timestamps", "t", "Show timestamps"),
            string_flag("until", "", "Show logs before a timestamp or relative (e.g. 42m)"),
        ],
        run_logs, args_min=1, args_max=1,
    ),
    "inspect": Command(
        "inspect", "[OPTIONS] CONTAINER [CONTAINER...]",
        "Display detailed information on one or more containers",
        [string_flag("format", "f", "Format output using a custom template"),
         bool_flag("size", "s", "Display total file sizes")],
        run_inspect, args_min=1,
    ),
    "top": Command("top", "CONTAINER [ps OPTIONS]",
                   "Display the running processes of a container", [], run_top, args_min=1,
                   interspersed=False),
    "stats": Command(
        "stats", "[OPTIONS] [CONTAINER...]",
        "Display a live stream of container(s) resource usage statistics",
        [
            bool_flag("all", "a", "Show all containers (default shows just running)"),
            format_flag(),
            bool_flag("no-stream", "", "Disable streaming stats and only pull the first result"),
            bool_flag("no-trunc", "", "Do not truncate output"),
        ],
        run_stats,
    ),
    "port": Command("port", "CONTAINER [PRIVATE_PORT[/PROTO]]",
                    "List port mappings or a specific mapping for the container", [], run_port,
                    args_min=1, args_max=2),
    "commit": Command(
        "commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        "Create a new image from a container's changes",
        [
            string_flag("author", "a", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
            list_flag("change", "c", "Apply Dockerfile instruction to the created image"),
            string_flag("message", "m", "Commit message"),
            bool_flag("pause", "p", "Pause container during commit", default=True),
        ],
        run_commit, args_min=1, args_max=2,
    ),
    "export": Command("export", "[OPTIONS] CONTAINER",
                      "Export a container's filesystem as a tar archive",
                      [string_flag("output", "o", "Write to a file, instead of STDOUT")],
                      run_export, args_min=1, args_max=1),
    "diff": Command("diff", "CONTAINER",
                    "Inspect changes to files or directories on a container's filesystem", [],
                    run_diff, args_min=1, args_max=1),
    "update": Command(
        "update", "[OPTIONS] CONTAINER [CONTAINER...]",
        "Update configuration of one or more containers",
        [
            int_flag("blkio-weight", "", "Block IO (relative weight), between 10 and 1000"),
            int_flag("cpu-period", "", "Limit CPU CFS (Completely Fair Scheduler) period"),
            int_flag("cpu-quota", "", "Limit CPU CFS (Completely Fair Scheduler) quota"),
            int_flag("cpu-shares", "c", "CPU shares (relative weight)"),
            string_flag("cpus", "", "Number of CPUs"),
            string_flag("cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)"),
            string_flag("cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)"),
            string_flag("memory", "m", "Memory limit"),
            string_flag("memory-reservation", "", "Memory soft limit"),
            string_flag("memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable "
                        "unlimited swap"),
            int_flag("pids-limit", "", "Tune container pids limit (set -1 for unlimited)"),
            string_flag("restart", "", "Restart policy to apply when a container exits"),
        ],
        run_update, args_min=1,
    ),
    "prune": Command(
        "prune", "[OPTIONS]", "Remove all stopped containers",
        [filter_flag(short=""), bool_flag("force", "f", "Do not prompt for confirmation")],
        run_prune, args_max=0,
    ),
}
