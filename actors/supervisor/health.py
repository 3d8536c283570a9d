"""Health checks: the probe's settings and the state machine behind State.Health.

Rules (Docker's):
- A container with a check starts `starting`. Each probe runs after `interval` (during the
  start period, after `start_interval`), killed after `timeout`.
- Exit code 0: `healthy`, FailingStreak 0. Any other result (exit 1, a timeout, an error
  running the probe) adds to FailingStreak; after `retries` failures in a row `unhealthy`.
  A failure inside the start period does not count while the container is still
  `starting`; a success ends the start period.
- Log keeps the last five results {Start, End, ExitCode, Output}; output is cut at 4 KiB.
- A status change is announced as the event `health_status: <status>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

DEFAULT_INTERVAL_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_START_INTERVAL_SECONDS = 5.0
DEFAULT_RETRIES = 3
LOG_ENTRIES_MAX = 5
OUTPUT_BYTES_MAX = 4096

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"


@attrs.frozen
class Probe:
    command: tuple[str, ...]  # what to exec in the container
    interval_seconds: float
    timeout_seconds: float
    start_period_seconds: float
    start_interval_seconds: float
    retries: int


def probe_from_config(check: Mapping[str, Any] | None, shell: list[str] | None = None) -> Probe | None:
    """The probe a Config.Healthcheck describes; None when there is none or it is NONE."""
    if not check:
        return None
    test = list(check.get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        command = tuple(test[1:])
    elif test[0] == "CMD-SHELL":
        command = (*(shell or ["/bin/sh", "-c"]), " ".join(test[1:]))
    else:
        return None
    if not command:
        return None

    def seconds(field: str, default: float) -> float:
        value = check.get(field) or 0
        return value / 1e9 if value else default

    return Probe(
        command=command,
        interval_seconds=seconds("Interval", DEFAULT_INTERVAL_SECONDS),
        timeout_seconds=seconds("Timeout", DEFAULT_TIMEOUT_SECONDS),
        start_period_seconds=seconds("StartPeriod", 0.0),
        start_interval_seconds=seconds("StartInterval", DEFAULT_START_INTERVAL_SECONDS),
        retries=int(check.get("Retries") or DEFAULT_RETRIES),
    )


@attrs.frozen
class Result:
    start: str  # RFC 3339
    end: str
    exit_code: int
    output: str

    def to_api(self) -> dict[str, Any]:
        return {"Start": self.start, "End": self.end, "ExitCode": self.exit_code, "Output": self.output}


@attrs.frozen
class HealthState:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[Result, ...] = ()

    def to_api(self) -> dict[str, Any]:
        return {
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": [entry.to_api() for entry in self.log],
        }

    @classmethod
    def from_api(cls, value: Mapping[str, Any]) -> HealthState:
        return cls(
            str(value.get("Status", STARTING)),
            int(value.get("FailingStreak", 0)),
            tuple(
                Result(str(e["Start"]), str(e["End"]), int(e["ExitCode"]), str(e["Output"]))
                for e in value.get("Log") or []
            ),
        )


def record_result(state: HealthState, probe: Probe, result: Result, in_start_period: bool) -> HealthState:
    """The state after one probe result (see the module docstring)."""
    log = (*state.log, attrs.evolve(result, output=_clip(result.output)))[-LOG_ENTRIES_MAX:]
    if result.exit_code == 0:
        return HealthState(HEALTHY, 0, log)
    if in_start_period and state.status == STARTING:
        return HealthState(state.status, state.failing_streak, log)
    streak = state.failing_streak + 1
    status = UNHEALTHY if streak >= probe.retries else state.status
    return HealthState(status, streak, log)


def _clip(output: str) -> str:
    data = output.encode(errors="replace")
    if len(data) <= OUTPUT_BYTES_MAX:
        return output
    return data[:OUTPUT_BYTES_MAX].decode(errors="ignore")


def next_delay_seconds(probe: Probe, state: HealthState, in_start_period: bool) -> float:
    """How long to sleep before the next probe."""
    if in_start_period and state.status == STARTING:
        return probe.start_interval_seconds
    return probe.interval_seconds
