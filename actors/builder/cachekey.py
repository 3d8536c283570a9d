"""Build cache keys.

A step's key is a sha256 over:
- the parent image id (so a changed step changes every key after it: the executor keys
  each step with the id of the image the previous step produced, cached or new);
- the step's `created_by` string (the instruction after substitution, as the history
  shows it; for COPY/ADD it embeds the sources' checksum);
- the image config after the step and the image author (what Docker's classic cache
  compares);
- the build args in effect where they can change the result (for RUN, the ones the
  classic builder puts in front of the command: `|1 A=b ...`);
- for COPY/ADD, the checksum of the copied content.

The content checksum of a source covers, for every file, directory and symlink it
copies: the path relative to the source, the type, the mode (after --chmod), the owner
(after --chown, or as preserved), the bytes of files and the target of symlinks. It does
not cover modification times, and entries are sorted first, so touching a file or
listing a directory in another order never changes it; changing one byte does.
Prefixes follow Docker's `file:` / `dir:` / `multi:` convention.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from . import digests
from .apply import StepKind, copy_created_by
from .context import ResolvedSource, SourceEntry
from .instructions import Add, Copy
from .plan import Step

_CHUNK_BYTES = 1024 * 1024


def file_digest(path: str) -> str:
    """The file's sha256 (hex): remembered from the context's extraction when it is still
    that file (digests.py), else read and hashed."""
    known = digests.recall(path)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_record(
    entry: SourceEntry,
    content_digest: str,
    owner: tuple[int, int] | None,
    chmod: int | None,
) -> list[object]:
    uid, gid = owner if owner is not None else (entry.uid, entry.gid)
    mode = entry.mode
    if chmod is not None and entry.kind != "symlink":
        mode = chmod
    return [entry.relative_path, entry.kind, mode, uid, gid, entry.link_target, content_digest]


def source_checksum(
    source: ResolvedSource,
    owner: tuple[int, int] | None = None,
    chmod: int | None = None,
) -> str:
    """`file:<hex>` / `dir:<hex>` for one resolved source.

    owner is the (uid, gid) the copy gives every entry (--chown, or 0:0 for the build
    context); None keeps each entry's own (COPY --from without --chown).
    """
    records = []
    for entry in sorted(source.entries, key=lambda item: item.relative_path):
        content = ""
        if entry.kind == "file":
            if source.data is not None:
                content = hashlib.sha256(source.data).hexdigest()
            else:
                content = file_digest(entry.host_path)
        records.append(_entry_record(entry, content, owner, chmod))
    payload = {"kind": source.kind, "archive": source.is_archive, "entries": records}
    digest = hashlib.sha256(_canonical(payload)).hexdigest()
    prefix = "dir" if source.kind == "dir" else "file"
    return f"{prefix}:{digest}"


def sources_checksum(
    sources: Iterable[ResolvedSource],
    owner: tuple[int, int] | None = None,
    chmod: int | None = None,
) -> str:
    """The checksum of all sources of one COPY/ADD (Docker's rule: one source keeps its own)."""
    checksums = [source_checksum(source, owner, chmod) for source in sources]
    if len(checksums) == 1:
        return checksums[0]
    return "multi:" + hashlib.sha256(",".join(checksums).encode()).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogateescape"
    )


def step_created_by(step: Step, source_checksum_text: str | None = None) -> str:
    """The history string of a step; COPY/ADD need their sources' checksum."""
    if step.kind in (StepKind.COPY, StepKind.ADD):
        if source_checksum_text is None:
            raise ValueError(f"{step.text}: a COPY/ADD step needs the checksum of its sources")
        assert isinstance(step.instruction, Copy | Add)
        return copy_created_by(step.state, step.instruction, source_checksum_text)
    assert step.created_by is not None
    return step.created_by


def cache_key(
    parent_image_id: str | None,
    created_by: str,
    config: dict[str, object],
    build_args: Iterable[str] = (),
    source_checksum_text: str | None = None,
    author: str = "",
) -> str:
    """sha256 key from its parts (see the module docstring)."""
    payload = {
        "version": 1,
        "parent": parent_image_id or "",
        "created_by": created_by,
        "config": config,
        "author": author,
        "build_args": sorted(build_args),
        "sources": source_checksum_text or "",
    }
    return "sha256:" + hashlib.sha256(_canonical(payload)).hexdigest()


def step_cache_key(
    parent_image_id: str | None, step: Step, source_checksum_text: str | None = None
) -> str:
    """The cache key of one evaluated step."""
    return cache_key(
        parent_image_id,
        step_created_by(step, source_checksum_text),
        step.state.config.to_docker(),
        step.cache_args,
        source_checksum_text,
        step.state.author,
    )
