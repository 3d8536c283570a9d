"""Variable interpolation in Compose files (`${VAR:-default}` and friends).

The rules, as the Compose specification states them:
- `$NAME` and `${NAME}` take the variable's value; NAME is `[_A-Za-z][_A-Za-z0-9]*`.
- `${NAME:-word}` gives `word` when NAME is unset or empty, `${NAME-word}` only when
  unset; `${NAME:+word}` gives `word` when NAME is set and not empty, `${NAME+word}`
  when set; `${NAME:?msg}` fails when unset or empty, `${NAME?msg}` when unset.
- The `word` / `msg` part is itself interpolated, only when it is used, so defaults
  nest: `${A:-${B:-c}}`.
- `$$` is a literal `$`. A `$` not followed by a name or `{` stays as it is.
- `${` followed by anything that is not a name and one of the operators above is an
  error ("invalid interpolation format"); so is a `${` without its closing brace.
- An unset variable without a default becomes the empty string, with a warning.

Interpolation applies to values, never to mapping keys; in a file it runs before the
file is typed and merged, so `ports: ["${PORT}:80"]` works.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import Diagnostics, Path, format_path
from .yamlload import Override, Reset

Lookup = Callable[[str], "str | None"]

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":+", ":?", "-", "+", "?")

nodes_visited_max = 250_000


class InterpolationError(ValueError):
    """A template that cannot be expanded."""


class MissingRequiredVariable(InterpolationError):
    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        text = f"required variable {variable} is missing a value"
        super().__init__(f"{text}: {reason}" if reason else text)


class InvalidTemplate(InterpolationError):
    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(
            f"invalid interpolation format in {template!r}: "
            "you may need to escape any $ with another $"
        )


def lookup_in(mapping: Mapping[str, str]) -> Lookup:
    return mapping.get


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` that closes the `${` at `start`, or -1."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char == "$" and text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def substitute(template: str, lookup: Lookup, unset: list[str] | None = None) -> str:
    """Expand `template`; names of unset variables used without default go to `unset`."""
    if "$" not in template:
        return template
    out: list[str] = []
    index = 0
    length = len(template)
    while index < length:
        dollar = template.find("$", index)
        if dollar < 0:
            out.append(template[index:])
            break
        out.append(template[index:dollar])
        after = dollar + 1
        if after < length and template[after] == "$":
            out.append("$")
            index = after + 1
            continue
        if after < length and template[after] == "{":
            close = _closing_brace(template, dollar)
            if close < 0:
                raise InvalidTemplate(template)
            out.append(_braced(template[after + 1 : close], template, lookup, unset))
            index = close + 1
            continue
        match = _NAME.match(template, after)
        if match is None:
            out.append("$")
            index = after
            continue
        name = match.group()
        value = lookup(name)
        if value is None:
            if unset is not None:
                unset.append(name)
            value = ""
        out.append(value)
        index = match.end()
    return "".join(out)


def _braced(body: str, template: str, lookup: Lookup, unset: list[str] | None) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InvalidTemplate(template)
    name = match.group()
    rest = body[match.end() :]
    value = lookup(name)
    if not rest:
        if value is None:
            if unset is not None:
                unset.append(name)
            return ""
        return value
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InvalidTemplate(template)
    word = rest[len(operator) :]
    empty_counts = operator.startswith(":")
    missing = value is None or (empty_counts and value == "")
    kind = operator[-1]
    if kind == "-":
        return substitute(word, lookup, unset) if missing else str(value)
    if kind == "+":
        return "" if missing else substitute(word, lookup, unset)
    if missing:
        raise MissingRequiredVariable(name, substitute(word, lookup, unset))
    return str(value)


def escape(text: str) -> str:
    """The template that expands to exactly `text` (every `$` doubled)."""
    return text.replace("$", "$$")


def interpolate_tree(
    tree: Any, lookup: Lookup, diagnostics: Diagnostics, file: str, path: Path = ()
) -> Any:
    """A copy of a YAML tree with every string value expanded.

    Problems (missing required variables, malformed templates) are recorded with the
    file and the path of the value; the value is then left as it was, so that the rest
    of the file can still be checked.
    """
    budget = [nodes_visited_max]
    return _walk(tree, lookup, diagnostics, file, path, budget)


class TreeTooLarge(InterpolationError):
    pass


def _walk(
    node: Any, lookup: Lookup, diagnostics: Diagnostics, file: str, path: Path, budget: list[int]
) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise TreeTooLarge(
            f"the document has more than {nodes_visited_max} values once aliases are expanded"
        )
    if isinstance(node, str):
        unset: list[str] = []
        try:
            value = substitute(node, lookup, unset)
        except InterpolationError as error:
            diagnostics.error(file, path, str(error))
            return node
        for name in unset:
            diagnostics.warn(
                f'{file}: {_text(path)}: the "{name}" variable is not set, '
                "defaulting to a blank string"
            )
        return value
    if isinstance(node, dict):
        return {
            key: _walk(value, lookup, diagnostics, file, (*path, key), budget)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            _walk(value, lookup, diagnostics, file, (*path, index), budget)
            for index, value in enumerate(node)
        ]
    if isinstance(node, Override):
        return Override(_walk(node.value, lookup, diagnostics, file, path, budget))
    if isinstance(node, Reset):
        return node
    return node


def _text(path: Path) -> str:
    return format_path(path) or "<top>"
