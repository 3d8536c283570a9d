"""Sniff and undo the compressions Docker accepts for layers and archives.

gzip, bzip2 and xz come from the standard library. zstd uses the `zstandard` module when
it is installed, else the `zstd` command line tool (Debian's `zstd` package) through a
pipe; with neither, zstd input is refused with a clear error.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import shutil
import subprocess
import threading
import zlib
from typing import BinaryIO

CHUNK_BYTES = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate data
# Input read and output made per step: below glibc's mmap threshold, so from the heap.
_GZIP_PIECE_BYTES = 1 << 16

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_MAGIC_BYTES_MAX = 6


class CompressionError(ValueError):
    """The input claims a compression we cannot read, or is corrupt."""


class _PrefixedReader(io.RawIOBase):
    """`prefix` then the rest of `stream`: lets us sniff a stream that cannot seek."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        return read_into(self._stream, view)


def read_into(stream: BinaryIO, view: memoryview) -> int:
    """Fill (part of) `view` from `stream`: through its readinto when it has one, so no
    new buffer is made for every piece (large fresh buffers page-fault); 0 at the end."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = stream.read(len(view))
    if not data:
        return 0
    view[: len(data)] = data
    return len(data)


def _read_exactly_up_to(stream: BinaryIO, count: int) -> bytes:
    chunks = []
    remaining = count
    while remaining:
        data = stream.read(remaining)
        if not data:
            break
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


def detect(head: bytes) -> str:
    """The compression named by the first bytes: gzip, bzip2, xz, zstd or none."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def sniff(stream: BinaryIO) -> tuple[str, BinaryIO]:
    """(compression, a stream that still yields every byte of `stream`)."""
    try:
        seekable = stream.seekable()
    except (AttributeError, ValueError):
        seekable = False
    if seekable:
        # Files and BytesIO: look, then step back; no extra copy of every byte.
        position = stream.tell()
        head = _read_exactly_up_to(stream, _MAGIC_BYTES_MAX)
        stream.seek(position)
        return detect(head), stream
    head = _read_exactly_up_to(stream, _MAGIC_BYTES_MAX)
    return detect(head), io.BufferedReader(_PrefixedReader(head, stream), CHUNK_BYTES)


class _ZstdPipe(io.RawIOBase):
    """Decompress through `zstd -dc`: a thread feeds its stdin, we read its stdout."""

    def __init__(self, stream: BinaryIO, program: str) -> None:
        self._process = subprocess.Popen(
            [program, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._feed_error: BaseException | None = None
        self._feeder = threading.Thread(target=self._feed, args=(stream,), daemon=True)
        self._feeder.start()

    def _feed(self, stream: BinaryIO) -> None:
        assert self._process.stdin is not None
        try:
            while data := stream.read(CHUNK_BYTES):
                self._process.stdin.write(data)
        except BrokenPipeError:
            pass
        except BaseException as error:  # handed to the reader thread
            self._feed_error = error
        finally:
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        assert self._process.stdout is not None
        count = self._process.stdout.readinto(buffer)  # type: ignore[attr-defined]
        if count == 0:
            self._finish()
        return count

    def _finish(self) -> None:
        self._feeder.join()
        assert self._process.stderr is not None
        message = self._process.stderr.read().decode(errors="replace").strip()
        code = self._process.wait()
        if self._feed_error is not None:
            raise self._feed_error
        if code != 0:
            raise CompressionError(f"corrupt zstd data: {message or f'zstd exited {code}'}")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for pipe in (self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()
        super().close()


class _GzipMembers(io.RawIOBase):
    """gzip through zlib directly: the header, the CRC and the length of each member are
    checked in C, and members follow one another as gzip(1) allows. About twice as fast
    as `gzip.GzipFile`, whose reader copies and checksums in Python-level steps."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._pending = b""  # compressed bytes read but not yet given to the inflater
        self._started = False  # a member has begun (its header may already be consumed)
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._ended:
            if self._inflater.eof:
                self._pending = self._inflater.unused_data + self._pending
                if not self._pending:
                    self._pending = self._stream.read(_GZIP_PIECE_BYTES)
                if not self._pending or self._pending.strip(b"\x00") == b"":
                    self._ended = True  # gzip(1) ignores zero padding after the last member
                    break
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
            if not self._pending:
                self._pending = self._stream.read(_GZIP_PIECE_BYTES)
                if not self._pending:
                    if self._started and not self._inflater.eof:
                        raise EOFError("compressed file ended before the end-of-stream marker")
                    self._ended = True
                    break
            self._started = True
            try:
                data = self._inflater.decompress(self._pending, min(len(view), _GZIP_PIECE_BYTES))
            except zlib.error as error:
                raise OSError(f"invalid gzip data: {error}") from None
            self._pending = self._inflater.unconsumed_tail
            if data:
                view[: len(data)] = data
                return len(data)
        return 0


def _zstd_reader(stream: BinaryIO) -> BinaryIO:
    try:
        import zstandard
    except ImportError:
        program = shutil.which("zstd")
        if program is None:
            raise CompressionError(
                "zstd-compressed data, but neither the zstandard module nor the zstd tool "
                "is installed"
            ) from None
        return io.BufferedReader(_ZstdPipe(stream, program), CHUNK_BYTES)
    return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)


def decompressed(stream: BinaryIO) -> tuple[str, BinaryIO]:
    """(compression found, a stream of the uncompressed bytes)."""
    kind, raw = sniff(stream)
    if kind == "none":
        return kind, raw
    if kind == "gzip":
        return kind, io.BufferedReader(_GzipMembers(raw), CHUNK_BYTES)  # type: ignore[return-value]
    if kind == "bzip2":
        return kind, bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    if kind == "xz":
        return kind, lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    return kind, _zstd_reader(raw)


class HashingReader(io.RawIOBase):
    """Pass bytes through while counting them and computing their sha256 (unless
    `hashing=False`), writing each to `copy_to` when given (a tee, so one read serves
    an extractor, the digest and a file); a decompressor's failure surfaces as
    CompressionError."""

    def __init__(self, stream: BinaryIO, hashing: bool = True,
                 copy_to: BinaryIO | None = None) -> None:
        self._stream = stream
        self.hash = hashlib.sha256()
        self._hashing = hashing
        self._copy_to = copy_to
        self.count_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            count = read_into(self._stream, view)
        except (OSError, EOFError, lzma.LZMAError) as error:
            raise CompressionError(f"corrupt compressed data: {error}") from error
        if not count:
            return 0
        data = view[:count]
        if self._hashing:
            self.hash.update(data)
        if self._copy_to is not None:
            self._copy_to.write(data)
        self.count_bytes += count
        return count

    def drain(self) -> None:
        """Read to the end, so the digest covers trailing padding too."""
        while self.read(CHUNK_BYTES):
            pass

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()
