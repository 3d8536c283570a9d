"""The containers actor ("containers"): the owner of container records on this host.

It keeps every container's record (see records.py), drives the executor (monitor.py) for
their runs, and answers the daemon's routes. Quick questions (inspect, list, counts) are
answered from memory in the receive loop; anything that waits on the executor or another
actor runs in the background through `reply_later` (see lifecycle.py), so a slow stop never
holds up `docker ps`. Exec sessions' records live here too, in memory only.

At start it restores: records from disk, matched with the executor's containers
(`Executor.recover()`): containers left running by a previous daemon are running again
(live restore) with their exit watchers re-armed; those that exited meanwhile get their
exit applied and their restart policy considered; executor directories without a record
(a crash during removal) are removed.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from actors import errdefs
from actors.images.changes import ChangeError, apply_changes
from actors.images.messages import CommitContainer as CommitImage
from actors.images.messages import ImageUserInfo, ReleaseImage, ResolveImage
from actors.network import messages as network_messages
from actors.supervisor import changes as changes_module
from actors.supervisor import createconfig, filters, inspect, naming, restart
from actors.supervisor import rootfs as rootfs_module
from actors.supervisor import stats as stats_module
from actors.supervisor.attach import AttachError
from actors.supervisor.conmon import CreateError
from actors.supervisor.errors import SpecError
from actors.supervisor.lifecycle import Lifecycle, Waiter
from actors.supervisor.messages import (
    AttachTarget,
    ClaimExec,
    CommitContainer,
    Committed,
    ConnectNetwork,
    ContainerChanges,
    ContainerCounts,
    ContainerInfo,
    CountContainers,
    CreateContainer,
    CreateExec,
    DisconnectNetwork,
    Done,
    ExecCreated,
    ExecFinished,
    ExecLaunch,
    ExecStarted,
    FilesystemLease,
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
FINISHED_EXECS_KEPT_PER_CONTAINER = 64


@attrs.define
class ExecRecord:
    id: str
    container_id: str
    args: list[str]
    env: list[str]
    working_dir: str
    user: str
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    detach_keys: str
    console: tuple[int, int]
    privileged: bool = False
    running: bool = False
    claimed: bool = False
    pid: int = 0
    exit_code: int | None = None


@attrs.define
class MountLease:
    container_id: str
    mount_point: str  # "" when nothing was mounted for this lease


class ContainersActor(Lifecycle, Actor):
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
        try:
            await self.ask(self.ref_to("images"), ReleaseImage(container_id))
        except ReplyError:
            pass

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

    def _exec_ids(self, container_id: str) -> list[str]:
        return [item.id for item in self.execs.values() if item.container_id == container_id]

    def _inspect(self, record: ContainerRecord, **sizes: int | None) -> dict[str, Any]:
        layout = self.executor.layout(record.id)
        graph = {
            "LowerDir": ":".join(record.lower_dirs),
            "MergedDir": str(layout.rootfs),
            "UpperDir": str(layout.upper),
            "WorkDir": str(layout.work),
        }
        return inspect.inspect_body(record, exec_ids=self._exec_ids(record.id), graph_driver=graph, **sizes)

    async def _sizes(self, record: ContainerRecord) -> tuple[int, int]:
        upper = str(self.executor.layout(record.id).upper)
        size_rw = await trio.to_thread.run_sync(_directory_bytes, [upper])
        image = self.image_sizes.get(record.image_id)
        if image is None:
            image = self.image_sizes[record.image_id] = await trio.to_thread.run_sync(
                _directory_bytes, record.lower_dirs
            )
        return size_rw, size_rw + image

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

    async def _update(self, record: ContainerRecord, body: dict[str, Any]) -> JsonBody:
        host_config = dict(record.host_config)
        resource_keys = (
            "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota",
            "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight",
        )  # fmt: skip
        for key in resource_keys:
            if body.get(key) is not None:
                host_config[key] = body[key]
        if body.get("RestartPolicy") is not None:
            if record.host_config.get("AutoRemove") and (body["RestartPolicy"].get("Name") or "no") != "no":
                raise errdefs.InvalidParameter(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container"
                )
            host_config["RestartPolicy"] = createconfig.parse_restart_policy(body["RestartPolicy"])
        warnings = createconfig.check_resources(host_config, os.cpu_count() or 1)
        if record.state.status in ("running", "paused"):
            await stats_module.update_resources(self.executor, record.id, host_config)
        record.host_config = host_config
        self.save(record)
        self.event(record, "update")
        return JsonBody({"Warnings": warnings})

    async def _prune(self, prune_filters: dict[str, list[str]]) -> JsonBody:
        filters.check_prune_filters(prune_filters)
        until_ns = None
        for value in prune_filters.get("until", []):
            until_ns = _parse_until_ns(value)
        deleted: list[str] = []
        reclaimed = 0
        for record in list(self.records.values()):
            if record.state.status not in ("created", "exited", "dead"):
                continue
            if not filters.prune_matches(record, prune_filters, until_ns):
                continue
            size_rw, _ = await self._sizes(record)
            async with self.lock(record.id):
                current = self.records.get(record.id)
                if current is None or current.state.status not in ("created", "exited", "dead"):
                    continue
                await self._wait_no_leases(record.id)
                await self.remove_locked(current, force=False, volumes=False)
            deleted.append(record.id)
            reclaimed += size_rw
        return JsonBody({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def _commit(self, record: ContainerRecord, request: CommitContainer) -> Committed:
        config = {key: value for key, value in record.config.items()}
        for key, value in (request.config or {}).items():
            if value is not None:
                config[key] = value
        try:
            config = apply_changes(config, request.changes)
        except ChangeError as error:
            raise errdefs.InvalidParameter(str(error)) from None
        container = None
        paused_here = False
        if request.pause and record.state.status == "running":
            container = self.executor.get(record.id)
            try:
                await container.pause()
                paused_here = True
            except ContainerStateError:
                paused_here = False
        try:
            created_by = " ".join([record.path, *record.args])
            result = await self.ask(
                self.ref_to("images"),
                CommitImage(
                    upper_dir=str(self.executor.layout(record.id).upper),
                    parent_image_id=record.image_id,
                    config=config,
                    container_id=record.id,
                    container_config=record.config,
                    author=request.author,
                    comment=request.comment,
                    repository=request.repository,
                    tag=request.tag,
                    created_by=created_by,
                ),
                timeout=3600,
            )
        finally:
            if paused_here and container is not None:
                with trio.CancelScope(shield=True):
                    try:
                        await container.unpause()
                    except ContainerStateError as error:
                        log.warning("container %s: unpause after commit: %s", record.short_id, error)
        self.event(record, "commit", comment=request.comment)
        return Committed(result.image_id)

    async def _connect(self, record: ContainerRecord, network: str, endpoint_config: dict[str, Any]) -> Done:
        mode = record.host_config.get("NetworkMode", "bridge")
        if mode in ("none", "host") or mode.startswith("container:"):
            raise errdefs.Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network"
            )
        networks = self.networks_ref()
        if networks is None:
            raise errdefs.NotImplementedYet("networks are not available in this daemon")
        checked = await self.ask(networks, network_messages.CheckNetworks([network]))
        name = checked.names.get(network, network)
        if name in record.endpoints:
            raise errdefs.Forbidden(f"endpoint with name {record.name} already exists in network {name}")
        if record.state.status in ("running", "paused"):
            settings = dict(endpoint_config or {})
            reply = await self.ask(
                networks,
                network_messages.ConnectEndpoint(
                    record.id, record.name,
                    network_messages.EndpointRequest(
                        network=name,
                        aliases=list(settings.get("Aliases") or []),
                        ipv4_address=str((settings.get("IPAMConfig") or {}).get("IPv4Address") or ""),
                        mac_address=str(settings.get("MacAddress") or ""),
                        links=list(settings.get("Links") or []),
                        driver_options=dict(settings.get("DriverOpts") or {}),
                    ),
                ),
            )  # fmt: skip
            record.network.setdefault("Networks", {})[reply.endpoint.network_name] = dict(reply.endpoint.settings)
            if reply.hosts:
                hosts = Path(record.files_dir) / "hosts"
                await trio.to_thread.run_sync(hosts.write_text, reply.hosts)
        record.endpoints[name] = dict(endpoint_config or {})
        self.save(record)
        return Done(record.id)

    async def _disconnect(self, record: ContainerRecord, network: str, force: bool) -> Done:
        networks = self.networks_ref()
        if networks is None:
            raise errdefs.NotImplementedYet("networks are not available in this daemon")
        checked = await self.ask(networks, network_messages.CheckNetworks([network]))
        name = checked.names.get(network, network)
        if name not in record.endpoints and not force:
            raise errdefs.Forbidden(f"container {record.id} is not connected to network {name}")
        if record.state.status in ("running", "paused"):
            await self.ask(networks, network_messages.DisconnectEndpoint(record.id, name, force))
            (record.network.get("Networks") or {}).pop(name, None)
        record.endpoints.pop(name, None)
        self.save(record)
        return Done(record.id)

    # --- filesystem leases (export, docker cp) -------------------------------------------------------

    async def _wait_no_leases(self, container_id: str) -> None:
        while any(lease.container_id == container_id and lease.mount_point for lease in self.leases.values()):
            await trio.sleep(0.01)

    async def _lease_filesystem(self, container_id: str, writable: bool) -> FilesystemLease:
        async with self.lock(container_id):
            record = self._current(container_id)
            layout = self.executor.layout(container_id)
            lease_id = secrets.token_hex(16)
            plain_mounts = [mount.to_plain() for mount in record.mounts]
            running = record.state.status in ("running", "paused") and record.state.pid > 0
            if rootfs_module.is_mount_point(str(layout.rootfs)):
                self.leases[lease_id] = MountLease(container_id, "")
                view = f"/proc/{record.state.pid}/root" if running else str(layout.rootfs)
                return FilesystemLease(lease_id, container_id, str(layout.rootfs), view, plain_mounts, running)
            mount_point = self.mounts_root / lease_id
            await trio.to_thread.run_sync(
                _mount_for_lease, str(mount_point), record.lower_dirs, str(layout.upper), str(layout.work)
            )
            self.leases[lease_id] = MountLease(container_id, str(mount_point))
            return FilesystemLease(lease_id, container_id, str(mount_point), str(mount_point), plain_mounts, False)

    async def _release_filesystem(self, lease_id: str) -> Done:
        lease = self.leases.get(lease_id)
        if lease is None:
            return Done()
        if lease.mount_point:
            await trio.to_thread.run_sync(_unmount_lease, lease.mount_point)
        self.leases.pop(lease_id, None)
        return Done(lease.container_id)

    # --- exec ---------------------------------------------------------------------------------------

    def _exec(self, exec_id: str) -> ExecRecord:
        found = self.execs.get(exec_id)
        if found is None:
            raise errdefs.NotFound(f"No such exec instance: {exec_id}")
        return found

    def _require_running(self, record: ContainerRecord) -> None:
        status = record.state.status
        if status == "paused":
            raise errdefs.Conflict(f"Container {record.id} is paused, unpause the container before exec")
        if status == "restarting":
            raise errdefs.Conflict(f"Container {record.id} is restarting, wait until the container is running")
        if status != "running":
            raise errdefs.Conflict(f"container {record.id} is not running")

    def _create_exec(self, record: ContainerRecord, body: dict[str, Any]) -> ExecCreated:
        self._require_running(record)
        command = createconfig._string_list(body.get("Cmd"), "Cmd")
        if not command:
            raise errdefs.InvalidParameter("No exec command specified")
        if body.get("Privileged"):
            raise errdefs.NotImplementedYet("privileged exec is not supported by flotta yet")
        working_dir = createconfig._string(body.get("WorkingDir"), "WorkingDir")
        if working_dir and not working_dir.startswith("/"):
            raise errdefs.InvalidParameter(
                f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
            )
        console = body.get("ConsoleSize") or [0, 0]
        if not isinstance(console, list) or len(console) != 2:
            raise errdefs.InvalidParameter("ConsoleSize must be [height, width]")
        exec_id = secrets.token_hex(32)
        item = ExecRecord(
            id=exec_id,
            container_id=record.id,
            args=command,
            env=createconfig._string_list(body.get("Env"), "Env") or [],
            working_dir=working_dir,
            user=createconfig._string(body.get("User"), "User"),
            tty=bool(body.get("Tty")),
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout")),
            attach_stderr=bool(body.get("AttachStderr")),
            detach_keys=createconfig._string(body.get("DetachKeys"), "DetachKeys"),
            console=(int(console[0] or 0), int(console[1] or 0)),
        )
        self.execs[exec_id] = item
        self._trim_execs(record.id)
        self.event(record, f"exec_create: {' '.join(command)}", execID=exec_id)
        return ExecCreated(exec_id)

    def _trim_execs(self, container_id: str) -> None:
        finished = [
            item for item in self.execs.values()
            if item.container_id == container_id and item.exit_code is not None
        ]  # fmt: skip
        for item in finished[: max(0, len(finished) - FINISHED_EXECS_KEPT_PER_CONTAINER)]:
            del self.execs[item.id]

    def _claim_exec(self, exec_id: str) -> ExecLaunch:
        item = self._exec(exec_id)
        if item.running or (item.claimed and item.exit_code is None):
            raise errdefs.Conflict(f"Exec command {exec_id} is already running")
        if item.exit_code is not None:
            raise errdefs.Conflict(f"exec command {exec_id} has already run")
        record = self._current(item.container_id)
        self._require_running(record)
        item.claimed = True
        item.running = True
        self.event(record, f"exec_start: {' '.join(item.args)}", execID=exec_id)
        return ExecLaunch(
            exec_id=exec_id, container_id=record.id, args=list(item.args), env=list(item.env),
            working_dir=item.working_dir, user=item.user, tty=item.tty,
            attach_stdin=item.attach_stdin, attach_stdout=item.attach_stdout,
            attach_stderr=item.attach_stderr, detach_keys=item.detach_keys,
            console_height=item.console[0], console_width=item.console[1],
            event_attributes=record.event_attributes(),
        )  # fmt: skip

    def _exec_finished(self, exec_id: str, exit_code: int) -> None:
        item = self.execs.get(exec_id)
        if item is None:
            return
        item.running = False
        item.exit_code = exit_code
        record = self.records.get(item.container_id)
        if record is not None:
            self.event(record, "exec_die", execID=exec_id, exitCode=str(exit_code))

    def _inspect_exec(self, item: ExecRecord) -> dict[str, Any]:
        return {
            "ID": item.id,
            "Running": item.running,
            "ExitCode": item.exit_code,
            "ProcessConfig": {
                "tty": item.tty,
                "entrypoint": item.args[0],
                "arguments": item.args[1:],
                "privileged": item.privileged,
                **({"user": item.user} if item.user else {}),
            },
            "OpenStdin": item.attach_stdin,
            "OpenStderr": item.attach_stderr,
            "OpenStdout": item.attach_stdout,
            "CanRemove": False,
            "ContainerID": item.container_id,
            "DetachKeys": item.detach_keys,
            "Pid": item.pid,
        }

    def forget_execs(self, container_id: str) -> None:
        for exec_id in [key for key, item in self.execs.items() if item.container_id == container_id]:
            del self.execs[exec_id]


def _directory_bytes(paths: list[str]) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for top in paths:
        for directory, _, files in os.walk(top):
            for name in files:
                try:
                    info = os.lstat(os.path.join(directory, name))
                except FileNotFoundError:
                    continue
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                total += info.st_size
    return total


def _mount_for_lease(mount_point: str, lower_dirs: list[str], upper: str, work: str) -> None:
    os.makedirs(mount_point, mode=0o700, exist_ok=True)
    try:
        rootfs_module.mount_overlay(mount_point, lower_dirs, upper, work)
    except rootfs_module.MountError as error:
        os.rmdir(mount_point)
        raise errdefs.SystemError_(str(error)) from None


def _unmount_lease(mount_point: str) -> None:
    rootfs_module.unmount(mount_point)
    try:
        os.rmdir(mount_point)
    except OSError:
        pass


def _parse_until_ns(value: str) -> int:
    import re as regex

    match = regex.fullmatch(r"(\d+)(s|m|h)", value)
    if match:
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
        return time.time_ns() - seconds * 1_000_000_000
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid filter 'until={value}'") from None
