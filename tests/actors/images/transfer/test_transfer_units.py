"""The pieces of pull and push that need no registry: Docker's size and progress-bar
formatting, the parallel gzip writer, the blob-source records, API references, and which
error wins when a corrupt download also breaks the decompressor (with a fake client)."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st
from transfer_helpers import layer_tar, tmp_entries

from actors.images import registry_protocol as protocol
from actors.images.distribution import DistributionError, Repository, VerificationFailed
from actors.images.pull import (
    BlobSources,
    Throttle,
    blob_sources,
    human_size,
    progress_bar,
    pull,
    reference_from_api,
)
from actors.images.push import compress_layer, gzip_stream, layer_blob, schema2_manifest
from actors.images.reference import InvalidReference
from actors.images.store import ImageStore

# ------------------------------------------------------------------ formatting


def test_human_size_is_dockers() -> None:
    assert [human_size(n) for n in (0, 1, 999, 1000, 1234, 65536, 999_999, 1_037_186,
                                    2_217_123, 52_428_800, 3 * 10**12)] == [
        "0B", "1B", "999B", "1kB", "1.234kB", "65.54kB", "1000kB", "1.037MB", "2.217MB",
        "52.43MB", "3TB"]


def test_progress_bar_is_dockers() -> None:
    assert progress_bar(1_200_000, 2_100_000) == (
        "[" + "=" * 28 + ">" + " " * 22 + "]    1.2MB/2.1MB")
    assert progress_bar(0, 1000) == "[>" + " " * 50 + "]       0B/1kB"
    assert progress_bar(1000, 1000) == "[" + "=" * 50 + ">]      1kB/1kB"
    assert progress_bar(2000, 1000) == "[" + "=" * 50 + ">]      2kB"
    assert progress_bar(5000, 0) == "     5kB"
    assert progress_bar(0, 0) == ""


@given(st.integers(0, 10**12), st.integers(1, 10**12))
def test_progress_bar_shape(current: int, total: int) -> None:
    bar = progress_bar(current, total)
    match = re.fullmatch(r"\[(=*)>( *)\] (.+)", bar)
    assert match is not None
    assert len(match.group(1)) + len(match.group(2)) == 50
    assert len(match.group(1)) == min(50, int(current / total * 100) // 2)
    numbers = match.group(3)
    assert len(numbers.split("/")[0]) >= 8
    assert numbers.strip().split("/")[0] == human_size(current)


@given(st.integers(1, 10**10), st.lists(st.integers(0, 10**10), max_size=300))
def test_throttle_lets_through_about_a_hundred_and_the_end(total: int, steps: list[int]) -> None:
    throttle = Throttle(total)
    passed = [done for done in [*sorted(steps), total] if throttle.due(min(done, total), total)]
    assert passed[-1] == total or throttle.last == total
    assert len(passed) <= 102


def test_reference_from_api() -> None:
    assert reference_from_api("busybox") == "busybox"
    assert reference_from_api("busybox", "1.36") == "docker.io/library/busybox:1.36"
    assert reference_from_api("docker.io/library/busybox:old", "new") == (
        "docker.io/library/busybox:new")
    digest = "sha256:" + "a" * 64
    assert reference_from_api("localhost:5000/app", digest) == f"localhost:5000/app@{digest}"
    with pytest.raises(InvalidReference):
        reference_from_api("busybox", "bad tag")


# ------------------------------------------------------------------ gzip

def _content(kind: str, seed: int, size: int) -> bytes:
    """Noise (does not compress), text (compresses) or zeros, reproducible from a seed."""
    if kind == "noise":
        return random.Random(seed).randbytes(size)
    if kind == "text":
        words = [b"layer", b"tar", b"usr/bin/", b"%d" % seed, b"\n"]
        return b" ".join(words[(seed + n) % len(words)] for n in range(size // 4))[:size]
    return bytes(size)


_parts = st.lists(st.tuples(st.sampled_from(["noise", "text", "zeros"]), st.integers(0, 2**16),
                            st.integers(0, 200_000)), max_size=5)


@given(_parts, st.integers(1024, 140_000), st.integers(1, 3))
@example([("noise", 1, 150_000), ("text", 2, 50_000)], 65536, 2)
@example([("text", 3, 20_000), ("noise", 4, 70_000)], 30_000, 3)
@example([], 1024, 1)
def test_gzip_stream_is_one_member_that_decompresses_to_the_input(
        parts: list[tuple[str, int, int]], piece_bytes: int, workers: int) -> None:
    data = b"".join(_content(*part) for part in parts)
    out = io.BytesIO()
    digest, size = gzip_stream(io.BytesIO(data), out, piece_bytes=piece_bytes, workers=workers)
    written = out.getvalue()
    assert (digest, size) == (protocol.sha256_digest(written), len(written))
    decompressor = zlib.decompressobj(wbits=31)
    assert decompressor.decompress(written) == data
    assert decompressor.eof and decompressor.unused_data == b""
    assert gzip.decompress(written) == data
    again = io.BytesIO()
    gzip_stream(io.BytesIO(data), again, piece_bytes=piece_bytes, workers=1)
    assert again.getvalue() == written  # the same blob whatever the parallelism


def test_gzip_stores_what_does_not_compress_and_deflates_what_does() -> None:
    noise = os.urandom(3 << 20)
    out = io.BytesIO()
    _, size = gzip_stream(io.BytesIO(noise), out)
    assert len(noise) < size < len(noise) * 1.001
    assert gzip.decompress(out.getvalue()) == noise
    text = b"".join(b"line %d of a very regular text file\n" % n for n in range(100_000))
    out = io.BytesIO()
    _, size = gzip_stream(io.BytesIO(text), out)
    assert size < len(text) / 4
    assert out.getvalue()[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert gzip.decompress(out.getvalue()) == text


def test_compress_layer_is_recorded_and_reused(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    tar = layer_tar({"a": b"x" * 100_000, "b": os.urandom(50_000)})
    diff_id = store.add_layer_from_tar(io.BytesIO(tar))
    digest, size = compress_layer(store, diff_id)
    assert store.compressed_digests(diff_id) == [digest]
    assert gzip.decompress(store.read_blob(digest)) == tar and store.blob_size(digest) == size
    assert layer_blob(store, diff_id) == (digest, size)
    assert tmp_entries(store) == []
    # A recorded blob that is not gzip (an uncompressed OCI layer) is not pushed as gzip.
    other = ImageStore(tmp_path / "other")
    other_diff = other.add_layer_from_tar(io.BytesIO(tar))
    other.record_layer_digest(other_diff, other_diff)
    assert layer_blob(other, other_diff) == (digest, size)


def test_schema2_manifest_layout() -> None:
    body = schema2_manifest("sha256:" + "c" * 64, 10, [("sha256:" + "1" * 64, 5)])
    assert body.decode().splitlines()[:3] == [
        "{", '   "schemaVersion": 2,',
        '   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",']
    parsed = protocol.parse_manifest(body, protocol.DOCKER_MANIFEST)
    assert parsed.media_type == protocol.DOCKER_MANIFEST


# ------------------------------------------------------------------ blob sources


def test_blob_sources_remember_bounded_and_prune(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    held = store.put_blob(b"held")
    gone = store.put_blob(b"gone")
    sources = blob_sources(store)
    assert blob_sources(store) is sources
    sources.record([held, gone], Repository("reg:5000", "one"))
    for number in range(10):
        sources.record([held], Repository("reg:5000", f"repo{number}"))
    sources.record([held], Repository("other:5000", "elsewhere"))
    assert sources.repositories(held, "reg:5000") == [f"repo{n}" for n in range(9, 2, -1)]
    assert sources.repositories(held, "other:5000") == ["elsewhere"]
    assert sources.repositories(gone, "reg:5000") == ["one"]
    store.blob_path(gone).unlink()
    sources.record([held], Repository("reg:5000", "repo5"))
    reloaded = BlobSources(store)
    assert reloaded.repositories(gone, "reg:5000") == []
    assert reloaded.repositories(held, "reg:5000")[0] == "repo5"
    assert json.loads((store.root / BlobSources.FILE_NAME).read_bytes()).keys() == {held}


# ------------------------------------------------------------------ which error wins


class _ObservedStore(ImageStore):
    """Tells the test when the decompressing thread has given up on a layer."""

    def __init__(self, *arguments: Any, **options: Any) -> None:
        super().__init__(*arguments, **options)
        self.layer_failed = threading.Event()

    def add_layer_from_tar(self, stream: Any, **options: Any) -> str:
        try:
            return super().add_layer_from_tar(stream, **options)
        except Exception:
            self.layer_failed.set()
            raise


class _FakeClient:
    """Serves one image from memory; the layer blob can be replaced by bad bytes."""

    def __init__(self, layer: bytes, diff_id: str, served: bytes, verified: bool,
                 store: _ObservedStore) -> None:
        self.config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": [diff_id]}}).encode()
        self.layer = served
        self.layer_digest = protocol.sha256_digest(served if verified else layer)
        self.verified = verified
        self.store = store
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": protocol.OCI_MANIFEST,
            "config": {"mediaType": protocol.OCI_CONFIG, "size": len(self.config),
                       "digest": protocol.sha256_digest(self.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "size": len(served), "digest": self.layer_digest}]}).encode()

    async def __aenter__(self) -> _FakeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def get_manifest(self, repository: Repository, reference: str):
        return self.manifest, protocol.OCI_MANIFEST, protocol.sha256_digest(self.manifest)

    async def fetch_blob_bytes(self, repository: Repository, digest: str, size=None,
                               size_max=None) -> bytes:
        return self.config

    async def fetch_blob(self, repository, digest, sink, progress, *, size=None) -> int:
        await sink(self.layer)
        progress(len(self.layer), size)
        # Let the decompressor meet the damage first, as on a fast link with a slow disk.
        assert await trio.to_thread.run_sync(self.store.layer_failed.wait, 30)
        if not self.verified:
            raise VerificationFailed(f"filesystem layer verification failed for digest {digest}")
        return len(self.layer)


@pytest.mark.parametrize("verified", [False, True])
async def test_verification_failure_wins_over_the_decompressor(tmp_path: Path,
                                                               verified: bool) -> None:
    tar = layer_tar({"file": os.urandom(3_000_000)})  # more than the reader batches
    layer = gzip.compress(tar, mtime=0)
    damaged = layer[:10] + b"\xff" * 64 + layer[74:]  # an invalid deflate block type
    store = _ObservedStore(tmp_path / "store")
    client = _FakeClient(layer, protocol.sha256_digest(tar), damaged, verified, store)
    expected = (DistributionError, r"failed to register layer: .*invalid block type") if (
        verified) else (VerificationFailed, r"filesystem layer verification failed")
    with pytest.raises(expected[0], match=expected[1]) as caught:
        await pull(store, "localhost:5000/app:1", progress=lambda _: None,
                   client_factory=lambda **_: client)
    assert isinstance(caught.value, VerificationFailed) != verified
    assert store.images() == [] and tmp_entries(store) == []
    assert store.has_blob(client.layer_digest) == verified
