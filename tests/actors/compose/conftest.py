"""Helpers for the Compose model tests: write files into tmp_path and load them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from actors.compose.discovery import ProjectOptions
from actors.compose.errors import ComposeError
from actors.compose.loader import Loaded, load_project


def write_files(directory: Path, texts: tuple[str, ...]) -> list[str]:
    names = []
    for index, text in enumerate(texts):
        name = "compose.yaml" if index == 0 else f"override-{index}.yaml"
        (directory / name).write_text(textwrap.dedent(text))
        names.append(name)
    return names


@pytest.fixture
def load(tmp_path: Path) -> Callable[..., Loaded]:
    """`load(text, more_text, env={...}, profiles=[...])` loads the texts as -f files."""

    def run(
        *texts: str,
        env: Mapping[str, str] | None = None,
        profiles: tuple[str, ...] = (),
        services: tuple[str, ...] = (),
        name: str | None = None,
    ) -> Loaded:
        files = write_files(tmp_path, texts)
        options = ProjectOptions(
            working_directory=str(tmp_path),
            environment=dict(env or {}),
            files=tuple(files),
            profiles=profiles,
            services=services,
            project_name=name or "test",
        )
        return load_project(options)

    return run


@pytest.fixture
def problems(load: Callable[..., Loaded], tmp_path: Path) -> Callable[..., list[str]]:
    """`problems(text, ...)`: the problems loading reports, as `file: path: message`
    with file names relative to the test's directory."""

    def run(*texts: str, **options: object) -> list[str]:
        with pytest.raises(ComposeError) as caught:
            load(*texts, **options)
        return [str(problem).replace(f"{tmp_path}/", "") for problem in caught.value.problems]

    return run
