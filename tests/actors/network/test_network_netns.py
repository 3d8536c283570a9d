"""Named namespaces and running code inside one without leaking it to the caller (root)."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from actors.network import links, netns

pytestmark = pytest.mark.root
IFF_UP = 1


def own_netns() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


def test_create_enter_remove(tmp_path: Path) -> None:
    name = f"ftn-{secrets.token_hex(3)}"
    before = own_netns()
    path = netns.create_netns(name)
    try:
        assert path == f"/var/run/netns/{name}" and netns.netns_exists(name)
        assert own_netns() == before  # the creating thread's netns did not leak to us
        inside = netns.call_in_thread(name, own_netns)
        assert inside == os.stat(path).st_ino != before
        with pytest.raises(FileExistsError):
            netns.create_netns(name)
        assert name in netns.list_netns("ftn-")
        # A socket made inside stays inside: binding an address only that netns has works.
        sock = netns.socket_in_netns(name, socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            assert sock.getblocking() is False
        assert netns.call_in_thread(name, links.interfaces_in_sandbox) == ["lo"]
    finally:
        assert netns.remove_netns(name)
    assert not netns.netns_exists(name) and netns.remove_netns(name) is False
    plain = tmp_path / "plain"
    plain.write_text("")
    assert not netns.netns_exists(str(plain))


def test_errors_cross_the_thread_and_names_are_checked() -> None:
    with pytest.raises(FileNotFoundError):
        netns.call_in_thread("ftn-does-not-exist", own_netns)
    with pytest.raises(ZeroDivisionError):
        netns.call_in_thread(None, lambda: 1 / 0)
    with pytest.raises(ValueError):
        netns.netns_path("../etc")


def test_sandbox_has_lo_up() -> None:
    name = f"ftn-{secrets.token_hex(3)}"
    links.create_empty_sandbox(name)
    try:
        def loopback_flags() -> int:
            with IPRoute() as ipr:
                return ipr.link("get", index=ipr.link_lookup(ifname="lo")[0])[0]["flags"]

        assert netns.call_in_thread(name, loopback_flags) & IFF_UP
    finally:
        netns.remove_netns(name)


def test_mac_and_names() -> None:
    assert links.mac_from_ipv4("172.28.0.2") == "02:42:ac:1c:00:02"
    assert links.host_interface_name("0123456789abcdef" * 4) == "flv0123456789a"
    assert len(links.host_interface_name("f" * 64)) <= 15
