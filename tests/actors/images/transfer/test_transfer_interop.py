"""Interoperability with skopeo, through both registries: skopeo reads and copies what we
pushed, and we pull the OCI image skopeo pushed from an OCI layout."""

from __future__ import annotations

import json
from pathlib import Path

from registry_helpers import write_oci_layout

from actors.images import registry_protocol as protocol
from actors.images.pull import pull
from actors.images.push import push
from actors.images.store import ImageStore


def succeeded(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


async def skopeo_reads_what_we_pushed(domain: str, skopeo, busybox_store, tmp_path: Path
                                      ) -> None:
    source, image_id = busybox_store
    source.tag(image_id, f"{domain}/busybox:1")
    pushed = await push(source, f"{domain}/busybox:1", progress=lambda _: None)
    (diff_id,) = source.image(image_id).diff_ids
    (layer,) = source.compressed_digests(diff_id)
    remote = f"docker://{domain}/busybox:1"

    inspected = json.loads(succeeded(await skopeo("inspect", "--tls-verify=false", remote)))
    assert inspected["Digest"] == pushed.digest
    assert inspected["Layers"] == [layer]
    raw = succeeded(await skopeo("inspect", "--raw", "--tls-verify=false", remote)).encode()
    assert protocol.sha256_digest(raw) == pushed.digest
    assert json.loads(raw)["mediaType"] == protocol.DOCKER_MANIFEST
    config = succeeded(await skopeo("inspect", "--config", "--raw", "--tls-verify=false", remote))
    assert config.encode() == source.config_bytes(image_id)

    layout = tmp_path / "copied"
    succeeded(await skopeo("copy", "--src-tls-verify=false", remote, f"oci:{layout}:one"))
    # skopeo converts the manifest to OCI on the way (and rewrites the config JSON):
    # the layer blob is ours byte for byte, the config describes the same layers.
    (entry,) = json.loads((layout / "index.json").read_bytes())["manifests"]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"][7:]).read_bytes())
    assert [descriptor["digest"] for descriptor in manifest["layers"]] == [layer]
    assert (blobs / layer[7:]).read_bytes() == source.read_blob(layer)
    copied_config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    assert copied_config["rootfs"]["diff_ids"] == [diff_id]


async def we_pull_what_skopeo_pushed(domain: str, skopeo, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, "v1", seed=5)
    remote = f"docker://{domain}/oci/app:v1"
    succeeded(await skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", remote))
    digest = json.loads(succeeded(await skopeo("inspect", "--tls-verify=false", remote)))["Digest"]

    store = ImageStore(tmp_path / "store")
    messages: list[dict] = []
    pulled = await pull(store, f"{domain}/oci/app:v1", progress=messages.append)
    assert pulled.image_id == image.config_digest
    assert pulled.digest == digest
    config = json.loads(image.config)
    assert list(store.image(pulled.image_id).diff_ids) == config["rootfs"]["diff_ids"]
    assert store.get_manifest(digest)[1] == protocol.OCI_MANIFEST
    top, base = store.lower_dirs(pulled.image_id)
    assert (base / "file-5-0").read_bytes().endswith(b"end")
    assert (top / "file-5-1").stat().st_size == 20_003
    assert store.repo_tags(pulled.image_id) == [f"{domain}/oci/app:v1"]
    assert sum(m["status"] == "Pull complete" for m in messages) == 2
    assert store.verify() == []


async def test_skopeo_reads_what_we_pushed_to_docker_registry(docker_registry, skopeo,
                                                              busybox_store, tmp_path) -> None:
    await skopeo_reads_what_we_pushed(docker_registry, skopeo, busybox_store, tmp_path)


async def test_skopeo_reads_what_we_pushed_to_flotta_registry(registry, skopeo, busybox_store,
                                                              tmp_path) -> None:
    await skopeo_reads_what_we_pushed(f"127.0.0.1:{registry.port}", skopeo, busybox_store,
                                      tmp_path)


async def test_we_pull_what_skopeo_pushed_to_docker_registry(docker_registry, skopeo,
                                                             tmp_path) -> None:
    await we_pull_what_skopeo_pushed(docker_registry, skopeo, tmp_path)


async def test_we_pull_what_skopeo_pushed_to_flotta_registry(registry, skopeo, tmp_path) -> None:
    await we_pull_what_skopeo_pushed(f"127.0.0.1:{registry.port}", skopeo, tmp_path)
