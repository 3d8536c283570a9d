"""The normalized project printed back: what `flotta compose config` shows.

Like `docker compose config`: fully resolved and interpolated, long syntax everywhere,
the project `name` set, the default network present when used, engine names on
networks and volumes, env files merged into `environment` (and `env_file` left out),
mapping keys sorted, durations as Go prints them (`1m30s`), sizes as byte counts,
and every `$` in a value doubled so that the output reads back to the same project.
Fields left at their default are left out, except those Docker Compose always shows
(a port's mode and protocol, a dependency's condition and `required`, a bind mount's
`create_host_path`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .interpolation import escape
from .model import (
    BindOptions,
    Build,
    Dependency,
    Healthcheck,
    HostEntry,
    Port,
    Project,
    ResourceLimits,
    ResourceReservations,
    RestartPolicy,
    Service,
    ServiceVolume,
    TmpfsOptions,
    Ulimit,
    UpdateConfig,
)
from .units import format_duration
from .yamlload import dump_yaml

_DURATIONS: dict[type, frozenset[str]] = {
    Healthcheck: frozenset({"interval", "timeout", "start_period", "start_interval"}),
    Service: frozenset({"stop_grace_period"}),
    RestartPolicy: frozenset({"delay", "window"}),
    UpdateConfig: frozenset({"delay", "monitor"}),
}
_SIZES: dict[type, frozenset[str]] = {
    Service: frozenset({"shm_size"}),
    Build: frozenset({"shm_size"}),
    ResourceLimits: frozenset({"memory"}),
    ResourceReservations: frozenset({"memory"}),
    TmpfsOptions: frozenset({"size"}),
}
_ALWAYS: dict[type, frozenset[str]] = {
    Port: frozenset({"mode", "protocol"}),
    Dependency: frozenset({"condition", "required"}),
    BindOptions: frozenset({"create_host_path"}),
}
_SKIP: dict[type, frozenset[str]] = {Service: frozenset({"name", "env_file"})}
_ORDER: dict[type, tuple[str, ...]] = {
    Port: ("name", "mode", "host_ip", "target", "published", "protocol", "app_protocol"),
    ServiceVolume: (
        "type",
        "source",
        "target",
        "read_only",
        "consistency",
        "bind",
        "volume",
        "tmpfs",
    ),
    Healthcheck: (
        "test",
        "timeout",
        "interval",
        "retries",
        "start_period",
        "start_interval",
        "disable",
    ),
}


def _default(field: Any) -> Any:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory()
    return default


def _value(value: Any, text: Callable[[str], str]) -> Any:
    if attrs.has(type(value)):
        return _record(value, text)
    if isinstance(value, dict):
        return {key: _value(element, text) for key, element in sorted(value.items())}
    if isinstance(value, tuple | list):
        return [_value(element, text) for element in value]
    if isinstance(value, str):
        return text(value)
    return value


def _hosts(entries: tuple[HostEntry, ...], text: Callable[[str], str]) -> list[str]:
    return sorted(text(f"{entry.host}={entry.ip}") for entry in entries)


def _ulimits(limits: dict[str, Ulimit]) -> dict[str, Any]:
    return {
        name: limit.soft if limit.soft == limit.hard else {"soft": limit.soft, "hard": limit.hard}
        for name, limit in sorted(limits.items())
    }


def _record(record: Any, text: Callable[[str], str]) -> dict[str, Any]:
    kind = type(record)
    out: dict[str, Any] = {}
    for field in attrs.fields(kind):
        name = field.name
        if name in _SKIP.get(kind, ()):
            continue
        value = getattr(record, name)
        if value == _default(field) and name not in _ALWAYS.get(kind, ()):
            continue
        if value is None:
            continue
        if name in _DURATIONS.get(kind, ()):
            out[name] = format_duration(value)
        elif name in _SIZES.get(kind, ()):
            out[name] = str(value)
        elif name == "extra_hosts":
            out[name] = _hosts(value, text)
        elif name == "ulimits":
            out[name] = _ulimits(value)
        else:
            out[name] = _value(value, text)
    order = _ORDER.get(kind)
    if order:
        return {key: out[key] for key in order if key in out}
    return dict(sorted(out.items()))


def to_dict(project: Project) -> dict[str, Any]:
    """The canonical dict of a project (enabled services only), ready to print."""
    document: dict[str, Any] = {
        "name": project.name,
        "services": {
            name: _record(service, escape) for name, service in sorted(project.services.items())
        },
    }
    for section in ("networks", "volumes", "secrets", "configs"):
        resources = getattr(project, section)
        if resources:
            document[section] = {
                key: _record(value, escape) for key, value in sorted(resources.items())
            }
    return document


def config_yaml(project: Project) -> str:
    """What `flotta compose config` prints."""
    return dump_yaml(to_dict(project))


def service_dict(service: Service) -> dict[str, Any]:
    """One service's canonical dict, as `config` prints it but with `$` left single."""
    return _record(service, str)


def record_dict(record: Any) -> dict[str, Any]:
    """Any model record's canonical dict, `$` left single."""
    return _record(record, str)
