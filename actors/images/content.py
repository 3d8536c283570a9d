"""Content by digest: blobs, manifests, layers (in their four forms) and layer chains.

`ContentStore` is the lower half of `ImageStore` (store.py), which adds images,
references, holds, recovery and garbage collection; see store.py for the layout and the
crash rules. Kept apart so each module stays readable; nothing uses it alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from actors.images import compression, layers
from actors.images.errors import BlobNotFound, DigestMismatch, InvalidImage
from runtime.disk import atomic_write

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_COPY_CHUNK_BYTES = 1 << 20
# Names under tmp/ that a caller hands over (see `ContentStore.donation_path`).
DONATION_PREFIX = "donated-layer-"
# Prepared layer dirs kept for image records still to come; older ones are dropped.
PREPARED_LAYERS_MAX = 64
_PIPE_BYTES = 1 << 20

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


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



@attrs.define
class _Prepared:
    """A layer unpacked into tmp/ (`path/diff`) before any chain needs it."""

    path: Path
    report: layers.TreeReport
    exact: bool  # made from a directory: its tar can be made again from it, byte for byte
    devices_allowed: bool  # unpacked with device nodes allowed


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
        self._prepared: dict[str, _Prepared] = {}
        self._chains_by_diff: dict[str, set[str]] = {}
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
        """The blob's size; a layer tar the store did not keep is made again first."""
        for _attempt in range(2):
            try:
                return self.blob_path(digest).stat().st_size
            except FileNotFoundError:
                if not self._materialize_layer_tar(digest):
                    break
        raise BlobNotFound(f"blob {digest} not found")

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob, open for reading; a layer tar the store did not keep is made again
        (and kept) first."""
        for _attempt in range(2):
            try:
                return open(self.blob_path(digest), "rb")
            except FileNotFoundError:
                if not self._materialize_layer_tar(digest):
                    break
        raise BlobNotFound(f"blob {digest} not found")

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
    #
    # A layer's content can be held in four forms, any of which can make the others:
    #   the uncompressed tar, blob <diff id>       (load, import, a tar given to the store)
    #   a compressed blob recorded for the diff id (pull; push re-sends it byte for byte)
    #   an unpacked chain dir whose layer.json names the diff id
    #   a prepared dir in tmp/: unpacked while it arrived, not yet a chain (build, pull)
    # A layer made from a directory or pulled keeps no uncompressed tar: the tar is made
    # again (from the chain dir, or by decompressing the pulled blob), checked against the
    # diff id, and kept as a blob the first time `save` or anything else opens it.

    def _store_layer_stream(self, stream: BinaryIO, *, keep_tar: bool, unpack: bool,
                            allow_devices: bool) -> str:
        """Decompress `stream`; write the tar to blob <diff id> when `keep_tar`, unpack it
        into a prepared dir when `unpack`, both from one read; returns the diff id."""
        temporary = self.temporary_path("layer-tar") if keep_tar else None
        prepared = self.temporary_path("prepared") if unpack else None
        result: layers.ExtractResult | None = None
        try:
            _, plain = compression.decompressed(stream)
            with contextlib.ExitStack() as files:
                handle = files.enter_context(open(temporary, "wb")) if temporary else None
                hashing = compression.HashingReader(plain, copy_to=handle)
                if prepared is not None:
                    prepared.mkdir()
                    result = layers.extract_layer(hashing, prepared / "diff",  # type: ignore[arg-type]
                                                  allow_devices=allow_devices)
                hashing.drain()
                if handle is not None:
                    handle.flush()
                    os.fsync(handle.fileno())
            if temporary is not None and prepared is None:
                with open(temporary, "rb") as handle:
                    layers.check_layer_tar(handle)
        except BaseException:
            if temporary is not None:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
            if prepared is not None:
                layers.remove_tree(prepared)
            raise
        diff_id = hashing.digest()
        if temporary is not None:
            self.install_blob_file(temporary, diff_id)
        if prepared is not None and result is not None:
            report = layers.TreeReport(result.size_bytes, result.entry_count,
                                       plain_only=result.plain_only)
            self._add_prepared(diff_id, _Prepared(prepared, report, exact=False,
                                                  devices_allowed=allow_devices))
        return diff_id

    def add_layer_from_tar(self, stream: BinaryIO, *, keep_tar: bool = True,
                           unpack: bool = False, allow_devices: bool = False) -> str:
        """Store a layer tar (plain, gzip, bzip2, xz or zstd); returns its diff id.

        `unpack` extracts it while it is read, so making its chain later is a rename;
        `keep_tar=False` (with `unpack`) writes no uncompressed tar: for a pulled layer,
        whose compressed blob the caller keeps and records.
        """
        if not keep_tar and not unpack:
            raise ValueError("add_layer_from_tar: keep_tar=False needs unpack=True")
        return self._store_layer_stream(stream, keep_tar=keep_tar, unpack=unpack,
                                        allow_devices=allow_devices)

    def add_layer_from_blob(self, compressed_digest: str, *, allow_devices: bool = False) -> str:
        """Turn a stored (pulled) layer blob into a layer, unpacked and without a copy of
        its tar; records the digest mapping."""
        with self.open_blob(compressed_digest) as handle:
            diff_id = self._store_layer_stream(handle, keep_tar=False, unpack=True,
                                               allow_devices=allow_devices)
        if diff_id != compressed_digest:
            self.record_layer_digest(diff_id, compressed_digest)
        return diff_id

    def donation_path(self) -> Path:
        """A fresh path under tmp/ where a caller on the same filesystem may rename a
        directory it gives up (an unmounted overlay upper dir) before passing it to
        `add_layer_from_directory`, which then moves it instead of copying it."""
        return self.root / "tmp" / f"{DONATION_PREFIX}{uuid.uuid4().hex}"

    def _is_donation(self, path: Path) -> bool:
        return (path.name.startswith(DONATION_PREFIX) and not path.is_symlink()
                and os.path.realpath(path.parent) == os.path.realpath(self.root / "tmp"))

    def add_layer_from_directory(self, upper: Path,
                                 exclude: Callable[[str], bool] | None = None) -> str:
        """Make a layer from an overlay upper dir (commit, builder); returns its diff id.

        The tree is copied into tmp/ (moved, when it was handed over under
        `donation_path()`), normalized to what its tar would extract to, and hashed; no
        tar is written. `exclude(relative_path)` drops entries: then the tar is written
        and kept, as the tree itself is not the layer.
        """
        upper = Path(upper)
        if exclude is not None:
            return self._store_directory_tar(upper, exclude)
        donated = self._is_donation(upper)
        prepared = self.temporary_path("prepared")
        prepared.mkdir()
        try:
            if donated:
                os.rename(upper, prepared / "diff")
                report = layers.normalize_layer_tree(prepared / "diff")
            else:
                report = layers.copy_layer_tree(upper, prepared / "diff")
            diff_id = layers.layer_tar_digest(prepared / "diff")
        except BaseException:
            layers.remove_tree(prepared)
            if donated:
                layers.remove_tree(upper)
            raise
        self._add_prepared(diff_id, _Prepared(prepared, report, exact=True,
                                              devices_allowed=True))
        self._fault("layer-prepared")
        return diff_id

    def _store_directory_tar(self, upper: Path, exclude: Callable[[str], bool]) -> str:
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

    # ---- prepared layers (caller-independent bookkeeping, under the lock)

    def _add_prepared(self, diff_id: str, prepared: _Prepared) -> None:
        with self._lock:
            older = self._prepared.pop(diff_id, None)
            self._prepared[diff_id] = prepared
            evicted = [older] if older is not None else []
            while len(self._prepared) > PREPARED_LAYERS_MAX:
                evicted.append(self._prepared.pop(next(iter(self._prepared))))
        for item in evicted:
            layers.remove_tree(item.path)

    def discard_prepared_layer(self, diff_id: str) -> None:
        """Drop a prepared dir nothing will use (a pulled layer that failed a check)."""
        with self._lock:
            prepared = self._prepared.pop(diff_id, None)
        if prepared is not None:
            layers.remove_tree(prepared.path)

    def _take_prepared(self, diff_id: str) -> _Prepared | None:
        with self._lock:
            return self._prepared.pop(diff_id, None)

    # ---- where a layer's content is

    def has_layer(self, diff_id: str) -> bool:
        """Whether the store holds layer `diff_id` in any form (see `# ---- layers`)."""
        if self.has_blob(diff_id):
            return True
        with self._lock:
            if diff_id in self._prepared or self._chains_by_diff.get(diff_id):
                return True
            compressed = list(self._distribution.get(diff_id, ()))
        return any(self.has_blob(digest) for digest in compressed)

    def _chain_holding(self, diff_id: str) -> str | None:
        with self._lock:
            for chain in sorted(self._chains_by_diff.get(diff_id, ())):
                if (self._layer_dir(chain) / "diff").is_dir():
                    return chain
        return None

    def _index_chain(self, chain_id: str, diff_id: str) -> None:
        with self._lock:
            self._chains_by_diff.setdefault(diff_id, set()).add(chain_id)

    def _unindex_chain(self, chain_id: str, diff_id: str | None) -> None:
        with self._lock:
            chains = self._chains_by_diff.get(diff_id or "")
            if chains is not None:
                chains.discard(chain_id)
                if not chains:
                    del self._chains_by_diff[diff_id or ""]

    def _index_chains_on_disk(self) -> None:
        """Read every chain's layer.json (the store does this once, when it opens)."""
        for directory in (self.root / "layers").iterdir():
            chain = "sha256:" + directory.name
            if not DIGEST_RE.fullmatch(chain):
                continue
            try:
                info = self.layer_info(chain)
            except (BlobNotFound, ValueError):
                continue
            self._index_chain(chain, str(info.get("diff_id", "")))

    # ---- the uncompressed tar, made again when it was not kept

    def _tar_maker(self, diff_id: str) -> Callable[[BinaryIO], None] | None:
        """A function writing the layer's tar from another form of it (the pulled blob,
        decompressed; else a chain or prepared dir made from a directory), or None."""
        with self._lock:
            compressed = [d for d in self._distribution.get(diff_id, ()) if d != diff_id]
            prepared = self._prepared.get(diff_id)
        for digest in compressed:
            if self.has_blob(digest):
                return functools.partial(self._decompress_blob_into, digest)
        chain = self._chain_holding(diff_id)
        if chain is not None:
            return functools.partial(self._write_tree_tar, self._layer_dir(chain) / "diff")
        if prepared is not None and prepared.exact:
            return functools.partial(self._write_tree_tar, prepared.path / "diff")
        return None

    def _materialize_layer_tar(self, diff_id: str) -> bool:
        """Make blob <diff id> from another form of the layer; False when there is none.

        Raises DigestMismatch when the content no longer gives the diff id.
        """
        if self.has_blob(diff_id):
            return True
        maker = self._tar_maker(diff_id)
        if maker is None:
            return False
        temporary = self.temporary_path("layer-tar")
        try:
            with open(temporary, "wb") as handle:
                writer = _HashingFile(handle)
                maker(writer)  # type: ignore[arg-type]
                handle.flush()
                os.fsync(handle.fileno())
            _check_remade(diff_id, "sha256:" + writer.hash.hexdigest())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        self.install_blob_file(temporary, diff_id)
        return True

    def open_layer_tar(self, diff_id: str) -> BinaryIO:
        """The layer's uncompressed tar for one reading (push compresses it): the blob when
        kept, else made while it is read and not kept; its last read raises
        DigestMismatch if what was made is not the layer (nothing is kept either way)."""
        try:
            return open(self.blob_path(diff_id), "rb")
        except FileNotFoundError:
            pass
        maker = self._tar_maker(diff_id)
        if maker is None:
            raise BlobNotFound(f"blob {diff_id} not found")
        return io.BufferedReader(_MadeTar(maker, diff_id), _COPY_CHUNK_BYTES)  # type: ignore[return-value]

    def _decompress_blob_into(self, digest: str, out: BinaryIO) -> None:
        with self.open_blob(digest) as handle:
            _, plain = compression.decompressed(handle)
            reader = compression.HashingReader(plain, hashing=False)
            while chunk := reader.read(_COPY_CHUNK_BYTES):
                out.write(chunk)

    @staticmethod
    def _write_tree_tar(tree: Path, out: BinaryIO) -> None:
        layers.write_layer_tar(tree, out)

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

    # ---- layer chains

    def stage_chain(self, chain_id: str, parent_chain: str | None, diff_id: str,
                    allow_devices: bool = False, source: Path | None = None) -> Path | None:
        """Unpack layer `diff_id` for `chain_id` into tmp/; None when already unpacked.

        The content comes from `source` when given (a verified tar not yet in blobs/),
        else from the first form the store holds: a prepared dir (renamed, no copy), the
        tar blob, another chain of the same diff id (copied), or a compressed blob. The
        staged directory holds `diff/` and `layer.json`, made durable; `commit_chain`
        moves it in.
        """
        if self._layer_dir(chain_id).is_dir():
            with self._lock:
                if self._layer_dir(chain_id).is_dir():
                    self._fresh_chains.add(chain_id)
                    return None
        prepared = None if source is not None else self._usable_prepared(diff_id, allow_devices)
        staged = prepared.path if prepared is not None else self.temporary_path("layer")
        try:
            if prepared is not None:
                report = prepared.report
            else:
                staged.mkdir()
                report = self._unpack_into(staged / "diff", diff_id, allow_devices, source)
            self._fault("layer-unpacked")
            info = {"chain_id": chain_id, "diff_id": diff_id, "parent": parent_chain,
                    "size": report.size_bytes}
            # Not atomic_write: the whole staged dir, layer.json with it, is made durable
            # below before commit_chain renames it into layers/.
            (staged / "layer.json").write_bytes(canonical_json(info))
            layers.sync_staged_layer(staged, report)
        except BaseException:
            layers.remove_tree(staged)
            raise
        self._fault("layer-extracted")
        return staged

    def _usable_prepared(self, diff_id: str, allow_devices: bool) -> _Prepared | None:
        prepared = self._take_prepared(diff_id)
        if prepared is None:
            return None
        refusal = prepared.report.refusal
        if refusal is None and not allow_devices:
            if prepared.report.device is not None:
                refusal = prepared.report.device
            elif not prepared.exact and prepared.devices_allowed:
                # Unpacked with devices allowed: unpack again, so they are refused.
                layers.remove_tree(prepared.path)
                return None
        if refusal is not None:
            layers.remove_tree(prepared.path)
            raise layers.LayerError(refusal)
        return prepared

    def _unpack_into(self, target: Path, diff_id: str, allow_devices: bool,
                     source: Path | None) -> layers.TreeReport:
        if source is not None or self.has_blob(diff_id):
            with (open(source, "rb") if source is not None else self.open_blob(diff_id)) as handle:
                result = layers.extract_layer(handle, target, allow_devices=allow_devices)
            return layers.TreeReport(result.size_bytes, result.entry_count,
                                     plain_only=result.plain_only)
        chain = self._chain_holding(diff_id)
        if chain is not None:
            report = layers.copy_layer_tree(self._layer_dir(chain) / "diff", target)
            report.size_bytes = int(self.layer_info(chain).get("size", report.size_bytes))
            if report.device is not None and not allow_devices:
                raise layers.LayerError(report.device)
            return report
        with self._lock:
            compressed = [d for d in self._distribution.get(diff_id, ()) if self.has_blob(d)]
        if not compressed:
            raise BlobNotFound(f"layer {diff_id} not found")
        with self.open_blob(compressed[0]) as handle:
            _, plain = compression.decompressed(handle)
            hashing = compression.HashingReader(plain)
            result = layers.extract_layer(hashing, target,  # type: ignore[arg-type]
                                          allow_devices=allow_devices)
            hashing.drain()
        if hashing.digest() != diff_id:
            layers.remove_tree(target)
            raise DigestMismatch(f"layer blob {compressed[0]} no longer decompresses to {diff_id}")
        return layers.TreeReport(result.size_bytes, result.entry_count,
                                 plain_only=result.plain_only)

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
            self._index_chain(chain_id, str(self.layer_info(chain_id).get("diff_id", "")))
        self._fault("layer-committed")

    def _ensure_chains(self, diff_ids: Sequence[str], allow_devices: bool = False) -> list[str]:
        chains = chain_ids(diff_ids)
        for index, (chain, diff_id) in enumerate(zip(chains, diff_ids, strict=True)):
            parent = chains[index - 1] if index else None
            self.commit_chain(self.stage_chain(chain, parent, diff_id, allow_devices), chain)
        return chains


def _check_remade(diff_id: str, found: str) -> None:
    if found != diff_id:
        raise DigestMismatch(
            f"layer {diff_id}: its tar cannot be made again from the store's copy "
            f"(the content gives {found}); the layer was changed on disk")


class _MadeTar(io.RawIOBase):
    """A layer tar written by a thread into a pipe and read here, hashed as it passes;
    the end of the stream checks the digest (and re-raises the writer's failure)."""

    def __init__(self, maker: Callable[[BinaryIO], None], diff_id: str) -> None:
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._pipe = os.fdopen(read_fd, "rb", buffering=0)
        self._diff_id = diff_id
        self._hash = hashlib.sha256()
        self._failure: BaseException | None = None
        self._writer = threading.Thread(target=self._write, args=(maker, write_fd),
                                        name="layer-tar", daemon=True)
        self._writer.start()

    def _write(self, maker: Callable[[BinaryIO], None], write_fd: int) -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=_PIPE_BYTES) as out:
                maker(out)
        except BrokenPipeError:
            pass  # the reader stopped early: nothing to report
        except BaseException as error:  # handed to the reader at the end
            self._failure = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._pipe.readinto(buffer) or 0
        if count:
            self._hash.update(memoryview(buffer)[:count])
            return count
        self._writer.join()
        if self._failure is not None:
            raise self._failure
        _check_remade(self._diff_id, "sha256:" + self._hash.hexdigest())
        return 0

    def close(self) -> None:
        if not self.closed:
            self._pipe.close()
            self._writer.join()
        super().close()


class _HashingFile:
    """A writer that hashes what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.hash.update(data)
        return len(data)
