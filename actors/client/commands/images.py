"""Image commands: images, pull, push, rmi, tag, history, save, load, import, login, logout."""

import sys

from actors.client import api
from actors.client.cli import Command, CommandError, bool_flag, list_flag, string_flag
from actors.client.commands.common import (
    confirm,
    filter_flag,
    filters_query,
    format_flag,
    inspect_output,
    parse_filters,
    quote_path,
    refuse_terminal,
    write_stream,
)


def _parse_reference(text: str):
    from actors.client.reference import ReferenceError, parse_normalized_named

    try:
        return parse_normalized_named(text)
    except ReferenceError as error:
        raise CommandError(str(error)) from None


def auth_header(cli, reference) -> dict:
    from actors.client import config
    from actors.client import reference as references

    return {"X-Registry-Auth": config.registry_auth_header(
        cli.config_dir(), references.registry_host(reference))}


def display_json_stream(cli, response, out=None, quiet: bool = False, aux_callback=None) -> None:
    """Render a JSON message stream (or copy it raw when it is not JSON)."""
    from actors.client import progress, streams

    out = out if out is not None else cli.stdout
    is_terminal = False if quiet else out.isatty()
    width = 200
    if is_terminal:
        width = streams.terminal_size(out.fileno())[1] or 200
    if response.content_type != "application/json":
        for data in response.iter_raw():
            if not quiet:
                out.flush()
                out.buffer.write(data)
        return

    class _Discard:
        def write(self, text: str) -> None:
            pass

        def flush(self) -> None:
            pass

    target = _Discard() if quiet else out
    try:
        progress.display_stream(response.iter_json(), target, is_terminal, width, aux_callback)
    except progress.StreamMessageError as error:
        raise CommandError(error.message, error.code) from None


def pull_image(cli, image: str, platform: str = "", out=None, quiet: bool = False,
               all_tags: bool = False) -> str:
    """POST /images/create for `image`, rendering progress; returns the canonical ref."""
    reference = _parse_reference(image)
    if not all_tags:
        reference = reference.with_default_tag()
    query = {
        "fromImage": reference.name,
        "tag": reference.digest or reference.tag or None,
        "platform": platform or None,
    }
    response = cli.client.request("POST", "/images/create", query,
                                  headers=auth_header(cli, reference))
    with response:
        display_json_stream(cli, response, out=out, quiet=quiet)
    return str(reference)


def run_pull(cli, options, args) -> int:
    reference = _parse_reference(args[0])
    if not options.all_tags and not reference.tag and not reference.digest:
        cli.out("Using default tag: latest\n")
    canonical = pull_image(cli, args[0], options.platform, quiet=options.quiet,
                           all_tags=options.all_tags)
    cli.out(canonical + "\n")
    return 0


def run_push(cli, options, args) -> int:
    reference = _parse_reference(args[0])
    if not options.all_tags and not reference.tag and not reference.digest:
        cli.out("Using default tag: latest\n")
        reference = reference.with_default_tag()
    query = {"tag": None if options.all_tags else (reference.tag or None)}
    if options.platform:
        import json

        os_name, _, rest = options.platform.partition("/")
        architecture, _, variant = rest.partition("/")
        platform = {"os": os_name, "architecture": architecture}
        if variant:
            platform["variant"] = variant
        query["platform"] = json.dumps(platform, separators=(",", ":"))
    response = cli.client.request("POST", f"/images/{quote_path(reference.name)}/push", query,
                                  headers=auth_header(cli, reference))
    with response:
        display_json_stream(cli, response, quiet=options.quiet)
    if options.quiet:
        cli.out(reference.familiar_string() + "\n")
    return 0


# --------------------------------------------------------------------------- listing


def run_images(cli, options, args) -> int:
    from actors.client import tables

    format_text = options.format
    if options.quiet and format_text:
        cli.err("WARNING: Ignoring custom format, because both --format and --quiet are set.\n")
        format_text = ""
    if not format_text and not options.quiet:
        from actors.client.commands.containers import _read_config_format

        format_text = _read_config_format(cli, "imagesFormat")
    if options.quiet:
        format_text = "{{.ID}}"
    elif not format_text or format_text == "table":
        format_text = tables.IMAGE_TABLE_DIGESTS if options.digests else tables.IMAGE_TABLE
    tables.validate(format_text, tables.ImageContext.HEADERS)
    filters = parse_filters(options.filter)
    if args:
        filters.setdefault("reference", {})[args[0]] = True
    query = {"all": True if options.all else None, "filters": filters_query(filters)}
    images = cli.client.get_json("/images/json", query) or []
    contexts = []
    # docker shows digests when asked to, or when the format names them.
    digests = options.digests or "{{.Digest}}" in format_text
    for image in images:
        for repository, tag, digest in tables.image_rows(image, digests):
            contexts.append(tables.ImageContext(image, repository, tag, digest,
                                                trunc=not options.no_trunc))
    cli.out(tables.render(format_text, contexts, tables.ImageContext.HEADERS))
    return 0


HISTORY_TABLE = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def run_history(cli, options, args) -> int:
    from actors.client import formatting, tables

    format_text = options.format
    if options.quiet:
        format_text = "{{.ID}}"
    elif not format_text or format_text == "table":
        format_text = HISTORY_TABLE
    tables.validate(format_text, HISTORY_HEADERS)
    entries = cli.client.get_json(f"/images/{quote_path(args[0])}/history") or []
    contexts = []
    for entry in entries:
        identifier = entry.get("Id") or ""
        if not options.no_trunc and identifier != "<missing>":
            identifier = formatting.truncate_id(identifier)
        created = entry.get("Created") or 0
        created_by = (entry.get("CreatedBy") or "").replace("\t", " ")
        if not options.no_trunc:
            created_by = formatting.ellipsis(created_by, 45)
        size = entry.get("Size") or 0
        fields = {
            "ID": identifier,
            "CreatedSince": formatting.since(created) if options.human else
            formatting.format_rfc3339(created),
            "CreatedAt": formatting.format_rfc3339(created),
            "CreatedBy": created_by,
            "Size": formatting.human_size(size, 3) if options.human else str(size),
            "Comment": entry.get("Comment") or "",
        }
        contexts.append(tables.MapContext(fields, HISTORY_HEADERS, entry))
    headers = HISTORY_HEADERS if options.human else dict(HISTORY_HEADERS,
                                                           CreatedSince="CREATED AT")
    cli.out(tables.render(format_text, contexts, headers))
    return 0


def run_rmi(cli, options, args) -> int:
    query = {"force": True if options.force else None,
             "noprune": True if options.no_prune else None}
    errors = []
    for name in args:
        try:
            deleted = cli.client.delete(f"/images/{quote_path(name)}", query) or []
        except api.APIError as error:
            errors.append(str(error))
            continue
        for item in deleted:
            if item.get("Untagged"):
                cli.out(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                cli.out(f"Deleted: {item['Deleted']}\n")
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def run_tag(cli, options, args) -> int:
    target = _parse_reference(args[1])
    if target.digest:
        raise CommandError("refusing to create a tag with a digest reference")
    target = target.with_default_tag()
    cli.client.request("POST", f"/images/{quote_path(args[0])}/tag",
                       {"repo": target.name, "tag": target.tag}).close()
    return 0


def run_inspect(cli, options, args) -> int:
    objects, errors = [], []
    for name in args:
        try:
            objects.append(cli.client.get_json(f"/images/{quote_path(name)}/json"))
        except api.APIError as error:
            if error.status != 404:
                raise
            errors.append(str(error))
    inspect_output(cli, objects, options.format)
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def run_prune(cli, options, args) -> int:
    from actors.client import formatting

    warning = ("WARNING! This will remove all images without at least one container "
               "associated to them." if options.all else
               "WARNING! This will remove all dangling images.")
    if not options.force and not confirm(cli, f"{warning}\nAre you sure you want to continue?"):
        return 0
    filters = parse_filters(options.filter)
    filters["dangling"] = {"false" if options.all else "true": True}
    result = cli.client.post_json("/images/prune", {"filters": filters_query(filters)}) or {}
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        cli.out("Deleted Images:\n")
        for item in deleted:
            if item.get("Untagged"):
                cli.out(f"untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                cli.out(f"deleted: {item['Deleted']}\n")
        cli.out("\n")
    cli.out(f"Total reclaimed space: {formatting.human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0


# --------------------------------------------------------------------------- archives


def file_chunks(handle, chunk_bytes: int = 256 * 1024):
    while True:
        data = handle.read(chunk_bytes)
        if not data:
            return
        yield data


def run_save(cli, options, args) -> int:
    refuse_terminal(cli, options.output, "save")
    response = cli.client.request("GET", "/images/get", {"names": list(args)})
    with response:
        write_stream(cli, response, options.output)
    return 0


def _open_input(path: str):
    try:
        return open(path, "rb")
    except OSError as error:
        raise CommandError(f"open {path}: {error.strerror.lower()}") from None


def run_load(cli, options, args) -> int:
    if not options.input and cli.stdin_is_tty():
        raise CommandError("requested load from stdin, but stdin is empty")
    quiet = options.quiet or not cli.stdout_is_tty()
    handle = _open_input(options.input) if options.input else sys.stdin.buffer
    with handle:
        response = cli.client.request(
            "POST", "/images/load", {"quiet": quiet}, body=file_chunks(handle),
            headers={"Content-Type": "application/x-tar"},
        )
    with response:
        display_json_stream(cli, response)
    return 0


def run_import(cli, options, args) -> int:
    source = args[0]
    query = {"message": options.message or None, "changes": options.change or None,
             "platform": options.platform or None}
    if len(args) > 1:
        reference = _parse_reference(args[1])
        query["repo"] = reference.name
        query["tag"] = reference.tag or None
    if "://" in source:
        query["fromSrc"] = source
        response = cli.client.request("POST", "/images/create", query)
    else:
        query["fromSrc"] = "-"
        handle = sys.stdin.buffer if source == "-" else _open_input(source)
        with handle:
            response = cli.client.request("POST", "/images/create", query,
                                          body=file_chunks(handle),
                                          headers={"Content-Type": "application/x-tar"})
    with response:
        display_json_stream(cli, response)
    return 0


# --------------------------------------------------------------------------- login, logout


def run_login(cli, options, args) -> int:
    from actors.client import config

    server = args[0] if args else config.HUB_ADDRESS
    key = config.normalize_registry(server)
    username = options.username
    password = options.password
    if options.password_stdin:
        if password:
            raise CommandError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise CommandError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        cli.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    try:
        stored = config.ConfigFile(cli.config_dir())
    except config.ConfigError as error:
        raise CommandError(str(error)) from None
    if not username and not password:
        previous = stored.get_auth(key)
        username = previous.get("username", "")
        password = previous.get("password", "")
    if not username:
        if not cli.stdin_is_tty():
            raise CommandError("Error: Cannot perform an interactive login from a non TTY device")
        cli.out("Username: ")
        cli.flush()
        username = sys.stdin.readline().strip()
        if not username:
            raise CommandError("Error: Non-null Username Required")
    if not password:
        if not cli.stdin_is_tty():
            raise CommandError("Error: Cannot perform an interactive login from a non TTY device")
        import getpass

        password = getpass.getpass("Password: ")
        if not password:
            raise CommandError("Error: Password Required")
    request = {"username": username, "password": password, "serveraddress": key}
    result = cli.client.post_json("/auth", None, request) or {}
    token = result.get("IdentityToken") or ""
    try:
        stored.store_auth(key, username, password, token)
    except (config.ConfigError, OSError) as error:
        raise CommandError(f"Error saving credentials: {error}") from None
    if not stored.uses_helper(key):
        cli.err(f"\nWARNING! Your credentials are stored unencrypted in '{stored.path}'.\n"
                "Configure a credential helper (credsStore in that file) to remove this "
                "warning.\n\n")
    cli.out(f"{result.get('Status') or 'Login Succeeded'}\n")
    return 0


def run_logout(cli, options, args) -> int:
    from actors.client import config

    server = args[0] if args else config.HUB_ADDRESS
    key = config.normalize_registry(server)
    try:
        stored = config.ConfigFile(cli.config_dir())
        removed = stored.remove_auth(key)
    except (config.ConfigError, OSError) as error:
        raise CommandError(str(error)) from None
    if not removed:
        cli.out(f"Not logged in to {key}\n")
        return 0
    cli.out(f"Removing login credentials for {key}\n")
    return 0


COMMANDS = {
    "images": Command(
        "images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
        [
            bool_flag("all", "a", "Show all images (default hides intermediate images)"),
            bool_flag("digests", "", "Show digests"),
            filter_flag(),
            format_flag(),
            bool_flag("no-trunc", "", "Don't truncate output"),
            bool_flag("quiet", "q", "Only show image IDs"),
        ],
        run_images, args_max=1,
    ),
    "pull": Command(
        "pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
        [
            bool_flag("all-tags", "a", "Download all tagged images in the repository"),
            bool_flag("disable-content-trust", "", "Skip image verification", default=True),
            string_flag("platform", "", "Set platform if server is multi-platform capable"),
            bool_flag("quiet", "q", "Suppress verbose output"),
        ],
        run_pull, args_min=1, args_max=1,
    ),
    "push": Command(
        "push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
        [
            bool_flag("all-tags", "a", "Push all tags of an image to the repository"),
            bool_flag("disable-content-trust", "", "Skip image signing", default=True),
            string_flag("platform", "", "Push a platform-specific manifest"),
            bool_flag("quiet", "q", "Suppress verbose output"),
        ],
        run_push, args_min=1, args_max=1,
    ),
    "rmi": Command(
        "rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
        [bool_flag("force", "f", "Force removal of the image"),
         bool_flag("no-prune", "", "Do not delete untagged parents")],
        run_rmi, args_min=1,
    ),
    "tag": Command("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                   "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [], run_tag,
                   args_min=2, args_max=2),
    "history": Command(
        "history", "[OPTIONS] IMAGE", "Show the history of an image",
        [
            format_flag(),
            bool_flag("human", "H", "Print sizes and dates in human readable format",
                      default=True),
            bool_flag("no-trunc", "", "Don't truncate output"),
            bool_flag("quiet", "q", "Only show image IDs"),
        ],
        run_history, args_min=1, args_max=1,
    ),
    "inspect": Command(
        "inspect", "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more "
        "images", [string_flag("format", "f", "Format output using a custom template")],
        run_inspect, args_min=1,
    ),
    "prune": Command(
        "prune", "[OPTIONS]", "Remove unused images",
        [bool_flag("all", "a", "Remove all unused images, not just dangling ones"),
         filter_flag(short=""), bool_flag("force", "f", "Do not prompt for confirmation")],
        run_prune, args_max=0,
    ),
    "save": Command(
        "save", "[OPTIONS] IMAGE [IMAGE...]",
        "Save one or more images to a tar archive (streamed to STDOUT by default)",
        [string_flag("output", "o", "Write to a file, instead of STDOUT")],
        run_save, args_min=1,
    ),
    "load": Command(
        "load", "[OPTIONS]", "Load an image from a tar archive or STDIN",
        [string_flag("input", "i", "Read from tar archive file, instead of STDIN"),
         bool_flag("quiet", "q", "Suppress the load output")],
        run_load, args_max=0,
    ),
    "import": Command(
        "import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        "Import the contents from a tarball to create a filesystem image",
        [list_flag("change", "c", "Apply Dockerfile instruction to the created image"),
         string_flag("message", "m", "Set commit message for imported image"),
         string_flag("platform", "", "Set platform if server is multi-platform capable")],
        run_import, args_min=1, args_max=2,
    ),
    "login": Command(
        "login", "[OPTIONS] [SERVER]", "Authenticate to a registry",
        [string_flag("password", "p", "Password or Personal Access Token (PAT)"),
         bool_flag("password-stdin", "", "Take the Password or Personal Access Token (PAT) "
                   "from stdin"),
         string_flag("username", "u", "Username")],
        run_login, args_max=1,
    ),
    "logout": Command("logout", "[SERVER]", "Log out from a registry", [], run_logout,
                      args_max=1),
}
