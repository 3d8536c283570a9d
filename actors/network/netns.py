"""Named network namespaces, and running code inside one from a short-lived thread.

A netns is a per-thread property in Linux, so everything that must happen inside one runs
in a fresh thread that `setns()`s itself and then ends: the thread never goes back to a
pool where a Trio worker would later find itself in the wrong namespace. Sockets and
netlink handles opened there stay bound to that namespace after the thread is gone.

Named namespaces live where iproute2 keeps them (/var/run/netns/<name>), so
`ip netns exec flotta-<id> ...` works for debugging. Creation does not fork (unlike
pyroute2's): the thread unshares a new netns and bind-mounts its own
/proc/thread-self/ns/net onto the name. Removal unmounts and unlinks; the kernel tears
the namespace down later, when nothing uses it (see links.py for the consequence).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

NETNS_DIRECTORY = "/var/run/netns"
CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_directory_ready = threading.Lock()
_directory_prepared: set[str] = set()


class NetnsError(OSError):
    """A namespace operation the kernel refused; the message names the namespace."""


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise NetnsError(code, f"{what}: {os.strerror(code)}")


def netns_path(name_or_path: str) -> str:
    """A netns name becomes its path under /var/run/netns; a path stays as it is."""
    if name_or_path.startswith("/"):
        return name_or_path
    if not name_or_path or "/" in name_or_path or name_or_path in (".", ".."):
        raise ValueError(f"invalid netns name {name_or_path!r}")
    return os.path.join(NETNS_DIRECTORY, name_or_path)


def enter_netns(name_or_path: str) -> None:
    """Move the calling thread into a netns. Only call this in a thread that will end."""
    fd = os.open(netns_path(name_or_path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns into {name_or_path}")
    finally:
        os.close(fd)


def call_in_thread(netns: str | None, function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in a fresh thread, inside `netns` if given; blocking.

    Always a fresh thread, even without a netns, so `function` may itself enter other
    namespaces (creating or configuring a container's) without leaking that to a caller.
    """
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            if netns is not None:
                enter_netns(netns)
            outcome["value"] = function(*args)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=body, name=f"flotta-netns:{netns or 'host'}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _prepare_directory(directory: str) -> None:
    """Make the netns directory a shared mount, as iproute2 does, so names made here are
    visible to processes in other mount namespaces (crun, `ip netns exec`)."""
    with _directory_ready:
        if directory in _directory_prepared:
            return
        os.makedirs(directory, exist_ok=True)
        encoded = directory.encode()
        if _libc.mount(b"none", encoded, None, _MS_SHARED | _MS_REC, None) != 0:
            _check(_libc.mount(encoded, encoded, b"none", _MS_BIND | _MS_REC, None), f"bind {directory}")
            _check(_libc.mount(b"none", encoded, None, _MS_SHARED | _MS_REC, None), f"share {directory}")
        _directory_prepared.add(directory)


def create_in_current_thread(name: str) -> str:
    """Unshare a new netns for the calling thread and name it; the thread stays in it.

    Only for a thread from `call_in_thread`. Raises FileExistsError if the name is taken.
    """
    path = netns_path(name)
    _prepare_directory(os.path.dirname(path))
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    try:
        _check(_libc.unshare(CLONE_NEWNET), f"unshare a netns for {name}")
        _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", _MS_BIND, None), f"name netns {name}")
    except BaseException:
        os.unlink(path)
        raise
    return path


def create_netns(name: str) -> str:
    """Create a named netns (only `lo`, down); returns its path."""
    return call_in_thread(None, create_in_current_thread, name)


def remove_netns(name_or_path: str) -> bool:
    """Unmount and unlink a named netns; False when it did not exist."""
    path = netns_path(name_or_path)
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise NetnsError(code, f"unmount netns {path}: {os.strerror(code)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def netns_exists(name_or_path: str) -> bool:
    """True when the path is a mounted netns (not just a leftover empty file)."""
    return _is_nsfs(netns_path(name_or_path))


def _is_nsfs(path: str) -> bool:
    nsfs_magic = 0x6E736673
    buffer = ctypes.create_string_buffer(128)  # struct statfs; f_type is its first long
    if _libc.statfs(path.encode(), buffer) != 0:
        return False
    return int.from_bytes(buffer.raw[:8], "little") == nsfs_magic


def list_netns(prefix: str = "") -> list[str]:
    """Names under /var/run/netns starting with `prefix`, sorted."""
    try:
        return sorted(name for name in os.listdir(NETNS_DIRECTORY) if name.startswith(prefix))
    except FileNotFoundError:
        return []


def socket_in_netns(netns: str | None, family: int, kind: int) -> socket.socket:
    """A socket created inside `netns` (None: the calling process's), non-blocking."""

    def make() -> socket.socket:
        created = socket.socket(family, kind)
        created.setblocking(False)
        return created

    return call_in_thread(netns, make)
