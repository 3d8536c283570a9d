"""Helpers for the registry tests: test images, blob sources and sinks, the docker-registry
and skopeo binaries, and a loopback proxy that cuts a connection once."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import trio

from actors.images import registry_protocol as protocol
from actors.images.registry_server import RunningRegistry, serve

DOCKER_REGISTRY = "/usr/bin/docker-registry"


@attrs.frozen
class TestImage:
    config: bytes
    layers: tuple[bytes, ...]
    manifest: bytes
    media_type: str

    @property
    def config_digest(self) -> str:
        return protocol.sha256_digest(self.config)

    @property
    def layer_digests(self) -> list[str]:
        return [protocol.sha256_digest(layer) for layer in self.layers]

    @property
    def digest(self) -> str:
        return protocol.sha256_digest(self.manifest)

    def blobs(self) -> list[tuple[str, bytes]]:
        return [(self.config_digest, self.config),
                *zip(self.layer_digests, self.layers, strict=True)]


def make_image(layer_sizes=(1000, 5000), *, oci: bool = False, architecture: str = "amd64",
               seed: int = 0) -> TestImage:
    """An image with random (incompressible, so distinct) layers; not a valid rootfs, which
    registries do not care about."""
    layers = tuple(hashlib.sha256(f"{seed}-{number}".encode()).digest() * (size // 32 + 1)
                   for number, size in enumerate(layer_sizes))
    layers = tuple(os.urandom(16) + layer[: size - 16] if size >= 16 else layer[:size]
                   for layer, size in zip(layers, layer_sizes, strict=True))
    config = json.dumps({
        "architecture": architecture, "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers",
                   "diff_ids": [protocol.sha256_digest(layer) for layer in layers]},
    }).encode()
    media_type = protocol.OCI_MANIFEST if oci else protocol.DOCKER_MANIFEST
    layer_type = ("application/vnd.oci.image.layer.v1.tar+gzip" if oci
                  else "application/vnd.docker.image.rootfs.diff.tar.gzip")
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": protocol.OCI_CONFIG if oci else protocol.DOCKER_CONFIG,
                   "digest": protocol.sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": protocol.sha256_digest(layer),
                    "size": len(layer)} for layer in layers],
    }, indent=3).encode()
    return TestImage(config, layers, manifest, media_type)


def opener(data: bytes, piece_bytes: int = 65536) -> Callable[[int], AsyncIterator[bytes]]:
    async def chunks(offset: int) -> AsyncIterator[bytes]:
        for start in range(offset, len(data), piece_bytes):
            await trio.lowlevel.checkpoint()
            yield data[start:start + piece_bytes]

    return chunks


class Collector:
    """A blob sink that keeps what it is given."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk


async def start_registry(nursery: trio.Nursery, root: Path, **options) -> RunningRegistry:
    return await nursery.start(functools.partial(serve, str(root), port=0, **options))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CuttingProxy:
    """A loopback TCP proxy that breaks the first connection moving more than
    `cut_after_bytes` in `direction` ("download": server→client, "upload": the reverse),
    once per entry in `cuts`; every other connection is passed through untouched."""

    def __init__(self, target_port: int, cut_after_bytes: int, direction: str,
                 cuts: int = 1) -> None:
        self.target_port = target_port
        self.cut_after_bytes = cut_after_bytes
        self.direction = direction
        self.cuts_left = cuts
        self.cuts_done = 0
        self.port = 0

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, client: trio.SocketStream) -> None:
        try:
            server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        except OSError:
            await client.aclose()
            return
        async with client, server:
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, server, self.direction == "upload",
                                       scope)
                    nursery.start_soon(self._pump, server, client, self.direction == "download",
                                       scope)

    async def _pump(self, source: trio.SocketStream, target: trio.SocketStream, counted: bool,
                    scope: trio.CancelScope) -> None:
        moved = 0
        try:
            while True:
                data = await source.receive_some(65536)
                if not data:
                    await target.send_eof()
                    return
                if counted and self.cuts_left and moved + len(data) > self.cut_after_bytes:
                    self.cuts_left -= 1
                    self.cuts_done += 1
                    keep = self.cut_after_bytes - moved
                    if keep > 0:
                        await target.send_all(data[:keep])
                    scope.cancel()
                    return
                moved += len(data)
                await target.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            scope.cancel()


def make_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A real gzip'd tar layer and its diff ID (the digest of the uncompressed tar)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    uncompressed = buffer.getvalue()
    return gzip.compress(uncompressed, mtime=0), protocol.sha256_digest(uncompressed)


def write_oci_layout(directory: Path, tag: str, seed: int = 0) -> TestImage:
    """An OCI image layout with one two-layer image tagged `tag`, for skopeo to copy."""
    layers, diff_ids = [], []
    for number in range(2):
        layer, diff_id = make_layer({f"file-{seed}-{number}": os.urandom(20_000) + b"end"})
        layers.append(layer)
        diff_ids.append(diff_id)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": protocol.OCI_MANIFEST,
        "config": {"mediaType": protocol.OCI_CONFIG, "digest": protocol.sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": protocol.sha256_digest(layer), "size": len(layer)}
                   for layer in layers],
    }).encode()
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in (config, manifest, *layers):
        (blobs / protocol.sha256_digest(data).split(":")[1]).write_bytes(data)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": protocol.OCI_MANIFEST, "digest": protocol.sha256_digest(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return TestImage(config, tuple(layers), manifest, protocol.OCI_MANIFEST)
