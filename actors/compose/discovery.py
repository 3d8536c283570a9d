"""Finding a project's files, environment, profiles and name, as Docker Compose does.

Order of events (it matters, because `.env` can set COMPOSE_FILE and friends):
1. The project directory is `--project-directory` when given.
2. The environment starts as the shell's (plus PWD when the shell has none).
3. Env files: `--env-file` (several, later ones override earlier ones; relative to the
   current directory), else COMPOSE_ENV_FILES (comma-separated), else `.env` in the
   project directory, or the directory of the first `-f` file, or the current one.
   Values from env files never override the shell's environment.
   COMPOSE_DISABLE_ENV_FILE=true skips the default `.env`.
4. Compose files: `-f` (several, merged in order; `-` reads stdin), else COMPOSE_FILE
   (split on COMPOSE_PATH_SEPARATOR, by default `:`), else the first of compose.yaml,
   compose.yml, docker-compose.yml, docker-compose.yaml found in the current directory
   (or the project directory) or its nearest parent that has one, plus its override
   file (compose.override.yml/.yaml, docker-compose.override.yml/.yaml) there.
5. The project directory, when not given, is the directory of the first file; its
   `.env` is then read too (without overriding anything already set).
6. Profiles: `--profile`, else COMPOSE_PROFILES (comma-separated).
7. An explicit project name (`-p`, else COMPOSE_PROJECT_NAME) must already be a valid
   name: lowercase letters, digits, `_` and `-`, starting with a letter or digit.
   Without one, the loader takes the top-level `name:` of the files, else the project
   directory's name, and normalizes it (see `normalize_project_name`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

import attrs

from .dotenv import EnvFileError, parse_env_text
from .errors import ComposeError, Problem

DEFAULT_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
DEFAULT_OVERRIDE_FILE_NAMES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
STDIN = "-"
_NAME_CHARACTER = re.compile(r"[a-z0-9_-]")
_VALID_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
compose_file_bytes_max = 16 * 1024 * 1024


@attrs.frozen(kw_only=True)
class ProjectOptions:
    """What the command line and the process say about the project to load."""

    working_directory: str
    environment: Mapping[str, str] = attrs.field(factory=dict)
    files: tuple[str, ...] = ()
    project_name: str | None = None
    project_directory: str | None = None
    env_files: tuple[str, ...] | None = None
    profiles: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    stdin: Callable[[], bytes] | None = attrs.field(default=None, eq=False)


@attrs.frozen
class ConfigFile:
    path: str
    content: str


@attrs.frozen(kw_only=True)
class ProjectSource:
    """The discovered inputs of a project, before any file is parsed."""

    config_files: tuple[ConfigFile, ...]
    working_dir: str
    environment: dict[str, str]
    env_files: tuple[str, ...]
    profiles: tuple[str, ...]
    explicit_name: str | None
    warnings: tuple[str, ...] = ()


def normalize_project_name(name: str) -> str:
    """Lowercase, keep `[a-z0-9_-]`, drop leading `_`/`-` (Docker Compose's rule)."""
    kept = "".join(_NAME_CHARACTER.findall(name.lower()))
    return kept.lstrip("_-")


def check_explicit_project_name(name: str, origin: str) -> str:
    if not _VALID_NAME.fullmatch(name):
        raise ComposeError.single(
            "",
            "",
            f"invalid project name {name!r} ({origin}): it must consist only of lowercase "
            "letters, digits, '_' and '-', and start with a letter or a digit",
        )
    return name


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "t", "true", "y", "yes", "on")


def _read_env_files(paths: list[str], environment: dict[str, str], explicit: bool) -> list[str]:
    """Add the variables of `paths` to `environment` without overriding it."""
    read: list[str] = []
    values: dict[str, str] = {}
    for path in paths:
        if not os.path.exists(path):
            if explicit:
                raise ComposeError.single(path, "", "couldn't find env file")
            continue
        if os.path.isdir(path):
            if explicit:
                raise ComposeError.single(path, "", "is a directory, not an env file")
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            values = parse_env_text(text, environment.get, initial=values)
        except (OSError, UnicodeDecodeError) as error:
            raise ComposeError.single(path, "", f"cannot read env file: {error}") from None
        except EnvFileError as error:
            raise ComposeError.single(path, "", str(error)) from None
        read.append(path)
    for key, value in values.items():
        environment.setdefault(key, value)
    return read


def _find_default_files(start: str) -> tuple[list[str], list[str]]:
    warnings: list[str] = []
    directory = start
    while True:
        found = [
            os.path.join(directory, name)
            for name in DEFAULT_FILE_NAMES
            if os.path.isfile(os.path.join(directory, name))
        ]
        if found:
            if len(found) > 1:
                warnings.append(
                    f"found multiple config files with supported names: {', '.join(found)}; "
                    f"using {found[0]}"
                )
            files = [found[0]]
            overrides = [
                os.path.join(directory, name)
                for name in DEFAULT_OVERRIDE_FILE_NAMES
                if os.path.isfile(os.path.join(directory, name))
            ]
            if overrides:
                if len(overrides) > 1:
                    warnings.append(
                        "found multiple override files with supported names: "
                        f"{', '.join(overrides)}; using {overrides[0]}"
                    )
                files.append(overrides[0])
            return files, warnings
        parent = os.path.dirname(directory)
        if parent == directory:
            return [], warnings
        directory = parent


def _read_config(path: str, stdin: Callable[[], bytes] | None) -> ConfigFile:
    if path == STDIN:
        if stdin is None:
            raise ComposeError.single(STDIN, "", "no standard input to read the Compose file from")
        data = stdin()
    else:
        try:
            if os.path.getsize(path) > compose_file_bytes_max:
                raise ComposeError.single(
                    path, "", f"file is larger than {compose_file_bytes_max} bytes"
                )
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise ComposeError.single(path, "", "no such file") from None
        except IsADirectoryError:
            raise ComposeError.single(path, "", "is a directory, not a Compose file") from None
        except OSError as error:
            raise ComposeError.single(path, "", f"cannot read: {error.strerror}") from None
    if len(data) > compose_file_bytes_max:
        raise ComposeError.single(path, "", f"file is larger than {compose_file_bytes_max} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ComposeError.single(path, "", f"not UTF-8 text: {error}") from None
    return ConfigFile(path, text.removeprefix("\ufeff"))


def discover(options: ProjectOptions) -> ProjectSource:
    """Resolve files, environment, profiles and explicit name. Raises ComposeError."""
    cwd = os.path.abspath(options.working_directory)
    project_dir = (
        os.path.abspath(os.path.join(cwd, options.project_directory))
        if options.project_directory
        else None
    )
    environment = dict(options.environment)
    environment.setdefault("PWD", cwd)
    warnings: list[str] = []

    explicit_env_files: list[str] | None = None
    if options.env_files is not None:
        explicit_env_files = [os.path.join(cwd, path) for path in options.env_files]
    elif environment.get("COMPOSE_ENV_FILES"):
        explicit_env_files = [
            os.path.join(cwd, path)
            for path in environment["COMPOSE_ENV_FILES"].split(",")
            if path.strip()
        ]
    skip_default_env = _truthy(options.environment.get("COMPOSE_DISABLE_ENV_FILE", "false"))

    def default_env_file(directory: str) -> list[str]:
        return [] if skip_default_env else [os.path.join(directory, ".env")]

    first_file = next((path for path in options.files if path != STDIN), None)
    early_dir = project_dir or (
        os.path.dirname(os.path.join(cwd, first_file)) if first_file else cwd
    )
    env_files_read: list[str] = []
    if explicit_env_files is not None:
        env_files_read += _read_env_files(explicit_env_files, environment, explicit=True)
    else:
        env_files_read += _read_env_files(default_env_file(early_dir), environment, explicit=False)

    if options.files:
        paths = [path if path == STDIN else os.path.join(cwd, path) for path in options.files]
    elif environment.get("COMPOSE_FILE"):
        separator = environment.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        paths = [
            os.path.join(cwd, path) for path in environment["COMPOSE_FILE"].split(separator) if path
        ]
        for path in paths:
            if not os.path.exists(path):
                raise ComposeError.single(path, "", "no such file (listed in COMPOSE_FILE)")
    else:
        paths, found_warnings = _find_default_files(project_dir or cwd)
        warnings += found_warnings
        if not paths:
            raise ComposeError.single(
                "",
                "",
                "no configuration file provided: none of "
                f"{', '.join(DEFAULT_FILE_NAMES)} in {project_dir or cwd} or its parents",
            )
    paths = [path if path == STDIN else os.path.normpath(path) for path in paths]

    first_path = next((path for path in paths if path != STDIN), None)
    working_dir = project_dir or (os.path.dirname(first_path) if first_path else cwd)
    if explicit_env_files is None and working_dir != early_dir:
        env_files_read += _read_env_files(
            default_env_file(working_dir), environment, explicit=False
        )

    if options.profiles:
        profiles = tuple(options.profiles)
    else:
        profiles = tuple(
            profile.strip()
            for profile in environment.get("COMPOSE_PROFILES", "").split(",")
            if profile.strip()
        )

    explicit_name: str | None = None
    if options.project_name:
        explicit_name = check_explicit_project_name(options.project_name, "from -p")
    elif environment.get("COMPOSE_PROJECT_NAME"):
        explicit_name = check_explicit_project_name(
            environment["COMPOSE_PROJECT_NAME"], "from COMPOSE_PROJECT_NAME"
        )

    config_files = tuple(_read_config(path, options.stdin) for path in paths)
    return ProjectSource(
        config_files=config_files,
        working_dir=working_dir,
        environment=environment,
        env_files=tuple(env_files_read),
        profiles=profiles,
        explicit_name=explicit_name,
        warnings=tuple(warnings),
    )


def problem_for_name(directory: str) -> Problem:
    return Problem(
        "",
        "",
        f"project name must not be empty: {os.path.basename(directory)!r} has no usable "
        "characters; set one with -p, COMPOSE_PROJECT_NAME or a top-level name:",
    )
