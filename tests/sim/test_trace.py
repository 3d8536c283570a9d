"""The trace: lines, a digest over all of them, a bounded tail."""

from __future__ import annotations

import hashlib
import io

import pytest

from sim.trace import Trace


def test_digest_is_sha256_of_the_full_trace_text() -> None:
    sink = io.StringIO()
    trace = Trace(ring_lines=10, sink=sink)
    for index in range(10_000):
        trace.emit(index * 0.001, "event", f"number={index}")
    digest = trace.digest()
    trace.close()
    text = sink.getvalue()
    assert text.count("\n") == 10_000 == trace.line_count
    assert text.splitlines()[1] == "0.001000 event number=1"
    assert hashlib.sha256(text.encode()).hexdigest() == digest


def test_memory_is_bounded_but_the_digest_covers_everything() -> None:
    short, long = Trace(ring_lines=5), Trace(ring_lines=5)
    for trace in (short, long):
        for index in range(100):
            trace.emit(0.0, "a", str(index))
    long.emit(0.0, "a", "one more")
    assert short.tail(3) == ["0.000000 a 97", "0.000000 a 98", "0.000000 a 99"]
    assert len(short.tail(50)) == 5
    assert short.tail(0) == []
    assert short.digest() != long.digest()


def test_buffer_appends_count_like_emits() -> None:
    direct, buffered = Trace(), Trace()
    direct.emit(1.5, "send", "x")
    buffered.buffer.append("1.500000 send x")
    buffered.flush_if_full()
    assert direct.digest() == buffered.digest()
    assert buffered.line_count == 1


def test_ring_must_hold_a_line() -> None:
    with pytest.raises(ValueError, match="ring_lines"):
        Trace(ring_lines=0)
