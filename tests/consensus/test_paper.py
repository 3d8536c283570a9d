"""One test per statement of the Raft paper (and thesis) that the core must honour.

Each test drives a single core by hand: build it, step messages in, read what comes out.
Section numbers refer to "In Search of an Understandable Consensus Algorithm" (extended).
"""

from __future__ import annotations

import random

import pytest

from consensus.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    PersistedState,
    Role,
    VoteRequest,
    VoteResponse,
)
from consensus.raft import RaftConfig
from tests.consensus.helpers import core, drain, elect, of_type, sent


def entry(term: int, index: int, data: bytes = b"x") -> Entry:
    return Entry(term, index, EntryKind.NORMAL, data)


def log_of(*terms: int) -> list[Entry]:
    return [entry(term, index) for index, term in enumerate(terms, start=1)]


def follower_with(*terms: int, term: int | None = None, commit: int = 0, **options: object):
    """A follower (n2) whose log holds entries with these terms."""
    entries = log_of(*terms)
    current = term if term is not None else (terms[-1] if terms else 0)
    state = PersistedState(HardState(current, "", commit), None, entries)
    return core("n2", persisted=state, **options)


# --- §5.1: terms --------------------------------------------------------------------------


def test_a_node_starts_as_a_follower_of_term_zero() -> None:
    raft = core()
    assert (raft.role, raft.term, raft.leader, raft.commit_index) == (Role.FOLLOWER, 0, "", 0)


@pytest.mark.parametrize("role", ["follower", "candidate", "leader"])
def test_a_higher_term_turns_any_role_into_a_follower_of_that_term(role: str) -> None:
    raft = core()
    if role == "candidate":
        raft.campaign()
    elif role == "leader":
        elect(raft)
    drain(raft)
    raft.step(AppendEntries(9, "n3", "n1", prev_index=0, prev_term=0, entries=[], commit=0))
    assert (raft.role, raft.term, raft.leader) == (Role.FOLLOWER, 9, "n3")
    assert raft.vote == ""


def test_a_message_of_a_stale_term_is_refused_and_answered_with_the_current_term() -> None:
    raft = follower_with(1, 1, term=5)
    raft.step(AppendEntries(3, "n3", "n2", 2, 1, [entry(3, 3)], commit=3))
    assert raft.last_index == 2 and raft.commit_index == 0
    [answer] = sent(raft)
    assert isinstance(answer, AppendResponse) and answer.term == 5 and answer.to == "n3"


# --- §5.2: leader election ---------------------------------------------------------------


def test_a_leader_sends_heartbeats_every_heartbeat_tick() -> None:
    raft = core(heartbeat_tick=2)
    elect(raft)
    raft.tick()
    assert of_type(sent(raft), Heartbeat) == []
    raft.tick()
    beats = of_type(sent(raft), Heartbeat)
    assert sorted(b.to for b in beats) == ["n2", "n3"]
    assert all(b.term == raft.term for b in beats)


def test_a_follower_that_hears_nothing_campaigns_for_the_next_term() -> None:
    raft = core()
    for _ in range(raft.randomized_election_timeout):
        raft.tick()
    assert (raft.role, raft.term, raft.vote) == (Role.CANDIDATE, 1, "n1")
    requests = of_type(sent(raft), VoteRequest)
    assert sorted(r.to for r in requests) == ["n2", "n3"]
    assert all((r.term, r.pre_vote) == (1, False) for r in requests)


def test_a_candidate_that_does_not_win_in_time_starts_a_new_election() -> None:
    raft = core()
    raft.campaign()
    drain(raft)
    for _ in range(raft.randomized_election_timeout):
        raft.tick()
    assert (raft.role, raft.term) == (Role.CANDIDATE, 2)


@pytest.mark.parametrize(
    ("voters", "grants", "role"),
    [
        (("n1",), {}, Role.LEADER),
        (("n1", "n2", "n3"), {"n2": True}, Role.LEADER),
        (("n1", "n2", "n3"), {"n2": False}, Role.CANDIDATE),
        (("n1", "n2", "n3"), {"n2": False, "n3": False}, Role.FOLLOWER),
        (("n1", "n2", "n3", "n4", "n5"), {"n2": True}, Role.CANDIDATE),
        (("n1", "n2", "n3", "n4", "n5"), {"n2": True, "n3": True}, Role.LEADER),
        (("n1", "n2", "n3", "n4", "n5"), {"n2": False, "n3": False, "n4": False}, Role.FOLLOWER),
    ],
)
def test_a_candidate_wins_with_a_majority_and_gives_up_when_a_majority_refuses(
    voters: tuple[str, ...], grants: dict[str, bool], role: Role
) -> None:
    raft = core(voters=voters)
    raft.campaign()
    drain(raft)
    for voter, granted in grants.items():
        raft.step(VoteResponse(1, voter, "n1", granted))
    assert raft.role is role
    assert raft.term == 1


def test_a_voter_grants_one_vote_per_term_first_come_first_served() -> None:
    raft = core("n1")
    raft.step(VoteRequest(1, "n2", "n1", 0, 0))
    raft.step(VoteRequest(1, "n3", "n1", 0, 0))
    raft.step(VoteRequest(1, "n2", "n1", 0, 0))
    answers = of_type(sent(raft), VoteResponse)
    assert [(a.to, a.granted) for a in answers] == [("n2", True), ("n3", False), ("n2", True)]
    assert raft.vote == "n2"


def test_a_candidate_that_hears_from_a_leader_of_its_term_becomes_its_follower() -> None:
    raft = core()
    raft.campaign()
    drain(raft)
    raft.step(AppendEntries(1, "n2", "n1", 0, 0, [entry(1, 1)], commit=0))
    assert (raft.role, raft.term, raft.leader, raft.last_index) == (Role.FOLLOWER, 1, "n2", 1)


def test_election_timeouts_are_randomized_within_one_to_two_election_ticks() -> None:
    timeouts = {
        core(seed=seed, election_tick=10).randomized_election_timeout for seed in range(200)
    }
    assert min(timeouts) >= 10 and max(timeouts) < 20
    assert len(timeouts) > 5


def test_configuration_errors_are_named() -> None:
    with pytest.raises(ValueError, match="election_tick"):
        RaftConfig(node_id="n1", election_tick=1, heartbeat_tick=1)
    with pytest.raises(ValueError, match="node_id"):
        RaftConfig(node_id="")


# --- §5.3: log replication ---------------------------------------------------------------


def test_a_leader_appends_a_proposal_and_sends_it_to_every_follower() -> None:
    raft = core()
    elect(raft)
    for follower in ("n2", "n3"):
        raft.step(AppendResponse(1, follower, "n1", index=1))
    drain(raft)
    receipt = raft.propose([b"a", b"b"])
    assert (receipt.term, receipt.first_index, receipt.last_index) == (1, 2, 3)
    appends = of_type(sent(raft), AppendEntries)
    assert sorted(a.to for a in appends) == ["n2", "n3"]
    for append in appends:
        assert [e.data for e in append.entries][-2:] == [b"a", b"b"]


def test_a_leader_commits_once_a_majority_holds_the_entry_not_before() -> None:
    raft = core(voters=("n1", "n2", "n3", "n4", "n5"))
    elect(raft)
    raft.propose(b"a")
    drain(raft)
    raft.step(AppendResponse(1, "n2", "n1", index=2))
    assert raft.commit_index == 0
    raft.step(AppendResponse(1, "n3", "n1", index=2))
    assert raft.commit_index == 2
    committed = [e for ready in drain(raft) for e in ready.committed_entries]
    assert [e.index for e in committed] == [1, 2]


def test_committing_an_entry_commits_every_entry_before_it() -> None:
    raft = core()
    elect(raft)
    raft.propose(b"a")
    raft.propose(b"b")
    raft.propose(b"c")
    drain(raft)
    raft.step(AppendResponse(1, "n2", "n1", index=4))
    assert raft.commit_index == 4


def test_a_follower_commits_what_the_leader_says_is_committed() -> None:
    raft = follower_with(term=1)
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, log_of(1, 1, 1), commit=2))
    assert raft.commit_index == 2
    assert [e.index for r in drain(raft) for e in r.committed_entries] == [1, 2]


def test_a_follower_refuses_entries_whose_previous_entry_it_does_not_hold() -> None:
    raft = follower_with(1, 1, term=2)
    raft.step(AppendEntries(2, "n1", "n2", prev_index=2, prev_term=2, entries=[entry(2, 3)], commit=0))
    assert raft.last_index == 2
    [answer] = of_type(sent(raft), AppendResponse)
    assert answer.reject and answer.index == 2
    assert (answer.hint_term, answer.hint_index) == (1, 1)


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        # (prev_index, prev_term, terms of new entries), resulting log terms
        ((0, 0, [2]), [2]),  # conflict at 1: everything after goes
        ((1, 1, [2, 2]), [1, 2, 2]),  # conflict at 2
        ((2, 2, [3]), [1, 2, 3, 3]),  # entries already held: nothing changes
        ((3, 3, [3]), [1, 2, 3, 3]),  # entries already held: nothing changes
        ((4, 3, [4, 4]), [1, 2, 3, 3, 4, 4]),  # plain append
    ],
)
def test_a_follower_deletes_a_conflicting_suffix_and_appends_what_is_new(
    incoming: tuple[int, int, list[int]], expected: list[int]
) -> None:
    raft = follower_with(1, 2, 3, 3, term=4)
    prev_index, prev_term, terms = incoming
    entries = [entry(t, prev_index + 1 + k) for k, t in enumerate(terms)]
    raft.step(AppendEntries(4, "n1", "n2", prev_index, prev_term, entries, commit=0))
    assert [raft.term_at(i) for i in range(1, raft.last_index + 1)] == expected


def test_a_follower_keeps_entries_a_stale_append_already_delivered() -> None:
    """A delayed AppendEntries that matches must not cut what later ones added (mutant M4)."""
    raft = follower_with(term=1)
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, log_of(1, 1, 1, 1), commit=0))
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, log_of(1, 1), commit=0))
    assert raft.last_index == 4


def test_a_follower_commits_no_further_than_the_last_entry_the_leader_sent() -> None:
    """Its older tail may still be replaced (mutant M14)."""
    raft = follower_with(1, 1, 2, 2, term=3)
    raft.step(AppendEntries(3, "n1", "n2", prev_index=1, prev_term=1, entries=[entry(1, 2)], commit=4))
    assert raft.commit_index == 2


def test_a_follower_checks_the_previous_entry_before_appending() -> None:
    """Mutant M5 appends regardless, and the logs diverge below the commit point."""
    raft = follower_with(1, 1, 1, term=3)
    raft.step(AppendEntries(3, "n1", "n2", prev_index=3, prev_term=2, entries=[entry(3, 4)], commit=0))
    assert raft.last_index == 3


def test_a_new_leader_appends_an_empty_entry_of_its_term() -> None:
    raft = follower_with(1, 1, term=1)
    elect(raft)
    last = raft.entry_at(raft.last_index)
    assert last is not None and (last.term, last.kind, last.index) == (2, EntryKind.NOOP, 3)


FIGURE_7 = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIGURE_7))
def test_a_leader_brings_any_follower_of_figure_7_in_line(case: str) -> None:
    from tests.consensus.cluster import Cluster

    leader_log = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
    cluster = Cluster(["leader", "follower", "other"], seed=7, max_size_per_message_bytes=1)
    for name, terms in (("leader", leader_log), ("follower", FIGURE_7[case]), ("other", leader_log)):
        node = cluster.nodes[name]
        node.persisted.entries = log_of(*terms)
        node.persisted.hard_state = HardState(8, "", 0)
        node.restart()
    cluster.elect("leader")
    cluster.propose("leader", b"z")
    cluster.stabilize()
    cluster.tick("leader")
    cluster.stabilize()
    follower, leader = cluster["follower"], cluster["leader"]
    assert follower.last_index == leader.last_index
    assert follower.entries(1, follower.last_index + 1) == leader.entries(1, leader.last_index + 1)
    assert follower.commit_index == leader.commit_index == leader.last_index


# --- §5.4: safety --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate_last", "granted"),
    [
        ((2, 1), False),  # (last_index, last_term): older last term
        ((3, 1), False),
        ((4, 1), False),  # longer, but older last term
        ((2, 2), False),  # same last term, shorter
        ((3, 2), True),  # same last term, same length
        ((4, 2), True),
        ((1, 3), True),  # newer last term wins whatever the length
    ],
)
def test_a_voter_refuses_a_candidate_whose_log_is_less_up_to_date(
    candidate_last: tuple[int, int], granted: bool
) -> None:
    """§5.4.1 (mutant M3 grants regardless)."""
    raft = follower_with(1, 1, 2, term=2)
    last_index, last_term = candidate_last
    raft.step(VoteRequest(3, "n3", "n2", last_index, last_term))
    [answer] = of_type(sent(raft), VoteResponse)
    assert answer.granted is granted
    assert raft.vote == ("n3" if granted else "")


def test_the_vote_is_in_the_hard_state_persisted_with_the_answer() -> None:
    """The answer leaves only after the vote is durable (mutant M2 forgets it)."""
    raft = core("n2")
    raft.step(VoteRequest(1, "n1", "n2", 0, 0))
    ready = raft.ready()
    assert ready is not None
    assert of_type(ready.messages, VoteResponse)[0].granted
    assert ready.hard_state == HardState(1, "n1", 0)
    assert ready.must_sync


def test_a_leader_commits_only_entries_of_its_own_term_by_counting() -> None:
    """§5.4.2, Figure 8 (mutant M1 commits the old entry)."""
    raft = follower_with(1, 2, term=3)
    elect(raft)  # term 4, NOOP at index 3
    raft.step(AppendResponse(4, "n3", "n2", index=2))
    assert raft.commit_index == 0
    raft.step(AppendResponse(4, "n3", "n2", index=3))
    assert raft.commit_index == 3


def test_a_node_that_restarts_keeps_its_term_vote_and_log() -> None:
    raft = core("n2")
    raft.step(VoteRequest(1, "n1", "n2", 0, 0))
    raft.step(AppendEntries(1, "n1", "n2", 0, 0, log_of(1, 1), commit=1))
    persisted = PersistedState(HardState(), None, [])
    for ready in drain(raft):
        if ready.hard_state is not None:
            persisted = PersistedState(ready.hard_state, None, persisted.entries + ready.entries)
        else:
            persisted = PersistedState(persisted.hard_state, None, persisted.entries + ready.entries)
    again = core("n2", persisted=persisted)
    assert (again.term, again.vote, again.last_index, again.commit_index) == (1, "n1", 2, 1)
    again.step(VoteRequest(1, "n3", "n2", 5, 1))
    assert not of_type(sent(again), VoteResponse)[0].granted


# --- thesis §9.6 and etcd: PreVote, CheckQuorum, leader stickiness ---------------------------


def test_prevote_asks_without_changing_anyone_s_term() -> None:
    candidate = core("n1", pre_vote=True)
    voter = core("n2", pre_vote=True)
    candidate.campaign()
    requests = of_type(sent(candidate), VoteRequest)
    assert candidate.role is Role.PRE_CANDIDATE and candidate.term == 0
    assert all(r.pre_vote and r.term == 1 for r in requests)
    voter.step(next(r for r in requests if r.to == "n2"))
    [answer] = of_type(sent(voter), VoteResponse)
    assert answer.granted and answer.pre_vote and answer.term == 1
    assert (voter.term, voter.vote) == (0, "")
    candidate.step(answer)
    assert (candidate.role, candidate.term) == (Role.CANDIDATE, 1)


def test_a_leader_without_a_live_quorum_steps_down_after_an_election_timeout() -> None:
    raft = core(check_quorum=True, election_tick=5)
    elect(raft)
    for _ in range(4):
        raft.tick()
        raft.step(HeartbeatResponse(raft.term, "n2", "n1"))
    raft.tick()
    assert raft.role is Role.LEADER, "n2 answered: a quorum was live"
    for _ in range(5):
        raft.tick()
    assert raft.role is Role.FOLLOWER


def test_a_follower_that_hears_its_leader_ignores_vote_requests() -> None:
    """Leader stickiness: a disruptive node cannot depose a live leader."""
    raft = core("n2", check_quorum=True)
    raft.step(Heartbeat(1, "n1", "n2", commit=0))
    drain(raft)
    raft.step(VoteRequest(2, "n3", "n2", 5, 1))
    assert raft.term == 1 and sent(raft) == []
    for _ in range(raft.randomized_election_timeout - 1):
        raft.tick()
    raft.step(VoteRequest(3, "n3", "n2", 5, 1))
    assert raft.term == 3
    assert of_type(sent(raft), VoteResponse)[0].granted


def test_a_pre_candidate_forgets_its_leader_so_it_can_vote_for_others() -> None:
    """etcd #8334: otherwise CheckQuorum + PreVote can leave a cluster without a leader."""
    raft = core("n2", check_quorum=True, pre_vote=True)
    raft.step(Heartbeat(1, "n1", "n2", commit=0))
    for _ in range(raft.randomized_election_timeout):
        raft.tick()
    assert raft.role is Role.PRE_CANDIDATE and raft.leader == ""
    drain(raft)
    raft.step(VoteRequest(2, "n3", "n2", 0, 0, pre_vote=True))
    assert of_type(sent(raft), VoteResponse)[0].granted


def test_a_leader_steps_down_when_an_answer_carries_a_higher_term() -> None:
    """Mutant M7 keeps leading."""
    raft = core()
    elect(raft)
    raft.step(AppendResponse(5, "n2", "n1", index=0))
    assert (raft.role, raft.term) == (Role.FOLLOWER, 5)


def test_election_jitter_comes_only_from_the_injected_random() -> None:
    first = core(seed=3)
    second = core(seed=3)
    assert first.randomized_election_timeout == second.randomized_election_timeout
    state = random.getstate()
    random.seed(12345)
    third = core(seed=3)
    random.setstate(state)
    assert third.randomized_election_timeout == first.randomized_election_timeout
