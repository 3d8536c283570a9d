"""Hypothesis properties of the whole pipeline and the Go-compatibility helpers.

- Parsing is total: any text or bytes gives a Dockerfile or raises DockerfileError.
- Planning and evaluating a parsed file raise only the builder's own errors.
- Go's %q output is a valid string literal for the same text; durations round-trip.
"""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.builder.errors import BuildError, DockerfileError
from actors.builder.gocompat import (
    DurationError,
    go_clean,
    go_format_duration,
    go_join,
    go_quote,
    go_quote_rune,
    go_trim_space,
    parse_go_duration,
)
from actors.builder.imageconfig import ImageConfig
from actors.builder.parser import parse_dockerfile
from actors.builder.plan import BaseImage, BuildOptions, evaluate_stage, plan_build

KEYWORDS = [
    "FROM", "RUN", "CMD", "ENTRYPOINT", "SHELL", "ENV", "ARG", "LABEL", "EXPOSE", "WORKDIR",
    "USER", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "COPY", "ADD", "ONBUILD", "MAINTAINER",
    "from", "Run", "BOGUS",
]
FRAGMENTS = [
    "a", "b=c", "$A", "${B:-x}", "${C:?}", '"q"', "'s'", "\\", "`", "<<EOF", "<<-'E'", "EOF",
    "E", "\t", "--from=0", "--chown=1:1", "--chmod=755", "--platform=linux/arm64", "AS x",
    "as y", '["a", "b"]', "[1]", "[", "]", "NONE", "CMD", "--interval=1s", "#", "80/tcp",
    "x:y", "/abs", "..", "*", "=", "SIGTERM", "0",
]

dockerfile_lines = st.lists(
    st.one_of(
        st.builds(
            lambda keyword, words, tail: " ".join([keyword, *words]) + tail,
            st.sampled_from(KEYWORDS),
            st.lists(st.sampled_from(FRAGMENTS), max_size=5),
            st.sampled_from(["", " \\", "\\", "  "]),
        ),
        st.sampled_from(["", "# comment", "# escape=`", "# syntax=x", "EOF", "E", "\tE", "  \\"]),
        st.text(max_size=20),
    ),
    max_size=12,
).map("\n".join)


@given(st.text(max_size=300))
def test_parsing_arbitrary_text_is_total(text):
    try:
        parse_dockerfile(text)
    except DockerfileError:
        pass


@given(st.binary(max_size=300))
def test_parsing_arbitrary_bytes_is_total(data):
    try:
        parse_dockerfile(data)
    except DockerfileError:
        pass


@settings(max_examples=300, deadline=None)
@given(dockerfile_lines, st.dictionaries(st.sampled_from(["A", "B", "C", "HTTP_PROXY"]), st.none() | st.text(max_size=5)))
def test_pipeline_raises_only_builder_errors(text, build_args):
    try:
        dockerfile = parse_dockerfile(text)
    except DockerfileError as error:
        assert error.line is None or error.line >= 1
        return
    try:
        plan = plan_build(dockerfile, BuildOptions(build_args=build_args))
        for stage in plan.stages:
            evaluate_stage(plan, stage, BaseImage(ImageConfig(on_build=("RUN x",))))
    except (BuildError, DockerfileError):
        pass


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_go_quote_is_a_valid_literal_of_the_same_text(text):
    quoted = go_quote(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert ast.literal_eval(quoted) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain", '"plain"'), ('a"b\\c', '"a\\"b\\\\c"'), ("\n\t\x00\x7f", '"\\n\\t\\x00\\x7f"'),
     ("caf\u00e9", '"caf\u00e9"'), ("\u00a0", '"\\u00a0"'), ("\U0001f600", '"\U0001f600"'),
     ("\u200b", '"\\u200b"'), ("\udce9", '"\\xe9"')],
)
def test_go_quote_table(text, expected):
    assert go_quote(text) == expected


@pytest.mark.parametrize(("value", "expected"), [(0, "'\\x00'"), (3, "'\\x03'"), (65, "'A'"), (39, "'\\''"), (-1, "'\ufffd'")])
def test_go_quote_rune(value, expected):
    assert go_quote_rune(value) == expected


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [(0, "0s"), (1, "1ns"), (1_100, "1.1\u00b5s"), (2_200_000, "2.2ms"), (1_000_000_000, "1s"),
     (1_500_000_000, "1.5s"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"),
     (-5 * 10**9, "-5s"), (3723 * 10**9 + 1, "1h2m3.000000001s")],
)
def test_duration_format(nanoseconds, text):
    assert go_format_duration(nanoseconds) == text


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_duration_round_trip(nanoseconds):
    assert parse_go_duration(go_format_duration(nanoseconds)) == nanoseconds


@pytest.mark.parametrize("text", ["", "1", "s", "1.2.3s", "1x", "--1s", ".s", "9999999999999999999h"])
def test_bad_durations(text):
    with pytest.raises(DurationError):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", "."), ("/", "/"), ("a//b/./c/..", "a/b"), ("/../a", "/a"), ("../../a", "../../a"),
     ("a/../..", ".."), ("//x//", "/x")],
)
def test_go_clean(path, expected):
    assert go_clean(path) == expected


def test_go_join_and_trim():
    assert go_join("/", "", "a", "../b") == "/b"
    assert go_join("", "") == ""
    assert go_trim_space("\x85 a \u3000") == "a"
    assert go_trim_space("\x1c a") == "\x1c a"
