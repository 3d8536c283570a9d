"""The data Raft passes around: log entries, configurations, snapshots and the wire messages.

Every wire type is a frozen attrs class registered with `runtime.codec.message("raft.<name>")`,
so it travels through the strict msgpack codec unchanged. Field types stay within what the
codec round-trips exactly (int, str, bytes, bool, tuple, list, Enum, nested messages), and
the classes carry no validators: a message from a peer is checked by the core when it is
stepped (a malformed one is dropped and counted), never at construction.

Conventions: node ids are strings, "" means "nobody" (no vote, no leader); index 0 and term 0
are the empty log's sentinel; every message names its `sender` and its recipient `to`.
"""

from __future__ import annotations

import enum

import attrs

from runtime.codec import message


class EntryKind(enum.IntEnum):
    NORMAL = 0
    """Application data, handed to the state machine when committed."""
    CONFIGURATION = 1
    """`data` is an encoded `Configuration`: the membership in force from this entry on."""
    NOOP = 2
    """The empty entry a new leader appends; the state machine skips it."""


@message("raft.entry")
@attrs.frozen
class Entry:
    term: int
    index: int
    kind: EntryKind
    data: bytes


@message("raft.configuration")
@attrs.frozen
class Configuration:
    """Who votes and who only replicates. Both tuples are kept sorted by the core."""

    voters: tuple[str, ...] = ()
    learners: tuple[str, ...] = ()

    def members(self) -> tuple[str, ...]:
        return self.voters + self.learners

    def is_voter(self, node: str) -> bool:
        return node in self.voters

    def contains(self, node: str) -> bool:
        return node in self.voters or node in self.learners

    def quorum(self) -> int:
        """Votes (or acknowledgements) needed among the voters: a strict majority."""
        return len(self.voters) // 2 + 1


class ConfChangeKind(enum.Enum):
    ADD_LEARNER = "add_learner"
    PROMOTE = "promote"
    REMOVE = "remove"


@message("raft.conf_change")
@attrs.frozen
class ConfChange:
    """One membership step: add a learner, promote a caught-up learner, or remove a node."""

    kind: ConfChangeKind
    node: str


@message("raft.hard_state")
@attrs.frozen
class HardState:
    """What must be durable before any message of the same Ready leaves the node."""

    term: int = 0
    vote: str = ""
    commit: int = 0


@message("raft.snapshot_meta")
@attrs.frozen
class SnapshotMeta:
    """The log position a snapshot replaces, and the membership in force there."""

    index: int = 0
    term: int = 0
    configuration: Configuration = Configuration()


@message("raft.snapshot")
@attrs.frozen
class Snapshot:
    meta: SnapshotMeta
    data: bytes


# --- wire messages --------------------------------------------------------------------------


@message("raft.vote_request")
@attrs.frozen
class VoteRequest:
    """RequestVote; with `pre_vote` it asks "would you vote for me at `term`?" and changes nothing.

    `transfer` marks a campaign started by TimeoutNow: voters ignore their leader lease for it.
    """

    term: int
    sender: str
    to: str
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False


@message("raft.vote_response")
@attrs.frozen
class VoteResponse:
    term: int
    sender: str
    to: str
    granted: bool
    pre_vote: bool = False


@message("raft.append_entries")
@attrs.frozen
class AppendEntries:
    term: int
    sender: str
    to: str
    prev_index: int
    prev_term: int
    entries: list[Entry]
    commit: int


@message("raft.append_response")
@attrs.frozen
class AppendResponse:
    """Success: `index` is the last index now known to match the leader.

    Rejection: `index` is the rejected `prev_index`; the hint lets the leader skip back a
    whole term at a time. `hint_term` 0 means "my log ends before that": `hint_index` is then
    my last index + 1. Otherwise `hint_term` is my term at `prev_index` and `hint_index` the
    first index I hold with that term.
    """

    term: int
    sender: str
    to: str
    index: int
    reject: bool = False
    hint_index: int = 0
    hint_term: int = 0


@message("raft.heartbeat")
@attrs.frozen
class Heartbeat:
    """Leader liveness; `commit` is capped at the follower's match. `context` tags a ReadIndex round."""

    term: int
    sender: str
    to: str
    commit: int
    context: bytes = b""


@message("raft.heartbeat_response")
@attrs.frozen
class HeartbeatResponse:
    term: int
    sender: str
    to: str
    context: bytes = b""


@message("raft.install_snapshot")
@attrs.frozen
class InstallSnapshot:
    """One chunk of a snapshot: bytes [offset, offset + len(chunk)) of `total_bytes`."""

    term: int
    sender: str
    to: str
    meta: SnapshotMeta
    offset: int
    total_bytes: int
    chunk: bytes


@message("raft.snapshot_response")
@attrs.frozen
class SnapshotResponse:
    """Progress of a snapshot transfer.

    `received_bytes` is the contiguous prefix the follower holds of the snapshot at
    (`snapshot_index`, `snapshot_term`); `gap` says a chunk arrived beyond it, so the leader
    resends from there. `installed` says the follower now matches the leader up to `index`.
    """

    term: int
    sender: str
    to: str
    snapshot_index: int
    snapshot_term: int
    received_bytes: int = 0
    gap: bool = False
    installed: bool = False
    index: int = 0


@message("raft.timeout_now")
@attrs.frozen
class TimeoutNow:
    """Leadership transfer: campaign at once, skipping PreVote."""

    term: int
    sender: str
    to: str


@message("raft.read_index_request")
@attrs.frozen
class ReadIndexRequest:
    """A follower forwards a linearizable read to its leader. Terms do not apply to it."""

    term: int
    sender: str
    to: str
    context: bytes


@message("raft.read_index_response")
@attrs.frozen
class ReadIndexResponse:
    """The leader's confirmed read index for `context`: serve the read once applied ≥ `index`."""

    term: int
    sender: str
    to: str
    context: bytes
    index: int


Message = (
    VoteRequest
    | VoteResponse
    | AppendEntries
    | AppendResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | SnapshotResponse
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)
"""Everything one Raft node sends another."""

MESSAGE_TYPES: tuple[type, ...] = (
    VoteRequest,
    VoteResponse,
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    SnapshotResponse,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
)


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@attrs.frozen
class ReadState:
    """A linearizable read may be served once the state machine has applied `index`."""

    context: bytes
    index: int


@attrs.frozen
class SoftState:
    """Volatile state worth telling the driver about when it changes."""

    role: Role
    leader: str


@attrs.frozen
class Ready:
    """One batch of work for the driver. Handle it in this order, then call `advance(ready)`:

    1. if `snapshot`: save it durably and restore the state machine from `snapshot.data`;
    2. append `entries` (the first may overwrite a suffix of the stored log) and save
       `hard_state` when present; fsync when `must_sync`;
    3. only then send `messages`;
    4. apply `committed_entries` in order; serve each `read_states` entry once the state
       machine has applied its index.
    """

    hard_state: HardState | None
    entries: list[Entry]
    snapshot: Snapshot | None
    messages: list[Message]
    committed_entries: list[Entry]
    read_states: list[ReadState]
    soft_state: SoftState | None
    must_sync: bool


@attrs.frozen
class ProposalReceipt:
    """Where proposed entries went: indexes [first_index, last_index] at `term`.

    The proposal succeeded if the entry applied at each index carries this term; an entry
    with another term there means the proposal was lost to a leader change.
    """

    term: int
    first_index: int
    last_index: int


@attrs.frozen
class PersistedState:
    """What a node reloads on restart: the last hard state, snapshot and the log after it."""

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: list[Entry] = attrs.field(factory=list)
