"""examples/webapp: it builds, and a container of it serves its page and its CGI script."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildexec_helpers import BuildDaemon

pytestmark = [pytest.mark.root, pytest.mark.compat]

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "webapp"


def test_the_webapp_example_builds_and_serves(daemon: BuildDaemon) -> None:
    built = daemon.flottad.cli("build", "--network", "none", "-t", "webapp:test", "--build-arg", "VERSION=9.9", str(EXAMPLE))
    assert "Successfully tagged webapp:test" in built.stdout
    config = daemon.inspect("webapp:test")["Config"]
    assert config["User"] == "web" and config["WorkingDir"] == "/srv/www"
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Labels"]["org.opencontainers.image.version"] == "9.9"
    # Start the server as the image says, then fetch from inside the same container.
    script = (
        'httpd -p "$PORT" -h "$APP_HOME" && sleep 0.2 && '
        "wget -q -O - http://127.0.0.1:8080/ && wget -q -O - 'http://127.0.0.1:8080/cgi-bin/hello?x=1'; "
        "ls -a /srv/www"
    )
    served = daemon.flottad.docker("run", "--rm", "--network", "none", "webapp:test", "sh", "-c", script)
    assert "<h1>Hello from flotta</h1>" in served.stdout
    assert "(version 9.9)" in served.stdout
    assert "version 9.9\nrunning as web\nquery: x=1\n" in served.stdout
    assert "README.md" not in served.stdout  # left out by .dockerignore
