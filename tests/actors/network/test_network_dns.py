"""The embedded DNS server's rules, served on loopback sockets (no namespaces needed)."""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import AsyncIterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.network import dnscodec
from actors.network.dns import DnsDirectory, DnsServer, DnsSockets, local_answer
from actors.network.dnscodec import Message, Question

WEB, CLIENT, STRANGER, LONER = "web" + "0" * 61, "cli" + "0" * 61, "str" + "0" * 61, "lon" + "0" * 61


def directory() -> DnsDirectory:
    names = DnsDirectory()
    names.set_network("front", "frontnet", internal=False)
    names.set_network("back", "backnet", internal=False)
    names.set_network("vault", "vaultnet", internal=True)
    names.add_endpoint("front", WEB, "10.0.0.2", ["web", "www", "shared", WEB[:12]])
    names.add_endpoint("front", CLIENT, "10.0.0.3", ["client", "shared"])
    names.add_endpoint("back", CLIENT, "10.1.0.3", ["client"])
    names.add_endpoint("back", STRANGER, "10.1.0.4", ["stranger", "web"])
    names.add_endpoint("vault", LONER, "10.2.0.2", ["loner"])
    return names


def query(name: str, qtype: int = dnscodec.TYPE_A, identifier: int = 7) -> Message:
    return Message(id=identifier, recursion_desired=True, questions=(Question(dnscodec.name_from_text(name), qtype),))


def addresses(message: Message | None) -> list[str]:
    assert message is not None
    return sorted(".".join(str(b) for b in record.rdata) for record in message.answers)


def test_names_resolve_only_on_shared_networks_first_network_wins() -> None:
    names, rng = directory(), random.Random(1)
    assert addresses(local_answer(names, CLIENT, query("web"), rng)) == ["10.0.0.2"]  # front before back
    assert addresses(local_answer(names, CLIENT, query("WWW.frontnet."), rng)) == ["10.0.0.2"]
    assert addresses(local_answer(names, CLIENT, query("shared"), rng)) == ["10.0.0.2", "10.0.0.3"]
    assert addresses(local_answer(names, STRANGER, query("web"), rng)) == ["10.1.0.4"]
    assert local_answer(names, STRANGER, query("www"), rng) is None  # not on back: forwarded
    assert addresses(local_answer(names, CLIENT, query(WEB[:12]), rng)) == ["10.0.0.2"]


def test_known_name_other_type_is_nodata_and_ptr_names_container_dot_network() -> None:
    names, rng = directory(), random.Random(1)
    nodata = local_answer(names, CLIENT, query("web", dnscodec.TYPE_AAAA), rng)
    assert nodata is not None and nodata.rcode == dnscodec.RCODE_NOERROR and nodata.answers == ()
    reverse = local_answer(names, CLIENT, query("2.0.0.10.in-addr.arpa", dnscodec.TYPE_PTR), rng)
    assert reverse is not None
    target = dnscodec._Reader(reverse.answers[0].rdata).name()
    assert dnscodec.name_to_text(target) == "web.frontnet"
    assert local_answer(names, CLIENT, query("9.9.9.9.in-addr.arpa", dnscodec.TYPE_PTR), rng) is None


def test_removal_and_forwarding_policy() -> None:
    names = directory()
    assert names.may_forward(CLIENT) and not names.may_forward(LONER)
    names.remove_endpoint("front", WEB)
    assert names.lookup(CLIENT, "web") == ["10.1.0.4"]  # now only back knows a "web"
    names.remove_container(CLIENT)
    assert names.lookup(CLIENT, "stranger") is None
    names.set_upstreams(STRANGER, ["192.0.2.1", "2001:db8::1"])
    assert names.upstreams_for(STRANGER, ["198.51.100.1"]) == ("192.0.2.1",)
    assert names.upstreams_for(WEB, ["198.51.100.1"]) == ("198.51.100.1",)


def loopback_pair() -> DnsSockets:
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(udp.getsockname())  # same port, as bind_in_current_netns does when it can
            break
        except OSError:  # that port is taken for TCP: another pair
            udp.close()
            tcp.close()
    else:
        raise RuntimeError("no loopback port free for both UDP and TCP")
    tcp.listen(8)
    udp.setblocking(False)
    tcp.setblocking(False)
    return DnsSockets(udp, tcp)


class Upstream:
    """A fake upstream resolver on loopback: answers A queries with 192.0.2.99, or nothing."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.queries: list[Message] = []
        self.udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    async def start(self, nursery: trio.Nursery) -> int:
        # UDP and TCP on one port: the UDP port the kernel picks may be taken for TCP
        # (by any process's connection), so try again with a fresh pair when it is.
        for _ in range(50):
            await self.udp.bind(("127.0.0.1", 0))
            port = self.udp.getsockname()[1]
            try:
                await self.tcp.bind(("127.0.0.1", port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
                self.udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.tcp = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            raise RuntimeError("no loopback port free for both UDP and TCP")
        self.tcp.listen(4)
        nursery.start_soon(self._udp)
        nursery.start_soon(self._tcp)
        return port

    def _answer(self, data: bytes) -> bytes:
        message = dnscodec.decode(data)
        self.queries.append(message)
        record = dnscodec.a_record(message.questions[0].name, "192.0.2.99", 60)
        return dnscodec.encode(dnscodec.response_to(message, dnscodec.RCODE_NOERROR, [record]))

    async def _udp(self) -> None:
        while True:
            data, peer = await self.udp.recvfrom(4096)
            if not self.silent:
                await self.udp.sendto(self._answer(data), peer)

    async def _tcp(self) -> None:
        while True:
            connection, _ = await self.tcp.accept()
            with connection:
                (length,) = struct.unpack("!H", await connection.recv(2))
                data = await connection.recv(length)
                reply = self._answer(data)
                await connection.send(struct.pack("!H", len(reply)) + reply)


@pytest.fixture
async def served(nursery: trio.Nursery) -> AsyncIterator[tuple[DnsServer, dict[str, tuple[str, int]], Upstream]]:
    upstream = Upstream()
    port = await upstream.start(nursery)
    servers = {"default": ["127.0.0.1"]}
    server = DnsServer(
        directory(),
        lambda: servers["default"],
        rng=random.Random(3),
        forward_timeout_seconds=0.3,
        forward_total_seconds=1.0,
        upstream_port=port,
    )
    await nursery.start(server.serve)
    addresses_by_container = {}
    for container_id in (WEB, CLIENT, LONER):
        pair = loopback_pair()
        addresses_by_container[container_id] = pair.udp.getsockname()
        server.add_sandbox(container_id, pair)
    server.test_servers = servers  # type: ignore[attr-defined]
    with upstream.udp, upstream.tcp:
        yield server, addresses_by_container, upstream


async def ask_udp(address: tuple[str, int], message: Message | bytes) -> Message:
    data = message if isinstance(message, bytes) else dnscodec.encode(message)
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect(address)
        await sock.send(data)
        with trio.fail_after(5):
            return dnscodec.decode(await sock.recv(65535))


async def test_udp_local_answer_and_forwarding(served) -> None:
    server, by_container, upstream = served
    reply = await ask_udp(by_container[CLIENT], query("web", identifier=4242))
    assert reply.id == 4242 and reply.is_response and addresses(reply) == ["10.0.0.2"]
    assert reply.questions == query("web").questions
    forwarded = await ask_udp(by_container[CLIENT], query("elsewhere.example", identifier=99))
    assert forwarded.id == 99 and addresses(forwarded) == ["192.0.2.99"]
    # The upstream saw a different id (a fresh one per forwarded query).
    assert upstream.queries[-1].questions == query("elsewhere.example").questions
    assert server.statistics["forwarded"] == 1 and server.statistics["local"] == 1


async def test_tcp_queries_are_served_and_forwarded(served) -> None:
    _, by_container, _ = served
    host, port = by_container[CLIENT]
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            for name, expected in (("web", "10.0.0.2"), ("far.example", "192.0.2.99")):
                data = dnscodec.encode(query(name))
                await stream.send_all(struct.pack("!H", len(data)) + data)
                (length,) = struct.unpack("!H", await stream.receive_some(2))
                body = b""
                while len(body) < length:
                    body += await stream.receive_some(length - len(body))
                assert addresses(dnscodec.decode(body)) == [expected]


async def test_servfail_without_upstreams_internal_only_or_silent_upstream(served) -> None:
    server, by_container, upstream = served
    loner = await ask_udp(by_container[LONER], query("far.example"))
    assert loner.rcode == dnscodec.RCODE_SERVFAIL  # only on an internal network: no forwarding
    assert addresses(await ask_udp(by_container[LONER], query("loner"))) == ["10.2.0.2"]
    server.test_servers["default"] = []
    assert (await ask_udp(by_container[CLIENT], query("far.example"))).rcode == dnscodec.RCODE_SERVFAIL
    server.test_servers["default"] = ["127.0.0.1"]
    upstream.silent = True
    with trio.fail_after(5):  # bounded: forward_total_seconds is 1 s
        reply = await ask_udp(by_container[CLIENT], query("far.example"))
    assert reply.rcode == dnscodec.RCODE_SERVFAIL


async def test_malformed_queries_get_formerr_or_silence(served) -> None:
    server, by_container, _ = served
    garbage = struct.pack("!HHHHHH", 77, 0x0100, 1, 0, 0, 0) + b"\x05ab"
    reply = await ask_udp(by_container[WEB], garbage)
    assert reply.id == 77 and reply.rcode == dnscodec.RCODE_FORMERR
    notimp = await ask_udp(by_container[WEB], Message(id=5, opcode=2, questions=query("web").questions))
    assert notimp.rcode == dnscodec.RCODE_NOTIMP
    # A response sent to the server, and a runt, are dropped; the server keeps serving.
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect(by_container[WEB])
        await sock.send(dnscodec.encode(Message(id=1, is_response=True)))
        await sock.send(b"\x01")
    assert addresses(await ask_udp(by_container[WEB], query("www"))) == ["10.0.0.2"]
    server.remove_sandbox(WEB)
    assert WEB not in server.sandboxes()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
async def test_arbitrary_bytes_never_break_the_handler(data: bytes) -> None:
    server = DnsServer(directory(), lambda: [], rng=random.Random(0))
    reply = await server.handle(CLIENT, data, trio.Semaphore(4), over_tcp=False)
    if reply is not None:
        decoded = dnscodec.decode(reply)
        assert decoded.is_response and decoded.id == struct.unpack("!H", data[:2])[0]
