"""`NetworkDriver`: the facade the daemon's network actor calls.

All methods are `async` and safe to call from Trio: netlink, nft, sysctls and fsyncs run in
worker threads (each netns operation in its own short-lived thread, see netns.py), and a
lock serialises state changes. The driver works inside `host_netns` when given (a test, or
one simulated node of a swarm on one machine), else in the daemon's own netns.

Lifecycle:
    driver = NetworkDriver(state_directory, ...)
    await driver.restore()                    # re-adopt bridges, rules, sandboxes
    await nursery.start(driver.serve)         # the embedded DNS server
    ... create_network / attach / publish_ports / etc_files / detach / release_container ...
    await driver.shutdown(no_containers_left=True)   # then cancel serve

Order of effects, so a crash never hands an address out twice: IPAM is saved before the
address is used; state is saved after the kernel objects exist; on removal the kernel
objects go first. `restore()` reconciles whatever a crash left between those steps.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import random as random_module
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
from pyroute2.netlink.exceptions import NetlinkError

from actors import errdefs
from actors.network import bridge, dns, etcfiles, firewall, links, model, netns, ports
from actors.network.ipam import Ipam, IpamStore
from actors.network.model import (
    Endpoint,
    EndpointSpec,
    Network,
    NetworkSpec,
    PortRequest,
    PublishedPort,
)
from actors.network.state import STATE_FILE, DriverState, Sandbox, load_state
from runtime.disk import atomic_write

log = logging.getLogger("flotta.network")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
DEVICE_NAME_BYTES_MAX = 15


@attrs.frozen
class Diagnostics:
    """What the driver found on the host (for `docker info`-style reporting and logs)."""

    ip_forward: bool
    bridge_netfilter: bool
    foreign_forward_drop_chains: tuple[str, ...]


class NetworkDriver:
    """Networks, sandboxes, endpoints, published ports and the embedded DNS of one host."""

    def __init__(
        self,
        state_directory: str | Path,
        *,
        host_netns: str | None = None,
        default_bridge_subnet: str = "172.28.0.0/16",
        default_bridge_gateway: str = "",
        default_bridge_device: str = model.DEFAULT_BRIDGE_DEVICE,
        netns_prefix: str = "flotta-",
        resolv_conf_path: str | Path = "/etc/resolv.conf",
        hosts_path: str | Path = "/etc/hosts",
        address_pools: Sequence[ipaddress.IPv4Network] | None = None,
        rng: random_module.Random | None = None,
        clock: Callable[[], float] = time.time,
        mtu: int = 1500,
        dns_forward_timeout_seconds: float = 2.0,
    ) -> None:
        self.state_directory = Path(state_directory)
        self.host_netns = netns.netns_path(host_netns) if host_netns else None
        self.default_bridge_subnet = str(ipaddress.IPv4Network(default_bridge_subnet, strict=False))
        self.default_bridge_gateway = default_bridge_gateway
        self.default_bridge_device = default_bridge_device
        self.netns_prefix = netns_prefix
        self.resolv_conf_path = Path(resolv_conf_path)
        self.hosts_path = Path(hosts_path)
        self.rng = rng or random_module.SystemRandom()
        self.clock = clock
        self.mtu = mtu
        self.ipam_store = IpamStore(self.state_directory, address_pools)
        self.ipam: Ipam = Ipam(address_pools)
        self.state = DriverState()
        self.publisher = ports.PortPublisher()
        self.directory = dns.DnsDirectory()
        self.dns = dns.DnsServer(
            self.directory,
            self._host_upstreams,
            socket_factory=self._socket_in_host,
            rng=self.rng,
            forward_timeout_seconds=dns_forward_timeout_seconds,
        )
        self.diagnostics = Diagnostics(False, False, ())
        self._lock = trio.Lock()
        self._restored = False
        self._saved: dict[Path, bytes] = {}
        self._upstreams_cache: tuple[tuple[int, int], tuple[str, ...]] | None = None

    # ---- plumbing ------------------------------------------------------------------------

    async def _in_host(self, function: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(netns.call_in_thread, self.host_netns, function, *args)

    async def _in_netns(self, path: str, function: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(netns.call_in_thread, path, function, *args)

    async def _socket_in_host(self, kind: int) -> trio.socket.SocketType:
        if self.host_netns is None:
            return trio.socket.socket(socket.AF_INET, kind)
        created = await trio.to_thread.run_sync(netns.socket_in_netns, self.host_netns, socket.AF_INET, kind)
        return trio.socket.from_stdlib_socket(created)

    def _host_upstreams(self) -> tuple[str, ...]:
        """The host's resolvers, re-read when resolv.conf changes (NetworkManager, DHCP)."""
        try:
            status = self.resolv_conf_path.stat()
            stamp: tuple[int, int] = (status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            stamp = (0, -1)
        if self._upstreams_cache is None or self._upstreams_cache[0] != stamp:
            servers = etcfiles.upstream_servers(etcfiles.read_host_resolv_conf(self.resolv_conf_path))
            self._upstreams_cache = (stamp, servers)
        return self._upstreams_cache[1]

    async def _save(self) -> None:
        """Persist IPAM and state; a file whose content did not change is not rewritten
        (each atomic write costs two fsyncs, the largest part of an attach)."""
        ipam_bytes, state_bytes = self.ipam.to_json(), self.state.to_json()
        writes = [
            (path, data)
            for path, data in (
                (self.ipam_store.path, ipam_bytes),
                (self.state_directory / STATE_FILE, state_bytes),
            )
            if self._saved.get(path) != data
        ]
        if not writes:
            return

        def write() -> None:
            self.state_directory.mkdir(parents=True, exist_ok=True)
            for path, data in writes:
                atomic_write(path, data, mode=0o600)

        await trio.to_thread.run_sync(write)
        for path, data in writes:
            self._saved[path] = data

    async def _save_ipam(self) -> None:
        data = self.ipam.to_json()
        if self._saved.get(self.ipam_store.path) == data:
            return
        await trio.to_thread.run_sync(self.ipam_store.save, self.ipam)
        self._saved[self.ipam_store.path] = data

    def _new_id(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _require_restored(self) -> None:
        if not self._restored:
            raise RuntimeError("NetworkDriver.restore() must run before other calls")

    def _bridge_rules(self) -> list[firewall.BridgeRules]:
        return [
            firewall.BridgeRules(
                device=network.bridge_device,
                subnet=network.ipam_configs[0].subnet,
                internal=network.internal,
                masquerade=network.options.get(MASQUERADE_OPTION, "true") != "false",
                icc=network.options.get(ICC_OPTION, "true") != "false",
            )
            for network in self.state.networks.values()
            if network.driver == "bridge" and network.ipam_configs
        ]

    def _port_rules(self) -> list[firewall.PortRule]:
        return [
            firewall.PortRule(p.protocol, p.host_ip, p.host_port, p.container_ip, p.container_port)
            for p in self.state.ports
        ]

    async def _sync_firewall(self) -> None:
        bridges, port_rules = self._bridge_rules(), self._port_rules()
        try:
            patched = await self._in_host(firewall.synchronize, bridges, port_rules)
        except firewall.FirewallError as error:
            raise errdefs.SystemError_(f"failed to program the firewall: {error}") from None
        names = tuple(f"{c.family} {c.table} {c.chain}" for c in patched)
        if names != self.diagnostics.foreign_forward_drop_chains:
            if names:
                log.warning("forward chains with policy drop found (%s): accept rules for flotta's "
                            "bridges were inserted at their top", ", ".join(names))
            self.diagnostics = attrs.evolve(self.diagnostics, foreign_forward_drop_chains=names)

    # ---- start and stop ------------------------------------------------------------------

    async def restore(self) -> None:
        """Load state and re-adopt what exists: bridges, rules, sandboxes, port reservations.

        Idempotent: running it on a host where everything is in place changes nothing and
        duplicates nothing; missing pieces are re-created, stale ones removed.
        """
        async with self._lock:
            self.state = await trio.to_thread.run_sync(load_state, self.state_directory)
            self.ipam = await trio.to_thread.run_sync(self.ipam_store.load)
            self._ensure_predefined()
            await self._drop_vanished_sandboxes()
            self._reconcile_ipam()
            await self._in_host(bridge.enable_forwarding)
            for network in self.state.networks.values():
                if network.driver == "bridge":
                    await self._ensure_bridge(network)
            await self._remove_stale_links()
            await self._remove_stale_netns()
            ip_forward = await self._in_host(bridge.read_sysctl, "net.ipv4.ip_forward")
            netfilter = await self._in_host(bridge.bridge_netfilter_enabled)
            self.diagnostics = Diagnostics(ip_forward == "1", bool(netfilter), ())
            if not self.publisher.reservations:
                self.publisher = ports.PortPublisher(await self._in_host(bridge.ephemeral_port_range))
            for lost in await self._in_host(self.publisher.restore, list(self.state.ports)):
                log.warning("host port %s/%s of container %s is now held by another program",
                            lost.host_port, lost.protocol, lost.container_id[:12])
            await self._sync_firewall()
            self._rebuild_directory()
            await self._save()
            self._restored = True

    def _ensure_predefined(self) -> None:
        by_name = {network.name: network for network in self.state.networks.values()}
        now = model.rfc3339_nano(self.clock())
        default = by_name.get("bridge")
        if default is None or (
            default.ipam_configs
            and default.ipam_configs[0].subnet != self.default_bridge_subnet
            and not self.state.endpoints_of_network(default.id)
        ):
            # First start, or the daemon was given another --bridge-subnet: (re)define it.
            network_id = default.id if default else self._new_id()
            self.ipam.remove_network(network_id)
            subnet = ipaddress.IPv4Network(self.default_bridge_subnet)
            gateway = self.default_bridge_gateway or str(subnet.network_address + 1)
            default = Network(
                id=network_id,
                name="bridge",
                created=default.created if default else now,
                driver="bridge",
                bridge_device=self.default_bridge_device,
                ipam_configs=(model.IpamConfig(subnet=str(subnet), gateway=gateway),),
            )
            self.state.networks[network_id] = default
        elif default.ipam_configs and default.ipam_configs[0].subnet != self.default_bridge_subnet:
            log.warning("the default bridge keeps %s until its containers are gone (asked for %s)",
                        default.ipam_configs[0].subnet, self.default_bridge_subnet)
        for name in ("host", "none"):
            if name not in by_name:
                network_id = self._new_id()
                self.state.networks[network_id] = Network(
                    id=network_id, name=name, created=now, driver=model.DRIVER_BY_PREDEFINED[name]
                )

    async def _drop_vanished_sandboxes(self) -> None:
        for sandbox in list(self.state.sandboxes.values()):
            if sandbox.kind == "host":
                continue
            if not await trio.to_thread.run_sync(netns.netns_exists, sandbox.path):
                log.info("network namespace of container %s is gone; releasing its endpoints",
                         sandbox.container_id[:12])
                self._forget_container(sandbox.container_id)

    def _forget_container(self, container_id: str) -> None:
        for endpoint in self.state.endpoints_of_container(container_id):
            del self.state.endpoints[endpoint.id]
        self.state.ports = [p for p in self.state.ports if p.container_id != container_id]
        self.state.sandboxes.pop(container_id, None)

    def _reconcile_ipam(self) -> None:
        """Make IPAM agree with the state after a crash between their saves."""
        bridges = {n.id: n for n in self.state.networks.values() if n.driver == "bridge"}
        for network_id in self.ipam.network_ids():
            if network_id not in bridges:
                self.ipam.remove_network(network_id)
        for network in bridges.values():
            if network.id not in self.ipam.network_ids():
                config = network.ipam_configs[0]
                self.ipam.add_network(
                    network.id,
                    label=network.name,
                    subnet=config.subnet,
                    gateway=config.gateway,
                    ip_range=config.ip_range,
                    aux_addresses=dict(config.aux_addresses),
                )
        owners = set(self.state.endpoints)
        for network_id in self.ipam.network_ids():
            for held, owner in self.ipam.allocations(network_id).items():
                if owner not in owners:
                    self.ipam.release(network_id, held)
        for endpoint in self.state.endpoints.values():
            if not endpoint.ipv4_address:
                continue
            allocated = self.ipam.allocations(endpoint.network_id)
            if allocated.get(ipaddress.IPv4Address(endpoint.ipv4_address)) != endpoint.id:
                self.ipam.allocate(endpoint.network_id, endpoint.id, requested=endpoint.ipv4_address)

    async def _ensure_bridge(self, network: Network) -> None:
        config = network.ipam_configs[0]
        prefix = ipaddress.IPv4Network(config.subnet).prefixlen
        mtu = int(network.options.get(MTU_OPTION, self.mtu))
        # Another process may delete the device between our lookup and our changes (the
        # bridge is host state): a vanished device is simply made again, a few times.
        for attempt in range(3):
            try:
                await self._in_host(bridge.ensure_bridge, network.bridge_device, config.gateway, prefix, mtu)
                return
            except FileExistsError as error:
                raise errdefs.SystemError_(f"failed to create bridge {network.bridge_device}: {error}") from None
            except (OSError, NetlinkError) as error:
                code = error.code if isinstance(error, NetlinkError) else error.errno
                if attempt == 2 or code not in (errno.ENODEV, errno.EEXIST):
                    raise errdefs.SystemError_(f"failed to create bridge {network.bridge_device}: {error}") from None

    async def _remove_stale_links(self) -> None:
        known_bridges = {n.bridge_device for n in self.state.networks.values() if n.bridge_device}
        known_veths = {e.host_interface for e in self.state.endpoints.values() if e.host_interface}
        for link in await self._in_host(bridge.flotta_links):
            stale = (link.kind == "bridge" and link.name not in known_bridges) or (
                link.kind == "veth" and link.name not in known_veths
            )
            if stale:
                log.info("removing stale %s %s", link.kind, link.name)
                await self._in_host(links.delete_link, link.name)

    async def _remove_stale_netns(self) -> None:
        known = {s.netns_name for s in self.state.sandboxes.values() if s.netns_name}
        for name in await trio.to_thread.run_sync(netns.list_netns, self.netns_prefix):
            if name not in known:
                log.info("removing stale network namespace %s", name)
                await trio.to_thread.run_sync(netns.remove_netns, name)

    def _rebuild_directory(self) -> None:
        self.directory = dns.DnsDirectory()
        self.dns.directory = self.directory
        for network in self.state.networks.values():
            if network.embedded_dns:
                self.directory.set_network(network.id, network.name, network.internal)
        for endpoint in self.state.endpoints.values():
            network = self.state.networks[endpoint.network_id]
            if network.embedded_dns and endpoint.ipv4_address:
                self.directory.add_endpoint(network.id, endpoint.container_id, endpoint.ipv4_address, endpoint.dns_names)
        for sandbox in self.state.sandboxes.values():
            self.directory.set_upstreams(sandbox.container_id, sandbox.dns_servers)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the embedded DNS server until cancelled (start it after `restore()`)."""
        self._require_restored()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.dns.serve)
            async with self._lock:
                for sandbox in self.state.sandboxes.values():
                    if sandbox.embedded_dns:
                        try:
                            await self._start_dns(sandbox)
                        except errdefs.SystemError_ as error:
                            # One broken sandbox must not keep DNS from every other container.
                            log.error("container %s: %s", sandbox.container_id[:12], error)
            task_status.started()

    async def _start_dns(self, sandbox: Sandbox) -> None:
        try:
            sockets = await self._in_netns(sandbox.path, dns.bind_in_current_netns)
        except (OSError, firewall.FirewallError) as error:
            raise errdefs.SystemError_(f"failed to start the embedded DNS server: {error}") from None
        self.dns.add_sandbox(sandbox.container_id, sockets)

    async def shutdown(self, no_containers_left: bool) -> None:
        """Stop serving ports; with no containers left, remove everything flotta added to
        the host (bridges, veths, namespaces, tables, foreign accept rules). State on disk
        stays, so the next `restore()` brings the networks back."""
        async with self._lock:
            for container_id in self.dns.sandboxes():
                self.dns.remove_sandbox(container_id)
            self.publisher.close()
            if not no_containers_left:
                return
            for container_id in list(self.state.sandboxes):
                await self._teardown_sandbox(container_id)
            await self._save()
            for network in self.state.networks.values():
                if network.bridge_device:
                    await self._in_host(links.delete_link, network.bridge_device)
            try:
                await self._in_host(firewall.remove_everything)
            except firewall.FirewallError as error:
                raise errdefs.SystemError_(f"failed to remove flotta's firewall rules: {error}") from None
            self._restored = False

    # ---- networks ------------------------------------------------------------------------

    def _find(self, reference: str) -> Network:
        return model.find_network(self.state.networks.values(), reference)

    async def create_network(self, spec: NetworkSpec) -> Network:
        """`docker network create`: the bridge, its address pool and its rules."""
        self._require_restored()
        async with self._lock:
            if any(n.name == spec.name for n in self.state.networks.values()):
                raise model.network_exists(spec.name)
            network_id = self._new_id()
            device = spec.options.get(BRIDGE_NAME_OPTION) or f"br-{network_id[:12]}"
            if len(device.encode()) > DEVICE_NAME_BYTES_MAX or "/" in device or not device.strip():
                raise errdefs.InvalidParameter(f"invalid bridge name {device!r}")
            if any(n.bridge_device == device for n in self.state.networks.values()):
                raise errdefs.Conflict(f"bridge name {device} is already used by another network")
            if MTU_OPTION in spec.options and not spec.options[MTU_OPTION].isdigit():
                raise errdefs.InvalidParameter(f"invalid MTU {spec.options[MTU_OPTION]!r}")
            config = spec.ipam_configs[0] if spec.ipam_configs else None
            avoid: list[ipaddress.IPv4Network] = []
            if config is None:
                own = frozenset(n.bridge_device for n in self.state.networks.values() if n.bridge_device)
                avoid = await self._in_host(bridge.host_routes, own)
            pool = self.ipam.add_network(
                network_id,
                label=spec.name,
                subnet=config.subnet if config else "",
                gateway=config.gateway if config else "",
                ip_range=config.ip_range if config else "",
                aux_addresses=dict(config.aux_addresses) if config else None,
                avoid=avoid,
            )
            network = Network(
                id=network_id,
                name=spec.name,
                created=model.rfc3339_nano(self.clock()),
                driver=spec.driver,
                bridge_device=device,
                internal=spec.internal,
                attachable=spec.attachable,
                ipam_options=dict(spec.ipam_options),
                ipam_configs=(
                    model.IpamConfig(
                        subnet=str(pool.subnet),
                        gateway=str(pool.gateway),
                        ip_range=config.ip_range if config else "",
                        aux_addresses=dict(config.aux_addresses) if config else {},
                    ),
                ),
                options=dict(spec.options),
                labels=dict(spec.labels),
                user_subnet=config is not None,
            )
            self.state.networks[network_id] = network
            try:
                await self._save_ipam()
                await self._ensure_bridge(network)
                await self._sync_firewall()
            except BaseException:
                del self.state.networks[network_id]
                self.ipam.remove_network(network_id)
                with trio.CancelScope(shield=True):
                    await self._in_host(links.delete_link, device)
                    await self._save()
                raise
            self.directory.set_network(network_id, network.name, network.internal)
            await self._save()
            return network

    async def remove_network(self, reference: str) -> Network:
        """`docker network rm`; refuses predefined networks and networks in use."""
        self._require_restored()
        async with self._lock:
            network = self._find(reference)
            if network.predefined:
                raise model.network_predefined(network.name)
            if self.state.endpoints_of_network(network.id):
                raise model.network_has_endpoints(network.name, network.id)
            await self._remove_network_locked(network)
            return network

    async def _remove_network_locked(self, network: Network) -> None:
        await self._in_host(links.delete_link, network.bridge_device)
        del self.state.networks[network.id]
        self.directory.remove_network(network.id)
        await self._sync_firewall()
        self.ipam.remove_network(network.id)
        await self._save()

    async def prune(self, filters: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """`docker network prune`: unused user networks; returns their names."""
        self._require_restored()
        filters = dict(filters or {})
        until = filters.pop("until", ())
        async with self._lock:
            candidates = [
                n for n in self.state.networks.values()
                if not n.predefined and not self.state.endpoints_of_network(n.id)
            ]
            candidates = model.filter_networks(candidates, {k: v for k, v in filters.items() if k == "label"})
            if until:
                now = self.clock()
                limit = min(model.parse_until(value, now) for value in until)
                candidates = [n for n in candidates if model.parse_rfc3339(n.created) <= limit]
            for network in candidates:
                await self._remove_network_locked(network)
            return [n.name for n in candidates]

    def list_networks(self, filters: Mapping[str, Sequence[str]] | None = None) -> list[Network]:
        in_use = {e.network_id for e in self.state.endpoints.values()}
        return model.filter_networks(self.state.networks.values(), filters or {}, in_use)

    def inspect_network(self, reference: str) -> Network:
        return self._find(reference)

    def network_json(self, reference: str) -> dict[str, Any]:
        """The body of `GET /networks/{id}`, with the attached containers."""
        network = self._find(reference)
        return model.network_json(network, self.state.endpoints_of_network(network.id))

    def networks_json(self, filters: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
        """The body of `GET /networks`."""
        return [model.network_json(n) for n in self.list_networks(filters)]

    # ---- containers ------------------------------------------------------------------------

    def sandbox_key(self, container_id: str) -> str:
        """The netns path the executor joins; "host" for the daemon's own netns."""
        sandbox = self.state.sandboxes.get(container_id)
        if sandbox is None:
            raise errdefs.NotFound(f"container {container_id} has no network sandbox")
        return sandbox.path or "host"

    def joined_sandbox_key(self, target_container_id: str) -> str:
        """`--network container:<target>`: the target's netns, which the new container
        shares (it gets no endpoint of its own, as with Docker)."""
        sandbox = self.state.sandboxes.get(target_container_id)
        if sandbox is None:
            raise errdefs.Conflict(f"cannot join network of a non running container: {target_container_id}")
        return sandbox.path or "host"

    def endpoints(self, container_id: str) -> list[tuple[Network, Endpoint]]:
        """The container's attachments in attach order, for NetworkSettings.Networks."""
        return [(self.state.networks[e.network_id], e) for e in self.state.endpoints_of_container(container_id)]

    def published_ports(self, container_id: str) -> list[PublishedPort]:
        return [p for p in self.state.ports if p.container_id == container_id]

    async def attach(
        self,
        container_id: str,
        network_reference: str,
        *,
        container_name: str,
        aliases: Sequence[str] = (),
        ipv4_address: str = "",
        mac_address: str = "",
        legacy_links: Sequence[str] = (),
        driver_options: Mapping[str, str] | None = None,
        dns_servers: Sequence[str] = (),
    ) -> Endpoint:
        """Connect a container to a network, creating its netns on the first attach.

        `dns_servers` (`--dns`) is taken on the first attach: the embedded DNS server
        forwards that container's outside names there instead of to the host's resolvers.
        """
        self._require_restored()
        container_name = container_name.lstrip("/")
        async with self._lock:
            network = self._find(network_reference)
            sandbox = self.state.sandboxes.get(container_id)
            existing = self.state.endpoints_of_container(container_id)
            if any(e.network_id == network.id for e in existing):
                raise errdefs.Forbidden(
                    f"endpoint with name {container_name} already exists in network {network.name}"
                )
            if network.driver in ("host", "null"):
                if existing:
                    raise errdefs.Forbidden(
                        "container cannot be disconnected from host network or connected to host network"
                        if network.driver == "host"
                        else "container cannot be connected to the none network alongside others"
                    )
                return await self._attach_special(container_id, container_name, network)
            if sandbox is not None and sandbox.kind in ("host", "none"):
                raise errdefs.Forbidden(
                    "container sharing network namespace with another container or host cannot be "
                    "connected to any other network"
                )
            self._check_endpoint_options(network, aliases, ipv4_address)
            dns_servers = etcfiles.validate_dns_servers(dns_servers)
            return await self._attach_bridge(
                container_id, container_name, network, sandbox, aliases, ipv4_address,
                mac_address, legacy_links, dict(driver_options or {}), tuple(dns_servers),
            )

    def _check_endpoint_options(self, network: Network, aliases: Sequence[str], ipv4_address: str) -> None:
        if network.is_default_bridge:
            if aliases:
                raise errdefs.InvalidParameter(
                    "network-scoped alias is supported only for containers in user defined networks"
                )
            if ipv4_address:
                raise errdefs.InvalidParameter("user specified IP address is supported on user defined networks only")
        elif ipv4_address and not network.user_subnet:
            raise errdefs.InvalidParameter(
                "user specified IP address is supported only when connecting to networks with user configured subnets"
            )

    async def _attach_special(self, container_id: str, container_name: str, network: Network) -> Endpoint:
        if network.driver == "host":
            sandbox = Sandbox(container_id, "host", path=self.host_netns or "", sandbox_id=self._new_id())
        else:
            name = self._netns_name(container_id)
            path = await trio.to_thread.run_sync(links.create_empty_sandbox, name)
            sandbox = Sandbox(container_id, "none", netns_name=name, path=path, sandbox_id=self._new_id())
        endpoint = Endpoint(
            id=self._new_id(),
            network_id=network.id,
            container_id=container_id,
            container_name=container_name,
            sandbox_key=sandbox.path or "host",
            interface="",
            host_interface="",
        )
        self.state.sandboxes[container_id] = sandbox
        self.state.endpoints[endpoint.id] = endpoint
        await self._save()
        return endpoint

    def _netns_name(self, container_id: str) -> str:
        return f"{self.netns_prefix}{container_id[:12]}"

    async def _attach_bridge(
        self,
        container_id: str,
        container_name: str,
        network: Network,
        sandbox: Sandbox | None,
        aliases: Sequence[str],
        ipv4_address: str,
        mac_address: str,
        legacy_links: Sequence[str],
        driver_options: dict[str, str],
        dns_servers: tuple[str, ...],
    ) -> Endpoint:
        # The bridge is host state that outlives us and that an administrator (or another
        # daemon's shutdown) may have removed: make sure it is there before plugging in.
        await self._ensure_bridge(network)
        endpoint_id = self._new_id()
        address = self.ipam.allocate(network.id, endpoint_id, requested=ipv4_address)
        created_sandbox = False
        host_interface = links.host_interface_name(endpoint_id)
        try:
            await self._save_ipam()
            if sandbox is None:
                name = self._netns_name(container_id)
                path = await trio.to_thread.run_sync(links.create_empty_sandbox, name)
                sandbox = Sandbox(
                    container_id, "netns", netns_name=name, path=path, dns_servers=dns_servers,
                    sandbox_id=self._new_id(),
                )
                created_sandbox = True
            used = {e.interface for e in self.state.endpoints_of_container(container_id)}
            interface = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
            gateway_owner = not sandbox.gateway_endpoint and not network.internal
            config = network.ipam_configs[0]
            prefix = ipaddress.IPv4Network(config.subnet).prefixlen
            plan = links.InterfacePlan(
                host_interface=host_interface,
                bridge=network.bridge_device,
                container_interface=interface,
                address=str(address),
                prefix_length=prefix,
                mac=mac_address or links.mac_from_ipv4(str(address)),
                gateway=config.gateway if gateway_owner else "",
                mtu=int(network.options.get(MTU_OPTION, self.mtu)),
            )
            await self._in_host(links.attach_interface, sandbox.path, plan)
            if network.embedded_dns and not sandbox.embedded_dns:
                if not self.dns.running:
                    raise RuntimeError("the embedded DNS server is not running: start NetworkDriver.serve")
                await self._start_dns(sandbox)
                sandbox.embedded_dns = True
        except BaseException:
            with trio.CancelScope(shield=True):
                self.ipam.release(network.id, address)
                await self._in_host(links.delete_link, host_interface)
                if created_sandbox and sandbox is not None:
                    self.dns.remove_sandbox(container_id)
                    await trio.to_thread.run_sync(netns.remove_netns, sandbox.path)
                await self._save_ipam()
            raise
        dns_names = (container_name, *aliases, container_id[:12]) if network.embedded_dns else ()
        endpoint = Endpoint(
            id=endpoint_id,
            network_id=network.id,
            container_id=container_id,
            container_name=container_name,
            sandbox_key=sandbox.path,
            interface=interface,
            host_interface=host_interface,
            ipv4_address=str(address),
            prefix_length=prefix,
            gateway=config.gateway,
            mac_address=plan.mac,
            aliases=tuple(aliases),
            dns_names=tuple(dict.fromkeys(dns_names)),
            requested_ipv4=ipv4_address,
            links=tuple(legacy_links),
            driver_options=driver_options,
        )
        if gateway_owner:
            sandbox.gateway_endpoint = endpoint_id
        self.state.sandboxes[container_id] = sandbox
        self.state.endpoints[endpoint_id] = endpoint
        if network.embedded_dns:
            self.directory.set_network(network.id, network.name, network.internal)
            self.directory.add_endpoint(network.id, container_id, str(address), endpoint.dns_names)
            self.directory.set_upstreams(container_id, sandbox.dns_servers)
        await self._save()
        return endpoint

    async def detach(self, container_id: str, network_reference: str) -> None:
        """`docker network disconnect`: remove one endpoint (the netns stays)."""
        self._require_restored()
        async with self._lock:
            network = self._find(network_reference)
            endpoint = next(
                (e for e in self.state.endpoints_of_container(container_id) if e.network_id == network.id), None
            )
            if endpoint is None:
                raise errdefs.NotFound(f"container {container_id[:12]} is not connected to network {network.name}")
            sandbox = self.state.sandboxes[container_id]
            if sandbox.kind in ("host", "none"):
                raise errdefs.Forbidden(
                    "container cannot be disconnected from host network or connected to host network"
                )
            await self._in_host(links.delete_link, endpoint.host_interface)
            del self.state.endpoints[endpoint.id]
            self.ipam.release(network.id, endpoint.ipv4_address)
            self.directory.remove_endpoint(network.id, container_id)
            dropped = [p for p in self.state.ports if p.container_id == container_id and p.network_id == network.id]
            if dropped:
                self._drop_ports(dropped)
                await self._sync_firewall()
            if sandbox.gateway_endpoint == endpoint.id:
                sandbox.gateway_endpoint = ""
                await self._choose_new_gateway(sandbox)
            await self._save()

    async def _choose_new_gateway(self, sandbox: Sandbox) -> None:
        for endpoint in self.state.endpoints_of_container(sandbox.container_id):
            network = self.state.networks[endpoint.network_id]
            if not network.internal and endpoint.interface:
                await self._in_netns(sandbox.path, links.set_default_route, endpoint.gateway, endpoint.interface)
                sandbox.gateway_endpoint = endpoint.id
                return

    async def release_container(self, container_id: str) -> None:
        """Everything of a container goes: ports, endpoints, addresses, DNS, netns."""
        self._require_restored()
        async with self._lock:
            had_ports = any(p.container_id == container_id for p in self.state.ports)
            await self._teardown_sandbox(container_id)
            if had_ports:
                await self._sync_firewall()
            await self._save()

    async def _teardown_sandbox(self, container_id: str) -> None:
        self._drop_ports([p for p in self.state.ports if p.container_id == container_id])
        self.dns.remove_sandbox(container_id)
        for endpoint in self.state.endpoints_of_container(container_id):
            if endpoint.host_interface:
                await self._in_host(links.delete_link, endpoint.host_interface)
            if endpoint.ipv4_address:
                self.ipam.release(endpoint.network_id, endpoint.ipv4_address)
        self.directory.remove_container(container_id)
        sandbox = self.state.sandboxes.get(container_id)
        if sandbox is not None and sandbox.netns_name:
            await trio.to_thread.run_sync(netns.remove_netns, sandbox.path)
        self._forget_container(container_id)

    # ---- published ports -------------------------------------------------------------------

    def _drop_ports(self, dropped: Sequence[PublishedPort]) -> None:
        self.publisher.drop(dropped)
        self.state.ports = [p for p in self.state.ports if p not in dropped]

    async def publish_ports(self, container_id: str, requests: Sequence[PortRequest]) -> list[PublishedPort]:
        """Publish `-p` bindings on the container's gateway endpoint; all or nothing.

        Returns the actual bindings (ephemeral ports filled in). A container without a
        non-internal bridge endpoint publishes nothing, as with Docker.
        """
        self._require_restored()
        async with self._lock:
            sandbox = self.state.sandboxes.get(container_id)
            if sandbox is None:
                raise errdefs.NotFound(f"container {container_id} has no network sandbox")
            endpoint = self.state.endpoints.get(sandbox.gateway_endpoint)
            if endpoint is None or not requests:
                return []
            claimed = await self._in_host(self.publisher.claim, container_id, endpoint, list(requests))
            self.state.ports.extend(claimed)
            try:
                await self._sync_firewall()
            except BaseException:
                with trio.CancelScope(shield=True):
                    self._drop_ports(claimed)
                raise
            await self._save()
            return claimed

    async def unpublish(self, container_id: str) -> None:
        """Withdraw every published port of a container."""
        self._require_restored()
        async with self._lock:
            dropped = [p for p in self.state.ports if p.container_id == container_id]
            if not dropped:
                return
            self._drop_ports(dropped)
            await self._sync_firewall()
            await self._save()

    # ---- the container's /etc files --------------------------------------------------------

    def etc_files(
        self,
        container_id: str,
        *,
        hostname: str,
        domainname: str = "",
        extra_hosts: Sequence[str] = (),
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
    ) -> etcfiles.EtcFiles:
        """/etc/hosts, /etc/resolv.conf and /etc/hostname for a container, after attach."""
        sandbox = self.state.sandboxes.get(container_id)
        attached = self.endpoints(container_id)
        default_bridge = next((n for n in self.state.networks.values() if n.is_default_bridge), None)
        host_gateway = default_bridge.gateway if default_bridge else ""
        extra = [etcfiles.parse_extra_host(entry, host_gateway) for entry in extra_hosts]
        host_resolv = etcfiles.read_host_resolv_conf(self.resolv_conf_path)
        if sandbox is not None and sandbox.kind == "host":
            try:
                base_hosts = self.hosts_path.read_text()
            except FileNotFoundError:
                base_hosts = etcfiles.hosts_file("", [])
            hosts = base_hosts + "".join(f"{address}\t{name}\n" for name, address in extra)
            try:
                resolv = self.resolv_conf_path.read_text()
            except FileNotFoundError:
                resolv = etcfiles.container_resolv_conf(host_resolv, embedded_dns=False)
            if dns or dns_search or dns_options:
                resolv = etcfiles.container_resolv_conf(
                    host_resolv, embedded_dns=False, dns=dns, dns_search=dns_search, dns_options=dns_options
                )
            return etcfiles.EtcFiles(hosts, resolv, etcfiles.hostname_file(hostname))
        embedded = bool(attached) and attached[0][0].embedded_dns
        resolv = etcfiles.container_resolv_conf(
            host_resolv, embedded_dns=embedded, dns=dns, dns_search=dns_search, dns_options=dns_options
        )
        addresses = [e.ipv4_address for _, e in attached if e.ipv4_address]
        hosts = etcfiles.hosts_file(hostname, addresses, domainname=domainname, extra_hosts=extra)
        return etcfiles.EtcFiles(hosts, resolv, etcfiles.hostname_file(hostname))

    # ---- whole sandboxes, as the network actor's protocol has them (messages.py) ------------

    def check_networks(self, names: Sequence[str]) -> dict[str, Network]:
        """Each name as asked -> its network ("default" is the default bridge); NotFound
        with Docker's text for the first unknown one."""
        return {name: self._find("bridge" if name == "default" else name) for name in names}

    async def setup_sandbox(
        self,
        container_id: str,
        *,
        container_name: str,
        hostname: str,
        domainname: str = "",
        endpoints: Sequence[EndpointSpec],
        port_bindings: Mapping[str, Any] | None = None,
        publish_all: bool = False,
        exposed_ports: Sequence[str] = (),
        extra_hosts: Sequence[str] = (),
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
    ) -> SandboxInfo:
        """A container's whole network at start: netns, every endpoint in order (the first
        non-internal one gives the default route), published ports, /etc files.

        All or nothing: on any error everything this call made is gone again. Idempotent
        per container: a sandbox left over from an earlier run is replaced.
        """
        self._require_restored()
        if not endpoints:
            raise errdefs.InvalidParameter("a container needs at least one network to join")
        for spec in endpoints:
            if spec.ipv6_address:
                raise errdefs.InvalidParameter("IPv6 addresses are not supported by flotta")
        requests = model.port_requests_from_bindings(port_bindings)
        exposed = list(dict.fromkeys([*exposed_ports, *(port_bindings or {})]))
        if publish_all:
            bound = {f"{r.container_port}/{r.protocol}" for r in requests}
            requests += model.port_requests_from_bindings({key: None for key in exposed if key not in bound})
        default_bridge = self._find("bridge")
        for entry in extra_hosts:
            etcfiles.parse_extra_host(entry, default_bridge.gateway)
        etcfiles.validate_dns_servers(dns)
        if container_id in self.state.sandboxes:
            await self.release_container(container_id)
        try:
            for spec in endpoints:
                await self.attach(
                    container_id, "bridge" if spec.network == "default" else spec.network,
                    container_name=container_name, aliases=spec.aliases, ipv4_address=spec.ipv4_address,
                    mac_address=spec.mac_address, legacy_links=spec.links,
                    driver_options=spec.driver_options, dns_servers=dns,
                )
            published = await self.publish_ports(container_id, requests)
            async with self._lock:
                sandbox = self.state.sandboxes[container_id]
                sandbox.hostname, sandbox.domainname = hostname, domainname
                sandbox.extra_hosts = tuple(extra_hosts)
                await self._save()
            files = self.etc_files(
                container_id, hostname=hostname, domainname=domainname, extra_hosts=extra_hosts,
                dns=dns, dns_search=dns_search, dns_options=dns_options,
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.release_container(container_id)
            raise
        return SandboxInfo(
            container_id=container_id,
            netns_path=self.sandbox_key(container_id),
            sandbox_id=self.state.sandboxes[container_id].sandbox_id,
            endpoints=tuple(self.endpoints(container_id)),
            published=tuple(published),
            ports=model.ports_json(published, exposed),
            ports_list=model.ports_list_json(published),
            files=files,
        )

    async def teardown_sandbox(self, container_id: str) -> None:
        """Everything of a container goes; no error when it has nothing (idempotent)."""
        await self.release_container(container_id)

    async def connect(self, container_id: str, container_name: str, spec: EndpointSpec) -> tuple[Endpoint, str]:
        """`docker network connect` of a running container: the new endpoint and the
        container's new /etc/hosts text (one more address line)."""
        if container_id not in self.state.sandboxes:
            raise errdefs.Conflict(f"container {container_id[:12]} is not running")
        if spec.ipv6_address:
            raise errdefs.InvalidParameter("IPv6 addresses are not supported by flotta")
        endpoint = await self.attach(
            container_id, spec.network, container_name=container_name, aliases=spec.aliases,
            ipv4_address=spec.ipv4_address, mac_address=spec.mac_address, legacy_links=spec.links,
            driver_options=spec.driver_options,
        )
        sandbox = self.state.sandboxes[container_id]
        hosts = self.etc_files(
            container_id, hostname=sandbox.hostname, domainname=sandbox.domainname,
            extra_hosts=sandbox.extra_hosts,
        ).hosts
        return endpoint, hosts

    async def disconnect(self, container_id: str, network_reference: str, force: bool = False) -> None:
        """`docker network disconnect`; with `force`, not being connected is no error."""
        network = self._find(network_reference)
        connected = any(e.network_id == network.id for e in self.state.endpoints_of_container(container_id))
        if force and not connected:
            return
        await self.detach(container_id, network.id)


@attrs.frozen
class SandboxInfo:
    """What `setup_sandbox` made, in the shapes the API shows (messages.Sandbox)."""

    container_id: str
    netns_path: str
    sandbox_id: str
    endpoints: tuple[tuple[Network, Endpoint], ...]
    published: tuple[PublishedPort, ...]
    ports: dict[str, Any]  # NetworkSettings.Ports
    ports_list: list[dict[str, Any]]  # the Ports array of GET /containers/json
    files: etcfiles.EtcFiles

    def endpoint_settings(self) -> dict[str, dict[str, Any]]:
        """NetworkSettings.Networks: network name -> EndpointSettings."""
        return {network.name: model.endpoint_json(endpoint) for network, endpoint in self.endpoints}
