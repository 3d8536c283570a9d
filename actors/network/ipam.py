"""IP address management: subnets for networks, addresses for endpoints.

Rules (each one is checked by tests/actors/network/test_network_ipam.py against a model):
- A network owns one IPv4 pool: its subnet, an optional allocation range inside it, the
  gateway (the subnet's first address unless given) and reserved auxiliary addresses.
- Pools never overlap. A subnet picked automatically comes from the default pools
  (172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 cut into /20s, as Docker does),
  skipping any that overlap an existing pool or a prefix the caller asks to avoid (the
  host's own routes). A user subnet that overlaps an existing pool is refused with
  Docker's text `Pool overlaps with other one on this address space`.
- An address is handed out at most once until released. Allocation is serial, as in
  Docker: the search starts after the last address handed out and wraps, so a freed
  address is not reused at once (stale DNS answers and ARP caches point nowhere rather
  than at a new container).
- The network and broadcast addresses, the gateway and auxiliary addresses are never
  handed out; a requested address (`--ip`) must be inside the subnet (not necessarily the
  range) and free.
- Every failing call raises before changing anything.

`Ipam` is pure; `IpamStore` persists it as one JSON file written with `atomic_write`, so
a daemon restart sees exactly what was last saved. The caller saves after each change and
before using what the change returned.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from actors import errdefs
from actors.network.model import pool_overlaps
from runtime.disk import atomic_write

IPv4Address = ipaddress.IPv4Address
IPv4Network = ipaddress.IPv4Network


def default_pools() -> list[IPv4Network]:
    """Docker's default local address pools, in the order they are tried."""
    pools = [IPv4Network(f"172.{second}.0.0/16") for second in range(17, 32)]
    pools += list(IPv4Network("192.168.0.0/16").subnets(new_prefix=20))
    return pools


@attrs.define
class Pool:
    network_id: str
    label: str
    subnet: IPv4Network
    ip_range: IPv4Network
    gateway: IPv4Address
    reserved: dict[str, IPv4Address]
    allocated: dict[IPv4Address, str]
    last: int  # integer form of the last address handed out, the start of the next search

    def unavailable(self, address: IPv4Address) -> bool:
        return (
            address in (self.subnet.network_address, self.subnet.broadcast_address, self.gateway)
            or address in self.reserved.values()
            or address in self.allocated
        )


class Ipam:
    """The address book of every network on this host."""

    def __init__(self, pools: Iterable[IPv4Network] | None = None) -> None:
        self.default_pools = list(pools) if pools is not None else default_pools()
        self._pools: dict[str, Pool] = {}

    # ---- networks ----------------------------------------------------------------------------

    def add_network(
        self,
        network_id: str,
        *,
        label: str = "",
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        aux_addresses: dict[str, str] | None = None,
        avoid: Iterable[IPv4Network] = (),
    ) -> Pool:
        """Give a network its pool; picks a free default subnet when `subnet` is empty."""
        if network_id in self._pools:
            raise errdefs.Conflict(f"network {network_id} already has an address pool")
        if subnet:
            chosen = IPv4Network(subnet, strict=False)
            if any(chosen.overlaps(pool.subnet) for pool in self._pools.values()):
                raise pool_overlaps()
        else:
            if gateway or ip_range:
                raise errdefs.InvalidParameter("every ip-range or gateway must have a corresponding subnet")
            chosen = self._free_default_subnet(list(avoid))
        if chosen.prefixlen > 30:
            raise errdefs.InvalidParameter(f"subnet {chosen} is too small: at least a /30 is needed")
        range_network = IPv4Network(ip_range) if ip_range else chosen
        if not range_network.subnet_of(chosen):
            raise errdefs.InvalidParameter(f"ip-range {range_network} is not a subset of subnet {chosen}")
        gateway_address = IPv4Address(gateway) if gateway else chosen.network_address + 1
        if gateway_address not in chosen or gateway_address in (
            chosen.network_address,
            chosen.broadcast_address,
        ):
            raise errdefs.InvalidParameter(f"no matching subnet for gateway {gateway_address}")
        reserved = {key: IPv4Address(value) for key, value in (aux_addresses or {}).items()}
        for key, address in reserved.items():
            if address not in chosen:
                raise errdefs.InvalidParameter(f"auxiliary address {key}={address} is not in subnet {chosen}")
        pool = Pool(
            network_id=network_id,
            label=label or network_id[:12],
            subnet=chosen,
            ip_range=range_network,
            gateway=gateway_address,
            reserved=reserved,
            allocated={},
            last=int(range_network.broadcast_address),
        )
        self._pools[network_id] = pool
        return pool

    def _free_default_subnet(self, avoid: list[IPv4Network]) -> IPv4Network:
        taken = [pool.subnet for pool in self._pools.values()] + avoid
        for candidate in self.default_pools:
            if not any(candidate.overlaps(other) for other in taken):
                return candidate
        raise errdefs.Unavailable("all predefined address pools have been fully subnetted")

    def remove_network(self, network_id: str) -> None:
        """Forget a network's pool; its addresses go with it. No error when absent."""
        self._pools.pop(network_id, None)

    def pool(self, network_id: str) -> Pool:
        try:
            return self._pools[network_id]
        except KeyError:
            raise errdefs.NotFound(f"network {network_id} has no address pool") from None

    def network_ids(self) -> list[str]:
        return sorted(self._pools)

    # ---- addresses ---------------------------------------------------------------------------

    def allocate(self, network_id: str, owner: str, requested: str = "") -> IPv4Address:
        """An address for `owner` (an endpoint id); `requested` is `--ip`."""
        pool = self.pool(network_id)
        if requested:
            try:
                address = IPv4Address(requested)
            except ValueError:
                raise errdefs.InvalidParameter(f"invalid IPv4 address: {requested}") from None
            if address not in pool.subnet:
                raise errdefs.InvalidParameter(
                    f"Invalid address {address}: It does not belong to any of this network's subnets"
                )
            if pool.unavailable(address):
                raise errdefs.Conflict("Address already in use")
            pool.allocated[address] = owner
            return address
        first, last = int(pool.ip_range.network_address), int(pool.ip_range.broadcast_address)
        size = last - first + 1
        cursor = pool.last
        for _ in range(size):
            cursor = cursor + 1 if first <= cursor < last else first
            address = IPv4Address(cursor)
            if not pool.unavailable(address):
                pool.allocated[address] = owner
                pool.last = cursor
                return address
        raise errdefs.Unavailable(
            f"no available IPv4 addresses on this network's address pools: {pool.label} ({network_id})"
        )

    def release(self, network_id: str, address: str | IPv4Address) -> None:
        """Free one address; no error when it is not allocated (release is idempotent)."""
        pool = self._pools.get(network_id)
        if pool is not None:
            pool.allocated.pop(IPv4Address(address), None)

    def release_owner(self, owner: str) -> list[tuple[str, IPv4Address]]:
        """Free every address `owner` holds; returns what was freed."""
        freed = []
        for pool in self._pools.values():
            for address, holder in list(pool.allocated.items()):
                if holder == owner:
                    del pool.allocated[address]
                    freed.append((pool.network_id, address))
        return freed

    def allocations(self, network_id: str) -> dict[IPv4Address, str]:
        return dict(self.pool(network_id).allocated)

    # ---- persistence -------------------------------------------------------------------------

    def to_json(self) -> bytes:
        pools = [
            {
                "network_id": pool.network_id,
                "label": pool.label,
                "subnet": str(pool.subnet),
                "ip_range": str(pool.ip_range),
                "gateway": str(pool.gateway),
                "reserved": {key: str(value) for key, value in sorted(pool.reserved.items())},
                "allocated": {str(a): owner for a, owner in sorted(pool.allocated.items())},
                "last": str(IPv4Address(pool.last)),
            }
            for pool in sorted(self._pools.values(), key=lambda p: p.network_id)
        ]
        return json.dumps({"version": 1, "pools": pools}, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, pools: Iterable[IPv4Network] | None = None) -> Ipam:
        """Load `to_json`'s output; ValueError says what is malformed."""
        ipam = cls(pools)
        try:
            document = json.loads(data)
            if document.get("version") != 1:
                raise ValueError(f"unknown version {document.get('version')!r}")
            for entry in document["pools"]:
                ipam._pools[entry["network_id"]] = _pool_from_json(entry)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"malformed IPAM state: {error!r}") from None
        return ipam


def _pool_from_json(entry: dict[str, Any]) -> Pool:
    subnet = IPv4Network(entry["subnet"])
    ip_range = IPv4Network(entry["ip_range"])
    allocated = {IPv4Address(a): str(owner) for a, owner in entry["allocated"].items()}
    if not ip_range.subnet_of(subnet) or any(a not in subnet for a in allocated):
        raise ValueError(f"addresses outside subnet {subnet}")
    return Pool(
        network_id=str(entry["network_id"]),
        label=str(entry.get("label", "")),
        subnet=subnet,
        ip_range=ip_range,
        gateway=IPv4Address(entry["gateway"]),
        reserved={key: IPv4Address(value) for key, value in entry["reserved"].items()},
        allocated=allocated,
        last=int(IPv4Address(entry["last"])),
    )


class IpamStore:
    """`ipam.json` under a directory the caller gives; written atomically."""

    file_name = "ipam.json"

    def __init__(self, directory: str | Path, pools: Iterable[IPv4Network] | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.file_name
        self.pools = list(pools) if pools is not None else None

    def load(self) -> Ipam:
        """The saved state, or an empty IPAM when nothing was saved yet."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Ipam(self.pools)
        try:
            return Ipam.from_json(data, self.pools)
        except ValueError as error:
            raise ValueError(f"{self.path}: {error}") from None

    def save(self, ipam: Ipam) -> None:
        """Blocking (fsync): call from a worker thread under Trio."""
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, ipam.to_json(), mode=0o600)
