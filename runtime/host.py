"""The host: everything a node's actors may touch outside themselves.

Actors reach the clock, randomness, other nodes, the disk, containers and the network
only through the `Host` their node was built with. The real host implements these on
the operating system; the simulator (sim/) builds hosts whose network, disk and
executors are simulated and whose clock is Trio's MockClock. Actor code cannot tell
which one it has — that is what lets the same actors run in both worlds.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from runtime.disk import Disk, RealDisk
from runtime.transport import NullTransport, Transport

# Simulated runs start their wall clock here, so timestamps are reproducible.
SIMULATION_EPOCH_SECONDS = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    """Monotonic time is Trio's clock (virtual under the simulator); wall time for stamps."""

    def now(self) -> float:
        return trio.current_time()

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    def wall_time(self) -> float:
        """Seconds since the Unix epoch, for timestamps users see. Never for logic."""
        return time.time()


class SimulatedClock(Clock):
    """Wall time derived from Trio's (virtual) clock, with an optional per-node offset."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.offset_seconds = offset_seconds

    def now(self) -> float:
        return trio.current_time() + self.offset_seconds

    def wall_time(self) -> float:
        return SIMULATION_EPOCH_SECONDS + trio.current_time() + self.offset_seconds


def derive_seed(seed: int, *labels: str) -> int:
    """A 64-bit seed derived from a parent seed and labels; stable across processes."""
    digest = hashlib.sha256(repr((seed, *labels)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@attrs.define
class Host:
    node_id: str
    transport: Transport
    disk: Disk
    random: random.Random
    clock: Clock = attrs.field(factory=Clock)
    executor: Any = None
    network: Any = None
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("flotta"))
    seed: int = 0
    simulated: bool = False

    def derived_random(self, purpose: str) -> random.Random:
        """An independent seeded random source for one purpose on this node."""
        return random.Random(derive_seed(self.seed, self.node_id, purpose))


def real_host(
    node_id: str,
    data_dir: str | Path,
    transport: Transport | None = None,
    seed: int | None = None,
) -> Host:
    """A host on this machine: the OS clock, disk under `data_dir`, real sockets."""
    chosen_seed = seed if seed is not None else random.SystemRandom().getrandbits(63)
    return Host(
        node_id=node_id,
        transport=transport if transport is not None else NullTransport(node_id),
        disk=RealDisk(data_dir),
        random=random.Random(chosen_seed),
        seed=chosen_seed,
    )
