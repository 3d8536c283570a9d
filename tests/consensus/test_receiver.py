"""The AppendEntries receiver against any message a correct leader could send.

A follower's log shares a prefix with the leader's and may end in a tail of stale entries
from older terms. The leader may send any slice of its own log (a leader's backtracking
strategy decides which; etcd's, the paper's and ours all differ), with its commit index.
Whatever arrives, the follower must:

- commit only entries that are the leader's (a stale tail is never committed: mutant M14);
- after accepting, hold exactly the leader's entries up to the last one sent;
- keep every entry it held that agrees with the leader (no truncation without a conflict:
  mutant M4);
- never hold the leader's entry after an entry that disagrees (Log Matching: mutant M5).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consensus.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    PersistedState,
)
from tests.consensus.helpers import core, of_type, sent


def rising(draw: st.DrawFn, start: int, parity: int) -> list[int]:
    """Nondecreasing terms above `start`, all with the given parity (so two tails never share
    a term: a term has one leader, and a leader never writes two entries at one index)."""
    steps = draw(st.lists(st.integers(0, 2), max_size=6))
    terms, level = [], 0
    for step in steps:
        level += step
        terms.append(start + 1 + parity + 2 * level)
    return terms


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Entry], list[Entry], int, int, AppendEntries]:
    prefix: list[int] = []
    for _ in range(draw(st.integers(0, 6))):
        prefix.append((prefix[-1] if prefix else 1) + draw(st.integers(0, 1)))
    base = prefix[-1] if prefix else 1
    # The leader may still be in the prefix's term for a while; the follower's stale tail
    # then holds only later terms the leader never wrote.
    continuing = [base] * draw(st.integers(0, 2)) if prefix else []
    leader_tail = continuing + rising(draw, base, 0)
    follower_tail = rising(draw, base, 1)
    leader_term = max([*prefix, *leader_tail, *follower_tail, 1]) + 1
    leader = [Entry(t, i + 1, EntryKind.NORMAL, b"L%d" % (i + 1)) for i, t in enumerate(prefix + leader_tail)]
    follower = leader[: len(prefix)] + [
        Entry(t, len(prefix) + i + 1, EntryKind.NORMAL, b"F%d" % (len(prefix) + i + 1))
        for i, t in enumerate(follower_tail)
    ]
    follower_commit = draw(st.integers(0, len(prefix)))
    leader_commit = draw(st.integers(follower_commit, len(leader)))
    prev_index = draw(st.integers(0, len(leader)))
    count = draw(st.integers(0, len(leader) - prev_index))
    prev_term = leader[prev_index - 1].term if prev_index else 0
    message = AppendEntries(
        leader_term,
        "n1",
        "n2",
        prev_index,
        prev_term,
        leader[prev_index : prev_index + count],
        leader_commit,
    )
    return leader, follower, follower_commit, leader_term, message


@given(histories())
def test_the_follower_stays_safe_whatever_slice_of_the_leader_s_log_arrives(
    history: tuple[list[Entry], list[Entry], int, int, AppendEntries],
) -> None:
    check_receiver(history)


def check_receiver(history: tuple[list[Entry], list[Entry], int, int, AppendEntries]) -> None:
    leader, follower_log, follower_commit, leader_term, message = history
    raft = core(
        "n2",
        persisted=PersistedState(HardState(leader_term - 1, "", follower_commit), None, list(follower_log)),
    )
    raft.step(message)
    leaders_entry = {e.index: e for e in leader}
    held = {i: raft.entry_at(i) for i in range(1, raft.last_index + 1)}

    for index in range(1, raft.commit_index + 1):
        assert held[index] == leaders_entry.get(index), f"committed {held[index]} at {index}"

    [answer] = of_type(sent(raft), AppendResponse)
    if message.prev_index < follower_commit:
        # Already past it: the answer reports what is known to match, the commit index.
        assert not answer.reject and answer.index == follower_commit
    elif not answer.reject:
        last_sent = message.prev_index + len(message.entries)
        for index in range(1, last_sent + 1):
            assert held.get(index) == leaders_entry[index]
        assert answer.index == last_sent

    for entry in follower_log:
        if leaders_entry.get(entry.index) == entry:
            assert held.get(entry.index) == entry, f"lost agreeing entry {entry.index}"

    agreeing = [i for i, e in held.items() if leaders_entry.get(i) == e]
    if agreeing:
        for index in range(1, max(agreeing) + 1):
            assert held[index] == leaders_entry.get(index), f"{index} breaks the prefix"
