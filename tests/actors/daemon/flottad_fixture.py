"""A flottad with busybox for container tests, and the clean-up that leaves nothing behind.

`running_daemon(base)` starts one (bootstrapping busybox); `clean_up(daemon)` removes every
container it knows through the API, stops it, then kills any monitor or container process
still living under its data root (a test that crashed half-way), unmounts what is mounted
under `base` and removes the containers' cgroups. Tests use `--network none`
(`network_arguments`) except those about bridge networking.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from actors.supervisor.execstart import short_exec_root_path
from tests.harness import Flottad

CGROUP_ROOT = Path("/sys/fs/cgroup")


def bootstrap(daemon: Flottad) -> None:
    response = daemon.api("POST", "/flotta/bootstrap?image=busybox", timeout=300)
    assert response.status == 200, response.body
    assert b"errorDetail" not in response.body, response.body


def running_daemon(base: Path, name: str = "flottad") -> Flottad:
    daemon = Flottad(base, name)
    daemon.start()
    bootstrap(daemon)
    return daemon


def has_networks(daemon: Flottad) -> bool:
    return daemon.api("GET", "/networks").status == 200


def network_arguments(daemon: Flottad) -> list[str]:
    """Container tests run with `--network none`: they test containers, and test daemons
    on one host share the default bridge's name (see test_docker_network.py for bridges)."""
    return ["--network", "none"]


def network_body(daemon: Flottad) -> dict[str, Any]:
    return {"NetworkMode": "none"}


def _mount_points_under(base: Path) -> list[str]:
    prefix = str(base) + "/"
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4]
            if point.startswith(prefix):
                found.append(point)
    return found


def _pids_of(state_root: Path) -> list[int]:
    pids: list[int] = []
    if not state_root.is_dir():
        return pids
    for entry in state_root.iterdir():
        for name in ("container.pid", "conmon.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int((entry / name).read_text().strip()))
    return pids


def _remove_cgroups(container_ids: list[str]) -> None:
    if not CGROUP_ROOT.is_dir():
        return
    for controller in CGROUP_ROOT.iterdir():
        for container_id in container_ids:
            path = controller / "flotta" / container_id
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()


def clean_up(daemon: Flottad) -> None:
    if daemon.process is not None and daemon.process.poll() is None:
        with contextlib.suppress(Exception):
            listed = daemon.api("GET", "/containers/json?all=1", timeout=30).json()
            for item in listed:
                daemon.api("DELETE", f"/containers/{item['Id']}?force=1&v=1", timeout=60)
        daemon.stop()
    else:
        daemon.kill()
    state_root = daemon.data_root / "containers" / "state"
    ids = [entry.name for entry in state_root.iterdir()] if state_root.is_dir() else []
    for pid in _pids_of(state_root):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.05)
    for point in sorted(_mount_points_under(daemon.base), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    _remove_cgroups(ids)
    shutil.rmtree(short_exec_root_path(daemon.exec_root / "containers"), ignore_errors=True)


@contextlib.contextmanager
def daemon_for(base: Path, name: str = "flottad") -> Iterator[Flottad]:
    daemon = running_daemon(base, name)
    try:
        yield daemon
    finally:
        clean_up(daemon)


def create(daemon: Flottad, body: dict[str, Any], name: str = "") -> str:
    host_config = {**network_body(daemon), **body.pop("HostConfig", {})}
    query = f"?name={name}" if name else ""
    response = daemon.api("POST", f"/containers/create{query}", {"Image": "busybox", **body, "HostConfig": host_config})
    assert response.status == 201, response.body
    return str(response.json()["Id"])


def inspect(daemon: Flottad, reference: str) -> dict[str, Any]:
    response = daemon.api("GET", f"/containers/{reference}/json")
    assert response.status == 200, response.body
    return dict(response.json())


def filters_query(filters: dict[str, list[str]]) -> str:
    """A `filters` query value: JSON, percent-encoded."""
    import json
    from urllib.parse import quote

    return quote(json.dumps(filters, separators=(",", ":")))


def wait_for(predicate: Any, timeout_seconds: float = 30.0, interval_seconds: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout_seconds}s")
        time.sleep(interval_seconds)
