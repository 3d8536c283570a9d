"""Making Trio's scheduler deterministic and seeded, through its private switches.

Trio randomizes the order in which the tasks of one scheduling batch run. With
`trio._core._run._ALLOW_DETERMINISTIC_SCHEDULING` set, it instead sorts each batch by
task creation order and shuffles it with `trio._core._run._r`; seeding `_r` before
`trio.run` makes the interleaving a function of the seed (checked in trio 0.35).

These are private names: a Trio upgrade may move them. `make_deterministic` fails
loudly when they are gone, and tests/sim/test_determinism.py keeps a canary (tasks doing
`sleep(0)` in a loop must give the same order for the same seed) so a silent change of
behaviour is caught as well. The simulator does not rely on this for correctness where
it can avoid it (one driver task delivers everything in sequence order); the switch makes
whatever dependence is left reproducible.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import trio

from runtime.host import derive_seed


def _run_module() -> Any:
    module = getattr(getattr(trio, "_core", None), "_run", None)
    if (
        module is None
        or not hasattr(module, "_ALLOW_DETERMINISTIC_SCHEDULING")
        or not hasattr(module, "_r")
    ):
        raise RuntimeError(
            f"trio {trio.__version__} has no deterministic-scheduling switch "
            "(trio._core._run._ALLOW_DETERMINISTIC_SCHEDULING and _r): the simulator "
            "cannot be deterministic; pin trio or update sim/determinism.py"
        )
    return module


def make_deterministic(seed: int) -> None:
    """Switch Trio to seeded deterministic scheduling for the next `trio.run`."""
    module = _run_module()
    module._ALLOW_DETERMINISTIC_SCHEDULING = True
    module._r.seed(derive_seed(seed, "trio-scheduler"))


@contextlib.contextmanager
def deterministic_scheduling(seed: int) -> Iterator[None]:
    """Deterministic scheduling for the body; the previous switch value is restored."""
    module = _run_module()
    previous = module._ALLOW_DETERMINISTIC_SCHEDULING
    state = module._r.getstate()
    make_deterministic(seed)
    try:
        yield
    finally:
        module._ALLOW_DETERMINISTIC_SCHEDULING = previous
        module._r.setstate(state)


def scheduling_canary(seed: int, tasks: int = 5, steps: int = 10) -> list[tuple[int, int]]:
    """The order in which `tasks` tasks doing `steps` times `sleep(0)` run, under `seed`.

    In the spirit of pytest-trio's Hypothesis interaction test: with deterministic
    scheduling the same seed must give the same order every time, in every process.
    """
    order: list[tuple[int, int]] = []

    async def worker(index: int) -> None:
        for step in range(steps):
            order.append((index, step))
            await trio.sleep(0)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for index in range(tasks):
                nursery.start_soon(worker, index)

    with deterministic_scheduling(seed):
        trio.run(main)
    return order


def next_deadline_reader() -> Callable[[], float]:
    """A function returning Trio's next cancel-scope deadline (inf when none).

    Call inside `trio.run`. The public route, `current_statistics()`, also gathers I/O
    statistics and costs a few microseconds per call; the world's driver asks once per
    step, so it reads the run's deadline heap directly when that private path exists
    and agrees with the public answer, and falls back to the public route otherwise.
    """

    def public() -> float:
        statistics = trio.lowlevel.current_statistics()
        return trio.current_time() + statistics.seconds_to_next_deadline

    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT

        deadlines = GLOBAL_RUN_CONTEXT.runner.deadlines
        fast = deadlines.next_deadline
        if not math.isclose(fast(), public(), rel_tol=1e-12, abs_tol=1e-12):
            return public
    except (ImportError, AttributeError, RuntimeError):
        return public
    return fast
