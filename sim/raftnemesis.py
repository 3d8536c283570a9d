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
- one-way-in:  the others' frames to the leader are lost;
- stale-leader: the leader is isolated for about an election timeout (long enough for the
               others to elect a new one, maybe not for it to notice); then everything heals
               except between the new leader and {the old leader, the clients}: the old
               leader's traffic reaches the others and the clients still reach it, while
               nothing from the new leader reaches either;
- crash:       the leader crashes (losing what it had not synced) and comes back after the
               outage with its unreplicated tail: the raw material of Raft's Figure 8.

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

LEADER_FAULTS = ("isolate", "minority", "bridge", "one-way-out", "one-way-in", "crash", "stale-leader")


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
            kind = self.rng.choice(LEADER_FAULTS)
            if kind == "crash":
                self._crash(leader, now, stop)
            elif kind == "stale-leader":
                world.apply(Isolate(leader))
                self.applied += 1
                et = run.election_timeout_max_seconds
                world.schedule(min(now + self.rng.uniform(0.5 * et, 1.2 * et), stop), self._depose, leader)
            else:
                fault = self._network_fault(kind, leader, nodes)
                world.apply(fault)
                self.applied += 1
                outage = round(self.rng.uniform(0.3, 4.0), 3)
                world.schedule(min(now + outage, stop), world.apply, Heal())
        gap = round(self.rng.expovariate(1.0 / self.mean_gap_seconds), 3)
        if now + gap < stop:
            world.schedule(now + gap, self._fire)

    def _network_fault(self, kind: str, leader: str, nodes: list[str]) -> Any:
        others = [node for node in nodes if node != leader]
        self.rng.shuffle(others)
        if kind == "isolate":
            return Isolate(leader)
        if kind == "minority":
            minority = tuple(sorted([leader, *others[: (len(nodes) - 1) // 2 - 1]]))
            majority = tuple(sorted(n for n in nodes if n not in minority))
            return Partition((minority, majority))
        if kind == "bridge" and len(others) >= 3:
            return Partition((tuple(sorted([leader, others[0]])), tuple(sorted(others[2:]))))
        if kind == "one-way-in":
            return OneWay(tuple(sorted(others)), (leader,))
        return OneWay((leader,), tuple(sorted(others)))

    def _depose(self, old: str) -> None:
        run = self.run
        world = run.world
        world.apply(Heal())
        new = current_leader(world, [node for node in run.live_members() if node != old])
        if new:
            # The old leader and the clients on one side of a flaky switch: neither hears
            # the new leader (and the clients cannot reach it), the rest is connected.
            world.apply(OneWay((new,), (old, run.client_node)))
            world.apply(OneWay((run.client_node,), (new,)))
            outage = round(self.rng.uniform(0.3, 3.0), 3)
            world.schedule(min(world.now() + outage, run.faults_stop_seconds), world.apply, Heal())

    def _crash(self, leader: str, now: float, stop: float) -> None:
        run = self.run
        world = run.world
        members = run.active_members()
        down = sum(1 for node in members if not world.sim_node(node).up)
        if down >= (len(members) - 1) // 2:
            return  # a majority stays up
        world.crash(leader)
        self.applied += 1
        back = round(self.rng.uniform(0.05, 2.0), 3)
        world.schedule(min(now + back, stop), self._restart, leader)

    def _restart(self, node: str) -> None:
        if node not in self.run.retired and not self.run.world.sim_node(node).up:
            self.run.world.restart(node)


class VoteCrashes:
    """Crash a node just after it granted a vote, and bring it back a moment later.

    The vote has left the node by then (its Ready was handled); a node that forgot it on
    restart (the vote was not durable: mutant M2) can then vote again in the same term,
    which is how two leaders of one term come about. Each vote is hit with probability
    `probability`, one node at a time, only while faults are allowed.
    """

    def __init__(self, run: RaftRun, rng: random.Random, probability: float) -> None:
        self.run = run
        self.rng = rng
        self.probability = probability
        self.busy = False
        self.applied = 0

    def on_vote(self, voter: str, term: int, candidate: str) -> None:
        run = self.run
        world = run.world
        now = world.now()
        if self.busy or now >= run.faults_stop_seconds or self.rng.random() >= self.probability:
            return
        if sum(1 for node in run.active_members() if not world.sim_node(node).up) >= (len(run.active_members()) - 1) // 2:
            return
        self.busy = True
        self.applied += 1
        # Down for a few milliseconds only, at times: back before the other candidates'
        # vote requests of the same election arrive (they are never resent in a term).
        crash_at = now + self.rng.uniform(0.0005, 0.002)
        down = self.rng.uniform(0.0005, 0.004) if self.rng.random() < 0.7 else self.rng.uniform(0.01, 0.3)
        world.schedule(crash_at, self._crash, voter)
        world.schedule(crash_at + down, self._restart, voter)

    def _crash(self, voter: str) -> None:
        if voter not in self.run.retired:
            self.run.world.emit("raft-vote-crash", voter)
            self.run.world.crash(voter)

    def _restart(self, voter: str) -> None:
        self.busy = False
        if voter not in self.run.retired:
            self.run.world.restart(voter)


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
        """Add the new node first (learner, then voter once caught up), then remove the old
        one: the cluster never has fewer live voters than before, so a replacement cannot
        cost it its quorum (removing first could, with other nodes down or damaged)."""
        run = self.run
        deadline = run.world.now() + 60.0
        new = run.add_node()
        added = await self._until(
            lambda status: new in status.learners or new in status.voters,
            ChangeMembership("add_learner", new),
            deadline,
        )
        promoted = added and await self._until(
            lambda status: new in status.voters, ChangeMembership("promote", new), deadline
        )
        if not promoted:
            run.note(f"operator: could not add {new} to replace {old} ({reason})")
        removed = await self._until(
            lambda status: old not in status.voters and old not in status.learners,
            ChangeMembership("remove", old),
            deadline + 60.0,
        )
        if not removed:
            run.note(f"operator: could not remove {old} ({reason})")
            return
        run.retire(old, reason)
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
