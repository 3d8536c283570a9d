"""Sweeps: one scenario over many seeds, in parallel worker processes.

Each seed is an independent run (`run_scenario`); workers are fresh interpreters
(multiprocessing "spawn"), so nothing leaks between runs but the seed. The result is
one line — seeds, failures, simulated and wall time — then every failing seed with the
command that reproduces it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable

import attrs

from sim.scenario import RunResult, get_scenario, reproduce_command, run_scenario

seeds_max = 10_000_000


def parse_seeds(text: str) -> list[int]:
    """'1-2000', '7', or a comma list of both ('1,5,10-20'); sorted, without repeats."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low_text, _, high_text = part.partition("-")
                low, high = int(low_text), int(high_text)
            else:
                low = high = int(part)
        except ValueError:
            raise ValueError(f"bad seed range {part!r} in --seeds {text!r}: use e.g. 1-2000 or 1,5,9") from None
        if low < 0 or high < low:
            raise ValueError(f"bad seed range {part!r} in --seeds {text!r}: need 0 <= low <= high")
        if high - low + 1 + len(seeds) > seeds_max:
            raise ValueError(f"--seeds {text!r} names more than {seeds_max} seeds")
        seeds.update(dict.fromkeys(range(low, high + 1)))
    return sorted(seeds)


@attrs.define
class SweepResult:
    scenario: str
    seeds: int
    jobs: int
    failures: list[RunResult]
    nondeterministic: list[int]
    simulated_seconds: float
    wall_seconds: float
    delivered: int

    @property
    def ok(self) -> bool:
        return not self.failures and not self.nondeterministic


def _run_one(job: tuple[str, dict[str, object], int]) -> RunResult:
    scenario_name, option_values, seed = job
    scenario = get_scenario(scenario_name)
    options = argparse.Namespace(**option_values)
    result = run_scenario(scenario, options, seed)
    if getattr(options, "twice", False):
        again = run_scenario(scenario, options, seed)
        if again.digest != result.digest:
            result.report["nondeterministic"] = f"{result.digest} then {again.digest}"
    return result


def run_sweep(
    scenario_name: str,
    options: argparse.Namespace,
    seeds: Iterable[int],
    jobs: int = 0,
    on_result: Callable[[RunResult], None] | None = None,
) -> SweepResult:
    """Run every seed; `jobs` worker processes (0: one per CPU; 1: in this process)."""
    seeds = list(seeds)
    jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    jobs = max(1, min(jobs, len(seeds)))
    values = dict(vars(options))
    values["trace"] = False
    values["trace_file"] = None
    work = [(scenario_name, values, seed) for seed in seeds]
    failures: list[RunResult] = []
    nondeterministic: list[int] = []
    simulated = 0.0
    delivered = 0
    start = time.perf_counter()

    def collect(result: RunResult) -> None:
        nonlocal simulated, delivered
        simulated += result.simulated_seconds
        delivered += result.network["delivered"]
        if "nondeterministic" in result.report:
            nondeterministic.append(result.seed)
        if not result.ok:
            failures.append(result)
        if on_result is not None:
            on_result(result)

    if jobs == 1:
        for job in work:
            collect(_run_one(job))
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs) as pool:
            for result in pool.imap_unordered(_run_one, work, chunksize=1):
                collect(result)
    failures.sort(key=lambda result: result.seed)
    nondeterministic.sort()
    return SweepResult(
        scenario=scenario_name,
        seeds=len(seeds),
        jobs=jobs,
        failures=failures,
        nondeterministic=nondeterministic,
        simulated_seconds=simulated,
        wall_seconds=time.perf_counter() - start,
        delivered=delivered,
    )


def sweep_summary(result: SweepResult) -> dict[str, object]:
    """The sweep as plain data (what --json prints)."""
    return {
        "scenario": result.scenario,
        "seeds": result.seeds,
        "jobs": result.jobs,
        "ok": result.ok,
        "failing_seeds": [failure.seed for failure in result.failures],
        "failures": [
            {
                "seed": failure.seed,
                "kind": failure.failure_kind,
                "message": failure.failure_message,
                "step": failure.failure_step,
                "time_seconds": failure.failure_time_seconds,
            }
            for failure in result.failures
        ],
        "nondeterministic_seeds": result.nondeterministic,
        "simulated_seconds": result.simulated_seconds,
        "wall_seconds": round(result.wall_seconds, 3),
        "delivered": result.delivered,
    }


def format_sweep(result: SweepResult, options: argparse.Namespace) -> str:
    ratio = result.simulated_seconds / result.wall_seconds if result.wall_seconds > 0 else 0.0
    lines = [
        f"sweep {result.scenario}: {result.seeds} seeds, {len(result.failures)} failures, "
        f"{len(result.nondeterministic)} nondeterministic, "
        f"simulated {result.simulated_seconds:.1f} s, wall {result.wall_seconds:.1f} s "
        f"({result.jobs} jobs, {ratio:.1f}x, {result.delivered} msgs delivered)"
    ]
    if result.failures:
        lines.append("failing seeds: " + " ".join(str(failure.seed) for failure in result.failures))
        for failure in result.failures:
            lines.append(
                f"  seed {failure.seed}: {failure.failure_kind} at step {failure.failure_step} "
                f"t={failure.failure_time_seconds:.6f}: {failure.failure_message}"
            )
            lines.append(f"    reproduce: {reproduce_command(failure, options)}")
    if result.nondeterministic:
        lines.append(
            "nondeterministic seeds (same seed, different digests): "
            + " ".join(str(seed) for seed in result.nondeterministic)
        )
    return "\n".join(lines)
