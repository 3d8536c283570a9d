"""The raft scenario swept over a fixed seed budget: 5 nodes, every fault, every nemesis.

CI runs `CI_SEEDS` seeds in parallel processes (about a second of wall time per seed on
two cores); FLOTTA_SLOW=1 adds a 2000-seed sweep. A failing seed belongs in
`regressions/raft.txt` once fixed.
"""

from __future__ import annotations

import pytest

from sim.rafthunt import hunt, raft_options
from sim.sweep import run_sweep

CI_SEEDS = range(1000, 1200)
ARGUMENTS = ["--nodes", "5", "--duration", "20", "--faults", "all"]


def _describe(result) -> str:  # type: ignore[no-untyped-def]
    lines = [f"{len(result.failures)} failing seeds of {result.seeds}:"]
    for failure in result.failures[:5]:
        lines.append(f"  seed {failure.seed}: {failure.failure_kind}: {failure.failure_message}")
        lines.append(f"    reproduce: python -m sim raft --seed {failure.seed} {' '.join(ARGUMENTS)}")
    return "\n".join(lines)


def test_ci_seed_budget_has_no_violation() -> None:
    result = run_sweep("raft", raft_options(ARGUMENTS), CI_SEEDS, jobs=0)
    assert result.seeds == len(CI_SEEDS)
    assert result.delivered > 1000 * len(CI_SEEDS)  # the runs did real work
    assert result.ok, _describe(result)


def test_the_store_mutant_is_caught_within_the_budget() -> None:
    # M11 turns off client-session dedup: a retried write is applied twice.
    found = hunt("M11", range(1, 41), ARGUMENTS)
    assert found.seed is not None, f"M11 survived {found.tried} seeds"
    assert "At-most-once" in found.message or "Linearizability" in found.kind + found.message


@pytest.mark.slow
def test_two_thousand_seeds_have_no_violation() -> None:
    result = run_sweep("raft", raft_options(["--nodes", "5", "--duration", "30"]), range(1, 2001), jobs=0)
    assert result.ok, _describe(result)
