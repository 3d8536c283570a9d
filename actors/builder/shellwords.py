"""Docker's word processing: quotes, the escape character and `$VAR` substitution.

This is the small shell-like lexer the Dockerfile frontend applies to instruction
arguments (not a shell: no command substitution, no globbing). Its rules, from
Docker's implementation and the Dockerfile reference:

- `'...'` keeps everything literally, `$` included; a single quote cannot be escaped.
- `"..."` keeps everything except `$` substitution; the escape character escapes only
  `"`, `$` and itself inside double quotes, and stays literal before anything else.
- Outside quotes the escape character makes the next character literal (a trailing one
  is dropped).
- `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
  `${NAME:?message}`, `${NAME?message}`, `${NAME#pattern}`, `${NAME##pattern}`,
  `${NAME%pattern}`, `${NAME%%pattern}`, `${NAME/pattern/replacement}` and
  `${NAME//pattern/replacement}`. With the colon, an empty value counts as unset.
  An unset name expands to "" (no error) unless `?` asks for one.
- `$` followed by no name stays `$`. `$1`..`$99` and the special parameters (`$@ $* $#
  $? $- $$ $! $0`) are names that are never set.

`process_word` returns one string (spaces kept); `process_words` splits the result on
whitespace outside quotes, after substitution — only EXPOSE uses that in the builder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from .errors import BuildError
from .gocompat import go_is_digit, go_is_letter, go_quote, is_go_space

_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")


class ExpansionError(BuildError):
    """A word that cannot be processed (unterminated quote, bad `${...}`, `${X:?}` unset)."""


class _Failure(Exception):
    """Raised inside the lexer; process() adds the word to the message."""


@attrs.define
class Lexer:
    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_process_quotes: bool = False
    skip_unset_env: bool = False

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """The word after quote removal and substitution, as one string."""
        return self._process(word, env)[0]

    def process_word_with_matches(
        self, word: str, env: Mapping[str, str]
    ) -> tuple[str, frozenset[str], frozenset[str]]:
        """process_word plus the names it found set and the names it found unset."""
        result, _, scan = self._process_scan(word, env)
        return result, frozenset(scan.matched), frozenset(scan.unmatched)

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """The word after substitution, split on unquoted whitespace."""
        return self._process(word, env)[1]

    def _process(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        result, words, _ = self._process_scan(word, env)
        return result, words

    def _process_scan(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str], _Scan]:
        scan = _Scan(self, word, env)
        try:
            result, words = scan.process_until(None, self.raw_escapes)
        except _Failure as failure:
            raise ExpansionError(f"failed to process {go_quote(word)}: {failure}") from None
        return result, words, scan


class _Words:
    """Splits into words the way Docker does: quoted text and escapes never split."""

    def __init__(self) -> None:
        self.buffer: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, character: str) -> None:
        if is_go_space(character):
            if self.in_word and self.buffer:
                self.words.append("".join(self.buffer))
                self.buffer = []
                self.in_word = False
        else:
            self.add_raw_char(character)

    def add_raw_char(self, character: str) -> None:
        self.buffer.append(character)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for character in text:
            self.add_char(character)

    def add_raw_string(self, text: str) -> None:
        if text:
            self.buffer.append(text)
        self.in_word = True

    def finish(self) -> list[str]:
        if self.buffer:
            self.words.append("".join(self.buffer))
            self.buffer = []
            self.in_word = False
        return self.words


class _Scan:
    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lexer = lexer
        self.text = text
        self.position = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str | None:
        if self.position < len(self.text):
            return self.text[self.position]
        return None

    def next(self) -> str | None:
        if self.position < len(self.text):
            character = self.text[self.position]
            self.position += 1
            return character
        return None

    def process_until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        saved_raw_escapes = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._process_until(stop)
        finally:
            self.raw_escapes = saved_raw_escapes

    def _process_until(self, stop: str | None) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        escape = self.lexer.escape
        while (character := self.peek()) is not None:
            if stop is not None and character == stop:
                self.next()
                return "".join(result), words.finish()
            if character == "$":
                value = self.process_dollar()
                result.append(value)
                words.add_string(value)
            elif character == "<":
                value = self.process_possible_heredoc()
                result.append(value)
                words.add_raw_string(value)
            elif character in "'\"" and not self.lexer.skip_process_quotes:
                if character == "'":
                    value = self.process_single_quote()
                else:
                    value = self.process_double_quote()
                result.append(value)
                words.add_raw_string(value)
            else:
                self.next()
                if character == escape:
                    if self.raw_escapes:
                        words.add_raw_char(character)
                        result.append(character)
                    escaped = self.next()
                    if escaped is None:
                        break
                    words.add_raw_char(escaped)
                    result.append(escaped)
                else:
                    words.add_char(character)
                    result.append(character)
        if stop is not None:
            raise _Failure(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def process_single_quote(self) -> str:
        result: list[str] = []
        opening = self.next()
        if self.lexer.raw_quotes and opening is not None:
            result.append(opening)
        while True:
            character = self.next()
            if character is None:
                raise _Failure("unexpected end of statement while looking for matching single-quote")
            if character == "'":
                if self.lexer.raw_quotes:
                    result.append(character)
                return "".join(result)
            result.append(character)

    def process_double_quote(self) -> str:
        result: list[str] = []
        opening = self.next()
        if self.lexer.raw_quotes and opening is not None:
            result.append(opening)
        escape = self.lexer.escape
        while True:
            character = self.peek()
            if character is None:
                raise _Failure("unexpected end of statement while looking for matching double-quote")
            if character == '"':
                self.next()
                if self.lexer.raw_quotes:
                    result.append(character)
                return "".join(result)
            if character == "$":
                result.append(self.process_dollar())
                continue
            character = self.next()
            assert character is not None
            if character == escape:
                if self.raw_escapes:
                    result.append(character)
                following = self.peek()
                if following is None:
                    continue
                if following in ('"', "$", escape):
                    character = self.next()
                    assert character is not None
            result.append(character)

    def process_name(self) -> str:
        name: list[str] = []
        while (character := self.peek()) is not None:
            if not name and go_is_digit(character):
                while (digit := self.peek()) is not None and go_is_digit(digit):
                    name.append(digit)
                    self.next()
                return "".join(name)
            if not name and character in _SPECIAL_PARAMETERS:
                self.next()
                return character
            if not (go_is_letter(character) or go_is_digit(character) or character == "_"):
                break
            name.append(character)
            self.next()
        return "".join(name)

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def process_dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.process_name()
            if name == "":
                return "$"
            value, found = self.get_env(name)
            if not found and self.lexer.skip_unset_env:
                return "$" + name
            return value
        self.next()
        following = self.peek()
        if following is None:
            raise _Failure("syntax error: missing '}'")
        if following in "{}:":
            raise _Failure("syntax error: bad substitution")
        name = self.process_name()
        modifier = self.next()
        if modifier == "}":
            value, found = self.get_env(name)
            if not found and self.lexer.skip_unset_env:
                return "${" + name + "}"
            return value
        if modifier == "/":
            return self._process_replacement(name)
        if modifier is None:
            raise _Failure("syntax error: missing '}'")
        return self._process_modifier(name, modifier)

    def _process_modifier(self, name: str, modifier: str) -> str:
        spelled = modifier
        null_is_unset = False
        operator: str | None = modifier
        if modifier == ":":
            null_is_unset = True
            operator = self.next()
            spelled += operator or ""
        elif modifier not in "+-?#%":
            raise _Failure(f"unsupported modifier ({spelled}) in substitution")
        raw_escapes = operator in ("#", "%")
        if null_is_unset and raw_escapes:
            raise _Failure(f"unsupported modifier ({spelled}) in substitution")
        try:
            word, _ = self.process_until("}", raw_escapes)
        except _Failure:
            if self.peek() is None:
                raise _Failure("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lexer.skip_unset_env and not found:
            return "${" + name + spelled + word + "}"
        if operator == "-":
            if not found or (null_is_unset and value == ""):
                return word
            return value
        if operator == "+":
            if not found or (null_is_unset and value == ""):
                return ""
            return word
        if operator == "?":
            if not found:
                raise _Failure(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Failure(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if operator in ("%", "#"):
            greedy = word[:1] == operator
            if greedy:
                word = word[1:]
            if operator == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise _Failure(f"unsupported modifier ({spelled}) in substitution")

    def _process_replacement(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.process_until("/", True)
        except _Failure:
            if self.peek() is None:
                raise _Failure("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.process_until("}", True)
        except _Failure:
            if self.peek() is None:
                raise _Failure("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lexer.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        expression = _shell_pattern_to_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return expression.sub(lambda _match: replacement, value)
        match = expression.search(value)
        if match is None:
            return value
        return value[: match.start()] + replacement + value[match.end() :]

    def process_possible_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        spaces: list[str] = []
        while (character := self.peek()) is not None and character in "\t\r ":
            spaces.append(character)
            self.next()
        return "<<" + "".join(spaces)


def _shell_pattern_to_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, backslash escapes; no brackets) as a regex."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    index = 0
    while index < len(pattern):
        character = pattern[index]
        index += 1
        if character == "*":
            out.append(star)
        elif character == "?":
            out.append(".")
        elif character == "\\":
            following = pattern[index] if index < len(pattern) else ""
            if following in ("}", "/"):
                continue
            index += 1
            if following not in ("*", "?", "\\"):
                raise _Failure(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'"
                )
            out.append("\\" + following)
        else:
            out.append(re.escape(character))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _shell_pattern_to_regex(pattern, greedy=greedy, anchored=True).search(value)
    if match is not None:
        return value[match.end() :]
    return value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each `\\x` escape pair in order (`a\\*c` -> `c\\*a`)."""
    tokens: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            tokens.append(pattern[index : index + 2])
            index += 2
        else:
            tokens.append(pattern[index])
            index += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexes find leftmost matches, so the shortest/longest suffix is found by
    # reversing both the value and the pattern.
    reversed_result = _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)
    return reversed_result[::-1]
