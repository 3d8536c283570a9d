"""CRC-framed records, the unit of everything Raft writes to disk.

    offset  size  field
    0       4     payload length (little-endian u32, ≥ 1)
    4       4     CRC-32 (zlib polynomial) of the type byte followed by the payload
    8       1     record type
    9       n     payload (msgpack)

A reader walks records from the start of a file; the first record that is short, has an
impossible length, an unknown type or a CRC mismatch ends the valid prefix. Whether the
rest is a torn tail (cut it) or corruption in the middle (refuse) is decided by looking
for any valid record after it: a torn write leaves none, a flipped bit in an old record
leaves the later ones intact.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import attrs

HEADER = struct.Struct("<IIB")
HEADER_BYTES = HEADER.size
RECORD_BYTES_MAX = 1 << 30
"""No record is larger: a length field above this is damage, not data."""


@attrs.frozen
class Record:
    type: int
    payload: bytes
    offset: int
    end: int


@attrs.frozen
class BadRecord:
    offset: int
    reason: str


def frame(record_type: int, payload: bytes) -> bytes:
    if not payload:
        raise ValueError("a record payload cannot be empty")
    checksum = zlib.crc32(payload, zlib.crc32(bytes((record_type,))))
    return HEADER.pack(len(payload), checksum, record_type) + payload


def _read_at(data: bytes | memoryview, offset: int, valid_types: frozenset[int]) -> Record | BadRecord:
    remaining = len(data) - offset
    if remaining < HEADER_BYTES:
        return BadRecord(offset, f"{remaining} bytes left, shorter than a record header")
    length, checksum, record_type = HEADER.unpack_from(data, offset)
    if length == 0 or length > RECORD_BYTES_MAX:
        return BadRecord(offset, f"impossible record length {length}")
    if record_type not in valid_types:
        return BadRecord(offset, f"unknown record type {record_type}")
    start = offset + HEADER_BYTES
    end = start + length
    if end > len(data):
        return BadRecord(offset, f"record of {length} bytes runs past the end of the file")
    payload = bytes(data[start:end])
    if zlib.crc32(payload, zlib.crc32(bytes((record_type,)))) != checksum:
        return BadRecord(offset, "CRC mismatch")
    return Record(record_type, payload, offset, end)


def scan(data: bytes, valid_types: frozenset[int]) -> tuple[list[Record], BadRecord | None]:
    """The valid records from the start of `data`, and the first bad one if any."""
    records: list[Record] = []
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        found = _read_at(view, offset, valid_types)
        if isinstance(found, BadRecord):
            return records, found
        records.append(found)
        offset = found.end
    return records, None


def _candidates(data: bytes, bad: BadRecord) -> Iterator[int]:
    """Offsets after a bad record where a later valid record could start."""
    if len(data) - bad.offset >= HEADER_BYTES:
        length = HEADER.unpack_from(data, bad.offset)[0]
        skip = bad.offset + HEADER_BYTES + length
        if 0 < length <= RECORD_BYTES_MAX and skip < len(data):
            yield skip
    yield from range(bad.offset + 1, len(data) - HEADER_BYTES + 1)


def valid_record_after(data: bytes, bad: BadRecord, valid_types: frozenset[int]) -> int | None:
    """The offset of some valid record past `bad`, or None (then `bad` starts a torn tail)."""
    view = memoryview(data)
    for offset in _candidates(data, bad):
        if isinstance(_read_at(view, offset, valid_types), Record):
            return offset
    return None
