"""The raft scenario's own nemesis: faults aimed at the leader, and an operator that changes
membership and replaces nodes that refuse to start.

Leader faults (scheduled callbacks in the world; every one is healed after its outage and
none starts after the liveness phase begins):
- isolate:     the leader is cut from everyone (clients included);
- minority:    the leader and one other node | the rest (clients reach both sides, so a
               deposed leader still hears clients: the stale-read shape);
- bridge:      {leader, a} | {b, c} with one node left in neither group, talking to both
               (the shape of the Cloudflare 2020 outage);
- one-way-out: the leader's frames to the others are lost, theirs still reach it;
- one-way-in:  the others' frames to the leader are lost.

The operator (an actor on the client node) acts like a human with `docker node` commands:
- replace: remove a voter (any, the leader included) through the leader, wait until the
  removal is committed, retire the machine for good (its node id is never reused, as
  swarmkit never reuses Raft ids), start a fresh node, add it as a learner, and promote
  it once it has caught up (the leader refuses the promotion before that);
- transfer: ask the leader to hand leadership to another voter;
- repair: a node that refused to start because its log is damaged is replaced the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from consensus.peer import (
    PEER_NAME,
    ChangeMembership,
    PeerStatus,
    RaftPeer,
    Redirect,
    StatusRequest,
    TransferLeadership,
)
from runtime.actor import Actor
from runtime.errors import ActorError, AskTimeout, RemoteError
from sim.faults import Heal, Isolate, OneWay, Partition
from sim.world import World

if TYPE_CHECKING:
    from sim.scenarios.raft import RaftRun

LEADER_FAULTS = ("isolate", "minority", "bridge", "one-way-out", "one-way-in")


def current_leader(world: World, nodes: list[str]) -> str:
    """The live peer that leads the highest term ("" when none does)."""
    best = ("", -1)
    for node_id in nodes:
        node = world.node(node_id)
        peer = node.actor(PEER_NAME) if node is not None else None
        if isinstance(peer, RaftPeer) and peer.is_leader and peer.raft is not None:
            if peer.raft.term > best[1]:
                best = (node_id, peer.raft.term)
    return best[0]


class LeaderFaults:
    """Faults aimed at whoever leads, from `start` until `stop` (virtual seconds)."""

    def __init__(self, run: RaftRun, rng: random.Random, mean_gap_seconds: float) -> None:
        self.run = run
        self.rng = rng
        self.mean_gap_seconds = mean_gap_seconds
        self.applied = 0

    def start(self, at_seconds: float) -> None:
        self.run.world.schedule(at_seconds, self._fire)

    def _fire(self) -> None:
        run = self.run
        world = run.world
        now = world.now()
        stop = run.faults_stop_seconds
        if now >= stop:
            return
        nodes = run.live_members()
        leader = current_leader(world, nodes)
        if leader and len(nodes) >= 3:
            others = [node for node in nodes if node != leader]
            self.rng.shuffle(others)
            kind = self.rng.choice(LEADER_FAULTS)
            fault: Any
            if kind == "isolate":
                fault = Isolate(leader)
            elif kind == "minority":
                minority = tuple(sorted([leader, *others[: (len(nodes) - 1) // 2 - 1]]))
                majority = tuple(sorted(n for n in nodes if n not in minority))
                fault = Partition((minority, majority))
            elif kind == "bridge" and len(others) >= 3:
                side = tuple(sorted([leader, others[0]]))
                far = tuple(sorted(others[2:]))
                fault = Partition((side, far))
            elif kind == "one-way-in":
                fault = OneWay(tuple(sorted(others)), (leader,))
            else:
                fault = OneWay((leader,), tuple(sorted(others)))
            world.apply(fault)
            self.applied += 1
            outage = round(self.rng.uniform(0.3, 4.0), 3)
            world.schedule(min(now + outage, stop), world.apply, Heal())
        gap = round(self.rng.expovariate(1.0 / self.mean_gap_seconds), 3)
        if now + gap < stop:
            world.schedule(now + gap, self._fire)


class Operator(Actor):
    """Membership changes and repairs, as an operator would do them, through the leader."""

    def __init__(self, run: RaftRun, rng: random.Random, membership: bool, transfers: bool) -> None:
        self.run = run
        self.rng = rng
        self.membership = membership
        self.transfers = transfers

    async def started(self) -> None:
        self.nursery.start_soon(self._loop)

    async def receive(self, message: Any) -> Any:
        raise TypeError(f"the operator takes no messages, got {type(message).__name__}")

    async def _loop(self) -> None:
        run = self.run
        world = run.world
        rng = self.rng
        clock = self.host.clock
        await clock.sleep(rng.uniform(1.0, 5.0))
        while True:
            refused = [node for node in run.refused_nodes() if node not in run.retired]
            if refused:
                await self._replace(refused[0], reason="refused")
                continue
            now = world.now()
            if now < run.faults_stop_seconds - 2.0:
                choice = rng.random()
                if self.membership and choice < 0.5:
                    victim = rng.choice(run.active_members())
                    await self._replace(victim, reason="planned")
                elif self.transfers and choice < 0.8:
                    await self._transfer()
            await clock.sleep(rng.uniform(2.0, 10.0))

    # --- talking to the cluster ----------------------------------------------------------------

    async def _status(self, node_id: str) -> PeerStatus | None:
        try:
            reply = await self.ref_to(PEER_NAME, node_id).ask(StatusRequest(), timeout=0.3)
        except (AskTimeout, ActorError):
            return None
        return reply if isinstance(reply, PeerStatus) else None

    async def _leader(self) -> PeerStatus | None:
        """Ask the members who leads; the status of the leader of the highest term."""
        best: PeerStatus | None = None
        for node_id in self.run.active_members():
            status = await self._status(node_id)
            if status is not None and status.role == "leader":
                if best is None or status.term > best.term:
                    best = status
        return best

    async def _until(
        self, done: Callable[[PeerStatus], bool], request: Any, deadline_seconds: float
    ) -> bool:
        """Send `request` to the leader until its committed configuration satisfies `done`."""
        clock = self.host.clock
        while self.run.world.now() < deadline_seconds:
            leader = await self._leader()
            if leader is None:
                await clock.sleep(0.2)
                continue
            if done(leader) and leader.configuration_index <= leader.commit:
                return True
            if not done(leader):
                try:
                    reply = await self.ref_to(PEER_NAME, leader.node).ask(request, timeout=1.0)
                except RemoteError as error:
                    self.run.note(f"operator: {type(request).__name__} refused: {error}")
                    reply = None
                except (AskTimeout, ActorError):
                    reply = None
                if isinstance(reply, Redirect) or reply is None:
                    await clock.sleep(0.2)
                    continue
            await clock.sleep(0.05)
        return False

    async def _replace(self, old: str, reason: str) -> None:
        run = self.run
        deadline = run.world.now() + 60.0
        removed = await self._until(
            lambda status: old not in status.voters and old not in status.learners,
            ChangeMembership("remove", old),
            deadline,
        )
        if not removed:
            run.note(f"operator: could not remove {old} ({reason})")
            return
        run.retire(old, reason)
        new = run.add_node()
        added = await self._until(
            lambda status: new in status.learners or new in status.voters,
            ChangeMembership("add_learner", new),
            deadline,
        )
        if added:
            await self._until(
                lambda status: new in status.voters, ChangeMembership("promote", new), deadline
            )
        run.note(f"operator: replaced {old} ({reason}) by {new}")

    async def _transfer(self) -> None:
        leader = await self._leader()
        if leader is None:
            return
        candidates = [voter for voter in leader.voters if voter != leader.node]
        if not candidates:
            return
        to = self.rng.choice(candidates)
        try:
            await self.ref_to(PEER_NAME, leader.node).ask(TransferLeadership(to), timeout=1.0)
        except (AskTimeout, ActorError):
            return
        self.run.transfers += 1
        self.run.world.emit("raft-transfer", f"{leader.node}->{to}")
        self.run.mark_disruption(trio.current_time())
