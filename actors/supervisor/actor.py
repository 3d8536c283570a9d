"""The containers actor ("containers"): the owner of container records on this host.

It keeps every container's record (see records.py), drives the executor (monitor.py) for
their runs, and answers the daemon's routes. Quick questions (inspect, list, counts) are
answered from memory in the receive loop; anything that waits on the executor or another
actor runs in the background through `reply_later` (see lifecycle.py), so a slow stop never
holds up `docker ps`. Exec sessions' records live here too, in memory only.

The work is split by topic into mixins: lifecycle.py (create, run, stop, exit, restart
policy, remove), netsetup.py (network modes and /etc files), probes.py (health checks),
exec_state.py (exec records), maintenance.py (update, prune, commit, network connect,
filesystem leases); the plain rules they apply live in createconfig, mounts, naming,
restart, health, inspect, filters, runspec and records.

At start it restores: records from disk, matched with the executor's containers
(`Executor.recover()`): containers left running by a previous daemon are running again
(live restore) with their exit watchers re-armed; those that exited meanwhile get their
exit applied and their restart policy considered; executor directories without a record
(a crash during removal) are removed.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import trio

from actors import errdefs
from actors.images.messages import ImageUserInfo, ResolveImage
from actors.supervisor import changes as changes_module
from actors.supervisor import filters, inspect, naming, restart
from actors.supervisor import rootfs as rootfs_module
from actors.supervisor import stats as stats_module
from actors.supervisor.attach import AttachError
from actors.supervisor.conmon import CreateError
from actors.supervisor.errors import SpecError
from actors.supervisor.exec_state import ExecRecord, ExecRegistry
from actors.supervisor.lifecycle import Lifecycle, Waiter
from actors.supervisor.maintenance import Maintenance, MountLease
from actors.supervisor.messages import (
    AttachTarget,
    ClaimExec,
    CommitContainer,
    ConnectNetwork,
    ContainerChanges,
    ContainerCounts,
    ContainerInfo,
    CountContainers,
    CreateContainer,
    CreateExec,
    DisconnectNetwork,
    Done,
    ExecFinished,
    ExecStarted,
    GetLogSource,
    ImageUsers,
    InspectContainer,
    InspectExec,
    JsonBody,
    KillContainer,
    LeaseFilesystem,
    ListContainers,
    ListImageUsers,
    ListVolumeUsers,
    LogSource,
    LookupContainer,
    PauseContainer,
    PrepareAttach,
    PruneContainers,
    ReleaseFilesystem,
    RemoveContainer,
    RenameContainer,
    ResizeContainer,
    RestartContainer,
    StartContainer,
    StatsSample,
    StopContainer,
    TopContainer,
    UnpauseContainer,
    UpdateContainer,
    VolumeUsers,
    WaitContainer,
    WaitRegistered,
    WaitResult,
)
from actors.supervisor.monitor import (
    ContainerNotFound,
    ContainerStateError,
    ContainerStatus,
    Executor,
)
from actors.supervisor.records import ContainerRecord, RecordStore
from runtime.actor import Actor
from runtime.errors import ReplyError

log = logging.getLogger("flotta.containers")

WAIT_CONDITIONS = ("not-running", "next-exit", "removed", "run-ended")


class ContainersActor(Lifecycle, ExecRegistry, Maintenance, Actor):
    mailbox_capacity = 4096

    def __init__(self, containers_dir: Path, executor: Executor, shared: dict[str, Any]) -> None:
        self.containers_dir = containers_dir
        self.executor = executor
        self.shared = shared
        self.store = RecordStore(containers_dir / "records")
        self.files_root = containers_dir / "files"
        self.mounts_root = containers_dir / "mounts"
        self.records: dict[str, ContainerRecord] = {}
        self.names: dict[str, str] = {}
        self.reserved_names: set[str] = set()
        self.prepared: set[str] = set()
        self.locks: dict[str, trio.Lock] = {}
        self.waiters: dict[str, list[Waiter]] = {}
        self.task_scopes: dict[str, dict[str, trio.CancelScope]] = {}
        self.execs: dict[str, ExecRecord] = {}
        self.leases: dict[str, MountLease] = {}
        self.image_sizes: dict[str, int] = {}
        self.image_users: dict[str, int] = {}
        self.image_lower_dirs: dict[str, list[str]] = {}
        self.durability = trio.Event()

    # --- start-up and restore ---------------------------------------------------------------

    async def started(self) -> None:
        self.rng = self.host.derived_random("container-names")
        self.files_root.mkdir(parents=True, exist_ok=True)
        self.mounts_root.mkdir(parents=True, exist_ok=True)
        await trio.to_thread.run_sync(self._unmount_stale_leases)
        self.nursery.start_soon(self._flush_loop)
        records = await trio.to_thread.run_sync(self.store.load_all)
        on_disk = {container.id: container for container in await trio.to_thread.run_sync(self.executor.recover)}
        for record in records:
            self.records[record.id] = record
            self.names[record.name] = record.id
            self.count_image_user(record.image_id, record.lower_dirs)
        for record in records:
            await self._restore(record, on_disk.pop(record.id, None))
        for orphan in on_disk.values():
            log.info("container %s has files but no record (removal interrupted): removing", orphan.id[:12])
            self.nursery.start_soon(self._remove_orphan, orphan.id)

    def _unmount_stale_leases(self) -> None:
        for entry in os.listdir(self.mounts_root):
            path = self.mounts_root / entry
            rootfs_module.unmount(str(path))
            try:
                path.rmdir()
            except OSError:
                pass

    async def _restore(self, record: ContainerRecord, container: Any) -> None:
        state = record.state
        if state.status == "removing":
            self.nursery.start_soon(self._finish_interrupted_removal, record.id)
            return
        if container is None:
            if state.running:
                state.status = "exited"
                state.exit_code = state.exit_code or 255
                state.error = state.error or "the container's files were lost while the daemon was down"
                state.finished_ns = state.finished_ns or time.time_ns()
                self.save(record)
            self._consider_restart_on_start(record)
            return
        current = container.state()
        if current.status in (ContainerStatus.RUNNING, ContainerStatus.PAUSED):
            state.status = current.status.value
            state.pid = current.pid
            state.started_ns = current.started_at_ns or state.started_ns
            self.save(record)
            self.start_task(record.id, "watch", self.watch_exit, record.id, state.generation)
            from actors.supervisor import health

            probe = health.probe_from_config(record.config.get("Healthcheck"), record.config.get("Shell"))
            if probe is not None:
                self.start_task(record.id, "health", self.health_loop, record.id, state.generation, probe)
            return
        if current.status is ContainerStatus.CREATED:
            if state.status == "restarting":
                state.status = "exited"
            self.prepared.add(record.id)
            self._consider_restart_on_start(record)
            return
        if state.status in ("running", "paused"):
            # It exited while the daemon was away: apply that exit now.
            async def apply() -> None:
                async with self.lock(record.id):
                    status = container.exit_status()
                    if status is not None:
                        await self.finish_run(record, state.generation, status)
                    self._consider_restart_on_start(record)

            self.nursery.start_soon(apply)
            return
        if state.status == "restarting":
            state.status = "exited"
            self.save(record)
        if rootfs_module.is_mount_point(str(container.layout.rootfs)):
            # Its run ended while a restart was pending: nothing cleaned it up yet.
            self.nursery.start_soon(self._locked, record.id, self.clean_up_run)
        self._consider_restart_on_start(record)

    def _consider_restart_on_start(self, record: ContainerRecord) -> None:
        state = record.state
        if state.status != "exited":
            return
        if record.host_config.get("AutoRemove"):
            self.nursery.start_soon(self.auto_remove, record.id)
            return
        policy = restart.RestartPolicy.from_host_config(record.host_config)
        if restart.start_on_daemon_start(
            policy, exit_code=state.exit_code, stopped_by_user=state.stopped_by_user,
            ever_started=bool(state.started_ns),
        ):  # fmt: skip
            self.nursery.start_soon(self._start_quietly, record.id)

    async def _start_quietly(self, container_id: str) -> None:
        async with self.lock(container_id):
            record = self.records.get(container_id)
            if record is None or record.state.status != "exited":
                return
            try:
                await self.start_locked(record)
            except ReplyError as error:
                log.warning("container %s: start on daemon start failed: %s", container_id[:12], error)

    async def _finish_interrupted_removal(self, container_id: str) -> None:
        async with self.lock(container_id):
            record = self.records.get(container_id)
            if record is not None:
                record.state.status = "exited"
                await self.remove_locked(record, force=True, volumes=False)

    async def _remove_orphan(self, container_id: str) -> None:
        try:
            await self.executor.get(container_id).remove(force=True)
        except (ContainerNotFound, ContainerStateError, OSError) as error:
            log.warning("orphan container %s: %s", container_id[:12], error)

    async def _flush_loop(self) -> None:
        while True:
            await self.durability.wait()
            self.durability = trio.Event()
            if self.store.needs_sync:
                await trio.to_thread.run_sync(self.store.sync)

    async def stopping(self) -> None:
        if self.store.needs_sync:
            await trio.to_thread.run_sync(self.store.sync)

    # --- the receive loop ----------------------------------------------------------------------

    async def receive(self, message: Any) -> Any:
        match message:
            case CountContainers():
                return ContainerCounts(self._counts())
            case ListImageUsers():
                return ImageUsers([
                    ImageUserInfo(record.id, record.image_id, record.state.running)
                    for record in self.records.values()
                ])  # fmt: skip
            case ListVolumeUsers():
                users: dict[str, list[str]] = {}
                for record in self.records.values():
                    for mount in record.mounts:
                        if mount.kind == "volume" and mount.name:
                            users.setdefault(mount.name, []).append(record.name)
                return VolumeUsers(users)
            case CreateContainer(name, body):
                self.reply_later(self.create, name, body)
            case InspectContainer(ref, size):
                record = self.find(ref)
                if size:
                    self.reply_later(self._inspect_with_size, record.id)
                    return None
                return JsonBody(self._inspect(record))
            case ListContainers():
                self.reply_later(self._list, message)
            case LookupContainer(ref):
                record = self.find(ref)
                return ContainerInfo(record.id, record.name, record.tty, record.state.status, record.image_reference)
            case StartContainer(ref):
                self.reply_later(self._locked, self.find(ref).id, self._start)
            case StopContainer(ref, timeout_seconds, signal):
                self.reply_later(self._locked, self.find(ref).id, self._stop, timeout_seconds, signal)
            case RestartContainer(ref, timeout_seconds, signal):
                self.reply_later(self._locked, self.find(ref).id, self._restart, timeout_seconds, signal)
            case KillContainer(ref, signal):
                self.reply_later(self._locked, self.find(ref).id, self._kill, signal, ref)
            case RemoveContainer(ref, force, volumes):
                self.reply_later(self._locked, self.find(ref).id, self._remove, force, volumes)
            case WaitContainer(ref, condition, inbox):
                return self._wait(self.find(ref), condition, inbox)
            case RenameContainer(ref, name):
                return self._rename(self.find(ref), name)
            case PauseContainer(ref):
                self.reply_later(self._locked, self.find(ref).id, self._pause)
            case UnpauseContainer(ref):
                self.reply_later(self._locked, self.find(ref).id, self._unpause)
            case UpdateContainer(ref, body):
                self.reply_later(self._locked, self.find(ref).id, self._update, body)
            case ResizeContainer(ref, height, width):
                return self._resize(self.find(ref), height, width)
            case PruneContainers(filters=prune_filters):
                self.reply_later(self._prune, prune_filters)
            case PrepareAttach(ref, stream):
                record = self.find(ref)
                if stream and record.state.status in ("created", "exited") and record.id not in self.prepared:
                    self.reply_later(self._locked, record.id, self._prepare_for_attach)
                    return None
                return self._attach_target(record)
            case GetLogSource(ref):
                record = self.find(ref)
                layout = self.executor.layout(record.id)
                return LogSource(
                    record.id, record.tty, record.log_path,
                    record.state.running or record.id in self.prepared, str(layout.exit),
                )  # fmt: skip
            case TopContainer(ref, _):
                return self._top(self.find(ref))
            case StatsSample(ref):
                return JsonBody(self._stats(self.find(ref)))
            case ContainerChanges(ref):
                self.reply_later(self._changes, self.find(ref).id)
            case LeaseFilesystem(ref, writable):
                self.reply_later(self._lease_filesystem, self.find(ref).id, writable)
            case ReleaseFilesystem(lease_id):
                self.reply_later(self._release_filesystem, lease_id)
            case CommitContainer():
                self.reply_later(self._locked, self.find(message.ref).id, self._commit, message)
            case ConnectNetwork(ref, network, endpoint_config):
                self.reply_later(self._locked, self.find(ref).id, self._connect, network, endpoint_config)
            case DisconnectNetwork(ref, network, force):
                self.reply_later(self._locked, self.find(ref).id, self._disconnect, network, force)
            case CreateExec(ref, body):
                return self._create_exec(self.find(ref), body)
            case ClaimExec(exec_id):
                return self._claim_exec(exec_id)
            case ExecStarted(exec_id, pid):
                found = self.execs.get(exec_id)
                if found is not None:
                    found.pid = pid
            case ExecFinished(exec_id, exit_code):
                self._exec_finished(exec_id, exit_code)
            case InspectExec(exec_id):
                return JsonBody(self._inspect_exec(self._exec(exec_id)))
            case _:
                raise errdefs.InvalidParameter(f"containers: unexpected message {type(message).__name__}")
        return None

    async def _locked(self, container_id: str, function: Any, *arguments: Any) -> Any:
        async with self.lock(container_id):
            record = self.records.get(container_id)
            if record is None:
                raise errdefs.NotFound(f"No such container: {container_id}")
            return await function(record, *arguments)

    # --- queries -----------------------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        running = sum(1 for r in self.records.values() if r.state.status in ("running", "restarting"))
        paused = sum(1 for r in self.records.values() if r.state.status == "paused")
        total = len(self.records)
        return {"total": total, "running": running, "paused": paused, "stopped": total - running - paused}

    def _inspect(self, record: ContainerRecord, **sizes: int | None) -> dict[str, Any]:
        layout = self.executor.layout(record.id)
        graph = {
            "LowerDir": ":".join(record.lower_dirs),
            "MergedDir": str(layout.rootfs),
            "UpperDir": str(layout.upper),
            "WorkDir": str(layout.work),
        }
        return inspect.inspect_body(record, exec_ids=self._exec_ids(record.id), graph_driver=graph, **sizes)

    async def _inspect_with_size(self, container_id: str) -> JsonBody:
        record = self._current(container_id)
        size_rw, size_root = await self._sizes(record)
        return JsonBody(self._inspect(record, size_rw=size_rw, size_root=size_root))

    def _current(self, container_id: str) -> ContainerRecord:
        record = self.records.get(container_id)
        if record is None:
            raise errdefs.NotFound(f"No such container: {container_id}")
        return record

    async def _list(self, query: ListContainers) -> JsonBody:
        filters.check_list_filters(query.filters)
        ancestors: set[str] = set()
        for value in query.filters.get("ancestor", []):
            try:
                resolved = await self.ask(self.ref_to("images"), ResolveImage(value))
                ancestors.add(resolved.image_id)
            except ReplyError:
                continue
        selected = filters.select(
            list(self.records.values()), all_containers=query.all, limit=query.limit,
            filters=query.filters, resolve=self.find, ancestors=ancestors,
        )  # fmt: skip
        now = time.time_ns()
        items = []
        for record in selected:
            if query.size:
                size_rw, size_root = await self._sizes(record)
                items.append(inspect.summary_body(record, now, size_rw=size_rw, size_root=size_root))
            else:
                items.append(inspect.summary_body(record, now))
        return JsonBody(items)

    def _attach_target(self, record: ContainerRecord) -> AttachTarget:
        attachable = record.state.status in ("running", "paused") or record.id in self.prepared
        return AttachTarget(
            container_id=record.id,
            name=record.name,
            tty=record.tty,
            open_stdin=bool(record.config.get("OpenStdin")),
            stdin_once=bool(record.config.get("StdinOnce")),
            socket_path=str(self.executor.layout(record.id).attach) if attachable else "",
            log_path=record.log_path,
            status=record.state.status,
            event_attributes=record.event_attributes(),
        )

    async def _prepare_for_attach(self, record: ContainerRecord) -> AttachTarget:
        if record.state.status in ("created", "exited"):
            try:
                await self.prepare(record)
            except (CreateError, SpecError, ContainerStateError, ReplyError) as error:
                # The start will fail with this error and end the attach (run-ended).
                log.info("container %s: not attachable yet: %s", record.short_id, error)
        return self._attach_target(record)

    def _wait(self, record: ContainerRecord, condition: str, inbox: Any) -> Any:
        condition = condition or "not-running"
        if condition not in WAIT_CONDITIONS:
            raise errdefs.InvalidParameter(f'invalid condition: "{condition}"')
        status = record.state.status
        if condition == "not-running" and status not in ("running", "paused", "restarting"):
            return WaitResult(record.state.exit_code)
        if condition == "run-ended" and status not in ("running", "paused") and record.id not in self.prepared:
            return WaitResult(record.state.exit_code, record.state.error)
        if inbox is not None:
            self.waiters.setdefault(record.id, []).append(Waiter(condition, inbox=inbox))
            return WaitRegistered(record.id)
        self.waiters.setdefault(record.id, []).append(Waiter(condition, reply=self.defer_reply()))
        return None

    def _top(self, record: ContainerRecord) -> JsonBody:
        if record.state.status not in ("running", "paused"):
            raise errdefs.Conflict(f"Container {record.id} is not running")
        try:
            return JsonBody(self.executor.get(record.id).top().to_api())
        except (ContainerStateError, ContainerNotFound):
            raise errdefs.Conflict(f"Container {record.id} is not running") from None

    def _stats(self, record: ContainerRecord) -> dict[str, Any]:
        running = record.state.status in ("running", "paused")
        if running:
            try:
                sample = self.executor.get(record.id).stats()
            except (ContainerNotFound, OSError):
                sample = stats_module.empty_sample()
            networks = stats_module.network_counters(record.state.pid)
        else:
            sample = stats_module.empty_sample()
            networks = None
        sample["name"] = "/" + record.name
        sample["id"] = record.id
        if networks:
            sample["networks"] = networks
        return sample

    async def _changes(self, container_id: str) -> JsonBody:
        record = self._current(container_id)
        upper = str(self.executor.layout(container_id).upper)
        found = await trio.to_thread.run_sync(changes_module.changes, upper, record.lower_dirs)
        return JsonBody(found)

    # --- simple lifecycle wrappers (lock held) ------------------------------------------------------

    async def _start(self, record: ContainerRecord) -> Done:
        await self._wait_no_leases(record.id)
        await self.start_locked(record)
        return Done(record.id)

    async def _stop(self, record: ContainerRecord, timeout: int | None, signal: str) -> Done:
        await self.stop_locked(record, timeout, signal)
        return Done(record.id)

    async def _restart(self, record: ContainerRecord, timeout: int | None, signal: str) -> Done:
        if record.state.status in ("running", "paused", "restarting"):
            await self.stop_locked(record, timeout, signal)
        await self._wait_no_leases(record.id)
        await self.start_locked(record)
        self.event(record, "restart")
        return Done(record.id)

    async def _kill(self, record: ContainerRecord, signal: str, reference: str) -> Done:
        await self.kill_locked(record, signal, reference)
        return Done(record.id)

    async def _remove(self, record: ContainerRecord, force: bool, volumes: bool) -> Done:
        await self._wait_no_leases(record.id)
        await self.remove_locked(record, force=force, volumes=volumes)
        return Done(record.id)

    async def _pause(self, record: ContainerRecord) -> Done:
        status = record.state.status
        if status == "paused":
            raise errdefs.Conflict(f"Container {record.id} is already paused")
        if status == "restarting":
            raise errdefs.Conflict(f"Container {record.id} is restarting, wait until the container is running")
        if status != "running":
            raise errdefs.Conflict(f"Container {record.id} is not running")
        try:
            await self.executor.get(record.id).pause()
        except ContainerStateError as error:
            raise errdefs.Conflict(str(error)) from None
        record.state.status = "paused"
        self.save(record)
        self.event(record, "pause")
        return Done(record.id)

    async def _unpause(self, record: ContainerRecord) -> Done:
        if record.state.status != "paused":
            raise errdefs.Conflict(f"Container {record.id} is not paused")
        try:
            await self.executor.get(record.id).unpause()
        except ContainerStateError as error:
            raise errdefs.Conflict(str(error)) from None
        record.state.status = "running"
        self.save(record)
        self.event(record, "unpause")
        return Done(record.id)

    def _rename(self, record: ContainerRecord, new_name: str) -> Done:
        if not new_name:
            raise errdefs.InvalidParameter("Neither old nor new names may be empty")
        stored = naming.validate(new_name)
        if stored == record.name:
            raise errdefs.InvalidParameter("Renaming a container with the same name as its current name")
        holder = self.names.get(stored)
        if holder is not None or stored in self.reserved_names:
            raise naming.name_conflict(stored, holder or "(being created)")
        old = record.name
        record.name = stored
        self.save(record)
        del self.names[old]
        self.names[stored] = record.id
        self.event(record, "rename", oldName="/" + old)
        return Done(record.id)

    def _resize(self, record: ContainerRecord, height: int, width: int) -> Done:
        if record.state.status not in ("running", "paused") and record.id not in self.prepared:
            raise errdefs.Conflict(f"Container {record.id} is not running")
        if not record.tty:
            return Done(record.id)
        try:
            self.executor.get(record.id).resize(height, width)
        except ValueError as error:
            raise errdefs.InvalidParameter(str(error)) from None
        except (AttachError, ContainerNotFound, ContainerStateError):
            raise errdefs.Conflict(f"Container {record.id} is not running") from None
        return Done(record.id)
