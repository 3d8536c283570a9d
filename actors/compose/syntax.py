"""The short syntaxes of Compose, expanded to their long forms.

- ports: `[[IP:](HOST|HOST-RANGE):](PORT|PORT-RANGE)[/PROTOCOL]`, IPv6 with or without
  brackets (`[::1]:80:80`, `::1:80:80`). Ranges map one to one when both sides are
  ranges of the same length; a single container port with a host range publishes on
  any free port of that range; a container range with a host port of another length
  is an error. Protocols: tcp (the default), udp, sctp.
- volumes: `[SOURCE:]TARGET[:OPTIONS]`; a SOURCE starting with `.`, `/` or `~` is a
  bind mount (whose host directory is created if missing), any other SOURCE names a
  volume, no SOURCE is an anonymous volume. OPTIONS: rw, ro, nocopy, z, Z and the
  bind propagation modes; Docker Desktop's cached/delegated/consistent are accepted.

The other keys' short syntaxes are in service_syntax.py.
"""

from __future__ import annotations

import ipaddress
import posixpath
from typing import Any

from .errors import Path
from .kinds import (
    INVALID,
    Context,
    boolean,
    describe,
    enum,
    file_mode,
    integer,
    mapping_of,
    size,
    string,
    struct,
)

PROTOCOLS = ("tcp", "udp", "sctp")
port_max = 65535
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_CONSISTENCIES = ("cached", "delegated", "consistent")
NAME_PATTERN = r"[a-zA-Z0-9._-]+"


class SyntaxProblem(ValueError):
    pass


# ---- ports -------------------------------------------------------------------


def parse_port_range(text: str, what: str) -> tuple[int, int]:
    start_text, dash, end_text = text.partition("-")
    try:
        start = int(start_text, 10)
        end = int(end_text, 10) if dash else start
    except ValueError:
        raise SyntaxProblem(
            f"invalid {what} {text!r}: expected a port or a range like 8000-8010"
        ) from None
    if not (0 <= start <= port_max and 0 <= end <= port_max) or start > end:
        raise SyntaxProblem(f"invalid {what} {text!r}: ports go from 0 to {port_max}, low to high")
    return start, end


def check_ip(text: str) -> str:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        raise SyntaxProblem(f"invalid IP address {text!r}") from None
    return candidate


def parse_port_spec(spec: str) -> list[dict[str, Any]]:
    """`"127.0.0.1:8080:80/udp"` → the long-syntax entries it stands for."""
    parts = spec.split(":")
    container = parts[-1]
    ip, host = "", ""
    if len(parts) == 2:
        host = parts[0]
    elif len(parts) == 3:
        ip, host = parts[0], parts[1]
    elif len(parts) > 3:
        ip, host = ":".join(parts[:-2]), parts[-2]
    container, _, protocol = container.partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise SyntaxProblem(f"invalid protocol {protocol!r} in {spec!r}: expected tcp, udp or sctp")
    if ip:
        ip = check_ip(ip)
    if not container:
        raise SyntaxProblem(f"invalid port {spec!r}: no container port")
    start, end = parse_port_range(container, "container port")
    if start == 0:
        raise SyntaxProblem(f"invalid port {spec!r}: the container port must not be 0")
    host_start = host_end = 0
    if host:
        host_start, host_end = parse_port_range(host, "host port")
        if end - start != host_end - host_start and end != start:
            raise SyntaxProblem(
                f"invalid port {spec!r}: container range {container} and host range {host} "
                "differ in length"
            )
    entries = []
    for offset in range(end - start + 1):
        entry: dict[str, Any] = {"mode": "ingress"}
        if ip:
            entry["host_ip"] = ip
        entry["target"] = start + offset
        if host:
            if start == end and host_start != host_end:
                entry["published"] = f"{host_start}-{host_end}"
            else:
                entry["published"] = str(host_start + offset)
        entry["protocol"] = protocol
        entries.append(entry)
    return entries


def _published(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return context.error(path, f"expected a port or a port range, got {describe(value)}")
    try:
        parse_port_range(value, "published port")
    except SyntaxProblem as error:
        return context.error(path, str(error))
    return value


def host_ip(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, str):
        return context.error(path, f"expected an IP address, got {describe(value)}")
    try:
        return check_ip(value)
    except SyntaxProblem as error:
        return context.error(path, str(error))


def _protocol(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return value.lower()
    return context.error(path, f"invalid protocol {describe(value)}: expected tcp, udp or sctp")


def _long_port_defaults(result: dict[str, Any], _context: Context, _path: Path) -> None:
    ordered = {"mode": result.pop("mode", "ingress")}
    for key in ("host_ip", "target", "published"):
        if key in result:
            ordered[key] = result.pop(key)
    ordered["protocol"] = result.pop("protocol", "tcp")
    ordered.update(result)
    result.clear()
    result.update(ordered)


_long_port = struct(
    {
        "name": string,
        "mode": enum("ingress", "host"),
        "host_ip": host_ip,
        "target": integer(1, port_max),
        "published": _published,
        "protocol": _protocol,
        "app_protocol": string,
    },
    check=_long_port_defaults,
)


def ports(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, list):
        return context.error(path, f"expected a list of ports, got {describe(value)}")
    entries: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        here = (*path, index)
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            try:
                entries.extend(parse_port_spec(item))
            except SyntaxProblem as error:
                context.error(here, str(error))
        elif isinstance(item, dict):
            if "target" not in item:
                context.error(here, "missing required key 'target' (the container port)")
                continue
            checked = _long_port(item, context, here)
            if checked is not INVALID and "target" in checked:
                entries.append(checked)
        else:
            context.error(
                here, f'expected a port like "8080:80" or a mapping, got {describe(item)}'
            )
    return entries


def expose_entry(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return context.error(
            path, f"expected a port like 3000 or 8000-8010/udp, got {describe(value)}"
        )
    port, _, protocol = value.partition("/")
    try:
        parse_port_range(port, "port")
    except SyntaxProblem as error:
        return context.error(path, str(error))
    if protocol and protocol.lower() not in PROTOCOLS:
        return context.error(path, f"invalid protocol {protocol!r}: expected tcp, udp or sctp")
    return value


# ---- volumes -----------------------------------------------------------------


def clean_container_path(path: str) -> str:
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def is_host_path(source: str) -> bool:
    return source[:1] in (".", "/", "~")


def parse_volume_spec(spec: str) -> tuple[dict[str, Any], list[str]]:
    """`"./data:/var/lib/data:ro"` → the long form, and options it did not understand."""
    if not spec:
        raise SyntaxProblem("invalid volume: empty")
    parts = spec.split(":")
    if len(parts) > 3:
        raise SyntaxProblem(f"invalid volume {spec!r}: too many colons")
    if any(not part for part in parts):
        raise SyntaxProblem(f"invalid volume {spec!r}: empty section between colons")
    source = parts[0] if len(parts) >= 2 else ""
    target = parts[1] if len(parts) >= 2 else parts[0]
    options = parts[2].split(",") if len(parts) == 3 else []
    if not target.startswith("/"):
        raise SyntaxProblem(f"invalid volume {spec!r}: the container path must be absolute")
    entry: dict[str, Any] = {"type": "bind" if source and is_host_path(source) else "volume"}
    if source:
        entry["source"] = source
    entry["target"] = clean_container_path(target)
    bind: dict[str, Any] = {"create_host_path": True}
    volume: dict[str, Any] = {}
    unknown = []
    for option in options:
        if option == "ro":
            entry["read_only"] = True
        elif option == "rw":
            entry.pop("read_only", None)
        elif option == "nocopy":
            volume["nocopy"] = True
        elif option in ("z", "Z"):
            bind["selinux"] = option
        elif option in _PROPAGATIONS:
            bind["propagation"] = option
        elif option in _CONSISTENCIES:
            entry["consistency"] = option
        else:
            unknown.append(option)
    if entry["type"] == "bind":
        entry["bind"] = bind
    else:
        entry["volume"] = volume
    return entry, unknown


def _container_path(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, str) or not value.startswith("/"):
        return context.error(
            path, f"expected an absolute path in the container, got {describe(value)}"
        )
    return clean_container_path(value)


_volume_bind = struct(
    {
        "propagation": enum(*_PROPAGATIONS),
        "create_host_path": boolean,
        "selinux": enum("z", "Z"),
        "recursive": enum("enabled", "disabled", "writable", "readonly"),
    },
    allow_null=True,
)
_volume_volume = struct(
    {"nocopy": boolean, "subpath": string, "labels": mapping_of(string)},
    allow_null=True,
)
_volume_tmpfs = struct({"size": size, "mode": file_mode}, allow_null=True)


def _long_volume_check(result: dict[str, Any], context: Context, path: Path) -> None:
    kind = result.get("type")
    if kind is None:
        return
    if kind == "tmpfs" and "source" in result:
        context.error((*path, "source"), "a tmpfs mount has no source")
    if kind == "bind" and not result.get("source"):
        context.error(path, "a bind mount needs a source (a path on the host)")
    for option, allowed in (("bind", "bind"), ("volume", "volume"), ("tmpfs", "tmpfs")):
        if option in result and kind != allowed:
            context.error((*path, option), f"{option} options apply only to type {allowed}")
    if kind == "bind":
        result.setdefault("bind", {})
        result["bind"].setdefault("create_host_path", True)
    if kind == "volume":
        result.setdefault("volume", {})
    ordered: dict[str, Any] = {
        key: result[key] for key in ("type", "source", "target") if key in result
    }
    ordered.update(result)
    result.clear()
    result.update(ordered)


_long_volume = struct(
    {
        "type": enum("bind", "volume", "tmpfs"),
        "source": string,
        "target": _container_path,
        "read_only": boolean,
        "consistency": string,
        "bind": _volume_bind,
        "volume": _volume_volume,
        "tmpfs": _volume_tmpfs,
    },
    rejected={"image": "image mounts are not supported by flotta"},
    check=_long_volume_check,
)
_UNSUPPORTED_MOUNTS = ("image", "npipe", "cluster")


def volumes(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, list):
        return context.error(path, f"expected a list of volumes, got {describe(value)}")
    entries = []
    for index, item in enumerate(value):
        here = (*path, index)
        if isinstance(item, str):
            try:
                entry, unknown = parse_volume_spec(item)
            except SyntaxProblem as error:
                context.error(here, str(error))
                continue
            for option in unknown:
                context.warn(here, f"unknown volume option {option!r}, ignored")
            entries.append(entry)
        elif isinstance(item, dict):
            if item.get("type") in _UNSUPPORTED_MOUNTS:
                context.error(
                    (*here, "type"), f"mounts of type {item['type']} are not supported by flotta"
                )
                continue
            missing = [key for key in ("type", "target") if key not in item]
            if missing:
                context.error(here, f"missing required key {missing[0]!r}")
                continue
            checked = _long_volume(item, context, here)
            if checked is not INVALID and "type" in checked and "target" in checked:
                if checked.get("read_only") is False:
                    del checked["read_only"]
                entries.append(checked)
        else:
            context.error(
                here, f'expected a volume like "data:/data" or a mapping, got {describe(item)}'
            )
    return entries


def tmpfs_entry(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, str) or not value.startswith("/"):
        return context.error(
            path, f"expected an absolute path in the container, got {describe(value)}"
        )
    return value
