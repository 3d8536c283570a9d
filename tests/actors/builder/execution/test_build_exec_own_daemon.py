"""Builds on a daemon of the test's own: the cache index across a restart, and RUN steps
on the default bridge.

These start flottad themselves, so they live in a module that does not use the shared
`build_daemon` fixture: only one flottad may run per network namespace.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from buildexec_helpers import BuildDaemon
from test_build_exec_cache import STEPS_AFTER_FROM, context

from tests.harness import Flottad

pytestmark = [pytest.mark.root]


@pytest.fixture
def stamp() -> str:
    import secrets

    return secrets.token_hex(4)


def start(flottad: Flottad) -> None:
    with warnings.catch_warnings():
        # tests/harness.py leaks the socket of each failed /_ping while flottad starts.
        warnings.simplefilter("ignore", ResourceWarning)
        flottad.start()


def test_the_cache_index_survives_a_restart(tmp_path: Path, stamp: str) -> None:
    flottad = Flottad(tmp_path)
    start(flottad)
    try:
        assert flottad.api("POST", "/flotta/bootstrap?image=busybox").status == 200
        daemon = BuildDaemon(flottad)
        first = daemon.build(context(stamp))
        flottad.stop()
        start(flottad)
        again = daemon.build(context(stamp))
        assert again.cache_hits == STEPS_AFTER_FROM
        assert again.image_id == first.image_id
        assert daemon.builder_leftovers() == {}
    finally:
        flottad.stop()


def test_run_steps_join_the_default_bridge(tmp_path: Path) -> None:
    """As Docker's classic builder: RUN containers get an address on the default bridge
    (the network actor's sandbox), torn down with the container. A daemon of its own: the
    bridge device is shared by every flottad on the host, and made when one starts."""
    flottad = Flottad(tmp_path)
    start(flottad)
    try:
        assert flottad.api("POST", "/flotta/bootstrap?image=busybox").status == 200
        daemon = BuildDaemon(flottad)
        bridge = flottad.api("GET", "/networks/bridge").json()
        subnet = bridge["IPAM"]["Config"][0]["Subnet"]
        prefix = ".".join(subnet.split(".")[:2]) + "."
        built = daemon.build(
            {"Dockerfile": "FROM busybox\nRUN ip -4 -o addr show eth0; cat /etc/hosts\n"},
            {"nocache": "1", "extrahosts": ["db:10.1.2.3"], "networkmode": "default"},
        )
        assert f"inet {prefix}" in built.text
        assert "10.1.2.3\tdb" in built.text
        assert flottad.api("GET", "/networks/bridge").json()["Containers"] in ({}, None)
        assert daemon.builder_leftovers() == {}
    finally:
        flottad.stop()
