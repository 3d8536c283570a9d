"""YAML read as Docker Compose reads it, and Compose's units."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.compose.units import (
    UnitError,
    format_duration,
    parse_bytes,
    parse_cpus,
    parse_duration,
)
from actors.compose.yamlload import Override, Reset, YamlProblem, dump_yaml, load_documents


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("80:80", "80:80"),
        ("1:20:30", "1:20:30"),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("2024-01-01", "2024-01-01"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("null", None),
        ("~", None),
        ("", None),
        ("42", 42),
        ("-7", -7),
        ("0o17", 15),
        ("0x1F", 31),
        ("0755", 755),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("=", "="),
        ("1_000", "1_000"),
    ],
)
def test_plain_scalars_follow_yaml_1_2(text: str, value: object) -> None:
    assert load_documents(f"key: {text}\n", "f.yaml") == [{"key": value}]


def test_special_floats() -> None:
    loaded = load_documents("a: .inf\nb: -.Inf\nc: .nan\n", "f.yaml")[0]
    assert loaded["a"] == math.inf and loaded["b"] == -math.inf and math.isnan(loaded["c"])


def test_keys_become_strings() -> None:
    assert load_documents("80: a\ntrue: b\n1.5: c\nNULL: d\n", "f.yaml") == [
        {"80": "a", "true": "b", "1.5": "c", "NULL": "d"}
    ]


def test_duplicate_keys_are_errors_with_lines() -> None:
    with pytest.raises(YamlProblem) as caught:
        load_documents("services:\n  web:\n    image: a\n    image: b\n", "compose.yaml")
    problem = caught.value.problem
    assert problem.file == "compose.yaml"
    assert problem.line == 4
    assert 'mapping key "image" already defined at line 3' in problem.message


def test_merge_keys_and_anchors() -> None:
    text = """
x-base: &base
  image: busybox
  environment: {A: "1"}
services:
  web:
    <<: *base
    environment: {B: "2"}
"""
    web = load_documents(text, "f.yaml")[0]["services"]["web"]
    assert web == {"image": "busybox", "environment": {"B": "2"}}


def test_reset_and_override_tags() -> None:
    text = "a: !reset null\nb: !reset []\nc: !override [1, 2]\nd: !override {x: 1}\ne: !override 8080\n"
    assert load_documents(text, "f.yaml") == [
        {
            "a": Reset(None),
            "b": Reset([]),
            "c": Override([1, 2]),
            "d": Override({"x": 1}),
            "e": Override(8080),
        }
    ]


def test_several_documents() -> None:
    assert load_documents("a: 1\n---\nb: 2\n", "f.yaml") == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("services:\n  web: [\n", 3, "invalid YAML"),
        ("a: b: c\n", 1, "mapping values are not allowed"),
        ("a:\n\t- b\n", 2, "invalid YAML"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        load_documents(text, "compose.yaml")
    assert caught.value.problem.line == line
    assert fragment in caught.value.problem.message


yaml_scalars = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(
        [
            "80:80",
            "yes",
            "0o17",
            "0x1F",
            "1_000",
            "~",
            "null",
            "1e3",
            "=",
            "<<",
            "-",
            "a: b",
            "- x",
            "#c",
            "'q'",
            '"dq"',
            " lead",
            "trail ",
            "2024-01-01",
        ]
    ),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.none(),
)
yaml_trees = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8),
            children,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda key: "\x00" not in key),
        yaml_trees,
        max_size=5,
    )
)
def test_dump_then_load_gives_the_same_tree(tree: dict[str, object]) -> None:
    text = dump_yaml(tree)
    assert load_documents(text, "f.yaml") == [tree]


DURATIONS = [
    ("0", 0),
    ("0s", 0),
    ("10s", 10 * 10**9),
    ("1m30s", 90 * 10**9),
    ("1h", 3600 * 10**9),
    ("1.5h", 5400 * 10**9),
    ("500ms", 500 * 10**6),
    ("1us", 1000),
    ("1µs", 1000),
    ("7ns", 7),
    ("1d", 86400 * 10**9),
    ("1w2d", 9 * 86400 * 10**9),
    ("2h45m10.5s", (2 * 3600 + 45 * 60 + 10) * 10**9 + 5 * 10**8),
]


@pytest.mark.parametrize(("text", "nanoseconds"), DURATIONS)
def test_durations(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "10", "1x", "-1s", "s", "1.s.", "1h 30m", ".s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UnitError, match="expected a duration like 1m30s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (90 * 10**9, "1m30s"),
        (3600 * 10**9, "1h0m0s"),
        (10 * 10**9, "10s"),
        (1500 * 10**6, "1.5s"),
        (500 * 10**6, "500ms"),
        (1500, "1.5µs"),
        (42, "42ns"),
        (3601 * 10**9 + 1, "1h0m1.000000001s"),
    ],
)
def test_durations_print_as_go_does(nanoseconds: int, text: str) -> None:
    assert format_duration(nanoseconds) == text


@given(st.integers(0, 10**15))
def test_duration_format_parses_back(nanoseconds: int) -> None:
    assert parse_duration(format_duration(nanoseconds)) == nanoseconds


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("100k", 100 * 1024),
        ("100K", 100 * 1024),
        ("512m", 512 * 2**20),
        ("512mb", 512 * 2**20),
        ("512MiB", 512 * 2**20),
        ("512 m", 512 * 2**20),
        ("1g", 2**30),
        ("1.5g", 3 * 2**29),
        ("2t", 2 * 2**40),
        ("10b", 10),
    ],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_bytes(value) == size


@pytest.mark.parametrize("value", ["", "1x", "m", "-1", "1.5.5g", True, [1], -5])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(UnitError):
        parse_bytes(value)


@pytest.mark.parametrize(("value", "count"), [("0.5", 0.5), (2, 2.0), (1.25, 1.25), (" 3 ", 3.0)])
def test_cpus(value: object, count: float) -> None:
    assert parse_cpus(value) == count


@pytest.mark.parametrize("value", ["half", "-1", "nan", "inf", True, None])
def test_bad_cpus(value: object) -> None:
    with pytest.raises(UnitError):
        parse_cpus(value)
