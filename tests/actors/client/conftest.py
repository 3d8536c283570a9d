import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from client_stub_daemon import StubDaemon

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture
def short_dir():
    # UNIX socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="flc")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def daemon(short_dir):
    stub = StubDaemon(os.path.join(short_dir, "d.sock"))
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def flotta(daemon, tmp_path):
    """Run the CLI as a subprocess against the stub daemon."""
    config = tmp_path / "docker-config"

    def run(*args, input=None, env=None, timeout=30, host=None):
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "DOCKER_HOST": host or daemon.url,
            "DOCKER_CONFIG": str(config),
            "PYTHONPATH": REPOSITORY,
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
        }
        environment.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "actors.client.main", *args],
            input=input, capture_output=True, env=environment, timeout=timeout,
            cwd=str(tmp_path),
        )

    run.config_dir = config
    return run
