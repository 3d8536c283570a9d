"""`docker exec` sessions' records, kept by the containers actor in memory only.

An exec is created (its settings recorded), claimed by the route that starts it (once:
a second start is a conflict), told its pid when it runs and its exit code when it ends.
Inspect shows `ExitCode: null` while it runs. Records go with their container, and only
the last FINISHED_EXECS_KEPT_PER_CONTAINER finished ones of a container are kept.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import attrs

from actors import errdefs
from actors.supervisor import createconfig
from actors.supervisor.messages import ExecCreated, ExecLaunch
from actors.supervisor.records import ContainerRecord

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


class ExecRegistry:
    """Mixin of ContainersActor: the exec records (see the module docstring)."""

    execs: dict[str, ExecRecord]
    records: dict[str, ContainerRecord]

    if TYPE_CHECKING:

        def event(self, record: ContainerRecord, action: str, **extra: str) -> None: ...

        def _current(self, container_id: str) -> ContainerRecord: ...

    def _exec_ids(self, container_id: str) -> list[str]:
        return [item.id for item in self.execs.values() if item.container_id == container_id]

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
