"""`docker push`: an image of the ImageStore to a registry, with Docker's progress messages.

For each tag (one, or every tag of the repository with `all_tags`):

1. Each layer, top first as Docker lists them, needs a gzip blob. A compressed blob the
   store recorded for that diff id is reused when the store holds it and it is gzip (a
   pulled image goes back byte for byte, so the registry answers "exists" or mounts it);
   otherwise the layer tar is compressed once, stored and recorded, so the next push of the
   same layer costs nothing. A layer the store keeps no tar of (one made by a build or a
   commit) is compressed from its tar made on the fly from its unpacked dir
   (`open_layer_tar`), checked against the diff id before anything is uploaded. Compression is deterministic: the same tar always gives the
   same blob.
2. At most five layers are uploaded at once (moby's default), in order; the rest wait.
   `DistributionClient.push_blob` answers whether the blob already existed, was mounted
   from another repository of the same registry (one that `BlobSources` recorded at an
   earlier pull or push), or was uploaded.
3. The config blob goes up, then a Docker schema2 manifest under the tag; the repo digest
   and the manifest are recorded in the store, as Docker records them after a push.

Compression runs in worker threads: the tar is cut into 1 MiB pieces deflated in
parallel and joined into one gzip member (each piece but the last ends with a sync
flush; the CRC is computed over the whole input), as pigz does. A piece whose samples do
not compress (already compressed files, random data) is written as stored blocks rather
than deflated, which costs a copy instead of a futile search. A freshly compressed blob
is uploaded from its temporary file while the same file is fsynced and installed in the
store, so the flush to disk overlaps the network.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import os
import struct
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import attrs
import trio

from actors.images import compression
from actors.images import reference as references
from actors.images.distribution import DistributionClient, DistributionError, NotFound, Repository
from actors.images.errors import ImageNotFound
from actors.images.pull import (
    ClientFactory,
    CredentialsArgument,
    Progress,
    Throttle,
    blob_sources,
    message,
    open_client,
    short_digest,
    single_errors,
)
from actors.images.registry_protocol import DOCKER_CONFIG, DOCKER_MANIFEST
from actors.images.store import ImageStore

__all__ = ["PushResult", "compress_layer", "gzip_stream", "push", "schema2_manifest"]

UPLOADS_CONCURRENT_MAX = 5  # moby's default max-concurrent-uploads
GZIP_LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
GZIP_LEVEL = 6  # what Docker's gzip writer uses by default
COMPRESS_PIECE_BYTES = 1 << 20
READ_BYTES = 1 << 20
_SAMPLE_BYTES = 4096
_INCOMPRESSIBLE_RATIO = 0.97
_STORED_BLOCK_BYTES_MAX = 65535
# ID1 ID2, CM=deflate, no flags, MTIME=0, XFL=0, OS=unknown: what Go's gzip writer emits.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@attrs.frozen
class PushResult:
    digest: str  # the manifest's digest
    size: int  # the manifest's length in bytes
    tag: str


@attrs.frozen
class _Blob:
    digest: str
    size: int


# ------------------------------------------------------------------ gzip

def _incompressible(piece: bytes) -> bool:
    """True when three samples of the piece do not shrink under the fastest deflate."""
    if len(piece) < 3 * _SAMPLE_BYTES:
        return False
    middle = len(piece) // 2
    samples = (piece[:_SAMPLE_BYTES], piece[middle:middle + _SAMPLE_BYTES],
               piece[-_SAMPLE_BYTES:])
    return all(len(zlib.compress(sample, 1)) >= len(sample) * _INCOMPRESSIBLE_RATIO
               for sample in samples)


def _stored_blocks(piece: bytes, final: bool) -> bytes | bytearray:
    """The piece as deflate stored blocks (RFC 1951 3.2.4): byte-aligned, so the next
    piece may follow directly; only the last block of the last piece is final."""
    if not piece:
        return b"\x01\x00\x00\xff\xff" if final else b""
    view = memoryview(piece)
    out = bytearray()
    for start in range(0, len(view), _STORED_BLOCK_BYTES_MAX):
        block = view[start:start + _STORED_BLOCK_BYTES_MAX]
        last = final and start + len(block) == len(view)
        out += struct.pack("<BHH", 1 if last else 0, len(block), len(block) ^ 0xFFFF)
        out += block
    return out


def _deflate(piece: bytes, level: int, final: bool) -> bytes | bytearray:
    if _incompressible(piece):
        return _stored_blocks(piece, final)
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(piece) + compressor.flush(
        zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def _read_piece(source: BinaryIO, count: int) -> bytes:
    parts = []
    while count > 0:
        data = source.read(count)
        if not data:
            break
        parts.append(data)
        count -= len(data)
    return b"".join(parts)


def gzip_stream(source: BinaryIO, out: BinaryIO, *, level: int = GZIP_LEVEL,
                piece_bytes: int = COMPRESS_PIECE_BYTES, workers: int | None = None
                ) -> tuple[str, int]:
    """Write `source` to `out` as one gzip member, deflating pieces in parallel threads;
    returns (sha256 digest, size) of what was written. The same input gives the same
    bytes whatever the number of workers."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    hasher = hashlib.sha256()
    written = 0
    crc = 0
    length = 0

    def emit(data: bytes | bytearray) -> None:
        nonlocal written
        out.write(data)
        hasher.update(data)
        written += len(data)

    emit(_GZIP_HEADER)
    pending: collections.deque[concurrent.futures.Future[bytes | bytearray]] = (
        collections.deque())
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="gzip") as pool:
        current = _read_piece(source, piece_bytes)
        while True:
            following = _read_piece(source, piece_bytes) if current else b""
            final = not following
            crc = zlib.crc32(current, crc)
            length += len(current)
            pending.append(pool.submit(_deflate, current, level, final))
            while len(pending) > 2 * workers:
                emit(pending.popleft().result())
            if final:
                break
            current = following
        while pending:
            emit(pending.popleft().result())
    emit(struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF))
    return "sha256:" + hasher.hexdigest(), written


@attrs.define
class _Compressed:
    """A layer just compressed into the store's tmp/, open for positional reads, so its
    upload can start while the file is fsynced and installed as a blob."""

    path: Path
    digest: str
    size: int
    descriptor: int

    def opener(self) -> Callable[[int], AsyncIterator[bytes]]:
        async def chunks(offset: int) -> AsyncIterator[bytes]:
            while offset < self.size:
                data = await trio.to_thread.run_sync(
                    os.pread, self.descriptor, min(READ_BYTES, self.size - offset), offset)
                if not data:
                    return
                offset += len(data)
                yield data

        return chunks

    def keep(self, store: ImageStore, diff_id: str) -> None:
        """Make it the layer's recorded gzip blob (blocking: fsync, rename, record)."""
        os.fsync(self.descriptor)
        store.install_blob_file(self.path, self.digest)
        store.record_layer_digest(diff_id, self.digest)

    def close(self) -> None:
        os.close(self.descriptor)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # only when it was not installed


def _compress_to_temporary(store: ImageStore, diff_id: str) -> _Compressed:
    temporary = store.temporary_path("push-layer")
    try:
        with store.open_layer_tar(diff_id) as source, open(temporary, "xb") as out:
            digest, size = gzip_stream(source, out)
        return _Compressed(temporary, digest, size, os.open(temporary, os.O_RDONLY))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def compress_layer(store: ImageStore, diff_id: str) -> tuple[str, int]:
    """Compress a stored layer tar into a gzip blob in the store, record it as the
    layer's compressed form, and return (digest, size). Blocking."""
    compressed = _compress_to_temporary(store, diff_id)
    try:
        compressed.keep(store, diff_id)
    finally:
        compressed.close()
    return compressed.digest, compressed.size


def _stored_gzip_blob(store: ImageStore, diff_id: str) -> _Blob | None:
    """A gzip blob the store holds for this layer (from a pull or an earlier push)."""
    for digest in store.compressed_digests(diff_id):
        try:
            with store.open_blob(digest) as handle:
                head = handle.read(6)
        except LookupError:
            continue
        if compression.detect(head) == "gzip":
            return _Blob(digest, store.blob_size(digest))
    return None


def layer_blob(store: ImageStore, diff_id: str) -> tuple[str, int]:
    """The gzip blob to push for a layer: the recorded one, else a new one. Blocking."""
    found = _stored_gzip_blob(store, diff_id)
    if found is not None:
        return found.digest, found.size
    return compress_layer(store, diff_id)


def schema2_manifest(config_digest: str, config_size: int, layers: Iterable[tuple[str, int]]
                     ) -> bytes:
    """A Docker schema2 manifest, laid out as Docker writes it (three-space indent)."""
    document = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config_size, "digest": config_digest},
        "layers": [{"mediaType": GZIP_LAYER_TYPE, "size": size, "digest": digest}
                   for digest, size in layers],
    }
    return json.dumps(document, indent=3).encode()


# ------------------------------------------------------------------ pushing

def _blob_opener(store: ImageStore, digest: str) -> Callable[[int], AsyncIterator[bytes]]:
    async def chunks(offset: int) -> AsyncIterator[bytes]:
        handle = await trio.to_thread.run_sync(store.open_blob, digest)
        try:
            handle.seek(offset)
            while data := await trio.to_thread.run_sync(handle.read, READ_BYTES):
                yield data
        finally:
            handle.close()

    return chunks


def _bytes_opener(data: bytes) -> Callable[[int], AsyncIterator[bytes]]:
    async def chunks(offset: int) -> AsyncIterator[bytes]:
        await trio.lowlevel.checkpoint()
        if offset < len(data):
            yield data[offset:]

    return chunks


def _tags_to_push(store: ImageStore, reference: str, all_tags: bool
                  ) -> list[tuple[references.Reference, str]]:
    """(tag reference, image id) pairs, or Docker's errors when there is nothing to push."""
    parsed = references.parse(reference)
    if parsed.digest is not None:
        raise DistributionError(f"cannot push a digest reference: {reference}", status=400)
    missing = NotFound(
        f"An image does not exist locally with the tag: {parsed.familiar_name}")
    if all_tags:
        if parsed.tag is not None:
            raise DistributionError("tag can't be used with --all-tags/-a", status=400)
        tagged = store.repo_tags_by_name(parsed.name)
    else:
        tagged = [parsed.with_default_tag()]
    found = []
    for named in tagged:
        try:
            found.append((named, store.resolve(str(named))))
        except ImageNotFound:
            continue
    if not found:
        raise missing
    return found


async def push(
    store: ImageStore,
    reference: str,
    *,
    credentials: CredentialsArgument = None,
    insecure_registries: Iterable[str] = (),
    progress: Progress,
    all_tags: bool = False,
    client_factory: ClientFactory | None = None,
) -> PushResult:
    """Push `reference` (tag defaults to latest) or, with `all_tags`, every tag of its
    repository; `progress` gets Docker's JSON messages. Returns the last tag pushed.
    Raises NotFound (404, Docker's wording) before any message when there is no such
    local image, and DistributionError (with `.status`) for registry failures."""
    tags = await trio.to_thread.run_sync(_tags_to_push, store, reference, all_tags)
    repository = Repository.of(tags[0][0])
    progress(message(f"The push refers to repository [{repository}]"))
    result: PushResult | None = None
    async with open_client(repository.domain, credentials, insecure_registries,
                           client_factory) as client:
        operation = _Push(store, client, repository, progress)
        for named, image_id in tags:
            result = await operation.push_tag(named, image_id)
    assert result is not None
    return result


class _Push:
    def __init__(self, store: ImageStore, client: DistributionClient, repository: Repository,
                 progress: Progress) -> None:
        self.store = store
        self.client = client
        self.repository = repository
        self.progress = progress
        self.sources = blob_sources(store)

    async def push_tag(self, named: references.Reference, image_id: str) -> PushResult:
        store = self.store
        image = await trio.to_thread.run_sync(store.image, image_id)
        top_first = list(dict.fromkeys(reversed(image.diff_ids)))
        for diff_id in top_first:
            self.progress(message("Preparing", short_digest(diff_id)))
        for diff_id in top_first[UPLOADS_CONCURRENT_MAX:]:
            self.progress(message("Waiting", short_digest(diff_id)))
        blobs: dict[str, _Blob] = {}
        with single_errors():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._launch, top_first, blobs, nursery)
        config = await trio.to_thread.run_sync(store.config_bytes, image_id)
        await self._push_blob(_Blob(image_id, len(config)), _bytes_opener(config), None)
        manifest = schema2_manifest(image_id, len(config),
                                    [(blobs[d].digest, blobs[d].size) for d in image.diff_ids])
        tag = named.tag or references.DEFAULT_TAG
        digest = await self.client.push_manifest(self.repository, tag, manifest,
                                                 DOCKER_MANIFEST)
        await trio.to_thread.run_sync(self._record, named, image_id, manifest, digest,
                                      [blob.digest for blob in blobs.values()])
        self.progress(message(f"{tag}: digest: {digest} size: {len(manifest)}"))
        self.progress({"progressDetail": {},
                       "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest)}})
        return PushResult(digest, len(manifest), tag)

    def _record(self, named: references.Reference, image_id: str, manifest: bytes,
                digest: str, layer_digests: list[str]) -> None:
        self.store.put_manifest(manifest, DOCKER_MANIFEST, expected_digest=digest)
        self.store.add_repo_digest(named.name, digest, image_id)
        self.sources.record([*layer_digests, image_id], self.repository)

    async def _launch(self, diff_ids: list[str], blobs: dict[str, _Blob],
                      nursery: trio.Nursery) -> None:
        """Start uploads top layer first, at most UPLOADS_CONCURRENT_MAX at once."""
        limiter = trio.CapacityLimiter(UPLOADS_CONCURRENT_MAX)
        for diff_id in diff_ids:
            await limiter.acquire_on_behalf_of(diff_id)
            nursery.start_soon(self._push_layer, diff_id, blobs, limiter)

    async def _push_layer(self, diff_id: str, blobs: dict[str, _Blob],
                          limiter: trio.CapacityLimiter) -> None:
        store = self.store
        try:
            found = await trio.to_thread.run_sync(_stored_gzip_blob, store, diff_id)
            if found is not None:
                blobs[diff_id] = found
                await self._push_blob(found, _blob_opener(store, found.digest),
                                      short_digest(diff_id))
                return
            compressed = await trio.to_thread.run_sync(_compress_to_temporary, store, diff_id)
            try:
                blob = blobs[diff_id] = _Blob(compressed.digest, compressed.size)
                with single_errors():
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(functools.partial(
                            trio.to_thread.run_sync, compressed.keep, store, diff_id))
                        await self._push_blob(blob, compressed.opener(), short_digest(diff_id))
            finally:
                compressed.close()
        finally:
            limiter.release_on_behalf_of(diff_id)

    async def _push_blob(self, blob: _Blob, opener: Callable[[int], AsyncIterator[bytes]],
                         layer_id: str | None) -> None:
        """Make the registry hold `blob`; layer messages when `layer_id` is given."""
        candidates = [path for path in self.sources.repositories(blob.digest,
                                                                  self.repository.domain)
                      if path != self.repository.path]
        mount_from = candidates[0] if candidates else None
        throttle = Throttle(blob.size)

        def pushing(done: int, total: int | None) -> None:
            if layer_id is not None and done < blob.size and throttle.due(done, blob.size):
                self.progress(message("Pushing", layer_id, done, blob.size))

        outcome = await self.client.push_blob(self.repository, blob.digest, blob.size, opener,
                                              pushing, mount_from=mount_from)
        if layer_id is None:
            return
        if outcome == "exists":
            self.progress(message("Layer already exists", layer_id))
        elif outcome == "mounted":
            self.progress(message(f"Mounted from {mount_from}", layer_id))
        else:
            self.progress(message("Pushing", layer_id, blob.size, blob.size))
            self.progress(message("Pushed", layer_id))

