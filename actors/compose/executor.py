"""Applying a reconciler plan through the Engine API, with Docker Compose's progress lines.

The executor keeps, per service, the containers it knows about (observed, created,
recreated) so that later actions can resolve references to them (`service:` network
modes, `volumes_from`, links) and start them. Actions run one at a time, in the plan's
order; a failure stops the run with `ExecutionError` (what was done stays done, as with
Docker Compose: the next `up` carries on from there).

Dependency conditions are polled through `GET /containers/{id}/json`:
`service_healthy` waits for `State.Health.Status == "healthy"` and fails as soon as a
container is unhealthy or has exited; `service_completed_successfully` waits for an exit
and fails on a non-zero code. The messages are Docker Compose's.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from actors.client import api

from . import createbody
from . import labels as compose_labels
from .engine import Engine, is_not_found
from .model import Project, Service
from .progress import DONE, ERROR, WARNING, WORKING, Progress
from .reconcile import (
    SERVICE_COMPLETED,
    SERVICE_HEALTHY,
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    KeepContainer,
    ObservedContainer,
    Plan,
    RecreateContainer,
    RecreateNetwork,
    RemoveContainer,
    StartService,
    StopService,
    Wait,
)

POLL_SECONDS = 0.2


class ExecutionError(Exception):
    """An action failed; the message is the one line Docker Compose would print."""


@attrs.define
class LiveContainer:
    id: str
    name: str
    number: int
    state: str


def live_container(container: ObservedContainer) -> LiveContainer:
    return LiveContainer(container.id, container.name, container.number or 0, container.state)


def container_event(name: str) -> str:
    return f"Container {name}"


def network_body(project: Project, key: str) -> dict[str, Any]:
    network = project.networks[key]
    body: dict[str, Any] = {
        "Name": network.name,
        "Driver": network.driver or "bridge",
        "Options": dict(network.driver_opts),
        "Internal": network.internal,
        "Attachable": network.attachable,
        "Labels": compose_labels.network_labels(project, key),
    }
    if network.ipam is not None:
        body["IPAM"] = {
            "Driver": network.ipam.driver or "default",
            "Options": dict(network.ipam.options),
            "Config": [{key: value for key, value in (
                ("Subnet", pool.subnet), ("IPRange", pool.ip_range),
                ("Gateway", pool.gateway), ("AuxiliaryAddresses", dict(pool.aux_addresses)))
                if value} for pool in network.ipam.config],
        }
    if network.enable_ipv6 is not None:
        body["EnableIPv6"] = network.enable_ipv6
    if network.enable_ipv4 is not None:
        body["EnableIPv4"] = network.enable_ipv4
    return body


def volume_body(project: Project, key: str) -> dict[str, Any]:
    volume = project.volumes[key]
    return {"Name": volume.name, "Driver": volume.driver or "local",
            "DriverOpts": dict(volume.driver_opts),
            "Labels": compose_labels.volume_labels(project, key)}


def file_archive(file: createbody.InjectedFile) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        entry = tarfile.TarInfo(file.target.lstrip("/"))
        entry.size = len(file.content)
        entry.mode = file.mode
        entry.uid, entry.gid = file.uid, file.gid
        entry.mtime = int(time.time())
        archive.addfile(entry, io.BytesIO(file.content))
    return buffer.getvalue()


class Executor:
    def __init__(self, engine: Engine, project: Project, progress: Progress, *,
                 image_digests: dict[str, str] | None = None,
                 timeout_seconds: int | None = None,
                 start_progress: Progress | None = None,
                 interrupted: Callable[[], bool] = lambda: False) -> None:
        self.engine = engine
        self.project = project
        self.progress = progress
        self.start_progress = start_progress or progress
        self.image_digests = dict(image_digests or {})
        self.timeout_seconds = timeout_seconds
        self.interrupted = interrupted
        self.live: dict[str, list[LiveContainer]] = {}
        self.warnings: list[str] = []
        self._api_version: str | None = None

    @property
    def api_version(self) -> str:
        if self._api_version is None:
            self._api_version = self.engine.api_version
        return self._api_version

    # -- applying a plan

    def apply(self, plan: Plan, observed_containers: Iterable[ObservedContainer] = ()) -> None:
        for container in observed_containers:
            if not container.oneoff and container.service in self.project.services:
                self.remember(container.service, live_container(container))
        for action in plan.actions:
            if self.interrupted():
                raise ExecutionError("interrupted")
            self.run(action)

    def run(self, action: Any) -> None:
        try:
            match action:
                case CreateNetwork(key=key, name=name):
                    self.create_network(key, name)
                case RecreateNetwork():
                    self.recreate_network(action)
                case CreateVolume(key=key, name=name):
                    self.create_volume(key, name)
                case RemoveContainer(container=container):
                    self.stop_and_remove(container.id, container.name)
                    self._forget(container.service, container.id)
                case StopService(containers=containers):
                    for container in containers:
                        self.stop(container.id, container.name)
                        self._set_state(container.service, container.id, "exited")
                case RecreateContainer(container=container, service=service, number=number):
                    self.recreate(container, service, number)
                case CreateContainer(service=service, number=number, name=name):
                    self.create(service, number, name)
                case KeepContainer(container=container, state=state):
                    if state == "running":
                        self.progress.event(container_event(container.name), DONE, "Running")
                    elif state == "exited":
                        self.progress.event(container_event(container.name), DONE, "Created")
                case StartService(service=service, waits=waits):
                    self.start_service(service, waits)
                case _:
                    raise ExecutionError(f"unknown action {action!r}")
        except api.ClientError as error:
            raise ExecutionError(str(error)) from None
        except createbody.CreateError as error:
            raise ExecutionError(str(error)) from None

    # -- bookkeeping

    def remember(self, service: str, container: LiveContainer) -> None:
        containers = self.live.setdefault(service, [])
        containers[:] = [known for known in containers if known.id != container.id]
        containers.append(container)
        containers.sort(key=lambda known: (known.number, known.name))

    def _forget(self, service: str, container_id: str) -> None:
        self.live[service] = [known for known in self.live.get(service, [])
                              if known.id != container_id]

    def _set_state(self, service: str, container_id: str, state: str) -> None:
        for known in self.live.get(service, []):
            if known.id == container_id:
                known.state = state

    def references(self, inherited: dict[str, dict[str, Any]] | None = None
                   ) -> createbody.References:
        return createbody.References(
            containers={service: [createbody.ContainerRef(id=known.id, name=known.name)
                                  for known in containers]
                        for service, containers in self.live.items()},
            inherited_mounts=inherited or {})

    # -- networks and volumes

    def create_network(self, key: str, name: str) -> None:
        event = f"Network {name}"
        self.progress.event(event, WORKING, "Creating")
        try:
            self.engine.create_network(network_body(self.project, key))
        except api.ClientError as error:
            if isinstance(error, api.APIError) and error.status == 409:
                # Another `up` made it meanwhile, as Compose tolerates.
                self.progress.event(event, DONE, "Created")
                return
            self.progress.event(event, ERROR, "Error")
            raise ExecutionError(f"failed to create network {name}: {error}") from None
        self.progress.event(event, DONE, "Created")

    def recreate_network(self, action: RecreateNetwork) -> None:
        for container in action.stop:
            self.stop(container.id, container.name)
            self._set_state(container.service, container.id, "exited")
        self.engine.remove_network(action.network_id)
        self.progress.event(f"Network {action.name}", DONE, "Removed")
        self.create_network(action.key, action.name)

    def create_volume(self, key: str, name: str) -> None:
        event = f'Volume "{name}"'
        self.progress.event(event, WORKING, "Creating")
        try:
            self.engine.create_volume(volume_body(self.project, key))
        except api.ClientError:
            self.progress.event(event, ERROR, "Error")
            raise
        self.progress.event(event, DONE, "Created")

    # -- containers

    def _inherited_mounts(self, old_id: str, service: Service) -> dict[str, dict[str, Any]]:
        """Anonymous volumes of the replaced container, which the new one keeps."""
        try:
            old = self.engine.inspect(old_id)
        except api.ClientError:
            return {}
        image = self.engine.image(compose_labels.image_name(self.project, service)) or {}
        image_volumes = set((image.get("Config") or {}).get("Volumes") or {})
        anonymous = {volume.target for volume in service.volumes
                     if volume.type == "volume" and not volume.source}
        inherited: dict[str, dict[str, Any]] = {}
        for mount in old.get("Mounts") or ():
            destination = mount.get("Destination") or ""
            if mount.get("Type") != "volume" or not mount.get("Name"):
                continue
            if destination in image_volumes or destination in anonymous:
                entry: dict[str, Any] = {"Type": "volume", "Source": mount["Name"],
                                         "Target": destination}
                if not mount.get("RW", True):
                    entry["ReadOnly"] = True
                inherited[destination] = entry
        return inherited

    def _create(self, service: Service, number: int, name: str, *,
                replaces: str | None = None,
                inherited: dict[str, dict[str, Any]] | None = None) -> str:
        request = createbody.create_request(
            self.project, service, name=name, number=number,
            references=self.references(inherited), api_version=self.api_version,
            image_digest=self.image_digests.get(service.name), replaces=replaces)
        container_id, warnings = self.engine.create(request.query, request.body)
        for warning in warnings:
            self.progress.event(service.name, WARNING, warning)
        for network, endpoint in request.connect_after:
            self.engine.connect(network, container_id, endpoint)
        for file in request.injected_files:
            self.engine.put_archive(container_id, "/", file_archive(file))
        return container_id

    def create(self, service_name: str, number: int, name: str) -> None:
        service = self.project.services[service_name]
        event = container_event(name)
        self.progress.event(event, WORKING, "Creating")
        try:
            container_id = self._create(service, number, name)
        except (api.ClientError, createbody.CreateError):
            self.progress.event(event, ERROR, "Error")
            raise
        self.remember(service_name, LiveContainer(container_id, name, number, "created"))
        self.progress.event(event, DONE, "Created")

    def recreate(self, old: ObservedContainer, service_name: str, number: int) -> None:
        service = self.project.services[service_name]
        event = container_event(old.name)
        self.progress.event(event, WORKING, "Recreate")
        name = compose_labels.container_name(self.project, service, number)
        temporary = f"{old.id[:12]}_{name}"
        try:
            container_id = self._create(service, number, temporary, replaces=old.id,
                                        inherited=self._inherited_mounts(old.id, service))
            self.engine.stop(old.id, self.timeout_seconds)
            self.engine.remove(old.id)
            self.engine.rename(container_id, name)
        except (api.ClientError, createbody.CreateError):
            self.progress.event(event, ERROR, "Error")
            raise
        self._forget(service_name, old.id)
        self.remember(service_name, LiveContainer(container_id, name, number, "created"))
        self.progress.event(event, DONE, "Recreated")

    def stop(self, container_id: str, name: str, timeout_seconds: int | None = None,
             progress: Progress | None = None) -> None:
        progress = progress or self.progress
        event = container_event(name)
        progress.event(event, WORKING, "Stopping")
        try:
            self.engine.stop(container_id, timeout_seconds if timeout_seconds is not None
                             else self.timeout_seconds)
        except api.APIError as error:
            if not is_not_found(error):
                progress.event(event, ERROR, "Error while Stopping")
                raise
        progress.event(event, DONE, "Stopped")

    def stop_and_remove(self, container_id: str, name: str, volumes: bool = False) -> None:
        self.stop(container_id, name)
        event = container_event(name)
        self.progress.event(event, WORKING, "Removing")
        try:
            self.engine.remove(container_id, volumes=volumes, force=True)
        except api.APIError as error:
            if not is_not_found(error) and error.status != 409:
                self.progress.event(event, ERROR, "Error while Removing")
                raise
        self.progress.event(event, DONE, "Removed")

    # -- starting

    def start_service(self, service_name: str, waits: Iterable[Wait] = ()) -> None:
        for wait in waits:
            self.wait_dependency(service_name, wait)
        containers = self.live.get(service_name, [])
        if not containers:
            if self.project.services[service_name].replicas == 0:
                return
            raise ExecutionError(f'service "{service_name}" has no container to start')
        for container in containers:
            if container.state == "running":
                continue
            event = container_event(container.name)
            self.start_progress.event(event, WORKING, "Starting")
            try:
                self.engine.start(container.id)
            except api.ClientError:
                self.start_progress.event(event, ERROR, "Error")
                raise
            container.state = "running"
            self.start_progress.event(event, DONE, "Started")

    def wait_dependency(self, service_name: str, wait: Wait,
                        deadline: float | None = None) -> None:
        containers = list(self.live.get(wait.service, []))
        progress = self.start_progress
        if not containers:
            if wait.required:
                raise ExecutionError(f"{service_name} is missing dependency {wait.service}")
            self.warnings.append(f"{service_name} is missing dependency {wait.service}")
            return
        for container in containers:
            progress.event(container_event(container.name), WORKING, "Waiting")
        while True:
            if self.interrupted():
                raise ExecutionError("interrupted")
            if deadline is not None and time.monotonic() > deadline:
                raise ExecutionError("timeout waiting for dependencies")
            try:
                if wait.condition == SERVICE_HEALTHY:
                    done = self.healthy(containers, fallback_running=False)
                    if done:
                        for container in containers:
                            progress.event(container_event(container.name), DONE, "Healthy")
                        return
                elif wait.condition == SERVICE_COMPLETED:
                    exited, code = self.completed(containers)
                    if exited:
                        if code == 0:
                            for container in containers:
                                progress.event(container_event(container.name), DONE, "Exited")
                            return
                        suffix = f'"{wait.service}" didn\'t complete successfully: exit {code}'
                        if not wait.required:
                            self.warnings.append(f"optional dependency {suffix}")
                            return
                        for container in containers:
                            progress.event(container_event(container.name), ERROR,
                                           f"service {suffix}")
                        raise ExecutionError(f"service {suffix}")
                else:
                    self.warnings.append(f"unsupported depends_on condition: {wait.condition}")
                    return
            except _Unhealthy as problem:
                if not wait.required:
                    for container in containers:
                        progress.event(container_event(container.name), WARNING,
                                       f'Skipped: optional dependency "{wait.service}" failed '
                                       "to start")
                    self.warnings.append(f'optional dependency "{wait.service}" failed to start: '
                                         f"{problem}")
                    return
                for container in containers:
                    progress.event(container_event(container.name), ERROR, "Error")
                raise ExecutionError(f"dependency failed to start: {problem}") from None
            time.sleep(POLL_SECONDS)

    def healthy(self, containers: Iterable[LiveContainer], fallback_running: bool) -> bool:
        """All healthy (or running, without a healthcheck, when `fallback_running`)?"""
        for container in containers:
            details = self.engine.inspect(container.id)
            state = details.get("State") or {}
            name = (details.get("Name") or container.name).lstrip("/")
            if state.get("Status") == "exited":
                raise _Unhealthy(f"container {name} exited ({state.get('ExitCode', 0)})")
            check = (details.get("Config") or {}).get("Healthcheck")
            health = state.get("Health")
            if fallback_running and (not check or (check.get("Test") or [""])[0] == "NONE"):
                if state.get("Status") != "running":
                    return False
                continue
            if not health:
                raise _Unhealthy(f"container {name} has no healthcheck configured")
            status = health.get("Status")
            if status == "healthy":
                continue
            if status == "unhealthy":
                raise _Unhealthy(f"container {name} is unhealthy")
            if status == "starting":
                return False
            raise _Unhealthy(f'container {name} had unexpected health status "{status}"')
        return True

    def completed(self, containers: Iterable[LiveContainer]) -> tuple[bool, int]:
        for container in containers:
            state = (self.engine.inspect(container.id).get("State") or {})
            if state.get("Status") == "exited":
                return True, int(state.get("ExitCode") or 0)
        return False, 0

    def wait_running_or_healthy(self, services: Iterable[str], timeout_seconds: float | None
                                ) -> None:
        """`up --wait`: every container of `services` running, and healthy if it has a check."""
        deadline = None if not timeout_seconds else time.monotonic() + timeout_seconds
        for service in services:
            containers = self.live.get(service, [])
            for container in containers:
                self.progress.event(container_event(container.name), WORKING, "Waiting")
            while True:
                if self.interrupted():
                    raise ExecutionError("interrupted")
                try:
                    if self.healthy(containers, fallback_running=True):
                        break
                except _Unhealthy as problem:
                    for container in containers:
                        self.progress.event(container_event(container.name), ERROR, "Error")
                    raise ExecutionError(str(problem)) from None
                if deadline is not None and time.monotonic() > deadline:
                    raise ExecutionError(f"application not healthy after {timeout_seconds}s")
                time.sleep(POLL_SECONDS)
            for container in containers:
                self.progress.event(container_event(container.name), DONE, "Healthy")


class _Unhealthy(Exception):
    pass


def run_parallel(jobs: list[Callable[[], None]], limit: int = 8) -> list[BaseException]:
    """Run jobs on up to `limit` threads; return the errors raised."""
    errors: list[BaseException] = []
    lock = threading.Lock()
    pending = list(jobs)

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                job = pending.pop(0)
            try:
                job()
            except Exception as error:
                with lock:
                    errors.append(error)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(limit, len(jobs)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    return errors
