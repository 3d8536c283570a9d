"""Sweeps over seeds: parsing, aggregation, failing seeds, worker processes."""

from __future__ import annotations

import io
import json
import re

import pytest

import sim.scenarios.ping as ping
from sim.cli import build_parser, main
from sim.scenario import check_common_options, scenarios
from sim.sweep import parse_seeds, run_sweep
from sim.world import Violation, World

QUICK = ["ping", "--nodes", "3", "--duration", "2", "--concurrency", "2"]


def options(*extra: str):  # type: ignore[no-untyped-def]
    parsed = build_parser(scenarios()).parse_args([*QUICK, *extra])
    check_common_options(parsed)
    return parsed


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("7", [7]), ("1-4", [1, 2, 3, 4]), ("5,1-3,3", [1, 2, 3, 5]), (" 2 , 0 ", [0, 2])],
)
def test_parse_seeds(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "3-1", "-5", "1-", "1-2-3", "0-99999999"])
def test_parse_seeds_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="seed"):
        parse_seeds(text)


def test_sweep_in_process_aggregates_and_lists_failing_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    def odd_seeds_fail(world: World) -> None:
        if world.seed % 2 and world.statistics.steps > 100:
            raise Violation("odd seed")

    monkeypatch.setattr(ping, "_check_replies", odd_seeds_fail)
    seen: list[int] = []
    result = run_sweep("ping", options(), [1, 2, 3, 4], jobs=1, on_result=lambda r: seen.append(r.seed))
    assert sorted(seen) == [1, 2, 3, 4]
    assert [failure.seed for failure in result.failures] == [1, 3]
    assert not result.ok
    assert result.seeds == 4
    assert 4.0 < result.simulated_seconds < 8.0  # two full runs, two cut short
    assert result.delivered > 0


def test_sweep_command_in_worker_processes() -> None:
    out = io.StringIO()
    status = main([*QUICK, "--seeds", "1-3", "--jobs", "2", "--twice"], out=out)
    text = out.getvalue()
    assert status == 0, text
    assert re.match(
        r"sweep ping: 3 seeds, 0 failures, 0 nondeterministic, simulated 6\.0 s, wall [\d.]+ s \(2 jobs",
        text,
    )


def test_sweep_output_names_failing_seeds_with_a_reproduction(monkeypatch: pytest.MonkeyPatch) -> None:
    def seed_two_fails(world: World) -> None:
        if world.seed == 2:
            raise Violation("seed two is cursed")

    monkeypatch.setattr(ping, "_check_replies", seed_two_fails)
    out = io.StringIO()
    status = main([*QUICK, "--seeds", "1-3", "--jobs", "1"], out=out)
    text = out.getvalue()
    assert status == 1
    assert "3 seeds, 1 failures" in text
    assert "failing seeds: 2" in text
    assert "seed 2: violation at step 1 t=" in text and "seed two is cursed" in text
    assert "reproduce: python -m sim ping --seed 2 --nodes 3 --duration 2 --faults all" in text


def test_sweep_json_names_failing_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    def seed_three_fails(world: World) -> None:
        if world.seed == 3:
            raise Violation("three")

    monkeypatch.setattr(ping, "_check_replies", seed_three_fails)
    out = io.StringIO()
    assert main([*QUICK, "--seeds", "2-3", "--jobs", "1", "--json"], out=out) == 1
    summary = json.loads(out.getvalue())
    assert summary["failing_seeds"] == [3] and summary["seeds"] == 2 and not summary["ok"]
    assert summary["failures"][0]["message"] == "three"


@pytest.mark.slow
def test_long_sweep_passes() -> None:
    out = io.StringIO()
    status = main(["ping", "--seeds", "1-40", "--duration", "30"], out=out)
    assert status == 0, out.getvalue()
