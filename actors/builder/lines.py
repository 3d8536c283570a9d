"""Dockerfile text to logical instruction lines, with Docker's exact line rules.

The rules, in the order they apply:

1. Parser directives (`# syntax=...`, `# escape=\\` or `` # escape=` ``, `# check=...`)
   are recognised only on the leading lines, before any instruction, comment or empty
   line; each may appear once. `escape` changes the escape character for the rest of
   the file; `syntax` and `check` are recorded (flotta has one frontend and no linter).
   A UTF-8 byte-order mark on the first line is dropped.
2. A line whose first non-blank character is `#` is a comment. A `#` anywhere else is
   ordinary text.
3. A line ending in the escape character (trailing spaces and tabs allowed, an escaped
   escape character excepted) continues on the next line. Inside a continuation,
   comment lines and blank lines are skipped (a blank one earns Docker's "Empty
   continuation line" warning) and the leading whitespace of continued lines is kept.
4. The first word is the instruction keyword (any case); words starting with `--`
   right after it are flags (a bare `--` ends them).
5. RUN, COPY and ADD (also under ONBUILD) in shell form may carry heredocs: each
   `<<NAME` / `<<-NAME` word on the line takes the following lines up to a line equal
   to NAME (`<<-` also strips leading tabs from that test). Quoting any part of NAME
   disables expansion of the body. Several heredocs on one line are read in order.

The result is a list of `Node`s (keyword, flags, argument text, the original logical
line, line range, heredocs) that `instructions.py` turns into typed instructions.
"""

from __future__ import annotations

import json
import re

import attrs

from .errors import DockerfileError
from .gocompat import go_trim_left_space, go_trim_space, is_go_space
from .shellwords import ExpansionError, Lexer

DEFAULT_ESCAPE = "\\"
KNOWN_DIRECTIVES = ("syntax", "escape", "check")
dockerfile_bytes_max = 16 * 1024 * 1024

_DIRECTIVE = re.compile(r"^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$")
_ASCII_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_HEREDOC = re.compile(r"^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})
_JSON_FORM_INSTRUCTIONS = frozenset({"run", "cmd", "entrypoint", "shell", "copy", "add", "volume"})


@attrs.frozen
class Heredoc:
    name: str
    content: str
    expand: bool
    chomp: bool
    file_descriptor: int = 0

    def chomped_content(self) -> str:
        """The body with leading tabs stripped from every line when `<<-` asked for it."""
        return chomp_heredoc(self.content) if self.chomp else self.content


@attrs.frozen
class Node:
    """One logical instruction line."""

    keyword: str
    flags: tuple[str, ...]
    arguments: str
    original: str
    start_line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()


@attrs.frozen
class ParsedLines:
    nodes: tuple[Node, ...]
    escape: str
    directives: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


class JsonArgumentsError(ValueError):
    pass


def chomp_heredoc(content: str) -> str:
    return _LEADING_TABS.sub("", content)


def parse_json_array(text: str) -> list[str] | None:
    """The strings of a JSON array, None when text is not a JSON array.

    A JSON array holding anything but strings is an error (JsonArgumentsError), as in
    Docker; text that is not valid JSON falls back to shell form (None).
    """
    stripped = go_trim_left_space(text)
    if not stripped.startswith("["):
        return None

    def reject_constant(name: str) -> object:
        raise ValueError(name)

    try:
        value = json.loads(stripped, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise JsonArgumentsError(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


def split_command(line: str, escape: str) -> tuple[str, tuple[str, ...], str]:
    """The keyword, the leading `--flags` and the remaining argument text of a line."""
    parts = _ASCII_WHITESPACE.split(go_trim_space(line), maxsplit=1)
    if len(parts) < 2:
        return parts[0], (), ""
    arguments, flags = _extract_flags(parts[1], escape)
    return parts[0], tuple(flags), go_trim_space(arguments)


def _extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """Leading `--name[=value]` words; quotes and the escape character group as in Docker."""
    words: list[str] = []
    position = 0
    length = len(line)
    while True:
        while position < length and is_go_space(line[position]):
            position += 1
        if position == length:
            return "", words
        if not line.startswith("--", position):
            return line[position:], words
        word: list[str] = []
        blank_ok = False
        quote = ""
        while position < length:
            character = line[position]
            if quote:
                if character == quote:
                    quote = ""
                elif character == escape:
                    if position + 1 == length:
                        quote = ""
                    else:
                        position += 1
                        word.append(line[position])
                else:
                    word.append(character)
                position += 1
                continue
            if is_go_space(character):
                break
            if character in "'\"":
                quote = character
                blank_ok = True
            elif character == escape:
                if position + 1 < length:
                    position += 1
                    word.append(line[position])
            else:
                word.append(character)
            position += 1
        text = "".join(word)
        if text == "--":
            return line[position:], words
        if blank_ok or text:
            words.append(text)


def parse_heredoc_word(word: str) -> Heredoc | None:
    """A heredoc opener such as `<<EOF`, `<<-"EOF"` or `3<<EOF` (body left empty)."""
    match = _HEREDOC.match(word)
    if match is None:
        return None
    descriptor = int(match.group(1)) if match.group(1) else 0
    chomp = match.group(2) == "-"
    rest = match.group(3)
    if not rest:
        return None
    lexer = Lexer(escape="\\", skip_unset_env=True)
    words = lexer.process_words(rest, {})
    if len(words) != 1:
        return None
    lexer.raw_quotes = True
    raw_words = lexer.process_words(rest, {})
    if len(raw_words) != 1:
        raise ExpansionError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw_words[0].count("'") + raw_words[0].count('"')
    return Heredoc(
        name=name, content="", expand=quotes == raw_quotes, chomp=chomp,
        file_descriptor=descriptor,
    )


def _can_contain_heredoc(keyword: str, arguments: str, escape: str) -> bool:
    keyword = keyword.lower()
    if keyword == "onbuild":
        if not arguments:
            return False
        keyword, _, arguments = split_command(arguments, escape)
        keyword = keyword.lower()
    if keyword not in _HEREDOC_INSTRUCTIONS:
        return False
    try:
        return parse_json_array(arguments) is None
    except JsonArgumentsError:
        return False


def _split_lines(text: str) -> list[str]:
    """The file split on '\\n' only (as Go's scanner does), line endings kept."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1] != "":
        lines.append(parts[-1])
    return lines


class _Directives:
    def __init__(self) -> None:
        self.escape = DEFAULT_ESCAPE
        self.continuation = _continuation_pattern(DEFAULT_ESCAPE)
        self.seen: dict[str, str] = {}
        self.done = False

    def consider(self, line: str, line_number: int) -> bool:
        """Record line as a directive if it is one; True when it was."""
        if self.done:
            return False
        match = _DIRECTIVE.match(line)
        if match is None:
            self.done = True
            return False
        name = match.group(1).lower()
        if name not in KNOWN_DIRECTIVES:
            self.done = True
            return False
        if name in self.seen:
            raise DockerfileError(f"only one {name} parser directive can be used", line_number)
        value = match.group(2)
        if name == "escape":
            if value not in ("`", "\\"):
                raise DockerfileError(
                    f"invalid escape token '{value}' does not match ` or \\", line_number
                )
            self.escape = value
            self.continuation = _continuation_pattern(value)
        self.seen[name] = value
        return True


def _continuation_pattern(escape: str) -> re.Pattern[str]:
    quoted = re.escape(escape)
    return re.compile(f"([^{quoted}]){quoted}[ \\t]*$|^{quoted}[ \\t]*$")


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return go_trim_left_space(line).startswith("#")


def _trim_continuation(line: str, directives: _Directives) -> tuple[str, bool]:
    """(line without its continuation character, whether the logical line ends here)."""
    match = directives.continuation.search(line)
    if match is None:
        return line, True
    return line[: match.start()] + (match.group(1) or ""), False


def _process_line(
    directives: _Directives, raw: str, line_number: int, strip_left: bool
) -> tuple[str, bool]:
    token = _trim_newline(raw)
    if strip_left:
        token = go_trim_left_space(token)
    is_directive = directives.consider(token, line_number)
    if _is_comment(token):
        return "", is_directive
    return token, is_directive


def decode_dockerfile(data: bytes | str) -> str:
    """Dockerfile bytes as text: UTF-8, bytes that are not kept as escapes (see parse_lines)."""
    if isinstance(data, str):
        return data
    if len(data) > dockerfile_bytes_max:
        raise DockerfileError(f"the Dockerfile is larger than {dockerfile_bytes_max} bytes")
    return data.decode("utf-8", "surrogateescape")


def parse_lines(data: bytes | str) -> ParsedLines:
    """Split a Dockerfile into logical instruction lines (see the module rules)."""
    text = decode_dockerfile(data)
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    directives = _Directives()
    nodes: list[Node] = []
    warnings: list[str] = []
    index = 0
    line_number = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        processed, _ = _process_line(directives, raw, line_number + 1, strip_left=True)
        line_number += 1
        start_line = line_number
        processed, end_of_line = _trim_continuation(processed, directives)
        if end_of_line and processed == "":
            continue
        buffer = [processed]
        empty_continuation = False
        while not end_of_line and index < len(lines):
            raw = lines[index]
            index += 1
            processed, _ = _process_line(directives, raw, line_number + 1, strip_left=False)
            line_number += 1
            if _is_comment(raw):
                continue
            if go_trim_left_space(_trim_newline(processed)) == "":
                empty_continuation = True
                continue
            processed, end_of_line = _trim_continuation(processed, directives)
            buffer.append(processed)
        line = "".join(buffer)
        if empty_continuation:
            warnings.append(f"Empty continuation line found in: {line}")
        keyword, flags, arguments = split_command(line, directives.escape)
        heredocs: list[Heredoc] = []
        if "<<" in line and _can_contain_heredoc(keyword, arguments, directives.escape):
            for opener in _heredocs_in_line_checked(line, start_line, line_number):
                body: list[str] = []
                terminated = False
                while index < len(lines):
                    raw = lines[index]
                    index += 1
                    line_number += 1
                    candidate = _trim_newline(raw)
                    if opener.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == opener.name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise DockerfileError(
                        f"unterminated heredoc {opener.name}", start_line, line_number
                    )
                heredocs.append(attrs.evolve(opener, content="".join(body)))
        nodes.append(
            Node(
                keyword=keyword, flags=flags, arguments=arguments, original=line,
                start_line=start_line, end_line=line_number, heredocs=tuple(heredocs),
            )
        )
    for node in nodes:
        _check_text(node)
    return ParsedLines(
        nodes=tuple(nodes), escape=directives.escape,
        directives=tuple(directives.seen.items()), warnings=tuple(warnings),
    )


def _heredocs_in_line_checked(line: str, start_line: int, end_line: int) -> list[Heredoc]:
    lexer = Lexer(escape="\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    try:
        words = lexer.process_words(line, {})
    except ExpansionError:
        return []
    found = []
    for word in words:
        try:
            heredoc = parse_heredoc_word(word)
        except ExpansionError as error:
            raise DockerfileError(error.message, start_line, end_line) from None
        if heredoc is not None:
            found.append(heredoc)
    return found


def _check_text(node: Node) -> None:
    """Reject bytes that are not UTF-8 inside instructions (comments may hold anything)."""
    texts = [node.original] + [heredoc.content for heredoc in node.heredocs]
    for text in texts:
        for character in text:
            if "\ud800" <= character <= "\udfff":
                raise DockerfileError(
                    "instruction is not valid UTF-8 text", node.start_line, node.end_line
                )
