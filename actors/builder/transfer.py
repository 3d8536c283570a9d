"""Carrying out a COPY/ADD into an unpacked root filesystem (the step's new layer).

The semantics are the classic builder's:
- a directory source copies its contents into the destination directory (created if
  missing, taking the source directory's mode);
- a file goes to `<destination>/<name>` when the destination ends in `/` or is an
  existing directory, else to the destination path itself; missing parent directories
  are created (mode 0755, owned like the copy);
- ADD extracts a local tar archive (plain, gzip, bzip2, xz) into the destination
  directory, keeping the archive's own owners (Docker ignores --chown there);
- owners: `owner=(uid, gid)` gives every copied entry that owner (--chown, or 0:0 for
  the build context); `owner=None` keeps the source's (COPY --from without --chown);
- `chmod` sets the mode of every copied file and directory (BuildKit's --chmod);
- file contents, modes and modification times are copied; symlinks are copied as links.

Paths in the root filesystem are resolved the way the container would see them: a
symlink inside the rootfs never leads outside it, and an existing symlink at a path
being written is replaced, not followed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from .archive import extract_tar
from .context import ResolvedSource, SourceEntry
from .errors import ContextError
from .gocompat import go_clean
from .paths import resolve_in_scope
from .users import resolve_chown_in_rootfs

_KERNEL_COPY_BYTES = 1 << 30
_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF)


def copy_file_contents(source: int, target: int) -> int:
    """Copy the rest of `source` to `target` (file descriptors) inside the kernel:
    copy_file_range(2) on one filesystem, sendfile(2) across them (the context and an
    overlay mount); until the end of `source`, as a read loop would. Returns the bytes."""
    total = 0
    use_range = True
    while True:
        if use_range:
            try:
                copied = os.copy_file_range(source, target, _KERNEL_COPY_BYTES)
            except OSError as error:
                if error.errno not in _NO_KERNEL_COPY:
                    raise
                use_range = False
                continue
        else:
            copied = os.sendfile(target, source, None, _KERNEL_COPY_BYTES)
        if copied == 0:
            return total
        total += copied


def _can_chown() -> bool:
    return os.geteuid() == 0


def _set_owner(path: str, owner: tuple[int, int] | None, entry: SourceEntry | None) -> None:
    if not _can_chown():
        return
    if owner is not None:
        os.lchown(path, owner[0], owner[1])
    elif entry is not None:
        os.lchown(path, entry.uid, entry.gid)


def _host_parent(rootfs: str, path: str) -> str:
    """The host path of path's parent (resolved in scope) joined with its final name."""
    cleaned = go_clean("/" + path).lstrip("/")
    if cleaned == "":
        return rootfs
    parent, _, name = cleaned.rpartition("/")
    return os.path.join(resolve_in_scope(rootfs, parent), name)


def _make_directories(rootfs: str, path: str, owner: tuple[int, int] | None) -> str:
    """mkdir -p inside the rootfs; new directories get mode 0755 and the copy's owner.

    Existing symlinks on the way are followed inside the rootfs; what is missing is
    created at the resolved place, so nothing is ever created outside the rootfs.
    """
    cleaned = go_clean("/" + path).lstrip("/")
    target = resolve_in_scope(rootfs, cleaned)
    relative = os.path.relpath(target, rootfs)
    current = rootfs
    for part in relative.split(os.sep) if relative != "." else []:
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            _set_owner(current, owner, None)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise ContextError(f"cannot copy to {path}: /{os.path.relpath(current, rootfs)} is not a directory")
    return target


def _clear(host: str, keep_directory: bool) -> None:
    try:
        info = os.lstat(host)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if keep_directory:
            return
        shutil.rmtree(host)
    else:
        os.unlink(host)


def _write_entry(
    host: str,
    entry: SourceEntry,
    data: bytes | None,
    owner: tuple[int, int] | None,
    chmod: int | None,
) -> None:
    source_info = os.lstat(entry.host_path) if entry.host_path else None
    if entry.kind == "dir":
        _clear(host, keep_directory=True)
        if not os.path.isdir(host):
            os.mkdir(host, 0o700)
        os.chmod(host, chmod if chmod is not None else entry.mode)
    elif entry.kind == "symlink":
        _clear(host, keep_directory=False)
        os.symlink(entry.link_target, host)
    else:
        _clear(host, keep_directory=False)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(host, flags, 0o600)
        with os.fdopen(descriptor, "wb") as target:
            if data is not None:
                target.write(data)
            else:
                with open(entry.host_path, "rb") as source:
                    copy_file_contents(source.fileno(), target.fileno())
        os.chmod(host, chmod if chmod is not None else entry.mode)
    _set_owner(host, owner, entry)
    if source_info is not None:
        times = (source_info.st_atime, source_info.st_mtime)
        os.utime(host, times, follow_symlinks=False)


def copy_into_rootfs(
    rootfs: str,
    sources: list[ResolvedSource],
    destination_path: str,
    *,
    owner: tuple[int, int] | None = (0, 0),
    chmod: int | None = None,
) -> None:
    """Copy resolved sources to destination_path (absolute, as in the image) under rootfs."""
    rootfs = os.path.realpath(rootfs)
    wants_directory = destination_path.endswith("/")
    for source in sources:
        if source.kind == "dir":
            existed = os.path.isdir(resolve_in_scope(rootfs, destination_path.lstrip("/")))
            target = _make_directories(rootfs, destination_path, owner)
            for entry in source.entries:
                if entry.relative_path == ".":
                    continue
                host = _host_parent(rootfs, f"{destination_path}/{entry.relative_path}")
                _write_entry(host, entry, None, owner, chmod)
            root_entry = source.entries[0] if source.entries else None
            if root_entry is not None and root_entry.relative_path == "." and not existed:
                _write_entry(target, root_entry, None, owner, chmod)
            continue
        if source.is_archive:
            assert source.host_path is not None
            target = _make_directories(rootfs, destination_path, owner)
            with open(source.host_path, "rb") as archive:
                extract_tar(archive, target, preserve_ownership=True)
            continue
        entry = source.entries[0]
        existing = resolve_in_scope(rootfs, destination_path.lstrip("/"))
        if wants_directory or os.path.isdir(existing):
            directory = _make_directories(rootfs, destination_path, owner)
            host = os.path.join(directory, source.name)
        else:
            parent = go_clean("/" + destination_path).rsplit("/", 1)[0]
            _make_directories(rootfs, parent, owner)
            host = _host_parent(rootfs, destination_path)
        if os.path.isdir(host) and not os.path.islink(host):
            raise ContextError(f"cannot overwrite directory {destination_path} with a file")
        _write_entry(host, entry, source.data, owner, chmod)


def copy_owner(chown: str | None, preserve_ownership: bool, rootfs: str) -> tuple[int, int] | None:
    """The owner a COPY/ADD gives its files: --chown resolved in the image, else 0:0, or
    None (keep the source's) for COPY --from without --chown."""
    if chown:
        return resolve_chown_in_rootfs(chown, rootfs)
    if preserve_ownership:
        return None
    return (0, 0)
