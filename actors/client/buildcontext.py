"""The build context tar `flotta build` uploads, made the way the docker CLI makes it.

Everything under the context directory that .dockerignore does not exclude, in lexical
order, owned by 0:0; the Dockerfile and .dockerignore are always included; a Dockerfile
from outside the context (or from stdin) is added under a generated `.dockerfile.<hex>`
name, which is then the `dockerfile` the daemon is told to use.
"""

import io
import os
import stat
import tarfile

from actors.client import dockerignore

DEFAULT_DOCKERFILE = "Dockerfile"


class ContextError(Exception):
    """The context cannot be prepared; the message is what the user sees."""


def resolve_dockerfile(context_dir: str, dockerfile: str) -> tuple[str, bytes | None]:
    """(name inside the context, contents to inject or None) for -f `dockerfile`."""
    if dockerfile == "-":
        raise ContextError("the Dockerfile from stdin must be read by the caller")
    if not dockerfile:
        candidate = os.path.join(context_dir, DEFAULT_DOCKERFILE)
        if not os.path.lexists(candidate):
            lower = os.path.join(context_dir, DEFAULT_DOCKERFILE.lower())
            if os.path.lexists(lower):
                candidate = lower
        path = candidate
    else:
        path = os.path.abspath(dockerfile)
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as error:
        raise ContextError(
            f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {path}: {_lower(error)}"
        ) from None
    real_context = os.path.realpath(context_dir)
    relative = os.path.relpath(real, real_context)
    if relative == ".." or relative.startswith(".." + os.sep):
        try:
            with open(real, "rb") as handle:
                return "", handle.read()
        except OSError as error:
            raise ContextError(f"unable to open Dockerfile: {_lower(error)}") from None
    return relative.replace(os.sep, "/"), None


def _lower(error: OSError) -> str:
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def validate_context_dir(path: str) -> str:
    absolute = os.path.abspath(path)
    if not os.path.exists(absolute):
        raise ContextError(f'unable to prepare context: path "{path}" not found')
    if not os.path.isdir(absolute):
        raise ContextError(f"unable to prepare context: context must be a directory: {absolute}")
    return absolute


def _tar_info(path: str, name: str, info: os.stat_result) -> tarfile.TarInfo | None:
    entry = tarfile.TarInfo(name)
    entry.mode = stat.S_IMODE(info.st_mode)
    entry.mtime = int(info.st_mtime)
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    if stat.S_ISDIR(info.st_mode):
        entry.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(info.st_mode):
        entry.type = tarfile.SYMTYPE
        entry.linkname = os.readlink(path)
    elif stat.S_ISREG(info.st_mode):
        entry.type = tarfile.REGTYPE
        entry.size = info.st_size
    elif stat.S_ISFIFO(info.st_mode):
        entry.type = tarfile.FIFOTYPE
    else:
        # Sockets and device nodes have no place in a build context.
        return None
    return entry


def write_context(context_dir: str, out, dockerfile_name: str = DEFAULT_DOCKERFILE,
                  injected_dockerfile: bytes | None = None) -> str:
    """Write the context tar to the binary file `out`; return the Dockerfile's name in it."""
    patterns = dockerignore.read_file(os.path.join(context_dir, ".dockerignore"))
    if injected_dockerfile is None:
        patterns = dockerignore.trim_build_files(patterns, dockerfile_name)
    else:
        patterns = dockerignore.trim_build_files(patterns, ".dockerignore")
    try:
        entries = list(dockerignore.walk(context_dir, patterns))
    except dockerignore.PatternError as error:
        raise ContextError(f"error checking context: {error}") from None
    except OSError as error:
        raise ContextError(f"error checking context: {error}") from None
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for relative, info in entries:
            path = os.path.join(context_dir, relative)
            entry = _tar_info(path, relative, info)
            if entry is None:
                continue
            if entry.type == tarfile.REGTYPE:
                try:
                    with open(path, "rb") as handle:
                        archive.addfile(entry, handle)
                except OSError as error:
                    raise ContextError(
                        f"error checking context: can't open '{relative}': {_lower(error)}"
                    ) from None
            else:
                archive.addfile(entry)
        if injected_dockerfile is not None:
            dockerfile_name = ".dockerfile." + os.urandom(10).hex()
            entry = tarfile.TarInfo(dockerfile_name)
            entry.mode = 0o600
            entry.size = len(injected_dockerfile)
            entry.uname = entry.gname = ""
            archive.addfile(entry, io.BytesIO(injected_dockerfile))
    return dockerfile_name


def dockerfile_only_context(dockerfile: bytes, out) -> str:
    """A context holding just a Dockerfile (for `flotta build - < Dockerfile`)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        entry = tarfile.TarInfo(DEFAULT_DOCKERFILE)
        entry.mode = 0o600
        entry.size = len(dockerfile)
        entry.uname = entry.gname = ""
        archive.addfile(entry, io.BytesIO(dockerfile))
    return DEFAULT_DOCKERFILE


def is_archive(head: bytes) -> bool:
    """Does this look like a tar (possibly gzip/bzip2/xz compressed) rather than a Dockerfile?"""
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"
