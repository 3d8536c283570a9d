"""The protocol between the containers actor and the network actor ("networks").

The containers actor asks the network actor for a container's network sandbox when the
container starts on a bridge or user-defined network, and tears it down when the
container's process has exited. `--network none`, `--network host` and
`--network container:<id>` are handled by the containers actor itself and never reach
the network actor.

    CheckNetworks(names)                     -> NetworksChecked       at create
    SetupSandbox(container_id, ...)          -> Sandbox               at every start
    TeardownSandbox(container_id)            -> SandboxReleased       after every exit, and on remove
    ConnectEndpoint(container_id, ...)       -> EndpointInfo          `docker network connect` (running)
    DisconnectEndpoint(container_id, ...)    -> SandboxReleased       `docker network disconnect` (running)

Errors are `actors.errdefs` errors with Docker's texts: NotFound `network <name> not
found`, Forbidden for impossible combinations, Conflict for a port already allocated
(`Bind for 0.0.0.0:8080 failed: port is already allocated`), InvalidParameter for bad
addresses. A failed `SetupSandbox` must leave nothing behind (no netns, no address, no
published port): the container's start fails with that error.

Shapes are Docker's where the API shows them, so the containers actor stores and serves
them without translation: `EndpointInfo.settings` is an EndpointSettings object of
`NetworkSettings.Networks`, `Sandbox.ports` is `NetworkSettings.Ports`, `Sandbox.ports_list`
the `Ports` array of `GET /containers/json`.
"""

from __future__ import annotations

from typing import Any

import attrs

from runtime.codec import message


@message("network.endpoint_request")
@attrs.frozen
class EndpointRequest:
    """One network a container asks to join (from NetworkingConfig.EndpointsConfig).

    `network` is a name, an id or an id prefix ("bridge" for the default bridge).
    `ipv4_address`/`ipv6_address` come from IPAMConfig; `mac_address` may be "";
    `aliases` are the network-scoped DNS names asked for (the network actor adds the
    container's name, and its short id on user networks, to `DNSNames` itself).
    """

    network: str
    aliases: list[str] = attrs.field(factory=list)
    ipv4_address: str = ""
    ipv6_address: str = ""
    mac_address: str = ""
    links: list[str] = attrs.field(factory=list)
    driver_options: dict[str, str] = attrs.field(factory=dict)


@message("network.check")
@attrs.frozen
class CheckNetworks:
    """At create: every name must exist (NotFound `network <name> not found` otherwise)."""

    names: list[str]


@message("network.checked")
@attrs.frozen
class NetworksChecked:
    """name as asked -> (full network id, canonical network name)."""

    ids: dict[str, str]
    names: dict[str, str]


@message("network.setup_sandbox")
@attrs.frozen
class SetupSandbox:
    """Create the container's network namespace and join `endpoints` in order (the first
    gives the default route), publish `port_bindings` (HostConfig.PortBindings shape:
    {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}; with `publish_all` every port of
    `exposed_ports` gets an ephemeral host port), and render the container's /etc/hosts
    and /etc/resolv.conf from `hostname`, `domainname`, `extra_hosts` (`name:ip`,
    `host-gateway` allowed), `dns`, `dns_search`, `dns_options`.

    Idempotent per container id: a second call for a container that still has a sandbox
    (its previous run's teardown was lost in a crash) replaces it.
    """

    container_id: str
    container_name: str
    hostname: str
    domainname: str = ""
    endpoints: list[EndpointRequest] = attrs.field(factory=list)
    port_bindings: dict[str, list[dict[str, str]]] = attrs.field(factory=dict)
    publish_all: bool = False
    exposed_ports: list[str] = attrs.field(factory=list)
    extra_hosts: list[str] = attrs.field(factory=list)
    dns: list[str] = attrs.field(factory=list)
    dns_search: list[str] = attrs.field(factory=list)
    dns_options: list[str] = attrs.field(factory=list)


@message("network.endpoint_info")
@attrs.frozen
class EndpointInfo:
    """One joined network: its canonical name and Docker's EndpointSettings for it
    (NetworkID, EndpointID, Gateway, IPAddress, IPPrefixLen, MacAddress, Aliases,
    DNSNames, IPAMConfig, Links, DriverOpts, ...)."""

    network_name: str
    settings: dict[str, Any]


@message("network.sandbox")
@attrs.frozen
class Sandbox:
    """A ready sandbox. `netns_path` is what the OCI runtime joins (e.g.
    /run/netns/flotta-<id>); `sandbox_id` is shown as NetworkSettings.SandboxID."""

    netns_path: str
    sandbox_id: str
    endpoints: list[EndpointInfo]
    ports: dict[str, Any]
    ports_list: list[dict[str, Any]]
    resolv_conf: str
    hosts: str


@message("network.teardown_sandbox")
@attrs.frozen
class TeardownSandbox:
    """Withdraw published ports, leave every network, release addresses, delete the netns.
    No error when the container has no sandbox (idempotent)."""

    container_id: str


@message("network.sandbox_released")
@attrs.frozen
class SandboxReleased:
    container_id: str


@message("network.connect_endpoint")
@attrs.frozen
class ConnectEndpoint:
    """`docker network connect` of a running container: join one more network in its
    existing sandbox. `hosts` in the reply is the container's new /etc/hosts text."""

    container_id: str
    container_name: str
    endpoint: EndpointRequest


@message("network.connected")
@attrs.frozen
class Connected:
    endpoint: EndpointInfo
    hosts: str = ""


@message("network.disconnect_endpoint")
@attrs.frozen
class DisconnectEndpoint:
    """`docker network disconnect` of a running container (`force` as Docker's)."""

    container_id: str
    network: str
    force: bool = False
