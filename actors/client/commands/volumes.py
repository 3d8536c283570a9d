"""`flotta volume ...` commands."""

from actors.client import api
from actors.client.cli import Command, CommandError, UsageError, bool_flag, list_flag, string_flag
from actors.client.commands.common import (
    confirm,
    filter_flag,
    filters_query,
    for_each,
    format_flag,
    inspect_output,
    parse_filters,
    quote_path,
)

VOLUME_TABLE = "table {{.Driver}}\\t{{.Name}}"
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                  "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Label": "LABEL",
                  "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
                  "Group": "GROUP", "Status": "STATUS"}


def _key_values(values: list[str], display: str) -> dict:
    result = {}
    for value in values:
        key, _, text = value.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{value}" for "{display}" flag: invalid '
                             f"key/value pair format")
        result[key] = text
    return result


def volume_create_body(options, args: list[str]) -> dict:
    if args and options.name and args[0] != options.name:
        raise CommandError("conflicting options: cannot specify a volume-name through both "
                           "--name and as a positional arg")
    body: dict = {"Driver": options.driver}
    driver_options = _key_values(options.opt, "-o, --opt")
    if driver_options:
        body["DriverOpts"] = driver_options
    labels = _key_values(options.label, "--label")
    if labels:
        body["Labels"] = labels
    name = args[0] if args else options.name
    if name:
        body["Name"] = name
    return body


def run_create(cli, options, args) -> int:
    volume = cli.client.post_json("/volumes/create", None, volume_create_body(options, args))
    cli.out(f"{(volume or {}).get('Name', '')}\n")
    return 0


def run_ls(cli, options, args) -> int:
    from actors.client import formatting, tables

    format_text = "{{.Name}}" if options.quiet else (options.format or VOLUME_TABLE)
    if format_text == "table":
        format_text = VOLUME_TABLE
    tables.validate(format_text, VOLUME_HEADERS)
    result = cli.client.get_json("/volumes", {
        "filters": filters_query(parse_filters(options.filter))}) or {}
    for warning in result.get("Warnings") or []:
        cli.err(f"{warning}\n")
    volumes = sorted(result.get("Volumes") or [],
                     key=lambda volume: formatting.natural_key(volume.get("Name") or ""))
    contexts = []
    for volume in volumes:
        usage = volume.get("UsageData") or {}
        size = usage.get("Size", -1)
        references = usage.get("RefCount", -1)
        fields = {
            "Name": volume.get("Name") or "",
            "Driver": volume.get("Driver") or "",
            "Scope": volume.get("Scope") or "",
            "Mountpoint": volume.get("Mountpoint") or "",
            "Labels": tables.labels_text(volume.get("Labels")),
            "Links": "N/A" if references is None or references < 0 else str(references),
            "Size": "N/A" if size is None or size < 0 else formatting.human_size(size),
            "Availability": "N/A",
            "Group": "N/A",
            "Status": "N/A",
        }
        contexts.append(tables.MapContext(fields, VOLUME_HEADERS, volume))
    cli.out(tables.render(format_text, contexts, VOLUME_HEADERS))
    return 0


def run_inspect(cli, options, args) -> int:
    objects, errors = [], []
    for name in args:
        try:
            objects.append(cli.client.get_json(f"/volumes/{quote_path(name)}"))
        except api.APIError as error:
            if error.status != 404:
                raise
            errors.append(str(error))
    inspect_output(cli, objects, options.format)
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def run_rm(cli, options, args) -> int:
    query = {"force": True if options.force else None}
    return for_each(cli, args, lambda name: cli.client.request(
        "DELETE", f"/volumes/{quote_path(name)}", query).close())


def run_prune(cli, options, args) -> int:
    from actors.client import formatting

    warning = ("WARNING! This will remove all local volumes not used by at least one container."
               if options.all else
               "WARNING! This will remove anonymous local volumes not used by at least one "
               "container.")
    if not options.force and not confirm(cli, f"{warning}\nAre you sure you want to continue?"):
        return 0
    filters = parse_filters(options.filter)
    if options.all:
        filters.setdefault("all", {})["true"] = True
    result = cli.client.post_json("/volumes/prune", {"filters": filters_query(filters)}) or {}
    deleted = result.get("VolumesDeleted") or []
    if deleted:
        cli.out("Deleted Volumes:\n" + "".join(f"{name}\n" for name in deleted) + "\n")
    cli.out(f"Total reclaimed space: {formatting.human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0


COMMANDS = {
    "create": Command(
        "create", "[OPTIONS] [VOLUME]", "Create a volume",
        [string_flag("driver", "d", "Specify volume driver name", default="local"),
         list_flag("label", "", "Set metadata for a volume"),
         string_flag("name", "", "Specify volume name", hidden=True),
         list_flag("opt", "o", "Set driver specific options")],
        run_create, args_max=1,
    ),
    "ls": Command(
        "ls", "[OPTIONS]", "List volumes",
        [filter_flag(), format_flag(), bool_flag("quiet", "q", "Only display volume names")],
        run_ls, args_max=0,
    ),
    "inspect": Command("inspect", "[OPTIONS] VOLUME [VOLUME...]",
                       "Display detailed information on one or more volumes",
                       [string_flag("format", "f", "Format output using a custom template")],
                       run_inspect, args_min=1),
    "rm": Command("rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes",
                  [bool_flag("force", "f", "Force the removal of one or more volumes")],
                  run_rm, args_min=1),
    "prune": Command(
        "prune", "[OPTIONS]", "Remove unused local volumes",
        [bool_flag("all", "a", "Remove all unused volumes, not just anonymous ones"),
         filter_flag(short=""), bool_flag("force", "f", "Do not prompt for confirmation")],
        run_prune, args_max=0,
    ),
}
