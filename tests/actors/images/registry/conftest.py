"""Fixtures for the registry tests: our server in-process, Debian's docker-registry as a
subprocess, skopeo."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trio
from registry_helpers import DOCKER_REGISTRY, free_port

from actors.images.registry_server import RunningRegistry, serve


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve, str(tmp_path / "registry"),
                                                        port=0))
        yield running
        await running.server.shutdown(grace_seconds=1)


@pytest.fixture
def docker_registry(tmp_path: Path):
    """Debian's docker-registry (distribution 2.8) on a loopback port; yields its domain."""
    if not os.path.exists(DOCKER_REGISTRY):
        pytest.fail(f"{DOCKER_REGISTRY} is missing: install Debian's docker-registry package")
    port = free_port()
    directory = tmp_path / "docker-registry"
    directory.mkdir()
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(directory / "log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([DOCKER_REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("docker-registry did not start: "
                                   + (directory / "log").read_text())
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def skopeo(tmp_path: Path) -> Callable[..., Awaitable[subprocess.CompletedProcess[bytes]]]:
    """Runs skopeo (without a trust policy, with a private HOME and auth file) as a Trio
    subprocess, so an in-process registry keeps serving meanwhile."""
    path = shutil.which("skopeo")
    if path is None:
        pytest.fail("skopeo is missing: install Debian's skopeo package")
    home = tmp_path / "skopeo-home"
    home.mkdir()
    (home / "auth.json").write_text("{}")
    environment = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home),
                   "REGISTRY_AUTH_FILE": str(home / "auth.json")}

    async def run(*arguments: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(120):
            return await trio.run_process(
                [path, "--insecure-policy", "--tmpdir", str(home), *arguments],
                capture_stdout=True, capture_stderr=True, check=False, env=environment)

    return run


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory = tmp_path_factory.mktemp("pki")

    def run(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=flotta test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, usage, san in (("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                             ("client", "clientAuth", "subjectAltName=DNS:client")):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(f"extendedKeyUsage={usage}\n{san}\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {name: directory / name for name in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}
