"""The trace of a simulated run: one line per event, a digest over all of them.

A line is `<virtual time, 6 decimals> <kind> <details>`, for example

    0.004000 send n1->n3 #17 41B crc=1f0c2a9e
    0.007000 deliver n1->n3 #17
    2.500000 crash n3 incarnation=1

The digest is SHA-256 over every line, each followed by "\\n" — exactly the bytes of the
full trace file `--trace-file` writes, so `sha256sum` of that file prints the same digest.
The same seed gives the same digest in every process; the first differing line between
two runs is where determinism broke.

Memory stays bounded however long the run: lines are hashed in chunks and only the last
`ring_lines` are kept, for failure reports.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import TextIO

_CHUNK_LINES = 4096


class Trace:
    def __init__(self, ring_lines: int = 10_000, sink: TextIO | None = None) -> None:
        if ring_lines < 1:
            raise ValueError(f"ring_lines must be at least 1, got {ring_lines}")
        self._hash = hashlib.sha256()
        # Lines not yet hashed. Hot paths (the network) append formatted lines here
        # directly and the world's driver calls `flush_if_full` once per step.
        self.buffer: list[str] = []
        self._pending = self.buffer
        self._ring: deque[str] = deque(maxlen=ring_lines)
        self._sink = sink
        self._flushed_lines = 0

    def emit(self, time_seconds: float, kind: str, details: str) -> None:
        pending = self._pending
        pending.append(f"{time_seconds:.6f} {kind} {details}")
        if len(pending) >= _CHUNK_LINES:
            self._flush()

    def flush_if_full(self) -> None:
        if len(self._pending) >= _CHUNK_LINES:
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        pending.append("")
        chunk = "\n".join(pending)
        pending.pop()
        self._hash.update(chunk.encode())
        if self._sink is not None:
            self._sink.write(chunk)
        self._ring.extend(pending)
        self._flushed_lines += len(pending)
        pending.clear()

    @property
    def line_count(self) -> int:
        return self._flushed_lines + len(self._pending)

    def digest(self) -> str:
        """SHA-256 (hex) over every line emitted so far."""
        self._flush()
        return self._hash.hexdigest()

    def tail(self, lines: int) -> list[str]:
        """The last `lines` lines (at most the ring's size)."""
        self._flush()
        if lines <= 0:
            return []
        ring = self._ring
        start = max(0, len(ring) - lines)
        return [ring[index] for index in range(start, len(ring))]

    def close(self) -> None:
        self._flush()
        if self._sink is not None:
            self._sink.flush()
