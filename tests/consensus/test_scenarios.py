"""Stories of a whole cluster: campaign, replicate, partition, catch up, snapshot,
membership change, leadership transfer and reads. The safety checker watches every step.
"""

from __future__ import annotations

import pytest

from consensus.errors import ConfChangeRefused, NotLeader, ProposalDropped
from consensus.messages import (
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfChangeKind,
    InstallSnapshot,
    Role,
    SnapshotResponse,
    TimeoutNow,
)
from consensus.progress import ProgressState
from tests.consensus.cluster import Cluster

ADD, PROMOTE, REMOVE = ConfChangeKind.ADD_LEARNER, ConfChangeKind.PROMOTE, ConfChangeKind.REMOVE


def run_until(cluster: Cluster, condition, ticks: int = 200) -> None:  # type: ignore[no-untyped-def]
    """Let time pass (ticking every live node, delivering everything) until `condition()`."""
    for _ in range(ticks):
        if condition():
            return
        cluster.tick_all()
        cluster.stabilize()
    assert condition(), "the cluster did not get there"


def test_story_campaign_the_first_node_to_time_out_becomes_the_leader() -> None:
    cluster = Cluster(seed=1, pre_vote=True, check_quorum=True)
    run_until(cluster, lambda: bool(cluster.leaders()))
    [leader] = cluster.leaders()
    assert all(cluster[n].leader == leader for n in cluster.nodes)
    assert {cluster[n].term for n in cluster.nodes} == {1}


def test_story_replicate_a_batch_travels_in_few_messages_and_applies_everywhere() -> None:
    cluster = Cluster(seed=2)
    cluster.elect("n1")
    before = cluster.delivered
    payloads = [f"item {i}".encode() for i in range(500)]
    cluster.propose("n1", payloads)
    cluster.stabilize()
    # One AppendEntries and one answer per follower, then the commit round: batching works.
    assert cluster.delivered - before <= 8
    for node in cluster.nodes:
        assert cluster.applied(node) == payloads


def test_story_replicate_large_batches_are_split_by_the_message_size_bound() -> None:
    cluster = Cluster(seed=3, max_size_per_message_bytes=1000, max_inflight_messages=4)
    cluster.elect("n1")
    cluster.propose("n1", [bytes(100)] * 60)
    cluster.process_all()
    appends = [m for m in cluster.in_flight if isinstance(m, AppendEntries) and m.to == "n2"]
    assert len(appends) == 4, "the in-flight window caps the pipeline"
    assert all(sum(len(e.data) + 24 for e in m.entries) <= 1000 for m in appends)
    cluster.stabilize()
    assert len(cluster.applied("n3")) == 60


def test_story_partition_an_isolated_leader_steps_down_and_the_majority_moves_on() -> None:
    cluster = Cluster(seed=4, pre_vote=True, check_quorum=True)
    cluster.elect("n1")
    cluster.isolate("n1")
    run_until(cluster, lambda: cluster["n1"].role is Role.FOLLOWER)
    run_until(cluster, lambda: any(cluster[n].role is Role.LEADER for n in ("n2", "n3")))
    new_leader = cluster.leader()
    with pytest.raises(NotLeader):
        cluster.propose("n1", b"lost")
    cluster.propose(new_leader, b"kept")
    cluster.heal()
    run_until(cluster, lambda: cluster.applied("n1") == [b"kept"])
    assert cluster["n1"].leader == new_leader


def test_story_a_rejoining_node_does_not_disrupt_the_leader() -> None:
    """PreVote + CheckQuorum: the node's failed elections never raise anyone's term."""
    cluster = Cluster(seed=5, pre_vote=True, check_quorum=True)
    cluster.elect("n1")
    cluster.isolate("n3")
    for _ in range(100):
        cluster.tick_all()
        cluster.stabilize()
    assert cluster["n3"].term == 1
    cluster.heal()
    for _ in range(30):
        cluster.tick_all()
        cluster.stabilize()
    assert cluster.leaders() == ["n1"] and cluster["n1"].term == 1


def test_story_catch_up_a_far_behind_follower_skips_back_a_term_at_a_time() -> None:
    cluster = Cluster(seed=6, max_size_per_message_bytes=1)
    cluster.elect("n1")
    cluster.crash("n3")
    for round_number in range(5):
        cluster.propose(cluster.leader(), [b"%d" % round_number] * 20)
        cluster.stabilize()
        old = cluster.leader()
        cluster.crash(old)
        cluster.restart(old)
        other = "n2" if old == "n1" else "n1"
        cluster.elect(other)
    before = cluster.delivered
    cluster.restart("n3")
    cluster.tracing = True
    run_until(cluster, lambda: cluster.applied("n3") == cluster.applied(cluster.leader()))
    rejections = [m for m in cluster.trace if isinstance(m, AppendResponse) and m.reject]
    # Five terms of entries to skip: about one rejection per term, not one per entry.
    assert len(rejections) <= 8
    assert cluster.delivered - before < 400


def test_story_snapshot_a_returning_follower_gets_the_snapshot_in_chunks() -> None:
    cluster = Cluster(seed=7, snapshot_chunk_bytes=64, snapshot_inflight_chunks=2)
    cluster.elect("n1")
    cluster.crash("n3")
    cluster.propose("n1", [f"value {i}".encode() for i in range(50)])
    cluster.stabilize()
    snapshot = cluster.compact("n1")
    assert snapshot is not None and cluster["n1"].first_index == snapshot.meta.index + 1
    cluster.restart("n3")
    cluster.tracing = True
    run_until(cluster, lambda: cluster.applied("n3") == cluster.applied("n1"))
    chunks = [m for m in cluster.trace if isinstance(m, InstallSnapshot)]
    assert len({m.offset for m in chunks}) == -(-len(snapshot.data) // 64)
    assert cluster["n3"].latest_snapshot == snapshot
    assert cluster.nodes["n3"].persisted.snapshot == snapshot


def test_story_snapshot_a_lost_chunk_is_resent_and_a_restart_starts_over() -> None:
    cluster = Cluster(seed=8, snapshot_chunk_bytes=32, snapshot_inflight_chunks=4)
    cluster.elect("n1")
    cluster.crash("n3")
    cluster.propose("n1", [f"value {i}".encode() for i in range(40)])
    cluster.stabilize()
    snapshot = cluster.compact("n1")
    assert snapshot is not None
    cluster.restart("n3")
    cluster.tick("n1")
    cluster.stabilize(only=lambda m: not isinstance(m, InstallSnapshot))
    cluster.process_all()
    chunks = [i for i, m in enumerate(cluster.in_flight) if isinstance(m, InstallSnapshot)]
    assert len(chunks) == 4
    cluster.drop(chunks[1])  # the second chunk is lost: the third arrives beyond a gap
    gaps = []
    while cluster.in_flight:
        message = cluster.deliver(0)
        if isinstance(message, InstallSnapshot) and message.offset > 32:
            cluster.process_all()
            gaps += [m for m in cluster.in_flight if isinstance(m, SnapshotResponse) and m.gap]
            break
    assert gaps and gaps[0].received_bytes == 32
    # Now n3 crashes halfway: what it held was in memory only, so the transfer restarts.
    cluster.stabilize(only=lambda m: not (isinstance(m, InstallSnapshot) and m.offset >= 96))
    cluster.crash("n3")
    cluster.in_flight.clear()
    cluster.restart("n3")
    run_until(cluster, lambda: cluster.applied("n3") == cluster.applied("n1"))
    assert cluster["n3"].latest_snapshot == snapshot


def test_story_membership_add_a_learner_promote_it_once_caught_up_then_remove_the_leader() -> None:
    cluster = Cluster(["n1", "n2", "n3", "n4"], voters=["n1", "n2", "n3"], seed=9)
    cluster.elect("n1")
    cluster.propose("n1", [b"a"] * 100)
    cluster.stabilize()
    cluster.crash("n4")
    cluster["n1"].propose_conf_change(ConfChange(ADD, "n4"))
    cluster.stabilize()
    assert cluster["n1"].configuration.learners == ("n4",)
    assert cluster["n1"].progress()["n4"].match == 0
    with pytest.raises(ConfChangeRefused, match="behind"):
        cluster["n1"].propose_conf_change(ConfChange(PROMOTE, "n4"))
    cluster.restart("n4")
    run_until(cluster, lambda: cluster["n1"].progress()["n4"].match == cluster["n1"].last_index)
    assert cluster["n4"].role is Role.FOLLOWER and cluster["n4"].configuration.learners == ("n4",)
    cluster["n1"].propose_conf_change(ConfChange(PROMOTE, "n4"))
    cluster.stabilize()
    assert cluster["n4"].configuration.voters == ("n1", "n2", "n3", "n4")
    cluster["n1"].propose_conf_change(ConfChange(REMOVE, "n1"))
    cluster.stabilize()
    assert cluster["n1"].role is Role.FOLLOWER, "a removed leader steps down once it commits"
    assert cluster["n2"].configuration.voters == ("n2", "n3", "n4")
    run_until(cluster, lambda: any(cluster[n].role is Role.LEADER for n in ("n2", "n3", "n4")))
    leader = cluster.leader()
    cluster.propose(leader, b"after")
    cluster.stabilize()
    assert cluster.applied("n4")[-1] == b"after"
    for _ in range(50):
        cluster.tick_all()
        cluster.stabilize()
    assert cluster["n1"].role is Role.FOLLOWER, "the removed node never campaigns"
    assert cluster.leader() == leader


def test_story_membership_one_change_at_a_time_and_only_after_an_own_term_commit() -> None:
    """Ongaro's 2015 fix and the single-change rule (mutant M10 drops both)."""
    cluster = Cluster(["n1", "n2", "n3", "n4", "n5"], voters=["n1", "n2", "n3"], seed=10)
    cluster.campaign("n1")
    cluster.stabilize(only=lambda m: not isinstance(m, AppendEntries))
    assert cluster["n1"].role is Role.LEADER
    with pytest.raises(ConfChangeRefused, match="not yet committed an entry of term"):
        cluster["n1"].propose_conf_change(ConfChange(ADD, "n4"))
    cluster.stabilize()
    cluster["n1"].propose_conf_change(ConfChange(ADD, "n4"))
    with pytest.raises(ConfChangeRefused, match="not committed yet"):
        cluster["n1"].propose_conf_change(ConfChange(ADD, "n5"))
    with pytest.raises(ConfChangeRefused, match="already a member"):
        cluster.stabilize()
        cluster["n1"].propose_conf_change(ConfChange(ADD, "n4"))
    with pytest.raises(ConfChangeRefused, match="not a learner"):
        cluster["n1"].propose_conf_change(ConfChange(PROMOTE, "n5"))


def test_story_membership_an_uncommitted_change_rolls_back_with_the_entry() -> None:
    cluster = Cluster(seed=11, check_quorum=False)
    cluster.elect("n1")
    cluster.isolate("n1")
    cluster["n1"].propose_conf_change(ConfChange(REMOVE, "n3"))
    cluster.stabilize()
    assert cluster["n1"].configuration.voters == ("n1", "n2"), "in force once appended"
    cluster.crash("n1")
    cluster.heal()
    cluster.elect("n2")
    cluster.propose("n2", b"meanwhile")
    cluster.stabilize()
    cluster.restart("n1")
    run_until(cluster, lambda: cluster.applied("n1") == [b"meanwhile"])
    assert cluster["n1"].configuration.voters == ("n1", "n2", "n3"), "rolled back"
    assert cluster["n1"].configuration_index == 0


def test_story_transfer_leadership_moves_in_one_round_trip() -> None:
    cluster = Cluster(seed=12, pre_vote=True, check_quorum=True)
    cluster.elect("n1")
    cluster.propose("n1", b"x")
    cluster.stabilize()
    cluster["n1"].transfer_leader("n2")
    cluster.process_all()
    assert any(isinstance(m, TimeoutNow) for m in cluster.in_flight)
    with pytest.raises(ProposalDropped):
        cluster.propose("n1", b"refused")
    cluster.stabilize()
    assert cluster.leaders() == ["n2"] and cluster["n2"].term == 2


def test_story_transfer_to_a_lagging_follower_catches_it_up_first() -> None:
    cluster = Cluster(seed=13)
    cluster.elect("n1")
    cluster.isolate("n3")
    cluster.propose("n1", [b"x"] * 10)
    cluster.stabilize()
    cluster.heal()
    cluster["n1"].transfer_leader("n3")
    cluster.process_all()
    assert not any(isinstance(m, TimeoutNow) for m in cluster.in_flight)
    cluster.stabilize()
    assert cluster.leaders() == ["n3"]
    assert cluster.applied("n3") == [b"x"] * 10


def test_story_transfer_gives_up_after_an_election_timeout() -> None:
    cluster = Cluster(seed=14, election_tick=5)
    cluster.elect("n1")
    cluster.crash("n2")
    cluster["n1"].transfer_leader("n2")
    cluster.tick("n1", 5)
    assert cluster["n1"].lead_transferee == ""
    cluster.propose("n1", b"accepted again")


def test_story_read_index_on_the_leader_waits_for_a_heartbeat_quorum() -> None:
    cluster = Cluster(seed=15)
    cluster.elect("n1")
    cluster.propose("n1", b"v1")
    cluster.stabilize()
    cluster.read("n1", b"r1")
    cluster.process_all()
    assert cluster.nodes["n1"].read_states == []
    cluster.stabilize()
    [state] = cluster.nodes["n1"].read_states
    assert (state.context, state.index) == (b"r1", cluster["n1"].commit_index)


def test_story_read_index_on_a_follower_is_answered_by_the_leader() -> None:
    cluster = Cluster(seed=16)
    cluster.elect("n1")
    cluster.propose("n1", b"v1")
    cluster.stabilize()
    cluster.read("n3", b"from n3")
    cluster.stabilize()
    [state] = cluster.nodes["n3"].read_states
    assert state.index == 2
    assert cluster.nodes["n1"].read_states == []


def test_story_read_index_waits_for_the_new_leader_to_commit_in_its_term() -> None:
    cluster = Cluster(seed=17)
    cluster.campaign("n1")
    cluster.stabilize(only=lambda m: not isinstance(m, AppendEntries))
    assert cluster["n1"].role is Role.LEADER and cluster["n1"].commit_index == 0
    cluster.read("n1", b"early")
    cluster.stabilize(only=lambda m: not isinstance(m, AppendEntries))
    assert cluster.nodes["n1"].read_states == []
    cluster.stabilize()
    [state] = cluster.nodes["n1"].read_states
    assert state.index == 1


def test_story_read_index_a_deposed_leader_serves_no_stale_read() -> None:
    """Mutant M8 answers from the old leader's commit index at once."""
    cluster = Cluster(seed=18, check_quorum=False)
    cluster.elect("n1")
    cluster.isolate("n1")
    cluster.elect("n2")
    cluster.propose("n2", b"new")
    cluster.stabilize()
    assert cluster["n1"].role is Role.LEADER, "without CheckQuorum it does not know yet"
    cluster.read("n1", b"stale?")
    cluster.stabilize()
    assert cluster.nodes["n1"].read_states == []
    cluster.heal()
    run_until(cluster, lambda: cluster["n1"].role is Role.FOLLOWER)
    assert cluster.nodes["n1"].read_states == []


def test_story_single_node_commits_and_reads_alone() -> None:
    cluster = Cluster(["solo"], seed=19)
    cluster.campaign("solo")
    cluster.process_all()
    assert cluster["solo"].role is Role.LEADER
    cluster.propose("solo", b"one")
    cluster.read("solo", b"r")
    cluster.process_all()
    assert cluster.applied("solo") == [b"one"]
    assert cluster.nodes["solo"].read_states[0].index == 2


def test_story_crash_before_persisting_loses_only_what_was_never_acknowledged() -> None:
    cluster = Cluster(seed=20)
    cluster.elect("n1")
    cluster.propose("n1", b"a")
    cluster.process("n1")
    append = next(i for i, m in enumerate(cluster.in_flight) if m.to == "n3")
    cluster.deliver(append, process=False)
    assert cluster["n3"].last_index == 2
    cluster.crash("n3")
    cluster.restart("n3")
    assert cluster["n3"].last_index == 1, "the entry was never persisted, so never acknowledged"
    cluster.stabilize()
    run_until(cluster, lambda: cluster.applied("n3") == [b"a"])


def test_story_every_message_survives_the_wire_codec() -> None:
    cluster = Cluster(["n1", "n2", "n3", "n4"], voters=["n1", "n2", "n3"], seed=21, wire=True,
                      snapshot_chunk_bytes=40, pre_vote=True, check_quorum=True)
    cluster.elect("n1")
    cluster.propose("n1", [b"a", b"b"])
    cluster.stabilize()
    cluster.compact("n1")
    cluster["n1"].propose_conf_change(ConfChange(ADD, "n4"))
    cluster.read("n2", b"ctx")
    cluster.stabilize()
    cluster["n1"].transfer_leader("n2")
    run_until(cluster, lambda: cluster.leaders() == ["n2"])
    assert cluster.applied("n4") == [b"a", b"b"]
    assert cluster.nodes["n2"].read_states[0].context == b"ctx"
    assert cluster["n1"].progress() == {}
    assert cluster["n2"].progress()["n4"].state in (ProgressState.REPLICATE, ProgressState.PROBE)
