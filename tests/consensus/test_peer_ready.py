"""One peer on a host we control: the Ready order, group commit, restart, damaged logs.

The host's transport records every frame the peer sends, and its disk (the WAL tests'
crash disk) records every fsync in the same event list; at each send the test keeps a copy
of what was durable at that moment, and replays the WAL from that copy. So "the vote was
on disk before the answer left" is checked on the disk image itself, not on the code.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

from consensus.durable import DurableState
from consensus.messages import AppendEntries, Entry, EntryKind, Message, VoteRequest, VoteResponse
from consensus.peer import PEER_NAME, PeerSettings, PeerStatus, RaftBatch, StatusRequest
from consensus.store import Store
from consensus.storeapi import Create, Get, ReadResult, WriteResult
from consensus.wire import decode_batch, encode_batch
from runtime.codec import from_wire, pack, to_wire, unpack
from runtime.errors import RemoteError
from runtime.host import Host
from runtime.node import Node
from runtime.transport import TransportStatistics
from tests.consensus.memdisk import CrashDisk
from tests.consensus.memdisk import run as run_now


class RecordingDisk(CrashDisk):
    def __init__(self, events: list[Any], fsync_seconds: float = 0.0) -> None:
        super().__init__()
        self.events = events
        self.fsync_seconds = fsync_seconds

    async def fsync(self, path: str) -> None:
        if self.fsync_seconds:
            await trio.sleep(self.fsync_seconds)
        await super().fsync(path)
        self.events.append(("fsync", path))

    def durable_copy(self) -> CrashDisk:
        copy = CrashDisk()
        for path, handle in self.files.items():
            if handle.durable is not None:
                run_now(copy.replace(path, handle.durable))
        return copy


class RecordingTransport:
    def __init__(self, node_id: str, events: list[Any], disk: RecordingDisk) -> None:
        self.node_id = node_id
        self.events = events
        self.disk = disk
        self.statistics = TransportStatistics()
        self.deliver: Any = None

    async def run(self, deliver: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.deliver = deliver
        task_status.started()
        await trio.sleep_forever()

    def send_nowait(self, to_node: str, frame: bytes) -> None:
        data = unpack(frame)
        if data[0] == 0:
            message = from_wire(data[2])
            if isinstance(message, RaftBatch):
                for raft_message in decode_batch(message.data):
                    self.events.append(("send", raft_message, self.disk.durable_copy()))
                return
        self.events.append(("frame", to_node, data))

    def inject(self, message: Message) -> None:
        """A Raft message from another node arrives."""
        batch = RaftBatch(encode_batch([message]))
        self.deliver(message.sender, pack([0, PEER_NAME, to_wire(batch), message.sender, PEER_NAME]))


def make_node(events: list[Any], disk: RecordingDisk | None = None) -> tuple[Node, RecordingTransport, RecordingDisk]:
    disk = disk if disk is not None else RecordingDisk(events)
    transport = RecordingTransport("n1", events, disk)
    host = Host(node_id="n1", transport=transport, disk=disk, random=random.Random(1), seed=1)  # type: ignore[arg-type]
    return Node(host), transport, disk


def recovered_vote(disk: CrashDisk) -> tuple[int, str]:
    state = run_now(DurableState.open(disk))
    return state.recovered.hard_state.term, state.recovered.hard_state.vote


SETTINGS = PeerSettings("n1", ("n1", "n2", "n3"), tick_seconds=0.1, election_tick=10)


async def test_the_vote_is_durable_before_the_answer_leaves(autojump_clock: trio.abc.Clock) -> None:
    events: list[Any] = []
    node, transport, _ = make_node(events)
    async with node.running():
        await node.spawn(lambda: Store(SETTINGS), PEER_NAME)
        await trio.testing.wait_all_tasks_blocked()
        transport.inject(VoteRequest(1, "n2", "n1", 0, 0))
        await trio.testing.wait_all_tasks_blocked()
        answers = [event for event in events if event[0] == "send" and isinstance(event[1], VoteResponse)]
        assert answers, events
        _, answer, durable_then = answers[0]
        assert answer.granted and answer.term == 1
        assert events.index(answers[0]) > next(i for i, e in enumerate(events) if e[0] == "fsync")
        assert recovered_vote(durable_then) == (1, "n2")
        node.stop_actor(PEER_NAME)


async def test_appended_entries_are_durable_before_they_are_acknowledged(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[Any] = []
    node, transport, _ = make_node(events)
    entries = [Entry(1, 1, EntryKind.NOOP, b""), Entry(1, 2, EntryKind.NORMAL, b"payload")]
    async with node.running():
        await node.spawn(lambda: Store(SETTINGS), PEER_NAME)
        await trio.testing.wait_all_tasks_blocked()
        transport.inject(AppendEntries(1, "n2", "n1", 0, 0, entries, 0))
        await trio.testing.wait_all_tasks_blocked()
        acks = [e for e in events if e[0] == "send" and type(e[1]).__name__ == "AppendResponse"]
        assert acks and acks[0][1].index == 2 and not acks[0][1].reject
        durable = run_now(DurableState.open(acks[0][2])).recovered
        assert [entry.index for entry in durable.entries] == [1, 2]
        assert durable.entries[1].data == b"payload"
        node.stop_actor(PEER_NAME)


async def test_proposals_arriving_during_an_fsync_share_the_next_one(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[Any] = []
    disk = RecordingDisk(events, fsync_seconds=0.01)
    node, _, _ = make_node(events, disk)
    solo = PeerSettings("n1", ("n1",), tick_seconds=0.1, election_tick=10)
    results: list[WriteResult] = []
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        await trio.sleep(3)  # elected: a single voter wins its own election
        before = sum(1 for e in events if e[0] == "fsync")

        async def write(number: int) -> None:
            results.append(await ref.ask(Create(f"c{number}", 1, "kv", f"k{number}", b"v"), timeout=5))

        async with trio.open_nursery() as nursery:
            for number in range(200):
                nursery.start_soon(write, number)
        fsyncs = sum(1 for e in events if e[0] == "fsync") - before
        node.stop_actor(PEER_NAME)
    assert len(results) == 200 and {r.status for r in results} == {"ok"}
    # 200 writes, each durable before its answer, in a handful of fsyncs (group commit).
    assert 1 <= fsyncs <= 6, fsyncs


async def test_a_restarted_peer_recovers_its_state_from_the_disk(autojump_clock: trio.abc.Clock) -> None:
    events: list[Any] = []
    disk = RecordingDisk(events)
    solo = PeerSettings("n1", ("n1",), tick_seconds=0.1, election_tick=10, snapshot_entries=25, retain_entries=3)
    node, _, _ = make_node(events, disk)
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        await trio.sleep(3)
        for number in range(60):
            reply = await ref.ask(Create("writer", number + 1, "kv", f"k{number}", b"v"), timeout=5)
            assert reply.status == "ok"
        node.stop_actor(PEER_NAME)
    disk.crash(random.Random(4))
    assert any(path.startswith("raft/snap/") for path in disk.files)
    node, _, _ = make_node(events, disk)
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        status = await ref.ask(StatusRequest(), timeout=5)
        assert isinstance(status, PeerStatus) and status.snapshot_index >= 25
        await trio.sleep(3)
        found = await ref.ask(Get("kv", "k59"), timeout=5)
        assert isinstance(found, ReadResult) and found.object is not None
        peer = node.actor(PEER_NAME)
        assert isinstance(peer, Store) and peer.state.count() == 60
        # The writer's session survived too: its last request is answered, not redone.
        again = await ref.ask(Create("writer", 60, "kv", "k59", b"v"), timeout=5)
        assert again.status == "ok" and again.version == found.object.version
        node.stop_actor(PEER_NAME)


@pytest.mark.parametrize("where", ["middle", "snapshot"])
async def test_a_damaged_log_makes_the_peer_refuse_to_serve(
    autojump_clock: trio.abc.Clock, where: str
) -> None:
    events: list[Any] = []
    disk = RecordingDisk(events)
    solo = PeerSettings("n1", ("n1",), tick_seconds=0.1, election_tick=10, snapshot_entries=10, retain_entries=0)
    node, _, _ = make_node(events, disk)
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        await trio.sleep(3)
        for number in range(15):
            await ref.ask(Create("writer", number + 1, "kv", f"k{number}", b"v" * 50), timeout=5)
        node.stop_actor(PEER_NAME)
    if where == "middle":
        path = max(p for p in disk.files if p.startswith("raft/wal/"))
        disk.flip_bit(path, 8 * 40)  # inside an early record, with valid records after it
    else:
        path = next(p for p in disk.files if p.startswith("raft/snap/"))
        disk.flip_bit(path, 8 * 30)
    node, _, _ = make_node(events, disk)
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        status = await ref.ask(StatusRequest(), timeout=5)
        assert status.role == "refused" and ("Corruption" in status.refused)
        with pytest.raises(RemoteError, match="refuses to serve") as raised:
            await ref.ask(Get("kv", "k0"), timeout=5)
        assert raised.value.kind == "unavailable"
        node.stop_actor(PEER_NAME)
    assert disk.files[path].durable is not None  # nothing was "repaired" on disk


async def test_a_torn_tail_is_cut_and_the_peer_starts(autojump_clock: trio.abc.Clock) -> None:
    events: list[Any] = []
    disk = RecordingDisk(events)
    solo = PeerSettings("n1", ("n1",), tick_seconds=0.1, election_tick=10)
    node, _, _ = make_node(events, disk)
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        await trio.sleep(3)
        await ref.ask(Create("writer", 1, "kv", "k", b"v"), timeout=5)
        node.stop_actor(PEER_NAME)
    path = max(p for p in disk.files if p.startswith("raft/wal/"))
    await disk.append(path, b"\x20\x00\x00\x00garbage")  # a torn, never-synced write
    node, _, _ = make_node(events, disk)
    async with node.running():
        await node.spawn(lambda: Store(solo), PEER_NAME)
        ref = node.ref(PEER_NAME)
        await trio.sleep(3)
        found = await ref.ask(Get("kv", "k"), timeout=5)
        assert found.object is not None and found.object.data == b"v"
        node.stop_actor(PEER_NAME)


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="durability"):
        PeerSettings("n1", durability="sometimes")
    with pytest.raises(ValueError, match="tick_seconds"):
        PeerSettings("n1", tick_seconds=0)
    with pytest.raises(ValueError, match="listed twice"):
        PeerSettings("n1", voters=("n1", "n1"))
    assert PeerSettings("n1", tick_seconds=0.1, election_tick=10).election_timeout_max_seconds == pytest.approx(2.0)
