"""`docker rmi` and `docker image prune`, with Docker's rules and wording.

Conflicts, as Docker classifies them:
- hard (never forced): the image has dependent child images; a running container uses it.
- soft (overridden by force): the image is referenced in several repositories (delete by
  id); a stopped container uses it.

Deleting by reference untags that reference only; the image itself goes when its last
reference goes (and no container uses it). Deleting by id (or unique id prefix) removes
every reference and the image. After a delete the parent chain is pruned quietly unless
`noprune`: a parent goes if it has no references, no children and no container.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from actors.images import queries
from actors.images import reference as references
from actors.images.errors import ImageConflict, ImageNotFound
from actors.images.store import ImageStore, ImageUser, short_id

_CHILD = 1
_RUNNING = 2
_ACTIVE_REFERENCE = 4
_STOPPED = 8
_HARD = _CHILD | _RUNNING
_SOFT = _ACTIVE_REFERENCE | _STOPPED


class DeleteConflict(ImageConflict):
    def __init__(self, image_id: str, message: str, hard: bool, used: bool = False) -> None:
        force_text = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({force_text}) - {message}")
        self.hard = hard
        self.used = used


def _is_id_prefix_of(image_id: str, text: str) -> bool:
    return image_id.startswith(text) or image_id.startswith("sha256:" + text)


def _is_single_reference(refs: Sequence[references.Reference]) -> bool:
    """One reference, or one tag plus digests, all of one repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    tags = [r for r in refs if r.digest is None]
    if len(tags) > 1:
        return False
    digest_names = {r.name for r in refs if r.digest is not None}
    single = tags[0] if tags else refs[0]
    return len(digest_names) == 1 and single.name in digest_names


def _check_conflict(store: ImageStore, image_id: str, mask: int,
                    users: Sequence[ImageUser]) -> DeleteConflict | None:
    if mask & _CHILD and store.children(image_id):
        return DeleteConflict(image_id, "image has dependent child images", hard=True)
    if mask & _RUNNING:
        for user in users:
            if user.image_id == image_id and user.running:
                return DeleteConflict(
                    image_id, f"image is being used by running container {short_id(user.container_id)}",
                    hard=True, used=True)
    if mask & _ACTIVE_REFERENCE and store.references_of(image_id):
        return DeleteConflict(image_id, "image is referenced in multiple repositories", hard=False)
    if mask & _STOPPED:
        for user in users:
            if user.image_id == image_id and not user.running:
                return DeleteConflict(
                    image_id, f"image is being used by stopped container {short_id(user.container_id)}",
                    hard=False, used=True)
    return None


def _untag(store: ImageStore, ref: references.Reference, records: list[dict[str, str]]) -> None:
    store._drop_refs([str(ref)])
    store._drop_manifests_of([str(ref)])
    records.append({"Untagged": ref.familiar()})


def _delete_helper(store: ImageStore, image_id: str, records: list[dict[str, str]], force: bool,
                   prune: bool, quiet: bool, users: Sequence[ImageUser],
                   reclaimed: list[int]) -> None:
    conflict = _check_conflict(store, image_id, _HARD if force else _HARD | _SOFT, users)
    if conflict is not None:
        dangling = not store.references_of(image_id)
        if quiet and (not dangling or conflict.used):
            return
        raise conflict
    parent = store.image(image_id).parent
    for ref in store.references_of(image_id):
        _untag(store, ref, records)
    removed = store._delete_image_record(image_id)
    records.append({"Deleted": image_id})
    for chain, size in removed:
        records.append({"Deleted": chain})
        reclaimed.append(size)
    if prune and parent is not None and store.exists(parent):
        _delete_helper(store, parent, records, False, True, True, users, reclaimed)


def _delete(store: ImageStore, text: str, force: bool, noprune: bool,
            users: Sequence[ImageUser], reclaimed: list[int]) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    image_id = store.resolve(text)
    repo_refs = store.references_of(image_id)
    using = [u for u in users if u.image_id == image_id]
    if not _is_id_prefix_of(image_id, text):
        if not force and _is_single_reference(repo_refs) and using:
            raise ImageConflict(
                f'conflict: unable to remove repository reference "{text}" (must force) - '
                f"container {short_id(using[0].container_id)} is using its referenced image "
                f"{short_id(image_id)}")
        parsed = references.parse(text)
        ref = parsed.repository().with_digest(parsed.digest) if parsed.digest else parsed.with_default_tag()
        if ref not in repo_refs:
            raise ImageNotFound(ref.familiar())
        _untag(store, ref, records)
        repo_refs = store.references_of(image_id)
        if ref.digest is None and not any(r.digest is None and r.name == ref.name for r in repo_refs):
            for other in [r for r in repo_refs if r.digest is not None and r.name == ref.name]:
                _untag(store, other, records)
            repo_refs = store.references_of(image_id)
        if repo_refs:
            return records
        removed_repository_reference = True
    else:
        if _is_single_reference(repo_refs):
            mask = _HARD if force else _HARD | _STOPPED
            conflict = _check_conflict(store, image_id, mask, users)
            if conflict is not None:
                raise conflict
            for ref in repo_refs:
                _untag(store, ref, records)
        removed_repository_reference = False
    _delete_helper(store, image_id, records, force, not noprune, removed_repository_reference,
                   users, reclaimed)
    return records


def delete(store: ImageStore, text: str, force: bool = False, noprune: bool = False,
           in_use: Iterable[ImageUser] = ()) -> list[dict[str, str]]:
    """`DELETE /images/{name}`: the `[{"Untagged": ...}, {"Deleted": ...}]` list."""
    users = list(in_use)
    with store.locked():
        return _delete(store, text, force, noprune, users, [])


def prune(store: ImageStore, dangling_only: bool = True,
          filters: Mapping[str, Any] | None = None,
          in_use: Iterable[ImageUser] = ()) -> dict[str, Any]:
    """`POST /images/prune`: `{"ImagesDeleted": [...], "SpaceReclaimed": n}`.

    Filters: `dangling` (false = all unused images, like `-a`), `until`, `label`, `label!`.
    """
    wanted = queries.normalize_filters(filters)
    if "dangling" in wanted:
        dangling_only = queries.filter_bool(wanted, "dangling")
    users = list(in_use)
    used = {u.image_id for u in users}
    deleted: list[dict[str, str]] = []
    reclaimed: list[int] = []
    with store.locked():
        now = store._clock()
        candidates = []
        for image in store.images():
            if dangling_only and store.children(image.id):
                continue
            if image.id in used:
                continue
            if not queries.matches_prune_filters(image, wanted, now):
                continue
            candidates.append(image.id)
        for image_id in sorted(candidates):
            if not store.exists(image_id):
                continue
            refs = store.references_of(image_id)
            targets: list[str] = []
            if refs:
                if not dangling_only or not any(r.tag is not None for r in refs):
                    targets = [str(r) for r in refs]
            else:
                targets = [image_id[len("sha256:") :]]
            for target in targets:
                try:
                    deleted.extend(_delete(store, target, False, False, users, reclaimed))
                except (ImageConflict, ImageNotFound):
                    continue
    return {"ImagesDeleted": deleted, "SpaceReclaimed": sum(reclaimed)}
