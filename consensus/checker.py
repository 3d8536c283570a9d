"""Raft's safety properties, checked online by an observer that sees every node.

Pure bookkeeping (no I/O), shared by the consensus tests and the cluster simulator. The
driver calls:

- `observe(raft)` after anything is stepped into a node (message, tick, proposal, ...);
- `observe_ready(raft, ready)` for each Ready the node's driver handles, before `advance`;
- `read_requested(context)` when a client asks any node for a linearizable read;
- `node_restarted(raft)` when a node comes back from its persisted state.

Properties (Raft Figure 3, plus reads), each raising `SafetyViolation` naming itself:

1. Election Safety: at most one leader per term over the whole run, across restarts.
2. Leader Append-Only: while a node leads a term, its last index never falls and the entry
   at its earlier last index never changes.
3. Log Matching: an entry is identified by (index, term): every copy anywhere has the same
   payload and the same term before it (so, inductively, the same prefix).
4. Leader Completeness: a node that becomes leader holds every entry committed so far.
5. State Machine Safety: no two nodes commit, or apply, different entries at one index;
   a node applies indexes in order without gaps (a snapshot may skip it forward).
6. Read linearizability (index level): a released read index is at least the highest
   commit index any node had when the read was requested.
"""

from __future__ import annotations

from collections import Counter

from consensus.messages import Entry, EntryKind, Ready, Role
from consensus.raft import Raft


class SafetyViolation(AssertionError):
    def __init__(self, property_name: str, detail: str) -> None:
        super().__init__(f"{property_name}: {detail}")
        self.property_name = property_name
        self.detail = detail


def _identity(entry: Entry) -> tuple[int, EntryKind, bytes]:
    return (entry.term, entry.kind, entry.data)


class SafetyChecker:
    def __init__(self) -> None:
        self.leader_of_term: dict[int, str] = {}
        # (index, term) -> (kind, data, term of the entry before it)
        self._entries: dict[tuple[int, int], tuple[EntryKind, bytes, int | None]] = {}
        self.committed: dict[int, tuple[int, EntryKind, bytes]] = {}
        self.applied: dict[int, tuple[int, EntryKind, bytes]] = {}
        self.max_commit_seen = 0
        self._commit_seen: dict[str, int] = {}
        self._applied_seen: dict[str, int] = {}
        self._leading: dict[str, tuple[int, int, Entry | None]] = {}
        self._persisted_last: dict[str, int] = {}
        self._read_floor: dict[bytes, int] = {}
        self.coverage: Counter[str] = Counter()
        """How often interesting things happened (for "the nemesis is too weak" checks)."""

    # --- observations ----------------------------------------------------------------------

    def observe(self, raft: Raft) -> None:
        node = raft.id
        if raft.role is Role.LEADER:
            self._observe_leader(raft)
        else:
            self._leading.pop(node, None)
        self._observe_commit(raft)

    def observe_ready(self, raft: Raft, ready: Ready) -> None:
        node = raft.id
        if ready.snapshot is not None:
            meta = ready.snapshot.meta
            known = self.committed.get(meta.index)
            if known is not None and known[0] != meta.term:
                raise SafetyViolation(
                    "State Machine Safety",
                    f"{node} installs a snapshot at {meta.index} term {meta.term}, but "
                    f"term {known[0]} was committed there",
                )
            self._applied_seen[node] = max(self._applied_seen.get(node, 0), meta.index)
            self._persisted_last[node] = meta.index
            self.coverage["snapshot installed"] += 1
        if ready.entries:
            self._check_log_matching(raft, ready.entries)
            first = ready.entries[0].index
            if first <= self._persisted_last.get(node, 0):
                self.coverage["follower log truncated"] += 1
            self._persisted_last[node] = ready.entries[-1].index
        for entry in ready.committed_entries:
            self._check_applied(node, entry)
        for read in ready.read_states:
            floor = self._read_floor.pop(read.context, None)
            if floor is not None and read.index < floor:
                raise SafetyViolation(
                    "Read linearizability",
                    f"{node} released read {read.context!r} at index {read.index}, but index "
                    f"{floor} was already committed when the read was requested",
                )
            self.coverage["read released"] += 1

    def read_requested(self, context: bytes) -> None:
        self._read_floor[context] = self.max_commit_seen

    def node_restarted(self, raft: Raft) -> None:
        node = raft.id
        self._leading.pop(node, None)
        self._commit_seen[node] = raft.commit_index
        self._applied_seen[node] = raft.applied_index
        self._persisted_last[node] = raft.last_index
        self.coverage["restart"] += 1

    # --- properties ------------------------------------------------------------------------

    def _observe_leader(self, raft: Raft) -> None:
        node = raft.id
        term = raft.term
        holder = self.leader_of_term.setdefault(term, node)
        if holder != node:
            raise SafetyViolation(
                "Election Safety", f"{holder} and {node} both became leader of term {term}"
            )
        leading = self._leading.get(node)
        last = raft.last_index
        if leading is None or leading[0] != term:
            self._check_leader_completeness(raft)
            self.coverage["leader elected"] += 1
            if self.max_commit_seen < raft.last_index - 1:
                self.coverage["leader elected with uncommitted entries"] += 1
        else:
            _, previous_last, previous_entry = leading
            if last < previous_last:
                raise SafetyViolation(
                    "Leader Append-Only",
                    f"leader {node} of term {term} shrank its log from {previous_last} to {last}",
                )
            if previous_entry is not None and previous_last >= raft.first_index:
                current = raft.entry_at(previous_last)
                if current != previous_entry:
                    raise SafetyViolation(
                        "Leader Append-Only",
                        f"leader {node} of term {term} changed its entry {previous_last}: "
                        f"{previous_entry} became {current}",
                    )
        self._leading[node] = (term, last, raft.entry_at(last))

    def _check_leader_completeness(self, raft: Raft) -> None:
        first = raft.first_index
        last = raft.last_index
        for index, (term, kind, data) in self.committed.items():
            if index < first:
                continue
            entry = raft.entry_at(index) if index <= last else None
            if entry is None or _identity(entry) != (term, kind, data):
                raise SafetyViolation(
                    "Leader Completeness",
                    f"{raft.id} became leader of term {raft.term} without committed entry "
                    f"{index} (term {term}); it holds {entry}",
                )

    def _observe_commit(self, raft: Raft) -> None:
        node = raft.id
        commit = raft.commit_index
        seen = self._commit_seen.get(node, 0)
        if commit < seen:
            raise SafetyViolation(
                "State Machine Safety",
                f"{node}'s commit index went back from {seen} to {commit} without a restart",
            )
        if commit == seen:
            return
        first = raft.first_index
        for index in range(max(seen + 1, first), commit + 1):
            entry = raft.entry_at(index)
            if entry is None:
                raise SafetyViolation(
                    "State Machine Safety", f"{node} commits {index} but does not hold it"
                )
            identity = _identity(entry)
            known = self.committed.setdefault(index, identity)
            if known != identity:
                raise SafetyViolation(
                    "State Machine Safety",
                    f"{node} committed {identity[:2]} at index {index}, another node "
                    f"committed {known[:2]}",
                )
        if self.max_commit_seen and commit > self.max_commit_seen:
            previous_term = raft.term_at(self.max_commit_seen)
            if previous_term is not None and previous_term != raft.term_at(commit):
                self.coverage["commit moved across terms"] += 1
        self._commit_seen[node] = commit
        self.max_commit_seen = max(self.max_commit_seen, commit)

    def _check_log_matching(self, raft: Raft, entries: list[Entry]) -> None:
        previous_term = raft.term_at(entries[0].index - 1)
        for entry in entries:
            key = (entry.index, entry.term)
            value = (entry.kind, entry.data, previous_term)
            known = self._entries.setdefault(key, value)
            if known != value:
                raise SafetyViolation(
                    "Log Matching",
                    f"{raft.id} holds entry {entry.index} of term {entry.term} as "
                    f"{value[:2]} after term {previous_term}, elsewhere it is {known[:2]} "
                    f"after term {known[2]}",
                )
            previous_term = entry.term

    def _check_applied(self, node: str, entry: Entry) -> None:
        expected = self._applied_seen.get(node, 0) + 1
        if entry.index != expected:
            raise SafetyViolation(
                "State Machine Safety",
                f"{node} applies index {entry.index} but its next index to apply is {expected}",
            )
        identity = _identity(entry)
        known = self.applied.setdefault(entry.index, identity)
        if known != identity:
            raise SafetyViolation(
                "State Machine Safety",
                f"{node} applied {identity[:2]} at index {entry.index}, another node applied "
                f"{known[:2]}",
            )
        self._applied_seen[node] = entry.index
