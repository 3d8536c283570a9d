"""Length-prefixed frames on a byte stream.

A frame is a 4-byte big-endian length followed by that many bytes. The length is
checked against `frame_bytes_max` before anything is allocated for the body, so a peer
cannot make us reserve gigabytes by sending a large header.
"""

from __future__ import annotations

import struct

frame_bytes_max_default = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")
HEADER_BYTES = _HEADER.size


class FrameTooLarge(ValueError):
    """A frame header announced more bytes than allowed."""


def frame(payload: bytes, frame_bytes_max: int = frame_bytes_max_default) -> bytes:
    if len(payload) > frame_bytes_max:
        raise FrameTooLarge(f"frame of {len(payload)} bytes exceeds {frame_bytes_max}")
    return _HEADER.pack(len(payload)) + payload


def frames(payloads: list[bytes]) -> bytes:
    """Several frames joined, for one write."""
    parts = []
    for payload in payloads:
        parts.append(_HEADER.pack(len(payload)))
        parts.append(payload)
    return b"".join(parts)


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, take whole frames out."""

    def __init__(self, frame_bytes_max: int = frame_bytes_max_default) -> None:
        self.frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._offset = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the frames now complete. Raises FrameTooLarge."""
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        offset = self._offset
        end = len(buffer)
        while end - offset >= HEADER_BYTES:
            (length,) = _HEADER.unpack_from(buffer, offset)
            if length > self.frame_bytes_max:
                raise FrameTooLarge(f"peer announced a frame of {length} bytes (max {self.frame_bytes_max})")
            if end - offset - HEADER_BYTES < length:
                break
            start = offset + HEADER_BYTES
            out.append(bytes(buffer[start : start + length]))
            offset = start + length
        if offset == end:
            buffer.clear()
            offset = 0
        elif offset > 65536:
            del buffer[:offset]
            offset = 0
        self._offset = offset
        return out

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer) - self._offset
