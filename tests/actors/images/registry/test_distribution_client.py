"""The distribution client against the built-in registry: push and pull, chunked uploads,
resumption after a cut connection, verification, platforms, errors."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest
import trio
from registry_helpers import (
    Collector,
    CuttingProxy,
    free_port,
    make_image,
    opener,
    start_registry,
)

from actors.images import registry_protocol as protocol
from actors.images.distribution import (
    Credentials,
    DistributionClient,
    NotFound,
    RegistryUnavailable,
    Repository,
    VerificationFailed,
)
from actors.images.registry_server import serve
from runtime.httpserver import HTTPServer, Response, listener_address, open_tcp_listeners


async def push_image(client: DistributionClient, repository: Repository, image, tag: str) -> str:
    for digest, data in image.blobs():
        await client.push_blob(repository, digest, len(data), opener(data))
    return await client.push_manifest(repository, tag, image.manifest, image.media_type)


def repository_on(running, path: str = "team/app") -> Repository:
    return Repository(f"127.0.0.1:{running.port}", path)


async def test_push_then_pull_round_trip(registry) -> None:
    image = make_image(layer_sizes=(3_000, 2_500_000))
    repository = repository_on(registry)
    progress: list[tuple[int, int | None]] = []
    async with DistributionClient(chunk_bytes=1_000_000, monolithic_bytes_max=10_000) as client:
        outcomes = [await client.push_blob(repository, digest, len(data), opener(data),
                                           lambda done, total: progress.append((done, total)))
                    for digest, data in image.blobs()]
        assert outcomes == ["pushed"] * 3
        # The large layer went up in PATCHes: its progress climbs to the total, in order.
        large = [done for done, total in progress if total == 2_500_000]
        assert large == sorted(large) and large[-1] == 2_500_000 and len(large) > 10
        digest = await client.push_manifest(repository, "v1", image.manifest, image.media_type)
        assert digest == image.digest

        again = [await client.push_blob(repository, digest, len(data), opener(data))
                 for digest, data in image.blobs()]
        assert again == ["exists"] * 3

        pulled = await client.pull_manifest(repository, "v1")
        assert pulled.manifest == image.manifest and pulled.digest == image.digest
        assert pulled.media_type == protocol.DOCKER_MANIFEST
        assert pulled.config == image.config and pulled.config_digest == image.config_digest
        assert [layer["digest"] for layer in pulled.layers] == image.layer_digests
        assert pulled.index_digest is None and pulled.repo_digest == image.digest
        by_digest = await client.pull_manifest(repository, image.digest)
        assert by_digest.manifest == image.manifest

        for layer_digest, data in zip(image.layer_digests, image.layers, strict=True):
            sink = Collector()
            seen: list[int] = []
            size = await client.fetch_blob(repository, layer_digest, sink,
                                           lambda done, total, seen=seen: seen.append(done),
                                           size=len(data))
            assert bytes(sink.data) == data and size == len(data) and seen[-1] == len(data)
        assert await client.list_tags(repository) == ["v1"]


async def test_chunked_upload_sends_several_patches(tmp_path: Path) -> None:
    data = os.urandom(700_000)
    digest = protocol.sha256_digest(data)
    requests: list[tuple[str, str | None]] = []
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r")
        handle = running.server.handler

        async def spy(request):
            requests.append((request.method, request.headers.get("content-range")))
            return await handle(request)

        running.server.handler = spy
        async with DistributionClient(chunk_bytes=256 * 1024, monolithic_bytes_max=1) as client:
            assert await client.push_blob(repository_on(running), digest, len(data),
                                          opener(data, 10_000)) == "pushed"
            sink = Collector()
            await client.fetch_blob(repository_on(running), digest, sink)
            assert bytes(sink.data) == data
        await running.server.shutdown()
    patches = [span for method, span in requests if method == "PATCH"]
    assert patches == ["0-262143", "262144-524287", "524288-699999"]


async def test_cross_repository_mount_and_fallback(registry) -> None:
    data = os.urandom(5000)
    digest = protocol.sha256_digest(data)
    async with DistributionClient() as client:
        await client.push_blob(repository_on(registry, "base"), digest, len(data), opener(data))
        outcome = await client.push_blob(repository_on(registry, "derived"), digest, len(data),
                                         opener(data), mount_from="base")
        assert outcome == "mounted"
        other = os.urandom(5000)
        outcome = await client.push_blob(repository_on(registry, "derived"),
                                         protocol.sha256_digest(other), len(other), opener(other),
                                         mount_from="base")
        assert outcome == "pushed"


async def test_download_resumes_after_the_connection_is_cut(tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r")
        async with DistributionClient() as direct:
            digest = protocol.sha256_digest(data)
            await direct.push_blob(repository_on(running), digest, len(data), opener(data))
        proxy = await nursery.start(CuttingProxy(running.port, 1_000_000, "download", cuts=2).run)
        ranges: list[str | None] = []
        handle = running.server.handler

        async def spy(request):
            if request.method == "GET" and "/blobs/" in request.path:
                ranges.append(request.headers.get("range"))
            return await handle(request)

        running.server.handler = spy
        through_proxy = Repository(f"127.0.0.1:{proxy.port}", "team/app")
        async with DistributionClient(backoff_seconds=0.01) as client:
            sink = Collector()
            await client.fetch_blob(through_proxy, digest, sink, size=len(data))
        assert bytes(sink.data) == data
        assert proxy.cuts_done == 2
        assert ranges[0] is None and len(ranges) == 3
        assert all(value.startswith("bytes=") and value.endswith("-") for value in ranges[1:])
        assert int(ranges[1][6:-1]) > 0
        await running.server.shutdown()
        nursery.cancel_scope.cancel()


async def test_chunked_upload_resumes_from_the_registry_range(tmp_path: Path) -> None:
    data = os.urandom(2_000_000)
    digest = protocol.sha256_digest(data)
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r")
        proxy = await nursery.start(CuttingProxy(running.port, 1_200_000, "upload").run)
        reopened_at: list[int] = []
        base_opener = opener(data, 50_000)

        def recording_opener(offset: int):
            reopened_at.append(offset)
            return base_opener(offset)

        through_proxy = Repository(f"127.0.0.1:{proxy.port}", "team/app")
        async with DistributionClient(chunk_bytes=800_000, monolithic_bytes_max=1,
                                      backoff_seconds=0.01) as client:
            assert await client.push_blob(through_proxy, digest, len(data),
                                          recording_opener) == "pushed"
            sink = Collector()
            await client.fetch_blob(repository_on(running), digest, sink)
        assert bytes(sink.data) == data
        assert proxy.cuts_done == 1
        assert reopened_at[0] == 0 and len(reopened_at) == 2
        # The second PATCH broke part-way: the registry kept what arrived and the client
        # resumed from there, not from the start of the chunk.
        assert 800_000 < reopened_at[1] <= 1_600_000
        await running.server.shutdown()
        nursery.cancel_scope.cancel()


async def test_corrupted_blob_fails_verification(registry) -> None:
    data = os.urandom(100_000)
    digest = protocol.sha256_digest(data)
    async with DistributionClient() as client:
        await client.push_blob(repository_on(registry), digest, len(data), opener(data))
        stored = next(path for path in Path(registry.app.storage.root, "blobs").rglob("*")
                      if path.is_file())
        stored.write_bytes(b"X" + data[1:])
        with pytest.raises(VerificationFailed, match=f"verification failed for digest {digest}"):
            await client.fetch_blob(repository_on(registry), digest, Collector())
        stored.write_bytes(data + b"extra")
        with pytest.raises(VerificationFailed, match="longer than its declared"):
            await client.fetch_blob(repository_on(registry), digest, Collector(), size=len(data))


async def test_a_source_that_lies_about_its_content_is_refused(registry) -> None:
    data = os.urandom(3000)
    async with DistributionClient() as client:
        with pytest.raises(Exception) as failure:
            await client.push_blob(repository_on(registry), protocol.sha256_digest(b"other"),
                                   len(data), opener(data))
        assert "digest" in str(failure.value).lower()
        assert await client.blob_size(repository_on(registry),
                                      protocol.sha256_digest(b"other")) is None


async def test_index_resolves_to_the_requested_platform(registry) -> None:
    amd64 = make_image(oci=True, seed=1)
    arm64 = make_image(oci=True, architecture="arm64", seed=2)
    repository = repository_on(registry, "multi")
    async with DistributionClient() as client:
        for image in (amd64, arm64):
            await push_image(client, repository, image, image.digest)
        index = json.dumps({"schemaVersion": 2, "mediaType": protocol.OCI_INDEX, "manifests": [
            {"mediaType": protocol.OCI_MANIFEST, "digest": image.digest,
             "size": len(image.manifest), "platform": {"os": "linux", "architecture": arch}}
            for image, arch in ((arm64, "arm64"), (amd64, "amd64"))]}).encode()
        index_digest = await client.push_manifest(repository, "latest", index, protocol.OCI_INDEX)
        pulled = await client.pull_manifest(repository, "latest")
        assert pulled.digest == amd64.digest and pulled.config == amd64.config
        assert pulled.index_digest == index_digest and pulled.repo_digest == index_digest
        pulled = await client.pull_manifest(repository, "latest", platform="linux/arm64")
        assert pulled.digest == arm64.digest
        with pytest.raises(NotFound, match="no matching manifest for linux/ppc64le"):
            await client.pull_manifest(repository, "latest", platform="linux/ppc64le")


async def test_errors_use_dockers_messages(registry) -> None:
    image = make_image(layer_sizes=(10,))
    repository = repository_on(registry)
    async with DistributionClient() as client:
        await push_image(client, repository, image, "v1")
        with pytest.raises(NotFound) as missing_tag:
            await client.pull_manifest(repository, "nope")
        assert missing_tag.value.status == 404
        assert str(missing_tag.value) == (
            f"manifest for {repository}:nope not found: manifest unknown: manifest unknown")
        with pytest.raises(NotFound) as missing_repository:
            await client.pull_manifest(repository_on(registry, "absent"), "latest")
        assert str(missing_repository.value) == (
            f"repository 127.0.0.1:{registry.port}/absent not found: name unknown: "
            "repository name not known to registry")
        with pytest.raises(NotFound):
            await client.fetch_blob(repository, "sha256:" + "0" * 64, Collector())


async def test_unreachable_registry_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    async with DistributionClient(attempts_max=2, backoff_seconds=0.01) as client:
        with pytest.raises(RegistryUnavailable) as failure:
            await client.pull_manifest(Repository(f"127.0.0.1:{free_port()}", "x"), "latest")
    assert "/v2/" in str(failure.value)


async def test_tls_registry_is_used_without_verification_when_insecure(
    tmp_path: Path, certificates
) -> None:
    data = b"over https"
    digest = protocol.sha256_digest(data)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(
            serve, str(tmp_path / "r"), port=0, tls_cert=str(certificates["server.pem"]),
            tls_key=str(certificates["server.key"])))
        assert running.url.startswith("https://")
        async with DistributionClient() as client:
            await client.push_blob(repository_on(running), digest, len(data), opener(data))
            sink = Collector()
            await client.fetch_blob(repository_on(running), digest, sink)
            assert bytes(sink.data) == data
            state = client._registries[f"127.0.0.1:{running.port}"]
            assert state.base_url.startswith("https://") and state.verify is False
        await running.server.shutdown()


async def test_blob_redirects_are_followed_without_leaking_credentials(tmp_path: Path) -> None:
    """A registry may redirect blob downloads to storage elsewhere: the client follows,
    and the registry's Authorization header stays behind."""
    data = os.urandom(70_000)
    digest = protocol.sha256_digest(data)
    seen_by_storage: list[str | None] = []

    async def storage(request):
        seen_by_storage.append(request.headers.get("authorization"))
        return Response(200, data, content_type="application/octet-stream")

    storage_listeners = await open_tcp_listeners("127.0.0.1", 0)
    storage_port = listener_address(storage_listeners[0])[1]
    async with trio.open_nursery() as nursery:
        storage_server = await nursery.start(HTTPServer(storage).serve, storage_listeners)
        running = await start_registry(nursery, tmp_path / "r", users=["alice:pw"])
        handle = running.server.handler
        seen_by_registry: list[str | None] = []

        async def redirecting(request):
            if request.method == "GET" and request.path.endswith(f"/blobs/{digest}"):
                seen_by_registry.append(request.headers.get("authorization"))
                return Response(307, b"", [(
                    "Location", f"http://localhost:{storage_port}/storage/{digest}?signed=1")])
            return await handle(request)

        running.server.handler = redirecting
        domain = f"127.0.0.1:{running.port}"
        async with DistributionClient(credentials={domain: Credentials("alice", "pw")}) as client:
            await client.push_blob(Repository(domain, "x"), digest, len(data), opener(data))
            sink = Collector()
            await client.fetch_blob(Repository(domain, "x"), digest, sink, size=len(data))
        assert bytes(sink.data) == data
        assert seen_by_registry and seen_by_registry[0].startswith("Basic ")
        assert seen_by_storage == [None]
        await running.server.shutdown()
        await storage_server.shutdown()
