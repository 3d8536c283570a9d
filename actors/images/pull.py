"""`docker pull`: a registry's image into the ImageStore, with Docker's progress messages.

The flow, for one reference:

1. Resolve the manifest (tag or digest; an index is resolved to the platform's entry),
   then announce `Pulling from <path>`; errors before this point carry no output, so the
   daemon can answer them as plain HTTP errors (404 pull access denied, 401 ...).
2. When the image (its config digest) is already stored, skip every layer: Docker's
   "Image is up to date" path.
3. Layers the store already has (by the compressed digest it recorded, or by diff id)
   are `Already exists`. The others download, at most three at a time in manifest order,
   through a verifying sink into a file under the store's tmp/. While a layer downloads,
   a worker thread reads the same file as it grows, decompresses it, hashes the tar and
   unpacks it into a prepared dir in tmp/ (`add_layer_from_tar(unpack=True,
   keep_tar=False)`), all in one pass, so decompression and unpacking overlap the
   network and the layer is written once besides its compressed blob (no uncompressed
   tar is kept: the store makes it again from the blob when `save` needs it). The reader
   fails, and the store throws its prepared dir away, unless the download ends verified.
   The compressed file is then fsynced, installed as a blob and recorded as the layer's
   compressed form (a later push sends it back byte for byte).
4. Layers become their chains in manifest order (`Extracting`, `Pull complete`): the
   prepared dir is made durable and renamed in. Then the image is registered from its
   verified config, and only then the manifest, the repo digest and the tag are
   recorded. A failure at any step leaves no image and no tag; verified blobs and
   unpacked chains stay as cache (collected when the store next opens if nothing uses
   them).

Distribution errors keep Docker's wording and `.status` (registry_errors.py). The helpers
shared with push.py (progress messages, the client, where blobs came from) live here.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

import attrs
import trio

from actors.images import reference as references
from actors.images.content import chain_ids
from actors.images.distribution import (
    CONFIG_BYTES_MAX,
    Credentials,
    DistributionClient,
    DistributionError,
    NotFound,
    Repository,
    VerificationFailed,
    select_platform,
)
from actors.images.registry_auth import AuthConfig
from actors.images.registry_protocol import IMAGE_MANIFEST_TYPES, INDEX_TYPES
from actors.images.store import ImageStore
from runtime.disk import atomic_write

__all__ = [
    "BlobSources",
    "PullResult",
    "blob_sources",
    "human_size",
    "progress_bar",
    "pull",
    "reference_from_api",
]

DOWNLOADS_CONCURRENT_MAX = 3  # moby's default max-concurrent-downloads
PROGRESS_STEPS = 100  # progress messages per transfer, at most about this many

LAYER_MEDIA_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
CONFIG_MEDIA_TYPES = frozenset({
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
})
ROOTFS_MISMATCH = "layers from manifest don't match image configuration"

Progress = Callable[[dict[str, Any]], None]
# One registry's credentials (X-Registry-Auth decoded), a map by registry domain, or a
# lookup function (DockerConfig.credentials_for); None is anonymous.
CredentialsArgument = (
    Credentials | AuthConfig | Mapping[str, Credentials]
    | Callable[[str], Credentials | None] | None
)
ClientFactory = Callable[..., DistributionClient]


# ------------------------------------------------------------------ progress messages

_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """Docker's `units.HumanSize`: decimal units, four significant digits (`2.217MB`)."""
    unit = 0
    while size >= 1000 and unit < len(_SIZE_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_SIZE_UNITS[unit]}"


def progress_bar(current: int, total: int) -> str:
    """The `progress` string the daemon sends: a 50-step bar, then `current/total`, as
    Docker renders it for a client it knows nothing about (no time estimate)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    steps = min(int(current / total * 100) // 2, 50)
    bar = "[" + "=" * steps + ">" + " " * (50 - steps) + "] "
    if current > total:
        return bar + f"{human_size(current):>8}"
    return bar + f"{human_size(current):>8}/{human_size(total)}"


def message(status: str, layer_id: str | None = None, current: int | None = None,
            total: int | None = None) -> dict[str, Any]:
    """One JSON-stream message, keys in the order Docker writes them."""
    body: dict[str, Any] = {"status": status}
    if layer_id is not None:
        if current is None:
            body["progressDetail"] = {}
        else:
            body["progressDetail"] = {"current": current, "total": total or 0}
            body["progress"] = progress_bar(current, total or 0)
        body["id"] = layer_id
    return body


def short_digest(digest: str) -> str:
    """Docker's layer ids in progress messages: the first 12 hex digits."""
    return digest.partition(":")[2][:12]


class Throttle:
    """Lets through a transfer's progress about PROGRESS_STEPS times, and its end."""

    def __init__(self, total: int | None) -> None:
        self.step = max((total or 0) // PROGRESS_STEPS, 64 * 1024)
        self.last = 0

    def due(self, done: int, total: int | None) -> bool:
        if done - self.last >= self.step or (total is not None and done >= total > self.last):
            self.last = done
            return True
        return False


# ------------------------------------------------------------------ client and errors

def open_client(domain: str, credentials: CredentialsArgument, insecure_registries: Iterable[str],
                client_factory: ClientFactory | None) -> DistributionClient:
    """A client for one pull or push; plain Credentials apply to the reference's registry."""
    if isinstance(credentials, AuthConfig):
        credentials = credentials.credentials()
    if isinstance(credentials, Credentials):
        credentials = {domain: credentials}
    elif isinstance(credentials, Mapping):
        credentials = dict(credentials)
    factory = client_factory or DistributionClient
    return factory(credentials=credentials, insecure_registries=tuple(insecure_registries))


def first_error(group: BaseExceptionGroup) -> BaseException | None:
    """The error that ended a nursery: its first leaf that is not a cancellation."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending[:0] = list(current.exceptions)
        else:
            leaves.append(current)
    for leaf in leaves:
        if not isinstance(leaf, trio.Cancelled):
            return leaf
    return None


@contextlib.contextmanager
def single_errors() -> Iterator[None]:
    """Around a nursery: raise the error that ended it rather than an ExceptionGroup, as
    the daemon reports one failure per pull or push (Docker reports the first)."""
    try:
        yield
    except BaseExceptionGroup as group:
        error = first_error(group)
        if error is None:
            raise  # only cancellations: let Trio deliver them
        raise error from None


# ------------------------------------------------------------------ where blobs came from

class BlobSources:
    """Which repositories are known to hold a blob, so a push can ask its registry for a
    cross-repository mount instead of uploading. Kept in `<store root>/blob-sources.json`
    as {digest: ["domain/path", ...]} (most recent first, at most
    REPOSITORIES_PER_BLOB_MAX), written atomically; entries for blobs the store no longer
    has are dropped on each write. Use `blob_sources(store)`: one instance per store."""

    FILE_NAME = "blob-sources.json"
    REPOSITORIES_PER_BLOB_MAX = 8

    def __init__(self, store: ImageStore) -> None:
        self._store = store
        self._path = store.root / self.FILE_NAME
        self._lock = threading.Lock()
        try:
            document = json.loads(self._path.read_bytes())
        except (FileNotFoundError, ValueError):
            document = {}
        self._sources: dict[str, list[str]] = {
            digest: [str(name) for name in names]
            for digest, names in (document.items() if isinstance(document, dict) else ())
            if isinstance(names, list)
        }

    def repositories(self, digest: str, domain: str) -> list[str]:
        """Paths of repositories on `domain` known to hold `digest`, most recent first."""
        prefix = domain + "/"
        with self._lock:
            names = list(self._sources.get(digest, ()))
        return [name[len(prefix):] for name in names if name.startswith(prefix)]

    def record(self, digests: Iterable[str], repository: Repository) -> None:
        """Remember that `repository` holds these blobs (blocking: it fsyncs)."""
        name = str(repository)
        with self._lock:
            changed = False
            for digest in digests:
                names = self._sources.setdefault(digest, [])
                if names[:1] == [name]:
                    continue
                if name in names:
                    names.remove(name)
                names.insert(0, name)
                del names[self.REPOSITORIES_PER_BLOB_MAX:]
                changed = True
            if not changed:
                return
            for digest in [d for d in self._sources if not self._store.has_blob(d)]:
                del self._sources[digest]
            atomic_write(self._path, json.dumps(self._sources, sort_keys=True).encode())


_SOURCES: weakref.WeakKeyDictionary[ImageStore, BlobSources] = weakref.WeakKeyDictionary()
_SOURCES_LOCK = threading.Lock()


def blob_sources(store: ImageStore) -> BlobSources:
    with _SOURCES_LOCK:
        found = _SOURCES.get(store)
        if found is None:
            found = _SOURCES[store] = BlobSources(store)
        return found


# ------------------------------------------------------------------ references

def reference_from_api(from_image: str, tag: str = "") -> str:
    """The reference `POST /images/create?fromImage=&tag=` names: `tag` may be a tag or a
    digest (`sha256:...`), and wins over a tag inside `fromImage`."""
    if not tag:
        return from_image
    parsed = references.parse(from_image)
    if ":" in tag:
        return str(references.Reference(parsed.domain, parsed.path, None, tag))
    return str(parsed.with_tag(tag))


# ------------------------------------------------------------------ the growing file

class _DownloadAborted(Exception):
    """The download feeding a reader failed or was cancelled: the reader must give up."""


class _Feed(io.RawIOBase):
    """A download's temporary file, read by a worker thread while the download appends
    to it. A read waits for bytes; the end comes only once the download is complete and
    verified, and every read fails once it is aborted."""

    # The reader sleeps until this much is available (or the end): one wake-up per
    # megabyte rather than one per network read keeps the two threads off each other.
    BATCH_BYTES = 1 << 20

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._out = open(path, "xb", buffering=0)  # noqa: SIM115 - closed in close()
        self._in = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._condition = threading.Condition()
        self._written = 0
        self._consumed = 0
        self._wanted = 0  # the reader sleeps until `_written` reaches this
        self._outcome: bool | None = None  # True: complete and verified; False: aborted

    async def append(self, chunk: bytes) -> None:
        """The download's sink."""
        view = memoryview(chunk)
        while view:
            view = view[self._out.write(view):]
        with self._condition:
            self._written += len(chunk)
            if self._written >= self._wanted:
                self._condition.notify_all()

    def complete(self) -> None:
        with self._condition:
            self._outcome = True
            self._condition.notify_all()

    def abort(self) -> None:
        with self._condition:
            if self._outcome is None:
                self._outcome = False
                self._condition.notify_all()

    def sync(self) -> None:
        os.fsync(self._out.fileno())

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(buffer):
            return 0
        with self._condition:
            self._wanted = self._consumed + min(len(buffer), self.BATCH_BYTES)
            while self._outcome is None and self._written < self._wanted:
                self._condition.wait()
            if self._outcome is False:
                raise _DownloadAborted("the download was abandoned")
            available = self._written - self._consumed
        if not available:
            return 0
        view = memoryview(buffer).cast("B")[:available]
        count = self._in.readinto(view) or 0
        self._consumed += count
        return count

    def close(self) -> None:
        self._out.close()
        self._in.close()
        super().close()


# ------------------------------------------------------------------ pulling

@attrs.frozen
class PullResult:
    image_id: str
    reference: str  # canonical: docker.io/library/busybox:latest
    digest: str  # the repo digest: the index's when there was one, else the manifest's
    status_line: str  # "Status: Downloaded newer image for busybox:latest" or "... up to date ..."


@attrs.define(eq=False)
class _Layer:
    index: int
    digest: str
    size: int
    diff_id: str  # what the config says
    exists: bool = False
    downloaded: trio.Event = attrs.field(factory=trio.Event)

    @property
    def short(self) -> str:
        return short_digest(self.digest)


@attrs.frozen
class _Resolved:
    manifest: bytes
    media_type: str
    digest: str
    repo_manifest: bytes  # what the repo digest names: the index, or the manifest itself
    repo_media_type: str
    repo_digest: str
    config: bytes
    config_digest: str
    layers: tuple[_Layer, ...]


async def pull(
    store: ImageStore,
    reference: str,
    *,
    credentials: CredentialsArgument = None,
    insecure_registries: Iterable[str] = (),
    progress: Progress,
    platform: str = "linux/amd64",
    client_factory: ClientFactory | None = None,
    allow_devices: bool = False,
) -> PullResult:
    """Pull `reference` (tag defaults to latest; `name@sha256:...` by digest) into `store`,
    calling `progress` with each of Docker's JSON messages. Raises InvalidReference for a
    bad reference and DistributionError (with `.status`) for everything else: the
    registry's refusals, content that fails verification, and layers the store refuses
    (`failed to register layer: ...`). Device nodes in layers are refused unless
    `allow_devices` (overlay whiteouts are always fine)."""
    parsed = references.parse_tagged(reference)
    if parsed.digest is not None:
        parsed = parsed.repository().with_digest(parsed.digest)  # a digest wins over a tag
    repository = Repository.of(parsed)
    wanted = parsed.digest or parsed.tag or references.DEFAULT_TAG
    async with open_client(repository.domain, credentials, insecure_registries,
                           client_factory) as client:
        operation = _Pull(store, client, repository, progress, allow_devices)
        resolved = await operation.resolve(wanted, platform)
        image_id = resolved.config_digest
        if not await trio.to_thread.run_sync(store.exists, image_id):
            image_id = await operation.fetch_image(resolved)
    named = parsed if parsed.digest else parsed.with_tag(wanted)
    status_line = await trio.to_thread.run_sync(_record, store, named, resolved, image_id)
    progress(message(f"Digest: {resolved.repo_digest}"))
    progress(message(status_line))
    return PullResult(image_id, str(named), resolved.repo_digest, status_line)


def _record(store: ImageStore, named: references.Reference, resolved: _Resolved,
            image_id: str) -> str:
    """Manifest, repo digest, tag and blob sources (blocking); returns the status line."""
    try:
        before = store.resolve(str(named))
    except (LookupError, references.InvalidReference):
        before = None
    store.put_manifest(resolved.repo_manifest, resolved.repo_media_type,
                       expected_digest=resolved.repo_digest)
    store.add_repo_digest(named.name, resolved.repo_digest, image_id)
    if named.digest is None:
        store.tag(image_id, str(named))
    repository = Repository.of(named)
    held = [layer.digest for layer in resolved.layers if store.has_blob(layer.digest)]
    blob_sources(store).record([*held, resolved.config_digest], repository)
    if before == image_id:
        return f"Status: Image is up to date for {named.familiar()}"
    return f"Status: Downloaded newer image for {named.familiar()}"


class _Pull:
    def __init__(self, store: ImageStore, client: DistributionClient, repository: Repository,
                 progress: Progress, allow_devices: bool) -> None:
        self.store = store
        self.client = client
        self.repository = repository
        self.progress = progress
        self.allow_devices = allow_devices

    async def resolve(self, wanted: str, platform: str) -> _Resolved:
        client, repository = self.client, self.repository
        data, media_type, digest = await client.get_manifest(repository, wanted)
        self.progress({"status": f"Pulling from {repository.path}", "id": wanted})
        repo = (data, media_type, digest)
        if media_type in INDEX_TYPES:
            choice = select_platform(data, platform)
            if choice is None:
                raise NotFound(f"no matching manifest for {platform} in the manifest list "
                               f"entries", code="MANIFEST_UNKNOWN")
            data, media_type, digest = await client.get_manifest(repository, choice)
            if media_type not in IMAGE_MANIFEST_TYPES:
                raise VerificationFailed(f"manifest {choice} is a {media_type}, not an image")
        document = json.loads(data)
        config = document.get("config") or {}
        if config.get("mediaType") not in CONFIG_MEDIA_TYPES:
            raise DistributionError(
                f"{repository.familiar}: unsupported config media type "
                f"{config.get('mediaType')!r}: not a container image")
        if not str(config.get("digest", "")).startswith("sha256:"):
            raise DistributionError(f"unsupported config digest {config.get('digest')!r}")
        config_bytes = await client.fetch_blob_bytes(repository, config["digest"],
                                                     config.get("size"), CONFIG_BYTES_MAX)
        diff_ids = _diff_ids(config_bytes)
        descriptors = document.get("layers") or []
        if len(descriptors) != len(diff_ids):
            raise VerificationFailed(ROOTFS_MISMATCH)
        layers = []
        for index, (descriptor, diff_id) in enumerate(zip(descriptors, diff_ids, strict=True)):
            if descriptor.get("mediaType") not in LAYER_MEDIA_TYPES:
                raise DistributionError(
                    f"unsupported layer media type {descriptor.get('mediaType')!r}")
            size = descriptor.get("size")
            if not isinstance(size, int) or size < 0:
                raise VerificationFailed(f"layer {descriptor.get('digest')}: invalid size")
            layers.append(_Layer(index, str(descriptor["digest"]), size, diff_id))
        return _Resolved(data, media_type, digest, repo[0], repo[1], repo[2], config_bytes,
                         config["digest"], tuple(layers))

    async def fetch_image(self, resolved: _Resolved) -> str:
        """Download what is missing, unpack it in order, register the image; its id."""
        store = self.store
        downloads: list[_Layer] = []
        seen: set[str] = set()
        for layer in resolved.layers:
            known = store.diff_id_for(layer.digest)
            layer.exists = store.has_layer(layer.diff_id) or (
                known == layer.diff_id and store.has_layer(known))
            if layer.exists:
                self.progress(message("Already exists", layer.short))
                layer.downloaded.set()
            elif layer.digest in seen:
                layer.exists = True  # the same blob twice: the first one brings it
            else:
                seen.add(layer.digest)
                downloads.append(layer)
                self.progress(message("Pulling fs layer", layer.short))
        for layer in downloads[DOWNLOADS_CONCURRENT_MAX:]:
            self.progress(message("Waiting", layer.short))
        by_digest = {layer.digest: layer for layer in downloads}
        for layer in resolved.layers:
            if layer.exists and layer.digest in by_digest:
                layer.downloaded = by_digest[layer.digest].downloaded
        with single_errors():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._launch, downloads, nursery)
                nursery.start_soon(self._unpack_in_order, resolved)
        return await trio.to_thread.run_sync(self._register, resolved)

    def _register(self, resolved: _Resolved) -> str:
        try:
            image_id = self.store.register_image(resolved.config,
                                                 expected_id=resolved.config_digest,
                                                 allow_devices=self.allow_devices)
        except (ValueError, OSError) as error:  # the store's InvalidImage, LayerError
            raise DistributionError(f"failed to register image: {error}") from error
        for layer in resolved.layers:
            if layer.digest != layer.diff_id and layer.digest.startswith("sha256:"):
                self.store.record_layer_digest(layer.diff_id, layer.digest)
        return image_id

    async def _launch(self, downloads: list[_Layer], nursery: trio.Nursery) -> None:
        """Start downloads in manifest order, at most DOWNLOADS_CONCURRENT_MAX at once."""
        limiter = trio.CapacityLimiter(DOWNLOADS_CONCURRENT_MAX)
        for layer in downloads:
            await limiter.acquire_on_behalf_of(layer)
            nursery.start_soon(self._download, layer, limiter)

    async def _download(self, layer: _Layer, limiter: trio.CapacityLimiter) -> None:
        try:
            if self.store.has_blob(layer.digest):
                # Verified when it was stored (an earlier pull that failed later on).
                try:
                    diff_id = await trio.to_thread.run_sync(functools.partial(
                        self.store.add_layer_from_blob, layer.digest,
                        allow_devices=self.allow_devices))
                except (ValueError, OSError) as error:
                    raise DistributionError(f"failed to register layer: {error}") from error
                self.progress(message("Download complete", layer.short))
            else:
                diff_id = await self._download_into_store(layer)
        finally:
            limiter.release_on_behalf_of(layer)
        if diff_id != layer.diff_id:
            await trio.to_thread.run_sync(self.store.discard_prepared_layer, diff_id)
            raise VerificationFailed(ROOTFS_MISMATCH)
        if layer.digest != diff_id:
            # Recorded now, not only with the image: the store makes the layer's tar
            # again from this blob when something asks for it.
            await trio.to_thread.run_sync(self.store.record_layer_digest, diff_id, layer.digest)
        layer.downloaded.set()

    async def _download_into_store(self, layer: _Layer) -> str:
        store = self.store
        feed = _Feed(store.temporary_path("pull-layer"))
        found: list[str] = []
        failures: list[Exception] = []

        async def decompress() -> None:
            # A corrupt download often breaks the decompressor before the digest check
            # at its end: keep the error until the download says whether it was the
            # transfer (VerificationFailed wins) or the layer itself.
            try:
                found.append(await trio.to_thread.run_sync(functools.partial(
                    store.add_layer_from_tar, cast(BinaryIO, feed), keep_tar=False,
                    unpack=True, allow_devices=self.allow_devices)))
            except _DownloadAborted:
                pass
            except Exception as error:
                failures.append(error)

        throttle = Throttle(layer.size)

        def downloading(done: int, total: int | None) -> None:
            if done < layer.size and throttle.due(done, layer.size):
                self.progress(message("Downloading", layer.short, done, layer.size))

        def install() -> None:
            feed.sync()
            store.install_blob_file(feed.path, layer.digest)

        try:
            with single_errors():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(decompress)
                    try:
                        await self.client.fetch_blob(self.repository, layer.digest, feed.append,
                                                     downloading, size=layer.size)
                        self.progress(message("Downloading", layer.short, layer.size,
                                              layer.size))
                        self.progress(message("Verifying Checksum", layer.short))
                        feed.complete()
                        await trio.to_thread.run_sync(install)
                    except BaseException:
                        feed.abort()
                        raise
        except BaseException:
            if found:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(store.discard_prepared_layer, found[0])
            raise
        finally:
            feed.close()
            with contextlib.suppress(FileNotFoundError):
                feed.path.unlink()
        if failures:
            error = failures[0]
            if isinstance(error, DistributionError):
                raise error
            raise DistributionError(f"failed to register layer: {error}") from error
        self.progress(message("Download complete", layer.short))
        return found[0]

    async def _unpack_in_order(self, resolved: _Resolved) -> None:
        """Unpack each downloaded layer into its chain, base first, as Docker extracts."""
        diff_ids = [layer.diff_id for layer in resolved.layers]
        chains = chain_ids(diff_ids)
        for layer in resolved.layers:
            await layer.downloaded.wait()
            if layer.exists:
                continue
            chain = chains[layer.index]
            parent = chains[layer.index - 1] if layer.index else None
            self.progress(message("Extracting", layer.short, 0, layer.size))
            await trio.to_thread.run_sync(self._unpack, chain, parent, layer.diff_id)
            self.progress(message("Extracting", layer.short, layer.size, layer.size))
            self.progress(message("Pull complete", layer.short))

    def _unpack(self, chain: str, parent: str | None, diff_id: str) -> None:
        try:
            staged = self.store.stage_chain(chain, parent, diff_id, self.allow_devices)
        except (ValueError, OSError) as error:  # LayerError names the entry
            raise DistributionError(f"failed to register layer: {error}") from error
        self.store.commit_chain(staged, chain)


def _diff_ids(config_bytes: bytes) -> list[str]:
    """The config's rootfs.diff_ids, checked before anything is downloaded."""
    try:
        config = json.loads(config_bytes)
    except ValueError as exc:
        raise DistributionError(f"invalid image config: {exc}") from exc
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and references.is_full_id(d) and d.startswith("sha256:")
            for d in diff_ids):
        raise DistributionError("invalid image config: rootfs.diff_ids must be a list of "
                                "sha256 digests")
    return diff_ids

