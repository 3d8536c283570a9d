"""Merging canonical Compose documents (several `-f` files, and `extends`).

The rules of the Compose specification, applied to canonical forms (schema.py), so
that `"8080:80"` in one file and `{target: 80, published: "8080"}` in another are
recognised as the same port:

- mappings merge key by key, recursively; the later file wins on scalars;
- sequences are appended, except where an element has an identity, in which case a
  later element with the same identity replaces the earlier one in place:
  ports by (host_ip, target, published, protocol), volumes by container path,
  secrets and configs by target, env_file by path, devices by container path,
  ipam pools by subnet; dns, dns_search, dns_opt, expose, cap_add, cap_drop, profiles,
  tmpfs, security_opt, group_add, links, extra_hosts and network aliases keep one copy
  of each value;
- command, entrypoint and healthcheck.test are replaced, not appended;
- logging merges only when both sides name the same driver (or one names none),
  otherwise the later one replaces it; each ulimit is replaced as a whole;
- `null` in a later file changes nothing (use `!reset` to remove a value);
- `!reset` removes the value set by earlier files; `!override` replaces it without
  merging. Markers left after a merge (in the first file) are resolved the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .kinds import RESET, Overridden

PathPattern = tuple[str, ...]
_DELETE: Any = object()


def _strip(value: Any) -> Any:
    """Resolve merge markers in a value that has nothing to merge with."""
    if value is RESET:
        return _DELETE
    if isinstance(value, Overridden):
        return _strip(value.value)
    if isinstance(value, dict):
        result = {}
        for key, element in value.items():
            stripped = _strip(element)
            if stripped is not _DELETE:
                result[key] = stripped
        return result
    if isinstance(value, list):
        return [stripped for element in value if (stripped := _strip(element)) is not _DELETE]
    return value


def strip_markers(document: dict[str, Any]) -> dict[str, Any]:
    stripped = _strip(document)
    return stripped if isinstance(stripped, dict) else {}


def _matches(path: tuple[str | int, ...], pattern: PathPattern) -> bool:
    if len(path) != len(pattern):
        return False
    return all(part == "*" or part == element for element, part in zip(path, pattern, strict=True))


def _replace(_base: Any, over: Any, _path: tuple[str | int, ...]) -> Any:
    return _strip(over)


def _merge_logging(base: Any, over: Any, path: tuple[str | int, ...]) -> Any:
    stripped = _strip(over)
    if not isinstance(base, dict) or not isinstance(stripped, dict):
        return stripped
    if "driver" in base and "driver" in stripped and base["driver"] != stripped["driver"]:
        return stripped
    return _merge_mappings(base, over, path)


_RULES: list[tuple[PathPattern, Callable[[Any, Any, tuple[str | int, ...]], Any]]] = [
    (("services", "*", "command"), _replace),
    (("services", "*", "entrypoint"), _replace),
    (("services", "*", "healthcheck", "test"), _replace),
    (("services", "*", "ulimits", "*"), _replace),
    (("services", "*", "logging"), _merge_logging),
]


def merge_value(base: Any, over: Any, path: tuple[str | int, ...]) -> Any:
    """`over` applied on top of `base`; `_DELETE` when `over` is `!reset`."""
    if over is RESET:
        return _DELETE
    if isinstance(over, Overridden):
        return _strip(over.value)
    if over is None:
        return base
    for pattern, rule in _RULES:
        if _matches(path, pattern):
            return rule(base, over, path)
    if isinstance(base, dict) and isinstance(over, dict):
        return _merge_mappings(base, over, path)
    if isinstance(base, list) and isinstance(over, list):
        return [*base, *_strip(over)]
    return _strip(over)


def _merge_mappings(base: dict[str, Any], over: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    result = dict(base)
    for key, value in over.items():
        if key not in result:
            stripped = _strip(value)
            if stripped is not _DELETE:
                result[key] = stripped
            continue
        merged = merge_value(result[key], value, (*path, key))
        if merged is _DELETE:
            del result[key]
        else:
            result[key] = merged
    return result


def merge_documents(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Two canonical documents merged, with sequence identities enforced."""
    merged = merge_value(copy.deepcopy(base), over, ())
    if merged is _DELETE or not isinstance(merged, dict):
        merged = {}
    return enforce_unique(merged)


def merge_service(base: dict[str, Any], child: dict[str, Any], name: str) -> dict[str, Any]:
    """`extends`: the child service's keys merged on top of a copy of its base."""
    merged = merge_value(copy.deepcopy(base), child, ("services", name))
    if merged is _DELETE or not isinstance(merged, dict):
        merged = {}
    return enforce_unique_service(merged)


# ---- identities ------------------------------------------------------------------


def _unique(items: list[Any], identity: Callable[[Any], Any]) -> list[Any]:
    """One element per identity: the last one, at the position of the first."""
    positions: dict[Any, int] = {}
    result: list[Any] = []
    for item in items:
        key = identity(item)
        if key in positions:
            result[positions[key]] = item
        else:
            positions[key] = len(result)
            result.append(item)
    return result


def _port_identity(port: dict[str, Any]) -> Any:
    return (
        port.get("host_ip", ""),
        port.get("target"),
        port.get("published", ""),
        port.get("protocol", "tcp"),
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(element)) for key, element in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(element) for element in value)
    return value


_SERVICE_IDENTITIES: dict[str, Callable[[Any], Any]] = {
    "ports": _port_identity,
    "volumes": lambda volume: volume.get("target"),
    "secrets": lambda secret: secret.get("target"),
    "configs": lambda config: config.get("target"),
    "env_file": lambda entry: entry.get("path"),
    "devices": lambda device: device.get("target"),
    "extra_hosts": _freeze,
}
_SERVICE_UNIQUE_VALUES = (
    "cap_add",
    "cap_drop",
    "dns",
    "dns_opt",
    "dns_search",
    "expose",
    "group_add",
    "links",
    "profiles",
    "security_opt",
    "tmpfs",
)


def enforce_unique_service(service: dict[str, Any]) -> dict[str, Any]:
    for key, identity in _SERVICE_IDENTITIES.items():
        if isinstance(service.get(key), list):
            service[key] = _unique(service[key], identity)
    for key in _SERVICE_UNIQUE_VALUES:
        if isinstance(service.get(key), list):
            service[key] = _unique(service[key], _freeze)
    build = service.get("build")
    if isinstance(build, dict) and isinstance(build.get("extra_hosts"), list):
        build["extra_hosts"] = _unique(build["extra_hosts"], _freeze)
    networks = service.get("networks")
    if isinstance(networks, dict):
        for settings in networks.values():
            if isinstance(settings, dict):
                for key in ("aliases", "link_local_ips"):
                    if isinstance(settings.get(key), list):
                        settings[key] = _unique(settings[key], _freeze)
    return service


def enforce_unique(document: dict[str, Any]) -> dict[str, Any]:
    services = document.get("services")
    if isinstance(services, dict):
        for service in services.values():
            if isinstance(service, dict):
                enforce_unique_service(service)
    networks = document.get("networks")
    if isinstance(networks, dict):
        for network in networks.values():
            ipam = network.get("ipam") if isinstance(network, dict) else None
            if isinstance(ipam, dict) and isinstance(ipam.get("config"), list):
                ipam["config"] = _unique(ipam["config"], lambda pool: pool.get("subnet"))
    return document
