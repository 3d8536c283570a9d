"""Actor runtime throughput: in-process, UNIX socket and TCP loopback, and the simulator.

Prints messages per second for one-way streaming (tell) and request/reply (ask, one in
flight and 64 in flight) between two actors: on one node, between two nodes of one
process (frames encoded), and between two processes over a UNIX socket and over TCP on
loopback. Then runs the simulator's ping scenario (5 nodes) and prints its delivered
messages per wall second and simulated-to-wall time ratio.

    .venv/bin/python bench/runtime_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import attrs
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.actor import Actor  # noqa: E402
from runtime.codec import message  # noqa: E402
from runtime.disk import RealDisk  # noqa: E402
from runtime.host import Host  # noqa: E402
from runtime.node import Node  # noqa: E402
from runtime.sockets import SocketTransport  # noqa: E402
from runtime.transport import InProcessNetwork, NullTransport, Transport  # noqa: E402


@message("bench.item")
@attrs.frozen
class Item:
    sequence: int
    payload: bytes = b""


@message("bench.total")
@attrs.frozen
class Total:
    count: int


@message("bench.how_many")
@attrs.frozen
class HowMany:
    pass


class Sink(Actor):
    mailbox_capacity = 65536

    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: object) -> object:
        if type(message) is HowMany:
            return Total(self.count)
        self.count += 1
        return message


def host(node_id: str, transport: Transport, directory: str) -> Host:
    return Host(node_id, transport, RealDisk(Path(directory) / node_id), random.Random(1))


async def one_way(node: Node, target_node: str, count: int, window: int = 8192) -> float:
    """Tells in windows: after each window one ask, which travels behind the tells on the
    same connection, so its answer means the whole window was handled (flow control: a
    remote mailbox drops what it has no room for)."""
    ref = node.ref("sink", target_node)
    item = Item(1, b"x" * 32)
    start = time.perf_counter()
    sent = 0
    while sent < count:
        batch = min(window, count - sent)
        for _ in range(batch):
            await ref.tell(item)
        sent += batch
        await ref.ask(HowMany(), timeout=60)
    return count / (time.perf_counter() - start)


async def request_reply(node: Node, target_node: str, count: int, in_flight: int) -> float:
    ref = node.ref("sink", target_node)
    item = Item(1, b"x" * 32)
    per_worker = count // in_flight

    async def worker() -> None:
        for _ in range(per_worker):
            await ref.ask(item, timeout=30)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(in_flight):
            nursery.start_soon(worker)
    return per_worker * in_flight / (time.perf_counter() - start)


async def measure(node: Node, target: str, scale: int) -> dict[str, float]:
    return {
        "one-way": await one_way(node, target, 200_000 // scale),
        "ask x1": await request_reply(node, target, 20_000 // scale, 1),
        "ask x64": await request_reply(node, target, 64_000 // scale, 64),
    }


async def in_process(scale: int, directory: str) -> dict[str, dict[str, float]]:
    results = {}
    node = Node(host("a", NullTransport("a"), directory))
    async with node.running():
        await node.spawn(Sink, "sink")
        results["same node (no encoding)"] = await measure(node, "a", scale)
    network = InProcessNetwork()
    first = Node(host("a", network.transport("a"), directory))
    second = Node(host("b", network.transport("b"), directory))
    async with first.running(), second.running():
        await second.spawn(Sink, "sink")
        results["two nodes, one process (encoded)"] = await measure(first, "b", scale)
    return results


PEER = textwrap.dedent(
    """
    import sys, trio
    sys.path.insert(0, {root!r})
    sys.argv = ["peer"]
    from bench.runtime_bench import Sink, host
    from runtime.node import Node
    from runtime.sockets import SocketTransport

    async def main():
        transport = SocketTransport("b", {address_b!r}, {{"a": {address_a!r}}})
        node = Node(host("b", transport, {directory!r}))
        async with node.running():
            await node.spawn(Sink, "sink")
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


async def across_processes(kind: str, scale: int, directory: str) -> dict[str, float]:
    if kind == "unix":
        address_a, address_b = f"unix:{directory}/a.sock", f"unix:{directory}/b.sock"
    else:
        ports = []
        for _ in range(2):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                ports.append(probe.getsockname()[1])
        address_a, address_b = (f"tcp:127.0.0.1:{port}" for port in ports)
    code = PEER.format(root=str(ROOT), address_a=address_a, address_b=address_b, directory=directory)
    peer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
        node = Node(host("a", SocketTransport("a", address_a, {"b": address_b}), directory))
        async with node.running():
            return await measure(node, "b", scale)
    finally:
        peer.kill()
        peer.wait()
        if peer.stdout is not None:
            peer.stdout.close()


def simulator(quick: bool) -> str:
    """The simulator's own bench (a subprocess: nothing outside sim/ imports sim)."""
    durations = ["--duration", "3", "--light-duration", "60"] if quick else ["--duration", "10", "--light-duration", "300"]
    result = subprocess.run(
        [sys.executable, "-m", "sim.bench", *durations], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return f"simulator bench failed: {result.stderr.strip()[-500:]}"
    return result.stdout.rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    arguments = parser.parse_args()
    scale = 10 if arguments.quick else 1
    with tempfile.TemporaryDirectory() as directory:
        rows: dict[str, dict[str, float]] = trio.run(in_process, scale, directory)
        rows["UNIX socket, two processes"] = trio.run(across_processes, "unix", scale, directory)
        rows["TCP loopback, two processes"] = trio.run(across_processes, "tcp", scale, directory)
    print(f"flotta actor runtime, messages per second (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"{'path':<36}{'one-way':>12}{'ask x1':>12}{'ask x64':>12}")
    for name, figures in rows.items():
        print(f"{name:<36}" + "".join(f"{figures[key]:>12,.0f}" for key in ("one-way", "ask x1", "ask x64")))
    print("targets: one-way in-process >= 200,000/s; TCP with batching >= 50,000/s")
    print("simulator, 5 nodes (python -m sim.bench):")
    print(textwrap.indent(simulator(arguments.quick), "  "))
    print("target: simulator >= 50,000 delivered messages per wall second")


if __name__ == "__main__":
    main()
