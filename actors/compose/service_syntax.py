"""Short syntaxes of the other service keys, expanded to their long forms.

- command / entrypoint strings are split into words as a POSIX shell would;
  a healthcheck `test` string means `["CMD-SHELL", string]`;
- extra_hosts: `HOST=IP` or `HOST:IP` (the first separator wins), or a mapping of
  host to one or several addresses; `[v6]` brackets are dropped;
- devices: `HOST[:CONTAINER[:PERMISSIONS]]`;
- depends_on: a list of services (each `service_started`, required) or a mapping;
- env_file: a path, a list of paths, or `{path, required, format}`;
- networks: a list of names or a mapping of name to null or settings;
- ulimits: a number (soft = hard) or `{soft, hard}`;
- secrets / configs: a name or `{source, target, uid, gid, mode}`, the target defaulting
  to `/run/secrets/<name>` and `/<name>`.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import shlex
from typing import Any

from .errors import Path
from .kinds import (
    INVALID,
    OMIT,
    Context,
    boolean,
    describe,
    enum,
    file_mode,
    integer,
    list_of,
    mapping_of,
    string,
    struct,
)
from .syntax import NAME_PATTERN, host_ip


def shell_words(value: Any, context: Context, path: Path) -> Any:
    """command / entrypoint: a string split like a shell does, or a list of strings."""
    if value is None:
        return OMIT
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as error:
            return context.error(path, f"invalid command {value!r}: {error}")
    if isinstance(value, list):
        words = []
        for index, word in enumerate(value):
            if not isinstance(word, str):
                context.error((*path, index), f"expected a string, got {describe(word)}")
                return INVALID
            words.append(word)
        return words
    return context.error(path, f"expected a string or a list of strings, got {describe(value)}")


def healthcheck_test(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    words = shell_words(value, context, path)
    if words is INVALID or words is OMIT:
        return words
    if words and words[0] not in ("NONE", "CMD", "CMD-SHELL"):
        return context.error(
            path, f"invalid test {words[0]!r}: a list must start with NONE, CMD or CMD-SHELL"
        )
    return words


_RESTART = re.compile(r"no|always|unless-stopped|on-failure(?::[0-9]+)?")


def restart_policy(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str) and _RESTART.fullmatch(value):
        return value
    return context.error(
        path,
        f"invalid restart policy {describe(value)}: expected no, always, on-failure[:N] "
        "or unless-stopped",
    )


_PULL_POLICY = re.compile(
    r"always|never|build|if_not_present|missing|refresh|daily|weekly|every_(?:[0-9]+[wdhms])+"
)


def pull_policy(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str) and _PULL_POLICY.fullmatch(value):
        return "missing" if value == "if_not_present" else value
    return context.error(
        path,
        f"invalid pull policy {describe(value)}: expected always, never, missing, build, "
        "daily, weekly or every_<duration>",
    )


def _host_entry(host: str, address: str, context: Context, path: Path) -> Any:
    if not host or ":" in host or "=" in host:
        return context.error(path, f"invalid host name {host!r}")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if address != "host-gateway":
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return context.error(path, f"invalid IP address {address!r} for host {host!r}")
    return {"host": host, "ip": address}


def extra_hosts(value: Any, context: Context, path: Path) -> Any:
    entries: list[dict[str, str]] = []

    def add(entry: Any) -> None:
        if entry is not INVALID and entry not in entries:
            entries.append(entry)

    if isinstance(value, list):
        for index, item in enumerate(value):
            here = (*path, index)
            if not isinstance(item, str):
                context.error(here, f'expected "HOST=IP", got {describe(item)}')
                continue
            separator = "=" if "=" in item else ":"
            host, found, address = item.partition(separator)
            if not found:
                context.error(here, f'invalid extra host {item!r}: expected "HOST=IP"')
                continue
            for single in address.split(","):
                add(_host_entry(host, single, context, here))
        return entries
    if isinstance(value, dict):
        for host, addresses in value.items():
            here = (*path, host)
            listed = addresses if isinstance(addresses, list) else [addresses]
            for item in listed:
                if not isinstance(item, str):
                    context.error(here, f"expected an IP address, got {describe(item)}")
                    continue
                add(_host_entry(host, item, context, here))
        return entries
    return context.error(path, f'expected a list of "HOST=IP" or a mapping, got {describe(value)}')


_device_mapping = struct({"source": string, "target": string, "permissions": string})


def devices(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, list):
        return context.error(path, f"expected a list of devices, got {describe(value)}")
    entries = []
    for index, item in enumerate(value):
        here = (*path, index)
        if isinstance(item, str):
            parts = item.split(":")
            if len(parts) > 3 or not parts[0]:
                context.error(
                    here, f'invalid device {item!r}: expected "HOST[:CONTAINER[:PERMISSIONS]]"'
                )
                continue
            source = parts[0]
            target = parts[1] if len(parts) > 1 and parts[1] else source
            permissions = parts[2] if len(parts) > 2 else "rwm"
            entries.append({"source": source, "target": target, "permissions": permissions})
        elif isinstance(item, dict):
            checked = _device_mapping(item, context, here)
            if checked is INVALID:
                continue
            if "source" not in checked:
                context.error(here, "missing required key 'source'")
                continue
            checked.setdefault("target", checked["source"])
            checked.setdefault("permissions", "rwm")
            entries.append(checked)
        else:
            context.error(here, f"expected a device string or mapping, got {describe(item)}")
    return entries


_dependency = struct(
    {
        "condition": enum("service_started", "service_healthy", "service_completed_successfully"),
        "restart": boolean,
        "required": boolean,
    },
    allow_null=True,
)


def depends_on(value: Any, context: Context, path: Path) -> Any:
    name = re.compile(NAME_PATTERN)
    result: dict[str, Any] = {}
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str) or not name.fullmatch(item):
                context.error((*path, index), f"expected a service name, got {describe(item)}")
                continue
            result[item] = {"condition": "service_started", "required": True}
        return result
    if isinstance(value, dict):
        for service, settings in value.items():
            here = (*path, service)
            if not name.fullmatch(service):
                context.error(here, f"invalid service name {service!r}")
                continue
            checked = _dependency(settings, context, here)
            if checked is INVALID:
                continue
            checked.setdefault("condition", "service_started")
            checked.setdefault("required", True)
            result[service] = checked
        return result
    return context.error(path, f"expected a list of services or a mapping, got {describe(value)}")


_env_file_long = struct(
    {"path": string, "required": boolean, "format": enum("raw")},
)


def env_file(value: Any, context: Context, path: Path) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return context.error(path, f"expected a path or a list of paths, got {describe(value)}")
    entries = []
    for index, item in enumerate(items):
        here = path if isinstance(value, str) else (*path, index)
        if isinstance(item, str):
            entries.append({"path": item, "required": True})
        elif isinstance(item, dict):
            checked = _env_file_long(item, context, here)
            if checked is INVALID:
                continue
            if "path" not in checked:
                context.error(here, "missing required key 'path'")
                continue
            checked.setdefault("required", True)
            entries.append(checked)
        else:
            context.error(here, f"expected a path or a mapping, got {describe(item)}")
    return entries


_service_network = struct(
    {
        "aliases": list_of(string, unique=True),
        "ipv4_address": host_ip,
        "ipv6_address": host_ip,
        "link_local_ips": list_of(string, unique=True),
        "mac_address": string,
        "interface_name": string,
        "priority": integer(),
        "gw_priority": integer(),
        "driver_opts": mapping_of(string),
    },
)


def service_networks(value: Any, context: Context, path: Path) -> Any:
    name = re.compile(NAME_PATTERN)
    result: dict[str, Any] = {}
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str) or not name.fullmatch(item):
                context.error((*path, index), f"expected a network name, got {describe(item)}")
                continue
            result[item] = None
        return result
    if isinstance(value, dict):
        for network, settings in value.items():
            here = (*path, network)
            if not name.fullmatch(network):
                context.error(here, f"invalid network name {network!r}")
                continue
            if settings is None:
                result[network] = None
                continue
            checked = _service_network(settings, context, here)
            if checked is not INVALID:
                result[network] = checked
        return result
    return context.error(path, f"expected a list of networks or a mapping, got {describe(value)}")


def _ulimit(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, dict):
        checked = struct(
            {"soft": integer(-1), "hard": integer(-1)},
        )(value, context, path)
        if checked is INVALID:
            return INVALID
        if "soft" not in checked or "hard" not in checked:
            return context.error(path, "expected both soft and hard limits")
        if checked["soft"] > checked["hard"] >= 0:
            return context.error(path, "the soft limit is above the hard limit")
        return {"soft": checked["soft"], "hard": checked["hard"]}
    single = integer(-1)(value, context, path)
    if single is INVALID:
        return INVALID
    return {"soft": single, "hard": single}


ulimits = mapping_of(_ulimit, r"[a-z]+", "a limit name such as nofile")


def file_reference(default_target: str) -> Any:
    """Service-level secrets and configs: `name` or `{source, target, uid, gid, mode}`."""
    long_form = struct(
        {"source": string, "target": string, "uid": string, "gid": string, "mode": file_mode}
    )

    def check(value: Any, context: Context, path: Path) -> Any:
        if not isinstance(value, list):
            return context.error(path, f"expected a list, got {describe(value)}")
        entries = []
        for index, item in enumerate(value):
            here = (*path, index)
            if isinstance(item, str):
                entries.append({"source": item})
            elif isinstance(item, dict):
                checked = long_form(item, context, here)
                if checked is INVALID:
                    continue
                if "source" not in checked:
                    context.error(here, "missing required key 'source'")
                    continue
                entries.append(checked)
            else:
                context.error(here, f"expected a name or a mapping, got {describe(item)}")
        for entry in entries:
            entry.setdefault("target", posixpath.join(default_target, entry["source"]))
        return entries

    return check


def group_entry(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return string(value, context, path)
