"""The embedded DNS server of user-defined networks (Docker's 127.0.0.11).

How a query travels: the container's resolv.conf says `nameserver 127.0.0.11`. In the
container's netns flotta holds a UDP and a TCP socket bound to 127.0.0.11 on a random port,
and a small nft table there redirects 127.0.0.11:53 to them (so a container may still run
its own server on port 53, as with Docker). The sockets were created by a thread that
entered the netns; this one Trio server in the daemon serves every container's pair, so it
knows which container asks without looking at addresses.

What it answers (rules):
- Names of containers on the networks the asking container is attached to: the container
  name, its network aliases (Compose service names arrive as aliases) and its short id,
  also in the form `<name>.<network>`. The first network (in attach order) that knows the
  name answers, with every address registered under it there, shuffled (several
  containers sharing an alias give several A records). TTL 600 s, as Docker's.
- A known name asked for another type (AAAA, MX...) gets NOERROR with no answers.
- PTR for an address on those networks: `<container>.<network>`.
- Everything else is forwarded to the upstream servers (`--dns`, else the host's
  resolv.conf) from the host's netns, one server after another, each bounded by
  `forward_timeout_seconds` and the whole by `forward_total_seconds`. No upstream, or a
  container attached only to internal networks: SERVFAIL at once. All upstreams silent:
  SERVFAIL when the budget is spent. Never a hang.
- Malformed queries: FORMERR if a header could be read, else dropped; responses sent to
  the server are dropped (no loops); opcodes other than QUERY get NOTIMP.
- Bounds: `forwards_max` forwarded queries in flight per container (beyond: SERVFAIL),
  `tcp_connections_max` TCP connections per container, idle TCP closed after
  `tcp_idle_seconds`.
"""

from __future__ import annotations

import logging
import random as random_module
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from actors.network import dnscodec, firewall
from actors.network.dnscodec import DnsFormatError, Message
from actors.network.model import EMBEDDED_DNS_ADDRESS

log = logging.getLogger("flotta.network.dns")
TTL_SECONDS = 600
UDP_PAYLOAD_BYTES_MAX = 4096


# ---- the directory: who is called what, on which network ------------------------------------


@attrs.define
class _NetworkNames:
    name: str
    internal: bool
    # container id -> (address, names as lowercase text)
    records: dict[str, tuple[str, tuple[str, ...]]] = attrs.field(factory=dict)


class DnsDirectory:
    """Names per network, and the networks of each container, in attach order."""

    def __init__(self) -> None:
        self._networks: dict[str, _NetworkNames] = {}
        self._sandboxes: dict[str, list[str]] = {}
        self._upstreams: dict[str, tuple[str, ...]] = {}

    def set_network(self, network_id: str, name: str, internal: bool) -> None:
        existing = self._networks.get(network_id)
        records = existing.records if existing else {}
        self._networks[network_id] = _NetworkNames(name, internal, records)

    def remove_network(self, network_id: str) -> None:
        self._networks.pop(network_id, None)
        for networks in self._sandboxes.values():
            if network_id in networks:
                networks.remove(network_id)

    def add_endpoint(self, network_id: str, container_id: str, address: str, names: Sequence[str]) -> None:
        network = self._networks[network_id]
        network.records[container_id] = (address, tuple(dict.fromkeys(n.lower() for n in names if n)))
        attached = self._sandboxes.setdefault(container_id, [])
        if network_id not in attached:
            attached.append(network_id)

    def remove_endpoint(self, network_id: str, container_id: str) -> None:
        network = self._networks.get(network_id)
        if network is not None:
            network.records.pop(container_id, None)
        attached = self._sandboxes.get(container_id)
        if attached and network_id in attached:
            attached.remove(network_id)

    def remove_container(self, container_id: str) -> None:
        for network_id in list(self._sandboxes.get(container_id, ())):
            self.remove_endpoint(network_id, container_id)
        self._sandboxes.pop(container_id, None)
        self._upstreams.pop(container_id, None)

    def set_upstreams(self, container_id: str, servers: Sequence[str]) -> None:
        """Per-container upstreams (`--dns`, IPv4 ones: the forwarder speaks IPv4); empty
        means the host's."""
        servers = tuple(s for s in servers if ":" not in s)
        if servers:
            self._upstreams[container_id] = servers
        else:
            self._upstreams.pop(container_id, None)

    def upstreams_for(self, container_id: str, default: Sequence[str]) -> tuple[str, ...]:
        return self._upstreams.get(container_id, tuple(default))

    def lookup(self, container_id: str, name: str) -> list[str] | None:
        """Addresses for `name` as seen from the container; None when no network knows it."""
        wanted = name.lower().rstrip(".")
        for network_id in self._sandboxes.get(container_id, ()):
            network = self._networks.get(network_id)
            if network is None:
                continue
            candidates = {wanted}
            suffix = "." + network.name.lower()
            if wanted.endswith(suffix):
                candidates.add(wanted[: -len(suffix)])
            found = [address for address, names in network.records.values() if candidates & set(names)]
            if found:
                return found
        return None

    def reverse(self, container_id: str, address: str) -> str | None:
        for network_id in self._sandboxes.get(container_id, ()):
            network = self._networks.get(network_id)
            if network is None:
                continue
            for record_address, names in network.records.values():
                if record_address == address and names:
                    return f"{names[0]}.{network.name}"
        return None

    def may_forward(self, container_id: str) -> bool:
        """Containers only on internal networks get no answers from outside (as Docker)."""
        networks = [self._networks.get(n) for n in self._sandboxes.get(container_id, ())]
        return any(network is not None and not network.internal for network in networks)


def _question_text(name: dnscodec.Name) -> str:
    return ".".join(label.decode("latin-1") for label in name)


def local_answer(
    directory: DnsDirectory, container_id: str, query: Message, rng: random_module.Random
) -> Message | None:
    """The response from flotta's own records, or None when the query must be forwarded."""
    question = query.questions[0]
    if question.qclass != dnscodec.CLASS_IN:
        return None
    if question.qtype == dnscodec.TYPE_PTR:
        address = dnscodec.address_from_reverse_name(question.name)
        target = directory.reverse(container_id, address) if address else None
        if target is None:
            return None
        record = dnscodec.ptr_record(question.name, dnscodec.name_from_text(target), TTL_SECONDS)
        return dnscodec.response_to(query, dnscodec.RCODE_NOERROR, [record])
    addresses = directory.lookup(container_id, _question_text(question.name))
    if addresses is None:
        return None
    if question.qtype not in (dnscodec.TYPE_A, dnscodec.TYPE_ANY):
        return dnscodec.response_to(query, dnscodec.RCODE_NOERROR)
    addresses = list(addresses)
    rng.shuffle(addresses)
    answers = [dnscodec.a_record(question.name, address, TTL_SECONDS) for address in addresses]
    return dnscodec.response_to(query, dnscodec.RCODE_NOERROR, answers)


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A header-only error response for a query we could not (or would not) decode."""
    if len(data) < dnscodec.HEADER_BYTES:
        return None
    identifier, flags = struct.unpack("!HH", data[:4])
    if flags & 0x8000:
        return None  # a response: never answer it
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode  # keep opcode and RD, set RA
    return struct.pack("!HHHHHH", identifier, reply_flags, 0, 0, 0, 0)


# ---- sockets inside a container's netns -----------------------------------------------------


@attrs.frozen
class DnsSockets:
    udp: socket.socket
    tcp: socket.socket

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


def bind_in_current_netns(address: str = EMBEDDED_DNS_ADDRESS) -> DnsSockets:
    """In a thread inside the container's netns: bind 127.0.0.11 on random ports and
    redirect port 53 there with an nft table in that netns."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((address, 0))
        port = udp.getsockname()[1]
        try:
            tcp.bind((address, port))
        except OSError:
            tcp.bind((address, 0))
        tcp.listen(64)
        for created in (udp, tcp):
            created.setblocking(False)
        firewall.apply(firewall.render_dns_redirect(port, tcp.getsockname()[1], address))
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return DnsSockets(udp, tcp)


# ---- the server -----------------------------------------------------------------------------

SocketFactory = Callable[[int], Awaitable[trio.socket.SocketType]]


async def _socket_in_daemon_netns(kind: int) -> trio.socket.SocketType:
    return trio.socket.socket(socket.AF_INET, kind)


class DnsServer:
    """Serves the sockets of every container with embedded DNS, and forwards upstream."""

    def __init__(
        self,
        directory: DnsDirectory,
        upstreams: Callable[[], Sequence[str]],
        *,
        socket_factory: SocketFactory = _socket_in_daemon_netns,
        rng: random_module.Random | None = None,
        forward_timeout_seconds: float = 2.0,
        forward_total_seconds: float = 5.0,
        forward_servers_max: int = 3,
        forwards_max: int = 64,
        tcp_connections_max: int = 16,
        tcp_idle_seconds: float = 10.0,
        upstream_port: int = 53,
    ) -> None:
        self.directory = directory
        self.upstreams = upstreams
        self.socket_factory = socket_factory
        self.rng = rng or random_module.SystemRandom()
        self.forward_timeout_seconds = forward_timeout_seconds
        self.forward_total_seconds = forward_total_seconds
        self.forward_servers_max = forward_servers_max
        self.forwards_max = forwards_max
        self.tcp_connections_max = tcp_connections_max
        self.tcp_idle_seconds = tcp_idle_seconds
        self.upstream_port = upstream_port
        self._nursery: trio.Nursery | None = None
        self._scopes: dict[str, trio.CancelScope] = {}
        self.statistics = {"queries": 0, "local": 0, "forwarded": 0, "servfail": 0, "dropped": 0}

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; every container's sockets are served in here."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._scopes.clear()

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def add_sandbox(self, container_id: str, sockets: DnsSockets) -> None:
        """Start serving a container's pair of sockets (replacing any earlier pair)."""
        if self._nursery is None:
            sockets.close()
            raise RuntimeError("the DNS server is not running")
        self.remove_sandbox(container_id)
        scope = trio.CancelScope()
        self._scopes[container_id] = scope
        self._nursery.start_soon(self._serve_sandbox, container_id, sockets, scope)

    def remove_sandbox(self, container_id: str) -> None:
        scope = self._scopes.pop(container_id, None)
        if scope is not None:
            scope.cancel()

    def sandboxes(self) -> list[str]:
        return sorted(self._scopes)

    async def _serve_sandbox(self, container_id: str, sockets: DnsSockets, scope: trio.CancelScope) -> None:
        udp = trio.socket.from_stdlib_socket(sockets.udp)
        tcp = trio.socket.from_stdlib_socket(sockets.tcp)
        forwards = trio.Semaphore(self.forwards_max)
        connections = trio.Semaphore(self.tcp_connections_max)
        with scope, udp, tcp:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._udp_loop, container_id, udp, forwards, nursery)
                nursery.start_soon(self._tcp_loop, container_id, tcp, forwards, connections, nursery)

    # ---- UDP -------------------------------------------------------------------------------

    async def _udp_loop(self, container_id: str, udp: trio.socket.SocketType, forwards: trio.Semaphore, nursery: trio.Nursery) -> None:
        while True:
            try:
                data, peer = await udp.recvfrom(UDP_PAYLOAD_BYTES_MAX)
            except OSError as error:
                log.warning("DNS: receive failed for %s: %s", container_id[:12], error)
                await trio.sleep(0.01)
                continue
            nursery.start_soon(self._udp_one, container_id, udp, data, peer, forwards)

    async def _udp_one(
        self,
        container_id: str,
        udp: trio.socket.SocketType,
        data: bytes,
        peer: tuple[str, int],
        forwards: trio.Semaphore,
    ) -> None:
        reply = await self.handle(container_id, data, forwards, over_tcp=False)
        if reply is not None:
            try:
                await udp.sendto(reply, peer)
            except OSError as error:
                log.debug("DNS: reply to %s failed: %s", peer, error)

    # ---- TCP -------------------------------------------------------------------------------

    async def _tcp_loop(
        self,
        container_id: str,
        listener: trio.socket.SocketType,
        forwards: trio.Semaphore,
        connections: trio.Semaphore,
        nursery: trio.Nursery,
    ) -> None:
        while True:
            try:
                connection, _ = await listener.accept()
            except OSError as error:
                log.warning("DNS: accept failed for %s: %s", container_id[:12], error)
                await trio.sleep(0.01)
                continue
            try:
                connections.acquire_nowait()
            except trio.WouldBlock:
                connection.close()
                continue
            nursery.start_soon(self._tcp_connection, container_id, connection, forwards, connections)

    async def _tcp_connection(
        self, container_id: str, connection: trio.socket.SocketType, forwards: trio.Semaphore, connections: trio.Semaphore
    ) -> None:
        stream = trio.SocketStream(connection)
        try:
            async with stream:
                while True:
                    with trio.move_on_after(self.tcp_idle_seconds) as idle:
                        data = await _read_framed(stream)
                    if idle.cancelled_caught or data is None:
                        return
                    reply = await self.handle(container_id, data, forwards, over_tcp=True)
                    if reply is None:
                        return
                    await stream.send_all(struct.pack("!H", len(reply)) + reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            connections.release()

    # ---- one query -------------------------------------------------------------------------

    async def handle(self, container_id: str, data: bytes, forwards: trio.Semaphore, *, over_tcp: bool) -> bytes | None:
        """The reply bytes for one query from `container_id`, or None to stay silent."""
        self.statistics["queries"] += 1
        try:
            query = dnscodec.decode(data)
        except DnsFormatError:
            self.statistics["dropped"] += 1
            return error_reply(data, dnscodec.RCODE_FORMERR)
        if query.is_response:
            self.statistics["dropped"] += 1
            return None
        if query.opcode != dnscodec.OPCODE_QUERY:
            return error_reply(data, dnscodec.RCODE_NOTIMP)
        if len(query.questions) != 1:
            return error_reply(data, dnscodec.RCODE_FORMERR)
        payload_bytes = 65535 if over_tcp else min(query.edns_payload_bytes(), UDP_PAYLOAD_BYTES_MAX)
        local = local_answer(self.directory, container_id, query, self.rng)
        if local is not None:
            self.statistics["local"] += 1
            return dnscodec.fit_for_udp(local, payload_bytes)
        servers = self.directory.upstreams_for(container_id, self.upstreams())
        if not servers or not self.directory.may_forward(container_id):
            return self._servfail(query, payload_bytes)
        try:
            forwards.acquire_nowait()
        except trio.WouldBlock:
            return self._servfail(query, payload_bytes)
        try:
            reply = await self._forward(data, servers, over_tcp)
        finally:
            forwards.release()
        if reply is None:
            return self._servfail(query, payload_bytes)
        self.statistics["forwarded"] += 1
        return reply

    def _servfail(self, query: Message, payload_bytes: int) -> bytes:
        self.statistics["servfail"] += 1
        return dnscodec.fit_for_udp(dnscodec.response_to(query, dnscodec.RCODE_SERVFAIL), payload_bytes)

    async def _forward(self, data: bytes, servers: Sequence[str], over_tcp: bool) -> bytes | None:
        """Ask upstreams in turn with a fresh id; the reply gets the client's id back."""
        client_id = data[:2]
        with trio.move_on_after(self.forward_total_seconds):
            for server in list(servers)[: self.forward_servers_max]:
                upstream_id = struct.pack("!H", self.rng.getrandbits(16))
                query = upstream_id + data[2:]
                with trio.move_on_after(self.forward_timeout_seconds):
                    try:
                        if over_tcp:
                            reply = await self._ask_tcp(server, query)
                        else:
                            reply = await self._ask_udp(server, query, upstream_id)
                    except OSError as error:
                        log.debug("DNS: upstream %s failed: %s", server, error)
                        reply = None
                    if reply is not None and reply[:2] == upstream_id and len(reply) >= dnscodec.HEADER_BYTES:
                        return client_id + reply[2:]
        return None

    async def _ask_udp(self, server: str, query: bytes, upstream_id: bytes) -> bytes | None:
        with await self.socket_factory(socket.SOCK_DGRAM) as sock:
            await sock.connect((server, self.upstream_port))
            await sock.send(query)
            while True:
                reply = await sock.recv(65535)
                if reply[:2] == upstream_id:
                    return reply

    async def _ask_tcp(self, server: str, query: bytes) -> bytes | None:
        sock = await self.socket_factory(socket.SOCK_STREAM)
        try:
            await sock.connect((server, self.upstream_port))
        except BaseException:
            sock.close()
            raise
        async with trio.SocketStream(sock) as stream:
            await stream.send_all(struct.pack("!H", len(query)) + query)
            return await _read_framed(stream)


async def _read_framed(stream: trio.SocketStream) -> bytes | None:
    """One length-prefixed DNS message from a TCP stream; None at EOF."""
    header = await _read_exactly(stream, 2)
    if header is None:
        return None
    (length,) = struct.unpack("!H", header)
    return await _read_exactly(stream, length)


async def _read_exactly(stream: trio.SocketStream, count: int) -> bytes | None:
    buffer = bytearray()
    while len(buffer) < count:
        chunk = await stream.receive_some(count - len(buffer))
        if not chunk:
            return None
        buffer += chunk
    return bytes(buffer)
