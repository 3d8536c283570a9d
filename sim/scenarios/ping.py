"""`ping`: every node echoes and pings its peers while the network and nodes misbehave.

Each node boots two actors:
- `echo` answers `Ping(seq, origin)` with `Pong(seq, responder)` and counts `Gossip`;
- `pinger` runs `--concurrency` workers; each loops: think a random while, ask a random
  peer's echo (timeout `--ask-timeout`), then tell `--tells` random peers a `Gossip`.

What is checked:
- every reply matches its ask (same sequence number, from the node asked) — checked at
  every step, so a runtime that mixes up correlations fails at once;
- after a crash the node boots again: at the end every node runs both actors;
- liveness: when the plan ends with `heal-all` (generated plans do) or is empty, every
  node gets answers again after the faults stop;
- with no faults and no baseline loss, no ask times out or fails.

Counters live in a `PingStats` observer outside the actors, so crashes do not lose them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import attrs

from runtime.actor import Actor
from runtime.codec import message
from runtime.errors import ActorBusy, ActorError, AskTimeout
from runtime.node import Node
from sim.faults import FaultPlan, HealAll
from sim.network import LinkConfig, NetworkConfig
from sim.scenario import Scenario
from sim.world import Boot, Violation, World


@message("sim.ping.ping")
@attrs.frozen
class Ping:
    seq: int
    origin: str


@message("sim.ping.pong")
@attrs.frozen
class Pong:
    seq: int
    responder: str


@message("sim.ping.gossip")
@attrs.frozen
class Gossip:
    seq: int
    origin: str


@attrs.frozen
class PingSettings:
    concurrency: int = 2
    tells_per_ask: int = 1
    think_seconds_max: float = 0.05
    ask_timeout_seconds: float = 1.0


@attrs.define
class PingStats:
    """The scenario's observer: counts what actors did, across their crashes."""

    world: World
    asks_ok: int = 0
    asks_timed_out: int = 0
    asks_failed: int = 0
    tells_sent: int = 0
    tells_refused: int = 0
    pings_answered: int = 0
    gossip_received: int = 0
    mismatches: list[str] = attrs.Factory(list)
    last_ok_seconds: dict[str, float] = attrs.Factory(dict)
    heal_seconds: float | None = 0.0


class Echo(Actor):
    def __init__(self, stats: PingStats) -> None:
        self.stats = stats

    async def receive(self, message: Any) -> Any:
        match message:
            case Ping(seq=seq):
                self.stats.pings_answered += 1
                return Pong(seq, self.node.node_id)
            case Gossip():
                self.stats.gossip_received += 1
                return None
        raise TypeError(f"echo cannot handle {type(message).__name__}")


class Pinger(Actor):
    def __init__(self, peers: Sequence[str], settings: PingSettings, stats: PingStats) -> None:
        self.peers = list(peers)
        self.settings = settings
        self.stats = stats
        self.sequence = 0

    async def started(self) -> None:
        self.random = self.host.derived_random("pinger")
        # One ref per peer, made once: workers pick peers many thousand times a second.
        self.echoes = {peer: self.ref_to("echo", peer) for peer in self.peers}
        for _ in range(self.settings.concurrency):
            self.nursery.start_soon(self._worker)

    async def _worker(self) -> None:
        settings = self.settings
        stats = self.stats
        rng = self.random
        peers = self.peers
        node_id = self.node.node_id
        clock = self.host.clock
        echoes = self.echoes
        while True:
            if settings.think_seconds_max > 0:
                await clock.sleep(rng.uniform(0.0, settings.think_seconds_max))
            peer = rng.choice(peers)
            self.sequence += 1
            seq = self.sequence
            try:
                reply = await echoes[peer].ask(Ping(seq, node_id), timeout=settings.ask_timeout_seconds)
            except AskTimeout:
                stats.asks_timed_out += 1
                stats.world.emit("ask-timeout", f"{node_id}->{peer} seq={seq}")
            except ActorError as error:
                stats.asks_failed += 1
                stats.world.emit("ask-failed", f"{node_id}->{peer} seq={seq} {type(error).__name__}")
            else:
                if type(reply) is not Pong or reply.seq != seq or reply.responder != peer:
                    stats.mismatches.append(
                        f"{node_id} asked {peer} Ping(seq={seq}) and got {reply!r}"
                    )
                stats.asks_ok += 1
                stats.last_ok_seconds[node_id] = stats.world.now()
            for _ in range(settings.tells_per_ask):
                try:
                    echoes[rng.choice(peers)].tell_nowait(Gossip(seq, node_id))
                    stats.tells_sent += 1
                except ActorBusy:
                    stats.tells_refused += 1

    async def receive(self, message: Any) -> Any:
        raise TypeError(f"pinger takes no messages, got {type(message).__name__}")


def boot_for(peers: Sequence[str], settings: PingSettings, stats: PingStats) -> Boot:
    async def boot(node: Node) -> None:
        await node.spawn(lambda: Echo(stats), "echo")
        others = [peer for peer in peers if peer != node.node_id] or [node.node_id]
        await node.spawn(lambda: Pinger(others, settings, stats), "pinger")

    return boot


def _check_replies(world: World) -> None:
    stats: PingStats = world.data["ping"]
    if stats.mismatches:
        raise Violation(f"reply does not match its ask: {stats.mismatches[0]}")


class PingScenario(Scenario):
    name = "ping"
    help = "echo and pinger actors on every node, under network faults and crashes"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--concurrency", type=int, default=2, help="asks in flight per node (default 2)"
        )
        parser.add_argument("--tells", type=int, default=1, help="gossip tells per ask")
        parser.add_argument(
            "--think",
            type=float,
            default=0.05,
            help="a worker waits uniform(0, THINK) seconds between asks (default 0.05)",
        )
        parser.add_argument("--ask-timeout", type=float, default=1.0)
        parser.add_argument("--latency", type=float, default=0.001, help="base one-way latency")
        parser.add_argument("--jitter", type=float, default=0.002, help="median latency jitter")
        parser.add_argument("--loss", type=float, default=0.0, help="baseline loss probability")
        parser.add_argument(
            "--duplicate", type=float, default=0.0, help="baseline duplication probability"
        )
        parser.add_argument("--quantum", type=float, default=0.001, help="delivery time grid")

    def _settings(self, options: argparse.Namespace) -> PingSettings:
        if options.concurrency < 1:
            raise ValueError(f"--concurrency must be at least 1, got {options.concurrency}")
        if options.tells < 0:
            raise ValueError(f"--tells must be >= 0, got {options.tells}")
        if options.think < 0:
            raise ValueError(f"--think must be >= 0, got {options.think}")
        if not options.ask_timeout > 0:
            raise ValueError(f"--ask-timeout must be > 0, got {options.ask_timeout}")
        return PingSettings(options.concurrency, options.tells, options.think, options.ask_timeout)

    def network_config(self, options: argparse.Namespace) -> NetworkConfig:
        try:
            return NetworkConfig(
                link=LinkConfig(
                    latency_base_seconds=options.latency,
                    latency_jitter_seconds=options.jitter,
                    latency_max_seconds=max(0.25, options.latency + 10 * options.jitter),
                    loss_probability=options.loss,
                    duplicate_probability=options.duplicate,
                ),
                delivery_quantum_seconds=options.quantum,
            )
        except ValueError as error:
            raise ValueError(
                f"bad link option (--latency, --jitter, --loss, --duplicate, --quantum): {error}"
            ) from None

    def setup(self, world: World, options: argparse.Namespace) -> None:
        settings = self._settings(options)
        stats = PingStats(world)
        world.data["ping"] = stats
        node_ids = [f"n{index}" for index in range(1, options.nodes + 1)]
        for node_id in node_ids:
            world.add_node(node_id, boot_for(node_ids, settings, stats))
        world.add_checker(_check_replies)
        quiet = options.loss == 0 and options.duplicate == 0

        def at_end(world: World) -> None:
            self._check_end(world, settings, stats, quiet)

        world.at_end(at_end)

    def fault_plan(self, world: World, options: argparse.Namespace) -> FaultPlan:
        plan = super().fault_plan(world, options)
        stats: PingStats = world.data["ping"]
        heals = [entry.time_seconds for entry in plan.entries if isinstance(entry.fault, HealAll)]
        if not plan.entries:
            stats.heal_seconds = 0.0
        elif heals and heals[-1] >= plan.entries[-1].time_seconds:
            stats.heal_seconds = heals[-1]
        else:
            stats.heal_seconds = None  # the plan leaves faults standing: no liveness claim
        return plan

    def _check_end(
        self, world: World, settings: PingSettings, stats: PingStats, quiet: bool
    ) -> None:
        for node_id in world.node_ids:
            node = world.node(node_id)
            if node is None:
                continue
            for name in ("echo", "pinger"):
                if node.actor(name) is None:
                    raise Violation(f"{node_id} runs no {name} actor at the end")
        if stats.heal_seconds is None:
            return
        # After the faults stop, give restarts and in-flight timeouts time to settle.
        settle_seconds = 2 * settings.ask_timeout_seconds + 1.0
        if world.now() - stats.heal_seconds < 2 * settle_seconds:
            return
        for node_id in world.node_ids:
            last = stats.last_ok_seconds.get(node_id)
            if last is None or last < stats.heal_seconds + settle_seconds:
                raise Violation(
                    f"{node_id} got no answer after the faults stopped at "
                    f"t={stats.heal_seconds:g} (last answer: {last})"
                )
        if stats.heal_seconds == 0.0 and quiet and (stats.asks_timed_out or stats.asks_failed):
            raise Violation(
                f"{stats.asks_timed_out} asks timed out and {stats.asks_failed} failed "
                "on a network without faults"
            )

    def report(self, world: World, options: argparse.Namespace) -> dict[str, Any]:
        stats: PingStats = world.data["ping"]
        return {
            "asks_ok": stats.asks_ok,
            "asks_timed_out": stats.asks_timed_out,
            "asks_failed": stats.asks_failed,
            "tells_sent": stats.tells_sent,
            "tells_refused": stats.tells_refused,
            "pings_answered": stats.pings_answered,
            "gossip_received": stats.gossip_received,
        }

    def format_report(self, report: dict[str, Any]) -> list[str]:
        return [
            f"asks      ok {report['asks_ok']}  timed out {report['asks_timed_out']}  "
            f"failed {report['asks_failed']}  (answered {report['pings_answered']})",
            f"tells     sent {report['tells_sent']}  refused {report['tells_refused']}  "
            f"received {report['gossip_received']}",
        ]


scenario = PingScenario()
