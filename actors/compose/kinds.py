"""Small combinators that check a raw YAML value and turn it into its canonical form.

A kind is a function `(value, context, path) -> canonical value`. When the value is
wrong it records a problem (file, path, what was expected) and returns `INVALID`, and
the enclosing mapping leaves the key out, so checking continues with the rest of the
document and every problem is reported at once. `OMIT` means "as if the key were not
there" (an explicit `null`).

Canonical forms are plain dicts, lists, strings, numbers: the long syntax of every
key, with short syntaxes expanded, so that files can be merged key by key
(merge.py) and the result typed with cattrs (model.py). `!reset` and `!override`
values pass through as `RESET` / `Overridden(...)` markers for the merge.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .errors import Diagnostics, Path, format_path
from .units import UnitError, parse_bytes, parse_cpus, parse_duration
from .yamlload import Override, Reset, scalar_text


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


INVALID: Any = _Sentinel("INVALID")
OMIT: Any = _Sentinel("OMIT")
RESET: Any = _Sentinel("RESET")


@attrs.frozen
class Overridden:
    """A canonical value that replaces, rather than merges with, earlier files."""

    value: Any


@attrs.define
class Context:
    diagnostics: Diagnostics
    file: str

    def error(self, path: Path, message: str) -> Any:
        self.diagnostics.error(self.file, path, message)
        return INVALID

    def warn(self, path: Path, message: str) -> None:
        where = format_path(path)
        self.diagnostics.warn(
            f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}"
        )


Kind = Callable[[Any, Context, Path], Any]


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def apply(kind: Kind, value: Any, context: Context, path: Path) -> Any:
    """Run `kind`, passing `!reset` / `!override` markers through."""
    if isinstance(value, Reset):
        return RESET
    if isinstance(value, Override):
        inner = kind(value.value, context, path)
        if inner is INVALID:
            return INVALID
        return Overridden(None if inner is OMIT else inner)
    return kind(value, context, path)


# ---- scalars -----------------------------------------------------------------


def string(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str):
        return value
    return context.error(path, f"expected a string, got {describe(value)}")


def nullable(kind: Kind) -> Kind:
    def check(value: Any, context: Context, path: Path) -> Any:
        return OMIT if value is None else kind(value, context, path)

    return check


def pattern_string(regex: str, expected: str) -> Kind:
    compiled = re.compile(regex)

    def check(value: Any, context: Context, path: Path) -> Any:
        if not isinstance(value, str):
            return context.error(path, f"expected {expected}, got {describe(value)}")
        if not compiled.fullmatch(value):
            return context.error(path, f"invalid value {value!r}: expected {expected}")
        return value

    return check


def string_or_number(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return scalar_text(value)
    return context.error(path, f"expected a string or a number, got {describe(value)}")


def enum(*choices: str) -> Kind:
    listed = ", ".join(choices)

    def check(value: Any, context: Context, path: Path) -> Any:
        if isinstance(value, str) and value in choices:
            return value
        return context.error(path, f"invalid value {describe(value)}: expected one of {listed}")

    return check


_TRUE = {"true": True, "false": False}
_YAML11_BOOLEANS = {"y": True, "yes": True, "on": True, "n": False, "no": False, "off": False}


def boolean(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return _TRUE[lowered]
        if lowered in _YAML11_BOOLEANS:
            meaning = "true" if _YAML11_BOOLEANS[lowered] else "false"
            context.warn(path, f"{value!r} as a boolean is not YAML 1.2, write {meaning}")
            return _YAML11_BOOLEANS[lowered]
    return context.error(path, f"expected a boolean (true or false), got {describe(value)}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Kind:
    def check(value: Any, context: Context, path: Path) -> Any:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip(), 10)
            except ValueError:
                number = None
        if number is None:
            return context.error(path, f"expected an integer, got {describe(value)}")
        if minimum is not None and number < minimum:
            return context.error(path, f"invalid value {number}: must be at least {minimum}")
        if maximum is not None and number > maximum:
            return context.error(path, f"invalid value {number}: must be at most {maximum}")
        return number

    return check


def number(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            parsed = math.nan
        if math.isfinite(parsed):
            return parsed
    return context.error(path, f"expected a number, got {describe(value)}")


def duration(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except UnitError as error:
            return context.error(path, str(error))
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    return context.error(path, f"expected a duration like 1m30s or 10s, got {describe(value)}")


def size(value: Any, context: Context, path: Path) -> Any:
    try:
        return parse_bytes(value)
    except UnitError as error:
        return context.error(path, str(error))


def cpus(value: Any, context: Context, path: Path) -> Any:
    try:
        return parse_cpus(value)
    except UnitError as error:
        return context.error(path, str(error))


def file_mode(value: Any, context: Context, path: Path) -> Any:
    """A Unix permission mode: an integer, or a string read as octal (`"0440"`)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return value
    if isinstance(value, str):
        try:
            parsed = int(value.strip(), 8)
        except ValueError:
            parsed = -1
        if 0 <= parsed <= 0o7777:
            return parsed
    return context.error(path, f"expected a file mode such as 0440, got {describe(value)}")


# ---- collections -------------------------------------------------------------


def list_of(item: Kind, unique: bool = False) -> Kind:
    def check(value: Any, context: Context, path: Path) -> Any:
        if not isinstance(value, list):
            return context.error(path, f"expected a list, got {describe(value)}")
        result: list[Any] = []
        for index, element in enumerate(value):
            checked = item(element, context, (*path, index))
            if checked is INVALID or checked is OMIT:
                continue
            if unique and checked in result:
                continue
            result.append(checked)
        return result

    return check


def string_or_list(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, str):
        return [value]
    return list_of(string, unique=True)(value, context, path)


def mapping_of(
    item: Kind, key_pattern: str | None = None, key_expected: str = "a valid name"
) -> Kind:
    compiled = re.compile(key_pattern) if key_pattern else None

    def check(value: Any, context: Context, path: Path) -> Any:
        if not isinstance(value, dict):
            return context.error(path, f"expected a mapping, got {describe(value)}")
        result: dict[str, Any] = {}
        for key, element in value.items():
            if compiled is not None and not compiled.fullmatch(key):
                context.error((*path, key), f"invalid name {key!r}: expected {key_expected}")
                continue
            checked = apply(item, element, context, (*path, key))
            if checked is INVALID or checked is OMIT:
                continue
            result[key] = checked
        return result

    return check


def _scalar_or_none(value: Any) -> tuple[bool, str | None]:
    if value is None:
        return True, None
    if isinstance(value, str | bool | int | float):
        return True, scalar_text(value)
    return False, None


def list_or_dict(null_as: str | None = None, value_name: str = "value") -> Kind:
    """`{K: v}` or `["K=v", "K"]` → `{K: "v"}`.

    A key without a value (`K` in the list, `K: null` in the mapping) maps to
    `null_as`: None for environment and build args (taken from the environment later),
    "" for labels.
    """

    def check(value: Any, context: Context, path: Path) -> Any:
        result: dict[str, Any] = {}
        if isinstance(value, dict):
            for key, element in value.items():
                if isinstance(element, Reset):
                    result[key] = RESET
                    continue
                if isinstance(element, Override):
                    element = element.value
                ok, text = _scalar_or_none(element)
                if not ok:
                    context.error(
                        (*path, key),
                        f"expected a string, number, boolean or null {value_name}, "
                        f"got {describe(element)}",
                    )
                    continue
                result[key] = null_as if text is None else text
            return result
        if isinstance(value, list):
            for index, element in enumerate(value):
                if not isinstance(element, str):
                    context.error(
                        (*path, index), f'expected a "KEY=VALUE" string, got {describe(element)}'
                    )
                    continue
                key, has_value, text = element.partition("=")
                if not key:
                    context.error((*path, index), f"invalid entry {element!r}: no name before '='")
                    continue
                result[key] = text if has_value else null_as
            return result
        return context.error(
            path, f'expected a mapping or a list of "KEY=VALUE" strings, got {describe(value)}'
        )

    return check


@attrs.frozen
class Field:
    kind: Kind
    required: bool = False


def struct(
    fields: Mapping[str, Kind | Field],
    *,
    ignored: Iterable[str] = (),
    rejected: Mapping[str, str] | None = None,
    check: Callable[[dict[str, Any], Context, Path], None] | None = None,
    allow_null: bool = False,
) -> Kind:
    """A mapping with known keys; `x-` keys are extensions and are dropped.

    `ignored` keys are accepted with a warning that flotta does not implement them;
    `rejected` keys are errors with the given reason; any other unknown key is an
    error that suggests the closest known key.
    """
    table = {
        name: spec if isinstance(spec, Field) else Field(spec) for name, spec in fields.items()
    }
    ignored_keys = frozenset(ignored)
    rejected_keys = dict(rejected or {})
    known = sorted(table)

    def run(value: Any, context: Context, path: Path) -> Any:
        if value is None and allow_null:
            return {}
        if not isinstance(value, dict):
            return context.error(path, f"expected a mapping, got {describe(value)}")
        result: dict[str, Any] = {}
        for key, element in value.items():
            here = (*path, key)
            if key.startswith("x-"):
                continue
            spec = table.get(key)
            if element is None and spec is not None:
                continue  # `key: null` sets nothing (and leaves earlier files' value alone)
            if spec is None:
                if key in ignored_keys:
                    context.warn(here, "not supported by flotta, ignored")
                elif key in rejected_keys:
                    context.error(here, rejected_keys[key])
                else:
                    close = difflib.get_close_matches(key, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    context.error(here, f"unknown key {key!r}{hint}")
                continue
            checked = apply(spec.kind, element, context, here)
            if checked is INVALID or checked is OMIT:
                continue
            result[key] = checked
        for name, spec in table.items():
            if spec.required and name not in result and name not in value:
                context.error(path, f"missing required key {name!r}")
        if check is not None:
            check(result, context, path)
        return result

    return run


def one_of_string(kind_for_string: Kind, kind_for_mapping: Kind) -> Kind:
    """A key with a short string form and a long mapping form."""

    def check(value: Any, context: Context, path: Path) -> Any:
        if isinstance(value, str):
            return kind_for_string(value, context, path)
        if isinstance(value, dict):
            return kind_for_mapping(value, context, path)
        return context.error(path, f"expected a string or a mapping, got {describe(value)}")

    return check
