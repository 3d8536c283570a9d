"""One flottad per module for the daemon-level integration tests here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Flottad


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
    import socket
    import subprocess
    import sys
    import time

    from tests.harness import ROOT

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.images.registry_server", "serve", "--addr", f"127.0.0.1:{port}", "--root", str(tmp_path / "registry")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
