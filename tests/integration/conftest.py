"""One flottad per module for the daemon-level integration tests here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Flottad, builtin_registry


@pytest.fixture(scope="module")
def flottad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flottad]:
    daemon = Flottad(tmp_path_factory.mktemp("flottad"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def busybox(flottad: Flottad) -> str:
    response = flottad.api("POST", "/flotta/bootstrap?image=busybox")
    assert response.status == 200, response.body
    return response.lines()[-1]["aux"]["ID"]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """flotta's built-in registry on a loopback port."""
    with builtin_registry(tmp_path / "registry") as address:
        yield address
