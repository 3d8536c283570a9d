"""File digests computed while a build context is extracted, reused by COPY/ADD checksums.

Extraction already has every byte of a context file in hand, so it hashes them on the way
to disk (in the worker thread that mostly waits for the request body) and remembers the
sha256 under the file's path. `cachekey.file_digest` asks here first, so a COPY of a
large context file needs no second read.

An entry is used only while the file is exactly the one hashed: the same device, inode,
size, modification time and status-change time (the last changes on every write, chmod
or chown, and cannot be set by anyone), read with lstat at lookup. Entries of a context
are forgotten when the context is removed; the table is bounded (`entries_max`), oldest
first. Thread-safe.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

entries_max = 200_000

_Identity = tuple[int, int, int, int, int]

_lock = threading.Lock()
_known: OrderedDict[str, tuple[_Identity, str]] = OrderedDict()


def _identity(info: os.stat_result) -> _Identity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def remember(path: str, info: os.stat_result, hex_digest: str) -> None:
    """Record the sha256 of the regular file at `path` (absolute, symlinks resolved), whose
    lstat after the last change is `info`."""
    with _lock:
        _known.pop(path, None)
        _known[path] = (_identity(info), hex_digest)
        while len(_known) > entries_max:
            _known.popitem(last=False)


def recall(path: str) -> str | None:
    """The remembered sha256 of `path`, if it is still the very file that was hashed."""
    with _lock:
        entry = _known.get(path)
    if entry is None:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    identity, hex_digest = entry
    return hex_digest if _identity(info) == identity else None


def forget_under(root: str) -> int:
    """Drop every entry below directory `root`; how many went."""
    prefix = root.rstrip("/") + "/"
    with _lock:
        stale = [path for path in _known if path.startswith(prefix)]
        for path in stale:
            del _known[path]
    return len(stale)
