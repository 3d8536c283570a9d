"""The k8s-file log reader: parsing, joining partial lines, tail/since/until, follow."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from actors.supervisor import logs
from actors.supervisor.attach import Stream

BASE_NS = 1_700_000_000_000_000_000


def write_chunks(path: Path, chunks: list[tuple[Stream, int, bytes]]) -> None:
    with open(path, "ab") as handle:
        for stream, time_ns, data in chunks:
            handle.write(logs.format_record(stream, time_ns, data))


async def entries(path: Path, **options: object) -> list[logs.LogEntry]:
    return [entry async for entry in logs.read_logs(path, **options)]  # type: ignore[arg-type]


def test_parse_timestamp_with_offsets_and_fractions():
    assert logs.parse_timestamp(b"1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert logs.parse_timestamp(b"1970-01-01T01:00:00.000000001+01:00") == 1
    assert logs.parse_timestamp(b"1969-12-31T23:00:00-01:00") == 0
    assert logs.parse_timestamp(b"2026-11-28T15:49:06.628692786+00:00") % 10**9 == 628692786
    for bad in (b"yesterday", b"2026-11-28T15:49:06.62x+00:00", b"2026-11-28 15:49:06Z", b""):
        with pytest.raises(logs.LogFormatError):
            logs.parse_timestamp(bad)


def test_parse_record_as_conmon_writes_it():
    record = logs.parse_record(b"2026-11-28T15:49:06.628692786+00:00 stderr P half a line")
    assert record == logs.LogRecord(Stream.STDERR, record.time_ns, True, b"half a line")
    empty = logs.parse_record(b"2026-11-28T15:49:06.628692786+00:00 stdout F ")
    assert empty.text == b"" and not empty.partial
    with pytest.raises(logs.LogFormatError):
        logs.parse_record(b"2026-11-28T15:49:06Z stdin F x")
    with pytest.raises(logs.LogFormatError):
        logs.parse_record(b"2026-11-28T15:49:06Z stdout X x")


# What a container writes: pieces of output on two streams, in read-sized chunks.
chunk_strategy = st.lists(
    st.tuples(
        st.sampled_from([Stream.STDOUT, Stream.STDERR]),
        st.binary(min_size=1, max_size=40).map(lambda data: data.replace(b"\r", b"")),
    ),
    max_size=30,
)


def expected_lines(chunks: list[tuple[Stream, bytes]]) -> dict[Stream, list[bytes]]:
    joined: dict[Stream, bytes] = {Stream.STDOUT: b"", Stream.STDERR: b""}
    for stream, data in chunks:
        joined[stream] += data
    return {stream: data.splitlines(keepends=True) for stream, data in joined.items()}


@given(chunk_strategy)
def test_joining_partial_records_restores_every_line(chunks):
    raw = b"".join(
        logs.format_record(stream, BASE_NS + index, data)
        for index, (stream, data) in enumerate(chunks)
    )
    parsed = logs.parse_log_bytes(raw)
    per_stream: dict[Stream, list[bytes]] = {Stream.STDOUT: [], Stream.STDERR: []}
    for entry in parsed:
        per_stream[entry.stream].append(entry.data)
    assert per_stream == expected_lines(chunks)


@given(chunk_strategy, st.integers(min_value=0, max_value=12))
async def test_tail_keeps_the_last_lines(tmp_path_factory, chunks, tail):
    path = tmp_path_factory.mktemp("logs") / "container.log"
    write_chunks(path, [(stream, BASE_NS + i, data) for i, (stream, data) in enumerate(chunks)])
    everything = await entries(path)
    tailed = await entries(path, tail=tail)
    assert tailed == (everything[-tail:] if tail else [])


async def test_tail_reads_from_the_end_of_a_big_file(tmp_path):
    path = tmp_path / "container.log"
    write_chunks(path, [(Stream.STDOUT, BASE_NS + i, b"line %d\n" % i) for i in range(20_000)])
    tailed = await entries(path, tail=3)
    assert [entry.data for entry in tailed] == [b"line 19997\n", b"line 19998\n", b"line 19999\n"]


async def test_tail_across_a_long_partial_line(tmp_path):
    path = tmp_path / "container.log"
    write_chunks(path, [(Stream.STDOUT, BASE_NS, b"first\n")])
    write_chunks(path, [(Stream.STDOUT, BASE_NS + i, b"x" * 8192) for i in range(1, 40)])
    write_chunks(path, [(Stream.STDOUT, BASE_NS + 50, b"end\n")])
    tailed = await entries(path, tail=1)
    assert [entry.data for entry in tailed] == [b"x" * 8192 * 39 + b"end\n"]
    assert tailed[0].time_ns == BASE_NS + 1


async def test_since_until_and_timestamps(tmp_path):
    path = tmp_path / "container.log"
    write_chunks(
        path, [(Stream.STDOUT, BASE_NS + i * 1_000_000_000, b"%d\n" % i) for i in range(5)]
    )
    window = await entries(path, since_ns=BASE_NS + 1_000_000_000, until_ns=BASE_NS + 3_000_000_000)
    assert [entry.data for entry in window] == [b"1\n", b"2\n", b"3\n"]
    stamped = await entries(path, tail=1, timestamps=True)
    assert stamped[0].data == b"2023-11-14T22:13:24.000000000Z 4\n"


async def test_missing_file_and_garbage_lines(tmp_path):
    assert await entries(tmp_path / "absent.log") == []
    path = tmp_path / "container.log"
    path.write_bytes(
        b"garbage\n" + logs.format_record(Stream.STDERR, BASE_NS, b"ok\n") + b"\x00\x01\n"
    )
    assert [(e.stream, e.data) for e in await entries(path)] == [(Stream.STDERR, b"ok\n")]


async def test_follow_until_finished(tmp_path):
    path = tmp_path / "container.log"
    path.write_bytes(b"")
    finished = False
    received: list[bytes] = []

    async def follower(task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for entry in logs.read_logs(path, follow=True, finished=lambda: finished):
            received.append(entry.data)

    async with trio.open_nursery() as nursery:
        await nursery.start(follower)
        write_chunks(path, [(Stream.STDOUT, BASE_NS, b"one\n")])
        while received != [b"one\n"]:
            await trio.sleep(0.01)
        write_chunks(
            path, [(Stream.STDOUT, BASE_NS + 1, b"tw"), (Stream.STDOUT, BASE_NS + 2, b"o\n")]
        )
        write_chunks(path, [(Stream.STDERR, BASE_NS + 3, b"last")])
        finished = True
    # The follower saw everything written before the container finished, then returned.
    assert received == [b"one\n", b"two\n", b"last"]


async def test_follow_continues_in_a_rotated_file(tmp_path):
    path = tmp_path / "container.log"
    write_chunks(path, [(Stream.STDOUT, BASE_NS, b"old\n")])
    finished = False
    received: list[bytes] = []

    async def follower(task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for entry in logs.read_logs(path, follow=True, finished=lambda: finished):
            received.append(entry.data)

    async with trio.open_nursery() as nursery:
        await nursery.start(follower)
        while received != [b"old\n"]:
            await trio.sleep(0.01)
        replacement = tmp_path / "container.log.tmp"
        write_chunks(replacement, [(Stream.STDOUT, BASE_NS + 1, b"new\n")])
        replacement.rename(path)
        while received != [b"old\n", b"new\n"]:
            await trio.sleep(0.01)
        finished = True
    assert received == [b"old\n", b"new\n"]


@given(
    st.integers(min_value=0, max_value=4_000_000_000 * 10**9),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_timestamps_round_trip_with_any_offset(time_ns, offset_minutes):
    import time as time_module

    assert logs.parse_timestamp(logs.format_rfc3339_nano(time_ns).encode()) == time_ns
    seconds, nanoseconds = divmod(time_ns + offset_minutes * 60 * 10**9, 10**9)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    local = time_module.strftime("%Y-%m-%dT%H:%M:%S", time_module.gmtime(seconds))
    text = f"{local}.{nanoseconds:09d}{sign}{hours:02d}:{minutes:02d}"
    assert logs.parse_timestamp(text.encode()) == time_ns
