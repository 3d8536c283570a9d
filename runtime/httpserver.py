"""An HTTP/1.1 server on h11 and Trio, for the daemon's Docker API and the registry.

One task per connection runs h11's state machine; a handler is `async def (Request)`.
The handler answers in one of three ways, and the connection's rules follow from which:

- return a `Response`: the whole body is sent with a Content-Length (none for HEAD bodies,
  204 and 304); the connection stays open for the next (possibly pipelined) request.
- call `request.start_stream()` and return None: the status line and headers are flushed
  at once (`POST /containers/{id}/wait` depends on it), then every `send()` is one chunk,
  flushed as produced; returning ends the body. While it streams, a watcher task reads the
  socket: EOF or a reset from the client cancels the handler, so `logs -f`, `events` and
  `wait` free their resources when the client goes away. Bytes the client pipelines
  meanwhile are kept for the next request.
- call `request.hijack()`: the server answers `101 UPGRADED` (when the client sent
  `Upgrade: tcp`) or a bare `200 OK` and hands the handler the raw byte stream, starting
  with whatever the client sent after the request. The connection closes after the handler.

A broken connection only ever ends its own task. An exception from a handler becomes an
error response through `error_handler` (default: `HTTPError` as `{"message": ...}` with its
status, anything else 500), or, once a stream has started, an aborted connection, which is
the only way left to tell the client the body is incomplete.

Limits: the request head (line and headers) is bounded by `header_bytes_max` (431 beyond),
the target by `request_target_bytes_max` (414); the time to receive a head by
`header_timeout_seconds` once its first byte arrived and by `idle_timeout_seconds` before.
Shutdown stops accepting, closes idle keep-alive connections, lets in-flight requests run for
the grace period and then cancels them.
"""

from __future__ import annotations

import errno
import functools
import http
import json
import logging
import os
import socket as stdlib_socket
import ssl
import stat
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

import attrs
import h11
import trio

log = logging.getLogger("flotta.http")

JSON_CONTENT_TYPE = "application/json"
_BODYLESS_STATUSES = frozenset({204, 304})


@attrs.frozen
class ServerLimits:
    header_bytes_max: int = 64 * 1024
    request_target_bytes_max: int = 16 * 1024
    header_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 120.0
    body_receive_timeout_seconds: float = 300.0
    # an unread request body up to this size is skipped to keep the connection alive
    drain_body_bytes_max: int = 256 * 1024
    receive_bytes: int = 256 * 1024
    read_body_bytes_max: int = 64 * 1024 * 1024
    tls_handshake_timeout_seconds: float = 10.0


class HTTPError(Exception):
    """An error a handler raises to answer `{"message": message}` with `status`."""

    def __init__(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)

    def to_response(self) -> Response:
        return json_response({"message": self.message}, self.status, self.headers)


class ClientDisconnected(trio.BrokenResourceError):
    """The client went away while the handler was answering it."""


# ---------------------------------------------------------------------------- requests


class Headers:
    """Request headers: case-insensitive lookup, order and repetition kept."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        # h11 hands names over lower-cased already; others are lowered here.
        self._items = [(name.lower(), value) for name, value in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class QueryParams:
    """A query string as a multi-valued mapping: `get` gives the first value of a key,
    `get_all` every value in order (`names=a&names=b`)."""

    __slots__ = ("_items",)

    def __init__(self, query_string: str) -> None:
        self._items = parse_qsl(query_string, keep_blank_values=True)

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self._items:
            if name == key:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        return [value for name, value in self._items if name == key]

    def __contains__(self, key: object) -> bool:
        return any(name == key for name, _ in self._items)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for name, _ in self._items:
            seen.setdefault(name, None)
        return list(seen)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        return f"QueryParams({self._items!r})"


class Request:
    """One request as the handler sees it. `path` is percent-decoded, `raw_path` is not;
    neither carries the query, which is in `query_string` and parsed in `query`."""

    def __init__(self, connection: _Connection, event: h11.Request) -> None:
        self._connection = connection
        self.method = event.method.decode("ascii")
        self.target = event.target.decode("latin-1")
        self.raw_path, _, self.query_string = self.target.partition("?")
        self.path = unquote(self.raw_path) if "%" in self.raw_path else self.raw_path
        self.http_version = event.http_version.decode("ascii")
        self.headers = Headers(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers]
        )
        self.peer = connection.peer
        self.declares_no_body = not any(
            name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
            for name, value in event.headers
        )
        self.body = RequestBody(connection)
        self._query: QueryParams | None = None
        self.response_started = False
        self.hijacked = False

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.query_string)
        return self._query

    @property
    def wants_upgrade(self) -> bool:
        """The client asked for Docker's raw-stream upgrade (`Upgrade: tcp`)."""
        upgrade = self.headers.get("upgrade", "") or ""
        connection = self.headers.get("connection", "") or ""
        return "tcp" in upgrade.lower() and "upgrade" in connection.lower()

    @property
    def tls_peer_certificate(self) -> dict[str, Any] | None:
        """The verified client certificate on a TLS connection (None otherwise)."""
        stream = self._connection.stream
        if isinstance(stream, trio.SSLStream):
            return stream.getpeercert()
        return None

    async def read_body(self, limit_bytes: int | None = None) -> bytes:
        """The whole body; HTTPError 413 when it exceeds `limit_bytes`."""
        limit = self._connection.limits.read_body_bytes_max if limit_bytes is None else limit_bytes
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPError(413, f"request body of {declared} bytes exceeds {limit} bytes")
        parts: list[bytes] = []
        total = 0
        async for chunk in self.body:
            total += len(chunk)
            if total > limit:
                raise HTTPError(413, f"request body exceeds {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def read_json(self, limit_bytes: int | None = None) -> Any:
        """The body parsed as JSON (None when empty); HTTPError 400 when it is not JSON."""
        data = await self.read_body(limit_bytes)
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise HTTPError(400, f"invalid JSON in request body: {exc}") from exc

    async def start_stream(
        self,
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (),
        content_type: str | None = JSON_CONTENT_TYPE,
    ) -> ResponseStream:
        """Send the status and headers now and return the chunked body's writer."""
        return await self._connection.start_stream(self, status, headers, content_type)

    async def hijack(
        self,
        content_type: str = "application/vnd.docker.raw-stream",
        headers: Sequence[tuple[str, str]] = (),
        *,
        upgrade: bool | None = None,
    ) -> HijackedStream:
        """Take the connection over as a raw byte stream (Docker's attach/exec).

        With `upgrade` None the server answers `101 UPGRADED` when the client asked to
        upgrade and `200 OK` otherwise. Any unread request body is discarded first.
        """
        return await self._connection.hijack(self, content_type, headers, upgrade)


class RequestBody:
    """The request body as an async iterator of byte chunks (Content-Length or chunked)."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.complete = False
        self.bytes_received = 0

    def __aiter__(self) -> RequestBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.receive_some()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def receive_some(self) -> bytes:
        """The next chunk; b"" once the body is complete."""
        if self.complete:
            return b""
        chunk = await self._connection.receive_body_chunk()
        if chunk:
            self.bytes_received += len(chunk)
        else:
            self.complete = True
        return chunk


# ---------------------------------------------------------------------------- responses


class Response:
    """A complete response. `body` bytes are sent with a Content-Length."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: Sequence[tuple[str, str]] = (),
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers)
        if content_type is not None:
            self.headers.append(("Content-Type", content_type))


def encode_json(value: Any) -> bytes:
    """Compact JSON with a trailing newline, as moby writes it (no HTML escaping)."""
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def json_response(
    value: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    return Response(status, encode_json(value), headers, JSON_CONTENT_TYPE)


def text_response(
    text: str, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    return Response(status, text.encode(), headers, "text/plain; charset=utf-8")


class ResponseStream:
    """The writer of a streaming (chunked) response body."""

    def __init__(self, connection: _Connection, head_only: bool) -> None:
        self._connection = connection
        self._head_only = head_only
        self._lock = trio.Lock()

    async def send(self, data: bytes) -> None:
        """Send one chunk now; ClientDisconnected when the client is gone."""
        if not data or self._head_only:
            return
        async with self._lock:
            await self._connection.send_raw(self._connection.h11.send(h11.Data(data=data)))

    async def send_json(self, value: Any) -> None:
        """Send one compact JSON document followed by a newline (a JSON-lines message)."""
        await self.send(encode_json(value))


class HijackedStream(trio.abc.HalfCloseableStream):
    """The raw connection after a hijack; first yields the bytes the client sent after the
    request. `send_eof` half-closes on plain sockets and is a no-op under TLS."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes, eof_seen: bool) -> None:
        self._stream = stream
        self._prefix = prefix
        self._eof_seen = eof_seen

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            if max_bytes is None or max_bytes >= len(self._prefix):
                data, self._prefix = self._prefix, b""
            else:
                data, self._prefix = self._prefix[:max_bytes], self._prefix[max_bytes:]
            await trio.lowlevel.checkpoint()
            return data
        if self._eof_seen:
            await trio.lowlevel.checkpoint()
            return b""
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self._stream, trio.abc.HalfCloseableStream):
            await self._stream.send_eof()
        else:
            await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await self._stream.aclose()


Handler = Callable[[Request], Awaitable["Response | None"]]
ErrorHandler = Callable[[Request, Exception], "Response | None"]


@functools.cache
def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _peer_of(stream: trio.abc.Stream) -> str:
    transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    sock = getattr(transport, "socket", None)
    if sock is None:
        return "unknown"
    try:
        address = sock.getpeername()
    except OSError:
        return "unknown"
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"unix:{address}" if address else "unix"


# ---------------------------------------------------------------------------- connections


class _Connection:
    """One client connection: reads requests with h11, runs the handler, writes answers."""

    def __init__(self, server: HTTPServer, stream: trio.abc.Stream) -> None:
        self.server = server
        self.limits = server.limits
        self.stream = stream
        self.peer = _peer_of(stream)
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.limits.header_bytes_max
        )
        self.idle_scope: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None
        self._handler_scope: trio.CancelScope | None = None
        self._watcher_scope: trio.CancelScope | None = None
        self._watcher_done: trio.Event | None = None
        self._client_gone = False

    # -- low-level I/O

    async def send_raw(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._client_gone = True
            self.h11.send_failed()
            raise ClientDisconnected(f"client {self.peer} disconnected") from exc

    async def _receive_into_h11(self) -> None:
        try:
            data = await self.stream.receive_some(self.limits.receive_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._client_gone = True
            raise ClientDisconnected(f"client {self.peer} disconnected") from exc
        self.h11.receive_data(bytes(data))

    async def receive_body_chunk(self) -> bytes:
        h = self.h11
        if self.h11.they_are_waiting_for_100_continue:
            await self.send_raw(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                raise HTTPError(400, f"malformed request body: {exc}") from exc
            if event is h11.NEED_DATA:
                with trio.move_on_after(self.limits.body_receive_timeout_seconds) as scope:
                    await self._receive_into_h11()
                if scope.cancelled_caught:
                    raise HTTPError(408, "timed out reading the request body")
                continue
            kind = type(event)
            if kind is h11.Data:
                return bytes(event.data)  # type: ignore[union-attr]
            if kind is h11.EndOfMessage or event is h11.PAUSED:
                return b""
            if kind is h11.ConnectionClosed:
                raise ClientDisconnected(f"client {self.peer} closed before the body ended")

    # -- the request loop

    async def serve(self) -> None:
        try:
            if isinstance(self.stream, trio.SSLStream):
                with trio.move_on_after(self.limits.tls_handshake_timeout_seconds) as timer:
                    await self.stream.do_handshake()
                if timer.cancelled_caught:
                    return
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                await self._request_loop()
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
            # The client vanished or failed the TLS handshake: nothing to tell anyone.
            pass
        except Exception:
            # A bug on one connection must not take the server down with it.
            log.exception("connection from %s failed", self.peer)
        finally:
            await trio.aclose_forcefully(self.stream)

    async def _request_loop(self) -> None:
        try:
            while True:
                event = await self._read_request_head()
                if event is None:
                    return
                if not await self._run_request(Request(self, event)):
                    return
        except ClientDisconnected:
            return

    async def _read_request_head(self) -> h11.Request | None:
        h = self.h11
        scope = trio.CancelScope(deadline=trio.current_time() + self.limits.idle_timeout_seconds)
        waiting_for_first_byte = True
        self.idle_scope = scope
        if self.server.draining:
            scope.cancel()
        try:
            with scope:
                while True:
                    try:
                        event = h.next_event()
                    except h11.RemoteProtocolError as exc:
                        await self._reject(exc.error_status_hint, str(exc))
                        return None
                    if event is h11.NEED_DATA:
                        await self._receive_into_h11()
                        if waiting_for_first_byte:
                            # Bytes of a request arrived: no longer idle, and the head
                            # must now be complete within the header timeout.
                            waiting_for_first_byte = False
                            self.idle_scope = None
                            scope.deadline = min(
                                scope.deadline,
                                trio.current_time() + self.limits.header_timeout_seconds,
                            )
                        continue
                    if type(event) is h11.Request:
                        if len(event.target) > self.limits.request_target_bytes_max:
                            await self._reject(414, "request target too long")
                            return None
                        # h11 bounds only heads that arrive in several reads; one that
                        # came in a single read is measured here.
                        head_bytes = len(event.target) + sum(
                            len(name) + len(value) + 4 for name, value in event.headers
                        )
                        if head_bytes > self.limits.header_bytes_max:
                            await self._reject(431, "request header fields too large")
                            return None
                        return event
                    return None
        finally:
            self.idle_scope = None
        return None

    async def _reject(self, status: int, message: str) -> None:
        """Answer a request we could not parse, then close the connection politely."""
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = encode_json({"message": message})
            headers = [
                *self.server.default_headers,
                ("Content-Type", JSON_CONTENT_TYPE),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
            head = h11.Response(status_code=status, headers=_encode_headers(headers),
                                reason=_reason(status))
            try:
                data = self.h11.send(head) + self.h11.send(h11.Data(data=body))
                await self.send_raw(data + self.h11.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:
                return
        await self._linger()

    async def _linger(self) -> None:
        """Half-close and read a little before closing, so that unread request bytes do not
        turn our close into a reset that destroys the response the client has yet to read."""
        if not isinstance(self.stream, trio.abc.HalfCloseableStream):
            return
        try:
            await self.stream.send_eof()
            with trio.move_on_after(0.5):
                discarded = 0
                while discarded < self.limits.drain_body_bytes_max:
                    data = await self.stream.receive_some(65536)
                    if not data:
                        break
                    discarded += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _run_request(self, request: Request) -> bool:
        """Run the handler and answer; True when the connection can serve another request."""
        if request.declares_no_body:
            # No body: take its end-of-message now (no I/O), so the request counts as fully
            # read and a streaming response can watch the socket for the client leaving.
            await request.body.receive_some()
        error: Exception | None = None
        response: Response | None = None
        scope = trio.CancelScope()
        self._handler_scope = scope
        with scope:
            try:
                response = await self.server.handler(request)
            except ClientDisconnected:
                return False
            except Exception as exc:
                error = exc
        self._handler_scope = None
        await self._stop_watcher()
        if scope.cancelled_caught or self._client_gone:
            return False
        if request.hijacked:
            return False
        if request.response_started:
            if error is not None:
                log.error("handler for %s %s failed mid-stream", request.method,
                          request.target, exc_info=error)
                return False
            try:
                await self.send_raw(self.h11.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:
                return False
        else:
            if error is not None:
                response = self._error_response(request, error)
            elif response is None:
                log.error("handler for %s %s returned no response", request.method,
                          request.target)
                response = json_response({"message": "handler returned no response"}, 500)
            await self._send_full(request, response)
        return await self._finish_cycle()

    def _error_response(self, request: Request, error: Exception) -> Response:
        hook = self.server.error_handler
        if hook is not None:
            try:
                mapped = hook(request, error)
            except Exception:
                log.exception("error handler failed on %r", error)
                mapped = None
            if mapped is not None:
                return mapped
        if isinstance(error, HTTPError):
            return error.to_response()
        log.error("handler for %s %s failed", request.method, request.target, exc_info=error)
        return json_response({"message": str(error) or type(error).__name__}, 500)

    def _head(self, status: int, headers: Iterable[tuple[str, str]]) -> h11.Response:
        pairs = [*self.server.encoded_default_headers, *_encode_headers(headers)]
        if self.server.draining:
            pairs.append((b"Connection", b"close"))
        return h11.Response(status_code=status, headers=pairs, reason=_reason(status))

    async def _send_full(self, request: Request, response: Response) -> None:
        h = self.h11
        headers = response.headers
        body = response.body
        declared = next((value for name, value in headers if name.lower() == "content-length"),
                        None)
        if response.status in _BODYLESS_STATUSES:
            body = b""
        elif declared is None:
            headers = [*headers, ("Content-Length", str(len(body)))]
        elif request.method != "HEAD" and declared != str(len(body)):
            # A handler may declare the length only for HEAD (a blob's size without the
            # blob); anywhere else a mismatch would corrupt the connection.
            log.error("response to %s %s declares Content-Length %s for %d bytes",
                      request.method, request.target, declared, len(body))
            response = json_response({"message": "internal error: bad Content-Length"}, 500)
            body = response.body
            headers = [*response.headers, ("Content-Length", str(len(body)))]
        data = h.send(self._head(response.status, headers))
        if body and request.method != "HEAD" and response.status not in _BODYLESS_STATUSES:
            data += h.send(h11.Data(data=body))
        data += h.send(h11.EndOfMessage())
        await self.send_raw(data)

    async def _finish_cycle(self) -> bool:
        h = self.h11
        if h.our_state is not h11.DONE:
            return False
        if h.their_state is h11.SEND_BODY and not await self._drain_unread_body():
            return False
        if h.their_state is not h11.DONE or self.server.draining:
            return False
        h.start_next_cycle()
        return True

    async def _drain_unread_body(self) -> bool:
        skipped = 0
        with trio.move_on_after(self.limits.header_timeout_seconds):
            while True:
                try:
                    chunk = await self.receive_body_chunk()
                except HTTPError:
                    return False
                if not chunk:
                    return True
                skipped += len(chunk)
                if skipped > self.limits.drain_body_bytes_max:
                    return False
        return False

    # -- streaming and hijacking, called through Request

    async def start_stream(
        self,
        request: Request,
        status: int,
        headers: Sequence[tuple[str, str]],
        content_type: str | None,
    ) -> ResponseStream:
        if request.response_started or request.hijacked:
            raise RuntimeError("the response to this request has already started")
        pairs = list(headers)
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        request.response_started = True
        await self.send_raw(self.h11.send(self._head(status, pairs)))
        if self.h11.their_state is h11.DONE:
            self._start_watcher()
        return ResponseStream(self, head_only=request.method == "HEAD")

    def _start_watcher(self) -> None:
        assert self.nursery is not None
        self._watcher_scope = trio.CancelScope()
        self._watcher_done = trio.Event()
        self.nursery.start_soon(self._watch_for_disconnect, self._watcher_scope,
                                self._watcher_done)

    async def _watch_for_disconnect(self, scope: trio.CancelScope, done: trio.Event) -> None:
        # Reading while the handler writes: the only way to learn that the client closed.
        # Bytes that arrive are a pipelined next request; h11 keeps them until its turn.
        buffered = 0
        try:
            with scope:
                while buffered <= self.limits.header_bytes_max:
                    try:
                        data = await self.stream.receive_some(self.limits.receive_bytes)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        data = b""
                    if not data:
                        self._client_gone = True
                        if self._handler_scope is not None:
                            self._handler_scope.cancel()
                        return
                    buffered += len(data)
                    self.h11.receive_data(bytes(data))
        finally:
            done.set()

    async def _stop_watcher(self) -> None:
        if self._watcher_scope is None:
            return
        self._watcher_scope.cancel()
        assert self._watcher_done is not None
        await self._watcher_done.wait()
        self._watcher_scope = None
        self._watcher_done = None

    async def hijack(
        self,
        request: Request,
        content_type: str,
        headers: Sequence[tuple[str, str]],
        upgrade: bool | None,
    ) -> HijackedStream:
        if request.response_started or request.hijacked:
            raise RuntimeError("the response to this request has already started")
        if not request.body.complete:
            while await request.body.receive_some():
                pass
        h = self.h11
        if upgrade is None:
            upgrade = h.their_state is h11.MIGHT_SWITCH_PROTOCOL
        pairs = [*self.server.default_headers, ("Content-Type", content_type), *headers]
        request.hijacked = True
        request.response_started = True
        if upgrade and h.their_state is h11.MIGHT_SWITCH_PROTOCOL:
            pairs += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
            head = h.send(h11.InformationalResponse(
                status_code=101, reason=b"UPGRADED", headers=_encode_headers(pairs)))
            prefix, eof_seen = h.trailing_data
        else:
            # The 200-then-hijack variant: we stop speaking HTTP, so h11 is left behind,
            # and the bytes it buffered after the request belong to the raw stream.
            prefix, eof_seen = h.trailing_data
            lines = [b"HTTP/1.1 200 OK"]
            lines += [b"%s: %s" % pair for pair in _encode_headers(pairs)]
            head = b"\r\n".join(lines) + b"\r\n\r\n"
        await self.send_raw(head)
        return HijackedStream(self.stream, bytes(prefix), eof_seen)


# ---------------------------------------------------------------------------- the server


class HTTPServer:
    """Serves `handler` on listeners until `shutdown`.

    `default_headers` go on every response (the daemon's `Api-Version`, `Server`, ...);
    `error_handler(request, exception)` may map an exception to a Response (None falls
    back to the default mapping).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        default_headers: Sequence[tuple[str, str]] = (),
        error_handler: ErrorHandler | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self.handler = handler
        self.default_headers = tuple(default_headers)
        self.encoded_default_headers = _encode_headers(self.default_headers)
        self.error_handler = error_handler
        self.limits = limits or ServerLimits()
        self.draining = False
        self._connections: set[_Connection] = set()
        self._shutdown_requested = trio.Event()
        self._stopped = trio.Event()
        self._no_connections = trio.Event()
        self._grace_seconds = 10.0
        self.connections_accepted = 0

    def statistics(self) -> dict[str, int]:
        return {
            "connections_open": len(self._connections),
            "connections_accepted": self.connections_accepted,
        }

    async def serve(
        self,
        listeners: Sequence[trio.abc.Listener[Any]],
        *,
        task_status: trio.TaskStatus[HTTPServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on every listener until shutdown; returns once every connection ended.
        The listeners are closed on return."""
        try:
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as accepters:
                    for listener in listeners:
                        accepters.start_soon(self._accept_loop, listener, connections)
                    task_status.started(self)
                    await self._shutdown_requested.wait()
                    accepters.cancel_scope.cancel()
                self.draining = True
                for listener in listeners:
                    with trio.CancelScope(shield=True):
                        await trio.aclose_forcefully(listener)
                for connection in list(self._connections):
                    if connection.idle_scope is not None:
                        connection.idle_scope.cancel()
                if self._connections:
                    with trio.move_on_after(self._grace_seconds):
                        await self._no_connections.wait()
                connections.cancel_scope.cancel()
        finally:
            for listener in listeners:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(listener)
            self._stopped.set()

    def request_shutdown(self, grace_seconds: float = 10.0) -> None:
        """Stop accepting now; in-flight requests get `grace_seconds` before cancellation."""
        self._grace_seconds = grace_seconds
        self._shutdown_requested.set()

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """`request_shutdown` and wait until the server stopped."""
        self.request_shutdown(grace_seconds)
        await self._stopped.wait()

    async def _accept_loop(self, listener: trio.abc.Listener[Any], nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS):
                    log.error("accept failed (%s); pausing 100 ms", exc)
                    await trio.sleep(0.1)
                    continue
                raise
            self.connections_accepted += 1
            nursery.start_soon(self._handle, stream)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        connection = _Connection(self, stream)
        self._connections.add(connection)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            if self.draining and not self._connections:
                self._no_connections.set()


# ---------------------------------------------------------------------------- listeners


class ListenerError(OSError):
    """A listener that cannot be opened; the message says why and where."""


class UnixSocketListener(trio.abc.Listener[trio.SocketStream]):
    """A UNIX-socket listener that removes its socket file on close if it is still ours."""

    def __init__(self, sock: trio.socket.SocketType, path: str) -> None:
        self.socket_listener = trio.SocketListener(sock)
        self.path = path
        info = os.stat(path)
        self._identity = (info.st_dev, info.st_ino)

    async def accept(self) -> trio.SocketStream:
        return await self.socket_listener.accept()

    async def aclose(self) -> None:
        try:
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        await self.socket_listener.aclose()


async def _unix_path_is_live(path: str) -> bool:
    probe = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        with trio.move_on_after(2.0):
            await probe.connect(path)
            return True
        return True  # an accept queue so full that connect hangs is a live server
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    finally:
        probe.close()


async def open_unix_listener(
    path: str | os.PathLike[str], *, mode: int = 0o660, backlog: int = 128
) -> UnixSocketListener:
    """Listen on a UNIX socket at `path` with permissions `mode`.

    A stale socket file (nobody accepting) is replaced; a live one, or anything that is not
    a socket, is refused. The socket is bound under a temporary name, given its mode and
    renamed into place, so no client ever sees it with looser permissions.
    """
    path = os.fspath(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise ListenerError(errno.EEXIST, f"{path} exists and is not a socket; not replacing it")
        if await _unix_path_is_live(path):
            raise ListenerError(errno.EADDRINUSE, f"another server is listening on {path}")
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        await sock.bind(temporary)
        os.chmod(temporary, mode)
        sock.listen(backlog)
        os.replace(temporary, path)
    except BaseException:
        sock.close()
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return UnixSocketListener(sock, path)


async def open_tcp_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listen on TCP `host:port` (port 0 picks a free one; see `listener_address`)."""
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenerError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def tls_listener(listener: trio.abc.Listener[Any], context: ssl.SSLContext) -> trio.SSLListener[Any]:
    """Wrap a TCP listener in TLS; the handshake runs in the connection's own task."""
    return trio.SSLListener(listener, context, https_compatible=True)


def listener_address(listener: trio.abc.Listener[Any]) -> tuple[str, int] | str:
    """The bound address of a listener: (host, port) for TCP, the path for UNIX sockets."""
    if isinstance(listener, trio.SSLListener):
        listener = listener.transport_listener
    if isinstance(listener, UnixSocketListener):
        return listener.path
    assert isinstance(listener, trio.SocketListener)
    address = listener.socket.getsockname()
    return (address[0], address[1])
