"""A real flottad for the `flotta compose` integration tests, and a way to run compose.

One daemon per module (busybox bootstrapped offline). `compose_project` gives a test a
directory for its project and, whatever happens, removes every container, network and
volume carrying the project's label when the test ends (flottad keeps containers
running across its own restarts, so nothing may be left behind).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ROOT, Flottad, builtin_registry


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flottad]:
    flottad = Flottad(tmp_path_factory.mktemp("compose-flottad"))
    flottad.start()
    try:
        response = flottad.api("POST", "/flotta/bootstrap?image=busybox")
        assert response.status == 200, response.body
        yield flottad
    finally:
        sweep(flottad, None)
        flottad.stop()


def label_query(project: str | None) -> str:
    label = "com.docker.compose.project" + (f"={project}" if project else "")
    return urllib.parse.quote(json.dumps({"label": [label]}))


def sweep(flottad: Flottad, project: str | None) -> None:
    """Force-remove what carries the project's label (every project when None)."""
    filters = label_query(project)
    try:
        for container in flottad.api("GET", f"/containers/json?all=1&filters={filters}").json():
            flottad.api("DELETE", f"/containers/{container['Id']}?force=1&v=1")
        networks = flottad.api("GET", f"/networks?filters={filters}")
        if networks.status == 200:
            for network in networks.json():
                flottad.api("DELETE", f"/networks/{network['Id']}")
        volumes = flottad.api("GET", f"/volumes?filters={filters}")
        if volumes.status == 200:
            for volume in volumes.json().get("Volumes") or []:
                flottad.api("DELETE", f"/volumes/{volume['Name']}?force=1")
    except OSError:
        pass


class Compose:
    """Runs `flotta compose` in a project directory against the test daemon."""

    def __init__(self, flottad: Flottad, directory: Path, name: str) -> None:
        self.flottad = flottad
        self.directory = directory
        self.name = name

    def write(self, text: str, filename: str = "compose.yaml") -> None:
        (self.directory / filename).write_text(textwrap.dedent(text))

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**self.flottad.environment(), "COMPOSE_PROJECT_NAME": self.name,
               "PYTHONPATH": str(ROOT)}
        env.pop("COMPOSE_FILE", None)
        env.update(extra or {})
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "actors.client.main", "compose", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 180,
                 env: dict[str, str] | None = None, input: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args), cwd=self.directory, env=self.environment(env),
            capture_output=True, text=True, timeout=timeout, check=False,
            input=input if input is not None else "")
        if check and result.returncode != 0:
            raise AssertionError(
                f"flotta compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n--- daemon log ---\n"
                f"{self.flottad.log()[-3000:]}")
        return result

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), cwd=self.directory,
                                env=self.environment(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # -- what the daemon has, by label

    def containers(self, all: bool = True) -> list[dict]:
        filters = label_query(self.name)
        found = self.flottad.api(
            "GET", f"/containers/json?all={1 if all else 0}&filters={filters}").json()
        return sorted(found, key=lambda c: c["Names"][0])

    def names(self, all: bool = True) -> list[str]:
        return [c["Names"][0].lstrip("/") for c in self.containers(all)]

    def ids(self) -> dict[str, str]:
        return {c["Names"][0].lstrip("/"): c["Id"] for c in self.containers()}

    def volumes(self) -> list[str]:
        response = self.flottad.api("GET", f"/volumes?filters={label_query(self.name)}")
        return sorted(v["Name"] for v in response.json().get("Volumes") or [])

    def networks(self) -> list[str]:
        response = self.flottad.api("GET", f"/networks?filters={label_query(self.name)}")
        return sorted(n["Name"] for n in response.json()) if response.status == 200 else []

    def inspect(self, container: str) -> dict:
        return self.flottad.api("GET", f"/containers/{container}/json").json()


@pytest.fixture
def compose_project(daemon: Flottad, tmp_path: Path, request: pytest.FixtureRequest
                    ) -> Iterator[Compose]:
    name = "t" + "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:40]
    directory = tmp_path / "project"
    directory.mkdir()
    compose = Compose(daemon, directory, name)
    try:
        yield compose
    finally:
        try:
            compose("down", "-v", "--remove-orphans", "-t", "1", check=False, timeout=120)
        finally:
            sweep(daemon, name)


@pytest.fixture
def copy_example():
    """`copy_example(name, directory)`: put examples/compose/<name> into `directory`."""
    import shutil

    def copy(name: str, destination: Path) -> None:
        shutil.copytree(ROOT / "examples" / "compose" / name, destination, dirs_exist_ok=True)

    return copy



@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """flotta's own registry server on a loopback port: `host:port`."""
    with builtin_registry(tmp_path / "registry") as address:
        yield address
