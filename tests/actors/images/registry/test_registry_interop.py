"""Interoperability with independent implementations: our client against Debian's
docker-registry (distribution 2.8), and skopeo copying between that registry, our built-in
one and an OCI layout directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from registry_helpers import Collector, make_image, opener, start_registry, write_oci_layout

from actors.images import registry_protocol as protocol
from actors.images.distribution import (
    DistributionClient,
    NotFound,
    Repository,
    VerificationFailed,
)


def succeeded(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


async def test_our_client_against_docker_registry(docker_registry: str) -> None:
    image = make_image(layer_sizes=(1500, 2_200_000), oci=True)
    repository = Repository(docker_registry, "flotta/test")
    async with DistributionClient(chunk_bytes=1_000_000, monolithic_bytes_max=4096) as client:
        outcomes = [await client.push_blob(repository, digest, len(data), opener(data))
                    for digest, data in image.blobs()]
        assert outcomes == ["pushed"] * 3
        assert await client.push_blob(repository, image.config_digest, len(image.config),
                                      opener(image.config)) == "exists"
        digest = await client.push_manifest(repository, "v1", image.manifest, image.media_type)
        assert digest == image.digest

        pulled = await client.pull_manifest(repository, "v1")
        assert (pulled.manifest, pulled.media_type) == (image.manifest, protocol.OCI_MANIFEST)
        assert pulled.config == image.config
        for layer_digest, data in zip(image.layer_digests, image.layers, strict=True):
            sink = Collector()
            await client.fetch_blob(repository, layer_digest, sink, size=len(data))
            assert bytes(sink.data) == data

        other = Repository(docker_registry, "flotta/other")
        assert await client.push_blob(other, image.layer_digests[1], len(image.layers[1]),
                                      opener(image.layers[1]), mount_from="flotta/test") == "mounted"
        assert await client.list_tags(repository) == ["v1"]

        with pytest.raises(NotFound, match="manifest unknown"):
            await client.pull_manifest(repository, "missing")
        # distribution 2.8 answers MANIFEST_UNKNOWN for a repository it never saw.
        with pytest.raises(NotFound, match=r"manifest for .*never/pushed:latest not found: "
                                           r"manifest unknown: manifest unknown"):
            await client.pull_manifest(Repository(docker_registry, "never/pushed"), "latest")
        with pytest.raises(VerificationFailed):
            await client.fetch_blob(repository, image.layer_digests[0], Collector(), size=10)


async def test_our_client_pushes_an_index_to_docker_registry(docker_registry: str) -> None:
    amd64, arm64 = make_image(seed=3), make_image(architecture="arm64", seed=4)
    repository = Repository(docker_registry, "multi")
    async with DistributionClient() as client:
        for image in (amd64, arm64):
            for digest, data in image.blobs():
                await client.push_blob(repository, digest, len(data), opener(data))
            await client.push_manifest(repository, image.digest, image.manifest, image.media_type)
        index = json.dumps({"schemaVersion": 2, "mediaType": protocol.DOCKER_MANIFEST_LIST,
                            "manifests": [
            {"mediaType": protocol.DOCKER_MANIFEST, "digest": image.digest,
             "size": len(image.manifest), "platform": {"os": "linux", "architecture": arch}}
            for image, arch in ((arm64, "arm64"), (amd64, "amd64"))]}).encode()
        await client.push_manifest(repository, "latest", index, protocol.DOCKER_MANIFEST_LIST)
        pulled = await client.pull_manifest(repository, "latest", platform="linux/arm64")
        assert pulled.digest == arm64.digest and pulled.config == arm64.config
        assert pulled.index_digest == protocol.sha256_digest(index)


async def test_skopeo_copies_an_oci_layout_into_our_registry(registry, skopeo, tmp_path) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, "v1")
    destination = f"docker://127.0.0.1:{registry.port}/skopeo/app:v1"
    succeeded(await skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", destination))

    inspected = json.loads(succeeded(await skopeo("inspect", "--tls-verify=false", destination)))
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == image.layer_digests
    raw = json.loads(succeeded(await skopeo("inspect", "--raw", "--tls-verify=false",
                                            destination)))
    assert raw["mediaType"] == protocol.OCI_MANIFEST
    tags = json.loads(succeeded(await skopeo(
        "list-tags", "--tls-verify=false", f"docker://127.0.0.1:{registry.port}/skopeo/app")))
    assert tags["Tags"] == ["v1"]

    async with DistributionClient() as client:
        pulled = await client.pull_manifest(Repository(f"127.0.0.1:{registry.port}",
                                                       "skopeo/app"), "v1")
        assert pulled.manifest == image.manifest and pulled.config == image.config

    # And back out of our registry into a fresh layout, byte for byte.
    back = tmp_path / "back"
    succeeded(await skopeo("copy", "--src-tls-verify=false", destination, f"oci:{back}:v1"))
    for digest, data in image.blobs():
        assert (back / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == data


async def test_skopeo_copies_between_docker_registry_and_ours(
    registry, docker_registry, skopeo, tmp_path
) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, "v2", seed=7)
    ours = f"127.0.0.1:{registry.port}"
    succeeded(await skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v2",
                           f"docker://{docker_registry}/origin/app:v2"))
    succeeded(await skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                           f"docker://{docker_registry}/origin/app:v2",
                           f"docker://{ours}/copied/app:v2"))
    succeeded(await skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                           f"docker://{ours}/copied/app:v2",
                           f"docker://{docker_registry}/roundtrip/app:v2"))
    async with DistributionClient() as client:
        for domain, path in ((ours, "copied/app"), (docker_registry, "roundtrip/app")):
            pulled = await client.pull_manifest(Repository(domain, path), "v2")
            assert pulled.digest == image.digest
            sink = Collector()
            await client.fetch_blob(Repository(domain, path), image.layer_digests[1], sink)
            assert bytes(sink.data) == image.layers[1]


async def test_skopeo_through_our_token_auth(skopeo, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, "v1", seed=9)
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r", users=["alice:wonderland"],
                                       token_auth=True)
        target = f"docker://127.0.0.1:{running.port}/private/app:v1"
        refused = await skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", target)
        assert refused.returncode != 0
        assert b"unauthorized" in refused.stderr.lower() or b"denied" in refused.stderr.lower()
        succeeded(await skopeo("copy", "--dest-tls-verify=false",
                               "--dest-creds", "alice:wonderland", f"oci:{layout}:v1", target))
        inspected = json.loads(succeeded(await skopeo(
            "inspect", "--tls-verify=false", "--creds", "alice:wonderland", target)))
        assert inspected["Digest"] == image.digest
        wrong = await skopeo("inspect", "--tls-verify=false", "--creds", "alice:nope", target)
        assert wrong.returncode != 0
        await running.server.shutdown()


