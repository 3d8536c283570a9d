"""What goes wrong: missing repositories and images, corrupted and interrupted downloads,
cancelled pulls, layers that disagree with their config or are unsafe. Each failure
surfaces with Docker's wording and status, and leaves no image, no tag and no temp file."""

from __future__ import annotations

import functools
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import trio
import trio.testing
from registry_helpers import make_layer, start_registry
from transfer_helpers import LoopbackProxy, push_raw_image, tmp_entries

from actors.images import registry_protocol as protocol
from actors.images.distribution import (
    AccessDenied,
    DistributionClient,
    DistributionError,
    NotFound,
    VerificationFailed,
)
from actors.images.pull import pull
from actors.images.push import push
from actors.images.store import ImageStore

QUICK_RETRIES = functools.partial(DistributionClient, backoff_seconds=0.01)


def assert_untouched(store: ImageStore) -> None:
    assert store.images() == []
    refs = store.root / "refs.json"
    assert not refs.exists() or json.loads(refs.read_bytes())["refs"] == {}
    assert tmp_entries(store) == []
    assert store.verify() == []


async def test_pull_of_a_missing_repository_is_access_denied(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    messages: list[dict] = []
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "registry", users=["alice:pw"],
                                       token_auth=True)
        domain = f"127.0.0.1:{running.port}"
        with pytest.raises(AccessDenied) as caught:
            await pull(store, f"{domain}/nothing/here", progress=messages.append)
        await running.server.shutdown(grace_seconds=1)
    assert str(caught.value) == (
        f"pull access denied for {domain}/nothing/here, repository does not exist or may "
        f"require 'docker login': denied: requested access to the resource is denied")
    assert caught.value.status == 404
    assert messages == []
    assert_untouched(store)


async def test_pull_of_a_missing_tag_is_manifest_unknown(registry, busybox_store,
                                                         tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    source.tag(image_id, f"{domain}/busybox:1")
    await push(source, f"{domain}/busybox:1", progress=lambda _: None)
    store = ImageStore(tmp_path / "store")
    with pytest.raises(NotFound) as caught:
        await pull(store, f"{domain}/busybox:2", progress=lambda _: None)
    assert str(caught.value).startswith(
        f"manifest for {domain}/busybox:2 not found: manifest unknown")
    assert caught.value.status == 404
    assert_untouched(store)


async def test_corrupted_layer_is_refused_and_nothing_is_registered(
        registry, busybox_store, tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    source.tag(image_id, f"{domain}/busybox:1")
    await push(source, f"{domain}/busybox:1", progress=lambda _: None)
    (diff_id,) = source.image(image_id).diff_ids
    (layer,) = source.compressed_digests(diff_id)
    blob = source.read_blob(layer)
    store = ImageStore(tmp_path / "store")
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(LoopbackProxy(
            registry.port, corrupt=blob[len(blob) // 3: len(blob) // 3 + 32]).run)
        with pytest.raises(VerificationFailed) as caught:
            await pull(store, f"{proxy.domain}/busybox:1", progress=lambda _: None)
        nursery.cancel_scope.cancel()
    assert proxy.corruptions_done == 1
    assert str(caught.value) == f"filesystem layer verification failed for digest {layer}"
    assert caught.value.status == 500
    assert not store.has_blob(layer)
    assert_untouched(store)


async def test_interrupted_download_resumes_where_it_stopped(registry, busybox_store,
                                                             tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    source.tag(image_id, f"{domain}/busybox:1")
    pushed = await push(source, f"{domain}/busybox:1", progress=lambda _: None)
    (diff_id,) = source.image(image_id).diff_ids
    layer_size = source.blob_size(source.compressed_digests(diff_id)[0])
    store = ImageStore(tmp_path / "store")
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(LoopbackProxy(registry.port,
                                                  cut_after_bytes=layer_size // 2).run)
        pulled = await pull(store, f"{proxy.domain}/busybox:1", progress=lambda _: None,
                            client_factory=QUICK_RETRIES)
        nursery.cancel_scope.cancel()
    assert proxy.cuts_done == 1
    assert (pulled.image_id, pulled.digest) == (image_id, pushed.digest)
    # Resumed with Range: the half received before the cut was not fetched again.
    assert proxy.downstream_bytes < layer_size + layer_size // 4
    assert store.verify() == []


async def test_cancelled_pull_leaves_nothing_behind(registry, busybox_store,
                                                    tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    source.tag(image_id, f"{domain}/busybox:1")
    await push(source, f"{domain}/busybox:1", progress=lambda _: None)
    store = ImageStore(tmp_path / "store")
    messages: list[dict] = []
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(LoopbackProxy(registry.port, stall_after_bytes=300_000).run)
        async with trio.open_nursery() as pulling:
            pulling.start_soon(functools.partial(
                pull, store, f"{proxy.domain}/busybox:1", progress=messages.append))
            await proxy.stalled.wait()
            await trio.testing.wait_all_tasks_blocked()
            pulling.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    assert "Downloading" in {m["status"] for m in messages}
    assert_untouched(store)


async def test_layer_that_disagrees_with_its_config_is_refused(registry, tmp_path: Path) -> None:
    domain = f"127.0.0.1:{registry.port}"
    layer, _ = make_layer({"a": b"a" * 1000})
    _, other_diff_id = make_layer({"b": b"b" * 1000})
    await push_raw_image(domain, "liar", [layer], [other_diff_id],
                         "application/vnd.oci.image.layer.v1.tar+gzip")
    store = ImageStore(tmp_path / "store")
    with pytest.raises(VerificationFailed,
                       match="layers from manifest don't match image configuration"):
        await pull(store, f"{domain}/liar:1", progress=lambda _: None)
    assert store.images() == [] and tmp_entries(store) == []


async def test_unsafe_layer_is_refused(registry, tmp_path: Path) -> None:
    domain = f"127.0.0.1:{registry.port}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escape")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"bad"))
    tar = buffer.getvalue()
    blob = gzip.compress(tar, mtime=0)
    await push_raw_image(domain, "evil", [blob], [protocol.sha256_digest(tar)],
                         "application/vnd.oci.image.layer.v1.tar+gzip")
    store = ImageStore(tmp_path / "store")
    with pytest.raises(DistributionError, match=r"failed to register layer: .*\.\./escape"):
        await pull(store, f"{domain}/evil:1", progress=lambda _: None)
    assert_untouched(store)
    assert not (tmp_path / "escape").exists()


async def test_push_of_a_missing_image_says_so_before_any_output(registry, busybox_store
                                                                 ) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    messages: list[dict] = []
    with pytest.raises(NotFound) as caught:
        await push(source, f"{domain}/nothing:1", progress=messages.append)
    assert str(caught.value) == f"An image does not exist locally with the tag: {domain}/nothing"
    assert caught.value.status == 404
    with pytest.raises(NotFound, match="An image does not exist locally with the tag"):
        await push(source, f"{domain}/nothing", progress=messages.append, all_tags=True)
    with pytest.raises(DistributionError, match="cannot push a digest reference") as digest:
        await push(source, f"{domain}/busybox@{image_id}", progress=messages.append)
    assert digest.value.status == 400
    source.tag(image_id, f"{domain}/busybox:1")
    with pytest.raises(DistributionError, match="tag can't be used with --all-tags") as both:
        await push(source, f"{domain}/busybox:1", progress=messages.append, all_tags=True)
    assert both.value.status == 400
    assert messages == []


async def test_device_nodes_are_refused_unless_allowed(registry, tmp_path: Path) -> None:
    domain = f"127.0.0.1:{registry.port}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("dev/null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        archive.addfile(info)
    tar = buffer.getvalue()
    await push_raw_image(domain, "devices", [gzip.compress(tar, mtime=0)],
                         [protocol.sha256_digest(tar)],
                         "application/vnd.oci.image.layer.v1.tar+gzip")
    store = ImageStore(tmp_path / "store")
    with pytest.raises(DistributionError, match=r"failed to register layer: .*dev/null"):
        await pull(store, f"{domain}/devices:1", progress=lambda _: None)
    assert store.images() == []
    assert tmp_entries(store) == []
