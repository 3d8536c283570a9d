"""What `flotta compose` prints: log prefixes and colours, stream splitting, progress lines."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from actors.client.streams import frame
from actors.compose.logs import RAINBOW, LineSplitter, LogPrinter, display_name, stream_lines
from actors.compose.progress import (
    DONE,
    WORKING,
    JsonProgress,
    Progress,
    QuietProgress,
    TtyProgress,
    make_progress,
)


def test_prefix_pads_to_the_longest_name_plus_one():
    out = io.StringIO()
    printer = LogPrinter(out)
    printer.register("web-1")
    printer.register("db-1")
    printer.log("db-1", "ready")
    printer.log("web-1", "serving")
    assert out.getvalue() == "db-1  | ready\nweb-1 | serving\n"


def test_prefix_widens_when_a_longer_name_arrives():
    out = io.StringIO()
    printer = LogPrinter(out)
    printer.log("a-1", "one")
    printer.log("backend-1", "two")
    printer.log("a-1", "three")
    assert out.getvalue() == "a-1 | one\nbackend-1 | two\na-1       | three\n"


def test_colours_follow_composes_rainbow_in_registration_order():
    out = io.StringIO()
    printer = LogPrinter(out, color=True)
    for index in range(11):
        printer.register(f"s{index:02d}")
    printer.log("s00", "x")
    printer.log("s01", "y")
    printer.log("s10", "z")
    assert out.getvalue() == (
        "\x1b[36ms00 | \x1b[0mx\n"      # cyan
        "\x1b[33ms01 | \x1b[0my\n"      # yellow
        "\x1b[36ms10 | \x1b[0mz\n")     # round again
    assert RAINBOW[:5] == ("36", "33", "32", "35", "34")


def test_status_line_and_no_prefix():
    out = io.StringIO()
    printer = LogPrinter(out, color=True)
    printer.register("web-1")
    printer.status("web-1", "exited with code 0")
    assert out.getvalue() == "\x1b[36mweb-1 exited with code 0\x1b[0m\n"
    plain = io.StringIO()
    bare = LogPrinter(plain, prefix=False)
    bare.log("web-1", "line")
    assert plain.getvalue() == "line\n"


def test_stderr_lines_go_to_stderr():
    out, err = io.StringIO(), io.StringIO()
    printer = LogPrinter(out, err)
    printer.log("web-1", "oops", error=True)
    assert (out.getvalue(), err.getvalue()) == ("", "web-1 | oops\n")


def test_display_name_drops_the_project():
    assert display_name("demo", "/demo-web-1") == "web-1"
    assert display_name("demo", "custom") == "custom"


def test_multiplexed_stream_lines():
    data = (frame(1, b"hel") + frame(1, b"lo\nwor") + frame(2, b"bad\n") + frame(1, b"ld\n")
            + frame(1, b"tail"))
    # Cut the bytes anywhere: the result is the same.
    chunks = [data[i:i + 5] for i in range(0, len(data), 5)]
    assert list(stream_lines(chunks, tty=False)) == [
        (False, "hello"), (True, "bad"), (False, "world"), (False, "tail")]


def test_tty_stream_lines_drop_carriage_returns():
    assert list(stream_lines([b"a\r\nb", b"\r\n"], tty=True)) == [(False, "a"), (False, "b")]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n",
                                                 blacklist_categories=("Cs",)), max_size=20),
                max_size=10), st.integers(min_value=1, max_value=7))
def test_line_splitter_reassembles_lines_cut_anywhere(lines, cut):
    data = "".join(line + "\n" for line in lines).encode()
    splitter = LineSplitter()
    found = []
    for index in range(0, len(data), cut):
        found += splitter.feed(data[index:index + cut])
    found += splitter.finish()
    assert found == lines


def test_plain_progress_is_composes_line_format():
    out = io.StringIO()
    progress = Progress(out)
    progress.event("Network demo_default", WORKING, "Creating")
    progress.event("Container demo-web-1", DONE, "Started")
    assert out.getvalue() == (" Network demo_default  Creating\n"
                              " Container demo-web-1  Started\n")


def test_tty_progress_draws_a_block_with_ticks():
    out = io.StringIO()
    progress = TtyProgress(out, width=80)
    progress.event("Network demo_default", DONE, "Created")
    progress.event("Container demo-web-1", WORKING, "Starting")
    progress.event("Container demo-web-1", DONE, "Started")
    progress.close()
    final = out.getvalue().rsplit("[+] Running", 1)[1]
    assert final.startswith(" 2/2")
    assert "✔ Network demo_default  Created" in final
    assert "✔ Container demo-web-1  Started" in final


def test_json_and_quiet_progress():
    out = io.StringIO()
    JsonProgress(out).event("Container demo-web-1", DONE, "Started")
    assert json.loads(out.getvalue()) == {"dry_run": False, "id": "Container demo-web-1",
                                          "status": "Started"}
    quiet = io.StringIO()
    QuietProgress(quiet).event("x", DONE, "y")
    assert quiet.getvalue() == ""


def test_progress_modes():
    out = io.StringIO()
    assert type(make_progress("auto", out, is_terminal=False)) is Progress
    writer = make_progress("auto", out, is_terminal=True)
    assert isinstance(writer, TtyProgress)
    writer.close()
    assert type(make_progress("auto", out, is_terminal=True, ansi="never")) is Progress
    for mode, ansi, message in (("tty", "never", "can't use --progress tty while ANSI support "
                                                 "is disabled"),
                                ("plain", "always", "can't use --progress plain while ANSI "
                                                    "support is forced"),
                                ("fancy", "auto", 'unsupported --progress value "fancy"')):
        try:
            make_progress(mode, out, is_terminal=False, ansi=ansi)
        except ValueError as error:
            assert str(error) == message
        else:
            raise AssertionError(mode)
