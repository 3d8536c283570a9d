"""Containers on the default bridge through the network actor: addresses, published ports,
/etc files, and the network settings the API shows while running and after exit."""

from __future__ import annotations

import json

import pytest

from tests.actors.daemon.flottad_fixture import has_networks
from tests.harness import Flottad

pytestmark = [pytest.mark.root, pytest.mark.compat]


@pytest.fixture(autouse=True)
def needs_networks(flottad: Flottad) -> None:
    # flottad always wires its network component: a daemon without it is a failure here.
    assert has_networks(flottad), "GET /networks failed: flottad started without its network component"


def test_default_bridge(flottad: Flottad) -> None:
    output = flottad.docker("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0; cat /etc/resolv.conf").stdout
    assert " inet 172." in output and "nameserver" in output
    started = flottad.docker("run", "-d", "--name", "bridged", "-p", "127.0.0.1::80", "busybox", "sleep", "1000")
    container_id = started.stdout.strip()
    ports = flottad.docker("ps", "--format", "{{.Ports}}", "--filter", "name=bridged").stdout.strip()
    assert ports.startswith("127.0.0.1:") and ports.endswith("->80/tcp")
    settings = json.loads(flottad.docker("inspect", "bridged").stdout)[0]["NetworkSettings"]
    assert settings["Networks"]["bridge"]["IPAddress"].startswith("172.")
    assert settings["IPAddress"] == settings["Networks"]["bridge"]["IPAddress"]
    assert settings["Ports"]["80/tcp"][0]["HostIp"] == "127.0.0.1"
    hosts = flottad.docker("exec", "bridged", "cat", "/etc/hosts").stdout
    assert f"{settings['IPAddress']}\t{container_id[:12]}" in hosts
    flottad.docker("stop", "-t", "0", "bridged")
    stopped = json.loads(flottad.docker("inspect", "bridged").stdout)[0]["NetworkSettings"]
    assert stopped["Networks"]["bridge"]["IPAddress"] == "" and stopped["Ports"] == {}
    flottad.docker("rm", "bridged")


def test_user_networks_connect_disconnect_and_dns(flottad: Flottad) -> None:
    flottad.docker("network", "create", "front")
    flottad.docker("network", "create", "back")
    try:
        flottad.docker("run", "-d", "--network", "front", "--name", "multi", "busybox", "sleep", "1000")
        flottad.docker("network", "connect", "--alias", "api", "back", "multi")
        addresses = flottad.docker("exec", "multi", "ip", "-4", "-o", "addr").stdout
        assert " eth0 " in addresses and " eth1 " in addresses
        networks = json.loads(flottad.docker("inspect", "multi").stdout)[0]["NetworkSettings"]["Networks"]
        assert set(networks) == {"front", "back"} and "api" in networks["back"]["Aliases"]
        reached = flottad.docker("run", "--rm", "--network", "back", "busybox", "ping", "-c1", "-W5", "api")
        assert networks["back"]["IPAddress"] in reached.stdout
        flottad.docker("network", "disconnect", "back", "multi")
        assert " eth1 " not in flottad.docker("exec", "multi", "ip", "-4", "-o", "addr").stdout
        busy = flottad.docker("network", "connect", "front", "multi", check=False)
        assert busy.returncode != 0 and "already exists in network front" in busy.stderr
    finally:
        flottad.docker("rm", "-f", "multi", check=False)
        flottad.docker("network", "rm", "front", "back", check=False)
