"""Byte-stream helpers of attach, exec and logs: Docker's framing and detach keys.

Non-TTY output is multiplexed: each frame is an 8-byte header `[stream, 0, 0, 0,
size (uint32 big-endian)]` and `size` bytes (stream 1 stdout, 2 stderr). TTY output is raw.

Detach keys (`--detach-keys`, default ctrl-p,ctrl-q) end an attach to a TTY container
without stopping it. The sequence is matched in the client's input across chunk boundaries;
bytes that start the sequence are held back until it is clear whether it completes, and
forwarded if it does not.
"""

from __future__ import annotations

import struct

from actors.errdefs import InvalidParameter

STDOUT = 1
STDERR = 2
SYSTEM_ERROR = 3
FRAME_PAYLOAD_BYTES_MAX = 32 * 1024
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"

_HEADER = struct.Struct(">BxxxI")


def frame(stream: int, data: bytes) -> bytes:
    """`data` as multiplexed frames (split so that no frame exceeds 32 KiB)."""
    if len(data) <= FRAME_PAYLOAD_BYTES_MAX:
        return _HEADER.pack(stream, len(data)) + data
    pieces = []
    for offset in range(0, len(data), FRAME_PAYLOAD_BYTES_MAX):
        piece = data[offset : offset + FRAME_PAYLOAD_BYTES_MAX]
        pieces.append(_HEADER.pack(stream, len(piece)) + piece)
    return b"".join(pieces)


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Complete frames of a multiplexed stream (for tests and clients)."""
    frames = []
    offset = 0
    while offset + 8 <= len(data):
        stream, size = _HEADER.unpack_from(data, offset)
        if offset + 8 + size > len(data):
            break
        frames.append((stream, data[offset + 8 : offset + 8 + size]))
        offset += 8 + size
    return frames


def content_type(tty: bool, multiplexed_media_type: bool) -> str:
    """The attach/exec/logs media type: raw for TTY, multiplexed (API >= 1.42) otherwise."""
    return MULTIPLEXED_STREAM if not tty and multiplexed_media_type else RAW_STREAM


def parse_detach_keys(text: str) -> bytes:
    """Docker's detach-key syntax: comma-separated `ctrl-<x>` or single characters."""
    if not text:
        return DEFAULT_DETACH_KEYS
    result = bytearray()
    for part in text.split(","):
        if len(part) == 1:
            result.append(ord(part))
            continue
        lowered = part.lower()
        if lowered.startswith("ctrl-") and len(part) == 6:
            key = part[5]
            if "a" <= key.lower() <= "z":
                result.append(ord(key.lower()) - ord("a") + 1)
                continue
            specials = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if key in specials:
                result.append(specials[key])
                continue
        raise InvalidParameter(f"Invalid detach keys ({text}) provided")
    if not result:
        raise InvalidParameter(f"Invalid detach keys ({text}) provided")
    return bytes(result)


class DetachDetector:
    """Finds the detach sequence in a byte stream split into arbitrary chunks."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, whether the sequence was completed). After a detach the
        remaining input is dropped."""
        if not self.keys:
            return data, False
        out = bytearray()
        buffer = self._held + data
        self._held = b""
        index = 0
        while index < len(buffer):
            position = buffer.find(self.keys[0], index)
            if position < 0:
                out += buffer[index:]
                return bytes(out), False
            out += buffer[index:position]
            candidate = buffer[position : position + len(self.keys)]
            if candidate == self.keys:
                return bytes(out), True
            if self.keys.startswith(candidate):
                # A possible start of the sequence at the end of the input: hold it.
                self._held = candidate
                return bytes(out), False
            out.append(buffer[position])
            index = position + 1
        return bytes(out), False

    def flush(self) -> bytes:
        """Bytes held back at end of input (they were not a detach after all)."""
        held, self._held = self._held, b""
        return held
