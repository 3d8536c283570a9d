"""RealDisk and atomic_write on a real directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.disk import RealDisk, atomic_write


async def test_append_read_truncate_list(tmp_path: Path) -> None:
    disk = RealDisk(tmp_path)
    await disk.append("wal/0001.log", b"abc")
    await disk.append("wal/0001.log", b"def")
    await disk.fsync("wal/0001.log")
    assert await disk.read("wal/0001.log") == b"abcdef"
    assert await disk.size("wal/0001.log") == 6
    await disk.truncate("wal/0001.log", 4)
    assert await disk.read("wal/0001.log") == b"abcd"
    await disk.write_at("wal/0001.log", 1, b"XY")
    assert await disk.read("wal/0001.log") == b"aXYd"
    await disk.append("wal/0000.log", b"")
    assert await disk.list("wal") == ["0000.log", "0001.log"]
    assert await disk.list("missing") == []


async def test_replace_and_remove(tmp_path: Path) -> None:
    disk = RealDisk(tmp_path)
    await disk.replace("meta/state", b"one")
    await disk.replace("meta/state", b"two")
    assert await disk.read("meta/state") == b"two"
    assert await disk.list("meta") == ["state"]
    await disk.remove("meta/state")
    await disk.remove("meta/state")
    assert not await disk.exists("meta/state")
    with pytest.raises(FileNotFoundError):
        await disk.read("meta/state")


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../b", "a//b", ".", ""])
async def test_paths_must_stay_inside(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="relative name"):
        await RealDisk(tmp_path).read(bad)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    atomic_write(target, b"{}")
    atomic_write(target, b'{"a": 1}', mode=0o600)
    assert target.read_bytes() == b'{"a": 1}'
    assert (target.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
