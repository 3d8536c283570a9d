"""`POST /build` query parameters to a checked `BuildRequest` (pure; no I/O).

What the classic builder's clients send (docker CLI with DOCKER_BUILDKIT=0, docker-py,
`flotta build`) is accepted, including the empty and zero values older clients send for
parameters they were not given (`cachefrom=[]`, `buildargs={}`, `ulimits=null`,
`networkmode=default`, `memory=0`). Booleans read Docker's way: `1/true/True` are true;
``, `0`, `no`, `false`, `none` are false. A value that cannot be used raises
`BuildRequestError` naming the parameter, before anything is built.

Accepted and deliberately without effect: `cgroupparent` (RUN containers live under the
builder's own cgroup parent), `isolation` (Linux has one), `session`, `buildid`,
`outputs`, `cpusetmems`. Refused with a clear error: `version=2` and `remote` (flotta
serves neither BuildKit nor remote contexts), `squash` (experimental in Docker), network
modes other than default/bridge/none/host.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from typing import Any, Protocol

from actors.images import reference as references

from .buildargs import Platform
from .errors import BuildError
from .messages import BuildRequest, BuildUlimit

_FALSE = frozenset({"", "0", "no", "false", "none"})
# "default": the default bridge when the daemon has its network component, else none.
_NETWORK_MODES = {"": "default", "default": "default", "bridge": "default", "none": "none", "host": "host"}


class BuildRequestError(ValueError):
    """A /build parameter that cannot be used; the message names it."""


class Query(Protocol):
    def get(self, key: str, default: str | None = None) -> str | None: ...

    def get_all(self, key: str) -> list[str]: ...


def _bool(query: Query, key: str, default: bool = False) -> bool:
    value = query.get(key)
    if value is None:
        return default
    return value.strip().lower() not in _FALSE


def _int(query: Query, key: str) -> int:
    value = (query.get(key) or "").strip()
    if value == "":
        return 0
    try:
        return int(value)
    except ValueError:
        raise BuildRequestError(f"invalid value for {key}: {value!r} is not an integer") from None


def _json(query: Query, key: str) -> Any:
    value = query.get(key)
    if value is None or value.strip() in ("", "null"):
        return None
    try:
        return json.loads(value)
    except ValueError as error:
        raise BuildRequestError(f"invalid JSON in {key}: {error}") from None


def _string_map(query: Query, key: str, allow_null_values: bool) -> dict[str, Any]:
    value = _json(query, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BuildRequestError(f"invalid {key}: expected a JSON object of strings")
    for name, item in value.items():
        if item is None and allow_null_values:
            continue
        if not isinstance(item, str):
            raise BuildRequestError(f"invalid {key}: the value of {name!r} must be a string")
    return dict(value)


def _tags(query: Query) -> tuple[str, ...]:
    tags: list[str] = []
    for text in query.get_all("t"):
        if text == "":
            continue
        try:
            parsed = references.parse(text)
        except references.InvalidReference as error:
            raise BuildRequestError(f"invalid tag {text!r}: {error}") from None
        if parsed.digest is not None:
            raise BuildRequestError(f"invalid tag {text!r}: build tag cannot be a digest")
        normalized = str(parsed.with_default_tag())
        if normalized not in tags:
            tags.append(normalized)
    return tuple(tags)


def _cache_from(query: Query) -> tuple[str, ...]:
    value = _json(query, "cachefrom")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BuildRequestError("invalid cachefrom: expected a JSON array of image names")
    return tuple(item for item in value if item)


def _ulimits(query: Query) -> tuple[BuildUlimit, ...]:
    value = _json(query, "ulimits")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BuildRequestError("invalid ulimits: expected a JSON array")
    result = []
    for item in value:
        if not isinstance(item, dict):
            raise BuildRequestError("invalid ulimits: each entry must be an object")
        name, soft, hard = item.get("Name"), item.get("Soft"), item.get("Hard")
        if not isinstance(name, str) or not name:
            raise BuildRequestError("invalid ulimits: an entry has no Name")
        if not isinstance(soft, int) or not isinstance(hard, int):
            raise BuildRequestError(f"invalid ulimits: {name}: Soft and Hard must be integers")
        result.append(BuildUlimit(name, soft, hard))
    return tuple(result)


def _extra_hosts(query: Query) -> tuple[str, ...]:
    hosts = []
    for value in query.get_all("extrahosts"):
        for entry in value.split(","):
            entry = entry.strip()
            if not entry:
                continue
            name, separator, address = entry.partition(":")
            if not separator:
                name, separator, address = entry.partition("=")
            if not separator or not name:
                raise BuildRequestError(f"invalid extrahosts entry {entry!r}: expected host:ip")
            try:
                ipaddress.ip_address(address.strip("[]"))
            except ValueError:
                raise BuildRequestError(
                    f"invalid extrahosts entry {entry!r}: {address!r} is not an IP address"
                ) from None
            hosts.append(f"{name}:{address.strip('[]')}")
    return tuple(hosts)


def _platform(query: Query) -> str:
    text = (query.get("platform") or "").strip()
    if not text:
        return ""
    try:
        wanted = Platform.parse(text)
    except BuildError as error:
        raise BuildRequestError(error.message) from None
    host = Platform.host()
    if (wanted.os, wanted.architecture) != (host.os, host.architecture):
        raise BuildRequestError(
            f"platform {text} is not supported: this daemon builds for {host} only"
        )
    return str(wanted)


def registry_auth(header: str | None) -> dict[str, dict[str, str]]:
    """X-Registry-Config (base64url JSON: registry -> AuthConfig). Like Docker, a header
    that does not decode is ignored: a build pulls anonymously then."""
    if not header:
        return {}
    try:
        padded = header + "=" * (-len(header) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        return {}
    if not isinstance(decoded, dict):
        return {}
    result: dict[str, dict[str, str]] = {}
    for registry, config in decoded.items():
        if isinstance(config, dict):
            result[str(registry)] = {
                str(key): value for key, value in config.items() if isinstance(value, str)
            }
    return result


def parse_build_query(query: Query, registry_config: str | None = None) -> BuildRequest:
    """The checked request (context_directory still empty: the caller extracts the body)."""
    if (query.get("version") or "1").strip() not in ("", "1"):
        raise BuildRequestError(
            "BuildKit (version=2) is not supported by flottad: build with the classic "
            "builder (DOCKER_BUILDKIT=0)"
        )
    if query.get("remote"):
        raise BuildRequestError(
            "remote build contexts are not supported: send the context in the request body"
        )
    if _bool(query, "squash"):
        raise BuildRequestError("squash is only supported with experimental mode")
    network = (query.get("networkmode") or "").strip()
    if network not in _NETWORK_MODES:
        raise BuildRequestError(
            f"network mode {network!r} is not supported for builds: use default, none or host"
        )
    dockerfile = query.get("dockerfile") or "Dockerfile"
    return BuildRequest(
        dockerfile=dockerfile,
        tags=_tags(query),
        quiet=_bool(query, "q"),
        no_cache=_bool(query, "nocache"),
        pull=_bool(query, "pull"),
        remove=_bool(query, "rm", default=True),
        force_remove=_bool(query, "forcerm"),
        build_args=_string_map(query, "buildargs", allow_null_values=True),
        labels=_string_map(query, "labels", allow_null_values=False),
        cache_from=_cache_from(query),
        target=(query.get("target") or "").strip(),
        platform=_platform(query),
        network_mode=_NETWORK_MODES[network],
        extra_hosts=_extra_hosts(query),
        shm_size_bytes=_int(query, "shmsize"),
        memory_bytes=_int(query, "memory"),
        memory_swap_bytes=_int(query, "memswap"),
        cpu_shares=_int(query, "cpushares"),
        cpuset_cpus=(query.get("cpusetcpus") or "").strip(),
        cpu_period_microseconds=_int(query, "cpuperiod"),
        cpu_quota_microseconds=_int(query, "cpuquota"),
        ulimits=_ulimits(query),
        registry_auth=registry_auth(registry_config),
    )
