"""The Dockerfile parser: text in, a typed `Dockerfile` out, or one `DockerfileError`.

`lines.py` cuts the text into logical lines (directives, comments, continuations,
heredocs); this module gives each line its instruction class, checking arguments and
flags with Docker's rules and messages, and groups instructions into stages.

    dockerfile = parse_dockerfile(b"FROM busybox\\nRUN echo hi\\n")

Parsing is total: any input gives a Dockerfile or raises DockerfileError with the line.
"""

from __future__ import annotations

import difflib
import re

from . import flags as flagkinds
from .errors import DockerfileError
from .flags import FlagError, bool_flag, parse_flags, string_flag, strings_flag
from .gocompat import (
    MILLISECOND,
    DurationError,
    go_quote,
    go_trim_left_space,
    go_trim_space,
    is_go_space,
    parse_go_duration,
)
from .instructions import (
    INSTRUCTION_NAMES,
    Add,
    Arg,
    ArgDeclaration,
    Cmd,
    Copy,
    Dockerfile,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    InlineSource,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stage,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from .lines import (
    JsonArgumentsError,
    Node,
    chomp_heredoc,
    parse_heredoc_word,
    parse_json_array,
    parse_lines,
    split_command,
)
from .shellwords import ExpansionError

_ASCII_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_ONBUILD_PREFIX = re.compile(r"^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.IGNORECASE)
_DECIMAL = re.compile(r"^[+-]?[0-9]+$")
_RUN_FLAGS = {
    "mount": flagkinds.STRINGS,
    "network": flagkinds.STRING,
    "security": flagkinds.STRING,
    "device": flagkinds.STRINGS,
}
_COPY_FLAGS = {
    "chown": flagkinds.STRING,
    "from": flagkinds.STRING,
    "chmod": flagkinds.STRING,
    "link": flagkinds.BOOL,
    "exclude": flagkinds.STRINGS,
}
_ADD_FLAGS = {
    "chown": flagkinds.STRING,
    "chmod": flagkinds.STRING,
    "link": flagkinds.BOOL,
    "keep-git-dir": flagkinds.BOOL,
    "checksum": flagkinds.STRING,
    "unpack": flagkinds.BOOL,
    "exclude": flagkinds.STRINGS,
}
_HEALTHCHECK_FLAGS = {
    "interval": flagkinds.STRING,
    "timeout": flagkinds.STRING,
    "start-period": flagkinds.STRING,
    "start-interval": flagkinds.STRING,
    "retries": flagkinds.STRING,
}


class _Problem(Exception):
    """An argument error inside one instruction; the caller adds the line numbers."""


def parse_dockerfile(data: bytes | str) -> Dockerfile:
    """Parse a whole Dockerfile (see the module docstring)."""
    parsed = parse_lines(data)
    if not parsed.nodes:
        raise DockerfileError("file with no instructions")
    stages: list[Stage] = []
    global_args: list[Arg] = []
    pending: list[Instruction] = []
    current: From | None = None
    for node in parsed.nodes:
        instruction = parse_instruction(node, parsed.escape)
        if isinstance(instruction, From):
            if current is not None:
                stages.append(Stage(len(stages), current, tuple(pending)))
            current = instruction
            pending = []
        elif current is None:
            if isinstance(instruction, Arg):
                global_args.append(instruction)
            else:
                raise DockerfileError(
                    "no build stage in current context", node.start_line, node.end_line
                )
        else:
            pending.append(instruction)
    if current is not None:
        stages.append(Stage(len(stages), current, tuple(pending)))
    directives = dict(parsed.directives)
    return Dockerfile(
        stages=tuple(stages),
        global_args=tuple(global_args),
        escape=parsed.escape,
        syntax=directives.get("syntax"),
        directives=parsed.directives,
        warnings=parsed.warnings,
    )


def parse_instruction(node: Node, escape: str = "\\") -> Instruction:
    """The typed instruction of one logical line; DockerfileError naming the line."""
    try:
        return _parse(node, escape)
    except (_Problem, FlagError, JsonArgumentsError, ExpansionError) as problem:
        message = problem.message if isinstance(problem, ExpansionError) else str(problem)
        raise DockerfileError(message, node.start_line, node.end_line) from None


def _parse(node: Node, escape: str) -> Instruction:
    keyword = node.keyword.lower()
    parse = _PARSERS.get(keyword)
    if parse is None:
        message = f"unknown instruction: {node.keyword}"
        close = difflib.get_close_matches(node.keyword.upper(), INSTRUCTION_NAMES, n=1)
        if close:
            message += f" (did you mean {close[0]}?)"
        raise _Problem(message)
    common = {
        "line": node.start_line,
        "end_line": node.end_line,
        "original": go_trim_space(node.original),
    }
    return parse(node, escape, common)


def _flags(node: Node, known: dict[str, str]) -> dict[str, str | bool | tuple[str, ...]]:
    values, _ = parse_flags(node.flags, known)
    return values


def _no_flags(node: Node) -> None:
    parse_flags(node.flags, {})


def parse_words(text: str, escape: str) -> list[str]:
    """Docker's parseWords: split on whitespace outside quotes, keeping quotes and escapes."""
    words: list[str] = []
    buffer: list[str] = []
    blank_ok = False
    quote = ""
    in_word = False
    position = 0
    length = len(text)
    while position < length:
        character = text[position]
        if not in_word:
            if is_go_space(character):
                position += 1
                continue
            in_word = True
        if quote:
            if character == quote:
                quote = ""
            if character == escape and quote != "'":
                if position + 1 == length:
                    quote = ""
                    position += 1
                    continue
                buffer.append(character)
                position += 1
                character = text[position]
            buffer.append(character)
            position += 1
            continue
        if is_go_space(character):
            in_word = False
            if blank_ok or buffer:
                words.append("".join(buffer))
            buffer = []
            blank_ok = False
            position += 1
            continue
        if character in "'\"":
            quote = character
            blank_ok = True
        elif character == escape:
            if position + 1 == length:
                position += 1
                continue
            buffer.append(character)
            position += 1
            character = text[position]
        buffer.append(character)
        position += 1
    if in_word and (blank_ok or buffer):
        words.append("".join(buffer))
    return words


def _whitespace_words(text: str) -> list[str]:
    if text == "":
        return []
    return _ASCII_WHITESPACE.split(text)


def _maybe_json(text: str) -> tuple[list[str], bool]:
    """Arguments of RUN/CMD/ENTRYPOINT/SHELL: a JSON array, else the text as one string."""
    if text == "":
        return [], False
    parsed = parse_json_array(text)
    if parsed is not None:
        return parsed, True
    return [text], False


def _maybe_json_list(text: str) -> tuple[list[str], bool]:
    """Arguments of COPY/ADD/VOLUME: a JSON array, else whitespace-separated words."""
    parsed = parse_json_array(text)
    if parsed is not None:
        return parsed, True
    return _whitespace_words(text), False


def _key_values(node: Node, escape: str, name: str) -> tuple[KeyValue, ...]:
    words = parse_words(node.arguments, escape)
    if not words:
        raise _Problem(f"{name} requires at least one argument")
    if "=" not in words[0]:
        parts = _ASCII_WHITESPACE.split(node.arguments, maxsplit=1)
        if len(parts) < 2:
            raise _Problem(f"{name} must have two arguments")
        return (KeyValue(parts[0], parts[1], has_delimiter=False),)
    pairs = []
    for word in words:
        if "=" not in word:
            raise _Problem(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        key, _, value = word.partition("=")
        if key == "":
            raise _Problem(f"{name} names can not be blank")
        pairs.append(KeyValue(key, value))
    return tuple(pairs)


def _parse_env(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    return Env(pairs=_key_values(node, escape, "ENV"), **common)


def _parse_label(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    return Label(pairs=_key_values(node, escape, "LABEL"), **common)


def _parse_arg(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    words = parse_words(node.arguments, escape)
    if not words:
        raise _Problem("ARG requires at least one argument")
    declarations = []
    for word in words:
        if "=" in word:
            name, _, default = word.partition("=")
            if name == "":
                raise _Problem("ARG names can not be blank")
            declarations.append(ArgDeclaration(name, default))
        else:
            declarations.append(ArgDeclaration(word))
    return Arg(declarations=tuple(declarations), **common)


def _single_argument(node: Node, name: str) -> str:
    _no_flags(node)
    if node.arguments == "":
        raise _Problem(f"{name} requires exactly one argument")
    return node.arguments


def _parse_maintainer(node: Node, escape: str, common: dict) -> Instruction:
    return Maintainer(maintainer=_single_argument(node, "MAINTAINER"), **common)


def _parse_workdir(node: Node, escape: str, common: dict) -> Instruction:
    return Workdir(path=_single_argument(node, "WORKDIR"), **common)


def _parse_user(node: Node, escape: str, common: dict) -> Instruction:
    return User(user=_single_argument(node, "USER"), **common)


def _parse_stopsignal(node: Node, escape: str, common: dict) -> Instruction:
    return StopSignal(signal=_single_argument(node, "STOPSIGNAL"), **common)


def _parse_from(node: Node, escape: str, common: dict) -> Instruction:
    values = _flags(node, {"platform": flagkinds.STRING})
    words = _whitespace_words(node.arguments)
    stage_name = None
    if len(words) == 3 and words[1].lower() == "as":
        stage_name = words[2].lower()
        if not _STAGE_NAME.match(stage_name):
            raise _Problem(
                f"invalid name for build stage: {go_quote(words[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif len(words) != 1:
        raise _Problem("FROM requires either one or three arguments")
    return From(
        base=words[0], stage_name=stage_name, platform=string_flag(values, "platform"), **common
    )


def _command_line(node: Node, name: str) -> tuple[list[str], bool]:
    arguments, exec_form = _maybe_json(node.arguments)
    if not exec_form and not arguments:
        raise _Problem(f"{name} requires at least one argument")
    return arguments, exec_form


def _parse_run(node: Node, escape: str, common: dict) -> Instruction:
    _, used = parse_flags(node.flags, _RUN_FLAGS)
    arguments, exec_form = _command_line(node, "RUN")
    command = tuple(arguments) if exec_form else (" ".join(arguments),)
    return Run(
        command=command, exec_form=exec_form, heredocs=node.heredocs, flags_used=used, **common
    )


def _parse_cmd(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    arguments, exec_form = _command_line(node, "CMD")
    return Cmd(command=tuple(arguments), exec_form=exec_form, **common)


def _parse_entrypoint(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    arguments, exec_form = _command_line(node, "ENTRYPOINT")
    command = tuple(arguments) if arguments else None
    return Entrypoint(command=command, exec_form=exec_form, **common)


def _parse_shell(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    arguments, exec_form = _maybe_json(node.arguments)
    if not arguments:
        raise _Problem("SHELL requires at least one argument")
    if not exec_form:
        raise _Problem("SHELL requires the arguments to be in JSON form")
    return Shell(shell=tuple(arguments), **common)


def _parse_expose(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    ports = _whitespace_words(node.arguments)
    if not ports:
        raise _Problem("EXPOSE requires at least one argument")
    return Expose(ports=tuple(sorted(ports)), **common)


def _parse_volume(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    arguments, _ = _maybe_json_list(node.arguments)
    if not arguments:
        raise _Problem("VOLUME requires at least one argument")
    paths = []
    for argument in arguments:
        path = go_trim_space(argument)
        if path == "":
            raise _Problem("VOLUME specified can not be an empty string")
        paths.append(path)
    return Volume(paths=tuple(paths), **common)


def _interval(values: dict, name: str) -> int:
    text = string_flag(values, name)
    if not text:
        return 0
    try:
        nanoseconds = parse_go_duration(text)
    except DurationError as error:
        raise _Problem(str(error)) from None
    if nanoseconds == 0:
        return 0
    if nanoseconds < MILLISECOND:
        raise _Problem(f"Interval {go_quote(name)} cannot be less than 1ms")
    return nanoseconds


def _parse_healthcheck(node: Node, escape: str, common: dict) -> Instruction:
    text = node.arguments
    separator = 0
    while separator < len(text) and not is_go_space(text[separator]):
        separator += 1
    if separator == 0:
        raise _Problem("HEALTHCHECK requires at least one argument")
    kind = text[:separator].upper()
    rest = go_trim_left_space(text[separator:])
    arguments, exec_form = _maybe_json(rest)
    if kind == "NONE":
        if arguments:
            raise _Problem("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(test=("NONE",), **common)
    values = _flags(node, _HEALTHCHECK_FLAGS)
    if kind != "CMD":
        raise _Problem(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    if not arguments:
        raise _Problem("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *arguments) if exec_form else ("CMD-SHELL", " ".join(arguments))
    retries = 0
    retries_text = string_flag(values, "retries")
    if retries_text:
        if not _DECIMAL.match(retries_text):
            raise _Problem(f"strconv.ParseInt: parsing {go_quote(retries_text)}: invalid syntax")
        retries = int(retries_text)
        if not -(2**31) <= retries < 2**31:
            raise _Problem(
                f"strconv.ParseInt: parsing {go_quote(retries_text)}: value out of range"
            )
        if retries < 0:
            raise _Problem(f"--retries cannot be negative ({retries})")
    return Healthcheck(
        test=test,
        interval_nanoseconds=_interval(values, "interval"),
        timeout_nanoseconds=_interval(values, "timeout"),
        start_period_nanoseconds=_interval(values, "start-period"),
        start_interval_nanoseconds=_interval(values, "start-interval"),
        retries=retries,
        **common,
    )


def _sources_and_destination(
    node: Node, name: str
) -> tuple[tuple[str, ...], str, tuple[InlineSource, ...]]:
    arguments, _ = _maybe_json_list(node.arguments)
    if len(arguments) < 2:
        raise _Problem(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    destination = arguments[-1]
    if parse_heredoc_word(destination) is not None:
        raise _Problem(f"{name} cannot accept a heredoc as a destination")
    bodies = {heredoc.name: heredoc for heredoc in node.heredocs}
    paths: list[str] = []
    inline: list[InlineSource] = []
    for source in arguments[:-1]:
        opener = parse_heredoc_word(source)
        if opener is None:
            paths.append(source)
            continue
        body = bodies.get(opener.name)
        data = body.content if body is not None else ""
        if opener.chomp:
            data = chomp_heredoc(data)
        inline.append(InlineSource(name=opener.name, data=data, expand=opener.expand))
    return tuple(paths), destination, tuple(inline)


def _parse_copy(node: Node, escape: str, common: dict) -> Instruction:
    values = _flags(node, _COPY_FLAGS)
    sources, destination, inline = _sources_and_destination(node, "COPY")
    return Copy(
        sources=sources,
        destination=destination,
        inline_sources=inline,
        from_reference=string_flag(values, "from") or None,
        chown=string_flag(values, "chown") or None,
        chmod=string_flag(values, "chmod") or None,
        link=bool_flag(values, "link") or False,
        excludes=strings_flag(values, "exclude"),
        **common,
    )


def _parse_add(node: Node, escape: str, common: dict) -> Instruction:
    values = _flags(node, _ADD_FLAGS)
    sources, destination, inline = _sources_and_destination(node, "ADD")
    return Add(
        sources=sources,
        destination=destination,
        inline_sources=inline,
        chown=string_flag(values, "chown") or None,
        chmod=string_flag(values, "chmod") or None,
        link=bool_flag(values, "link") or False,
        excludes=strings_flag(values, "exclude"),
        checksum=string_flag(values, "checksum") or None,
        keep_git_dir=bool_flag(values, "keep-git-dir"),
        unpack=bool_flag(values, "unpack"),
        **common,
    )


def _parse_onbuild(node: Node, escape: str, common: dict) -> Instruction:
    _no_flags(node)
    if node.arguments == "":
        raise _Problem("ONBUILD requires at least one argument")
    keyword, flags, arguments = split_command(node.arguments, escape)
    trigger_name = keyword.upper()
    if trigger_name == "ONBUILD":
        raise _Problem("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_name in ("MAINTAINER", "FROM"):
        raise _Problem(f"{trigger_name} isn't allowed as an ONBUILD trigger")
    nested = Node(
        keyword=keyword,
        flags=flags,
        arguments=arguments,
        original=node.arguments,
        start_line=node.start_line,
        end_line=node.end_line,
        heredocs=node.heredocs,
    )
    trigger = _parse(nested, escape)
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for heredoc in node.heredocs:
        expression += "\n" + heredoc.content + heredoc.name
    return Onbuild(expression=expression, trigger=trigger, **common)


_PARSERS = {
    "from": _parse_from,
    "run": _parse_run,
    "cmd": _parse_cmd,
    "entrypoint": _parse_entrypoint,
    "shell": _parse_shell,
    "env": _parse_env,
    "arg": _parse_arg,
    "label": _parse_label,
    "expose": _parse_expose,
    "workdir": _parse_workdir,
    "user": _parse_user,
    "volume": _parse_volume,
    "stopsignal": _parse_stopsignal,
    "healthcheck": _parse_healthcheck,
    "copy": _parse_copy,
    "add": _parse_add,
    "onbuild": _parse_onbuild,
    "maintainer": _parse_maintainer,
}
