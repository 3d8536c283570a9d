"""One flottad (with busybox) for the build execution tests of a session.

Teardown stops the daemon and fails if the builder left mounts, containers, temporary
files or its cgroup behind; whatever it left is removed first, so nothing leaks even when
a test failed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildexec_helpers import BuildDaemon, mounted_under

from actors.supervisor import cgroups, rootfs
from tests.harness import Flottad

BUILDER_CGROUP = "/flotta-builder"


def _builder_cgroup_leftovers() -> list[str]:
    found = []
    for controller in ("memory", "pids", "cpu,cpuacct", "freezer", "devices"):
        path = Path("/sys/fs/cgroup") / controller / BUILDER_CGROUP.strip("/")
        if path.is_dir() and any(entry.is_dir() for entry in path.iterdir()):
            found.append(str(path))
    return found


# Module scope, not session: one flottad per network namespace (actors/daemon/main.py),
# and the daemon fixtures of other directories must not find this one still running.
@pytest.fixture(scope="module")
def build_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildDaemon]:
    cgroups.ensure_cgroup_hierarchy()
    base = tmp_path_factory.mktemp("build-daemon")
    flottad = Flottad(base)
    with warnings.catch_warnings():
        # tests/harness.py leaks the socket of each failed /_ping while flottad starts.
        warnings.simplefilter("ignore", ResourceWarning)
        flottad.start()
    leftovers: dict[str, list[str]] = {}
    mounts: list[str] = []
    try:
        response = flottad.api("POST", "/flotta/bootstrap?image=busybox", timeout=300)
        assert response.status == 200, response.body
        daemon = BuildDaemon(flottad)
        yield daemon
        leftovers = daemon.builder_leftovers()
    finally:
        flottad.stop()
        mounts = mounted_under(base)
        for point in sorted(mounts, key=len, reverse=True):
            rootfs.unmount(point)
    assert mounts == [], f"mounts left behind: {mounts}"
    assert leftovers == {}, f"the builder left files behind: {leftovers}"
    assert _builder_cgroup_leftovers() == [], "RUN containers' cgroups left behind"


@pytest.fixture
def daemon(build_daemon: BuildDaemon) -> Iterator[BuildDaemon]:
    """The module's daemon; after each test nothing of a build may remain."""
    yield build_daemon
    assert build_daemon.builder_leftovers() == {}
    assert mounted_under(build_daemon.data_root) == []
