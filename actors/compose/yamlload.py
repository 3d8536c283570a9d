"""Reading Compose YAML the way Docker Compose reads it.

Docker Compose parses YAML 1.2 (Go's yaml.v3); PyYAML implements YAML 1.1, whose
implicit types would silently change meaning here: `80:80` would be a base-60 integer,
`no`/`on` booleans, `2024-01-01` a date. This loader resolves plain scalars with the
YAML 1.2 core schema instead (true/false, null/~, decimal, 0o octal and 0x hex ints,
floats, .inf/.nan) and keeps everything else a string.

Also, as Compose does:
- a key repeated in one mapping is an error (PyYAML would keep the last one);
- merge keys (`<<: *anchor`) work;
- mapping keys become strings (`80: x` has the key "80");
- the tags `!reset` and `!override` are kept as `Reset` / `Override` markers for
  the merge step (see merge.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs
import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from .errors import Problem

_MERGE_TAG = "tag:yaml.org,2002:merge"


@attrs.frozen
class Reset:
    """A value tagged `!reset`: remove what earlier files set here."""

    value: Any = None


@attrs.frozen
class Override:
    """A value tagged `!override`: replace what earlier files set, without merging."""

    value: Any = None


class _Resolver12(BaseResolver):
    pass


_Resolver12.yaml_implicit_resolvers = {}
_Resolver12.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver12.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver12.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver12.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Resolver12.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])


def scalar_text(value: Any) -> str:
    """A YAML scalar as text, for values Compose takes as strings (`FOO: 1` is "1")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


class _Constructor(SafeConstructor):
    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        text = str(self.construct_scalar(node)).lower()
        if text.endswith(".inf"):
            return float("-inf") if text.startswith("-") else float("inf")
        if text == ".nan":
            return float("nan")
        return float(text)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark
            )
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            if key in first_line:
                raise ConstructorError(
                    None,
                    None,
                    f'mapping key "{key}" already defined at line {first_line[key]}',
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            mapping[self._key(key_node)] = self.construct_object(value_node, deep=deep)
        return mapping

    def _key(self, node: Any) -> str:
        """A key as written: `80`, `true`, `NULL` are the strings they look like."""
        if not isinstance(node, ScalarNode):
            raise ConstructorError(
                None, None, "mapping keys must be strings, not collections", node.start_mark
            )
        return str(node.value)

    def construct_yaml_map(self, node: MappingNode) -> Iterator[dict[str, Any]]:
        data: dict[str, Any] = {}
        yield data
        data.update(self.construct_mapping(node))

    def _construct_tagged(self, node: Any) -> Any:
        if isinstance(node, MappingNode):
            return self.construct_mapping(node, deep=True)
        if isinstance(node, SequenceNode):
            return self.construct_sequence(node, deep=True)
        tag = self.resolve(ScalarNode, node.value, (True, False))
        plain = ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
        return self.construct_object(plain, deep=True)

    def construct_reset(self, node: Any) -> Reset:
        return Reset(self._construct_tagged(node))

    def construct_override(self, node: Any) -> Override:
        return Override(self._construct_tagged(node))


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)
_Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_yaml_float)
_Constructor.add_constructor("tag:yaml.org,2002:map", _Constructor.construct_yaml_map)
_Constructor.add_constructor("!reset", _Constructor.construct_reset)
_Constructor.add_constructor("!override", _Constructor.construct_override)
# YAML 1.2 has no implicit timestamps; an explicit `!!timestamp` stays text.
_Constructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = None


if _Parser is not None:

    class _Loader(_Parser, _Constructor, _Resolver12):
        def __init__(self, stream: str) -> None:
            _Parser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver12.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, Composer, _Constructor, _Resolver12):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver12.__init__(self)


class YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def load_documents(text: str, file: str) -> list[Any]:
    """Every document in `text`, constructed with Compose's YAML rules.

    Raises `YamlProblem` naming the file and line for malformed YAML.
    """
    loader = _Loader(text)
    documents: list[Any] = []
    try:
        while loader.check_data():
            documents.append(loader.get_data())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        message = error.problem or str(error)
        if error.context and error.problem:
            message = f"{error.context}: {error.problem}"
        raise YamlProblem(Problem(file, "", f"invalid YAML: {message}", line)) from None
    except yaml.YAMLError as error:
        raise YamlProblem(Problem(file, "", f"invalid YAML: {error}")) from None
    finally:
        loader.dispose()
    return documents


def dump_yaml(data: Any) -> str:
    """YAML text that this module's loader reads back to `data` (block style, 2 spaces)."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        indent=2,
    )


class _Dumper(yaml.SafeDumper):
    """Quotes every string a YAML 1.1 or 1.2 reader could take for another type.

    SafeDumper already quotes what its own YAML 1.1 resolver would misread; strings
    that only YAML 1.2 reads differently (`0o17`, `0x1F`) are quoted here.
    """

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


_RESOLVER_12 = _Resolver12()
_BREAKS = frozenset("\r\n\x85\u2028\u2029\x7f")


def _needs_quotes(value: str) -> bool:
    """True if a YAML 1.2 reader would take the plain scalar for something else."""
    if value in ("", "=", "<<") or any(char in _BREAKS or char < " " for char in value):
        return True
    resolved = _RESOLVER_12.resolve(ScalarNode, value, (True, False))
    return resolved != "tag:yaml.org,2002:str"


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _needs_quotes(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_none(dumper: yaml.SafeDumper, _value: None) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:null", "null")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(type(None), _represent_none)
