"""The core's contract with its driver: Ready/advance, refusals, restarts, and bad input."""

from __future__ import annotations

import attrs
import pytest

from consensus.errors import ConfChangeRefused, NotLeader, ProposalDropped
from consensus.membership import (
    ConfigurationHistory,
    apply_change,
    decode_configuration,
    normalized,
)
from consensus.messages import (
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfChangeKind,
    Configuration,
    Entry,
    EntryKind,
    HardState,
    InstallSnapshot,
    PersistedState,
    Role,
    SnapshotMeta,
)
from runtime.codec import decode, encode
from tests.consensus.helpers import core, drain, elect, of_type


def test_ready_then_advance_is_the_only_order() -> None:
    raft = core()
    raft.campaign()
    ready = raft.ready()
    assert ready is not None and ready.hard_state == HardState(1, "n1", 0) and ready.must_sync
    assert not raft.has_ready()
    with pytest.raises(RuntimeError, match="advance"):
        raft.ready()
    with pytest.raises(ValueError, match="advance"):
        raft.advance(attrs.evolve(ready))
    raft.advance(ready)
    assert raft.ready() is None


def test_the_leader_s_messages_come_out_with_the_entries_they_carry() -> None:
    raft = core()
    elect(raft)
    for follower in ("n2", "n3"):
        raft.step(AppendResponse(1, follower, "n1", index=1))
    drain(raft)
    raft.propose(b"x")
    ready = raft.ready()
    assert ready is not None
    carried = {e.index for m in of_type(ready.messages, AppendEntries) for e in m.entries}
    assert carried <= {e.index for e in ready.entries}
    assert ready.must_sync


def test_commit_only_changes_need_no_fsync() -> None:
    raft = core()
    elect(raft)
    raft.step(AppendResponse(1, "n2", "n1", index=1))
    ready = raft.ready()
    assert ready is not None and ready.hard_state == HardState(1, "n1", 1)
    assert not ready.must_sync
    assert [e.index for e in ready.committed_entries] == [1]


def test_requests_a_follower_cannot_serve_name_the_leader() -> None:
    raft = core("n2")
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, [], 0))
    drain(raft)
    for action in (
        lambda: raft.propose(b"x"),
        lambda: raft.transfer_leader("n3"),
        lambda: raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "n4")),
    ):
        with pytest.raises(NotLeader, match="the leader is n1") as caught:
            action()
        assert caught.value.leader == "n1"
    with pytest.raises(NotLeader, match="no leader"):
        core("n3").read_index(b"ctx")


def test_bad_requests_are_refused_and_change_nothing() -> None:
    raft = core()
    elect(raft)
    last = raft.last_index
    with pytest.raises(TypeError, match="item 1 is str"):
        raft.propose([b"ok", "text"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty batch"):
        raft.propose([])
    with pytest.raises(ValueError, match="non-empty bytes"):
        raft.read_index(b"")
    with pytest.raises(ValueError, match="not a voter"):
        raft.transfer_leader("n9")
    with pytest.raises(ValueError, match="only 0 is applied"):
        raft.compact(1, b"state")
    assert raft.last_index == last


def test_proposals_wait_while_leadership_is_being_transferred() -> None:
    raft = core()
    elect(raft)
    raft.transfer_leader("n2")
    with pytest.raises(ProposalDropped, match="transfer to n2"):
        raft.propose(b"x")


def test_a_message_for_another_node_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="stepped into"):
        core("n1").step(AppendEntries(1, "n2", "n3", 0, 0, [], 0))


def test_malformed_peer_messages_are_dropped_and_counted() -> None:
    raft = core("n2")
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, [Entry(1, 5, EntryKind.NORMAL, b"")], 0))
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, [Entry(2, 1, EntryKind.NORMAL, b"")], 0))
    raft.step(InstallSnapshot(1, "n1", "n2", SnapshotMeta(3, 1), offset=10, total_bytes=4, chunk=b"x"))
    assert raft.dropped_messages == 3
    assert raft.last_index == 0 and raft.term == 1


def test_restart_validates_what_it_is_given() -> None:
    entries = [Entry(1, 1, EntryKind.NORMAL, b"")]
    with pytest.raises(ValueError, match="beyond the persisted log"):
        core(persisted=PersistedState(HardState(1, "", 5), None, entries))
    with pytest.raises(ValueError, match="start at 1, expected"):
        from consensus.messages import Snapshot

        core(persisted=PersistedState(HardState(1, "", 3), Snapshot(SnapshotMeta(3, 1), b""), entries))


def test_the_observable_state_for_checkers() -> None:
    raft = core()
    elect(raft)
    status = raft.status()
    assert (status.role, status.term, status.leader, status.last_index) == (Role.LEADER, 1, "n1", 1)
    assert status.configuration == Configuration(("n1", "n2", "n3"))
    assert set(status.progress) == {"n1", "n2", "n3"}
    assert raft.entries(1, 2) == [raft.entry_at(1)]
    assert raft.configuration_at(1) == status.configuration


def test_membership_rules() -> None:
    base = Configuration(("a", "b"), ("c",))
    assert apply_change(base, ConfChange(ConfChangeKind.PROMOTE, "c")) == Configuration(("a", "b", "c"))
    assert apply_change(base, ConfChange(ConfChangeKind.REMOVE, "c")) == Configuration(("a", "b"))
    assert apply_change(base, ConfChange(ConfChangeKind.ADD_LEARNER, "d")).learners == ("c", "d")
    for change, complaint in (
        (ConfChange(ConfChangeKind.ADD_LEARNER, "a"), "already a member"),
        (ConfChange(ConfChangeKind.PROMOTE, "a"), "already a voter"),
        (ConfChange(ConfChangeKind.PROMOTE, "z"), "not a learner"),
        (ConfChange(ConfChangeKind.REMOVE, "z"), "not a member"),
        (ConfChange(ConfChangeKind.REMOVE, "a"), None),
    ):
        if complaint is None:
            apply_change(base, change)
            continue
        with pytest.raises(ConfChangeRefused, match=complaint):
            apply_change(base, change)
    with pytest.raises(ConfChangeRefused, match="last voter"):
        apply_change(Configuration(("a",)), ConfChange(ConfChangeKind.REMOVE, "a"))
    with pytest.raises(ValueError, match="both voter and learner"):
        normalized(["a"], ["a"])
    assert decode_configuration(encode(base)) == base
    with pytest.raises(ValueError, match="holds a ConfChange"):
        decode_configuration(encode(ConfChange(ConfChangeKind.REMOVE, "a")))
    with pytest.raises(ValueError, match="does not decode"):
        decode_configuration(b"\x00garbage")


def test_configuration_history_rolls_back_and_compacts() -> None:
    history = ConfigurationHistory(Configuration(("a",)), 0)
    history.add(3, Configuration(("a",), ("b",)))
    history.add(7, Configuration(("a", "b")))
    assert history.at(5) == Configuration(("a",), ("b",)) and history.current_index() == 7
    assert history.truncate_from(6) and history.current() == Configuration(("a",), ("b",))
    history.compact_to(4)
    assert (history.base, history.base_index, history.changes) == (Configuration(("a",), ("b",)), 4, [])
    history.add(6, Configuration(("a",)))
    with pytest.raises(ValueError, match="does not follow"):
        history.add(5, Configuration(("a",)))


def test_raft_messages_travel_through_the_codec() -> None:
    message = AppendEntries(3, "n1", "n2", 4, 2, [Entry(3, 5, EntryKind.CONFIGURATION, encode(Configuration(("n1",))))], 4)
    assert decode(encode(message)) == message
    assert decode(encode(message)).entries[0].kind is EntryKind.CONFIGURATION
