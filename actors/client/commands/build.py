"""`flotta build`: tar the context (honouring .dockerignore), POST /build, show the output."""

import json
import os
import sys
import tempfile

from actors.client.cli import (
    Command,
    CommandError,
    UsageError,
    bool_flag,
    int_flag,
    list_flag,
    string_flag,
)

UPLOAD_CHUNK_BYTES = 256 * 1024


def _build_args(values: list[str], environ) -> dict:
    result: dict = {}
    for value in values:
        name, equals, text = value.partition("=")
        if equals:
            result[name] = text
        else:
            result[name] = environ.get(name)
    return result


def build_query(options, dockerfile_name: str, environ=None) -> dict:
    """The /build query parameters docker's classic builder client sends."""
    from actors.client.reference import ReferenceError, parse_normalized_named

    environ = os.environ if environ is None else environ
    for tag in options.tag:
        try:
            parse_normalized_named(tag)
        except ReferenceError as error:
            raise UsageError(f'invalid argument "{tag}" for "-t, --tag" flag: {error}') from None
    labels = {}
    for value in options.label:
        name, _, text = value.partition("=")
        labels[name] = text
    query = {
        "t": list(options.tag) or None,
        "dockerfile": dockerfile_name,
        "buildargs": json.dumps(_build_args(options.build_arg, environ), separators=(",", ":"),
                                sort_keys=True) if options.build_arg else None,
        "labels": json.dumps(labels, separators=(",", ":"), sort_keys=True) if labels else None,
        "nocache": True if options.no_cache else None,
        "pull": True if options.pull else None,
        "q": True if options.quiet else None,
        "target": options.target or None,
        "networkmode": options.network or None,
        "extrahosts": list(options.add_host) or None,
        "platform": options.platform or None,
        "rm": None if options.rm else False,
        "forcerm": True if options.force_rm else None,
        "cachefrom": json.dumps(options.cache_from, separators=(",", ":"))
        if options.cache_from else None,
        "version": "1",
    }
    from actors.client import opts

    for flag, key, parser in (("shm_size", "shmsize", opts.ram_in_bytes),
                              ("memory", "memory", opts.ram_in_bytes),
                              ("memory_swap", "memswap", opts.memory_swap_bytes)):
        if options[flag]:
            try:
                query[key] = parser(options[flag])
            except opts.OptionError as error:
                raise UsageError(f'invalid argument "{options[flag]}" for '
                                 f'"--{flag.replace("_", "-")}" flag: {error}') from None
    for flag, key in (("cpu_shares", "cpushares"), ("cpu_period", "cpuperiod"),
                      ("cpu_quota", "cpuquota")):
        if options[flag]:
            query[key] = options[flag]
    if options.cpuset_cpus:
        query["cpusetcpus"] = options.cpuset_cpus
    return query


def registry_config_header(cli) -> str:
    """X-Registry-Config: every stored credential, keyed by registry."""
    import base64

    from actors.client import config

    try:
        stored = config.ConfigFile(cli.config_dir())
        auths = {key: stored.get_auth(key) for key in (stored.data.get("auths") or {})}
    except config.ConfigError:
        auths = {}
    payload = json.dumps(auths, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode()


def _prepare_context(cli, options, context: str, spool) -> str:
    from actors.client import buildcontext

    if context == "-":
        if options.file == "-":
            raise CommandError("invalid argument: can't use stdin for both build context and "
                               "dockerfile")
        data = sys.stdin.buffer.read()
        if buildcontext.is_archive(data[:512]):
            spool.write(data)
            return options.file or buildcontext.DEFAULT_DOCKERFILE
        return buildcontext.dockerfile_only_context(data, spool)
    try:
        context_dir = buildcontext.validate_context_dir(context)
        injected = None
        if options.file == "-":
            injected = sys.stdin.buffer.read()
            name = ""
        else:
            name, injected = buildcontext.resolve_dockerfile(context_dir, options.file)
        return buildcontext.write_context(context_dir, spool, name or "Dockerfile", injected)
    except buildcontext.ContextError as error:
        raise CommandError(str(error)) from None


def _upload(spool, size: int, cli, show_progress: bool, quiet: bool):
    """Yield the spooled context, drawing docker's "Sending build context" line."""
    from actors.client import progress

    prefix = "Sending build context to flotta daemon "
    sent = 0
    spool.seek(0)
    while True:
        data = spool.read(UPLOAD_CHUNK_BYTES)
        if not data:
            break
        sent += len(data)
        if show_progress and not quiet:
            cli.out(f"\r{prefix}{progress.progress_text({'current': sent}, 200)}")
            cli.flush()
        yield data
    if not quiet:
        text = progress.progress_text({"current": size}, 200) or f"{0:>8}B"
        cli.out(f"\r{prefix}{text}\n" if show_progress else f"{prefix}{text}\n")
        cli.flush()


def run_build(cli, options, args) -> int:
    from actors.client import progress

    context = args[0]
    if options.iidfile:
        try:
            os.unlink(options.iidfile)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise CommandError(f"Removing image ID file: {error}") from None
    remote = context.startswith(("http://", "https://", "git://", "git@", "github.com/"))
    with tempfile.TemporaryFile() as spool:
        if remote:
            dockerfile_name = options.file or "Dockerfile"
        else:
            dockerfile_name = _prepare_context(cli, options, context, spool)
        query = build_query(options, dockerfile_name)
        headers = {"Content-Type": "application/x-tar",
                   "X-Registry-Config": registry_config_header(cli)}
        if remote:
            query["remote"] = context
            body = None
        else:
            size = spool.tell()
            body = _upload(spool, size, cli, cli.stdout_is_tty(), options.quiet)
        response = cli.client.request("POST", "/build", query, body=body, headers=headers)
    image_id = ""
    quiet_output: list[str] = []

    def on_aux(aux) -> None:
        nonlocal image_id
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]

    with response:
        if response.content_type != "application/json":
            for data in response.iter_raw():
                cli.out_bytes(data)
            return 0
        out = cli.stdout
        is_terminal = cli.stdout_is_tty() and not options.quiet
        renderer = progress.ProgressRenderer(out, is_terminal, aux_callback=on_aux)
        try:
            for message in response.iter_json():
                if not isinstance(message, dict):
                    continue
                if options.quiet:
                    if message.get("errorDetail"):
                        renderer.feed(message)
                    if message.get("aux") is not None:
                        on_aux(message["aux"])
                    elif message.get("stream"):
                        quiet_output.append(message["stream"])
                    continue
                renderer.feed(message)
                stream = message.get("stream") or ""
                if stream.startswith("Successfully built ") and not image_id:
                    image_id = stream.split()[-1]
        except progress.StreamMessageError as error:
            if options.quiet and quiet_output:
                cli.err("".join(quiet_output))
            raise CommandError(error.message, error.code) from None
    if options.quiet:
        cli.out("".join(quiet_output))
        if not image_id:
            for line in quiet_output:
                if line.strip().startswith("sha256:"):
                    image_id = line.strip()
    if options.iidfile:
        if not image_id:
            raise CommandError("Server did not provide an image ID. Cannot write "
                               f"{options.iidfile}")
        try:
            with open(options.iidfile, "w", encoding="utf-8") as handle:
                handle.write(image_id)
        except OSError as error:
            raise CommandError(f"Cannot write {options.iidfile}: {error.strerror}") from None
    return 0


COMMANDS = {
    "build": Command(
        "build", "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile",
        [
            list_flag("add-host", "", "Add a custom host-to-IP mapping (host:ip)"),
            list_flag("build-arg", "", "Set build-time variables"),
            list_flag("cache-from", "", "Images to consider as cache sources"),
            int_flag("cpu-period", "", "Limit the CPU CFS (Completely Fair Scheduler) period"),
            int_flag("cpu-quota", "", "Limit the CPU CFS (Completely Fair Scheduler) quota"),
            int_flag("cpu-shares", "c", "CPU shares (relative weight)"),
            string_flag("cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)"),
            string_flag("file", "f", "Name of the Dockerfile (Default is \"PATH/Dockerfile\")"),
            bool_flag("force-rm", "", "Always remove intermediate containers"),
            string_flag("iidfile", "", "Write the image ID to the file"),
            list_flag("label", "", "Set metadata for an image"),
            string_flag("memory", "m", "Memory limit"),
            string_flag("memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable "
                        "unlimited swap"),
            string_flag("network", "", "Set the networking mode for the RUN instructions "
                        "during build"),
            bool_flag("no-cache", "", "Do not use cache when building the image"),
            string_flag("platform", "", "Set platform if server is multi-platform capable"),
            bool_flag("pull", "", "Always attempt to pull a newer version of the image"),
            bool_flag("quiet", "q", "Suppress the build output and print image ID on success"),
            bool_flag("rm", "", "Remove intermediate containers after a successful build",
                      default=True),
            string_flag("shm-size", "", "Size of /dev/shm"),
            list_flag("tag", "t", "Name and optionally a tag in the \"name:tag\" format"),
            string_flag("target", "", "Set the target build stage to build."),
        ],
        run_build, args_min=1, args_max=1,
    ),
}
