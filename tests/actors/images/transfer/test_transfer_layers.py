"""Layer encodings other than gzip: OCI images with uncompressed and zstd layers pull into
the store, and push back as gzip (Docker's schema2), compressed once and then reused."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
from transfer_helpers import layer_tar, push_raw_image, summarize

from actors.images import registry_protocol as protocol
from actors.images.pull import pull
from actors.images.push import push
from actors.images.store import ImageStore


def zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                          check=True).stdout


@pytest.mark.parametrize("encoding", ["tar", "tar+zstd"])
async def test_other_layer_encodings_pull_and_push_back_as_gzip(
        registry, tmp_path: Path, encoding: str) -> None:
    domain = f"127.0.0.1:{registry.port}"
    tars = [layer_tar({"base.txt": b"base" * 5000}),
            layer_tar({"top.bin": os.urandom(100_000)})]
    blobs = tars if encoding == "tar" else [zstd(tar) for tar in tars]
    diff_ids = [protocol.sha256_digest(tar) for tar in tars]
    image_id, digest = await push_raw_image(
        domain, "encoded", blobs, diff_ids, f"application/vnd.oci.image.layer.v1.{encoding}")

    store = ImageStore(tmp_path / "store")
    pulled = await pull(store, f"{domain}/encoded:1", progress=lambda _: None)
    assert (pulled.image_id, pulled.digest) == (image_id, digest)
    top, base = store.lower_dirs(image_id)
    assert (base / "base.txt").read_bytes() == b"base" * 5000
    assert (top / "top.bin").stat().st_size == 100_000
    for diff_id, blob in zip(diff_ids, blobs, strict=True):
        blob_digest = protocol.sha256_digest(blob)
        assert store.compressed_digests(diff_id) == (
            [] if blob_digest == diff_id else [blob_digest])
    assert store.verify() == []

    store.tag(image_id, f"{domain}/regzipped:1")
    messages: list[dict] = []
    pushed = await push(store, f"{domain}/regzipped:1", progress=messages.append)
    for diff_id, tar in zip(diff_ids, tars, strict=True):
        gzip_digests = [d for d in store.compressed_digests(diff_id)
                        if store.read_blob(d)[:2] == b"\x1f\x8b"]
        assert len(gzip_digests) == 1
        assert gzip.decompress(store.read_blob(gzip_digests[0])) == tar
        assert ("Pushed", diff_id[7:19]) in summarize(messages)
    manifest, media_type = store.get_manifest(pushed.digest)
    assert media_type == protocol.DOCKER_MANIFEST
    assert [layer["mediaType"] for layer in json.loads(manifest)["layers"]] == [
        "application/vnd.docker.image.rootfs.diff.tar.gzip"] * 2

    again = ImageStore(tmp_path / "again")
    assert (await pull(again, f"{domain}/regzipped:1", progress=lambda _: None)
            ).image_id == image_id
