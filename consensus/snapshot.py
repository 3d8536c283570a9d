"""Snapshot files: one CRC-framed record per file, written with `Disk.replace`.

A snapshot lives in `<directory>/<index:016x>-<term:016x>.snap` as a single SNAPSHOT_FILE
record whose payload is [index, term, voters, learners, data]. `Disk.replace` makes the
write atomic and durable, so a file is either whole or absent; a file that fails its CRC
was damaged at rest and is reported, never used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack

from consensus.messages import Configuration, Snapshot, SnapshotMeta
from consensus.records import frame, scan

if TYPE_CHECKING:
    from runtime.disk import Disk  # the protocol only: consensus/ does no I/O itself

SNAPSHOT_FILE = 16
SNAPSHOT_SUFFIX = ".snap"


class SnapshotCorruption(Exception):
    """A snapshot file is missing, damaged or not the snapshot its name says."""


def snapshot_name(index: int, term: int) -> str:
    return f"{index:016x}-{term:016x}{SNAPSHOT_SUFFIX}"


def encode_snapshot(snapshot: Snapshot) -> bytes:
    meta = snapshot.meta
    configuration = meta.configuration
    payload = msgpack.packb(
        [
            meta.index,
            meta.term,
            list(configuration.voters),
            list(configuration.learners),
            snapshot.data,
        ],
        use_bin_type=True,
    )
    return frame(SNAPSHOT_FILE, payload)


def decode_snapshot(data: bytes, where: str) -> Snapshot:
    records, bad = scan(data, frozenset({SNAPSHOT_FILE}))
    if bad is not None or len(records) != 1:
        reason = bad.reason if bad is not None else f"{len(records)} records"
        raise SnapshotCorruption(f"{where}: damaged snapshot file ({reason})")
    try:
        index, term, voters, learners, payload = msgpack.unpackb(
            records[0].payload, raw=False, use_list=True
        )
        if not (
            type(index) is int
            and type(term) is int
            and type(payload) is bytes
            and all(type(v) is str for v in voters + learners)
        ):
            raise TypeError("field types")
    except (ValueError, TypeError) as error:
        raise SnapshotCorruption(f"{where}: malformed snapshot ({error})") from None
    meta = SnapshotMeta(index, term, Configuration(tuple(voters), tuple(learners)))
    return Snapshot(meta, payload)


class SnapshotStore:
    def __init__(self, disk: Disk, directory: str = "raft/snap") -> None:
        self._disk = disk
        self._directory = directory

    def _path(self, index: int, term: int) -> str:
        return f"{self._directory}/{snapshot_name(index, term)}"

    async def save(self, snapshot: Snapshot) -> str:
        """Write the snapshot atomically and durably; returns its path."""
        path = self._path(snapshot.meta.index, snapshot.meta.term)
        await self._disk.replace(path, encode_snapshot(snapshot))
        return path

    async def load(self, index: int, term: int) -> Snapshot:
        path = self._path(index, term)
        try:
            data = await self._disk.read(path)
        except FileNotFoundError:
            raise SnapshotCorruption(f"{path}: the log refers to a snapshot that is missing") from None
        snapshot = decode_snapshot(data, path)
        if (snapshot.meta.index, snapshot.meta.term) != (index, term):
            raise SnapshotCorruption(
                f"{path}: holds the snapshot at {snapshot.meta.index} term {snapshot.meta.term}"
            )
        return snapshot

    async def names(self) -> list[tuple[int, int]]:
        """(index, term) of every snapshot file, oldest first."""
        found = []
        for name in await self._disk.list(self._directory):
            if not name.endswith(SNAPSHOT_SUFFIX):
                continue
            index_text, _, term_text = name[: -len(SNAPSHOT_SUFFIX)].partition("-")
            try:
                found.append((int(index_text, 16), int(term_text, 16)))
            except ValueError:
                continue
        return sorted(found)

    async def remove_older_than(self, index: int, keep: int = 0) -> list[str]:
        """Delete snapshots below `index`, keeping the `keep` newest of them."""
        older = [(i, t) for i, t in await self.names() if i < index]
        doomed = older[: max(0, len(older) - keep)]
        removed = []
        for i, t in doomed:
            path = self._path(i, t)
            await self._disk.remove(path)
            removed.append(path)
        return removed
