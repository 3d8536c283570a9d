"""The built-in registry spoken to in raw HTTP: the distribution API's requests, answers,
status codes and error bodies, and what its storage leaves on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from registry_helpers import free_port, make_image, start_registry

from actors.images import registry_protocol as protocol
from actors.images.registry_server import main as registry_main
from actors.images.registry_storage import RegistryStorage

DIGEST_ZERO = "sha256:" + "0" * 64


def client_for(registry) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=registry.url)


def error_codes(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/json"
    return [error["code"] for error in response.json()["errors"]]


async def upload(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    digest = protocol.sha256_digest(data)
    response = await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest},
                                 content=data)
    assert response.status_code == 201, response.text
    return digest


async def push_image(client: httpx.AsyncClient, name: str, image, tag: str = "latest") -> None:
    for _, data in image.blobs():
        await upload(client, name, data)
    response = await client.put(f"/v2/{name}/manifests/{tag}", content=image.manifest,
                                headers={"Content-Type": image.media_type})
    assert response.status_code == 201, response.text


async def test_base_and_unknown_routes(registry) -> None:
    async with client_for(registry) as client:
        response = await client.get("/v2/")
        assert response.status_code == 200 and response.json() == {}
        assert response.headers["docker-distribution-api-version"] == "registry/2.0"
        response = await client.get("/v3/whatever")
        assert response.status_code == 404
        response = await client.get("/v2/UPPER/tags/list")
        assert response.status_code == 400 and error_codes(response) == ["NAME_INVALID"]
        response = await client.post("/v2/x/manifests/latest")
        assert response.status_code == 405 and error_codes(response) == ["UNSUPPORTED"]


async def test_chunked_upload_with_content_range_and_out_of_order_416(registry) -> None:
    data = os.urandom(200_000)
    digest = protocol.sha256_digest(data)
    async with client_for(registry) as client:
        started = await client.post("/v2/team/app/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["location"]
        assert started.headers["range"] == "0-0"
        assert started.headers["docker-upload-uuid"] in location

        first = await client.patch(location, content=data[:100_000],
                                   headers={"Content-Range": "0-99999",
                                            "Content-Type": "application/octet-stream"})
        assert first.status_code == 202 and first.headers["range"] == "0-99999"
        location = first.headers["location"]

        skipped = await client.patch(location, content=data[150_000:],
                                     headers={"Content-Range": "150000-199999"})
        assert skipped.status_code == 416 and error_codes(skipped) == ["RANGE_INVALID"]
        assert skipped.headers["range"] == "0-99999"

        status = await client.get(location)
        assert status.status_code == 204 and status.headers["range"] == "0-99999"

        # A chunk without Content-Range (how the docker client streams) simply appends.
        second = await client.patch(location, content=data[100_000:])
        assert second.status_code == 202 and second.headers["range"] == "0-199999"

        done = await client.put(second.headers["location"], params={"digest": digest})
        assert done.status_code == 201
        assert done.headers["docker-content-digest"] == digest
        assert done.headers["location"] == f"/v2/team/app/blobs/{digest}"

        fetched = await client.get(f"/v2/team/app/blobs/{digest}")
        assert fetched.content == data
        assert fetched.headers["docker-content-digest"] == digest
        gone = await client.get(location)
        assert gone.status_code == 404 and error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]


async def test_digest_mismatch_is_refused_and_nothing_is_stored(registry) -> None:
    data = b"the real content"
    async with client_for(registry) as client:
        response = await client.post("/v2/x/blobs/uploads/", params={"digest": DIGEST_ZERO},
                                     content=data)
        assert response.status_code == 400 and error_codes(response) == ["DIGEST_INVALID"]
        started = await client.post("/v2/x/blobs/uploads/")
        location = started.headers["location"]
        await client.patch(location, content=data)
        response = await client.put(location, params={"digest": DIGEST_ZERO})
        assert response.status_code == 400 and error_codes(response) == ["DIGEST_INVALID"]
        response = await client.put(location, params={"digest": "sha256:nothex"})
        assert response.status_code in (400, 404)
        for digest in (DIGEST_ZERO, protocol.sha256_digest(data)):
            assert (await client.head(f"/v2/x/blobs/{digest}")).status_code == 404
    storage_root = Path(registry.app.storage.root)
    assert not any(path.is_file() for path in (storage_root / "blobs").rglob("*"))
    assert list((storage_root / "uploads").iterdir()) == []


async def test_put_with_final_chunk_and_cancel(registry) -> None:
    data = b"a" * 1000 + b"b" * 1000
    async with client_for(registry) as client:
        location = (await client.post("/v2/x/blobs/uploads/")).headers["location"]
        location = (await client.patch(location, content=data[:1000])).headers["location"]
        done = await client.put(location, params={"digest": protocol.sha256_digest(data)},
                                content=data[1000:])
        assert done.status_code == 201
        location = (await client.post("/v2/x/blobs/uploads/")).headers["location"]
        assert (await client.delete(location)).status_code == 204
        assert (await client.get(location)).status_code == 404


async def test_blob_head_get_range_and_delete(registry) -> None:
    data = bytes(range(256)) * 40
    async with client_for(registry) as client:
        digest = await upload(client, "x", data)
        head = await client.head(f"/v2/x/blobs/{digest}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["docker-content-digest"] == digest
        part = await client.get(f"/v2/x/blobs/{digest}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = await client.get(f"/v2/x/blobs/{digest}", headers={"Range": "bytes=10000-"})
        assert tail.content == data[10000:]
        bad = await client.get(f"/v2/x/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"})
        assert bad.status_code == 416
        assert (await client.get(f"/v2/other/blobs/{digest}")).status_code == 404
        assert (await client.delete(f"/v2/x/blobs/{digest}")).status_code == 202
        missing = await client.get(f"/v2/x/blobs/{digest}")
        assert missing.status_code == 404 and error_codes(missing) == ["BLOB_UNKNOWN"]


async def test_cross_repository_mount(registry) -> None:
    async with client_for(registry) as client:
        digest = await upload(client, "source/repo", b"shared layer")
        mounted = await client.post("/v2/target/blobs/uploads/",
                                    params={"mount": digest, "from": "source/repo"})
        assert mounted.status_code == 201
        assert mounted.headers["location"] == f"/v2/target/blobs/{digest}"
        assert (await client.get(f"/v2/target/blobs/{digest}")).content == b"shared layer"
        fallback = await client.post("/v2/target/blobs/uploads/",
                                     params={"mount": DIGEST_ZERO, "from": "source/repo"})
        assert fallback.status_code == 202 and "/blobs/uploads/" in fallback.headers["location"]


async def test_manifests_by_tag_and_digest(registry) -> None:
    image = make_image(oci=True)
    async with client_for(registry) as client:
        await push_image(client, "team/app", image, "v1")
        for reference in ("v1", image.digest):
            response = await client.get(f"/v2/team/app/manifests/{reference}",
                                        headers={"Accept": protocol.MANIFEST_ACCEPT})
            assert response.status_code == 200
            assert response.content == image.manifest
            assert response.headers["content-type"] == protocol.OCI_MANIFEST
            assert response.headers["docker-content-digest"] == image.digest
            head = await client.head(f"/v2/team/app/manifests/{reference}")
            assert head.headers["content-length"] == str(len(image.manifest))
            assert head.headers["docker-content-digest"] == image.digest
        by_digest = await client.put(f"/v2/team/app/manifests/{image.digest}",
                                     content=image.manifest, params={"tag": ["v2", "v3"]},
                                     headers={"Content-Type": image.media_type})
        assert by_digest.status_code == 201
        tags = (await client.get("/v2/team/app/tags/list")).json()
        assert tags == {"name": "team/app", "tags": ["v1", "v2", "v3"]}
        wrong = await client.put(f"/v2/team/app/manifests/{DIGEST_ZERO}", content=image.manifest,
                                 headers={"Content-Type": image.media_type})
        assert wrong.status_code == 400 and error_codes(wrong) == ["DIGEST_INVALID"]
        unknown = await client.get("/v2/team/app/manifests/nope")
        assert unknown.status_code == 404 and error_codes(unknown) == ["MANIFEST_UNKNOWN"]
        no_repo = await client.get("/v2/absent/manifests/latest")
        assert no_repo.status_code == 404 and error_codes(no_repo) == ["NAME_UNKNOWN"]

        # Deleting a tag keeps the manifest; deleting the digest removes it and its tags.
        assert (await client.delete("/v2/team/app/manifests/v3")).status_code == 202
        assert (await client.get("/v2/team/app/manifests/v3")).status_code == 404
        assert (await client.get(f"/v2/team/app/manifests/{image.digest}")).status_code == 200
        assert (await client.delete(f"/v2/team/app/manifests/{image.digest}")).status_code == 202
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 404
        assert (await client.get("/v2/team/app/tags/list")).json()["tags"] == []


async def test_manifest_referencing_missing_blobs_is_refused(registry) -> None:
    image = make_image()
    async with client_for(registry) as client:
        await upload(client, "x", image.config)
        response = await client.put("/v2/x/manifests/latest", content=image.manifest,
                                    headers={"Content-Type": image.media_type})
        assert response.status_code == 400 and error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
        assert set(response.json()["errors"][0]["detail"]["digests"]) == set(image.layer_digests)
        invalid = await client.put("/v2/x/manifests/latest", content=b"{}",
                                   headers={"Content-Type": protocol.DOCKER_MANIFEST})
        assert invalid.status_code == 400 and error_codes(invalid) == ["MANIFEST_INVALID"]
        assert (await client.get("/v2/x/manifests/latest")).status_code == 404


async def test_index_requires_its_manifests_and_referrers(registry) -> None:
    amd64, arm64 = make_image(oci=True, seed=1), make_image(oci=True, architecture="arm64", seed=2)
    index = json.dumps({"schemaVersion": 2, "mediaType": protocol.OCI_INDEX, "manifests": [
        {"mediaType": protocol.OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest),
         "platform": {"os": "linux", "architecture": architecture}}
        for image, architecture in ((amd64, "amd64"), (arm64, "arm64"))]}).encode()
    async with client_for(registry) as client:
        await push_image(client, "multi", amd64, amd64.digest)
        refused = await client.put("/v2/multi/manifests/latest", content=index,
                                   headers={"Content-Type": protocol.OCI_INDEX})
        assert error_codes(refused) == ["MANIFEST_BLOB_UNKNOWN"]
        await push_image(client, "multi", arm64, arm64.digest)
        stored = await client.put("/v2/multi/manifests/latest", content=index,
                                  headers={"Content-Type": protocol.OCI_INDEX})
        assert stored.status_code == 201
        assert (await client.get("/v2/multi/manifests/latest")).headers["content-type"] == \
            protocol.OCI_INDEX

        empty = await upload(client, "multi", b"{}")
        artifact = json.dumps({
            "schemaVersion": 2, "mediaType": protocol.OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty,
                       "size": 2},
            "layers": [],
            "subject": {"mediaType": protocol.OCI_MANIFEST, "digest": amd64.digest,
                        "size": len(amd64.manifest)}}).encode()
        put = await client.put(f"/v2/multi/manifests/{protocol.sha256_digest(artifact)}",
                               content=artifact, headers={"Content-Type": protocol.OCI_MANIFEST})
        assert put.headers["oci-subject"] == amd64.digest
        referrers = await client.get(f"/v2/multi/referrers/{amd64.digest}")
        assert referrers.headers["content-type"] == protocol.OCI_INDEX
        assert [entry["artifactType"] for entry in referrers.json()["manifests"]] == \
            ["application/vnd.example.sbom"]
        filtered = await client.get(f"/v2/multi/referrers/{amd64.digest}",
                                    params={"artifactType": "other"})
        assert filtered.json()["manifests"] == []
        assert filtered.headers["oci-filters-applied"] == "artifactType"


async def test_tags_and_catalog_paging(registry) -> None:
    image = make_image(layer_sizes=(10,))
    async with client_for(registry) as client:
        for name in ("b/two", "a/one", "c"):
            await push_image(client, name, image)
        for tag in ("v3", "v1", "v10", "v2"):
            response = await client.put(f"/v2/a/one/manifests/{tag}", content=image.manifest,
                                        headers={"Content-Type": image.media_type})
            assert response.status_code == 201
        page = await client.get("/v2/a/one/tags/list", params={"n": 2})
        assert page.json()["tags"] == ["latest", "v1"]
        link = page.headers["link"]
        assert link == '</v2/a/one/tags/list?last=v1&n=2>; rel="next"'
        page = await client.get(link[1:link.index(">")])
        assert page.json()["tags"] == ["v10", "v2"]
        page = await client.get(page.headers["link"].split(">")[0][1:])
        assert page.json()["tags"] == ["v3"] and "link" not in page.headers
        assert (await client.get("/v2/a/one/tags/list", params={"n": "x"})).status_code == 400
        catalog = await client.get("/v2/_catalog", params={"n": 2})
        assert catalog.json() == {"repositories": ["a/one", "b/two"]}
        assert "last=b/two" in catalog.headers["link"] or "last=b%2Ftwo" in catalog.headers["link"]
        rest = await client.get("/v2/_catalog", params={"n": 2, "last": "b/two"})
        assert rest.json() == {"repositories": ["c"]}
        missing = await client.get("/v2/nothing/tags/list")
        assert missing.status_code == 404 and error_codes(missing) == ["NAME_UNKNOWN"]


async def test_an_upload_survives_a_server_restart(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    data = os.urandom(50_000)
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, root)
        async with client_for(running) as client:
            location = (await client.post("/v2/x/blobs/uploads/")).headers["location"]
            await client.patch(location, content=data[:20_000])
        await running.server.shutdown()
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, root)
        async with client_for(running) as client:
            status = await client.get(location)
            assert status.headers["range"] == "0-19999"
            await client.patch(location, content=data[20_000:])
            done = await client.put(location, params={"digest": protocol.sha256_digest(data)})
            assert done.status_code == 201
        await running.server.shutdown()


def test_kill_9_during_an_upload_leaves_no_visible_blob(tmp_path: Path) -> None:
    """A registry process killed mid-upload: after a restart the blob does not exist and
    the session still holds a prefix of what was sent."""
    root = tmp_path / "registry"
    port = free_port()
    command = [sys.executable, "-m", "actors.images.registry_server", "serve",
               "--addr", f"127.0.0.1:{port}", "--root", str(root)]
    repository_root = Path(__file__).resolve().parents[4]
    process = subprocess.Popen(command, cwd=repository_root, stderr=subprocess.PIPE, text=True)
    try:
        assert "registry listening on" in process.stderr.readline()
        base = f"http://127.0.0.1:{port}"
        data = os.urandom(4 * 1024 * 1024)
        digest = protocol.sha256_digest(data)
        location = httpx.post(f"{base}/v2/x/blobs/uploads/").headers["location"]

        def body():
            yield data[: 1024 * 1024]
            process.send_signal(signal.SIGKILL)
            process.wait()
            yield data[1024 * 1024:]

        with pytest.raises(httpx.TransportError):
            httpx.put(f"{base}{location}", params={"digest": digest}, content=body(),
                      headers={"Content-Length": str(len(data))})
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()
    assert not any(path.is_file() for path in (root / "blobs").rglob("*"))
    assert not (root / "repositories" / "x" / "_layers").exists()
    storage = RegistryStorage(root)
    session_id = location.rsplit("/", 1)[1]
    session = trio.run(storage.get_upload, "x", session_id)
    assert session.size <= 1024 * 1024
    assert (root / "uploads" / session_id / "data").read_bytes() == data[: session.size]


def test_cli_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert registry_main(["serve", "--root", "/nonexistent-never", "--addr", "nope"]) == 2
    assert "--addr expects HOST:PORT" in capsys.readouterr().err
    assert registry_main(["registry", "serve", "--root", "x", "--token-auth"]) == 2
    assert "--token-auth needs" in capsys.readouterr().err
    assert registry_main(["serve", "--root", "x", "--auth", "nocolon"]) == 2
    assert "user:password" in capsys.readouterr().err


async def test_garbage_collection_keeps_referenced_blobs(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    image = make_image()
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, root)
        async with client_for(running) as client:
            await push_image(client, "keep", image)
            orphan = await upload(client, "drop", b"orphan blob")
            assert (await client.delete(f"/v2/drop/blobs/{orphan}")).status_code == 202
        await running.server.shutdown()
    assert RegistryStorage(root).collect_garbage() == 1
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, root)
        async with client_for(running) as client:
            for digest, data in image.blobs():
                assert (await client.get(f"/v2/keep/blobs/{digest}")).content == data
            assert (await client.get("/v2/keep/manifests/latest")).content == image.manifest
        await running.server.shutdown()



def test_cli_serves_until_sigterm_then_exits_cleanly(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "actors.images.registry_server", "serve",
               "--addr", "127.0.0.1:0", "--root", str(tmp_path / "registry")]
    repository_root = Path(__file__).resolve().parents[4]
    process = subprocess.Popen(command, cwd=repository_root, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("registry listening on http://127.0.0.1:")
        url = line.split()[3]
        response = httpx.get(f"{url}/v2/")
        assert response.headers["docker-distribution-api-version"] == "registry/2.0"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
