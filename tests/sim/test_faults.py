"""Fault plans print, parse back, and are drawn deterministically from a seed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.fault_generation import generate_plan, parse_profiles
from sim.faults import (
    FAULT_TYPES,
    PROFILES,
    ClockDrift,
    ClockStep,
    Clog,
    ClogLink,
    Corrupt,
    Crash,
    Duplicate,
    FaultPlan,
    Heal,
    HealAll,
    Isolate,
    Loss,
    OneWay,
    Partition,
    PlanEntry,
    PlanError,
    Restart,
    Unclog,
    parse_plan,
)

names = st.sampled_from(["n1", "n2", "n3", "n4", "n5", "node-7", "x"])
seconds = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)
probabilities = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def groups(draw: st.DrawFn) -> tuple[tuple[str, ...], ...]:
    chosen = draw(st.lists(names, min_size=2, max_size=7, unique=True))
    cut = draw(st.integers(1, len(chosen) - 1))
    return (tuple(chosen[:cut]), tuple(chosen[cut:]))


@st.composite
def one_way(draw: st.DrawFn) -> OneWay:
    sources = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    targets = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    return OneWay(tuple(sources), tuple(targets))


faults = st.one_of(
    groups().map(Partition),
    one_way(),
    names.map(Isolate),
    st.just(Heal()),
    st.builds(Clog, names, seconds),
    st.builds(ClogLink, names, names, seconds),
    names.map(Unclog),
    st.builds(Loss, probabilities),
    st.builds(Loss, probabilities, names, names),
    st.builds(Duplicate, probabilities),
    st.builds(Duplicate, probabilities, names, names),
    names.map(Crash),
    names.map(Restart),
    st.builds(Corrupt, names, st.sampled_from(["", "wal/", "snap"])),
    st.builds(ClockStep, names, st.floats(-1e3, 1e3, allow_nan=False)),
    st.builds(ClockDrift, names, st.floats(-0.49, 0.49, allow_nan=False)),
    st.just(HealAll()),
)


@given(st.lists(st.tuples(seconds, faults), max_size=20))
def test_a_plan_prints_and_parses_back_to_itself(entries: list) -> None:
    entries.sort(key=lambda entry: entry[0])
    plan = FaultPlan(tuple(PlanEntry(time, fault) for time, fault in entries))
    assert parse_plan(str(plan)) == plan


def test_every_fault_type_is_covered_by_the_round_trip() -> None:
    assert set(FAULT_TYPES) == {
        "partition", "one-way", "isolate", "heal", "clog", "clog-link", "unclog", "loss",
        "duplicate", "crash", "restart", "corrupt", "clock-step", "clock-drift", "heal-all",
    }  # fmt: skip


def test_the_documented_example_parses() -> None:
    plan = parse_plan(
        """
        # comment
        1.5 partition n1,n2|n3,n4,n5
        2.0 one-way n1->n2,n3
        0.5 loss 0.2 n1 n2
        """
    )
    assert [entry.time_seconds for entry in plan.entries] == [0.5, 1.5, 2.0]
    assert plan.entries[1].fault == Partition((("n1", "n2"), ("n3", "n4", "n5")))
    assert plan.entries[2].fault == OneWay(("n1",), ("n2", "n3"))
    assert plan.nodes() == ["n1", "n2", "n3", "n4", "n5"]


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("1.0 explode n1", "unknown fault 'explode'"),
        ("soon crash n1", "time must be a number"),
        ("-1 crash n1", "time must be >= 0"),
        ("1 crash", "crash takes 1 arguments"),
        ("1 loss 1.5", "probability must be within"),
        ("1 partition n1,n2", "at least two groups"),
        ("1 partition n1|n1", "node in two groups"),
        ("1 one-way n1,n2", "sources->targets"),
        ("1 clog n1 -3", "duration must be >= 0"),
        ("1 clock-drift n1 0.7", "drift rate"),
        ("1 clog n1 nan", "must be finite"),
        ("5", "expected '<time> <fault>"),
    ],
)
def test_bad_lines_are_refused_with_the_line_number(line: str, complaint: str) -> None:
    with pytest.raises(PlanError, match="line 2") as raised:
        parse_plan(f"0 heal\n{line}\n")
    assert complaint in str(raised.value)


def test_profiles() -> None:
    assert parse_profiles("all") == PROFILES
    assert parse_profiles("none") == ()
    assert parse_profiles("crashes,network,crashes") == ("crashes", "network")
    with pytest.raises(PlanError, match="unknown fault profile"):
        parse_profiles("meteor")


@pytest.mark.parametrize("seed", range(20))
def test_generated_plans_are_deterministic_and_well_formed(seed: int) -> None:
    nodes = ["n1", "n2", "n3", "n4", "n5"]
    plan = generate_plan(seed, nodes, 60.0)
    assert plan == generate_plan(seed, list(reversed(nodes)), 60.0)
    assert parse_plan(str(plan)) == plan
    times = [entry.time_seconds for entry in plan.entries]
    assert times == sorted(times)
    assert plan.entries[-1] == PlanEntry(48.0, HealAll())
    assert set(plan.nodes()) <= set(nodes)
    # Never more than a minority down at once.
    down: set[str] = set()
    for entry in plan.entries:
        if isinstance(entry.fault, Crash):
            down.add(entry.fault.node)
            assert len(down) <= 2
        elif isinstance(entry.fault, Restart):
            down.discard(entry.fault.node)


def test_different_seeds_draw_different_plans_and_profiles_restrict_them() -> None:
    nodes = ["n1", "n2", "n3"]
    plans = {str(generate_plan(seed, nodes, 60.0)) for seed in range(10)}
    assert len(plans) == 10
    for seed in range(10):
        crash_only = generate_plan(seed, nodes, 60.0, ["crashes"])
        assert {type(entry.fault) for entry in crash_only.entries} <= {Crash, Restart, HealAll}
    assert generate_plan(1, nodes, 60.0, []) == FaultPlan()
