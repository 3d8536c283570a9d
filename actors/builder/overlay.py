"""Overlay views of images for the steps that touch files without running a container.

COPY, ADD and WORKDIR write into a new overlay upper directory through a short-lived
mount of the parent image's layers (`overlay_view`): the kernel then does what a
container's writes would do — copy-up, whiteouts for replaced or removed entries,
symlinks resolved inside the image — so the upper dir is exactly the step's layer, in
the form the image store commits. `COPY --from` reads another image through the same
kind of view. Mounts are plain mount(2) calls (actors/supervisor/rootfs.py) and always
undone, also on errors.

The other helpers inspect layer directories without mounting: whether a path exists in
an image (`exists_in_layers`, whiteouts and opaque directories respected) and which
mount points the OCI runtime created in a RUN container's upper dir that the image did
not have (`remove_runtime_mountpoints`): Docker keeps those out of the layer (its "init
layer"), so flotta deletes them before the commit when they are still empty.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from actors.supervisor import rootfs

OPAQUE_XATTR = "trusted.overlay.opaque"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
# Whether this kernel's overlayfs takes `volatile` (Linux 5.10+); None until tried.
_volatile_supported: bool | None = None


def _mount_volatile(merged: Path, lower_dirs: Sequence[str], upper: Path, work: Path) -> bool:
    """Mount the view with overlayfs's `volatile` option; False when it cannot be used
    (then the caller mounts it the ordinary way).

    A view's unmount otherwise syncs the whole filesystem under its upper dir (overlayfs
    does that for every non-volatile mount), which flushes every dirty page on it: the
    build context just received, the files a COPY just wrote. Nothing needs that: a
    view's upper dir is either thrown away or handed to the image store, which makes the
    layer durable itself (fsync or syncfs) before it acknowledges the commit; and a
    volatile upper dir is never mounted again (each view has a new one, removed after).
    """
    global _volatile_supported
    if _volatile_supported is False or not lower_dirs:
        return False
    lowers = [os.path.abspath(path) for path in lower_dirs]
    paths = [str(path) for path in (upper, work, merged)]
    if rootfs.needs_new_mount_api(lowers, paths[0], paths[1]):
        return False
    options = rootfs.overlay_options(lowers, paths[0], paths[1]) + ",volatile"
    if len(options.encode()) + 1 > 4096:
        return False
    if not all(os.path.isdir(path) for path in lowers):
        return False
    for path in paths:
        os.makedirs(path, mode=0o755, exist_ok=True)
    if _libc.mount(b"overlay", paths[2].encode(), b"overlay", 0, options.encode()) != 0:
        code = ctypes.get_errno()
        if code == errno.EINVAL and _volatile_supported is None:
            _volatile_supported = False
        return False
    _volatile_supported = True
    return True


@contextlib.contextmanager
def overlay_view(lower_dirs: Sequence[str], directory: Path) -> Iterator[tuple[Path, Path]]:
    """Mount `lower_dirs` (top first; empty for scratch) with a new upper dir under
    `directory`; yields (merged root, upper dir) and unmounts on the way out. The
    mount is volatile where the kernel allows it (see _mount_volatile)."""
    merged = directory / "merged"
    upper = directory / "upper"
    work = directory / "work"
    if not _mount_volatile(merged, lower_dirs, upper, work):
        rootfs.mount_overlay(str(merged), list(lower_dirs), str(upper), str(work))
    try:
        yield merged, upper
    finally:
        rootfs.unmount(str(merged))


_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
_SYNC_FILE_RANGE_WRITE = 2
# Upper dirs with more files than this are left to the store's own sync.
writeback_files_max = 256
_WRITEBACK_BYTES_MIN = 1 << 20


def start_writeback(upper: Path) -> None:
    """Start writing the large files of a step's upper dir to disk, without waiting
    (sync_file_range(2), SYNC_FILE_RANGE_WRITE). Not a durability step: the image store
    makes the layer durable when it commits it. It only means the disk already works
    while the store moves and hashes the layer, so its fsync has less left to wait for."""
    if _sync_file_range is None:
        return
    seen = 0
    for directory, _, names in os.walk(upper):
        for name in names:
            seen += 1
            if seen > writeback_files_max:
                return
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size < _WRITEBACK_BYTES_MIN:
                    continue
                descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                _sync_file_range(descriptor, 0, 0, _SYNC_FILE_RANGE_WRITE)
            finally:
                os.close(descriptor)


def _is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def find_in_layers(lower_dirs: Sequence[str], path: str) -> Path | None:
    """Where `path` (absolute, in the image) is in the merged view of the layers: the
    host path in the topmost layer that has it, or None when the image lacks it.

    Walks the layers top first: a whiteout of the path or of a parent hides everything
    below it; an opaque parent directory hides the layers below for that directory.
    Symlinks on the way are not followed (such a path counts as found, at the link).
    """
    parts = [part for part in path.split("/") if part]
    if not parts:
        return Path(lower_dirs[0]) if lower_dirs else None
    for layer in lower_dirs:
        current = Path(layer)
        hidden_below = False
        for depth, part in enumerate(parts):
            current = current / part
            try:
                info = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                break
            if _is_whiteout(info):
                return None
            if depth == len(parts) - 1 or not stat.S_ISDIR(info.st_mode):
                return current
            if _is_opaque(current):
                hidden_below = True
        if hidden_below:
            return None
    return None


def exists_in_layers(lower_dirs: Sequence[str], path: str) -> bool:
    return find_in_layers(lower_dirs, path) is not None


def _is_empty_placeholder(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(info.st_mode):
        return is_empty_directory(path)
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _same_directory(upper_path: Path, lower_path: Path) -> bool:
    try:
        upper_info, lower_info = os.lstat(upper_path), os.lstat(lower_path)
    except FileNotFoundError:
        return False
    return (
        stat.S_ISDIR(upper_info.st_mode)
        and stat.S_ISDIR(lower_info.st_mode)
        and upper_info.st_mode == lower_info.st_mode
        and (upper_info.st_uid, upper_info.st_gid) == (lower_info.st_uid, lower_info.st_gid)
        and not _is_opaque(upper_path)
    )


def remove_runtime_mountpoints(
    upper: Path, mount_destinations: Sequence[str], lower_dirs: Sequence[str]
) -> list[str]:
    """Delete from a RUN container's upper dir what only the runtime's mounts put there:
    empty mount points the image lacks (and parents made for them), and parents of mount
    points that were merely copied up (empty, same mode and owner as in the image).
    Returns the paths removed."""
    candidates: set[str] = set()
    for destination in mount_destinations:
        parts = [part for part in destination.split("/") if part]
        for length in range(1, len(parts) + 1):
            candidates.add("/" + "/".join(parts[:length]))
    removed = []
    for path in sorted(candidates, key=lambda item: item.count("/"), reverse=True):
        host = upper / path.lstrip("/")
        if not _is_empty_placeholder(host):
            continue
        found = find_in_layers(lower_dirs, path)
        if found is not None and not _same_directory(host, found):
            continue
        if host.is_dir() and not host.is_symlink():
            host.rmdir()
        else:
            host.unlink()
        removed.append(path)
    return removed


def is_empty_directory(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None
