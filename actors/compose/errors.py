"""Problems found in Compose files, and how they are reported.

Every problem names the file it was found in, the path inside the document
(`services.web.ports[1]`) and what was expected. Loading collects as many problems
as it can before giving up, so a user fixes a file in one round rather than one error
at a time; the problems keep the order in which the files and documents were read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import attrs

PathPart = str | int
Path = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Sequence[PathPart]) -> str:
    """`("services", "web", "ports", 1)` → `services.web.ports[1]`.

    Keys that would be ambiguous after a dot (`com.example.label`) are quoted:
    `services.web.labels["com.example.label"]`.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            text += f'["{escaped}"]'
    return text


@attrs.frozen
class Problem:
    """One thing wrong with the input: where, and what was expected."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        if not self.file and not self.path:
            return self.message
        where = self.file or "<compose>"
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class ComposeError(Exception):
    """The Compose project cannot be loaded; `problems` says every reason found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("ComposeError needs at least one problem")
        super().__init__("\n".join(str(problem) for problem in self.problems))

    @classmethod
    def single(cls, file: str, path: Sequence[PathPart] | str, message: str) -> ComposeError:
        text = path if isinstance(path, str) else format_path(path)
        return cls([Problem(file, text, message)])


class Diagnostics:
    """Collects problems and warnings while a project is being loaded."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self._seen: set[Problem] = set()
        self._seen_warnings: set[str] = set()

    def error(
        self, file: str, path: Sequence[PathPart], message: str, line: int | None = None
    ) -> None:
        problem = Problem(file, format_path(path), message, line)
        if problem not in self._seen:
            self._seen.add(problem)
            self.problems.append(problem)

    def warn(self, text: str) -> None:
        if text not in self._seen_warnings:
            self._seen_warnings.add(text)
            self.warnings.append(text)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ComposeError(self.problems)

    @property
    def failed(self) -> bool:
        return bool(self.problems)
