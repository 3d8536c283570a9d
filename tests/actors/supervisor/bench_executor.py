"""Figures for the container executor (run as root; not collected by pytest).

    .venv/bin/python tests/actors/supervisor/bench_executor.py [--runs 20] [--state-dir DIR]

Prints the median of `runs` create+start+wait+remove cycles of `true` through the
executor (conmon + crun), per phase, next to `crun run` of the same root filesystem with the
same config, and conmon's memory per container. Speed is measured here, never asserted in
tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from actors.supervisor import cgroups, monitor, ocispec, rootfs
from tests.actors.supervisor.conftest import build_busybox_rootfs


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


async def executor_cycles(executor: monitor.Executor, lower: str, runs: int) -> dict[str, float]:
    spec = ocispec.ContainerSpec(args=("true",))
    phases: dict[str, list[float]] = {
        "create": [],
        "start": [],
        "wait": [],
        "remove": [],
        "total": [],
    }
    for index in range(runs + 3):
        started = time.perf_counter()
        container = (await executor.create(f"bench{index}", spec, [lower])).container
        created = time.perf_counter()
        await container.start()
        running = time.perf_counter()
        status = await container.wait()
        exited = time.perf_counter()
        await container.remove()
        removed = time.perf_counter()
        assert status.exit_code == 0
        if index < 3:
            continue  # warm-up: thread pool, page cache
        for name, value in zip(
            phases,
            (
                created - started,
                running - created,
                exited - running,
                removed - exited,
                removed - started,
            ),
            strict=True,
        ):
            phases[name].append(value)
    return {name: median_ms(values) for name, values in phases.items()}


def crun_run_cycles(work: Path, lower: str, runs: int) -> float:
    bundle = work / "crun-bundle"
    bundle.mkdir()
    rootfs.mount_overlay(
        str(bundle / "rootfs"), [lower], str(bundle / "upper"), str(bundle / "work")
    )
    try:
        user = ocispec.resolve_user(str(bundle / "rootfs"), "")
        config = ocispec.build_config(
            ocispec.ContainerSpec(args=("true",)),
            rootfs=str(bundle / "rootfs"),
            cgroups_path="/flotta-bench/crun-run",
            user=user,
        ).config
        (bundle / "config.json").write_text(json.dumps(config))
        root = work / "crun-root"
        times = []
        for index in range(runs + 3):
            started = time.perf_counter()
            subprocess.run(
                ["crun", "--root", str(root), "run", "--bundle", str(bundle), f"run{index}"],
                stdin=subprocess.DEVNULL,
                check=True,
            )
            if index >= 3:
                times.append(time.perf_counter() - started)
        return median_ms(times)
    finally:
        rootfs.unmount(str(bundle / "rootfs"))
        cgroups.Cgroups.detect().remove_parent("/flotta-bench")


async def conmon_memory(executor: monitor.Executor, lower: str, count: int) -> dict[str, float]:
    containers = []
    try:
        for index in range(count):
            created = await executor.create(
                f"mem{index}", ocispec.ContainerSpec(args=("sleep", "600")), [lower]
            )
            await created.container.start()
            containers.append(created.container)
        rss, pss = [], []
        for container in containers:
            pid = container.state().conmon_pid
            assert pid is not None
            status = Path(f"/proc/{pid}/status").read_text()
            rss.append(
                int(
                    next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[
                        1
                    ]
                )
            )
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss.append(
                int(
                    next(line for line in rollup.splitlines() if line.startswith("Pss:")).split()[1]
                )
            )
        return {"rss_kib": statistics.median(rss), "pss_kib": statistics.median(pss)}
    finally:
        for container in containers:
            await container.remove(force=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--state-dir", default=None, help="where container directories go")
    arguments = parser.parse_args()
    for line in cgroups.ensure_cgroup_hierarchy():
        print(line)
    work = Path(tempfile.mkdtemp(prefix="flotta-bench-", dir=arguments.state_dir))
    try:
        lower = str(build_busybox_rootfs(work / "busybox"))
        executor = monitor.Executor(work / "state", work / "run", cgroup_parent="/flotta-bench")
        phases = await executor_cycles(executor, lower, arguments.runs)
        crun_ms = crun_run_cycles(work, lower, arguments.runs)
        memory = await conmon_memory(executor, lower, 5)
        executor.remove_cgroup_parent()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"state directory filesystem: {work.parent} (load average {os.getloadavg()[0]:.2f})")
    print(f"executor create+start+wait+remove of `true`, median of {arguments.runs}:")
    for name, value in phases.items():
        print(f"  {name:7s} {value:7.1f} ms")
    print(f"crun run of the same bundle, median of {arguments.runs}: {crun_ms:.1f} ms")
    print(f"conmon per container: RSS {memory['rss_kib']:.0f} KiB, PSS {memory['pss_kib']:.0f} KiB")


if __name__ == "__main__":
    trio.run(main)
