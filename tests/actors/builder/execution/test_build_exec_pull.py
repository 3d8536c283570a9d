"""FROM an image the daemon does not have: pulled from a registry (Debian's docker-registry
on a loopback port), with the pull's progress in the build output; `pull=1` pulls even
an image that is present."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildexec_helpers import BuildDaemon

pytestmark = [pytest.mark.root]

DOCKER_REGISTRY = "/usr/bin/docker-registry"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    if not os.path.exists(DOCKER_REGISTRY):
        pytest.fail(f"{DOCKER_REGISTRY} is missing: install Debian's docker-registry package")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(tmp_path / "registry.log", "wb") as log:
        process = subprocess.Popen([DOCKER_REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "registry.log").read_text()) from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_missing_base_image_is_pulled_and_pull_refreshes(daemon: BuildDaemon, registry: str) -> None:
    api = daemon.flottad.api
    name = f"{registry}/library/pulled-base"
    assert api("POST", f"/images/busybox/tag?repo={name}&tag=1").status == 201
    pushed = api("POST", f"/images/{name}/push?tag=1", headers={"X-Registry-Auth": "e30="})
    assert pushed.status == 200 and b"errorDetail" not in pushed.body, pushed.body
    assert api("DELETE", f"/images/{name}:1").status == 200
    assert api("GET", f"/images/{name}:1/json").status == 404

    built = daemon.build({"Dockerfile": f"FROM {name}:1\nRUN echo on the pulled base\n"}, {"nocache": "1"})
    statuses = [message.get("status", "") for message in built.messages]
    assert any(status.startswith("Digest: sha256:") for status in statuses), built.messages
    assert any(status.startswith("Status: ") for status in statuses)
    assert "on the pulled base\n" in built.text
    assert api("GET", f"/images/{name}:1/json").json()["Id"] == daemon.inspect("busybox")["Id"]

    again = daemon.build({"Dockerfile": f"FROM {name}:1\n"}, {"pull": "1"})
    assert any(
        message.get("status", "").startswith("Status: Image is up to date") for message in again.messages
    ), again.messages
