"""An in-memory `Disk` with crash semantics, for WAL tests (the simulator has its own).

Each file keeps its current bytes (what `read` sees), its durable bytes (what survives a
crash) and the writes since its last fsync. `crash(rng)` keeps, per file, a random prefix
of those writes, may tear the next one, and forgets the rest. `replace`, `truncate` and
`remove` are durable at once, as the `Disk` contract says.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never really waits (everything here is in memory)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the coroutine tried to wait for something")


def _check(path: str) -> None:
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in path.split("/")):
        raise ValueError(f"disk path must be a relative name without '.' or '..': {path!r}")


class _File:
    __slots__ = ("current", "durable", "pending")

    def __init__(self) -> None:
        self.current = bytearray()
        self.durable: bytes | None = None
        self.pending: list[tuple[int, bytes]] = []


def _write(target: bytearray, offset: int, data: bytes) -> None:
    if offset > len(target):
        target.extend(b"\0" * (offset - len(target)))
    target[offset : offset + len(data)] = data


class CrashDisk:
    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.fsync_count = 0

    def _get(self, path: str) -> _File:
        _check(path)
        found = self.files.get(path)
        if found is None:
            raise FileNotFoundError(path)
        return found

    def _open(self, path: str) -> _File:
        _check(path)
        return self.files.setdefault(path, _File())

    async def append(self, path: str, data: bytes) -> None:
        handle = self._open(path)
        handle.pending.append((len(handle.current), bytes(data)))
        handle.current += data

    async def write_at(self, path: str, offset: int, data: bytes) -> None:
        handle = self._open(path)
        handle.pending.append((offset, bytes(data)))
        _write(handle.current, offset, data)

    async def fsync(self, path: str) -> None:
        handle = self._get(path)
        handle.durable = bytes(handle.current)
        handle.pending.clear()
        self.fsync_count += 1

    async def read(self, path: str) -> bytes:
        return bytes(self._get(path).current)

    async def size(self, path: str) -> int:
        return len(self._get(path).current)

    async def truncate(self, path: str, size: int) -> None:
        handle = self._get(path)
        del handle.current[size:]
        handle.durable = bytes(handle.current)
        handle.pending.clear()

    async def replace(self, path: str, data: bytes) -> None:
        handle = self._open(path)
        handle.current = bytearray(data)
        handle.durable = bytes(data)
        handle.pending.clear()

    async def remove(self, path: str) -> None:
        _check(path)
        self.files.pop(path, None)

    async def exists(self, path: str) -> bool:
        _check(path)
        return path in self.files

    async def list(self, directory: str = "") -> list[str]:
        prefix = f"{directory}/" if directory else ""
        return sorted(
            path[len(prefix) :]
            for path in self.files
            if path.startswith(prefix) and "/" not in path[len(prefix) :]
        )

    # --- faults ----------------------------------------------------------------------------

    def crash(self, rng: random.Random | None = None, tear: bool = True) -> None:
        """Lose unsynced writes: keep a random prefix (none without `rng`), maybe torn."""
        for path in list(self.files):
            handle = self.files[path]
            survivor = bytearray(handle.durable or b"")
            pending = handle.pending
            kept = rng.randint(0, len(pending)) if rng is not None and pending else 0
            for offset, data in pending[:kept]:
                _write(survivor, offset, data)
            if rng is not None and tear and kept < len(pending):
                offset, data = pending[kept]
                _write(survivor, offset, data[: rng.randint(0, len(data))])
            if handle.durable is None and not survivor and kept == 0:
                del self.files[path]
                continue
            handle.current = survivor
            handle.durable = bytes(survivor)
            handle.pending = []

    def flip_bit(self, path: str, bit: int) -> None:
        """Damage a file at rest: flip one bit, durably."""
        handle = self._get(path)
        byte, shift = divmod(bit, 8)
        handle.current[byte] ^= 1 << shift
        handle.durable = bytes(handle.current)
