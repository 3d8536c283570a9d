"""Peers in a simulated cluster: election, replication, restart, snapshots, membership, transfer.

Each test is a script run by `sim.raftcluster.run_cluster` on a deterministic world, so a
failure replays exactly; `World` checks nothing here beyond what each test asserts.
"""

from __future__ import annotations

from consensus.client import StoreClient
from consensus.messages import Role
from consensus.peer import (
    ChangeMembership,
    MembershipChanged,
    PeerStatus,
    Redirect,
    StatusRequest,
    TransferLeadership,
    TransferStarted,
)
from consensus.storeapi import Create, WriteResult
from runtime.errors import RemoteError
from sim.raftcluster import ClusterContext, add_member, run_cluster


def test_three_peers_elect_one_leader_and_replicate() -> None:
    seen: dict[str, object] = {}

    async def script(ctx: ClusterContext) -> None:
        result = await ctx.client.create("svc", "web", b"spec-1")
        assert result.status == "ok"
        for number in range(20):
            await ctx.client.update("svc", "web", f"spec-{number}".encode())
        leader = ctx.leader()
        await ctx.wait_for(
            lambda: all(
                (peer := ctx.peer(node)) is not None and peer.applied == ctx.peer(leader).applied  # type: ignore[union-attr]
                for node in ctx.nodes
            )
        )
        seen["leaders"] = [node for node in ctx.nodes if ctx.peer(node).is_leader]  # type: ignore[union-attr]
        seen["data"] = {node: ctx.peer(node).get_local("svc", "web").data for node in ctx.nodes}  # type: ignore[union-attr]
        seen["digests"] = {ctx.peer(node).state.digest() for node in ctx.nodes}  # type: ignore[union-attr]

    run_cluster(script, seed=3)
    assert len(seen["leaders"]) == 1  # type: ignore[arg-type]
    assert set(seen["data"].values()) == {b"spec-19"}  # type: ignore[attr-defined]
    assert len(seen["digests"]) == 1  # type: ignore[arg-type]


def test_a_follower_redirects_writes_to_the_leader() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("svc", "a", b"1")
        leader = ctx.leader()
        follower = next(node for node in ctx.nodes if node != leader)
        reply = await ctx.ref(follower).ask(Create("raw", 1, "svc", "b", b"x"), timeout=2)
        assert reply == Redirect(leader)
        status = await ctx.ref(follower).ask(StatusRequest(), timeout=2)
        assert isinstance(status, PeerStatus) and status.role == "follower" and status.leader == leader

    run_cluster(script, seed=4)


def test_a_crashed_peer_restarts_from_its_disk_and_catches_up() -> None:
    async def script(ctx: ClusterContext) -> None:
        for number in range(10):
            await ctx.client.create("svc", f"s{number}", b"x")
        victim = next(node for node in ctx.nodes if node != ctx.leader())
        applied_before = ctx.peer(victim).applied  # type: ignore[union-attr]
        ctx.world.crash(victim)
        for number in range(10, 20):
            await ctx.client.create("svc", f"s{number}", b"x")
        ctx.world.restart(victim)
        await ctx.wait_for(lambda: ctx.peer(victim) is not None and ctx.peer(victim).raft is not None)  # type: ignore[union-attr]
        restarted = ctx.peer(victim)
        assert restarted is not None
        # Replayed from its own WAL: everything it had applied before the crash is back.
        await ctx.wait_for(lambda: restarted.applied >= applied_before)
        leader = ctx.peer(ctx.leader())
        await ctx.wait_for(lambda: restarted.applied == leader.applied)  # type: ignore[union-attr]
        assert len(restarted.state.list("svc")) == 20

    run_cluster(script, seed=5)


def test_a_lagging_follower_receives_a_snapshot() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"0")
        victim = next(node for node in ctx.nodes if node != ctx.leader())
        ctx.world.crash(victim)
        for number in range(60):
            await ctx.client.update("kv", "k", str(number).encode())
        leader = ctx.peer(ctx.leader())
        assert leader is not None and leader.snapshot_index > 0
        assert leader.raft is not None and leader.raft.first_index > 20
        ctx.world.restart(victim)
        await ctx.wait_for(
            lambda: (peer := ctx.peer(victim)) is not None and peer.applied == leader.applied
        )
        restarted = ctx.peer(victim)
        assert restarted is not None and restarted.snapshot_index > 0
        assert restarted.get_local("kv", "k").data == b"59"  # type: ignore[union-attr]
        assert restarted.state.digest() == leader.state.digest()

    run_cluster(script, seed=6, snapshot_entries=16, retain_entries=4)


def test_membership_add_learner_promote_and_remove() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"0")
        leader = ctx.leader()
        add_member(ctx.world, "n4")
        ctx.nodes.append("n4")
        added = await ctx.ref(leader).ask(ChangeMembership("add_learner", "n4"), timeout=5)
        assert isinstance(added, MembershipChanged) and "n4" in added.learners
        await ctx.wait_for(lambda: (peer := ctx.peer("n4")) is not None and peer.applied >= added.index)
        promoted = await ctx.ref(leader).ask(ChangeMembership("promote", "n4"), timeout=5)
        assert isinstance(promoted, MembershipChanged) and "n4" in promoted.voters
        victim = next(node for node in ctx.nodes if node not in (leader, "n4"))
        removed = await ctx.ref(leader).ask(ChangeMembership("remove", victim), timeout=5)
        assert isinstance(removed, MembershipChanged) and victim not in removed.voters
        assert sorted(removed.voters) == sorted(n for n in ctx.nodes if n != victim)
        try:
            await ctx.ref(leader).ask(ChangeMembership("remove", victim), timeout=5)
        except RemoteError as error:
            assert error.kind == "refused" and "not a member" in str(error)
        else:
            raise AssertionError("removing a non-member was accepted")
        try:
            await ctx.ref(leader).ask(ChangeMembership("demote", "n4"), timeout=5)
        except RemoteError as error:
            assert error.kind == "invalid" and "unknown membership change" in str(error)
        else:
            raise AssertionError("an unknown change kind was accepted")
        ctx.world.crash(victim)
        ctx.nodes.remove(victim)
        result = await ctx.client.create("kv", "after", b"1")
        assert result.status == "ok"
        await ctx.wait_for(lambda: ctx.peer("n4").get_local("kv", "after") is not None)  # type: ignore[union-attr]

    run_cluster(script, seed=7)


def test_leadership_transfer_hands_over_within_an_election_timeout() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"0")
        leader = ctx.leader()
        target = next(node for node in ctx.nodes if node != leader)
        reply = await ctx.ref(leader).ask(TransferLeadership(target), timeout=2)
        assert isinstance(reply, TransferStarted) and reply.to == target
        await ctx.wait_for(lambda: ctx.leader() == target, timeout_seconds=1.0, step_seconds=0.01)
        assert ctx.peer(leader).raft.role is Role.FOLLOWER  # type: ignore[union-attr]
        result = await ctx.client.update("kv", "k", b"1")
        assert result.status == "ok"
        assert ctx.client.leader == target
        redirect = await ctx.ref(leader).ask(TransferLeadership(leader), timeout=2)
        assert redirect == Redirect(target)

    run_cluster(script, seed=8)


def test_a_retried_write_is_applied_once() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"0")
        leader = ctx.ref(ctx.leader())
        first = await leader.ask(Create("retrier", 1, "kv", "n", b"x"), timeout=2)
        again = await leader.ask(Create("retrier", 1, "kv", "n", b"x"), timeout=2)
        assert isinstance(first, WriteResult) and first.status == "ok"
        assert again == first  # the recorded answer, not "exists"
        peer = ctx.peer(ctx.leader())
        assert peer is not None and peer.state.session("retrier")[0] == 1  # type: ignore[index]
        # A second client, same object: a genuinely new request does see "exists".
        other = StoreClient(ctx.node, "other", ctx.nodes)
        assert (await other.create("kv", "n", b"y")).status == "exists"

    run_cluster(script, seed=9)
