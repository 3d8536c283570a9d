"""A compact wire form for Raft traffic between peers: many messages in one msgpack blob.

The runtime's codec (cattrs, strict hooks) decodes a nested message at about 20 µs per
log entry, which would cap replication at a few thousand entries per second per
follower. Raft messages are fixed shapes, so here each one is a msgpack array whose first
item names its type, and a batch of them (everything one Ready sends to one peer) is one
array, carried between peers inside a single `RaftBatch(data: bytes)` message:

    VoteRequest         [1, term, sender, to, last_index, last_term, pre_vote, transfer]
    VoteResponse        [2, term, sender, to, granted, pre_vote]
    AppendEntries       [3, term, sender, to, prev_index, prev_term, commit, entries]
                        entries: [term, index, kind, data] per entry
    AppendResponse      [4, term, sender, to, index, reject, hint_index, hint_term]
    Heartbeat           [5, term, sender, to, commit, context]
    HeartbeatResponse   [6, term, sender, to, context]
    InstallSnapshot     [7, term, sender, to, [index, term, voters, learners], offset,
                         total_bytes, chunk]
    SnapshotResponse    [8, term, sender, to, snapshot_index, snapshot_term,
                         received_bytes, gap, installed, index]
    TimeoutNow          [9, term, sender, to]
    ReadIndexRequest    [10, term, sender, to, context]
    ReadIndexResponse   [11, term, sender, to, context, index]

Decoding is as strict as the runtime codec: every field must have exactly its type (a
bool is not an int), integers are non-negative, and anything else raises `DecodeError`
(the only exception `decode_batch` raises). What a value *means* (an index beyond the
log, a term from the future) is for the core to judge when it is stepped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from consensus.messages import (
    AppendEntries,
    AppendResponse,
    Configuration,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotMeta,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from runtime.codec import DecodeError

BATCH_MESSAGES_MAX = 65536
"""A batch announcing more messages than this is rejected before any is decoded."""

_KINDS = {int(kind): kind for kind in EntryKind}


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise DecodeError(f"expected a non-negative int, got {value!r}")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise DecodeError(f"expected a str, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"expected a bool, got {type(value).__name__}")
    return value


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"expected bytes, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise DecodeError(f"expected a list, got {type(value).__name__}")
    return value


# --- encoding -------------------------------------------------------------------------------


def _encode_entries(entries: Sequence[Entry]) -> list[list[Any]]:
    return [[e.term, e.index, int(e.kind), e.data] for e in entries]


def encode_message(m: Message) -> list[Any]:
    """One Raft message as plain msgpack-able data."""
    cls = type(m)
    if cls is AppendEntries:
        assert isinstance(m, AppendEntries)
        return [3, m.term, m.sender, m.to, m.prev_index, m.prev_term, m.commit, _encode_entries(m.entries)]
    if cls is AppendResponse:
        assert isinstance(m, AppendResponse)
        return [4, m.term, m.sender, m.to, m.index, m.reject, m.hint_index, m.hint_term]
    if cls is Heartbeat:
        assert isinstance(m, Heartbeat)
        return [5, m.term, m.sender, m.to, m.commit, m.context]
    if cls is HeartbeatResponse:
        assert isinstance(m, HeartbeatResponse)
        return [6, m.term, m.sender, m.to, m.context]
    if cls is VoteRequest:
        assert isinstance(m, VoteRequest)
        return [1, m.term, m.sender, m.to, m.last_index, m.last_term, m.pre_vote, m.transfer]
    if cls is VoteResponse:
        assert isinstance(m, VoteResponse)
        return [2, m.term, m.sender, m.to, m.granted, m.pre_vote]
    if cls is InstallSnapshot:
        assert isinstance(m, InstallSnapshot)
        meta = m.meta
        configuration = meta.configuration
        return [
            7,
            m.term,
            m.sender,
            m.to,
            [meta.index, meta.term, list(configuration.voters), list(configuration.learners)],
            m.offset,
            m.total_bytes,
            m.chunk,
        ]
    if cls is SnapshotResponse:
        assert isinstance(m, SnapshotResponse)
        return [
            8,
            m.term,
            m.sender,
            m.to,
            m.snapshot_index,
            m.snapshot_term,
            m.received_bytes,
            m.gap,
            m.installed,
            m.index,
        ]
    if cls is TimeoutNow:
        return [9, m.term, m.sender, m.to]
    if cls is ReadIndexRequest:
        assert isinstance(m, ReadIndexRequest)
        return [10, m.term, m.sender, m.to, m.context]
    if cls is ReadIndexResponse:
        assert isinstance(m, ReadIndexResponse)
        return [11, m.term, m.sender, m.to, m.context, m.index]
    raise TypeError(f"{cls.__name__} is not a Raft message")


def encode_batch(messages: Sequence[Message]) -> bytes:
    """Messages (usually all for one peer) as one msgpack blob."""
    return msgpack.packb([encode_message(m) for m in messages], use_bin_type=True)


# --- decoding -------------------------------------------------------------------------------


def _decode_entries(items: Any) -> list[Entry]:
    # The hot loop of replication: the checks are inlined (a call per field costs more
    # than the check itself).
    entries = []
    append = entries.append
    kinds = _KINDS
    for item in _list(items):
        if type(item) is not list or len(item) != 4:
            raise DecodeError("an entry is [term, index, kind, data]")
        term, index, kind, data = item
        if type(term) is not int or type(index) is not int or term < 0 or index < 0:
            raise DecodeError(f"entry term and index must be non-negative ints, got {term!r}, {index!r}")
        if type(data) is not bytes:
            raise DecodeError(f"entry data must be bytes, got {type(data).__name__}")
        entry_kind = kinds.get(kind) if type(kind) is int else None
        if entry_kind is None:
            raise DecodeError(f"unknown entry kind {kind!r}")
        append(Entry(term, index, entry_kind, data))
    return entries


def _vote_request(f: list[Any]) -> Message:
    return VoteRequest(_int(f[1]), _str(f[2]), _str(f[3]), _int(f[4]), _int(f[5]), _bool(f[6]), _bool(f[7]))


def _vote_response(f: list[Any]) -> Message:
    return VoteResponse(_int(f[1]), _str(f[2]), _str(f[3]), _bool(f[4]), _bool(f[5]))


def _append(f: list[Any]) -> Message:
    return AppendEntries(
        _int(f[1]), _str(f[2]), _str(f[3]), _int(f[4]), _int(f[5]), _decode_entries(f[7]), _int(f[6])
    )


def _append_response(f: list[Any]) -> Message:
    return AppendResponse(
        _int(f[1]), _str(f[2]), _str(f[3]), _int(f[4]), _bool(f[5]), _int(f[6]), _int(f[7])
    )


def _heartbeat(f: list[Any]) -> Message:
    return Heartbeat(_int(f[1]), _str(f[2]), _str(f[3]), _int(f[4]), _bytes(f[5]))


def _heartbeat_response(f: list[Any]) -> Message:
    return HeartbeatResponse(_int(f[1]), _str(f[2]), _str(f[3]), _bytes(f[4]))


def _install_snapshot(f: list[Any]) -> Message:
    meta = _list(f[4])
    if len(meta) != 4:
        raise DecodeError("snapshot meta is [index, term, voters, learners]")
    configuration = Configuration(
        tuple(_str(v) for v in _list(meta[2])), tuple(_str(v) for v in _list(meta[3]))
    )
    return InstallSnapshot(
        _int(f[1]),
        _str(f[2]),
        _str(f[3]),
        SnapshotMeta(_int(meta[0]), _int(meta[1]), configuration),
        _int(f[5]),
        _int(f[6]),
        _bytes(f[7]),
    )


def _snapshot_response(f: list[Any]) -> Message:
    return SnapshotResponse(
        _int(f[1]),
        _str(f[2]),
        _str(f[3]),
        _int(f[4]),
        _int(f[5]),
        _int(f[6]),
        _bool(f[7]),
        _bool(f[8]),
        _int(f[9]),
    )


def _timeout_now(f: list[Any]) -> Message:
    return TimeoutNow(_int(f[1]), _str(f[2]), _str(f[3]))


def _read_request(f: list[Any]) -> Message:
    return ReadIndexRequest(_int(f[1]), _str(f[2]), _str(f[3]), _bytes(f[4]))


def _read_response(f: list[Any]) -> Message:
    return ReadIndexResponse(_int(f[1]), _str(f[2]), _str(f[3]), _bytes(f[4]), _int(f[5]))


# type code -> (field count including the code, decoder)
_DECODERS: dict[int, tuple[int, Callable[[list[Any]], Message]]] = {
    1: (8, _vote_request),
    2: (6, _vote_response),
    3: (8, _append),
    4: (8, _append_response),
    5: (6, _heartbeat),
    6: (5, _heartbeat_response),
    7: (8, _install_snapshot),
    8: (10, _snapshot_response),
    9: (4, _timeout_now),
    10: (5, _read_request),
    11: (6, _read_response),
}


def decode_message(fields: Any) -> Message:
    """The inverse of `encode_message`; raises only DecodeError."""
    if type(fields) is not list or not fields:
        raise DecodeError("a Raft message is a non-empty list")
    code = fields[0]
    found = _DECODERS.get(code) if type(code) is int else None
    if found is None:
        raise DecodeError(f"unknown Raft message type {code!r}")
    count, decoder = found
    if len(fields) != count:
        raise DecodeError(f"Raft message type {code} has {count} fields, got {len(fields)}")
    return decoder(fields)


def decode_batch(data: bytes) -> list[Message]:
    """The messages of one batch; raises only DecodeError."""
    try:
        items = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as error:
        raise DecodeError(f"malformed Raft batch: {type(error).__name__}: {error}") from None
    if type(items) is not list:
        raise DecodeError("a Raft batch is a list")
    if len(items) > BATCH_MESSAGES_MAX:
        raise DecodeError(f"a Raft batch of {len(items)} messages (at most {BATCH_MESSAGES_MAX})")
    return [decode_message(item) for item in items]
