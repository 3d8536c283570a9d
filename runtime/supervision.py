"""One-for-one supervision: a crashed actor is restarted, within a budget.

Rules:
- A crash (an exception out of `started` or `receive`, or out of one of the actor's
  background tasks) is logged with the actor's name and the message it was handling.
- The actor is rebuilt from its factory after a backoff that doubles from
  `backoff_initial_seconds` up to `backoff_max_seconds`, with jitter from the host's
  seeded random source; its mailbox is kept, so queued messages are not lost.
- More than `restarts_max` crashes within `window_seconds` escalate: the supervisor
  raises `Escalation`, which crashes the parent (or, at the root, the node).
- An actor that returns normally (it called `stop()`) is not restarted.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class RestartPolicy:
    restarts_max: int = 5
    window_seconds: float = 30.0
    backoff_initial_seconds: float = 0.05
    backoff_max_seconds: float = 5.0
    restart: bool = True

    def backoff_seconds(self, attempt: int, jitter: float) -> float:
        """Backoff before restart number `attempt` (1-based); `jitter` in [0, 1)."""
        base = min(self.backoff_max_seconds, self.backoff_initial_seconds * (2 ** (attempt - 1)))
        return base * (0.5 + jitter / 2)


NEVER_RESTART = RestartPolicy(restart=False)


class RestartBudget:
    """Crash times inside the sliding window; decides between restart and escalate."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.crash_times: list[float] = []

    def record_crash(self, now: float) -> bool:
        """Record a crash at `now`; True when a restart is still within budget."""
        if not self.policy.restart:
            return False
        horizon = now - self.policy.window_seconds
        self.crash_times = [t for t in self.crash_times if t > horizon]
        self.crash_times.append(now)
        return len(self.crash_times) <= self.policy.restarts_max

    @property
    def attempt(self) -> int:
        return len(self.crash_times)
