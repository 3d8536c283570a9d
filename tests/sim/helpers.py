"""Small actors and world builders shared by the simulator tests."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from runtime.actor import Actor
from runtime.codec import message
from runtime.node import Node
from sim.cli import main as sim_main
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


REPOSITORY = Path(__file__).resolve().parents[2]


def run_cli(*arguments: str) -> tuple[int, str]:
    """`python -m sim ARGUMENTS` in this process: (exit status, what it printed)."""
    out = io.StringIO()
    status = sim_main(list(arguments), out=out)
    return status, out.getvalue()


def match_text(output: str, pattern: str) -> str:
    """The first group of `pattern` in a report, failing with the report if absent."""
    match = re.search(pattern, output)
    assert match, f"{pattern!r} not in:\n{output}"
    return match.group(1)


def digest_in_subprocess(arguments: list[str], seed: int, hash_seed: str, timeout: float = 300) -> str:
    """The trace digest of `python -m sim ARGUMENTS --seed SEED` run in a fresh process."""
    completed = subprocess.run(
        [sys.executable, "-m", "sim", *arguments, "--seed", str(seed)],
        cwd=REPOSITORY,
        env=dict(os.environ, PYTHONHASHSEED=hash_seed),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = [line for line in completed.stdout.splitlines() if line.startswith("digest")]
    assert len(lines) == 1, completed.stdout
    return lines[0].split()[1]
