"""Env files (`.env`, --env-file, env_file:) parsed with Compose's rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.compose.dotenv import EnvFileError, parse_env_text, parse_raw_env_text

SHELL = {"USER": "alice", "EMPTY": ""}

CASES = [
    ("A=1", {"A": "1"}),
    ("A=1\nB=2\n", {"A": "1", "B": "2"}),
    ("  A = spaced  ", {"A": "spaced"}),
    ("export A=1", {"A": "1"}),
    ("export\tA=1", {"A": "1"}),
    ("A: yaml-style", {"A": "yaml-style"}),
    ("# a comment\nA=1 # trailing\n#B=2", {"A": "1"}),
    ("A=no#comment", {"A": "no#comment"}),
    ("A=", {"A": ""}),
    ("A=''", {"A": ""}),
    ('A=""', {"A": ""}),
    ("A='single $USER \\n'", {"A": "single $USER \\n"}),
    ("A='it\\'s'", {"A": "it's"}),
    ('A="double $USER"', {"A": "double alice"}),
    ('A="tab\\there"', {"A": "tab\there"}),
    ('A="line\\nbreak"', {"A": "line\nbreak"}),
    ('A="quote \\" inside"', {"A": 'quote " inside'}),
    ('A="back\\\\slash"', {"A": "back\\slash"}),
    ('A="literal \\$USER"', {"A": "literal $USER"}),
    ('A="octal \\0101"', {"A": "octal A"}),
    ('A="multi\nline\nvalue"\nB=2', {"A": "multi\nline\nvalue", "B": "2"}),
    ("A='multi\nline'", {"A": "multi\nline"}),
    ('A="x" # comment after quotes', {"A": "x"}),
    ("A=$USER", {"A": "alice"}),
    ("A=${USER}-${MISSING:-dflt}", {"A": "alice-dflt"}),
    ("A=1\nB=${A}2", {"A": "1", "B": "12"}),
    ("USER=bob\nB=$USER", {"USER": "bob", "B": "alice"}),
    ("A=$$literal", {"A": "$literal"}),
    ("USER", {"USER": "alice"}),
    ("NOT_IN_SHELL\nA=1", {"A": "1"}),
    ("A.B-C[0]=odd", {"A.B-C[0]": "odd"}),
    ("\ufeffA=bom", {"A": "bom"}),
    ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_env_file_table(text: str, expected: dict[str, str]) -> None:
    assert parse_env_text(text, SHELL.get) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A B=1", "line 1: key cannot contain a space"),
        ("A=1\nB$=2", "line 2: unexpected character '$'"),
        ('A="never closed', "line 1: unterminated quoted value"),
        ("A=1\n\nB='x\ny", "line 3: unterminated quoted value"),
        ("A=${X:?X is required}", "line 1: required variable X is missing a value: X is required"),
        ("A=${", "line 1: invalid interpolation format"),
    ],
)
def test_env_file_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(EnvFileError) as caught:
        parse_env_text(text, SHELL.get)
    assert message in str(caught.value)


def test_unset_names_are_reported() -> None:
    unset: list[str] = []
    parse_env_text("A=$NOPE\nB='$NOT_EITHER'", SHELL.get, unset)
    assert unset == ["NOPE"]


def test_earlier_files_are_visible_and_overridden() -> None:
    first = parse_env_text("A=1\nB=first", SHELL.get)
    second = parse_env_text("B=second\nC=${A}${B}", SHELL.get, initial=first)
    assert second == {"A": "1", "B": "second", "C": "1second"}


def test_raw_format_takes_values_literally() -> None:
    text = '# comment\nA="quoted" $USER # not a comment\nUSER\nMISSING\n\n  B=x=y'
    assert parse_raw_env_text(text, SHELL.get) == {
        "A": '"quoted" $USER # not a comment',
        "USER": "alice",
        "B": "x=y",
    }
    with pytest.raises(EnvFileError, match="line 1"):
        parse_raw_env_text("=value")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _double_quoted(value: str) -> str:
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,10}", fullmatch=True)


@given(st.dictionaries(keys, values, max_size=6))
def test_double_quoted_values_round_trip(environment: dict[str, str]) -> None:
    text = "".join(f"{key}={_double_quoted(value)}\n" for key, value in environment.items())
    assert parse_env_text(text) == environment


@given(
    st.dictionaries(
        keys,
        st.text(
            alphabet=st.characters(blacklist_characters="'\\\x00", blacklist_categories=("Cs",))
        ),
        max_size=6,
    )
)
def test_single_quoted_values_are_literal(environment: dict[str, str]) -> None:
    text = "".join(f"export {key}='{value}'\n" for key, value in environment.items())
    assert parse_env_text(text, SHELL.get) == environment
