"""The content-addressed image store: blobs, image configs, layers for overlayfs, tags.

On disk, under `root` (see docs/images.md):

    blobs/sha256/<hex>          content by digest: configs, manifests, layer tars (those
                                of loaded and imported layers; others made on demand)
    layers/<chain hex>/diff     one unpacked layer per layer chain, overlayfs form
    layers/<chain hex>/layer.json   {"chain_id", "diff_id", "parent", "size"}
    images/<id hex>.json        an image exists when this record exists: {"parent"}
    manifests/<hex>.json        the media type of a stored manifest blob
    refs.json                   tags and digest references, last tag times
    distribution.json           diff id -> compressed blob digests (for push/pull)
    holds.json                  holder (a container) -> layer chains it keeps alive
    tmp/                        work in progress (prepared layers, handed-over dirs);
                                emptied when the store opens

Crash rules (a `kill -9` at any point leaves a consistent store):
- A blob is written to tmp/, hashed, checked against its digest, fsynced, then renamed
  into blobs/. A layer is unpacked (or copied, or moved) into tmp/, made durable (every
  file and directory fsynced, or the filesystem synced), then its directory renamed into
  layers/. An image record is written (atomically) only after its config blob and every
  layer chain exist; refs.json only names images whose record exists.
- Deletion runs the other way: refs first, then the image record, then layers (renamed
  into tmp/ before being removed) and blobs.
- Opening the store empties tmp/ and removes whatever no image, hold or reference needs,
  which finishes any interrupted deletion and drops leftovers of an interrupted write.

Blobs, manifests and layer chains are handled by `ContentStore` (content.py), which
this class extends with images, references, holds, recovery and garbage collection.

Thread safety: one re-entrant lock guards the in-memory tables and every metadata write;
hashing, copying and extraction run outside it. Blobs and layer chains written since the
store opened and not yet used by an image are "fresh" and never collected while the
process lives, so a pull or build in flight is not swept by a concurrent delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from actors.images import layers
from actors.images import reference as references
from actors.images.content import (
    DIGEST_RE,
    ContentStore,
    canonical_json,
    chain_ids,
    check_digest,
)
from actors.images.errors import (
    DigestMismatch,
    ImageNotFound,
    InvalidImage,
)
from runtime.disk import atomic_write

_COPY_CHUNK_BYTES = 1 << 20
ZERO_TIME = "0001-01-01T00:00:00Z"


@attrs.frozen
class ImageUser:
    """A container using an image, as the daemon tells the store (it knows containers)."""

    container_id: str
    image_id: str
    running: bool = False


@attrs.frozen
class StoredImage:
    id: str
    config: dict[str, Any]
    config_size: int
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]
    parent: str | None


def now_rfc3339(clock: Callable[[], float] = time.time) -> str:
    moment = datetime.fromtimestamp(clock(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def short_id(image_id: str) -> str:
    """Docker's TruncateID: the first 12 hex digits after any `algorithm:`."""
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]


def host_architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )


def _validate_config(config: Any) -> tuple[str, ...]:
    """The config's diff ids, or InvalidImage naming what is wrong."""
    if not isinstance(config, dict):
        raise InvalidImage("image config must be a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidImage('image config: rootfs must be {"type": "layers", "diff_ids": [...]}')
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise InvalidImage("image config: rootfs.diff_ids must be a list")
    for diff_id in diff_ids:
        check_digest(diff_id)
    inner = config.get("config")
    if inner is not None and not isinstance(inner, dict):
        raise InvalidImage("image config: config must be an object")
    history = config.get("history")
    if history is not None and not isinstance(history, list):
        raise InvalidImage("image config: history must be a list")
    return tuple(diff_ids)


class ImageStore(ContentStore):
    """See the module docstring. Every public method is safe to call from several threads."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fault_hook: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(root, fault_hook=fault_hook)
        self._clock = clock
        self._images: dict[str, StoredImage] = {}
        self._refs: dict[str, str] = {}
        self._last_tag_time: dict[str, str] = {}
        self._holds: dict[str, list[str]] = {}
        self._recover()

    def _known_diff_ids(self) -> set[str]:
        return {d for image in self._images.values() for d in image.diff_ids}

    # ---- paths and small helpers

    def _image_record(self, image_id: str) -> Path:
        return self.root / "images" / (image_id[len("sha256:") :] + ".json")

    def _now(self) -> str:
        return now_rfc3339(self._clock)

    # ---- recovery

    def _recover(self) -> None:
        with self._lock:
            for leftover in (self.root / "tmp").iterdir():
                if leftover.is_dir() and not leftover.is_symlink():
                    layers.remove_tree(leftover)
                else:
                    leftover.unlink()
            for directory in (self.root / "layers", self.root / "images", self.root):
                for leftover in directory.glob(".*.tmp-*"):
                    leftover.unlink()
            refs = self._read_json(self.root / "refs.json", {})
            self._refs = dict(refs.get("refs", {}))
            self._last_tag_time = dict(refs.get("last_tag_time", {}))
            self._holds = dict(self._read_json(self.root / "holds.json", {}))
            self._distribution = dict(self._read_json(self.root / "distribution.json", {}))
            for record in sorted((self.root / "images").glob("*.json")):
                image_id = "sha256:" + record.stem
                try:
                    self._images[image_id] = self._load_image(image_id, json.loads(record.read_bytes()))
                except (FileNotFoundError, InvalidImage, ValueError):
                    # Written only after its parts, so this is damage, not a crash: drop it.
                    record.unlink()
            self._index_chains_on_disk()
            dangling = [name for name, target in self._refs.items() if target not in self._images]
            if dangling:
                self._drop_refs(dangling)
            self._collect_garbage()

    def _load_image(self, image_id: str, record: dict[str, Any]) -> StoredImage:
        config_bytes = self.blob_path(image_id).read_bytes()
        config = json.loads(config_bytes)
        diff_ids = _validate_config(config)
        chains = tuple(chain_ids(diff_ids))
        for chain in chains:
            if not self._layer_dir(chain).is_dir():
                raise InvalidImage(f"layer {chain} missing")
        return StoredImage(image_id, config, len(config_bytes), diff_ids, chains,
                           record.get("parent"))

    # ---- garbage collection (caller holds the lock)

    def _live_sets(self) -> tuple[set[str], set[str]]:
        """(chains in use, blobs in use) by images, holds, references and fresh writes."""
        chains = set(self._fresh_chains)
        blobs = set(self._fresh_blobs)
        for image in self._images.values():
            chains.update(image.chain_ids)
            blobs.add(image.id)
            for diff_id in image.diff_ids:
                blobs.add(diff_id)
                blobs.update(self._distribution.get(diff_id, ()))
        for held in self._holds.values():
            chains.update(held)
        for name in self._refs:
            if "@" in name:
                blobs.add(name.rpartition("@")[2])
        return chains, blobs

    def _collect_garbage(self, only_chains: Iterable[str] | None = None,
                         only_blobs: Iterable[str] | None = None) -> list[tuple[str, int]]:
        """Remove unneeded layers and blobs (all, or only the named candidates).

        Returns the removed chains with their sizes, top of each image first as given.
        """
        live_chains, live_blobs = self._live_sets()
        removed: list[tuple[str, int]] = []
        if only_chains is None:
            chain_candidates = ["sha256:" + p.name for p in (self.root / "layers").iterdir()
                                if DIGEST_RE.fullmatch("sha256:" + p.name)]
        else:
            chain_candidates = list(only_chains)
        for chain in chain_candidates:
            if chain in live_chains:
                continue
            directory = self._layer_dir(chain)
            if not directory.exists():
                continue
            info = self.layer_info(chain) if (directory / "layer.json").exists() else {}
            size = int(info.get("size", 0))
            graveyard = self.temporary_path("deleted-layer")
            os.rename(directory, graveyard)
            self._fault("layer-renamed-for-removal")
            layers.remove_tree(graveyard)
            self._layer_info.pop(chain, None)
            self._unindex_chain(chain, info.get("diff_id"))
            removed.append((chain, size))
        if only_blobs is None:
            blob_candidates = ["sha256:" + p.name for p in (self.root / "blobs" / "sha256").iterdir()]
        else:
            blob_candidates = list(only_blobs)
        for blob in blob_candidates:
            if blob in live_blobs or not DIGEST_RE.fullmatch(blob):
                continue
            with contextlib.suppress(FileNotFoundError):
                self.blob_path(blob).unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.root / "manifests" / (blob[len("sha256:") :] + ".json")).unlink()
        dead = [d for d in self._distribution if d not in live_blobs]
        if dead:
            for diff_id in dead:
                del self._distribution[diff_id]
            self._write_distribution()
        return removed

    def collect_garbage(self) -> None:
        """Remove every layer and blob nothing needs (the store also does this on open)."""
        with self._lock:
            self._collect_garbage()

    # ---- images

    def create_image(self, config: dict[str, Any], layer_diff_ids: Sequence[str],
                     parent: str | None = None) -> str:
        """Store a new image from a config dict and stored layers; returns its id.

        rootfs is filled in from `layer_diff_ids` (or must agree with them); the id is
        the sha256 of the canonical JSON bytes stored.
        """
        if not isinstance(config, dict):
            raise InvalidImage("image config must be a JSON object")
        config = dict(config)
        wanted = {"type": "layers", "diff_ids": list(layer_diff_ids)}
        if "rootfs" in config and config["rootfs"] != wanted:
            raise InvalidImage("image config: rootfs disagrees with the given layers")
        config["rootfs"] = wanted
        config.setdefault("architecture", host_architecture())
        config.setdefault("os", "linux")
        return self.register_image(canonical_json(config), parent=parent)

    def register_image(self, config_bytes: bytes, parent: str | None = None, *,
                       expected_id: str | None = None, allow_devices: bool = False) -> str:
        """Store an image from exact config bytes (pull, load); id = sha256(config_bytes)."""
        try:
            config = json.loads(config_bytes)
        except ValueError as error:
            raise InvalidImage(f"image config is not JSON: {error}") from None
        diff_ids = _validate_config(config)
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        if expected_id is not None and image_id != expected_id:
            raise DigestMismatch(f"image config digest mismatch: expected {expected_id}, content is {image_id}")
        if parent is not None:
            parent = self.resolve(parent)
        for diff_id in diff_ids:
            if not self.has_layer(diff_id):
                raise InvalidImage(f"layer {diff_id} is not in the store")
        with self._lock:
            if image_id in self._images:
                self._discard_prepared(diff_ids)
                return image_id
        self.put_blob(config_bytes, image_id)
        self._fault("config-written")
        for _attempt in range(3):
            chains = self._ensure_chains(diff_ids, allow_devices)
            with self._lock:
                if all(self._layer_dir(c).is_dir() for c in chains) and self.has_blob(image_id):
                    if image_id not in self._images:
                        atomic_write(self._image_record(image_id), canonical_json({"parent": parent}))
                        self._images[image_id] = StoredImage(
                            image_id, config, len(config_bytes), diff_ids, tuple(chains), parent)
                    self._fresh_chains.difference_update(chains)
                    self._fresh_blobs.difference_update((image_id, *diff_ids))
                    break
        else:
            raise InvalidImage(f"image {image_id}: its layers kept disappearing while storing it")
        self._discard_prepared(diff_ids)
        self._fault("image-recorded")
        return image_id

    def _discard_prepared(self, diff_ids: Iterable[str]) -> None:
        """Prepared dirs of an image's layers are not needed once its chains exist."""
        for diff_id in diff_ids:
            self.discard_prepared_layer(diff_id)

    def image(self, ref_or_id: str) -> StoredImage:
        with self._lock:
            return self._images[self.resolve(ref_or_id)]

    def images(self) -> list[StoredImage]:
        with self._lock:
            return list(self._images.values())

    def image_config(self, image_id: str) -> dict[str, Any]:
        """The parsed config of an image (a copy)."""
        return json.loads(self.config_bytes(image_id))

    def config_bytes(self, image_id: str) -> bytes:
        """The exact config bytes (whose sha256 is the image id)."""
        return self.read_blob(self.resolve(image_id))

    def lower_dirs(self, image_id: str) -> list[Path]:
        """The image's layer dirs, top first: an overlay mount's `lowerdir` list."""
        image = self.image(image_id)
        return [self._layer_dir(chain) / "diff" for chain in reversed(image.chain_ids)]

    def image_size(self, image: StoredImage) -> int:
        return sum(int(self.layer_info(chain)["size"]) for chain in image.chain_ids)

    def children(self, image_id: str) -> list[str]:
        with self._lock:
            return sorted(i.id for i in self._images.values() if i.parent == image_id)

    # ---- holds (layers kept for containers even when their image is deleted)

    def hold(self, holder: str, image_id: str) -> list[Path]:
        """Keep `image_id`'s layers while `holder` lives; returns its lower dirs."""
        with self._lock:
            image = self.image(image_id)
            self._holds[holder] = list(image.chain_ids)
            atomic_write(self.root / "holds.json", canonical_json(self._holds))
            return self.held_lower_dirs(holder)

    def held_lower_dirs(self, holder: str) -> list[Path]:
        with self._lock:
            if holder not in self._holds:
                raise LookupError(f"no layers held for {holder!r}")
            return [self._layer_dir(chain) / "diff" for chain in reversed(self._holds[holder])]

    def release(self, holder: str) -> None:
        """Drop a hold; layers no image needs any more are removed."""
        with self._lock:
            chains = self._holds.pop(holder, None)
            if chains is None:
                return
            atomic_write(self.root / "holds.json", canonical_json(self._holds))
            self._collect_garbage(only_chains=chains, only_blobs=())

    # ---- references

    def _write_refs(self) -> None:
        atomic_write(self.root / "refs.json", canonical_json(
            {"refs": self._refs, "last_tag_time": self._last_tag_time}))

    def references_of(self, image_id: str) -> list[references.Reference]:
        with self._lock:
            return sorted((references.parse(name) for name, target in self._refs.items()
                           if target == image_id), key=str)

    def repo_tags_by_name(self, name: str) -> list[references.Reference]:
        """Every tag reference of repository `name` (full name, e.g. docker.io/library/x)."""
        with self._lock:
            found = [references.parse(ref) for ref in self._refs if "@" not in ref]
            return sorted((r for r in found if r.name == name), key=str)

    def repo_tags(self, image_id: str) -> list[str]:
        return [r.familiar() for r in self.references_of(image_id) if r.tag is not None]

    def repo_digests(self, image_id: str) -> list[str]:
        return [r.familiar() for r in self.references_of(image_id) if r.digest is not None]

    def tag(self, source: str, target: str) -> str:
        """Point tag `target` (normalized, `:latest` by default) at the image `source` names."""
        with self._lock:
            image_id = self.resolve(source)
            parsed = references.parse_tagged(target)
            if parsed.digest is not None:
                raise InvalidImage(f"refusing to create a tag with a digest reference: {target}")
            self._set_ref(str(parsed), image_id)
            return image_id

    def tag_repository(self, image_id: str, repository: str, tag: str = "") -> str:
        """The API's `repo=` + `tag=` pair (tag, commit, import); returns the full ref."""
        parsed = references.parse_repository_tag(repository, tag)
        self.tag(image_id, str(parsed))
        return str(parsed)

    def add_repo_digest(self, repository: str, manifest_digest: str, image_id: str) -> None:
        """Record `repository@manifest_digest` -> image (a pull); shows in RepoDigests."""
        check_digest(manifest_digest)
        parsed = references.parse(repository).repository().with_digest(manifest_digest)
        with self._lock:
            if image_id not in self._images:
                raise ImageNotFound(image_id)
            self._set_ref(str(parsed), image_id)
            self._fresh_blobs.discard(manifest_digest)

    def _set_ref(self, name: str, image_id: str) -> None:
        self._refs[name] = image_id
        self._last_tag_time[image_id] = self._now()
        self._write_refs()
        self._fault("refs-written")

    def _drop_refs(self, names: Iterable[str]) -> None:
        for name in names:
            self._refs.pop(name, None)
        live = set(self._refs.values())
        for image_id in [i for i in self._last_tag_time if i not in live]:
            del self._last_tag_time[image_id]
        self._write_refs()
        self._fault("refs-written")

    def last_tag_time(self, image_id: str) -> str:
        with self._lock:
            return self._last_tag_time.get(image_id, ZERO_TIME)

    def resolve(self, text: str) -> str:
        """The image id `text` names: full id, reference (tag or digest), or unique id prefix."""
        with self._lock:
            if references.is_full_id(text):
                image_id = text if text.startswith("sha256:") else "sha256:" + text
                if image_id in self._images:
                    return image_id
                raise ImageNotFound(text)
            parsed = references.parse(text)
            found = self._refs.get(str(parsed.with_default_tag()))
            if found is not None and found in self._images:
                return found
            if references.is_id_prefix(text):
                prefix = text if text.startswith("sha256:") else "sha256:" + text
                matches = [i for i in self._images if i.startswith(prefix)]
                if len(matches) == 1:
                    return matches[0]
            raise ImageNotFound(parsed.with_default_tag().familiar())

    def exists(self, text: str) -> bool:
        try:
            self.resolve(text)
        except (ImageNotFound, references.InvalidReference):
            return False
        return True

    # ---- the API's operations; their rules live in removal.py and queries.py

    def delete(self, text: str, force: bool = False, noprune: bool = False,
               in_use: Iterable[ImageUser] = ()) -> list[dict[str, str]]:
        """`docker rmi`: the `[{"Untagged": ...}, {"Deleted": ...}]` records."""
        from actors.images import removal

        return removal.delete(self, text, force, noprune, in_use)

    def prune(self, dangling_only: bool = True, filters: dict[str, Any] | None = None,
              in_use: Iterable[ImageUser] = ()) -> dict[str, Any]:
        """`docker image prune`: `{"ImagesDeleted": [...], "SpaceReclaimed": n}`."""
        from actors.images import removal

        return removal.prune(self, dangling_only, filters, in_use)

    def list_images(self, all: bool = False, filters: dict[str, Any] | None = None,
                    in_use: Iterable[ImageUser] | None = None,
                    shared_size: bool = False) -> list[dict[str, Any]]:
        """`docker images`: ImageSummary dicts, newest first."""
        from actors.images import queries

        return queries.list_images(self, all, filters, in_use, shared_size)

    def inspect(self, text: str) -> dict[str, Any]:
        """`docker image inspect`: the API's image inspect dict."""
        from actors.images import queries

        return queries.inspect(self, text)

    def history(self, text: str) -> list[dict[str, Any]]:
        """`docker history`: entries newest first."""
        from actors.images import queries

        return queries.history(self, text)

    # ---- internals used by removal.py (the caller holds the lock)

    def _delete_image_record(self, image_id: str) -> list[tuple[str, int]]:
        """Remove an image (caller holds the lock, refs already dropped); removed layers."""
        image = self._images.pop(image_id)
        with contextlib.suppress(FileNotFoundError):
            self._image_record(image_id).unlink()
        self._fault("image-record-removed")
        candidates = list(reversed(image.chain_ids))
        blobs = [image_id, *image.diff_ids]
        for diff_id in image.diff_ids:
            blobs.extend(self._distribution.get(diff_id, ()))
        self._last_tag_time.pop(image_id, None)
        return self._collect_garbage(only_chains=candidates, only_blobs=blobs)

    def _drop_manifests_of(self, names: Iterable[str]) -> None:
        digests = [n.rpartition("@")[2] for n in names if "@" in n]
        if digests:
            self._collect_garbage(only_chains=(), only_blobs=digests)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    # ---- consistency check

    def verify(self) -> list[str]:
        """Problems found (empty when consistent): what the crash tests assert on."""
        problems = []
        with self._lock:
            leftovers = list((self.root / "tmp").iterdir())
            if leftovers:
                problems.append(f"tmp/ not empty: {[p.name for p in leftovers]}")
            for image in self._images.values():
                if not self.has_blob(image.id):
                    problems.append(f"image {image.id}: config blob missing")
                for diff_id in image.diff_ids:
                    if not self.has_layer(diff_id):
                        problems.append(f"image {image.id}: layer {diff_id} missing")
                for chain in image.chain_ids:
                    directory = self._layer_dir(chain)
                    if not (directory / "diff").is_dir() or not (directory / "layer.json").is_file():
                        problems.append(f"image {image.id}: layer {chain} incomplete")
            for name, image_id in self._refs.items():
                if image_id not in self._images:
                    problems.append(f"reference {name} -> missing image {image_id}")
            for blob in (self.root / "blobs" / "sha256").iterdir():
                data_hash = hashlib.sha256()
                with open(blob, "rb") as handle:
                    while chunk := handle.read(_COPY_CHUNK_BYTES):
                        data_hash.update(chunk)
                if data_hash.hexdigest() != blob.name:
                    problems.append(f"blob {blob.name} does not match its digest")
        return problems
