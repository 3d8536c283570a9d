"""`docker diff`: what a container changed, from its overlay upper directory.

Every entry of the upper directory is a change: a whiteout (a 0/0 character device) is a
deletion (Kind 2); anything else is a modification (Kind 0) when the path exists in an
image layer, an addition (Kind 1) otherwise. Mount points the runtime creates for the
container's own files (/etc/hosts, /proc, ...) are not changes the user made and are left
out while they are empty.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

MODIFIED = 0
ADDED = 1
DELETED = 2

RUNTIME_MOUNT_POINTS = frozenset({
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys",
    "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup", "/dev/console",
})  # fmt: skip


def _is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _in_lower(lower_dirs: Sequence[str], relative: str) -> bool:
    return any(os.path.lexists(os.path.join(layer, relative)) for layer in lower_dirs)


def _empty_mount_point(path: str, info: os.stat_result) -> bool:
    if stat.S_ISDIR(info.st_mode):
        try:
            return not os.listdir(path)
        except OSError:
            return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def changes(upper_dir: str, lower_dirs: Sequence[str]) -> list[dict[str, object]]:
    """[{"Path": "/etc", "Kind": 0}, ...] sorted by path."""
    found: list[dict[str, object]] = []
    if not os.path.isdir(upper_dir):
        return found
    for directory, subdirectories, files in os.walk(upper_dir):
        for name in sorted([*subdirectories, *files]):
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, upper_dir)
            path = "/" + relative
            try:
                info = os.lstat(full)
            except FileNotFoundError:
                continue
            if _is_whiteout(info):
                found.append({"Path": path, "Kind": DELETED})
                continue
            exists_below = _in_lower(lower_dirs, relative)
            if not exists_below and path in RUNTIME_MOUNT_POINTS and _empty_mount_point(full, info):
                continue
            found.append({"Path": path, "Kind": MODIFIED if exists_below else ADDED})
    found.sort(key=lambda item: str(item["Path"]))
    return found
