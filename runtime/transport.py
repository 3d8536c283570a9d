"""Transports carry frames (bytes) between nodes.

A transport is what a node's `Host` provides to reach other nodes:

- `run(deliver, task_status=...)` runs for the node's lifetime, calling
  `deliver(from_node, frame)` for every frame that arrives (synchronously: the node's
  handler never blocks and never raises);
- `send_nowait(to_node, frame)` queues a frame for a peer and returns at once. Delivery
  is at most once: a frame is dropped (and counted) when the peer is unknown, the
  outbound queue is full, or the connection breaks with the frame unsent. Callers that
  need an answer use `ask`, whose timeout covers every loss.

`InProcessNetwork` connects nodes living in one process (tests, the demo, benches).
Socket transports (UNIX, TCP, TLS) are in sockets.py; the simulator's in sim/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs
import trio

Deliver = Callable[[str, bytes], None]


@attrs.define
class TransportStatistics:
    frames_sent: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    connects: int = 0
    connect_failures: int = 0


class Transport(Protocol):
    node_id: str
    statistics: TransportStatistics

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    def send_nowait(self, to_node: str, frame: bytes) -> None: ...


class NullTransport:
    """For a node that talks to no other node: every remote frame is dropped."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.statistics = TransportStatistics()

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    def send_nowait(self, to_node: str, frame: bytes) -> None:
        self.statistics.frames_dropped += 1


class InProcessNetwork:
    """Nodes in one process: a frame is handed to the peer's handler immediately."""

    def __init__(self) -> None:
        self._handlers: dict[str, Deliver] = {}

    def transport(self, node_id: str) -> InProcessTransport:
        return InProcessTransport(self, node_id)


class InProcessTransport:
    def __init__(self, network: InProcessNetwork, node_id: str) -> None:
        self.network = network
        self.node_id = node_id
        self.statistics = TransportStatistics()

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.node_id in self.network._handlers:
            raise ValueError(f"node {self.node_id} already attached to this network")
        self.network._handlers[self.node_id] = deliver
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            del self.network._handlers[self.node_id]

    def send_nowait(self, to_node: str, frame: bytes) -> None:
        handler = self.network._handlers.get(to_node)
        if handler is None:
            self.statistics.frames_dropped += 1
            return
        self.statistics.frames_sent += 1
        self.statistics.bytes_sent += len(frame)
        handler(self.node_id, frame)
