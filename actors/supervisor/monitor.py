"""The container executor: each container's lifecycle through conmon and crun.

    Executor.create ──► created ──start──► running ──exit/kill/stop──► exited
                           │                 │  ▲                        │
                           │             pause│  │unpause            cleanup (runtime state,
                           │                 ▼  │                      mount and cgroup gone;
                           │               paused                      logs and diff kept)
                           └──────────── remove(force) ──────────────────┘──► removed

Every state is derived from files in the container's directory (see layout.py) and from
whether its conmon is alive, never from memory: a `Container` is a thin view that can be
built again from the id after the daemon restarted, and two views of one container agree.

    exit file present                        → exited (code from the file, time = its mtime)
    conmon alive, runtime exec.fifo present  → created (the runtime's init waits on it)
    conmon alive, cgroup frozen              → paused
    conmon alive otherwise                   → running
    conmon gone, init alive in our cgroup    → running, with an error: nobody will record
                                               its exit code (someone killed conmon)
    conmon gone, no exit file, no init       → exited with 255 (host reboot, conmon killed)

`Executor` lives here; `Container` (container.py) implements the operations. Blocking work
(mounting, writing the bundle) runs in a worker thread; waiting is async (pidfds, no
polling). `state`, `top`, `stats` and `resize` read small files and are synchronous.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import trio

from actors.supervisor import conmon, ocispec, rootfs, users
from actors.supervisor.cgroups import Cgroups
from actors.supervisor.container import (
    TRASH_DIRECTORY,
    Container,
    delete_in_background,
    unlink_quietly,
)
from actors.supervisor.layout import ContainerLayout, ContainerMeta, LayoutError, check_container_id
from actors.supervisor.states import (
    LOST_EXIT_CODE,
    ContainerNotFound,
    ContainerState,
    ContainerStateError,
    ContainerStatus,
    ExitStatus,
    parse_signal,
)

__all__ = [
    "LOST_EXIT_CODE",
    "Container",
    "ContainerNotFound",
    "ContainerState",
    "ContainerStateError",
    "ContainerStatus",
    "CreateResult",
    "Executor",
    "ExitStatus",
    "parse_signal",
]


@attrs.frozen
class CreateResult:
    container: Container
    warnings: tuple[str, ...]


class Executor:
    """Runs containers on this host; one per daemon.

    `state_root` holds a directory per container (bundle, logs, upper layer); `run_root`
    holds the runtime's state (`runtime/`, its private --root) and `exits/`. Both must be on
    a filesystem that supports overlayfs upper directories.
    """

    def __init__(
        self,
        state_root: str | os.PathLike[str],
        run_root: str | os.PathLike[str],
        *,
        runtime: str = "crun",
        conmon_path: str = "/usr/bin/conmon",
        cgroup_parent: str = "/flotta",
        cgroups: Cgroups | None = None,
    ) -> None:
        self.state_root = Path(state_root)
        self.run_root = Path(run_root)
        resolved = runtime if os.path.isabs(runtime) else shutil.which(runtime)
        if resolved is None or not os.access(resolved, os.X_OK):
            raise FileNotFoundError(f"OCI runtime {runtime!r} not found")
        self.runtime_path = resolved
        self.conmon_path = conmon_path
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.runtime_root = self.run_root / "runtime"
        self.cgroups = cgroups if cgroups is not None else Cgroups.detect()
        # crun's start (one write to a fifo) and delete of a stopped container (rmdir of its
        # cgroup, rm of its state) are done here directly: each saves spawning the runtime.
        self.runtime_is_crun = os.path.basename(resolved) == "crun"
        for directory in (
            self.state_root,
            self.run_root,
            self.runtime_root,
            self.run_root / "exits",
        ):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def layout(self, container_id: str) -> ContainerLayout:
        return ContainerLayout.of(self.state_root, self.run_root, container_id)

    def get(self, container_id: str) -> Container:
        """The container with this id, as found on disk (ContainerNotFound otherwise)."""
        layout = self.layout(container_id)
        try:
            meta = layout.read_meta()
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        return Container(self, layout, meta)

    def recover(self) -> list[Container]:
        """Every container on disk, e.g. after a daemon restart: running ones keep running
        under their conmon; those that exited meanwhile report their exit code."""
        found = []
        trash = self.state_root / TRASH_DIRECTORY
        if trash.is_dir():
            for leftover in trash.iterdir():
                delete_in_background(leftover)
        for entry in sorted(os.listdir(self.state_root)):
            if entry.startswith("."):
                continue
            try:
                found.append(self.get(entry))
            except (ContainerNotFound, LayoutError):
                continue
        return found

    async def create(
        self,
        container_id: str,
        spec: ocispec.ContainerSpec,
        lower_dirs: Sequence[str],
        *,
        stdin_open: bool = False,
        stdin_once: bool = False,
        log_size_max_bytes: int = 0,
    ) -> CreateResult:
        """Mount the root, write the bundle and have conmon create the container.

        `lower_dirs` are the image's unpacked layers, top first (empty for FROM scratch).
        The container is left created (its process waits for `start`); attach now to see
        all of its output. An existing exited container with this id is created anew
        (restart), keeping its writable layer and log. Raises ocispec.SpecError for a bad
        spec and conmon.CreateError when the runtime refuses; either way nothing is left
        behind for a new id.
        """
        layout = self.layout(check_container_id(container_id))
        fresh = not layout.config.exists()
        if not fresh:
            previous = self.get(container_id)
            if previous.state().status is not ContainerStatus.EXITED:
                raise ContainerStateError(
                    f"container {container_id} already exists and is not stopped"
                )
            await previous.cleanup()
        meta = ContainerMeta(
            id=container_id,
            created_ns=time.time_ns(),
            terminal=spec.terminal,
            stdin_open=stdin_open,
            stdin_once=stdin_once,
            cgroups_path=f"{self.cgroup_parent}/{container_id}",
            lower_dirs=tuple(lower_dirs),
            runtime_path=self.runtime_path,
            log_size_max_bytes=log_size_max_bytes,
        )
        try:
            warnings = await trio.to_thread.run_sync(
                self._prepare_bundle, layout, meta, spec, fresh
            )
            options = conmon.ConmonOptions(
                conmon_path=self.conmon_path,
                runtime_path=self.runtime_path,
                runtime_root=str(self.runtime_root),
                terminal=meta.terminal,
                stdin_open=meta.stdin_open,
                stdin_once=meta.stdin_once,
                log_size_max_bytes=log_size_max_bytes,
            )
            await conmon.launch(layout, options, spec.args)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._undo_create, layout, fresh)
            raise
        return CreateResult(Container(self, layout, meta), warnings)

    def _prepare_bundle(
        self, layout: ContainerLayout, meta: ContainerMeta, spec: ocispec.ContainerSpec, fresh: bool
    ) -> tuple[str, ...]:
        layout.directory.mkdir(mode=0o700, exist_ok=True)
        for marker in layout.runtime_markers():
            unlink_quietly(marker)
        if not rootfs.is_mount_point(str(layout.rootfs)):
            rootfs.mount_overlay(
                str(layout.rootfs), meta.lower_dirs, str(layout.upper), str(layout.work)
            )
        user = users.resolve_user(str(layout.rootfs), spec.user, spec.group_add)
        built = ocispec.build_config(
            spec, rootfs=str(layout.rootfs), cgroups_path=meta.cgroups_path, user=user
        )
        layout.write_config(built.config, meta)
        return built.warnings

    def _undo_create(self, layout: ContainerLayout, fresh: bool) -> None:
        rootfs.unmount(str(layout.rootfs))
        self.cgroups.remove(f"{self.cgroup_parent}/{layout.id}")
        shutil.rmtree(self.runtime_root / layout.id, ignore_errors=True)
        if fresh:
            shutil.rmtree(layout.directory, ignore_errors=True)
        else:
            for marker in layout.runtime_markers():
                unlink_quietly(marker)

    def remove_cgroup_parent(self) -> list[str]:
        """rmdir flotta's parent cgroup where empty (crun leaves it); returns leftovers."""
        return self.cgroups.remove_parent(self.cgroup_parent)
