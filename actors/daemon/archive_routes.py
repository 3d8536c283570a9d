"""`docker cp`: HEAD/GET/PUT `/containers/{id}/archive`.

HEAD answers the path's stat in `X-Docker-Container-Path-Stat` (base64 of JSON); GET adds
a tar of the path (entries named after the path's last element); PUT extracts a tar into a
directory of the container. The file work is done by `actors/supervisor/archive_helper.py`
chrooted into the container's root (see there), so symlinks inside the container can never
reach the host's files.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors.daemon.api import ApiError, Router, query_bool
from actors.errdefs import status_for_kind
from actors.supervisor.messages import FilesystemLease, LeaseFilesystem, ReleaseFilesystem
from runtime.httpserver import Request, Response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

HELPER = str(Path(__file__).resolve().parent.parent / "supervisor" / "archive_helper.py")
STAT_HEADER = "X-Docker-Container-Path-Stat"
CHUNK_BYTES = 256 * 1024
HEADER_LINE_BYTES_MAX = 64 * 1024


def helper_argv(command: str, root: str, path: str, *options: str) -> list[str]:
    return [sys.executable, "-S", "-E", HELPER, command, root, path, *options]


def stat_header(stat: dict[str, Any]) -> tuple[str, str]:
    return STAT_HEADER, base64.b64encode(json.dumps(stat).encode()).decode()


async def _read_line(stream: trio.abc.ReceiveStream) -> tuple[bytes, bytes]:
    """The first line of the helper's output, and whatever came after it."""
    buffered = b""
    while b"\n" not in buffered:
        chunk = await stream.receive_some(CHUNK_BYTES)
        if not chunk:
            break
        buffered += chunk
        if len(buffered) > HEADER_LINE_BYTES_MAX:
            raise ApiError(500, "archive helper: malformed answer")
    line, _, rest = buffered.partition(b"\n")
    return line, rest


def _raise_for(result: dict[str, Any], path: str, reference: str) -> None:
    kind = result.get("error")
    if not kind:
        return
    message = str(result.get("message") or kind)
    if kind == "not_found":
        message = f"Could not find the file {path} in container {reference}"
    raise ApiError(status_for_kind(kind), message)


def build_router(context: DaemonContext) -> Router:
    router = Router()
    containers = context.containers
    assert containers is not None

    @contextlib.asynccontextmanager
    async def lease(reference: str, writable: bool) -> AsyncIterator[FilesystemLease]:
        granted = await containers.ask(LeaseFilesystem(reference, writable), timeout=120)
        try:
            yield granted
        finally:
            with trio.CancelScope(shield=True):
                await containers.ask(ReleaseFilesystem(granted.lease_id), timeout=120)

    def required_path(request: Request) -> str:
        path = request.query.get("path") or ""
        if not path:
            raise ApiError(400, "path is required")
        return path

    @router.route("HEAD", "/containers/(?P<ref>[^/]+)/archive")
    async def head(request: Request, ref: str) -> Response:
        path = required_path(request)
        async with lease(ref, False) as granted:
            result = await trio.run_process(
                helper_argv("stat", granted.view_root, path), capture_stdout=True, check=False,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        answer = json.loads(result.stdout.split(b"\n", 1)[0] or b"{}")
        _raise_for(answer, path, ref)
        return Response(200, b"", [stat_header(answer)], "application/json")

    @router.route("GET", "/containers/(?P<ref>[^/]+)/archive")
    async def get(request: Request, ref: str) -> None:
        path = required_path(request)
        async with lease(ref, False) as granted:
            process = await trio.lowlevel.open_process(
                helper_argv("get", granted.view_root, path),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                assert process.stdout is not None
                line, rest = await _read_line(process.stdout)
                answer = json.loads(line or b"{}")
                if not line:
                    raise ApiError(500, "archive helper failed")
                _raise_for(answer, path, ref)
                stream = await request.start_stream(headers=[stat_header(answer)], content_type="application/x-tar")
                if rest:
                    await stream.send(rest)
                while True:
                    chunk = await process.stdout.receive_some(CHUNK_BYTES)
                    if not chunk:
                        break
                    await stream.send(bytes(chunk))
                await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    with trio.CancelScope(shield=True):
                        await process.wait()

    @router.route("PUT", "/containers/(?P<ref>[^/]+)/archive")
    async def put(request: Request, ref: str) -> Response:
        path = required_path(request)
        options = []
        if query_bool(request, "noOverwriteDirNonDir"):
            options.append("--no-overwrite-dir-non-dir")
        if query_bool(request, "copyUIDGID"):
            options.append("--copy-uid-gid")
        async with lease(ref, True) as granted:
            process = await trio.lowlevel.open_process(
                helper_argv("put", granted.view_root, path, *options),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            output = bytearray()
            try:
                assert process.stdin is not None and process.stdout is not None

                async def collect() -> None:
                    assert process.stdout is not None
                    while True:
                        chunk = await process.stdout.receive_some(CHUNK_BYTES)
                        if not chunk:
                            return
                        output.extend(chunk)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(collect)
                    try:
                        async for chunk in request.body:
                            await process.stdin.send_all(chunk)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass  # the helper refused and exited; its answer says why
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await process.stdin.aclose()
                await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    with trio.CancelScope(shield=True):
                        await process.wait()
        line = bytes(output).split(b"\n", 1)[0]
        if not line:
            raise ApiError(500, "archive helper failed")
        _raise_for(json.loads(line), path, ref)
        return Response(200, b"", (), "text/plain; charset=utf-8")

    return router
