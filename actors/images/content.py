"""Content by digest: blobs, manifests, layer tars and the unpacked layer chains.

`ContentStore` is the lower half of `ImageStore` (store.py), which adds images,
references, holds, recovery and garbage collection; see store.py for the layout and the
crash rules. Kept apart so each module stays readable; nothing uses it alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from actors.images import compression, layers
from actors.images.errors import BlobNotFound, DigestMismatch, InvalidImage
from runtime.disk import atomic_write

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_COPY_CHUNK_BYTES = 1 << 20

def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise InvalidImage(f"invalid digest {digest!r}: want sha256:<64 lower-case hex>")
    return digest


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Docker's chain ids: chain(L1)=diffid1, chain(Ln)=sha256(chain(Ln-1) + " " + diffidn)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            joined = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(joined).hexdigest())
    return chains


def canonical_json(value: Any) -> bytes:
    """The bytes we store for configs we create: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def syncfs(path: Path) -> None:
    """Flush the filesystem holding `path` (what we extracted) before it becomes visible."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



class ContentStore:
    """Blobs and layer chains under `root`; thread-safe through one re-entrant lock."""

    def __init__(self, root: str | os.PathLike[str], *,
                 fault_hook: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self._fault_hook = fault_hook
        self._lock = threading.RLock()
        self._distribution: dict[str, list[str]] = {}
        self._layer_info: dict[str, dict[str, Any]] = {}
        self._fresh_blobs: set[str] = set()
        self._fresh_chains: set[str] = set()
        for directory in ("blobs/sha256", "layers", "images", "manifests", "tmp"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)

    def _known_diff_ids(self) -> set[str]:
        """Diff ids of the stored images (ImageStore knows them)."""
        return set()

    def _fault(self, step: str) -> None:
        if self._fault_hook is not None:
            self._fault_hook(step)

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest)[len("sha256:") :]

    def _layer_dir(self, chain_id: str) -> Path:
        return self.root / "layers" / chain_id[len("sha256:") :]

    def temporary_path(self, kind: str) -> Path:
        """A fresh name under tmp/ (removed when the store next opens)."""
        return self.root / "tmp" / f"{kind}-{uuid.uuid4().hex}"

    def _read_json(self, path: Path, default: Any) -> Any:
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            return default

    # ---- blobs

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} not found") from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} not found") from None

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as handle:
            return handle.read()

    def install_blob_file(self, temporary: Path, digest: str) -> None:
        """Move a file under tmp/ whose sha256 the caller has checked into blobs/."""
        target = self.blob_path(digest)
        self._fault("blob-staged")
        with self._lock:
            if target.exists():
                temporary.unlink()
            else:
                os.rename(temporary, target)
                fsync_directory(target.parent)
            self._fresh_blobs.add(digest)
        self._fault("blob-written")

    def put_blob(self, source: bytes | BinaryIO, expected_digest: str | None = None) -> str:
        """Store content; verified against `expected_digest` when given. Returns its digest."""
        if expected_digest is not None:
            check_digest(expected_digest)
            if self.has_blob(expected_digest):
                with self._lock:
                    self._fresh_blobs.add(expected_digest)
                if not isinstance(source, bytes | bytearray):
                    while source.read(_COPY_CHUNK_BYTES):
                        pass
                return expected_digest
        temporary = self.temporary_path("blob")
        digest_hash = hashlib.sha256()
        try:
            with open(temporary, "wb") as handle:
                if isinstance(source, bytes | bytearray):
                    handle.write(source)
                    digest_hash.update(source)
                else:
                    while chunk := source.read(_COPY_CHUNK_BYTES):
                        handle.write(chunk)
                        digest_hash.update(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            digest = "sha256:" + digest_hash.hexdigest()
            if expected_digest is not None and digest != expected_digest:
                raise DigestMismatch(f"digest mismatch: expected {expected_digest}, content is {digest}")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        self.install_blob_file(temporary, digest)
        return digest

    # ---- manifests

    def put_manifest(self, data: bytes, media_type: str | None = None,
                     expected_digest: str | None = None) -> str:
        """Store a manifest (or index) blob and its media type; returns its digest."""
        try:
            parsed = json.loads(data)
        except ValueError as error:
            raise InvalidImage(f"manifest is not JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise InvalidImage("manifest must be a JSON object")
        media_type = media_type or parsed.get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
        digest = self.put_blob(data, expected_digest)
        with self._lock:
            atomic_write(self.root / "manifests" / (digest[len("sha256:") :] + ".json"),
                         canonical_json({"media_type": media_type}))
        return digest

    def get_manifest(self, digest: str) -> tuple[bytes, str]:
        """(manifest bytes, media type)."""
        data = self.read_blob(digest)
        info = self._read_json(self.root / "manifests" / (digest[len("sha256:") :] + ".json"), {})
        media_type = info.get("media_type") or json.loads(data).get("mediaType") or ""
        return data, media_type

    # ---- layers

    def _store_layer_stream(self, stream: BinaryIO) -> str:
        """Decompress `stream` into a tmp file, check its entries, install as blob <diff id>."""
        temporary = self.temporary_path("layer-tar")
        try:
            _, plain = compression.decompressed(stream)
            hashing = compression.HashingReader(plain)
            with open(temporary, "wb") as handle:
                while chunk := hashing.read(_COPY_CHUNK_BYTES):
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            with open(temporary, "rb") as handle:
                layers.check_layer_tar(handle)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        diff_id = hashing.digest()
        self.install_blob_file(temporary, diff_id)
        return diff_id

    def add_layer_from_tar(self, stream: BinaryIO) -> str:
        """Store a layer tar (plain, gzip, bzip2, xz or zstd); returns its diff id."""
        return self._store_layer_stream(stream)

    def add_layer_from_blob(self, compressed_digest: str) -> str:
        """Turn a stored (pulled) layer blob into a layer; records the digest mapping."""
        with self.open_blob(compressed_digest) as handle:
            diff_id = self._store_layer_stream(handle)
        if diff_id != compressed_digest:
            self.record_layer_digest(diff_id, compressed_digest)
        return diff_id

    def add_layer_from_directory(self, upper: Path,
                                 exclude: Callable[[str], bool] | None = None) -> str:
        """Make a layer from an overlay upper dir (commit, builder); returns its diff id."""
        temporary = self.temporary_path("layer-tar")
        try:
            with open(temporary, "wb") as handle:
                diff_id = layers.write_layer_tar(upper, handle, exclude=exclude)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        self.install_blob_file(temporary, diff_id)
        return diff_id

    def has_layer(self, diff_id: str) -> bool:
        return self.has_blob(diff_id)

    def record_layer_digest(self, diff_id: str, compressed_digest: str) -> None:
        """Remember that blob `compressed_digest` decompresses to layer `diff_id`."""
        check_digest(diff_id)
        check_digest(compressed_digest)
        with self._lock:
            known = self._distribution.setdefault(diff_id, [])
            if compressed_digest not in known:
                known.append(compressed_digest)
                self._write_distribution()

    def compressed_digests(self, diff_id: str) -> list[str]:
        """Known compressed blob digests of a layer (for push); may be absent from blobs/."""
        with self._lock:
            return list(self._distribution.get(diff_id, ()))

    def diff_id_for(self, compressed_digest: str) -> str | None:
        """The diff id a compressed layer blob is known to decompress to (for pull)."""
        with self._lock:
            for diff_id, digests in self._distribution.items():
                if compressed_digest in digests:
                    return diff_id
            return compressed_digest if compressed_digest in self._known_diff_ids() else None

    def _write_distribution(self) -> None:
        atomic_write(self.root / "distribution.json", canonical_json(self._distribution))

    def layer_info(self, chain_id: str) -> dict[str, Any]:
        """{"chain_id", "diff_id", "parent", "size"} of an unpacked layer chain."""
        with self._lock:
            info = self._layer_info.get(chain_id)
            if info is None:
                try:
                    info = json.loads((self._layer_dir(chain_id) / "layer.json").read_bytes())
                except FileNotFoundError:
                    raise BlobNotFound(f"layer {chain_id} not found") from None
                self._layer_info[chain_id] = info
            return info

    def stage_chain(self, chain_id: str, parent_chain: str | None, diff_id: str,
                    allow_devices: bool = False, source: Path | None = None) -> Path | None:
        """Extract layer `diff_id` for `chain_id` into tmp/; None when already unpacked.

        The tar is read from `source` when given (a verified file not yet in blobs/),
        else from the blob. The staged directory holds `diff/` and `layer.json`;
        `commit_chain` moves it in.
        """
        if self._layer_dir(chain_id).is_dir():
            with self._lock:
                if self._layer_dir(chain_id).is_dir():
                    self._fresh_chains.add(chain_id)
                    return None
        staged = self.temporary_path("layer")
        staged.mkdir()
        try:
            with (open(source, "rb") if source is not None else self.open_blob(diff_id)) as handle:
                result = layers.extract_layer(handle, staged / "diff", allow_devices=allow_devices)
            self._fault("layer-unpacked")
            info = {"chain_id": chain_id, "diff_id": diff_id, "parent": parent_chain,
                    "size": result.size_bytes}
            atomic_write(staged / "layer.json", canonical_json(info))
            syncfs(staged)
        except BaseException:
            layers.remove_tree(staged)
            raise
        self._fault("layer-extracted")
        return staged

    def commit_chain(self, staged: Path | None, chain_id: str) -> None:
        if staged is None:
            return
        target = self._layer_dir(chain_id)
        with self._lock:
            try:
                os.rename(staged, target)
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                layers.remove_tree(staged)
            else:
                fsync_directory(target.parent)
            self._fresh_chains.add(chain_id)
        self._fault("layer-committed")

    def _ensure_chains(self, diff_ids: Sequence[str], allow_devices: bool = False) -> list[str]:
        chains = chain_ids(diff_ids)
        for index, (chain, diff_id) in enumerate(zip(chains, diff_ids, strict=True)):
            parent = chains[index - 1] if index else None
            self.commit_chain(self.stage_chain(chain, parent, diff_id, allow_devices), chain)
        return chains
