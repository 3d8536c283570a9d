"""The in-memory log, the flow-control bookkeeping and the quorum arithmetic, against models."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.log import ENTRY_OVERHEAD_BYTES, RaftLog
from consensus.messages import Entry, EntryKind, SnapshotMeta
from consensus.progress import Progress, ProgressState, committed_index


def make(terms: list[int], start: int = 1) -> list[Entry]:
    return [Entry(t, start + k, EntryKind.NORMAL, b"%d" % (start + k)) for k, t in enumerate(terms)]


nondecreasing_terms = st.lists(st.integers(1, 4), max_size=30).map(sorted)


@given(nondecreasing_terms, st.integers(0, 5))
def test_terms_and_slices_match_a_plain_list(terms: list[int], base: int) -> None:
    entries = make(terms, start=base + 1)
    log = RaftLog(base, 1 if base else 0, list(entries))
    assert log.first_index() == base + 1 and log.last_index() == base + len(terms)
    assert log.term(base) == (1 if base else 0)
    assert log.term(base - 1) is None if base else True
    assert log.term(log.last_index() + 1) is None
    for entry in entries:
        assert log.term(entry.index) == entry.term and log.entry(entry.index) == entry
    for low in range(base + 1, log.last_index() + 2):
        for high in range(low, log.last_index() + 2):
            assert log.slice(low, high) == [e for e in entries if low <= e.index < high]


@given(nondecreasing_terms, st.integers(1, 200))
def test_size_bounded_slices_hold_at_least_one_entry_and_respect_the_bound(
    terms: list[int], max_bytes: int
) -> None:
    log = RaftLog(0, 0, make(terms))
    if not terms:
        return
    batch = log.slice(1, log.last_index() + 1, max_bytes)
    assert batch
    size = sum(len(e.data) + ENTRY_OVERHEAD_BYTES for e in batch)
    assert len(batch) == 1 or size <= max_bytes


@given(nondecreasing_terms, st.data())
def test_term_searches_agree_with_a_linear_scan(terms: list[int], data: st.DataObject) -> None:
    log = RaftLog(0, 0, make(terms))
    for term in range(0, 6):
        expected = max((e.index for e in log.entries if e.term == term), default=None)
        assert log.last_index_of_term(term) == expected
    if terms:
        at = data.draw(st.integers(1, len(terms)))
        term = log.term(at)
        expected = min(i for i in range(1, at + 1) if log.term(i) == term)
        assert log.first_index_of_term(term, at) == expected


@given(nondecreasing_terms, nondecreasing_terms, st.data())
def test_conflicts_and_truncation(held: list[int], incoming_terms: list[int], data: st.DataObject) -> None:
    log = RaftLog(0, 0, make(held))
    start = data.draw(st.integers(1, len(held) + 1))
    incoming = [Entry(t + 10, start + k, EntryKind.NORMAL, b"new") for k, t in enumerate(incoming_terms)]
    conflict = log.find_conflict(incoming)
    assert conflict == (start if incoming else 0)
    if incoming:
        log.stable_index = log.last_index()
        log.truncate_and_append(incoming)
        assert log.entries == make(held)[: start - 1] + incoming
        assert log.stable_index == min(len(held), start - 1)
        assert log.unstable_entries() == incoming


def test_truncation_and_compaction_refuse_impossible_requests() -> None:
    log = RaftLog(0, 0, make([1, 1, 2]))
    with pytest.raises(ValueError, match="gap"):
        log.truncate_and_append(make([2], start=5))
    log.compact_to(2)
    assert (log.first_index(), log.snapshot_term, log.entries) == (3, 1, make([2], start=3))
    with pytest.raises(ValueError, match="compacted"):
        log.truncate_and_append(make([3], start=2))
    with pytest.raises(ValueError, match="beyond"):
        log.compact_to(9)
    with pytest.raises(ValueError, match="expected 1"):
        RaftLog(0, 0, make([1], start=2))


def test_stable_to_ignores_a_position_the_log_no_longer_has() -> None:
    log = RaftLog(0, 0, [])
    log.append(make([1, 1, 1]))
    log.stable_to(3, 2)
    assert log.stable_index == 0
    log.stable_to(3, 1)
    assert log.stable_index == 3 and log.unstable_entries() == []
    log.restore(SnapshotMeta(10, 4))
    assert (log.first_index(), log.last_index(), log.stable_index) == (11, 10, 10)


def test_up_to_date_compares_the_last_term_first_then_the_length() -> None:
    log = RaftLog(0, 0, make([1, 2, 2]))
    assert log.is_up_to_date(1, 3) and log.is_up_to_date(3, 2) and log.is_up_to_date(9, 2)
    assert not log.is_up_to_date(2, 2) and not log.is_up_to_date(9, 1)


@given(st.lists(st.integers(0, 50), min_size=1, max_size=9))
def test_the_committed_index_is_what_a_majority_holds(matches: list[int]) -> None:
    index = committed_index(matches)
    majority = len(matches) // 2 + 1
    assert sum(1 for m in matches if m >= index) >= majority
    assert sum(1 for m in matches if m >= index + 1) < majority


def test_progress_flow_control_probe_replicate_and_window() -> None:
    progress = Progress(next_index=5)
    assert progress.state is ProgressState.PROBE and not progress.is_paused(2)
    progress.sent_entries(7)
    assert progress.probe_sent and progress.is_paused(2)
    assert progress.maybe_update(7) and not progress.is_paused(2)
    progress.become_replicate()
    assert progress.next == 8
    progress.sent_entries(9)
    progress.sent_entries(12)
    assert progress.next == 13 and progress.is_paused(2)
    progress.maybe_update(9)
    assert list(progress.inflight) == [12] and not progress.is_paused(2)
    assert not progress.maybe_decrease_to(9, 3), "a rejection at or below match is stale"
    assert progress.maybe_decrease_to(12, 11)
    assert progress.state is ProgressState.PROBE and progress.next == 11
    assert not progress.maybe_decrease_to(12, 11), "probe ignores rejections of other indexes"
    assert progress.maybe_decrease_to(10, 3)
    assert progress.next == 10, "never below match + 1"


def test_inflight_windows_are_released_in_order() -> None:
    progress = Progress(next_index=1)
    progress.maybe_update(0)
    progress.become_replicate()
    for last in (3, 6, 9, 12):
        progress.sent_entries(last)
    progress.maybe_update(7)
    assert list(progress.inflight) == [9, 12]
    assert all(a < b for a, b in pairwise(progress.inflight))
