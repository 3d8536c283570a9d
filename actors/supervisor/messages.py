"""Messages of the containers actor ("containers"), asked by the daemon's routes.

A container reference (`ref`) is what the API takes: a full id, a name (with or without
the leading "/"), or a unique id prefix. Errors are `actors.errdefs` errors carrying
Docker's status and text (NotFound `No such container: x`, Conflict, NotModified, ...).

Replies that are already API JSON travel as `JsonBody`. Streams (attach, logs, exec I/O,
export, archives) do not travel through the actor: it answers where the bytes are
(`AttachTarget`, `LogSource`, `FilesystemLease`, `ExecLaunch`) and the route pumps them.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.images.messages import ImageUserInfo
from runtime.actor import Ref
from runtime.codec import message

# --- queries used by other components -------------------------------------------------------


@message("containers.count")
@attrs.frozen
class CountContainers:
    pass


@message("containers.counts")
@attrs.frozen
class ContainerCounts:
    counts: dict[str, int]  # total, running, paused, stopped


@message("containers.image_users")
@attrs.frozen
class ListImageUsers:
    pass


@message("containers.image_users_reply")
@attrs.frozen
class ImageUsers:
    users: list[ImageUserInfo]


@message("containers.volume_users")
@attrs.frozen
class ListVolumeUsers:
    pass


@message("containers.volume_users_reply")
@attrs.frozen
class VolumeUsers:
    users: dict[str, list[str]]  # volume name -> names of the containers using it


# --- generic replies ----------------------------------------------------------------------


@message("containers.json")
@attrs.frozen
class JsonBody:
    body: Any


@message("containers.done")
@attrs.frozen
class Done:
    container_id: str = ""


# --- create, inspect, list ------------------------------------------------------------------


@message("containers.create")
@attrs.frozen
class CreateContainer:
    name: str  # "" for a generated name
    body: dict[str, Any]  # Config fields + HostConfig + NetworkingConfig


@message("containers.created")
@attrs.frozen
class Created:
    container_id: str
    warnings: list[str]


@message("containers.inspect")
@attrs.frozen
class InspectContainer:
    ref: str
    size: bool = False


@message("containers.list")
@attrs.frozen
class ListContainers:
    all: bool = False
    limit: int = -1
    size: bool = False
    filters: dict[str, list[str]] = attrs.field(factory=dict)


@message("containers.lookup")
@attrs.frozen
class LookupContainer:
    """Resolve a reference (404 if unknown); for routes that check before streaming."""

    ref: str


@message("containers.found")
@attrs.frozen
class ContainerInfo:
    container_id: str
    name: str
    tty: bool
    status: str
    image: str


# --- lifecycle --------------------------------------------------------------------------------


@message("containers.start")
@attrs.frozen
class StartContainer:
    ref: str


@message("containers.stop")
@attrs.frozen
class StopContainer:
    ref: str
    timeout_seconds: int | None = None  # None: Config.StopTimeout or 10; -1: forever
    signal: str = ""


@message("containers.restart")
@attrs.frozen
class RestartContainer:
    ref: str
    timeout_seconds: int | None = None
    signal: str = ""


@message("containers.kill")
@attrs.frozen
class KillContainer:
    ref: str
    signal: str = "SIGKILL"


@message("containers.wait")
@attrs.frozen
class WaitContainer:
    """Reply when the condition holds (not-running, next-exit, removed). With `inbox`, the
    actor answers at once (`WaitRegistered`, or the result if the condition already holds)
    and later tells the `WaitResult` to the inbox: the route registers before it flushes
    its headers, so no exit can slip between."""

    ref: str
    condition: str = "not-running"
    inbox: Ref | None = None


@message("containers.wait_registered")
@attrs.frozen
class WaitRegistered:
    container_id: str


@message("containers.waited")
@attrs.frozen
class WaitResult:
    status_code: int
    error: str = ""


@message("containers.remove")
@attrs.frozen
class RemoveContainer:
    ref: str
    force: bool = False
    volumes: bool = False


@message("containers.rename")
@attrs.frozen
class RenameContainer:
    ref: str
    name: str


@message("containers.pause")
@attrs.frozen
class PauseContainer:
    ref: str


@message("containers.unpause")
@attrs.frozen
class UnpauseContainer:
    ref: str


@message("containers.update")
@attrs.frozen
class UpdateContainer:
    ref: str
    body: dict[str, Any]


@message("containers.resize")
@attrs.frozen
class ResizeContainer:
    ref: str
    height: int
    width: int


@message("containers.prune")
@attrs.frozen
class PruneContainers:
    filters: dict[str, list[str]] = attrs.field(factory=dict)


# --- stdio, logs, inspection of the running container -----------------------------------


@message("containers.prepare_attach")
@attrs.frozen
class PrepareAttach:
    """Make the container attachable: a created or exited container gets its monitor now
    (so an attach before start sees all output)."""

    ref: str
    stream: bool = True


@message("containers.attach_target")
@attrs.frozen
class AttachTarget:
    container_id: str
    name: str
    tty: bool
    open_stdin: bool
    stdin_once: bool
    socket_path: str  # conmon's attach socket; "" when there is nothing to attach to
    log_path: str
    status: str
    event_attributes: dict[str, str]


@message("containers.log_source")
@attrs.frozen
class GetLogSource:
    ref: str


@message("containers.log_source_reply")
@attrs.frozen
class LogSource:
    container_id: str
    tty: bool
    log_path: str
    running: bool
    exit_path: str  # appears when the current run ends


@message("containers.top")
@attrs.frozen
class TopContainer:
    ref: str
    ps_args: str = ""


@message("containers.stats")
@attrs.frozen
class StatsSample:
    ref: str


@message("containers.changes")
@attrs.frozen
class ContainerChanges:
    ref: str


@message("containers.lease_fs")
@attrs.frozen
class LeaseFilesystem:
    """Access to the container's files (export, docker cp): a path that shows them, held
    until `ReleaseFilesystem`. `writable` for extraction."""

    ref: str
    writable: bool = False


@message("containers.fs_lease")
@attrs.frozen
class FilesystemLease:
    lease_id: str
    container_id: str
    root: str  # the merged root (for export: no volumes)
    view_root: str  # what `docker cp` sees: the container's own mount view when running
    mounts: list[dict[str, Any]]  # ResolvedMount.to_plain() of the container
    running: bool


@message("containers.release_fs")
@attrs.frozen
class ReleaseFilesystem:
    lease_id: str


@message("containers.commit")
@attrs.frozen
class CommitContainer:
    ref: str
    repository: str = ""
    tag: str = ""
    comment: str = ""
    author: str = ""
    pause: bool = True
    changes: list[str] = attrs.field(factory=list)
    config: dict[str, Any] = attrs.field(factory=dict)


@message("containers.committed")
@attrs.frozen
class Committed:
    image_id: str


# --- networks (asked by the network routes) --------------------------------------------------


@message("containers.connect_network")
@attrs.frozen
class ConnectNetwork:
    """`docker network connect`: add an endpoint (joined at once if running)."""

    ref: str
    network: str
    endpoint_config: dict[str, Any] = attrs.field(factory=dict)


@message("containers.disconnect_network")
@attrs.frozen
class DisconnectNetwork:
    ref: str
    network: str
    force: bool = False


# --- exec -----------------------------------------------------------------------------------


@message("containers.exec_create")
@attrs.frozen
class CreateExec:
    ref: str
    body: dict[str, Any]


@message("containers.exec_created")
@attrs.frozen
class ExecCreated:
    exec_id: str


@message("containers.exec_claim")
@attrs.frozen
class ClaimExec:
    """Mark an exec as starting (409 if it already ran or its container is not running)."""

    exec_id: str


@message("containers.exec_launch")
@attrs.frozen
class ExecLaunch:
    exec_id: str
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
    console_height: int
    console_width: int
    event_attributes: dict[str, str]


@message("containers.exec_started")
@attrs.frozen
class ExecStarted:
    exec_id: str
    pid: int


@message("containers.exec_finished")
@attrs.frozen
class ExecFinished:
    exec_id: str
    exit_code: int


@message("containers.exec_inspect")
@attrs.frozen
class InspectExec:
    exec_id: str
