"""The optional components flottad starts besides events, images and the API.

Each start hook spawns a component's actor(s) on the node and records what the API
needs in `shared`: refs under well-known keys ("containers", "networks", "volumes",
"builder") and router factories under "routers". Shutdown hooks run after the API
stopped accepting requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actors.daemon.config import DaemonConfig
from runtime.node import Node

Hook = Callable[[Node, DaemonConfig, dict[str, Any]], Awaitable[None]]


async def start_volumes(node: Node, config: DaemonConfig, shared: dict[str, Any]) -> None:
    from actors.daemon import volumes_routes
    from actors.volumes.actor import VolumesActor

    shared["volumes"] = await node.spawn(lambda: VolumesActor(config.data_root / "volumes"), "volumes")
    shared["routers"].append(volumes_routes.build_router)


async def start_builder(node: Node, config: DaemonConfig, shared: dict[str, Any]) -> None:
    from actors.builder.actor import BuilderActor
    from actors.daemon import build_routes

    images = shared["images"]
    pull = shared.get("pull_image")
    shared["builder"] = await node.spawn(
        lambda: BuilderActor(
            config.data_root, config.exec_root, images, runtime=config.runtime, pull=pull
        ),
        "builder",
    )
    shared["routers"].append(build_routes.build_router)


def hooks() -> list[Hook]:
    return [start_volumes, start_builder]


def shutdown_hooks() -> list[Hook]:
    return []
