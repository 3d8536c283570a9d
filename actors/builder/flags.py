"""Instruction flags (`COPY --from=x --chown=a:b`), checked the way Docker checks them.

Each instruction declares the flags it knows; a flag is `--name=value` (string),
`--name` / `--name=true|false` (bool) or repeatable `--name=value` (strings). An unknown,
duplicated or value-less flag is an error naming the flag.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

BOOL = "bool"
STRING = "string"
STRINGS = "strings"


class FlagError(ValueError):
    pass


def parse_flags(
    given: tuple[str, ...], known: Mapping[str, str]
) -> tuple[dict[str, str | bool | tuple[str, ...]], tuple[str, ...]]:
    """The values of the flags used, and their names in the order given."""
    values: dict[str, str | bool | tuple[str, ...]] = {}
    used: list[str] = []
    for argument in given:
        if argument == "--":
            break
        if not argument.startswith("--"):
            raise FlagError(f"arg should start with -- : {argument}")
        spelled, has_value, value = argument.partition("=")
        name = spelled[2:]
        kind = known.get(name)
        if kind is None:
            message = f"unknown flag: {spelled}"
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {close[0]}?)"
            raise FlagError(message)
        if name in values and kind != STRINGS:
            raise FlagError(f"duplicate flag specified: {spelled}")
        if name not in used:
            used.append(name)
        if kind == BOOL:
            if has_value and value == "":
                raise FlagError(f"missing a value on flag: {spelled}")
            lowered = value.lower()
            if lowered in ("true", ""):
                values[name] = True
            elif lowered == "false":
                values[name] = False
            else:
                raise FlagError(f"expecting boolean value for flag {spelled}, not: {value}")
        elif kind == STRING:
            if not has_value:
                raise FlagError(f"missing a value on flag: {spelled}")
            values[name] = value
        else:
            if not has_value:
                raise FlagError(f"missing a value on flag: {spelled}")
            previous = values.get(name, ())
            assert isinstance(previous, tuple)
            values[name] = (*previous, value)
    return values, tuple(used)


def string_flag(values: Mapping[str, object], name: str) -> str | None:
    value = values.get(name)
    return value if isinstance(value, str) else None


def bool_flag(values: Mapping[str, object], name: str) -> bool | None:
    value = values.get(name)
    return value if isinstance(value, bool) else None


def strings_flag(values: Mapping[str, object], name: str) -> tuple[str, ...]:
    value = values.get(name, ())
    assert isinstance(value, tuple)
    return value
