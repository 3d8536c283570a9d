"""`POST /containers/create`: the request body checked, defaulted and merged with the image.

The body is Docker's: the Config fields at the top level, plus `HostConfig` and
`NetworkingConfig`. `parse_create_body` returns what the container record keeps — the
Config merged with the image's config (moby's rules), the HostConfig with every field the
API shows filled in, and the endpoints asked for — or raises InvalidParameter with moby's
wording, before anything is created.

Merge rules (moby `merge` + `mergeAndVerifyConfig`):
- Entrypoint null takes the image's; `[]` clears it; `[""]` clears it too (after the merge).
- Cmd takes the image's only when the request gives no Entrypoint (null or `[]`) and no Cmd.
- Env: the request's entries, then the image's whose names the request did not set.
- Labels: the image's, overridden by the request's. ExposedPorts and Volumes: the union.
- User, WorkingDir, StopSignal, Healthcheck fields: the image's when the request leaves them empty.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from actors.errdefs import InvalidParameter, NotImplementedYet
from actors.supervisor import restart

MINIMUM_MEMORY_BYTES = 6 * 1024 * 1024
MINIMUM_DURATION_NS = 1_000_000
DEFAULT_SHM_BYTES = 64 * 1024 * 1024
DEFAULT_STOP_TIMEOUT_SECONDS = 10

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]  # fmt: skip
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# Config fields the API shows, with their zero values (the merged request overrides them).
CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": {},
}

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "bridge", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0],
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
    "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": DEFAULT_SHM_BYTES, "Runtime": "crun", "Isolation": "", "CpuShares": 0, "Memory": 0,
    "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [],
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": MASKED_PATHS, "ReadonlyPaths": READONLY_PATHS,
}  # fmt: skip

_PORT_KEY = re.compile(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?")
_HOST_PORT = re.compile(r"(\d*)(?:-(\d+))?")
_SECURITY_OPTS_IGNORED = ("apparmor=", "label=", "label:", "apparmor:")


@attrs.frozen
class CreatePlan:
    """What a create request resolves to, before anything exists."""

    config: dict[str, Any]
    host_config: dict[str, Any]
    endpoints: dict[str, dict[str, Any]]  # network name -> EndpointSettings as requested
    warnings: tuple[str, ...]


# --- type checks ----------------------------------------------------------------------------


def _string(value: Any, field: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a string")
    return value


def _bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParameter(f"{field} must be a boolean")
    return value


def _int(value: Any, field: str, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise InvalidParameter(f"{field} must be an integer")
    return value


def _string_list(value: Any, field: str) -> list[str] | None:
    """Docker's StrSlice: null, a string (one element) or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParameter(f"{field} must be a list of strings")
    return list(value)


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise InvalidParameter(f"{field} must be a map of strings")
    return dict(value)


def _object_keys(value: Any, field: str) -> dict[str, dict[str, Any]]:
    """A set encoded as a map to empty objects (ExposedPorts, Volumes)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"{field} must be an object")
    return {str(key): {} for key in value}


# --- Config ---------------------------------------------------------------------------------


def parse_config(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Config part of a create body, type-checked (None keeps "not given")."""
    config: dict[str, Any] = {}
    for field in ("Hostname", "Domainname", "User", "Image", "WorkingDir", "StopSignal", "MacAddress"):
        if body.get(field) is not None:
            config[field] = _string(body[field], field)
    for field in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
                  "NetworkDisabled", "ArgsEscaped"):  # fmt: skip
        if body.get(field) is not None:
            config[field] = _bool(body[field], field)
    config["Env"] = _string_list(body.get("Env"), "Env")
    for entry in config["Env"] or []:
        if "=" not in entry and not entry:
            raise InvalidParameter(f"invalid environment variable: {entry!r}")
    config["Cmd"] = _string_list(body.get("Cmd"), "Cmd")
    config["Entrypoint"] = _string_list(body.get("Entrypoint"), "Entrypoint")
    config["OnBuild"] = _string_list(body.get("OnBuild"), "OnBuild")
    config["Shell"] = _string_list(body.get("Shell"), "Shell")
    config["Labels"] = _string_map(body.get("Labels"), "Labels")
    config["ExposedPorts"] = _object_keys(body.get("ExposedPorts"), "ExposedPorts")
    config["Volumes"] = _object_keys(body.get("Volumes"), "Volumes")
    if body.get("StopTimeout") is not None:
        config["StopTimeout"] = _int(body["StopTimeout"], "StopTimeout")
    if body.get("Healthcheck") is not None:
        config["Healthcheck"] = parse_healthcheck(body["Healthcheck"])
    if not config.get("Image"):
        raise InvalidParameter("no image specified: Config.Image is empty")
    return config


def parse_healthcheck(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameter("Healthcheck must be an object")
    check: dict[str, Any] = {}
    test = _string_list(value.get("Test"), "Healthcheck.Test")
    if test:
        check["Test"] = test
    for field in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        duration = _int(value.get(field), f"Healthcheck.{field}")
        if duration != 0 and duration < MINIMUM_DURATION_NS:
            raise InvalidParameter(f"{field} in Healthcheck cannot be less than 1ms")
        if duration:
            check[field] = duration
    retries = _int(value.get("Retries"), "Healthcheck.Retries")
    if retries < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")
    if retries:
        check["Retries"] = retries
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidParameter(f"unknown Healthcheck.Test type {test[0]!r}: use NONE, CMD or CMD-SHELL")
    return check


def _env_name(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_image_config(request: dict[str, Any], image: Mapping[str, Any] | None) -> dict[str, Any]:
    """The request's Config merged with the image's `config` section (see the module doc)."""
    merged = copy.deepcopy(request)
    image = image or {}
    if not merged.get("User"):
        merged["User"] = image.get("User") or ""
    ports = dict(image.get("ExposedPorts") or {})
    ports.update(merged.get("ExposedPorts") or {})
    merged["ExposedPorts"] = {key: {} for key in ports}
    image_env = list(image.get("Env") or [])
    env = merged.get("Env")
    if not env:
        merged["Env"] = image_env
    else:
        names = {_env_name(entry) for entry in env}
        merged["Env"] = env + [entry for entry in image_env if _env_name(entry) not in names]
    labels = dict(image.get("Labels") or {})
    labels.update(merged.get("Labels") or {})
    merged["Labels"] = labels
    entrypoint = merged.get("Entrypoint")
    if not entrypoint:
        if not merged.get("Cmd"):
            merged["Cmd"] = image.get("Cmd")
        if entrypoint is None:
            merged["Entrypoint"] = image.get("Entrypoint")
    if not merged.get("WorkingDir"):
        merged["WorkingDir"] = image.get("WorkingDir") or ""
    volumes = dict(image.get("Volumes") or {})
    volumes.update(merged.get("Volumes") or {})
    merged["Volumes"] = {key: {} for key in volumes}
    if not merged.get("StopSignal") and image.get("StopSignal"):
        merged["StopSignal"] = image["StopSignal"]
    if not merged.get("Shell") and image.get("Shell"):
        merged["Shell"] = image["Shell"]
    if not merged.get("OnBuild") and image.get("OnBuild"):
        merged["OnBuild"] = image["OnBuild"]
    image_check = image.get("Healthcheck")
    if image_check:
        check = merged.get("Healthcheck")
        if check is None:
            merged["Healthcheck"] = dict(image_check)
        else:
            for field in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if not check.get(field) and image_check.get(field):
                    check[field] = image_check[field]
    entrypoint = merged.get("Entrypoint")
    if entrypoint is not None and len(entrypoint) == 1 and entrypoint[0] == "":
        merged["Entrypoint"] = None
    if not merged.get("Entrypoint") and not merged.get("Cmd"):
        raise InvalidParameter("No command specified")
    working_dir = merged.get("WorkingDir") or ""
    if working_dir and not working_dir.startswith("/"):
        raise InvalidParameter(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )
    for key in merged.get("ExposedPorts") or {}:
        parse_port_key(key)
    result = dict(CONFIG_DEFAULTS)
    result.update({key: value for key, value in merged.items() if value is not None or key in CONFIG_DEFAULTS})
    if not result.get("Volumes"):
        result["Volumes"] = None
    if not result.get("ExposedPorts"):
        result.pop("ExposedPorts", None)
    if not result.get("Shell"):
        result.pop("Shell", None)
    return result


def entrypoint_and_args(config: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Docker's Path and Args: the entrypoint's first word, then the rest plus Cmd."""
    entrypoint = list(config.get("Entrypoint") or [])
    command = list(config.get("Cmd") or [])
    words = entrypoint + command
    if not words:
        raise InvalidParameter("No command specified")
    return words[0], words[1:]


# --- ports ----------------------------------------------------------------------------------


def parse_port_key(key: str) -> tuple[int, int, str]:
    """`80/tcp`, `8000-8002/udp`, `53` -> (first, last, protocol)."""
    match = _PORT_KEY.fullmatch(key)
    if match is None:
        raise InvalidParameter(f'invalid port specification: "{key}"')
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 0 < first <= last <= 65535:
        raise InvalidParameter(f'invalid port specification: "{key}"')
    return first, last, match.group(3) or "tcp"


def normalize_port_key(key: str) -> str:
    first, last, protocol = parse_port_key(key)
    return f"{first}/{protocol}" if first == last else f"{first}-{last}/{protocol}"


def parse_port_bindings(value: Any) -> dict[str, list[dict[str, str]]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter("PortBindings must be an object")
    bindings: dict[str, list[dict[str, str]]] = {}
    for key, entries in value.items():
        normalized = normalize_port_key(str(key))
        result: list[dict[str, str]] = []
        for entry in entries or []:
            if not isinstance(entry, dict):
                raise InvalidParameter(f"PortBindings[{key}] entries must be objects")
            host_ip = _string(entry.get("HostIp"), "HostIp")
            host_port = _string(entry.get("HostPort"), "HostPort")
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip.strip("[]"))
                except ValueError:
                    raise InvalidParameter(f"invalid IP address: {host_ip}") from None
            found = _HOST_PORT.fullmatch(host_port)
            if found is None or (found.group(2) and not found.group(1)):
                raise InvalidParameter(f'invalid port specification: "{host_port}"')
            for text in (found.group(1), found.group(2)):
                if text and not 0 <= int(text) <= 65535:
                    raise InvalidParameter(f'invalid port specification: "{host_port}"')
            result.append({"HostIp": host_ip, "HostPort": host_port})
        bindings[normalized] = result
    return bindings


# --- HostConfig -----------------------------------------------------------------------------


def parse_restart_policy(value: Any) -> dict[str, Any]:
    if value is None:
        return {"Name": "no", "MaximumRetryCount": 0}
    if not isinstance(value, dict):
        raise InvalidParameter("RestartPolicy must be an object")
    name = _string(value.get("Name"), "RestartPolicy.Name")
    maximum = _int(value.get("MaximumRetryCount"), "RestartPolicy.MaximumRetryCount")
    policy = restart.RestartPolicy.parse(name, maximum)
    return {"Name": policy.name or "no", "MaximumRetryCount": policy.maximum_retry_count}


def check_resources(host_config: Mapping[str, Any], cpu_count: int) -> list[str]:
    """moby's resource checks; returns warnings, raises InvalidParameter for bad values."""
    warnings: list[str] = []
    memory = _int(host_config.get("Memory"), "Memory")
    swap = _int(host_config.get("MemorySwap"), "MemorySwap")
    if memory < 0:
        raise InvalidParameter(f"invalid memory limit {memory}: must not be negative")
    if 0 < memory < MINIMUM_MEMORY_BYTES:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory == 0:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    swappiness = host_config.get("MemorySwappiness")
    if swappiness is not None and _int(swappiness, "MemorySwappiness") != -1 and not 0 <= swappiness <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    reservation = _int(host_config.get("MemoryReservation"), "MemoryReservation")
    if memory > 0 and reservation > memory:
        raise InvalidParameter(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    nano_cpus = _int(host_config.get("NanoCpus"), "NanoCpus")
    period = _int(host_config.get("CpuPeriod"), "CpuPeriod")
    quota = _int(host_config.get("CpuQuota"), "CpuQuota")
    if nano_cpus and period:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano_cpus and quota:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano_cpus < 0 or nano_cpus > cpu_count * 1_000_000_000:
        raise InvalidParameter(
            f"Range of CPUs is from 0.01 to {cpu_count}.00, as there are only {cpu_count} CPUs available"
        )
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidParameter(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if 0 < quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = _int(host_config.get("CpuShares"), "CpuShares")
    if shares < 0:
        raise InvalidParameter(f"invalid CPU shares {shares}: must not be negative")
    if shares == 1:
        warnings.append("Your kernel does not support CPU shares below 2; the minimum (2) is used.")
    for ulimit in host_config.get("Ulimits") or []:
        if not isinstance(ulimit, dict) or not isinstance(ulimit.get("Name"), str):
            raise InvalidParameter("Ulimits entries must be objects with Name, Soft and Hard")
        soft = _int(ulimit.get("Soft"), "Ulimits.Soft")
        hard = _int(ulimit.get("Hard"), "Ulimits.Hard")
        if hard >= 0 and soft > hard:
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
    cpuset = _string(host_config.get("CpusetCpus"), "CpusetCpus")
    if cpuset and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", cpuset):
        raise InvalidParameter(f"Invalid value {cpuset} for cpuset cpus")
    return warnings


# Docker's `--init` runs tini (as docker-init) as the container's pid 1; so does flotta,
# from Debian's statically linked build, bind-mounted read-only at the same path.
INIT_BINARY = "/usr/bin/tini-static"
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"


def _check_unsupported(host_config: Mapping[str, Any]) -> None:
    """Options flotta cannot honour yet: refused clearly rather than silently ignored."""
    if host_config.get("Privileged"):
        raise NotImplementedYet("--privileged is not supported by flotta yet")
    if host_config.get("Devices"):
        raise NotImplementedYet("--device is not supported by flotta yet")
    if host_config.get("DeviceRequests"):
        raise NotImplementedYet("--gpus and device requests are not supported by flotta yet")
    if host_config.get("Init") and not os.path.exists(INIT_BINARY):
        raise NotImplementedYet(
            f"--init needs an init binary at {INIT_BINARY} (Debian's tini package provides it)"
        )
    for field, allowed in (("PidMode", ("",)), ("IpcMode", ("", "private", "shareable")),
                           ("UsernsMode", ("", "host")), ("UTSMode", ("",)),
                           ("CgroupnsMode", ("", "host"))):  # fmt: skip
        value = _string(host_config.get(field), field)
        if value not in allowed:
            raise NotImplementedYet(f"{field} {value!r} is not supported by flotta yet")
    if host_config.get("VolumesFrom"):
        raise NotImplementedYet("--volumes-from is not supported by flotta yet")
    log_type = (host_config.get("LogConfig") or {}).get("Type") or ""
    if log_type not in ("", "json-file", "local", "k8s-file"):
        raise NotImplementedYet(f"logging driver {log_type!r} is not supported: use json-file")


def security_options(host_config: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """(seccomp enabled, warnings) from SecurityOpt."""
    seccomp = True
    warnings: list[str] = []
    for option in _string_list(host_config.get("SecurityOpt"), "SecurityOpt") or []:
        normalized = option.replace(":", "=", 1) if "=" not in option else option
        if normalized in ("seccomp=unconfined",):
            seccomp = False
        elif normalized.startswith("seccomp="):
            raise NotImplementedYet("custom seccomp profiles are not supported by flotta yet")
        elif normalized.startswith("no-new-privileges"):
            warnings.append("no-new-privileges is not enforced by flotta yet")
        elif not normalized.startswith(_SECURITY_OPTS_IGNORED):
            raise InvalidParameter(f"Invalid --security-opt: {option!r}")
    return seccomp, warnings


def parse_host_config(value: Any, cpu_count: int | None = None) -> tuple[dict[str, Any], list[str]]:
    """The HostConfig with defaults filled in, and warnings; raises on bad values."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidParameter("HostConfig must be an object")
    host_config = copy.deepcopy(HOST_CONFIG_DEFAULTS)
    for key, item in value.items():
        if item is not None:
            host_config[key] = copy.deepcopy(item)
    warnings = check_resources(host_config, cpu_count or os.cpu_count() or 1)
    _check_unsupported(host_config)
    _, security_warnings = security_options(host_config)
    warnings += security_warnings
    host_config["RestartPolicy"] = parse_restart_policy(value.get("RestartPolicy"))
    policy = host_config["RestartPolicy"]["Name"]
    if _bool(host_config.get("AutoRemove"), "AutoRemove") and policy not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    mode = _string(host_config.get("NetworkMode"), "NetworkMode") or "default"
    host_config["NetworkMode"] = "bridge" if mode == "default" else mode
    if host_config["NetworkMode"] == "container:":
        raise InvalidParameter("invalid container format container:<name|id>")
    host_config["PortBindings"] = parse_port_bindings(value.get("PortBindings"))
    for field in ("Binds", "Dns", "DnsSearch", "DnsOptions", "ExtraHosts", "CapAdd", "CapDrop",
                  "GroupAdd", "Links"):  # fmt: skip
        if host_config.get(field) is not None:
            host_config[field] = _string_list(host_config[field], field)
    log_config = host_config.get("LogConfig") or {}
    host_config["LogConfig"] = {
        "Type": "json-file",
        "Config": _string_map(log_config.get("Config"), "LogConfig.Config"),
    }
    if _int(host_config.get("ShmSize"), "ShmSize") < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    if not host_config.get("ShmSize"):
        host_config["ShmSize"] = DEFAULT_SHM_BYTES
    _int(host_config.get("OomScoreAdj"), "OomScoreAdj")
    if not -1000 <= host_config["OomScoreAdj"] <= 1000:
        raise InvalidParameter(
            f"Invalid value {host_config['OomScoreAdj']}, range for oom score adj is [-1000, 1000]"
        )
    _string_map(host_config.get("Sysctls"), "Sysctls")
    _string_map(host_config.get("Tmpfs"), "Tmpfs")
    return host_config, warnings


def parse_endpoints(networking: Any, network_mode: str) -> dict[str, dict[str, Any]]:
    """EndpointsConfig by network name ("default" is the default bridge)."""
    if networking is None:
        networking = {}
    if not isinstance(networking, dict):
        raise InvalidParameter("NetworkingConfig must be an object")
    raw = networking.get("EndpointsConfig") or {}
    if not isinstance(raw, dict):
        raise InvalidParameter("NetworkingConfig.EndpointsConfig must be an object")
    endpoints: dict[str, dict[str, Any]] = {}
    for name, settings in raw.items():
        if settings is not None and not isinstance(settings, dict):
            raise InvalidParameter(f"EndpointsConfig[{name}] must be an object")
        key = "bridge" if name == "default" else name
        endpoints[key] = dict(settings or {})
    primary = network_mode if not network_mode.startswith("container:") else ""
    if primary and primary not in endpoints:
        endpoints = {primary: {}, **endpoints}
    return endpoints


def check_network_conflicts(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> None:
    """moby's checks of options that contradict the network mode."""
    mode = host_config["NetworkMode"]
    if mode.startswith("container:"):
        if config.get("Hostname"):
            raise InvalidParameter("conflicting options: hostname and the network mode")
        if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
            raise InvalidParameter(
                "conflicting options: port publishing and the container type network mode"
            )
        if host_config.get("Dns"):
            raise InvalidParameter("conflicting options: dns and the network mode")
        if host_config.get("ExtraHosts"):
            raise InvalidParameter("conflicting options: custom host-to-IP mapping and the network mode")
    if mode in ("host", "none") and config.get("MacAddress"):
        raise InvalidParameter("conflicting options: mac-address and the network mode")


def plan_create(
    body: Mapping[str, Any], image_config: Mapping[str, Any] | None, cpu_count: int | None = None
) -> CreatePlan:
    """Everything create needs to know, checked; raises InvalidParameter/NotImplementedYet."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("config cannot be empty in order to create a container")
    requested = parse_config(body)
    host_config, warnings = parse_host_config(body.get("HostConfig"), cpu_count)
    config = merge_image_config(requested, image_config)
    for key in host_config.get("PortBindings") or {}:
        config.setdefault("ExposedPorts", {})[key] = {}
    check_network_conflicts(config, host_config)
    endpoints = parse_endpoints(body.get("NetworkingConfig"), host_config["NetworkMode"])
    if host_config["NetworkMode"] == "host" and host_config.get("PortBindings"):
        warnings.append("Published ports are discarded when using host network mode")
    return CreatePlan(config, host_config, endpoints, tuple(warnings))


def stop_timeout_seconds(config: Mapping[str, Any], requested: int | None) -> float | None:
    """The stop timeout: the request's `t`, else Config.StopTimeout, else 10 s (-1: forever)."""
    value = requested if requested is not None else config.get("StopTimeout")
    if value is None:
        value = DEFAULT_STOP_TIMEOUT_SECONDS
    return None if value < 0 else float(value)
