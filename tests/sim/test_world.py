"""The world: crash and restart, checkers, failures, clocks, the event queue."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from runtime.actor import Actor
from runtime.host import SIMULATION_EPOCH_SECONDS
from runtime.node import Node
from sim.faults import (
    ClockDrift,
    ClockStep,
    Corrupt,
    Crash,
    FaultPlan,
    HealAll,
    Isolate,
    PlanEntry,
    PlanError,
    Restart,
)
from sim.world import Violation, World
from tests.sim.helpers import Note, from_to, recording_world, send_notes


def plan(*entries: tuple[float, Any]) -> FaultPlan:
    return FaultPlan(tuple(PlanEntry(time, fault) for time, fault in entries))


class Journal(Actor):
    """Writes every Note to the disk; fsyncs only the even ones."""

    async def receive(self, message: Any) -> Any:
        match message:
            case Note(seq, _):
                await self.host.disk.append("journal", f"{seq};".encode())
                if seq % 2 == 0:
                    await self.host.disk.fsync("journal")
        return None


def test_crash_removes_actors_and_restart_boots_again_on_the_same_disk() -> None:
    world = World(5)
    boots: list[tuple[str, float, bytes]] = []
    seen: dict[str, Any] = {}

    async def boot(node: Node) -> None:
        content = await node.host.disk.read("journal") if await node.host.disk.exists("journal") else b""
        boots.append((node.node_id, trio.current_time(), content))
        await node.spawn(Journal, "journal")

    world.add_node("a", boot)
    world.add_node("b", boot)

    def before_crash() -> None:
        node = world.node("b")
        assert node is not None
        seen["node"] = node
        seen["actor"] = node.actor("journal")
        for seq in range(4):
            node.ref("journal").tell_nowait(Note(seq, "test"))

    def while_down() -> None:
        seen["down"] = world.node("b")
        seen["old actor after crash"] = seen["node"].actor("journal")

    def after_restart() -> None:
        node = world.node("b")
        seen["restarted node"] = node
        seen["restarted actor"] = node.actor("journal") if node else None

    world.schedule(0.1, before_crash)
    world.load_plan(plan((0.5, Crash("b")), (1.0, Restart("b"))))
    world.schedule(0.7, while_down)
    world.schedule(1.5, after_restart)
    assert world.run(2.0) is None

    assert isinstance(seen["actor"], Journal)
    assert seen["down"] is None
    assert seen["old actor after crash"] is None
    assert seen["restarted node"] is not seen["node"]
    assert isinstance(seen["restarted actor"], Journal)
    assert seen["restarted actor"] is not seen["actor"]
    # Both nodes boot at 0 (in an order the seeded scheduler picks), b again at 1.
    first_boots = sorted((node, time) for node, time, _ in boots[:2])
    assert first_boots == [("a", 0.0), ("b", 0.0)]
    assert [(node, time) for node, time, _ in boots[2:]] == [("b", 1.0)]
    # Note 2 was fsynced, so "0;1;2;" survived; "3;" was not and may be lost or torn.
    assert boots[-1][2] in (b"0;1;2;", b"0;1;2;3", b"0;1;2;3;")
    sim_node = world.sim_node("b")
    assert (sim_node.incarnation, sim_node.crashes, sim_node.restarts) == (2, 1, 1)
    assert (world.statistics.crashes, world.statistics.restarts) == (1, 1)


def test_heal_all_restarts_every_down_node() -> None:
    world, _, boots = recording_world(nodes=("a", "b", "c"))
    world.load_plan(plan((0.1, Crash("a")), (0.2, Crash("c")), (0.3, Isolate("b")), (0.5, HealAll())))
    send_notes(world, 0.6, "b", "a", 3)
    assert world.run(1.0) is None
    assert boots == {"a": 2, "b": 1, "c": 2}


def test_crashing_a_down_node_and_restarting_an_up_one_change_nothing() -> None:
    world, _, boots = recording_world()
    world.load_plan(plan((0.1, Restart("a")), (0.2, Crash("b")), (0.3, Crash("b"))))
    assert world.run(1.0) is None
    assert boots == {"a": 1, "b": 1}
    assert world.statistics.crashes == 1


def test_a_crash_in_the_same_instant_as_the_boot_prevents_it() -> None:
    world, _, boots = recording_world()
    world.load_plan(plan((0.5, Crash("a")), (0.5, Restart("a")), (0.5, Crash("a"))))
    assert world.run(1.0) is None
    assert boots == {"a": 1, "b": 1}
    assert world.node("a") is None


def test_an_exception_escaping_a_node_fails_the_run() -> None:
    world = World(1)

    async def boot(node: Node) -> None:
        await trio.sleep(0.25)
        raise RuntimeError("boot went wrong")

    world.add_node("a", boot)
    failure = world.run(1.0)
    assert failure is not None
    assert failure.kind == "error"
    assert "node a (incarnation 1) raised RuntimeError: boot went wrong" in failure.message
    assert failure.time_seconds == 0.25 == world.simulated_seconds
    assert "Traceback" in failure.details
    assert world.trace.tail(1)[0].startswith("0.250000 error node a")


def test_a_violation_stops_the_run_at_the_step_it_is_seen() -> None:
    world, received, _ = recording_world()
    send_notes(world, 0.1, "a", "b", 1000)
    steps: list[int] = []

    def no_more_than_ten(world: World) -> None:
        steps.append(world.statistics.steps)
        if len(received) > 10:
            raise Violation(f"{len(received)} notes received")

    world.add_checker(no_more_than_ten)
    failure = world.run(5.0)
    assert failure is not None and failure.kind == "violation"
    assert failure.message.endswith("notes received")
    assert failure.step == steps[-1]
    assert 0.1 < failure.time_seconds < 0.2
    assert world.simulated_seconds == failure.time_seconds
    assert len(received) < 1000
    assert world.trace.tail(1)[0].split()[1] == "violation"


def test_end_hooks_see_running_actors_and_can_fail_the_run() -> None:
    world, _, _ = recording_world()
    seen: list[Any] = []

    def at_end(world: World) -> None:
        node = world.node("a")
        seen.append(node.actor("rec") if node else None)
        raise Violation("end check failed")

    world.at_end(at_end)
    failure = world.run(1.0)
    assert seen and seen[0] is not None
    assert failure is not None and failure.message == "end check failed"
    assert failure.time_seconds == 1.0


def test_scheduled_callbacks_run_in_time_then_schedule_order() -> None:
    world = World(1)
    order: list[tuple[float, str]] = []
    for name, at in (("late", 0.3), ("first", 0.1), ("second", 0.1), ("middle", 0.2)):
        world.schedule(at, lambda name=name: order.append((trio.current_time(), name)))
    world.schedule(0.05, lambda: world.call_later(0.25, lambda: order.append((trio.current_time(), "later"))))
    assert world.run(1.0) is None
    assert order == [(0.1, "first"), (0.1, "second"), (0.2, "middle"), (0.3, "late"), (0.3, "later")]
    assert world.simulated_seconds == 1.0


def test_actor_timers_interleave_with_queued_events() -> None:
    world = World(1)
    order: list[tuple[float, str]] = []

    class Ticker(Actor):
        async def started(self) -> None:
            self.nursery.start_soon(self.tick)

        async def tick(self) -> None:
            while True:
                await self.host.clock.sleep(0.3)
                order.append((trio.current_time(), "tick"))

    async def boot(node: Node) -> None:
        await node.spawn(Ticker, "ticker")

    world.add_node("a", boot)
    world.schedule(0.45, lambda: order.append((trio.current_time(), "event")))
    assert world.run(1.0) is None
    assert [name for _, name in order] == ["tick", "event", "tick", "tick"]
    assert [time for time, _ in order] == pytest.approx([0.3, 0.45, 0.6, 0.9])


def test_clock_faults_move_wall_time_and_rate_but_never_monotonic_time_back() -> None:
    world = World(1)
    samples: dict[str, tuple[float, float]] = {}

    async def boot(node: Node) -> None:
        pass

    world.add_node("a", boot, clock_offset_seconds=10.0)
    clock = world.sim_node("a").clock

    def sample(name: str) -> None:
        samples[name] = (clock.now(), clock.wall_time())

    world.schedule(1.0, sample, "before")
    world.load_plan(plan((1.0, ClockStep("a", -5.0)), (2.0, ClockDrift("a", 0.1))))
    world.schedule(1.0, sample, "stepped")
    world.schedule(4.0, sample, "drifted")
    assert world.run(5.0) is None
    assert samples["before"] == (11.0, SIMULATION_EPOCH_SECONDS + 11.0)
    assert samples["stepped"] == (11.0, SIMULATION_EPOCH_SECONDS + 6.0)
    now, wall = samples["drifted"]
    assert now == pytest.approx(14.2)
    assert wall == pytest.approx(SIMULATION_EPOCH_SECONDS + 9.2)


def test_plans_naming_unknown_nodes_are_refused() -> None:
    world, _, _ = recording_world()
    with pytest.raises(PlanError, match=r"unknown node.*zz"):
        world.load_plan(plan((1.0, Crash("zz"))))


def test_corrupt_fault_reaches_the_node_disk() -> None:
    world = World(1)

    async def boot(node: Node) -> None:
        if not await node.host.disk.exists("data"):
            await node.host.disk.replace("data", bytes(32))

    world.add_node("a", boot)
    world.load_plan(plan((0.5, Corrupt("a"))))
    assert world.run(1.0) is None
    store = world.sim_node("a").disk
    assert store.statistics.corruptions == 1
    assert sum(bin(byte).count("1") for byte in store.files["data"].durable or b"") == 1


def test_a_world_runs_once_and_wants_a_positive_duration() -> None:
    world, received, _ = recording_world()
    with pytest.raises(ValueError, match="duration"):
        world.run(0)
    send_notes(world, 0.1, "a", "b", 1)
    assert world.run(0.5) is None
    assert from_to(received, "a", "b") == [0]
    with pytest.raises(RuntimeError, match="runs once"):
        world.run(0.5)
    with pytest.raises(ValueError, match="already"):
        world.add_node("a", lambda node: trio.sleep(0))


def test_clock_sleeps_wake_on_time_and_cancel_cleanly() -> None:
    world = World(1)
    woke: list[tuple[float, str]] = []
    began: list[str] = []

    class Sleepers(Actor):
        async def started(self) -> None:
            for name in ("first", "second", "third"):
                self.nursery.start_soon(self.nap, name)

        async def nap(self, name: str) -> None:
            if name == "third":
                with trio.move_on_after(0.1):
                    await self.host.clock.sleep(0.5)
                woke.append((trio.current_time(), "third gave up"))
                return
            began.append(name)
            await self.host.clock.sleep(0.5)
            woke.append((trio.current_time(), name))

    async def boot(node: Node) -> None:
        await node.spawn(Sleepers, "sleepers")

    world.add_node("a", boot)
    assert world.run(1.0) is None
    assert sorted(began) == ["first", "second"]
    assert woke[0] == (0.1, "third gave up")
    assert sorted(woke[1:]) == [(0.5, "first"), (0.5, "second")]


def test_a_failing_event_callback_fails_the_run_cleanly() -> None:
    world, _, _ = recording_world()

    def broken() -> None:
        raise KeyError("oops")

    world.schedule(0.3, broken)
    failure = world.run(1.0)
    assert failure is not None and failure.kind == "error"
    assert failure.message == "event callback raised KeyError: 'oops'"
    assert failure.time_seconds == 0.3
