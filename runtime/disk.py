"""The durable disk a node's actors write to.

Paths are relative, '/'-separated names under the node's data directory; an actor never
sees an absolute path. The contract, which the simulated disk in sim/ models exactly:

- `append` and `write_at` make data visible to `read` at once but not durable: a crash
  may drop any suffix of the writes made since the last `fsync` of that file, and may
  tear the last one.
- `fsync` makes every earlier write to that file durable.
- `replace` is atomic and durable: after it returns, a crash leaves the new contents;
  a crash during it leaves either the old or the new contents, never a mix.
- `list` returns names in sorted order, so callers never depend on directory order.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import trio


class Disk(Protocol):
    async def append(self, path: str, data: bytes) -> None: ...

    async def write_at(self, path: str, offset: int, data: bytes) -> None: ...

    async def fsync(self, path: str) -> None: ...

    async def read(self, path: str) -> bytes:
        """The file's contents; FileNotFoundError when absent."""
        ...

    async def size(self, path: str) -> int: ...

    async def truncate(self, path: str, size: int) -> None:
        """Cut the file to `size` bytes, durably."""
        ...

    async def replace(self, path: str, data: bytes) -> None: ...

    async def remove(self, path: str) -> None:
        """Remove a file, durably; no error when it is absent."""
        ...

    async def exists(self, path: str) -> bool: ...

    async def list(self, directory: str = "") -> list[str]:
        """Names of the files directly in `directory` (sorted); [] when it is absent."""
        ...


def _check_relative(path: str) -> None:
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in path.split("/")):
        raise ValueError(f"disk path must be a relative name without '.' or '..': {path!r}")


class RealDisk:
    """`Disk` on a directory of the host. Blocking calls run in worker threads."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, path: str) -> Path:
        _check_relative(path)
        return self.root / path

    def _ensure_parent(self, target: Path) -> None:
        if not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_directory(target.parent.parent)

    async def append(self, path: str, data: bytes) -> None:
        target = self._path(path)
        self._ensure_parent(target)
        with open(target, "ab") as handle:
            handle.write(data)

    async def write_at(self, path: str, offset: int, data: bytes) -> None:
        target = self._path(path)
        self._ensure_parent(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    async def fsync(self, path: str) -> None:
        target = self._path(path)

        def sync() -> None:
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)

        await trio.to_thread.run_sync(sync)

    async def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    async def size(self, path: str) -> int:
        return self._path(path).stat().st_size

    async def truncate(self, path: str, size: int) -> None:
        target = self._path(path)

        def cut() -> None:
            fd = os.open(target, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)

        await trio.to_thread.run_sync(cut)

    async def replace(self, path: str, data: bytes) -> None:
        target = self._path(path)
        self._ensure_parent(target)
        await trio.to_thread.run_sync(atomic_write, target, data)

    async def remove(self, path: str) -> None:
        target = self._path(path)
        try:
            target.unlink()
        except FileNotFoundError:
            return
        _fsync_directory(target.parent)

    async def exists(self, path: str) -> bool:
        return self._path(path).exists()

    async def list(self, directory: str = "") -> list[str]:
        if directory:
            _check_relative(directory)
        base = self.root / directory if directory else self.root
        try:
            return sorted(entry.name for entry in base.iterdir() if entry.is_file())
        except FileNotFoundError:
            return []


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `target` so that a crash leaves the old or the new file, durably.

    The one helper every package uses for metadata: temp file in the same directory,
    fsync, rename over the target, fsync the directory.
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
    _fsync_directory(target.parent)
