""".dockerignore files with Docker's semantics; self-contained (standard library only).

Used by `flotta build` to choose what goes into the context tar and by the builder on the
server side. The rules, as Docker implements them:

- A line starting with `#` is a comment (only at column 0); lines are trimmed of spaces;
  empty lines are skipped. `!` makes the line an exception (re-includes what it matches).
- Each pattern is cleaned like Go's filepath.Clean (`./a//b/` -> `a/b`) and a leading `/`
  is dropped: patterns are relative to the context root.
- `*` matches any run of characters except `/`; `?` one character except `/`; `[...]` a
  character class; `\\` escapes the next character; `**` matches any number of path
  components (including none): `**/x` matches `x` at any depth, `a/**` everything below `a`.
- A pattern matches a path when it matches the path itself or any of its parent
  directories (`foo` excludes `foo/bar/baz`).
- The last matching line wins: `*.md` then `!README.md` keeps README.md.
- A directory that is excluded is still descended into when some exception pattern could
  match something inside it; otherwise it is skipped whole.
- The Dockerfile and .dockerignore are always sent (`trim_build_files` adds exceptions).
"""

import os
import re


class PatternError(ValueError):
    """A .dockerignore pattern that cannot be compiled."""


def clean_path(path: str) -> str:
    """Go's path.Clean: collapse slashes, drop `.`, resolve `..`, no trailing slash."""
    if not path:
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
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[str]:
    """Parse the contents of a .dockerignore file into its list of patterns."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        if number == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def read_file(path: str) -> list[str]:
    """Patterns of the .dockerignore at `path`; an absent file means no patterns."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return read_patterns(handle.read())
    except FileNotFoundError:
        return []


_ESCAPED = set(".+()|{}$^")


def _compile(pattern: str) -> "re.Pattern[str]":
    regex = ["^"]
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        index += 1
        if char == "*":
            if index < length and pattern[index] == "*":
                index += 1
                if index < length and pattern[index] == "/":
                    index += 1
                if index >= length:
                    regex.append(".*")
                else:
                    regex.append("(.*/)?")
            else:
                regex.append("[^/]*")
        elif char == "?":
            regex.append("[^/]")
        elif char in _ESCAPED:
            regex.append("\\" + char)
        elif char == "\\":
            if index < length:
                regex.append(re.escape(pattern[index]))
                index += 1
            else:
                regex.append("\\\\")
        elif char == "[":
            # A class as in Go's regexp: `[^...]` negates; `]` first is literal.
            start = index + 1 if index < length and pattern[index] == "^" else index
            end = pattern.find("]", start + 1 if start < length and pattern[start] == "]"
                               else start)
            if end < 0:
                raise PatternError(f"invalid .dockerignore pattern {pattern!r}: unclosed '['")
            body = pattern[index:end].replace("[", "\\[")
            regex.append("[" + body + "]")
            index = end + 1
        elif char == "]":
            regex.append("\\]")
        else:
            regex.append(re.escape(char) if not char.isalnum() and char != "/" else char)
    regex.append("$")
    try:
        return re.compile("".join(regex), re.DOTALL)
    except re.error as error:
        raise PatternError(f"invalid .dockerignore pattern {pattern!r}: {error}") from None


class Pattern:
    __slots__ = ("exclusion", "regex", "text")

    def __init__(self, text: str) -> None:
        exclusion = text.startswith("!")
        body = text[1:] if exclusion else text
        if exclusion and not body:
            raise PatternError('illegal exclusion pattern: "!"')
        body = clean_path(body)
        self.text = body
        self.exclusion = exclusion
        self.regex = _compile(body)

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None

    def __repr__(self) -> str:
        return f"Pattern({'!' if self.exclusion else ''}{self.text})"


class PatternMatcher:
    """An ordered list of patterns; the last one matching a path decides."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [Pattern(text) for text in patterns if text]

    @property
    def has_exclusions(self) -> bool:
        return any(pattern.exclusion for pattern in self.patterns)

    def matches(self, path: str) -> bool:
        """True when `path` (slash-separated, relative to the root) is ignored."""
        path = clean_path(path)
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parents = parent.split("/") if parent != "." else []
        matched = False
        for pattern in self.patterns:
            # An exception only matters once something matched, and vice versa.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                for depth in range(1, len(parents) + 1):
                    if pattern.match("/".join(parents[:depth])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Does an exception pattern name something inside the ignored `directory`?

        Docker's test is literal: the exception's text must start with "directory/".
        """
        prefix = clean_path(directory) + "/"
        return any(
            pattern.exclusion and (pattern.text + "/").startswith(prefix)
            for pattern in self.patterns
        )


def matches(path: str, patterns: list[str]) -> bool:
    """True when `path` is ignored by `patterns`."""
    return PatternMatcher(patterns).matches(path)


def trim_build_files(patterns: list[str], dockerfile: str = "Dockerfile") -> list[str]:
    """Add exceptions so the Dockerfile and .dockerignore are always in the context."""
    result = list(patterns)
    matcher = PatternMatcher(result)
    if matcher.matches(".dockerignore"):
        result.append("!.dockerignore")
    dockerfile = clean_path(dockerfile.replace(os.sep, "/"))
    if matcher.matches(dockerfile):
        result.append("!" + dockerfile)
    return result


def walk(root: str, patterns: list[str]):
    """Yield (relative path, os.stat_result) of every entry to send, in lexical order.

    Symlinks are reported, not followed. Ignored directories are skipped whole unless an
    exception pattern may re-include something inside them (then the directory entry
    itself is left out but its contents are considered one by one, as Docker does).
    """
    matcher = PatternMatcher(patterns)
    has_exclusions = matcher.has_exclusions

    def visit(directory: str, relative: str):
        try:
            names = sorted(os.listdir(directory))
        except OSError as error:
            raise OSError(f"can't read directory {directory}: {error.strerror}") from None
        for name in names:
            path = os.path.join(directory, name)
            relative_path = f"{relative}/{name}" if relative else name
            info = os.lstat(path)
            is_directory = os.path.isdir(path) and not os.path.islink(path)
            if matcher.patterns and matcher.matches(relative_path):
                if not is_directory:
                    continue
                if not has_exclusions or not matcher.may_include_below(relative_path):
                    continue
                yield from visit(path, relative_path)
                continue
            yield relative_path, info
            if is_directory:
                yield from visit(path, relative_path)

    yield from visit(root, "")
