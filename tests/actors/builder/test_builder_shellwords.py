"""Docker's word processing and `$VAR` substitution: a table from the documented
semantics, word splitting, errors, and Hypothesis properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.builder.gocompat import GO_SPACE
from actors.builder.shellwords import ExpansionError, Lexer

ENV = {"A": "a", "EMPTY": "", "SP": "x y", "PATH": "/usr/local/bin", "N": "3"}

WORD_CASES = [
    ("$A", "a"),
    ("${A}", "a"),
    ("pre${A}post", "preapost"),
    ("$A$A", "aa"),
    ("$A-$A", "a-a"),
    ("$Apost", ""),
    ("$UNSET", ""),
    ("${UNSET}", ""),
    ("${UNSET:-def}", "def"),
    ("${EMPTY:-def}", "def"),
    ("${EMPTY-def}", ""),
    ("${A:-def}", "a"),
    ("${UNSET-def}", "def"),
    ("${UNSET:-}", ""),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:+alt}", ""),
    ("${A:?err}", "a"),
    ("${EMPTY?x}", ""),
    ("${UNSET:-${A}b}", "ab"),
    ("${UNSET:-a b}", "a b"),
    ("${UNSET:-'q'}", "q"),
    ("'$A'", "$A"),
    ('"$A"', "a"),
    ('"${A}b c"', "ab c"),
    ("\\$A", "$A"),
    ('"\\$A"', "$A"),
    ("'\\$A'", "\\$A"),
    ("a\\ b", "a b"),
    ('"a\\b"', "a\\b"),
    ('"a\\"b"', 'a"b'),
    ('"a\\\\b"', "a\\b"),
    ("'a\"b'", 'a"b'),
    ('"a\'b"', "a'b"),
    ("$", "$"),
    ("a$", "a$"),
    ("$ a", "$ a"),
    ("$1", ""),
    ("$12x", "x"),
    ("$@", ""),
    ("$$", ""),
    ("${1}", ""),
    ("trailing\\", "trailing"),
    ("${PATH#/usr}", "/local/bin"),
    ("${PATH##*/}", "bin"),
    ("${PATH#*/}", "usr/local/bin"),
    ("${PATH%/*}", "/usr/local"),
    ("${PATH%%/*}", ""),
    ("${PATH/local/opt}", "/usr/opt/bin"),
    ("${SP// /_}", "x_y"),
    ("${PATH//\\//:}", ":usr:local:bin"),
    ("${UNSET#x}", ""),
    ("<<EOF", "<<EOF"),
    ("a < b", "a < b"),
    ("héllo ${A}ü", "héllo aü"),
]


@pytest.mark.parametrize(("word", "expected"), WORD_CASES)
def test_process_word_table(word, expected):
    assert Lexer().process_word(word, ENV) == expected


ERROR_CASES = [
    ("${UNSET:?must be set}", "UNSET: must be set"),
    ("${UNSET?}", "UNSET: is not allowed to be unset"),
    ("${UNSET:?}", "UNSET: is not allowed to be unset"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${A", "syntax error: missing '}'"),
    ("${A:-x", "syntax error: missing '}'"),
    ("${", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:}", "syntax error: bad substitution"),
    ("${{A}}", "syntax error: bad substitution"),
    ("${A!x}", "unsupported modifier (!) in substitution"),
    ("${A:#x}", "unsupported modifier (:#) in substitution"),
    ("${A:x}", "unsupported modifier (:x) in substitution"),
    ("${A/x", "syntax error: missing '/' in ${}"),
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
]


@pytest.mark.parametrize(("word", "message"), ERROR_CASES)
def test_process_word_errors(word, message):
    with pytest.raises(ExpansionError) as caught:
        Lexer().process_word(word, ENV)
    assert caught.value.message.endswith(message)
    assert caught.value.message.startswith("failed to process ")


def test_error_names_the_word_go_quoted():
    with pytest.raises(ExpansionError) as caught:
        Lexer().process_word('${X:?"need" X}', {})
    assert caught.value.message == 'failed to process "${X:?\\"need\\" X}": X: need X'


def test_backtick_escape():
    lexer = Lexer(escape="`")
    assert lexer.process_word("a`$b", {"b": "B"}) == "a$b"
    assert lexer.process_word("c:\\path\\$b", {"b": "B"}) == "c:\\path\\B"
    assert lexer.process_word('"`"quoted`""', {}) == '"quoted"'


WORDS_CASES = [
    ("$SP z", ["x", "y", "z"]),
    ('"$SP" z', ["x y", "z"]),
    ("'$SP' z", ["$SP", "z"]),
    ("a '' b", ["a", "b"]),
    ("  lead  trail  ", ["lead", "trail"]),
    ("a\\ b c", ["a b", "c"]),
    ("${UNSET:-80 443}", ["80", "443"]),
    ("", []),
]


@pytest.mark.parametrize(("word", "expected"), WORDS_CASES)
def test_process_words_table(word, expected):
    assert Lexer().process_words(word, ENV) == expected


def test_matches_report_set_and_unset_names():
    result, matched, unmatched = Lexer().process_word_with_matches("$A ${B:-x} $EMPTY", ENV)
    assert result == "a x "
    assert matched == {"A", "EMPTY"}
    assert unmatched == {"B"}


def test_skip_unset_env_keeps_references():
    lexer = Lexer(skip_unset_env=True)
    assert lexer.process_word("$A $B ${C} ${D:-x}", {"A": "1"}) == "1 $B ${C} ${D:-x}"


def test_raw_quotes_keep_quotes():
    assert Lexer(raw_quotes=True).process_word("'a' \"$A\"", ENV) == "'a' \"a\""


plain_text = st.text(
    alphabet=st.characters(blacklist_characters="$'\"\\", blacklist_categories=("Cs",)),
    max_size=60,
)


@given(plain_text)
def test_text_without_special_characters_is_unchanged(text):
    assert Lexer().process_word(text, ENV) == text
    assert Lexer(escape="`").process_word(text.replace("`", ""), ENV) == text.replace("`", "")


@given(plain_text)
def test_words_of_plain_text_are_whitespace_fields(text):
    expected = [field for field in re.split("[" + re.escape("".join(sorted(GO_SPACE))) + "]+", text) if field]
    assert Lexer().process_words(text, ENV) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="'", blacklist_categories=("Cs",)), max_size=40))
def test_single_quotes_preserve_everything(text):
    assert Lexer().process_word("'" + text + "'", ENV) == text


@given(st.text(max_size=80), st.dictionaries(st.from_regex(r"[A-Z_]{1,4}", fullmatch=True), st.text(max_size=10)))
def test_processing_is_total(text, env):
    try:
        Lexer().process_word(text, env)
        Lexer().process_words(text, env)
    except ExpansionError:
        pass


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_variable_expands_to_its_value(name, value):
    env = {name: value}
    assert Lexer().process_word("${" + name + "}", env) == value
    assert Lexer().process_word("$" + name, env) == value
    assert Lexer().process_word('"${' + name + '}"', env) == value
