"""The in-memory Raft log: entries after the last snapshot, split into stable and unstable.

Layout: `entries[k]` holds index `snapshot_index + 1 + k`, so finding an entry or its term
is one subtraction (no search); the entry just before the first one is described by
(`snapshot_index`, `snapshot_term`). Entries above `stable_index` have not been handed to
the driver for persisting yet: the next `Ready` carries them. Terms never decrease along a
log, which is what lets the term searches below bisect.

The log never shrinks below what is committed on its own; the core decides when a suffix
may go (a conflict with the leader) and when a prefix may go (a snapshot covers it).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from consensus.messages import Entry, SnapshotMeta

ENTRY_OVERHEAD_BYTES = 24
"""Bytes counted per entry beside its data when sizing a batch (term, index, kind, framing)."""


def _entry_term(entry: Entry) -> int:
    return entry.term


class RaftLog:
    __slots__ = ("entries", "snapshot_index", "snapshot_term", "stable_index")

    def __init__(
        self, snapshot_index: int = 0, snapshot_term: int = 0, entries: list[Entry] | None = None
    ) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self.entries: list[Entry] = entries if entries is not None else []
        if self.entries and self.entries[0].index != snapshot_index + 1:
            raise ValueError(
                f"log entries start at {self.entries[0].index}, expected {snapshot_index + 1}"
            )
        self.stable_index = self.last_index()

    # --- reading ---------------------------------------------------------------------------

    def first_index(self) -> int:
        return self.snapshot_index + 1

    def last_index(self) -> int:
        return self.snapshot_index + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term(self, index: int) -> int | None:
        """The term at `index`, or None when it is compacted away or beyond the end."""
        offset = index - self.snapshot_index
        if offset == 0:
            return self.snapshot_term
        if offset < 0 or offset > len(self.entries):
            return None
        return self.entries[offset - 1].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry | None:
        offset = index - self.snapshot_index
        if offset <= 0 or offset > len(self.entries):
            return None
        return self.entries[offset - 1]

    def slice(self, low: int, high: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [low, high), at least one, then as many as fit in `max_bytes`."""
        start = low - self.snapshot_index - 1
        stop = high - self.snapshot_index - 1
        if start < 0 or stop > len(self.entries):
            raise IndexError(f"log slice [{low}, {high}) outside [{self.first_index()}, {self.last_index() + 1})")
        if start >= stop:
            return []
        if max_bytes is None:
            return self.entries[start:stop]
        size = 0
        end = start
        entries = self.entries
        while end < stop:
            size += len(entries[end].data) + ENTRY_OVERHEAD_BYTES
            if size > max_bytes and end > start:
                break
            end += 1
        return entries[start:end]

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: is a log ending at (last_index, last_term) at least as new as ours?"""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    def first_index_of_term(self, term: int, at_or_before: int) -> int:
        """The first index ≤ `at_or_before` whose term is `term` (given term(at_or_before) == term).

        Stops at the first index the log still holds: a term reaching into the snapshot reports
        the snapshot's next index.
        """
        hi = min(at_or_before, self.last_index()) - self.snapshot_index
        position = bisect.bisect_left(self.entries, term, 0, max(hi, 0), key=_entry_term)
        return self.snapshot_index + 1 + position

    def last_index_of_term(self, term: int) -> int | None:
        """The last index holding `term`; None if no entry we still hold has it."""
        position = bisect.bisect_right(self.entries, term, key=_entry_term)
        if position > 0 and self.entries[position - 1].term == term:
            return self.snapshot_index + position
        if position == 0 and self.snapshot_term == term and self.snapshot_index > 0:
            return self.snapshot_index
        return None

    def find_conflict(self, entries: list[Entry]) -> int:
        """The index of the first entry that is new or disagrees with ours; 0 if all match."""
        base = self.snapshot_index + 1
        held = self.entries
        count = len(held)
        for entry in entries:
            offset = entry.index - base
            if offset < 0:
                # Below our snapshot: covered by committed state, so it matches by definition.
                continue
            if offset >= count or held[offset].term != entry.term:
                return entry.index
        return 0

    def unstable_entries(self) -> list[Entry]:
        return self.entries[self.stable_index - self.snapshot_index :]

    # --- changing --------------------------------------------------------------------------

    def append(self, entries: Iterable[Entry]) -> None:
        """Add entries that continue the log exactly (the leader's own proposals)."""
        self.entries.extend(entries)

    def truncate_and_append(self, entries: list[Entry]) -> None:
        """Replace everything from `entries[0].index` on with `entries`."""
        first = entries[0].index
        if first <= self.snapshot_index:
            raise ValueError(f"cannot overwrite index {first}: compacted up to {self.snapshot_index}")
        if first > self.last_index() + 1:
            raise ValueError(f"entries starting at {first} leave a gap after {self.last_index()}")
        del self.entries[first - self.snapshot_index - 1 :]
        if self.stable_index >= first:
            self.stable_index = first - 1
        self.entries.extend(entries)

    def truncate_after(self, index: int) -> None:
        """Drop every entry above `index` (only the M4 mutant calls this without new entries)."""
        index = max(index, self.snapshot_index)
        del self.entries[index - self.snapshot_index :]
        if self.stable_index > index:
            self.stable_index = index

    def stable_to(self, index: int, term: int) -> None:
        """The driver persisted entries up to (index, term); ignore it if the log changed since."""
        if index > self.stable_index and self.term(index) == term:
            self.stable_index = index

    def compact_to(self, index: int) -> None:
        """Forget entries ≤ `index` (a snapshot now covers them)."""
        if index <= self.snapshot_index:
            return
        if index > self.last_index():
            raise ValueError(f"cannot compact to {index} beyond the last index {self.last_index()}")
        term = self.term(index)
        assert term is not None
        del self.entries[: index - self.snapshot_index]
        self.snapshot_index = index
        self.snapshot_term = term
        self.stable_index = max(self.stable_index, index)

    def restore(self, meta: SnapshotMeta) -> None:
        """Throw the whole log away: it now starts right after the snapshot."""
        self.entries = []
        self.snapshot_index = meta.index
        self.snapshot_term = meta.term
        self.stable_index = meta.index
