"""Simulator speed figures, measured with the ping scenario.

`measure(...)` runs one ping world and returns its figures; `python -m sim.bench` prints
three workloads:
- asks: every worker always has an ask in flight (think 0), one tell per ask — the
  runtime's request/reply path under saturation;
- tells: eight tells per ask — mostly one-way traffic, like Raft's AppendEntries;
- light: one worker per node thinking 100 ms, with every fault profile on — about a
  5-node Raft's heartbeat traffic, to show the simulated/wall ratio.

Wall seconds depend on what else the machine runs; CPU seconds (process time) are
given too and are the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sim.scenario import add_common_arguments, check_common_options, get_scenario, run_scenario


def measure(
    nodes: int = 5,
    duration: float = 10.0,
    *,
    seed: int = 1,
    concurrency: int = 8,
    tells: int = 1,
    think_seconds: float = 0.0,
    faults: str = "none",
    quantum_seconds: float = 0.001,
) -> dict[str, Any]:
    """Run ping once; its speed figures (wall and CPU) and the run's digest."""
    scenario = get_scenario("ping")
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, scenario)
    scenario.add_arguments(parser)
    options = parser.parse_args(
        [
            "--nodes", str(nodes),
            "--duration", str(duration),
            "--faults", faults,
            "--concurrency", str(concurrency),
            "--tells", str(tells),
            "--think", str(think_seconds),
            "--quantum", str(quantum_seconds),
        ]
    )  # fmt: skip
    check_common_options(options)
    cpu_start = time.process_time()
    result = run_scenario(scenario, options, seed)
    cpu_seconds = time.process_time() - cpu_start
    delivered = result.network["delivered"]
    return {
        "nodes": nodes,
        "seed": seed,
        "simulated_seconds": result.simulated_seconds,
        "wall_seconds": result.wall_seconds,
        "cpu_seconds": cpu_seconds,
        "speed_ratio": result.speed_ratio,
        "speed_ratio_cpu": result.simulated_seconds / cpu_seconds if cpu_seconds > 0 else 0.0,
        "sent": result.network["sent"],
        "delivered": delivered,
        "dropped": result.network["dropped"],
        "delivered_per_wall_second": result.delivered_per_wall_second,
        "delivered_per_cpu_second": delivered / cpu_seconds if cpu_seconds > 0 else 0.0,
        "asks_ok": result.report["asks_ok"],
        "steps": result.steps,
        "ok": result.ok,
        "digest": result.digest,
    }


WORKLOADS: dict[str, dict[str, Any]] = {
    "asks": dict(concurrency=8, tells=1, think_seconds=0.0, faults="none"),
    "tells": dict(concurrency=8, tells=8, think_seconds=0.0, faults="none"),
    "light": dict(concurrency=1, tells=1, think_seconds=0.1, faults="all"),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--light-duration", type=float, default=600.0)
    options = parser.parse_args()
    print(
        f"{'workload':<8} {'sim s':>7} {'wall s':>7} {'cpu s':>7} {'sim/wall':>9} "
        f"{'sim/cpu':>8} {'delivered':>10} {'msgs/wall-s':>12} {'msgs/cpu-s':>11}"
    )
    for name, workload in WORKLOADS.items():
        duration = options.light_duration if name == "light" else options.duration
        figures = measure(options.nodes, duration, **workload)
        print(
            f"{name:<8} {figures['simulated_seconds']:>7.1f} {figures['wall_seconds']:>7.2f} "
            f"{figures['cpu_seconds']:>7.2f} {figures['speed_ratio']:>8.1f}x "
            f"{figures['speed_ratio_cpu']:>7.1f}x {figures['delivered']:>10} "
            f"{figures['delivered_per_wall_second']:>12,.0f} "
            f"{figures['delivered_per_cpu_second']:>11,.0f}"
        )


if __name__ == "__main__":
    main()
