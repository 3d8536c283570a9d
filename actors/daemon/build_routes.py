"""`POST /build` (Docker's classic builder) and `POST /build/prune`.

The request body (the context tar, plain or compressed, or a bare Dockerfile) is
extracted as it arrives into a temporary directory under `<data-root>/builder/contexts`
— one pass over the bytes, no spool file — before the build starts, as moby reads the
whole body before it answers; the directory is removed when the request ends (and by
the builder actor when it starts, after a crash). The builder actor
then tells this handler the build's output through an inbox: `BuildOutput` objects,
forwarded as the JSON stream, and one `BuildFinished`.

The status line is held back until the build says something: a build that fails before
its first output (a bad parameter, a Dockerfile syntax error, a missing Dockerfile) is a
plain HTTP error (`{"message": ...}` with Docker's status), anything later goes in-band as
`{"errorDetail": {"code": n, "message": m}, "error": m}`. With `q=1` the output is kept
back: success sends only `{"stream": "sha256:<id>\\n"}`; a failure sends what was kept
and then the error (moby's rule). If the client goes away the build is cancelled.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import lzma
import time
import typing
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors.builder.actor import contexts_directory
from actors.builder.context import BuildContext
from actors.builder.errors import ContextError
from actors.builder.messages import (
    BuildCachePruned,
    BuildFinished,
    BuildOutput,
    BuildStarted,
    CancelBuild,
    PruneBuildCache,
    StartBuild,
)
from actors.builder.request import BuildRequestError, parse_build_query
from actors.daemon.api import ApiError, Router
from actors.daemon.events import Event, publish
from actors.errdefs import status_for_kind
from runtime.httpserver import Request, RequestBody, Response, ResponseStream, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

log = logging.getLogger("flotta.builder")

# What a quiet build keeps back to show if it fails (moby keeps all of it).
quiet_buffer_bytes_max = 16 * 1024 * 1024
_START_SECONDS = 60.0
_BATCH_BYTES = 1024 * 1024


def error_message(text: str, code: int) -> dict[str, Any]:
    """An error in the JSON stream, as Docker sends it (errorDetail and error)."""
    return {"errorDetail": {"code": code, "message": text}, "error": text}


class _BodyReader(io.RawIOBase):
    """The request body as a blocking stream, for an extractor in a worker thread: each
    read fetches the next chunk from the Trio side."""

    def __init__(self, body: RequestBody, token: trio.lowlevel.TrioToken) -> None:
        self._body = body
        self._token = token
        self._pending = b""

    def readable(self) -> bool:
        return True

    async def _receive_batch(self) -> bytes:
        # One trip from the worker thread fetches up to a MiB: clients send the body in
        # small chunks (the docker CLI's are 32 KiB), and each trip costs more than a copy.
        parts: list[bytes] = []
        size = 0
        while size < _BATCH_BYTES:
            chunk = await self._body.receive_some()
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    def readinto(self, target: Any) -> int:
        if not self._pending:
            self._pending = trio.from_thread.run(self._receive_batch, trio_token=self._token)
            if not self._pending:
                return 0
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


@contextlib.asynccontextmanager
async def extracted_context(
    context: DaemonContext, request: Request, dockerfile: str
) -> AsyncIterator[str]:
    """The request body extracted as a build context; the directory, removed afterwards."""
    parent = contexts_directory(context.config.data_root)
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    reader = typing.cast(typing.BinaryIO, _BodyReader(request.body, trio.lowlevel.current_trio_token()))
    extract = functools.partial(
        BuildContext.from_tar_stream, reader, dockerfile_name=dockerfile,
        temporary_parent=str(parent),
    )
    started = trio.current_time()
    try:
        built = await trio.to_thread.run_sync(extract)
    except ContextError as error:
        raise ApiError(400, f"failed to read the build context: {error.message}") from None
    except (EOFError, lzma.LZMAError, zlib.error) as error:
        raise ApiError(400, f"failed to read the build context: {error}") from None
    except OSError as error:
        if error.errno is not None:
            raise
        # Decompressors report corrupt data as an OSError without errno.
        raise ApiError(400, f"failed to read the build context: {error}") from None
    try:
        # The extractor stops at the archive's end marker; what follows (the tar's
        # padding) is read too, so that the request is complete before the response
        # starts (and a client that goes away is noticed while the build runs).
        while await request.body.receive_some():
            pass
        log.debug("build context received and extracted in %.1f ms", (trio.current_time() - started) * 1000)
        yield built.root
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(built.close)


class _Output:
    """Sends the stream, starting it at the first message (and buffering when quiet)."""

    def __init__(self, request: Request, quiet: bool) -> None:
        self.request = request
        self.quiet = quiet
        self.stream: ResponseStream | None = None
        self.kept: deque[dict[str, Any]] = deque()
        self.kept_bytes = 0

    async def start(self) -> ResponseStream:
        if self.stream is None:
            self.stream = await self.request.start_stream()
        return self.stream

    async def send(self, body: dict[str, Any]) -> None:
        if self.quiet:
            self.kept.append(body)
            self.kept_bytes += len(str(body))
            while self.kept_bytes > quiet_buffer_bytes_max and len(self.kept) > 1:
                self.kept_bytes -= len(str(self.kept.popleft()))
            return
        stream = await self.start()
        await stream.send_json(body)

    async def flush_kept(self) -> None:
        if not self.kept:
            return
        stream = await self.start()
        while self.kept:
            await stream.send_json(self.kept.popleft())

    @property
    def started(self) -> bool:
        return self.stream is not None


def build_router(context: DaemonContext) -> Router:
    router = Router()

    @router.route("POST", "/build")
    async def build(request: Request) -> None:
        builder = context.builder
        if builder is None:
            raise ApiError(501, "building images is not available in this daemon")
        try:
            parsed = parse_build_query(request.query, request.headers.get("x-registry-config"))
        except BuildRequestError as error:
            raise ApiError(400, str(error)) from None
        output = _Output(request, parsed.quiet)
        async with (
            extracted_context(context, request, parsed.dockerfile) as directory,
            context.node.open_inbox(prefix="build-output") as inbox,
        ):
            started: BuildStarted = await builder.ask(
                StartBuild(attrs.evolve(parsed, context_directory=directory), inbox.ref),
                timeout=_START_SECONDS,
            )
            finished: BuildFinished | None = None
            try:
                async for item in inbox:
                    if isinstance(item, BuildOutput):
                        await output.send(item.body)
                    elif isinstance(item, BuildFinished):
                        finished = item
                        break
            finally:
                if finished is None:
                    # The client went away (or we were cancelled): stop the build.
                    with trio.CancelScope(shield=True):
                        builder.tell_nowait(CancelBuild(started.build_id))
        assert finished is not None
        if finished.error:
            if parsed.quiet:
                await output.flush_kept()
            if not output.started:
                raise ApiError(status_for_kind(finished.error_kind), finished.error)
            stream = await output.start()
            await stream.send_json(error_message(finished.error, finished.error_code or 1))
            return
        stream = await output.start()
        if parsed.quiet:
            await stream.send_json({"stream": finished.image_id + "\n"})
        now = time.time_ns()
        for tag in finished.tags:
            publish(context.events, Event("image", "tag", finished.image_id, {"name": tag}, time_nano=now))

    @router.route("POST", "/build/prune")
    async def prune(request: Request) -> Response:
        builder = context.builder
        if builder is None:
            raise ApiError(501, "building images is not available in this daemon")
        result: BuildCachePruned = await builder.ask(PruneBuildCache(), timeout=60)
        del result
        return json_response({"CachesDeleted": [], "SpaceReclaimed": 0})

    return router
