"""Push busybox from one store, pull it into another, against flotta's registry and
Debian's docker-registry: same image, layers, tags and RepoDigests; then the cheap paths
(up to date, layer already exists, cross-repository mount), pull by digest, an index,
and the byte-identical push back of a pulled image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_helpers import make_image, opener
from transfer_helpers import summarize, tree_listing

from actors.images import registry_protocol as protocol
from actors.images.distribution import DistributionClient, NotFound, Repository
from actors.images.pull import pull
from actors.images.push import push
from actors.images.store import ImageStore


def layer_digest_of(store: ImageStore, image_id: str) -> str:
    (diff_id,) = store.image(image_id).diff_ids
    (digest,) = store.compressed_digests(diff_id)
    return digest


async def roundtrip(domain: str, tmp_path: Path, source: ImageStore, image_id: str) -> None:
    name = f"{domain}/busybox"
    source.tag(image_id, f"{name}:1")
    pushed_messages: list[dict] = []
    pushed = await push(source, f"{name}:1", progress=pushed_messages.append)
    layer = layer_digest_of(source, image_id)
    (diff_id,) = source.image(image_id).diff_ids
    assert pushed.tag == "1"
    assert summarize(pushed_messages) == [
        (f"The push refers to repository [{name}]", None),
        ("Preparing", diff_id[7:19]),
        ("Pushing", diff_id[7:19]),
        ("Pushed", diff_id[7:19]),
        (f"1: digest: {pushed.digest} size: {pushed.size}", None),
        ("aux", None),
    ]
    assert pushed_messages[-1] == {"progressDetail": {}, "aux": {
        "Tag": "1", "Digest": pushed.digest, "Size": pushed.size}}
    assert source.repo_digests(image_id) == [f"{name}@{pushed.digest}"]

    target = ImageStore(tmp_path / "target")
    messages: list[dict] = []
    pulled = await pull(target, f"{name}:1", progress=messages.append)
    assert (pulled.image_id, pulled.digest) == (image_id, pushed.digest)
    assert pulled.reference == f"{name}:1"
    assert pulled.status_line == f"Status: Downloaded newer image for {name}:1"
    assert summarize(messages) == [
        ("Pulling from busybox", "1"),
        ("Pulling fs layer", layer[7:19]),
        ("Downloading", layer[7:19]),
        ("Verifying Checksum", layer[7:19]),
        ("Download complete", layer[7:19]),
        ("Extracting", layer[7:19]),
        ("Pull complete", layer[7:19]),
        (f"Digest: {pushed.digest}", None),
        (pulled.status_line, None),
    ]
    assert target.image(image_id).diff_ids == (diff_id,)
    assert target.repo_tags(image_id) == [f"{name}:1"]
    assert target.repo_digests(image_id) == [f"{name}@{pushed.digest}"]
    assert target.compressed_digests(diff_id) == [layer]
    assert target.get_manifest(pushed.digest)[1] == protocol.DOCKER_MANIFEST
    assert tree_listing(target.lower_dirs(image_id)[0]) == tree_listing(
        source.lower_dirs(image_id)[0])
    assert target.verify() == []

    again: list[dict] = []
    result = await pull(target, f"{name}:1", progress=again.append)
    assert result.status_line == f"Status: Image is up to date for {name}:1"
    assert summarize(again) == [("Pulling from busybox", "1"),
                                (f"Digest: {pushed.digest}", None), (result.status_line, None)]

    repeated: list[dict] = []
    assert await push(source, f"{name}:1", progress=repeated.append) == pushed
    assert ("Layer already exists", diff_id[7:19]) in summarize(repeated)
    assert not [m for m in repeated if m.get("status") in ("Pushing", "Pushed")]

    # The pulled image goes back byte for byte: same blob, same manifest digest, and the
    # registry mounts the layer from the repository it was pulled from.
    target.tag(image_id, f"{domain}/copy:2")
    mounted: list[dict] = []
    copied = await push(target, f"{domain}/copy:2", progress=mounted.append)
    assert copied.digest == pushed.digest
    assert ("Mounted from busybox", diff_id[7:19]) in summarize(mounted)
    assert target.compressed_digests(diff_id) == [layer]

    by_digest = ImageStore(tmp_path / "by-digest")
    digest_messages: list[dict] = []
    reference = f"{name}@{pushed.digest}"
    result = await pull(by_digest, reference, progress=digest_messages.append)
    assert result.image_id == image_id and result.reference == reference
    assert digest_messages[0] == {"status": "Pulling from busybox", "id": pushed.digest}
    assert result.status_line == f"Status: Downloaded newer image for {reference}"
    assert by_digest.repo_tags(image_id) == []
    assert by_digest.repo_digests(image_id) == [reference]
    assert by_digest.verify() == []


async def test_roundtrip_through_flotta_registry(registry, busybox_store, tmp_path: Path
                                                 ) -> None:
    source, image_id = busybox_store
    await roundtrip(f"127.0.0.1:{registry.port}", tmp_path, source, image_id)


async def test_roundtrip_through_docker_registry(docker_registry: str, busybox_store,
                                                 tmp_path: Path) -> None:
    source, image_id = busybox_store
    await roundtrip(docker_registry, tmp_path, source, image_id)


async def test_pull_resolves_an_index_to_the_platform(registry, busybox_store,
                                                      tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    source.tag(image_id, f"{domain}/multi:amd64")
    pushed = await push(source, f"{domain}/multi:amd64", progress=lambda _: None)
    other = make_image(architecture="arm64", seed=7)
    repository = Repository(domain, "multi")
    async with DistributionClient() as client:
        for digest, data in other.blobs():
            await client.push_blob(repository, digest, len(data), opener(data))
        await client.push_manifest(repository, other.digest, other.manifest, other.media_type)
        index = json.dumps({"schemaVersion": 2, "mediaType": protocol.OCI_INDEX, "manifests": [
            {"mediaType": other.media_type, "digest": other.digest, "size": len(other.manifest),
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": protocol.DOCKER_MANIFEST, "digest": pushed.digest,
             "size": pushed.size, "platform": {"os": "linux", "architecture": "amd64"}},
        ]}).encode()
        index_digest = await client.push_manifest(repository, "latest", index, protocol.OCI_INDEX)

    target = ImageStore(tmp_path / "target")
    messages: list[dict] = []
    pulled = await pull(target, f"{domain}/multi", progress=messages.append)
    assert pulled.image_id == image_id
    assert pulled.digest == index_digest
    assert messages[-2] == {"status": f"Digest: {index_digest}"}
    assert target.repo_tags(image_id) == [f"{domain}/multi:latest"]
    assert target.repo_digests(image_id) == [f"{domain}/multi@{index_digest}"]
    assert target.get_manifest(index_digest) == (index, protocol.OCI_INDEX)

    elsewhere = ImageStore(tmp_path / "elsewhere")
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x") as caught:
        await pull(elsewhere, f"{domain}/multi", progress=lambda _: None,
                   platform="linux/s390x")
    assert caught.value.status == 404
    assert elsewhere.images() == []


async def test_push_all_tags_of_a_repository(registry, busybox_store, tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    for tag in ("2", "1"):
        source.tag(image_id, f"{domain}/app:{tag}")
    source.tag(image_id, f"{domain}/unrelated:9")
    messages: list[dict] = []
    result = await push(source, f"{domain}/app", progress=messages.append, all_tags=True)
    assert result.tag == "2"
    statuses = [m["status"] for m in messages if "status" in m and "digest:" in m["status"]]
    assert [s.split(":")[0] for s in statuses] == ["1", "2"]
    assert [m["aux"]["Tag"] for m in messages if "aux" in m] == ["1", "2"]
    (diff_id,) = source.image(image_id).diff_ids
    assert summarize(messages).count(("Layer already exists", diff_id[7:19])) == 1
    async with DistributionClient() as client:
        assert await client.list_tags(Repository(domain, "app")) == ["1", "2"]
        with pytest.raises(NotFound):
            await client.list_tags(Repository(domain, "unrelated"))
