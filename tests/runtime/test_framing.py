"""Length-prefixed framing: any split of the byte stream yields the same frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.framing import FrameDecoder, FrameTooLarge, frame, frames


@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_frames_survive_any_split(payloads: list[bytes], data: st.DataObject) -> None:
    stream = frames(payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    out: list[bytes] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[previous:cut]))
        previous = cut
    assert out == payloads
    assert decoder.pending_bytes == 0


def test_single_frame_matches_batch_encoding() -> None:
    assert frame(b"abc") + frame(b"") == frames([b"abc", b""])


def test_oversized_header_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(frame_bytes_max=1024)
    with pytest.raises(FrameTooLarge, match="frame of 1048576 bytes"):
        decoder.feed((1024 * 1024).to_bytes(4, "big"))


def test_sending_an_oversized_frame_is_refused() -> None:
    with pytest.raises(FrameTooLarge):
        frame(b"x" * 11, frame_bytes_max=10)


def test_long_streams_do_not_keep_consumed_bytes() -> None:
    decoder = FrameDecoder()
    for _ in range(1000):
        assert decoder.feed(frame(b"y" * 200)) == [b"y" * 200]
    assert decoder.pending_bytes == 0
