"""A container's interfaces: the sandbox netns, a veth pair per endpoint, addresses, routes.

The fast path (host-primitives §1c): the veth's container end is created directly inside
the container's netns (moving a link between namespaces costs ~20 ms), named eth0/eth1...
right away, and configured through a netlink socket opened by a thread that entered the
netns (no fork). Every function here blocks; the driver calls them through
`netns.call_in_thread`, which gives each call its own short-lived thread.

Teardown deletes the host end first: that destroys both ends at once, whereas removing the
netns only schedules the kernel's asynchronous cleanup, during which the host end's name
would still be taken.
"""

from __future__ import annotations

import errno
import ipaddress
import os

import attrs
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from actors.network import netns

HOST_INTERFACE_PREFIX = "flv"
FLOTTA_ALIAS = "flotta"


def mac_from_ipv4(address: str) -> str:
    """Docker's deterministic MAC: 02:42 then the four address bytes (172.28.0.2 ->
    02:42:ac:1c:00:02), locally administered and unicast."""
    packed = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{byte:02x}" for byte in packed)


def host_interface_name(endpoint_id: str) -> str:
    """The host end of an endpoint's veth: flv + 11 hex digits (15 bytes is the limit)."""
    return f"{HOST_INTERFACE_PREFIX}{endpoint_id[:11]}"


@attrs.frozen
class InterfacePlan:
    """Everything needed to plumb one endpoint."""

    host_interface: str
    bridge: str
    container_interface: str
    address: str
    prefix_length: int
    mac: str
    gateway: str = ""  # "" on internal networks: no default route
    mtu: int = 1500


def _lookup(ipr: IPRoute, name: str) -> int | None:
    """The index of a link by name: one RTM_GETLINK, not a dump of every link."""
    try:
        return int(ipr.link("get", ifname=name)[0]["index"])
    except NetlinkError as error:
        if error.code == errno.ENODEV:
            return None
        raise


def create_sandbox(name: str) -> str:
    """Create the container's named netns with `lo` up; call via call_in_thread."""
    path = netns.create_in_current_thread(name)
    with IPRoute() as ipr:
        loopback = _lookup(ipr, "lo")
        if loopback is not None:
            ipr.link("set", index=loopback, state="up")
    return path


def create_empty_sandbox(name: str) -> str:
    """The blocking entry point: a fresh thread creates the netns (for `--network none` too)."""
    return netns.call_in_thread(None, create_sandbox, name)


def attach_interface(sandbox_path: str, plan: InterfacePlan) -> None:
    """Plumb one endpoint. Runs in the host's netns (via call_in_thread), then enters the
    sandbox to configure the container end; on failure nothing is left behind."""
    with IPRoute() as host:
        bridge_index = _lookup(host, plan.bridge)
        if bridge_index is None:
            raise LookupError(f"bridge {plan.bridge} does not exist")
        sandbox_fd = os.open(sandbox_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            host.link(
                "add",
                ifname=plan.host_interface,
                kind="veth",
                mtu=plan.mtu,
                peer={
                    "ifname": plan.container_interface,
                    "net_ns_fd": sandbox_fd,
                    "address": plan.mac,
                    "mtu": plan.mtu,
                },
            )
        finally:
            os.close(sandbox_fd)
        try:
            host_index = _lookup(host, plan.host_interface)
            if host_index is None:
                raise LookupError(f"veth {plan.host_interface} vanished after creation")
            host.link("set", index=host_index, master=bridge_index, ifalias=FLOTTA_ALIAS, state="up")
            # Hairpin: with br_netfilter, a container reaching its own published port is
            # DNAT'ed and bridged back out of the port it came in on.
            host.brport("set", index=host_index, mode=1)
            netns.enter_netns(sandbox_path)
            with IPRoute() as container:
                index = _lookup(container, plan.container_interface)
                if index is None:
                    raise LookupError(f"{plan.container_interface} missing in {sandbox_path}")
                container.addr("add", index=index, address=plan.address, prefixlen=plan.prefix_length)
                container.link("set", index=index, state="up")
                container.link("set", index=1, state="up")  # lo is always index 1 in a netns
                if plan.gateway:
                    container.route("replace", dst="0.0.0.0/0", gateway=plan.gateway, oif=index)
        except BaseException:
            _delete_quietly(host, plan.host_interface)
            raise


def set_default_route(gateway: str, interface: str) -> None:
    """Point the calling thread's netns default route at `gateway` via `interface`."""
    with IPRoute() as ipr:
        index = _lookup(ipr, interface)
        if index is None:
            raise LookupError(f"interface {interface} does not exist")
        ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index)


def _delete_quietly(ipr: IPRoute, name: str) -> bool:
    index = _lookup(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)
    except NetlinkError as error:
        if error.code != errno.ENODEV:
            raise
        return False
    return True


def delete_link(name: str) -> bool:
    """Delete a link of the calling thread's netns; False when it was not there."""
    with IPRoute() as ipr:
        return _delete_quietly(ipr, name)


def interfaces_in_sandbox() -> list[str]:
    """Interface names in the calling thread's netns (for tests and re-adoption)."""
    with IPRoute() as ipr:
        return sorted(str(link.get("ifname")) for link in ipr.link("dump"))
