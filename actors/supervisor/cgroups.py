"""Container cgroups on a v1 (hybrid) host: making crun accept the host, stats, OOM, cleanup.

The hosts flotta targets mount every v1 controller separately and cgroup2 at
`/sys/fs/cgroup/unified`. crun 1.8 refuses to run anything ("cgroups in hybrid mode not
supported") while a controller is still enabled on that cgroup2 mount, which on these
machines is `hugetlb`; `ensure_cgroup_hierarchy` moves such controllers to v1 mounts of
their own, as Debian's cgroupfs-mount does for every controller.

A container's cgroup is the same relative path (e.g. `/flotta/<id>`) under every v1
hierarchy; crun creates it and removes the leaf on `crun delete`, but leaves the parent.
Everything here is plain synchronous file I/O on cgroupfs: each call costs microseconds,
so the daemon may call it from the Trio thread.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

CGROUP_ROOT = "/sys/fs/cgroup"
# memory.limit_in_bytes reads as this (PAGE_COUNTER_MAX pages, page aligned) when unlimited.
_UNLIMITED_FLOOR_BYTES = 1 << 62


class CgroupError(Exception):
    """A cgroup operation the kernel refused; the message names the path and the reason."""


@attrs.frozen
class CgroupMount:
    """One mounted cgroup hierarchy: v1 with its controllers, or the v2 unified tree."""

    mountpoint: str
    version: int
    controllers: frozenset[str]


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup hierarchies listed in a /proc/<pid>/mountinfo text, in file order.

    A v1 line carries its controllers in the super options (`rw,memory`, `rw,name=systemd`);
    a named hierarchy is listed under its `name=...` token.
    """
    mounts: list[CgroupMount] = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields:
            continue
        separator = fields.index("-")
        if separator < 5 or len(fields) < separator + 4:
            continue
        filesystem = fields[separator + 1]
        mountpoint = _unescape_mountinfo(fields[4])
        if filesystem == "cgroup2":
            mounts.append(CgroupMount(mountpoint, 2, frozenset()))
        elif filesystem == "cgroup":
            options = fields[separator + 3].split(",")
            controllers = frozenset(
                option for option in options if option not in _V1_MOUNT_FLAGS and "=" not in option
            ) | frozenset(option for option in options if option.startswith("name="))
            mounts.append(CgroupMount(mountpoint, 1, controllers))
    return mounts


_V1_MOUNT_FLAGS = frozenset({"rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode"})


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out = []
    index = 0
    while index < len(field):
        digits = field[index + 1 : index + 4]
        if field[index] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(digits, 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def _mount_cgroup_v1(controller: str, target: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.mount(b"cgroup", target.encode(), b"cgroup", 0, controller.encode())
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount -t cgroup -o {controller} cgroup {target}: {os.strerror(code)}")


def ensure_cgroup_hierarchy(
    cgroup_root: str = CGROUP_ROOT,
    *,
    mountinfo_path: str = "/proc/self/mountinfo",
    mount: Callable[[str, str], None] = _mount_cgroup_v1,
) -> list[str]:
    """Move controllers still enabled on a hybrid host's cgroup2 mount to v1 mounts.

    Returns one human-readable line per change (empty when nothing had to be done, so a
    second call returns []). A pure cgroup2 host or a host without the unified mount is left
    alone. Raises CgroupError when the kernel refuses a mount.
    """
    unified = Path(cgroup_root) / "unified" / "cgroup.controllers"
    try:
        enabled = unified.read_text().split()
    except FileNotFoundError:
        return []
    if not enabled:
        return []
    mounts = parse_mountinfo(Path(mountinfo_path).read_text())
    mounted_v1 = set().union(*(m.controllers for m in mounts if m.version == 1))
    done: list[str] = []
    for controller in enabled:
        if controller in mounted_v1:
            continue
        target = os.path.join(cgroup_root, controller)
        os.makedirs(target, exist_ok=True)
        try:
            mount(controller, target)
        except OSError as error:
            if error.errno == errno.EBUSY:
                # Someone mounted it between our read and our mount: the goal holds.
                continue
            raise CgroupError(
                f"cannot move cgroup controller {controller!r} from cgroup2 to a v1 mount at "
                f"{target}: {error.strerror or error}"
            ) from error
        done.append(
            f"cgroups: moved controller {controller!r} from the cgroup2 mount to a v1 hierarchy "
            f"at {target} (crun refuses hybrid hosts with controllers on cgroup2)"
        )
    return done


class Cgroups:
    """The host's v1 hierarchies, and the per-container files flotta reads in them."""

    def __init__(self, mounts: Iterable[CgroupMount]) -> None:
        self._by_controller: dict[str, str] = {}
        self._all_mountpoints: list[str] = []
        for mount in mounts:
            self._all_mountpoints.append(mount.mountpoint)
            for controller in mount.controllers:
                self._by_controller.setdefault(controller, mount.mountpoint)

    @classmethod
    def detect(cls, mountinfo_path: str = "/proc/self/mountinfo") -> Cgroups:
        return cls(parse_mountinfo(Path(mountinfo_path).read_text()))

    def controller_path(self, controller: str, cgroup_path: str) -> Path | None:
        """Where `cgroup_path` (absolute, as in config.json) lives for a controller."""
        mountpoint = self._by_controller.get(controller)
        if mountpoint is None:
            return None
        return Path(mountpoint) / cgroup_path.lstrip("/")

    def _read(self, controller: str, cgroup_path: str, name: str) -> str | None:
        directory = self.controller_path(controller, cgroup_path)
        if directory is None:
            return None
        try:
            return (directory / name).read_text()
        except (FileNotFoundError, ProcessLookupError, OSError):
            return None

    def exists(self, cgroup_path: str) -> bool:
        directory = self.controller_path("memory", cgroup_path)
        return directory is not None and directory.is_dir()

    def oom_kill_count(self, cgroup_path: str) -> int | None:
        """How many processes the kernel OOM-killed in this memory cgroup (None: no cgroup)."""
        text = self._read("memory", cgroup_path, "memory.oom_control")
        if text is None:
            return None
        return _flat_keyed(text).get("oom_kill", 0)

    def process_ids(self, cgroup_path: str) -> list[int]:
        """The processes (thread-group leaders) in the container's cgroup, sorted."""
        for controller in ("pids", "memory", "freezer", "cpu"):
            text = self._read(controller, cgroup_path, "cgroup.procs")
            if text is not None:
                return sorted(int(word) for word in text.split())
        return []

    def is_frozen(self, cgroup_path: str) -> bool:
        text = self._read("freezer", cgroup_path, "freezer.state")
        return text is not None and text.strip() in ("FROZEN", "FREEZING")

    def remove(self, cgroup_path: str) -> list[str]:
        """rmdir the container's cgroup in every hierarchy; returns what could not be removed.

        A cgroup still holding processes cannot be removed (EBUSY) and is reported, not raised.
        """
        leftover: list[str] = []
        relative = cgroup_path.strip("/")
        if not relative:
            raise CgroupError("refusing to remove the root cgroup")
        for mountpoint in self._all_mountpoints:
            directory = os.path.join(mountpoint, relative)
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                continue
            except OSError:
                leftover.append(directory)
        return leftover

    def remove_parent(self, parent: str) -> list[str]:
        """rmdir flotta's parent cgroup (e.g. `/flotta`) where it is empty; returns leftovers."""
        return self.remove(parent)

    def stats(self, cgroup_path: str, *, now_ns: int | None = None) -> dict[str, object]:
        """The container's usage shaped like the Engine API's `/containers/{id}/stats` body.

        Holds `read`, `cpu_stats`, `memory_stats`, `pids_stats`, `blkio_stats`, `num_procs`
        and `storage_stats`; the daemon adds `name`, `id`, `networks` and `precpu_stats`
        (the previous sample's `cpu_stats`).
        """
        read_ns = time.time_ns() if now_ns is None else now_ns
        return {
            "read": format_rfc3339_nano(read_ns),
            "preread": "0001-01-01T00:00:00Z",
            "pids_stats": self._pids_stats(cgroup_path),
            "blkio_stats": self._blkio_stats(cgroup_path),
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": self._cpu_stats(cgroup_path),
            "memory_stats": self._memory_stats(cgroup_path),
        }

    def _memory_stats(self, cgroup_path: str) -> dict[str, object]:
        stat = _flat_keyed(self._read("memory", cgroup_path, "memory.stat") or "")
        limit = _int_or_zero(self._read("memory", cgroup_path, "memory.limit_in_bytes"))
        if limit == 0 or limit >= _UNLIMITED_FLOOR_BYTES:
            limit = host_memory_bytes()
        return {
            "usage": _int_or_zero(self._read("memory", cgroup_path, "memory.usage_in_bytes")),
            "max_usage": _int_or_zero(
                self._read("memory", cgroup_path, "memory.max_usage_in_bytes")
            ),
            "failcnt": _int_or_zero(self._read("memory", cgroup_path, "memory.failcnt")),
            "limit": limit,
            "stats": stat,
        }

    def _cpu_stats(self, cgroup_path: str) -> dict[str, object]:
        percpu_text = self._read("cpuacct", cgroup_path, "cpuacct.usage_percpu") or ""
        ticks = _flat_keyed(self._read("cpuacct", cgroup_path, "cpuacct.stat") or "")
        nanoseconds_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        throttling = _flat_keyed(self._read("cpu", cgroup_path, "cpu.stat") or "")
        return {
            "cpu_usage": {
                "total_usage": _int_or_zero(self._read("cpuacct", cgroup_path, "cpuacct.usage")),
                "percpu_usage": [int(word) for word in percpu_text.split()],
                "usage_in_kernelmode": ticks.get("system", 0) * nanoseconds_per_tick,
                "usage_in_usermode": ticks.get("user", 0) * nanoseconds_per_tick,
            },
            "system_cpu_usage": system_cpu_usage_ns(),
            "online_cpus": os.cpu_count() or 1,
            "throttling_data": {
                "periods": throttling.get("nr_periods", 0),
                "throttled_periods": throttling.get("nr_throttled", 0),
                "throttled_time": throttling.get("throttled_time", 0),
            },
        }

    def _pids_stats(self, cgroup_path: str) -> dict[str, int]:
        result = {"current": _int_or_zero(self._read("pids", cgroup_path, "pids.current"))}
        limit_text = (self._read("pids", cgroup_path, "pids.max") or "max").strip()
        if limit_text != "max":
            result["limit"] = int(limit_text)
        return result

    def _blkio_stats(self, cgroup_path: str) -> dict[str, object]:
        def entries(name: str) -> list[dict[str, object]] | None:
            text = self._read("blkio", cgroup_path, name)
            if text is None:
                return None
            rows: list[dict[str, object]] = []
            for line in text.splitlines():
                parts = line.split()
                if len(parts) != 3 or ":" not in parts[0]:
                    continue
                major, minor = parts[0].split(":", 1)
                rows.append(
                    {
                        "major": int(major),
                        "minor": int(minor),
                        "op": parts[1],
                        "value": int(parts[2]),
                    }
                )
            return rows

        return {
            "io_service_bytes_recursive": entries("blkio.throttle.io_service_bytes_recursive"),
            "io_serviced_recursive": entries("blkio.throttle.io_serviced_recursive"),
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        }


def _flat_keyed(text: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return result


def _int_or_zero(text: str | None) -> int:
    if not text:
        return 0
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return 0


def system_cpu_usage_ns(stat_path: str = "/proc/stat") -> int:
    """The host's total CPU time in nanoseconds, as Docker's `system_cpu_usage`."""
    with open(stat_path) as handle:
        first = handle.readline().split()
    # user nice system idle iowait irq softirq steal; guest time is already in user/nice.
    ticks = sum(int(value) for value in first[1:9])
    return ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def host_memory_bytes(meminfo_path: str = "/proc/meminfo") -> int:
    with open(meminfo_path) as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def format_rfc3339_nano(time_ns: int) -> str:
    """UTC time with nine fractional digits, as Docker prints timestamps."""
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds:09d}Z"
