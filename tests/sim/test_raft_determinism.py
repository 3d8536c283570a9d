"""The raft scenario replays bit for bit: same seed, same digest, in two fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sim.rafthunt import raft_options
from sim.scenario import run_scenario, scenarios

REPOSITORY = Path(__file__).resolve().parents[2]
RUN = ["raft", "--nodes", "5", "--duration", "12", "--faults", "all"]


def digest_in_subprocess(seed: int, hash_seed: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "sim", *RUN, "--seed", str(seed)],
        cwd=REPOSITORY,
        env=dict(os.environ, PYTHONHASHSEED=hash_seed),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = [line for line in completed.stdout.splitlines() if line.startswith("digest")]
    assert len(lines) == 1, completed.stdout
    return lines[0].split()[1]


def test_same_seed_same_digest_in_two_processes() -> None:
    first = digest_in_subprocess(9, "0")
    assert digest_in_subprocess(9, "4242") == first
    options = raft_options([*RUN[1:], "--seed", "9"])
    assert run_scenario(scenarios()["raft"], options, 9).digest == first


def test_different_seeds_give_different_runs() -> None:
    digests = set()
    for seed in (1, 2):
        options = raft_options([*RUN[1:], "--seed", str(seed)])
        digests.add(run_scenario(scenarios()["raft"], options, seed).digest)
    assert len(digests) == 2
