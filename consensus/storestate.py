"""The store's state machine: versioned objects plus the client-session table, pure.

Every replica applies the same committed entries in the same order and so reaches the
same state; nothing here reads a clock, a random source or the environment.

- Objects live in `objects[kind][id]`. A write's version is the index of its entry.
  create: absent → ok; present → exists. update: absent → not_found; expected_version
  given and different → conflict; else ok. delete: same as update, and the object goes.
- Sessions: `sessions[client] = (seq, status, version, index)` of the client's latest
  applied write. A write whose seq is at or below it is not executed again: the same seq
  gets the recorded result back (a retry), an older one gets `stale`. This is what makes
  a retried proposal apply at most once (mutant M11 switches it off). The table is part of
  the state and of the snapshot; beyond `sessions_max` clients the least recently used
  session is dropped (a client silent that long must not retry an old request).
- `chain` is a running digest of every applied write, carried in snapshots: two replicas
  at the same index hold the same chain, whatever mix of log replay and snapshot
  installs brought them there.

Commands in log entries are msgpack arrays: [op, client, seq, kind, id, data, expected].
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import msgpack

from consensus.storeapi import (
    CONFLICT,
    EXISTS,
    INVALID,
    NOT_FOUND,
    OK,
    STALE,
    Change,
    Create,
    StoredObject,
    Update,
    Write,
    WriteResult,
)
from consensus.storemutants import switches

CREATE, UPDATE, DELETE = 1, 2, 3
OP_NAMES = {CREATE: "create", UPDATE: "update", DELETE: "delete"}
SNAPSHOT_FORMAT = 1
SESSIONS_MAX = 100_000


class SnapshotFormatError(ValueError):
    """Snapshot data the store cannot read."""


def encode_write(write: Write) -> bytes:
    if isinstance(write, Create):
        fields = [CREATE, write.client, write.seq, write.kind, write.id, write.data, 0]
    elif isinstance(write, Update):
        fields = [UPDATE, write.client, write.seq, write.kind, write.id, write.data, write.expected_version]
    else:
        fields = [DELETE, write.client, write.seq, write.kind, write.id, b"", write.expected_version]
    return msgpack.packb(fields, use_bin_type=True)


def decode_write(data: bytes) -> tuple[int, str, int, str, str, bytes, int] | None:
    """The command in an entry, or None when it is not one (applied as `invalid`)."""
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=True)
    except Exception:
        return None
    if type(fields) is not list or len(fields) != 7:
        return None
    op, client, seq, kind, object_id, payload, expected = fields
    if (
        op not in OP_NAMES
        or type(client) is not str
        or type(seq) is not int
        or type(kind) is not str
        or type(object_id) is not str
        or type(payload) is not bytes
        or type(expected) is not int
    ):
        return None
    return op, client, seq, kind, object_id, payload, expected


class StoreState:
    def __init__(self, sessions_max: int = SESSIONS_MAX) -> None:
        self.sessions_max = sessions_max
        self.objects: dict[str, dict[str, StoredObject]] = {}
        self.sessions: dict[str, tuple[int, str, int, int]] = {}
        self.applied_index = 0
        self.chain = bytes(16)
        self.executed: list[tuple[str, int, int]] = []
        """(client, seq, index) of each write executed since the last `take_executed()`."""
        self.record_executed = False

    # --- reading ------------------------------------------------------------------------------

    def get(self, kind: str, object_id: str) -> StoredObject | None:
        objects = self.objects.get(kind)
        return objects.get(object_id) if objects is not None else None

    def list(self, kind: str) -> list[StoredObject]:
        objects = self.objects.get(kind, {})
        return [objects[object_id] for object_id in sorted(objects)]

    def count(self) -> int:
        return sum(len(objects) for objects in self.objects.values())

    def session(self, client: str) -> tuple[int, str, int, int] | None:
        return self.sessions.get(client)

    def cached_result(self, client: str, seq: int) -> WriteResult | None:
        """The recorded result if (client, seq) was applied already (None otherwise)."""
        if switches.M11:
            return None
        session = self.sessions.get(client)
        if session is None or session[0] != seq:
            return None
        return WriteResult(session[1], session[2], session[3])

    # --- applying ---------------------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> tuple[WriteResult, Change | None]:
        """Apply the command of the entry at `index`: its result and the change it made."""
        self.applied_index = index
        self.chain = hashlib.blake2b(
            self.chain + index.to_bytes(8, "big") + data, digest_size=16
        ).digest()
        command = decode_write(data)
        if command is None:
            return WriteResult(INVALID, 0, index), None
        op, client, seq, kind, object_id, payload, expected = command
        session = self.sessions.get(client)
        if session is not None and seq <= session[0] and not switches.M11:
            if seq == session[0]:
                return WriteResult(session[1], session[2], session[3]), None
            return WriteResult(STALE, 0, index), None
        result, change = self._execute(index, op, kind, object_id, payload, expected)
        if self.record_executed:
            self.executed.append((client, seq, index))
        sessions = self.sessions
        sessions.pop(client, None)
        sessions[client] = (seq, result.status, result.version, index)
        if len(sessions) > self.sessions_max:
            del sessions[next(iter(sessions))]
        return result, change

    def _execute(
        self, index: int, op: int, kind: str, object_id: str, payload: bytes, expected: int
    ) -> tuple[WriteResult, Change | None]:
        objects = self.objects.get(kind)
        current = objects.get(object_id) if objects is not None else None
        if op == CREATE:
            if current is not None:
                return WriteResult(EXISTS, current.version, index), None
            created = StoredObject(kind, object_id, index, index, payload)
            self.objects.setdefault(kind, {})[object_id] = created
            return WriteResult(OK, index, index), Change(index, "create", created)
        if current is None:
            return WriteResult(NOT_FOUND, 0, index), None
        if expected and current.version != expected:
            return WriteResult(CONFLICT, current.version, index), None
        assert objects is not None
        if op == UPDATE:
            updated = StoredObject(kind, object_id, index, current.created, payload)
            objects[object_id] = updated
            return WriteResult(OK, index, index), Change(index, "update", updated)
        del objects[object_id]
        if not objects:
            del self.objects[kind]
        return WriteResult(OK, current.version, index), Change(index, "delete", current)

    def take_executed(self) -> list[tuple[str, int, int]]:
        executed = self.executed
        self.executed = []
        return executed

    # --- snapshots and digests -------------------------------------------------------------------

    def _objects_sorted(self) -> Iterator[StoredObject]:
        for kind in sorted(self.objects):
            objects = self.objects[kind]
            for object_id in sorted(objects):
                yield objects[object_id]

    def snapshot(self) -> bytes:
        return msgpack.packb(
            [
                SNAPSHOT_FORMAT,
                self.applied_index,
                self.chain,
                [[o.kind, o.id, o.version, o.created, o.data] for o in self._objects_sorted()],
                [[client, *session] for client, session in self.sessions.items()],
            ],
            use_bin_type=True,
        )

    def restore(self, data: bytes) -> None:
        """Replace the whole state by a snapshot's; SnapshotFormatError leaves it unchanged."""
        try:
            fmt, applied, chain, objects, sessions = msgpack.unpackb(data, raw=False, use_list=True)
            if fmt != SNAPSHOT_FORMAT or type(applied) is not int or type(chain) is not bytes:
                raise ValueError("bad header")
            restored: dict[str, dict[str, StoredObject]] = {}
            for kind, object_id, version, created, payload in objects:
                restored.setdefault(kind, {})[object_id] = StoredObject(
                    kind, object_id, version, created, payload
                )
            restored_sessions = {
                client: (seq, status, version, index)
                for client, seq, status, version, index in sessions
            }
        except Exception as error:
            raise SnapshotFormatError(f"store snapshot does not decode: {error}") from None
        self.objects = restored
        self.sessions = restored_sessions
        self.applied_index = applied
        self.chain = chain

    def digest(self) -> str:
        """A hash of the whole state (objects and sessions), for convergence checks."""
        hasher = hashlib.sha256()
        hasher.update(
            msgpack.packb(
                [
                    [[o.kind, o.id, o.version, o.created, o.data] for o in self._objects_sorted()],
                    sorted([client, *session] for client, session in self.sessions.items()),
                ],
                use_bin_type=True,
            )
        )
        return hasher.hexdigest()
