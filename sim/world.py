"""The simulated world: many nodes in one Trio run, driven through faults by one seed.

Rules:
- Time is virtual (sim.clock.VirtualClock, MockClock's rate-0 behaviour) and only the
  driver moves it: when every task waits, it jumps to the next event or Trio deadline,
  as MockClock's autojump would. Trio's scheduler is seeded (sim/determinism.py).
- One driver task owns the event queue, a heap of (time, sequence, callback, args):
  frame deliveries, faults, anything a scenario schedules. It sleeps until the first
  event is due and then runs every event due at that instant in sequence order; the
  sequence is the order of `schedule` calls, so ties never depend on Trio.
- Each instant the driver handles is a step. Before a step's events, the checkers run:
  every actor is between two awaits then, so a property that must hold between
  messages can be checked. A checker raising `Violation` stops the run.
- A node is a boot function `async def boot(node)` that spawns its actors. Each
  incarnation runs in its own cancel scope on a fresh `Host` with the node's identity,
  clock and disk. A crash cancels that scope, fences its transport and disk handles
  (frames to it and from its dying tasks are lost, disk calls are cancelled) and drops
  the disk's unsynced writes; a restart boots a new incarnation.
- An exception escaping a node (an escalation out of its root actors, a bug in boot)
  fails the run: in the simulator it is a bug to find, not a state to limp on in.
- Every random choice derives from the world's seed: per node and purpose for hosts and
  disks, per link for the network, per plan for faults.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
import trio.testing

from runtime.host import Host, derive_seed
from runtime.node import Node
from sim.clock import SkewedClock, VirtualClock
from sim.determinism import deterministic_scheduling, next_deadline_reader
from sim.disk import DiskConfig, DiskStore
from sim.faults import (
    ClockDrift,
    ClockStep,
    Clog,
    ClogLink,
    Corrupt,
    Crash,
    Duplicate,
    Fault,
    FaultPlan,
    Heal,
    HealAll,
    Isolate,
    Loss,
    OneWay,
    Partition,
    PlanError,
    Restart,
    Unclog,
)
from sim.network import NetworkConfig, SimNetwork
from sim.trace import Trace

Boot = Callable[[Node], Awaitable[None]]
Checker = Callable[["World"], None]

log = logging.getLogger("flotta.sim")


class Violation(Exception):
    """A checker found a property broken. Raise it from a checker or an end hook."""


@attrs.frozen
class Failure:
    """Why a run failed: a violated property, or an error that escaped a node."""

    kind: str
    message: str
    step: int
    time_seconds: float
    details: str = ""


@attrs.define
class WorldStatistics:
    steps: int = 0
    events: int = 0
    crashes: int = 0
    restarts: int = 0


class SimNode:
    """One simulated machine: identity, clock and disk survive its crashes."""

    def __init__(self, world: World, node_id: str, boot: Boot, clock: SkewedClock) -> None:
        self.node_id = node_id
        self.boot = boot
        self.clock = clock
        self.disk = DiskStore(
            node_id,
            random.Random(derive_seed(world.seed, node_id, "disk")),
            world.trace,
            world.disk_config,
        )
        self.incarnation = 0
        self.up = False
        self.host: Host | None = None
        self.node: Node | None = None
        self.scope: trio.CancelScope | None = None
        self.crashes = 0
        self.restarts = 0


class World:
    """Nodes, network, disks and the event queue of one simulated run.

    `world.random` is a seeded source for scenario decisions (derived from the seed with
    the label "world"); `world.data` holds per-run scenario state that outlives crashes.
    """

    def __init__(
        self,
        seed: int,
        *,
        network: NetworkConfig | None = None,
        disk: DiskConfig | None = None,
        trace: Trace | None = None,
    ) -> None:
        self.seed = seed
        self.trace = trace if trace is not None else Trace()
        self.clock = VirtualClock()
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._sequence = itertools.count()
        self.disk_config = disk if disk is not None else DiskConfig()
        self.random = random.Random(derive_seed(seed, "world"))
        self.network = SimNetwork(self, network if network is not None else NetworkConfig())
        self.statistics = WorldStatistics()
        self.failure: Failure | None = None
        self.simulated_seconds = 0.0
        # Scenario state that outlives node crashes (observers, histories), by name.
        self.data: dict[str, Any] = {}
        self._nodes: dict[str, SimNode] = {}
        self._checkers: list[Checker] = []
        self._end_hooks: list[Checker] = []
        self._nursery: trio.Nursery | None = None
        self._ran = False

    # --- building the world ------------------------------------------------------------

    def add_node(
        self,
        node_id: str,
        boot: Boot,
        *,
        clock_offset_seconds: float = 0.0,
        clock_drift_rate: float = 0.0,
    ) -> SimNode:
        if not node_id or any(character in node_id for character in ",|> \t\n"):
            raise ValueError(f"bad node id {node_id!r}")
        if node_id in self._nodes:
            raise ValueError(f"node {node_id!r} already in the world")
        clock = SkewedClock(clock_offset_seconds, clock_drift_rate, self.schedule)
        sim_node = SimNode(self, node_id, boot, clock)
        self._nodes[node_id] = sim_node
        self.network.add_node(node_id)
        if self._nursery is not None:
            self._start(sim_node)
        return sim_node

    def add_checker(self, checker: Checker) -> None:
        """Call `checker(world)` at every step and at the end; it raises Violation."""
        self._checkers.append(checker)

    def at_end(self, hook: Checker) -> None:
        """Call `hook(world)` once at the end time, while every node still runs."""
        self._end_hooks.append(hook)

    def load_plan(self, plan: FaultPlan) -> None:
        unknown = [name for name in plan.nodes() if name not in self._nodes]
        if unknown:
            raise PlanError(
                f"fault plan names unknown node(s) {', '.join(unknown)}; "
                f"the world has {', '.join(self.node_ids) or 'no nodes'}"
            )
        for entry in plan.entries:
            self.schedule(entry.time_seconds, self.apply, entry.fault)

    # --- looking at it -------------------------------------------------------------------

    @property
    def node_ids(self) -> list[str]:
        return sorted(self._nodes)

    def sim_node(self, node_id: str) -> SimNode:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise ValueError(f"no node {node_id!r} in the world") from None

    def node(self, node_id: str) -> Node | None:
        """The running incarnation's `Node`, or None while the node is down."""
        return self.sim_node(node_id).node

    def now(self) -> float:
        return trio.current_time()

    def emit(self, kind: str, details: str) -> None:
        """Add a scenario event to the trace (and so to the digest)."""
        self.trace.emit(trio.current_time(), kind, details)

    # --- the event queue ----------------------------------------------------------------

    def schedule(self, at_seconds: float, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` in the driver at virtual time `at_seconds`."""
        heapq.heappush(self._queue, (at_seconds, next(self._sequence), callback, args))

    def call_later(self, delay_seconds: float, callback: Callable[..., None], *args: Any) -> None:
        self.schedule(trio.current_time() + delay_seconds, callback, *args)

    # --- faults ---------------------------------------------------------------------------

    def apply(self, fault: Fault) -> None:
        """Apply one fault now."""
        self.emit("fault", str(fault))
        network = self.network
        match fault:
            case Partition(groups):
                for index, group in enumerate(groups):
                    for later_group in groups[index + 1 :]:
                        for a in group:
                            for b in later_group:
                                network.block(a, b)
                                network.block(b, a)
            case OneWay(sources, targets):
                for source in sources:
                    for target in targets:
                        if source != target:
                            network.block(source, target)
            case Isolate(node):
                for other in self._others(node):
                    network.block(node, other)
                    network.block(other, node)
            case Heal():
                network.heal()
            case Clog(node, seconds):
                until = trio.current_time() + seconds
                for other in self._others(node):
                    network.clog(node, other, until)
                    network.clog(other, node, until)
            case ClogLink(source, target, seconds):
                network.clog(source, target, trio.current_time() + seconds)
            case Unclog(node):
                for other in self._others(node):
                    network.unclog(node, other)
                    network.unclog(other, node)
            case Loss(probability, source, target):
                for link in self._links(source, target):
                    link.loss = probability
            case Duplicate(probability, source, target):
                for link in self._links(source, target):
                    link.duplicate = probability
            case Crash(node):
                self.crash(node)
            case Restart(node):
                self.restart(node)
            case Corrupt(node, path_prefix):
                self.sim_node(node).disk.corrupt(path_prefix)
            case ClockStep(node, seconds):
                self.sim_node(node).clock.step_wall(seconds)
            case ClockDrift(node, rate):
                self.sim_node(node).clock.set_drift(rate)
            case HealAll():
                network.reset_links()
                for node_id in self.node_ids:
                    if not self._nodes[node_id].up:
                        self.restart(node_id)
            case _:
                raise PlanError(f"the world cannot apply {fault!r}")

    def _others(self, node_id: str) -> list[str]:
        self.sim_node(node_id)
        return [other for other in self.node_ids if other != node_id]

    def _links(self, source: str | None, target: str | None) -> list[Any]:
        if source is None or target is None:
            return self.network.links()
        return [self.network.link(source, target)]

    def crash(self, node_id: str) -> None:
        """Crash a node now: its actors and volatile state are gone, unsynced data lost."""
        sim_node = self.sim_node(node_id)
        if not sim_node.up:
            self.emit("crash", f"{node_id} already-down")
            return
        sim_node.up = False
        sim_node.crashes += 1
        self.statistics.crashes += 1
        self.emit("crash", f"{node_id} incarnation={sim_node.incarnation}")
        self.network.detach(node_id)
        sim_node.disk.crash()
        if sim_node.scope is not None:
            sim_node.scope.cancel()
        sim_node.scope = None
        sim_node.node = None
        sim_node.host = None

    def restart(self, node_id: str) -> None:
        """Boot a new incarnation of a crashed node on its surviving disk."""
        sim_node = self.sim_node(node_id)
        if sim_node.up:
            self.emit("restart", f"{node_id} already-up")
            return
        sim_node.restarts += 1
        self.statistics.restarts += 1
        self._start(sim_node)
        self.emit("restart", f"{node_id} incarnation={sim_node.incarnation}")

    def fail(self, kind: str, message: str, details: str = "") -> None:
        """Stop the run with a failure (the first one wins)."""
        if self.failure is not None:
            return
        now = trio.current_time()
        self.failure = Failure(kind, message, self.statistics.steps, now, details)
        self.simulated_seconds = now
        self.trace.emit(now, kind, message.replace("\n", " | "))
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # --- nodes ------------------------------------------------------------------------------

    def _start(self, sim_node: SimNode) -> None:
        assert self._nursery is not None
        sim_node.incarnation += 1
        incarnation = sim_node.incarnation
        node_id = sim_node.node_id
        host = Host(
            node_id=node_id,
            transport=self.network.attach(node_id, incarnation),
            disk=sim_node.disk.handle(),
            random=random.Random(derive_seed(self.seed, node_id, "host", str(incarnation))),
            clock=sim_node.clock,
            seed=derive_seed(self.seed, node_id, "incarnation", str(incarnation)),
            simulated=True,
        )
        sim_node.host = host
        sim_node.up = True
        self._nursery.start_soon(self._run_incarnation, sim_node, incarnation, host)

    async def _run_incarnation(self, sim_node: SimNode, incarnation: int, host: Host) -> None:
        if sim_node.incarnation != incarnation or not sim_node.up:
            return  # crashed before it got to run
        with trio.CancelScope() as scope:
            sim_node.scope = scope
            node = Node(host)
            sim_node.node = node
            try:
                async with node.running():
                    await sim_node.boot(node)
                    await trio.sleep_forever()
            except trio.Cancelled:
                raise
            except BaseExceptionGroup as group:
                cancelled, rest = group.split(trio.Cancelled)
                if rest is not None:
                    self._node_error(sim_node, incarnation, rest)
                if cancelled is not None:
                    raise cancelled from None
            except Exception as error:
                self._node_error(sim_node, incarnation, error)

    def _node_error(self, sim_node: SimNode, incarnation: int, error: BaseException) -> None:
        leaf = error
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        self.fail(
            "error",
            f"node {sim_node.node_id} (incarnation {incarnation}) raised "
            f"{type(leaf).__name__}: {leaf}",
            "".join(traceback.format_exception(error)),
        )

    # --- running ---------------------------------------------------------------------------

    def run(self, duration_seconds: float) -> Failure | None:
        """Run the world for `duration_seconds` of virtual time; the failure, if any."""
        if self._ran:
            raise RuntimeError("a World runs once; build a new one for another run")
        if not duration_seconds > 0 or math.isinf(duration_seconds):
            raise ValueError(f"duration must be a positive number of seconds, got {duration_seconds}")
        self._ran = True
        with deterministic_scheduling(self.seed):
            trio.run(self._main, duration_seconds, clock=self.clock)
        return self.failure

    async def _main(self, duration_seconds: float) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for node_id in self.node_ids:
                self._start(self._nodes[node_id])
            await self._drive(duration_seconds)
            self._nursery = None
            nursery.cancel_scope.cancel()
        self._nursery = None

    async def _drive(self, end_seconds: float) -> None:
        # The driver is the only thing that moves time (the VirtualClock never jumps on
        # its own): once every task is blocked it moves to whichever comes first, the
        # next queued event or the next Trio deadline (a trio.sleep, a timeout). Waking
        # through wait_all_tasks_blocked costs one scheduler pass and no Cancelled
        # exception, unlike a timed sleep, which is much of why the driver is fast.
        clock = self.clock
        trace = self.trace
        queue = self._queue
        statistics = self.statistics
        heappop = heapq.heappop
        current_time = trio.current_time
        next_deadline = next_deadline_reader()
        wait_all_tasks_blocked = trio.testing.wait_all_tasks_blocked
        while self.failure is None:
            await wait_all_tasks_blocked()
            now = current_time()
            due = queue[0][0] if queue else math.inf
            if due > now:
                timer = next_deadline()
                target = max(now, due if due < timer else timer)
                if target > end_seconds:
                    if now < end_seconds:
                        clock.advance_to(end_seconds)
                    break
                clock.advance_to(target)
                if due > target:
                    continue  # an actor's timer comes first: let it run
                now = target
            statistics.steps += 1
            trace.flush_if_full()
            if self._checkers and not self._run_checks(self._checkers):
                break
            try:
                while queue and queue[0][0] <= now:
                    _, _, callback, args = heappop(queue)
                    statistics.events += 1
                    callback(*args)
                    if self.failure is not None:
                        break
            except Exception as error:
                self.fail(
                    "error",
                    f"event callback raised {type(error).__name__}: {error}",
                    "".join(traceback.format_exception(error)),
                )
        if self.failure is None:
            self.simulated_seconds = current_time()
            self._run_checks([*self._checkers, *self._end_hooks])
        else:
            self.simulated_seconds = self.failure.time_seconds

    def _run_checks(self, checks: list[Checker]) -> bool:
        try:
            for check in checks:
                check(self)
        except Violation as violation:
            self.fail("violation", str(violation))
            return False
        except Exception as error:
            self.fail(
                "error",
                f"checker raised {type(error).__name__}: {error}",
                "".join(traceback.format_exception(error)),
            )
            return False
        return True
