"""The network actor ("networks"): the network driver behind messages.

It owns the `NetworkDriver` (driver.py): restores what a previous daemon left at start,
runs the embedded DNS server in its nursery, and answers the containers actor's sandbox
protocol (messages.py) and the daemon's network routes. Driver calls that touch the
kernel are slow (tens of milliseconds), so they run with `reply_later`; the driver
serializes its own state changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from actors.errdefs import InvalidParameter
from actors.network import messages, model
from actors.network.driver import NetworkDriver, SandboxInfo
from runtime.actor import Actor
from runtime.codec import message

log = logging.getLogger("flotta.network")


@message("network.api.create")
@attrs.frozen
class CreateNetwork:
    body: dict[str, Any]


@message("network.api.remove")
@attrs.frozen
class RemoveNetwork:
    reference: str


@message("network.api.prune")
@attrs.frozen
class PruneNetworks:
    filters: dict[str, list[str]] = attrs.field(factory=dict)


@message("network.api.list")
@attrs.frozen
class ListNetworks:
    filters: dict[str, list[str]] = attrs.field(factory=dict)


@message("network.api.inspect")
@attrs.frozen
class InspectNetwork:
    reference: str


@message("network.api.shutdown")
@attrs.frozen
class ShutdownNetworks:
    no_containers_left: bool


@message("network.api.result")
@attrs.frozen
class NetworkResult:
    body: Any


def sandbox_message(info: SandboxInfo) -> messages.Sandbox:
    return messages.Sandbox(
        netns_path=info.netns_path,
        sandbox_id=info.sandbox_id,
        endpoints=[
            messages.EndpointInfo(network.name, model.endpoint_json(endpoint))
            for network, endpoint in info.endpoints
        ],
        ports=info.ports,
        ports_list=info.ports_list,
        resolv_conf=info.files.resolv_conf,
        hosts=info.files.hosts,
    )


def endpoint_spec(request: messages.EndpointRequest) -> model.EndpointSpec:
    return model.EndpointSpec(
        network=request.network,
        aliases=tuple(request.aliases),
        ipv4_address=request.ipv4_address,
        ipv6_address=request.ipv6_address,
        mac_address=request.mac_address,
        links=tuple(request.links),
        driver_options=dict(request.driver_options),
    )


class NetworkActor(Actor):
    def __init__(self, state_directory: Path, default_bridge_subnet: str) -> None:
        self.state_directory = state_directory
        self.default_bridge_subnet = default_bridge_subnet
        self.driver: NetworkDriver | None = None

    async def started(self) -> None:
        self.driver = NetworkDriver(self.state_directory, default_bridge_subnet=self.default_bridge_subnet)
        await self.driver.restore()
        await self.nursery.start(self.driver.serve)
        diagnostics = getattr(self.driver, "diagnostics", None)
        if diagnostics:
            log.info("network: %s", diagnostics)

    async def receive(self, request: Any) -> Any:
        driver = self.driver
        assert driver is not None
        match request:
            case messages.CheckNetworks(names):
                found = driver.check_networks(names)
                return messages.NetworksChecked(
                    {name: network.id for name, network in found.items()},
                    {name: network.name for name, network in found.items()},
                )
            case messages.SetupSandbox():
                self.reply_later(self._setup, request)
            case messages.TeardownSandbox(container_id):
                self.reply_later(self._teardown, container_id)
            case messages.ConnectEndpoint(container_id, container_name, endpoint):
                self.reply_later(self._connect, container_id, container_name, endpoint)
            case messages.DisconnectEndpoint(container_id, network, force):
                self.reply_later(self._disconnect, container_id, network, force)
            case CreateNetwork(body):
                self.reply_later(self._create, body)
            case RemoveNetwork(reference):
                self.reply_later(self._remove, reference)
            case PruneNetworks(filters):
                self.reply_later(self._prune, filters)
            case ListNetworks(filters):
                return NetworkResult(driver.networks_json(filters))
            case InspectNetwork(reference):
                return NetworkResult(driver.network_json(reference))
            case ShutdownNetworks(no_containers_left):
                await driver.shutdown(no_containers_left)
                return NetworkResult(None)
            case _:
                raise InvalidParameter(f"networks: unexpected message {type(request).__name__}")
        return None

    async def _setup(self, request: messages.SetupSandbox) -> messages.Sandbox:
        assert self.driver is not None
        info = await self.driver.setup_sandbox(
            request.container_id,
            container_name=request.container_name,
            hostname=request.hostname,
            domainname=request.domainname,
            endpoints=[endpoint_spec(endpoint) for endpoint in request.endpoints],
            port_bindings=request.port_bindings,
            publish_all=request.publish_all,
            exposed_ports=request.exposed_ports,
            extra_hosts=request.extra_hosts,
            dns=request.dns,
            dns_search=request.dns_search,
            dns_options=request.dns_options,
        )
        return sandbox_message(info)

    async def _teardown(self, container_id: str) -> messages.SandboxReleased:
        assert self.driver is not None
        await self.driver.teardown_sandbox(container_id)
        return messages.SandboxReleased(container_id)

    async def _connect(self, container_id: str, container_name: str, endpoint: messages.EndpointRequest) -> messages.Connected:
        assert self.driver is not None
        spec = endpoint_spec(endpoint)
        joined, hosts = await self.driver.connect(container_id, container_name, spec)
        network = self.driver.inspect_network(endpoint.network)
        return messages.Connected(messages.EndpointInfo(network.name, model.endpoint_json(joined)), hosts)

    async def _disconnect(self, container_id: str, network: str, force: bool) -> messages.SandboxReleased:
        assert self.driver is not None
        await self.driver.disconnect(container_id, network, force)
        return messages.SandboxReleased(container_id)

    async def _create(self, body: dict[str, Any]) -> NetworkResult:
        assert self.driver is not None
        network = await self.driver.create_network(model.network_spec_from_body(body))
        return NetworkResult({"Id": network.id, "Warning": ""})

    async def _remove(self, reference: str) -> NetworkResult:
        assert self.driver is not None
        network = await self.driver.remove_network(reference)
        return NetworkResult({"Id": network.id, "Name": network.name})

    async def _prune(self, filters: dict[str, list[str]]) -> NetworkResult:
        assert self.driver is not None
        return NetworkResult({"NetworksDeleted": await self.driver.prune(filters)})
