"""The write-ahead log: Raft's entries, hard state and snapshot markers, durably, in order.

Layout under `directory` (default "raft/wal"): segment files `<sequence:016x>.wal`, each a
sequence of CRC-framed records (records.py):

    HEADER      [format_version, sequence]                 first record of every segment
    SNAPSHOT    [index, term, voters, learners, reset]     a snapshot now covers the log up
                                                           to index; reset=True drops the
                                                           whole log (installed from leader)
    ENTRIES     [[term, index, kind, data], ...]           a batch; its first index may be
                                                           ≤ the last one held: it then
                                                           replaces that suffix (a conflict)
    HARD_STATE  [term, vote, commit]

A segment is created with `Disk.replace` (atomic and durable, directory included) holding its
HEADER, the current SNAPSHOT and HARD_STATE, so every segment can be replayed without the
ones before it and old segments can simply be deleted once a snapshot covers them.

`save()` appends one batch as a single write; `sync()` fsyncs it: one fsync per batch, group
commit. Replay on `open()`:
- a bad record with nothing valid after it, in the last segment, is a torn tail: it is cut
  (truncated, durably) and logged;
- a bad record followed by any valid record, or in any segment but the last, is
  corruption: `WalCorruption` is raised and nothing is changed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import msgpack

from consensus.messages import Configuration, Entry, EntryKind, HardState, SnapshotMeta
from consensus.records import frame, scan, valid_record_after

if TYPE_CHECKING:
    from runtime.disk import Disk  # the protocol only: consensus/ does no I/O itself

logger = logging.getLogger("flotta.consensus.wal")

FORMAT_VERSION = 1
HEADER, SNAPSHOT, ENTRIES, HARD_STATE = 1, 2, 3, 4
RECORD_TYPES = frozenset({HEADER, SNAPSHOT, ENTRIES, HARD_STATE})
SEGMENT_SUFFIX = ".wal"
SEGMENT_BYTES_MAX = 64 << 20


class WalCorruption(Exception):
    """The log on disk is damaged somewhere a crash cannot explain; it was left untouched."""


@attrs.frozen
class Recovered:
    """What replay found: the last hard state, the last snapshot marker, the log after it."""

    hard_state: HardState
    snapshot: SnapshotMeta | None
    entries: list[Entry]


def segment_name(sequence: int) -> str:
    return f"{sequence:016x}{SEGMENT_SUFFIX}"


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def encode_entries(entries: Sequence[Entry]) -> bytes:
    return _pack([[e.term, e.index, int(e.kind), e.data] for e in entries])


def encode_snapshot_meta(meta: SnapshotMeta, reset: bool) -> bytes:
    configuration = meta.configuration
    return _pack(
        [meta.index, meta.term, list(configuration.voters), list(configuration.learners), reset]
    )


def encode_hard_state(state: HardState) -> bytes:
    return _pack([state.term, state.vote, state.commit])


class _Malformed(Exception):
    pass


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise _Malformed(f"expected a non-negative int, got {value!r}")
    return value


def _str(value: object) -> str:
    if type(value) is not str:
        raise _Malformed(f"expected a str, got {type(value).__name__}")
    return value


def _list(value: object, length: int | None = None) -> list[object]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise _Malformed(f"expected a list of {length if length is not None else 'any'} items")
    return value


def _unpack(payload: bytes) -> object:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False, use_list=True)
    except Exception as error:
        raise _Malformed(f"payload is not msgpack: {error}") from None


def decode_entries(payload: bytes) -> list[Entry]:
    entries = []
    for item in _list(_unpack(payload)):
        term, index, kind, data = _list(item, 4)
        if type(data) is not bytes:
            raise _Malformed("entry data must be bytes")
        try:
            entry_kind = EntryKind(_int(kind))
        except ValueError:
            raise _Malformed(f"unknown entry kind {kind}") from None
        entries.append(Entry(_int(term), _int(index), entry_kind, data))
    for before, after in itertools.pairwise(entries):
        if after.index != before.index + 1:
            raise _Malformed(f"entries jump from {before.index} to {after.index}")
    if not entries:
        raise _Malformed("empty entries record")
    return entries


def decode_snapshot_meta(payload: bytes) -> tuple[SnapshotMeta, bool]:
    index, term, voters, learners, reset = _list(_unpack(payload), 5)
    if type(reset) is not bool:
        raise _Malformed("snapshot reset flag must be a bool")
    configuration = Configuration(
        voters=tuple(_str(v) for v in _list(voters)), learners=tuple(_str(v) for v in _list(learners))
    )
    return SnapshotMeta(_int(index), _int(term), configuration), reset


def decode_hard_state(payload: bytes) -> HardState:
    term, vote, commit = _list(_unpack(payload), 3)
    return HardState(_int(term), _str(vote), _int(commit))


class _Replay:
    """Folds records into the recovered state, in order."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snapshot: SnapshotMeta | None = None
        self.entries: list[Entry] = []

    def snapshot_record(self, meta: SnapshotMeta, reset: bool) -> None:
        self.snapshot = meta
        if reset:
            self.entries = []
        else:
            self.entries = [e for e in self.entries if e.index > meta.index]

    def entries_record(self, batch: list[Entry], where: str) -> None:
        base = self.snapshot.index if self.snapshot is not None else 0
        batch = [e for e in batch if e.index > base]
        if not batch:
            return
        first = batch[0].index
        entries = self.entries
        if entries:
            start = entries[0].index
            if first > entries[-1].index + 1:
                raise WalCorruption(
                    f"{where}: entries jump from {entries[-1].index} to {first}"
                )
            if first <= start:
                self.entries = list(batch)
            else:
                del entries[first - start :]
                entries.extend(batch)
        else:
            # A log whose older segments were released starts after the snapshot only once
            # the snapshot marker arrives; until then it may start anywhere.
            self.entries = list(batch)

    def result(self) -> Recovered:
        base = self.snapshot.index if self.snapshot is not None else 0
        entries = [e for e in self.entries if e.index > base]
        if entries and entries[0].index != base + 1:
            raise WalCorruption(
                f"the log resumes at {entries[0].index} but the snapshot ends at {base}: "
                f"entries {base + 1}..{entries[0].index - 1} are missing"
            )
        last = entries[-1].index if entries else base
        if self.hard_state.commit > last:
            raise WalCorruption(
                f"hard state commits {self.hard_state.commit} but the log ends at {last}"
            )
        return Recovered(self.hard_state, self.snapshot, entries)


class WriteAheadLog:
    """Append-only segments of records over a `Disk`. Open with `await WriteAheadLog.open()`."""

    def __init__(self, disk: Disk, directory: str, segment_bytes_max: int) -> None:
        self._disk = disk
        self._directory = directory
        self._segment_bytes_max = segment_bytes_max
        self._sequence = 0
        self._size = 0
        self._unsynced = False
        # sequence -> highest entry index the segment holds (0: none)
        self._segment_last_index: dict[int, int] = {}
        self._hard_state = HardState()
        self._snapshot: SnapshotMeta | None = None

    @classmethod
    async def open(
        cls,
        disk: Disk,
        directory: str = "raft/wal",
        segment_bytes_max: int = SEGMENT_BYTES_MAX,
    ) -> tuple[WriteAheadLog, Recovered]:
        """Replay the log (cutting a torn tail) and get ready to append after it."""
        wal = cls(disk, directory, segment_bytes_max)
        recovered = await wal._replay()
        return wal, recovered

    def _path(self, sequence: int) -> str:
        return f"{self._directory}/{segment_name(sequence)}"

    async def _segments(self) -> list[int]:
        sequences = []
        for name in await self._disk.list(self._directory):
            if not name.endswith(SEGMENT_SUFFIX):
                continue
            stem = name[: -len(SEGMENT_SUFFIX)]
            try:
                sequences.append(int(stem, 16))
            except ValueError:
                raise WalCorruption(f"{self._directory}/{name}: not a segment name") from None
        return sorted(sequences)

    async def _replay(self) -> Recovered:
        sequences = await self._segments()
        replay = _Replay()
        cut: tuple[str, int, str] | None = None
        for position, sequence in enumerate(sequences):
            path = self._path(sequence)
            data = await self._disk.read(path)
            records, bad = scan(data, RECORD_TYPES)
            is_last = position == len(sequences) - 1
            if bad is not None:
                later = valid_record_after(data, bad, RECORD_TYPES)
                if not is_last or later is not None:
                    where = f"valid records follow at offset {later}" if later is not None else "later segments follow"
                    raise WalCorruption(
                        f"{path}: corrupt record at offset {bad.offset} ({bad.reason}); {where}"
                    )
                if not records:
                    raise WalCorruption(f"{path}: no valid header ({bad.reason})")
                cut = (path, bad.offset, bad.reason)
            last_index = 0
            for number, record in enumerate(records):
                where = f"{path} offset {record.offset}"
                try:
                    if number == 0:
                        if record.type != HEADER:
                            raise _Malformed("a segment must start with a header")
                        version, header_sequence = _list(_unpack(record.payload), 2)
                        if version != FORMAT_VERSION or header_sequence != sequence:
                            raise _Malformed(
                                f"header says version {version} segment {header_sequence}"
                            )
                    elif record.type == HEADER:
                        raise _Malformed("a header inside a segment")
                    elif record.type == HARD_STATE:
                        replay.hard_state = decode_hard_state(record.payload)
                    elif record.type == SNAPSHOT:
                        meta, reset = decode_snapshot_meta(record.payload)
                        replay.snapshot_record(meta, reset)
                    else:
                        batch = decode_entries(record.payload)
                        replay.entries_record(batch, where)
                        last_index = max(last_index, batch[-1].index)
                except _Malformed as error:
                    raise WalCorruption(f"{where}: {error}") from None
            self._segment_last_index[sequence] = last_index
            self._sequence = sequence
            self._size = bad.offset if bad is not None else len(data)
        recovered = replay.result()
        if cut is not None:
            path, offset, reason = cut
            logger.warning(
                "write-ahead log %s: torn tail cut at offset %d (%s); "
                "the records after it were never synced",
                path,
                offset,
                reason,
            )
            await self._disk.truncate(path, offset)
        self._hard_state = recovered.hard_state
        self._snapshot = recovered.snapshot
        if not sequences:
            await self._start_segment(1)
        return recovered

    async def _start_segment(self, sequence: int) -> None:
        data = bytearray(frame(HEADER, _pack([FORMAT_VERSION, sequence])))
        if self._snapshot is not None:
            data += frame(SNAPSHOT, encode_snapshot_meta(self._snapshot, reset=False))
        data += frame(HARD_STATE, encode_hard_state(self._hard_state))
        await self._disk.replace(self._path(sequence), bytes(data))
        self._sequence = sequence
        self._size = len(data)
        self._segment_last_index[sequence] = 0
        self._unsynced = False

    async def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: SnapshotMeta | None = None,
        reset: bool = False,
    ) -> None:
        """Append one batch (not yet durable: call `sync`). Order: snapshot, entries, state."""
        data = bytearray()
        if snapshot is not None:
            data += frame(SNAPSHOT, encode_snapshot_meta(snapshot, reset))
        if entries:
            data += frame(ENTRIES, encode_entries(entries))
        if hard_state is not None:
            data += frame(HARD_STATE, encode_hard_state(hard_state))
        if not data:
            return
        await self._disk.append(self._path(self._sequence), bytes(data))
        self._size += len(data)
        self._unsynced = True
        if snapshot is not None:
            self._snapshot = snapshot
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            last = self._segment_last_index.get(self._sequence, 0)
            self._segment_last_index[self._sequence] = max(last, entries[-1].index)

    async def sync(self) -> None:
        """Make every saved batch durable (one fsync), then roll to a new segment if full."""
        if self._unsynced:
            await self._disk.fsync(self._path(self._sequence))
            self._unsynced = False
        if self._size >= self._segment_bytes_max:
            await self._start_segment(self._sequence + 1)

    async def release_to(self, index: int) -> list[str]:
        """Delete whole old segments whose entries a durable snapshot at ≥ `index` covers."""
        removed = []
        for sequence in sorted(self._segment_last_index):
            if sequence == self._sequence or self._segment_last_index[sequence] > index:
                break
            path = self._path(sequence)
            await self._disk.remove(path)
            del self._segment_last_index[sequence]
            removed.append(path)
        return removed

    def segments(self) -> list[str]:
        return [self._path(sequence) for sequence in sorted(self._segment_last_index)]
