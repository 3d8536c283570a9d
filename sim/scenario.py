"""Scenarios: a named way to populate a world, load it, and judge the run.

A scenario subclasses `Scenario` and lives in a module of `sim.scenarios`; the registry
finds it there by its `name` (the module sets `scenario = MyScenario()`), so adding
`sim/scenarios/raft.py` is all it takes to get `python -m sim raft ...`.

The runner (`run_scenario`) is generic: it builds the world from the common options
(seed, nodes, duration, faults), lets the scenario add its nodes and checkers, loads the
fault plan, runs, and returns a `RunResult` — a plain picklable record, so the sweep
runner can collect results from worker processes.

A scenario's hooks, in order:
- `add_arguments(parser)`: its own command-line options (defaults must make sense);
- `network_config(options)`, `disk_config(options)`: the world's fault-free baseline;
- `setup(world, options)`: add nodes (`world.add_node(id, boot)`), checkers and end
  hooks (`world.add_checker`, `world.at_end`); keep per-run state (observers,
  histories) in `world.data`, not on the scenario, since one scenario object serves
  many runs;
- `fault_plan(world, options)`: the plan (default: `--plan`, else drawn from the seed);
- `report(world, options)`: figures for the summary (a dict of plain values), and
  `format_report(report)` to print them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import shlex
import sys
import time
from collections import deque
from typing import Any, ClassVar, TextIO

import attrs

from runtime.host import derive_seed
from sim.disk import DiskConfig
from sim.fault_generation import generate_plan, parse_profiles
from sim.faults import FaultPlan, parse_plan
from sim.network import NetworkConfig
from sim.trace import Trace
from sim.world import World


class Scenario:
    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    nodes_default: ClassVar[int] = 5
    duration_default_seconds: ClassVar[float] = 60.0
    faults_default: ClassVar[str] = "all"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the scenario's own options."""

    def network_config(self, options: argparse.Namespace) -> NetworkConfig:
        return NetworkConfig()

    def disk_config(self, options: argparse.Namespace) -> DiskConfig:
        return DiskConfig()

    def fault_plan(self, world: World, options: argparse.Namespace) -> FaultPlan:
        """The plan for this run: the explicit one, else one drawn from the seed."""
        plan_text = getattr(options, "plan_text", None)
        if plan_text is not None:
            return parse_plan(plan_text)
        return generate_plan(
            derive_seed(options.seed, self.name),
            world.node_ids,
            options.duration,
            parse_profiles(options.faults),
        )

    def setup(self, world: World, options: argparse.Namespace) -> None:
        raise NotImplementedError

    def report(self, world: World, options: argparse.Namespace) -> dict[str, Any]:
        return {}

    def format_report(self, report: dict[str, Any]) -> list[str]:
        return [f"{key:<10}{value}" for key, value in report.items()]


# --- the registry -------------------------------------------------------------------------


def scenarios() -> dict[str, Scenario]:
    """Every scenario in the sim.scenarios package, by name (sorted)."""
    import sim.scenarios as package

    found: dict[str, Scenario] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        scenario = getattr(module, "scenario", None)
        if isinstance(scenario, Scenario):
            if scenario.name in found:
                raise RuntimeError(f"two scenarios named {scenario.name!r}")
            found[scenario.name] = scenario
    return dict(sorted(found.items()))


def get_scenario(name: str) -> Scenario:
    known = scenarios()
    try:
        return known[name]
    except KeyError:
        raise ValueError(f"no scenario {name!r} (known: {', '.join(known)})") from None


# --- common options --------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser, scenario: Scenario) -> None:
    parser.add_argument("--seed", type=int, default=1, help="the seed of the run (default 1)")
    parser.add_argument(
        "--seeds",
        help="run a sweep over seeds instead, e.g. 1-2000 or 1,5,10-20",
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="worker processes for --seeds (default: CPUs)"
    )
    parser.add_argument("--nodes", type=int, default=scenario.nodes_default)
    parser.add_argument(
        "--duration",
        type=float,
        default=scenario.duration_default_seconds,
        help="simulated seconds (default %(default)s)",
    )
    parser.add_argument(
        "--faults",
        default=scenario.faults_default,
        help="fault profiles drawn from the seed: all, none, or a comma list of "
        "network,crashes,disk,clock (default %(default)s)",
    )
    parser.add_argument(
        "--plan", dest="plan_file", help="replay this fault plan file instead (see --print-plan)"
    )
    parser.add_argument("--print-plan", action="store_true", help="print the fault plan")
    parser.add_argument("--trace", action="store_true", help="print the full trace")
    parser.add_argument("--trace-file", help="write the full trace to this file")
    parser.add_argument(
        "--trace-tail",
        type=int,
        default=40,
        help="trace lines shown before a failure (default %(default)s)",
    )
    parser.add_argument("--log", action="store_true", help="show the runtime's log records")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object instead"
    )


def check_common_options(options: argparse.Namespace) -> None:
    """Validate and complete the common options; raises ValueError naming the bad one."""
    if options.nodes < 1:
        raise ValueError(f"--nodes must be at least 1, got {options.nodes}")
    if not 0 < options.duration < float("inf"):
        raise ValueError(f"--duration must be a positive number of seconds, got {options.duration}")
    if options.trace_tail < 0:
        raise ValueError(f"--trace-tail must be >= 0, got {options.trace_tail}")
    parse_profiles(options.faults)
    options.plan_text = None
    if options.plan_file is not None:
        with open(options.plan_file, encoding="utf-8") as handle:
            options.plan_text = handle.read()
        parse_plan(options.plan_text)


# --- one run ------------------------------------------------------------------------------------


@attrs.define
class RunResult:
    scenario: str
    seed: int
    nodes: int
    ok: bool
    digest: str
    trace_lines: int
    simulated_seconds: float
    wall_seconds: float
    cpu_seconds: float
    steps: int
    crashes: int
    restarts: int
    network: dict[str, int]
    report: dict[str, Any]
    plan_entries: int
    failure_kind: str = ""
    failure_message: str = ""
    failure_step: int = 0
    failure_time_seconds: float = 0.0
    failure_details: str = ""
    trace_tail: list[str] = attrs.Factory(list)
    log_records: int = 0
    log_tail: list[str] = attrs.Factory(list)

    @property
    def delivered_per_wall_second(self) -> float:
        return self.network["delivered"] / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def speed_ratio(self) -> float:
        return self.simulated_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The figures as plain data (what --json prints)."""
        network = self.network
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "nodes": self.nodes,
            "ok": self.ok,
            "failure": (
                {
                    "kind": self.failure_kind,
                    "message": self.failure_message,
                    "step": self.failure_step,
                    "time_seconds": self.failure_time_seconds,
                }
                if not self.ok
                else None
            ),
            "simulated_seconds": self.simulated_seconds,
            "wall_seconds": round(self.wall_seconds, 6),
            "cpu_seconds": round(self.cpu_seconds, 6),
            "speed_ratio": round(self.speed_ratio, 3),
            "delivered_per_wall_second": round(self.delivered_per_wall_second, 1),
            "delivered_per_cpu_second": (
                round(network["delivered"] / self.cpu_seconds, 1) if self.cpu_seconds > 0 else 0.0
            ),
            "messages": dict(network),
            "crashes": self.crashes,
            "restarts": self.restarts,
            "steps": self.steps,
            "plan_entries": self.plan_entries,
            "report": dict(self.report),
            "digest": self.digest,
            "trace_lines": self.trace_lines,
        }


class _LogCollector(logging.Handler):
    """Keeps the runtime's log records in memory during a run (no I/O inside the sim)."""

    def __init__(self, keep: int, echo: TextIO | None) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.lines: deque[str] = deque(maxlen=keep)
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        self.lines.append(line)
        if self.echo is not None:
            self.echo.write(line + "\n")


def run_scenario(
    scenario: Scenario,
    options: argparse.Namespace,
    seed: int,
    trace_sink: TextIO | None = None,
    plan_out: list[FaultPlan] | None = None,
) -> RunResult:
    """Run `scenario` once under `seed` with the (checked) common options."""
    options = argparse.Namespace(**vars(options))
    options.seed = seed
    trace = Trace(ring_lines=max(1000, options.trace_tail), sink=trace_sink)
    world = World(
        seed,
        network=scenario.network_config(options),
        disk=scenario.disk_config(options),
        trace=trace,
    )
    scenario.setup(world, options)
    plan = scenario.fault_plan(world, options)
    if plan_out is not None:
        plan_out.append(plan)
    world.load_plan(plan)

    logger = logging.getLogger("flotta")
    collector = _LogCollector(keep=20, echo=sys.stderr if getattr(options, "log", False) else None)
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = [collector]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    try:
        failure = world.run(options.duration)
    finally:
        wall_seconds = time.perf_counter() - wall_start
        cpu_seconds = time.process_time() - cpu_start
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    report = scenario.report(world, options)
    trace_tail = trace.tail(options.trace_tail) if failure is not None else []
    digest = trace.digest()
    trace.close()
    statistics = world.network.statistics
    network = attrs.asdict(statistics)
    network["dropped"] = statistics.dropped
    return RunResult(
        scenario=scenario.name,
        seed=seed,
        nodes=options.nodes,
        ok=failure is None,
        digest=digest,
        trace_lines=trace.line_count,
        simulated_seconds=world.simulated_seconds,
        wall_seconds=wall_seconds,
        cpu_seconds=cpu_seconds,
        steps=world.statistics.steps,
        crashes=world.statistics.crashes,
        restarts=world.statistics.restarts,
        network=network,
        report=report,
        plan_entries=len(plan),
        failure_kind=failure.kind if failure else "",
        failure_message=failure.message if failure else "",
        failure_step=failure.step if failure else 0,
        failure_time_seconds=failure.time_seconds if failure else 0.0,
        failure_details=failure.details if failure else "",
        trace_tail=trace_tail,
        log_records=collector.count,
        log_tail=list(collector.lines),
    )


def reproduce_command(result: RunResult, options: argparse.Namespace) -> str:
    parts = [
        "python -m sim",
        result.scenario,
        f"--seed {result.seed}",
        f"--nodes {options.nodes}",
        f"--duration {options.duration:g}",
    ]
    if options.plan_file is not None:
        parts.append(f"--plan {options.plan_file}")
    else:
        parts.append(f"--faults {options.faults}")
    parts.extend(_scenario_arguments(result.scenario, options))
    return " ".join(parts)


def _scenario_arguments(name: str, options: argparse.Namespace) -> list[str]:
    """The scenario's own options that differ from their defaults (e.g. raft's --mutant)."""
    try:
        scenario = get_scenario(name)
    except ValueError:
        return []
    parser = argparse.ArgumentParser(add_help=False)
    scenario.add_arguments(parser)
    parts = []
    for action in parser._actions:
        if not action.option_strings or not hasattr(options, action.dest):
            continue
        value = getattr(options, action.dest)
        if value == action.default or value is None:
            continue
        flag = max(action.option_strings, key=len)
        if value is True and action.nargs == 0:
            parts.append(flag)
        else:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return parts


def format_summary(result: RunResult, scenario: Scenario, options: argparse.Namespace) -> str:
    network = result.network
    lines = [
        f"scenario  {result.scenario}  seed {result.seed}  nodes {result.nodes}  "
        f"faults {options.faults if options.plan_file is None else options.plan_file} "
        f"({result.plan_entries} plan entries)",
        f"messages  sent {network['sent']}  delivered {network['delivered']}  "
        f"dropped {network['dropped']} (loss {network['dropped_loss']}, "
        f"partition {network['dropped_partition']}, down {network['dropped_down']}, "
        f"dead sender {network['dropped_fenced']})  duplicated {network['duplicated']}  "
        f"clog-delayed {network['delayed_clog']}",
    ]
    lines.extend(scenario.format_report(result.report))
    lines.extend(
        [
            f"nodes     crashes {result.crashes}  restarts {result.restarts}  "
            f"log records {result.log_records}",
            f"time      simulated {result.simulated_seconds:.3f} s  wall {result.wall_seconds:.3f} s  "
            f"cpu {result.cpu_seconds:.3f} s  speed {result.speed_ratio:.1f}x  "
            f"{result.delivered_per_wall_second:,.0f} delivered msgs/wall-s  steps {result.steps}",
            f"digest    {result.digest}  ({result.trace_lines} trace lines)",
        ]
    )
    if not result.ok:
        lines.append("")
        lines.append(
            f"FAILED    {result.failure_kind} at step {result.failure_step}, "
            f"t={result.failure_time_seconds:.6f}: {result.failure_message}"
        )
        lines.append(f"seed      {result.seed}   reproduce: {reproduce_command(result, options)}")
        if result.trace_tail:
            lines.append(f"last {len(result.trace_tail)} trace lines:")
            lines.extend(f"  {line}" for line in result.trace_tail)
        if result.failure_details:
            lines.append(result.failure_details.rstrip())
    return "\n".join(lines)
