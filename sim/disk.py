"""The simulated disk: `runtime.disk.Disk` with exact crash semantics, in memory.

Per file the store keeps the durable image (what survives a crash), the visible image
(what `read` returns: the page cache) and the writes made since the last `fsync`.

Rules (the contract in runtime/disk.py, made exact):
- `append` and `write_at` change the visible image at once and are recorded as pending;
  `fsync` makes the visible image durable and clears the pending writes.
- On a crash, for each file (in sorted order) a seeded random number of the pending
  writes survives, always a prefix in write order; with `tear_probability` the last
  surviving write is torn: only a random strict prefix of its bytes reaches the disk.
  A file that never became durable and keeps no write disappears.
- `replace`, `truncate` and `remove` are atomic and durable when they return.
- `corrupt` flips one bit of one byte of a file's durable image (bit rot), and of the
  visible image where no pending write covers that byte; checksums must catch it.
- A crash fences the node's disk handle: calls from the dead incarnation's tasks are
  cancelled (they run inside a cancelled scope) and never touch the store again.
- `fsync` yields to the scheduler, like the real one; with a configured latency it
  takes that much virtual time.
"""

from __future__ import annotations

import random

import attrs
import trio

from sim.trace import Trace


@attrs.frozen
class DiskConfig:
    fsync_latency_seconds: float = attrs.field(default=0.0)
    fsync_jitter_seconds: float = attrs.field(default=0.0)
    tear_probability: float = attrs.field(default=0.5)

    @fsync_latency_seconds.validator
    @fsync_jitter_seconds.validator
    def _check_non_negative(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 0.0:
            raise ValueError(f"{attribute.name} must be >= 0, got {value}")

    @tear_probability.validator
    def _check_probability(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{attribute.name} must be within [0, 1], got {value}")


class DiskFenced(OSError):
    """The node this disk handle belonged to has crashed."""


@attrs.define
class DiskStatistics:
    appends: int = 0
    writes: int = 0
    fsyncs: int = 0
    replaces: int = 0
    crashes: int = 0
    writes_lost: int = 0
    writes_torn: int = 0
    corruptions: int = 0


class _File:
    __slots__ = ("durable", "pending", "visible")

    def __init__(self, durable: bytes | None) -> None:
        self.durable = durable
        self.visible = bytearray(durable or b"")
        # (offset, data) for every write since the last fsync, in order.
        self.pending: list[tuple[int, bytes]] = []


def _write_into(image: bytearray, offset: int, data: bytes) -> None:
    if offset > len(image):
        image.extend(bytes(offset - len(image)))
    image[offset : offset + len(data)] = data


def check_path(path: str) -> None:
    """The same rule as the real disk: relative, '/'-separated, no '.' or '..' parts."""
    if (
        not isinstance(path, str)
        or not path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"disk path must be a relative name without '.' or '..': {path!r}")


class DiskStore:
    """A node's disk across incarnations."""

    def __init__(
        self,
        node_id: str,
        rng: random.Random,
        trace: Trace,
        config: DiskConfig | None = None,
    ) -> None:
        self.node_id = node_id
        self.random = rng
        self.trace = trace
        self.config = config if config is not None else DiskConfig()
        self.files: dict[str, _File] = {}
        self.generation = 0
        self.statistics = DiskStatistics()

    def handle(self) -> SimDisk:
        """A `Disk` for the node's current incarnation."""
        return SimDisk(self, self.generation)

    # --- faults ---------------------------------------------------------------------------

    def crash(self) -> None:
        """Lose what was not fsynced (a random prefix survives, maybe torn); fence handles."""
        self.generation += 1
        self.statistics.crashes += 1
        now = trio.current_time()
        rng = self.random
        for path in sorted(self.files):
            file = self.files[path]
            pending = file.pending
            if not pending:
                continue
            kept = rng.randint(0, len(pending))
            image = bytearray(file.durable or b"")
            torn_bytes = -1
            for index in range(kept):
                offset, data = pending[index]
                if index == kept - 1 and data and rng.random() < self.config.tear_probability:
                    torn_bytes = rng.randrange(len(data))
                    data = data[:torn_bytes]
                _write_into(image, offset, data)
            lost = len(pending) - kept
            self.statistics.writes_lost += lost
            details = f"{self.node_id} {path} kept={kept}/{len(pending)}"
            if torn_bytes >= 0:
                self.statistics.writes_torn += 1
                details += f" torn={torn_bytes}/{len(pending[kept - 1][1])}"
            if kept == 0 and file.durable is None:
                del self.files[path]
                details += " removed"
            else:
                file.durable = bytes(image)
                file.visible = image
                file.pending = []
            self.trace.emit(now, "disk-crash", details)

    def corrupt(self, path_prefix: str = "") -> tuple[str, int, int] | None:
        """Flip one bit of a durable byte in a random file under `path_prefix`."""
        candidates = [
            path
            for path in sorted(self.files)
            if path.startswith(path_prefix) and self.files[path].durable
        ]
        now = trio.current_time()
        if not candidates:
            self.trace.emit(now, "corrupt", f"{self.node_id} prefix={path_prefix!r} no-file")
            return None
        path = self.random.choice(candidates)
        file = self.files[path]
        durable = file.durable
        assert durable is not None
        offset = self.random.randrange(len(durable))
        bit = self.random.randrange(8)
        flipped = bytearray(durable)
        flipped[offset] ^= 1 << bit
        file.durable = bytes(flipped)
        covered = any(start <= offset < start + len(data) for start, data in file.pending)
        if not covered and offset < len(file.visible):
            file.visible[offset] ^= 1 << bit
        self.statistics.corruptions += 1
        self.trace.emit(now, "corrupt", f"{self.node_id} {path} offset={offset} bit={bit}")
        return path, offset, bit


class SimDisk:
    """The `runtime.disk.Disk` one incarnation of a node sees."""

    def __init__(self, store: DiskStore, generation: int) -> None:
        self._store = store
        self._generation = generation

    async def _live(self) -> DiskStore:
        store = self._store
        if store.generation != self._generation:
            # The node crashed: its tasks run in a cancelled scope, so this raises
            # Cancelled; a shielded caller gets an error instead of touching the disk.
            await trio.lowlevel.checkpoint()
            raise DiskFenced(f"node {store.node_id} crashed; its disk handle is dead")
        return store

    def _existing(self, store: DiskStore, path: str) -> _File:
        check_path(path)
        file = store.files.get(path)
        if file is None:
            raise FileNotFoundError(f"{store.node_id}: no file {path!r}")
        return file

    def _file(self, store: DiskStore, path: str) -> _File:
        check_path(path)
        file = store.files.get(path)
        if file is None:
            file = store.files[path] = _File(None)
        return file

    async def append(self, path: str, data: bytes) -> None:
        store = await self._live()
        data = bytes(data)
        file = self._file(store, path)
        file.pending.append((len(file.visible), data))
        file.visible += data
        store.statistics.appends += 1

    async def write_at(self, path: str, offset: int, data: bytes) -> None:
        store = await self._live()
        if offset < 0:
            raise ValueError(f"write offset must be >= 0, got {offset}")
        data = bytes(data)
        file = self._file(store, path)
        file.pending.append((offset, data))
        _write_into(file.visible, offset, data)
        store.statistics.writes += 1

    async def fsync(self, path: str) -> None:
        store = await self._live()
        self._existing(store, path)
        config = store.config
        delay = config.fsync_latency_seconds
        if config.fsync_jitter_seconds:
            delay += store.random.uniform(0.0, config.fsync_jitter_seconds)
        if delay > 0.0:
            await trio.sleep(delay)
        else:
            await trio.lowlevel.checkpoint()
        store = await self._live()
        file = store.files.get(path)
        if file is None:
            raise FileNotFoundError(f"{store.node_id}: no file {path!r}")
        file.durable = bytes(file.visible)
        file.pending = []
        store.statistics.fsyncs += 1
        store.trace.emit(
            trio.current_time(), "fsync", f"{store.node_id} {path} {len(file.durable)}B"
        )

    async def read(self, path: str) -> bytes:
        store = await self._live()
        return bytes(self._existing(store, path).visible)

    async def size(self, path: str) -> int:
        store = await self._live()
        return len(self._existing(store, path).visible)

    async def truncate(self, path: str, size: int) -> None:
        store = await self._live()
        if size < 0:
            raise ValueError(f"truncate size must be >= 0, got {size}")
        file = self._existing(store, path)
        visible = file.visible
        if size <= len(visible):
            del visible[size:]
        else:
            visible.extend(bytes(size - len(visible)))
        file.durable = bytes(visible)
        file.pending = []
        store.trace.emit(trio.current_time(), "truncate", f"{store.node_id} {path} {size}B")

    async def replace(self, path: str, data: bytes) -> None:
        store = await self._live()
        check_path(path)
        data = bytes(data)
        file = _File(data)
        store.files[path] = file
        store.statistics.replaces += 1
        store.trace.emit(trio.current_time(), "replace", f"{store.node_id} {path} {len(data)}B")

    async def remove(self, path: str) -> None:
        store = await self._live()
        check_path(path)
        if store.files.pop(path, None) is not None:
            store.trace.emit(trio.current_time(), "remove", f"{store.node_id} {path}")

    async def exists(self, path: str) -> bool:
        store = await self._live()
        check_path(path)
        return path in store.files

    async def list(self, directory: str = "") -> list[str]:
        store = await self._live()
        if directory:
            check_path(directory)
            prefix = directory + "/"
        else:
            prefix = ""
        names = []
        for path in store.files:
            if path.startswith(prefix):
                rest = path[len(prefix) :]
                if "/" not in rest:
                    names.append(rest)
        return sorted(names)
