"""Small actors and world builders shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from runtime.actor import Actor
from runtime.codec import message
from runtime.node import Node
from sim.network import LinkConfig, NetworkConfig
from sim.world import World


@message("test.sim.note")
@attrs.frozen
class Note:
    seq: int
    origin: str


class Recorder(Actor):
    """Appends (time, node, origin, seq) for every Note it receives."""

    def __init__(self, received: list[tuple[float, str, str, int]]) -> None:
        self.received = received

    async def receive(self, message: Any) -> Any:
        match message:
            case Note(seq, origin):
                self.received.append((trio.current_time(), self.node.node_id, origin, seq))
        return None


def recording_world(
    seed: int = 1,
    nodes: tuple[str, ...] = ("a", "b"),
    link: LinkConfig | None = None,
    quantum_seconds: float = 0.001,
) -> tuple[World, list[tuple[float, str, str, int]], dict[str, int]]:
    """A world whose nodes each run a `rec` Recorder; returns (world, received, boots)."""
    received: list[tuple[float, str, str, int]] = []
    boots: dict[str, int] = {}
    world = World(
        seed,
        network=NetworkConfig(
            link=link if link is not None else LinkConfig(),
            delivery_quantum_seconds=quantum_seconds,
        ),
    )

    async def boot(node: Node) -> None:
        boots[node.node_id] = boots.get(node.node_id, 0) + 1
        await node.spawn(lambda: Recorder(received), "rec")

    for node_id in nodes:
        world.add_node(node_id, boot)
    return world, received, boots


def send_notes(world: World, at_seconds: float, source: str, target: str, count: int) -> None:
    """At `at_seconds`, node `source` tells `count` Notes (seq 0..count-1) to target's rec."""

    def fire() -> None:
        node = world.node(source)
        assert node is not None, f"{source} is down at {at_seconds}"
        ref = node.ref("rec", target)
        for seq in range(count):
            ref.tell_nowait(Note(seq, source))

    world.schedule(at_seconds, fire)


def from_to(received: list[tuple[float, str, str, int]], source: str, target: str) -> list[int]:
    return [seq for _, node, origin, seq in received if origin == source and node == target]
