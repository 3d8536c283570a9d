"""How the builder reads and makes images: by asking the images actor, the only owner of
the image store.

- a step that adds a layer on top of an image: `CommitContainer(upper_dir, parent, ...)`;
- a step that adds no layer (ENV, CMD, a RUN that changed nothing...): `CreateImage(config,
  parent)`; the first layer of a `FROM scratch` stage: `CreateImage(config, "", upper_dir)`.

Pulls (a missing FROM image, `--pull`) are the images actor's `PullImage`, with its
progress forwarded into the build's output as Docker's classic builder shows it.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.images import reference as references
from actors.images.content import DONATION_PREFIX
from actors.images.messages import (
    CommitContainer,
    CreateImage,
    Done,
    HoldImage,
    ListImages,
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


class ImagesClient:
    """The builder's view of the image store, through the images actor.

    `donation_directory` is the image store's tmp/ (`<data-root>/images/tmp`): a step's
    upper dir, unmounted and no longer needed by the builder, is renamed there under
    the store's donation prefix before it is committed, so the store moves it into the
    layer chain instead of copying it (the store takes any directory so named in its
    tmp/; see ContentStore.add_layer_from_directory). When the rename cannot be done (another
    filesystem), the upper dir is sent where it is and the store copies it.
    """

    def __init__(self, node: Node, images: Ref, scratch_directory: Path,
                 donation_directory: Path | None = None) -> None:
        self.node = node
        self.images = images
        self.scratch_directory = Path(scratch_directory)
        self.donation_directory = Path(donation_directory) if donation_directory else None

    def _hand_over(self, upper_dir: Path) -> Path:
        if self.donation_directory is None:
            return upper_dir
        target = self.donation_directory / f"{DONATION_PREFIX}{secrets.token_hex(16)}"
        try:
            os.rename(upper_dir, target)
        except OSError:
            return upper_dir
        return target

    async def _ask_with_layer(self, upper_dir: Path, make: Callable[[Path], Any]) -> Done:
        """Ask the images actor to store a layer from `upper_dir`, handed over when it can
        be; what the store did not take is removed if the ask fails."""
        sent = await trio.to_thread.run_sync(self._hand_over, upper_dir)
        try:
            return await self.images.ask(make(sent), timeout=_WRITE_ASK_SECONDS)
        except BaseException:
            if sent != upper_dir:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(shutil.rmtree, sent, True)
            raise

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
            done = await self._ask_with_layer(upper_dir, lambda sent: CommitContainer(
                upper_dir=str(sent), parent_image_id=parent.id, config=runtime_config,
                container_id=container_id, author=author, created_by=created_by,
            ))
            return await self.get(done.image_id)
        return await self._commit_first_layer(
            upper_dir, runtime_config, created_by, author, container_id, created
        )

    async def _commit_first_layer(
        self, upper_dir: Path, runtime_config: dict[str, Any], created_by: str, author: str,
        container_id: str, created: str,
    ) -> ImageRecord:
        config = new_image_config(None, runtime_config, created_by, author, created, empty_layer=False)
        if container_id:
            config["container"] = container_id
        config["rootfs"] = {"type": "layers", "diff_ids": []}
        done = await self._ask_with_layer(
            upper_dir, lambda sent: CreateImage(config, "", str(sent)))
        return await self.get(done.image_id)

    async def create_image(self, config: dict[str, Any], parent: str = "") -> ImageRecord:
        """Store a config whose layers the store already has (no new layer)."""
        done: Done = await self.images.ask(CreateImage(config, parent), timeout=_WRITE_ASK_SECONDS)
        return await self.get(done.image_id)


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
