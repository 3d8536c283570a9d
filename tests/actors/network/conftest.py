"""Fixtures for the network driver's root tests (helpers in network_world.py).

Every namespace, process and flotta object is removed at teardown even when the test
failed, and a leak fails the test.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from network_world import (
    HOST_UPLINK,
    OUTSIDE_ADDRESS,
    World,
    flotta_leftovers,
    run,
    start_driver,
    stop_driver,
)

from actors.network import netns
from actors.network.driver import NetworkDriver


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    tag = secrets.token_hex(3)
    host, outside = f"fth-{tag}", f"fto-{tag}"
    directory = tmp_path / "world"
    directory.mkdir()
    resolv_conf = directory / "host-resolv.conf"
    resolv_conf.write_text(f"nameserver {OUTSIDE_ADDRESS}\nsearch example.test\n")
    instance = World(tag, host, outside, f"ftc{tag}-", directory, resolv_conf)
    try:
        run("ip", "netns", "add", host)
        run("ip", "netns", "add", outside)
        run("ip", "-n", host, "link", "add", "uplink0", "type", "veth", "peer", "name", "wan0", "netns", outside)
        run("ip", "-n", host, "address", "add", f"{HOST_UPLINK}/24", "dev", "uplink0")
        run("ip", "-n", outside, "address", "add", f"{OUTSIDE_ADDRESS}/24", "dev", "wan0")
        for name, device in ((host, "uplink0"), (outside, "wan0")):
            run("ip", "-n", name, "link", "set", "lo", "up")
            run("ip", "-n", name, "link", "set", device, "up")
        run("ip", "-n", host, "route", "add", "default", "via", OUTSIDE_ADDRESS)
        yield instance
    finally:
        for process in instance.processes:
            process.kill()
            process.wait()
        leftovers = flotta_leftovers(instance)
        for name in netns.list_netns(instance.container_prefix):
            netns.remove_netns(name)
        for name in (host, outside):
            netns.remove_netns(name)
    assert leftovers == [], f"flotta left these behind: {leftovers}"


@pytest.fixture
async def driver(world: World, tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[NetworkDriver]:
    instance = await start_driver(world, tmp_path / "state", nursery)
    try:
        yield instance
    finally:
        with trio.CancelScope(shield=True):
            await stop_driver(instance)
