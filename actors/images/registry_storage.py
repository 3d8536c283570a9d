"""Storage of the built-in registry: content-addressed blobs, per-repository links, uploads.

Layout under the root directory:

    blobs/<algorithm>/<first two hex>/<hex>          content, shared by every repository
    uploads/<uuid>/data, uploads/<uuid>/repository   an upload in progress
    repositories/<name>/_layers/<algorithm>/<hex>    the blob is part of this repository
    repositories/<name>/_manifests/revisions/<algorithm>/<hex>   JSON: media type, subject
    repositories/<name>/_manifests/tags/<tag>        the tagged manifest's digest

Rules that make `kill -9` harmless: a blob becomes visible only by a rename of a fully
written, fsynced and verified file; link, revision and tag files are written with
`atomic_write`; an upload lives in its own directory until committed, so a dead one is
invisible and only costs disk until `purge_stale_uploads`. A manifest's bytes are stored
as a blob before its revision or tag names it. Repository names cannot contain a
component starting with `_`, so `_layers` and `_manifests` never clash with a name.

Blocking file work is small (link files, appends of received chunks to the page cache);
fsync and whole-file hashing run in worker threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.images.registry_protocol import (
    INDEX_TYPES,
    MANIFEST_BYTES_MAX,
    ParsedManifest,
    RegistryError,
    check_digest,
    check_name,
    check_tag,
    digest_of,
    new_hasher,
    parse_manifest,
)
from runtime.disk import atomic_write

READ_CHUNK_BYTES = 1024 * 1024
UPLOAD_STALE_SECONDS = 24 * 3600


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split(digest: str) -> tuple[str, str]:
    algorithm, encoded = digest.split(":", 1)
    return algorithm, encoded


@attrs.define
class UploadSession:
    uuid: str
    repository: str
    directory: Path
    size: int
    hasher: Any  # sha256 of the bytes so far, kept so finishing needs no re-read
    lock: trio.Lock = attrs.field(factory=trio.Lock)
    started_at: float = attrs.field(factory=time.time)


@attrs.frozen
class ManifestRecord:
    digest: str
    media_type: str
    data: bytes


@attrs.frozen
class BlobInfo:
    digest: str
    size: int
    path: Path


class RegistryStorage:
    """The registry's content on a local directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        for directory in ("blobs", "uploads", "repositories"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        self._sessions: dict[str, UploadSession] = {}

    # -- paths

    def _blob_path(self, digest: str) -> Path:
        algorithm, encoded = _split(digest)
        return self.root / "blobs" / algorithm / encoded[:2] / encoded

    def _repository(self, name: str) -> Path:
        return self.root / "repositories" / check_name(name)

    def _layer_link(self, name: str, digest: str) -> Path:
        algorithm, encoded = _split(digest)
        return self._repository(name) / "_layers" / algorithm / encoded

    def _revision(self, name: str, digest: str) -> Path:
        algorithm, encoded = _split(digest)
        return self._repository(name) / "_manifests" / "revisions" / algorithm / encoded

    def _tag_path(self, name: str, tag: str) -> Path:
        return self._repository(name) / "_manifests" / "tags" / check_tag(tag)

    @staticmethod
    def _write_link(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)

    # -- blobs

    def blob_info(self, name: str, digest: str) -> BlobInfo:
        """The blob as part of repository `name`; BLOB_UNKNOWN otherwise."""
        check_digest(digest)
        path = self._blob_path(digest)
        if not self._layer_link(name, digest).exists():
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest}) from None
        return BlobInfo(digest, size, path)

    def has_blob_anywhere(self, digest: str) -> bool:
        return self._blob_path(digest).exists()

    async def read_blob(self, info: BlobInfo, start: int = 0, end: int | None = None
                        ) -> AsyncGenerator[bytes, None]:
        """The blob's bytes from `start` to `end` inclusive, in chunks."""
        last = info.size - 1 if end is None else end
        fd = os.open(info.path, os.O_RDONLY)
        try:
            offset = start
            while offset <= last:
                data = os.pread(fd, min(READ_CHUNK_BYTES, last - offset + 1), offset)
                if not data:
                    raise RegistryError("BLOB_UNKNOWN", f"blob {info.digest} is truncated")
                offset += len(data)
                yield data
        finally:
            os.close(fd)

    def link_blob(self, name: str, digest: str) -> None:
        link = self._layer_link(name, digest)
        if not link.exists():
            self._write_link(link, b"")

    def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Link a blob of repository `source` into `name`; False when `source` lacks it."""
        check_digest(digest)
        check_name(source)
        if not self._layer_link(source, digest).exists() or not self._blob_path(digest).exists():
            return False
        self.link_blob(name, digest)
        return True

    def delete_blob(self, name: str, digest: str) -> None:
        """Unlink the blob from the repository (the content stays until `collect_garbage`)."""
        self.blob_info(name, digest)
        link = self._layer_link(name, digest)
        link.unlink()
        _fsync_directory(link.parent)

    async def _commit_file(self, source: Path, digest: str) -> None:
        """Move a complete, verified file into the blob store, durably."""
        target = self._blob_path(digest)
        if target.exists():
            source.unlink()
            return

        def commit() -> None:
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            _fsync_directory(target.parent)

        await trio.to_thread.run_sync(commit)

    async def put_small_blob(self, name: str, data: bytes) -> str:
        """Store bytes as a blob of `name` (manifests, test fixtures); returns the digest."""
        digest = digest_of(data)
        if not self._blob_path(digest).exists():
            temporary = self.root / "uploads" / f".small-{uuid.uuid4().hex}"
            temporary.write_bytes(data)
            await self._commit_file(temporary, digest)
        self.link_blob(name, digest)
        return digest

    # -- uploads

    def start_upload(self, name: str) -> UploadSession:
        check_name(name)
        session_id = str(uuid.uuid4())
        directory = self.root / "uploads" / session_id
        directory.mkdir()
        (directory / "data").write_bytes(b"")
        (directory / "repository").write_text(name)
        session = UploadSession(session_id, name, directory, 0, hashlib.sha256())
        self._sessions[session_id] = session
        return session

    async def get_upload(self, name: str, session_id: str) -> UploadSession:
        """The session, also one left by an earlier run of the server (re-hashed from disk)."""
        session = self._sessions.get(session_id)
        if session is not None:
            if session.repository != name:
                raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": session_id})
            return session
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": session_id}) from None
        directory = self.root / "uploads" / session_id
        try:
            owner = (directory / "repository").read_text()
        except (FileNotFoundError, NotADirectoryError):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": session_id}) from None
        if owner != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": session_id})

        session = UploadSession(session_id, name, directory, 0, hashlib.sha256())
        session.size = (directory / "data").stat().st_size
        session.hasher = await self._rehash(session)
        self._sessions[session_id] = session
        return session

    async def append_upload(self, session: UploadSession, chunks: AsyncIterator[bytes],
                            size_max: int | None = None) -> int:
        """Append a stream of chunks; returns the bytes appended.

        With `size_max`, a stream longer than that is refused (SIZE_INVALID) and the session
        keeps what it had. A stream that breaks off (client gone) keeps what arrived, so the
        client can ask for the upload's Range and resume from there.
        """
        before = session.size
        appended = 0
        fd = os.open(session.directory / "data", os.O_WRONLY | os.O_APPEND)
        try:
            async for chunk in chunks:
                if size_max is not None and appended + len(chunk) > size_max:
                    os.ftruncate(fd, before)
                    session.size = before
                    session.hasher = (await self._rehash(session))
                    raise RegistryError("SIZE_INVALID",
                                        f"chunk is longer than its declared {size_max} bytes")
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                session.hasher.update(chunk)
                appended += len(chunk)
                session.size = before + appended
        finally:
            os.close(fd)
        return appended

    @staticmethod
    async def _rehash(session: UploadSession) -> Any:
        def rehash() -> Any:
            hasher = hashlib.sha256()
            with open(session.directory / "data", "rb") as handle:
                while chunk := handle.read(READ_CHUNK_BYTES):
                    hasher.update(chunk)
            return hasher

        return await trio.to_thread.run_sync(rehash)

    async def finish_upload(self, session: UploadSession, digest: str) -> BlobInfo:
        """Verify the uploaded bytes against `digest` and commit them as a blob."""
        check_digest(digest)
        data_path = session.directory / "data"
        if digest.startswith("sha256:"):
            actual = "sha256:" + session.hasher.hexdigest()
        else:
            def rehash() -> str:
                hasher = new_hasher(digest)
                with open(data_path, "rb") as handle:
                    while chunk := handle.read(READ_CHUNK_BYTES):
                        hasher.update(chunk)
                return f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"

            actual = await trio.to_thread.run_sync(rehash)
        if actual != digest:
            raise RegistryError("DIGEST_INVALID", detail={"digest": digest, "actual": actual})
        await self._commit_file(data_path, digest)
        self.link_blob(session.repository, digest)
        self.cancel_upload(session)
        return self.blob_info(session.repository, digest)

    def cancel_upload(self, session: UploadSession) -> None:
        self._sessions.pop(session.uuid, None)
        shutil.rmtree(session.directory, ignore_errors=True)

    def purge_stale_uploads(self, age_seconds: float = UPLOAD_STALE_SECONDS) -> int:
        """Remove uploads untouched for `age_seconds` (left by clients or crashes)."""
        removed = 0
        cutoff = time.time() - age_seconds
        for entry in (self.root / "uploads").iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()
                    self._sessions.pop(entry.name, None)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    # -- manifests and tags

    async def put_manifest(self, name: str, reference: str, data: bytes,
                           content_type: str | None) -> tuple[str, ParsedManifest]:
        """Store a manifest under a tag or its digest; returns its digest."""
        check_name(name)
        if len(data) > MANIFEST_BYTES_MAX:
            raise RegistryError("MANIFEST_INVALID", "manifest too large", status=413)
        is_by_digest = ":" in reference
        if is_by_digest:
            check_digest(reference)
            digest = digest_of(data, reference.split(":", 1)[0])
            if digest != reference:
                raise RegistryError("DIGEST_INVALID", detail={"digest": reference,
                                                              "actual": digest})
        else:
            check_tag(reference)
            digest = digest_of(data)
        parsed = parse_manifest(data, content_type)
        missing = [
            descriptor.digest for descriptor in parsed.blobs
            if not self._layer_link(name, descriptor.digest).exists()
        ] + [
            descriptor.digest for descriptor in parsed.manifests
            if not self._revision(name, descriptor.digest).exists()
        ]
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digests": missing})
        stored = await self.put_small_blob(name, data)
        if stored != digest_of(data):
            raise AssertionError("manifest blob digest changed while storing")
        if digest != stored:
            # Addressed by a sha512 digest: keep a link under that name as well.
            self._write_link(self._blob_path(digest), data)
        record = {
            "mediaType": parsed.media_type,
            "size": len(data),
            "sha256": stored,
            "subject": parsed.subject.digest if parsed.subject else None,
            "artifactType": parsed.artifact_type,
        }
        self._write_link(self._revision(name, digest), json.dumps(record).encode())
        if not is_by_digest:
            self._write_link(self._tag_path(name, reference), digest.encode())
        return digest, parsed

    def tag_manifest(self, name: str, tag: str, digest: str) -> None:
        self._revision_record(name, digest)
        self._write_link(self._tag_path(name, tag), digest.encode())

    def _revision_record(self, name: str, digest: str) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads(self._revision(name, digest).read_bytes())
            return record
        except (FileNotFoundError, NotADirectoryError):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest}) from None

    def resolve(self, name: str, reference: str) -> str:
        """The digest a tag or digest reference names in the repository."""
        if ":" in reference:
            check_digest(reference)
            self._revision_record(name, reference)
            return reference
        try:
            return self._tag_path(name, reference).read_text()
        except (FileNotFoundError, NotADirectoryError):
            if not self._repository(name).exists():
                raise RegistryError("NAME_UNKNOWN", detail={"name": name}) from None
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference}) from None

    def get_manifest(self, name: str, reference: str) -> ManifestRecord:
        digest = self.resolve(name, reference)
        record = self._revision_record(name, digest)
        blob = self._blob_path(record.get("sha256") or digest)
        try:
            data = blob.read_bytes()
        except FileNotFoundError:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest}) from None
        return ManifestRecord(digest, record["mediaType"], data)

    def delete_manifest(self, name: str, reference: str) -> None:
        """By digest: remove the revision and every tag naming it. By tag: only the tag."""
        if ":" not in reference:
            path = self._tag_path(name, reference)
            try:
                path.unlink()
            except FileNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference}) from None
            _fsync_directory(path.parent)
            return
        self._revision_record(name, reference)
        tags_directory = self._repository(name) / "_manifests" / "tags"
        for tag in self.list_tags(name):
            tag_path = tags_directory / tag
            if tag_path.read_text() == reference:
                tag_path.unlink()
        revision = self._revision(name, reference)
        revision.unlink()
        _fsync_directory(revision.parent)

    def list_tags(self, name: str) -> list[str]:
        directory = self._repository(name)
        if not (directory / "_manifests").exists():
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        tags = directory / "_manifests" / "tags"
        if not tags.exists():
            return []
        return sorted(entry.name for entry in tags.iterdir() if not entry.name.startswith("."))

    def list_repositories(self) -> list[str]:
        base = self.root / "repositories"
        found = []
        for directory, subdirectories, _ in os.walk(base):
            if "_manifests" in subdirectories:
                found.append(os.path.relpath(directory, base))
            subdirectories[:] = [entry for entry in subdirectories if not entry.startswith("_")]
        return sorted(found)

    def referrers(self, name: str, digest: str) -> list[dict[str, Any]]:
        """Descriptors of the manifests in `name` whose subject is `digest`."""
        check_digest(digest)
        found = []
        revisions = self._repository(name) / "_manifests" / "revisions"
        if not revisions.exists():
            return []
        for algorithm_directory in sorted(revisions.iterdir()):
            for entry in sorted(algorithm_directory.iterdir()):
                if entry.name.startswith("."):
                    continue
                record = json.loads(entry.read_bytes())
                if record.get("subject") != digest:
                    continue
                referrer = f"{algorithm_directory.name}:{entry.name}"
                descriptor: dict[str, Any] = {
                    "mediaType": record["mediaType"], "digest": referrer, "size": record["size"],
                }
                if record.get("artifactType"):
                    descriptor["artifactType"] = record["artifactType"]
                found.append(descriptor)
        return found

    def is_index(self, record: ManifestRecord) -> bool:
        return record.media_type in INDEX_TYPES

    # -- garbage collection

    def collect_garbage(self) -> int:
        """Remove blobs no repository links or records as a manifest. Run with the server
        stopped: an upload committing meanwhile could lose its blob."""
        referenced: set[str] = set()
        base = self.root / "repositories"
        for directory, _, files in os.walk(base):
            parts = Path(directory).relative_to(base).parts
            if len(parts) >= 2 and parts[-2] in ("_layers", "revisions"):
                referenced.update(f"{parts[-1]}:{entry}" for entry in files)
                if parts[-2] == "revisions":
                    for entry in files:
                        record = json.loads((Path(directory) / entry).read_bytes())
                        if record.get("sha256"):
                            referenced.add(record["sha256"])
        removed = 0
        blobs = self.root / "blobs"
        for algorithm_directory in blobs.iterdir():
            for prefix in algorithm_directory.iterdir():
                for blob in prefix.iterdir():
                    if f"{algorithm_directory.name}:{blob.name}" not in referenced:
                        blob.unlink()
                        removed += 1
        return removed
