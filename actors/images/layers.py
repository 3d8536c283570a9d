"""Safe layer extraction into overlayfs form, and layer tars made from overlay upper dirs.

Extraction rules (the layer tar is untrusted input):
- Entry names are cleaned of "./" and empty parts; an absolute name, a ".." part, a
  name over PATH_MAX or a part over NAME_MAX is refused with an error naming the entry.
- Every parent directory is opened one component at a time with O_NOFOLLOW relative to
  the directory above it, so a symlink in a path component is refused instead of
  followed: `a -> /etc` then `a/passwd` can never write to /etc.
- A hard link must name, inside the layer, a non-directory extracted earlier from the
  same tar; it is made with linkat(2) without following symlinks.
- Character/block devices and fifos are refused unless `allow_devices=True`; the one
  exception is the overlay whiteout form, a character device 0/0.
- AUFS whiteouts become overlay ones: `.wh.<name>` -> character device 0/0 `<name>`,
  `.wh..wh..opq` -> xattr `trusted.overlay.opaque=y` on the directory; other `.wh..wh.`
  entries are AUFS bookkeeping and are skipped.
- Symlink targets are stored as they are (absolute targets are normal in images and are
  resolved inside the container's root by the kernel at run time, never here).
- Owner, mode (with setuid/setgid/sticky), times and the xattrs `user.*` and
  `security.capability` are kept; other xattr namespaces (`trusted.*`, `security.selinux`)
  from a tar are dropped because they steer overlayfs or the host's policy.
- On any error the target directory is removed: nothing half-extracted is left.

Layer tars (`write_layer_tar`) are deterministic: entries depth-first in sorted order,
numeric owners without names, whole-second times, PAX format.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import attrs

from actors.images import compression

PATH_BYTES_MAX = 4095
NAME_BYTES_MAX = 255
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
KEPT_XATTR_PREFIXES = ("user.", "security.capability")
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_COPY_CHUNK_BYTES = 1 << 20
# Pieces of data moved through tarfile (its stream mode reads `bufsize` at a time, 10
# KiB by default): 64 KiB means few Python-level steps, yet stays below glibc's mmap
# threshold (128 KiB), so every piece comes from the heap rather than from freshly mapped
# memory that page-faults on first touch (which made megabyte pieces slower still).
TAR_BUFFER_BYTES = 1 << 16
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LayerError(ValueError):
    """A layer tar is malformed or unsafe; the message names the entry."""


@attrs.frozen
class ExtractResult:
    size_bytes: int
    entry_count: int
    # Only directories and regular files (hard links included): fsync can sync it all.
    plain_only: bool = True


def clean_entry_name(name: str) -> str:
    """The entry's path relative to the layer root ("" for the root itself), or LayerError."""
    if "\x00" in name:
        raise LayerError(f"layer entry {name!r}: NUL byte in name")
    if name.startswith("/"):
        raise LayerError(f"layer entry {name!r}: absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {name!r}: '..' in path")
    cleaned = "/".join(parts)
    if len(os.fsencode(cleaned)) > PATH_BYTES_MAX:
        raise LayerError(f"layer entry {name[:80]!r}...: path longer than {PATH_BYTES_MAX} bytes")
    for part in parts:
        if len(os.fsencode(part)) > NAME_BYTES_MAX:
            raise LayerError(
                f"layer entry {name[:80]!r}...: a name longer than {NAME_BYTES_MAX} bytes"
            )
    return cleaned


def remove_tree(path: Path) -> None:
    """Remove `path` whatever its contents' modes (also when not root); absent is fine."""
    try:
        shutil.rmtree(path)
        return
    except FileNotFoundError:
        return
    except PermissionError:
        pass
    for directory, _, _ in os.walk(path):
        try:
            os.chmod(directory, 0o700)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def _is_whiteout_device(member: tarfile.TarInfo) -> bool:
    return member.ischr() and member.devmajor == 0 and member.devminor == 0


def _member_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    kept = {}
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PAX_PREFIX):
            continue
        name = key[len(_XATTR_PAX_PREFIX) :]
        if name.startswith(KEPT_XATTR_PREFIXES) and not name.startswith("user.overlay."):
            kept[name] = value.encode("utf-8", "surrogateescape")
    return kept


class _Extractor:
    """State of one extraction: directory fds opened without following symlinks."""

    def __init__(self, root: Path, allow_devices: bool) -> None:
        self.allow_devices = allow_devices
        self.can_chown = os.geteuid() == 0
        self.directories: dict[str, int] = {"": os.open(root, _DIRECTORY_FLAGS)}
        self.extracted: set[str] = set()
        self.directory_times: dict[str, tuple[int, int]] = {}
        self.size_bytes = 0
        self.entry_count = 0
        self.plain_only = True

    def close(self) -> None:
        for fd in self.directories.values():
            os.close(fd)
        self.directories.clear()

    def directory_fd(self, path: str, entry: str, create: bool = True) -> int:
        """fd of directory `path`, made (0755) when absent and `create`; never via a symlink."""
        fd = self.directories.get(path)
        if fd is not None:
            return fd
        parent, _, base = path.rpartition("/")
        parent_fd = self.directory_fd(parent, entry, create)
        try:
            fd = os.open(base, _DIRECTORY_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise LayerError(f"layer entry {entry!r}: {path!r} does not exist") from None
            os.mkdir(base, 0o755, dir_fd=parent_fd)
            fd = os.open(base, _DIRECTORY_FLAGS, dir_fd=parent_fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise LayerError(
                    f"layer entry {entry!r}: path component {path!r} is a symlink or not a "
                    "directory; refusing to write through it"
                ) from None
            raise
        self.directories[path] = fd
        return fd

    def _forget_directories(self, path: str) -> None:
        for key in [k for k in self.directories if k == path or k.startswith(path + "/")]:
            os.close(self.directories.pop(key))

    def _clear_slot(self, parent_fd: int, base: str, path: str, keep_directory: bool) -> bool:
        """Remove what is at `path` unless it is a directory we keep; True if one is kept."""
        try:
            existing = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(existing.st_mode):
            if keep_directory:
                return True
            self._forget_directories(path)
            shutil.rmtree(base, dir_fd=parent_fd)
        else:
            os.unlink(base, dir_fd=parent_fd)
        self.extracted.discard(path)
        return False

    def _set_owner_mode(self, fd: int, member: tarfile.TarInfo) -> None:
        if self.can_chown:
            os.fchown(fd, member.uid, member.gid)
        # After chown: chown clears setuid/setgid.
        os.fchmod(fd, member.mode & 0o7777)
        for name, value in _member_xattrs(member).items():
            try:
                os.setxattr(fd, name, value)
            except OSError as error:
                if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                    raise

    @staticmethod
    def _times_ns(member: tarfile.TarInfo) -> tuple[int, int]:
        mtime_ns = int(member.mtime * 1_000_000_000)
        atime = member.pax_headers.get("atime")
        atime_ns = int(float(atime) * 1_000_000_000) if atime else mtime_ns
        return atime_ns, mtime_ns

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = clean_entry_name(member.name)
        self.entry_count += 1
        if not path:
            if member.isdir():
                self._set_owner_mode(self.directories[""], member)
                self.directory_times[""] = self._times_ns(member)
            return
        parent, _, base = path.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(path, parent, base)
            return
        parent_fd = self.directory_fd(parent, member.name)
        if member.isdir():
            self._directory(member, path, parent_fd, base)
        elif member.isreg():
            self._regular(tar, member, path, parent_fd, base)
        elif member.issym():
            self._symlink(member, path, parent_fd, base)
        elif member.islnk():
            self._hard_link(member, path, parent_fd, base)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._device(member, path, parent_fd, base)
        else:
            raise LayerError(f"layer entry {member.name!r}: unsupported entry type {member.type!r}")

    def _whiteout(self, path: str, parent: str, base: str) -> None:
        parent_fd = self.directory_fd(parent, path)
        if base == WHITEOUT_OPAQUE:
            os.setxattr(parent_fd, "trusted.overlay.opaque", b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise LayerError(f"layer entry {path!r}: whiteout of an invalid name")
        hidden_path = f"{parent}/{hidden}" if parent else hidden
        self.plain_only = False
        self._clear_slot(parent_fd, hidden, hidden_path, keep_directory=False)
        os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent_fd)

    def _directory(self, member: tarfile.TarInfo, path: str, parent_fd: int, base: str) -> None:
        if not self._clear_slot(parent_fd, base, path, keep_directory=True):
            os.mkdir(base, 0o700, dir_fd=parent_fd)
        fd = self.directory_fd(path, member.name)
        self._set_owner_mode(fd, member)
        self.directory_times[path] = self._times_ns(member)

    def _regular(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, parent_fd: int, base: str
    ) -> None:
        self._clear_slot(parent_fd, base, path, keep_directory=False)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
        try:
            source = tar.extractfile(member)
            if source is not None:
                written = started = 0
                while chunk := source.read(TAR_BUFFER_BYTES):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                    written += len(chunk)
                    if written - started >= WRITEBACK_BYTES:
                        start_writeback(fd, started, written - started)
                        started = written
            self._set_owner_mode(fd, member)
            os.utime(fd, ns=self._times_ns(member))
        finally:
            os.close(fd)
        self.size_bytes += member.size
        self.extracted.add(path)

    def _symlink(self, member: tarfile.TarInfo, path: str, parent_fd: int, base: str) -> None:
        target = member.linkname
        if not target or "\x00" in target or len(os.fsencode(target)) > PATH_BYTES_MAX:
            raise LayerError(f"layer entry {member.name!r}: invalid symlink target")
        self._clear_slot(parent_fd, base, path, keep_directory=False)
        self.plain_only = False
        os.symlink(target, base, dir_fd=parent_fd)
        if self.can_chown:
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
        os.utime(base, ns=self._times_ns(member), dir_fd=parent_fd, follow_symlinks=False)
        self.size_bytes += len(os.fsencode(target))
        self.extracted.add(path)

    def _hard_link(self, member: tarfile.TarInfo, path: str, parent_fd: int, base: str) -> None:
        if member.linkname.startswith("/"):
            raise LayerError(f"layer entry {member.name!r}: hard link to absolute path")
        try:
            target = clean_entry_name(member.linkname)
        except LayerError as error:
            raise LayerError(f"layer entry {member.name!r}: bad hard link target: {error}") from None
        if target not in self.extracted:
            raise LayerError(
                f"layer entry {member.name!r}: hard link target {member.linkname!r} is not a "
                "file extracted earlier in this layer"
            )
        if target == path:
            return
        target_parent, _, target_base = target.rpartition("/")
        target_fd = self.directory_fd(target_parent, member.name, create=False)
        self._clear_slot(parent_fd, base, path, keep_directory=False)
        os.link(target_base, base, src_dir_fd=target_fd, dst_dir_fd=parent_fd,
                follow_symlinks=False)
        self.extracted.add(path)

    def _device(self, member: tarfile.TarInfo, path: str, parent_fd: int, base: str) -> None:
        if not self.allow_devices and not _is_whiteout_device(member):
            kind = "fifo" if member.isfifo() else (
                "character device" if member.ischr() else "block device"
            )
            raise LayerError(
                f"layer entry {member.name!r}: {kind} {member.devmajor}:{member.devminor} "
                "not allowed in a layer"
            )
        self._clear_slot(parent_fd, base, path, keep_directory=False)
        self.plain_only = False
        kind_bits = stat.S_IFIFO if member.isfifo() else (
            stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        )
        os.mknod(base, kind_bits | 0o600, os.makedev(member.devmajor, member.devminor),
                 dir_fd=parent_fd)
        if self.can_chown:
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
        # The node was just made by us, so following the name cannot leave the layer.
        os.chmod(base, member.mode & 0o7777, dir_fd=parent_fd)
        os.utime(base, ns=self._times_ns(member), dir_fd=parent_fd, follow_symlinks=False)
        self.extracted.add(path)

    def finish(self) -> None:
        # Deepest first: setting a child's times touches nothing above, but creating a
        # child changes its parent's mtime, so directories are stamped last.
        for path in sorted(self.directory_times, key=lambda p: (-p.count("/"), p), reverse=False):
            fd = self.directories.get(path)
            if fd is None:
                continue
            os.utime(fd, ns=self.directory_times[path])


def extract_layer(
    stream: BinaryIO, target: Path, *, allow_devices: bool = False
) -> ExtractResult:
    """Extract a layer tar (compressed or not) into `target`, which must not exist.

    `target` is created; on any error it is removed again and the error re-raised
    (LayerError for unsafe/malformed content).
    """
    target = Path(target)
    os.mkdir(target, 0o755)
    extractor: _Extractor | None = None
    try:
        extractor = _Extractor(target, allow_devices)
        _, raw = compression.decompressed(stream)
        # The wrapper turns a decompressor's failure into CompressionError.
        checked = io.BufferedReader(compression.HashingReader(raw, hashing=False), compression.CHUNK_BYTES)
        try:
            with tarfile.open(fileobj=checked, mode="r|", bufsize=TAR_BUFFER_BYTES) as tar:
                for member in tar:
                    extractor.apply(tar, member)
        except (tarfile.TarError, compression.CompressionError) as error:
            raise LayerError(f"malformed layer tar: {error}") from error
        except EOFError as error:
            raise LayerError(f"truncated layer tar: {error}") from error
        extractor.finish()
        return ExtractResult(extractor.size_bytes, extractor.entry_count, extractor.plain_only)
    except BaseException:
        if extractor is not None:
            extractor.close()
            extractor = None
        remove_tree(target)
        raise
    finally:
        if extractor is not None:
            extractor.close()


def check_layer_tar(stream: BinaryIO) -> int:
    """Walk a layer tar's headers without writing anything; LayerError on a bad entry name.

    Returns the number of entries. Catches what can be judged without a filesystem
    (names, entry types, hard-link targets); extraction re-checks everything.
    """
    seen: set[str] = set()
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFFER_BYTES) as tar:
            for member in tar:
                path = clean_entry_name(member.name)
                count += 1
                if member.islnk():
                    if member.linkname.startswith("/"):
                        raise LayerError(f"layer entry {member.name!r}: hard link to absolute path")
                    if clean_entry_name(member.linkname) not in seen:
                        raise LayerError(
                            f"layer entry {member.name!r}: hard link target "
                            f"{member.linkname!r} is not a file earlier in this layer"
                        )
                if not member.isdir():
                    seen.add(path)
    except tarfile.TarError as error:
        raise LayerError(f"malformed layer tar: {error}") from error
    except EOFError as error:
        raise LayerError(f"truncated layer tar: {error}") from error
    return count


class _HashingWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.hash = hashlib.sha256()
        self.count_bytes = 0

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        self.hash.update(data)
        self.count_bytes += len(data)
        return len(data)

    def tell(self) -> int:
        return self.count_bytes


def _walk_sorted(root: Path, relative: str = "") -> Iterable[tuple[str, os.stat_result]]:
    directory = root / relative if relative else root
    names = sorted(os.listdir(directory), key=os.fsencode)
    for name in names:
        path = f"{relative}/{name}" if relative else name
        info = os.lstat(root / path)
        yield path, info
        if stat.S_ISDIR(info.st_mode):
            yield from _walk_sorted(root, path)


def _read_xattr(path: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _kept_xattrs(path: Path) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    kept = {}
    for name in sorted(names):
        if name.startswith(KEPT_XATTR_PREFIXES) and not name.startswith("user.overlay."):
            value = _read_xattr(path, name)
            if value is not None:
                kept[_XATTR_PAX_PREFIX + name] = value.decode("utf-8", "surrogateescape")
    return kept


def write_layer_tar(
    upper: Path, out: BinaryIO, *, exclude: Callable[[str], bool] | None = None
) -> str:
    """Write the overlay upper dir `upper` to `out` as a Docker layer tar; the diff id.

    Overlay whiteouts (char 0/0) become `.wh.<name>`, opaque directories get a
    `.wh..wh..opq` entry, files with several links become one file plus hard links.
    `exclude(relative_path)` skips an entry (and everything under a skipped directory).
    """
    upper = Path(upper)
    writer = _HashingWriter(out)
    first_path_of_inode: dict[tuple[int, int], str] = {}
    skipped_prefixes: list[str] = []
    # Mode "w" writes straight to `writer` (the stream mode's buffer slices every piece:
    # slower, same bytes); file data goes in 1 MiB reads.
    with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      copybufsize=TAR_BUFFER_BYTES) as tar:
        for path, info in _walk_sorted(upper):
            if any(path.startswith(prefix) for prefix in skipped_prefixes):
                continue
            if exclude is not None and exclude(path):
                if stat.S_ISDIR(info.st_mode):
                    skipped_prefixes.append(path + "/")
                continue
            full = upper / path
            member = tarfile.TarInfo(path)
            member.uid, member.gid = info.st_uid, info.st_gid
            member.uname = member.gname = ""
            member.mode = info.st_mode & 0o7777
            member.mtime = int(info.st_mtime)
            mode = info.st_mode
            if stat.S_ISCHR(mode) and info.st_rdev == 0:
                parent, _, base = path.rpartition("/")
                member.name = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
                member.type = tarfile.REGTYPE
                member.mode = 0o600
                tar.addfile(member)
                continue
            member.pax_headers = _kept_xattrs(full)
            if stat.S_ISDIR(mode):
                member.type = tarfile.DIRTYPE
                tar.addfile(member)
                if any(_read_xattr(full, name) == b"y" for name in OPAQUE_XATTRS):
                    opaque = tarfile.TarInfo(f"{path}/{WHITEOUT_OPAQUE}")
                    opaque.uid, opaque.gid = member.uid, member.gid
                    opaque.uname = opaque.gname = ""
                    opaque.mode = member.mode & 0o777
                    opaque.mtime = member.mtime
                    tar.addfile(opaque)
            elif stat.S_ISREG(mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in first_path_of_inode:
                    member.type = tarfile.LNKTYPE
                    member.linkname = first_path_of_inode[key]
                    tar.addfile(member)
                    continue
                if info.st_nlink > 1:
                    first_path_of_inode[key] = path
                member.size = info.st_size
                with open(full, "rb") as handle:
                    tar.addfile(member, handle)
            elif stat.S_ISLNK(mode):
                member.type = tarfile.SYMTYPE
                member.linkname = os.readlink(full)
                tar.addfile(member)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                member.type = (
                    tarfile.CHRTYPE if stat.S_ISCHR(mode)
                    else tarfile.BLKTYPE if stat.S_ISBLK(mode) else tarfile.FIFOTYPE
                )
                member.devmajor, member.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
                tar.addfile(member)
            # Sockets are not content: skipped, as Docker does.
    return "sha256:" + writer.hash.hexdigest()


def directory_size_bytes(root: Path) -> int:
    """Apparent size of a tree: regular files (each inode once) plus symlink lengths."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for path, info in _walk_sorted(Path(root)):
        if stat.S_ISREG(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key not in seen:
                seen.add(key)
                total += info.st_size
        elif stat.S_ISLNK(info.st_mode):
            total += info.st_size
        del path
    return total


# ---- layer trees: copying, normalizing, hashing and syncing unpacked layers
#
# A layer made from a directory (an overlay upper dir of `commit` or a build step) does not
# go through a tar any more: the tree is copied (or, when handed over, moved) into the
# store, normalized to exactly what extracting its layer tar would give, and hashed by
# streaming `write_layer_tar` into sha256 without writing the tar. The tar can be made
# again from the tree at any time, byte for byte, because `write_layer_tar` reads only
# what the normalized tree keeps: names, types, owners, modes, whole-second mtimes, kept
# xattrs, opaque markers, link targets, in-tree hard links and file bytes.

_SYNC_FSYNC_INODES_MAX = 100
_SYNC_THREADS = 16


@attrs.define
class TreeReport:
    """What a copy or normalization found: the layer's size as extraction counts it, and
    what extraction would refuse (kept so the refusal happens where it did before)."""

    size_bytes: int = 0
    entry_count: int = 0
    device: str | None = None  # the first non-whiteout device or fifo, as "path kind M:m"
    refusal: str | None = None  # a name extraction refuses outright
    plain_only: bool = True  # only directories and regular files: fsync can make it durable


class _NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def layer_tar_digest(root: Path) -> str:
    """The diff id of the tree's layer tar, computed without writing the tar anywhere."""
    return write_layer_tar(root, _NullSink())  # type: ignore[arg-type]


def _check_path(report: TreeReport, path: str) -> None:
    if report.refusal is None and len(os.fsencode(path)) > PATH_BYTES_MAX:
        report.refusal = f"layer entry {path[:80]!r}...: path longer than {PATH_BYTES_MAX} bytes"


def _note_special(report: TreeReport, path: str, info: os.stat_result) -> None:
    mode = info.st_mode
    report.plain_only = False
    if stat.S_ISCHR(mode) and info.st_rdev == 0:
        return  # an overlay whiteout
    if report.device is None:
        kind = ("fifo" if stat.S_ISFIFO(mode)
                else "character device" if stat.S_ISCHR(mode) else "block device")
        report.device = (f"layer entry {path!r}: {kind} {os.major(info.st_rdev)}:"
                         f"{os.minor(info.st_rdev)} not allowed in a layer")


def _wanted_xattrs(path: Path) -> dict[str, bytes]:
    """The xattrs a layer tar carries (plus the overlay opaque marker, as `trusted.`)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    wanted: dict[str, bytes] = {}
    for name in names:
        if name in OPAQUE_XATTRS:
            if _read_xattr(path, name) == b"y":
                wanted["trusted.overlay.opaque"] = b"y"
        elif name.startswith(KEPT_XATTR_PREFIXES) and not name.startswith("user.overlay."):
            value = _read_xattr(path, name)
            if value is not None:
                wanted[name] = value
    return wanted


def _sync_xattrs(path: Path, wanted: dict[str, bytes]) -> None:
    """Make `path`'s xattrs exactly `wanted` (overlay bookkeeping like origin/impure goes)."""
    try:
        present = os.listxattr(path, follow_symlinks=False)
    except OSError:
        present = []
    for name in present:
        if name not in wanted:
            os.removexattr(path, name, follow_symlinks=False)
    for name, value in wanted.items():
        os.setxattr(path, name, value, follow_symlinks=False)


def _whole_second_times(path: Path, info: os.stat_result) -> None:
    seconds_ns = int(info.st_mtime) * 1_000_000_000
    os.utime(path, ns=(seconds_ns, seconds_ns), follow_symlinks=False)


def _copy_file_data(source: Path, target: Path, size: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(source, "rb") as reader:
        out = os.open(target, flags, 0o600)
        try:
            remaining = size
            while remaining > 0:
                try:
                    copied = os.copy_file_range(reader.fileno(), out, remaining)
                except OSError as error:
                    if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                                           errno.EOPNOTSUPP):
                        raise
                    copied = os.sendfile(out, reader.fileno(), None, remaining)
                if copied == 0:
                    break  # the file shrank under us; the hash of the copy tells the truth
                remaining -= copied
        finally:
            os.close(out)


def copy_layer_tree(source: Path, target: Path) -> TreeReport:
    """Copy an overlay-form tree into `target` (which must not exist), normalized.

    Owners, modes, kept xattrs, opaque markers, whiteouts, symlinks and in-tree hard
    links are copied; times become whole seconds (as extraction leaves them); sockets and
    overlay bookkeeping xattrs are left out. File data goes through copy_file_range(2).
    """
    source, target = Path(source), Path(target)
    os.mkdir(target, 0o755)
    report = TreeReport()
    first_path_of_inode: dict[tuple[int, int], str] = {}
    directories: list[tuple[Path, os.stat_result]] = []
    try:
        for path, info in _walk_sorted(source):
            _check_path(report, path)
            origin, copy = source / path, target / path
            mode = info.st_mode
            if stat.S_ISSOCK(mode):
                continue
            report.entry_count += 1
            if stat.S_ISDIR(mode):
                os.mkdir(copy, 0o700)
                directories.append((copy, info))
            elif stat.S_ISREG(mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in first_path_of_inode:
                    os.link(target / first_path_of_inode[key], copy, follow_symlinks=False)
                    continue
                first_path_of_inode[key] = path
                _copy_file_data(origin, copy, info.st_size)
                report.size_bytes += info.st_size
            elif stat.S_ISLNK(mode):
                link = os.readlink(origin)
                os.symlink(link, copy)
                report.size_bytes += len(os.fsencode(link))
                report.plain_only = False
            else:
                os.mknod(copy, (mode & ~0o7777) | 0o600, info.st_rdev)
                _note_special(report, path, info)
            os.lchown(copy, info.st_uid, info.st_gid)
            if not stat.S_ISLNK(mode):
                os.chmod(copy, mode & 0o7777)
            _sync_xattrs(copy, _wanted_xattrs(origin))
            if not stat.S_ISDIR(mode):
                _whole_second_times(copy, info)
        # Deepest first, after everything inside them was made.
        for copy, info in reversed(directories):
            _whole_second_times(copy, info)
    except BaseException:
        remove_tree(target)
        raise
    return report


def normalize_layer_tree(root: Path) -> TreeReport:
    """Bring a tree handed over to the store (an upper dir, moved) into the form
    `copy_layer_tree` gives, in place."""
    root = Path(root)
    report = TreeReport()
    inodes: set[tuple[int, int]] = set()
    directories: list[tuple[Path, os.stat_result]] = []
    for path, info in list(_walk_sorted(root)):
        _check_path(report, path)
        full = root / path
        mode = info.st_mode
        if stat.S_ISSOCK(mode):
            os.unlink(full)
            continue
        report.entry_count += 1
        _sync_xattrs(full, _wanted_xattrs(full))
        if stat.S_ISDIR(mode):
            directories.append((full, info))
            continue
        if stat.S_ISREG(mode):
            key = (info.st_dev, info.st_ino)
            if key not in inodes:
                inodes.add(key)
                report.size_bytes += info.st_size
        elif stat.S_ISLNK(mode):
            report.size_bytes += info.st_size
            report.plain_only = False
        else:
            _note_special(report, path, info)
        _whole_second_times(full, info)
    # Unlinking a socket changed its directory's mtime: stamp directories from the times
    # read before anything was touched, deepest first.
    for full, info in reversed(directories):
        _whole_second_times(full, info)
    os.chmod(root, 0o755)
    return report


# Write-behind for large files being extracted: each time this many more bytes are
# written, the kernel is asked to start writing them out (sync_file_range with
# SYNC_FILE_RANGE_WRITE: no wait and no durability promise), so the fsync or syncfs
# that makes the tree durable before it is renamed into place finds little left to do.
WRITEBACK_BYTES = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2
_libc: ctypes.CDLL | None = None


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing `length` bytes of `fd` from `offset` to disk.
    Only a hint: durability still comes from fsync/syncfs; failures are ignored."""
    global _libc
    try:
        if _libc is None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                             ctypes.c_uint)
            _libc = libc
        _libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
    except (OSError, AttributeError):
        pass


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


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_staged_layer(staged: Path, report: TreeReport) -> None:
    """Make a staged chain dir (`diff/` described by `report`, and `layer.json`) durable."""
    sync_tree(staged / "diff", report, also=(staged / "layer.json", staged))


def sync_tree(root: Path, report: TreeReport, also: Iterable[Path] = ()) -> None:
    """Make a tree written to tmp/ (and the files and directories `also`) durable before it
    is renamed into place.

    A tree of directories and regular files with few inodes (a COPY of some files, a
    layer of hard links) is fsynced inode by inode from several threads, so the journal
    commits them together and nothing else on the filesystem is flushed; anything
    larger, or with entries fsync cannot reach (symlinks, whiteouts, devices), is covered
    by one syncfs(2) of the filesystem.
    """
    root = Path(root)
    if not report.plain_only:
        syncfs(root)
        return
    paths = [root]
    seen: set[tuple[int, int]] = set()
    for path, info in _walk_sorted(root):
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            syncfs(root)
            return
        paths.append(root / path)
        if len(paths) > _SYNC_FSYNC_INODES_MAX:
            syncfs(root)
            return
    paths.extend(also)
    with concurrent.futures.ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="fsync") as pool:
        list(pool.map(_fsync_path, paths))
