"""`docker import`: a root filesystem tar becomes a single-layer image."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from actors.images import reference as references
from actors.images.changes import apply_changes
from actors.images.store import ImageStore, host_architecture, now_rfc3339


def import_rootfs(
    store: ImageStore,
    tar_stream: BinaryIO,
    repo_tag: str | None = None,
    changes: Iterable[str] = (),
    message: str = "",
    progress: Callable[[str], None] | None = None,
    source_name: str = "-",
) -> str:
    """Store `tar_stream` (plain or compressed) as one layer; returns the image id.

    `changes` are Dockerfile-style lines (see changes.py); `message` becomes the history
    comment ("Imported from -" when empty, as Docker writes). Bad `changes` or `repo_tag`
    are refused before anything is stored.
    """
    config_section = apply_changes({}, changes)
    tag = references.parse_tagged(repo_tag) if repo_tag else None
    if tag is not None and tag.digest is not None:
        raise references.InvalidReference(f"invalid reference format: cannot import to a digest ({repo_tag})")
    if progress is not None:
        progress("Importing root filesystem")
    diff_id = store.add_layer_from_tar(tar_stream)
    created = now_rfc3339(store._clock)
    config: dict[str, Any] = {
        "architecture": host_architecture(),
        "os": "linux",
        "created": created,
        "config": config_section,
        "history": [{"created": created, "comment": message or f"Imported from {source_name}"}],
    }
    image_id = store.create_image(config, [diff_id])
    if tag is not None:
        store.tag(image_id, str(tag))
    if progress is not None:
        progress(f"Imported {image_id}")
    return image_id
