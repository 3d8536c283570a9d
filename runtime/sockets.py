"""Frames between nodes over UNIX sockets or TCP (optionally TLS).

Addresses are `unix:/path/to.sock` or `tcp:HOST:PORT`. Each node listens on one address
and dials each peer it sends to; a connection carries frames one way, from the dialer
to the listener, and starts with a hello frame naming the dialer's node id.

Rules:
- One sender task per peer drains that peer's bounded outbound queue, writing every
  queued frame in one `send_all` (batching is what makes small messages cheap).
- When a peer cannot be reached, the frames queued for it are dropped and counted and
  the sender retries with exponential backoff (jittered); an `ask` to that peer ends in
  its timeout, never in a hang.
- The sender also reads its connection, which the listener never writes to: end of
  stream means the peer closed it (its process died or restarted), and the connection
  is dropped at once, so the next frame dials again instead of vanishing into a dead
  socket.
- A frame header announcing more than `frame_bytes_max` closes the connection before
  anything is allocated for it.
- TLS: pass `server_ssl` / `client_ssl` contexts; the swarm layer supplies mutual-TLS
  contexts and takes the peer's identity from its certificate.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import stat
from collections import deque

import trio

from runtime.framing import FrameDecoder, FrameTooLarge, frame, frame_bytes_max_default, frames
from runtime.transport import Deliver, TransportStatistics

log = logging.getLogger("flotta.transport")

HELLO_PREFIX = b"flotta-node/1 "
queue_frames_max_default = 65536
batch_bytes_max = 1024 * 1024


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if not path:
            raise ValueError(f"empty UNIX socket path in {address!r}")
        return "unix", path
    if address.startswith("tcp:"):
        host, separator, port = address[len("tcp:") :].rpartition(":")
        if not separator or not port.isdigit() or not (0 <= int(port) <= 65535):
            raise ValueError(f"bad TCP address {address!r}: expected tcp:HOST:PORT")
        return "tcp", (host.strip("[]") or "127.0.0.1", int(port))
    raise ValueError(f"unsupported address {address!r}: expected unix:PATH or tcp:HOST:PORT")


class _Peer:
    def __init__(self, node_id: str, address: str) -> None:
        self.node_id = node_id
        self.address = address
        self.queue: deque[bytes] = deque()
        self.wakeup = trio.lowlevel.ParkingLot()
        self.task_started = False


class SocketTransport:
    def __init__(
        self,
        node_id: str,
        listen: str | None,
        peers: dict[str, str] | None = None,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        frame_bytes_max: int = frame_bytes_max_default,
        queue_frames_max: int = queue_frames_max_default,
        connect_timeout_seconds: float = 2.0,
        backoff_initial_seconds: float = 0.05,
        backoff_max_seconds: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.node_id = node_id
        self.listen = listen
        self.address = listen
        self.statistics = TransportStatistics()
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.frame_bytes_max = frame_bytes_max
        self.queue_frames_max = queue_frames_max
        self.connect_timeout_seconds = connect_timeout_seconds
        self.backoff_initial_seconds = backoff_initial_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.rng = rng or random.Random()
        self._peers: dict[str, _Peer] = {}
        self._nursery: trio.Nursery | None = None
        self._deliver: Deliver | None = None
        for peer, address in (peers or {}).items():
            self.add_peer(peer, address)

    def add_peer(self, node_id: str, address: str) -> None:
        parse_address(address)
        existing = self._peers.get(node_id)
        if existing is not None:
            existing.address = address
            return
        self._peers[node_id] = _Peer(node_id, address)

    def remove_peer(self, node_id: str) -> None:
        peer = self._peers.pop(node_id, None)
        if peer is not None:
            self.statistics.frames_dropped += len(peer.queue)
            peer.queue.clear()
            peer.wakeup.unpark_all()

    # --- lifetime -------------------------------------------------------------------------

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._deliver = deliver
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.listen is not None:
                listeners = await self._open_listeners(self.listen)
                nursery.start_soon(self._serve, listeners)
            for peer in self._peers.values():
                if peer.queue:
                    self._ensure_sender(peer)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _open_listeners(self, address: str) -> list[trio.abc.Listener[trio.abc.Stream]]:
        kind, where = parse_address(address)
        if kind == "unix":
            assert isinstance(where, str)
            _remove_stale_socket(where)
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            await sock.bind(where)
            sock.listen(128)
            return [trio.SocketListener(sock)]
        assert isinstance(where, tuple)
        host, port = where
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()
        self.address = f"tcp:{host}:{bound[1]}"
        return list(listeners)

    async def _serve(self, listeners: list[trio.abc.Listener[trio.abc.Stream]]) -> None:
        await trio.serve_listeners(self._handle_inbound, listeners)

    # --- receiving ------------------------------------------------------------------------

    async def _handle_inbound(self, stream: trio.abc.Stream) -> None:
        try:
            if self.server_ssl is not None:
                stream = trio.SSLStream(stream, self.server_ssl, server_side=True)
            await self._receive_frames(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as error:
            log.debug("inbound connection ended: %s", error)
        except FrameTooLarge as error:
            log.warning("closing a connection to node %s: %s", self.node_id, error)
        finally:
            await trio.aclose_forcefully(stream)

    async def _receive_frames(self, stream: trio.abc.Stream) -> None:
        decoder = FrameDecoder(self.frame_bytes_max)
        peer_id: str | None = None
        deliver = self._deliver
        assert deliver is not None
        statistics = self.statistics
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            statistics.bytes_received += len(data)
            for payload in decoder.feed(data):
                if peer_id is None:
                    if not payload.startswith(HELLO_PREFIX):
                        log.warning("closing a connection without a hello")
                        return
                    try:
                        peer_id = payload[len(HELLO_PREFIX) :].decode()
                    except UnicodeDecodeError:
                        return
                    continue
                statistics.frames_received += 1
                deliver(peer_id, payload)

    # --- sending --------------------------------------------------------------------------

    def send_nowait(self, to_node: str, frame_bytes: bytes) -> None:
        peer = self._peers.get(to_node)
        if peer is None or len(peer.queue) >= self.queue_frames_max:
            self.statistics.frames_dropped += 1
            return
        if len(frame_bytes) > self.frame_bytes_max:
            self.statistics.frames_dropped += 1
            log.error("dropping a %d-byte frame to %s: over the frame limit", len(frame_bytes), to_node)
            return
        peer.queue.append(frame_bytes)
        if not peer.task_started:
            self._ensure_sender(peer)
        elif peer.wakeup:
            peer.wakeup.unpark()

    def _ensure_sender(self, peer: _Peer) -> None:
        if self._nursery is None or peer.task_started:
            return
        peer.task_started = True
        self._nursery.start_soon(self._sender, peer)

    async def _connect(self, peer: _Peer) -> trio.abc.Stream:
        kind, where = parse_address(peer.address)
        stream: trio.abc.Stream
        with trio.fail_after(self.connect_timeout_seconds):
            if kind == "unix":
                assert isinstance(where, str)
                stream = await trio.open_unix_socket(where)
            else:
                assert isinstance(where, tuple)
                stream = await trio.open_tcp_stream(*where)
            if self.client_ssl is not None:
                host = where[0] if isinstance(where, tuple) else "localhost"
                ssl_stream = trio.SSLStream(stream, self.client_ssl, server_hostname=host)
                await ssl_stream.do_handshake()
                stream = ssl_stream
            await stream.send_all(frame(HELLO_PREFIX + self.node_id.encode()))
        return stream

    async def _sender(self, peer: _Peer) -> None:
        backoff = self.backoff_initial_seconds
        statistics = self.statistics
        while self._peers.get(peer.node_id) is peer:
            while not peer.queue:
                await peer.wakeup.park()
                if self._peers.get(peer.node_id) is not peer:
                    return
            try:
                stream = await self._connect(peer)
            except (OSError, trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError) as error:
                statistics.connect_failures += 1
                statistics.frames_dropped += len(peer.queue)
                peer.queue.clear()
                log.debug("cannot reach %s at %s: %s", peer.node_id, peer.address, error)
                await trio.sleep(backoff * (0.5 + self.rng.random() / 2))
                backoff = min(self.backoff_max_seconds, backoff * 2)
                continue
            statistics.connects += 1
            backoff = self.backoff_initial_seconds
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_closed, peer, stream, nursery.cancel_scope)
                    try:
                        await self._pump(peer, stream)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as error:
                        log.debug("connection to %s broke: %s", peer.node_id, error)
                    nursery.cancel_scope.cancel()
            finally:
                await trio.aclose_forcefully(stream)

    async def _watch_closed(self, peer: _Peer, stream: trio.abc.Stream, pump: trio.CancelScope) -> None:
        """Notice at once when the listener closes the connection (its process died or
        restarted), so the next frame goes over a new connection: the listener never
        writes, so end-of-stream or an error is the only thing a read can see. Without
        this, the first frames after a peer's restart would be written into the dead
        connection and lost."""
        try:
            while await stream.receive_some(4096):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as error:
            log.debug("connection to %s broke: %s", peer.node_id, error)
        pump.cancel()

    async def _pump(self, peer: _Peer, stream: trio.abc.Stream) -> None:
        statistics = self.statistics
        queue = peer.queue
        while self._peers.get(peer.node_id) is peer:
            while not queue:
                await peer.wakeup.park()
            batch: list[bytes] = []
            size = 0
            while queue and size < batch_bytes_max:
                item = queue.popleft()
                batch.append(item)
                size += len(item)
            data = frames(batch)
            try:
                await stream.send_all(data)
            except BaseException:
                statistics.frames_dropped += len(batch)
                raise
            statistics.frames_sent += len(batch)
            statistics.bytes_sent += len(data)


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file left by a dead process; refuse to clobber anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        return
    finally:
        probe.close()
    raise FileExistsError(f"{path} is in use by a running process")
