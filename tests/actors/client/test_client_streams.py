"""Stream demultiplexing, detach keys, the attach pump, and progress rendering."""

import io
import itertools
import os
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client import progress, streams


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


frames = st.lists(st.tuples(st.sampled_from([0, 1, 2]), st.binary(max_size=100)), max_size=12)


@given(frames, st.lists(st.integers(0, 5000), max_size=20))
def test_demultiplexer_reassembles_any_segmentation(items, cuts):
    data = b"".join(streams.frame(stream, payload) for stream, payload in items)
    demultiplexer = streams.Demultiplexer()
    out = {0: b"", 1: b"", 2: b""}
    for piece in _cut(data, cuts):
        for stream, chunk in demultiplexer.feed(piece):
            out[stream] += chunk
    demultiplexer.finish()
    for stream in (0, 1, 2):
        assert out[stream] == b"".join(p for s, p in items if s == stream)


@given(frames, st.binary(min_size=1, max_size=50), st.lists(st.integers(0, 5000), max_size=10))
def test_system_error_frame_raises_with_its_text(items, message, cuts):
    data = b"".join(streams.frame(s, p) for s, p in items) + streams.frame(3, b"boom: " +
                                                                           message)
    demultiplexer = streams.Demultiplexer()
    with pytest.raises(streams.StreamError) as caught:
        for piece in _cut(data, cuts):
            demultiplexer.feed(piece)
    expected = (b"boom: " + message).decode("utf-8", "replace").strip()
    assert str(caught.value) == expected


@given(frames, st.integers(1, 7))
def test_truncated_frame_is_reported(items, missing):
    data = b"".join(streams.frame(s, p) for s, p in items) + streams.frame(1, b"12345678")
    demultiplexer = streams.Demultiplexer()
    demultiplexer.feed(data[:-missing])
    with pytest.raises(streams.StreamError):
        demultiplexer.finish()


def test_unknown_stream_number_is_an_error():
    with pytest.raises(streams.StreamError, match="unrecognized stream: 7"):
        streams.Demultiplexer().feed(b"\x07\x00\x00\x00\x00\x00\x00\x01x")


def test_copy_output_routes_streams():
    out, err = io.BytesIO(), io.BytesIO()
    data = streams.frame(1, b"o1") + streams.frame(2, b"e1") + streams.frame(0, b"i")
    streams.copy_output([data[:3], data[3:]], False, out, err)
    assert (out.getvalue(), err.getvalue()) == (b"o1i", b"e1")
    out = io.BytesIO()
    streams.copy_output([b"\x01raw"], True, out, err)
    assert out.getvalue() == b"\x01raw"


@given(st.binary(max_size=60), st.lists(st.integers(0, 100), max_size=8))
def test_detach_detector_passes_everything_without_the_sequence(data, cuts):
    data = data.replace(b"\x10\x11", b"")
    detector = streams.DetachDetector(b"\x10\x11")
    forwarded = b""
    for piece in _cut(data, cuts):
        out, detached = detector.feed(piece)
        assert not detached
        forwarded += out
    assert forwarded + detector.flush() == data


@given(st.binary(max_size=30), st.binary(max_size=30), st.lists(st.integers(0, 100),
                                                                 max_size=8))
def test_detach_detector_stops_at_the_sequence(before, after, cuts):
    before = before.replace(b"\x10", b"")
    data = before + b"\x10\x11" + after
    detector = streams.DetachDetector(b"\x10\x11")
    forwarded = b""
    for piece in _cut(data, cuts):
        out, detached = detector.feed(piece)
        forwarded += out
        if detached:
            break
    assert detached
    assert forwarded == before


def test_detach_detector_flushes_a_broken_prefix():
    detector = streams.DetachDetector(b"\x10\x11")
    assert detector.feed(b"a\x10") == (b"a", False)
    assert detector.feed(b"b") == (b"\x10b", False)
    assert detector.feed(b"\x10\x10\x11") == (b"\x10", True)


class _Stream:
    """A HijackedStream over one end of a socketpair."""

    def __init__(self, sock):
        self.sock = sock
        self.write_closed = False

    def recv(self, size=65536):
        try:
            return self.sock.recv(size)
        except OSError:
            return b""

    def sendall(self, data):
        self.sock.sendall(data)

    def close_write(self):
        self.write_closed = True
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()


def _session(stdin_data: bytes, server, keys=streams.DEFAULT_DETACH_KEYS):
    client_side, server_side = socket.socketpair()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, stdin_data)
    os.close(write_fd)
    out, err = io.BytesIO(), io.BytesIO()
    thread = threading.Thread(target=server, args=(server_side,))
    thread.start()
    stream = _Stream(client_side)
    try:
        outcome = streams.AttachSession(stream, False, read_fd, out, err, keys).run()
    finally:
        thread.join(10)
        os.close(read_fd)
        server_side.close()
    return outcome, out.getvalue(), err.getvalue(), stream


def test_attach_session_half_closes_on_stdin_eof():
    def server(sock):
        received = b""
        while True:
            piece = sock.recv(100)
            if not piece:
                break
            received += piece
        sock.sendall(streams.frame(1, b"got " + received))
        sock.close()

    outcome, out, _err, stream = _session(b"hello", server)
    assert outcome == "eof"
    assert out == b"got hello"
    assert stream.write_closed


def test_attach_session_detaches_on_the_key_sequence():
    def server(sock):
        received = b""
        while True:
            piece = sock.recv(100)
            if not piece:
                break
            received += piece
        server.received = received

    outcome, _out, _err, _stream = _session(b"ls\n\x10\x11ignored", server)
    assert outcome == "detached"
    assert server.received == b"ls\n"


def _render(messages, terminal):
    out = io.StringIO()
    progress.display_stream(messages, out, terminal, width=200)
    return out.getvalue()


PULL = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "l1"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "l2"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 1000},
     "progress": "[==>  ]", "id": "l1"},
    {"status": "Download complete", "progressDetail": {}, "id": "l1"},
    {"status": "Pull complete", "progressDetail": {}, "id": "l2"},
    {"status": "Digest: sha256:abc"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def test_progress_without_terminal_prints_status_lines_only():
    assert _render(PULL, False) == (
        "latest: Pulling from library/busybox\nl1: Pulling fs layer\nl2: Pulling fs layer\n"
        "l1: Download complete\nl2: Pull complete\nDigest: sha256:abc\n"
        "Status: Downloaded newer image for busybox:latest\n")


def test_progress_on_terminal_redraws_layer_lines_in_place():
    text = _render(PULL, True)
    assert "\x1b[2K\rl1: Pulling fs layer \r" in text
    # The second update of l1 moves up two lines (l1 is above l2), redraws, moves back.
    assert "\x1b[2A\x1b[2K\rl1: Downloading [=========================>" in text
    assert "500B/1kB" in text
    assert text.endswith("Status: Downloaded newer image for busybox:latest\n")


def test_progress_error_detail_stops_with_its_code():
    with pytest.raises(progress.StreamMessageError) as caught:
        _render([{"status": "x"}, {"errorDetail": {"code": 3, "message": "bad"}, "error": "bad"},
                 {"status": "never"}], False)
    assert (caught.value.message, caught.value.code) == ("bad", 3)
    with pytest.raises(progress.StreamMessageError, match="authentication is required"):
        _render([{"errorDetail": {"code": 401, "message": "denied"}}], False)


def test_progress_aux_goes_to_the_callback_and_stream_is_printed():
    seen = []
    out = io.StringIO()
    progress.display_stream([{"aux": {"ID": "sha256:1"}}, {"stream": "Step 1/1\n"}], out, False,
                            aux_callback=seen.append)
    assert seen == [{"ID": "sha256:1"}]
    assert out.getvalue() == "Step 1/1\n"


@pytest.mark.parametrize(("detail", "width", "text"), [
    ({"current": 0, "total": 0}, 200, ""),
    ({"current": 2048}, 200, " 2.048kB"),
    ({"current": 5, "units": "files"}, 200, "5 files"),
    ({"current": 500, "total": 1000}, 80, "    500B/1kB"),
    ({"current": 1500, "total": 1000}, 80, "   1.5kB"),
    ({"current": 3, "total": 4, "units": "steps"}, 80, "3/4 steps"),
    ({"current": 1000, "total": 1000}, 200, "[" + "=" * 50 + ">] " + "     1kB/1kB"),
])
def test_progress_bar_text(detail, width, text):
    assert progress.progress_text(detail, width) == text
