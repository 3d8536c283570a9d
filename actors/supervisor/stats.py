"""`docker stats` and `docker update` helpers: network counters, empty samples, live limits."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from typing import Any

from actors import errdefs
from actors.supervisor import processes
from actors.supervisor.inspect import ZERO_TIME
from actors.supervisor.monitor import Executor
from actors.supervisor.runspec import resources as spec_resources

_NETWORK_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
_NETWORK_TX_FIELDS = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def empty_cpu_stats() -> dict[str, Any]:
    return {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def empty_sample() -> dict[str, Any]:
    """What Docker sends for a container that is not running: zero time, zero counters."""
    blkio = {
        key: None
        for key in (
            "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
            "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
            "io_time_recursive", "sectors_recursive",
        )
    }  # fmt: skip
    return {
        "read": ZERO_TIME,
        "preread": ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": blkio,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": empty_cpu_stats(),
        "precpu_stats": empty_cpu_stats(),
        "memory_stats": {},
    }


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev as Docker's `networks` (loopback left out)."""
    networks: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, separator, rest = line.partition(":")
        if not separator:
            continue
        name = name.strip()
        if name == "lo":
            continue
        values = rest.split()
        if len(values) < 16:
            continue
        counters = {field: int(values[index]) for index, field in enumerate(_NETWORK_FIELDS)}
        counters.update({field: int(values[8 + index]) for index, field in enumerate(_NETWORK_TX_FIELDS)})
        networks[name] = counters
    return networks


def network_counters(pid: int) -> dict[str, dict[str, int]]:
    if pid <= 0:
        return {}
    try:
        with open(f"/proc/{pid}/net/dev") as handle:
            return parse_net_dev(handle.read())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}


def oci_resources(host_config: Mapping[str, Any]) -> dict[str, Any]:
    """linux.resources for `crun update --resources` (memory without swap, as at create)."""
    wanted = spec_resources(host_config)
    result: dict[str, Any] = {}
    if wanted.memory_bytes:
        result["memory"] = {"limit": wanted.memory_bytes, "swap": wanted.memory_bytes}
    cpu: dict[str, Any] = {}
    if wanted.nano_cpus:
        cpu["period"] = 100_000
        cpu["quota"] = wanted.nano_cpus * 100_000 // 1_000_000_000
    if wanted.cpu_quota_microseconds:
        cpu["quota"] = wanted.cpu_quota_microseconds
    if wanted.cpu_period_microseconds:
        cpu["period"] = wanted.cpu_period_microseconds
    if wanted.cpu_shares:
        cpu["shares"] = wanted.cpu_shares
    if wanted.cpuset_cpus:
        cpu["cpus"] = wanted.cpuset_cpus
    if cpu:
        result["cpu"] = cpu
    if wanted.pids_limit:
        result["pids"] = {"limit": wanted.pids_limit}
    return result


async def update_resources(executor: Executor, container_id: str, host_config: Mapping[str, Any]) -> None:
    """Apply new limits to a running container through the runtime's `update`."""
    resources = oci_resources(host_config)
    if not resources:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=executor.run_root) as handle:
        json.dump(resources, handle)
        handle.flush()
        argv = [
            executor.runtime_path, "--root", str(executor.runtime_root),
            "update", "--resources", handle.name, container_id,
        ]  # fmt: skip
        status, output = await processes.run_command(argv, check=False)
    if status != 0:
        raise errdefs.InvalidParameter(f"Cannot update container {container_id}: {output.strip()}")
