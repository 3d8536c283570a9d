"""The simulated disk keeps runtime.disk's contract exactly, crashes included."""

from __future__ import annotations

import random

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.disk import DiskConfig, DiskFenced, DiskStore, check_path
from sim.trace import Trace


def store(seed: int = 1, **config: float) -> DiskStore:
    return DiskStore("n1", random.Random(seed), Trace(), DiskConfig(**config))


async def test_synced_data_survives_a_crash_and_unsynced_may_not() -> None:
    disk_store = store(tear_probability=0.0)
    disk = disk_store.handle()
    await disk.append("wal", b"synced")
    await disk.fsync("wal")
    assert await disk.read("wal") == b"synced"
    disk_store.crash()
    after = disk_store.handle()
    assert await after.read("wal") == b"synced"


async def test_unsynced_writes_are_lost_for_some_seed_and_kept_for_another() -> None:
    outcomes = set()
    for seed in range(40):
        disk_store = store(seed, tear_probability=0.0)
        disk = disk_store.handle()
        await disk.append("wal", b"base")
        await disk.fsync("wal")
        await disk.append("wal", b"-one")
        await disk.append("wal", b"-two")
        disk_store.crash()
        outcomes.add(await disk_store.handle().read("wal"))
    assert outcomes == {b"base", b"base-one", b"base-one-two"}


async def test_a_file_never_synced_can_vanish() -> None:
    vanished = kept = 0
    for seed in range(30):
        disk_store = store(seed, tear_probability=0.0)
        await disk_store.handle().append("new", b"data")
        disk_store.crash()
        if await disk_store.handle().exists("new"):
            kept += 1
            assert await disk_store.handle().read("new") == b"data"
        else:
            vanished += 1
    assert vanished and kept


async def test_the_last_kept_write_can_be_torn_to_a_strict_prefix() -> None:
    torn = []
    torn_count = 0
    for seed in range(40):
        disk_store = store(seed, tear_probability=1.0)
        disk = disk_store.handle()
        await disk.replace("wal", b"head|")
        await disk.append("wal", b"0123456789")
        disk_store.crash()
        content = await disk_store.handle().read("wal")
        assert content.startswith(b"head|")
        tail = content[len(b"head|") :]
        assert b"0123456789".startswith(tail) and len(tail) < 10
        torn_count += disk_store.statistics.writes_torn
        if tail:
            torn.append(tail)
    assert torn, "no seed kept part of the torn write"
    assert torn_count >= len(torn)


async def test_replace_is_atomic_and_durable() -> None:
    disk_store = store()
    disk = disk_store.handle()
    await disk.append("meta", b"old contents, not synced")
    await disk.replace("meta", b"new")
    disk_store.crash()
    assert await disk_store.handle().read("meta") == b"new"


async def test_truncate_and_remove_are_durable() -> None:
    disk_store = store()
    disk = disk_store.handle()
    await disk.append("wal", b"0123456789")
    await disk.truncate("wal", 4)
    await disk.append("gone", b"x")
    await disk.fsync("gone")
    await disk.remove("gone")
    await disk.remove("never-existed")
    disk_store.crash()
    after = disk_store.handle()
    assert await after.read("wal") == b"0123"
    assert not await after.exists("gone")
    await after.truncate("wal", 6)
    assert await after.read("wal") == b"0123\0\0"


async def test_write_at_past_the_end_fills_with_zeros() -> None:
    disk = store().handle()
    await disk.write_at("f", 3, b"ab")
    assert await disk.read("f") == b"\0\0\0ab"
    await disk.write_at("f", 1, b"Z")
    assert await disk.read("f") == b"\0Z\0ab"
    assert await disk.size("f") == 5


async def test_corruption_flips_exactly_one_bit_of_durable_data() -> None:
    disk_store = store(7)
    disk = disk_store.handle()
    original = bytes(range(64))
    await disk.replace("wal/000001", original)
    await disk.replace("meta", b"m")
    hit = disk_store.corrupt("wal/")
    assert hit is not None
    path, offset, bit = hit
    assert path == "wal/000001"
    corrupted = await disk.read(path)
    difference = [a ^ b for a, b in zip(original, corrupted, strict=True)]
    assert [index for index, value in enumerate(difference) if value] == [offset]
    assert difference[offset] == 1 << bit
    disk_store.crash()
    assert await disk_store.handle().read(path) == corrupted
    assert await disk_store.handle().read("meta") == b"m"
    assert disk_store.corrupt("nothing-here/") is None


async def test_corruption_does_not_show_through_newer_unsynced_data() -> None:
    disk_store = store(3)
    disk = disk_store.handle()
    await disk.replace("f", b"\0")
    await disk.write_at("f", 0, b"\xff")
    disk_store.corrupt()
    assert await disk.read("f") == b"\xff"


async def test_a_crashed_incarnation_cannot_touch_the_disk() -> None:
    disk_store = store()
    old = disk_store.handle()
    await old.replace("f", b"before")
    disk_store.crash()
    with pytest.raises(DiskFenced):
        await old.append("f", b"after")
    with trio.CancelScope() as scope:
        scope.cancel()
        await old.replace("f", b"zombie")
    assert await disk_store.handle().read("f") == b"before"


async def test_listing_is_sorted_and_per_directory() -> None:
    disk = store().handle()
    for path in ("wal/000002", "wal/000001", "meta", "wal/sub/x", "snap/1"):
        await disk.replace(path, b"")
    assert await disk.list() == ["meta"]
    assert await disk.list("wal") == ["000001", "000002"]
    assert await disk.list("missing") == []


async def test_missing_files_and_bad_paths_are_errors() -> None:
    disk = store().handle()
    for call in (disk.read("x"), disk.size("x"), disk.fsync("x"), disk.truncate("x", 0)):
        with pytest.raises(FileNotFoundError):
            await call
    for bad in ("", "/abs", "a/../b", "a//b", "./a"):
        with pytest.raises(ValueError):
            check_path(bad)
        with pytest.raises(ValueError):
            await disk.append(bad, b"x")
    with pytest.raises(ValueError):
        await disk.write_at("f", -1, b"x")
    assert not await disk.exists("f")


async def test_fsync_takes_its_configured_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    disk = store(fsync_latency_seconds=0.25).handle()
    await disk.append("f", b"x")
    start = trio.current_time()
    await disk.fsync("f")
    assert trio.current_time() - start == pytest.approx(0.25)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="tear_probability"):
        DiskConfig(tear_probability=2.0)
    with pytest.raises(ValueError, match="fsync_latency_seconds"):
        DiskConfig(fsync_latency_seconds=-1.0)


# --- the crash model, against a reference ---------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=6)),
        st.tuples(st.just("write_at"), st.integers(0, 12), st.binary(min_size=1, max_size=6)),
        st.tuples(st.just("fsync")),
        st.tuples(st.just("replace"), st.binary(max_size=8)),
    ),
    max_size=12,
)


def _apply(image: bytearray, offset: int, data: bytes) -> None:
    if offset > len(image):
        image.extend(bytes(offset - len(image)))
    image[offset : offset + len(data)] = data


def _allowed_after_crash(
    durable: bytes | None, pending: list[tuple[int, bytes]]
) -> set[bytes | None]:
    """Every content a crash may leave: a prefix of the pending writes, the last maybe torn."""
    allowed: set[bytes | None] = {durable}
    image = bytearray(durable or b"")
    for offset, data in pending:
        for cut in range(len(data)):
            torn = bytearray(image)
            _apply(torn, offset, data[:cut])
            allowed.add(bytes(torn))
        _apply(image, offset, data)
        allowed.add(bytes(image))
    return allowed


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(0, 2**32), st.floats(0.0, 1.0))
def test_crash_leaves_only_states_the_contract_allows(
    ops: list[tuple], seed: int, tear: float
) -> None:
    async def scenario() -> None:
        disk_store = store(seed, tear_probability=tear)
        disk = disk_store.handle()
        durable: bytes | None = None
        pending: list[tuple[int, bytes]] = []
        visible = bytearray()
        for op in ops:
            if op[0] == "append":
                pending.append((len(visible), op[1]))
                visible += op[1]
                await disk.append("f", op[1])
            elif op[0] == "write_at":
                pending.append((op[1], op[2]))
                _apply(visible, op[1], op[2])
                await disk.write_at("f", op[1], op[2])
            elif op[0] == "fsync":
                if await disk.exists("f"):
                    await disk.fsync("f")
                    durable, pending = bytes(visible), []
            else:
                await disk.replace("f", op[1])
                durable, pending, visible = op[1], [], bytearray(op[1])
            if await disk.exists("f"):
                assert await disk.read("f") == bytes(visible)
        disk_store.crash()
        after = disk_store.handle()
        content = await after.read("f") if await after.exists("f") else None
        assert content in _allowed_after_crash(durable, pending)
        # A second crash with nothing pending changes nothing.
        disk_store.crash()
        again = disk_store.handle()
        assert (await again.read("f") if await again.exists("f") else None) == content

    trio.run(scenario)
