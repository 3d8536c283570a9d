"""The states a container can be in, as the executor reports them, and its errors."""

from __future__ import annotations

import enum
import signal as signals

import attrs

LOST_EXIT_CODE = 255


class ContainerNotFound(LookupError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"No such container: {container_id}")
        self.container_id = container_id


class ContainerStateError(Exception):
    """The operation does not fit the container's current state (Docker's 409/304)."""


class ContainerStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    EXITED = "exited"


@attrs.frozen
class ExitStatus:
    exit_code: int
    oom_killed: bool
    finished_at_ns: int | None
    error: str = ""


@attrs.frozen
class ContainerState:
    id: str
    status: ContainerStatus
    pid: int  # the init process on the host; 0 unless created, running or paused
    exit_code: int | None
    oom_killed: bool
    created_at_ns: int
    started_at_ns: int | None
    finished_at_ns: int | None
    conmon_pid: int | None
    error: str = ""


def parse_signal(value: int | str) -> int:
    """A signal number from 9, "9", "KILL" or "SIGKILL" (ValueError naming the input)."""
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().upper()
        if text.isdigit():
            number = int(text)
        else:
            name = text if text.startswith("SIG") else "SIG" + text
            try:
                number = int(signals.Signals[name])
            except KeyError:
                raise ValueError(f"invalid signal: {value!r}") from None
    if not 0 < number < signals.NSIG:
        raise ValueError(f"invalid signal: {value!r}")
    return number
