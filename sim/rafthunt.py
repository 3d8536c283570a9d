"""Hunting a mutant: run raft seeds until one fails, in parallel, and stop there.

    python -m sim.rafthunt M1 --seeds 1-200 [--duration 30] [--jobs 2] [-- extra raft options]

The generic sweep (`python -m sim raft --seeds ...`) runs every seed; a mutation test only
needs the first seed whose checkers catch the bug. Seeds are handed out in order to
`jobs` worker processes; as soon as a result shows a failure, the remaining work is
dropped. The answer is the lowest failing seed among those finished, so it can differ
from a serial search by at most the seeds in flight, and it is reproducible with
`python -m sim raft --seed N --mutant M ...`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Sequence

import attrs

from sim.cli import build_parser
from sim.scenario import RunResult, check_common_options, run_scenario, scenarios
from sim.sweep import parse_seeds


@attrs.frozen
class Hunt:
    mutant: str
    seed: int | None
    """The first failing seed found (None: the mutant survived every seed tried)."""
    tried: int
    kind: str = ""
    message: str = ""


def raft_options(arguments: Sequence[str]) -> argparse.Namespace:
    known = scenarios()
    options = build_parser(known).parse_args(["raft", *arguments])
    check_common_options(options)
    return options


def _run(job: tuple[list[str], int]) -> RunResult:
    arguments, seed = job
    options = raft_options(arguments)
    return run_scenario(scenarios()["raft"], options, seed)


def hunt(mutant: str, seeds: Sequence[int], arguments: Sequence[str] = (), jobs: int = 0) -> Hunt:
    """Run `seeds` with `mutant` on until the first failure."""
    arguments = [*arguments, "--mutant", mutant]
    raft_options(arguments)  # bad options fail here, not in a worker
    jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    work = [(list(arguments), seed) for seed in seeds]
    failures: list[RunResult] = []
    tried = 0
    if jobs == 1:
        for job in work:
            result = _run(job)
            tried += 1
            if not result.ok:
                failures.append(result)
                break
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs) as pool:
            for result in pool.imap(_run, work, chunksize=1):
                tried += 1
                if not result.ok:
                    failures.append(result)
                    pool.terminate()
                    break
    if not failures:
        return Hunt(mutant, None, tried)
    first = min(failures, key=lambda result: result.seed)
    return Hunt(mutant, first.seed, tried, first.failure_kind, first.failure_message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.rafthunt", description=__doc__)
    parser.add_argument("mutant", help="e.g. M1 (see consensus/mutants.py, consensus/storemutants.py)")
    parser.add_argument("--seeds", default="1-200")
    parser.add_argument("--jobs", type=int, default=0)
    options, rest = parser.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    result = hunt(options.mutant, parse_seeds(options.seeds), rest, options.jobs)
    if result.seed is None:
        print(f"{result.mutant}: survived {result.tried} seeds")
        return 1
    print(
        f"{result.mutant}: caught at seed {result.seed} after {result.tried} seeds: "
        f"{result.kind}: {result.message.splitlines()[0] if result.message else ''}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
