"""Tar archives for the builder: compression detection, tar detection, safe extraction.

Compression is recognised by content, never by name: gzip (1f 8b 08), bzip2 ("BZh"),
xz (fd 37 7a 58 5a 00); zstd (28 b5 2f fd) is recognised and refused with a clear error
because Python 3.11 has no zstd decoder. A tar is recognised by a valid header checksum
in its first 512-byte block, as Go's archive/tar does.

Extraction never writes outside its target directory:
- entries with an absolute name or a `..` component are refused;
- nothing is written through a symlink: every parent directory of an entry must be a
  real directory inside the target, and an existing symlink at an entry's path is
  replaced, not followed;
- hard links must point at a regular file already extracted inside the target;
- device nodes and FIFOs are skipped (a build context or an ADDed archive has no use
  for them, and creating them needs privileges);
- the total size and the number of entries are bounded.
Directory modes are applied last, so a read-only directory does not block its contents.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import queue
import stat
import tarfile
import threading
import zlib
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, Protocol

import attrs

from . import digests
from .errors import ContextError

GZIP_MAGIC = b"\x1f\x8b\x08"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TAR_BLOCK_BYTES = 512
# tarfile's stream mode reads in pieces of `bufsize` (10 KiB by default). 64 KiB pieces
# mean fewer Python-level steps and stay below glibc's mmap threshold (128 KiB), so each
# piece comes from the heap instead of freshly mapped (page-faulting) memory: together
# with PeekableReader's kept buffer, a 50 MB context extracts about twice as fast.
TAR_BUFFER_BYTES = 1 << 16
# What PeekableReader reads from its source at once: more than a request body's batch.
_READ_BUFFER_BYTES = 2 << 20
extract_bytes_max = 64 * 1024 * 1024 * 1024
extract_entries_max = 4 * 1024 * 1024


def detect_compression(head: bytes) -> str:
    """"gzip", "bzip2", "xz", "zstd" or "none", from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class PeekableReader(io.RawIOBase):
    """A read-only stream whose first bytes can be looked at before it is consumed.

    It reads its source in large pieces into one buffer it keeps, and hands them out from
    there: fresh megabyte-sized buffers cost page faults on every read (the allocator maps
    and unmaps them), and a request body's reader hands out a whole batch most cheaply.
    `plain` is set by `decompressed` on the stream it returns (already decompressed).
    """

    def __init__(self, stream: _Readable, *, plain: bool = False) -> None:
        self._stream = stream
        self._buffer = bytearray(_READ_BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self._start = 0  # what is not handed out yet is self._buffer[_start:_end]
        self._end = 0
        self._readinto = getattr(stream, "readinto", None)
        self.plain = plain

    def _fill(self) -> int:
        """Read more after what is buffered (moving that to the front); the count read."""
        if self._start:
            pending = self._end - self._start
            self._view[:pending] = self._view[self._start:self._end]
            self._start, self._end = 0, pending
        room = self._view[self._end:]
        if not room:
            return 0
        if self._readinto is not None:
            count = self._readinto(room) or 0
        else:
            data = self._stream.read(len(room))
            count = len(data)
            room[:count] = data
        self._end += count
        return count

    def peek(self, size: int) -> bytes:
        size = min(size, len(self._buffer))
        while self._end - self._start < size:
            if not self._fill():
                break
        return bytes(self._view[self._start:min(self._end, self._start + size)])

    def readable(self) -> bool:
        return True

    def read_view(self, size: int) -> memoryview:
        """Up to `size` bytes (at least one unless at the end) as a view of the kept
        buffer, without a copy: valid only until the next read from this reader."""
        if self._start == self._end:
            self._start = self._end = 0
            if not self._fill():
                return memoryview(b"")
        count = min(size, self._end - self._start)
        view = self._view[self._start:self._start + count]
        self._start += count
        return view

    def readinto(self, target: Any) -> int:
        if self._start == self._end:
            self._start = self._end = 0
            if not self._fill():
                return 0
        count = min(len(target), self._end - self._start)
        target[:count] = self._view[self._start:self._start + count]
        self._start += count
        return count


class ReadAhead(io.RawIOBase):
    """A stream read ahead by a thread of its own, so that whoever produces the bytes
    (a request body received on the Trio side) keeps going while the reader works on
    what came before (writes and hashes a build context), instead of taking turns.

    `close()` stops the thread and waits for it: after that nothing reads the source any
    more (the caller may read the rest itself). At most `depth` pieces wait unread.
    """

    def __init__(self, stream: _Readable, *, piece_bytes: int = 1 << 20, depth: int = 16) -> None:
        self._stream = stream
        self._piece_bytes = piece_bytes
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._stopping = threading.Event()
        self._pending = memoryview(b"")
        self._finished = False
        self._thread = threading.Thread(target=self._pump, name="context-read-ahead", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        readinto = getattr(self._stream, "readinto", None)
        try:
            while not self._stopping.is_set():
                if readinto is not None:
                    piece = bytearray(self._piece_bytes)
                    count = readinto(piece) or 0
                    data: Any = memoryview(piece)[:count]
                else:
                    data = self._stream.read(self._piece_bytes)
                    count = len(data)
                self._queue.put(data if count else b"")
                if not count:
                    return
        except BaseException as error:  # handed to the reader, raised there
            self._queue.put(error)

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if not self._pending:
            if self._finished:
                return 0
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._finished = True
                raise item
            if not item:
                self._finished = True
                return 0
            self._pending = memoryview(item)
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            self._stopping.set()
            while self._thread.is_alive():
                try:  # make room for a piece the thread is putting, then let it stop
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._thread.join()
        super().close()


def decompressed(stream: _Readable) -> PeekableReader:
    """The stream, decompressed according to its first bytes."""
    if isinstance(stream, PeekableReader) and stream.plain:
        return stream
    reader = PeekableReader(stream)
    kind = detect_compression(reader.peek(8))
    if kind == "gzip":
        return PeekableReader(gzip.GzipFile(fileobj=io.BufferedReader(reader)), plain=True)
    if kind == "bzip2":
        return PeekableReader(bz2.BZ2File(io.BufferedReader(reader)), plain=True)
    if kind == "xz":
        return PeekableReader(lzma.LZMAFile(io.BufferedReader(reader)), plain=True)
    if kind == "zstd":
        raise ContextError("zstd-compressed archives are not supported by flotta's builder")
    reader.plain = True
    return reader


def looks_like_tar(block: bytes) -> bool:
    """Whether a 512-byte block is a tar header with a valid checksum."""
    if len(block) < TAR_BLOCK_BYTES:
        return False
    block = block[:TAR_BLOCK_BYTES]
    if block == bytes(TAR_BLOCK_BYTES):
        return False
    field = block[148:156].replace(b"\x00", b" ").strip()
    try:
        recorded = int(field.decode("ascii"), 8) if field else -1
    except ValueError:
        return False
    summed = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(summed)
    signed = sum(byte - 256 if byte > 127 else byte for byte in summed)
    return recorded in (unsigned, signed)


def is_archive_file(path: str) -> bool:
    """ADD's test: the file, once decompressed, starts with a valid tar header."""
    try:
        with open(path, "rb") as handle:
            try:
                return looks_like_tar(decompressed(handle).peek(TAR_BLOCK_BYTES))
            except (OSError, EOFError, lzma.LZMAError, ContextError):
                return False
    except OSError:
        return False


@attrs.frozen
class ExtractedEntry:
    path: str  # relative to the target, '/'-separated
    kind: str  # "file", "dir", "symlink", "hardlink"
    mode: int
    uid: int
    gid: int
    size: int
    link_target: str = ""


@attrs.frozen
class ExtractionResult:
    entries: tuple[ExtractedEntry, ...]
    skipped: tuple[str, ...]
    total_bytes: int


def _clean_member_name(name: str) -> str:
    if name.startswith("/"):
        raise ContextError(f"refusing tar entry with an absolute path: {name}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ContextError(f"refusing tar entry that leaves the target directory: {name}")
    return "/".join(parts)


def _ensure_parents(root: str, relative: str) -> str:
    """Create the parent directories of relative inside root; refuse any symlink on the way."""
    parts = relative.split("/")
    current = root
    for part in parts[:-1]:
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise ContextError(
                f"refusing to write {relative}: {os.path.relpath(current, root)} is not a directory"
            )
    return os.path.join(root, *parts)


def _remove_existing(path: str, keep_directory: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if keep_directory:
            return
        raise ContextError(f"refusing to replace directory {path} with a non-directory")
    os.unlink(path)


def _write_file(path: str, source: IO[bytes], mode: int, hashing: bool) -> str:
    """Write the entry's bytes; their sha256 (hex) when `hashing`, else ""."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, 0o600)
    digest = hashlib.sha256() if hashing else None
    with os.fdopen(descriptor, "wb") as handle:
        while chunk := source.read(TAR_BUFFER_BYTES):
            handle.write(chunk)
            if digest is not None:
                digest.update(chunk)
    os.chmod(path, mode)
    return digest.hexdigest() if digest is not None else ""


def _write_all(descriptor: int, data: Any) -> None:
    with memoryview(data) as view:
        while view:
            written = os.write(descriptor, view)
            view = view[written:]


def _direct_stream(archive: tarfile.TarFile) -> tuple[Any, PeekableReader] | None:
    """The archive's stream-mode reader (tarfile's `_Stream`) and the PeekableReader
    under it, when a member's data can be taken straight from that reader."""
    stream = archive.fileobj
    if type(stream).__name__ != "_Stream" or getattr(stream, "comptype", None) != "tar":
        return None
    reader = getattr(stream, "fileobj", None)
    if not isinstance(reader, PeekableReader) or not isinstance(getattr(stream, "buf", None), bytes):
        return None
    if not isinstance(getattr(stream, "pos", None), int):
        return None
    return stream, reader


def _write_member_direct(
    archive_stream: Any, reader: PeekableReader, path: str, size: int, mode: int, hashing: bool
) -> str:
    """_write_file for a stream-mode member, its bytes taken from the reader's buffer
    in large views: no per-64-KiB trips through tarfile, no copies; the hashing and the
    writes release the GIL for a MiB at a time (the request body is received meanwhile).
    The tarfile stream's position is advanced as if it had read the bytes itself; it skips
    the padding when it reads the next header."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, 0o600)
    digest = hashlib.sha256() if hashing else None
    try:
        remaining = size
        pending = archive_stream.buf
        if pending:
            taken = pending if len(pending) <= remaining else pending[:remaining]
            archive_stream.buf = pending[len(taken):]
            archive_stream.pos += len(taken)
            remaining -= len(taken)
            _write_all(descriptor, taken)
            if digest is not None:
                digest.update(taken)
        while remaining:
            view = reader.read_view(min(remaining, _READ_BUFFER_BYTES))
            if not view:
                raise tarfile.ReadError("unexpected end of data")
            with view:
                archive_stream.pos += len(view)
                remaining -= len(view)
                _write_all(descriptor, view)
                if digest is not None:
                    digest.update(view)
    finally:
        os.close(descriptor)
    os.chmod(path, mode)
    return digest.hexdigest() if digest is not None else ""


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = archive.next()
        except tarfile.TarError as error:
            raise ContextError(f"invalid tar archive: {error}") from None
        if member is None:
            return
        yield member


def extract_tar(
    stream: BinaryIO,
    target: str,
    *,
    preserve_ownership: bool = False,
    bytes_max: int = extract_bytes_max,
    entries_max: int = extract_entries_max,
    remember_digests: bool = False,
) -> ExtractionResult:
    """Extract a (possibly compressed) tar stream into the existing directory target.

    `remember_digests` hashes each regular file as it is written and leaves the digest
    with `digests.remember` (a build context: its COPY checksums then need no re-read).
    """
    extraction = _Extraction(target, preserve_ownership, bytes_max, entries_max,
                             remember_digests)
    try:
        with tarfile.open(fileobj=decompressed(stream), mode="r|", bufsize=TAR_BUFFER_BYTES) as archive:
            for member in _members(archive):
                extraction.add(archive, member)
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as error:
        raise ContextError(f"invalid tar archive: {error}") from None
    except OSError as error:
        # Decoders report corrupt data as an OSError without errno; a real I/O error keeps its own.
        if error.errno is not None:
            raise
        raise ContextError(f"invalid tar archive: {error}") from None
    return extraction.finish()


class _Extraction:
    def __init__(self, target: str, preserve_ownership: bool, bytes_max: int, entries_max: int,
                 remember_digests: bool = False):
        self.target = target
        self.remember_digests = remember_digests
        self.real_target = os.path.realpath(target)
        self.preserve_ownership = preserve_ownership
        self.bytes_max = bytes_max
        self.entries_max = entries_max
        self.entries: list[ExtractedEntry] = []
        self.skipped: list[str] = []
        self.directory_modes: list[tuple[str, int, float]] = []
        self.total = 0

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        target = self.target
        if len(self.entries) >= self.entries_max:
            raise ContextError(f"archive has more than {self.entries_max} entries")
        relative = _clean_member_name(member.name)
        if relative == "":
            return
        path = _ensure_parents(target, relative)
        mode = member.mode & 0o7777
        kind = "file"
        if member.isdir():
            kind = "dir"
            _remove_existing(path, keep_directory=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o755)
            self.directory_modes.append((path, mode, member.mtime))
        elif member.issym():
            kind = "symlink"
            _remove_existing(path, keep_directory=False)
            os.symlink(member.linkname, path)
        elif member.islnk():
            kind = "hardlink"
            link_relative = _clean_member_name(member.linkname)
            source = _ensure_parents(target, link_relative)
            try:
                info = os.lstat(source)
            except FileNotFoundError:
                raise ContextError(
                    f"hard link {relative} points at {member.linkname}, which is not in the archive"
                ) from None
            if not stat.S_ISREG(info.st_mode):
                raise ContextError(f"hard link {relative} must point at a regular file")
            _remove_existing(path, keep_directory=False)
            os.link(source, path, follow_symlinks=False)
        elif member.isreg():
            self.total += member.size
            if self.total > self.bytes_max:
                raise ContextError(f"archive contents exceed {self.bytes_max} bytes")
            _remove_existing(path, keep_directory=False)
            direct = _direct_stream(archive) if not member.sparse else None
            if direct is not None:
                hex_digest = _write_member_direct(*direct, path, member.size, mode, self.remember_digests)
            else:
                extracted = archive.extractfile(member)
                assert extracted is not None
                hex_digest = _write_file(path, extracted, mode, self.remember_digests)
        else:
            self.skipped.append(relative)
            return
        if self.preserve_ownership and os.geteuid() == 0:
            os.lchown(path, member.uid, member.gid)
        if kind != "dir":
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        if kind == "file" and self.remember_digests:
            digests.remember(os.path.join(self.real_target, relative), os.lstat(path), hex_digest)
        self.entries.append(
            ExtractedEntry(
                path=relative, kind=kind, mode=mode, uid=member.uid, gid=member.gid,
                size=member.size if kind == "file" else 0,
                link_target=member.linkname if kind in ("symlink", "hardlink") else "",
            )
        )

    def finish(self) -> ExtractionResult:
        for path, mode, mtime in reversed(self.directory_modes):
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))
        return ExtractionResult(
            entries=tuple(self.entries), skipped=tuple(self.skipped), total_bytes=self.total
        )
