"""Helpers for the pull/push tests: a loopback proxy that tampers with, cuts or stalls
what a registry sends, multi-layer test images, and views of progress messages and
unpacked trees."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import trio
from registry_helpers import opener

from actors.images import registry_protocol as protocol
from actors.images.distribution import DistributionClient, Repository
from actors.images.store import ImageStore

PROGRESS_STATUSES = ("Downloading", "Extracting", "Pushing")


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 in front of a registry. What the server sends can be
    corrupted (`corrupt`: the last byte of every occurrence of that pattern is flipped,
    even across reads, without delaying any byte), the first connection to pass
    `cut_after_bytes` broken once, or every connection stalled after `stall_after_bytes`
    (then `stalled` is set). `downstream_bytes` counts what clients received."""

    def __init__(self, target_port: int, *, corrupt: bytes | None = None,
                 cut_after_bytes: int | None = None, stall_after_bytes: int | None = None
                 ) -> None:
        self.target_port = target_port
        self.corrupt = corrupt
        self.cut_after_bytes = cut_after_bytes
        self.stall_after_bytes = stall_after_bytes
        self.cuts_done = 0
        self.corruptions_done = 0
        self.downstream_bytes = 0
        self.stalled = trio.Event()
        self.port = 0

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
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
                    nursery.start_soon(self._upstream, client, server, scope)
                    nursery.start_soon(self._downstream, server, client, scope)

    async def _upstream(self, source: trio.SocketStream, target: trio.SocketStream,
                        scope: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                await target.send_all(data)
            await target.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            scope.cancel()

    def _corrupted(self, context: bytes, data: bytes) -> bytes:
        """`data` with the last byte of each pattern occurrence ending inside it flipped."""
        assert self.corrupt is not None
        window = context + data
        changed = bytearray(data)
        index = window.find(self.corrupt)
        while index != -1:
            position = index + len(self.corrupt) - 1 - len(context)
            if position >= 0:
                changed[position] ^= 0xFF
                self.corruptions_done += 1
            index = window.find(self.corrupt, index + 1)
        return bytes(changed)

    async def _downstream(self, source: trio.SocketStream, target: trio.SocketStream,
                          scope: trio.CancelScope) -> None:
        moved = 0
        context = b""  # the end of what was already sent, for patterns across reads
        try:
            while True:
                data = await source.receive_some(65536)
                if not data:
                    await target.send_eof()
                    return
                if self.corrupt:
                    original = data
                    data = self._corrupted(context, data)
                    keep = len(self.corrupt) - 1
                    context = (context + original)[len(context) + len(original) - keep:]
                if self.cut_after_bytes is not None and moved + len(data) > self.cut_after_bytes:
                    allowed = self.cut_after_bytes - moved
                    self.cut_after_bytes = None
                    self.cuts_done += 1
                    await self._send(target, data[:max(0, allowed)])
                    scope.cancel()
                    return
                if (self.stall_after_bytes is not None
                        and moved + len(data) > self.stall_after_bytes):
                    await self._send(target, data[:max(0, self.stall_after_bytes - moved)])
                    self.stalled.set()
                    await trio.sleep_forever()
                moved += len(data)
                await self._send(target, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            scope.cancel()

    async def _send(self, target: trio.SocketStream, data: bytes) -> None:
        if data:
            self.downstream_bytes += len(data)
            await target.send_all(data)


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar with regular files (mode 0644, time 0)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def make_layered_image(store: ImageStore, layer_count: int, tag: str, *,
                       file_bytes: int = 30_000) -> str:
    """An image of `layer_count` layers, each one file of random bytes; returns its id."""
    diff_ids = []
    for number in range(layer_count):
        tar = layer_tar({f"layer-{number}.bin": os.urandom(file_bytes)})
        diff_ids.append(store.add_layer_from_tar(io.BytesIO(tar)))
    image_id = store.create_image({"config": {"Cmd": ["sh"]}}, diff_ids)
    store.tag(image_id, tag)
    return image_id


def summarize(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(status, id) pairs with runs of the same progress message collapsed to one, as a
    terminal shows them; aux messages become ("aux", None)."""
    summary: list[tuple[str, str | None]] = []
    for body in messages:
        entry = ("aux", None) if "aux" in body else (body["status"], body.get("id"))
        if summary and entry == summary[-1] and entry[0] in PROGRESS_STATUSES:
            continue
        summary.append(entry)
    return summary


def per_layer(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each layer id's statuses in order, runs of progress messages collapsed."""
    layers: dict[str, list[str]] = {}
    for body in messages:
        if "id" not in body or "progressDetail" not in body:
            continue
        statuses = layers.setdefault(body["id"], [])
        if statuses and statuses[-1] == body["status"] in PROGRESS_STATUSES:
            continue
        statuses.append(body["status"])
    return layers


def tree_listing(root: Path) -> list[tuple[str, str, int, str]]:
    """(path, kind and mode, size, link target) of everything under `root`, sorted."""
    found = []
    for directory, directories, files in os.walk(root):
        for name in sorted(directories + files):
            path = Path(directory) / name
            info = path.lstat()
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            size = info.st_size if stat.S_ISREG(info.st_mode) else 0
            found.append((str(path.relative_to(root)), oct(info.st_mode), size, target))
    return sorted(found)


def tmp_entries(store: ImageStore) -> list[str]:
    return sorted(path.name for path in (store.root / "tmp").iterdir())


async def push_raw_image(domain: str, path: str, blobs: list[bytes], diff_ids: list[str],
                         layer_type: str, tag: str = "1") -> tuple[str, str]:
    """Layer blobs, a config naming `diff_ids` and an OCI manifest, pushed as they are
    (nothing checks that they agree); returns (image id, manifest digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": protocol.OCI_MANIFEST,
        "config": {"mediaType": protocol.OCI_CONFIG, "digest": protocol.sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": protocol.sha256_digest(blob),
                    "size": len(blob)} for blob in blobs],
    }).encode()
    repository = Repository(domain, path)
    async with DistributionClient() as client:
        for data in [config, *blobs]:
            await client.push_blob(repository, protocol.sha256_digest(data), len(data),
                                   opener(data))
        digest = await client.push_manifest(repository, tag, manifest, protocol.OCI_MANIFEST)
    return protocol.sha256_digest(config), digest
