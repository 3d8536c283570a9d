"""What every route handler reaches: the node, the components' refs, the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from runtime.actor import Ref
from runtime.node import Node

if TYPE_CHECKING:
    from actors.daemon.config import DaemonConfig


@attrs.define
class DaemonContext:
    node: Node
    config: DaemonConfig
    daemon_id: str
    images: Ref
    events: Ref
    containers: Ref | None = None
    networks: Ref | None = None
    volumes: Ref | None = None
    builder: Ref | None = None
    swarm: Ref | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)

    def swarm_ping_state(self) -> str:
        return "inactive"

    async def swarm_info(self) -> dict[str, Any]:
        return {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        }

    async def container_counts(self) -> dict[str, int]:
        if self.containers is None:
            return {"total": 0, "running": 0, "paused": 0, "stopped": 0}
        from actors.supervisor.messages import CountContainers

        counts = await self.containers.ask(CountContainers())
        return dict(counts.counts)

    async def image_count(self) -> int:
        from actors.images.messages import CountImages

        result = await self.images.ask(CountImages())
        return int(result.body)
