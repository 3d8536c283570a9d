"""The write-ahead log and snapshot files over a disk that crashes, tears and rots."""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.messages import Configuration, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from consensus.records import HEADER_BYTES, frame, scan
from consensus.snapshot import SnapshotCorruption, SnapshotStore
from consensus.wal import Recovered, WalCorruption, WriteAheadLog
from tests.consensus.memdisk import CrashDisk, run

SEGMENT = "raft/wal/0000000000000001.wal"
CONFIG = Configuration(("a", "b", "c"))


def entries(first: int, count: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, EntryKind.NORMAL, b"data %d/%d" % (term, i)) for i in range(first, first + count)]


def open_wal(disk: CrashDisk, **options: int) -> tuple[WriteAheadLog, Recovered]:
    return run(WriteAheadLog.open(disk, **options))


def save(wal: WriteAheadLog, *args: object, **kwargs: object) -> None:
    run(wal.save(*args, **kwargs))  # type: ignore[arg-type]


def test_a_new_log_is_empty_and_starts_a_durable_segment() -> None:
    disk = CrashDisk()
    _, recovered = open_wal(disk)
    assert recovered == Recovered(HardState(), None, [])
    disk.crash()
    assert run(disk.list("raft/wal")) == ["0000000000000001.wal"]


def test_what_was_synced_comes_back() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    save(wal, HardState(1, "a", 0), entries(1, 3))
    save(wal, HardState(2, "b", 2), entries(4, 2, term=2))
    run(wal.sync())
    _, recovered = open_wal(disk)
    assert recovered == Recovered(HardState(2, "b", 2), None, entries(1, 3) + entries(4, 2, 2))


def test_one_fsync_makes_a_whole_group_of_batches_durable() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    before = disk.fsync_count
    for first in range(1, 100, 3):
        save(wal, HardState(1, "a", 0), entries(first, 3))
    run(wal.sync())
    assert disk.fsync_count == before + 1
    disk.crash()
    assert open_wal(disk)[1].entries == entries(1, 99)


def test_a_crash_loses_the_batches_that_were_not_synced() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    save(wal, HardState(1, "a", 0), entries(1, 2))
    run(wal.sync())
    save(wal, HardState(2, "b", 0), entries(3, 2))
    disk.crash()
    _, recovered = open_wal(disk)
    assert recovered == Recovered(HardState(1, "a", 0), None, entries(1, 2))


def test_a_torn_tail_is_cut_with_a_clear_message(caplog: pytest.LogCaptureFixture) -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    save(wal, HardState(1, "a", 0), entries(1, 2))
    run(wal.sync())
    synced_size = run(disk.size(SEGMENT))
    save(wal, HardState(1, "a", 1), entries(3, 5))
    handle = disk.files[SEGMENT]
    handle.current = bytearray(handle.durable or b"") + handle.pending[0][1][:20]
    handle.durable = bytes(handle.current)
    handle.pending.clear()
    with caplog.at_level(logging.WARNING, logger="flotta.consensus.wal"):
        wal, recovered = open_wal(disk)
    assert recovered.entries == entries(1, 2)
    assert run(disk.size(SEGMENT)) == synced_size, "the torn bytes are cut from the file"
    assert f"torn tail cut at offset {synced_size}" in caplog.text and SEGMENT in caplog.text
    save(wal, None, entries(3, 1))
    run(wal.sync())
    assert open_wal(disk)[1].entries == entries(1, 3)


def test_corruption_in_the_middle_is_reported_and_the_file_left_alone() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    offsets = []
    for first in (1, 4, 7):
        offsets.append(run(disk.size(SEGMENT)))
        save(wal, None, entries(first, 3))
    run(wal.sync())
    before = bytes(disk.files[SEGMENT].current)
    disk.flip_bit(SEGMENT, (offsets[1] + HEADER_BYTES + 5) * 8)
    damaged = bytes(disk.files[SEGMENT].current)
    with pytest.raises(WalCorruption, match=rf"offset {offsets[1]} \(CRC mismatch\); valid records follow"):
        open_wal(disk)
    assert bytes(disk.files[SEGMENT].current) == damaged != before


def test_a_damaged_length_field_in_the_middle_is_found_by_scanning() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    middle = 0
    for first in (1, 4, 7):
        if first == 4:
            middle = run(disk.size(SEGMENT))
        save(wal, None, entries(first, 3))
    run(wal.sync())
    disk.flip_bit(SEGMENT, (middle + 2) * 8 + 3)  # the length field's third byte
    with pytest.raises(WalCorruption, match="valid records follow"):
        open_wal(disk)


def test_a_flipped_bit_in_the_last_record_is_never_accepted(caplog: pytest.LogCaptureFixture) -> None:
    """Indistinguishable from a torn write: the record is cut, loudly, never used."""
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    save(wal, None, entries(1, 2))
    last = run(disk.size(SEGMENT))
    save(wal, None, entries(3, 2))
    run(wal.sync())
    disk.flip_bit(SEGMENT, (last + HEADER_BYTES + 3) * 8)
    with caplog.at_level(logging.WARNING, logger="flotta.consensus.wal"):
        _, recovered = open_wal(disk)
    assert recovered.entries == entries(1, 2)
    assert "CRC mismatch" in caplog.text


def test_damage_in_an_older_segment_is_corruption_even_at_its_end() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk, segment_bytes_max=200)
    for first in range(1, 30, 3):
        save(wal, HardState(1, "a", 0), entries(first, 3))
        run(wal.sync())
    segments = wal.segments()
    assert len(segments) > 2
    size = run(disk.size(segments[0]))
    disk.flip_bit(segments[0], (size - 2) * 8)
    with pytest.raises(WalCorruption, match="later segments follow"):
        open_wal(disk)


def test_overwriting_a_conflicting_suffix_is_durable() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    save(wal, HardState(1, "a", 2), entries(1, 5))
    run(wal.sync())
    save(wal, HardState(2, "b", 2), entries(3, 2, term=2))
    run(wal.sync())
    disk.crash(random.Random(1))
    _, recovered = open_wal(disk)
    assert recovered.entries == entries(1, 2) + entries(3, 2, term=2)
    assert recovered.hard_state == HardState(2, "b", 2)


def test_a_snapshot_marker_drops_what_it_covers_and_an_installed_one_drops_everything() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk)
    save(wal, HardState(1, "a", 6), entries(1, 8))
    save(wal, None, [], SnapshotMeta(5, 1, CONFIG), reset=False)
    run(wal.sync())
    _, recovered = open_wal(disk)
    assert recovered.snapshot == SnapshotMeta(5, 1, CONFIG)
    assert recovered.entries == entries(6, 3)
    wal, _ = open_wal(disk)
    save(wal, HardState(3, "", 20), [], SnapshotMeta(20, 3, CONFIG), reset=True)
    save(wal, None, entries(21, 1, term=3))
    run(wal.sync())
    _, recovered = open_wal(disk)
    assert (recovered.snapshot, recovered.entries) == (SnapshotMeta(20, 3, CONFIG), entries(21, 1, 3))


def test_segments_roll_over_and_are_released_once_a_snapshot_covers_them() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk, segment_bytes_max=300)
    for first in range(1, 60, 4):
        save(wal, HardState(1, "a", first + 3), entries(first, 4))
        run(wal.sync())
    assert len(wal.segments()) >= 4
    save(wal, None, [], SnapshotMeta(40, 1, CONFIG))
    run(wal.sync())
    removed = run(wal.release_to(40))
    assert removed and all(path not in wal.segments() for path in removed)
    disk.crash()
    _, recovered = open_wal(disk)
    assert recovered.snapshot == SnapshotMeta(40, 1, CONFIG)
    assert recovered.entries == entries(41, 20)
    assert recovered.hard_state == HardState(1, "a", 60)


def test_a_gap_left_by_released_segments_without_a_snapshot_is_corruption() -> None:
    disk = CrashDisk()
    wal, _ = open_wal(disk, segment_bytes_max=300)
    for first in range(1, 40, 4):
        save(wal, None, entries(first, 4))
        run(wal.sync())
    run(disk.remove(wal.segments()[0]))
    with pytest.raises(WalCorruption, match="missing"):
        open_wal(disk)


def test_snapshot_files_round_trip_and_refuse_damage() -> None:
    disk = CrashDisk()
    store = SnapshotStore(disk)
    snapshot = Snapshot(SnapshotMeta(7, 2, CONFIG), b"state" * 100)
    path = run(store.save(snapshot))
    disk.crash()
    assert run(store.load(7, 2)) == snapshot
    disk.flip_bit(path, 200 * 8)
    with pytest.raises(SnapshotCorruption, match="damaged"):
        run(store.load(7, 2))
    with pytest.raises(SnapshotCorruption, match="missing"):
        run(store.load(8, 2))


def test_old_snapshot_files_are_removed_keeping_the_asked_number() -> None:
    disk = CrashDisk()
    store = SnapshotStore(disk)
    for index in (3, 6, 9, 12):
        run(store.save(Snapshot(SnapshotMeta(index, 1, CONFIG), b"s")))
    run(store.remove_older_than(12, keep=1))
    assert run(store.names()) == [(9, 1), (12, 1)]


@given(st.lists(st.tuples(st.integers(1, 4), st.binary(min_size=1, max_size=40)), max_size=8))
def test_records_round_trip_and_any_truncation_yields_a_prefix(items: list[tuple[int, bytes]]) -> None:
    data = b"".join(frame(kind, payload) for kind, payload in items)
    records, bad = scan(data, frozenset({1, 2, 3, 4}))
    assert bad is None and [(r.type, r.payload) for r in records] == items
    for cut in range(len(data)):
        records, _ = scan(data[:cut], frozenset({1, 2, 3, 4}))
        assert [(r.type, r.payload) for r in records] == items[: len(records)]


# --- a model-based check over arbitrary histories -------------------------------------------


class Model:
    """What replay should yield, advanced one record at a time (a torn batch keeps a prefix)."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snapshot: SnapshotMeta | None = None
        self.entries: list[Entry] = []

    def state(self) -> Recovered:
        return Recovered(self.hard_state, self.snapshot, list(self.entries))

    def last(self) -> int:
        if self.entries:
            return self.entries[-1].index
        return self.snapshot.index if self.snapshot else 0

    def base(self) -> int:
        return self.snapshot.index if self.snapshot else 0


@st.composite
def operations(draw: st.DrawFn) -> list[tuple]:  # type: ignore[type-arg]
    return draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("save"), st.integers(0, 3), st.integers(0, 4), st.booleans(), st.integers(0, 2)),
                st.just(("sync",)),
                st.tuples(st.just("crash"), st.integers(0, 1000), st.booleans()),
            ),
            max_size=25,
        )
    )


@settings(deadline=None)
@given(operations(), st.integers(150, 2000))
def test_replay_after_any_crash_is_a_state_the_log_went_through(ops: list[tuple], segment_bytes: int) -> None:  # type: ignore[type-arg]
    disk = CrashDisk()
    wal, _ = open_wal(disk, segment_bytes_max=segment_bytes)
    model = Model()
    durable = model.state()
    candidates = [durable]
    term = 1
    for op in ops:
        if op[0] == "save":
            _, back, count, with_state, snapshot_kind = op
            term += 1
            snapshot = None
            reset = False
            if snapshot_kind == 1 and model.hard_state.commit > model.base():
                snapshot, reset = SnapshotMeta(model.hard_state.commit, term, CONFIG), False
            elif snapshot_kind == 2:
                snapshot, reset = SnapshotMeta(model.last() + 2, term, CONFIG), True
            if snapshot is not None:
                model.snapshot = snapshot
                model.entries = [] if reset else [e for e in model.entries if e.index > snapshot.index]
                candidates.append(model.state())
            first = max(model.last() + 1 - back, model.hard_state.commit + 1, model.base() + 1)
            batch = entries(first, count, term)
            if batch:
                del model.entries[first - model.base() - 1 :]
                model.entries.extend(batch)
                candidates.append(model.state())
            hard_state = None
            if with_state or reset:
                commit = max(model.hard_state.commit, model.base())
                hard_state = HardState(term, f"n{term}", min(model.last(), commit + 1))
                model.hard_state = hard_state
                candidates.append(model.state())
            save(wal, hard_state, batch, snapshot, reset=reset)
        elif op[0] == "sync":
            run(wal.sync())
            candidates = [model.state()]
        else:
            _, seed, tear = op
            disk.crash(random.Random(seed), tear=tear)
            wal, recovered = open_wal(disk, segment_bytes_max=segment_bytes)
            assert recovered in candidates
            model.hard_state, model.snapshot, model.entries = (
                recovered.hard_state,
                recovered.snapshot,
                list(recovered.entries),
            )
            candidates = [model.state()]
    run(wal.sync())
    disk.crash(random.Random(0))
    assert open_wal(disk, segment_bytes_max=segment_bytes)[1] == model.state()


async def test_the_log_works_on_the_real_disk(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    from consensus.durable import DurableState
    from consensus.messages import PersistedState
    from runtime.disk import RealDisk

    disk = RealDisk(tmp_path)
    wal, _ = await WriteAheadLog.open(disk, segment_bytes_max=400)
    for first in range(1, 40, 4):
        await wal.save(HardState(2, "a", first), entries(first, 4))
        await wal.sync()
    with open(tmp_path / wal.segments()[-1], "ab") as handle:
        handle.write(b"\x07\x00\x00\x00torn")
    with caplog.at_level(logging.WARNING, logger="flotta.consensus.wal"):
        durable = await DurableState.open(disk, segment_bytes_max=400)
    assert "torn tail" in caplog.text
    assert durable.recovered == PersistedState(HardState(2, "a", 37), None, entries(1, 40))
    snapshot = Snapshot(SnapshotMeta(30, 1, CONFIG), b"state at 30")
    await durable.save_snapshot(snapshot)
    again = await DurableState.open(disk, segment_bytes_max=400)
    assert again.recovered.snapshot == snapshot
    assert again.recovered.entries == entries(31, 10)
