"""`docker cp`'s file access, run as a short-lived helper process confined by chroot.

Usage (the daemon runs it as `python -S -E archive_helper.py ...`; standard library only):

    archive_helper.py stat ROOT PATH         -> one JSON line: the path's stat, or an error
    archive_helper.py get ROOT PATH          -> one JSON line (stat or error), then a tar
    archive_helper.py put ROOT PATH [--no-overwrite-dir-non-dir] [--copy-uid-gid]
                                             <- a tar on stdin; -> one JSON line: ok or error

The helper imports what it needs, then chroots into ROOT (the container's root: its
init's `/proc/<pid>/root` when running, which also shows its volumes; a private overlay
mount otherwise). Every path, including symlinks the container planted, is then resolved
by the kernel inside the container's root, so nothing outside it can be read or written.

The stat JSON is Docker's `X-Docker-Container-Path-Stat`: name, size, mode (Go's
os.FileMode bits), mtime (RFC 3339), linkTarget.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tarfile
import time
from collections.abc import Callable

# Go's os.FileMode type bits.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20


def go_file_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    if stat.S_ISDIR(st_mode):
        mode |= MODE_DIR
    elif stat.S_ISLNK(st_mode):
        mode |= MODE_SYMLINK
    elif stat.S_ISFIFO(st_mode):
        mode |= MODE_NAMED_PIPE
    elif stat.S_ISSOCK(st_mode):
        mode |= MODE_SOCKET
    elif stat.S_ISBLK(st_mode):
        mode |= MODE_DEVICE
    elif stat.S_ISCHR(st_mode):
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def rfc3339(seconds: float) -> str:
    whole = int(seconds)
    nanoseconds = round((seconds - whole) * 1e9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if nanoseconds:
        text += "." + f"{nanoseconds:09d}".rstrip("0")
    return text + "Z"


def base_name(path: str) -> str:
    """Go's filepath.Base of the path as asked ("/a/b/" -> "b", "/a/." -> ".")."""
    trimmed = path.rstrip("/")
    if not trimmed:
        return "/"
    return trimmed.rsplit("/", 1)[-1]


def path_stat(path: str) -> dict[str, object]:
    info = os.lstat(path)
    link_target = ""
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        link_target = target if target.startswith("/") else os.path.normpath(
            os.path.join(os.path.dirname(path.rstrip("/")) or "/", target)
        )
    if path.endswith("/") or path.endswith("/."):
        info = os.stat(path)  # a trailing slash follows a final symlink, as the kernel does
    return {
        "name": base_name(path),
        "size": info.st_size,
        "mode": go_file_mode(info.st_mode),
        "mtime": rfc3339(info.st_mtime),
        "linkTarget": link_target,
    }


def _error(kind: str, message: str) -> dict[str, object]:
    return {"error": kind, "message": message}


def _stat_or_error(path: str) -> dict[str, object]:
    try:
        return path_stat(path)
    except FileNotFoundError:
        return _error("not_found", f"Could not find the file {path} in container")
    except NotADirectoryError:
        return _error("not_found", f"Could not find the file {path} in container")
    except OSError as error:
        return _error("system", f"{path}: {error.strerror}")


def _write_line(value: dict[str, object]) -> None:
    sys.stdout.buffer.write(json.dumps(value).encode() + b"\n")
    sys.stdout.buffer.flush()


def command_get(path: str) -> int:
    found = _stat_or_error(path)
    _write_line(found)
    if "error" in found:
        return 1
    source = path[:-1] if path.endswith("/.") else path
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        archive.add(source or "/", arcname=base_name(path), recursive=True)
    return 0


class _Refused(Exception):
    pass


def _member_filter(
    destination: str, copy_uid_gid: bool, no_overwrite: bool
) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    real_destination = os.path.realpath(destination)

    def check(member: tarfile.TarInfo, _path: str) -> tarfile.TarInfo:
        name = member.name.lstrip("/")
        target = os.path.realpath(os.path.join(real_destination, name))
        if target != real_destination and not target.startswith(real_destination.rstrip("/") + "/"):
            raise _Refused(f"{member.name}: outside the destination directory")
        if member.islnk():
            linked = os.path.realpath(os.path.join(real_destination, member.linkname.lstrip("/")))
            if not linked.startswith(real_destination.rstrip("/") + "/"):
                raise _Refused(f"{member.name}: hard link outside the destination directory")
        if no_overwrite and os.path.lexists(target):
            existing_dir = os.path.isdir(target) and not os.path.islink(target)
            if existing_dir != member.isdir():
                kind = "directory" if existing_dir else "non-directory"
                raise _Refused(f"cannot overwrite {kind} {target!r} with {'directory' if member.isdir() else 'non-directory'} {member.name!r}")
        member = member.replace(name=name, deep=False)
        if not copy_uid_gid:
            member = member.replace(uid=0, gid=0, uname="", gname="", deep=False)
        return member

    return check


def command_put(path: str, no_overwrite: bool, copy_uid_gid: bool) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        _write_line(_error("not_found", f"Could not find the file {path} in container"))
        return 1
    if not stat.S_ISDIR(info.st_mode):
        _write_line(_error("invalid_parameter", "extraction point is not a directory"))
        return 1
    try:
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") as archive:
            archive.extraction_filter = _member_filter(path, copy_uid_gid, no_overwrite)
            archive.extractall(path, numeric_owner=True)
    except _Refused as error:
        _write_line(_error("invalid_parameter", str(error)))
        return 1
    except (tarfile.TarError, OSError, EOFError) as error:
        _write_line(_error("invalid_parameter", f"cannot extract the archive: {error}"))
        return 1
    _write_line({"ok": True})
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("stat", "get", "put"):
        print(__doc__, file=sys.stderr)
        return 2
    command, root, path = argv[0], argv[1], argv[2]
    if not path.startswith("/"):
        path = "/" + path
    # No user/group name lookups once inside: NSS could load libraries from the container.
    tarfile.pwd = None  # type: ignore[attr-defined]
    tarfile.grp = None  # type: ignore[attr-defined]
    os.chroot(root)
    os.chdir("/")
    if command == "stat":
        _write_line(_stat_or_error(path))
        return 0
    if command == "get":
        return command_get(path)
    return command_put(path, "--no-overwrite-dir-non-dir" in argv[3:], "--copy-uid-gid" in argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
