"""Health checks of running containers: the probe loop and one probe through exec.

The state machine itself is in health.py; here a task per running container with a
check sleeps, runs the probe in the container (killed after its timeout), records the
result and announces status changes as `health_status` events.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

from actors.supervisor import execstart, health
from actors.supervisor.errors import SpecError
from actors.supervisor.monitor import ContainerNotFound, ContainerStateError, Executor
from actors.supervisor.records import ContainerRecord

HEALTH_OUTPUT_BYTES_MAX = 4096


class HealthProbes:
    """Mixin of ContainersActor (see the module docstring)."""

    executor: Executor
    records: dict[str, ContainerRecord]
    shared: dict[str, Any]

    if TYPE_CHECKING:

        def save(self, record: ContainerRecord) -> None: ...

        def event(self, record: ContainerRecord, action: str, **extra: str) -> None: ...

    async def health_loop(self, container_id: str, generation: int, probe: health.Probe) -> None:
        started = trio.current_time()
        state = health.HealthState()
        while True:
            in_start_period = trio.current_time() - started < probe.start_period_seconds
            await trio.sleep(health.next_delay_seconds(probe, state, in_start_period))
            result = await self.run_probe(container_id, probe)
            record = self.records.get(container_id)
            if record is None or record.state.generation != generation or record.state.status != "running":
                return
            in_start_period = trio.current_time() - started < probe.start_period_seconds
            new = health.record_result(state, probe, result, in_start_period)
            record.state.health = new.to_api()
            if new.status != state.status:
                self.save(record)
                self.event(record, f"health_status: {new.status}")
            state = new

    async def run_probe(self, container_id: str, probe: health.Probe) -> health.Result:
        from actors.supervisor.inspect import rfc3339_nano

        start = time.time_ns()
        output = bytearray()
        exit_code = -1
        try:
            session = await execstart.start(
                self.executor, self.shared["exec_sessions_dir"], container_id, probe.command
            )
        except (ContainerStateError, ContainerNotFound, OSError, SpecError) as error:
            return health.Result(rfc3339_nano(start), rfc3339_nano(time.time_ns()), -1, str(error))
        async with session:
            with trio.move_on_after(probe.timeout_seconds) as scope:
                async with trio.open_nursery() as nursery:
                    for stream in (session.stdout, session.stderr):
                        if stream is not None:
                            nursery.start_soon(_collect, stream, output)
                exit_code = await session.wait()
            if scope.cancelled_caught:
                await session.kill()
                return health.Result(
                    rfc3339_nano(start), rfc3339_nano(time.time_ns()), -1,
                    f"Health check exceeded timeout ({probe.timeout_seconds:g}s)",
                )  # fmt: skip
        text = bytes(output[:HEALTH_OUTPUT_BYTES_MAX]).decode(errors="replace")
        return health.Result(rfc3339_nano(start), rfc3339_nano(time.time_ns()), exit_code, text)


async def _collect(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        if len(into) < HEALTH_OUTPUT_BYTES_MAX:
            into.extend(chunk[: HEALTH_OUTPUT_BYTES_MAX - len(into)])
