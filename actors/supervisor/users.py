"""`docker run -u`: resolving a user against the container's /etc/passwd and /etc/group.

The files are read with openat2(RESOLVE_IN_ROOT), so symlinks resolve inside the container's
root: an image cannot make the daemon read a host file.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

import attrs

from actors.supervisor.errors import SpecError


@attrs.frozen
class ProcessUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


_FILE_BYTES_MAX = 4 * 1024 * 1024


def resolve_user(rootfs: str, user: str, group_add: Sequence[str] = ()) -> ProcessUser:
    """Resolve `docker run -u` against the container's /etc/passwd and /etc/group.

    Rules as Docker's: a name must exist in passwd; a numeric uid not in passwd runs with gid
    0 and home "/"; an explicit group (name or gid) replaces the primary group and disables
    the supplementary groups, which otherwise are every group listing the user by name;
    `group_add` entries (names or gids) are appended.
    """
    user_part, _, group_part = user.partition(":")
    passwd = _parse_colon_file(read_file_in_root(rootfs, "/etc/passwd"))
    groups = _parse_colon_file(read_file_in_root(rootfs, "/etc/group"))
    uid, gid, home, matched_name = 0, 0, "/", ""
    if user_part == "":
        user_part = "0"
    entry = _find_user(passwd, user_part)
    if entry is not None:
        matched_name = entry[0]
        uid, gid = _parse_id(entry[2], "uid"), _parse_id(entry[3], "gid")
        home = entry[5] if len(entry) > 5 and entry[5] else "/"
    elif user_part.isdigit():
        uid = _parse_id(user_part, "uid")
    else:
        raise SpecError(f"unable to find user {user_part}: no matching entries in passwd file")
    additional: list[int] = []
    if group_part:
        gid = _resolve_group(groups, group_part)
    elif matched_name:
        for group in groups:
            members = group[3].split(",") if len(group) > 3 and group[3] else []
            if matched_name in members:
                additional.append(_parse_id(group[2], "gid"))
    for extra in group_add:
        additional.append(_resolve_group(groups, extra))
    unique = tuple(dict.fromkeys(additional))
    return ProcessUser(uid=uid, gid=gid, additional_gids=unique, home=home)


def _find_user(passwd: list[list[str]], user: str) -> list[str] | None:
    # A numeric user is always a uid, never a name (as Docker and runc).
    for entry in passwd:
        if (entry[2] if user.isdigit() else entry[0]) == user:
            return entry
    return None


def _resolve_group(groups: list[list[str]], group: str) -> int:
    for entry in groups:
        if entry[0] == group and len(entry) > 2:
            return _parse_id(entry[2], "gid")
    if group.isdigit():
        return _parse_id(group, "gid")
    raise SpecError(f"unable to find group {group}: no matching entries in group file")


def _parse_id(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SpecError(f"invalid {what} {text!r}") from None
    if not 0 <= value < 2**32 - 1:
        raise SpecError(f"{what} {value} is out of range")
    return value


def _parse_colon_file(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) >= 3:
            rows.append(fields)
    return rows


_SYS_OPENAT2 = 437  # same number on every architecture
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def read_file_in_root(root: str, path: str) -> str:
    """A file of the container's filesystem, symlinks resolved inside `root`; "" if absent."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        fd = _libc.syscall(
            _SYS_OPENAT2, root_fd, path.lstrip("/").encode(), ctypes.byref(how), ctypes.sizeof(how)
        )
        if fd < 0:
            code = ctypes.get_errno()
            if code in (2, 20):  # ENOENT, ENOTDIR
                return ""
            raise SpecError(f"cannot read {path} in the container: {os.strerror(code)}")
        try:
            data = os.read(fd, _FILE_BYTES_MAX)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    return data.decode(errors="replace")
