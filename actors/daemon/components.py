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
    networks = shared.get("networks")
    shared["builder"] = await node.spawn(
        lambda: BuilderActor(
            config.data_root, config.exec_root, images, networks=networks, runtime=config.runtime
        ),
        "builder",
    )
    shared["routers"].append(build_routes.build_router)


async def start_containers(node: Node, config: DaemonConfig, shared: dict[str, Any]) -> None:
    """The containers actor ("containers") and its routes: containers, exec, archives.

    Started after volumes (it asks the volumes actor while restoring). The network actor
    may start later: the containers actor looks its ref up in `shared` when it needs it.
    """
    from actors.daemon import archive_routes, containers_routes, exec_routes
    from actors.supervisor.actor import ContainersActor
    from actors.supervisor.execstart import short_exec_root
    from actors.supervisor.monitor import Executor

    containers_dir = config.containers_dir
    executor = Executor(containers_dir / "state", config.exec_root / "containers", runtime=config.runtime)
    shared["executor"] = executor
    shared["exec_sessions_dir"] = short_exec_root(executor.run_root)
    shared["containers"] = await node.spawn(
        lambda: ContainersActor(containers_dir, executor, shared), "containers"
    )
    shared["routers"].extend(
        [containers_routes.build_router, exec_routes.build_router, archive_routes.build_router]
    )


async def start_networks(node: Node, config: DaemonConfig, shared: dict[str, Any]) -> None:
    """The network actor ("networks"): bridges, IPAM, DNS, published ports. Started before
    the containers actor, which re-adopts running containers' sandboxes at its start."""
    from actors.daemon import networks_routes
    from actors.network.actor import NetworkActor

    shared["networks"] = await node.spawn(
        lambda: NetworkActor(config.data_root / "network", config.bridge_subnet), "networks"
    )
    shared["routers"].append(networks_routes.build_router)


async def stop_networks(node: Node, config: DaemonConfig, shared: dict[str, Any]) -> None:
    """On shutdown, remove flotta's bridges and rules only when no container runs."""
    from actors.network.actor import ShutdownNetworks
    from actors.supervisor.messages import CountContainers

    networks = shared.get("networks")
    if networks is None:
        return
    running = 0
    containers = shared.get("containers")
    if containers is not None:
        counts = await containers.ask(CountContainers())
        running = counts.counts.get("running", 0) + counts.counts.get("paused", 0)
    await networks.ask(ShutdownNetworks(no_containers_left=running == 0), timeout=60)


def hooks() -> list[Hook]:
    return [start_volumes, start_networks, start_containers, start_builder]


def shutdown_hooks() -> list[Hook]:
    return [stop_networks]
