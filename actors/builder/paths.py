"""Resolving a path inside a directory that stands for a root filesystem.

`resolve_in_scope(root, path)` follows symlinks the way they would be followed inside a
container whose `/` is root: an absolute link target restarts at root, `..` stops at
root. So a symlink in a build context (or an image) can never lead outside it, and the
path named in the Dockerfile is refused when it climbs out (`COPY ../x /`).
"""

from __future__ import annotations

import os
import stat
from collections import deque

from .errors import ContextError
from .gocompat import go_clean

symlink_hops_max = 255


def clean_relative(path: str) -> str:
    """A context path as Docker reads it: leading '/' and './' dropped, then cleaned."""
    if path.startswith("/"):
        path = path[1:]
    if path.startswith("./"):
        path = path[2:]
    return go_clean(path)


def escapes_root(path: str) -> bool:
    """Whether a relative path climbs above its root lexically (`../x`, `a/../../x`)."""
    cleaned = go_clean(path)
    return cleaned == ".." or cleaned.startswith("../")


def resolve_in_scope(root: str, path: str) -> str:
    """The host path that `path` (relative to root) names, symlinks followed inside root."""
    pending = deque(part for part in path.split("/"))
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            info = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(info.st_mode):
            resolved.append(part)
            continue
        hops += 1
        if hops > symlink_hops_max:
            raise ContextError(f"too many links while resolving {path}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extendleft(reversed(target.split("/")))
    return os.path.join(root, *resolved) if resolved else root


def relative_to_root(root: str, host_path: str) -> str:
    """host_path relative to root, '/'-separated ('.' for root itself)."""
    relative = os.path.relpath(host_path, root)
    return relative.replace(os.sep, "/")
