"""Exec endpoints: create, start (hijacked or detached), resize, inspect.

The exec's record (what to run, whether it runs, its exit code) lives in the containers
actor; the session itself (the runtime's `exec` process and its pipes or pty) lives here,
with the connection that pumps it (docker-api.md §2.5). A detached session (`exec -d`) is
waited on by a system task so its exit code is still recorded.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors.daemon.api import ApiError, Router, api_version_at_least, query_int, read_json_object
from actors.supervisor import execstart, streams
from actors.supervisor.errors import SpecError
from actors.supervisor.execs import ExecError, ExecSession, PtyStream
from actors.supervisor.messages import ClaimExec, CreateExec, ExecFinished, ExecStarted, InspectExec
from actors.supervisor.monitor import ContainerNotFound, ContainerStateError, Executor
from runtime.errors import ActorError
from runtime.httpserver import HijackedStream, Request, Response, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

log = logging.getLogger("flotta.daemon")
RECEIVE_BYTES = 64 * 1024


def build_router(context: DaemonContext) -> Router:
    router = Router()
    containers = context.containers
    assert containers is not None
    executor: Executor = context.extras["executor"]
    exec_root: Path = context.extras["exec_sessions_dir"]
    live: dict[str, ExecSession] = {}

    def report(message: Any) -> None:
        with contextlib.suppress(ActorError):
            containers.tell_nowait(message)

    @router.route("POST", "/containers/(?P<ref>[^/]+)/exec")
    async def create(request: Request, ref: str) -> Response:
        body = await read_json_object(request, allow_empty=False)
        result = await containers.ask(CreateExec(ref, body), timeout=60)
        return json_response({"Id": result.exec_id}, 201)

    @router.route("POST", "/exec/(?P<exec_id>[^/]+)/start")
    async def start(request: Request, exec_id: str) -> Response | None:
        body = await read_json_object(request)
        detach = bool(body.get("Detach"))
        launch = await containers.ask(ClaimExec(exec_id), timeout=60)
        height, width = launch.console_height, launch.console_width
        console = body.get("ConsoleSize")
        if isinstance(console, list) and len(console) == 2 and console[0] and console[1]:
            height, width = int(console[0]), int(console[1])
        try:
            session = await execstart.start(
                executor,
                exec_root,
                launch.container_id,
                launch.args,
                env=launch.env,
                cwd=launch.working_dir,
                user=launch.user,
                tty=launch.tty,
                stdin=launch.attach_stdin and not detach,
                console_height=height,
                console_width=width,
                detach=detach,
            )
        except (ContainerStateError, ContainerNotFound) as error:
            report(ExecFinished(exec_id, 126))
            raise ApiError(409, f"container {launch.container_id} is not running") from error
        except SpecError as error:
            report(ExecFinished(exec_id, 126))
            raise ApiError(400, str(error)) from None
        except (ExecError, OSError) as error:
            report(ExecFinished(exec_id, 126))
            raise ApiError(500, f"exec failed: {error}") from None
        live[exec_id] = session
        if detach:
            trio.lowlevel.spawn_system_task(_finish_detached, session, exec_id, report, live)
            return Response(200, b"", (), "application/json")
        media_type = streams.content_type(launch.tty, api_version_at_least(request, "1.42"))
        connection: HijackedStream | None = None
        try:
            connection = await request.hijack(media_type)
            await _pump_exec(session, connection, launch, exec_id, report)
        finally:
            with trio.CancelScope(shield=True):
                # The exit code is recorded before the client sees the end of the stream:
                # the docker CLI inspects the exec as soon as its stream ends.
                exit_code = await _exit_code(session)
                await session.aclose()
                live.pop(exec_id, None)
                report(ExecFinished(exec_id, exit_code))
                if connection is not None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        await connection.aclose()
        return None

    @router.route("POST", "/exec/(?P<exec_id>[^/]+)/resize")
    async def resize(request: Request, exec_id: str) -> Response:
        height = query_int(request, "h", 0) or 0
        width = query_int(request, "w", 0) or 0
        session = live.get(exec_id)
        if session is None:
            await containers.ask(InspectExec(exec_id), timeout=60)  # 404 for an unknown exec
            raise ApiError(409, f"exec {exec_id} is not running")
        if session.tty:
            try:
                session.resize(height, width)
            except ValueError as error:
                raise ApiError(400, str(error)) from None
            except OSError as error:
                raise ApiError(409, f"exec {exec_id}: {error.strerror}") from None
        return Response(200, b"", (), "text/plain; charset=utf-8")

    @router.route("GET", "/exec/(?P<exec_id>[^/]+)/json")
    async def inspect(request: Request, exec_id: str) -> Response:
        result = await containers.ask(InspectExec(exec_id), timeout=60)
        return json_response(result.body)

    return router


async def _exit_code(session: ExecSession) -> int:
    with trio.move_on_after(5):
        return await session.wait()
    await session.kill()
    return await session.wait()


async def _finish_detached(session: ExecSession, exec_id: str, report: Any, live: dict[str, ExecSession]) -> None:
    try:
        pid = await session.get_pid()
        report(ExecStarted(exec_id, pid or 0))
        if session.stderr is not None:
            while await session.stderr.receive_some(RECEIVE_BYTES):
                pass
        exit_code = await session.wait()
        await session.aclose()
        report(ExecFinished(exec_id, exit_code))
    except Exception:
        log.exception("detached exec %s", exec_id[:12])
    finally:
        live.pop(exec_id, None)


async def _pump_exec(
    session: ExecSession, connection: HijackedStream, launch: Any, exec_id: str, report: Any
) -> None:
    """Copy output to the client and its input to the session until the output ends."""
    pid = await session.get_pid()
    report(ExecStarted(exec_id, pid or 0))
    tty = launch.tty
    detector = streams.DetachDetector(streams.parse_detach_keys(launch.detach_keys)) if tty else None

    async def send(stream_number: int, data: bytes) -> bool:
        payload = data if tty else streams.frame(stream_number, data)
        try:
            await connection.send_all(payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        return True

    async with trio.open_nursery() as nursery:
        outputs_done = trio.Semaphore(0)
        sources: list[tuple[int, Any, bool]] = []
        if tty and session.pty is not None:
            sources.append((streams.STDOUT, session.pty, launch.attach_stdout or launch.attach_stderr))
        else:
            if session.stdout is not None:
                sources.append((streams.STDOUT, session.stdout, launch.attach_stdout))
            if session.stderr is not None:
                sources.append((streams.STDERR, session.stderr, launch.attach_stderr))

        async def copy_out(stream_number: int, source: Any, forward: bool) -> None:
            try:
                while True:
                    data = await source.receive_some(RECEIVE_BYTES)
                    if not data:
                        break
                    if forward and not await send(stream_number, bytes(data)):
                        nursery.cancel_scope.cancel()
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            outputs_done.release()

        async def copy_in() -> None:
            sink = session.pty if tty else session.stdin
            while True:
                try:
                    data = await connection.receive_some(RECEIVE_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    nursery.cancel_scope.cancel()
                    return
                if not data:
                    break
                if sink is None or not launch.attach_stdin:
                    continue
                detached = False
                if detector is not None:
                    data, detached = detector.feed(bytes(data))
                try:
                    if data:
                        await sink.send_all(bytes(data))
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    return
                if detached:
                    nursery.cancel_scope.cancel()
                    return
            if sink is not None and launch.attach_stdin:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    if isinstance(sink, PtyStream):
                        await sink.send_eof()
                    else:
                        await sink.aclose()

        for stream_number, source, forward in sources:
            nursery.start_soon(copy_out, stream_number, source, forward)
        nursery.start_soon(copy_in)
        for _ in sources:
            await outputs_done.acquire()
        nursery.cancel_scope.cancel()
