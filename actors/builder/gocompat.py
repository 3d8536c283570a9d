"""Small pieces of Go's standard library that Docker's output depends on.

The classic builder writes strings formatted by Go (`fmt`'s `%q`, `time.Duration`'s
`String()`, `path/filepath.Clean`) into image history and into cache keys, and reads
Dockerfiles with Go's notion of whitespace. Reproducing those few behaviours here keeps
flotta's `created_by` strings and parse results byte-for-byte what a Docker user sees.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

# Go's unicode.IsSpace: Python's str.isspace() also accepts U+001C..U+001F, Go does not.
GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def is_go_space(character: str) -> bool:
    return character in GO_SPACE


def go_trim_space(text: str) -> str:
    """strings.TrimSpace."""
    start = 0
    end = len(text)
    while start < end and text[start] in GO_SPACE:
        start += 1
    while end > start and text[end - 1] in GO_SPACE:
        end -= 1
    return text[start:end]


def go_trim_left_space(text: str) -> str:
    start = 0
    while start < len(text) and text[start] in GO_SPACE:
        start += 1
    return text[start:]


def go_is_letter(character: str) -> bool:
    return unicodedata.category(character).startswith("L")


def go_is_digit(character: str) -> bool:
    return unicodedata.category(character) == "Nd"


def _go_is_print(character: str) -> bool:
    if character == " ":
        return True
    return character.isprintable() and not ("\ud800" <= character <= "\udfff")


def _escape_rune(code: int, quote: str) -> str:
    character = chr(code)
    if character == quote or character == "\\":
        return "\\" + character
    if _go_is_print(character):
        return character
    simple = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
    if code in simple:
        return simple[code]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """strconv.Quote (what `%q` does to a string).

    Lone surrogates stand for bytes that were not valid UTF-8 (decoded with
    'surrogateescape'); Go prints such a byte as \\xNN.
    """
    parts = ['"']
    for character in text:
        code = ord(character)
        if 0xDC80 <= code <= 0xDCFF:
            parts.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            parts.append("\\ufffd")
        else:
            parts.append(_escape_rune(code, '"'))
    parts.append('"')
    return "".join(parts)


def go_quote_rune(value: int) -> str:
    """What `%q` does to an integer: a quoted Go character literal."""
    if value < 0 or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        value = 0xFFFD
    return "'" + _escape_rune(value, "'") + "'"


def go_quote_list(values: tuple[str, ...] | list[str] | None) -> str:
    """`%q` applied to a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(value) for value in (values or ())) + "]"


def go_format_list(values: tuple[str, ...] | list[str] | None) -> str:
    """`%v` applied to a []string: `[a b]`."""
    return "[" + " ".join(values or ()) + "]"


NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
_DURATION_MAX = (1 << 63) - 1


def _format_fraction(value: int, precision: int) -> tuple[str, int]:
    """Go's fmtFrac: the fraction digits of value/10**precision, trailing zeros cut."""
    digits = []
    printed = False
    for _ in range(precision):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        value //= 10
    text = ("." + "".join(reversed(digits))) if printed else ""
    return text, value


def go_format_duration(nanoseconds: int) -> str:
    """time.Duration.String()."""
    negative = nanoseconds < 0
    magnitude = -nanoseconds if negative else nanoseconds
    if magnitude == 0:
        return "0s"
    if magnitude < SECOND:
        if magnitude < MICROSECOND:
            precision, unit = 0, "ns"
        elif magnitude < MILLISECOND:
            precision, unit = 3, "\u00b5s"
        else:
            precision, unit = 6, "ms"
        fraction, whole = _format_fraction(magnitude, precision)
        text = f"{whole}{fraction}{unit}"
    else:
        fraction, whole_seconds = _format_fraction(magnitude, 9)
        text = f"{whole_seconds % 60}{fraction}s"
        minutes = whole_seconds // 60
        if minutes > 0:
            text = f"{minutes % 60}m" + text
            hours = minutes // 60
            if hours > 0:
                text = f"{hours}h" + text
    return ("-" + text) if negative else text


_DURATION_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,
    "\u03bcs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


class DurationError(ValueError):
    pass


def parse_go_duration(text: str) -> int:
    """time.ParseDuration, in nanoseconds; DurationError with Go's messages."""
    original = text
    quoted = go_quote(original)
    negative = False
    if text[:1] in ("-", "+"):
        negative = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise DurationError(f"time: invalid duration {quoted}")
    total = Fraction(0)
    while text:
        match = _DURATION_PART.match(text)
        assert match is not None  # the pattern accepts the empty string
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not fraction:
            raise DurationError(f"time: invalid duration {quoted}")
        if not unit:
            raise DurationError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise DurationError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        value = Fraction(int(whole or "0"))
        if fraction:
            value += Fraction(int(fraction), 10 ** len(fraction))
        total += value * _DURATION_UNITS[unit]
        if total > _DURATION_MAX:
            raise DurationError(f"time: invalid duration {quoted}")
        text = text[match.end() :]
    nanoseconds = int(total)
    return -nanoseconds if negative else nanoseconds


def go_clean(path: str) -> str:
    """path.Clean / filepath.Clean on Unix."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def go_join(*elements: str) -> str:
    """path.Join: the non-empty elements joined by '/', then cleaned ('' when all are empty)."""
    kept = [element for element in elements if element != ""]
    if not kept:
        return ""
    return go_clean("/".join(kept))
