"""The build cache: which image a build step produced, by the step's cache key.

A key (cachekey.step_cache_key) covers the parent image id, the step's `created_by`
(the instruction after substitution; for COPY/ADD it embeds the checksum of what is
copied), the image config after the step, and for RUN the build args in effect. Equal
keys mean the step would make the same image, so the image recorded for it is reused
(` ---> Using cache`). Because each key contains the parent's id, a step that changed
changes every key after it, and nothing before it.

The index is a JSON file `{"version": 1, "entries": {key: image id}}` under the
builder's data directory, replaced atomically (runtime.disk.atomic_write) after each
build: a crash loses at most the entries of the builds in flight, which only costs cache
misses. It is verified against the image store: `retain_only(existing ids)` drops
entries whose image was deleted (the actor runs it when it starts), and a lookup whose
image has gone since is dropped by the caller (`forget`). A damaged file is set aside
and the cache starts empty. The index is bounded (`entries_max`); the oldest entries
go first.

`CacheFromSources` is `--cache-from`: images (typically pulled or loaded, without their
intermediate images) whose history is checked as Docker's classic builder does: a step
hits when the candidate's history and layers start with the parent's and its next
history entry was made by the same `created_by`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from runtime.disk import atomic_write

log = logging.getLogger("flotta.builder")

INDEX_VERSION = 1
entries_max = 200_000


class BuildCache:
    """The key -> image id index (see the module docstring). Not thread-safe: the builder
    actor owns it and touches it from its Trio thread only."""

    def __init__(self, path: Path, *, limit: int = entries_max) -> None:
        self.path = Path(path)
        self.limit = limit
        self._entries: dict[str, str] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_bytes())
            entries = data["entries"] if data.get("version") == INDEX_VERSION else None
            if not isinstance(entries, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in entries.items()
            ):
                raise ValueError("entries is not a map of strings")
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            damaged = self.path.with_name(self.path.name + ".damaged")
            log.warning("build cache index %s is unreadable (%s): starting empty; kept as %s",
                        self.path, error, damaged)
            os.replace(self.path, damaged)
            return
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str) -> str | None:
        return self._entries.get(key)

    def record(self, key: str, image_id: str) -> None:
        if self._entries.get(key) == image_id:
            return
        self._entries.pop(key, None)
        self._entries[key] = image_id
        while len(self._entries) > self.limit:
            del self._entries[next(iter(self._entries))]
        self._dirty = True

    def forget(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self._dirty = True

    def retain_only(self, existing_image_ids: Iterable[str]) -> int:
        """Drop entries whose image is not among `existing_image_ids`; how many went."""
        existing = set(existing_image_ids)
        stale = [key for key, image_id in self._entries.items() if image_id not in existing]
        for key in stale:
            del self._entries[key]
        if stale:
            self._dirty = True
        return len(stale)

    def clear(self) -> int:
        count = len(self._entries)
        if count:
            self._entries.clear()
            self._dirty = True
        return count

    def save(self) -> None:
        """Write the index if it changed (atomically; blocking: call from a thread)."""
        if not self._dirty:
            return
        payload = {"version": INDEX_VERSION, "entries": self._entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(payload, separators=(",", ":")).encode())
        self._dirty = False

    def snapshot(self) -> dict[str, str]:
        return dict(self._entries)


@attrs.frozen
class CacheCandidate:
    """A --cache-from image: its id and full config (history, rootfs)."""

    image_id: str
    config: Mapping[str, Any]


def _history(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    history = config.get("history") or []
    return [entry for entry in history if isinstance(entry, Mapping)]


def _diff_ids(config: Mapping[str, Any]) -> list[str]:
    rootfs = config.get("rootfs") or {}
    return list(rootfs.get("diff_ids") or []) if isinstance(rootfs, Mapping) else []


def _same_entry(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    return (
        left.get("created_by", "") == right.get("created_by", "")
        and bool(left.get("empty_layer")) == bool(right.get("empty_layer"))
    )


@attrs.frozen
class CacheFromMatch:
    candidate: CacheCandidate
    # True when the step is the candidate's last: the candidate itself is the result.
    is_last: bool
    # The prefix of the candidate that the step's result consists of.
    history: tuple[Mapping[str, Any], ...]
    diff_ids: tuple[str, ...]


def match_cache_from(
    candidates: Iterable[CacheCandidate],
    parent_config: Mapping[str, Any] | None,
    created_by: str,
) -> CacheFromMatch | None:
    """The first candidate whose history continues the parent's with `created_by`."""
    parent_history = _history(parent_config) if parent_config is not None else []
    parent_layers = _diff_ids(parent_config) if parent_config is not None else []
    for candidate in candidates:
        history = _history(candidate.config)
        layers = _diff_ids(candidate.config)
        position = len(parent_history)
        if position >= len(history):
            continue
        if not all(_same_entry(a, b) for a, b in zip(parent_history, history, strict=False)):
            continue
        if layers[: len(parent_layers)] != parent_layers:
            continue
        entry = history[position]
        if entry.get("created_by", "") != created_by:
            continue
        layer_count = len(parent_layers) + (0 if entry.get("empty_layer") else 1)
        if layer_count > len(layers):
            continue
        return CacheFromMatch(
            candidate=candidate,
            is_last=position == len(history) - 1,
            history=tuple(history[: position + 1]),
            diff_ids=tuple(layers[:layer_count]),
        )
    return None
