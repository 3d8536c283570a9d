"""Compatibility tests drive the real docker CLI and docker-py against one flottad per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actors.daemon.flottad_fixture import daemon_for
from tests.harness import Flottad


@pytest.fixture(scope="module")
def flottad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flottad]:
    with daemon_for(tmp_path_factory.mktemp("compat")) as daemon:
        yield daemon
