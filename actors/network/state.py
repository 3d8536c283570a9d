"""What the network driver remembers across restarts: networks, sandboxes, endpoints, ports.

One JSON document (`networks.json`) written with `atomic_write` after every change, next
to the IPAM's `ipam.json`. The two are saved in an order that leaves at worst an address
or a pool allocated for something that does not exist; `restore()` frees those (an
address is never handed out twice, at the price of a rare leak fixed at the next start).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from actors.network.model import Endpoint, Network, PublishedPort, from_plain, to_plain
from runtime.disk import atomic_write

STATE_FILE = "networks.json"
STATE_VERSION = 1


@attrs.define
class Sandbox:
    """A container's network namespace as flotta manages it.

    kind: "netns" (flotta created it), "host" (the host's), or "none" (netns with lo only).
    """

    container_id: str
    kind: str
    netns_name: str = ""
    path: str = ""
    gateway_endpoint: str = ""  # the endpoint that owns the default route
    embedded_dns: bool = False
    dns_servers: tuple[str, ...] = ()  # --dns given to this container
    sandbox_id: str = ""  # NetworkSettings.SandboxID
    # What /etc/hosts is rendered from, kept so `connect` can render it again.
    hostname: str = ""
    domainname: str = ""
    extra_hosts: tuple[str, ...] = ()


@attrs.define
class DriverState:
    networks: dict[str, Network] = attrs.field(factory=dict)
    sandboxes: dict[str, Sandbox] = attrs.field(factory=dict)
    endpoints: dict[str, Endpoint] = attrs.field(factory=dict)
    ports: list[PublishedPort] = attrs.field(factory=list)

    def endpoints_of_container(self, container_id: str) -> list[Endpoint]:
        """In attach order (dicts keep insertion order, and so does the saved document)."""
        return [e for e in self.endpoints.values() if e.container_id == container_id]

    def endpoints_of_network(self, network_id: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.network_id == network_id]

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "version": STATE_VERSION,
            "networks": [to_plain(n) for n in self.networks.values()],
            "sandboxes": [to_plain(s) for s in self.sandboxes.values()],
            "endpoints": [to_plain(e) for e in self.endpoints.values()],
            "ports": [to_plain(p) for p in self.ports],
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DriverState:
        try:
            document = json.loads(data)
            if document.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {document.get('version')!r}")
            networks = [from_plain(item, Network) for item in document["networks"]]
            sandboxes = [from_plain(item, Sandbox) for item in document["sandboxes"]]
            endpoints = [from_plain(item, Endpoint) for item in document["endpoints"]]
            ports = [from_plain(item, PublishedPort) for item in document["ports"]]
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"malformed network state: {error}") from None
        return cls(
            networks={n.id: n for n in networks},
            sandboxes={s.container_id: s for s in sandboxes},
            endpoints={e.id: e for e in endpoints},
            ports=ports,
        )


def load_state(directory: Path) -> DriverState:
    path = directory / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return DriverState()
    try:
        return DriverState.from_json(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def save_state(directory: Path, state: DriverState) -> None:
    """Blocking (fsync): call from a worker thread under Trio."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / STATE_FILE, state.to_json(), mode=0o600)
