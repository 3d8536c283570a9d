"""The builder's errors: whose fault, and where.

- `DockerfileError`: the Dockerfile itself is wrong (syntax, unknown instruction, bad flag,
  bad JSON, unterminated heredoc). Carries the line number; `str()` reads like Docker's
  `dockerfile parse error on line 3: unknown instruction: FOO`.
- `BuildError`: the Dockerfile parsed, but evaluating it with these build options failed
  (a `${X:?}` that is unset, an unknown `--target`, a bad STOPSIGNAL, a RUN flag the
  classic builder does not support). Messages follow Docker's where Docker has one.
- `ContextError`: a BuildError about the build context or the files an instruction copies
  (`COPY failed: file not found in build context or excluded by .dockerignore: ...`).

All three are ValueErrors: bad input from the user, never a crash of the builder.
"""

from __future__ import annotations


class DockerfileError(ValueError):
    def __init__(self, message: str, line: int | None = None, end_line: int | None = None):
        self.message = message
        self.line = line
        self.end_line = end_line if end_line is not None else line
        if line is None:
            text = f"dockerfile parse error: {message}"
        else:
            text = f"dockerfile parse error on line {line}: {message}"
        super().__init__(text)


class BuildError(ValueError):
    def __init__(self, message: str, line: int | None = None):
        self.message = message
        self.line = line
        super().__init__(message)


class ContextError(BuildError):
    pass
