"""From a container record to what the executor runs: the `ContainerSpec` of one run.

Pure: everything the spec needs that is decided at start (the network namespace, the
paths of the /etc files, the hostname) is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from actors.errdefs import InvalidParameter
from actors.supervisor import createconfig, ocispec
from actors.supervisor.mounts import ResolvedMount
from actors.supervisor.records import ContainerRecord

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?")
_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size_bytes(text: str, what: str) -> int:
    """`10m`, `512k`, `1g`, `100` -> bytes (Docker's RAMInBytes)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidParameter(f"invalid {what}: {text!r}")
    return int(float(match.group(1)) * _UNIT[match.group(2).lower()])


def log_size_max_bytes(host_config: Mapping[str, Any]) -> int:
    options = (host_config.get("LogConfig") or {}).get("Config") or {}
    value = options.get("max-size")
    return parse_size_bytes(value, "log-opt max-size") if value else 0


def mount_spec(mount: ResolvedMount) -> ocispec.MountSpec:
    if mount.kind == "tmpfs":
        return ocispec.MountSpec(
            destination=mount.destination, type="tmpfs", readonly=mount.readonly,
            options=mount.tmpfs_options,
        )  # fmt: skip
    return ocispec.MountSpec(
        destination=mount.destination,
        type="bind",
        source=mount.source,
        readonly=mount.readonly,
        propagation=mount.propagation or "rprivate",
    )


def resources(host_config: Mapping[str, Any]) -> ocispec.Resources:
    shares = int(host_config.get("CpuShares") or 0)
    pids = host_config.get("PidsLimit")
    return ocispec.Resources(
        memory_bytes=int(host_config.get("Memory") or 0),
        nano_cpus=int(host_config.get("NanoCpus") or 0),
        cpu_shares=max(shares, 2) if shares else 0,
        cpu_quota_microseconds=int(host_config.get("CpuQuota") or 0),
        cpu_period_microseconds=int(host_config.get("CpuPeriod") or 0),
        cpuset_cpus=str(host_config.get("CpusetCpus") or ""),
        pids_limit=int(pids) if pids and int(pids) > 0 else 0,
    )


def ulimits(host_config: Mapping[str, Any]) -> tuple[ocispec.Ulimit, ...]:
    return tuple(
        ocispec.Ulimit(str(item["Name"]), int(item.get("Soft") or 0), int(item.get("Hard") or 0))
        for item in host_config.get("Ulimits") or []
    )


def build_spec(
    record: ContainerRecord,
    *,
    network: str,
    files_dir: str,
    share_files: bool = True,
) -> ocispec.ContainerSpec:
    """The spec of the container's next run. `network` is "none", "host" or a netns path;
    `files_dir` holds hostname, hosts and resolv.conf (bind-mounted when `share_files`)."""
    config = record.config
    host_config = record.host_config
    seccomp, _ = createconfig.security_options(host_config)
    console = host_config.get("ConsoleSize") or [0, 0]
    height, width = (int(console[0] or 0), int(console[1] or 0)) if len(console) == 2 else (0, 0)
    args: tuple[str, ...] = (record.path, *record.args)
    mounts = tuple(mount_spec(mount) for mount in record.mounts)
    if host_config.get("Init"):
        args = (createconfig.INIT_PATH_IN_CONTAINER, "--", *args)
        mounts = (
            ocispec.MountSpec(
                destination=createconfig.INIT_PATH_IN_CONTAINER,
                type="bind",
                source=createconfig.INIT_BINARY,
                readonly=True,
                propagation="rprivate",
            ),
            *mounts,
        )
    return ocispec.ContainerSpec(
        args=args,
        env=tuple(config.get("Env") or ()),
        cwd=config.get("WorkingDir") or "/",
        user=config.get("User") or "",
        group_add=tuple(host_config.get("GroupAdd") or ()),
        hostname=config.get("Hostname") or record.short_id,
        terminal=bool(config.get("Tty")),
        console_height=height,
        console_width=width,
        network=network,
        readonly_rootfs=bool(host_config.get("ReadonlyRootfs")),
        mounts=mounts,
        hosts_file=f"{files_dir}/hosts" if share_files else "",
        resolv_conf_file=f"{files_dir}/resolv.conf" if share_files else "",
        hostname_file=f"{files_dir}/hostname" if share_files else "",
        shm_size_bytes=int(host_config.get("ShmSize") or createconfig.DEFAULT_SHM_BYTES),
        resources=resources(host_config),
        ulimits=ulimits(host_config),
        sysctls=dict(host_config.get("Sysctls") or {}),
        oom_score_adj=int(host_config.get("OomScoreAdj") or 0) or None,
        cap_add=tuple(host_config.get("CapAdd") or ()),
        cap_drop=tuple(host_config.get("CapDrop") or ()),
        seccomp=seccomp,
        annotations={"org.flotta.container.name": record.name},
    )
