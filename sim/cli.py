"""The command line: `python -m sim <scenario> [options]`, `python -m sim list`.

Exit status: 0 when every run passed, 1 when one failed (a violation, an error, or a
digest that differs between two runs of one seed with --twice), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from sim.faults import FaultPlan, PlanError
from sim.scenario import (
    RunResult,
    Scenario,
    add_common_arguments,
    check_common_options,
    format_summary,
    run_scenario,
    scenarios,
)
from sim.sweep import format_sweep, parse_seeds, run_sweep, sweep_summary

PROGRAM = "python -m sim"


def build_parser(known: dict[str, Scenario]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Run a scenario in flotta's deterministic simulator. "
        "The same seed gives the same run and the same trace digest.",
    )
    commands = parser.add_subparsers(dest="command", metavar="SCENARIO")
    commands.add_parser("list", help="list the scenarios")
    for name, scenario in known.items():
        sub = commands.add_parser(name, help=scenario.help, description=scenario.help)
        add_common_arguments(sub, scenario)
        sub.add_argument(
            "--twice",
            action="store_true",
            help="run each seed twice and fail when the digests differ",
        )
        scenario.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    known = scenarios()
    parser = build_parser(known)
    options = parser.parse_args(argv)
    if options.command is None:
        parser.print_usage(sys.stderr)
        print(f"{PROGRAM}: error: name a scenario (or 'list')", file=sys.stderr)
        return 2
    if options.command == "list":
        for name, scenario in known.items():
            print(f"{name:<12}{scenario.help}", file=out)
        return 0
    scenario = known[options.command]
    try:
        check_common_options(options)
        seeds = parse_seeds(options.seeds) if options.seeds is not None else None
        if seeds is not None and (options.trace or options.trace_file):
            raise ValueError("--trace and --trace-file show one run: use --seed, not --seeds")
        if options.jobs < 0:
            raise ValueError(f"--jobs must be >= 0, got {options.jobs}")
    except (ValueError, OSError) as error:
        print(f"{PROGRAM} {options.command}: error: {error}", file=sys.stderr)
        return 2
    try:
        if seeds is not None:
            return _sweep(scenario, options, seeds, out)
        return _single(scenario, options, out)
    except (PlanError, ValueError) as error:
        print(f"{PROGRAM} {options.command}: error: {error}", file=sys.stderr)
        return 2


def _single(scenario: Scenario, options: argparse.Namespace, out: TextIO) -> int:
    plans: list[FaultPlan] = []
    with contextlib.ExitStack() as stack:
        sink = out if options.trace else None
        if options.trace_file:
            sink = stack.enter_context(open(options.trace_file, "w", encoding="utf-8"))
        result = run_scenario(scenario, options, options.seed, trace_sink=sink, plan_out=plans)
    if options.print_plan and plans:
        out.write("fault plan:\n")
        out.write("".join(f"  {line}\n" for line in str(plans[0]).splitlines()))
    second_digest = None
    if options.twice:
        second_digest = run_scenario(scenario, options, options.seed).digest
    nondeterministic = second_digest is not None and second_digest != result.digest
    if options.json:
        summary = result.summary()
        summary["second_digest"] = second_digest
        out.write(json.dumps(summary, sort_keys=True) + "\n")
    else:
        if nondeterministic:
            out.write(f"NONDETERMINISTIC: second run digest {second_digest}\n")
        out.write(format_summary(result, scenario, options) + "\n")
    return 0 if result.ok and not nondeterministic else 1


def _sweep(scenario: Scenario, options: argparse.Namespace, seeds: list[int], out: TextIO) -> int:
    progress = sys.stderr if sys.stderr.isatty() else None
    done = failed = 0

    def on_result(result: RunResult) -> None:
        nonlocal done, failed
        done += 1
        failed += not result.ok
        if progress is not None:
            progress.write(f"\r{done}/{len(seeds)} seeds, {failed} failures ")
            progress.flush()

    result = run_sweep(scenario.name, options, seeds, jobs=options.jobs, on_result=on_result)
    if progress is not None:
        progress.write("\r")
    if options.json:
        out.write(json.dumps(sweep_summary(result), sort_keys=True) + "\n")
    else:
        out.write(format_sweep(result, options) + "\n")
    return 0 if result.ok else 1
