"""What the raft scenario checks while it runs: an observer every peer reports to.

The peers of a simulated cluster share one `RaftObserver` (their `PeerObserver`). It feeds
the core's `SafetyChecker` (consensus/checker.py) every input, Ready and restart of every
node, so Raft's safety properties are checked online, at the instant they break:

1. Election Safety, 2. Leader Append-Only, 3. Log Matching, 4. Leader Completeness,
5. State Machine Safety (plus in-order apply), and read linearizability at the index level.

On top of that, for the store:
- state agreement: every node that reaches an applied index holds the same running digest
  of its state there (`StoreState.chain`), however it got there (replay or snapshot);
- at-most-once: each client request (client, seq) is executed at one log index only;
- leadership history with virtual times, for the liveness bounds checked at the end.

A violation stops the run at once (`world.fail`), with the seed, step and trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import trio

from consensus.checker import SafetyChecker, SafetyViolation
from consensus.messages import Ready, Role
from consensus.raft import Raft
from sim.world import World


class RaftObserver:
    def __init__(self, world: World) -> None:
        self.world = world
        self.checker = SafetyChecker()
        self.violation = ""
        self.leaders: dict[int, tuple[str, float]] = {}
        """term -> (leader, virtual time it became leader)"""
        self.digests: dict[int, bytes] = {}
        self.executed: dict[tuple[str, int], int] = {}
        self.refused: dict[str, str] = {}
        self.applied_max: dict[str, int] = {}
        self.coverage: Counter[str] = Counter()
        self.reads_requested = 0
        self.executions = 0
        self._votes: dict[str, tuple[int, str]] = {}
        self.on_vote: Callable[[str, int, str], None] | None = None
        """Called with (voter, term, candidate) when a node grants a vote (for nemeses)."""

    # --- failing -------------------------------------------------------------------------------

    def fail(self, property_name: str, detail: str) -> None:
        if not self.violation:
            self.violation = f"{property_name}: {detail}"
            self.world.fail("violation", self.violation)

    # --- PeerObserver ------------------------------------------------------------------------

    def stepped(self, raft: Raft) -> None:
        try:
            self.checker.observe(raft)
        except SafetyViolation as violation:
            self.fail(violation.property_name, violation.detail)
        vote = raft.vote
        if vote and vote != raft.id and self.on_vote is not None:
            node = raft.id
            if self._votes.get(node) != (raft.term, vote):
                self._votes[node] = (raft.term, vote)
                self.on_vote(node, raft.term, vote)
        if raft.role is Role.LEADER:
            term = raft.term
            if term not in self.leaders:
                self.leaders[term] = (raft.id, trio.current_time())
                self.world.emit("raft-leader", f"{raft.id} term={term}")

    def ready(self, raft: Raft, ready: Ready) -> None:
        try:
            self.checker.observe_ready(raft, ready)
        except SafetyViolation as violation:
            self.fail(violation.property_name, violation.detail)

    def restarted(self, raft: Raft) -> None:
        self.checker.node_restarted(raft)

    def read_requested(self, node: str, context: bytes) -> None:
        self.reads_requested += 1
        self.checker.read_requested(context)

    def applied(self, node: str, index: int, digest: bytes) -> None:
        known = self.digests.setdefault(index, digest)
        if known != digest:
            self.fail(
                "State agreement",
                f"{node} reached applied index {index} with state digest {digest.hex()}, "
                f"another node had {known.hex()} there",
            )
        if index > self.applied_max.get(node, 0):
            self.applied_max[node] = index

    def refused_to_serve(self, node: str, reason: str) -> None:
        self.refused[node] = reason
        self.coverage["node refused a damaged log"] += 1
        self.world.emit("raft-refused", f"{node} {reason}")

    def executed_write(self, node: str, client: str, seq: int, index: int) -> None:
        self.executions += 1
        first = self.executed.setdefault((client, seq), index)
        if first != index:
            self.fail(
                "At-most-once",
                f"request ({client}, seq {seq}) was executed at index {first} and again at "
                f"index {index} (seen on {node})",
            )

    # --- summaries --------------------------------------------------------------------------------

    def last_election(self) -> tuple[int, str, float] | None:
        if not self.leaders:
            return None
        term = max(self.leaders)
        leader, at = self.leaders[term]
        return term, leader, at

    def merged_coverage(self) -> Counter[str]:
        merged = Counter(self.checker.coverage)
        merged.update(self.coverage)
        return merged
