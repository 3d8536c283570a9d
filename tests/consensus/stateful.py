"""The Hypothesis state machine that drives 3 to 5 Raft cores through an adversarial network.

Rules move the world one step: deliver, drop, duplicate or reorder a message in flight; tick
a node; let a node's driver handle its Ready; crash a node and restart it from what it had
persisted (everything else is lost); propose, read, change membership, compact, transfer
leadership; cut or heal links. The `SafetyChecker` watches each step, and the invariants
below recheck the properties from scratch over the whole state after every step, so the
incremental checker is itself checked.
"""

from __future__ import annotations

import random

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from consensus.errors import RaftError
from consensus.messages import ConfChange, ConfChangeKind, Entry, Role
from tests.consensus.cluster import Cluster
from tests.consensus.nemesis import EPISODES, Episodes
from tests.consensus.nemesis import sample as nemesis_sample

node_numbers = st.integers(0, 7)
positions = st.integers(0, 1 << 16)


class RaftMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster: Cluster = Cluster(["n1"], seed=0)
        self.ids: list[str] = []
        self.reads = 0
        self.proposals = 0
        self.highest_commit = 0
        self.committed: dict[int, tuple[Entry, int]] = {}
        self.read_floor: dict[bytes, int] = {}

    @initialize(
        voters=st.integers(3, 5),
        spares=st.integers(0, 1),
        pre_vote=st.booleans(),
        check_quorum=st.booleans(),
        one_entry_per_message=st.booleans(),
        seed=st.integers(0, 1 << 16),
    )
    def start(
        self,
        voters: int,
        spares: int,
        pre_vote: bool,
        check_quorum: bool,
        one_entry_per_message: bool,
        seed: int,
    ) -> None:
        self.ids = [f"n{i}" for i in range(1, voters + spares + 1)]
        self.params = attrs.evolve(nemesis_sample(random.Random(seed)), election_tick=3)
        self.cluster = Cluster(
            self.ids,
            voters=self.ids[:voters],
            seed=seed,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            election_tick=3,
            max_size_per_message_bytes=1 if one_entry_per_message else 1 << 20,
            snapshot_chunk_bytes=32,
            promotion_lag_entries_max=4,
        )

    def node(self, number: int) -> str:
        return self.ids[number % len(self.ids)]

    def alive(self, number: int) -> str | None:
        node_id = self.node(number)
        return node_id if self.cluster.nodes[node_id].alive else None

    # --- the network ----------------------------------------------------------------------

    @precondition(lambda self: self.cluster.in_flight)
    @rule(position=positions, process=st.booleans())
    def deliver(self, position: int, process: bool) -> None:
        self.cluster.deliver(position % len(self.cluster.in_flight), process=process)

    @precondition(lambda self: self.cluster.in_flight)
    @rule(position=positions)
    def drop(self, position: int) -> None:
        self.cluster.drop(position % len(self.cluster.in_flight))

    @precondition(lambda self: self.cluster.in_flight)
    @rule(position=positions)
    def duplicate(self, position: int) -> None:
        self.cluster.duplicate(position % len(self.cluster.in_flight))

    @precondition(lambda self: len(self.cluster.in_flight) > 1)
    @rule(first=positions, second=positions)
    def reorder(self, first: int, second: int) -> None:
        flight = self.cluster.in_flight
        i, j = first % len(flight), second % len(flight)
        flight[i], flight[j] = flight[j], flight[i]

    @rule(a=node_numbers, b=node_numbers)
    def cut(self, a: int, b: int) -> None:
        self.cluster.cut.add((self.node(a), self.node(b)))

    @rule()
    def heal(self) -> None:
        self.cluster.heal()

    @rule(budget=st.sampled_from([1, 5, 20, 100]))
    def deliver_many(self, budget: int) -> None:
        """Let the network run for a while in order (elections and replication need it)."""
        cluster = self.cluster
        cluster.process_all()
        while cluster.in_flight and budget:
            cluster.deliver(0)
            budget -= 1

    # --- time, drivers, crashes -----------------------------------------------------------

    @rule(number=node_numbers, times=st.integers(1, 6))
    def tick(self, number: int, times: int) -> None:
        self.cluster.tick(self.node(number), times)

    @rule()
    def tick_all(self) -> None:
        self.cluster.tick_all()

    @rule(number=node_numbers)
    def process(self, number: int) -> None:
        self.cluster.process(self.node(number))

    @rule(number=node_numbers)
    def crash(self, number: int) -> None:
        node_id = self.alive(number)
        if node_id is not None:
            self.cluster.crash(node_id)

    @rule(number=node_numbers)
    def restart(self, number: int) -> None:
        node_id = self.node(number)
        if not self.cluster.nodes[node_id].alive:
            self.cluster.restart(node_id)

    @rule(number=node_numbers)
    def campaign(self, number: int) -> None:
        node_id = self.alive(number)
        if node_id is not None:
            self.cluster.campaign(node_id)

    @rule(number=node_numbers, budget=st.sampled_from([0, 5, 20, 100]))
    def elect(self, number: int, budget: int) -> None:
        """Campaign, then let the network run: a whole election in one step."""
        self.campaign(number)
        self.deliver_many(budget)

    @rule(count=st.integers(1, 5), budget=st.sampled_from([0, 5, 20, 100]))
    def replicate(self, count: int, budget: int) -> None:
        """The leader of the highest term takes a batch; the network runs for a while."""
        leaders = [n for n in self.ids if self.cluster.nodes[n].alive and self.cluster[n].role is Role.LEADER]
        if leaders:
            self.propose(self.ids.index(max(leaders, key=lambda n: self.cluster[n].term)), count)
        self.deliver_many(budget)

    @rule(episode=st.sampled_from(EPISODES), seed=st.integers(0, (1 << 32) - 1))
    def episode(self, episode: str, seed: int) -> None:
        """A coarse step from the episode nemesis (a partitioned election, a partial write…)."""
        play = Episodes(self.cluster, random.Random(seed), self.params, flush=0.3)
        play.play(episode)

    # --- clients --------------------------------------------------------------------------

    def attempt(self, action, *arguments) -> None:  # type: ignore[no-untyped-def]
        try:
            action(*arguments)
        except (RaftError, ValueError):
            pass

    @rule(number=node_numbers, count=st.integers(1, 3))
    def propose(self, number: int, count: int) -> None:
        node_id = self.alive(number)
        if node_id is not None and self.cluster[node_id].role is Role.LEADER:
            self.proposals += 1
            batch = [f"p{self.proposals}.{k}".encode() for k in range(count)]
            self.attempt(self.cluster.propose, node_id, batch)

    @rule(number=node_numbers)
    def read_index(self, number: int) -> None:
        node_id = self.alive(number)
        if node_id is not None:
            self.reads += 1
            context = f"r{self.reads}".encode()
            self.read_floor[context] = self.highest_commit
            self.attempt(self.cluster.read, node_id, context)

    @rule(number=node_numbers, change=st.sampled_from(ConfChangeKind), member=node_numbers)
    def change_membership(self, number: int, change: ConfChangeKind, member: int) -> None:
        node_id = self.alive(number)
        if node_id is not None and self.cluster[node_id].role is Role.LEADER:
            self.attempt(self.cluster[node_id].propose_conf_change, ConfChange(change, self.node(member)))
            self.cluster.observe(node_id)

    @rule(number=node_numbers, retain=st.integers(0, 2))
    def compact(self, number: int, retain: int) -> None:
        node_id = self.alive(number)
        if node_id is not None:
            self.cluster.compact(node_id, retain_entries=retain)

    @rule(number=node_numbers, successor=node_numbers)
    def transfer(self, number: int, successor: int) -> None:
        node_id = self.alive(number)
        if node_id is not None and self.cluster[node_id].role is Role.LEADER:
            self.attempt(self.cluster[node_id].transfer_leader, self.node(successor))

    # --- invariants, recomputed from scratch ----------------------------------------------

    def logs(self) -> dict[str, dict[int, Entry]]:
        """Every live node's in-memory log and every crashed node's persisted log."""
        found = {}
        for node_id, node in self.cluster.nodes.items():
            if node.alive:
                raft = node.raft
                entries = raft.entries(raft.first_index, raft.last_index + 1)
            else:
                entries = node.persisted.entries
            found[node_id] = {e.index: e for e in entries}
        return found

    @invariant()
    def election_safety(self) -> None:
        checker = self.cluster.checker
        assert checker is not None
        for node_id, node in self.cluster.nodes.items():
            if node.alive and node.raft.role is Role.LEADER:
                checker.observe(node.raft)
                assert checker.leader_of_term[node.raft.term] == node_id

    @invariant()
    def log_matching(self) -> None:
        logs = self.logs()
        names = sorted(logs)
        for x, a in enumerate(names):
            for b in names[x + 1 :]:
                left, right = logs[a], logs[b]
                common = sorted(set(left) & set(right), reverse=True)
                for index in common:
                    if left[index].term == right[index].term:
                        # Same (index, term): the prefixes both still hold must be identical.
                        for lower in common:
                            if lower <= index:
                                assert left[lower] == right[lower], (a, b, lower, index)
                        break

    @invariant()
    def leader_completeness_and_state_machine_safety(self) -> None:
        """Committed entries agree everywhere, and every leader of a later term holds them.

        An entry counts as committed "by term t" where t is the term of the first node seen
        committing it (a follower's term is its leader's): leaders of terms above t must
        hold it; a stale leader of an older term need not.
        """
        committed = self.committed
        applied: dict[int, bytes] = {}
        for node_id, node in self.cluster.nodes.items():
            for index, payload in node.app.items:
                assert applied.setdefault(index, payload) == payload, (node_id, index)
            if not node.alive:
                continue
            raft = node.raft
            for index in range(raft.first_index, raft.commit_index + 1):
                entry = raft.entry_at(index)
                assert entry is not None
                known = committed.setdefault(index, (entry, raft.term))
                assert known[0] == entry, (node_id, index, known[0], entry)
                if raft.term < known[1]:
                    committed[index] = (entry, raft.term)
        for node_id, node in self.cluster.nodes.items():
            raft = node.raft
            if node.alive and raft.role is Role.LEADER:
                for index, (entry, by_term) in committed.items():
                    if index >= raft.first_index and raft.term > by_term:
                        assert raft.entry_at(index) == entry, (node_id, index)

    @invariant()
    def read_linearizability(self) -> None:
        """A released read index covers every commit any node had when the read was asked."""
        for node in self.cluster.nodes.values():
            if node.alive:
                self.highest_commit = max(self.highest_commit, node.raft.commit_index)
            for state in node.read_states:
                floor = self.read_floor.get(state.context)
                assert floor is None or state.index >= floor, (node.id, state, floor)
