"""System commands: version, info, events, inspect (any object), system df/prune, bootstrap."""

import os
import sys

from actors.client import api
from actors.client.cli import Command, CommandError, bool_flag, string_flag
from actors.client.commands.common import (
    confirm,
    filter_flag,
    filters_query,
    format_flag,
    get_timestamp,
    parse_filters,
    quote_path,
)

CLIENT_VERSION = "0.1.0"


def _architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _python_version() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def _field(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- version


def client_version_info(cli, negotiated: str) -> dict:
    return {
        "Platform": {"Name": ""},
        "Version": CLIENT_VERSION,
        "ApiVersion": negotiated,
        "APIVersion": negotiated,
        "DefaultAPIVersion": api.API_VERSION_MAX,
        "PythonVersion": _python_version(),
        "GoVersion": "python" + _python_version(),
        "GitCommit": "",
        "BuildTime": "",
        "Os": sys.platform if sys.platform != "linux" else "linux",
        "Arch": _architecture(),
        "Context": "default",
    }


def _client_section(info: dict) -> str:
    version = info["APIVersion"]
    if version != info["DefaultAPIVersion"]:
        version += f" (downgraded from {info['DefaultAPIVersion']})"
    lines = [
        "Client:",
        f" Version:\t{info['Version']}",
        f" API version:\t{version}",
        f" Python version:\t{info['PythonVersion']}",
        f" OS/Arch:\t{info['Os']}/{info['Arch']}",
        f" Context:\t{info['Context']}",
    ]
    return "\n".join(lines) + "\n"


def _server_section(server: dict) -> str:
    name = (server.get("Platform") or {}).get("Name") or ""
    lines = ["", f"Server:{' ' + name if name else ''}"]
    components = list(server.get("Components") or [])
    if not any(component.get("Name") == "Engine" for component in components):
        components.insert(0, {"Name": "Engine", "Version": server.get("Version", ""),
                              "Details": {key: _field(server.get(key)) for key in (
                                  "ApiVersion", "MinAPIVersion", "GoVersion", "GitCommit",
                                  "BuildTime", "Os", "Arch", "Experimental",
                                  "KernelVersion")}})
    for component in components:
        details = component.get("Details") or {}
        lines.append(f" {component.get('Name', '')}:")
        if component.get("Name") == "Engine":
            lines += [
                f"  Version:\t{component.get('Version', '')}",
                f"  API version:\t{details.get('ApiVersion', '')} (minimum version "
                f"{details.get('MinAPIVersion', '')})",
                f"  Go version:\t{details.get('GoVersion', '')}",
                f"  Git commit:\t{details.get('GitCommit', '')}",
                f"  Built:\t{details.get('BuildTime', '')}",
                f"  OS/Arch:\t{details.get('Os', '')}/{details.get('Arch', '')}",
                f"  Experimental:\t{_field(details.get('Experimental', ''))}",
            ]
        else:
            lines.append(f"  Version:\t{component.get('Version', '')}")
            for key in sorted(details):
                lines.append(f"  {key}:\t{_field(details[key])}")
    return "\n".join(lines) + "\n"


def run_version(cli, options, args) -> int:
    from actors.client import formatting

    if options.format:
        from actors.client import tables

        tables.parse(options.format)
    client = cli.client
    server = None
    error = None
    try:
        negotiated = client.version
        server = client.get_json("/version") or {}
        server.setdefault("APIVersion", server.get("ApiVersion", ""))
    except api.ClientError as failure:
        negotiated = api.API_VERSION_MAX
        error = failure
    client_info = client_version_info(cli, negotiated)
    if options.format:
        from actors.client.gotemplate import Template, TemplateError

        data = {"Client": client_info, "Server": server}
        try:
            cli.out(Template(options.format).execute(data) + "\n")
        except TemplateError as failure:
            raise CommandError(f"template parsing error: {failure}") from None
    else:
        text = _client_section(client_info)
        if server is not None:
            text += _server_section(server)
        cli.out(formatting.tabwrite(text, min_width=20, padding=1))
    if error is not None:
        cli.flush()
        raise CommandError(str(error))
    return 0


# --------------------------------------------------------------------------- info


def _info_lines(info: dict) -> list[str]:
    from actors.client import formatting

    lines = [
        f" Containers: {info.get('Containers', 0)}",
        f"  Running: {info.get('ContainersRunning', 0)}",
        f"  Paused: {info.get('ContainersPaused', 0)}",
        f"  Stopped: {info.get('ContainersStopped', 0)}",
        f" Images: {info.get('Images', 0)}",
        f" Server Version: {info.get('ServerVersion', '')}",
    ]
    if info.get("Driver"):
        lines.append(f" Storage Driver: {info['Driver']}")
        for pair in info.get("DriverStatus") or []:
            if len(pair) == 2:
                lines.append(f"  {pair[0]}: {pair[1]}")
    for key, title in (("LoggingDriver", "Logging Driver"), ("CgroupDriver", "Cgroup Driver"),
                       ("CgroupVersion", "Cgroup Version")):
        if info.get(key):
            lines.append(f" {title}: {info[key]}")
    plugins = info.get("Plugins") or {}
    if plugins:
        lines.append(" Plugins:")
        for kind in ("Volume", "Network", "Authorization", "Log"):
            if plugins.get(kind):
                lines.append(f"  {kind}: {' '.join(plugins[kind])}")
    swarm = info.get("Swarm") or {}
    lines.append(f" Swarm: {swarm.get('LocalNodeState') or 'inactive'}")
    if swarm.get("LocalNodeState") == "active":
        lines.append(f"  NodeID: {swarm.get('NodeID', '')}")
        lines.append(f"  Is Manager: {_field(bool(swarm.get('ControlAvailable')))}")
        if swarm.get("Cluster"):
            lines.append(f"  ClusterID: {swarm['Cluster'].get('ID', '')}")
        lines.append(f"  Managers: {swarm.get('Managers', 0)}")
        lines.append(f"  Nodes: {swarm.get('Nodes', 0)}")
        lines.append(f"  Node Address: {swarm.get('NodeAddr', '')}")
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        lines.append(f" Runtimes: {' '.join(sorted(runtimes))}")
    if info.get("DefaultRuntime"):
        lines.append(f" Default Runtime: {info['DefaultRuntime']}")
    security = info.get("SecurityOptions") or []
    if security:
        lines.append(" Security Options:")
        for option in security:
            for index, part in enumerate(option.split(",")):
                key, _, value = part.partition("=")
                if index == 0:
                    lines.append(f"  {value if key == 'name' else part}")
                else:
                    lines.append(f"   {key.capitalize()}: {value}")
    for key, title in (("KernelVersion", "Kernel Version"),
                       ("OperatingSystem", "Operating System"), ("OSType", "OSType"),
                       ("Architecture", "Architecture"), ("NCPU", "CPUs")):
        if info.get(key) not in (None, ""):
            lines.append(f" {title}: {info[key]}")
    if info.get("MemTotal"):
        lines.append(f" Total Memory: {formatting.binary_size(info['MemTotal'])}")
    for key, title in (("Name", "Name"), ("ID", "ID"), ("DockerRootDir", "Docker Root Dir")):
        if info.get(key):
            lines.append(f" {title}: {info[key]}")
    lines.append(f" Debug Mode: {_field(bool(info.get('Debug')))}")
    lines.append(f" Experimental: {_field(bool(info.get('ExperimentalBuild')))}")
    registry = info.get("RegistryConfig") or {}
    insecure = registry.get("InsecureRegistryCIDRs") or []
    for index_name, index in sorted((registry.get("IndexConfigs") or {}).items()):
        if not index.get("Secure", True) and index_name not in insecure:
            insecure.append(index_name)
    if insecure:
        lines.append(" Insecure Registries:")
        lines += [f"  {item}" for item in insecure]
    if registry.get("Mirrors"):
        lines.append(" Registry Mirrors:")
        lines += [f"  {item}" for item in registry["Mirrors"]]
    lines.append(f" Live Restore Enabled: {_field(bool(info.get('LiveRestoreEnabled')))}")
    return lines


def run_info(cli, options, args) -> int:
    from actors.client import tables

    if options.format:
        tables.parse(options.format)
    error = None
    info = None
    try:
        info = cli.client.get_json("/info") or {}
    except api.ClientError as failure:
        error = failure
    if options.format:
        from actors.client.gotemplate import Template, TemplateError

        data = dict(info or {})
        data.setdefault("ClientInfo", {"Version": CLIENT_VERSION, "Context": "default",
                                       "Debug": bool(cli.options.get("debug"))})
        if info is not None:
            try:
                cli.out(Template(options.format).execute(data) + "\n")
            except TemplateError as failure:
                raise CommandError(f"template parsing error: {failure}") from None
    else:
        lines = ["Client:", f" Version:    {CLIENT_VERSION}", " Context:    default",
                 f" Debug Mode: {_field(bool(cli.options.get('debug')))}", ""]
        lines.append("Server:")
        if info is not None:
            lines += _info_lines(info)
        cli.out("\n".join(lines) + "\n")
        if info is not None:
            for warning in info.get("Warnings") or []:
                cli.err(f"{warning}\n")
    if error is not None:
        cli.flush()
        raise CommandError(f"ERROR: {error}\nerrors pretty printing info")
    return 0


# --------------------------------------------------------------------------- events


def event_line(event: dict) -> str:
    from actors.client.progress import _rfc3339_nano_fixed

    out = ""
    if event.get("timeNano"):
        out += _rfc3339_nano_fixed(event["timeNano"]) + " "
    elif event.get("time"):
        out += _rfc3339_nano_fixed(event["time"] * 1_000_000_000) + " "
    actor = event.get("Actor") or {}
    out += f"{event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        out += " (" + ", ".join(f"{key}={attributes[key]}" for key in sorted(attributes)) + ")"
    return out + "\n"


def _event_template_data(event: dict) -> dict:
    data = dict(event)
    for key, alias in (("status", "Status"), ("id", "ID"), ("from", "From"), ("scope", "Scope"),
                       ("time", "Time"), ("timeNano", "TimeNano")):
        if key in event:
            data.setdefault(alias, event[key])
    return data


def run_events(cli, options, args) -> int:
    from actors.client.gotemplate import Template, TemplateError

    template = None
    if options.format:
        source = "{{json .}}" if options.format == "json" else options.format
        try:
            template = Template(source)
        except TemplateError as error:
            raise CommandError(f"template parsing error: {error}") from None
    query = {
        "since": get_timestamp(options.since) if options.since else None,
        "until": get_timestamp(options.until) if options.until else None,
        "filters": filters_query(parse_filters(options.filter)),
    }
    for event in cli.client.stream_json("GET", "/events", query):
        if not isinstance(event, dict):
            continue
        if template is not None:
            try:
                cli.out(template.execute(_event_template_data(event)) + "\n")
            except TemplateError as error:
                raise CommandError(f"template parsing error: {error}") from None
        else:
            cli.out(event_line(event))
        cli.flush()
    return 0


# --------------------------------------------------------------------------- inspect


INSPECT_PATHS = {
    "container": lambda name, size: (f"/containers/{quote_path(name)}/json",
                                     {"size": True} if size else None),
    "image": lambda name, size: (f"/images/{quote_path(name)}/json", None),
    "network": lambda name, size: (f"/networks/{quote_path(name)}", None),
    "volume": lambda name, size: (f"/volumes/{quote_path(name)}", None),
}


def run_inspect(cli, options, args) -> int:
    from actors.client.commands.common import inspect_output

    kinds = [options.type] if options.type else ["container", "image", "network", "volume"]
    for kind in kinds:
        if kind not in INSPECT_PATHS:
            raise CommandError(f'"{kind}" is not a valid value for --type')
    objects, errors = [], []
    for name in args:
        for kind in kinds:
            path, query = INSPECT_PATHS[kind](name, options.size)
            try:
                objects.append(cli.client.get_json(path, query))
                break
            except api.APIError as error:
                if error.status not in (400, 404):
                    raise
        else:
            noun = options.type or "object"
            errors.append(f"Error: No such {noun}: {name}")
    inspect_output(cli, objects, options.format)
    if errors:
        raise CommandError("\n".join(errors))
    return 0


# --------------------------------------------------------------------------- df, prune


DF_TABLE = "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


def _reclaimable(reclaimable: int, total: int) -> str:
    from actors.client import formatting

    text = formatting.human_size(reclaimable)
    if total > 0:
        text += f" ({int(100 * reclaimable / total)}%)"
    return text


def df_rows(usage: dict) -> list[dict]:
    from actors.client import formatting

    images = usage.get("Images") or []
    image_total = usage.get("LayersSize") or sum(image.get("Size") or 0 for image in images)
    image_active = [image for image in images if (image.get("Containers") or 0) > 0]
    image_used = sum((image.get("Size") or 0) - max(image.get("SharedSize") or 0, 0)
                     for image in image_active)
    image_reclaim = max(image_total - image_used, 0)
    containers = usage.get("Containers") or []
    container_total = sum(item.get("SizeRw") or 0 for item in containers)
    running = [item for item in containers if item.get("State") in ("running", "paused",
                                                                     "restarting")]
    container_reclaim = sum(item.get("SizeRw") or 0 for item in containers
                            if item not in running)
    volumes = usage.get("Volumes") or []

    def volume_size(volume: dict) -> int:
        return max(((volume.get("UsageData") or {}).get("Size") or 0), 0)

    volume_total = sum(volume_size(volume) for volume in volumes)
    volume_active = [v for v in volumes if ((v.get("UsageData") or {}).get("RefCount") or 0) > 0]
    volume_reclaim = sum(volume_size(v) for v in volumes if v not in volume_active)
    cache = usage.get("BuildCache") or []
    cache_total = sum(item.get("Size") or 0 for item in cache)
    cache_active = [item for item in cache if item.get("InUse")]
    cache_reclaim = sum(item.get("Size") or 0 for item in cache
                        if not item.get("InUse") and not item.get("Shared"))
    return [
        {"Type": "Images", "TotalCount": str(len(images)), "Active": str(len(image_active)),
         "Size": formatting.human_size(image_total),
         "Reclaimable": _reclaimable(image_reclaim, image_total)},
        {"Type": "Containers", "TotalCount": str(len(containers)), "Active": str(len(running)),
         "Size": formatting.human_size(container_total),
         "Reclaimable": _reclaimable(container_reclaim, container_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
         "Active": str(len(volume_active)), "Size": formatting.human_size(volume_total),
         "Reclaimable": _reclaimable(volume_reclaim, volume_total)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)), "Active": str(len(cache_active)),
         "Size": formatting.human_size(cache_total),
         "Reclaimable": formatting.human_size(cache_reclaim)},
    ]


def run_df(cli, options, args) -> int:
    from actors.client import tables

    format_text = options.format or DF_TABLE
    if format_text == "table":
        format_text = DF_TABLE
    tables.validate(format_text, DF_HEADERS)
    usage = cli.client.get_json("/system/df") or {}
    contexts = [tables.MapContext(row, DF_HEADERS) for row in df_rows(usage)]
    cli.out(tables.render(format_text, contexts, DF_HEADERS))
    return 0


def run_prune(cli, options, args) -> int:
    from actors.client import formatting

    items = ["all stopped containers", "all networks not used by at least one container"]
    if options.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them"
                 if options.all else "all dangling images")
    items.append("unused build cache" if not options.all else "all build cache")
    if not options.force:
        message = "WARNING! This will remove:\n" + "".join(f"  - {item}\n" for item in items)
        if not confirm(cli, message + "\nAre you sure you want to continue?"):
            return 0
    filters = parse_filters(options.filter)
    encoded = filters_query(filters)
    client = cli.client
    reclaimed = 0
    result = client.post_json("/containers/prune", {"filters": encoded}) or {}
    reclaimed += result.get("SpaceReclaimed") or 0
    if result.get("ContainersDeleted"):
        cli.out("Deleted Containers:\n" + "".join(f"{c}\n" for c in result["ContainersDeleted"])
                + "\n")
    result = client.post_json("/networks/prune", {"filters": encoded}) or {}
    if result.get("NetworksDeleted"):
        cli.out("Deleted Networks:\n" + "".join(f"{n}\n" for n in result["NetworksDeleted"])
                + "\n")
    if options.volumes:
        result = client.post_json("/volumes/prune", {"filters": encoded}) or {}
        reclaimed += result.get("SpaceReclaimed") or 0
        if result.get("VolumesDeleted"):
            cli.out("Deleted Volumes:\n" + "".join(f"{v}\n" for v in result["VolumesDeleted"])
                    + "\n")
    image_filters = dict(filters)
    image_filters["dangling"] = {"false" if options.all else "true": True}
    result = client.post_json("/images/prune", {"filters": filters_query(image_filters)}) or {}
    reclaimed += result.get("SpaceReclaimed") or 0
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        cli.out("Deleted Images:\n")
        for item in deleted:
            if item.get("Untagged"):
                cli.out(f"untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                cli.out(f"deleted: {item['Deleted']}\n")
        cli.out("\n")
    try:
        result = client.post_json("/build/prune", {"filters": encoded or "",
                                                   "all": True if options.all else None}) or {}
        reclaimed += result.get("SpaceReclaimed") or 0
    except api.APIError as error:
        if error.status != 404:
            raise
    cli.out(f"Total reclaimed space: {formatting.human_size(reclaimed)}\n")
    return 0


# --------------------------------------------------------------------------- bootstrap


def run_bootstrap(cli, options, args) -> int:
    from actors.client.commands.images import display_json_stream

    image = args[0]
    if image not in ("busybox", "debian"):
        raise CommandError(f'unknown base image "{image}": choose busybox or debian')
    response = cli.client.request("POST", "/flotta/bootstrap", {"image": image})
    with response:
        display_json_stream(cli, response)
    return 0


COMMANDS = {
    "version": Command("version", "[OPTIONS]", "Show the flotta version information",
                       [format_flag("f")], run_version, args_max=0),
    "info": Command("info", "[OPTIONS]", "Display system-wide information",
                    [format_flag("f")], run_info, args_max=0),
    "events": Command(
        "events", "[OPTIONS]", "Get real time events from the server",
        [filter_flag(), format_flag(),
         string_flag("since", "", "Show all events created since timestamp"),
         string_flag("until", "", "Stream events until this timestamp")],
        run_events, args_max=0,
    ),
    "inspect": Command(
        "inspect", "[OPTIONS] NAME|ID [NAME|ID...]",
        "Return low-level information on flotta objects",
        [string_flag("format", "f", "Format output using a custom template"),
         bool_flag("size", "s", "Display total file sizes if the type is container"),
         string_flag("type", "", "Return JSON for specified type")],
        run_inspect, args_min=1,
    ),
    "df": Command("df", "[OPTIONS]", "Show flotta disk usage",
                  [format_flag(), bool_flag("verbose", "v", "Show detailed information on "
                                            "space usage", hidden=True)],
                  run_df, args_max=0),
    "prune": Command(
        "prune", "[OPTIONS]", "Remove unused data",
        [bool_flag("all", "a", "Remove all unused images not just dangling ones"),
         filter_flag(short=""), bool_flag("force", "f", "Do not prompt for confirmation"),
         bool_flag("volumes", "", "Prune anonymous volumes")],
        run_prune, args_max=0,
    ),
    "bootstrap": Command("bootstrap", "busybox|debian",
                         "Create a base image (busybox or debian) on the daemon", [],
                         run_bootstrap, args_min=1, args_max=1),
}
