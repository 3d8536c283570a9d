"""The simulated network: one `Transport` per node, every frame scheduled by the world.

Rules:
- A frame sent at time t on link (a, b) is due at t + latency, rounded up to the next
  multiple of `delivery_quantum_seconds`: frames due at one instant are delivered in one
  batch, in send order, by the world's single driver task (no task per frame).
- Latency is `latency_base_seconds` plus a lognormal jitter whose median is
  `latency_jitter_seconds`, capped at `latency_max_seconds`, drawn from the link's own
  seeded random source. Jitter reorders frames unless the link is `fifo`.
- Loss and duplication are per-link probabilities; a duplicate gets its own latency.
- A blocked link (partition, one-way cut, isolation) loses frames at send time and
  frames already in flight when they come due.
- A clogged link holds frames until the clog ends (FoundationDB's clogging); nothing is
  lost, only late.
- Frames to a node that is down are lost, as are frames in flight to an incarnation
  that crashed (the connection they travelled on died with it). A crashed node sends
  nothing: its transport is fenced the moment it crashes.
- Every send, delivery, loss and duplicate is a trace line.
"""

from __future__ import annotations

import math
import random
import statistics
from heapq import heappush
from typing import TYPE_CHECKING
from zlib import crc32

import attrs
import trio

from runtime.host import derive_seed
from runtime.transport import Deliver, TransportStatistics

if TYPE_CHECKING:
    from sim.world import World


def _check_probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value}")


def _check_non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0.0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class LinkConfig:
    latency_base_seconds: float = attrs.field(default=0.001, validator=_check_non_negative)
    latency_jitter_seconds: float = attrs.field(default=0.002, validator=_check_non_negative)
    latency_jitter_sigma: float = attrs.field(default=0.5, validator=_check_non_negative)
    latency_max_seconds: float = attrs.field(default=0.25, validator=_check_non_negative)
    loss_probability: float = attrs.field(default=0.0, validator=_check_probability)
    duplicate_probability: float = attrs.field(default=0.0, validator=_check_probability)
    fifo: bool = False


@attrs.frozen
class NetworkConfig:
    link: LinkConfig = LinkConfig()
    delivery_quantum_seconds: float = attrs.field(default=0.001)

    @delivery_quantum_seconds.validator
    def _check_quantum(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0.0:
            raise ValueError(f"delivery_quantum_seconds must be > 0, got {value}")


@attrs.define
class NetworkStatistics:
    sent: int = 0
    delivered: int = 0
    duplicated: int = 0
    dropped_loss: int = 0
    dropped_partition: int = 0
    dropped_down: int = 0
    dropped_fenced: int = 0
    delayed_clog: int = 0
    bytes_sent: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_loss + self.dropped_partition + self.dropped_down + self.dropped_fenced


LATENCY_QUANTILE_BITS = 10


def latency_table(config: LinkConfig) -> list[float]:
    """The link's latency distribution as 2**10 equally likely values (its quantiles).

    Drawing a latency is then one `getrandbits` and an index, instead of a lognormal
    variate per frame; the resolution is far finer than the delivery quantum.
    """
    base = config.latency_base_seconds
    jitter = config.latency_jitter_seconds
    cap = config.latency_max_seconds
    count = 1 << LATENCY_QUANTILE_BITS
    if jitter == 0 or config.latency_jitter_sigma == 0:
        return [min(base + jitter, cap)] * count
    normal = statistics.NormalDist()
    sigma = config.latency_jitter_sigma
    return [
        min(base + jitter * math.exp(sigma * normal.inv_cdf((index + 0.5) / count)), cap)
        for index in range(count)
    ]


class _Link:
    __slots__ = (
        "blocked",
        "clogged_until",
        "duplicate",
        "fifo",
        "last_due",
        "latencies",
        "loss",
        "name",
        "random",
        "source",
        "target",
    )

    def __init__(self, source: str, target: str, config: LinkConfig, rng: random.Random) -> None:
        self.source = source
        self.target = target
        self.name = f"{source}->{target}"
        self.random = rng
        self.blocked = False
        self.clogged_until = 0.0
        self.last_due = 0.0
        self.configure(config)

    def configure(self, config: LinkConfig) -> None:
        self.latencies = latency_table(config)
        self.loss = config.loss_probability
        self.duplicate = config.duplicate_probability
        self.fifo = config.fifo

    def latency(self) -> float:
        return self.latencies[self.random.getrandbits(LATENCY_QUANTILE_BITS)]


class SimTransport:
    """One incarnation's network endpoint (implements `runtime.transport.Transport`)."""

    def __init__(self, network: SimNetwork, node_id: str, incarnation: int) -> None:
        self.network = network
        self.node_id = node_id
        self.incarnation = incarnation
        self.statistics = TransportStatistics()
        self.deliver: Deliver | None = None
        self.fenced = False
        self._links = network._outgoing[node_id]

    async def run(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self.deliver is not None:
            raise RuntimeError(f"transport of {self.node_id} is already running")
        self.deliver = deliver
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self.deliver = None

    def send_nowait(self, to_node: str, frame: bytes) -> None:
        statistics = self.statistics
        if self.fenced:
            # A crashed process sends nothing; its unwinding tasks may still try.
            statistics.frames_dropped += 1
            self.network.statistics.dropped_fenced += 1
            return
        link = self._links.get(to_node)
        if link is None:
            statistics.frames_dropped += 1
            self.network._trace_drop(self.node_id, to_node, f"unknown-node {to_node!r}")
            return
        statistics.frames_sent += 1
        statistics.bytes_sent += len(frame)
        self.network._send(link, frame)


class SimNetwork:
    def __init__(self, world: World, config: NetworkConfig) -> None:
        self.world = world
        self.config = config
        self.trace = world.trace
        self.statistics = NetworkStatistics()
        self._quantum = config.delivery_quantum_seconds
        self._node_ids: list[str] = []
        self._outgoing: dict[str, dict[str, _Link]] = {}
        self._endpoints: dict[str, SimTransport | None] = {}
        self._frame_ids = 0
        self._clock = world.clock
        self._queue = world._queue
        self._sequence = world._sequence
        self._trace_buffer = world.trace.buffer
        self._deliver = self._on_due
        self._prefix_time = -1.0
        self._prefix = ""

    # --- topology ---------------------------------------------------------------------------

    def add_node(self, node_id: str) -> None:
        if node_id in self._outgoing:
            raise ValueError(f"node {node_id!r} already on the network")
        self._outgoing[node_id] = {}
        self._endpoints[node_id] = None
        for other in self._node_ids:
            for source, target in ((node_id, other), (other, node_id)):
                rng = random.Random(derive_seed(self.world.seed, "link", source, target))
                self._outgoing[source][target] = _Link(source, target, self.config.link, rng)
        self._node_ids.append(node_id)
        self._node_ids.sort()

    def links(self) -> list[_Link]:
        """Every directed link, in sorted order."""
        return [
            self._outgoing[source][target]
            for source in self._node_ids
            for target in sorted(self._outgoing[source])
        ]

    def link(self, source: str, target: str) -> _Link:
        try:
            return self._outgoing[source][target]
        except KeyError:
            raise ValueError(f"no link {source}->{target}") from None

    def attach(self, node_id: str, incarnation: int) -> SimTransport:
        """A fresh endpoint for a new incarnation of `node_id` (it becomes reachable)."""
        transport = SimTransport(self, node_id, incarnation)
        self._endpoints[node_id] = transport
        return transport

    def detach(self, node_id: str) -> None:
        """The node crashed: fence its endpoint; frames to it are lost from now on."""
        transport = self._endpoints.get(node_id)
        if transport is not None:
            transport.fenced = True
        self._endpoints[node_id] = None

    # --- faults -------------------------------------------------------------------------------

    def block(self, source: str, target: str) -> None:
        self.link(source, target).blocked = True

    def heal(self) -> None:
        for link in self.links():
            link.blocked = False

    def clog(self, source: str, target: str, until_seconds: float) -> None:
        link = self.link(source, target)
        link.clogged_until = max(link.clogged_until, until_seconds)

    def unclog(self, source: str, target: str) -> None:
        self.link(source, target).clogged_until = 0.0

    def reset_links(self) -> None:
        """Every link back to the configured defaults, unblocked and unclogged."""
        for link in self.links():
            link.configure(self.config.link)
            link.blocked = False
            link.clogged_until = 0.0

    # --- the data path -------------------------------------------------------------------------
    # The two functions below run for every frame: they read the clock attribute and
    # append trace lines directly and push onto the world's heap themselves.

    def _time_prefix(self, now: float) -> str:
        if now != self._prefix_time:
            self._prefix_time = now
            self._prefix = f"{now:.6f} "
        return self._prefix

    def _due(self, link: _Link, now: float) -> float:
        quantum = self._quantum
        due = math.ceil((now + link.latency()) / quantum - 1e-9) * quantum
        if due <= now or link.fifo:
            due = self._adjust_due(link, now, due)
        return due

    def _adjust_due(self, link: _Link, now: float, due: float) -> float:
        if due <= now:
            quantum = self._quantum
            due = (math.floor(now / quantum + 1e-9) + 1) * quantum
        if link.fifo:
            if due < link.last_due:
                due = link.last_due
            link.last_due = due
        return due

    def _send(self, link: _Link, frame: bytes) -> None:
        now = self._clock.now_seconds
        prefix = self._prefix if now == self._prefix_time else self._time_prefix(now)
        statistics = self.statistics
        statistics.sent += 1
        statistics.bytes_sent += len(frame)
        self._frame_ids = frame_id = self._frame_ids + 1
        append = self._trace_buffer.append
        # to_bytes().hex() spells the CRC as `:08x` would, without parsing a format spec.
        crc = crc32(frame).to_bytes(4, "big").hex()
        append(f"{prefix}send {link.name} #{frame_id} {len(frame)}B crc={crc}")
        target = self._endpoints[link.target]
        if target is None:
            statistics.dropped_down += 1
            append(f"{prefix}drop {link.name} #{frame_id} down")
            return
        if link.blocked:
            statistics.dropped_partition += 1
            append(f"{prefix}drop {link.name} #{frame_id} partition")
            return
        rng = link.random
        loss = link.loss
        if loss and rng.random() < loss:
            statistics.dropped_loss += 1
            append(f"{prefix}drop {link.name} #{frame_id} loss")
            return
        # _due inlined: this line runs for every frame.
        quantum = self._quantum
        due = math.ceil((now + link.latencies[rng.getrandbits(10)]) / quantum - 1e-9) * quantum
        if due <= now or link.fifo:
            due = self._adjust_due(link, now, due)
        arguments = (link, frame, frame_id, target.incarnation)
        heappush(self._queue, (due, next(self._sequence), self._deliver, arguments))
        duplicate = link.duplicate
        if duplicate and rng.random() < duplicate:
            statistics.duplicated += 1
            due = self._due(link, now)
            append(f"{prefix}duplicate {link.name} #{frame_id} due={due:.6f}")
            heappush(self._queue, (due, next(self._sequence), self._deliver, arguments))

    def _on_due(self, link: _Link, frame: bytes, frame_id: int, incarnation: int) -> None:
        now = self._clock.now_seconds
        prefix = self._prefix if now == self._prefix_time else self._time_prefix(now)
        target = self._endpoints[link.target]
        append = self._trace_buffer.append
        deliver = target.deliver if target is not None else None
        if deliver is None or target is None or target.incarnation != incarnation:
            self.statistics.dropped_down += 1
            append(f"{prefix}drop {link.name} #{frame_id} down")
            return
        if link.blocked:
            self.statistics.dropped_partition += 1
            append(f"{prefix}drop {link.name} #{frame_id} partition")
            return
        if link.clogged_until > now:
            self.statistics.delayed_clog += 1
            quantum = self._quantum
            due = math.ceil(link.clogged_until / quantum - 1e-9) * quantum
            if due <= now:
                due = (math.floor(now / quantum + 1e-9) + 1) * quantum
            append(f"{prefix}clogged {link.name} #{frame_id} until={due:.6f}")
            heappush(
                self._queue,
                (due, next(self._sequence), self._deliver, (link, frame, frame_id, incarnation)),
            )
            return
        self.statistics.delivered += 1
        target_statistics = target.statistics
        target_statistics.frames_received += 1
        target_statistics.bytes_received += len(frame)
        append(f"{prefix}deliver {link.name} #{frame_id}")
        deliver(link.source, frame)

    def _trace_drop(self, source: str, target: str, reason: str) -> None:
        self.statistics.dropped_down += 1
        self.trace.emit(self._clock.now_seconds, "drop", f"{source}->{target} {reason}")
