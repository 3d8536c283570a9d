"""The lifecycle commands: up, create, down, start, stop, restart, kill, rm, pause, unpause.

Each `run_*` takes the command context, the parsed flags and the positional arguments,
and returns the exit code. Failures are raised (ContextError, PlanError, ExecutionError,
ImageError, api.ClientError, ComposeError) and printed by cli.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import attrs

from actors.client import api

from . import labels as compose_labels
from . import reconcile
from .attach import Attached, Foreground
from .context import Context, ContextError
from .engine import container_name_of, is_not_found
from .executor import ExecutionError, Executor, container_event, live_container
from .graph import dependents_of, order
from .images import Images
from .logs import LogPrinter, display_name
from .model import Project
from .progress import DONE, ERROR, WARNING, WORKING, Progress, QuietProgress


def parse_scale(values: Iterable[str]) -> dict[str, int]:
    result = {}
    for value in values:
        name, equals, count = value.partition("=")
        if not equals or not count.strip().isdigit():
            raise ContextError(f"invalid scale specifier: {value}")
        result[name] = int(count)
    return result


def with_scale(project: Project, scale: dict[str, int]) -> Project:
    services = dict(project.services)
    for name, count in scale.items():
        if name not in services:
            raise ContextError(f"no such service: {name}")
        services[name] = attrs.evolve(services[name], scale=count)
    return attrs.evolve(project, services=services)


def check_services(project: Project, services: Iterable[str]) -> None:
    for name in services:
        if name not in project.services:
            raise ContextError(f"no such service: {name}")


def images_helper(ctx: Context, progress: Progress) -> Images:
    return Images(ctx.engine, progress, config_directory=ctx.config_directory(),
                  build_output=ctx.stdout)


def _timeout(options: Any) -> int | None:
    return options.timeout if "timeout" in options.given else None


# --------------------------------------------------------------------------- up / create


def converge(ctx: Context, project: Project, services: list[str], options: Any, *,
             start: bool, progress: Progress, start_progress: Progress | None = None,
             recreate: str = reconcile.RECREATE_DIVERGED,
             ) -> tuple[Executor, reconcile.Plan]:
    """Get images, plan and apply everything but starting; return the executor and plan."""
    no_deps = bool(options.get("no_deps"))
    try:
        in_scope = reconcile.scope(project, services, no_deps)
    except KeyError as error:
        raise ContextError(f"no such service: {error.args[0]}") from None
    pull_policy = options.get("pull") or None
    if pull_policy == "missing":
        pull_policy = None
    digests = images_helper(ctx, progress).ensure(
        project, in_scope, build=bool(options.get("build")),
        no_build=bool(options.get("no_build")), pull_policy=pull_policy,
        quiet_pull=bool(options.get("quiet_pull")))
    observed = ctx.engine.observe(project.name, digests)
    policy = recreate
    if options.get("force_recreate"):
        policy = reconcile.RECREATE_FORCE
    if options.get("no_recreate"):
        policy = reconcile.RECREATE_NEVER
    dependencies_policy = reconcile.RECREATE_DIVERGED
    if options.get("always_recreate_deps"):
        dependencies_policy = reconcile.RECREATE_FORCE
    if options.get("no_recreate"):
        dependencies_policy = reconcile.RECREATE_NEVER
    the_plan = reconcile.plan(project, observed, reconcile.UpOptions(
        services=tuple(services), recreate=policy, recreate_dependencies=dependencies_policy,
        no_deps=no_deps, remove_orphans=bool(options.get("remove_orphans")) or _truthy(
            ctx.environ.get("COMPOSE_REMOVE_ORPHANS")),
        ignore_orphans=_truthy(ctx.environ.get("COMPOSE_IGNORE_ORPHANS")), start=start))
    for warning in the_plan.warnings:
        ctx.warn(warning)
    executor = Executor(ctx.engine, project, progress, image_digests=digests,
                        timeout_seconds=_timeout(options), start_progress=start_progress)
    converging = attrs.evolve(the_plan, actions=tuple(
        action for action in the_plan.actions
        if not isinstance(action, reconcile.StartService)))
    executor.apply(converging, observed.containers)
    return executor, the_plan


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "y")


def run_up(ctx: Context, options: Any, services: list[str]) -> int:
    detach = bool(options.detach or options.wait)
    if detach and (options.abort_on_container_exit or options.exit_code_from):
        flag = "--abort-on-container-exit" if options.abort_on_container_exit \
            else "--exit-code-from"
        raise ContextError(f"{flag} and --detach are incompatible")
    if options.no_start and (options.wait or options.abort_on_container_exit):
        raise ContextError("--no-start and --wait/--abort-on-container-exit are incompatible")
    if options.force_recreate and options.no_recreate:
        raise ContextError("--force-recreate and --no-recreate are incompatible")
    if options.build and options.no_build:
        raise ContextError("--build and --no-build are incompatible")
    project = ctx.load(services)
    check_services(project, services)
    project = with_scale(project, parse_scale(options.scale))
    if options.exit_code_from and options.exit_code_from not in project.services:
        raise ContextError(f"no such service: {options.exit_code_from}")
    foreground = not detach and not options.no_start
    progress = ctx.progress()
    start_progress = QuietProgress(ctx.info) if foreground else None
    try:
        executor, the_plan = converge(ctx, project, services, options, start=True,
                                      progress=progress, start_progress=start_progress)
        if not foreground:
            if not options.no_start:
                executor.apply(_starts(the_plan))
                if options.wait:
                    executor.wait_running_or_healthy(
                        [name for name in the_plan.services
                         if project.services[name].replicas > 0],
                        options.wait_timeout or None)
            return 0
    finally:
        progress.close()
    for warning in executor.warnings:
        ctx.warn(warning)
    return _foreground(ctx, project, executor, the_plan, services, options)


def _starts(the_plan: reconcile.Plan) -> reconcile.Plan:
    return attrs.evolve(the_plan, actions=tuple(the_plan.of(reconcile.StartService)))


def _foreground(ctx: Context, project: Project, executor: Executor,
                the_plan: reconcile.Plan, services: list[str], options: Any) -> int:
    attach_to = set(options.attach or ()) or set(services) or set(project.services)
    if options.attach_dependencies:
        attach_to |= set(the_plan.services)
    attach_to -= set(options.no_attach or ())
    attach_to = {name for name in attach_to if project.services.get(name) is not None
                 and project.services[name].attach is not False}
    containers = [
        Attached(known.id, display_name(project.name, known.name), service,
                 project.services[service].tty)
        for service in the_plan.services if service in attach_to
        for known in executor.live.get(service, [])]
    printer = LogPrinter(ctx.stdout, ctx.stdout, color=ctx.color(options.no_color),
                         prefix=not options.no_log_prefix, timestamps=options.timestamps)
    stop_scope = list(reversed(the_plan.services))

    def stop_all() -> None:
        progress = ctx.progress(title="Stopping")
        try:
            for service in stop_scope:
                for known in executor.live.get(service, []):
                    executor.stop(known.id, known.name, _timeout(options), progress=progress)
        finally:
            progress.close()

    def kill_all() -> None:
        for service in stop_scope:
            for known in executor.live.get(service, []):
                try:
                    ctx.engine.kill(known.id)
                except api.ClientError:
                    pass

    session = Foreground(ctx.engine, printer, ctx.info, stop_all=stop_all, kill_all=kill_all,
                         cascade_stop=options.abort_on_container_exit,
                         exit_code_from=options.exit_code_from)
    ctx.stdout.write("Attaching to " + ", ".join(c.name for c in containers) + "\n")
    ctx.stdout.flush()
    session.attach(containers)
    try:
        executor.apply(_starts(the_plan))
    except ExecutionError:
        session.stopping.set()
        raise
    for warning in executor.warnings:
        ctx.warn(warning)
    return session.run()


def run_create(ctx: Context, options: Any, services: list[str]) -> int:
    if options.force_recreate and options.no_recreate:
        raise ContextError("--force-recreate and --no-recreate are incompatible")
    project = ctx.load(services)
    check_services(project, services)
    project = with_scale(project, parse_scale(options.scale))
    progress = ctx.progress()
    try:
        converge(ctx, project, services, options, start=False, progress=progress)
    finally:
        progress.close()
    return 0


# --------------------------------------------------------------------------- down


def _by_service(containers: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for summary in containers:
        service = (summary.get("Labels") or {}).get(compose_labels.SERVICE, "")
        grouped.setdefault(service, []).append(summary)
    return grouped


def _shutdown_order(project: Project | None, services: Iterable[str]) -> list[str]:
    names = set(services)
    if project is None:
        return sorted(names)
    known = {**project.disabled_services, **project.services}
    graph = {name: sorted(set(known[name].depends_on) & names) if name in known else []
             for name in names}
    return list(reversed(order(graph)))


def remove_containers(ctx: Context, executor: Executor, containers: list[dict[str, Any]],
                      *, volumes: bool = False) -> None:
    for summary in containers:
        executor.stop_and_remove(summary["Id"], container_name_of(summary), volumes=volumes)


def run_down(ctx: Context, options: Any, services: list[str]) -> int:
    project, name = ctx.project_or_name(services)
    if project is not None:
        check_services(project, services)
    if options.rmi and options.rmi not in ("local", "all"):
        raise ContextError(f"invalid value for --rmi: {options.rmi!r}")
    engine = ctx.engine
    progress = ctx.progress(title="Running")
    try:
        executor = Executor(engine, project or Project(name=name, working_dir=ctx.cwd),
                            progress, timeout_seconds=_timeout(options))
        # One-off containers go only with --remove-orphans, as in Docker Compose.
        containers = engine.containers(name, all=True,
                                       oneoff=None if options.remove_orphans else False)
        found_something = bool(containers)
        oneoffs = [c for c in containers
                   if (c.get("Labels") or {}).get(compose_labels.ONEOFF) == "True"]
        grouped = _by_service([c for c in containers if c not in oneoffs])
        known = (set(project.services) | set(project.disabled_services)) if project \
            else set(grouped)
        selected = set(services) or known
        for service in _shutdown_order(project, set(grouped) & selected):
            remove_containers(ctx, executor, grouped[service], volumes=options.volumes)
        if options.remove_orphans:
            orphans = oneoffs + [c for service, found in grouped.items() if service not in known
                                 for c in found]
            remove_containers(ctx, executor, orphans)
        found_something |= _remove_networks(ctx, project, name, progress)
        if options.volumes:
            found_something |= _remove_volumes(ctx, project, name, progress)
        if options.rmi:
            found_something |= _remove_images(ctx, project, name, options.rmi, containers,
                                              progress)
    finally:
        progress.close()
    if not found_something:
        ctx.stderr.write(f'Warning: No resource found to remove for project "{name}".\n')
    return 0


def _remove(progress: Progress, event: str, remove: Callable[[], Any]) -> None:
    """Remove one object with Docker Compose's events: in use and gone are warnings."""
    progress.event(event, WORKING, "Removing")
    try:
        remove()
    except api.APIError as error:
        if error.status == 409:
            progress.event(event, WARNING, "Resource is still in use")
            return
        if is_not_found(error):
            progress.event(event, DONE, "Warning: No resource found to remove")
            return
        progress.event(event, ERROR, "Error")
        raise
    progress.event(event, DONE, "Removed")


def _remove_networks(ctx: Context, project: Project | None, name: str,
                     progress: Progress) -> bool:
    networks = ctx.engine.project_networks(name)
    if project is not None:
        wanted = {key: network.name for key, network in project.networks.items()
                  if not network.external}
        networks = [n for n in networks
                    if (n.get("Labels") or {}).get(compose_labels.NETWORK) in wanted
                    and n.get("Name") in wanted.values()]
    for network in sorted(networks, key=lambda n: n.get("Name") or ""):
        event = f"Network {network.get('Name')}"
        try:
            details = ctx.engine.client.get_json(f"/networks/{network.get('Id')}")
        except api.APIError as error:
            if is_not_found(error):
                continue
            raise
        if details.get("Containers"):
            progress.event(event, WARNING, "Resource is still in use")
            continue
        target = network.get("Id") or network.get("Name") or ""
        _remove(progress, event, partial(ctx.engine.remove_network, target))
    return bool(networks)


def _remove_volumes(ctx: Context, project: Project | None, name: str,
                    progress: Progress) -> bool:
    from .engine import label_filters

    volumes = ctx.engine.volumes(label_filters(compose_labels.project_filter(name)))
    if project is not None:
        wanted = {key: volume.name for key, volume in project.volumes.items()
                  if not volume.external}
        volumes = [v for v in volumes
                   if (v.get("Labels") or {}).get(compose_labels.VOLUME) in wanted
                   and v.get("Name") in wanted.values()]
    for volume in sorted(volumes, key=lambda v: v.get("Name") or ""):
        _remove(progress, f"Volume {volume.get('Name')}",
                partial(ctx.engine.remove_volume, volume.get("Name") or "", force=True))
    return bool(volumes)


def _remove_images(ctx: Context, project: Project | None, name: str, mode: str,
                   containers: list[dict[str, Any]], progress: Progress) -> bool:
    images: list[str] = []
    if project is not None:
        for service in project.services.values():
            if mode == "all" or not service.image:
                image = compose_labels.image_name(project, service)
                if image not in images:
                    images.append(image)
    else:
        for summary in containers:
            image = summary.get("Image") or ""
            service = (summary.get("Labels") or {}).get(compose_labels.SERVICE, "")
            if image and image not in images and (
                    mode == "all" or image == f"{name}-{service}"):
                images.append(image)
    images = [image for image in images if ctx.engine.image(image) is not None]
    for image in images:
        _remove(progress, f"Image {image}", partial(ctx.engine.remove_image, image))
    return bool(images)


# --------------------------------------------------------------------------- start / stop


def _project_containers(ctx: Context, services: list[str], *, all: bool = True,
                        ) -> tuple[Project | None, str, list[dict[str, Any]]]:
    project, name = ctx.project_or_name(services)
    if project is not None:
        check_services(project, services)
    containers = ctx.engine.containers(name, all=all, oneoff=False, services=services)
    return project, name, containers


def run_start(ctx: Context, options: Any, services: list[str]) -> int:
    project = ctx.load(services)
    check_services(project, services)
    try:
        in_scope = reconcile.scope(project, services)
    except KeyError as error:
        raise ContextError(f"no such service: {error.args[0]}") from None
    observed = ctx.engine.observe(project.name)
    progress = ctx.progress(title="Starting")
    try:
        executor = Executor(ctx.engine, project, progress)
        for container in observed.containers:
            if not container.oneoff and container.service in project.services:
                executor.remember(container.service, live_container(container))
        for service in in_scope:
            if not executor.live.get(service) and project.services[service].replicas > 0:
                raise ExecutionError(f'service "{service}" has no container to start')
        start_plan = reconcile.plan(project, observed, reconcile.UpOptions(
            services=tuple(services), recreate=reconcile.RECREATE_NEVER,
            recreate_dependencies=reconcile.RECREATE_NEVER, ignore_orphans=True))
        executor.apply(_starts(start_plan))
        if options.wait:
            executor.wait_running_or_healthy(in_scope, options.wait_timeout or None)
    finally:
        progress.close()
    return 0


def _each(ctx: Context, services: list[str], title: str, working: str, done: str,
          act: Callable[[dict[str, Any]], None], *, running_only: bool = False,
          reverse: bool = True) -> int:
    project, _name, containers = _project_containers(ctx, services)
    if running_only:
        containers = [c for c in containers if c.get("State") == "running"]
    grouped = _by_service(containers)
    names = _shutdown_order(project, grouped)
    if not reverse:
        names.reverse()
    progress = ctx.progress(title=title)
    try:
        for service in names:
            for summary in grouped[service]:
                event = container_event(container_name_of(summary))
                progress.event(event, WORKING, working)
                try:
                    act(summary)
                except api.ClientError:
                    progress.event(event, ERROR, "Error")
                    raise
                progress.event(event, DONE, done)
    finally:
        progress.close()
    return 0


def run_stop(ctx: Context, options: Any, services: list[str]) -> int:
    timeout = _timeout(options)
    return _each(ctx, services, "Stopping", "Stopping", "Stopped",
                 lambda c: ctx.engine.stop(c["Id"], timeout), running_only=True)


def run_restart(ctx: Context, options: Any, services: list[str]) -> int:
    """Restart the services, dependencies first, and (unless --no-deps) what depends on
    them, so that dependents come back after what they need."""
    timeout = _timeout(options)
    if services and not options.no_deps:
        project, _name = ctx.project_or_name(services)
        if project is not None:
            check_services(project, services)
            wanted = set(services)
            for service in services:
                wanted |= dependents_of(project, service)
            services = sorted(wanted)
    return _each(ctx, services, "Restarting", "Restarting", "Started",
                 lambda c: ctx.engine.restart(c["Id"], timeout), reverse=False)


def run_pause(ctx: Context, options: Any, services: list[str]) -> int:
    return _each(ctx, services, "Pausing", "Pausing", "Paused",
                 lambda c: ctx.engine.pause(c["Id"]), running_only=True)


def run_unpause(ctx: Context, options: Any, services: list[str]) -> int:
    _project, _name, containers = _project_containers(ctx, services)
    paused = [c for c in containers if c.get("State") == "paused"]
    progress = ctx.progress(title="Unpausing")
    try:
        for summary in paused:
            event = container_event(container_name_of(summary))
            progress.event(event, WORKING, "Unpausing")
            ctx.engine.unpause(summary["Id"])
            progress.event(event, DONE, "Unpaused")
    finally:
        progress.close()
    return 0


def run_kill(ctx: Context, options: Any, services: list[str]) -> int:
    project, name, containers = _project_containers(ctx, services)
    running = [c for c in containers if c.get("State") == "running"]
    if options.remove_orphans and project is not None:
        known = set(project.services) | set(project.disabled_services)
        running += [c for c in ctx.engine.containers(name, all=False, oneoff=False)
                    if (c.get("Labels") or {}).get(compose_labels.SERVICE) not in known]
    if not running:
        ctx.info.write("no container to kill\n")
        return 0
    progress = ctx.progress(title="Killing")
    try:
        for summary in running:
            event = container_event(container_name_of(summary))
            progress.event(event, WORKING, "Killing")
            try:
                ctx.engine.kill(summary["Id"], options.signal or None)
            except api.ClientError:
                progress.event(event, ERROR, "Error")
                raise
            progress.event(event, DONE, "Killed")
    finally:
        progress.close()
    return 0


def run_rm(ctx: Context, options: Any, services: list[str]) -> int:
    project, name = ctx.project_or_name(services)
    if project is not None:
        check_services(project, services)
    if options.stop:
        _each(ctx, services, "Stopping", "Stopping", "Stopped",
              lambda c: ctx.engine.stop(c["Id"]), running_only=True)
    containers = ctx.engine.containers(name, all=True, services=services)
    stopped = [c for c in containers
               if c.get("State") in ("exited", "created", "dead")
               and not ((c.get("Labels") or {}).get(compose_labels.ONEOFF) == "True"
                        and not options.all)]
    if not stopped:
        ctx.info.write("No stopped containers\n")
        return 0
    names = [container_name_of(c) for c in stopped]
    if not options.force:
        ctx.stdout.write(f"Going to remove {', '.join(names)}\n")
        ctx.stdout.write("? Are you sure? (y/N) ")
        ctx.stdout.flush()
        answer = ctx.stdin.readline() if ctx.stdin is not None else ""
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    progress = ctx.progress(title="Removing")
    try:
        for summary in stopped:
            event = container_event(container_name_of(summary))
            progress.event(event, WORKING, "Removing")
            try:
                ctx.engine.remove(summary["Id"], volumes=options.volumes, force=True)
            except api.ClientError:
                progress.event(event, ERROR, "Error")
                raise
            progress.event(event, DONE, "Removed")
    finally:
        progress.close()
    return 0
