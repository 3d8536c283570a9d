"""The runtime part of `make demo`: two nodes over a UNIX socket, asks, a crash and restart."""

from __future__ import annotations

import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.actor import Actor
from runtime.codec import message
from runtime.disk import RealDisk
from runtime.errors import ActorCrashed
from runtime.host import Host
from runtime.node import Node
from runtime.sockets import SocketTransport


@message("demo.greet")
@attrs.frozen
class Greet:
    name: str


@message("demo.greeting")
@attrs.frozen
class Greeting:
    text: str
    handled: int


class Greeter(Actor):
    def __init__(self) -> None:
        self.handled = 0

    async def receive(self, message: object) -> object:
        match message:
            case Greet(name) if name == "crash":
                raise RuntimeError("asked to crash")
            case Greet(name):
                self.handled += 1
                return Greeting(f"hello, {name}, from {self.node.node_id}", self.handled)
        return None


async def main(directory: str) -> None:
    logging.basicConfig(level=logging.CRITICAL)
    first_address, second_address = f"unix:{directory}/a.sock", f"unix:{directory}/b.sock"
    first = Node(Host("node-a", SocketTransport("node-a", first_address, {"node-b": second_address}), RealDisk(Path(directory) / "a"), random.Random(1)))
    second = Node(Host("node-b", SocketTransport("node-b", second_address, {"node-a": first_address}), RealDisk(Path(directory) / "b"), random.Random(2)))
    async with first.running(), second.running():
        await second.spawn(Greeter, "greeter")
        greeter = first.ref("greeter", "node-b")
        reply = await greeter.ask(Greet("node-a"))
        print(f"node-a asked greeter@node-b over a UNIX socket: {reply.text!r} (handled {reply.handled})")
        try:
            await greeter.ask(Greet("crash"))
        except ActorCrashed as error:
            print(f"a crash answers the asker at once: {error}")
        reply = await greeter.ask(Greet("again"))
        print(f"the supervisor restarted it with fresh state: handled {reply.handled}")
        count = 20000
        started = time.perf_counter()
        for _ in range(count):
            await greeter.tell(Greet("stream"))
        await greeter.ask(Greet("flush"), timeout=30)
        elapsed = time.perf_counter() - started
        print(f"{count} one-way messages from node-a to node-b: {count / elapsed:,.0f} msgs/s")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        trio.run(main, directory)
