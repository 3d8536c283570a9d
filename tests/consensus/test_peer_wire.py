"""The peers' compact wire form: every Raft message round-trips; garbage is a DecodeError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.messages import (
    AppendEntries,
    AppendResponse,
    Configuration,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotMeta,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from consensus.wire import BATCH_MESSAGES_MAX, decode_batch, encode_batch, encode_message
from runtime.codec import DecodeError

counts = st.integers(min_value=0, max_value=2**63 - 1)
names = st.text(min_size=0, max_size=8)
blobs = st.binary(max_size=64)
flags = st.booleans()

entries = st.builds(Entry, counts, counts, st.sampled_from(list(EntryKind)), blobs)
configurations = st.builds(
    Configuration, st.lists(names, max_size=4).map(tuple), st.lists(names, max_size=3).map(tuple)
)
metas = st.builds(SnapshotMeta, counts, counts, configurations)

raft_messages = st.one_of(
    st.builds(VoteRequest, counts, names, names, counts, counts, flags, flags),
    st.builds(VoteResponse, counts, names, names, flags, flags),
    st.builds(AppendEntries, counts, names, names, counts, counts, st.lists(entries, max_size=5), counts),
    st.builds(AppendResponse, counts, names, names, counts, flags, counts, counts),
    st.builds(Heartbeat, counts, names, names, counts, blobs),
    st.builds(HeartbeatResponse, counts, names, names, blobs),
    st.builds(InstallSnapshot, counts, names, names, metas, counts, counts, blobs),
    st.builds(SnapshotResponse, counts, names, names, counts, counts, counts, flags, flags, counts),
    st.builds(TimeoutNow, counts, names, names),
    st.builds(ReadIndexRequest, counts, names, names, blobs),
    st.builds(ReadIndexResponse, counts, names, names, blobs, counts),
)


@given(st.lists(raft_messages, max_size=6))
def test_every_message_round_trips(messages: list) -> None:
    assert decode_batch(encode_batch(messages)) == messages


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        decode_batch(data)
    except DecodeError:
        pass


def _mutations(fields: list) -> list[list]:
    """Near misses of a valid message: each field replaced by a value of another type."""
    wrong = [True, -1, "x", b"x", [], None, 1.5]
    out = []
    for position in range(1, len(fields)):
        for value in wrong:
            if type(value) is type(fields[position]) and value == fields[position]:
                continue
            changed = list(fields)
            changed[position] = value
            out.append(changed)
    out.append(fields[:-1])
    out.append([*fields, 0])
    return out


@given(raft_messages)
def test_near_miss_structures_are_rejected(message: object) -> None:
    fields = encode_message(message)  # type: ignore[arg-type]
    for changed in _mutations(fields):
        if changed == fields:
            continue
        data = msgpack.packb([changed], use_bin_type=True)
        try:
            decoded = decode_batch(data)
        except DecodeError:
            continue
        # A change the decoder accepts must still describe a well-typed message
        # (e.g. an empty list where entries go): re-encoding gives the same fields.
        assert encode_message(decoded[0]) == changed


def test_bools_are_not_ints_and_negatives_are_refused() -> None:
    good = encode_message(Heartbeat(1, "a", "b", 2, b""))
    assert decode_batch(msgpack.packb([good])) == [Heartbeat(1, "a", "b", 2, b"")]
    for bad in ([5, True, "a", "b", 2, b""], [5, 1, "a", "b", -2, b""], [5, 1, "a", "b", 2, "ctx"]):
        with pytest.raises(DecodeError):
            decode_batch(msgpack.packb([bad], use_bin_type=True))


def test_entry_shape_and_kind_are_checked() -> None:
    for entry in ([1, 2, 0], [1, 2, 9, b""], [1, 2, 0, "text"], [1, -2, 0, b""], "entry"):
        with pytest.raises(DecodeError, match="entry|kind|list"):
            decode_batch(msgpack.packb([[3, 1, "a", "b", 0, 0, 0, [entry]]], use_bin_type=True))


def test_oversized_batches_and_unknown_types_are_refused() -> None:
    with pytest.raises(DecodeError, match="at most"):
        decode_batch(msgpack.packb([[9, 1, "a", "b"]] * (BATCH_MESSAGES_MAX + 1)))
    with pytest.raises(DecodeError, match="unknown Raft message type 42"):
        decode_batch(msgpack.packb([[42, 1, "a", "b"]]))
    with pytest.raises(DecodeError, match="a Raft batch is a list"):
        decode_batch(msgpack.packb({"a": 1}))
    with pytest.raises(TypeError, match="not a Raft message"):
        encode_batch([object()])  # type: ignore[list-item]
