"""A container's root filesystem: an overlay of image layers, mounted with mount(2).

`mount(8)` costs a process spawn (about 6 ms here); the kernel call costs microseconds, so
mounts go through libc via ctypes. The legacy `mount(2)` data argument is one page (4096
bytes with its NUL), which a few dozen absolute layer paths overflow, and its syntax cannot
carry ',' ':' or '\\' in a path. Either case switches to the new mount API (fsopen /
fsconfig / fsmount / move_mount) where each lower layer is its own `lowerdir+` parameter
(Linux 6.8 or newer), so neither the page nor the separators limit anything; each single
path must then be shorter than 256 bytes, the kernel's limit on one fsconfig string.

All functions are synchronous and fast (one to a few syscalls); the daemon may call them on
its Trio thread.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long

# Syscall numbers of the new mount API are the same on every architecture.
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_FSOPEN_CLOEXEC = 0x1
_FSMOUNT_CLOEXEC = 0x1
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100
_MNT_DETACH = 0x2

_PAGE_BYTES = 4096
_FSCONFIG_STRING_BYTES_MAX = 255
_LEGACY_UNSAFE_CHARACTERS = frozenset(",:\\\n")
EMPTY_LOWER_NAME = "lower-empty"


class MountError(Exception):
    """The kernel refused a mount; the message says which mount and why."""


def overlay_options(lower_dirs: Sequence[str], upper_dir: str, work_dir: str) -> str:
    """The legacy mount(2) option string: lowerdir top layer first."""
    return f"lowerdir={':'.join(lower_dirs)},upperdir={upper_dir},workdir={work_dir}"


def needs_new_mount_api(lower_dirs: Sequence[str], upper_dir: str, work_dir: str) -> bool:
    """Whether the legacy option string would overflow its page or misparse a path."""
    paths = [*lower_dirs, upper_dir, work_dir]
    if any(_LEGACY_UNSAFE_CHARACTERS.intersection(path) for path in paths):
        return True
    return len(overlay_options(lower_dirs, upper_dir, work_dir).encode()) + 1 > _PAGE_BYTES


def mount_overlay(
    target: str,
    lower_dirs: Sequence[str],
    upper_dir: str,
    work_dir: str,
    *,
    use_new_api: bool | None = None,
) -> None:
    """Mount an overlay of `lower_dirs` (top layer first) with `upper_dir` on `target`.

    An empty `lower_dirs` (an image FROM scratch) uses an empty directory next to
    `work_dir` (named `lower-empty`), since overlayfs needs at least one lower layer.
    `target`, `upper_dir` and `work_dir` are created if missing. `use_new_api` forces the
    choice of API (None: legacy when the option string fits, the new API otherwise).
    Raises MountError naming the mount and the kernel's reason.
    """
    lowers = [os.path.abspath(path) for path in lower_dirs]
    upper_dir = os.path.abspath(upper_dir)
    work_dir = os.path.abspath(work_dir)
    target = os.path.abspath(target)
    if not lowers:
        empty = os.path.join(os.path.dirname(work_dir), EMPTY_LOWER_NAME)
        os.makedirs(empty, mode=0o755, exist_ok=True)
        lowers = [empty]
    for path in lowers:
        if not os.path.isdir(path):
            raise MountError(f"overlay lower layer {path} is not a directory")
    for path in (upper_dir, work_dir, target):
        os.makedirs(path, mode=0o755, exist_ok=True)
    if use_new_api is None:
        use_new_api = needs_new_mount_api(lowers, upper_dir, work_dir)
    if use_new_api:
        _mount_overlay_new_api(target, lowers, upper_dir, work_dir)
        return
    options = overlay_options(lowers, upper_dir, work_dir)
    if _libc.mount(b"overlay", target.encode(), b"overlay", 0, options.encode()) != 0:
        code = ctypes.get_errno()
        raise MountError(
            f"cannot mount the overlay root at {target} ({len(lowers)} lower layers): "
            f"{os.strerror(code)}"
        )


def _mount_overlay_new_api(target: str, lowers: list[str], upper_dir: str, work_dir: str) -> None:
    for path in [*lowers, upper_dir, work_dir]:
        if len(path.encode()) > _FSCONFIG_STRING_BYTES_MAX:
            raise MountError(
                f"overlay path {path!r} is longer than the kernel's {_FSCONFIG_STRING_BYTES_MAX} "
                "bytes for one mount parameter; use a shorter layer store path"
            )
    context = _libc.syscall(_SYS_FSOPEN, b"overlay", _FSOPEN_CLOEXEC)
    if context < 0:
        code = ctypes.get_errno()
        raise MountError(f"cannot mount the overlay root at {target}: fsopen: {os.strerror(code)}")
    mount_fd = -1
    try:
        for layer in lowers:
            _fsconfig_string(context, "lowerdir+", layer, target)
        _fsconfig_string(context, "upperdir", upper_dir, target)
        _fsconfig_string(context, "workdir", work_dir, target)
        if _libc.syscall(_SYS_FSCONFIG, context, _FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            _raise_from_context(context, target, "creating the overlay")
        mount_fd = _libc.syscall(_SYS_FSMOUNT, context, _FSMOUNT_CLOEXEC, 0)
        if mount_fd < 0:
            _raise_from_context(context, target, "fsmount")
        if (
            _libc.syscall(
                _SYS_MOVE_MOUNT, mount_fd, b"", _AT_FDCWD, target.encode(), _MOVE_MOUNT_F_EMPTY_PATH
            )
            < 0
        ):
            code = ctypes.get_errno()
            raise MountError(f"cannot attach the overlay root at {target}: {os.strerror(code)}")
    finally:
        if mount_fd >= 0:
            os.close(mount_fd)
        os.close(context)


def _fsconfig_string(context: int, key: str, value: str, target: str) -> None:
    if (
        _libc.syscall(_SYS_FSCONFIG, context, _FSCONFIG_SET_STRING, key.encode(), value.encode(), 0)
        < 0
    ):
        _raise_from_context(context, target, f"{key}={value}")


def _raise_from_context(context: int, target: str, step: str) -> None:
    code = ctypes.get_errno()
    reason = os.strerror(code)
    if code == errno.EINVAL and step.startswith("lowerdir+"):
        reason += " (this kernel has no 'lowerdir+'; Linux 6.8 or newer is needed for many layers)"
    messages = _drain_context_log(context)
    detail = f" [{'; '.join(messages)}]" if messages else ""
    raise MountError(f"cannot mount the overlay root at {target}: {step}: {reason}{detail}")


def _drain_context_log(context: int) -> list[str]:
    # The kernel keeps human-readable messages ("e overlayfs: ...") on the fs context fd.
    messages = []
    for _ in range(8):
        try:
            chunk = os.read(context, 1024)
        except OSError:
            break
        if not chunk:
            break
        messages.append(chunk.decode(errors="replace").strip())
    return messages


def is_mount_point(path: str) -> bool:
    return os.path.ismount(path)


def unmount(target: str) -> bool:
    """Unmount `target`; returns False when nothing was mounted there (so it is idempotent).

    A busy mount is detached lazily (MNT_DETACH): the kernel frees it when its last user
    goes, which is what a caller tearing a container down wants.
    """
    encoded = os.path.abspath(target).encode()
    if _libc.umount2(encoded, 0) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOENT):
        return False
    if code == errno.EBUSY and _libc.umount2(encoded, _MNT_DETACH) == 0:
        return True
    code = ctypes.get_errno()
    raise MountError(f"cannot unmount {target}: {os.strerror(code)}")
