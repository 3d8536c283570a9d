"""Every network fault is observable: loss, duplication, partitions, clogs, crashes."""

from __future__ import annotations

import math

import pytest

from sim.faults import (
    Clog,
    Crash,
    FaultPlan,
    Heal,
    Isolate,
    Loss,
    OneWay,
    Partition,
    PlanEntry,
    Restart,
)
from sim.network import LinkConfig, NetworkConfig, latency_table
from tests.sim.helpers import from_to, recording_world, send_notes


def plan(*entries: tuple[float, object]) -> FaultPlan:
    return FaultPlan(tuple(PlanEntry(time, fault) for time, fault in entries))  # type: ignore[arg-type]


def test_all_frames_arrive_without_faults_on_the_grid_within_latency_bounds() -> None:
    link = LinkConfig(latency_base_seconds=0.002, latency_jitter_seconds=0.003, latency_max_seconds=0.05)
    world, received, _ = recording_world(link=link)
    send_notes(world, 0.1, "a", "b", 200)
    assert world.run(1.0) is None
    assert sorted(from_to(received, "a", "b")) == list(range(200))
    for time, *_ in received:
        assert 0.1 + 0.002 <= time <= 0.1 + 0.05 + 0.001
        ticks = time / 0.001
        assert math.isclose(ticks, round(ticks), abs_tol=1e-6)
    statistics = world.network.statistics
    assert (statistics.sent, statistics.delivered, statistics.dropped) == (200, 200, 0)


def test_jitter_reorders_and_fifo_links_do_not() -> None:
    world, received, _ = recording_world(link=LinkConfig(latency_jitter_seconds=0.01))
    send_notes(world, 0.1, "a", "b", 100)
    assert world.run(1.0) is None
    order = from_to(received, "a", "b")
    assert sorted(order) == list(range(100)) and order != list(range(100))

    world, received, _ = recording_world(link=LinkConfig(latency_jitter_seconds=0.01, fifo=True))
    send_notes(world, 0.1, "a", "b", 100)
    assert world.run(1.0) is None
    assert from_to(received, "a", "b") == list(range(100))


def test_loss_drops_frames() -> None:
    world, received, _ = recording_world(link=LinkConfig(loss_probability=1.0))
    send_notes(world, 0.1, "a", "b", 50)
    assert world.run(1.0) is None
    assert received == []
    assert world.network.statistics.dropped_loss == 50

    world, received, _ = recording_world(link=LinkConfig(loss_probability=0.5))
    send_notes(world, 0.1, "a", "b", 200)
    assert world.run(1.0) is None
    statistics = world.network.statistics
    assert 0 < statistics.dropped_loss < 200
    assert len(received) == 200 - statistics.dropped_loss


def test_loss_fault_changes_one_link_only() -> None:
    world, received, _ = recording_world()
    world.load_plan(plan((0.05, Loss(1.0, "a", "b"))))
    send_notes(world, 0.1, "a", "b", 20)
    send_notes(world, 0.1, "b", "a", 20)
    assert world.run(1.0) is None
    assert from_to(received, "a", "b") == []
    assert sorted(from_to(received, "b", "a")) == list(range(20))


def test_duplication_delivers_twice() -> None:
    world, received, _ = recording_world(link=LinkConfig(duplicate_probability=1.0))
    send_notes(world, 0.1, "a", "b", 30)
    assert world.run(1.0) is None
    assert sorted(from_to(received, "a", "b")) == sorted(list(range(30)) * 2)
    assert world.network.statistics.duplicated == 30


def test_partition_isolates_groups_until_heal() -> None:
    world, received, _ = recording_world(nodes=("a", "b", "c"))
    world.load_plan(plan((0.05, Partition((("a",), ("b", "c")))), (0.5, Heal())))
    for source, target in (("a", "b"), ("b", "a"), ("b", "c"), ("c", "a")):
        send_notes(world, 0.1, source, target, 5)
    send_notes(world, 0.6, "a", "b", 5)
    assert world.run(1.0) is None
    assert from_to(received, "b", "a") == [] and from_to(received, "c", "a") == []
    assert sorted(from_to(received, "b", "c")) == list(range(5))
    # Only the notes sent after the heal got from a to b.
    assert sorted(from_to(received, "a", "b")) == list(range(5))
    assert all(time > 0.6 for time, node, origin, _ in received if (origin, node) == ("a", "b"))
    assert world.network.statistics.dropped_partition == 15


def test_partition_drops_frames_already_in_flight() -> None:
    link = LinkConfig(latency_base_seconds=0.2, latency_jitter_seconds=0.0)
    world, received, _ = recording_world(link=link)
    world.load_plan(plan((0.15, Partition((("a",), ("b",))))))
    send_notes(world, 0.1, "a", "b", 3)  # sent before the cut, due after it
    assert world.run(1.0) is None
    assert received == []
    assert world.network.statistics.dropped_partition == 3


def test_one_way_partition_is_one_way() -> None:
    world, received, _ = recording_world()
    world.load_plan(plan((0.05, OneWay(("a",), ("b",)))))
    send_notes(world, 0.1, "a", "b", 10)
    send_notes(world, 0.1, "b", "a", 10)
    assert world.run(1.0) is None
    assert from_to(received, "a", "b") == []
    assert sorted(from_to(received, "b", "a")) == list(range(10))


def test_isolate_cuts_a_node_off_both_ways() -> None:
    world, received, _ = recording_world(nodes=("a", "b", "c"))
    world.load_plan(plan((0.05, Isolate("a"))))
    send_notes(world, 0.1, "a", "b", 5)
    send_notes(world, 0.1, "c", "a", 5)
    send_notes(world, 0.1, "b", "c", 5)
    assert world.run(1.0) is None
    assert from_to(received, "a", "b") == [] and from_to(received, "c", "a") == []
    assert sorted(from_to(received, "b", "c")) == list(range(5))


def test_clog_delays_without_losing() -> None:
    world, received, _ = recording_world()
    world.load_plan(plan((0.05, Clog("b", 0.5))))
    send_notes(world, 0.1, "a", "b", 10)
    assert world.run(2.0) is None
    assert sorted(from_to(received, "a", "b")) == list(range(10))
    assert all(time >= 0.55 for time, *_ in received)
    assert world.network.statistics.delayed_clog == 10


def test_frames_in_flight_to_a_crashed_node_are_lost_even_after_restart() -> None:
    link = LinkConfig(latency_base_seconds=0.2, latency_jitter_seconds=0.0)
    world, received, boots = recording_world(link=link)
    world.load_plan(plan((0.15, Crash("b")), (0.2, Restart("b"))))
    send_notes(world, 0.1, "a", "b", 4)  # due at 0.3, to incarnation 1
    send_notes(world, 0.5, "a", "b", 2)  # to incarnation 2
    assert world.run(1.0) is None
    assert boots == {"a": 1, "b": 2}
    assert sorted(from_to(received, "a", "b")) == [0, 1]
    assert world.network.statistics.dropped_down == 4


def test_frames_to_a_down_node_are_dropped() -> None:
    world, received, _ = recording_world()
    world.load_plan(plan((0.05, Crash("b"))))
    send_notes(world, 0.1, "a", "b", 3)
    assert world.run(1.0) is None
    assert received == []
    assert world.network.statistics.dropped_down == 3


def test_trace_records_each_frame() -> None:
    world, _, _ = recording_world(link=LinkConfig(duplicate_probability=1.0))
    world.load_plan(plan((0.2, Loss(1.0))))
    send_notes(world, 0.1, "a", "b", 1)
    send_notes(world, 0.3, "a", "b", 1)
    assert world.run(1.0) is None
    kinds = [line.split()[1] for line in world.trace.tail(100)]
    assert kinds.count("send") == 2
    assert kinds.count("duplicate") == 1
    assert kinds.count("deliver") == 2
    assert kinds.count("drop") == 1
    assert "fault" in kinds


def test_latency_table_follows_the_configuration() -> None:
    table = latency_table(LinkConfig(0.001, 0.002, 0.5, 0.01))
    assert len(table) == 1024 and table == sorted(table)
    assert min(table) > 0.001 and max(table) == 0.01
    middle = table[512]
    assert 0.0029 < middle < 0.0031  # base + median jitter
    assert set(latency_table(LinkConfig(0.004, 0.0))) == {0.004}


@pytest.mark.parametrize(
    "config",
    [
        dict(loss_probability=1.5),
        dict(duplicate_probability=-0.1),
        dict(latency_base_seconds=-1.0),
    ],
)
def test_bad_link_configuration_is_refused(config: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LinkConfig(**config)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delivery_quantum_seconds"):
        NetworkConfig(delivery_quantum_seconds=0.0)
