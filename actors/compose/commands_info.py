"""The read-only commands: ps, ls, logs, top, images, port, config, version."""

from __future__ import annotations

import json
from typing import Any

from actors.client import api, formatting

from . import labels as compose_labels
from .context import Context, ContextError
from .engine import container_name_of, label_filters
from .hashing import config_hash
from .logs import LogPrinter, display_name, follow_all, stream_lines
from .normalize import config_yaml, to_dict

COMPOSE_VERSION = compose_labels.COMPOSE_VERSION
FLOTTA_VERSION = "0.1.0"


def _check(project: Any, services: list[str]) -> None:
    if project is None:
        return
    for name in services:
        if name not in project.services:
            raise ContextError(f"no such service: {name}")


# --------------------------------------------------------------------------- ps


def _summary(ctx: Context, container: dict[str, Any], trunc: bool) -> dict[str, Any]:
    """Docker Compose's ContainerSummary as `ps --format json` prints it."""
    labels = container.get("Labels") or {}
    command = container.get("Command") or ""
    exit_code = 0
    health = ""
    try:
        details = ctx.engine.inspect(container["Id"])
        state = details.get("State") or {}
        exit_code = int(state.get("ExitCode") or 0)
        health = (state.get("Health") or {}).get("Status") or ""
    except api.ClientError:
        pass
    ports = container.get("Ports") or []
    created = int(container.get("Created") or 0)
    networks = sorted((container.get("NetworkSettings") or {}).get("Networks") or {})
    mounts = [mount.get("Name") or mount.get("Source") or ""
              for mount in container.get("Mounts") or ()]
    return {
        "Command": formatting.go_quote(formatting.ellipsis(command, 20) if trunc else command),
        "CreatedAt": formatting.go_time_string(created),
        "ExitCode": exit_code,
        "Health": health,
        "ID": formatting.truncate_id(container["Id"]) if trunc else container["Id"],
        "Image": container.get("Image") or "",
        "Labels": ",".join(f"{key}={value}" for key, value in sorted(labels.items())),
        "LocalVolumes": str(sum(1 for mount in container.get("Mounts") or ()
                                if mount.get("Driver") == "local")),
        "Mounts": ",".join(formatting.ellipsis(mount, 15) if trunc else mount
                           for mount in mounts),
        "Name": container_name_of(container),
        "Names": container_name_of(container),
        "Networks": ",".join(networks),
        "Ports": formatting.displayable_ports(ports),
        "Project": labels.get(compose_labels.PROJECT, ""),
        "Publishers": [{"URL": port.get("IP") or "", "TargetPort": port.get("PrivatePort") or 0,
                        "PublishedPort": port.get("PublicPort") or 0,
                        "Protocol": port.get("Type") or "tcp"} for port in ports],
        "RunningFor": formatting.since(created) if created else "",
        "Service": labels.get(compose_labels.SERVICE, ""),
        "Size": formatting.human_size(container.get("SizeRw") or 0),
        "State": container.get("State") or "",
        "Status": container.get("Status") or "",
    }


def run_ps(ctx: Context, options: Any, services: list[str]) -> int:
    project, name = ctx.project_or_name(services)
    _check(project, services)
    statuses = list(options.status or [])
    for value in options.filter or []:
        key, equals, wanted = value.partition("=")
        if not equals:
            raise ContextError("arguments to --filter should be in form KEY=VAL")
        if key != "status":
            raise ContextError(f"unknown filter {key}")
        statuses.append(wanted)
    include_all = bool(options.all or statuses)
    containers = ctx.engine.containers(name, all=include_all, services=services)
    if project is not None and not services and not options.orphans:
        containers = [c for c in containers if (c.get("Labels") or {}).get(
            compose_labels.SERVICE) in project.services]
    if not options.all:
        # One-off containers only show with -a, unless they are running.
        containers = [c for c in containers if c.get("State") == "running" or (
            (c.get("Labels") or {}).get(compose_labels.ONEOFF) != "True")]
    if statuses:
        containers = [c for c in containers if c.get("State") in statuses]
    containers.sort(key=container_name_of)
    if options.quiet:
        for container in containers:
            ctx.stdout.write(container["Id"] + "\n")
        return 0
    if options.services:
        seen: list[str] = []
        for container in containers:
            service = (container.get("Labels") or {}).get(compose_labels.SERVICE, "")
            if service not in seen:
                seen.append(service)
        ctx.stdout.write("\n".join(seen) + "\n")
        return 0
    trunc = not options.no_trunc
    summaries = [_summary(ctx, container, trunc) for container in containers]
    format_text = options.format or "table"
    if format_text == "json":
        for summary in summaries:
            ctx.stdout.write(json.dumps(summary, separators=(",", ":")) + "\n")
        return 0
    if format_text not in ("table", ""):
        return _render_ps_template(ctx, format_text, summaries)
    rows = ["NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS"]
    for summary in summaries:
        rows.append("\t".join((summary["Name"], summary["Image"], summary["Command"],
                               summary["Service"], summary["RunningFor"], summary["Status"],
                               summary["Ports"])))
    ctx.stdout.write(formatting.tabwrite("\n".join(rows) + "\n"))
    return 0


PS_HEADERS = {
    "Command": "COMMAND", "CreatedAt": "CREATED AT", "ExitCode": "EXIT CODE", "Health": "HEALTH",
    "ID": "CONTAINER ID", "Image": "IMAGE", "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES",
    "Mounts": "MOUNTS", "Name": "NAME", "Names": "NAMES", "Networks": "NETWORKS", "Ports": "PORTS",
    "Project": "PROJECT", "Publishers": "PUBLISHERS", "RunningFor": "CREATED", "Service": "SERVICE",
    "Size": "SIZE", "State": "STATE", "Status": "STATUS",
}


class _PsRow:
    """One container as `ps --format` templates see it: `{{.Name}}`, `{{.State}}`, …"""

    HEADERS = PS_HEADERS

    def __init__(self, summary: dict[str, Any]) -> None:
        self.__dict__.update(summary)


def _render_ps_template(ctx: Context, format_text: str, summaries: list[dict[str, Any]]) -> int:
    """A Go template (`{{.Name}} {{.State}}`, `table {{.Service}}\t{{.Status}}`), as the
    docker CLI renders its own `--format`."""
    from actors.client import tables
    from actors.client.cli import CommandError

    try:
        ctx.stdout.write(tables.render(format_text, [_PsRow(s) for s in summaries], PS_HEADERS))
    except CommandError as error:
        raise ContextError(str(error)) from None
    return 0


# --------------------------------------------------------------------------- ls


def run_ls(ctx: Context, options: Any, args: list[str]) -> int:
    containers = ctx.engine.all_containers(label_filters(compose_labels.PROJECT))
    projects: dict[str, dict[str, Any]] = {}
    for container in containers:
        labels = container.get("Labels") or {}
        name = labels.get(compose_labels.PROJECT)
        if not name:
            continue
        entry = projects.setdefault(name, {"states": {}, "files": ""})
        state = container.get("State") or "unknown"
        entry["states"][state] = entry["states"].get(state, 0) + 1
        entry["files"] = entry["files"] or labels.get(compose_labels.CONFIG_FILES, "")
    filters = [value.partition("=") for value in options.filter or []]
    rows = []
    for name in sorted(projects):
        entry = projects[name]
        if not options.all and "running" not in entry["states"]:
            continue
        if any(key == "name" and wanted not in name for key, _, wanted in filters):
            continue
        status = ", ".join(f"{state}({count})" for state, count in sorted(entry["states"].items()))
        rows.append({"Name": name, "Status": status, "ConfigFiles": entry["files"]})
    if options.quiet:
        for row in rows:
            ctx.stdout.write(row["Name"] + "\n")
    elif options.format == "json":
        ctx.stdout.write(json.dumps(rows, separators=(",", ":")) + "\n")
    else:
        lines = ["NAME\tSTATUS\tCONFIG FILES"]
        lines += [f"{row['Name']}\t{row['Status']}\t{row['ConfigFiles']}" for row in rows]
        ctx.stdout.write(formatting.tabwrite("\n".join(lines) + "\n"))
    return 0


# --------------------------------------------------------------------------- logs


def run_logs(ctx: Context, options: Any, services: list[str]) -> int:
    project, name = ctx.project_or_name(services)
    _check(project, services)
    containers = ctx.engine.containers(name, all=True, oneoff=False, services=services)
    if options.index:
        containers = [c for c in containers if (c.get("Labels") or {}).get(
            compose_labels.CONTAINER_NUMBER) == str(options.index)]
    printer = LogPrinter(ctx.stdout, ctx.stdout, color=ctx.color(options.no_color),
                         prefix=not options.no_log_prefix)
    sources: list[tuple[str, Any]] = []
    for container in containers:
        shown = display_name(name, container_name_of(container))
        printer.register(shown)
        try:
            tty = bool((ctx.engine.inspect(container["Id"]).get("Config") or {}).get("Tty"))
        except api.ClientError:
            continue

        def produce(container_id: str = container["Id"], tty: bool = tty):
            chunks = ctx.engine.logs(container_id, follow=options.follow,
                                     tail=options.tail or "all", timestamps=options.timestamps,
                                     since=options.since, until=options.until)
            return stream_lines(chunks, tty)

        sources.append((shown, produce))
    errors = follow_all(sources, printer)
    if errors:
        raise errors[0]
    return 0


# --------------------------------------------------------------------------- top / port


def run_top(ctx: Context, options: Any, services: list[str]) -> int:
    project, name = ctx.project_or_name(services)
    _check(project, services)
    containers = ctx.engine.containers(name, all=False, services=services)
    for container in containers:
        top = ctx.engine.top(container["Id"])
        titles = top.get("Titles") or []
        ctx.stdout.write(container_name_of(container) + "\n")
        lines = ["\t".join(titles)] + ["\t".join(row) for row in top.get("Processes") or []]
        ctx.stdout.write(formatting.tabwrite("\n".join(lines) + "\n", min_width=4, padding=3))
        ctx.stdout.write("\n")
    return 0


def run_port(ctx: Context, options: Any, args: list[str]) -> int:
    service, port_text = args
    project, name = ctx.project_or_name([service])
    _check(project, [service])
    if not port_text.isdigit():
        raise ContextError(f"invalid port {port_text!r}")
    protocol = options.protocol or "tcp"
    containers = ctx.engine.containers(name, all=False, oneoff=False, services=[service])
    index = options.index or 1
    chosen = [c for c in containers if (c.get("Labels") or {}).get(
        compose_labels.CONTAINER_NUMBER) == str(index)]
    if not chosen:
        raise ContextError(f'service "{service}" is not running container #{index}')
    container = chosen[0]
    for port in container.get("Ports") or []:
        if port.get("PrivatePort") == int(port_text) and (port.get("Type") or "tcp") == protocol:
            if not port.get("PublicPort"):
                continue
            ctx.stdout.write(f"{port.get('IP') or '0.0.0.0'}:{port['PublicPort']}\n")
            return 0
    raise ContextError(f"no port {port_text}/{protocol} for container "
                       f"{container_name_of(container)}: "
                       f"{formatting.displayable_ports(container.get('Ports') or [])}")


# --------------------------------------------------------------------------- images


def run_images(ctx: Context, options: Any, services: list[str]) -> int:
    project, name = ctx.project_or_name(services)
    _check(project, services)
    containers = ctx.engine.containers(name, all=True, services=services)
    rows: list[dict[str, Any]] = []
    for container in containers:
        image = container.get("Image") or ""
        details = ctx.engine.image(container.get("ImageID") or image) or {}
        repository, tag = image, ""
        tags = details.get("RepoTags") or []
        reference = tags[0] if tags else image
        if ":" in reference.rsplit("/", 1)[-1]:
            repository, _, tag = reference.rpartition(":")
        rows.append({"ContainerName": container_name_of(container), "Repository": repository,
                     "Tag": tag, "ID": details.get("Id") or container.get("ImageID") or "",
                     "Size": int(details.get("Size") or 0),
                     "Created": details.get("Created") or ""})
    if options.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
                ctx.stdout.write(f"{row['ID']}\n")
        return 0
    if options.format == "json":
        ctx.stdout.write(json.dumps(rows, separators=(",", ":")) + "\n")
        return 0
    lines = ["CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE"]
    for row in rows:
        lines.append("\t".join((str(row["ContainerName"]), str(row["Repository"]),
                                str(row["Tag"]), formatting.truncate_id(str(row["ID"])),
                                formatting.human_size(float(row["Size"])))))
    ctx.stdout.write(formatting.tabwrite("\n".join(lines) + "\n"))
    return 0


# --------------------------------------------------------------------------- config / version


def run_config(ctx: Context, options: Any, services: list[str]) -> int:
    if options.no_interpolate:
        raise ContextError("--no-interpolate is not supported by flotta compose")
    project = ctx.load(services, quiet=options.quiet)
    _check(project, services)
    if services:
        from .reconcile import scope

        keep = set(scope(project, services))
        from attrs import evolve

        project = evolve(project, services={name: service for name, service in
                                            project.services.items() if name in keep})
    lines: list[str] | None = None
    if options.services:
        lines = sorted(project.services)
    elif options.volumes:
        lines = sorted(project.volumes)
    elif options.networks:
        lines = sorted(project.networks)
    elif options.profiles:
        lines = sorted({profile for service in {**project.services,
                                                **project.disabled_services}.values()
                        for profile in service.profiles})
    elif options.images:
        lines = [compose_labels.image_name(project, project.services[name])
                 for name in sorted(project.services)]
    elif options.hash:
        wanted = sorted(project.services) if options.hash == "*" else options.hash.split(",")
        lines = []
        for service in wanted:
            if service not in project.services:
                raise ContextError(f"no such service: {service}")
            lines.append(f"{service} {config_hash(project.services[service])}")
    if options.quiet:
        return 0
    if lines is not None:
        text = "".join(line + "\n" for line in lines)
    elif options.format == "json":
        text = json.dumps(to_dict(project), indent=2, ensure_ascii=False) + "\n"
    elif options.format in ("", "yaml"):
        text = config_yaml(project)
    else:
        raise ContextError(f"unsupported format {options.format!r}")
    if options.output:
        with open(options.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        return 0
    ctx.stdout.write(text)
    return 0


def run_version(ctx: Context, options: Any, args: list[str]) -> int:
    if options.short:
        ctx.stdout.write(COMPOSE_VERSION + "\n")
    elif options.format == "json":
        ctx.stdout.write(json.dumps({"version": "v" + COMPOSE_VERSION,
                                     "flotta": FLOTTA_VERSION}) + "\n")
    else:
        ctx.stdout.write(f"Docker Compose version v{COMPOSE_VERSION} "
                         f"(flotta compose {FLOTTA_VERSION})\n")
    return 0

