"""Fixtures for the container executor: a busybox root, and an executor that leaves nothing.

Every test gets its own state and run directories under tmp_path and its own parent cgroup,
so tests cannot see each other's containers; teardown force-removes every container the
executor knows, unmounts anything still mounted under tmp_path and removes the cgroups,
whether the test passed or not.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from actors.supervisor import cgroups, monitor, rootfs

BUSYBOX = "/bin/busybox"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """root:x:0:
daemon:x:1:
wheel:x:10:alice
audio:x:29:bob,alice
alice:x:1000:
nogroup:x:65534:
"""


def build_busybox_rootfs(target: Path) -> Path:
    """A root filesystem with /bin/busybox, its applets, /etc/passwd, /etc/group, /tmp."""
    (target / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True)
    for applet in applets.stdout.split():
        link = target / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/bin/busybox")
    (target / "etc").mkdir()
    (target / "etc" / "passwd").write_text(PASSWD)
    (target / "etc" / "group").write_text(GROUP)
    (target / "tmp").mkdir(mode=0o1777)
    (target / "tmp").chmod(0o1777)
    (target / "home" / "alice").mkdir(parents=True)
    (target / "root").mkdir(mode=0o700)
    return target


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def cgroup_hierarchy() -> list[str]:
    return cgroups.ensure_cgroup_hierarchy()


def _mounted_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


def _unmount_everything_under(directory: Path) -> None:
    for mountpoint in sorted(_mounted_under(directory), key=len, reverse=True):
        rootfs.unmount(mountpoint)


ExecutorFactory = Callable[..., monitor.Executor]


@pytest.fixture
async def executor_factory(
    tmp_path: Path, cgroup_hierarchy: list[str]
) -> AsyncIterator[ExecutorFactory]:
    """Makes executors (fresh objects, as a restarted daemon would) whose containers,
    mounts and cgroups are all removed after the test, which fails if any leaked."""
    roots: dict[tuple[Path, Path], str] = {}

    def make(
        state_root: Path | None = None, run_root: Path | None = None, cgroup_parent: str = ""
    ) -> monitor.Executor:
        state_root = state_root or tmp_path / "state"
        run_root = run_root or tmp_path / "run"
        parent = roots.setdefault(
            (state_root, run_root), cgroup_parent or f"/flotta-test-{secrets.token_hex(4)}"
        )
        return monitor.Executor(state_root, run_root, cgroup_parent=parent)

    failures: list[str] = []
    leftover_mounts: list[str] = []
    leftover_cgroups: list[str] = []
    try:
        yield make
    finally:
        for (state_root, run_root), parent in roots.items():
            cleaner = monitor.Executor(state_root, run_root, cgroup_parent=parent)
            for container in cleaner.recover():
                try:
                    await container.remove(force=True)
                except Exception as error:
                    # Keep tearing down the rest, then report.
                    failures.append(f"{container.id}: {error!r}")
        leftover_mounts = _mounted_under(tmp_path)
        _unmount_everything_under(tmp_path)
        for (state_root, run_root), parent in roots.items():
            leftover_cgroups += monitor.Executor(
                state_root, run_root, cgroup_parent=parent
            ).remove_cgroup_parent()
    # A test that leaks is an error even when its assertions passed.
    assert failures == [], f"teardown could not remove containers: {failures}"
    assert leftover_mounts == [], f"mounts left behind: {leftover_mounts}"
    assert leftover_cgroups == [], f"cgroups left behind: {leftover_cgroups}"


@pytest.fixture
def executor(executor_factory: ExecutorFactory) -> monitor.Executor:
    return executor_factory()
