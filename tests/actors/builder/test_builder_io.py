"""The builder's fast paths: the context reader, kernel-side file copies, and handing a
finished step's upper dir over to the image store."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.builder.archive import PeekableReader, decompressed, extract_tar
from actors.builder.context import BuildContext
from actors.builder.images import ImagesClient
from actors.builder.transfer import copy_file_contents
from actors.images.content import DONATION_PREFIX


class OnlyRead:
    """A source with read() and nothing else, handing out uneven pieces."""

    def __init__(self, data: bytes, piece_bytes: int) -> None:
        self._data = memoryview(data)
        self._piece_bytes = piece_bytes

    def read(self, size: int = -1) -> bytes:
        count = min(size, self._piece_bytes, len(self._data))
        piece, self._data = bytes(self._data[:count]), self._data[count:]
        return piece


class WithReadinto(io.RawIOBase):
    def __init__(self, data: bytes, piece_bytes: int) -> None:
        self._source = OnlyRead(data, piece_bytes)

    def readable(self) -> bool:
        return True

    def readinto(self, target: memoryview) -> int:  # type: ignore[override]
        piece = self._source.read(len(target))
        target[: len(piece)] = piece
        return len(piece)


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=5_000_000),
       piece_bytes=st.integers(1, 3_000_000), reads=st.lists(st.integers(1, 3_000_000), max_size=8),
       peek=st.integers(0, 4096), readinto=st.booleans())
def test_the_reader_gives_every_byte_once_in_order(data: bytes, piece_bytes: int, reads: list[int],
                                                   peek: int, readinto: bool) -> None:
    source = WithReadinto(data, piece_bytes) if readinto else OnlyRead(data, piece_bytes)
    reader = PeekableReader(source)
    assert reader.peek(peek) == data[:peek]
    assert reader.peek(peek) == data[:peek], "peeking consumes nothing"
    received = bytearray()
    for size in reads:
        received += reader.read(size)
    while chunk := reader.read(1 << 16):
        received += chunk
    assert bytes(received) == data


def test_a_large_body_crosses_the_buffer(tmp_path: Path) -> None:
    data = os.urandom(5 << 20)
    reader = PeekableReader(WithReadinto(data, 1_500_000))
    assert reader.peek(10) == data[:10]
    assert reader.read(3 << 20) + reader.read() == data


def test_decompressed_wraps_a_plain_stream_once() -> None:
    plain = decompressed(io.BytesIO(b"not compressed at all"))
    assert plain.plain and decompressed(plain) is plain
    packed = decompressed(io.BytesIO(gzip.compress(b"inside")))
    assert packed.read() == b"inside"


def test_a_context_through_a_slow_reader_extracts_whole(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    payload = os.urandom(3 << 20)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 10
        tar.addfile(info, io.BytesIO(b"FROM x\nRUN"))
        info = tarfile.TarInfo("big/blob.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    context = BuildContext.from_tar_stream(WithReadinto(buffer.getvalue(), 70_000),  # type: ignore[arg-type]
                                           temporary_parent=str(tmp_path))
    try:
        assert (Path(context.root) / "big" / "blob.bin").read_bytes() == payload
    finally:
        context.close()
    target = tmp_path / "again"
    target.mkdir()
    result = extract_tar(OnlyRead(gzip.compress(buffer.getvalue()), 9000), str(target))  # type: ignore[arg-type]
    assert result.total_bytes == len(payload) + 10


@pytest.mark.parametrize("across", [False, True])
def test_copy_file_contents_copies_to_the_end(tmp_path: Path, across: bool) -> None:
    # /dev/shm is another filesystem: copy_file_range refuses, sendfile does it.
    directory = Path("/dev/shm") if across and os.path.isdir("/dev/shm") else tmp_path
    source = directory / f"flotta-copy-test-{os.getpid()}"
    data = os.urandom(3_000_001)
    source.write_bytes(data)
    try:
        with open(source, "rb") as reader, open(tmp_path / "target", "wb") as writer:
            reader.seek(1)
            assert copy_file_contents(reader.fileno(), writer.fileno()) == len(data) - 1
        assert (tmp_path / "target").read_bytes() == data[1:]
    finally:
        source.unlink()


def test_a_step_directory_is_handed_over_when_it_can_be(tmp_path: Path) -> None:
    donations = tmp_path / "images" / "tmp"
    donations.mkdir(parents=True)
    upper = tmp_path / "step" / "upper"
    (upper / "app").mkdir(parents=True)
    client = ImagesClient(None, None, tmp_path / "scratch", donations)  # type: ignore[arg-type]
    sent = client._hand_over(upper)
    assert sent.parent == donations and sent.name.startswith(DONATION_PREFIX)
    assert (sent / "app").is_dir() and not upper.exists()
    elsewhere = ImagesClient(None, None, tmp_path / "scratch", tmp_path / "missing")  # type: ignore[arg-type]
    (upper / "app").mkdir(parents=True)
    assert elsewhere._hand_over(upper) == upper and upper.exists()
    alone = ImagesClient(None, None, tmp_path / "scratch")  # type: ignore[arg-type]
    assert alone._hand_over(upper) == upper


def test_context_files_are_hashed_once_while_extracted(tmp_path: Path) -> None:
    import hashlib

    from actors.builder import digests
    from actors.builder.cachekey import file_digest

    payload = os.urandom(200_000)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("app/data.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    context = BuildContext.from_tar_stream(io.BytesIO(buffer.getvalue()), temporary_parent=str(tmp_path))
    path = os.path.join(context.root, "app", "data.bin")
    expected = hashlib.sha256(payload).hexdigest()
    try:
        assert digests.recall(path) == expected
        assert file_digest(path) == expected
        os.chmod(path, 0o600)  # any change of the file retires what was remembered
        assert digests.recall(path) is None
        assert file_digest(path) == expected, "read and hashed again"
        with open(path, "r+b") as handle:
            handle.write(b"X")
        assert file_digest(path) == hashlib.sha256(b"X" + payload[1:]).hexdigest()
    finally:
        context.close()
    assert digests.forget_under(context.root) == 0, "closing the context forgot its files"


def test_the_digest_table_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from actors.builder import digests

    monkeypatch.setattr(digests, "entries_max", 3)
    paths = []
    for index in range(5):
        path = tmp_path / f"f{index}"
        path.write_bytes(bytes([index]))
        digests.remember(str(path), os.lstat(path), f"digest{index}")
        paths.append(str(path))
    assert [digests.recall(path) for path in paths] == [None, None, "digest2", "digest3", "digest4"]
    assert digests.forget_under(str(tmp_path)) == 3
