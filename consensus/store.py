"""The replicated store: the `raft` actor of a manager node, a Raft peer whose state
machine is `StoreState` (versioned objects + client sessions), serving storeapi requests.

- Writes go to the leader. A follower answers `Redirect(leader)` and does nothing else
  (the client then asks the leader itself: one hop, and the client knows where to go
  next time). The leader answers a write whose (client, seq) it has applied already
  with the recorded result at once; otherwise it proposes it and answers once the entry
  is applied: the state machine's `WriteResult`, or `Retry` when the entry was lost to a
  leader change (`maybe_applied` False) or its fate is unknown (True).
- Reads (`Get`, `List`) are linearizable on any node: ReadIndex through the leader, then
  the local state once it has applied the confirmed index. A node that cannot get a read
  index (no leader, leadership changed, timeout) answers `Redirect` with its best guess.
- Watches stream `WatchEvents` to an inbox for every matching change applied from
  `from_index` on. The last `changes_max` changes are kept for replay; older ones are
  compacted (a watch from before them is refused with `compacted`). A watch whose inbox
  is gone is dropped; watches are per node and do not survive the node.
- Bad requests get `ReplyError(kind="invalid")` naming what is wrong, and change nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from consensus.errors import NotLeader, ProposalDropped
from consensus.messages import Role
from consensus.peer import LOST, UNKNOWN, PeerObserver, PeerSettings, RaftPeer, Redirect, Retry
from consensus.storeapi import (
    BATCH_WRITES_MAX,
    Change,
    Create,
    Delete,
    Get,
    List,
    ListResult,
    ReadResult,
    StoredObject,
    Unwatch,
    Update,
    Watch,
    WatchCancelled,
    WatchEvents,
    WatchStarted,
    Write,
    WriteBatch,
    WriteBatchResult,
    WriteResult,
    check_key,
    check_write,
)
from consensus.storestate import StoreState, encode_write
from runtime.actor import Ref
from runtime.errors import ActorBusy, NoSuchActor, ReplyError

CHANGES_MAX = 10_000
WATCHES_MAX = 10_000

Executed = Callable[[str, str, int, int], None]
"""(node, client, seq, index): a write was executed (not a duplicate) at index."""


class Store(RaftPeer):
    mailbox_capacity: ClassVar[int] = 1 << 16

    def __init__(
        self,
        settings: PeerSettings,
        observer: PeerObserver | None = None,
        *,
        sessions_max: int = 100_000,
        changes_max: int = CHANGES_MAX,
        on_executed: Executed | None = None,
    ) -> None:
        super().__init__(settings, observer)
        self.state = StoreState(sessions_max)
        self.state.record_executed = on_executed is not None
        self.on_executed = on_executed
        self.changes: deque[Change] = deque(maxlen=changes_max)
        self.changes_floor = 1
        """The smallest `from_index` a watch can start from (earlier changes are gone)."""
        self._new_changes: list[Change] = []
        self.watches: dict[int, tuple[str, Ref]] = {}
        self._watch_counter = 0

    # --- state machine hooks -----------------------------------------------------------------

    def apply_entry(self, index: int, data: bytes) -> Any:
        result, change = self.state.apply(index, data)
        if change is not None:
            changes = self.changes
            if len(changes) == changes.maxlen:
                self.changes_floor = changes[0].index + 1
            changes.append(change)
            if self.watches:
                self._new_changes.append(change)
        if self.on_executed is not None and self.state.executed:
            node = self.settings.node_id
            for client, seq, executed_index in self.state.take_executed():
                self.on_executed(node, client, seq, executed_index)
        return result

    def snapshot_data(self) -> bytes:
        return self.state.snapshot()

    def restore_data(self, index: int, data: bytes) -> None:
        self.state.restore(data)
        self.changes.clear()
        self._new_changes = []
        self.changes_floor = index + 1
        for watch_id, (_, inbox) in list(self.watches.items()):
            self._cancel_watch(watch_id, inbox, f"a snapshot at {index} replaced the state: watch again")

    def state_digest(self) -> bytes:
        return self.state.chain

    def after_apply(self) -> None:
        if not self._new_changes:
            return
        changes = self._new_changes
        self._new_changes = []
        for watch_id, (kind, inbox) in list(self.watches.items()):
            matching = [c for c in changes if not kind or c.object.kind == kind]
            if matching:
                self._deliver(watch_id, inbox, matching)

    # --- requests ---------------------------------------------------------------------------------

    async def receive_request(self, message: Any) -> Any:
        match message:
            case Create() | Update() | Delete():
                problem = check_write(message)
                if problem:
                    raise ReplyError(problem, kind="invalid")
                reply = self.defer_reply()
                self._write(message, reply.send)
                return None
            case WriteBatch(writes=writes):
                return self._write_batch(writes)
            case Get(kind=kind, id=object_id):
                self._check_key(kind, object_id)
                reply = self.defer_reply()

                def serve_get(ok: bool) -> None:
                    if ok:
                        reply.send(ReadResult(self.state.get(kind, object_id), self.applied))
                    else:
                        reply.send(self._read_redirect())

                self.request_read(serve_get)
                return None
            case List(kind=kind):
                self._check_key(kind, "-")
                reply = self.defer_reply()

                def serve_list(ok: bool) -> None:
                    if ok:
                        reply.send(ListResult(self.state.list(kind), self.applied))
                    else:
                        reply.send(self._read_redirect())

                self.request_read(serve_list)
                return None
            case Watch(kind=kind, from_index=from_index, inbox=inbox):
                return self._watch(kind, from_index, inbox)
            case Unwatch(watch_id=watch_id):
                found = self.watches.pop(watch_id, None)
                if found is None:
                    raise ReplyError(f"no watch {watch_id} on {self.settings.node_id}", kind="not_found")
                return WatchCancelled(watch_id, "unwatched")
        return await super().receive_request(message)

    @staticmethod
    def _check_key(kind: str, object_id: str) -> None:
        problem = check_key(kind, object_id)
        if problem:
            raise ReplyError(problem, kind="invalid")

    def _read_redirect(self) -> Redirect:
        raft = self.raft
        return Redirect(raft.leader if raft is not None else "")

    def _write(self, write: Write, done: Callable[[Any], None]) -> None:
        proposal = self._prepare(write, done)
        if proposal is None:
            return
        try:
            self.propose(proposal[0], proposal[1])
        except NotLeader as error:
            done(Redirect(error.leader))
        except ProposalDropped as error:
            done(Retry(str(error), maybe_applied=False))

    def _prepare(self, write: Write, done: Callable[[Any], None]) -> tuple[bytes, Callable[[Any], None]] | None:
        """The entry to propose for `write` and the callback for its outcome; or None when
        `write` is answered already (not the leader: `Redirect`; a duplicate: its result)."""
        raft = self.raft
        assert raft is not None
        if raft.role is not Role.LEADER:
            done(Redirect(raft.leader))
            return None
        cached = self.state.cached_result(write.client, write.seq)
        if cached is not None:
            done(cached)
            return None

        def proposed(outcome: Any) -> None:
            if outcome is LOST:
                done(Retry("the write was lost to a leader change", maybe_applied=False))
            elif outcome is UNKNOWN:
                done(Retry("a snapshot replaced the log: the write's fate is unknown", maybe_applied=True))
            else:
                done(outcome)

        return encode_write(write), proposed

    def _write_batch(self, writes: list[Write]) -> None:
        if not writes or len(writes) > BATCH_WRITES_MAX:
            raise ReplyError(f"a batch holds 1..{BATCH_WRITES_MAX} writes, got {len(writes)}", kind="invalid")
        for position, write in enumerate(writes):
            problem = check_write(write)
            if problem:
                raise ReplyError(f"write {position}: {problem}", kind="invalid")
        reply = self.defer_reply()
        results: list[Any] = [None] * len(writes)
        remaining = [len(writes)]

        def collector(position: int) -> Callable[[Any], None]:
            def done(result: Any) -> None:
                results[position] = result
                remaining[0] -= 1
                if remaining[0] == 0:
                    reply.send(WriteBatchResult(results))

            return done

        # All the batch's new writes go into the log at once: one append, one broadcast.
        items: list[bytes] = []
        dones: list[Callable[[Any], None]] = []
        for position, write in enumerate(writes):
            proposal = self._prepare(write, collector(position))
            if proposal is not None:
                items.append(proposal[0])
                dones.append(proposal[1])
        if not items:
            return
        try:
            self.propose_many(items, dones)
        except NotLeader as error:
            for done in dones:
                done(Redirect(error.leader))
        except ProposalDropped as error:
            for done in dones:
                done(Retry(str(error), maybe_applied=False))

    # --- watches ------------------------------------------------------------------------------------

    def _watch(self, kind: str, from_index: int, inbox: Ref) -> WatchStarted:
        if kind:
            self._check_key(kind, "-")
        if from_index < 0:
            raise ReplyError(f"from_index must be >= 0, got {from_index}", kind="invalid")
        if from_index and from_index < self.changes_floor:
            raise ReplyError(
                f"changes before index {self.changes_floor} are compacted on {self.settings.node_id}",
                kind="compacted",
            )
        if len(self.watches) >= WATCHES_MAX:
            raise ReplyError(f"{WATCHES_MAX} watches already", kind="busy")
        self._watch_counter += 1
        watch_id = self._watch_counter
        if from_index:
            replay = [
                c for c in self.changes if c.index >= from_index and (not kind or c.object.kind == kind)
            ]
            if replay and not self._deliver(watch_id, inbox, replay, register=False):
                raise ReplyError(f"cannot reach the inbox {inbox}", kind="unavailable")
        self.watches[watch_id] = (kind, inbox)
        return WatchStarted(watch_id, self.applied)

    def _deliver(self, watch_id: int, inbox: Ref, changes: list[Change], register: bool = True) -> bool:
        try:
            inbox.tell_nowait(WatchEvents(watch_id, changes))
        except (ActorBusy, NoSuchActor):
            if register:
                self.watches.pop(watch_id, None)
            return False
        return True

    def _cancel_watch(self, watch_id: int, inbox: Ref, reason: str) -> None:
        self.watches.pop(watch_id, None)
        try:
            inbox.tell_nowait(WatchCancelled(watch_id, reason))
        except (ActorBusy, NoSuchActor):
            pass

    # --- looking at it ------------------------------------------------------------------------------

    def get_local(self, kind: str, object_id: str) -> StoredObject | None:
        """The local replica's object, without a read index (may be stale: tests, tools)."""
        return self.state.get(kind, object_id)

    def result_for(self, client: str, seq: int) -> WriteResult | None:
        return self.state.cached_result(client, seq)
