"""A subset of Go's text/template, with the functions the docker CLI adds.

Supported: text and `{{ }}` actions with trim markers `{{-`/`-}}` and comments; fields
`.A.B` (map keys, or attributes/methods of context objects, methods called with arguments
as in `{{.Label "k"}}`), `.`, `$`, variables (`$x := ...`, `$x = ...`); string, raw string,
character, number, bool and nil literals; pipelines `a | b` (the value is passed as the last
argument); parenthesised pipelines; `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`,
`break`, `continue`), `with`/`else`, `end`. Functions: Go's and, or, not, len, index,
slice, print, printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery, and docker's
json, split, join, title, lower, upper, pad, truncate. Not supported: define, template,
block, call (they raise a parse error).

Values are Python objects: dicts are Go maps (missing key -> "<no value>"), lists are
slices, None is nil; other objects expose fields as attributes, and methods as callables.
Errors are `TemplateError` with a one-line message shaped like Go's.
"""

from actors.client.gotemplate_functions import (
    FUNCTIONS,
    HEADER_FUNCTIONS,
    LAZY_FUNCTIONS,
    NO_VALUE,
    format_value,
    to_json,
    truth,
)
from actors.client.gotemplate_parse import Chain, Parser, Pipeline, TemplateError, Token

__all__ = ["FUNCTIONS", "HEADER_FUNCTIONS", "NO_VALUE", "Template", "TemplateError",
           "format_value", "render", "to_json", "truth"]


# --------------------------------------------------------------------------- executor


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


ITERATIONS_MAX = 10_000_000


class Template:
    """A parsed template; `execute(data)` returns the rendered text."""

    def __init__(self, source: str, functions: dict | None = None) -> None:
        self.source = source
        self.functions = dict(FUNCTIONS)
        if functions:
            self.functions.update(functions)
        self.nodes = Parser(source).parse()

    def execute(self, data, functions: dict | None = None,
                missing_key_error: bool = False) -> str:
        """Render against `data`; `missing_key_error` is Go's Option("missingkey=error")."""
        out: list[str] = []
        table = dict(self.functions)
        if functions:
            table.update(functions)
        state = _State(table, data, missing_key_error)
        try:
            state.walk(self.nodes, data, out)
        except (_Break, _Continue):
            raise TemplateError("template: :1: break or continue outside range") from None
        return "".join(out)


class _State:
    def __init__(self, functions: dict, root, missing_key_error: bool = False) -> None:
        self.functions = functions
        self.scopes: list[dict] = [{"$": root}]
        self.missing_key_error = missing_key_error
        self.node = None

    def error(self, pipeline: Pipeline, message: str) -> TemplateError:
        node = self.node
        if node is None:
            return TemplateError(
                f'template: :{pipeline.line}: executing "" at <{pipeline.source}>: {message}'
            )
        return TemplateError(
            f'template: :{node.line}:{node.column}: executing "" at <{node.text}>: {message}'
        )

    def lookup_variable(self, name: str, pipeline: Pipeline):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f"template: :{pipeline.line}: undefined variable: {name}")

    def set_variable(self, name: str, value, declare: bool, pipeline: Pipeline) -> None:
        if declare:
            self.scopes[-1][name] = value
            return
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise TemplateError(f"template: :{pipeline.line}: undefined variable: {name}")

    def walk(self, nodes: list, dot, out: list) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                pipeline = node[1]
                value = self.pipeline(pipeline, dot)
                if not pipeline.variables:
                    out.append(format_value(value))
            elif kind == "if":
                self.scopes.append({})
                try:
                    chosen = node[2] if truth(self.pipeline(node[1], dot)) else node[3]
                    self.walk(chosen, dot, out)
                finally:
                    self.scopes.pop()
            elif kind == "with":
                self.scopes.append({})
                try:
                    value = self.pipeline(node[1], dot)
                    if truth(value):
                        self.walk(node[2], value, out)
                    else:
                        self.walk(node[3], dot, out)
                finally:
                    self.scopes.pop()
            elif kind == "range":
                self.range(node, dot, out)
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()

    def range(self, node, dot, out: list) -> None:
        pipeline = node[1]
        self.scopes.append({})
        try:
            collection = self.pipeline_value(pipeline, dot)
            if isinstance(collection, dict):
                items = [(key, collection[key]) for key in sorted(collection, key=str)]
            elif isinstance(collection, (list, tuple)):
                items = list(enumerate(collection))
            elif isinstance(collection, int) and not isinstance(collection, bool):
                items = [(index, index) for index in range(min(collection, ITERATIONS_MAX))]
            elif collection is None or collection is NO_VALUE:
                items = []
            else:
                raise self.error(pipeline, f"range can't iterate over {format_value(collection)}")
            if not items:
                self.walk(node[3], dot, out)
                return
            for key, value in items:
                scope = {}
                if len(pipeline.variables) == 1:
                    scope[pipeline.variables[0]] = value
                elif len(pipeline.variables) == 2:
                    scope[pipeline.variables[0]] = key
                    scope[pipeline.variables[1]] = value
                self.scopes.append(scope)
                try:
                    self.walk(node[2], value, out)
                except _Break:
                    break
                except _Continue:
                    continue
                finally:
                    self.scopes.pop()
        finally:
            self.scopes.pop()

    def pipeline_value(self, pipeline: Pipeline, dot):
        """Evaluate a range pipeline without binding its variables (range binds them)."""
        value = None
        for position, command in enumerate(pipeline.commands):
            value = self.command(command, dot, pipeline, value, position > 0)
        return value

    def pipeline(self, pipeline: Pipeline, dot):
        value = None
        for position, command in enumerate(pipeline.commands):
            value = self.command(command, dot, pipeline, value, position > 0)
        for name in pipeline.variables:
            self.set_variable(name, value, pipeline.declare, pipeline)
        return value

    def command(self, operands: list, dot, pipeline: Pipeline, piped, has_piped: bool):
        self.node = operands
        head = operands[0]
        if isinstance(head, Token) and head.kind == "identifier":
            name = head.value
            if name in LAZY_FUNCTIONS:
                return self.lazy_logic(name, operands[1:], dot, pipeline, piped, has_piped)
            function = self.functions.get(name)
            if function is None:
                raise TemplateError(
                    f'template: :{pipeline.line}: function "{name}" not defined'
                )
            args = [self.operand(operand, dot, pipeline) for operand in operands[1:]]
            if has_piped:
                args.append(piped)
            try:
                return function(*args)
            except TemplateError as error:
                message = str(error)
                if message.startswith("template:"):
                    raise
                raise self.error(pipeline, message) from None
            except TypeError:
                raise self.error(
                    pipeline, f"wrong number of args for {name}: got {len(args)}"
                ) from None
        if (isinstance(head, Chain) and len(operands) > 1) or has_piped:
            # A method call with arguments, e.g. `.Label "key"`.
            if isinstance(head, Chain) and head.fields:
                receiver = self.operand(Chain(head.base, head.fields[:-1]), dot, pipeline)
                args = [self.operand(operand, dot, pipeline) for operand in operands[1:]]
                if has_piped:
                    args.append(piped)
                return self.field(receiver, head.fields[-1], pipeline, args)
            raise self.error(pipeline, "can't give argument to non-function")
        if len(operands) > 1:
            raise self.error(pipeline, "can't give argument to non-function")
        if isinstance(head, Token) and head.kind == "nil":
            raise self.error(pipeline, "nil is not a command")
        return self.operand(head, dot, pipeline)

    def lazy_logic(self, name, operands, dot, pipeline, piped, has_piped):
        if not operands and not has_piped:
            raise self.error(pipeline, f"wrong number of args for {name}: want at least 1 got 0")
        value = None
        thunks = [lambda operand=operand: self.operand(operand, dot, pipeline)
                  for operand in operands]
        if has_piped:
            thunks.append(lambda: piped)
        for thunk in thunks:
            value = thunk()
            if (name == "and") != truth(value):
                return value
        return value

    def operand(self, operand, dot, pipeline: Pipeline):
        if isinstance(operand, Chain):
            base = operand.base
            if isinstance(base, Pipeline):
                value = self.pipeline(base, dot)
            else:
                value = self.operand(base, dot, pipeline)
            saved, self.node = self.node, operand
            for name in operand.fields:
                value = self.field(value, name, pipeline, [])
            self.node = saved
            return value
        if isinstance(operand, Pipeline):
            return self.pipeline(operand, dot)
        kind = operand.kind
        if kind == "dot":
            return dot
        if kind == "literal":
            return operand.value
        if kind == "nil":
            return None
        if kind == "variable":
            return self.lookup_variable(operand.value, pipeline)
        if kind == "identifier":
            function = self.functions.get(operand.value)
            if function is None:
                raise TemplateError(
                    f'template: :{pipeline.line}: function "{operand.value}" not defined'
                )
            try:
                return function()
            except TypeError:
                raise self.error(
                    pipeline, f"wrong number of args for {operand.value}: got 0"
                ) from None
        raise self.error(pipeline, f"unexpected operand {operand!r}")

    def field(self, receiver, name: str, pipeline: Pipeline, args: list):
        if isinstance(receiver, dict):
            if args:
                raise self.error(pipeline, f"{name} is not a method but has arguments")
            if self.missing_key_error and name not in receiver:
                raise self.error(pipeline, f'map has no entry for key "{name}"')
            value = receiver.get(name)
            # A JSON null in a map is an empty interface value to Go: "<no value>".
            return NO_VALUE if value is None else value
        if receiver is None or receiver is NO_VALUE:
            return NO_VALUE
        if isinstance(receiver, (str, int, float, bool, list, tuple)):
            raise self.error(
                pipeline,
                f"can't evaluate field {name} in type {_go_type_name(receiver)}",
            )
        if name.startswith("_"):
            raise self.error(pipeline, f"{name} is an unexported field")
        try:
            value = getattr(receiver, name)
        except AttributeError:
            raise self.error(
                pipeline,
                f"can't evaluate field {name} in type {_go_type_name(receiver)}",
            ) from None
        if callable(value):
            try:
                return value(*args)
            except TypeError as error:
                raise self.error(
                    pipeline, f"wrong number of args for {name}: {error}"
                ) from None
        if args:
            raise self.error(pipeline, f"{name} is not a method but has arguments")
        return value


def _go_type_name(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    name = getattr(type(value), "go_type_name", None)
    return name or f"*{type(value).__name__}"


def render(source: str, data, functions: dict | None = None) -> str:
    """Parse and execute `source` against `data` in one call."""
    return Template(source, functions).execute(data)
