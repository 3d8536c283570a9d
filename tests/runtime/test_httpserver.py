"""The HTTP/1.1 server on real sockets: loopback TCP, TLS and UNIX sockets in tmp_path."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import h11
import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import tls
from runtime.httpserver import (
    HTTPError,
    HTTPServer,
    ListenerError,
    Request,
    Response,
    ServerLimits,
    json_response,
    listener_address,
    open_tcp_listeners,
    open_unix_listener,
    tls_listener,
)

DEFAULT_HEADERS = [("Api-Version", "1.45"), ("Server", "flotta-test")]
# Guards against a deadlock in a broken server; never reached when the server works.
DEADLOCK_GUARD_SECONDS = 20


@asynccontextmanager
async def running(handler, listeners=None, **options) -> AsyncIterator[tuple[HTTPServer, object]]:
    if listeners is None:
        listeners = await open_tcp_listeners("127.0.0.1", 0)
    server = HTTPServer(handler, default_headers=DEFAULT_HEADERS, **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        try:
            yield server, listener_address(listeners[0])
        finally:
            await server.shutdown(grace_seconds=1)


_opened: list[trio.SocketStream] = []


@pytest.fixture(autouse=True)
def close_client_sockets():
    yield
    while _opened:
        sock = _opened.pop().socket
        if sock.fileno() != -1:
            os.close(sock.detach())


async def connect(address) -> trio.SocketStream:
    if isinstance(address, str):
        stream = await trio.open_unix_socket(address)
    else:
        stream = await trio.open_tcp_stream(*address)
    _opened.append(stream)
    return stream


class RawClient:
    """A test client on one connection: raw bytes out, h11-parsed responses in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
                continue
            return event

    async def send_request(self, method: str, target: str, headers=(), body: bytes = b""):
        all_headers = [("Host", "localhost"), *headers]
        if body:
            all_headers.append(("Content-Length", str(len(body))))
        data = self.h11.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.h11.send(h11.Data(data=body))
        data += self.h11.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    def note_request(self, method: str, target: str) -> None:
        """Record in our h11 a request that was sent as raw bytes, to parse its response."""
        self.h11.send(h11.Request(method=method, target=target, headers=[("Host", "x")]))
        self.h11.send(h11.EndOfMessage())

    async def read_response(self) -> tuple[h11.Response, bytes]:
        if self.h11.our_state is h11.IDLE:
            self.note_request("GET", "/")
        head = await self.next_event()
        assert isinstance(head, h11.Response), head
        body = b""
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return head, body


async def read_until_closed(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return data
        if not chunk:
            return data
        data += chunk


async def read_raw_head(stream: trio.abc.ReceiveStream) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, f"connection closed before the end of the head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def header(response: h11.Response, name: str) -> str | None:
    for key, value in response.headers:
        if key == name.lower().encode():
            return value.decode()
    return None


async def echo_handler(request: Request) -> Response:
    body = await request.read_body(limit_bytes=1 << 20)
    return json_response({
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.query.items(),
        "names": request.query.get_all("names"),
        "x_thing": request.headers.get("X-THING"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_bytes": len(body),
    })


# ---------------------------------------------------------------------------- basics


async def test_keep_alive_over_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "api.sock")
    listener = await open_unix_listener(path)
    async with running(echo_handler, [listener]) as (server, address):
        assert address == path
        transport = httpx.AsyncHTTPTransport(uds=path)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for number in range(5):
                reply = await client.get(f"/v1.45/containers/json?names=a&names=b&n={number}",
                                         headers={"x-thing": "yes"})
                assert reply.status_code == 200
                assert reply.headers["content-type"] == "application/json"
                assert reply.headers["api-version"] == "1.45"
                assert reply.headers["server"] == "flotta-test"
                assert reply.content.endswith(b"}\n") and b", " not in reply.content
                document = reply.json()
                assert document["names"] == ["a", "b"]
                assert document["x_thing"] == "yes"
                assert ["n", str(number)] in document["query"]
        assert server.statistics()["connections_accepted"] == 1
    assert not os.path.exists(path), "the socket file is removed on shutdown"


async def test_path_is_decoded_and_raw_path_kept() -> None:
    async with running(echo_handler) as (_, address):
        client = RawClient(await connect(address))
        await client.send_request("GET", "/images/docker.io%2Flibrary%2Fbusybox%3Alatest/json?t=a&t=b")
        _head, body = await client.read_response()
        document = json.loads(body)
        assert document["path"] == "/images/docker.io/library/busybox:latest/json"
        assert document["raw_path"] == "/images/docker.io%2Flibrary%2Fbusybox%3Alatest/json"
        assert document["query"] == [["t", "a"], ["t", "b"]]


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with running(echo_handler) as (_, address):
        stream = await connect(address)
        client = RawClient(stream)
        requests = b"".join(
            b"POST /r%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
            % (number, len(b"body%d" % number), b"body%d" % number)
            for number in range(4)
        )
        await stream.send_all(requests)
        for number in range(4):
            head, body = await client.read_response()
            document = json.loads(body)
            assert head.status_code == 200
            assert document["path"] == f"/r{number}"
            assert document["body_sha256"] == hashlib.sha256(b"body%d" % number).hexdigest()


async def test_chunked_request_body() -> None:
    payload = os.urandom(300_000)
    async with running(echo_handler) as (_, address):
        stream = await connect(address)
        pieces = [payload[i:i + 70_001] for i in range(0, len(payload), 70_001)]
        data = b"POST /build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        data += b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
        await stream.send_all(data)
        head, body = await RawClient(stream).read_response()
        assert head.status_code == 200
        assert json.loads(body)["body_sha256"] == hashlib.sha256(payload).hexdigest()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 150_000), min_size=0, max_size=8),
    chunked=st.booleans(),
    extension=st.booleans(),
    cuts=st.lists(st.integers(1, 200_000), max_size=12),
    truncate_at=st.none() | st.integers(0, 10**6),
)
def test_body_split_across_small_and_large_reads_arrives_intact(
    sizes: list[int], chunked: bool, extension: bool, cuts: list[int], truncate_at: int | None
) -> None:
    # Small and large chunks and reads exercise both h11's path and the server's own
    # (whole buffered chunks taken at once, long chunks and Content-Length bodies read
    # past h11); a second request on the connection checks the framing ended right, and a
    # body cut short is a 400 or a close, never a 200.
    payload = os.urandom(sum(sizes))
    if chunked:
        wire = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        offset = 0
        for size in sizes:
            ext = b";name=value " if extension else b""
            wire += b"%x%s\r\n%s\r\n" % (size, ext, payload[offset:offset + size])
            offset += size
        wire += b"0\r\n\r\n"
    else:
        wire = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload)
        wire += payload
    truncated = truncate_at is not None and truncate_at < len(wire)
    if truncated:
        assert truncate_at is not None
        wire = wire[:truncate_at]
    else:
        wire += b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
    points = sorted({cut % (len(wire) + 1) for cut in cuts} | {0, len(wire)})

    async def main() -> None:
        async with running(echo_handler) as (_, address):
            stream = await connect(address)
            with trio.fail_after(DEADLOCK_GUARD_SECONDS):
                for start, stop in itertools.pairwise(points):
                    await stream.send_all(wire[start:stop])
                    await trio.sleep(0.001)
                if truncated:
                    await stream.send_eof()
                    reply = await read_until_closed(stream)
                    if reply:
                        status = int(reply.split(b"\r\n", 1)[0].split(b" ")[1])
                        assert status == 400, reply[:200]
                    return
                client = RawClient(stream)
                head, body = await client.read_response()
                assert head.status_code == 200
                document = json.loads(body)
                assert document["body_bytes"] == len(payload)
                assert document["body_sha256"] == hashlib.sha256(payload).hexdigest()
                head, body = await client.read_response()
                assert head.status_code == 200
                assert json.loads(body)["path"] == "/second"

    trio.run(main)


async def test_long_chunk_and_content_length_body_arriving_in_pieces() -> None:
    # The rest of a long chunk, and a Content-Length body, are read past h11 once its
    # buffer is empty: the chunk's CRLF, the last chunk and the next request still count.
    payload = os.urandom(400_000)
    async with running(echo_handler) as (_, address):
        for chunked in (True, False):
            stream = await connect(address)
            if chunked:
                head = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                head += b"%x\r\n" % len(payload)
                tail = b"\r\n3\r\nabc\r\n0\r\n\r\n"
                expected = payload + b"abc"
            else:
                head = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload)
                tail = b""
                expected = payload
            tail += b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
            # The body's last piece ends a send: the direct read ends exactly at its end.
            pieces = [head + payload[:50_000], payload[50_000:250_000], payload[250_000:], tail]
            with trio.fail_after(DEADLOCK_GUARD_SECONDS):
                for piece in pieces:
                    await stream.send_all(piece)
                    await trio.sleep(0.05)
                client = RawClient(stream)
                head, body = await client.read_response()
                assert head.status_code == 200
                assert json.loads(body)["body_sha256"] == hashlib.sha256(expected).hexdigest()
                head, body = await client.read_response()
                assert json.loads(body)["path"] == "/second"


async def test_body_over_the_limit_is_413_by_header_and_by_stream() -> None:
    async def handler(request: Request) -> Response:
        return json_response({"bytes": len(await request.read_body(limit_bytes=1000))})

    async with running(handler) as (_, address):
        client = RawClient(await connect(address))
        await client.send_request("POST", "/load", body=b"x" * 1001)
        head, body = await client.read_response()
        assert head.status_code == 413
        assert "exceeds 1000 bytes" in json.loads(body)["message"]

        stream = await connect(address)
        await stream.send_all(
            b"POST /load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"200\r\n" + b"y" * 0x200 + b"\r\n" + b"400\r\n" + b"y" * 0x400 + b"\r\n0\r\n\r\n"
        )
        head, body = await RawClient(stream).read_response()
        assert head.status_code == 413


async def test_unread_body_is_skipped_and_the_connection_reused() -> None:
    async def handler(request: Request) -> Response:
        return json_response({"path": request.path})

    async with running(handler) as (server, address):
        client = RawClient(await connect(address))
        await client.send_request("POST", "/first", body=b"z" * 5000)
        _, body = await client.read_response()
        assert json.loads(body) == {"path": "/first"}
        await client.send_request("GET", "/second")
        _, body = await client.read_response()
        assert json.loads(body) == {"path": "/second"}
        assert server.statistics()["connections_accepted"] == 1


async def test_head_sends_length_without_body_and_keeps_the_connection() -> None:
    async def handler(request: Request) -> Response:
        return Response(200, b"OK", content_type="text/plain; charset=utf-8")

    async with running(handler) as (_, address):
        stream = await connect(address)
        await stream.send_all(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        client = RawClient(stream)
        client.note_request("HEAD", "/_ping")
        head, body = await client.read_response()
        assert head.status_code == 200 and body == b""
        assert header(head, "content-length") == "2"
        head, body = await client.read_response()
        assert body == b"OK"


async def test_no_body_statuses() -> None:
    async def handler(request: Request) -> Response:
        return Response(int(request.path.strip("/")), b"ignored")

    async with running(handler) as (_, address):
        client = RawClient(await connect(address))
        for status in (204, 304):
            await client.send_request("POST", f"/{status}")
            head, body = await client.read_response()
            assert head.status_code == status and body == b""
            assert header(head, "content-length") is None
            assert header(head, "transfer-encoding") is None


async def test_expect_100_continue() -> None:
    async with running(echo_handler) as (_, address):
        stream = await connect(address)
        await stream.send_all(b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                              b"Expect: 100-continue\r\n\r\n")
        head, _ = await read_raw_head(stream)
        assert head.startswith(b"HTTP/1.1 100 ")
        await stream.send_all(b"abcd")
        head, _body = await read_raw_head(stream)
        assert head.startswith(b"HTTP/1.1 200 ")


async def test_error_mapping_and_default_headers() -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/conflict":
            raise HTTPError(409, 'Conflict. The container name "/x" is already in use')
        if request.path == "/missing":
            raise KeyError("abc")
        raise RuntimeError("boom")

    def error_handler(request: Request, error: Exception) -> Response | None:
        if isinstance(error, KeyError):
            return json_response({"message": f"No such container: {error.args[0]}"}, 404)
        return None

    async with running(handler, error_handler=error_handler) as (_, address):
        client = RawClient(await connect(address))
        expected = {
            "/conflict": (409, 'Conflict. The container name "/x" is already in use'),
            "/missing": (404, "No such container: abc"),
            "/other": (500, "boom"),
        }
        for path, (status, message) in expected.items():
            await client.send_request("GET", path)
            head, body = await client.read_response()
            assert head.status_code == status
            assert json.loads(body) == {"message": message}
            assert header(head, "content-type") == "application/json"
            assert header(head, "api-version") == "1.45"


# ---------------------------------------------------------------------------- streaming


async def test_streaming_headers_arrive_before_the_first_chunk_is_produced() -> None:
    first_chunk_allowed = trio.Event()
    second_chunk_allowed = trio.Event()

    async def wait_handler(request: Request) -> None:
        stream = await request.start_stream(200)
        await first_chunk_allowed.wait()
        await stream.send_json({"StatusCode": 0})
        await second_chunk_allowed.wait()
        await stream.send_json({"StatusCode": 1})

    async with running(wait_handler) as (_, address):
        client = RawClient(await connect(address))
        await client.send_request("POST", "/containers/c/wait")
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            head = await client.next_event()
        # The head is here while the handler is still blocked before its first chunk.
        assert isinstance(head, h11.Response) and head.status_code == 200
        assert header(head, "transfer-encoding") == "chunked"
        assert header(head, "content-type") == "application/json"
        assert not first_chunk_allowed.is_set()
        first_chunk_allowed.set()
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            event = await client.next_event()
        assert isinstance(event, h11.Data) and event.data == b'{"StatusCode":0}\n'
        second_chunk_allowed.set()
        event = await client.next_event()
        assert event.data == b'{"StatusCode":1}\n'
        assert isinstance(await client.next_event(), h11.EndOfMessage)
        # Keep-alive after a streamed response: the same connection serves again.
        client.h11.start_next_cycle()
        first_chunk_allowed = second_chunk_allowed = trio.Event()
        first_chunk_allowed.set()
        await client.send_request("POST", "/containers/c/wait")
        head, body = await client.read_response()
        assert body == b'{"StatusCode":0}\n{"StatusCode":1}\n'


async def test_client_disconnect_cancels_a_streaming_handler() -> None:
    streaming = trio.Event()
    handler_cancelled = trio.Event()

    async def follow_logs(request: Request) -> None:
        stream = await request.start_stream(200, content_type="application/vnd.docker.raw-stream")
        await stream.send(b"line 1\n")
        streaming.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            handler_cancelled.set()
            raise

    async with running(follow_logs) as (_server, address):
        stream = await connect(address)
        client = RawClient(stream)
        await client.send_request("GET", "/containers/c/logs?follow=1")
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            await streaming.wait()
            await stream.aclose()
            await handler_cancelled.wait()
        # The server still answers others.
        client = RawClient(await connect(address))
        await client.send_request("GET", "/containers/c/logs")
        head = await client.next_event()
        assert head.status_code == 200


async def test_broken_connection_while_writing_does_not_kill_the_server() -> None:
    async def flood(request: Request) -> None:
        stream = await request.start_stream(200, content_type="application/octet-stream")
        block = b"x" * 65536
        while True:
            await stream.send(block)

    async with running(flood) as (server, address):
        for _ in range(3):
            sock = socket.create_connection(address)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            await trio.to_thread.run_sync(sock.recv, 1000)
            sock.close()  # linger 0: a reset, not a clean close
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            while server.statistics()["connections_open"]:
                await trio.sleep(0.01)
        client = RawClient(await connect(address))
        await client.send_request("GET", "/events")
        assert (await client.next_event()).status_code == 200


async def test_pipelined_request_during_a_stream_is_served_afterwards() -> None:
    release = trio.Event()

    async def handler(request: Request) -> Response | None:
        if request.path == "/stream":
            stream = await request.start_stream(200)
            await release.wait()
            await stream.send_json({"done": True})
            return None
        return json_response({"path": request.path})

    async with running(handler) as (_, address):
        stream = await connect(address)
        client = RawClient(stream)
        client.note_request("GET", "/stream")
        await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await client.next_event()
        assert head.status_code == 200
        release.set()
        assert (await client.next_event()).data == b'{"done":true}\n'
        assert isinstance(await client.next_event(), h11.EndOfMessage)
        client.h11.start_next_cycle()
        head, body = await client.read_response()
        assert json.loads(body) == {"path": "/after"}


# ---------------------------------------------------------------------------- hijacking


async def attach_handler(request: Request) -> None:
    """Echo stdin upper-cased until the client half-closes, then say goodbye."""
    raw = await request.hijack(content_type="application/vnd.docker.multiplexed-stream")
    while True:
        data = await raw.receive_some(65536)
        if not data:
            break
        await raw.send_all(data.upper())
    await raw.send_all(b"|bye")


async def test_hijack_upgrade_keeps_pipelined_bytes_and_sees_half_close(tmp_path: Path) -> None:
    path = str(tmp_path / "d.sock")
    async with running(attach_handler, [await open_unix_listener(path)]) as (_, address):
        stream = await connect(address)
        await stream.send_all(
            b"POST /v1.45/containers/c/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: api.moby.localhost\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n\r\n"
            b"early-bytes;"
        )
        head, rest = await read_raw_head(stream)
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 101 UPGRADED"
        assert b"Content-Type: application/vnd.docker.multiplexed-stream" in lines
        assert b"Connection: Upgrade" in lines and b"Upgrade: tcp" in lines
        assert b"Api-Version: 1.45" in lines
        await stream.send_all(b"more")
        await stream.send_eof()
        output = rest + await read_until_closed(stream)
        assert output == b"EARLY-BYTES;MORE|bye"


async def test_hijack_without_upgrade_answers_200_then_raw() -> None:
    async with running(attach_handler) as (_, address):
        stream = await connect(address)
        await stream.send_all(b"POST /containers/c/attach HTTP/1.1\r\nHost: x\r\n\r\nabc")
        await stream.send_eof()
        head, rest = await read_raw_head(stream)
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
        assert rest + await read_until_closed(stream) == b"ABC|bye"


async def test_exec_start_reads_its_json_body_then_hijacks() -> None:
    async def exec_start(request: Request) -> None:
        options = await request.read_json()
        raw = await request.hijack(content_type="application/vnd.docker.raw-stream")
        await raw.send_all(json.dumps(options).encode() + b"|")
        await raw.send_all(await raw.receive_some(100))

    async with running(exec_start) as (_, address):
        stream = await connect(address)
        body = b'{"Detach":false,"Tty":true}'
        await stream.send_all(
            b"POST /exec/e/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%sls\n" % (len(body), body)
        )
        head, rest = await read_raw_head(stream)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED")
        output = rest + await read_until_closed(stream)
        assert output == b'{"Detach": false, "Tty": true}|ls\n'


# ---------------------------------------------------------------------------- limits


async def test_oversized_headers_get_431_and_target_414() -> None:
    limits = ServerLimits(header_bytes_max=8192, request_target_bytes_max=2048)
    async with running(echo_handler, limits=limits) as (_server, address):
        stream = await connect(address)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        reply = await read_until_closed(stream)
        assert reply.startswith(b"HTTP/1.1 431 ")

        stream = await connect(address)
        await stream.send_all(b"GET /" + b"b" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = await read_until_closed(stream)
        assert reply.startswith(b"HTTP/1.1 414 ")

        client = RawClient(await connect(address))
        await client.send_request("GET", "/fine")
        head, _ = await client.read_response()
        assert head.status_code == 200


async def test_a_slow_head_is_cut_off() -> None:
    limits = ServerLimits(header_timeout_seconds=0.2, idle_timeout_seconds=0.4)
    async with running(echo_handler, limits=limits) as (_, address):
        slow = await connect(address)
        await slow.send_all(b"GET / HTTP/1.1\r\nHost")
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            assert await read_until_closed(slow) == b""
        idle = await connect(address)
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            assert await read_until_closed(idle) == b""


def _garbage() -> st.SearchStrategy[bytes]:
    valid = b"POST /x?a=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    mutated = st.tuples(
        st.integers(0, len(valid)), st.binary(min_size=1, max_size=8), st.integers(0, 4)
    ).map(lambda t: valid[: t[0]] + t[1] + valid[t[0] + t[2]:])
    return st.one_of(st.binary(max_size=300), mutated)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=_garbage())
def test_garbage_gets_a_4xx_or_a_close_and_the_server_keeps_serving(garbage: bytes) -> None:
    async def main() -> None:
        async with running(echo_handler) as (_, address):
            stream = await connect(address)
            await stream.send_all(garbage)
            await stream.send_eof()
            with trio.fail_after(DEADLOCK_GUARD_SECONDS):
                reply = await read_until_closed(stream)
            if reply:
                status_line = reply.split(b"\r\n", 1)[0]
                status = int(status_line.split(b" ")[1])
                # A mutation can still leave a valid request: then it is answered normally.
                assert status in (100, 200, 400, 413, 414, 431, 501), status_line
            client = RawClient(await connect(address))
            await client.send_request("GET", "/still-alive")
            head, _ = await client.read_response()
            assert head.status_code == 200

    trio.run(main)


# ---------------------------------------------------------------------------- listeners and shutdown


async def test_unix_listener_mode_stale_socket_and_live_server(tmp_path: Path) -> None:
    path = str(tmp_path / "flotta.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # a crashed daemon leaves its socket file behind
    listener = await open_unix_listener(path, mode=0o660)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    async with running(echo_handler, [listener]):
        with pytest.raises(ListenerError, match="another server is listening"):
            await open_unix_listener(path)
        client = RawClient(await connect(path))
        await client.send_request("GET", "/")
        head, _ = await client.read_response()
        assert head.status_code == 200

    regular = tmp_path / "not-a-socket"
    regular.write_text("precious")
    with pytest.raises(ListenerError, match="is not a socket"):
        await open_unix_listener(str(regular))
    assert regular.read_text() == "precious"


async def test_several_listeners_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "multi.sock")
    listeners = [await open_unix_listener(path), *await open_tcp_listeners("127.0.0.1", 0)]
    async with running(echo_handler, listeners):
        for address in (path, listener_address(listeners[1])):
            client = RawClient(await connect(address))
            await client.send_request("GET", "/both")
            _head, body = await client.read_response()
            assert json.loads(body)["path"] == "/both"


async def test_graceful_shutdown_finishes_in_flight_requests() -> None:
    in_flight = trio.Event()
    release = trio.Event()

    async def handler(request: Request) -> Response:
        if request.path == "/slow":
            in_flight.set()
            await release.wait()
        return json_response({"path": request.path})

    listeners = await open_tcp_listeners("127.0.0.1", 0)
    address = listener_address(listeners[0])
    server = HTTPServer(handler)
    results: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        idle = RawClient(await connect(address))
        await idle.send_request("GET", "/first")
        await idle.read_response()
        busy = RawClient(await connect(address))
        await busy.send_request("GET", "/slow")
        await in_flight.wait()

        async def stop() -> None:
            await server.shutdown(grace_seconds=DEADLOCK_GUARD_SECONDS)
            results["stopped"] = True

        nursery.start_soon(stop)
        # The idle keep-alive connection is closed at once ...
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            assert await read_until_closed(idle.stream) == b""
        # ... new connections are refused ...
        with pytest.raises(OSError):
            await connect(address)
        assert "stopped" not in results
        # ... and the in-flight request completes, with Connection: close.
        release.set()
        head, body = await busy.read_response()
        assert json.loads(body) == {"path": "/slow"}
        assert header(head, "connection") == "close"
    assert results["stopped"] is True


async def test_shutdown_cancels_requests_still_running_after_the_grace_period() -> None:
    started = trio.Event()
    cancelled = trio.Event()

    async def forever(request: Request) -> None:
        await request.start_stream(200)
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    listeners = await open_tcp_listeners("127.0.0.1", 0)
    server = HTTPServer(forever)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        client = RawClient(await connect(listener_address(listeners[0])))
        await client.send_request("GET", "/events")
        await started.wait()
        with trio.fail_after(DEADLOCK_GUARD_SECONDS):
            await server.shutdown(grace_seconds=0.05)
    assert cancelled.is_set()


# ---------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=flotta test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, usage, san in (("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                             ("client", "clientAuth", "subjectAltName=DNS:client")):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(f"extendedKeyUsage={usage}\n{san}\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {name: directory / name for name in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


async def test_tls_requires_a_client_certificate(certificates: dict[str, Path]) -> None:
    context = tls.server_context(certificates["server.pem"], certificates["server.key"],
                                 certificates["ca.pem"])
    seen: list[object] = []

    async def handler(request: Request) -> Response:
        seen.append(request.tls_peer_certificate)
        return json_response({"peer": request.peer})

    tcp = await open_tcp_listeners("127.0.0.1", 0)
    async with running(handler, [tls_listener(tcp[0], context)]) as (_, address):
        host, port = address
        good = tls.client_context(certificates["ca.pem"], certificates["client.pem"],
                                  certificates["client.key"])
        async with httpx.AsyncClient(verify=good) as client:
            for _ in range(2):
                reply = await client.get(f"https://{host}:{port}/info")
                assert reply.status_code == 200
                assert reply.json()["peer"].startswith("127.0.0.1:")
        subject = dict(item[0] for item in seen[0]["subject"])
        assert subject["commonName"] == "client"

        without_certificate = tls.client_context(certificates["ca.pem"])
        async with httpx.AsyncClient(verify=without_certificate) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"https://{host}:{port}/info")
        assert len(seen) == 2, "no request without a client certificate reached the handler"

        async with httpx.AsyncClient(verify=good) as client:
            assert (await client.get(f"https://{host}:{port}/again")).status_code == 200


def test_tls_config_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(tls.TLSConfigError, match=r"missing\.pem"):
        tls.server_context(tmp_path / "missing.pem", tmp_path / "key.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(tls.TLSConfigError, match=r"garbage\.pem"):
        tls.server_context(garbage, garbage)
