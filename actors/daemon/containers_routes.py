"""Container endpoints of the Engine API: create, list, inspect, lifecycle, wait, attach,
logs, resize, top, stats, export, changes, rename, update, prune, commit.

Handlers ask the containers actor (actors/supervisor/actor.py) and shape its answers as
the API does; the byte streams (attach, logs, export) are pumped here, from the paths the
actor hands out, so the actor never carries container output. See docker-api.md §2.1 for
the docker CLI's `run` sequence these must serve: create -> attach (hijacked, before
start) -> wait (headers flushed at once) -> start -> resize.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors.daemon.api import (
    ApiError,
    Router,
    api_version_at_least,
    query_bool,
    query_filters,
    query_int,
    read_json_object,
)
from actors.daemon.events import Event, publish
from actors.daemon.system import parse_timestamp
from actors.supervisor import attach as attach_module
from actors.supervisor import logs as logs_module
from actors.supervisor import streams
from actors.supervisor.messages import (
    CommitContainer,
    ContainerChanges,
    CreateContainer,
    GetLogSource,
    InspectContainer,
    KillContainer,
    LeaseFilesystem,
    ListContainers,
    PauseContainer,
    PrepareAttach,
    PruneContainers,
    ReleaseFilesystem,
    RemoveContainer,
    RenameContainer,
    ResizeContainer,
    RestartContainer,
    StartContainer,
    StatsSample,
    StopContainer,
    TopContainer,
    UnpauseContainer,
    UpdateContainer,
    WaitContainer,
    WaitRegistered,
    WaitResult,
)
from runtime.errors import RemoteError
from runtime.httpserver import HijackedStream, Request, Response, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

LONG_ASK_SECONDS = 3600.0
STATS_INTERVAL_SECONDS = 1.0
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
EXPORT_CHUNK_BYTES = 256 * 1024
CONTAINER = r"(?P<ref>[^/]+)"


def _frame(tty: bool, stream: int, data: bytes) -> bytes:
    return data if tty else streams.frame(stream, data)


async def _send_quietly(connection: HijackedStream, data: bytes) -> bool:
    try:
        await connection.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return False
    return True


def _timeout_query(request: Request) -> int | None:
    return query_int(request, "t", None)


def build_router(context: DaemonContext) -> Router:
    router = Router()
    containers = context.containers
    assert containers is not None

    async def ask(message: Any, timeout: float = LONG_ASK_SECONDS) -> Any:
        return await containers.ask(message, timeout=timeout)

    # --- create, list, inspect ----------------------------------------------------------------

    @router.route("POST", "/containers/create")
    async def create(request: Request) -> Response:
        body = await read_json_object(request, allow_empty=False)
        platform = request.query.get("platform") or ""
        if platform and not platform.startswith("linux"):
            raise ApiError(400, f'"{platform}" is not a supported platform: this daemon runs linux containers')
        result = await ask(CreateContainer(request.query.get("name") or "", body), timeout=600)
        return json_response({"Id": result.container_id, "Warnings": list(result.warnings)}, 201)

    @router.route("GET", "/containers/json")
    async def list_containers(request: Request) -> Response:
        filters = query_filters(request)
        for key in ("before", "since"):
            value = request.query.get(key)
            if value:
                filters.setdefault(key, []).append(value)
        limit = query_int(request, "limit", -1)
        result = await ask(
            ListContainers(query_bool(request, "all"), limit if limit is not None else -1,
                           query_bool(request, "size"), filters),
            timeout=600,
        )  # fmt: skip
        return json_response(result.body)

    @router.route("GET", f"/containers/{CONTAINER}/json")
    async def inspect(request: Request, ref: str) -> Response:
        result = await ask(InspectContainer(ref, query_bool(request, "size")), timeout=600)
        return json_response(result.body)

    # --- lifecycle ----------------------------------------------------------------------------------

    @router.route("POST", f"/containers/{CONTAINER}/start")
    async def start(request: Request, ref: str) -> Response:
        await ask(StartContainer(ref), timeout=600)
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/stop")
    async def stop(request: Request, ref: str) -> Response:
        await ask(StopContainer(ref, _timeout_query(request), request.query.get("signal") or ""))
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/restart")
    async def restart(request: Request, ref: str) -> Response:
        await ask(RestartContainer(ref, _timeout_query(request), request.query.get("signal") or ""))
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/kill")
    async def kill(request: Request, ref: str) -> Response:
        await ask(KillContainer(ref, request.query.get("signal") or "SIGKILL"), timeout=120)
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/pause")
    async def pause(request: Request, ref: str) -> Response:
        await ask(PauseContainer(ref), timeout=120)
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/unpause")
    async def unpause(request: Request, ref: str) -> Response:
        await ask(UnpauseContainer(ref), timeout=120)
        return Response(204)

    @router.route("DELETE", f"/containers/{CONTAINER}")
    async def remove(request: Request, ref: str) -> Response:
        if query_bool(request, "link"):
            raise ApiError(400, "legacy links are not supported")
        await ask(RemoveContainer(ref, query_bool(request, "force"), query_bool(request, "v")))
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/rename")
    async def rename(request: Request, ref: str) -> Response:
        await ask(RenameContainer(ref, request.query.get("name") or ""), timeout=60)
        return Response(204)

    @router.route("POST", f"/containers/{CONTAINER}/update")
    async def update(request: Request, ref: str) -> Response:
        body = await read_json_object(request)
        result = await ask(UpdateContainer(ref, body), timeout=120)
        return json_response(result.body)

    @router.route("POST", "/containers/prune")
    async def prune(request: Request) -> Response:
        result = await ask(PruneContainers(query_filters(request)))
        return json_response(result.body)

    @router.route("POST", f"/containers/{CONTAINER}/wait")
    async def wait(request: Request, ref: str) -> None:
        condition = request.query.get("condition") or "not-running"
        if condition not in WAIT_CONDITIONS:
            raise ApiError(400, f'invalid condition: "{condition}"')
        async with context.node.open_inbox(capacity=4, prefix="container-wait") as inbox:
            registered = await ask(WaitContainer(ref, condition, inbox.ref), timeout=60)
            stream = await request.start_stream()
            if isinstance(registered, WaitRegistered):
                result: WaitResult = await inbox.receive()
            else:
                result = registered
            error = {"Message": result.error} if result.error else None
            await stream.send_json({"StatusCode": result.status_code, "Error": error})
        return None

    # --- stdio ------------------------------------------------------------------------------------

    @router.route("POST", f"/containers/{CONTAINER}/attach")
    async def attach(request: Request, ref: str) -> None:
        detach_keys = streams.parse_detach_keys(request.query.get("detachKeys") or "")
        want_stream = query_bool(request, "stream")
        want_logs = query_bool(request, "logs")
        want_stdin = query_bool(request, "stdin")
        wanted = {streams.STDOUT: query_bool(request, "stdout"), streams.STDERR: query_bool(request, "stderr")}
        target = await ask(PrepareAttach(ref, want_stream), timeout=600)
        media_type = streams.content_type(target.tty, api_version_at_least(request, "1.42"))
        connection = await request.hijack(media_type)
        publish(context.events, Event("container", "attach", target.container_id, dict(target.event_attributes), time_nano=_now()))
        try:
            if want_logs:
                async for entry in logs_module.read_logs(target.log_path):
                    if wanted.get(entry.stream) and not await _send_quietly(
                        connection, _frame(target.tty, entry.stream, entry.data)
                    ):
                        return
            if want_stream:
                await _pump_attach(context, target, connection, wanted, want_stdin, detach_keys)
        finally:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await connection.aclose()

    @router.route("POST", f"/containers/{CONTAINER}/resize")
    async def resize(request: Request, ref: str) -> Response:
        height = query_int(request, "h", 0) or 0
        width = query_int(request, "w", 0) or 0
        await ask(ResizeContainer(ref, height, width), timeout=60)
        return Response(200, b"", (), "text/plain; charset=utf-8")

    @router.route("GET", f"/containers/{CONTAINER}/logs")
    async def logs(request: Request, ref: str) -> None:
        want = {streams.STDOUT: query_bool(request, "stdout"), streams.STDERR: query_bool(request, "stderr")}
        if not any(want.values()):
            raise ApiError(400, "Bad parameters: you must choose at least one stream")
        tail_text = (request.query.get("tail") or "all").strip()
        if tail_text == "all" or tail_text == "":
            tail = None
        else:
            try:
                tail = int(tail_text)
            except ValueError:
                raise ApiError(400, f"invalid value for tail: {tail_text!r}") from None
            if tail < 0:
                tail = None
        since = parse_timestamp(request.query.get("since"))
        until = parse_timestamp(request.query.get("until"))
        if since == 0:
            since = None
        source = await ask(GetLogSource(ref), timeout=60)
        follow = query_bool(request, "follow") and source.running
        media_type = streams.content_type(source.tty, api_version_at_least(request, "1.42"))
        stream = await request.start_stream(content_type=media_type)
        ended = [False]

        def finished() -> bool:
            return ended[0] or os.path.exists(source.exit_path)

        async with trio.open_nursery() as nursery:
            if follow:
                nursery.start_soon(_watch_run_end, context, source.container_id, ended)
            entries = logs_module.read_logs(
                source.log_path, follow=follow, tail=tail, since_ns=since, until_ns=until,
                timestamps=query_bool(request, "timestamps"), finished=finished,
            )  # fmt: skip
            async with contextlib.aclosing(entries):  # type: ignore[type-var]
                async for entry in entries:
                    if want.get(entry.stream):
                        await stream.send(_frame(source.tty, entry.stream, entry.data))
            nursery.cancel_scope.cancel()

    # --- inspection of the running container -------------------------------------------------

    @router.route("GET", f"/containers/{CONTAINER}/top")
    async def top(request: Request, ref: str) -> Response:
        result = await ask(TopContainer(ref, request.query.get("ps_args") or ""), timeout=60)
        return json_response(result.body)

    @router.route("GET", f"/containers/{CONTAINER}/stats")
    async def stats(request: Request, ref: str) -> Response | None:
        stream_mode = query_bool(request, "stream", default=True)
        one_shot = query_bool(request, "one-shot")
        first = (await ask(StatsSample(ref), timeout=60)).body
        if not stream_mode:
            if one_shot or not first.get("memory_stats"):
                return json_response(first)
            await trio.sleep(STATS_INTERVAL_SECONDS)
            second = (await ask(StatsSample(ref), timeout=60)).body
            _with_previous(second, first)
            return json_response(second)
        stream = await request.start_stream()
        previous = None
        sample = first
        while True:
            if previous is not None:
                _with_previous(sample, previous)
            await stream.send_json(sample)
            previous = sample
            await trio.sleep(STATS_INTERVAL_SECONDS)
            sample = (await ask(StatsSample(ref), timeout=60)).body

    @router.route("GET", f"/containers/{CONTAINER}/changes")
    async def changes(request: Request, ref: str) -> Response:
        result = await ask(ContainerChanges(ref), timeout=600)
        return json_response(result.body or None)

    @router.route("GET", f"/containers/{CONTAINER}/export")
    async def export(request: Request, ref: str) -> None:
        lease = await ask(LeaseFilesystem(ref, False), timeout=120)
        try:
            entries = sorted(os.listdir(lease.root))
            process = await trio.lowlevel.open_process(
                ["tar", "--numeric-owner", "--xattrs", "-C", lease.root, "-cf", "-", "--", *entries],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                stream = await request.start_stream(content_type="application/x-tar")
                assert process.stdout is not None
                while True:
                    chunk = await process.stdout.receive_some(EXPORT_CHUNK_BYTES)
                    if not chunk:
                        break
                    await stream.send(bytes(chunk))
                await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    with trio.CancelScope(shield=True):
                        await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                await ask(ReleaseFilesystem(lease.lease_id), timeout=120)

    # --- commit ---------------------------------------------------------------------------------

    @router.route("POST", "/commit")
    async def commit(request: Request) -> Response:
        reference = request.query.get("container") or ""
        if not reference:
            raise ApiError(400, "container is required")
        repository = request.query.get("repo") or ""
        tag = request.query.get("tag") or ""
        if tag and not repository:
            raise ApiError(400, "tag cannot be specified without a repository")
        if repository:
            from actors.images.reference import InvalidReference, parse_repository_tag

            try:
                parse_repository_tag(repository, tag)
            except InvalidReference as error:
                raise ApiError(400, str(error)) from None
        body = await read_json_object(request)
        changes_list = [line for value in request.query.get_all("changes") for line in value.split("\n") if line.strip()]
        result = await ask(
            CommitContainer(
                reference, repository, tag, request.query.get("comment") or "",
                request.query.get("author") or "", query_bool(request, "pause", default=True),
                changes_list, body,
            ),
        )  # fmt: skip
        return json_response({"Id": result.image_id}, 201)

    return router


def _now() -> int:
    import time

    return time.time_ns()


def _with_previous(sample: dict[str, Any], previous: dict[str, Any]) -> None:
    sample["precpu_stats"] = previous.get("cpu_stats") or {}
    sample["preread"] = previous.get("read") or sample.get("preread")


async def _watch_run_end(context: DaemonContext, container_id: str, ended: list[bool]) -> None:
    assert context.containers is not None
    with contextlib.suppress(RemoteError):
        await context.containers.ask(WaitContainer(container_id, "not-running"), timeout=math.inf)
    ended[0] = True


async def _pump_attach(
    context: DaemonContext,
    target: Any,
    connection: HijackedStream,
    wanted: dict[int, bool],
    want_stdin: bool,
    detach_keys: bytes,
) -> None:
    """Copy the container's output to the client and the client's input to the container
    until the output ends, the client detaches (TTY detach keys) or goes away."""
    attached: attach_module.AttachStream | None = None
    if target.socket_path:
        try:
            attached = await attach_module.connect(Path(target.socket_path))
        except attach_module.AttachError:
            attached = None
    if attached is None:
        if target.status in ("created", "exited") and context.containers is not None:
            # Nothing runs yet (its start failed to prepare): stay until that run ends.
            with contextlib.suppress(RemoteError):
                await context.containers.ask(WaitContainer(target.container_id, "run-ended"), timeout=math.inf)
        return
    forward_stdin = want_stdin and target.open_stdin
    detector = streams.DetachDetector(detach_keys) if target.tty and forward_stdin else None
    async with attached, trio.open_nursery() as nursery:

        async def output() -> None:
            while True:
                item = await attached.receive()
                if item is None:
                    break
                which, data = item
                if wanted.get(int(which)) and not await _send_quietly(
                    connection, _frame(target.tty, int(which), data)
                ):
                    break
            nursery.cancel_scope.cancel()

        async def client_input() -> None:
            while True:
                try:
                    data = await connection.receive_some(64 * 1024)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    nursery.cancel_scope.cancel()
                    return
                if not data:
                    break
                if not forward_stdin:
                    continue
                detached = False
                if detector is not None:
                    data, detached = detector.feed(bytes(data))
                try:
                    if data:
                        await attached.send_stdin(bytes(data))
                except (OSError, attach_module.AttachError):
                    return  # the container's input is gone; output may still be draining
                if detached:
                    publish(context.events, Event("container", "detach", target.container_id, dict(target.event_attributes), time_nano=_now()))
                    nursery.cancel_scope.cancel()
                    return
            if forward_stdin:
                held = detector.flush() if detector is not None else b""
                with contextlib.suppress(OSError, attach_module.AttachError):
                    if held:
                        await attached.send_stdin(held)
                    await attached.close_stdin()

        nursery.start_soon(output)
        nursery.start_soon(client_input)

