"""The store's API through a client, on a simulated three-node cluster."""

from __future__ import annotations

import pytest

from consensus.client import StoreClient, StoreRequestError, StoreUnavailable
from consensus.peer import Redirect
from consensus.storeapi import (
    Create,
    Delete,
    Get,
    List,
    ReadResult,
    Update,
    Watch,
    WatchStarted,
    WriteBatch,
    WriteBatchResult,
    WriteResult,
)
from runtime.errors import RemoteError
from sim.raftcluster import ClusterContext, run_cluster


def test_versions_and_compare_and_set() -> None:
    async def script(ctx: ClusterContext) -> None:
        client = ctx.client
        created = await client.create("svc", "web", b"v1")
        assert created.status == "ok" and created.version == created.index
        assert (await client.create("svc", "web", b"again")) == WriteResult(
            "exists", created.version, created.index + 1
        )
        updated = await client.update("svc", "web", b"v2", expected_version=created.version)
        assert updated.status == "ok" and updated.version > created.version
        conflict = await client.update("svc", "web", b"v3", expected_version=created.version)
        assert conflict.status == "conflict" and conflict.version == updated.version
        found = await client.get("svc", "web")
        assert found is not None and (found.data, found.version, found.created) == (
            b"v2",
            updated.version,
            created.version,
        )
        assert (await client.delete("svc", "web", expected_version=created.version)).status == "conflict"
        deleted = await client.delete("svc", "web", expected_version=updated.version)
        assert deleted == WriteResult("ok", updated.version, deleted.index)
        assert await client.get("svc", "web") is None
        assert (await client.update("svc", "web", b"x")).status == "not_found"
        assert (await client.delete("svc", "web")).status == "not_found"
        recreated = await client.create("svc", "web", b"v4")
        assert recreated.version > deleted.index  # versions never go back

    run_cluster(script, seed=11)


def test_list_is_sorted_by_id_and_kinds_are_separate() -> None:
    async def script(ctx: ClusterContext) -> None:
        for object_id in ("c", "a", "b"):
            await ctx.client.create("task", object_id, object_id.encode())
        await ctx.client.create("node", "a", b"node")
        listed = await ctx.client.list("task")
        assert [(o.id, o.data) for o in listed] == [("a", b"a"), ("b", b"b"), ("c", b"c")]
        assert [o.kind for o in await ctx.client.list("node")] == ["node"]
        assert await ctx.client.list("secret") == []

    run_cluster(script, seed=12)


def test_reads_are_served_by_followers_through_the_leader() -> None:
    async def script(ctx: ClusterContext) -> None:
        written = await ctx.client.create("kv", "k", b"fresh")
        leader = ctx.leader()
        follower = next(node for node in ctx.nodes if node != leader)
        reply = await ctx.ref(follower).ask(Get("kv", "k"), timeout=2)
        assert isinstance(reply, ReadResult) and reply.object is not None
        assert reply.object.data == b"fresh" and reply.index >= written.index
        listed = await ctx.ref(follower).ask(List("kv"), timeout=2)
        assert [o.id for o in listed.objects] == ["k"]

    run_cluster(script, seed=13)


def test_bad_requests_are_refused_and_change_nothing() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"v")
        leader = ctx.ref(ctx.leader())
        peer = ctx.peer(ctx.leader())
        assert peer is not None
        before = peer.state.digest()
        bad = [
            Create("", 1, "kv", "x", b""),
            Create("c", 0, "kv", "x", b""),
            Create("c", 1, "", "x", b""),
            Create("c", 1, "kv", "x" * 300, b""),
            Update("c", 1, "kv", "k", b"", expected_version=-1),
            Delete("c", 1, "kv", "", 0),
        ]
        for request in bad:
            with pytest.raises(RemoteError) as raised:
                await leader.ask(request, timeout=2)
            assert raised.value.kind == "invalid"
        with pytest.raises(RemoteError, match="write 1: seq must be >= 1"):
            await leader.ask(WriteBatch([Create("c", 1, "kv", "x", b""), Create("c", 0, "kv", "y", b"")]), timeout=2)
        with pytest.raises(RemoteError, match="not a request a Raft peer handles"):
            await leader.ask(Redirect("n1"), timeout=2)
        with pytest.raises(StoreRequestError, match="kind must be"):
            await ctx.client.get("", "k")
        assert peer.state.digest() == before

    run_cluster(script, seed=14)


def test_a_batch_of_writes_is_answered_at_once() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "seed", b"")
        leader = ctx.leader()
        writes = [Create(f"w{number}", 1, "kv", f"k{number}", b"v") for number in range(50)]
        writes.append(Create("w0", 1, "kv", "k0", b"v"))  # the same request twice in one batch
        reply = await ctx.ref(leader).ask(WriteBatch(writes), timeout=5)
        assert isinstance(reply, WriteBatchResult) and len(reply.results) == 51
        assert all(isinstance(r, WriteResult) and r.status == "ok" for r in reply.results)
        assert reply.results[0] == reply.results[50]
        follower = next(node for node in ctx.nodes if node != leader)
        redirected = await ctx.ref(follower).ask(WriteBatch(writes[:2]), timeout=5)
        assert redirected == WriteBatchResult([Redirect(leader), Redirect(leader)])

    run_cluster(script, seed=15)


def test_watches_stream_changes_from_an_index() -> None:
    async def script(ctx: ClusterContext) -> None:
        first = await ctx.client.create("svc", "a", b"1")
        await ctx.client.create("task", "t", b"-")
        await ctx.client.update("svc", "a", b"2")
        seen: list[tuple[str, str, bytes]] = []
        async with ctx.client.watch("svc", from_index=first.index) as stream:
            await ctx.client.delete("svc", "a")
            await ctx.client.create("svc", "b", b"3")
            async for changes in stream:
                seen.extend((c.op, c.object.id, c.object.data) for c in changes)
                if len(seen) >= 4:
                    break
        assert seen == [("create", "a", b"1"), ("update", "a", b"2"), ("delete", "a", b"2"), ("create", "b", b"3")]

    run_cluster(script, seed=16)


def test_a_watch_from_compacted_history_is_refused() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"0")
        for number in range(1, 40):
            await ctx.client.update("kv", "k", str(number).encode())
        peer = ctx.peer(ctx.leader())
        assert peer is not None and peer.changes_floor > 1
        async with ctx.node.open_inbox() as inbox:
            with pytest.raises(RemoteError, match="compacted") as raised:
                await ctx.ref(ctx.leader()).ask(Watch("kv", 1, inbox.ref), timeout=2)
            assert raised.value.kind == "compacted"
            started = await ctx.ref(ctx.leader()).ask(Watch("kv", 0, inbox.ref), timeout=2)
            assert isinstance(started, WatchStarted)
        with pytest.raises(StoreUnavailable, match="compacted"):
            async with ctx.client.watch("kv", from_index=1):
                pass

    run_cluster(script, seed=17, store_options={"changes_max": 8})


def test_a_client_gives_up_when_no_leader_can_be_reached() -> None:
    async def script(ctx: ClusterContext) -> None:
        await ctx.client.create("kv", "k", b"v")
        for node in ctx.nodes:
            ctx.world.crash(node)
        impatient = StoreClient(ctx.node, "impatient", ctx.nodes, ask_timeout_seconds=0.2, give_up_seconds=2.0)
        with pytest.raises(StoreUnavailable) as raised:
            await impatient.update("kv", "k", b"w")
        assert type(raised.value).__name__ == "OutcomeUnknown"
        with pytest.raises(StoreUnavailable):
            await impatient.get("kv", "k")

    run_cluster(script, seed=18)
