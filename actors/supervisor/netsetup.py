"""How a container's run gets its network: namespaces and /etc files, by network mode.

`none`, `host` and `container:<id>` are set up here (see sandbox.py); bridge and user
networks through the network actor's sandbox protocol (actors/network/messages.py). The
NetworkSettings the API shows (`record.network`) are filled in at start and their runtime
fields (addresses, endpoint ids, ports) cleared after the run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors import errdefs
from actors.network import messages as network_messages
from actors.supervisor import sandbox
from actors.supervisor.records import ContainerRecord
from runtime.errors import ReplyError

if TYPE_CHECKING:
    from runtime.actor import Ref

log = logging.getLogger("flotta.containers")

_RUNTIME_ENDPOINT_FIELDS = {
    "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address",
    "GlobalIPv6PrefixLen", "DNSNames",
}  # fmt: skip


class NetworkSetup:
    """Mixin of ContainersActor (see the module docstring)."""

    if TYPE_CHECKING:

        def find(self, ref: str) -> ContainerRecord: ...

        def networks_ref(self) -> Ref | None: ...

        async def ask(self, ref: Ref, message: Any, timeout: float = ...) -> Any: ...

    async def setup_network(self, record: ContainerRecord) -> tuple[str, str]:
        """(the spec's network: "none", "host" or a netns path; the /etc files' directory)."""
        host_config = record.host_config
        mode = host_config["NetworkMode"]
        files_dir = Path(record.files_dir)
        options = {
            "extra_hosts": list(host_config.get("ExtraHosts") or []),
            "dns": list(host_config.get("Dns") or []),
            "dns_search": list(host_config.get("DnsSearch") or []),
            "dns_options": list(host_config.get("DnsOptions") or []),
        }
        hostname = record.config.get("Hostname") or record.short_id
        if mode == "none":
            files = sandbox.none_files(hostname, domainname=record.config.get("Domainname") or "", **options)
            await trio.to_thread.run_sync(sandbox.write_files, files_dir, files)
            record.network = {"SandboxKey": "", "Networks": {"none": {}}, "Ports": {}, "PortsList": []}
            return "none", str(files_dir)
        if mode == "host":
            files = sandbox.host_files(**options)
            await trio.to_thread.run_sync(sandbox.write_files, files_dir, files)
            record.network = {"SandboxKey": "", "Networks": {"host": {}}, "Ports": {}, "PortsList": []}
            return "host", str(files_dir)
        if mode.startswith("container:"):
            target = self.find(mode[len("container:") :])
            if target.state.status not in ("running", "paused") or not target.state.pid:
                raise errdefs.Conflict(
                    f"cannot join network namespace of a non running container: container {target.id} is {target.state.status}"
                )
            record.config["Hostname"] = target.config.get("Hostname") or target.short_id
            record.network = {"SandboxKey": "", "Networks": {}, "Ports": {}, "PortsList": []}
            return f"/proc/{target.state.pid}/ns/net", target.files_dir
        networks = self.networks_ref()
        if networks is None:
            raise errdefs.NotImplementedYet(
                f"network {mode!r} is not available: this flottad runs without its network component"
            )
        endpoints = [
            network_messages.EndpointRequest(
                network=name,
                aliases=list(settings.get("Aliases") or []),
                ipv4_address=str((settings.get("IPAMConfig") or {}).get("IPv4Address") or ""),
                ipv6_address=str((settings.get("IPAMConfig") or {}).get("IPv6Address") or ""),
                mac_address=str(settings.get("MacAddress") or record.config.get("MacAddress") or ""),
                links=list(settings.get("Links") or []),
                driver_options=dict(settings.get("DriverOpts") or {}),
            )
            for name, settings in record.endpoints.items()
        ]
        result = await self.ask(
            networks,
            network_messages.SetupSandbox(
                container_id=record.id,
                container_name=record.name,
                hostname=hostname,
                domainname=record.config.get("Domainname") or "",
                endpoints=endpoints,
                port_bindings=dict(host_config.get("PortBindings") or {}),
                publish_all=bool(host_config.get("PublishAllPorts")),
                exposed_ports=list(record.config.get("ExposedPorts") or {}),
                **options,
            ),
        )
        files = sandbox.EtcFiles(hostname, result.hosts, result.resolv_conf)
        await trio.to_thread.run_sync(sandbox.write_files, files_dir, files)
        record.network = {
            "SandboxID": result.sandbox_id,
            "SandboxKey": result.netns_path,
            "Networks": {item.network_name: dict(item.settings) for item in result.endpoints},
            "Ports": dict(result.ports),
            "PortsList": list(result.ports_list),
        }
        return result.netns_path, str(files_dir)

    async def teardown_network(self, record: ContainerRecord) -> None:
        mode = record.host_config.get("NetworkMode", "bridge")
        if mode not in ("none", "host") and not mode.startswith("container:"):
            networks = self.networks_ref()
            if networks is not None:
                try:
                    await self.ask(networks, network_messages.TeardownSandbox(record.id))
                except ReplyError as error:
                    log.warning("container %s: network teardown: %s", record.short_id, error)
        current = record.network.get("Networks") or {}
        record.network = {
            "SandboxKey": "",
            "Networks": {
                name: {key: value for key, value in settings.items() if key not in _RUNTIME_ENDPOINT_FIELDS}
                for name, settings in current.items()
            },
            "Ports": {},
            "PortsList": [],
        }
