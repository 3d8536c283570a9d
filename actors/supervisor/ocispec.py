"""The OCI runtime `config.json` for a container, built from a typed `ContainerSpec`.

The defaults are Docker's (moby's `oci.DefaultLinuxSpec` as of Engine 28): the 14 default
capabilities in the bounding, effective and permitted sets (none inheritable or ambient),
`noNewPrivileges` off, the masked and read-only /proc and /sys paths, the default mounts
and devices, and private pid/mount/uts/ipc/network namespaces. The caller resolves what the
image and `docker run` flags say (entrypoint + cmd, env, volumes) and passes plain values.

`build_config` is pure apart from reading the host's rlimits; `resolve_user` reads the
container's /etc/passwd and /etc/group through openat2(RESOLVE_IN_ROOT), so a symlink in the
image cannot make the daemon read a host file.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping, Sequence

import attrs

from actors.supervisor import seccomp
from actors.supervisor.errors import SpecError
from actors.supervisor.users import ProcessUser, resolve_user

__all__ = [
    "BuiltConfig",
    "ContainerSpec",
    "MountSpec",
    "ProcessUser",
    "Resources",
    "SpecError",
    "Ulimit",
    "build_config",
    "effective_capabilities",
    "process_config",
    "resolve_user",
]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_BYTES = 64 * 1024 * 1024
CPU_PERIOD_MICROSECONDS = 100_000

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability the kernel knows (for --cap-add ALL and validation).
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# (path, major, minor): the devices every container gets; /dev/console is added for a tty.
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

# Linux's RLIMIT_* numbers (Python's resource module lacks RLIMIT_LOCKS).
_RLIMIT_NAMES: dict[str, int] = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
    "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12,
    "nice": 13, "rtprio": 14, "rttime": 15,
}  # fmt: skip


@attrs.frozen
class MountSpec:
    """One mount the caller asks for: a bind (volume, bind mount) or a tmpfs."""

    destination: str
    type: str = "bind"  # "bind" or "tmpfs"
    source: str = ""
    readonly: bool = False
    # rprivate (Docker's default), private, rshared, shared, rslave, slave.
    propagation: str = "rprivate"
    options: tuple[str, ...] = ()  # extra mount options, e.g. ("size=65536k", "mode=1777")


@attrs.frozen
class Ulimit:
    name: str  # as `docker run --ulimit`: nofile, nproc, core, ...
    soft: int
    hard: int


@attrs.frozen
class Resources:
    memory_bytes: int = 0  # 0: unlimited; swap is set equal, so the container never swaps
    nano_cpus: int = 0  # --cpus * 1e9; 0: unlimited
    cpu_shares: int = 0
    cpu_quota_microseconds: int = 0  # --cpu-quota, when given instead of --cpus
    cpu_period_microseconds: int = 0
    cpuset_cpus: str = ""
    pids_limit: int = 0  # 0 or -1: unlimited


@attrs.frozen
class ContainerSpec:
    """What `docker run` asks of the executor, resolved by the caller to plain values."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""  # name|uid[:group|gid]; resolved against the rootfs
    group_add: tuple[str, ...] = ()
    hostname: str = ""
    terminal: bool = False
    console_height: int = 0
    console_width: int = 0
    # "new" or "none": a fresh network namespace; "host": the host's; else a netns path.
    network: str = "new"
    readonly_rootfs: bool = False
    mounts: tuple[MountSpec, ...] = ()
    hosts_file: str = ""  # host paths of per-container files bind-mounted over /etc/...
    resolv_conf_file: str = ""
    hostname_file: str = ""
    shm_size_bytes: int = DEFAULT_SHM_BYTES
    resources: Resources = Resources()
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: Mapping[str, str] = attrs.field(factory=dict)
    oom_score_adj: int | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: bool = True  # flotta's default profile; False = unconfined
    annotations: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class BuiltConfig:
    config: dict[str, object]
    warnings: tuple[str, ...]


def build_config(
    spec: ContainerSpec,
    *,
    rootfs: str,
    cgroups_path: str,
    user: ProcessUser,
    host_rlimits: Mapping[int, tuple[int, int]] | None = None,
) -> BuiltConfig:
    """The runtime config for `spec`, with warnings for values adjusted to the host.

    `rootfs` is the mounted overlay, `cgroups_path` e.g. "/flotta/<id>", `user` what
    `resolve_user` returned. Raises SpecError on a value no runtime would accept.
    """
    if not spec.args:
        raise SpecError("no command specified: args is empty")
    if not spec.cwd.startswith("/"):
        raise SpecError(f"working directory {spec.cwd!r} must be an absolute path")
    warnings: list[str] = []
    process: dict[str, object] = process_config(spec, user)
    rlimits, rlimit_warnings = _rlimits(spec.ulimits, host_rlimits)
    warnings.extend(rlimit_warnings)
    if rlimits:
        process["rlimits"] = rlimits
    if spec.oom_score_adj is not None:
        if not -1000 <= spec.oom_score_adj <= 1000:
            raise SpecError(f"oom_score_adj {spec.oom_score_adj} is outside -1000..1000")
        process["oomScoreAdj"] = spec.oom_score_adj
    linux: dict[str, object] = {
        "namespaces": _namespaces(spec.network),
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "cgroupsPath": cgroups_path,
        "resources": _resources(spec.resources),
        "devices": _devices(spec.terminal),
        "rootfsPropagation": "rprivate",
    }
    if spec.sysctls:
        linux["sysctl"] = {str(key): str(value) for key, value in spec.sysctls.items()}
    if spec.seccomp:
        linux["seccomp"] = seccomp.default_profile(
            effective_capabilities(spec.cap_add, spec.cap_drop)
        )
    config: dict[str, object] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "mounts": _mounts(spec),
        "linux": linux,
    }
    if spec.annotations:
        config["annotations"] = dict(spec.annotations)
    return BuiltConfig(config, tuple(warnings))


def process_config(spec: ContainerSpec, user: ProcessUser) -> dict[str, object]:
    """The OCI `process` object; also what `crun exec --process` takes for an exec."""
    capabilities = effective_capabilities(spec.cap_add, spec.cap_drop)
    process: dict[str, object] = {
        "terminal": spec.terminal,
        "user": {
            "uid": user.uid,
            "gid": user.gid,
            "additionalGids": list(user.additional_gids),
        },
        "args": list(spec.args),
        "env": container_env(
            spec.env, hostname=spec.hostname, terminal=spec.terminal, home=user.home
        ),
        "cwd": spec.cwd,
        "capabilities": {
            "bounding": capabilities,
            "effective": capabilities,
            "permitted": capabilities,
        },
        "noNewPrivileges": False,
    }
    if spec.terminal and spec.console_height > 0 and spec.console_width > 0:
        process["consoleSize"] = {"height": spec.console_height, "width": spec.console_width}
    return process


def container_env(env: Sequence[str], *, hostname: str, terminal: bool, home: str) -> list[str]:
    """Docker's environment: PATH, HOSTNAME, TERM (with a tty) and HOME added when absent."""
    names = set()
    for entry in env:
        name = entry.split("=", 1)[0]
        if not name or "=" not in entry:
            raise SpecError(f"environment entry {entry!r} is not NAME=value")
        names.add(name)
    result = list(env)
    if "PATH" not in names:
        result.insert(0, f"PATH={DEFAULT_PATH}")
    if hostname and "HOSTNAME" not in names:
        result.insert(1, f"HOSTNAME={hostname}")
    if terminal and "TERM" not in names:
        result.append("TERM=xterm")
    if "HOME" not in names:
        result.append(f"HOME={home}")
    return result


def effective_capabilities(cap_add: Sequence[str], cap_drop: Sequence[str]) -> list[str]:
    """Docker's default set with --cap-add/--cap-drop applied (names with or without CAP_)."""
    added = [_capability_name(name) for name in cap_add]
    dropped = [_capability_name(name) for name in cap_drop]
    result = list(ALL_CAPABILITIES) if "ALL" in added else list(DEFAULT_CAPABILITIES)
    for name in added:
        if name != "ALL" and name not in result:
            result.append(name)
    if "ALL" in dropped:
        only_added = [name for name in added if name != "ALL"] if "ALL" not in added else []
        return list(dict.fromkeys(only_added))
    return [name for name in result if name not in dropped]


def _capability_name(name: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in ALL_CAPABILITIES:
        raise SpecError(f"unknown capability: {name!r}")
    return upper


def _namespaces(network: str) -> list[dict[str, str]]:
    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if network in ("new", "none"):
        namespaces.append({"type": "network"})
    elif network == "host":
        pass
    elif network.startswith("/"):
        namespaces.append({"type": "network", "path": network})
    else:
        raise SpecError(f"network {network!r} must be 'new', 'none', 'host' or the path of a netns")
    return namespaces


def _mounts(spec: ContainerSpec) -> list[dict[str, object]]:
    shm_options = ["nosuid", "noexec", "nodev", "mode=1777", f"size={spec.shm_size_bytes}"]
    mounts: list[dict[str, object]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["ro", "nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": shm_options},
    ]
    # Docker makes these writable unless the root is read-only.
    network_file_options = ["rbind", "rprivate", "ro" if spec.readonly_rootfs else "rw"]
    for source, destination in (
        (spec.resolv_conf_file, "/etc/resolv.conf"),
        (spec.hostname_file, "/etc/hostname"),
        (spec.hosts_file, "/etc/hosts"),
    ):
        if source:
            if not source.startswith("/"):
                raise SpecError(f"{destination} source {source!r} must be an absolute host path")
            mounts.append(
                {
                    "destination": destination,
                    "type": "bind",
                    "source": source,
                    "options": network_file_options,
                }
            )
    for mount in spec.mounts:
        mounts.append(_user_mount(mount))
    return mounts


_PROPAGATIONS = frozenset({"rprivate", "private", "rshared", "shared", "rslave", "slave"})


def _user_mount(mount: MountSpec) -> dict[str, object]:
    if not mount.destination.startswith("/"):
        raise SpecError(f"mount destination {mount.destination!r} must be an absolute path")
    if mount.propagation not in _PROPAGATIONS:
        raise SpecError(
            f"mount propagation {mount.propagation!r} for {mount.destination} is not one of {sorted(_PROPAGATIONS)}"
        )
    access = "ro" if mount.readonly else "rw"
    if mount.type == "bind":
        if not mount.source.startswith("/"):
            raise SpecError(
                f"bind mount source {mount.source!r} for {mount.destination} must be an absolute host path"
            )
        options = ["rbind", access, mount.propagation, *mount.options]
        return {
            "destination": mount.destination,
            "type": "bind",
            "source": mount.source,
            "options": options,
        }
    if mount.type == "tmpfs":
        options = ["nosuid", "nodev", "noexec", access, *mount.options]
        return {
            "destination": mount.destination,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": options,
        }
    raise SpecError(f"mount type {mount.type!r} for {mount.destination} must be 'bind' or 'tmpfs'")


def _resources(resources: Resources) -> dict[str, object]:
    result: dict[str, object] = {"devices": _device_rules()}
    if resources.memory_bytes < 0:
        raise SpecError(f"memory limit {resources.memory_bytes} must not be negative")
    if resources.memory_bytes:
        if resources.memory_bytes < 6 * 1024 * 1024:
            raise SpecError("minimum memory limit allowed is 6MB")
        result["memory"] = {"limit": resources.memory_bytes, "swap": resources.memory_bytes}
    cpu: dict[str, object] = {}
    if resources.nano_cpus and (
        resources.cpu_quota_microseconds or resources.cpu_period_microseconds
    ):
        raise SpecError("conflicting options: nano_cpus and cpu quota/period cannot both be set")
    if resources.nano_cpus < 0:
        raise SpecError(f"nano_cpus {resources.nano_cpus} must not be negative")
    if resources.nano_cpus:
        cpu["period"] = CPU_PERIOD_MICROSECONDS
        cpu["quota"] = resources.nano_cpus * CPU_PERIOD_MICROSECONDS // 1_000_000_000
    if resources.cpu_quota_microseconds:
        cpu["quota"] = resources.cpu_quota_microseconds
    if resources.cpu_period_microseconds:
        cpu["period"] = resources.cpu_period_microseconds
    if resources.cpu_shares:
        if resources.cpu_shares < 2:
            raise SpecError(f"cpu shares {resources.cpu_shares} must be at least 2")
        cpu["shares"] = resources.cpu_shares
    if resources.cpuset_cpus:
        cpu["cpus"] = resources.cpuset_cpus
    if cpu:
        result["cpu"] = cpu
    if resources.pids_limit > 0:
        result["pids"] = {"limit": resources.pids_limit}
    return result


def _device_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = [{"allow": False, "access": "rwm"}]
    allowed = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)]
    rules.extend(
        {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        for major, minor in allowed
    )
    # The container's own pseudo-terminals (devpts, major 136).
    rules.append({"allow": True, "type": "c", "major": 136, "access": "rwm"})
    return rules


def _devices(terminal: bool) -> list[dict[str, object]]:
    devices = [
        {
            "path": path,
            "type": "c",
            "major": major,
            "minor": minor,
            "fileMode": 0o666,
            "uid": 0,
            "gid": 0,
        }
        for path, major, minor in DEFAULT_DEVICES
    ]
    # crun sets /dev/console up itself (bind of the pty) when process.terminal is true.
    del terminal
    return devices


def host_rlimits() -> dict[int, tuple[int, int]]:
    return {number: resource.getrlimit(number) for number in _RLIMIT_NAMES.values()}


def _rlimits(
    ulimits: Sequence[Ulimit], host: Mapping[int, tuple[int, int]] | None
) -> tuple[list[dict[str, object]], list[str]]:
    """RLIMIT_* entries: the caller's ulimits clamped to the host's hard limits.

    Without CAP_SYS_RESOURCE the runtime cannot raise a hard limit, so asking for more than
    the host's makes every container fail; we clamp and warn instead. RLIMIT_NOFILE defaults
    to the host's hard limit for both values, as Docker's containers inherit dockerd's.
    """
    host = host_rlimits() if host is None else host
    warnings: list[str] = []
    wanted: dict[str, tuple[int, int]] = {}
    nofile_hard = host.get(_RLIMIT_NAMES["nofile"], (1024, 1024))[1]
    if nofile_hard != resource.RLIM_INFINITY:
        wanted["nofile"] = (nofile_hard, nofile_hard)
    for ulimit in ulimits:
        name = ulimit.name.lower()
        if name not in _RLIMIT_NAMES:
            raise SpecError(f"invalid ulimit type: {ulimit.name!r}")
        if ulimit.soft > ulimit.hard and ulimit.hard >= 0:
            raise SpecError(
                f"ulimit {name}: soft limit {ulimit.soft} is greater than hard limit {ulimit.hard}"
            )
        wanted[name] = (ulimit.soft, ulimit.hard)
    result: list[dict[str, object]] = []
    for name, (soft, hard) in wanted.items():
        host_hard = host.get(_RLIMIT_NAMES[name], (resource.RLIM_INFINITY, resource.RLIM_INFINITY))[
            1
        ]
        soft = _as_rlimit(soft)
        hard = _as_rlimit(hard)
        if host_hard != resource.RLIM_INFINITY and (
            hard == resource.RLIM_INFINITY or hard > host_hard
        ):
            warnings.append(
                f"ulimit {name} hard limit {_show(hard)} exceeds the host's {host_hard}; using {host_hard}"
            )
            hard = host_hard
            soft = min(soft, hard) if soft != resource.RLIM_INFINITY else hard
        result.append(
            {"type": f"RLIMIT_{name.upper()}", "soft": _oci_rlimit(soft), "hard": _oci_rlimit(hard)}
        )
    return result, warnings


def _as_rlimit(value: int) -> int:
    return resource.RLIM_INFINITY if value < 0 else value


def _oci_rlimit(value: int) -> int:
    return (1 << 64) - 1 if value == resource.RLIM_INFINITY else value


def _show(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)
