"""How the builder reads and makes images: by asking the images actor, the only owner of
the image store.

Making the images of a build needs two things the store does (`create_image(config,
diff_ids, parent)` and `add_layer_from_directory(upper)`), and the images actor has
messages for only part of them today:

- a step that adds a layer on top of an image: `CommitContainer(upper_dir, parent, ...)`;
- a step that adds no layer (ENV, CMD, a RUN that changed nothing...), or a first layer
  on `FROM scratch`: `LoadArchive` of a small `docker save` archive this module writes —
  the image config, and the layer tar when there is a new one; layers the store already
  has are named in the archive by empty placeholder files, which the loader never reads
  because it has those layers. Such images are stored without a parent link.

Pulls (a missing FROM image, `--pull`) are the images actor's `PullImage`, with its
progress forwarded into the build's output as Docker's classic builder shows it.

When the images actor gains `CreateImage(config, parent)` and a commit that accepts no
parent, `create_image` and `commit_layer` become one ask each (see the report of the
builder's integration); nothing else in the builder changes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.images import layers
from actors.images import reference as references
from actors.images.messages import (
    CommitContainer,
    Done,
    HoldImage,
    ListImages,
    LoadArchive,
    LowerDirs,
    Progress,
    Pulled,
    PullImage,
    ReleaseImage,
    ResolvedImage,
    ResolveImage,
    TagImage,
)
from actors.images.registry_auth import config_key
from runtime.actor import Ref
from runtime.errors import RemoteError
from runtime.node import Node

from .messages import PullFinished

Emit = Callable[[dict[str, Any]], Awaitable[None]]

_ASK_SECONDS = 60.0
_WRITE_ASK_SECONDS = 3600.0
_PULL_SECONDS = 3600.0


class ImageMissing(LookupError):
    """The image is not in the store; the message is Docker's `No such image: x`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class ImageRecord:
    """An image as the builder needs it: its id and its full config (the JSON document
    whose sha256 is the id: architecture, os, config, history, rootfs)."""

    id: str
    config: dict[str, Any]

    @property
    def runtime_config(self) -> dict[str, Any]:
        inner = self.config.get("config")
        return inner if isinstance(inner, dict) else {}

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs") or {}
        return list(rootfs.get("diff_ids") or [])

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.config.get("history") or [])

    @property
    def os(self) -> str:
        return str(self.config.get("os") or "linux")


def canonical_json(value: Any) -> bytes:
    """The bytes the store keeps for configs it creates (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    tar.addfile(member, io.BytesIO(data))


def write_image_archive(
    path: Path, config_bytes: bytes, diff_ids: list[str], new_layer: Path | None = None
) -> None:
    """A `docker save` archive holding one image; every layer but `new_layer` (the tar of
    the last layer, when there is a new one) is an empty placeholder."""
    layer_names = [f"layers/{index}.tar" for index in range(len(diff_ids))]
    manifest = [{"Config": "config.json", "RepoTags": None, "Layers": layer_names}]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "config.json", config_bytes)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        for index, name in enumerate(layer_names):
            if new_layer is not None and index == len(layer_names) - 1:
                tar.add(str(new_layer), arcname=name, recursive=False)
            else:
                _add_bytes(tar, name, b"")


class ImagesClient:
    """The builder's view of the image store, through the images actor."""

    def __init__(self, node: Node, images: Ref, scratch_directory: Path) -> None:
        self.node = node
        self.images = images
        self.scratch_directory = Path(scratch_directory)

    async def pull(
        self, reference: str, registry_auth: dict[str, dict[str, str]], platform: str, emit: Emit
    ) -> None:
        """Pull an image, its progress sent through `emit` as the pull's JSON stream;
        RemoteError (Docker's message) when it fails."""
        normalized = str(references.parse(reference).with_default_tag())
        header = auth_header_for(normalized, registry_auth)
        async with self.node.open_inbox(prefix="build-pull") as inbox:
            outcome: list[Pulled | BaseException] = []

            async def ask() -> None:
                try:
                    outcome.append(await self.images.ask(
                        PullImage(normalized, header, inbox.ref, platform), timeout=_PULL_SECONDS
                    ))
                except Exception as error:
                    outcome.append(error)
                self.node.tell_nowait(inbox.ref, PullFinished())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                async for item in inbox:
                    if isinstance(item, PullFinished):
                        break
                    if isinstance(item, Progress):
                        await emit(item.body)
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        if result.digest:
            await emit({"status": f"Digest: {result.digest}"})
        await emit({"status": result.status_line})

    async def get(self, reference: str) -> ImageRecord:
        try:
            resolved: ResolvedImage = await self.images.ask(ResolveImage(reference), timeout=_ASK_SECONDS)
        except RemoteError as error:
            if error.kind == "not_found":
                raise ImageMissing(error.message) from None
            raise
        return ImageRecord(resolved.image_id, resolved.config)

    async def existing_ids(self) -> set[str]:
        result = await self.images.ask(ListImages(all=True), timeout=_ASK_SECONDS)
        return {str(summary["Id"]) for summary in result.body}

    async def hold(self, holder: str, image_id: str) -> list[str]:
        """Keep the image's layers while a build step uses them; its lower dirs, top first."""
        result: LowerDirs = await self.images.ask(HoldImage(holder, image_id), timeout=_ASK_SECONDS)
        return list(result.paths)

    async def release(self, holder: str) -> None:
        await self.images.ask(ReleaseImage(holder), timeout=_ASK_SECONDS)

    async def tag(self, image_id: str, reference: str) -> None:
        await self.images.ask(TagImage(image_id, reference, ""), timeout=_ASK_SECONDS)

    async def commit_layer(
        self,
        parent: ImageRecord | None,
        upper_dir: Path,
        *,
        runtime_config: dict[str, Any],
        created_by: str,
        author: str,
        container_id: str,
        created: str,
    ) -> ImageRecord:
        """A new image: `parent` plus the layer made from the overlay upper dir."""
        if parent is not None:
            done: Done = await self.images.ask(
                CommitContainer(
                    upper_dir=str(upper_dir), parent_image_id=parent.id, config=runtime_config,
                    container_id=container_id, author=author, created_by=created_by,
                ),
                timeout=_WRITE_ASK_SECONDS,
            )
            return await self.get(done.image_id)
        return await self._commit_first_layer(
            upper_dir, runtime_config, created_by, author, container_id, created
        )

    async def _commit_first_layer(
        self, upper_dir: Path, runtime_config: dict[str, Any], created_by: str, author: str,
        container_id: str, created: str,
    ) -> ImageRecord:
        directory = Path(tempfile.mkdtemp(prefix="layer-", dir=self.scratch_directory))
        try:
            layer_path = directory / "layer.tar"

            def write_layer() -> str:
                with open(layer_path, "wb") as out:
                    return layers.write_layer_tar(upper_dir, out)

            diff_id = await trio.to_thread.run_sync(write_layer)
            config = first_layer_config(runtime_config, diff_id, created_by, author, container_id, created)
            return await self._load(directory, config, layer_path)
        finally:
            await trio.to_thread.run_sync(layers.remove_tree, directory)

    async def create_image(self, config: dict[str, Any]) -> ImageRecord:
        """Store a config whose layers the store already has (no new layer)."""
        directory = Path(tempfile.mkdtemp(prefix="config-", dir=self.scratch_directory))
        try:
            return await self._load(directory, config, None)
        finally:
            await trio.to_thread.run_sync(layers.remove_tree, directory)

    async def _load(self, directory: Path, config: dict[str, Any], new_layer: Path | None) -> ImageRecord:
        config_bytes = canonical_json(config)
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        archive = directory / "image.tar"
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        await trio.to_thread.run_sync(write_image_archive, archive, config_bytes, diff_ids, new_layer)
        await self.images.ask(LoadArchive(str(archive)), timeout=_WRITE_ASK_SECONDS)
        return ImageRecord(image_id, json.loads(config_bytes))


def first_layer_config(
    runtime_config: dict[str, Any], diff_id: str, created_by: str, author: str,
    container_id: str, created: str,
) -> dict[str, Any]:
    config = new_image_config(None, runtime_config, created_by, author, created, empty_layer=False)
    config["rootfs"] = {"type": "layers", "diff_ids": [diff_id]}
    if container_id:
        config["container"] = container_id
    return config


def new_image_config(
    parent: ImageRecord | None,
    runtime_config: dict[str, Any],
    created_by: str,
    author: str,
    created: str,
    *,
    empty_layer: bool,
    history: list[dict[str, Any]] | None = None,
    diff_ids: list[str] | None = None,
) -> dict[str, Any]:
    """The config of a child of `parent` (None: FROM scratch) made by one build step.

    `history` and `diff_ids` replace the parent's when given (--cache-from restores).
    """
    if parent is not None:
        config = copy.deepcopy(parent.config)
    else:
        from actors.images.store import host_architecture

        config = {"architecture": host_architecture(), "os": "linux"}
    for stale in ("container", "container_config", "id", "parent"):
        config.pop(stale, None)
    config["config"] = runtime_config
    config["created"] = created
    if author:
        config["author"] = author
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if author:
        entry["author"] = author
    if empty_layer:
        entry["empty_layer"] = True
    previous = history if history is not None else (parent.history if parent is not None else [])
    if history is not None:
        config["history"] = list(history)
    else:
        config["history"] = [*previous, entry]
    layers_of_parent = diff_ids if diff_ids is not None else (parent.diff_ids if parent is not None else [])
    config["rootfs"] = {"type": "layers", "diff_ids": list(layers_of_parent)}
    return config


def auth_header_for(reference: str, registry_auth: dict[str, dict[str, str]]) -> str:
    """X-Registry-Auth for one pull: the X-Registry-Config entry of the image's registry
    (Docker Hub's under any of its names), base64url JSON; "" when there is none."""
    domain = references.parse(reference).domain
    wanted = config_key(domain)
    for registry, config in registry_auth.items():
        if config_key(registry) == wanted:
            return base64.urlsafe_b64encode(json.dumps(config).encode()).decode()
    return ""
