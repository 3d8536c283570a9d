"""`flotta cp`: copy between a container and the local filesystem via the archive endpoints.

The rules are docker's (archive.PrepareArchiveCopy): copying into an existing directory
puts the source inside it; otherwise the copy takes the destination's name; a directory
cannot replace a file; `dir/.` copies a directory's contents. Extraction refuses entries
that would land outside the destination (absolute paths, `..`, escaping links).
"""

import base64
import json
import os
import sys
import tarfile

from actors.client import api
from actors.client.cli import Command, CommandError, bool_flag
from actors.client.commands.common import quote_path

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27


def split_argument(argument: str) -> tuple[str, str]:
    """"c1:/etc/hosts" -> ("c1", "/etc/hosts"); local paths -> ("", path)."""
    if argument.startswith("/"):
        return "", argument
    container, colon, path = argument.partition(":")
    if not colon or container.startswith("."):
        return "", argument
    return container, path


def split_dir_entry(path: str) -> tuple[str, str]:
    """docker's SplitPathDirEntry: ("/a", "b") for "/a/b" and "/a/b/"; "." keeps meaning."""
    cleaned = path.rstrip("/") or "/"
    if path.endswith("/.") or path == ".":
        parent = path[:-1].rstrip("/") or ("/" if path.startswith("/") else ".")
        return parent, "."
    directory, _, base = cleaned.rpartition("/")
    if not directory:
        directory = "/" if cleaned.startswith("/") else "."
    return directory, base or cleaned


def asserts_directory(path: str) -> bool:
    return path.endswith("/") or path.endswith("/.") or path == "."


def rebase_name(name: str, old_base: str, new_base: str) -> str:
    if old_base == new_base or old_base == ".":
        return name
    stripped = name[2:] if name.startswith("./") else name
    if stripped == old_base or stripped == old_base + "/":
        return new_base + stripped[len(old_base):]
    if stripped.startswith(old_base + "/"):
        return new_base + stripped[len(old_base):]
    return name


def decode_path_stat(header: str) -> dict:
    try:
        return json.loads(base64.b64decode(header))
    except (ValueError, TypeError):
        return {}


def container_stat(client, container: str, path: str) -> dict | None:
    """HEAD the archive endpoint; None when the path does not exist in the container."""
    try:
        response = client.request("HEAD", f"/containers/{quote_path(container)}/archive",
                                  {"path": path})
    except api.APIError as error:
        if error.status == 404 and "no such container" not in error.message.lower():
            return None
        raise
    response.close()
    return decode_path_stat(response.headers.get("x-docker-container-path-stat", ""))


def _safe_extract(archive, destination: str, old_base: str, new_base: str) -> int:
    """Extract a streamed tar into `destination`, renaming its top entry; returns bytes."""
    total = 0
    destination = os.path.realpath(destination)
    for member in archive:
        member.name = rebase_name(member.name, old_base, new_base)
        if member.islnk():
            member.linkname = rebase_name(member.linkname, old_base, new_base)
        mode = member.mode
        try:
            checked = tarfile.tar_filter(member, destination)
        except tarfile.FilterError as error:
            raise CommandError(f"refusing to extract {member.name!r}: {error}") from None
        if checked is None:
            continue
        # Keep the full permission bits (docker does) but never the archive's owners.
        checked = checked.replace(mode=mode, uid=None, gid=None, uname=None, gname=None,
                                  deep=False)
        archive.extract(checked, destination, set_attrs=True, filter="fully_trusted")
        if checked.isfile():
            total += checked.size
    return total


def copy_from_container(cli, container: str, source: str, destination: str,
                        follow_link: bool, quiet: bool) -> int:
    from actors.client import formatting

    client = cli.client
    if follow_link:
        info = container_stat(client, container, source)
        if info and info.get("mode", 0) & GO_MODE_SYMLINK and info.get("linkTarget"):
            source = info["linkTarget"]
    response = client.request("GET", f"/containers/{quote_path(container)}/archive",
                              {"path": source})
    with response:
        if destination == "-":
            cli.stdout.flush()
            for data in response.iter_raw():
                cli.stdout.buffer.write(data)
            cli.stdout.buffer.flush()
            return 0
        info = decode_path_stat(response.headers.get("x-docker-container-path-stat", ""))
        source_is_dir = bool(info.get("mode", 0) & GO_MODE_DIR)
        _, source_base = split_dir_entry(source)
        if source_base != "." and info.get("name"):
            source_base = info["name"]
        exists = os.path.exists(destination)
        is_dir = os.path.isdir(destination)
        parent, destination_base = split_dir_entry(destination)
        if exists and is_dir:
            target_dir, new_base = destination, source_base
        elif exists and source_is_dir:
            raise CommandError("cannot copy directory")
        elif not exists and not source_is_dir and asserts_directory(destination):
            raise CommandError(f"destination directory {destination} does not exist")
        else:
            target_dir, new_base = parent, destination_base
        if not os.path.isdir(target_dir):
            raise CommandError(f"destination directory {target_dir} does not exist")
        try:
            with tarfile.open(fileobj=_ResponseFile(response), mode="r|*") as archive:
                copied = _safe_extract(archive, target_dir, source_base, new_base)
        except (tarfile.TarError, OSError) as error:
            raise CommandError(f"error extracting the archive: {error}") from None
    if not quiet:
        cli.err(f"Successfully copied {formatting.human_size(copied)} to {destination}\n")
    return 0


class _ResponseFile:
    """A read()-able view of a streaming response for tarfile's stream mode."""

    def __init__(self, response) -> None:
        self.response = response
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            data = self.response.read_some()
            if not data:
                break
            self.buffer += data
        if size < 0:
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _local_tar(source: str, name: str, out, follow_link: bool) -> int:
    """Tar `source` into `out` under `name` (its contents when name is "."); returns bytes."""
    total = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      dereference=False) as archive:
        real = os.path.realpath(source) if follow_link else source
        archive.add(real, arcname=name, recursive=True)
        for root, _, files in os.walk(real):
            for filename in files:
                try:
                    total += os.lstat(os.path.join(root, filename)).st_size
                except OSError:
                    pass
        if os.path.isfile(real):
            total = os.path.getsize(real)
    return total


def copy_to_container(cli, source: str, container: str, destination: str, follow_link: bool,
                      archive_mode: bool, quiet: bool) -> int:
    import tempfile

    from actors.client import formatting

    client = cli.client
    info = container_stat(client, container, destination)
    exists = info is not None
    is_dir = bool(info and info.get("mode", 0) & GO_MODE_DIR)
    query = {"noOverwriteDirNonDir": True, "copyUIDGID": True if archive_mode else None}
    if source == "-":
        if not is_dir:
            raise CommandError(f'destination "{container}:{destination}" must be a directory')
        query["path"] = destination
        body = iter(lambda: sys.stdin.buffer.read(256 * 1024), b"")
        client.request("PUT", f"/containers/{quote_path(container)}/archive", query, body=body,
                       headers={"Content-Type": "application/x-tar"}).close()
        return 0
    try:
        local = os.stat(source) if follow_link else os.lstat(source)
    except OSError as error:
        raise CommandError(f"lstat {source}: {error.strerror.lower()}") from None
    import stat

    source_is_dir = stat.S_ISDIR(local.st_mode)
    _, source_base = split_dir_entry(source)
    parent, destination_base = split_dir_entry(destination)
    if exists and is_dir:
        target_dir, name = destination, source_base
    elif exists and source_is_dir:
        raise CommandError("cannot copy directory")
    elif not exists and not source_is_dir and asserts_directory(destination):
        raise CommandError(f"destination directory {container}:{destination} does not exist")
    else:
        target_dir, name = parent, destination_base
    source_path = source[:-1] if source.endswith("/.") else source
    with tempfile.TemporaryFile() as spool:
        copied = _local_tar(source_path, name, spool, follow_link)
        spool.seek(0)
        query["path"] = target_dir
        body = iter(lambda: spool.read(256 * 1024), b"")
        client.request("PUT", f"/containers/{quote_path(container)}/archive", query, body=body,
                       headers={"Content-Type": "application/x-tar"}).close()
    if not quiet:
        cli.err(f"Successfully copied {formatting.human_size(copied)} to "
                f"{container}:{destination}\n")
    return 0


def run_cp(cli, options, args) -> int:
    source_container, source = split_argument(args[0])
    destination_container, destination = split_argument(args[1])
    if source_container and destination_container:
        raise CommandError("copying between containers is not supported")
    if not source_container and not destination_container:
        raise CommandError("must specify at least one container source")
    if not source or not destination:
        raise CommandError("filepath can not be empty")
    if source_container:
        return copy_from_container(cli, source_container, source, destination,
                                   options.follow_link, options.quiet)
    return copy_to_container(cli, source, destination_container, destination,
                             options.follow_link, options.archive, options.quiet)


COMMANDS = {
    "cp": Command(
        "cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tflotta cp [OPTIONS] SRC_PATH|- "
        "CONTAINER:DEST_PATH",
        "Copy files/folders between a container and the local filesystem",
        [
            bool_flag("archive", "a", "Archive mode (copy all uid/gid information)"),
            bool_flag("follow-link", "L", "Always follow symbol link in SRC_PATH"),
            bool_flag("quiet", "q", "Suppress progress output during copy"),
        ],
        run_cp, args_min=2, args_max=2,
    ),
}
