"""`docker save` and `docker load`.

`save` writes what Engine 25+ writes (docs/images.md): `oci-layout`, `index.json`,
`manifest.json`, `repositories` and `blobs/sha256/...` (configs, OCI manifests and
uncompressed layer tars), every entry with time 0, owner 0:0, mode 0644/0755, in
lexical order, so the same images give the same bytes.

`load` accepts that layout, the pre-25 one (`<v1 id>/layer.tar`, `<id>.json`,
`manifest.json`), and a pure OCI layout (`index.json` + blobs, layers compressed or
not), in an archive that may itself be gzip, bzip2, xz or zstd compressed. It runs in
two phases so a bad archive changes nothing:
1. check: spool the archive's files into the store's tmp/, read the manifests, verify
   every config and layer against its digest, and unpack every new layer into tmp/;
2. commit: move the verified blobs and unpacked layers in, record the images, tag them.
Names inside the archive are looked up in the spooled table, never on the filesystem,
so a manifest naming `../../etc/passwd` just fails to find it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from actors.images import compression, layers
from actors.images import reference as references
from actors.images.content import chain_ids, check_digest
from actors.images.errors import DigestMismatch, ImageNotFound, InvalidImage
from actors.images.store import ImageStore

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_LINK_HOPS_MAX = 40
_COPY_CHUNK_BYTES = 1 << 20

Progress = Callable[[dict[str, Any]], None]


class ArchiveError(InvalidImage):
    """The archive is malformed, inconsistent or unsafe; the store is unchanged."""


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# ---- save


@attrs.define
class _SavedImage:
    image_id: str
    tags: list[str] = attrs.Factory(list)


def _images_to_save(store: ImageStore, names: Iterable[str]) -> list[_SavedImage]:
    chosen: dict[str, _SavedImage] = {}

    def add(image_id: str, tag: str | None) -> None:
        entry = chosen.setdefault(image_id, _SavedImage(image_id))
        if tag is not None and tag not in entry.tags:
            entry.tags.append(tag)

    for name in names:
        image_id = store.resolve(name)
        if image_id.startswith(name) or image_id.startswith("sha256:" + name):
            add(image_id, None)
            continue
        parsed = references.parse(name)
        if parsed.tag is None and parsed.digest is None:
            tagged = [r for r in store.repo_tags_by_name(parsed.name)]
            for ref in tagged or [parsed.with_default_tag()]:
                add(store.resolve(str(ref)), ref.familiar())
        elif parsed.digest is None:
            add(image_id, parsed.familiar())
        else:
            add(image_id, None)
    return list(chosen.values())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = _member(name, tarfile.REGTYPE)
    member.size = len(data)
    tar.addfile(member, io.BytesIO(data))


def _member(name: str, kind: bytes) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    member.mtime = 0
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def save(store: ImageStore, names: Iterable[str], out: BinaryIO) -> None:
    """Write the images `names` refer to as an Engine 25+ `docker save` archive."""
    saved = _images_to_save(store, names)
    if not saved:
        raise ImageNotFound("(no images given)")
    blobs: dict[str, bytes | str] = {}  # hex -> inline bytes, or a blob digest to copy
    manifest_entries: list[dict[str, Any]] = []
    index_entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for entry in saved:
        image = store.image(entry.image_id)
        config_hex = image.id[len("sha256:") :]
        blobs[config_hex] = image.id
        layer_descriptors = []
        for diff_id in image.diff_ids:
            blobs[diff_id[len("sha256:") :]] = diff_id
            layer_descriptors.append({"mediaType": OCI_LAYER, "digest": diff_id,
                                      "size": store.blob_size(diff_id)})
        oci_manifest = _json_bytes({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": image.config_size},
            "layers": layer_descriptors,
        })
        manifest_digest = "sha256:" + hashlib.sha256(oci_manifest).hexdigest()
        blobs[manifest_digest[len("sha256:") :]] = oci_manifest
        descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(oci_manifest)}
        if entry.tags:
            for tag in entry.tags:
                parsed = references.parse(tag)
                index_entries.append({**descriptor, "annotations": {
                    NAME_ANNOTATION: str(parsed), REF_ANNOTATION: parsed.tag or "latest"}})
                if image.diff_ids:
                    top_hex = image.diff_ids[-1][len("sha256:") :]
                    repositories.setdefault(parsed.familiar_name, {})[parsed.tag or "latest"] = top_hex
        else:
            index_entries.append(descriptor)
        item: dict[str, Any] = {
            "Config": f"blobs/sha256/{config_hex}",
            "RepoTags": entry.tags or None,
            "Layers": [f"blobs/sha256/{d[len('sha256:') :]}" for d in image.diff_ids],
        }
        if image.parent:
            item["Parent"] = image.parent
        manifest_entries.append(item)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member("blobs", tarfile.DIRTYPE))
        tar.addfile(_member("blobs/sha256", tarfile.DIRTYPE))
        for blob_hex in sorted(blobs):
            content = blobs[blob_hex]
            name = f"blobs/sha256/{blob_hex}"
            if isinstance(content, bytes):
                _add_bytes(tar, name, content)
                continue
            member = _member(name, tarfile.REGTYPE)
            member.size = store.blob_size(content)
            with store.open_blob(content) as handle:
                tar.addfile(member, handle)
        _add_bytes(tar, "index.json", _json_bytes(index))
        _add_bytes(tar, "manifest.json", _json_bytes(manifest_entries))
        _add_bytes(tar, "oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            _add_bytes(tar, "repositories", _json_bytes(repositories))


# ---- load: phase 1, spool and check


class _Spool:
    """The archive's files, spooled into a directory; names resolved inside the archive."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, Path] = {}
        self.links: dict[str, str] = {}

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        try:
            name = layers.clean_entry_name(member.name)
        except layers.LayerError as error:
            raise ArchiveError(f"unsafe archive: {error}") from None
        if member.isdir() or not name:
            return
        if member.isreg():
            path = self.directory / str(len(self.files) + len(self.links))
            source = tar.extractfile(member)
            with open(path, "wb") as handle:
                while source is not None and (chunk := source.read(_COPY_CHUNK_BYTES)):
                    handle.write(chunk)
            self.files[name] = path
        elif member.issym():
            parent = name.rpartition("/")[0]
            target = member.linkname if member.linkname.startswith("/") else f"{parent}/{member.linkname}"
            # Resolved against the archive's root: "../x" from "a/link" is "x".
            target = posixpath.normpath("/" + target).lstrip("/")
            try:
                self.links[name] = layers.clean_entry_name(target)
            except layers.LayerError:
                raise ArchiveError(f"unsafe archive: link {member.name!r} leaves the archive") from None
        elif member.islnk():
            try:
                self.links[name] = layers.clean_entry_name(member.linkname)
            except layers.LayerError:
                raise ArchiveError(f"unsafe archive: link {member.name!r} leaves the archive") from None
        else:
            raise ArchiveError(f"unsafe archive: entry {member.name!r} is not a file or directory")

    def path(self, name: str) -> Path:
        try:
            name = layers.clean_entry_name(name)
        except layers.LayerError:
            raise ArchiveError(f"archive names {name!r}, which is not a path inside it") from None
        for _ in range(_LINK_HOPS_MAX):
            if name in self.files:
                return self.files[name]
            if name not in self.links:
                raise ArchiveError(f"archive is missing {name!r}")
            name = self.links[name]
        raise ArchiveError(f"archive has a link loop at {name!r}")

    def read(self, name: str, limit_bytes: int = 64 << 20) -> bytes:
        path = self.path(name)
        if path.stat().st_size > limit_bytes:
            raise ArchiveError(f"archive entry {name!r} is too large for metadata")
        return path.read_bytes()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as error:
            raise ArchiveError(f"archive entry {name!r} is not valid JSON: {error}") from None

    def has(self, name: str) -> bool:
        return name in self.files or name in self.links


@attrs.define
class _PlannedImage:
    config_bytes: bytes
    image_id: str
    diff_ids: list[str]
    layer_sources: list[str]  # archive names of the layer tars, in order
    tags: list[str]
    expected_layer_digests: list[str | None]


def _blob_name(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256":
        raise ArchiveError(f"unsupported digest {digest!r} in archive")
    check_digest(digest)
    return f"blobs/sha256/{encoded}"


def _plan_docker(spool: _Spool) -> list[_PlannedImage]:
    entries = spool.json("manifest.json")
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json must be a list")
    planned = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ArchiveError("manifest.json entry without a Config path")
        config_name = entry["Config"]
        config_bytes = spool.read(config_name)
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        stem = os.path.basename(config_name).removesuffix(".json")
        if len(stem) == 64 and stem != image_id[len("sha256:") :]:
            raise DigestMismatch(f"archive config {config_name} has digest {image_id}")
        layer_names = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(layer_names, list) or not isinstance(tags, list):
            raise ArchiveError("manifest.json: Layers and RepoTags must be lists")
        planned.append(_PlannedImage(config_bytes, image_id, [], list(layer_names),
                                     [str(t) for t in tags], [None] * len(layer_names)))
    return planned


def _pick_platform(descriptors: list[dict[str, Any]]) -> dict[str, Any]:
    from actors.images.store import host_architecture

    for descriptor in descriptors:
        platform = descriptor.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == host_architecture():
            return descriptor
    return descriptors[0]


def _oci_descriptors(spool: _Spool, index: dict[str, Any], depth: int = 0) -> list[tuple[dict, str | None]]:
    """(manifest descriptor, reference name or None) for every image an index names."""
    if depth > 4:
        raise ArchiveError("index.json nests too deeply")
    found: list[tuple[dict, str | None]] = []
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise ArchiveError("index.json has no manifests list")
    for descriptor in manifests:
        if not isinstance(descriptor, dict):
            raise ArchiveError("index.json: a manifest descriptor is not an object")
        annotations = descriptor.get("annotations") or {}
        name = annotations.get(NAME_ANNOTATION)
        ref_name = annotations.get(REF_ANNOTATION)
        if name is None and ref_name and (":" in ref_name or "/" in ref_name):
            name = ref_name
        if descriptor.get("mediaType") in (OCI_INDEX, DOCKER_LIST):
            nested = _verified_json(spool, descriptor)
            chosen = _pick_platform(nested.get("manifests") or [{}])
            for inner, _ in _oci_descriptors(spool, {"manifests": [chosen]}, depth + 1):
                found.append((inner, name))
        else:
            found.append((descriptor, name))
    return found


def _verified_json(spool: _Spool, descriptor: dict[str, Any]) -> Any:
    digest = descriptor.get("digest", "")
    data = spool.read(_blob_name(digest))
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise DigestMismatch(f"archive blob {digest} does not match its digest")
    try:
        return json.loads(data)
    except ValueError as error:
        raise ArchiveError(f"archive blob {digest} is not JSON: {error}") from None


def _plan_oci(spool: _Spool) -> list[_PlannedImage]:
    index = spool.json("index.json")
    if not isinstance(index, dict):
        raise ArchiveError("index.json must be an object")
    planned: dict[str, _PlannedImage] = {}
    for descriptor, name in _oci_descriptors(spool, index):
        manifest = _verified_json(spool, descriptor)
        config_descriptor = manifest.get("config") or {}
        config_digest = config_descriptor.get("digest", "")
        config_bytes = spool.read(_blob_name(config_digest))
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        if image_id != config_digest:
            raise DigestMismatch(f"archive config {config_digest} does not match its digest")
        layer_descriptors = manifest.get("layers") or []
        names = [_blob_name(d.get("digest", "")) for d in layer_descriptors]
        plan = planned.setdefault(image_id, _PlannedImage(
            config_bytes, image_id, [], names, [],
            [d.get("digest") for d in layer_descriptors]))
        if name:
            plan.tags.append(name)
    return list(planned.values())


def _stage_layer(store: ImageStore, spool: _Spool, name: str, expected_diff_id: str,
                 expected_digest: str | None, progress: Progress | None) -> Path | None:
    """Decompress layer `name` into tmp/, verify it; None when the store has it already."""
    path = spool.path(name)
    if expected_digest is not None:
        digest_hash = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_COPY_CHUNK_BYTES):
                digest_hash.update(chunk)
        if "sha256:" + digest_hash.hexdigest() != expected_digest:
            raise DigestMismatch(f"archive layer {name} does not match its digest {expected_digest}")
    if store.has_layer(expected_diff_id):
        return None
    total = path.stat().st_size
    short = expected_diff_id[len("sha256:") :][:12]
    if progress is not None:
        progress({"status": "Loading layer", "progressDetail": {"current": 0, "total": total}, "id": short})
    staged = store.temporary_path("load-layer")
    try:
        with open(path, "rb") as source:
            _, plain = compression.decompressed(source)
            hashing = compression.HashingReader(plain)
            with open(staged, "wb") as handle:
                while chunk := hashing.read(_COPY_CHUNK_BYTES):
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        if hashing.digest() != expected_diff_id:
            raise DigestMismatch(
                f"archive layer {name} has diff id {hashing.digest()}, its config says {expected_diff_id}")
        with open(staged, "rb") as handle:
            layers.check_layer_tar(handle)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        raise
    if progress is not None:
        progress({"status": "Loading layer", "progressDetail": {"current": total, "total": total}, "id": short})
    return staged


def load(store: ImageStore, stream: BinaryIO, progress: Progress | None = None) -> list[str]:
    """Load a `docker save` (or OCI layout) archive; the "Loaded image: ..." lines."""
    spool = _Spool(store.temporary_path("load"))
    spool.directory.mkdir()
    staged_blobs: dict[str, Path] = {}
    staged_chains: dict[str, Path | None] = {}
    try:
        _, plain = compression.decompressed(stream)
        checked = io.BufferedReader(compression.HashingReader(plain, hashing=False), compression.CHUNK_BYTES)
        try:
            with tarfile.open(fileobj=checked, mode="r|") as tar:
                for member in tar:
                    spool.add(tar, member)
        except (tarfile.TarError, EOFError, compression.CompressionError) as error:
            raise ArchiveError(f"malformed archive: {error}") from None
        if spool.has("manifest.json"):
            plan = _plan_docker(spool)
        elif spool.has("index.json"):
            plan = _plan_oci(spool)
        else:
            raise ArchiveError("not an image archive: no manifest.json or index.json")
        for image in plan:
            try:
                config = json.loads(image.config_bytes)
                image.diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            except (ValueError, AttributeError):
                raise ArchiveError(f"image config {image.image_id} is not a valid config") from None
            for diff_id in image.diff_ids:
                check_digest(diff_id)
            if len(image.diff_ids) != len(image.layer_sources):
                raise ArchiveError(
                    f"image {image.image_id}: {len(image.layer_sources)} layers in the archive, "
                    f"{len(image.diff_ids)} in its config")
            for tag in image.tags:
                references.parse_tagged(tag)
            for name, diff_id, digest in zip(image.layer_sources, image.diff_ids,
                                             image.expected_layer_digests, strict=True):
                if diff_id not in staged_blobs:
                    staged = _stage_layer(store, spool, name, diff_id, digest, progress)
                    if staged is not None:
                        staged_blobs[diff_id] = staged
            chains = chain_ids(image.diff_ids)
            for index, (chain, diff_id) in enumerate(zip(chains, image.diff_ids, strict=True)):
                if chain not in staged_chains:
                    staged_chains[chain] = store.stage_chain(
                        chain, chains[index - 1] if index else None, diff_id,
                        source=staged_blobs.get(diff_id))
        # Phase 2: everything is verified and unpacked; move it in.
        for diff_id, staged in staged_blobs.items():
            store.install_blob_file(staged, diff_id)
        for chain, staged_dir in staged_chains.items():
            store.commit_chain(staged_dir, chain)
        staged_blobs.clear()
        staged_chains.clear()
        return _register(store, plan)
    finally:
        for staged in staged_blobs.values():
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        for staged_dir in staged_chains.values():
            if staged_dir is not None:
                layers.remove_tree(staged_dir)
        layers.remove_tree(spool.directory)


def _register(store: ImageStore, plan: list[_PlannedImage]) -> list[str]:
    lines = []
    for image in plan:
        image_id = store.register_image(image.config_bytes)
        if not image.tags:
            lines.append(f"Loaded image ID: {image_id}")
            continue
        for tag in image.tags:
            parsed = references.parse_tagged(tag)
            with store.locked():
                old = store.resolve(str(parsed)) if store.exists(str(parsed)) else None
                if old is not None and old != image_id:
                    lines.append(f"The image {parsed.familiar()} already exists, renaming the old "
                                 f"one with ID {old} to empty string")
                store.tag(image_id, str(parsed))
            lines.append(f"Loaded image: {parsed.familiar()}")
    return lines
