"""Socket transports on loopback: UNIX and TCP, a killed peer, reconnects, limits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from runtime.errors import AskTimeout
from runtime.framing import frame
from runtime.node import Node
from runtime.sockets import SocketTransport, parse_address
from tests.runtime.helpers import Count, Echo, Ping, Pong, make_host

ROOT = Path(__file__).resolve().parents[2]


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def addresses(kind: str, tmp_path: Path) -> tuple[str, str]:
    if kind == "unix":
        return f"unix:{tmp_path}/a.sock", f"unix:{tmp_path}/b.sock"
    return f"tcp:127.0.0.1:{free_tcp_port()}", f"tcp:127.0.0.1:{free_tcp_port()}"


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_ask_and_tell_between_two_nodes(kind: str, tmp_path: Path) -> None:
    address_a, address_b = addresses(kind, tmp_path)
    transport_a = SocketTransport("a", address_a, {"b": address_b})
    transport_b = SocketTransport("b", address_b, {"a": address_a})
    node_a = Node(make_host("a", tmp_path, transport_a))
    node_b = Node(make_host("b", tmp_path, transport_b))
    async with node_a.running(), node_b.running():
        await node_b.spawn(Echo, "echo")
        remote = node_a.ref("echo", "b")
        assert await remote.ask(Ping(1)) == Pong(1)
        for number in range(500):
            await remote.tell(Ping(number))
        assert await remote.ask(Count()) == Pong(501)
        assert transport_a.statistics.frames_sent >= 502
        assert transport_a.statistics.connects == 1


PEER = textwrap.dedent(
    """
    import sys, trio
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from runtime.node import Node
    from runtime.sockets import SocketTransport
    from tests.runtime.helpers import Echo, make_host

    async def main():
        transport = SocketTransport("b", {address_b!r}, {{"a": {address_a!r}}})
        node = Node(make_host("b", Path({tmp!r}), transport))
        async with node.running():
            await node.spawn(Echo, "echo")
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


def start_peer(address_a: str, address_b: str, tmp_path: Path) -> subprocess.Popen[str]:
    code = PEER.format(root=str(ROOT), address_a=address_a, address_b=address_b, tmp=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def stop_peer(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_killed_peer_is_a_timeout_then_reconnects(kind: str, tmp_path: Path) -> None:
    address_a, address_b = addresses(kind, tmp_path)
    transport_a = SocketTransport("a", address_a, {"b": address_b}, backoff_max_seconds=0.2)
    node_a = Node(make_host("a", tmp_path, transport_a))
    peer = start_peer(address_a, address_b, tmp_path)
    try:
        async with node_a.running():
            remote = node_a.ref("echo", "b")
            assert await remote.ask(Ping(1), timeout=5) == Pong(1)
            stop_peer(peer)
            with trio.fail_after(5):
                with pytest.raises(AskTimeout):
                    await remote.ask(Ping(2), timeout=1)
            peer = start_peer(address_a, address_b, tmp_path)
            with trio.fail_after(10):
                while True:
                    try:
                        assert await remote.ask(Ping(3), timeout=0.5) == Pong(3)
                        break
                    except AskTimeout:
                        continue
            assert transport_a.statistics.connects >= 2
    finally:
        stop_peer(peer)


async def test_an_oversized_frame_closes_the_connection(tmp_path: Path) -> None:
    address = f"unix:{tmp_path}/n.sock"
    transport = SocketTransport("n", address, frame_bytes_max=1024)
    node = Node(make_host("n", tmp_path, transport))
    async with node.running():
        stream = await trio.open_unix_socket(f"{tmp_path}/n.sock")
        await stream.send_all(frame(b"flotta-node/1 evil"))
        await stream.send_all((1 << 30).to_bytes(4, "big"))
        with trio.fail_after(5):
            assert await stream.receive_some(10) == b""
        await stream.aclose()


async def test_a_connection_without_a_hello_is_closed(tmp_path: Path) -> None:
    address = f"unix:{tmp_path}/n.sock"
    node = Node(make_host("n", tmp_path, SocketTransport("n", address)))
    async with node.running():
        await node.spawn(Echo, "echo")
        stream = await trio.open_unix_socket(f"{tmp_path}/n.sock")
        await stream.send_all(frame(b"\x95\x00\xa4echo\x80\xa1x\xa0"))
        with trio.fail_after(5):
            assert await stream.receive_some(10) == b""
        await stream.aclose()
        actor = node.actor("echo")
        assert isinstance(actor, Echo) and actor.seen == []


def test_addresses_are_validated() -> None:
    assert parse_address("unix:/run/x.sock") == ("unix", "/run/x.sock")
    assert parse_address("tcp:10.0.0.1:2377") == ("tcp", ("10.0.0.1", 2377))
    for bad in ["unix:", "tcp:host", "tcp:host:99999", "udp:x:1", "/path"]:
        with pytest.raises(ValueError):
            parse_address(bad)


async def test_a_live_socket_path_is_not_stolen(tmp_path: Path) -> None:
    path = tmp_path / "busy.sock"
    holder = socket.socket(socket.AF_UNIX)
    holder.bind(str(path))
    holder.listen()
    try:
        node = Node(make_host("n", tmp_path, SocketTransport("n", f"unix:{path}")))
        with pytest.raises(BaseExceptionGroup) as caught:
            async with node.running():
                pass
        assert caught.value.subgroup(FileExistsError) is not None
    finally:
        holder.close()
    assert os.path.exists(path)
