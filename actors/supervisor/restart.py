"""Restart policies: whether a container that exited is started again, and after how long.

Rules (Docker's restart manager):
- `no`: never. `always`: always. `unless-stopped`: unless the user stopped it.
  `on-failure[:N]`: after a non-zero exit, at most N times (0: no limit).
- A container the user stopped (`docker stop`/`kill`) is never restarted by its policy.
- The delay starts at 100 ms and doubles on every restart, up to one minute; a run that
  lasted at least 10 s resets it to 100 ms.
- On daemon start, exited containers are started again if their policy is `always`, or
  `unless-stopped` and the user did not stop them, or `on-failure` after a failed exit the
  user did not cause.
"""

from __future__ import annotations

import attrs

from actors.errdefs import InvalidParameter

INITIAL_DELAY_SECONDS = 0.1
MAXIMUM_DELAY_SECONDS = 60.0
RESET_AFTER_RUNNING_SECONDS = 10.0
POLICIES = ("no", "always", "on-failure", "unless-stopped")


@attrs.frozen
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0

    @classmethod
    def parse(cls, name: str, maximum_retry_count: int = 0) -> RestartPolicy:
        """From HostConfig.RestartPolicy; InvalidParameter with moby's wording when bad."""
        name = name or "no"
        if name not in POLICIES:
            raise InvalidParameter(
                f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                "'on-failure', or 'unless-stopped'"
            )
        if maximum_retry_count < 0:
            raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
        if maximum_retry_count and name != "on-failure":
            raise InvalidParameter(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            )
        return cls(name, maximum_retry_count)

    @classmethod
    def from_host_config(cls, host_config: dict[str, object]) -> RestartPolicy:
        raw = host_config.get("RestartPolicy") or {}
        assert isinstance(raw, dict)
        return cls(str(raw.get("Name") or "no"), int(raw.get("MaximumRetryCount") or 0))

    @property
    def enabled(self) -> bool:
        return self.name != "no"


@attrs.frozen
class Decision:
    restart: bool
    delay_seconds: float  # the backoff to wait before starting again
    next_delay_seconds: float  # the backoff state to keep for the next exit


def decide_after_exit(
    policy: RestartPolicy,
    *,
    exit_code: int,
    stopped_by_user: bool,
    restart_count: int,
    ran_seconds: float,
    previous_delay_seconds: float,
) -> Decision:
    """Whether to restart a container whose process just exited, and the delay."""
    delay = previous_delay_seconds
    if ran_seconds >= RESET_AFTER_RUNNING_SECONDS:
        delay = 0.0
    delay = INITIAL_DELAY_SECONDS if delay <= 0 else min(delay * 2, MAXIMUM_DELAY_SECONDS)
    if stopped_by_user or not policy.enabled:
        return Decision(False, 0.0, previous_delay_seconds)
    if policy.name in ("always", "unless-stopped"):
        restart = True
    else:
        within_limit = policy.maximum_retry_count == 0 or restart_count < policy.maximum_retry_count
        restart = within_limit and exit_code != 0
    if not restart:
        return Decision(False, 0.0, previous_delay_seconds)
    return Decision(True, delay, delay)


def start_on_daemon_start(
    policy: RestartPolicy, *, exit_code: int, stopped_by_user: bool, ever_started: bool
) -> bool:
    """Whether an exited container is started when the daemon starts."""
    if not ever_started or not policy.enabled:
        return False
    if policy.name == "always":
        return True
    if stopped_by_user:
        return False
    if policy.name == "unless-stopped":
        return True
    return exit_code != 0
