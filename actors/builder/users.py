"""`--chown=user:group` resolution against an image's /etc/passwd and /etc/group.

As in Docker's classic builder: `user` alone means `user:user` (the same name looked up
as a group); a part that is a number is used as the id without lookup; a name is looked
up in the image's files (symlinks followed inside the image). The first matching line
wins.
"""

from __future__ import annotations

import re

from .errors import ContextError
from .paths import resolve_in_scope

_NUMBER = re.compile(r"^[+-]?[0-9]+$")


def _entries(text: str) -> list[list[str]]:
    rows = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def parse_passwd(text: str) -> list[tuple[str, int, int]]:
    """(name, uid, gid) of each well-formed /etc/passwd line."""
    users = []
    for fields in _entries(text):
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            users.append((fields[0], int(fields[2]), int(fields[3])))
    return users


def parse_group(text: str) -> list[tuple[str, int]]:
    """(name, gid) of each well-formed /etc/group line."""
    groups = []
    for fields in _entries(text):
        if len(fields) >= 3 and fields[2].isdigit():
            groups.append((fields[0], int(fields[2])))
    return groups


def _numeric(text: str, what: str, spec: str) -> int:
    value = int(text)
    if value < 0:
        raise ContextError(f"invalid chown string format: {spec}: negative {what} {value}")
    return value


def resolve_chown(spec: str, passwd_text: str | None, group_text: str | None) -> tuple[int, int]:
    """(uid, gid) for a --chown value; ContextError naming what could not be found."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise ContextError(f"invalid chown string format: {spec}")
    user_part = parts[0]
    group_part = parts[1] if len(parts) == 2 else parts[0]
    prefix = "unable to convert uid/gid chown string to host mapping"
    if _NUMBER.match(user_part):
        uid = _numeric(user_part, "uid", spec)
    else:
        if passwd_text is None:
            raise ContextError(
                f"{prefix}: can't find uid for user {user_part}: the image has no /etc/passwd"
            )
        users = [entry for entry in parse_passwd(passwd_text) if entry[0] == user_part]
        if not users:
            raise ContextError(
                f"{prefix}: can't find uid for user {user_part}: no such user: {user_part}"
            )
        uid = users[0][1]
    if _NUMBER.match(group_part):
        gid = _numeric(group_part, "gid", spec)
    else:
        if group_text is None:
            raise ContextError(
                f"{prefix}: can't find gid for group {group_part}: the image has no /etc/group"
            )
        groups = [entry for entry in parse_group(group_text) if entry[0] == group_part]
        if not groups:
            raise ContextError(
                f"{prefix}: can't find gid for group {group_part}: no such group: {group_part}"
            )
        gid = groups[0][1]
    return uid, gid


def _read_in_rootfs(rootfs: str, path: str) -> str | None:
    resolved = resolve_in_scope(rootfs, path)
    try:
        with open(resolved, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def resolve_chown_in_rootfs(spec: str, rootfs: str) -> tuple[int, int]:
    """resolve_chown against the /etc/passwd and /etc/group of an unpacked root filesystem."""
    needs_files = any(not _NUMBER.match(part) for part in spec.split(":")[:2])
    passwd = _read_in_rootfs(rootfs, "etc/passwd") if needs_files else None
    group = _read_in_rootfs(rootfs, "etc/group") if needs_files else None
    return resolve_chown(spec, passwd, group)
