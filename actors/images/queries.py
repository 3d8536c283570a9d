"""Read-only views of the store in the Docker Engine API's shapes (API 1.45).

`list_images` is `GET /images/json`, `inspect` is `GET /images/{name}/json`, `history`
is `GET /images/{name}/history`. Filters arrive either as Docker's wire form
(`{"label": {"a=b": true}}`) or as lists (`{"label": ["a=b"]}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from actors.images import reference as references
from actors.images.errors import InvalidImage
from actors.images.store import ImageStore, ImageUser, StoredImage

LIST_FILTERS = frozenset({"dangling", "label", "before", "since", "reference", "until"})
PRUNE_FILTERS = frozenset({"dangling", "label", "label!", "until"})
_DURATION_RE = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0,
                          "m": 60.0, "h": 3600.0}


def normalize_filters(filters: Mapping[str, Any] | None) -> dict[str, list[str]]:
    normalized: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        if isinstance(value, Mapping):
            normalized[key] = [k for k, enabled in value.items() if enabled]
        elif isinstance(value, str):
            normalized[key] = [value]
        else:
            normalized[key] = [str(v) for v in value]
    return normalized


def _check_keys(filters: Mapping[str, list[str]], allowed: frozenset[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidImage(f"invalid filter '{key}'")


def filter_bool(filters: Mapping[str, list[str]], key: str) -> bool:
    values = {v.lower() for v in filters[key]}
    if not values <= {"true", "false", "1", "0"} or len(values) != 1:
        raise InvalidImage(f"invalid filter '{key}={','.join(filters[key])}'")
    return values <= {"true", "1"}


def created_seconds(text: str | None) -> float:
    """Unix seconds of an RFC 3339 timestamp (0 when absent or unreadable)."""
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def parse_until(value: str, now: float) -> float:
    """Docker's `until` values: a Go duration before now, a unix time, or an RFC 3339 date."""
    if _DURATION_RE.fullmatch(value):
        seconds = sum(float(number) * _DURATION_UNIT_SECONDS[unit]
                      for number, unit in _DURATION_PART_RE.findall(value))
        return now - seconds
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidImage(f"invalid filter 'until={value}'") from None
    return moment.timestamp()


def path_match(pattern: str, text: str) -> bool:
    """Go's path.Match: `*` and `?` never match "/"; `[...]` classes; `\\` escapes."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "*":
            parts.append("[^/]*")
        elif character == "?":
            parts.append("[^/]")
        elif character == "\\" and index + 1 < len(pattern):
            index += 1
            parts.append(re.escape(pattern[index]))
        elif character == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                raise InvalidImage(f"invalid reference filter pattern {pattern!r}")
            body = pattern[index + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            escaped = "".join("\\" + c if c in "\\[]^" else c for c in body)
            parts.append(f"[{'^' if negate else ''}{escaped}]")
            index = end
        else:
            parts.append(re.escape(character))
        index += 1
    return re.fullmatch("".join(parts), text) is not None


def _labels(image: StoredImage) -> dict[str, str]:
    return dict((image.config.get("config") or {}).get("Labels") or {})


def _label_matches(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, equals, value = item.partition("=")
        if key not in labels or (equals and labels[key] != value):
            return False
    return True


def matches_prune_filters(image: StoredImage, filters: Mapping[str, list[str]], now: float) -> bool:
    _check_keys(filters, PRUNE_FILTERS)
    created = created_seconds(image.config.get("created"))
    for value in filters.get("until", []):
        if created >= parse_until(value, now):
            return False
    labels = _labels(image)
    if "label" in filters and not _label_matches(labels, filters["label"]):
        return False
    return not ("label!" in filters and any(_label_matches(labels, [v]) for v in filters["label!"]))


def _reference_matches(ref: references.Reference, patterns: list[str]) -> bool:
    return any(path_match(p, ref.familiar()) or path_match(p, ref.familiar_name) for p in patterns)


def list_images(store: ImageStore, all: bool = False, filters: Mapping[str, Any] | None = None,
                in_use: Iterable[ImageUser] | None = None,
                shared_size: bool = False) -> list[dict[str, Any]]:
    """`GET /images/json`: ImageSummary dicts, newest first."""
    wanted = normalize_filters(filters)
    _check_keys(wanted, LIST_FILTERS)
    dangling_filter = filter_bool(wanted, "dangling") if "dangling" in wanted else None
    users = list(in_use) if in_use is not None else None
    with store.locked():
        now = store._clock()
        before = [created_seconds(store.image(v).config.get("created")) for v in wanted.get("before", [])]
        since = [created_seconds(store.image(v).config.get("created")) for v in wanted.get("since", [])]
        images = store.images()
        chain_users: dict[str, int] = {}
        for image in images:
            for chain in image.chain_ids:
                chain_users[chain] = chain_users.get(chain, 0) + 1
        summaries = []
        for image in images:
            created = created_seconds(image.config.get("created"))
            if any(created >= limit for limit in before) or any(created <= limit for limit in since):
                continue
            if any(created >= parse_until(v, now) for v in wanted.get("until", [])):
                continue
            if "label" in wanted and not _label_matches(_labels(image), wanted["label"]):
                continue
            tags: list[str] = []
            digests: list[str] = []
            for ref in store.references_of(image.id):
                if "reference" in wanted and not _reference_matches(ref, wanted["reference"]):
                    continue
                (digests if ref.digest is not None else tags).append(ref.familiar())
            if not tags and not digests:
                if not all and store.children(image.id):
                    continue
                if dangling_filter is False or "reference" in wanted:
                    continue
            elif dangling_filter:
                continue
            size = store.image_size(image)
            shared = -1
            if shared_size:
                shared = sum(int(store.layer_info(c)["size"]) for c in image.chain_ids
                             if chain_users[c] > 1)
            summaries.append({
                "Containers": -1 if users is None else sum(1 for u in users if u.image_id == image.id),
                "Created": int(created),
                "Id": image.id,
                "Labels": _labels(image),
                "ParentId": image.parent or "",
                "RepoDigests": digests,
                "RepoTags": tags,
                "SharedSize": shared,
                "Size": size,
            })
    summaries.sort(key=lambda s: (s["Created"], s["Id"]), reverse=True)
    return summaries


_CONFIG_FIELDS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
    ("AttachStdout", False), ("AttachStderr", False), ("ExposedPorts", ...), ("Tty", False),
    ("OpenStdin", False), ("StdinOnce", False), ("Env", None), ("Cmd", None),
    ("Healthcheck", ...), ("ArgsEscaped", ...), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None), ("Labels", None),
    ("StopSignal", ...), ("Shell", ...),
)


def container_config(image_config: Mapping[str, Any]) -> dict[str, Any]:
    """The image's `config` in the shape of the API's container Config (`...` = omitempty)."""
    source = image_config.get("config") or {}
    shaped: dict[str, Any] = {}
    for key, default in _CONFIG_FIELDS:
        value = source.get(key)
        if value in (None, "", [], {}) or value is False:
            if default is ...:
                continue
            value = default
        shaped[key] = value
    return shaped


def inspect(store: ImageStore, text: str) -> dict[str, Any]:
    """`GET /images/{name}/json`."""
    with store.locked():
        image = store.image(text)
        config = image.config
        lower = store.lower_dirs(image.id)
        data = {"UpperDir": str(lower[0]), "MergedDir": str(lower[0].parent / "merged"),
                "WorkDir": str(lower[0].parent / "work")} if lower else {}
        if len(lower) > 1:
            data = {"LowerDir": ":".join(str(p) for p in lower[1:]), **data}
        result: dict[str, Any] = {
            "Id": image.id,
            "RepoTags": store.repo_tags(image.id),
            "RepoDigests": store.repo_digests(image.id),
            "Parent": image.parent or "",
            "Comment": _comment(config),
            "Created": config.get("created") or "0001-01-01T00:00:00Z",
            "DockerVersion": config.get("docker_version", ""),
            "Author": config.get("author", ""),
            "Config": container_config(config),
            "Architecture": config.get("architecture", ""),
        }
        if config.get("variant"):
            result["Variant"] = config["variant"]
        result.update({
            "Os": config.get("os", ""),
            "Size": store.image_size(image),
            "GraphDriver": {"Data": data, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
            "Metadata": {"LastTagTime": store.last_tag_time(image.id)},
        })
        if config.get("os.version"):
            result["OsVersion"] = config["os.version"]
        return result


def _comment(config: Mapping[str, Any]) -> str:
    history = config.get("history") or []
    if history and isinstance(history[-1], dict):
        return str(history[-1].get("comment", ""))
    return str(config.get("comment", ""))


def history(store: ImageStore, text: str) -> list[dict[str, Any]]:
    """`GET /images/{name}/history`: newest first, `<missing>` ids below known images."""
    with store.locked():
        image = store.image(text)
        entries_source = image.config.get("history") or [
            {"created": image.config.get("created"), "created_by": ""} for _ in image.chain_ids
        ]
        entries = []
        layer_index = 0
        for item in entries_source:
            size = 0
            if not item.get("empty_layer"):
                if layer_index < len(image.chain_ids):
                    size = int(store.layer_info(image.chain_ids[layer_index])["size"])
                layer_index += 1
            entries.append({
                "Id": "<missing>",
                "Created": int(created_seconds(item.get("created"))),
                "CreatedBy": item.get("created_by", ""),
                "Tags": None,
                "Size": size,
                "Comment": item.get("comment", ""),
            })
        entries.reverse()
        current: StoredImage | None = image
        while current is not None:
            own_length = len(current.config.get("history") or []) or len(current.chain_ids)
            index = len(entries) - own_length
            if 0 <= index < len(entries):
                entries[index]["Id"] = current.id
                entries[index]["Tags"] = store.repo_tags(current.id) or None
            current = store.image(current.parent) if current.parent and store.exists(current.parent) else None
        return entries
