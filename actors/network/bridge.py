"""Bridge devices and the host settings bridge networks need, through pyroute2.

Every function acts on the netns of the calling thread: the driver runs them through
`netns.call_in_thread(host_netns, ...)`, so a test (or a simulated swarm node) can be a
"host" that is itself a network namespace.

Host settings, and why:
- net.ipv4.ip_forward = 1, set explicitly (a fresh netns inherits init_net's value, which
  may be either): containers reach the outside and published ports only through routing.
- route_localnet = 1 on each bridge: a published port is reachable on the host's
  127.0.0.1 by DNAT in the nat OUTPUT hook; the kernel drops a 127.0.0.0/8 source leaving
  a non-loopback device unless route_localnet is set on that device. The firewall then
  masquerades such packets to the bridge address (see firewall.py, docs/networking.md).
- net.bridge.bridge-nf-call-iptables is read, never changed (it is global to the host's
  netfilter and other engines rely on it); when it is 1, traffic between containers on one
  bridge passes the forward hook, which is why foreign FORWARD drop policies matter.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import attrs
from pyroute2 import IPRoute

from actors.network.links import FLOTTA_ALIAS, HOST_INTERFACE_PREFIX

SYSCTL_ROOT = Path("/proc/sys")
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)


def read_sysctl(name: str) -> str | None:
    """`net.ipv4.ip_forward` style name; None when the key does not exist here."""
    try:
        return (SYSCTL_ROOT / name.replace(".", "/")).read_text().strip()
    except FileNotFoundError:
        return None


def write_sysctl(name: str, value: str) -> None:
    path = SYSCTL_ROOT / name.replace(".", "/")
    if path.read_text().strip() != value:
        path.write_text(value)


def enable_forwarding() -> None:
    write_sysctl("net.ipv4.ip_forward", "1")


def bridge_netfilter_enabled() -> bool:
    """True when bridged IPv4 traffic traverses the iptables/nftables ip hooks."""
    return read_sysctl("net.bridge.bridge-nf-call-iptables") == "1"


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's ip_local_port_range, which Docker uses for ephemeral host ports."""
    text = read_sysctl("net.ipv4.ip_local_port_range")
    if text:
        parts = text.split()
        if len(parts) == 2 and all(part.isdigit() for part in parts):
            low, high = int(parts[0]), int(parts[1])
            if 0 < low <= high < 65536:
                return low, high
    return DEFAULT_EPHEMERAL_RANGE


@attrs.frozen
class LinkInfo:
    name: str
    kind: str
    alias: str
    master: str


def ensure_bridge(name: str, gateway: str, prefix_length: int, mtu: int = 1500) -> bool:
    """Create (or re-adopt) a bridge with the gateway address, up, route_localnet on.

    Returns True when it was created. An existing device of that name is adopted only if
    flotta made it (its alias says so), so flotta never takes over someone else's bridge.
    """
    created = False
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            link = ipr.link("get", index=found[0])[0]
            kind = _kind(link)
            alias = link.get("ifalias") or ""
            if kind != "bridge" or not str(alias).startswith(FLOTTA_ALIAS):
                raise FileExistsError(f"a device named {name} exists and is not a flotta bridge")
            index = found[0]
        else:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            index = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=index, ifalias=f"{FLOTTA_ALIAS} bridge")
            created = True
        wanted = ipaddress.IPv4Interface(f"{gateway}/{prefix_length}")
        present = {
            ipaddress.IPv4Interface(f"{a.get('address')}/{a['prefixlen']}")
            for a in ipr.get_addr(index=index, family=2)
        }
        for stale in present - {wanted}:
            ipr.addr("del", index=index, address=str(stale.ip), prefixlen=stale.network.prefixlen)
        if wanted not in present:
            ipr.addr("add", index=index, address=str(wanted.ip), prefixlen=prefix_length)
        ipr.link("set", index=index, state="up")
    write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")
    return created


def _kind(link: object) -> str:
    info = link.get("linkinfo")  # type: ignore[attr-defined]
    return str(info.get("kind")) if info is not None else ""


def flotta_links() -> list[LinkInfo]:
    """Links of this netns that flotta made: its bridges and veth host ends."""
    result = []
    with IPRoute() as ipr:
        links = ipr.link("dump")
        names = {link["index"]: str(link.get("ifname")) for link in links}
        for link in links:
            alias = str(link.get("ifalias") or "")
            name = str(link.get("ifname"))
            ours = alias.startswith(FLOTTA_ALIAS) or (
                name.startswith(HOST_INTERFACE_PREFIX) and _kind(link) == "veth"
            )
            if ours:
                master = names.get(link.get("master") or -1, "")
                result.append(LinkInfo(name, _kind(link), alias, master))
    return sorted(result, key=lambda info: info.name)


def host_routes(exclude_devices: frozenset[str] = frozenset()) -> list[ipaddress.IPv4Network]:
    """IPv4 prefixes the host already routes (main table, no default route), so automatic
    subnets avoid them: a network on 172.17.0.0/16 would shadow a docker0 there."""
    result = []
    with IPRoute() as ipr:
        names = {link["index"]: str(link.get("ifname")) for link in ipr.link("dump")}
        for route in ipr.route("dump", family=2, table=254):
            destination = route.get("dst")
            if not destination or route["dst_len"] == 0:
                continue
            if names.get(route.get("oif") or -1, "") in exclude_devices:
                continue
            result.append(ipaddress.IPv4Network(f"{destination}/{route['dst_len']}", strict=False))
    return result
