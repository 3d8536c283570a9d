"""What every `flotta compose` command runs with: the global flags, the project, the engine.

The project is loaded on demand (`load`), the way `docker compose` loads it; commands
that can work on a project by name alone (`ps`, `down`, `logs`, `stop`...) use
`project_or_name`, which falls back to `-p NAME` / COMPOSE_PROJECT_NAME when there is no
Compose file. Warnings are printed as Docker Compose prints them through logrus:
`WARN[0000] text` on a terminal, `time="..." level=warning msg="text"` otherwise.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import attrs

from actors.client import api
from actors.client.cli import is_tty

from .discovery import ProjectOptions
from .engine import Engine
from .errors import ComposeError
from .loader import load_project
from .model import Project
from .progress import Progress, QuietProgress, make_progress

NO_CONFIGURATION = "no configuration file provided"


class ContextError(Exception):
    """A command cannot go on; the message is printed as is and the exit code is 1."""


def _go_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "y", "on")


@attrs.define
class Context:
    options: Any  # the parsed global flags (actors.client.cli.Options)
    stdin: TextIO = attrs.field(factory=lambda: sys.stdin)
    stdout: TextIO = attrs.field(factory=lambda: sys.stdout)
    stderr: TextIO = attrs.field(factory=lambda: sys.stderr)
    environ: Mapping[str, str] = attrs.field(factory=lambda: dict(os.environ))
    cwd: str = attrs.field(factory=os.getcwd)
    _engine: Engine | None = None
    _progresses: list[Progress] = attrs.field(factory=list)

    # -- output

    def stderr_is_tty(self) -> bool:
        return is_tty(self.stderr)

    def stdout_is_tty(self) -> bool:
        return is_tty(self.stdout)

    def stdin_is_tty(self) -> bool:
        return is_tty(self.stdin)

    @property
    def ansi(self) -> str:
        if self.options.get("no_ansi"):
            return "never"
        if "ansi" not in self.options.given and self.environ.get("COMPOSE_ANSI"):
            return self.environ["COMPOSE_ANSI"]
        return self.options.get("ansi") or "auto"

    def color(self, disabled: bool = False) -> bool:
        """May container output be coloured (`--no-color`, `--ansi`, NO_COLOR, a terminal)?"""
        if disabled or self.environ.get("NO_COLOR") or self.ansi == "never":
            return False
        return self.ansi == "always" or self.stdout_is_tty()

    @property
    def info(self) -> TextIO:
        """Where status goes: standard error, or standard output with COMPOSE_STATUS_STDOUT."""
        return self.stdout if _truthy(self.environ.get("COMPOSE_STATUS_STDOUT")) else self.stderr

    def warn(self, text: str) -> None:
        if self.stderr_is_tty():
            self.stderr.write(f"WARN[0000] {text}\n")
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            stamp = stamp[:-2] + ":" + stamp[-2:]
            self.stderr.write(f'time="{stamp}" level=warning msg={_go_quote(text)}\n')
        self.stderr.flush()

    def progress(self, title: str = "Running", quiet: bool = False) -> Progress:
        if quiet:
            return QuietProgress(self.info)
        mode = self.options.get("progress") or self.environ.get("COMPOSE_PROGRESS") or "auto"
        try:
            writer = make_progress(mode, self.info, is_terminal=self.stderr_is_tty(),
                                   ansi=self.ansi, title=title,
                                   dry_run=bool(self.options.get("dry_run")))
        except ValueError as error:
            raise ContextError(str(error)) from None
        self._progresses.append(writer)
        return writer

    def close(self) -> None:
        for writer in self._progresses:
            writer.close()
        self._progresses.clear()
        if self._engine is not None:
            self._engine.client.close()

    # -- the engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            hosts = self.options.get("host") or []
            try:
                endpoint = api.endpoint_from_environment(
                    host=hosts[-1] if hosts else None, environ=dict(self.environ))
            except api.UsageError as error:
                raise ContextError(str(error)) from None
            self._engine = Engine(api.Client(endpoint))
        return self._engine

    @engine.setter
    def engine(self, value: Engine) -> None:
        self._engine = value

    def config_directory(self) -> str:
        configured = self.environ.get("DOCKER_CONFIG")
        return configured or os.path.join(os.path.expanduser("~"), ".docker")

    # -- the project

    def project_options(self, services: Iterable[str] = ()) -> ProjectOptions:
        options = self.options
        env_files = list(options.get("env_file") or [])
        return ProjectOptions(
            working_directory=self.cwd,
            environment=dict(self.environ),
            files=tuple(options.get("file") or ()),
            project_name=options.get("project_name") or None,
            project_directory=options.get("project_directory") or None,
            env_files=tuple(env_files) if env_files else None,
            profiles=tuple(options.get("profile") or ()),
            services=tuple(services),
            stdin=lambda: self.stdin.buffer.read() if hasattr(self.stdin, "buffer")
            else self.stdin.read().encode(),
        )

    def load(self, services: Iterable[str] = (), *, quiet: bool = False) -> Project:
        """Load the project (ComposeError says everything wrong with the files)."""
        loaded = load_project(self.project_options(services))
        if not quiet:
            for warning in loaded.warnings:
                self.warn(warning)
        return loaded.project

    def project_or_name(self, services: Iterable[str] = ()) -> tuple[Project | None, str]:
        """As Docker Compose: with `-p NAME` and no `-f`, the name alone (objects are found
        by label); otherwise the loaded project, or COMPOSE_PROJECT_NAME when there is no
        Compose file at all."""
        name = self.options.get("project_name") or ""
        if name and not self.options.get("file"):
            return None, name
        try:
            project = self.load(services, quiet=True)
        except ComposeError as error:
            fallback = self.environ.get("COMPOSE_PROJECT_NAME", "")
            if fallback and str(error).startswith(NO_CONFIGURATION):
                return None, fallback
            raise
        return project, project.name
