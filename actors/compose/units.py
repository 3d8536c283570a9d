"""Compose's units: durations (`1m30s`), byte sizes (`512m`), CPU counts (`"0.5"`).

Durations follow Go's `time.ParseDuration` plus days and weeks, as Compose accepts:
a sequence of decimal numbers, each with a unit among ns, us (µs), ms, s, m, h, d, w
(`1h30m`, `1.5s`, `90s`); a lone `0` is zero. They are kept as integer nanoseconds
and printed back as Go prints them (`1m30s`, `1h0m0s`, `500ms`).

Byte sizes are an integer count of bytes or a number with a binary unit
(`100k` = 102400, `512m`, `1g`, `1.5g`; an optional `i`/`b` suffix and a space are
allowed: `512MiB`, `512 mb`), as Docker's `RAMInBytes`.
"""

from __future__ import annotations

import math
import re

_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h|d|w)")
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_MULTIPLIER = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
duration_nanoseconds_max = (1 << 63) - 1


class UnitError(ValueError):
    pass


def parse_duration(text: str) -> int:
    """`"1m30s"` → 90_000_000_000 (nanoseconds). Raises UnitError."""
    original = text
    text = text.strip()
    if text in ("0", "+0"):
        return 0
    if not text or text.startswith("-"):
        raise UnitError(f"invalid duration {original!r}: expected a duration like 1m30s or 10s")
    if text.startswith("+"):
        text = text[1:]
    total = 0
    position = 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None or match.group(1) in ("", "."):
            raise UnitError(f"invalid duration {original!r}: expected a duration like 1m30s or 10s")
        number, unit = match.groups()
        whole, _, fraction = number.partition(".")
        scale = _NANOSECONDS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        position = match.end()
    if total > duration_nanoseconds_max:
        raise UnitError(f"invalid duration {original!r}: too long")
    return total


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_duration(nanoseconds: int) -> str:
    """Go's `time.Duration.String()`: 90s → `1m30s`, 1h → `1h0m0s`, 0 → `0s`."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        return f"{sign}{_fraction(value, 1_000)}µs"
    if value < 1_000_000_000:
        return f"{sign}{_fraction(value, 1_000_000)}ms"
    hours, rest = divmod(value, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


def parse_bytes(value: object) -> int:
    """A byte size from an int or a string such as `512m`. Raises UnitError."""
    if isinstance(value, bool):
        raise UnitError(f"invalid size {value!r}: expected bytes or a size like 512m or 1g")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"invalid size {value}: must not be negative")
        return value
    if isinstance(value, float):
        if value < 0 or not math.isfinite(value):
            raise UnitError(f"invalid size {value}: must not be negative")
        return int(value)
    if not isinstance(value, str):
        raise UnitError(f"invalid size {value!r}: expected bytes or a size like 512m or 1g")
    match = _SIZE.match(value.strip())
    if match is None:
        raise UnitError(f"invalid size {value!r}: expected bytes or a size like 512m or 1g")
    number, unit = match.groups()
    multiplier = _SIZE_MULTIPLIER[unit.lower()] if unit else 1
    if "." in number:
        return int(float(number) * multiplier)
    return int(number) * multiplier


def parse_cpus(value: object) -> float:
    """A CPU count from a number or a string (`"0.5"`). Raises UnitError."""
    if isinstance(value, bool):
        raise UnitError(f"invalid cpus {value!r}: expected a number such as 0.5 or 2")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise UnitError(f"invalid cpus {value!r}: expected a number such as 0.5 or 2") from None
    else:
        raise UnitError(f"invalid cpus {value!r}: expected a number such as 0.5 or 2")
    if not math.isfinite(number) or number < 0:
        raise UnitError(f"invalid cpus {value!r}: expected a non-negative number")
    return number
