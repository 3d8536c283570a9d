"""Messages of the images actor (see actor.py)."""

from __future__ import annotations

from typing import Any

import attrs

from runtime.actor import Ref
from runtime.codec import message


@message("images.user")
@attrs.frozen
class ImageUserInfo:
    """A container using an image, as the store's delete/prune rules need it."""

    container_id: str
    image_id: str
    running: bool = False


@message("images.resolve")
@attrs.frozen
class ResolveImage:
    reference: str


@message("images.resolved")
@attrs.frozen
class ResolvedImage:
    image_id: str
    config: dict[str, Any]
    repo_tags: list[str] = attrs.field(factory=list)


@message("images.list")
@attrs.frozen
class ListImages:
    all: bool = False
    filters: dict[str, list[str]] = attrs.field(factory=dict)
    users: list[ImageUserInfo] = attrs.field(factory=list)
    shared_size: bool = False


@message("images.inspect")
@attrs.frozen
class InspectImage:
    reference: str


@message("images.history")
@attrs.frozen
class ImageHistory:
    reference: str


@message("images.delete")
@attrs.frozen
class DeleteImage:
    reference: str
    force: bool = False
    noprune: bool = False
    users: list[ImageUserInfo] = attrs.field(factory=list)


@message("images.prune")
@attrs.frozen
class PruneImages:
    dangling_only: bool = True
    filters: dict[str, list[str]] = attrs.field(factory=dict)
    users: list[ImageUserInfo] = attrs.field(factory=list)


@message("images.tag")
@attrs.frozen
class TagImage:
    source: str
    repository: str
    tag: str = ""


@message("images.hold")
@attrs.frozen
class HoldImage:
    """Keep an image's layers for a container; answers with its overlay lower dirs."""

    holder: str
    image_id: str


@message("images.release")
@attrs.frozen
class ReleaseImage:
    holder: str


@message("images.lower_dirs")
@attrs.frozen
class LowerDirs:
    paths: list[str]


@message("images.load")
@attrs.frozen
class LoadArchive:
    """Load a `docker save` archive spooled at `path`; progress dicts go to `progress`."""

    path: str
    progress: Ref | None = None


@message("images.save")
@attrs.frozen
class SaveArchive:
    names: list[str]
    path: str


@message("images.import")
@attrs.frozen
class ImportRootfs:
    path: str
    repo_tag: str | None = None
    changes: list[str] = attrs.field(factory=list)
    comment: str = ""


@message("images.bootstrap")
@attrs.frozen
class Bootstrap:
    image: str
    progress: Ref | None = None


@message("images.commit")
@attrs.frozen
class CommitContainer:
    """Make an image from a container's upper dir on top of its image."""

    upper_dir: str
    parent_image_id: str
    config: dict[str, Any]
    container_id: str = ""
    container_config: dict[str, Any] = attrs.field(factory=dict)
    author: str = ""
    comment: str = ""
    repository: str = ""
    tag: str = ""
    created_by: str = ""


@message("images.create")
@attrs.frozen
class CreateImage:
    """Store an image config; its `rootfs.diff_ids` name layers the store has, plus, when
    `new_layer_dir` is given, a new top layer made from that (overlay upper) directory."""

    config: dict[str, Any]
    parent: str = ""
    new_layer_dir: str = ""


@message("images.progress")
@attrs.frozen
class Progress:
    """One JSON-stream message (Docker's pull/load/push progress shape)."""

    body: dict[str, Any]


@message("images.json")
@attrs.frozen
class JsonResult:
    """A reply that is already the Docker API JSON body."""

    body: Any


@message("images.done")
@attrs.frozen
class Done:
    image_id: str = ""
    lines: list[str] = attrs.field(factory=list)


@message("images.count")
@attrs.frozen
class CountImages:
    pass


@message("images.pull")
@attrs.frozen
class PullImage:
    """Pull `reference`; `registry_auth` is the client's X-Registry-Auth header (or "")."""

    reference: str
    registry_auth: str = ""
    progress: Ref | None = None
    platform: str = "linux/amd64"


@message("images.pulled")
@attrs.frozen
class Pulled:
    image_id: str
    reference: str
    digest: str
    status_line: str


@message("images.push")
@attrs.frozen
class PushImage:
    reference: str
    registry_auth: str = ""
    progress: Ref | None = None
    all_tags: bool = False


@message("images.pushed")
@attrs.frozen
class Pushed:
    digest: str
    size: int
    tag: str


@message("images.login")
@attrs.frozen
class Login:
    server: str
    username: str
    password: str


@message("images.login_result")
@attrs.frozen
class LoginResult:
    status: str
    identity_token: str = ""


@message("images.stream_error")
@attrs.frozen
class StreamError:
    """An error that happened after progress was already streamed."""

    message: str
