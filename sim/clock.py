"""A node's clock in the simulator: virtual time, with an offset, drift and wall steps.

Rules:
- `now()` (monotonic) is Trio's virtual time scaled by (1 + drift) plus a fixed offset:
  it never goes backwards, whatever the faults (real monotonic clocks never step).
- `wall_time()` is the simulation epoch plus `now()` plus every step applied so far: a
  step models NTP jumping the wall clock, forwards or backwards.
- `sleep(seconds)` sleeps `seconds` of this node's time: a fast clock (drift > 0) wakes
  earlier in true (virtual) time, as a real fast oscillator would.
- In a world, `sleep` is an event in the world's queue that reschedules the sleeping
  task (`wait_task_rescheduled`), not a Trio deadline: waking costs no cancel scope and
  no `Cancelled` exception, and sleeps ending at one instant are rescheduled in the
  order they started (never in `id()` order, as equal Trio deadlines are); which of them
  runs first is then Trio's seeded choice. Cancelling the sleeper (a crash, a timeout)
  works as for `trio.sleep`: the abandoned wake-up is ignored when it comes due.
- Drift is a rate in seconds gained per second (1e-4 is 100 ppm); it must stay > -1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from runtime.host import SIMULATION_EPOCH_SECONDS, SimulatedClock

Schedule = Callable[..., None]


class _Sleeper:
    __slots__ = ("cancelled", "task")

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.cancelled = False


def _wake(sleeper: _Sleeper) -> None:
    if not sleeper.cancelled:
        sleeper.cancelled = True
        trio.lowlevel.reschedule(sleeper.task)


class SkewedClock(SimulatedClock):
    def __init__(
        self,
        offset_seconds: float = 0.0,
        drift_rate: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(offset_seconds)
        _check_drift(drift_rate)
        self.drift_rate = drift_rate
        # The world's `schedule(at_seconds, callback, *args)`; None outside a world.
        self._schedule = schedule
        self.wall_step_seconds = 0.0
        self._drift_origin_seconds = 0.0
        self._drift_accumulated_seconds = 0.0

    def _drift(self, true_seconds: float) -> float:
        return (
            self._drift_accumulated_seconds
            + (true_seconds - self._drift_origin_seconds) * self.drift_rate
        )

    def now(self) -> float:
        true_seconds = trio.current_time()
        return true_seconds + self.offset_seconds + self._drift(true_seconds)

    def wall_time(self) -> float:
        return SIMULATION_EPOCH_SECONDS + self.now() + self.wall_step_seconds

    async def sleep(self, seconds: float) -> None:
        true_seconds = max(0.0, seconds) / (1.0 + self.drift_rate)
        if self._schedule is None:
            await trio.sleep(true_seconds)
            return
        if true_seconds <= 0.0:
            await trio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(trio.lowlevel.current_task())
        self._schedule(trio.current_time() + true_seconds, _wake, sleeper)

        def abort(_: Any) -> trio.lowlevel.Abort:
            sleeper.cancelled = True
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def set_drift(self, drift_rate: float) -> None:
        """Change the drift rate from now on (time already gained is kept)."""
        _check_drift(drift_rate)
        true_seconds = trio.current_time()
        self._drift_accumulated_seconds = self._drift(true_seconds)
        self._drift_origin_seconds = true_seconds
        self.drift_rate = drift_rate

    def step_wall(self, seconds: float) -> None:
        """Jump the wall clock by `seconds` (negative steps go back in wall time)."""
        self.wall_step_seconds += seconds


def _check_drift(drift_rate: float) -> None:
    if not -0.5 < drift_rate < 0.5:
        raise ValueError(f"clock drift rate must be within (-0.5, 0.5), got {drift_rate}")


class VirtualClock(trio.abc.Clock):
    """Trio's clock in the simulator: virtual seconds that only the world's driver moves.

    Like `trio.testing.MockClock()` with rate 0 and no autojump, but `now_seconds` is a
    plain attribute: the network reads it on every frame, and `current_time()` (which
    Trio calls on every scheduler pass) costs no `perf_counter` call. Time never passes
    on its own: the driver jumps it once every task is blocked (see sim/world.py).
    """

    def __init__(self) -> None:
        self.now_seconds = 0.0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self.now_seconds

    def deadline_to_sleep_time(self, deadline: float) -> float:
        # Nothing is gained by sleeping for real: a deadline in the future is reached
        # only when the driver jumps there, which it does as soon as all tasks block.
        return 0.0 if deadline <= self.now_seconds else 999_999_999.0

    def jump(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time cannot go backwards ({seconds} s)")
        self.now_seconds += seconds

    def advance_to(self, seconds: float) -> None:
        """Set the virtual time to exactly `seconds` (never backwards)."""
        if seconds < self.now_seconds:
            raise ValueError(f"time cannot go backwards ({self.now_seconds} -> {seconds})")
        self.now_seconds = seconds
