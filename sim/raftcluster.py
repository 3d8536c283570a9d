"""A small simulated store cluster for tests and tools: peers plus one scripted client node.

    def script(ctx: ClusterContext) -> Awaitable[None]: ...
    world = run_cluster(script, nodes=3, seed=1)

The script runs as an actor on node `c1` (never faulted) and gets a `ClusterContext`:
the world (to crash, restart, partition), a `StoreClient`, and helpers to reach peers.
The run stops when the script returns (or at `duration_seconds`); a script that raises, or
a peer that crashes, fails the run, and `run_cluster` raises `ClusterFailure` with the
world's report of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from consensus.client import History, StoreClient
from consensus.peer import PEER_NAME, PeerObserver, PeerSettings
from consensus.store import Store
from runtime.actor import Actor, Ref
from runtime.node import Node
from runtime.supervision import NEVER_RESTART
from sim.world import World


class ClusterFailure(AssertionError):
    pass


@attrs.define
class ClusterContext:
    world: World
    node: Node
    nodes: list[str]
    client: StoreClient
    history: History

    def peer(self, node_id: str) -> Store | None:
        """The running store actor of a node (None while it is down)."""
        node = self.world.node(node_id)
        actor = node.actor(PEER_NAME) if node is not None else None
        return actor if isinstance(actor, Store) else None

    def ref(self, node_id: str) -> Ref:
        return self.node.ref(PEER_NAME, node_id)

    def leader(self) -> str:
        best = ("", -1)
        for node_id in self.nodes:
            peer = self.peer(node_id)
            if peer is not None and peer.is_leader and peer.raft is not None and peer.raft.term > best[1]:
                best = (node_id, peer.raft.term)
        return best[0]

    async def sleep(self, seconds: float) -> None:
        await self.node.host.clock.sleep(seconds)

    async def wait_for(
        self, condition: Callable[[], bool], timeout_seconds: float = 30.0, step_seconds: float = 0.05
    ) -> None:
        deadline = trio.current_time() + timeout_seconds
        while not condition():
            if trio.current_time() > deadline:
                raise AssertionError(f"condition not met within {timeout_seconds}s")
            await self.sleep(step_seconds)

    def new_client(self, client_id: str, **options: Any) -> StoreClient:
        return StoreClient(self.node, client_id, self.nodes, **options)


def settings_for(node_id: str, voters: tuple[str, ...], **overrides: Any) -> PeerSettings:
    values: dict[str, Any] = {
        "tick_seconds": 0.05,
        "election_tick": 10,
        "heartbeat_tick": 2,
        "snapshot_entries": 10_000,
        "read_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return PeerSettings(node_id, voters, **values)


def run_cluster(
    script: Callable[[ClusterContext], Awaitable[None]],
    *,
    nodes: int = 3,
    seed: int = 1,
    duration_seconds: float = 300.0,
    observer: PeerObserver | None = None,
    store_options: dict[str, Any] | None = None,
    **settings: Any,
) -> World:
    world = World(seed)
    node_ids = [f"n{index}" for index in range(1, nodes + 1)]

    def boot_for(node_id: str, voters: tuple[str, ...]) -> Callable[[Node], Awaitable[None]]:
        async def boot(node: Node) -> None:
            peer_settings = settings_for(node_id, voters, **settings)
            await node.spawn(
                lambda: Store(peer_settings, observer, **(store_options or {})),
                PEER_NAME,
                restart=NEVER_RESTART,
            )

        return boot

    for node_id in node_ids:
        world.add_node(node_id, boot_for(node_id, tuple(node_ids)))
    finished: list[bool] = []

    class Script(Actor):
        async def started(self) -> None:
            self.nursery.start_soon(self._run)

        async def _run(self) -> None:
            history = History(trio.current_time)
            client = StoreClient(
                self.node, "script", node_ids, ask_timeout_seconds=1.0, give_up_seconds=60.0, history=history
            )
            context = ClusterContext(world, self.node, node_ids, client, history)
            world.data["cluster"] = context
            world.data["boot_for"] = boot_for
            await script(context)
            finished.append(True)
            world.fail("done", "the script finished")

    async def client_boot(node: Node) -> None:
        await node.spawn(Script, "script", restart=NEVER_RESTART)

    world.add_node("c1", client_boot)
    failure = world.run(duration_seconds)
    if not finished:
        detail = f"{failure.kind}: {failure.message}\n{failure.details}" if failure else "ran out of time"
        raise ClusterFailure(f"the cluster script did not finish: {detail}")
    return world


def add_member(world: World, node_id: str) -> None:
    """Start a fresh node that joins (no founding voters): add it with ChangeMembership."""
    boot_for = world.data["boot_for"]
    world.add_node(node_id, boot_for(node_id, ()))
