"""Replay every raft seed that once failed (raft.txt): each must pass now."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sim.rafthunt import raft_options
from sim.scenario import run_scenario, scenarios

SEEDS_FILE = Path(__file__).with_name("raft.txt")


def regression_seeds() -> list[tuple[int, list[str], str]]:
    found = []
    for line in SEEDS_FILE.read_text().splitlines():
        text, _, why = line.partition("#")
        if not text.strip():
            continue
        seed, *arguments = shlex.split(text)
        found.append((int(seed), arguments, why.strip()))
    return found


@pytest.mark.parametrize(
    ("seed", "arguments", "why"), regression_seeds(), ids=lambda value: str(value)[:20]
)
def test_regression_seed_passes(seed: int, arguments: list[str], why: str) -> None:
    options = raft_options([*arguments, "--seed", str(seed)])
    result = run_scenario(scenarios()["raft"], options, seed)
    assert result.ok, (
        f"raft seed {seed} ({why}) fails again: {result.failure_kind}: {result.failure_message}\n"
        + "\n".join(result.trace_tail[-20:])
    )


def test_the_seed_file_parses() -> None:
    seeds = regression_seeds()
    assert seeds and all(why for _, _, why in seeds)
