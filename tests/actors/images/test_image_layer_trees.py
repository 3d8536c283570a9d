"""Layers made from directories and pulled layers kept without their tar.

The store copies (or, when handed over, moves) an overlay upper dir, normalizes it to
what extracting its tar would give, and hashes it without writing the tar; pulled layers
are unpacked while they arrive. The uncompressed tar is made again on demand and must be
byte for byte the tar the diff id names.
"""

from __future__ import annotations

import gzip
import io
import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_tars import TarBuilder, tree

from actors.images import archive, compression, layers
from actors.images.errors import DigestMismatch
from actors.images.layers import LayerError
from actors.images.store import ImageStore

WHITEOUT = stat.S_IFCHR | 0o000


def tar_of(root: Path) -> bytes:
    out = io.BytesIO()
    layers.write_layer_tar(root, out)
    return out.getvalue()


def sample_upper(root: Path) -> Path:
    """An upper dir with every kind of entry a layer can hold, and things it must not."""
    root.mkdir(parents=True)
    (root / "app").mkdir(mode=0o750)
    (root / "app" / "data.bin").write_bytes(os.urandom(300_000))
    os.utime(root / "app" / "data.bin", ns=(1_700_000_000_123_456_789, 1_700_000_000_987_654_321))
    os.link(root / "app" / "data.bin", root / "app" / "again.bin")
    (root / "app" / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "app" / "tool", 0o4755)
    os.chown(root / "app" / "tool", 1000, 1000)
    os.chmod(root / "app" / "tool", 0o4755)
    os.setxattr(root / "app" / "tool", "user.note", b"kept")
    os.setxattr(root / "app" / "tool", "trusted.overlay.origin", b"\x00bookkeeping")
    (root / "etc").mkdir()
    os.setxattr(root / "etc", "trusted.overlay.opaque", b"y")
    os.setxattr(root / "etc", "trusted.overlay.impure", b"y")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    os.symlink("/etc/hosts", root / "hosts-link")
    os.mknod(root / "removed", WHITEOUT, os.makedev(0, 0))
    (root / "empty").write_bytes(b"")
    os.utime(root / "app", ns=(1_600_000_000_500_000_000, 1_600_000_000_500_000_000))
    return root


def add_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))


def xattrs(path: Path) -> dict[str, bytes]:
    return {name: os.getxattr(path, name, follow_symlinks=False)
            for name in os.listxattr(path, follow_symlinks=False)}


def tmp_entries(store: ImageStore) -> list[str]:
    return sorted(path.name for path in (store.root / "tmp").iterdir())


@pytest.mark.root
def test_a_copied_tree_gives_the_same_tar_and_extraction_form(tmp_path: Path) -> None:
    upper = sample_upper(tmp_path / "upper")
    add_socket(upper / "app" / "control.sock")
    original = tar_of(upper)
    report = layers.copy_layer_tree(upper, tmp_path / "copy")
    assert tar_of(tmp_path / "copy") == original
    assert layers.layer_tar_digest(tmp_path / "copy") == layers.layer_tar_digest(upper)
    copy = tmp_path / "copy"
    assert not (copy / "app" / "control.sock").exists(), "sockets are not layer content"
    assert xattrs(copy / "app" / "tool") == {"user.note": b"kept"}
    assert xattrs(copy / "etc") == {"trusted.overlay.opaque": b"y"}
    assert os.stat(copy / "app" / "data.bin").st_ino == os.stat(copy / "app" / "again.bin").st_ino
    assert os.stat(copy / "app" / "data.bin").st_mtime_ns == 1_700_000_000_000_000_000
    tool = os.stat(copy / "app" / "tool")
    assert (stat.S_IMODE(tool.st_mode), tool.st_uid) == (0o4755, 1000)
    assert stat.S_ISCHR(os.lstat(copy / "removed").st_mode)
    extracted = tmp_path / "extracted"
    result = layers.extract_layer(io.BytesIO(original), extracted)
    assert tree(extracted) == tree(copy)
    assert report.size_bytes == result.size_bytes
    assert report.device is None and report.refusal is None and not report.plain_only


@pytest.mark.root
def test_normalizing_in_place_matches_a_copy(tmp_path: Path) -> None:
    upper = sample_upper(tmp_path / "upper")
    copied = layers.copy_layer_tree(upper, tmp_path / "copy")
    add_socket(upper / "control.sock")
    normalized = layers.normalize_layer_tree(upper)
    assert tar_of(upper) == tar_of(tmp_path / "copy")
    assert not (upper / "control.sock").exists()
    assert xattrs(upper / "app" / "tool") == {"user.note": b"kept"}
    assert (normalized.size_bytes, normalized.entry_count) == (copied.size_bytes, copied.entry_count)


names = st.text(alphabet="abcxyz.-_", min_size=1, max_size=6).filter(
    lambda name: name not in (".", "..") and not name.startswith(".wh."))
entries = st.recursive(
    st.one_of(
        st.tuples(st.just("file"), st.binary(max_size=3000), st.sampled_from([0o644, 0o600, 0o755, 0o2755])),
        st.tuples(st.just("link"), st.sampled_from(["/bin/sh", "../x", "rel"]), st.just(0)),
        st.tuples(st.just("whiteout"), st.just(b""), st.just(0)),
    ),
    lambda children: st.tuples(st.just("dir"), st.dictionaries(names, children, max_size=4),
                               st.sampled_from([0o755, 0o700, 0o1777])),
    max_leaves=12,
)


def build(root: Path, spec: dict) -> None:
    for name, (kind, value, mode) in spec.items():
        path = root / name
        if kind == "file":
            path.write_bytes(value)
            os.chmod(path, mode)
        elif kind == "link":
            os.symlink(value, path)
        elif kind == "whiteout":
            os.mknod(path, WHITEOUT, os.makedev(0, 0))
        else:
            path.mkdir()
            build(path, value)
            os.chmod(path, mode)


@pytest.mark.root
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.dictionaries(names, entries, max_size=5), linked=st.booleans(),
       nanoseconds=st.integers(0, 999_999_999))
def test_any_tree_survives_copy_and_regeneration(tmp_path: Path, spec: dict, linked: bool,
                                                 nanoseconds: int) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as directory:
        base = Path(directory)
        upper = base / "upper"
        upper.mkdir()
        build(upper, spec)
        files = sorted(p for p in upper.rglob("*") if p.is_file() and not p.is_symlink())
        if linked and files:
            os.link(files[0], upper / "hardlink")
        for path in sorted(upper.rglob("*"), key=lambda p: -len(p.parts)):
            moment = 1_650_000_000 * 1_000_000_000 + nanoseconds
            os.utime(path, ns=(moment, moment), follow_symlinks=False)
        original = tar_of(upper)
        layers.copy_layer_tree(upper, base / "copy")
        assert tar_of(base / "copy") == original
        layers.copy_layer_tree(base / "copy", base / "second")
        assert tar_of(base / "second") == original
        layers.normalize_layer_tree(upper)
        assert tar_of(upper) == original
        extracted = base / "extracted"
        layers.extract_layer(io.BytesIO(original), extracted)
        assert tree(extracted) == tree(base / "copy")


@pytest.mark.root
def test_a_layer_from_a_directory_keeps_no_tar_and_makes_it_again(tmp_path: Path) -> None:
    upper = sample_upper(tmp_path / "upper")
    expected = tar_of(upper)
    store = ImageStore(tmp_path / "store")
    diff_id = store.add_layer_from_directory(upper)
    assert upper.exists(), "a directory that was not handed over is copied, not moved"
    assert not store.blob_path(diff_id).exists(), "no tar is written for a directory layer"
    assert store.has_layer(diff_id)
    image_id = store.create_image({"config": {}}, [diff_id])
    (chain,) = store.image(image_id).chain_ids
    assert tree(store.lower_dirs(image_id)[0]) == tree(upper)
    assert store.layer_info(chain)["size"] == 300_000 + len("#!/bin/sh\n") + len("127.0.0.1 localhost\n") + len("/etc/hosts")
    assert tmp_entries(store) == [] and store.verify() == []
    assert store.blob_size(diff_id) == len(expected)
    assert store.read_blob(diff_id) == expected, "the tar is made again byte for byte"
    assert store.blob_path(diff_id).exists(), "and kept once made"
    reopened = ImageStore(tmp_path / "store")
    assert reopened.verify() == [] and reopened.has_layer(diff_id)


@pytest.mark.root
def test_a_handed_over_directory_is_moved_in(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    upper = sample_upper(tmp_path / "upper")
    expected = tar_of(upper)
    add_socket(upper / "control.sock")
    donated = store.donation_path()
    os.rename(upper, donated)
    diff_id = store.add_layer_from_directory(donated)
    assert not donated.exists(), "the store took the directory over"
    image_id = store.create_image({}, [diff_id])
    lower = store.lower_dirs(image_id)[0]
    assert not (lower / "control.sock").exists()
    assert xattrs(lower / "app" / "tool") == {"user.note": b"kept"}
    assert store.read_blob(diff_id) == expected
    assert tmp_entries(store) == [] and store.verify() == []


@pytest.mark.root
def test_a_device_in_a_directory_layer_is_refused_when_the_image_is_made(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    os.mknod(upper / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    store = ImageStore(tmp_path / "store")
    diff_id = store.add_layer_from_directory(upper)
    with pytest.raises(LayerError, match="'null': character device 1:3 not allowed"):
        store.create_image({}, [diff_id])
    assert store.images() == [] and list((store.root / "layers").iterdir()) == []
    assert tmp_entries(store) == []
    allowed = store.add_layer_from_directory(upper)
    image_id = store.register_image(
        b'{"rootfs":{"type":"layers","diff_ids":["' + allowed.encode() + b'"]}}',
        allow_devices=True)
    assert stat.S_ISCHR(os.lstat(store.lower_dirs(image_id)[0] / "null").st_mode)


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def test_a_pulled_layer_is_unpacked_once_and_its_tar_comes_from_the_blob(tmp_path: Path) -> None:
    tar = TarBuilder().directory("srv").file("srv/a", b"a" * 5000).symlink("srv/b", "a").bytes()
    compressed = gzip_bytes(tar)
    store = ImageStore(tmp_path / "store")
    diff_id = store.add_layer_from_tar(io.BytesIO(compressed), keep_tar=False, unpack=True)
    blob = store.put_blob(compressed)
    store.record_layer_digest(diff_id, blob)
    assert not store.blob_path(diff_id).exists()
    image_id = store.create_image({}, [diff_id])
    assert (store.lower_dirs(image_id)[0] / "srv" / "a").read_bytes() == b"a" * 5000
    assert tmp_entries(store) == []
    assert store.read_blob(diff_id) == tar, "decompressing the pulled blob gives the tar"
    saved = io.BytesIO()
    archive.save(store, [image_id], saved)
    other = ImageStore(tmp_path / "other")
    saved.seek(0)
    archive.load(other, saved)
    assert other.image(image_id).diff_ids == (diff_id,)


def test_keep_tar_false_needs_unpack(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    with pytest.raises(ValueError, match="keep_tar=False needs unpack=True"):
        store.add_layer_from_tar(io.BytesIO(b""), keep_tar=False)


def test_a_chain_on_another_parent_is_copied_from_a_sibling(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    tar = TarBuilder().file("shared", b"shared bytes").bytes()
    compressed = gzip_bytes(tar)
    shared = store.add_layer_from_tar(io.BytesIO(compressed), keep_tar=False, unpack=True)
    base_one = store.add_layer_from_tar(TarBuilder().file("one", b"1").stream())
    base_two = store.add_layer_from_tar(TarBuilder().file("two", b"2").stream())
    first = store.create_image({}, [base_one, shared])
    # Nothing else holds the layer now: no tar, no compressed blob, no prepared dir.
    assert not store.blob_path(shared).exists() and store.compressed_digests(shared) == []
    assert store.has_layer(shared)
    second = store.create_image({}, [base_two, shared])
    assert tree(store.lower_dirs(second)[0]) == tree(store.lower_dirs(first)[0])
    assert store.verify() == []
    store.delete(first)
    store.delete(second)
    assert not store.has_layer(shared)
    with pytest.raises(ValueError, match="is not in the store"):
        store.create_image({}, [shared])


@pytest.mark.root
def test_a_changed_chain_dir_cannot_pose_as_its_tar(tmp_path: Path) -> None:
    upper = sample_upper(tmp_path / "upper")
    store = ImageStore(tmp_path / "store")
    diff_id = store.add_layer_from_directory(upper)
    image_id = store.create_image({}, [diff_id])
    (store.lower_dirs(image_id)[0] / "etc" / "hosts").write_text("tampered\n")
    with pytest.raises(DigestMismatch, match="cannot be made again"):
        store.open_blob(diff_id)
    assert not store.blob_path(diff_id).exists() and tmp_entries(store) == []


@pytest.mark.root
def test_a_failed_copy_leaves_nothing(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "unreadable").write_bytes(b"x")
    store = ImageStore(tmp_path / "store")
    real_copy = layers._copy_file_data

    def failing(*arguments: object) -> None:
        raise OSError(5, "injected I/O error")

    layers._copy_file_data = failing  # type: ignore[assignment]
    try:
        with pytest.raises(OSError, match="injected"):
            store.add_layer_from_directory(upper)
    finally:
        layers._copy_file_data = real_copy  # type: ignore[assignment]
    assert tmp_entries(store) == [] and upper.exists()


def test_prepared_layers_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from actors.images import content

    monkeypatch.setattr(content, "PREPARED_LAYERS_MAX", 2)
    store = ImageStore(tmp_path / "store")
    made = [store.add_layer_from_tar(TarBuilder().file("f", bytes([n])).stream(), keep_tar=False,
                                     unpack=True) for n in range(4)]
    assert len(tmp_entries(store)) == 2
    assert not store.has_layer(made[0]) and store.has_layer(made[3])
    store.discard_prepared_layer(made[3])
    assert len(tmp_entries(store)) == 1


# ---- gzip through zlib


def read_all(stream: io.RawIOBase | io.BufferedIOBase, size: int = 7000) -> bytes:
    parts = []
    while chunk := stream.read(size):
        parts.append(chunk)
    return b"".join(parts)


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.binary(max_size=20_000), min_size=1, max_size=4),
       padding=st.integers(0, 1024), level=st.integers(0, 9))
def test_gzip_members_concatenate_and_padding_is_ignored(pieces: list[bytes], padding: int,
                                                         level: int) -> None:
    data = b"".join(gzip.compress(piece, compresslevel=level, mtime=0) for piece in pieces)
    kind, plain = compression.decompressed(io.BytesIO(data + b"\x00" * padding))
    assert kind == "gzip"
    assert read_all(plain) == b"".join(pieces)


@pytest.mark.parametrize("damage", ["truncated", "crc", "garbage-member"])
def test_damaged_gzip_is_an_error(damage: str) -> None:
    data = gzip.compress(os.urandom(50_000), mtime=0)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "crc":
        data = data[:-8] + bytes(4) + data[-4:]
    else:
        data = data + b"\x1f\x8b\x08\x00garbage"
    _, plain = compression.decompressed(io.BytesIO(data))
    reader = compression.HashingReader(plain)
    with pytest.raises(compression.CompressionError):
        reader.drain()


def test_a_tee_writes_what_it_reads(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    copy = io.BytesIO()
    reader = compression.HashingReader(io.BytesIO(data), copy_to=copy)
    reader.drain()
    assert copy.getvalue() == data and reader.count_bytes == len(data)


@pytest.mark.root
def test_sync_tree_handles_both_ways(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    (small / "a").write_bytes(b"a")
    report = layers.copy_layer_tree(small, tmp_path / "copy")
    assert report.plain_only
    layers.sync_tree(tmp_path / "copy", report)
    upper = sample_upper(tmp_path / "upper")
    report = layers.copy_layer_tree(upper, tmp_path / "copy2")
    assert not report.plain_only
    layers.sync_tree(tmp_path / "copy2", report)


@pytest.mark.root
def test_push_compresses_a_directory_layer_without_keeping_its_tar(tmp_path: Path) -> None:
    from actors.images.push import compress_layer

    upper = sample_upper(tmp_path / "upper")
    expected = tar_of(upper)
    store = ImageStore(tmp_path / "store")
    diff_id = store.add_layer_from_directory(upper)
    store.create_image({}, [diff_id])
    with store.open_layer_tar(diff_id) as stream:
        assert stream.read() == expected
    digest, size = compress_layer(store, diff_id)
    assert gzip.decompress(store.read_blob(digest)) == expected and store.blob_size(digest) == size
    assert store.compressed_digests(diff_id) == [digest]
    assert tmp_entries(store) == []
    # The gzip blob, now recorded, is the layer's source for its tar; a tar made from it
    # is the same bytes.
    assert store.read_blob(diff_id) == expected
    tampered = ImageStore(tmp_path / "tampered")
    other = tampered.add_layer_from_directory(upper)
    other_image = tampered.create_image({}, [other])
    (tampered.lower_dirs(other_image)[0] / "empty").write_bytes(b"changed")
    with tampered.open_layer_tar(other) as stream, pytest.raises(DigestMismatch):
        stream.read()
    with tampered.open_layer_tar(other) as stream:
        stream.read(10)  # closing early stops the writer
    assert not tampered.blob_path(other).exists() and tmp_entries(tampered) == []
