"""The API's views of a container: `GET /containers/{id}/json` and `GET /containers/json` items.

Shapes follow Engine API 1.45 (docker-api.md §3): every key docker-py indexes directly is
present (`Config.Tty`, `HostConfig.LogConfig.Type`, `State.Status`, `Name`, ...). Times are
RFC 3339 with nanoseconds, Go's style (trailing zeros trimmed; the zero time is
`0001-01-01T00:00:00Z`); `docker ps`'s Status is Docker's human text ("Up 2 minutes",
"Exited (0) 3 seconds ago", "Up 5 seconds (health: starting)").
"""

from __future__ import annotations

import time
from typing import Any

from actors.supervisor.records import ContainerRecord
from actors.units import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"

ENDPOINT_DEFAULTS: dict[str, Any] = {
    "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
    "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
    "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
    "DNSNames": None,
}  # fmt: skip
RUNTIME_ENDPOINT_FIELDS = (
    "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address",
    "GlobalIPv6PrefixLen", "MacAddress", "DNSNames",
)  # fmt: skip


def rfc3339_nano(time_ns: int) -> str:
    """Go's RFC3339Nano in UTC: fraction digits without trailing zeros."""
    if time_ns <= 0:
        return ZERO_TIME
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanoseconds:
        text += "." + f"{nanoseconds:09d}".rstrip("0")
    return text + "Z"


def status_text(record: ContainerRecord, now_ns: int) -> str:
    """`docker ps`'s STATUS column."""
    state = record.state
    if state.status == "paused":
        return f"Up {human_duration((now_ns - state.started_ns) / 1e9)} (Paused)"
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {human_duration((now_ns - state.finished_ns) / 1e9)} ago"
    if state.status == "running":
        up = f"Up {human_duration((now_ns - state.started_ns) / 1e9)}"
        if state.health:
            status = state.health.get("Status", "")
            return f"{up} (health: starting)" if status == "starting" else f"{up} ({status})"
        return up
    if state.status == "removing":
        return "Removal In Progress"
    if state.status == "dead":
        return "Dead"
    if not state.started_ns:
        return "Created"
    if not state.finished_ns:
        return ""
    return f"Exited ({state.exit_code}) {human_duration((now_ns - state.finished_ns) / 1e9)} ago"


def command_text(path: str, args: list[str]) -> str:
    """The Command of `docker ps`: arguments with spaces quoted, as moby does."""
    if not args:
        return path
    quoted = [f"'{arg}'" if " " in arg else arg for arg in args]
    return f"{path} {' '.join(quoted)}"


def state_body(record: ContainerRecord) -> dict[str, Any]:
    state = record.state
    body: dict[str, Any] = {
        "Status": state.status,
        "Running": state.status in ("running", "paused", "restarting"),
        "Paused": state.status == "paused",
        "Restarting": state.status == "restarting",
        "OOMKilled": state.oom_killed,
        "Dead": state.status == "dead",
        "Pid": state.pid if state.status in ("running", "paused") else 0,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": rfc3339_nano(state.started_ns),
        "FinishedAt": rfc3339_nano(state.finished_ns),
    }
    if state.health is not None:
        body["Health"] = dict(state.health)
    return body


def endpoint_body(settings: dict[str, Any]) -> dict[str, Any]:
    body = dict(ENDPOINT_DEFAULTS)
    body.update(settings)
    return body


def networks_body(record: ContainerRecord) -> dict[str, dict[str, Any]]:
    current = record.network.get("Networks")
    if current:
        return {name: endpoint_body(settings) for name, settings in current.items()}
    mode = record.host_config.get("NetworkMode", "bridge")
    if mode.startswith("container:"):
        return {}
    result: dict[str, dict[str, Any]] = {}
    for name, requested in record.endpoints.items():
        settings = {
            key: value for key, value in requested.items() if key in ENDPOINT_DEFAULTS
        }
        result[name] = endpoint_body(settings)
    return result


def network_settings_body(record: ContainerRecord) -> dict[str, Any]:
    networks = networks_body(record)
    bridge = networks.get("bridge") or {}
    ports = record.network.get("Ports")
    if ports is None:
        ports = {}
    return {
        "Bridge": "",
        "SandboxID": record.network.get("SandboxID", ""),
        "SandboxKey": record.network.get("SandboxKey", ""),
        "Ports": ports,
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.get("EndpointID", ""),
        "Gateway": bridge.get("Gateway", ""),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.get("IPAddress", ""),
        "IPPrefixLen": bridge.get("IPPrefixLen", 0),
        "IPv6Gateway": "",
        "MacAddress": bridge.get("MacAddress", ""),
        "Networks": networks,
    }


def inspect_body(
    record: ContainerRecord,
    *,
    exec_ids: list[str] | None = None,
    graph_driver: dict[str, str] | None = None,
    size_rw: int | None = None,
    size_root: int | None = None,
) -> dict[str, Any]:
    files = record.files_dir
    body: dict[str, Any] = {
        "Id": record.id,
        "Created": rfc3339_nano(record.created_ns),
        "Path": record.path,
        "Args": list(record.args),
        "State": state_body(record),
        "Image": record.image_id,
        "ResolvConfPath": f"{files}/resolv.conf" if files else "",
        "HostnamePath": f"{files}/hostname" if files else "",
        "HostsPath": f"{files}/hosts" if files else "",
        "LogPath": record.log_path,
        "Name": "/" + record.name,
        "RestartCount": record.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids or None,
        "HostConfig": dict(record.host_config),
        "GraphDriver": {"Data": graph_driver or {}, "Name": "overlay2"},
    }
    if size_rw is not None:
        body["SizeRw"] = size_rw
    if size_root is not None:
        body["SizeRootFs"] = size_root
    body["Mounts"] = [mount.to_api() for mount in record.mounts]
    body["Config"] = dict(record.config)
    body["NetworkSettings"] = network_settings_body(record)
    return body


def summary_body(
    record: ContainerRecord,
    now_ns: int,
    *,
    size_rw: int | None = None,
    size_root: int | None = None,
) -> dict[str, Any]:
    """One item of `GET /containers/json`."""
    networks = networks_body(record)
    body: dict[str, Any] = {
        "Id": record.id,
        "Names": ["/" + record.name],
        "Image": record.image_reference or record.image_id,
        "ImageID": record.image_id,
        "Command": command_text(record.path, record.args),
        "Created": record.created_ns // 1_000_000_000,
        "Ports": list(record.network.get("PortsList") or []),
        "Labels": record.labels,
        "State": record.state.status,
        "Status": status_text(record, now_ns),
        "HostConfig": {"NetworkMode": record.host_config.get("NetworkMode", "bridge")},
        "NetworkSettings": {"Networks": networks},
        "Mounts": [mount.to_api() for mount in record.mounts],
    }
    if size_rw is not None:
        body["SizeRw"] = size_rw
    if size_root is not None:
        body["SizeRootFs"] = size_root
    return body
