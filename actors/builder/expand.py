"""Variable substitution applied to instructions, at the points Docker applies it.

Substituted (with the stage's Env plus the ARGs visible at that point):
ENV (names and values), LABEL (names and values), ARG (names and defaults), ADD and
COPY (sources, destination, --chown, --chmod, ADD's --checksum, and the body of an
unquoted heredoc source), WORKDIR, USER, VOLUME, STOPSIGNAL, and EXPOSE (the one
instruction whose words may split: `EXPOSE $PORTS` with PORTS="80 443" exposes two).
FROM (name and --platform) is substituted with the global ARGs only; see plan.py.

Not substituted: RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK (the shell does that at run
time), ONBUILD (substituted when the trigger runs in the child build), MAINTAINER, and
COPY --from (refused when it contains a variable, as BuildKit does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .errors import BuildError
from .instructions import (
    Add,
    Arg,
    ArgDeclaration,
    Copy,
    Env,
    Expose,
    InlineSource,
    Instruction,
    KeyValue,
    Label,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from .shellwords import ExpansionError, Lexer


def expand_instruction(
    instruction: Instruction, env: Mapping[str, str], escape: str = "\\"
) -> Instruction:
    """A copy of instruction with variables substituted; BuildError naming the line."""
    lexer = Lexer(escape=escape)
    try:
        return _expand(instruction, env, lexer)
    except ExpansionError as error:
        raise BuildError(error.message, instruction.line) from None


def _word(lexer: Lexer, env: Mapping[str, str], text: str) -> str:
    return lexer.process_word(text, env)


def _optional(lexer: Lexer, env: Mapping[str, str], text: str | None) -> str | None:
    if text is None:
        return None
    return lexer.process_word(text, env) or None


def _pairs(lexer: Lexer, env: Mapping[str, str], pairs: tuple[KeyValue, ...]) -> tuple[KeyValue, ...]:
    return tuple(
        KeyValue(_word(lexer, env, pair.key), _word(lexer, env, pair.value), pair.has_delimiter)
        for pair in pairs
    )


def _inline(env: Mapping[str, str], sources: tuple[InlineSource, ...]) -> tuple[InlineSource, ...]:
    # Heredoc bodies keep their quotes: only `$` and the escape character are special.
    raw = Lexer(escape="\\", skip_process_quotes=True)
    return tuple(
        attrs.evolve(source, data=raw.process_word(source.data, env)) if source.expand else source
        for source in sources
    )


def _expand(instruction: Instruction, env: Mapping[str, str], lexer: Lexer) -> Instruction:
    match instruction:
        case Env(pairs=pairs):
            return attrs.evolve(instruction, pairs=_pairs(lexer, env, pairs))
        case Label(pairs=pairs, expand=True):
            return attrs.evolve(instruction, pairs=_pairs(lexer, env, pairs))
        case Arg(declarations=declarations):
            return attrs.evolve(
                instruction,
                declarations=tuple(
                    ArgDeclaration(
                        _word(lexer, env, declaration.name),
                        None
                        if declaration.default is None
                        else _word(lexer, env, declaration.default),
                    )
                    for declaration in declarations
                ),
            )
        case Copy() | Add():
            reference = instruction.from_reference if isinstance(instruction, Copy) else None
            if reference is not None and _word(lexer, {}, reference) != reference:
                raise BuildError(
                    "variable expansion is not supported for --from, define a new stage "
                    "with FROM using ARG from global scope as a workaround",
                    instruction.line,
                )
            changes: dict[str, Any] = {
                "sources": tuple(_word(lexer, env, source) for source in instruction.sources),
                "destination": _word(lexer, env, instruction.destination),
                "chown": _optional(lexer, env, instruction.chown),
                "chmod": _optional(lexer, env, instruction.chmod),
                "inline_sources": _inline(env, instruction.inline_sources),
            }
            if isinstance(instruction, Add):
                changes["checksum"] = _optional(lexer, env, instruction.checksum)
            return attrs.evolve(instruction, **changes)
        case Workdir(path=path):
            return attrs.evolve(instruction, path=_word(lexer, env, path))
        case User(user=user):
            return attrs.evolve(instruction, user=_word(lexer, env, user))
        case Volume(paths=paths):
            return attrs.evolve(instruction, paths=tuple(_word(lexer, env, path) for path in paths))
        case StopSignal(signal=signal):
            return attrs.evolve(instruction, signal=_word(lexer, env, signal))
        case Expose(ports=ports):
            words: list[str] = []
            for port in ports:
                words.extend(lexer.process_words(port, env))
            return attrs.evolve(instruction, ports=tuple(words))
    return instruction
