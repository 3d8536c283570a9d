"""The build context, and what a COPY or ADD reads from it (or from another stage).

A `BuildContext` is a directory: the user's own (`from_directory`), or a temporary one
extracted safely from the tar stream a client sends with `POST /build`
(`from_tar_stream`: plain, gzip, bzip2 or xz; a body that is not a tar is taken as a
bare Dockerfile). `.dockerignore` applies in both cases: an excluded path cannot be
read by COPY/ADD, exactly as if the client had left it out.

`resolve_sources(tree, spec)` turns a COPY/ADD's sources into `ResolvedSource`s, with
Docker's rules:
- paths are relative to the context root; a leading `/` or `./` is dropped; a path that
  climbs out (`../x`) is refused; symlinks are followed but never leave the root;
- a source with `*`, `?` or `[` is a pattern (Go's filepath.Match, `*` stops at `/`)
  matched against every path in the context; each match is one source;
- a directory source copies its contents, not the directory itself;
- more than one source requires a destination ending in `/`;
- ADD recognises local tar archives by content (extracted at the destination, their own
  ownership kept) and fetches http(s) URLs through the `fetch` function it is given.

Error messages are Docker's: `COPY failed: file not found in build context or excluded
by .dockerignore: stat missing: file does not exist`.
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

import attrs

from actors.client.dockerignore import PatternError, PatternMatcher, read_patterns

from . import digests
from .archive import (
    TAR_BLOCK_BYTES,
    PeekableReader,
    ReadAhead,
    decompressed,
    extract_tar,
    is_archive_file,
    looks_like_tar,
)
from .errors import ContextError
from .instructions import InlineSource
from .pathmatch import BadPattern, contains_wildcards
from .pathmatch import match as go_match
from .paths import clean_relative, escapes_root, relative_to_root, resolve_in_scope
from .remote import FetchedFile, verify_checksum

if TYPE_CHECKING:
    from .plan import CopySpec

DEFAULT_DOCKERFILE = "Dockerfile"
context_bytes_max = 64 * 1024 * 1024 * 1024
context_entries_max = 4 * 1024 * 1024


@attrs.frozen
class SourceEntry:
    """One file, directory or symlink a source will put into the image."""

    relative_path: str  # inside the source ("." is a directory source itself)
    kind: str  # "file", "dir", "symlink"
    mode: int  # permission bits (0o7777)
    uid: int
    gid: int
    size: int
    link_target: str
    host_path: str


@attrs.frozen
class ResolvedSource:
    origin: str  # the context path, heredoc name or URL it came from
    kind: str  # "file", "dir", "inline", "url"
    host_path: str | None
    entries: tuple[SourceEntry, ...]
    data: bytes | None = None  # inline (heredoc) content
    is_archive: bool = False  # ADD will extract it
    # The name the file gets when the destination is a directory.
    name: str = ""


Fetcher = Callable[[str], FetchedFile]


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _file_entry(name: str, host_path: str, info: os.stat_result) -> SourceEntry:
    if stat.S_ISLNK(info.st_mode):
        return SourceEntry(
            relative_path=name, kind="symlink", mode=stat.S_IMODE(info.st_mode),
            uid=info.st_uid, gid=info.st_gid, size=0,
            link_target=os.readlink(host_path), host_path=host_path,
        )
    kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
    return SourceEntry(
        relative_path=name, kind=kind, mode=stat.S_IMODE(info.st_mode), uid=info.st_uid,
        gid=info.st_gid, size=info.st_size if kind == "file" else 0, link_target="",
        host_path=host_path,
    )


class SourceTree:
    """A directory COPY/ADD read from: the build context, or another stage's filesystem."""

    def __init__(self, root: str, matcher: PatternMatcher | None = None, *, is_context: bool = True):
        self.root = os.path.realpath(root)
        self.matcher = matcher or PatternMatcher([])
        self.is_context = is_context

    def excluded(self, relative: str) -> bool:
        # The context root itself is never excluded (Docker: "don't exclude everything").
        if relative in ("", "."):
            return False
        return self.matcher.matches(relative)

    def not_found(self, path: str) -> ContextError:
        message = f"stat {path}: file does not exist"
        if self.is_context:
            message = f"file not found in build context or excluded by .dockerignore: {message}"
        return ContextError(message)

    def lookup(self, path: str) -> tuple[str, os.stat_result]:
        """Host path and stat (symlinks followed in scope) of a cleaned relative path."""
        host = resolve_in_scope(self.root, path)
        try:
            info = os.stat(host)
        except (FileNotFoundError, NotADirectoryError):
            raise self.not_found(path) from None
        excluded = self.excluded(path) or self.excluded(relative_to_root(self.root, host))
        # An excluded directory still exists when a `!` pattern keeps something in it
        # (the client sends those files, and so their directory).
        kept_inside = stat.S_ISDIR(info.st_mode) and self.matcher.has_exclusions
        if excluded and not (kept_inside and self.walk(host)):
            raise self.not_found(path)
        return host, info

    def walk(self, directory_host: str) -> list[SourceEntry]:
        """Entries below a directory (sorted, symlinks not followed, excluded ones left out)."""
        entries: list[SourceEntry] = []
        self._walk(directory_host, "", entries)
        return entries

    def _walk(self, host: str, prefix: str, entries: list[SourceEntry]) -> bool:
        """Append the kept entries below host; True when something was kept."""
        kept_any = False
        with os.scandir(host) as listing:
            names = sorted(entry.name for entry in listing)
        for name in names:
            child_host = os.path.join(host, name)
            relative = f"{prefix}/{name}" if prefix else name
            info = os.lstat(child_host)
            excluded = self.excluded(relative_to_root(self.root, child_host))
            if stat.S_ISDIR(info.st_mode):
                if excluded and not self.matcher.has_exclusions:
                    continue
                position = len(entries)
                entries.append(_file_entry(relative, child_host, info))
                below = self._walk(child_host, relative, entries)
                if excluded and not below:
                    del entries[position]
                    continue
                kept_any = True
            elif excluded:
                continue
            elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                entries.append(_file_entry(relative, child_host, info))
                kept_any = True
        return kept_any

    def all_paths(self) -> list[str]:
        """Every non-excluded path in the tree, relative, sorted (for wildcard matching)."""
        return [entry.relative_path for entry in self.walk(self.root)]


def _resolve_path(tree: SourceTree, command: str, source: str, wildcards: bool, unpack: bool) -> list[ResolvedSource]:
    path = source[1:] if source.startswith("/") else source
    path = path[2:] if path.startswith("./") else path
    if escapes_root(path):
        raise ContextError(f"{command} failed: forbidden path outside the build context: {source}")
    if wildcards and contains_wildcards(path):
        matches: list[ResolvedSource] = []
        for candidate in tree.all_paths():
            try:
                hit = go_match(path, candidate)
            except BadPattern:
                hit = False
            if hit:
                matches.extend(_resolve_path(tree, command, candidate, False, unpack))
        return matches
    cleaned = clean_relative(path)
    try:
        host, info = tree.lookup(cleaned)
    except ContextError as error:
        raise ContextError(f"{command} failed: {error.message}") from None
    name = os.path.basename(cleaned) if cleaned != "." else ""
    if stat.S_ISDIR(info.st_mode):
        root_entry = _file_entry(".", host, os.stat(host))
        entries = (root_entry, *tree.walk(host))
        return [ResolvedSource(origin=cleaned, kind="dir", host_path=host, entries=entries, name=name)]
    if not stat.S_ISREG(info.st_mode):
        raise ContextError(f"{command} failed: {cleaned} is not a regular file or directory")
    entry = _file_entry(name, host, info)
    archive = unpack and is_archive_file(host)
    return [
        ResolvedSource(
            origin=cleaned, kind="file", host_path=host, entries=(entry,),
            is_archive=archive, name=name,
        )
    ]


def _resolve_url(
    command: str,
    url: str,
    destination: str,
    fetch: Fetcher | None,
    unpack: bool,
    checksum: str | None,
) -> ResolvedSource:
    if command != "ADD":
        raise ContextError(f"{command} failed: source can't be a URL for COPY")
    if fetch is None:
        raise ContextError(
            f"ADD failed: cannot download {url}: this build has no network access for ADD "
            "(download the file into the build context and COPY it instead)"
        )
    fetched = fetch(url)
    if checksum:
        verify_checksum(fetched.host_path, checksum)
    name = fetched.filename
    if name == "":
        if destination.endswith("/"):
            raise ContextError(f"ADD failed: cannot determine filename for source {url}")
        name = "__unnamed__"
    info = os.stat(fetched.host_path)
    entry = attrs.evolve(_file_entry(name, fetched.host_path, info), mode=0o600, uid=0, gid=0)
    archive = unpack and is_archive_file(fetched.host_path)
    return ResolvedSource(
        origin=url, kind="url", host_path=fetched.host_path, entries=(entry,),
        is_archive=archive, name=name,
    )


def _resolve_inline(source: InlineSource) -> ResolvedSource:
    data = source.data.encode("utf-8", "surrogateescape")
    entry = SourceEntry(
        relative_path=source.name, kind="file", mode=0o644, uid=0, gid=0, size=len(data),
        link_target="", host_path="",
    )
    return ResolvedSource(
        origin=source.name, kind="inline", host_path=None, entries=(entry,), data=data,
        name=source.name,
    )


def _apply_excludes(source: ResolvedSource, excluded: PatternMatcher) -> ResolvedSource | None:
    """COPY/ADD --exclude: patterns apply to paths inside a directory source, and to the
    context path or the name of a file source."""
    if not excluded.patterns:
        return source
    if source.kind != "dir":
        if excluded.matches(source.origin) or excluded.matches(source.name):
            return None
        return source
    entries = tuple(
        entry for entry in source.entries
        if entry.relative_path == "." or not excluded.matches(entry.relative_path)
    )
    return attrs.evolve(source, entries=entries)


def resolve_sources(
    tree: SourceTree | None,
    command: str,
    sources: tuple[str, ...],
    destination: str,
    *,
    inline_sources: tuple[InlineSource, ...] = (),
    excludes: tuple[str, ...] = (),
    unpack_local: bool = False,
    unpack_remote: bool = False,
    checksum: str | None = None,
    fetch: Fetcher | None = None,
) -> list[ResolvedSource]:
    """The sources of one COPY/ADD, resolved (see the module docstring)."""
    if checksum and not all(is_url(source) for source in sources):
        raise ContextError(f"{command} failed: checksum can't be specified for non-HTTP(S) sources")
    try:
        excluded = PatternMatcher(list(excludes))
    except PatternError as error:
        raise ContextError(f"{command} failed: invalid --exclude pattern: {error}") from None
    resolved: list[ResolvedSource] = []
    for source in sources:
        if is_url(source):
            resolved.append(
                _resolve_url(command, source, destination, fetch, unpack_remote, checksum)
            )
            continue
        if tree is None:
            raise ContextError(f"{command} failed: missing build context")
        for found in _resolve_path(tree, command, source, True, unpack_local):
            kept = _apply_excludes(found, excluded)
            if kept is not None:
                resolved.append(kept)
    resolved.extend(_resolve_inline(source) for source in inline_sources)
    if not resolved:
        raise ContextError(f"{command} failed: no source files were specified")
    if len(resolved) > 1 and not destination.endswith("/"):
        raise ContextError(
            f"When using {command} with more than one source file, the destination must be "
            "a directory and end with a /"
        )
    return resolved


class BuildContext:
    """A build context directory and its .dockerignore; close() removes a temporary one."""

    def __init__(self, root: str, *, temporary: bool = False) -> None:
        self.root = os.path.realpath(root)
        self.temporary = temporary
        ignore_path = os.path.join(self.root, ".dockerignore")
        data = None
        if os.path.isfile(ignore_path) and not os.path.islink(ignore_path):
            with open(ignore_path, "rb") as handle:
                data = handle.read()
        try:
            text = data.decode("utf-8", "replace") if data is not None else ""
            self.ignore_patterns = read_patterns(text)
            self.matcher = PatternMatcher(self.ignore_patterns)
        except PatternError as error:
            raise ContextError(f"error reading .dockerignore: {error}") from None

    @classmethod
    def from_directory(cls, directory: str) -> BuildContext:
        if not os.path.isdir(directory):
            raise ContextError(f"build context {directory} is not a directory")
        return cls(directory)

    @classmethod
    def from_tar_stream(
        cls,
        stream: BinaryIO,
        *,
        dockerfile_name: str = DEFAULT_DOCKERFILE,
        temporary_parent: str | None = None,
        bytes_max: int = context_bytes_max,
        entries_max: int = context_entries_max,
    ) -> BuildContext:
        """Extract a context sent by a client into a new temporary directory."""
        root = tempfile.mkdtemp(prefix="flotta-build-context-", dir=temporary_parent)
        # The body is received by a thread of its own while this one writes and hashes
        # what came before (see ReadAhead); closed (joined) before returning.
        ahead = ReadAhead(stream)
        try:
            reader = decompressed(ahead)
            head = reader.peek(TAR_BLOCK_BYTES)
            if not head:
                pass  # an empty body is an empty context
            elif head != bytes(len(head)) and not looks_like_tar(head):
                cls._write_bare_dockerfile(reader, root, dockerfile_name, bytes_max)
            else:
                extract_tar(reader, root, bytes_max=bytes_max, entries_max=entries_max,  # type: ignore[arg-type]
                            remember_digests=True)
            return cls(root, temporary=True)
        except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as error:
            digests.forget_under(os.path.realpath(root))
            shutil.rmtree(root, ignore_errors=True)
            raise ContextError(f"the build context is not a valid archive: {error}") from None
        except BaseException:
            digests.forget_under(os.path.realpath(root))
            shutil.rmtree(root, ignore_errors=True)
            raise
        finally:
            ahead.close()

    @staticmethod
    def _write_bare_dockerfile(reader: PeekableReader, root: str, name: str, bytes_max: int) -> None:
        relative = clean_relative(name)
        if escapes_root(relative) or relative == ".":
            relative = DEFAULT_DOCKERFILE
        target = os.path.join(root, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        written = 0
        with open(target, "wb") as handle:
            while chunk := reader.read(1024 * 1024):
                written += len(chunk)
                if written > bytes_max:
                    raise ContextError(f"build context exceeds {bytes_max} bytes")
                handle.write(chunk)

    def tree(self) -> SourceTree:
        return SourceTree(self.root, self.matcher, is_context=True)

    def read_dockerfile(self, name: str = DEFAULT_DOCKERFILE) -> bytes:
        """The Dockerfile's bytes (`dockerfile` falls back to `Dockerfile`'s lowercase name)."""
        relative = clean_relative(name)
        if escapes_root(relative):
            raise ContextError(f"forbidden path outside the build context: {name}")
        host = resolve_in_scope(self.root, relative)
        if not os.path.isfile(host):
            if name == DEFAULT_DOCKERFILE:
                lowered = resolve_in_scope(self.root, name.lower())
                if os.path.isfile(lowered):
                    host = lowered
                else:
                    raise ContextError(f"Cannot locate specified Dockerfile: {name}")
            else:
                raise ContextError(f"Cannot locate specified Dockerfile: {name}")
        with open(host, "rb") as handle:
            data = handle.read()
        if not data:
            raise ContextError(f"the Dockerfile ({name}) cannot be empty")
        return data

    def close(self) -> None:
        if self.temporary:
            digests.forget_under(self.root)
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> BuildContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def resolve_copy_spec(
    tree: SourceTree | None, spec: CopySpec, fetch: Fetcher | None = None
) -> list[ResolvedSource]:
    """resolve_sources for an evaluated COPY/ADD step (plan.CopySpec)."""
    return resolve_sources(
        tree,
        spec.command,
        spec.sources,
        spec.destination,
        inline_sources=spec.inline_sources,
        excludes=spec.excludes,
        unpack_local=spec.unpack_local,
        unpack_remote=spec.unpack_remote,
        checksum=spec.checksum,
        fetch=fetch,
    )
