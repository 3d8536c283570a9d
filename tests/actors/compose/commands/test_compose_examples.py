"""The example projects in examples/compose/, each brought up with one command.

These use the project's default network (a bridge created by `up`), so they need
flottad's network component: services reach each other by service name through its
embedded DNS, and the front end publishes a port on the host's loopback.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str, timeout_seconds: float = 30.0) -> str:
    """GET `url`, retrying while the server comes up (it starts after `up` returns)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_web_backend_talk_by_service_name_and_scale(compose_project, copy_example):
    compose = compose_project
    copy_example("web-backend", compose.directory)
    port = free_port()
    env = {"FRONTEND_PORT": str(port)}
    result = compose("up", "-d", env=env)
    assert f" Network {compose.name}_default  Created" in result.stderr
    assert compose.networks() == [f"{compose.name}_default"]

    # Inside the project's network the back end answers to its service name...
    answer = compose("exec", "-T", "frontend", "wget", "-qO-", "http://backend:8080/", env=env)
    assert answer.stdout == "hello from the back end\n"
    # ...and from the host, through the front end's published port and its CGI script.
    assert "front end" in fetch(f"http://127.0.0.1:{port}/")
    assert fetch(f"http://127.0.0.1:{port}/cgi-bin/backend") == "hello from the back end\n"
    assert compose("port", "frontend", "80", env=env).stdout.strip().endswith(f":{port}")

    compose("up", "-d", "--scale", "backend=3", env=env)
    backends = [name for name in compose.names() if "-backend-" in name]
    assert backends == [f"{compose.name}-backend-{n}" for n in (1, 2, 3)]
    for _ in range(3):
        assert fetch(f"http://127.0.0.1:{port}/cgi-bin/backend") == "hello from the back end\n"
    compose("up", "-d", "--scale", "backend=1", env=env)
    assert [name for name in compose.names() if "-backend-" in name] == [
        f"{compose.name}-backend-1"]

    compose("down", "-v", env=env)
    assert compose.names() == [] and compose.networks() == [] and compose.volumes() == []


def test_healthcheck_example_starts_web_after_db_is_healthy(compose_project, copy_example):
    compose = compose_project
    copy_example("healthcheck", compose.directory)
    result = compose("up", "-d")
    lines = result.stderr.splitlines()
    db, web = f"Container {compose.name}-db-1", f"Container {compose.name}-web-1"
    assert lines.index(f" {db}  Healthy") < lines.index(f" {web}  Started")
    assert compose("logs", "web").stdout == "web-1 | web: db was ready when I started\n"
    assert compose.inspect(f"{compose.name}-db-1")["State"]["Health"]["Status"] == "healthy"


def test_volume_example_keeps_data_across_down_and_up(compose_project, copy_example):
    compose = compose_project
    copy_example("volume", compose.directory)
    compose("up", "-d")
    assert compose("logs", "--no-log-prefix").stdout == "boot number 1\n"
    compose("down")
    assert compose.volumes() == [f"{compose.name}_counter-data"]
    compose("up", "-d")
    assert compose("logs", "--no-log-prefix").stdout == "boot number 2\n"
    compose("down", "-v")
    assert compose.volumes() == [] and compose.networks() == []


def test_build_example(compose_project, copy_example):
    compose = compose_project
    copy_example("build", compose.directory)
    compose("up", "-d", "--build")
    deadline = time.monotonic() + 30
    while "greeter-1" not in (logs := compose("logs").stdout) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert logs == "greeter-1 | hi from an image built by flotta compose\n"
    compose("down", "--rmi", "local")
    assert compose.flottad.api("GET", f"/images/{compose.name}-greeter/json").status == 404
