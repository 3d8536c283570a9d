"""The Raft consensus core: a pure state machine, no I/O, no clock, no global randomness.

Inputs: `step(message)`, `tick()`, `propose(data)`, `propose_conf_change(change)`,
`read_index(context)`, `transfer_leader(to)`, `campaign()`, `compact(index, data)`.
Output: `ready()` returns a `Ready` batch (or None); the driver persists its hard state and
entries (fsync), then sends its messages, then applies its committed entries, then calls
`advance(ready)`. Time is counted in ticks; election jitter comes from the injected
`random.Random`.

Rules this state machine keeps (Raft paper Figure 2, the thesis, and etcd's refinements):

- Terms: any message with a higher term makes us a follower of that term first (except a
  PreVote request, a granted PreVote answer, and a vote request inside our leader lease).
  A message with a lower term is dropped; a stale leader gets an answer carrying our term
  so it steps down, and a stale PreVote gets a rejection carrying our term.
- Votes: one per term, durable before the answer leaves (it is in the same Ready's hard
  state), and only for a candidate whose log is at least as up to date as ours.
- Leader lease (CheckQuorum): a node that heard from a live leader within the election
  timeout ignores (pre)vote requests unless they come from a leadership transfer. A leader
  that has not heard from a quorum within an election timeout steps down. A pre-candidate
  forgets its leader (etcd #8334), so it can grant votes to others again.
- Elections: a follower that hears nothing for its randomized timeout in
  [election_tick, 2*election_tick) first runs a PreVote round at term+1 without changing
  anything; only if a quorum would vote does it become a candidate. A new leader appends a
  NOOP entry of its term.
- Replication: AppendEntries carries the entry before the batch (prev_index, prev_term); a
  follower accepts only if it holds that entry, truncates only at a real conflict, and
  commits at most up to the last entry the message carried. Rejections carry a hint so the
  leader skips back a term at a time. Flow control per follower: probe / replicate /
  snapshot (see progress.py).
- Commit: the leader commits index N once a quorum of voters holds it AND the entry at N
  has the leader's current term (Figure 8); earlier entries commit with it.
- Membership: one server at a time; a configuration takes effect when appended (see
  membership.py). A leader proposes a change only after committing an entry of its term and
  only when no other change is uncommitted. A leader removed from the configuration keeps
  leading until the removal commits, then steps down.
- Reads (ReadIndex): the read index is the leader's commit index once it has committed an
  entry of its term; the read is released after a heartbeat round with a quorum.
- Snapshots: a follower whose next entries are compacted receives the leader's snapshot in
  chunks; a chunk beyond what it holds is answered with its position, so the transfer
  resumes or restarts cleanly.

Invariants the code asserts (a violation raises RaftInvariantError: a bug, never input):
committed entries are never truncated; commit never passes the last index.

The `Raft` class is long on purpose: every transition of the state machine is in this one
file, next to the rules above, so they can be read together (as h11 keeps its tables in
one module). The data structures it leans on live in their own modules: log.py,
progress.py, membership.py, readonly.py.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Iterable

from consensus.config import RaftConfig, Status
from consensus.errors import (
    ConfChangeRefused,
    NotLeader,
    ProposalDropped,
    RaftError,
    RaftInvariantError,
)
from consensus.log import RaftLog
from consensus.membership import (
    ConfigurationHistory,
    apply_change,
    decode_configuration,
    encode_configuration,
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
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    PersistedState,
    ProposalReceipt,
    ReadIndexRequest,
    ReadIndexResponse,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SnapshotResponse,
    SoftState,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from consensus.mutants import switches
from consensus.progress import Progress, ProgressState, ProgressView, committed_index, view
from consensus.readonly import ReadQueue

_LEADER_MESSAGES = (AppendEntries, Heartbeat, InstallSnapshot)
_RESPONSES = (VoteResponse, AppendResponse, HeartbeatResponse, SnapshotResponse)

__all__ = [
    "ConfChangeRefused",
    "NotLeader",
    "ProposalDropped",
    "Raft",
    "RaftConfig",
    "RaftError",
    "RaftInvariantError",
    "Status",
]


class _IncomingSnapshot:
    __slots__ = ("buffer", "meta", "total_bytes")

    def __init__(self, meta: SnapshotMeta, total_bytes: int) -> None:
        self.meta = meta
        self.total_bytes = total_bytes
        self.buffer = bytearray()


class Raft:
    def __init__(
        self,
        config: RaftConfig,
        random: random_module.Random,
        persisted: PersistedState | None = None,
        applied: int | None = None,
    ) -> None:
        """Start (or restart) a node from what it persisted.

        `persisted.entries` is taken over, not copied. `applied` is the index the state
        machine already reflects (default: the snapshot's, i.e. replay from the snapshot).
        """
        self._config = config
        self._id = config.node_id
        self._random = random
        persisted = persisted if persisted is not None else PersistedState()
        snapshot = persisted.snapshot
        snapshot_index = snapshot.meta.index if snapshot is not None else 0
        snapshot_term = snapshot.meta.term if snapshot is not None else 0
        self._log = RaftLog(snapshot_index, snapshot_term, persisted.entries)
        if snapshot is not None:
            base = snapshot.meta.configuration
        else:
            base = config.initial_configuration or Configuration()
        self._configs = ConfigurationHistory(base, snapshot_index)
        for entry in self._log.entries:
            if entry.kind is EntryKind.CONFIGURATION:
                self._configs.add(entry.index, decode_configuration(entry.data))
        hard_state = persisted.hard_state
        self._term = hard_state.term
        self._vote = hard_state.vote
        self._commit = max(hard_state.commit, snapshot_index)
        if self._commit > self._log.last_index():
            raise ValueError(
                f"persisted commit {self._commit} is beyond the persisted log's last index "
                f"{self._log.last_index()}"
            )
        self._applied = snapshot_index if applied is None else applied
        if not snapshot_index <= self._applied <= self._commit:
            raise ValueError(
                f"applied index {self._applied} must lie in [{snapshot_index}, {self._commit}]"
            )
        self._snapshot = snapshot
        self._pending_snapshot: Snapshot | None = None
        self._incoming: _IncomingSnapshot | None = None

        self._role = Role.FOLLOWER
        self._leader = ""
        self._votes: dict[str, bool] = {}
        self._progress: dict[str, Progress] = {}
        self._reads = ReadQueue()
        self._transferee = ""
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = config.election_tick
        self._reset_timers()

        self._messages: list[Message] = []
        self._read_states: list[ReadState] = []
        self._broadcast_pending = False
        self._commit_broadcast_pending = False
        self._outstanding: Ready | None = None
        # What the last Ready reported, as plain tuples (compared on every has_ready()).
        self._last_hard_state = (self._term, self._vote, self._commit)
        self._last_soft_state: tuple[Role, str] = (self._role, self._leader)
        self._dropped_messages = 0

    # === read-only view ===================================================================

    @property
    def id(self) -> str:
        return self._id

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> str:
        return self._vote

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader(self) -> str:
        """The leader this node follows ("" when it knows none)."""
        return self._leader

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def first_index(self) -> int:
        return self._log.first_index()

    @property
    def last_index(self) -> int:
        return self._log.last_index()

    @property
    def last_term(self) -> int:
        return self._log.last_term()

    @property
    def configuration(self) -> Configuration:
        return self._configs.current()

    @property
    def configuration_index(self) -> int:
        """Index of the entry that set the current configuration (the snapshot's if none)."""
        return self._configs.current_index()

    @property
    def latest_snapshot(self) -> Snapshot | None:
        return self._snapshot

    @property
    def lead_transferee(self) -> str:
        return self._transferee

    @property
    def dropped_messages(self) -> int:
        """Malformed messages from peers that were dropped (counted, never raised)."""
        return self._dropped_messages

    @property
    def randomized_election_timeout(self) -> int:
        return self._randomized_timeout

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index` (None when compacted away or beyond the end)."""
        return self._log.term(index)

    def entry_at(self, index: int) -> Entry | None:
        return self._log.entry(index)

    def entries(self, low: int, high: int) -> list[Entry]:
        """A copy of the entries [low, high) this node holds (within [first_index, last_index])."""
        return list(self._log.slice(low, high))

    def configuration_at(self, index: int) -> Configuration:
        return self._configs.at(index)

    def progress(self) -> dict[str, ProgressView]:
        """Each member's replication progress as the leader sees it ({} on a non-leader)."""
        return {node: view(progress) for node, progress in self._progress.items()}

    def status(self) -> Status:
        return Status(
            id=self._id,
            term=self._term,
            vote=self._vote,
            role=self._role,
            leader=self._leader,
            commit=self._commit,
            applied=self._applied,
            first_index=self._log.first_index(),
            last_index=self._log.last_index(),
            last_term=self._log.last_term(),
            configuration=self._configs.current(),
            snapshot_index=self._log.snapshot_index,
            progress=self.progress(),
        )

    # === inputs from the application =======================================================

    def tick(self) -> None:
        """One unit of logical time."""
        if self._role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (as if the election timeout had passed)."""
        if self._role is not Role.LEADER:
            self._campaign(transfer=False)

    def propose(self, data: bytes | Iterable[bytes]) -> ProposalReceipt:
        """Append one entry (bytes) or a batch (an iterable of bytes) to the leader's log."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._id, self._leader)
        if self._transferee:
            raise ProposalDropped(f"leadership transfer to {self._transferee} in progress")
        if isinstance(data, bytes):
            items = [data]
        else:
            items = list(data)
            for position, item in enumerate(items):
                if not isinstance(item, bytes):
                    raise TypeError(f"proposal item {position} is {type(item).__name__}, not bytes")
            if not items:
                raise ValueError("an empty batch proposes nothing")
        return self._append_as_leader(items, EntryKind.NORMAL)

    def propose_conf_change(self, change: ConfChange) -> ProposalReceipt:
        """Propose one membership step; ConfChangeRefused says why it cannot go now."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._id, self._leader)
        if self._transferee:
            raise ProposalDropped(f"leadership transfer to {self._transferee} in progress")
        if not switches.M10:
            if not self._committed_in_current_term():
                raise ConfChangeRefused(
                    f"the leader has not yet committed an entry of term {self._term}"
                )
            pending = self._configs.current_index()
            if pending > self._commit:
                raise ConfChangeRefused(f"the membership change at index {pending} is not committed yet")
        updated = apply_change(self._configs.current(), change)
        if change.kind is ConfChangeKind.PROMOTE:
            progress = self._progress.get(change.node)
            lag = self._log.last_index() - (progress.match if progress is not None else 0)
            if lag > self._config.promotion_lag_entries_max:
                raise ConfChangeRefused(
                    f"learner {change.node} is {lag} entries behind "
                    f"(at most {self._config.promotion_lag_entries_max} allowed)"
                )
        return self._append_as_leader([encode_configuration(updated)], EntryKind.CONFIGURATION)

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read; a ReadState(context, index) comes out of a later Ready.

        `context` must be unique among reads in flight. On a follower the request goes to the
        leader. Reads are lost (never released) if leadership changes: retry with a new context.
        """
        if not isinstance(context, bytes) or not context:
            raise ValueError("a read context must be non-empty bytes")
        if self._role is Role.LEADER:
            self._leader_read(context, self._id)
        elif self._leader:
            self._send(ReadIndexRequest(self._term, self._id, self._leader, context))
        else:
            raise NotLeader(self._id, "")

    def transfer_leader(self, to: str) -> None:
        """Hand leadership to voter `to`: catch it up, then tell it to campaign (TimeoutNow)."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._id, self._leader)
        if to == self._id:
            return
        if not self._configs.current().is_voter(to):
            raise ValueError(f"{to} is not a voter and cannot lead")
        if self._transferee == to:
            return
        self._transferee = to
        # The transfer gives up after one election timeout, counted by election_elapsed.
        self._election_elapsed = 0
        progress = self._progress[to]
        if progress.match == self._log.last_index():
            self._send(TimeoutNow(self._term, self._id, to))
        else:
            self._send_append_loop(to, progress, send_if_empty=True)

    def compact(self, index: int, data: bytes, retain_entries: int = 0) -> Snapshot:
        """The state machine at `index` is `data`: make it the snapshot and drop older entries.

        The driver saves the returned snapshot durably (it is not repeated in a Ready). Up to
        `retain_entries` entries before `index` stay in memory for slow followers.
        """
        if not isinstance(data, bytes):
            raise TypeError("snapshot data must be bytes")
        if index > self._applied:
            raise ValueError(f"cannot snapshot at {index}: only {self._applied} is applied")
        current = self._snapshot.meta.index if self._snapshot is not None else 0
        if index <= current:
            raise ValueError(f"a snapshot at {current} already covers {index}")
        if retain_entries < 0:
            raise ValueError("retain_entries must be ≥ 0")
        term = self._log.term(index)
        if term is None:
            raise ValueError(f"index {index} is not in the log")
        snapshot = Snapshot(SnapshotMeta(index, term, self._configs.at(index)), data)
        self._snapshot = snapshot
        compact_to = index - retain_entries
        if compact_to > self._log.snapshot_index:
            self._log.compact_to(compact_to)
            self._configs.compact_to(compact_to)
        return snapshot

    # === output ===========================================================================

    def has_ready(self) -> bool:
        if self._outstanding is not None:
            return False
        log = self._log
        return bool(
            self._messages
            or self._broadcast_pending
            or self._commit_broadcast_pending
            or self._read_states
            or self._pending_snapshot is not None
            or log.stable_index < log.last_index()
            or self._commit > max(self._applied, log.snapshot_index)
            or self._last_hard_state != (self._term, self._vote, self._commit)
            or self._last_soft_state != (self._role, self._leader)
        )

    def ready(self) -> Ready | None:
        """The next batch of work, or None. Call `advance` with it before the next `ready`."""
        if self._outstanding is not None:
            raise RuntimeError("advance() the previous Ready before asking for another")
        self._flush_broadcasts()
        log = self._log
        hard_state = (self._term, self._vote, self._commit)
        last = self._last_hard_state
        hard_state_out = None
        if hard_state != last:
            # Mutant M2 forgets to persist the vote.
            vote = self._vote if not switches.M2 else ""
            hard_state_out = HardState(self._term, vote, self._commit)
        entries = log.unstable_entries() if log.stable_index < log.last_index() else []
        snapshot = self._pending_snapshot
        low = max(self._applied, log.snapshot_index) + 1
        if self._commit >= low:
            committed = log.slice(low, self._commit + 1, self._config.max_apply_bytes_per_ready)
        else:
            committed = []
        soft_state = (self._role, self._leader)
        soft_state_out = SoftState(*soft_state) if soft_state != self._last_soft_state else None
        if not (
            hard_state_out
            or entries
            or snapshot
            or self._messages
            or committed
            or self._read_states
            or soft_state_out
        ):
            return None
        must_sync = bool(entries or snapshot is not None or hard_state[:2] != last[:2])
        ready = Ready(
            hard_state=hard_state_out,
            entries=entries,
            snapshot=snapshot,
            messages=self._messages,
            committed_entries=committed,
            read_states=self._read_states,
            soft_state=soft_state_out,
            must_sync=must_sync,
        )
        self._messages = []
        self._read_states = []
        self._pending_snapshot = None
        self._last_hard_state = hard_state
        self._last_soft_state = soft_state
        self._outstanding = ready
        return ready

    def advance(self, ready: Ready) -> None:
        """The driver has persisted, sent and applied `ready`."""
        if ready is not self._outstanding:
            raise ValueError("advance() takes the Ready that ready() returned last")
        self._outstanding = None
        if ready.entries:
            last = ready.entries[-1]
            self._log.stable_to(last.index, last.term)
        if ready.snapshot is not None:
            self._applied = max(self._applied, ready.snapshot.meta.index)
        if ready.committed_entries:
            self._applied = max(self._applied, ready.committed_entries[-1].index)

    # === messages =========================================================================

    def step(self, message: Message) -> None:
        """Handle one message from a peer.

        This is the one place where terms are compared, so it is longer than the handlers
        it dispatches to: every rule about higher and lower terms (PreVote, the leader lease,
        stale leaders, mutant M7) must be applied before any role-specific handling, and
        keeping them together is what makes them checkable against the paper.
        """
        if message.to != self._id:
            raise ValueError(f"message for {message.to!r} stepped into {self._id!r}")
        if isinstance(message, ReadIndexRequest):
            # Terms do not matter for reads: only a leader answers, after its quorum check.
            if self._role is Role.LEADER and message.context:
                self._leader_read(message.context, message.sender)
            else:
                self._dropped_messages += 1
            return
        if isinstance(message, ReadIndexResponse):
            self._read_states.append(ReadState(message.context, message.index))
            return

        term = message.term
        if term > self._term:
            if isinstance(message, VoteRequest):
                in_lease = (
                    self._config.check_quorum
                    and self._leader != ""
                    and self._election_elapsed < self._config.election_tick
                )
                if in_lease and not message.transfer:
                    return
                if not message.pre_vote:
                    self._become_follower(term, "")
            elif isinstance(message, VoteResponse) and message.pre_vote and message.granted:
                # A granted PreVote answer carries the term we would campaign at.
                pass
            elif switches.M7 and self._role is Role.LEADER and isinstance(message, _RESPONSES):
                # Mutant: keep leading and count the answer as if it were of our term.
                pass
            else:
                leader = message.sender if isinstance(message, _LEADER_MESSAGES) else ""
                self._become_follower(term, leader)
        elif term < self._term:
            if (
                switches.M7
                and isinstance(message, AppendEntries)
                and self._role is not Role.LEADER
            ):
                self._election_elapsed = 0
                self._handle_append(message)
                return
            if isinstance(message, (AppendEntries, Heartbeat)):
                # A leader of an old term (cut off, now back) learns our term and steps down;
                # with CheckQuorum our term may never reach it any other way.
                self._send(AppendResponse(self._term, self._id, message.sender, index=0))
            elif isinstance(message, VoteRequest) and message.pre_vote:
                self._send(VoteResponse(self._term, self._id, message.sender, False, pre_vote=True))
            return

        if isinstance(message, VoteRequest):
            self._handle_vote_request(message)
            return
        role = self._role
        if role is Role.LEADER:
            self._step_leader(message)
        elif role is Role.FOLLOWER:
            self._step_follower(message)
        else:
            self._step_candidate(message)

    def _step_leader(self, message: Message) -> None:
        if isinstance(message, AppendResponse):
            self._handle_append_response(message)
        elif isinstance(message, HeartbeatResponse):
            self._handle_heartbeat_response(message)
        elif isinstance(message, SnapshotResponse):
            self._handle_snapshot_response(message)
        elif isinstance(message, _LEADER_MESSAGES):
            raise RaftInvariantError(
                f"{self._id} leads term {self._term} but {message.sender} sent "
                f"{type(message).__name__} in the same term"
            )
        # Vote answers after winning, and TimeoutNow, need nothing.

    def _step_follower(self, message: Message) -> None:
        if isinstance(message, AppendEntries):
            self._heard_from_leader(message.sender)
            self._handle_append(message)
        elif isinstance(message, Heartbeat):
            self._heard_from_leader(message.sender)
            self._handle_heartbeat(message)
        elif isinstance(message, InstallSnapshot):
            self._heard_from_leader(message.sender)
            self._handle_install_snapshot(message)
        elif isinstance(message, TimeoutNow):
            self._campaign(transfer=True)

    def _step_candidate(self, message: Message) -> None:
        if isinstance(message, _LEADER_MESSAGES):
            # Someone won this term (or, for a pre-candidate, still leads it).
            self._become_follower(message.term, message.sender)
            self._step_follower(message)
        elif isinstance(message, VoteResponse):
            self._handle_vote_response(message)

    def _heard_from_leader(self, leader: str) -> None:
        self._election_elapsed = 0
        self._leader = leader

    # --- elections -------------------------------------------------------------------------

    def _promotable(self) -> bool:
        return self._configs.current().is_voter(self._id)

    def _campaign(self, transfer: bool) -> None:
        if not self._promotable():
            return
        configuration = self._configs.current()
        pre_vote = self._config.pre_vote and not transfer
        if pre_vote:
            self._become_pre_candidate()
            term = self._term + 1
        else:
            self._become_candidate()
            term = self._term
        if configuration.quorum() <= 1:
            if pre_vote:
                self._become_candidate()
            self._become_leader()
            return
        last_index = self._log.last_index()
        last_term = self._log.last_term()
        for voter in configuration.voters:
            if voter != self._id:
                self._send(
                    VoteRequest(term, self._id, voter, last_index, last_term, pre_vote, transfer)
                )

    def _handle_vote_request(self, message: VoteRequest) -> None:
        can_vote = (
            self._vote == message.sender
            or (self._vote == "" and self._leader == "")
            or (message.pre_vote and message.term > self._term)
        )
        up_to_date = switches.M3 or self._log.is_up_to_date(message.last_index, message.last_term)
        if can_vote and up_to_date:
            self._send(
                VoteResponse(message.term, self._id, message.sender, True, pre_vote=message.pre_vote)
            )
            if not message.pre_vote:
                self._election_elapsed = 0
                self._vote = message.sender
        else:
            self._send(
                VoteResponse(self._term, self._id, message.sender, False, pre_vote=message.pre_vote)
            )

    def _handle_vote_response(self, message: VoteResponse) -> None:
        if message.pre_vote != (self._role is Role.PRE_CANDIDATE):
            return
        configuration = self._configs.current()
        if not configuration.is_voter(message.sender):
            return
        self._votes.setdefault(message.sender, message.granted)
        granted = sum(1 for voter in configuration.voters if self._votes.get(voter) is True)
        rejected = sum(1 for voter in configuration.voters if self._votes.get(voter) is False)
        quorum = configuration.quorum()
        if granted >= quorum:
            if self._role is Role.PRE_CANDIDATE:
                self._campaign_after_pre_vote()
            else:
                self._become_leader()
        elif rejected > len(configuration.voters) - quorum:
            self._become_follower(self._term, "")

    def _campaign_after_pre_vote(self) -> None:
        configuration = self._configs.current()
        self._become_candidate()
        last_index = self._log.last_index()
        last_term = self._log.last_term()
        for voter in configuration.voters:
            if voter != self._id:
                self._send(
                    VoteRequest(self._term, self._id, voter, last_index, last_term, False, False)
                )

    # --- role changes ----------------------------------------------------------------------

    def _reset_timers(self) -> None:
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        tick = self._config.election_tick
        self._randomized_timeout = self._random.randrange(tick, 2 * tick)

    def _become_follower(self, term: int, leader: str) -> None:
        if term != self._term:
            self._term = term
            self._vote = ""
        self._role = Role.FOLLOWER
        self._leader = leader
        self._reset_timers()
        self._leave_leadership()
        self._votes = {}

    def _become_pre_candidate(self) -> None:
        self._leave_leadership()
        self._role = Role.PRE_CANDIDATE
        # etcd #8334: forget the leader, or CheckQuorum's lease makes this node refuse every
        # other node's votes while it cannot win itself.
        self._leader = ""
        self._reset_timers()
        self._votes = {self._id: True}

    def _become_candidate(self) -> None:
        self._leave_leadership()
        self._term += 1
        self._vote = self._id
        self._role = Role.CANDIDATE
        self._leader = ""
        self._reset_timers()
        self._votes = {self._id: True}

    def _become_leader(self) -> None:
        self._role = Role.LEADER
        self._leader = self._id
        self._transferee = ""
        self._reset_timers()
        self._reads.clear()
        self._progress = {}
        self._sync_progress_members()
        for progress in self._progress.values():
            # A grace period: CheckQuorum judges them one election timeout from now.
            progress.recent_active = True
        self._append_as_leader([b""], EntryKind.NOOP)
        self._broadcast_pending = True
        self._commit_broadcast_pending = True

    def _leave_leadership(self) -> None:
        self._progress = {}
        self._reads.clear()
        self._transferee = ""
        self._broadcast_pending = False
        self._commit_broadcast_pending = False

    # --- leader: replication ---------------------------------------------------------------

    def _append_as_leader(self, items: list[bytes], kind: EntryKind) -> ProposalReceipt:
        term = self._term
        first = self._log.last_index() + 1
        entries = [Entry(term, first + offset, kind, data) for offset, data in enumerate(items)]
        self._log.append(entries)
        last = first + len(entries) - 1
        own = self._progress.get(self._id)
        if own is not None:
            own.match = last
            own.next = last + 1
        if kind is EntryKind.CONFIGURATION:
            for entry in entries:
                self._configs.add(entry.index, decode_configuration(entry.data))
            self._on_configuration_changed()
        self._broadcast_pending = True
        self._maybe_commit()
        return ProposalReceipt(term, first, last)

    def _flush_broadcasts(self) -> None:
        if self._role is not Role.LEADER:
            self._broadcast_pending = self._commit_broadcast_pending = False
            return
        if self._broadcast_pending or self._commit_broadcast_pending:
            send_if_empty = self._commit_broadcast_pending
            self._broadcast_pending = self._commit_broadcast_pending = False
            for node, progress in self._progress.items():
                if node != self._id:
                    self._send_append_loop(node, progress, send_if_empty)

    def _send_append_loop(self, node: str, progress: Progress, send_if_empty: bool) -> None:
        """Send what the follower's flow control allows: one probe, or batches up to the window."""
        sent = self._maybe_send_append(node, progress, send_if_empty)
        last = self._log.last_index()
        while sent and progress.state is ProgressState.REPLICATE and progress.next <= last:
            sent = self._maybe_send_append(node, progress, False)

    def _maybe_send_append(self, node: str, progress: Progress, send_if_empty: bool) -> bool:
        if progress.is_paused(self._config.max_inflight_messages):
            return False
        log = self._log
        prev_index = progress.next - 1
        prev_term = log.term(prev_index)
        if prev_term is None:
            return self._start_snapshot(node, progress)
        last = log.last_index()
        if progress.next <= last:
            entries = log.slice(progress.next, last + 1, self._config.max_size_per_message_bytes)
        elif send_if_empty:
            entries = []
        else:
            return False
        self._messages.append(
            AppendEntries(self._term, self._id, node, prev_index, prev_term, entries, self._commit)
        )
        if progress.state is ProgressState.PROBE:
            progress.probe_sent = True
        elif entries:
            progress.sent_entries(entries[-1].index)
        return True

    def _handle_append_response(self, message: AppendResponse) -> None:
        node = message.sender
        progress = self._progress.get(node)
        if progress is None:
            return
        progress.recent_active = True
        if message.reject:
            if progress.maybe_decrease_to(message.index, self._next_from_hint(message)):
                self._send_append_loop(node, progress, send_if_empty=True)
            return
        if message.index > self._log.last_index():
            self._dropped_messages += 1
            return
        # A follower that was paused missed any commit broadcast meanwhile: tell it now.
        was_paused = progress.is_paused(self._config.max_inflight_messages)
        committed = False
        if progress.maybe_update(message.index):
            if progress.state is ProgressState.PROBE:
                progress.become_replicate()
            elif (
                progress.state is ProgressState.SNAPSHOT
                and progress.transfer is not None
                and progress.match >= progress.transfer.snapshot.meta.index
            ):
                progress.become_probe()
            committed = self._maybe_commit()
            if (
                node == self._transferee
                and progress.match == self._log.last_index()
                and self._role is Role.LEADER
            ):
                self._send(TimeoutNow(self._term, self._id, node))
        if self._role is Role.LEADER:
            self._send_append_loop(node, progress, send_if_empty=was_paused and not committed)

    def _next_from_hint(self, message: AppendResponse) -> int:
        if message.hint_term == 0:
            return message.hint_index
        last_of_term = self._log.last_index_of_term(message.hint_term)
        if last_of_term is not None:
            return last_of_term + 1
        return message.hint_index

    def _handle_heartbeat_response(self, message: HeartbeatResponse) -> None:
        node = message.sender
        progress = self._progress.get(node)
        if progress is None:
            return
        progress.recent_active = True
        progress.probe_sent = False
        if (
            progress.state is ProgressState.REPLICATE
            and len(progress.inflight) >= self._config.max_inflight_messages
        ):
            progress.inflight.popleft()
        if progress.match < self._log.last_index() or progress.state is ProgressState.PROBE:
            self._send_append_loop(node, progress, send_if_empty=True)
        if message.context:
            configuration = self._configs.current()

            def quorum_reached(acks: set[str]) -> bool:
                votes = sum(1 for voter in configuration.voters if voter in acks)
                return votes >= configuration.quorum()

            for context, read in self._reads.acknowledge(message.context, node, quorum_reached):
                self._release_read(context, read.index, read.requester)

    def _maybe_commit(self) -> bool:
        configuration = self._configs.current()
        if not configuration.voters:
            return False
        progress = self._progress
        matches = [
            progress[voter].match if voter in progress else 0 for voter in configuration.voters
        ]
        index = committed_index(matches)
        previous = self._commit
        if index <= previous:
            return False
        if not switches.M1 and self._log.term(index) != self._term:
            return False
        self._commit = index
        self._commit_broadcast_pending = True
        if self._reads.waiting and self._committed_in_current_term():
            self._start_waiting_reads()
        if previous < self._configs.current_index() <= index:
            self._sync_progress_members()
            if not configuration.is_voter(self._id):
                # Removed, and the removal is committed: tell the others, then step aside.
                self._flush_broadcasts()
                self._become_follower(self._term, "")
        return True

    def _committed_in_current_term(self) -> bool:
        return self._log.term(self._commit) == self._term

    # --- leader: membership ----------------------------------------------------------------

    def _sync_progress_members(self) -> None:
        """Track the current members, plus anyone an uncommitted change is removing.

        A removed node keeps receiving entries until its removal commits, so it learns of
        it and stops campaigning.
        """
        members = set(self._configs.current().members())
        if self._configs.current_index() > self._commit:
            members.update(self._configs.at(self._commit).members())
        last = self._log.last_index()
        for node in sorted(members):
            if node not in self._progress:
                progress = Progress(last + 1)
                progress.recent_active = True
                if node == self._id:
                    progress.match = last
                self._progress[node] = progress
                self._broadcast_pending = True
        for node in list(self._progress):
            if node not in members:
                del self._progress[node]

    def _on_configuration_changed(self) -> None:
        if self._role is not Role.LEADER:
            return
        self._sync_progress_members()
        if self._transferee and not self._configs.current().is_voter(self._transferee):
            self._transferee = ""
        self._maybe_commit()

    # --- leader: snapshots -----------------------------------------------------------------

    def _start_snapshot(self, node: str, progress: Progress) -> bool:
        snapshot = self._snapshot
        if snapshot is None or snapshot.meta.index < progress.next - 1:
            raise RaftInvariantError(
                f"{node} needs entries from {progress.next} but the log starts at "
                f"{self._log.first_index()} and no snapshot covers them"
            )
        progress.become_snapshot(snapshot)
        return self._send_snapshot_chunks(node, progress)

    def _send_snapshot_chunks(self, node: str, progress: Progress) -> bool:
        transfer = progress.transfer
        assert transfer is not None
        data = transfer.snapshot.data
        total = len(data)
        chunk_bytes = self._config.snapshot_chunk_bytes
        window = chunk_bytes * self._config.snapshot_inflight_chunks
        sent = False
        while not transfer.final_sent and transfer.sent_bytes - transfer.acked_bytes < window:
            offset = transfer.sent_bytes
            chunk = data[offset : offset + chunk_bytes]
            self._messages.append(
                InstallSnapshot(
                    self._term, self._id, node, transfer.snapshot.meta, offset, total, chunk
                )
            )
            transfer.sent_bytes = offset + len(chunk)
            if transfer.sent_bytes >= total:
                transfer.final_sent = True
            sent = True
        return sent

    def _handle_snapshot_response(self, message: SnapshotResponse) -> None:
        node = message.sender
        progress = self._progress.get(node)
        if progress is None:
            return
        progress.recent_active = True
        transfer = progress.transfer
        current = (
            transfer is not None
            and progress.state is ProgressState.SNAPSHOT
            and transfer.snapshot.meta.index == message.snapshot_index
            and transfer.snapshot.meta.term == message.snapshot_term
        )
        if message.installed:
            if message.index > self._log.last_index():
                self._dropped_messages += 1
                return
            progress.maybe_update(message.index)
            if current:
                progress.become_probe()
            self._maybe_commit()
            if self._role is Role.LEADER:
                self._send_append_loop(node, progress, send_if_empty=True)
            return
        if not current or transfer is None:
            return
        total = len(transfer.snapshot.data)
        received = min(message.received_bytes, total)
        if message.gap:
            # The follower holds only `received` bytes: resend from there (0 restarts it).
            transfer.acked_bytes = received
            transfer.sent_bytes = received
            transfer.final_sent = False
            transfer.stalled_heartbeats = 0
        elif received > transfer.acked_bytes:
            transfer.acked_bytes = received
            transfer.stalled_heartbeats = 0
        self._send_snapshot_chunks(node, progress)

    # --- time ------------------------------------------------------------------------------

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout and self._promotable():
            self._election_elapsed = 0
            self._campaign(transfer=False)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._config.election_tick:
            self._election_elapsed = 0
            if self._config.check_quorum:
                if not self._quorum_active():
                    self._become_follower(self._term, "")
                    return
                for node, progress in self._progress.items():
                    if node != self._id:
                        progress.recent_active = False
            self._transferee = ""
        if self._heartbeat_elapsed >= self._config.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()
            for node, progress in self._progress.items():
                transfer = progress.transfer
                if transfer is not None and progress.state is ProgressState.SNAPSHOT:
                    transfer.stalled_heartbeats += 1
                    if transfer.stalled_heartbeats >= 2:
                        transfer.stalled_heartbeats = 0
                        transfer.sent_bytes = transfer.acked_bytes
                        transfer.final_sent = False
                        self._send_snapshot_chunks(node, progress)

    def _quorum_active(self) -> bool:
        configuration = self._configs.current()
        active = 0
        for voter in configuration.voters:
            if voter == self._id:
                active += 1
            else:
                progress = self._progress.get(voter)
                if progress is not None and progress.recent_active:
                    active += 1
        return active >= configuration.quorum()

    def _broadcast_heartbeat(self, context: bytes | None = None) -> None:
        if context is None:
            pending = self._reads.pending
            context = next(reversed(pending)) if pending else b""
        for node, progress in self._progress.items():
            if node != self._id:
                self._messages.append(
                    Heartbeat(self._term, self._id, node, min(progress.match, self._commit), context)
                )

    # --- reads -----------------------------------------------------------------------------

    def _leader_read(self, context: bytes, requester: str) -> None:
        if switches.M8:
            self._release_read(context, self._commit, requester)
            return
        if self._reads.knows(context):
            return
        if not self._committed_in_current_term():
            self._reads.waiting.append((context, requester))
            return
        configuration = self._configs.current()
        if configuration.quorum() <= 1 and configuration.is_voter(self._id):
            self._release_read(context, self._commit, requester)
            return
        self._reads.add(context, self._commit, requester, self._id)
        self._broadcast_heartbeat(context)

    def _start_waiting_reads(self) -> None:
        waiting = self._reads.waiting
        self._reads.waiting = []
        for context, requester in waiting:
            self._leader_read(context, requester)

    def _release_read(self, context: bytes, index: int, requester: str) -> None:
        if requester == self._id:
            self._read_states.append(ReadState(context, index))
        else:
            self._send(ReadIndexResponse(self._term, self._id, requester, context, index))

    # --- follower --------------------------------------------------------------------------

    def _handle_append(self, message: AppendEntries) -> None:
        if not self._valid_append(message):
            self._dropped_messages += 1
            return
        log = self._log
        prev_index = message.prev_index
        if prev_index < self._commit:
            # Everything up to our commit matches any legitimate leader; report that.
            self._send(AppendResponse(self._term, self._id, message.sender, index=self._commit))
            return
        entries = message.entries
        if switches.M5 and prev_index <= log.last_index():
            matches = True
        else:
            matches = log.match_term(prev_index, message.prev_term)
        if not matches:
            self._reject_append(message)
            return
        last_new = prev_index + len(entries)
        if switches.M4:
            if prev_index < log.last_index():
                self._truncate_after(prev_index)
            if entries:
                self._append_from_leader(entries)
        else:
            conflict = log.find_conflict(entries) if entries else 0
            if conflict:
                if conflict <= self._commit:
                    raise RaftInvariantError(
                        f"{self._id}: entry {conflict} conflicts but is committed (commit {self._commit})"
                    )
                self._append_from_leader(entries[conflict - prev_index - 1 :])
        if switches.M14:
            self._commit_to(min(message.commit, log.last_index()))
        else:
            self._commit_to(min(message.commit, last_new))
        self._send(AppendResponse(self._term, self._id, message.sender, index=last_new))

    def _valid_append(self, message: AppendEntries) -> bool:
        if message.prev_index < 0 or message.prev_term < 0 or message.commit < 0:
            return False
        if message.prev_term > message.term:
            return False
        expected = message.prev_index + 1
        previous_term = message.prev_term
        for entry in message.entries:
            if entry.index != expected or entry.term < previous_term or entry.term > message.term:
                return False
            expected += 1
            previous_term = entry.term
        return True

    def _reject_append(self, message: AppendEntries) -> None:
        log = self._log
        prev_index = message.prev_index
        last = log.last_index()
        if prev_index > last:
            hint_index, hint_term = last + 1, 0
        else:
            hint_term = log.term(prev_index) or 0
            hint_index = log.first_index_of_term(hint_term, prev_index) if hint_term else last + 1
            hint_index = max(hint_index, self._commit + 1)
        self._send(
            AppendResponse(
                self._term,
                self._id,
                message.sender,
                index=prev_index,
                reject=True,
                hint_index=hint_index,
                hint_term=hint_term,
            )
        )

    def _append_from_leader(self, entries: list[Entry]) -> None:
        first = entries[0].index
        rolled_back = first <= self._log.last_index() and self._configs.truncate_from(first)
        self._log.truncate_and_append(entries)
        added = False
        for entry in entries:
            if entry.kind is EntryKind.CONFIGURATION:
                self._configs.add(entry.index, decode_configuration(entry.data))
                added = True
        if rolled_back or added:
            self._on_configuration_changed()

    def _truncate_after(self, index: int) -> None:
        """Mutant M4 only: drop the log after `index` whether or not it conflicts."""
        self._configs.truncate_from(index + 1)
        self._log.truncate_after(index)
        if self._commit > self._log.last_index():
            self._commit = self._log.last_index()

    def _commit_to(self, index: int) -> None:
        if index > self._commit:
            if index > self._log.last_index():
                raise RaftInvariantError(
                    f"{self._id}: commit {index} beyond last index {self._log.last_index()}"
                )
            self._commit = index

    def _handle_heartbeat(self, message: Heartbeat) -> None:
        # The leader caps `commit` at what it knows we match, so it is ours to take.
        self._commit_to(min(message.commit, self._log.last_index()))
        self._send(HeartbeatResponse(self._term, self._id, message.sender, message.context))

    def _handle_install_snapshot(self, message: InstallSnapshot) -> None:
        meta = message.meta
        chunk = message.chunk
        if (
            message.offset < 0
            or message.offset + len(chunk) > message.total_bytes
            or meta.index < 0
            or meta.term > message.term
        ):
            self._dropped_messages += 1
            return

        def respond(**fields: int | bool) -> None:
            self._send(
                SnapshotResponse(
                    self._term,
                    self._id,
                    message.sender,
                    snapshot_index=meta.index,
                    snapshot_term=meta.term,
                    **fields,  # type: ignore[arg-type]
                )
            )

        if meta.index <= self._commit:
            self._incoming = None
            respond(installed=True, index=self._commit)
            return
        incoming = self._incoming
        if incoming is None or incoming.meta != meta or incoming.total_bytes != message.total_bytes:
            if message.offset != 0:
                # A chunk of a transfer we hold nothing of (we restarted, or it is new).
                self._incoming = None
                respond(received_bytes=0, gap=True)
                return
            incoming = self._incoming = _IncomingSnapshot(meta, message.total_bytes)
        held = len(incoming.buffer)
        if message.offset > held:
            respond(received_bytes=held, gap=True)
            return
        end = message.offset + len(chunk)
        if end > held:
            incoming.buffer += chunk[held - message.offset :]
        if len(incoming.buffer) < incoming.total_bytes:
            respond(received_bytes=len(incoming.buffer))
            return
        self._incoming = None
        self._restore(Snapshot(meta, bytes(incoming.buffer)))
        respond(installed=True, index=meta.index)

    def _restore(self, snapshot: Snapshot) -> bool:
        meta = snapshot.meta
        if meta.index <= self._commit:
            return False
        if self._log.match_term(meta.index, meta.term):
            # Our log already holds the snapshot's last entry: only the commit moves.
            self._commit_to(meta.index)
            return False
        self._log.restore(meta)
        self._configs.reset(meta.configuration, meta.index)
        self._commit = meta.index
        self._snapshot = snapshot
        self._pending_snapshot = snapshot
        return True

    # --- plumbing --------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        self._messages.append(message)
