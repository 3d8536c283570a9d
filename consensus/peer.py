"""The Raft peer actor: drives the sans-IO core with the host's clock, transport and disk.

One peer per node, registered as `raft`; peers address each other as `Ref(node, "raft")`.
The actor is thin: its `receive` steps what arrives into the core (no awaits), and a
background task handles the core's `Ready` batches. The rules it keeps:

- **Ready order** (docs/raft.md §1): persist the snapshot, entries and hard state and
  fsync them, *then* send the batch's messages, *then* apply its committed entries and
  serve its reads, then `advance`. Nothing leaves the node before it is durable, so no
  vote or acknowledgement is ever given for state a crash could lose.
- **Group commit**: while one Ready is being persisted (the fsync is the slow part), the
  actor keeps receiving: messages, proposals and reads are stepped into the core and all
  land in the *next* Ready — one WAL write and one fsync for the whole batch.
- **Time** is the host's: a ticker task sleeps `tick_seconds` on `host.clock` and ticks the
  core (heartbeat and election timeouts are counted in ticks).
- **Restart**: the WAL and the snapshot on `host.disk` are replayed (`DurableState.open`:
  a torn tail is cut). A WAL or snapshot that is damaged beyond a torn tail makes the peer
  *refuse*: it answers every request with an `unavailable` error and takes no part in
  Raft, so it never serves or acknowledges corrupt data. An operator replaces the node.
- **Snapshots**: every `snapshot_entries` applied entries the state machine is
  serialized, the core compacts its log (keeping `retain_entries` for slow followers) and
  the snapshot is saved; followers that fell behind receive it from the leader.
- **Proposals** are answered once their index is applied: with the state machine's result
  when the entry there carries the proposal's term, otherwise as lost. A leader that is
  deposed keeps its pending proposals: they are still answered exactly when their index
  is applied (or as unknown if a snapshot jumps past them).
- **Reads** (ReadIndex): the reads that arrive while a Ready is processed share one read
  index request; each is served once the state machine has applied the confirmed index.
  Reads waiting for a read index are failed (retry) when the role changes or after
  `read_timeout_seconds` (a forwarded request may have been lost).

`consensus/` is sans-IO: this module imports no trio, time or os. It reaches the world only
through `self.host` (clock, disk, random), `self.nursery` (background tasks) and refs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import attrs

from consensus.durable import DurableState
from consensus.errors import ConfChangeRefused, NotLeader, ProposalDropped
from consensus.messages import (
    ConfChange,
    ConfChangeKind,
    Configuration,
    Entry,
    EntryKind,
    Message,
    PersistedState,
    Ready,
    Role,
    Snapshot,
    SoftState,
)
from consensus.raft import Raft, RaftConfig
from consensus.snapshot import SnapshotCorruption
from consensus.wal import SEGMENT_BYTES_MAX, WalCorruption
from consensus.wire import decode_batch, encode_batch
from runtime.actor import Actor
from runtime.codec import DecodeError, message
from runtime.errors import ActorBusy, NoSuchActor, ReplyError
from runtime.mailbox import Mailbox

log = logging.getLogger("flotta.consensus.peer")

PEER_NAME = "raft"
DURABILITIES = ("fsync", "nofsync", "memory")


# --- settings -------------------------------------------------------------------------------


@attrs.frozen
class PeerSettings:
    """How a peer runs. Times are seconds of the host's clock; Raft timeouts are ticks."""

    node_id: str
    voters: tuple[str, ...] = ()
    """The founding voters; empty for a node that joins an existing cluster (as a learner)."""
    tick_seconds: float = 0.1
    election_tick: int = 10
    heartbeat_tick: int = 1
    durability: str = "fsync"
    """fsync: WAL written and fsynced per Ready; nofsync: written, never fsynced (a crash
    may lose acknowledged state: benchmarks only); memory: nothing written."""
    directory: str = "raft"
    segment_bytes_max: int = SEGMENT_BYTES_MAX
    snapshot_entries: int = 10_000
    """Snapshot after this many entries have been applied since the last snapshot."""
    retain_entries: int = 500
    """Entries kept in memory after a snapshot, for followers a little behind."""
    read_timeout_seconds: float = 5.0
    """A read still waiting for its read index after this long is failed (retry)."""
    pending_proposals_max: int = 100_000
    max_size_per_message_bytes: int = 1 << 20
    max_inflight_messages: int = 256
    snapshot_chunk_bytes: int = 1 << 20
    promotion_lag_entries_max: int = 64
    pre_vote: bool = True
    check_quorum: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.node_id:
            raise ValueError("node_id must be non-empty")
        if not self.tick_seconds > 0:
            raise ValueError(f"tick_seconds must be > 0, got {self.tick_seconds}")
        if self.durability not in DURABILITIES:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITIES)}, got {self.durability!r}"
            )
        if self.snapshot_entries < 1 or self.retain_entries < 0:
            raise ValueError("snapshot_entries must be >= 1 and retain_entries >= 0")
        if not self.read_timeout_seconds > 0:
            raise ValueError("read_timeout_seconds must be > 0")
        if len(set(self.voters)) != len(self.voters):
            raise ValueError(f"voters listed twice in {self.voters}")

    def raft_config(self) -> RaftConfig:
        initial = Configuration(voters=tuple(sorted(self.voters))) if self.voters else None
        return RaftConfig(
            node_id=self.node_id,
            election_tick=self.election_tick,
            heartbeat_tick=self.heartbeat_tick,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            max_size_per_message_bytes=self.max_size_per_message_bytes,
            max_inflight_messages=self.max_inflight_messages,
            snapshot_chunk_bytes=self.snapshot_chunk_bytes,
            promotion_lag_entries_max=self.promotion_lag_entries_max,
            initial_configuration=initial,
        )

    @property
    def election_timeout_max_seconds(self) -> float:
        """The longest randomized election timeout: 2 · election_tick ticks."""
        return 2 * self.election_tick * self.tick_seconds


# --- messages -------------------------------------------------------------------------------


@message("raft.batch")
@attrs.frozen
class RaftBatch:
    """Raft messages from one peer to another, encoded by consensus/wire.py."""

    data: bytes


@message("raft.status_request")
@attrs.frozen
class StatusRequest:
    pass


@message("raft.peer_status")
@attrs.frozen
class PeerStatus:
    node: str
    role: str
    term: int
    leader: str
    commit: int
    applied: int
    last_index: int
    snapshot_index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...]
    configuration_index: int = 0
    """The index of the entry that set this configuration (committed once ≤ commit)."""
    refused: str = ""
    """Why this peer refuses to serve (a damaged log), or ""."""


@message("raft.change_membership")
@attrs.frozen
class ChangeMembership:
    """Ask the leader for one membership step: add_learner, promote or remove a node."""

    kind: str
    node: str


@message("raft.membership_changed")
@attrs.frozen
class MembershipChanged:
    """The change is committed and applied at `index`; the configuration from then on."""

    index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...]


@message("raft.transfer_leadership")
@attrs.frozen
class TransferLeadership:
    """Ask the leader to hand leadership to voter `to` (answered once the transfer starts)."""

    to: str


@message("raft.transfer_started")
@attrs.frozen
class TransferStarted:
    to: str
    term: int


@message("raft.redirect")
@attrs.frozen
class Redirect:
    """This node is not the leader; `leader` is the one it knows ("" if none). Nothing was done."""

    leader: str


@message("raft.retry")
@attrs.frozen
class Retry:
    """The request did not complete here; retry it (with the same request id).

    `maybe_applied` says whether it may still take effect (a proposal whose fate is
    unknown) or certainly did not (it was refused, or lost to a leader change).
    """

    reason: str
    maybe_applied: bool


# --- observing (the simulator's checkers) -------------------------------------------------------


class PeerObserver(Protocol):
    """Hooks the simulator uses to watch every peer; production peers have none."""

    def stepped(self, raft: Raft) -> None:
        """After inputs were stepped into the core: each batch of messages from a peer,
        each tick, proposal and read request, and each Ready handled."""

    def ready(self, raft: Raft, ready: Ready) -> None:
        """For each Ready, before it is handled."""

    def restarted(self, raft: Raft) -> None:
        """The core was rebuilt from the disk."""

    def read_requested(self, node: str, context: bytes) -> None:
        """A read index was requested with `context`."""

    def applied(self, node: str, index: int, digest: bytes) -> None:
        """The state machine reached `index`; `digest` summarizes its state there."""

    def refused_to_serve(self, node: str, reason: str) -> None:
        """The peer found its disk damaged and refuses to serve."""


# --- proposals and reads ------------------------------------------------------------------------


class _Outcome:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


LOST = _Outcome("LOST")
"""The proposal's index holds another entry: it was never committed."""
UNKNOWN = _Outcome("UNKNOWN")
"""A snapshot jumped past the proposal's index: it may or may not have been committed."""

Done = Callable[[Any], None]


class _ReadBatch:
    __slots__ = ("callbacks", "requested_seconds")

    def __init__(self, callbacks: list[Callable[[bool], None]], requested_seconds: float) -> None:
        self.callbacks = callbacks
        self.requested_seconds = requested_seconds


# --- the actor ----------------------------------------------------------------------------------


class RaftPeer(Actor):
    """A Raft node with a trivial state machine; subclasses (the store) override the hooks.

    State machine hooks: `apply_entry(index, data) -> result`, `snapshot_data() -> bytes`,
    `restore_data(index, data)`, `state_digest() -> bytes`, `after_apply()`.
    Request hook: `receive_request(message) -> reply` for messages the peer does not know.
    """

    mailbox_capacity: ClassVar[int] = 1 << 16

    def __init__(self, settings: PeerSettings, observer: PeerObserver | None = None) -> None:
        self.settings = settings
        self.observer = observer
        self.raft: Raft | None = None
        self.durable: DurableState | None = None
        self.refused = ""
        self.applied = 0
        self.snapshot_index = 0
        self.malformed = 0
        self._wake: Mailbox[None] = Mailbox(1)
        self._pending: dict[int, tuple[int, Done]] = {}
        self._reads_new: list[Callable[[bool], None]] = []
        self._reads_by_context: dict[bytes, _ReadBatch] = {}
        self._reads_ready: list[tuple[int, list[Callable[[bool], None]]]] = []
        self._read_counter = 0
        self._read_prefix = b""
        self.applied_total = 0

    # --- lifetime -------------------------------------------------------------------------

    async def started(self) -> None:
        settings = self.settings
        if settings.node_id != self.node.node_id:
            raise ValueError(
                f"peer settings are for {settings.node_id!r} but the node is {self.node.node_id!r}"
            )
        random = self.host.derived_random("raft")
        self._read_prefix = f"{settings.node_id}/{random.getrandbits(48):012x}/".encode()
        persisted = PersistedState()
        if settings.durability != "memory":
            try:
                self.durable = await DurableState.open(
                    self.host.disk, settings.directory, settings.segment_bytes_max
                )
            except (WalCorruption, SnapshotCorruption) as error:
                self._refuse(f"{type(error).__name__}: {error}")
                return
            persisted = self.durable.recovered
        snapshot = persisted.snapshot
        if snapshot is not None:
            self.restore_data(snapshot.meta.index, snapshot.data)
            self.applied = self.snapshot_index = snapshot.meta.index
        self.raft = Raft(settings.raft_config(), random, persisted)
        if self.observer is not None:
            self.observer.restarted(self.raft)
        self.nursery.start_soon(self._ticker)
        self.nursery.start_soon(self._ready_loop)
        self._kick()

    def _refuse(self, reason: str) -> None:
        self.refused = reason
        log.error("%s refuses to serve: its Raft state on disk is damaged: %s", self.node.node_id, reason)
        if self.observer is not None:
            self.observer.refused_to_serve(self.node.node_id, reason)

    async def _ticker(self) -> None:
        clock = self.host.clock
        tick_seconds = self.settings.tick_seconds
        raft = self.raft
        assert raft is not None
        # Tick on a grid of the clock (tick k at k · tick_seconds), not `tick_seconds` after
        # the last tick, so the peers of one simulated world tick at the same instants.
        tick = int(clock.now() // tick_seconds) + 1
        while True:
            delay = tick * tick_seconds - clock.now()
            if delay > 0:
                await clock.sleep(delay)
            tick = max(tick + 1, int(clock.now() // tick_seconds) + 1)
            raft.tick()
            self._stepped()
            self._expire_reads(clock.now())
            self._kick()

    # --- receiving --------------------------------------------------------------------------

    async def receive(self, message: Any) -> Any:
        if type(message) is RaftBatch:
            self._on_batch(message.data)
            return None
        if type(message) is StatusRequest:
            return self.status()
        if self.refused:
            raise ReplyError(f"{self.node.node_id} refuses to serve: {self.refused}", kind="unavailable")
        match message:
            case ChangeMembership(kind=kind, node=node):
                self._change_membership(kind, node)
                return None
            case TransferLeadership(to=to):
                return self._transfer(to)
        return await self.receive_request(message)

    async def receive_request(self, message: Any) -> Any:
        """Requests of the layer above (the store); the plain peer knows none."""
        raise ReplyError(f"{type(message).__name__} is not a request a Raft peer handles", kind="invalid")

    def _on_batch(self, data: bytes) -> None:
        raft = self.raft
        if raft is None:
            return  # refusing: takes no part in Raft
        try:
            messages = decode_batch(data)
        except DecodeError as error:
            self.malformed += 1
            log.debug("%s: dropped a malformed Raft batch: %s", self.node.node_id, error)
            return
        own = self.settings.node_id
        for raft_message in messages:
            if raft_message.to != own:
                self.malformed += 1
                continue
            raft.step(raft_message)
        self._stepped()
        self._kick()

    def _stepped(self) -> None:
        if self.observer is not None and self.raft is not None:
            self.observer.stepped(self.raft)

    # --- the Ready loop -----------------------------------------------------------------------

    def _kick(self) -> None:
        """Wake the Ready loop (it handles everything stepped in since it last looked)."""
        if not len(self._wake):
            self._wake.put_nowait(None)

    async def _ready_loop(self) -> None:
        # One long-lived task parked on a one-slot mailbox: waking it is a queue put, far
        # cheaper than starting a task per batch of work.
        wake = self._wake
        while True:
            await wake.get()
            await self._process_ready()

    async def _process_ready(self) -> None:
        raft = self.raft
        assert raft is not None
        observer = self.observer
        while True:
            if self._reads_new:
                self._request_read_index()
            ready = raft.ready()
            if ready is None:
                break
            if observer is not None:
                observer.ready(raft, ready)
            await self._persist(ready)
            self._send(ready.messages)
            if ready.snapshot is not None:
                self._install(ready.snapshot)
            if ready.committed_entries:
                self._apply(ready.committed_entries)
            if ready.read_states:
                for read_state in ready.read_states:
                    batch = self._reads_by_context.pop(read_state.context, None)
                    if batch is not None:
                        self._reads_ready.append((read_state.index, batch.callbacks))
            if self._reads_ready:
                self._serve_reads()
            if ready.soft_state is not None:
                self._role_changed(ready.soft_state)
            raft.advance(ready)
            self._stepped()
            if self.applied - self.snapshot_index >= self.settings.snapshot_entries:
                await self._take_snapshot()

    async def _persist(self, ready: Ready) -> None:
        durable = self.durable
        if durable is None:
            return
        if self.settings.durability == "fsync":
            await durable.persist(ready)
            return
        snapshot = ready.snapshot
        if snapshot is not None:
            await durable.snapshots.save(snapshot)
        await durable.wal.save(
            ready.hard_state,
            ready.entries,
            snapshot.meta if snapshot is not None else None,
            reset=snapshot is not None,
        )

    def _send(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        by_peer: dict[str, list[Message]] = {}
        for raft_message in messages:
            by_peer.setdefault(raft_message.to, []).append(raft_message)
        for peer, batch in by_peer.items():
            ref = self.ref_to(self.name, peer)
            try:
                ref.tell_nowait(RaftBatch(encode_batch(batch)))
            except (ActorBusy, NoSuchActor) as error:
                log.debug("%s: could not send to %s: %s", self.node.node_id, peer, error)

    def _install(self, snapshot: Snapshot) -> None:
        index = snapshot.meta.index
        self.restore_data(index, snapshot.data)
        self.applied = self.snapshot_index = index
        for pending_index in sorted(self._pending):
            if pending_index > index:
                break
            _, done = self._pending.pop(pending_index)
            done(UNKNOWN)
        if self.observer is not None:
            self.observer.applied(self.settings.node_id, index, self.state_digest())

    def _apply(self, entries: list[Entry]) -> None:
        pending = self._pending
        observer = self.observer
        node_id = self.settings.node_id
        for entry in entries:
            kind = entry.kind
            if kind is EntryKind.NORMAL:
                result: Any = self.apply_entry(entry.index, entry.data)
            elif kind is EntryKind.CONFIGURATION:
                assert self.raft is not None
                configuration = self.raft.configuration_at(entry.index)
                result = MembershipChanged(entry.index, configuration.voters, configuration.learners)
            else:
                result = None
            self.applied = entry.index
            self.applied_total += 1
            if pending:
                waiting = pending.pop(entry.index, None)
                if waiting is not None:
                    term, done = waiting
                    done(result if term == entry.term else LOST)
            if observer is not None:
                observer.applied(node_id, entry.index, self.state_digest())
        self.after_apply()

    async def _take_snapshot(self) -> None:
        raft = self.raft
        assert raft is not None
        index = self.applied
        if index <= raft.applied_index and index > self.snapshot_index:
            snapshot = raft.compact(index, self.snapshot_data(), self.settings.retain_entries)
            self.snapshot_index = index
            if self.durable is not None:
                await self.durable.save_snapshot(snapshot)

    def _role_changed(self, soft_state: SoftState) -> None:
        if soft_state.role is not Role.LEADER:
            # The core drops reads it had not released; those are retried by the client.
            for batch in self._reads_by_context.values():
                for callback in batch.callbacks:
                    callback(False)
            self._reads_by_context.clear()

    # --- proposals ------------------------------------------------------------------------------

    def propose(self, data: bytes, done: Done) -> None:
        """Propose one entry; `done(result | LOST | UNKNOWN)` once its index is applied.

        Raises NotLeader (nothing was proposed) and ProposalDropped (likewise).
        """
        raft = self.raft
        if raft is None:
            raise NotLeader(self.settings.node_id, "")
        if len(self._pending) >= self.settings.pending_proposals_max:
            raise ProposalDropped(f"{len(self._pending)} proposals are pending already")
        receipt = raft.propose(data)
        self._wait_for(receipt.first_index, receipt.term, done)
        self._stepped()
        self._kick()

    def propose_many(self, items: list[bytes], dones: list[Done]) -> None:
        """Propose several entries at once (one append, one broadcast): `dones[i]` is
        called as `propose` would for `items[i]`. Raises like `propose`, proposing none."""
        raft = self.raft
        if raft is None:
            raise NotLeader(self.settings.node_id, "")
        if len(self._pending) + len(items) > self.settings.pending_proposals_max:
            raise ProposalDropped(f"{len(self._pending)} proposals are pending already")
        receipt = raft.propose(items)
        term = receipt.term
        for index, done in enumerate(dones, receipt.first_index):
            self._wait_for(index, term, done)
        self._stepped()
        self._kick()

    def _wait_for(self, index: int, term: int, done: Done) -> None:
        replaced = self._pending.get(index)
        if replaced is not None:
            # We lead again and appended at an index an older proposal of ours held: that
            # one was truncated (had it committed, we would hold it there), so it is lost.
            replaced[1](LOST)
        self._pending[index] = (term, done)

    def _change_membership(self, kind: str, node: str) -> None:
        reply = self.defer_reply()
        raft = self.raft
        assert raft is not None
        try:
            change_kind = ConfChangeKind(kind)
        except ValueError:
            reply.fail("invalid", f"unknown membership change {kind!r}: use add_learner, promote or remove")
            return
        try:
            receipt = raft.propose_conf_change(ConfChange(change_kind, node))
        except NotLeader as error:
            reply.send(Redirect(error.leader))
            return
        except ConfChangeRefused as error:
            reply.fail("refused", str(error))
            return
        except ProposalDropped as error:
            reply.send(Retry(str(error), maybe_applied=False))
            return

        def done(result: Any) -> None:
            if isinstance(result, MembershipChanged):
                reply.send(result)
            else:
                reply.send(Retry("the membership change was lost to a leader change", result is UNKNOWN))

        self._wait_for(receipt.first_index, receipt.term, done)
        self._stepped()
        self._kick()

    def _transfer(self, to: str) -> Any:
        raft = self.raft
        assert raft is not None
        try:
            raft.transfer_leader(to)
        except NotLeader as error:
            return Redirect(error.leader)
        except ValueError as error:
            raise ReplyError(str(error), kind="invalid") from None
        self._stepped()
        self._kick()
        return TransferStarted(to, raft.term)

    # --- reads ------------------------------------------------------------------------------------

    def request_read(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(True)` once a linearizable read of the local state is safe,
        `callback(False)` if this attempt failed (no leader, leadership changed, timeout)."""
        if self.raft is None:
            callback(False)
            return
        self._reads_new.append(callback)
        self._kick()

    def _request_read_index(self) -> None:
        raft = self.raft
        assert raft is not None
        callbacks = self._reads_new
        self._reads_new = []
        self._read_counter += 1
        context = self._read_prefix + str(self._read_counter).encode()
        if self.observer is not None:
            self.observer.read_requested(self.settings.node_id, context)
        try:
            raft.read_index(context)
        except NotLeader:
            for callback in callbacks:
                callback(False)
            return
        self._reads_by_context[context] = _ReadBatch(callbacks, self.host.clock.now())
        self._stepped()

    def _serve_reads(self) -> None:
        applied = self.applied
        waiting = []
        for index, callbacks in self._reads_ready:
            if index <= applied:
                for callback in callbacks:
                    callback(True)
            else:
                waiting.append((index, callbacks))
        self._reads_ready = waiting

    def _expire_reads(self, now: float) -> None:
        if not self._reads_by_context:
            return
        horizon = now - self.settings.read_timeout_seconds
        expired = [c for c, batch in self._reads_by_context.items() if batch.requested_seconds < horizon]
        for context in expired:
            for callback in self._reads_by_context.pop(context).callbacks:
                callback(False)

    # --- state machine hooks (the store overrides these) ------------------------------------------

    def apply_entry(self, index: int, data: bytes) -> Any:
        return None

    def snapshot_data(self) -> bytes:
        return b""

    def restore_data(self, index: int, data: bytes) -> None:
        """Replace the state machine's state by the snapshot's."""

    def state_digest(self) -> bytes:
        return b""

    def after_apply(self) -> None:
        """Called after each applied batch (watches are served from here)."""

    # --- looking at it ------------------------------------------------------------------------------

    def status(self) -> PeerStatus:
        raft = self.raft
        if raft is None:
            return PeerStatus(
                self.settings.node_id, "refused", 0, "", 0, 0, 0, 0, (), (), refused=self.refused
            )
        configuration = raft.configuration
        return PeerStatus(
            node=self.settings.node_id,
            role=raft.role.value,
            term=raft.term,
            leader=raft.leader,
            commit=raft.commit_index,
            applied=self.applied,
            last_index=raft.last_index,
            snapshot_index=self.snapshot_index,
            voters=configuration.voters,
            learners=configuration.learners,
            configuration_index=raft.configuration_index,
            refused=self.refused,
        )

    @property
    def is_leader(self) -> bool:
        return self.raft is not None and self.raft.role is Role.LEADER

