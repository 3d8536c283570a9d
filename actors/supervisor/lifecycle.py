"""The containers actor's lifecycle work: create, run, stop, exit, restart policy, remove.

These are the slow operations (they wait on the executor, conmon, the other actors); the
actor runs each in the background (`reply_later`) so one slow stop never holds up
`docker ps`. Per-container ordering comes from a per-container lock: every operation that
changes a container's run (prepare, start, stop, kill, restart, remove, exit handling)
holds its lock, so they apply one after another while different containers proceed in
parallel. Record changes are made without awaiting in between, then saved.

One run of a container:

    prepare (network + /etc files + Executor.create: conmon and crun create; the process
    waits) -> start (one byte to the runtime's fifo) -> exit watcher wakes (conmon exits)
    -> finish_run: cleanup, network teardown, die event, waiters, then the restart policy
    (restarting -> prepare again after the backoff) or AutoRemove.

A run is numbered (`RunState.generation`); an exit report for an older run is ignored, so
`stop` (which applies the exit itself before answering) and the watcher never apply one
exit twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors import errdefs
from actors.daemon.events import Event, publish
from actors.images.messages import HoldImage, ReleaseImage, ResolveImage
from actors.network import messages as network_messages
from actors.supervisor import (
    createconfig,
    health,
    mounts,
    naming,
    restart,
    runspec,
    sandbox,
)
from actors.supervisor.conmon import CreateError
from actors.supervisor.errors import SpecError
from actors.supervisor.monitor import (
    Container,
    ContainerNotFound,
    ContainerStateError,
    ContainerStatus,
    Executor,
    ExitStatus,
    parse_signal,
)
from actors.supervisor.netsetup import NetworkSetup
from actors.supervisor.probes import HealthProbes
from actors.supervisor.records import ContainerRecord, RecordStore, RunState
from actors.volumes.messages import CreateVolume, PopulateVolume, RemoveVolume
from runtime.actor import Ref
from runtime.errors import ActorError, RemoteError, ReplyError

log = logging.getLogger("flotta.containers")

ASK_TIMEOUT_SECONDS = 60.0
HEALTH_OUTPUT_BYTES_MAX = 4096
TERMINATING_SIGNALS = {2, 3, 9, 15}
EXIT_LOST_MESSAGE = "the container's state was lost while the daemon was down"


def image_holder(image_id: str) -> str:
    return f"containers:{image_id}"


class Waiter:
    """One pending `POST /containers/{id}/wait` (or an attach waiting for its run to end):
    answered through a deferred reply, or told to an inbox."""

    def __init__(self, condition: str, reply: Any = None, inbox: Ref | None = None) -> None:
        self.condition = condition
        self.reply = reply
        self.inbox = inbox


class Lifecycle(NetworkSetup, HealthProbes):
    """Mixin of ContainersActor: see the module docstring. Attributes set by the actor."""

    executor: Executor
    store: RecordStore
    files_root: Path
    records: dict[str, ContainerRecord]
    names: dict[str, str]
    reserved_names: set[str]
    prepared: set[str]
    locks: dict[str, trio.Lock]
    waiters: dict[str, list[Waiter]]
    task_scopes: dict[str, dict[str, trio.CancelScope]]
    shared: dict[str, Any]
    image_users: dict[str, int]
    image_lower_dirs: dict[str, list[str]]
    nursery: trio.Nursery
    rng: Any
    durability: trio.Event

    if TYPE_CHECKING:

        def ref_to(self, name: str, node: str | None = None) -> Ref: ...

        def forget_execs(self, container_id: str) -> None: ...

    # --- helpers ------------------------------------------------------------------------

    def lock(self, container_id: str) -> trio.Lock:
        found = self.locks.get(container_id)
        if found is None:
            found = self.locks[container_id] = trio.Lock()
        return found

    def save(self, record: ContainerRecord) -> None:
        self.store.save(record)
        self.durability.set()

    def event(self, record: ContainerRecord, action: str, **extra: str) -> None:
        attributes = record.event_attributes()
        attributes.update(extra)
        publish(self.ref_to("events"), Event("container", action, record.id, attributes, time_nano=time.time_ns()))

    def networks_ref(self) -> Ref | None:
        return self.shared.get("networks")

    async def ask(self, ref: Ref, message: Any, timeout: float = ASK_TIMEOUT_SECONDS) -> Any:
        """Ask another actor; its errors come back as the same error kinds."""
        try:
            return await ref.ask(message, timeout=timeout)
        except RemoteError as error:
            raise ReplyError(error.message, kind=error.kind) from None
        except ActorError as error:
            raise errdefs.SystemError_(f"{ref.name}: {error}") from None

    def find(self, ref: str) -> ContainerRecord:
        """The container a reference names: id, name (with or without "/"), or id prefix."""
        found = self.records.get(ref)
        if found is not None:
            return found
        name = naming.normalize(ref)
        container_id = self.names.get(name)
        if container_id is not None:
            return self.records[container_id]
        if ref and all(c in "0123456789abcdef" for c in ref):
            matches = [record for key, record in self.records.items() if key.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errdefs.InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise errdefs.NotFound(f"No such container: {ref}")

    def start_task(self, container_id: str, kind: str, function: Callable[..., Any], *arguments: Any) -> None:
        """A background task of a container (exit watcher, health probe, restart delay),
        cancelled by `cancel_tasks`."""
        scope = trio.CancelScope()
        self.task_scopes.setdefault(container_id, {})[kind] = scope

        async def run() -> None:
            with scope:
                try:
                    await function(*arguments)
                except Exception:
                    log.exception("container %s: %s task failed", container_id[:12], kind)
            scopes = self.task_scopes.get(container_id, {})
            if scopes.get(kind) is scope:
                del scopes[kind]

        self.nursery.start_soon(run)

    def cancel_tasks(self, container_id: str, *kinds: str) -> None:
        scopes = self.task_scopes.get(container_id, {})
        for kind in kinds or tuple(scopes):
            scope = scopes.pop(kind, None)
            if scope is not None:
                scope.cancel()

    def fire_waiters(self, container_id: str, conditions: set[str], status_code: int, error: str = "") -> None:
        from actors.supervisor.messages import WaitResult

        pending = self.waiters.get(container_id, [])
        keep = []
        for waiter in pending:
            if waiter.condition in conditions:
                result = WaitResult(status_code, error)
                if waiter.inbox is not None:
                    try:
                        waiter.inbox.tell_nowait(result)
                    except (ActorError, RuntimeError):
                        pass  # the client went away
                else:
                    waiter.reply.send(result)
            else:
                keep.append(waiter)
        if keep:
            self.waiters[container_id] = keep
        else:
            self.waiters.pop(container_id, None)

    # --- image holds ----------------------------------------------------------------------
    #
    # The images actor keeps an image's layers while someone holds them. Holding once per
    # image (holder "containers:<image id>") rather than per container spares a durable
    # write in the images store on every create and remove; the count here covers the
    # records using the image and the creates in flight. Hold and release messages go to
    # the images actor in the order their counts changed, so a release never overtakes a
    # later hold.

    def count_image_user(self, image_id: str, lower_dirs: list[str]) -> None:
        """At start-up: a restored record uses `image_id` (its hold was persisted)."""
        self.image_users[image_id] = self.image_users.get(image_id, 0) + 1
        self.image_lower_dirs.setdefault(image_id, list(lower_dirs))

    async def acquire_image(self, image_id: str) -> list[str]:
        self.image_users[image_id] = self.image_users.get(image_id, 0) + 1
        cached = self.image_lower_dirs.get(image_id)
        if cached is not None:
            return list(cached)
        try:
            lower = await self.ask(self.ref_to("images"), HoldImage(image_holder(image_id), image_id))
        except BaseException:
            self.release_image(image_id)
            raise
        if image_id in self.image_users:
            self.image_lower_dirs[image_id] = list(lower.paths)
        return list(lower.paths)

    def release_image(self, image_id: str) -> None:
        count = self.image_users.get(image_id, 0) - 1
        if count > 0:
            self.image_users[image_id] = count
            return
        self.image_users.pop(image_id, None)
        self.image_lower_dirs.pop(image_id, None)
        try:
            self.ref_to("images").tell_nowait(ReleaseImage(image_holder(image_id)))
        except ActorError as error:
            log.warning("releasing image %s: %s", image_id[:19], error)

    # --- create ---------------------------------------------------------------------------

    def new_container_id(self) -> str:
        while True:
            candidate = secrets.token_hex(32)
            if candidate not in self.records and not candidate[:12].isdigit():
                return candidate

    async def create(self, requested_name: str, body: dict[str, Any]) -> Any:
        from actors.supervisor.messages import Created

        name = naming.validate(requested_name) if requested_name else ""
        if name:
            holder = self.names.get(name)
            if holder is not None:
                raise naming.name_conflict(name, holder)
            if name in self.reserved_names:
                raise naming.name_conflict(name, "(being created)")
        else:
            name = naming.generate(self.rng, lambda n: n in self.names or n in self.reserved_names)
        self.reserved_names.add(name)
        container_id = self.new_container_id()
        held = False
        created_volumes: list[str] = []
        try:
            image_reference = body.get("Image")
            if not isinstance(image_reference, str) or not image_reference:
                raise errdefs.InvalidParameter("no image specified: Config.Image is empty")
            image = await self.ask(self.ref_to("images"), ResolveImage(image_reference))
            plan = createconfig.plan_create(body, image.config.get("config") or {})
            requests = mounts.plan_mounts(plan.config, plan.host_config)
            for request in requests:
                if request.kind == "bind" and not request.create_source and not os.path.exists(request.source):
                    raise errdefs.InvalidParameter(
                        f'invalid mount config for type "bind": bind source path does not exist: {request.source}'
                    )
            await self.check_network_mode(plan.host_config, plan.endpoints)
            lower_dirs = await self.acquire_image(image.image_id)
            held = True
            resolved = [await self.resolve_mount(request, created_volumes) for request in requests]
            config = plan.config
            mode = plan.host_config["NetworkMode"]
            if mode == "host":
                config["Hostname"] = config.get("Hostname") or sandbox.host_hostname()
            elif mode.startswith("container:"):
                config["Hostname"] = ""
            elif not config.get("Hostname"):
                config["Hostname"] = container_id[:12]
            path, args = createconfig.entrypoint_and_args(config)
            record = ContainerRecord(
                id=container_id,
                name=name,
                created_ns=time.time_ns(),
                image_id=image.image_id,
                config=config,
                host_config=plan.host_config,
                endpoints=plan.endpoints,
                path=path,
                args=args,
                mounts=resolved,
                lower_dirs=list(lower_dirs),
                files_dir=str(self.files_root / container_id),
                log_path=str(self.executor.layout(container_id).log),
            )
            self.save(record)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.undo_create(container_id, image.image_id if held else "", created_volumes)
            raise
        finally:
            self.reserved_names.discard(name)
        self.records[container_id] = record
        self.names[name] = container_id
        self.event(record, "create")
        return Created(container_id, list(plan.warnings))

    async def undo_create(self, container_id: str, held_image: str, volumes: list[str]) -> None:
        if held_image:
            self.release_image(held_image)
        try:
            for volume in volumes:
                await self.ref_to("volumes").ask(RemoveVolume(volume, True), timeout=ASK_TIMEOUT_SECONDS)
        except (ActorError, RemoteError) as error:
            log.warning("container %s: undoing a failed create: %s", container_id[:12], error)

    async def check_network_mode(self, host_config: dict[str, Any], endpoints: dict[str, dict[str, Any]]) -> None:
        mode = host_config["NetworkMode"]
        if mode in ("none", "host"):
            return
        if mode.startswith("container:"):
            self.find(mode[len("container:") :])
            return
        networks = self.networks_ref()
        if networks is None:
            raise errdefs.NotImplementedYet(
                f"network {mode!r} is not available: this flottad runs without its network "
                "component; use --network none, --network host or --network container:<id>"
            )
        await self.ask(networks, network_messages.CheckNetworks(list(endpoints)))

    async def resolve_mount(self, request: mounts.MountRequest, created: list[str]) -> mounts.ResolvedMount:
        if request.kind == "bind":
            return mounts.ResolvedMount(
                "bind", request.destination, request.source, readonly=request.readonly,
                mode=request.mode, propagation=request.propagation,
            )  # fmt: skip
        if request.kind == "tmpfs":
            return mounts.ResolvedMount(
                "tmpfs", request.destination, "", readonly=request.readonly,
                tmpfs_options=request.tmpfs_options,
            )  # fmt: skip
        anonymous = not request.source
        info = await self.ask(
            self.ref_to("volumes"),
            CreateVolume(request.source, "local", dict(request.volume_labels), dict(request.volume_options), anonymous),
        )
        name = info.body["Name"]
        if info.created:
            created.append(name)
            publish(self.ref_to("events"), Event("volume", "create", name, {"driver": "local"}, time_nano=time.time_ns()))
        source = str(info.body["Mountpoint"])
        options = info.body.get("Options") or {}
        if options:
            device = options.get("device", "")
            if "bind" in options.get("o", "").split(",") and device:
                source = device
            else:
                raise errdefs.NotImplementedYet(
                    f"volume {name}: mounting a local volume with options {sorted(options)} is not supported yet"
                )
        if request.subpath:
            source = os.path.join(source, request.subpath)
        return mounts.ResolvedMount(
            "volume", request.destination, source, name=name, readonly=request.readonly,
            mode=request.mode, copy_image_data=request.copy_image_data, anonymous=anonymous,
        )  # fmt: skip

    # --- prepare and start -----------------------------------------------------------------

    async def prepare(self, record: ContainerRecord) -> Container:
        """The container's monitor and runtime state for its next run (lock held)."""
        if record.id in self.prepared:
            try:
                container = self.executor.get(record.id)
                if container.state().status is ContainerStatus.CREATED:
                    return container
            except ContainerNotFound:
                pass
            self.prepared.discard(record.id)
        network, files_dir = await self.setup_network(record)
        try:
            await trio.to_thread.run_sync(self.prepare_mount_sources, record)
            await self.copy_up_volumes(record)
            spec = runspec.build_spec(record, network=network, files_dir=files_dir)
            result = await self.executor.create(
                record.id,
                spec,
                record.lower_dirs,
                stdin_open=bool(record.config.get("OpenStdin")),
                # Docker closes a container's stdin when its attached client leaves only
                # without a TTY: a TTY container survives detach and re-attach.
                stdin_once=bool(record.config.get("StdinOnce")) and not record.tty,
                log_size_max_bytes=runspec.log_size_max_bytes(record.host_config),
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.teardown_network(record)
            raise
        for warning in result.warnings:
            log.warning("container %s: %s", record.short_id, warning)
        self.prepared.add(record.id)
        return result.container

    @staticmethod
    def prepare_mount_sources(record: ContainerRecord) -> None:
        for mount in record.mounts:
            if mount.kind == "bind" and not os.path.exists(mount.source):
                request_from_binds = any(
                    spec.split(":")[0] == mount.source for spec in record.host_config.get("Binds") or []
                )
                if not request_from_binds:
                    raise errdefs.InvalidParameter(
                        f'invalid mount config for type "bind": bind source path does not exist: {mount.source}'
                    )
                os.makedirs(mount.source, mode=0o755, exist_ok=True)

    async def copy_up_volumes(self, record: ContainerRecord) -> None:
        """Docker's copy-up: an empty volume gets the image's content at its mount path."""
        for mount in record.mounts:
            if mount.kind != "volume" or not mount.copy_image_data:
                continue
            source = _image_path(record.lower_dirs, mount.destination)
            if source is None:
                continue
            await self.ask(self.ref_to("volumes"), PopulateVolume(mount.name, source))

    async def start_locked(self, record: ContainerRecord) -> None:
        """Start the container (its lock held); raises Docker's errors."""
        status = record.state.status
        if status in ("running", "restarting"):
            raise errdefs.NotModified("container already started")
        if status == "paused":
            raise errdefs.Conflict("cannot start a paused container, try unpause instead")
        if status in ("removing", "dead"):
            raise errdefs.Conflict(f"container {record.id} is marked for removal and cannot be started")
        try:
            container = await self.prepare(record)
            await container.start()
        except CreateError as error:
            await self.start_failed(record, error.message, error.exit_code)
            if error.exit_code in (126, 127):
                raise errdefs.InvalidParameter(error.message) from None
            raise errdefs.SystemError_(error.message) from None
        except (SpecError, ContainerStateError) as error:
            await self.start_failed(record, str(error), 125)
            raise errdefs.InvalidParameter(str(error)) from None
        except ReplyError as error:
            await self.start_failed(record, str(error), 125)
            raise
        except Exception as error:  # a mount or the host refused: still Docker's created state
            log.exception("container %s: start failed", record.short_id)
            await self.start_failed(record, f"{type(error).__name__}: {error}", 125)
            raise errdefs.SystemError_(f"cannot start container {record.id}: {error}") from None
        self.prepared.discard(record.id)
        state = container.state()
        previous = record.state
        record.state = RunState(
            status="running",
            pid=state.pid,
            started_ns=state.started_at_ns or time.time_ns(),
            restart_count=previous.restart_count,
            generation=previous.generation + 1,
            restart_delay_seconds=previous.restart_delay_seconds,
        )
        probe = health.probe_from_config(record.config.get("Healthcheck"), record.config.get("Shell"))
        if probe is not None:
            record.state.health = health.HealthState().to_api()
        self.save(record)
        generation = record.state.generation
        self.start_task(record.id, "watch", self.watch_exit, record.id, generation)
        if probe is not None:
            self.start_task(record.id, "health", self.health_loop, record.id, generation, probe)
        self.event(record, "start")

    async def start_failed(self, record: ContainerRecord, message: str, exit_code: int) -> None:
        """Docker's state after a failed start: still created (or exited), with the error."""
        self.prepared.discard(record.id)
        record.state.error = message
        record.state.exit_code = exit_code
        self.save(record)
        self.fire_waiters(record.id, {"run-ended"}, exit_code, message)
        if record.host_config.get("AutoRemove"):
            self.nursery.start_soon(self.auto_remove, record.id)

    # --- exits ----------------------------------------------------------------------------------

    async def watch_exit(self, container_id: str, generation: int) -> None:
        try:
            container = self.executor.get(container_id)
        except ContainerNotFound:
            status = ExitStatus(255, False, time.time_ns(), EXIT_LOST_MESSAGE)
        else:
            status = await container.wait()
        async with self.lock(container_id):
            record = self.records.get(container_id)
            if record is not None:
                await self.finish_run(record, generation, status)

    async def finish_run(self, record: ContainerRecord, generation: int, status: ExitStatus) -> None:
        """Apply one run's exit (lock held): state, events, waiters, then the policy.

        The state changes and the waiters fire first, without awaiting in between; the
        clean-up of the run (mount, cgroup, network) comes after, and only when the
        container stays exited: a restart's create and a removal clean up themselves.
        """
        state = record.state
        if state.generation != generation or state.status not in ("running", "paused"):
            return
        # Not the exit watcher: this may be it, and it ends by itself.
        self.cancel_tasks(record.id, "health")
        ran_seconds = max(0.0, ((status.finished_at_ns or time.time_ns()) - state.started_ns) / 1e9)
        state.status = "exited"
        state.pid = 0
        state.exit_code = status.exit_code
        state.oom_killed = status.oom_killed
        state.error = status.error
        state.finished_ns = status.finished_at_ns or time.time_ns()
        if state.health is not None and state.health.get("Status") == health.STARTING:
            state.health = {**state.health, "Status": health.UNHEALTHY}
        if status.oom_killed:
            self.event(record, "oom")
        self.event(record, "die", exitCode=str(status.exit_code))
        decision = restart.decide_after_exit(
            restart.RestartPolicy.from_host_config(record.host_config),
            exit_code=status.exit_code,
            stopped_by_user=state.stopped_by_user,
            restart_count=state.restart_count,
            ran_seconds=ran_seconds,
            previous_delay_seconds=state.restart_delay_seconds,
        )
        if decision.restart:
            state.status = "restarting"
            state.restart_count += 1
            state.restart_delay_seconds = decision.next_delay_seconds
        self.save(record)
        self.fire_waiters(record.id, {"not-running", "next-exit", "run-ended"}, status.exit_code)
        if decision.restart:
            self.start_task(record.id, "restart", self.restart_later, record.id, state.generation, decision.delay_seconds)
        elif record.host_config.get("AutoRemove"):
            self.nursery.start_soon(self.auto_remove, record.id)
        else:
            await self.clean_up_run(record)
            self.save(record)

    async def clean_up_run(self, record: ContainerRecord) -> None:
        """Release what an exited run held: runtime state, cgroup, root mount, network."""
        if record.state.status != "exited" or record.id in self.prepared:
            return  # started again meanwhile: what it holds is its new run's
        try:
            await self.executor.get(record.id).cleanup()
        except (ContainerNotFound, ContainerStateError, OSError) as error:
            log.warning("container %s: cleanup after exit: %s", record.short_id, error)
        await self.teardown_network(record)

    async def restart_later(self, container_id: str, generation: int, delay_seconds: float) -> None:
        await trio.sleep(delay_seconds)
        async with self.lock(container_id):
            record = self.records.get(container_id)
            if record is None or record.state.status != "restarting" or record.state.generation != generation:
                return
            record.state.status = "exited"
            try:
                await self.start_locked(record)
            except ReplyError as error:
                log.warning("container %s: restart failed: %s", record.short_id, error)
                record.state.status = "exited"
                await self.clean_up_run(record)
                self.save(record)

    async def cancel_restart(self, record: ContainerRecord) -> None:
        """A restarting container asked to stop: it stays exited."""
        self.cancel_tasks(record.id, "restart")
        record.state.status = "exited"
        self.fire_waiters(record.id, {"not-running"}, record.state.exit_code)
        await self.clean_up_run(record)

    async def auto_remove(self, container_id: str) -> None:
        async with self.lock(container_id):
            record = self.records.get(container_id)
            if record is None or record.state.status in ("running", "paused", "restarting", "removing"):
                return
            try:
                await self.remove_locked(record, force=True, volumes=True, background=True)
            except ReplyError as error:
                log.warning("container %s: auto-remove failed: %s", record.short_id, error)

    # --- stop, kill, restart, remove -------------------------------------------------------------

    async def stop_locked(self, record: ContainerRecord, timeout_seconds: int | None, signal: str) -> None:
        state = record.state
        if state.status == "restarting":
            state.stopped_by_user = True
            await self.cancel_restart(record)
            self.save(record)
            self.event(record, "stop")
            return
        if state.status not in ("running", "paused"):
            raise errdefs.NotModified("container already stopped")
        stop_signal = signal or record.config.get("StopSignal") or "SIGTERM"
        try:
            number = parse_signal(stop_signal)
        except ValueError:
            raise errdefs.InvalidParameter(f"Invalid signal: {stop_signal}") from None
        state.stopped_by_user = True
        self.save(record)
        timeout = createconfig.stop_timeout_seconds(record.config, timeout_seconds)
        generation = state.generation
        self.event(record, "kill", signal=str(number))
        container = self.executor.get(record.id)
        status = await container.stop(timeout, number)
        await self.finish_run(record, generation, status)
        self.event(record, "stop")

    async def kill_locked(self, record: ContainerRecord, signal: str, reference: str) -> None:
        try:
            number = parse_signal(signal or "SIGKILL")
        except ValueError:
            raise errdefs.InvalidParameter(f"Invalid signal: {signal}") from None
        state = record.state
        if state.status == "restarting":
            state.stopped_by_user = True
            await self.cancel_restart(record)
            self.save(record)
            return
        if state.status not in ("running", "paused"):
            raise errdefs.Conflict(
                f"Cannot kill container: {reference}: container {record.id} is not running"
            )
        stop_signal = record.config.get("StopSignal")
        if number in TERMINATING_SIGNALS or (stop_signal and _signal_number(stop_signal) == number):
            state.stopped_by_user = True
            self.save(record)
        generation = state.generation
        container = self.executor.get(record.id)
        try:
            await container.kill(number)
        except ContainerStateError:
            raise errdefs.Conflict(
                f"Cannot kill container: {reference}: container {record.id} is not running"
            ) from None
        self.event(record, "kill", signal=str(number))
        if number == 9:
            # Docker's kill -9 returns once the container is down.
            status = await container.wait()
            await self.finish_run(record, generation, status)

    async def remove_locked(
        self, record: ContainerRecord, *, force: bool, volumes: bool, background: bool = False
    ) -> None:
        """Remove the container (lock held). `background`: answer once the record is gone and
        release its resources afterwards (AutoRemove: `wait?condition=removed` waits on it)."""
        state = record.state
        if state.status == "removing":
            raise errdefs.Conflict(f"removal of container {record.id} is already in progress")
        if state.status in ("running", "restarting") and not force:
            raise errdefs.Conflict(
                f'cannot remove container "/{record.name}": container is running: stop the '
                "container before removing or force remove"
            )
        if state.status == "paused" and not force:
            raise errdefs.Conflict(
                f'cannot remove container "/{record.name}": container is paused: unpause and '
                "stop the container before removing or force remove"
            )
        if state.status == "restarting":
            await self.cancel_restart(record)
        if state.status in ("running", "paused"):
            state.stopped_by_user = True
            generation = state.generation
            container = self.executor.get(record.id)
            self.event(record, "kill", signal="9")
            try:
                await container.kill(9)
            except ContainerStateError:
                pass
            status = await container.wait()
            await self.finish_run(record, generation, status)
        self.cancel_tasks(record.id)
        state.status = "removing"
        # The record goes first: a crash from here on leaves files without a record, which
        # the next start removes; never a listed container without its files.
        self.store.delete(record.id)
        self.durability.set()
        self.prepared.discard(record.id)
        self.records.pop(record.id, None)
        if self.names.get(record.name) == record.id:
            del self.names[record.name]
        self.forget_execs(record.id)
        self.event(record, "destroy")
        self.fire_waiters(record.id, {"removed", "not-running", "next-exit", "run-ended"}, state.exit_code)
        self.locks.pop(record.id, None)
        if background:
            self.nursery.start_soon(self.release_resources, record, volumes)
        else:
            await self.release_resources(record, volumes)

    async def release_resources(self, record: ContainerRecord, volumes: bool) -> None:
        """What a removed container held: its network, its files (mount, cgroup, writable
        layer, log), its /etc files, the image hold, and anonymous volumes with `-v`."""
        await self.teardown_network(record)
        try:
            await self.executor.get(record.id).remove(force=True)
        except ContainerNotFound:
            # Never run: at most a writable layer that `docker cp` filled.
            await trio.to_thread.run_sync(_remove_tree, self.executor.layout(record.id).directory)
        except (ContainerStateError, OSError) as error:
            log.error("container %s: removing its files: %s", record.short_id, error)
        await trio.to_thread.run_sync(_remove_tree, Path(record.files_dir))
        self.release_image(record.image_id)
        if not volumes:
            return
        in_use = {name for other in self.records.values() for name in mounts.volume_names(other.mounts)}
        for mount in record.mounts:
            if mount.kind == "volume" and mount.anonymous and mount.name not in in_use:
                try:
                    await self.ask(self.ref_to("volumes"), RemoveVolume(mount.name))
                    publish(self.ref_to("events"), Event("volume", "destroy", mount.name, {"driver": "local"}, time_nano=time.time_ns()))
                except ReplyError as error:
                    log.warning("container %s: removing volume %s: %s", record.short_id, mount.name, error)

def _signal_number(name: str) -> int:
    try:
        return parse_signal(name)
    except ValueError:
        return -1


def _image_path(lower_dirs: list[str], destination: str) -> str | None:
    """The topmost image layer directory holding `destination` as a real directory (not
    through a symlink, which could point out of the layer), or None."""
    relative = destination.strip("/")
    for layer in lower_dirs:
        candidate = os.path.join(layer, relative)
        real = os.path.realpath(candidate)
        if real != os.path.normpath(candidate):
            return None
        if os.path.lexists(candidate):
            return candidate if os.path.isdir(candidate) and not os.path.islink(candidate) else None
    return None


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)

