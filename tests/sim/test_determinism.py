"""Same seed, same run: in one process, across processes, whatever PYTHONHASHSEED says."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from sim.cli import build_parser
from sim.determinism import next_deadline_reader, scheduling_canary
from sim.scenario import check_common_options, run_scenario, scenarios
from tests.sim import helpers

REPOSITORY = Path(__file__).resolve().parents[2]
PING = ["ping", "--nodes", "3", "--duration", "3", "--concurrency", "2", "--faults", "all"]


def ping_digest(seed: int, *extra: str) -> str:
    known = scenarios()
    options = build_parser(known).parse_args([*PING, "--seed", str(seed), *extra])
    check_common_options(options)
    return run_scenario(known["ping"], options, seed).digest


def digest_in_subprocess(seed: int, hash_seed: str) -> str:
    return helpers.digest_in_subprocess(PING, seed, hash_seed)


def test_trio_deterministic_scheduling_canary() -> None:
    # If a Trio upgrade drops or changes the private switch, this fails first.
    first = scheduling_canary(3)
    assert len(first) == 50
    assert scheduling_canary(3) == first
    orders = {tuple(scheduling_canary(seed)) for seed in range(8)}
    assert len(orders) > 1, "the scheduler seed has no effect on the interleaving"


def test_canary_is_the_same_in_a_fresh_process_without_hypothesis() -> None:
    # pytest imports Hypothesis, which flips Trio's switch by itself; a bare process
    # shows that the simulator sets it on its own.
    code = (
        "import sys; from sim.determinism import scheduling_canary; "
        "assert 'hypothesis' not in sys.modules; print(scheduling_canary(3))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout.strip() == str(scheduling_canary(3))


def test_same_seed_same_digest_in_process() -> None:
    assert ping_digest(11) == ping_digest(11)


def test_different_seeds_different_digests() -> None:
    assert len({ping_digest(seed) for seed in (1, 2, 3)}) == 3


def test_same_digest_across_processes_and_hash_seeds() -> None:
    in_process = ping_digest(5)
    assert digest_in_subprocess(5, "0") == in_process
    assert digest_in_subprocess(5, "12345") == in_process


async def test_next_deadline_reader_agrees_with_trio_statistics(
    autojump_clock: trio.abc.Clock,
) -> None:
    def public() -> float:
        return trio.current_time() + trio.lowlevel.current_statistics().seconds_to_next_deadline

    read = next_deadline_reader()
    assert read() == public() == math.inf
    start = trio.current_time()
    with trio.move_on_after(5.0):
        assert read() == pytest.approx(public()) == pytest.approx(start + 5.0)
        with trio.move_on_after(2.0):
            assert read() == pytest.approx(public()) == pytest.approx(start + 2.0)
            await trio.sleep(1.0)
            assert read() == pytest.approx(start + 2.0)
