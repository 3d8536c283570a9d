"""Finding files, the environment, profiles and the project name, as Docker Compose does."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.compose.discovery import ProjectOptions, discover, normalize_project_name
from actors.compose.errors import ComposeError
from actors.compose.loader import load_project

SIMPLE = "services:\n  web:\n    image: busybox\n"


def options(cwd: Path, **kwargs: object) -> ProjectOptions:
    environment = kwargs.pop("environment", {})
    return ProjectOptions(working_directory=str(cwd), environment=environment, **kwargs)  # type: ignore[arg-type]


def error_text(caught: pytest.ExceptionInfo[ComposeError]) -> str:
    return str(caught.value)


@pytest.mark.parametrize(
    "names",
    [
        ["compose.yaml"],
        ["compose.yml"],
        ["docker-compose.yml"],
        ["docker-compose.yaml"],
    ],
)
def test_each_default_name_is_found(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        (tmp_path / name).write_text(SIMPLE)
    source = discover(options(tmp_path))
    assert [config.path for config in source.config_files] == [str(tmp_path / names[0])]
    assert source.working_dir == str(tmp_path)


def test_preference_order_and_warning(tmp_path: Path) -> None:
    for name in ("docker-compose.yaml", "docker-compose.yml", "compose.yml", "compose.yaml"):
        (tmp_path / name).write_text(SIMPLE)
    source = discover(options(tmp_path))
    assert [config.path for config in source.config_files] == [str(tmp_path / "compose.yaml")]
    assert any("multiple config files" in warning for warning in source.warnings)
    (tmp_path / "compose.yaml").unlink()
    (tmp_path / "compose.yml").unlink()
    source = discover(options(tmp_path))
    assert source.config_files[0].path == str(tmp_path / "docker-compose.yml")


def test_found_in_a_parent_directory_with_its_override(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(SIMPLE)
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    tty: true\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    source = discover(options(deep))
    assert [config.path for config in source.config_files] == [
        str(tmp_path / "compose.yaml"),
        str(tmp_path / "compose.override.yaml"),
    ]
    assert source.working_dir == str(tmp_path)
    project = load_project(options(deep)).project
    assert project.services["web"].tty is True
    assert project.name == normalize_project_name(tmp_path.name)


def test_docker_compose_override_pairs_with_any_main_name(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(SIMPLE)
    (tmp_path / "docker-compose.override.yml").write_text("services:\n  web:\n    tty: true\n")
    source = discover(options(tmp_path))
    assert [Path(config.path).name for config in source.config_files] == [
        "docker-compose.yml",
        "docker-compose.override.yml",
    ]


def test_no_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as caught:
        discover(options(tmp_path))
    assert "no configuration file provided" in error_text(caught)


def test_explicit_files_in_order_and_no_override(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(SIMPLE)
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    tty: true\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yml").write_text(SIMPLE)
    (tmp_path / "extra.yml").write_text("services:\n  web:\n    image: alpine\n")
    source = discover(options(tmp_path, files=("sub/base.yml", "extra.yml")))
    assert [config.path for config in source.config_files] == [
        str(tmp_path / "sub" / "base.yml"),
        str(tmp_path / "extra.yml"),
    ]
    assert source.working_dir == str(tmp_path / "sub")
    project = load_project(options(tmp_path, files=("sub/base.yml", "extra.yml"))).project
    assert project.services["web"].image == "alpine"
    assert project.services["web"].tty is False
    assert project.name == "sub"


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as caught:
        discover(options(tmp_path, files=("nope.yaml",)))
    assert f"{tmp_path}/nope.yaml: no such file" in error_text(caught)


def test_stdin(tmp_path: Path) -> None:
    source = discover(options(tmp_path, files=("-",), stdin=lambda: SIMPLE.encode()))
    assert source.config_files[0].path == "-"
    assert source.working_dir == str(tmp_path)
    project = load_project(options(tmp_path, files=("-",), stdin=lambda: SIMPLE.encode())).project
    assert project.config_files == ("-",)
    assert project.services["web"].image == "busybox"


def test_compose_file_variable(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(SIMPLE)
    (tmp_path / "b.yml").write_text("services:\n  web:\n    tty: true\n")
    source = discover(options(tmp_path, environment={"COMPOSE_FILE": "a.yml:b.yml"}))
    assert [Path(config.path).name for config in source.config_files] == ["a.yml", "b.yml"]
    source = discover(
        options(
            tmp_path, environment={"COMPOSE_FILE": "a.yml;b.yml", "COMPOSE_PATH_SEPARATOR": ";"}
        )
    )
    assert [Path(config.path).name for config in source.config_files] == ["a.yml", "b.yml"]
    (tmp_path / ".env").write_text("COMPOSE_FILE=b.yml:a.yml\n")
    source = discover(options(tmp_path))
    assert [Path(config.path).name for config in source.config_files] == ["b.yml", "a.yml"]
    with pytest.raises(ComposeError, match="listed in COMPOSE_FILE"):
        discover(options(tmp_path, environment={"COMPOSE_FILE": "missing.yml"}))


def test_project_directory(tmp_path: Path) -> None:
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "compose.yaml").write_text(
        "services:\n  web:\n    image: busybox\n    volumes: [./data:/data]\n"
    )
    (project_dir / ".env").write_text("FROM_DOTENV=yes\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = discover(options(elsewhere, project_directory="../project"))
    assert source.working_dir == str(project_dir)
    assert source.environment["FROM_DOTENV"] == "yes"
    project = load_project(options(elsewhere, project_directory=str(project_dir))).project
    assert project.services["web"].volumes[0].source == str(project_dir / "data")
    assert project.name == "project"
    (elsewhere / "other.yml").write_text(
        "services:\n  web:\n    image: busybox\n    volumes: [./data:/data]\n"
    )
    project = load_project(
        options(elsewhere, project_directory="../project", files=("other.yml",))
    ).project
    assert project.working_dir == str(project_dir)
    assert project.services["web"].volumes[0].source == str(project_dir / "data")


def test_environment_precedence(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        'services:\n  web:\n    image: busybox:${TAG}\n    environment: ["A=${A}", "B=${B}", "C=${C}"]\n'
    )
    (tmp_path / ".env").write_text("TAG=dotenv\nA=dotenv\nB=dotenv\n")
    (tmp_path / "one.env").write_text("A=one\nB=one\nC=${A}\n")
    (tmp_path / "two.env").write_text("B=two\n")
    project = load_project(options(tmp_path, environment={"TAG": "shell"})).project
    web = project.services["web"]
    assert web.image == "busybox:shell"
    assert web.environment == {"A": "dotenv", "B": "dotenv", "C": ""}
    project = load_project(
        options(tmp_path, environment={"A": "shell"}, env_files=("one.env", "two.env"))
    ).project
    web = project.services["web"]
    assert web.image == "busybox:"
    assert web.environment == {"A": "shell", "B": "two", "C": "shell"}
    assert project.env_files == (str(tmp_path / "one.env"), str(tmp_path / "two.env"))
    project = load_project(
        options(tmp_path, environment={"COMPOSE_ENV_FILES": "two.env,one.env"})
    ).project
    assert project.services["web"].environment["B"] == "one"


def test_disable_default_env_file(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(SIMPLE)
    (tmp_path / ".env").write_text("X=1\n")
    source = discover(options(tmp_path, environment={"COMPOSE_DISABLE_ENV_FILE": "true"}))
    assert "X" not in source.environment


def test_missing_explicit_env_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(SIMPLE)
    with pytest.raises(ComposeError, match="couldn't find env file"):
        discover(options(tmp_path, env_files=("missing.env",)))
    (tmp_path / "bad.env").write_text("A=1\nB C=2\n")
    with pytest.raises(ComposeError) as caught:
        discover(options(tmp_path, env_files=("bad.env",)))
    assert f"{tmp_path}/bad.env: line 2: key cannot contain a space" == error_text(caught)


def test_dot_env_of_the_compose_file_directory(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text("services:\n  web:\n    image: busybox:${TAG}\n")
    (tmp_path / "app" / ".env").write_text("TAG=from-app\n")
    project = load_project(options(tmp_path, files=("app/compose.yaml",))).project
    assert project.services["web"].image == "busybox:from-app"
    deep = tmp_path / "app" / "deeper"
    deep.mkdir()
    project = load_project(options(deep)).project
    assert project.services["web"].image == "busybox:from-app"


def test_profiles_from_flag_and_variable(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: a\n  debug:\n    image: b\n    profiles: [debug]\n"
        "  test:\n    image: c\n    profiles: [test, ci]\n"
    )
    assert set(load_project(options(tmp_path)).project.services) == {"web"}
    assert set(load_project(options(tmp_path, profiles=("debug",))).project.services) == {
        "web",
        "debug",
    }
    project = load_project(options(tmp_path, environment={"COMPOSE_PROFILES": "ci, debug"})).project
    assert set(project.services) == {"web", "debug", "test"}
    assert project.profiles == ("ci", "debug")
    assert set(load_project(options(tmp_path, profiles=("*",))).project.services) == {
        "web",
        "debug",
        "test",
    }
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=test\n")
    project = load_project(options(tmp_path)).project
    assert set(project.services) == {"web", "test"}
    assert set(project.disabled_services) == {"debug"}


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("MyApp", "myapp"),
        ("my app!", "myapp"),
        ("__weird--Name..", "weird--name"),
        ("Ünïcode", "ncode"),
        ("123", "123"),
        ("-_-", ""),
    ],
)
def test_name_normalization(raw: str, normalized: str) -> None:
    assert normalize_project_name(raw) == normalized


def test_project_name_precedence(tmp_path: Path) -> None:
    directory = tmp_path / "My Project.Dir"
    directory.mkdir()
    (directory / "compose.yaml").write_text(SIMPLE)
    assert load_project(options(directory)).project.name == "myprojectdir"
    (directory / "compose.yaml").write_text("name: From_YAML\n" + SIMPLE)
    assert load_project(options(directory)).project.name == "from_yaml"
    (directory / "compose.yaml").write_text("name: ${PREFIX:-pre}-app\n" + SIMPLE)
    assert load_project(options(directory)).project.name == "pre-app"
    (directory / "over.yaml").write_text("name: second\n")
    assert (
        load_project(options(directory, files=("compose.yaml", "over.yaml"))).project.name
        == "second"
    )
    assert (
        load_project(
            options(directory, environment={"COMPOSE_PROJECT_NAME": "envname"})
        ).project.name
        == "envname"
    )
    both = options(directory, environment={"COMPOSE_PROJECT_NAME": "envname"}, project_name="flag")
    assert load_project(both).project.name == "flag"


def test_project_name_is_visible_to_interpolation(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "name: demo\nservices:\n  web:\n    image: busybox\n    hostname: ${COMPOSE_PROJECT_NAME}-web\n"
    )
    assert load_project(options(tmp_path)).project.services["web"].hostname == "demo-web"


@pytest.mark.parametrize("name", ["MyApp", "-leading", "_x", "with space", "", "a.b"])
def test_invalid_explicit_names(tmp_path: Path, name: str) -> None:
    (tmp_path / "compose.yaml").write_text(SIMPLE)
    if not name:
        assert load_project(
            options(tmp_path, project_name=name)
        ).project.name == normalize_project_name(tmp_path.name)
        return
    with pytest.raises(ComposeError) as caught:
        load_project(options(tmp_path, project_name=name))
    assert f"invalid project name {name!r} (from -p)" in error_text(caught)
    with pytest.raises(ComposeError) as caught:
        load_project(options(tmp_path, environment={"COMPOSE_PROJECT_NAME": name}))
    assert "from COMPOSE_PROJECT_NAME" in error_text(caught)


def test_directory_name_without_usable_characters(tmp_path: Path) -> None:
    directory = tmp_path / "___"
    directory.mkdir()
    (directory / "compose.yaml").write_text(SIMPLE)
    with pytest.raises(ComposeError, match="project name must not be empty"):
        load_project(options(directory))
