"""Commands that run things or move images: exec, run, build, pull, push."""

from __future__ import annotations

import os
import secrets
import shlex
import threading
from typing import Any

import attrs

from actors.client import api
from actors.client.streams import AttachSession, RawTerminal

from . import createbody, reconcile
from . import labels as compose_labels
from .commands import _starts, check_services, converge, images_helper
from .context import Context, ContextError
from .executor import Executor, file_archive, live_container
from .images import ImageError
from .model import Port, Project, Service, ServiceVolume, converter
from .syntax import SyntaxProblem, parse_port_spec, parse_volume_spec


class _Flags(dict):
    """Flag values for `converge` when a command has no such flags itself."""

    given: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


def _binary(stream: Any) -> Any:
    return getattr(stream, "buffer", stream)


def _pump(ctx: Context, stream: api.HijackedStream, tty: bool, interactive: bool) -> None:
    stdin_fd = None
    if interactive:
        try:
            stdin_fd = ctx.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            stdin_fd = None
    session = AttachSession(stream, tty, stdin_fd, _binary(ctx.stdout), _binary(ctx.stderr),
                            detach_keys=None)
    ctx.stdout.flush()
    if tty and stdin_fd is not None and ctx.stdin_is_tty():
        with RawTerminal(stdin_fd):
            session.run()
    else:
        session.run()


def _environment(values: list[str], environ: Any) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for value in values:
        key, equals, text = value.partition("=")
        result[key] = text if equals else environ.get(key)
    return result


# --------------------------------------------------------------------------- exec


def run_exec(ctx: Context, options: Any, args: list[str]) -> int:
    service, command = args[0], args[1:]
    project, name = ctx.project_or_name([service])
    if project is not None:
        check_services(project, [service])
    containers = ctx.engine.containers(name, all=False, oneoff=False, services=[service])
    if options.index:
        containers = [c for c in containers if (c.get("Labels") or {}).get(
            compose_labels.CONTAINER_NUMBER) == str(options.index)]
        if not containers:
            raise ContextError(f'service "{service}" is not running container #{options.index}')
    if not containers:
        raise ContextError(f'service "{service}" is not running')
    containers.sort(key=lambda c: int((c.get("Labels") or {}).get(
        compose_labels.CONTAINER_NUMBER, "0") or 0))
    target = containers[0]
    tty = not options.no_tty and ctx.stdin_is_tty() and ctx.stdout_is_tty()
    interactive = not options.detach and options.interactive
    body = {
        "User": options.user or "",
        "Privileged": bool(options.privileged),
        "Tty": tty,
        "AttachStdin": interactive,
        "AttachStdout": not options.detach,
        "AttachStderr": not options.detach,
        "DetachKeys": "",
        "Env": [key if value is None else f"{key}={value}" for key, value in
                _environment(options.env, ctx.environ).items()] or None,
        "WorkingDir": options.workdir or "",
        "Cmd": command,
    }
    exec_id = ctx.engine.exec_create(target["Id"], body)
    if options.detach:
        ctx.engine.exec_start(exec_id, detach=True, tty=tty)
        return 0
    stream = ctx.engine.exec_start(exec_id, detach=False, tty=tty)
    assert stream is not None
    _pump(ctx, stream, tty, interactive)
    code = ctx.engine.exec_inspect(exec_id).get("ExitCode")
    return int(code or 0)


# --------------------------------------------------------------------------- run


def _run_service(ctx: Context, project: Project, service: Service, options: Any,
                 command: list[str]) -> Service:
    """The service as `run` runs it: command, entrypoint, env, ports, volumes changed."""
    changes: dict[str, Any] = {"restart": None, "scale": 1}
    if service.deploy is not None and service.deploy.restart_policy is not None:
        changes["deploy"] = attrs.evolve(service.deploy, restart_policy=None)
    if command:
        changes["command"] = tuple(command)
    if options.entrypoint:
        changes["entrypoint"] = tuple(shlex.split(options.entrypoint))
    if options.env:
        changes["environment"] = {**service.environment,
                                  **_environment(options.env, ctx.environ)}
    if options.label:
        changes["labels"] = {**service.labels, **dict(
            value.partition("=")[::2] for value in options.label)}
    if options.workdir:
        changes["working_dir"] = options.workdir
    if options.user:
        changes["user"] = options.user
    ports: list[Port] = list(service.ports) if options.service_ports else []
    try:
        for spec in options.publish or []:
            ports += [converter.structure(entry, Port) for entry in parse_port_spec(spec)]
        volumes = list(service.volumes)
        for spec in options.volume or []:
            entry, unknown = parse_volume_spec(spec)
            if unknown:
                raise ContextError(f"invalid volume {spec!r}: unknown option {unknown[0]!r}")
            if entry["type"] == "bind":
                entry["source"] = os.path.normpath(os.path.join(
                    project.working_dir, os.path.expanduser(entry["source"])))
            volumes.append(converter.structure(entry, ServiceVolume))
    except SyntaxProblem as error:
        raise ContextError(str(error)) from None
    changes["ports"] = tuple(ports)
    changes["volumes"] = tuple(volumes)
    interactive = not options.detach and options.interactive
    changes["stdin_open"] = interactive
    changes["tty"] = not options.no_tty and ctx.stdin_is_tty() and ctx.stdout_is_tty()
    changes["container_name"] = None
    return attrs.evolve(service, **changes)


def run_run(ctx: Context, options: Any, args: list[str]) -> int:
    service_name, command = args[0], args[1:]
    if options.detach and options.rm:
        raise ContextError("--rm and --detach are incompatible")  # as `docker run` says
    project = ctx.load([service_name])
    check_services(project, [service_name])
    if not options.no_deps:
        dependencies = [name for name in reconcile.scope(project, [service_name])
                        if name != service_name]
        if dependencies:
            progress = ctx.progress()
            try:
                flags = _Flags(build=options.build, quiet_pull=options.quiet_pull,
                               pull=options.pull or None)
                executor, the_plan = converge(ctx, project, dependencies, flags, start=True,
                                              progress=progress)
                executor.apply(_starts(the_plan))
            finally:
                progress.close()
    service = _run_service(ctx, project, project.services[service_name], options, command)
    project = attrs.evolve(project, services={**project.services, service_name: service})
    progress = ctx.progress(quiet=bool(options.quiet_pull))
    try:
        digests = images_helper(ctx, progress).ensure(
            project, [service_name], build=bool(options.build), pull_policy=options.pull or None)
    finally:
        progress.close()
    observed = ctx.engine.observe(project.name)
    executor = Executor(ctx.engine, project, progress)
    for container in observed.containers:
        if not container.oneoff and container.service in project.services:
            executor.remember(container.service, live_container(container))
    slug = secrets.token_hex(32)
    name = options.name or compose_labels.oneoff_container_name(project, service, slug)
    interactive = bool(service.stdin_open)
    try:
        request = createbody.create_request(
            project, service, name=name, number=None, references=executor.references(),
            api_version=ctx.engine.api_version, oneoff=True, slug=slug,
            image_digest=digests.get(service_name), use_network_aliases=options.use_aliases,
            auto_remove=bool(options.rm), attach_stdin=interactive)
    except createbody.CreateError as error:
        raise ContextError(str(error)) from None
    container_id, warnings = ctx.engine.create(request.query, request.body)
    for warning in warnings:
        ctx.stderr.write(f"WARNING: {warning}\n")
    for network, endpoint in request.connect_after:
        ctx.engine.connect(network, container_id, endpoint)
    for file in request.injected_files:
        ctx.engine.put_archive(container_id, "/", file_archive(file))
    if options.detach:
        ctx.engine.start(container_id)
        ctx.stdout.write(container_id + "\n")
        return 0
    return _run_attached(ctx, container_id, service.tty, interactive, bool(options.rm))


def _run_attached(ctx: Context, container_id: str, tty: bool, interactive: bool,
                  auto_remove: bool) -> int:
    """Attach, wait (registered before start, as `docker run` does), start, pump."""
    engine = ctx.engine
    stream = engine.client.hijack(f"/containers/{container_id}/attach", {
        "stream": "1", "stdout": "1", "stderr": "1", "stdin": "1" if interactive else None})
    waiter = engine.client.request("POST", f"/containers/{container_id}/wait",
                                   {"condition": "removed" if auto_remove else "next-exit"})
    result: dict[str, Any] = {}

    def collect() -> None:
        try:
            result["answer"] = waiter.json() or {}
        except api.ClientError as error:
            result["error"] = error

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    try:
        engine.start(container_id)
    except api.ClientError:
        stream.close()
        waiter.close()
        raise
    _pump(ctx, stream, tty, interactive)
    while thread.is_alive():
        thread.join(0.2)
    if "error" in result:
        raise result["error"]
    answer = result.get("answer") or {}
    error = answer.get("Error") or {}
    if error.get("Message"):
        ctx.stderr.write(f"{error['Message']}\n")
    return int(answer.get("StatusCode") or 0)


# --------------------------------------------------------------------------- build / pull / push


def run_build(ctx: Context, options: Any, services: list[str]) -> int:
    project = ctx.load(services)
    check_services(project, services)
    names = services or sorted(project.services)
    progress = ctx.progress(title="Building")
    build_args = dict(value.partition("=")[::2] for value in options.build_arg or [])
    try:
        helper = images_helper(ctx, progress)
        for name in names:
            service = project.services[name]
            if service.build is None:
                continue
            helper.build(project, service, no_cache=options.no_cache, pull=options.pull,
                         build_args=build_args, quiet=options.quiet)
    finally:
        progress.close()
    return 0


def run_pull(ctx: Context, options: Any, services: list[str]) -> int:
    project = ctx.load(services)
    check_services(project, services)
    names = reconcile.scope(project, services, no_deps=not options.include_deps) \
        if services else sorted(project.services)
    progress = ctx.progress(title="Pulling", quiet=options.quiet)
    failures: list[str] = []
    try:
        helper = images_helper(ctx, progress)
        for name in names:
            service = project.services[name]
            if not service.image:
                progress.event(name, "done", "Skipped - No image to be pulled")
                continue
            if options.policy == "missing" and ctx.engine.image(service.image) is not None:
                progress.event(name, "done", "Skipped - Image is already present locally")
                continue
            try:
                helper.pull(service, service.image)
            except ImageError as error:
                if service.build is not None or options.ignore_pull_failures:
                    ctx.warn(f"{name}: {error}")
                    continue
                failures.append(str(error))
    finally:
        progress.close()
    if failures:
        raise ContextError(failures[0])
    return 0


def run_push(ctx: Context, options: Any, services: list[str]) -> int:
    project = ctx.load(services)
    check_services(project, services)
    names = services or sorted(project.services)
    progress = ctx.progress(title="Pushing", quiet=options.quiet)
    try:
        helper = images_helper(ctx, progress)
        for name in names:
            service = project.services[name]
            if service.build is None or not service.image:
                progress.event(name, "done", "Skipped")
                continue
            for image in (service.image, *service.build.tags):
                try:
                    helper.push(service, image)
                except ImageError as error:
                    if not options.ignore_push_failures:
                        raise
                    ctx.warn(f"{name}: {error}")
    finally:
        progress.close()
    return 0

