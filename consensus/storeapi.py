"""The replicated store's messages: what clients send the `raft` actor and what it answers.

Objects are versioned and addressed by (kind, id). A version is the Raft index of the
entry that last wrote the object, so versions only grow, across deletes and re-creates.

Writes carry a client request id, (client, seq): a client sends one write at a time with
seq 1, 2, 3, ... and retries a write whose outcome it does not know with the *same* seq;
the store applies each (client, seq) at most once and answers a retry with the result of
the first application.

    Create(client, seq, kind, id, data)                     -> WriteResult
    Update(client, seq, kind, id, data, expected_version)   -> WriteResult   (0: any version)
    Delete(client, seq, kind, id, expected_version)         -> WriteResult   (0: any version)
    WriteBatch(writes)                                      -> WriteBatchResult
    Get(kind, id)                                           -> ReadResult    (linearizable)
    List(kind)                                              -> ListResult    (linearizable)
    Watch(kind, from_index, inbox)                          -> WatchStarted, then
                                                               WatchEvents ... to the inbox
    Unwatch(watch_id)                                       -> WatchCancelled

A node that is not the leader answers writes with `Redirect(leader)` (nothing done); any
node serves reads (ReadIndex through the leader). `Retry(reason, maybe_applied)` asks the
client to try again with the same request id.
"""

from __future__ import annotations

import attrs

from consensus.peer import Redirect, Retry
from runtime.actor import Ref
from runtime.codec import message

KIND_CHARACTERS_MAX = 64
ID_CHARACTERS_MAX = 256
CLIENT_CHARACTERS_MAX = 128
DATA_BYTES_MAX = 1 << 20
BATCH_WRITES_MAX = 4096

# WriteResult.status values
OK = "ok"
NOT_FOUND = "not_found"
EXISTS = "exists"
CONFLICT = "conflict"
STALE = "stale"
"""A request older than the client's latest applied one: it was not applied."""
INVALID = "invalid"
"""A committed entry the state machine could not decode (never proposed by a correct leader)."""


@message("store.object")
@attrs.frozen
class StoredObject:
    kind: str
    id: str
    version: int
    """The Raft index of the write that produced this content."""
    created: int
    """The Raft index of the create."""
    data: bytes


@message("store.create")
@attrs.frozen
class Create:
    client: str
    seq: int
    kind: str
    id: str
    data: bytes


@message("store.update")
@attrs.frozen
class Update:
    client: str
    seq: int
    kind: str
    id: str
    data: bytes
    expected_version: int = 0
    """Compare-and-set: apply only if the object is at this version (0: any version)."""


@message("store.delete")
@attrs.frozen
class Delete:
    client: str
    seq: int
    kind: str
    id: str
    expected_version: int = 0


Write = Create | Update | Delete


@message("store.write_result")
@attrs.frozen
class WriteResult:
    """ok: `version` is the object's new version (the write's index; for a delete, the
    deleted version). not_found / exists / conflict: nothing changed, `version` is the
    object's current version (0 when absent). `index` is where the write was applied."""

    status: str
    version: int
    index: int


@message("store.write_batch")
@attrs.frozen
class WriteBatch:
    """Several writes (of different clients) in one message; answered all at once."""

    writes: list[Create | Update | Delete]


@message("store.write_batch_result")
@attrs.frozen
class WriteBatchResult:
    results: list[WriteResult | Redirect | Retry]


@message("store.get")
@attrs.frozen
class Get:
    kind: str
    id: str


@message("store.read_result")
@attrs.frozen
class ReadResult:
    object: StoredObject | None
    index: int
    """The node had applied at least this index when it served the read."""


@message("store.list")
@attrs.frozen
class List:
    kind: str


@message("store.list_result")
@attrs.frozen
class ListResult:
    objects: list[StoredObject]
    index: int


@message("store.change")
@attrs.frozen
class Change:
    """One applied write: `object` is the new content (for a delete, the deleted one)."""

    index: int
    op: str
    object: StoredObject


@message("store.watch")
@attrs.frozen
class Watch:
    """Stream every change of `kind` ("" for all kinds) applied at index ≥ `from_index`
    to `inbox` (0: from the next change on)."""

    kind: str
    from_index: int
    inbox: Ref


@message("store.watch_started")
@attrs.frozen
class WatchStarted:
    watch_id: int
    index: int
    """Changes up to this index that matched were sent before this answer."""


@message("store.watch_events")
@attrs.frozen
class WatchEvents:
    watch_id: int
    changes: list[Change]


@message("store.unwatch")
@attrs.frozen
class Unwatch:
    watch_id: int


@message("store.watch_cancelled")
@attrs.frozen
class WatchCancelled:
    watch_id: int
    reason: str


def check_write(write: Write) -> str:
    """"" when the write is well formed, else what is wrong with it."""
    if not isinstance(write, (Create, Update, Delete)):
        return f"{type(write).__name__} is not a write"
    if not write.client or len(write.client) > CLIENT_CHARACTERS_MAX:
        return f"client id must be 1..{CLIENT_CHARACTERS_MAX} characters"
    if write.seq < 1:
        return f"seq must be >= 1, got {write.seq}"
    problem = check_key(write.kind, write.id)
    if problem:
        return problem
    if isinstance(write, (Create, Update)) and len(write.data) > DATA_BYTES_MAX:
        return f"data of {len(write.data)} bytes is over the limit of {DATA_BYTES_MAX}"
    if isinstance(write, (Update, Delete)) and write.expected_version < 0:
        return f"expected_version must be >= 0, got {write.expected_version}"
    return ""


def check_key(kind: str, object_id: str) -> str:
    if not kind or len(kind) > KIND_CHARACTERS_MAX:
        return f"kind must be 1..{KIND_CHARACTERS_MAX} characters, got {kind!r}"
    if not object_id or len(object_id) > ID_CHARACTERS_MAX:
        return f"id must be 1..{ID_CHARACTERS_MAX} characters, got {object_id!r}"
    return ""
