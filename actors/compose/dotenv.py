"""`.env` files as Docker Compose reads them (the project `.env`, `--env-file`, `env_file:`).

Rules:
- One `KEY=value` per statement; `KEY: value` is accepted too; an `export ` prefix is
  ignored. Keys use letters, digits, `_`, `.`, `-`, `[` and `]`; a key with a space is
  an error.
- A line with only `KEY` takes KEY's value from the lookup (the shell environment);
  if it has none, the key is left out.
- `#` starts a comment at the beginning of a statement; in an unquoted value, ` #`
  (space, hash) starts a comment. Unquoted values are trimmed on the right.
- `'single quotes'` are literal except that `\\'` is a quote; they may span lines.
- `"double quotes"` may span lines and understand `\\n \\t \\r \\a \\b \\f \\v \\\\ \\" \\$`
  and octal `\\0NNN` (three digits).
- Unquoted and double-quoted values are interpolated (`${VAR:-x}`, see interpolation.py)
  with the lookup first, then the keys already read; single-quoted ones are not.
- A leading UTF-8 byte order mark is ignored.

The `raw` format (`env_file: {path: f, format: raw}`) takes every `KEY=VALUE` line
literally, as `docker run --env-file` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .interpolation import InterpolationError, substitute

_EXPORT = re.compile(r"export[ \t\v\f\r]+")
_SPACE = " \t\v\f\r\x85\xa0"
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-7]{3})")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "c": "\\c",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    "$": "$$",
}


class EnvFileError(ValueError):
    """An env file that cannot be read; the message names the line."""


def _expand_escape(match: re.Match[str]) -> str:
    text = match.group()
    if text[1] == "0":
        return chr(int(text[2:], 8))
    return _SIMPLE_ESCAPES[text[1]]


def _key_character_ok(char: str) -> bool:
    return char.isalnum() or char in "_.-[]"


def parse_env_text(
    text: str,
    lookup: Callable[[str], str | None] | None = None,
    unset: list[str] | None = None,
    initial: dict[str, str] | None = None,
) -> dict[str, str]:
    """The variables defined by env-file `text`.

    `lookup` resolves bare `KEY` lines and interpolated names before the file's own
    keys; `initial` holds keys read from earlier files (they are visible to
    interpolation and are overridden by this file). Names of unset variables used
    without a default are appended to `unset`.
    """
    values: dict[str, str] = dict(initial or {})
    external = lookup or (lambda _name: None)

    def resolve(name: str) -> str | None:
        found = external(name)
        return found if found is not None else values.get(name)

    if text.startswith("\ufeff"):
        text = text[1:]
    position = 0
    line = 1
    length = len(text)
    while True:
        while position < length and text[position].isspace():
            if text[position] == "\n":
                line += 1
            position += 1
        if position >= length:
            break
        if text[position] == "#":
            newline = text.find("\n", position)
            position = length if newline < 0 else newline
            continue
        export = _EXPORT.match(text, position)
        if export:
            position = export.end()
        key_start = position
        separator = ""
        while position < length:
            char = text[position]
            if char in "=:\n":
                separator = char
                break
            if char not in _SPACE and not _key_character_ok(char):
                first_line = text[key_start:].split("\n", 1)[0]
                raise EnvFileError(
                    f"line {line}: unexpected character {char!r} in variable name {first_line!r}"
                )
            position += 1
        key = text[key_start:position].rstrip()
        if " " in key or "\t" in key:
            raise EnvFileError(f"line {line}: key cannot contain a space")
        if separator in ("\n", ""):
            found = external(key)
            if found is not None:
                values[key] = found
            continue
        position += 1
        while position < length and text[position] in _SPACE:
            position += 1
        if position < length and text[position] in "'\"":
            quote = text[position]
            value, position, line = _quoted(text, position, line)
            if quote == '"':
                value = _interpolate(_ESCAPE.sub(_expand_escape, value), resolve, unset, line)
        else:
            newline = text.find("\n", position)
            end = length if newline < 0 else newline
            raw = text[position:end]
            comment = raw.find(" #")
            if comment >= 0:
                raw = raw[:comment]
            value = _interpolate(raw.rstrip(), resolve, unset, line)
            position = end
        values[key] = value
    return values


def _quoted(text: str, start: int, line: int) -> tuple[str, int, int]:
    """The body of the quoted value at `start`, the position after it, the line count."""
    quote = text[start]
    chars: list[str] = []
    escaped = False
    position = start + 1
    first_line = line
    while position < len(text):
        char = text[position]
        if char == "\n":
            line += 1
        if char != quote:
            if not escaped and char == "\\":
                escaped = True
            else:
                if escaped:
                    chars.append("\\")
                    escaped = False
                chars.append(char)
            position += 1
            continue
        if escaped:
            escaped = False
            chars.append(char)
            position += 1
            continue
        return "".join(chars), position + 1, line
    snippet = text[start:].split("\n", 1)[0]
    raise EnvFileError(f"line {first_line}: unterminated quoted value {snippet}")


def _interpolate(
    value: str, resolve: Callable[[str], str | None], unset: list[str] | None, line: int
) -> str:
    try:
        return substitute(value, resolve, unset)
    except InterpolationError as error:
        raise EnvFileError(f"line {line}: {error}") from None


def parse_raw_env_text(
    text: str, lookup: Callable[[str], str | None] | None = None
) -> dict[str, str]:
    """`KEY=VALUE` lines taken literally; `KEY` alone takes the lookup's value if any."""
    values: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        stripped = raw_line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        key, has_value, value = stripped.partition("=")
        if not key:
            raise EnvFileError(f"line {number}: no variable name before '='")
        if any(char.isspace() for char in key):
            raise EnvFileError(f"line {number}: variable name {key!r} contains whitespace")
        if has_value:
            values[key] = value
        elif lookup is not None and (found := lookup(key)) is not None:
            values[key] = found
    return values
