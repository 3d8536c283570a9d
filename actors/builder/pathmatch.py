"""Go's `path/filepath.Match`, which Docker uses for COPY/ADD source wildcards.

Pattern syntax (Unix):
    '*'          any sequence of characters except '/'
    '?'          any one character except '/'
    '[' ['^'] { range } ']'    a character class; ranges are `c`, `\\c` or `lo-hi`
    '\\c'        the character c
A malformed pattern (unclosed class, trailing backslash, `[]`, `[a-]`) raises
BadPattern, like Go's ErrBadPattern. The whole name must match.
"""

from __future__ import annotations

import functools
import re


class BadPattern(ValueError):
    def __init__(self, pattern: str) -> None:
        super().__init__(f"syntax error in pattern: {pattern}")


def contains_wildcards(name: str) -> bool:
    """True when name has an unescaped '*', '?' or '[' (Docker's containsWildcards)."""
    index = 0
    while index < len(name):
        character = name[index]
        if character == "\\":
            index += 2
            continue
        if character in "*?[":
            return True
        index += 1
    return False


def _class_character(pattern: str, index: int) -> tuple[str, int]:
    if index >= len(pattern) or pattern[index] in "-]":
        raise BadPattern(pattern)
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            raise BadPattern(pattern)
    return pattern[index], index + 1


def _escape_in_class(character: str) -> str:
    if character in "\\]^-[":
        return "\\" + character
    return character


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    index = 0
    length = len(pattern)
    while index < length:
        character = pattern[index]
        if character == "*":
            out.append("[^/]*")
            index += 1
        elif character == "?":
            out.append("[^/]")
            index += 1
        elif character == "\\":
            if index + 1 >= length:
                raise BadPattern(pattern)
            out.append(re.escape(pattern[index + 1]))
            index += 2
        elif character == "[":
            index += 1
            negated = index < length and pattern[index] == "^"
            if negated:
                index += 1
            ranges: list[tuple[str, str]] = []
            while True:
                if index < length and pattern[index] == "]" and ranges:
                    index += 1
                    break
                low, index = _class_character(pattern, index)
                high = low
                if index < length and pattern[index] == "-":
                    high, index = _class_character(pattern, index + 1)
                ranges.append((low, high))
            usable = [(low, high) for low, high in ranges if low <= high]
            body = "".join(
                _escape_in_class(low) if low == high
                else f"{_escape_in_class(low)}-{_escape_in_class(high)}"
                for low, high in usable
            )
            if negated:
                out.append(f"[^{body}]" if body else "[\\s\\S]")
            else:
                out.append(f"[{body}]" if body else "(?!)")
        else:
            out.append(re.escape(character))
            index += 1
    return re.compile("".join(out), re.DOTALL)


def match(pattern: str, name: str) -> bool:
    """filepath.Match(pattern, name); BadPattern when the pattern is malformed."""
    return compile_pattern(pattern).fullmatch(name) is not None
