"""ARG scoping: global vs stage ARGs, --build-arg overrides, ENV over ARG, predefined
proxy args, automatic platform args, and the unused build-args warning."""

from __future__ import annotations

import pytest
from builderhelpers import evaluate, last_config, plan

from actors.builder.buildargs import ArgScope, Platform, unused_build_args_warning
from actors.builder.errors import BuildError
from actors.builder.plan import SourceKind


def env_of(text: str, **options) -> dict[str, str]:
    config = last_config(text, **options)
    return dict(entry.split("=", 1) for entry in config.env)


def test_global_arg_is_visible_in_from():
    built = plan("ARG TAG=1.36\nFROM busybox:$TAG\n")
    assert built.stages[0].base.name == "busybox:1.36"
    assert built.stages[0].base.kind is SourceKind.IMAGE


def test_global_arg_override_in_from():
    built = plan("ARG TAG=1.36\nFROM busybox:${TAG}\n", build_args={"TAG": "1.37"})
    assert built.stages[0].base.name == "busybox:1.37"


def test_global_args_see_earlier_global_args():
    built = plan("ARG A=1\nARG B=${A}2\nFROM x:$B\n")
    assert built.stages[0].base.name == "x:12"


def test_global_arg_is_not_visible_in_a_stage_until_redeclared():
    env = env_of("ARG V=1\nFROM x\nENV BEFORE=$V\nARG V\nENV AFTER=$V\n")
    assert env["BEFORE"] == ""
    assert env["AFTER"] == "1"


def test_redeclared_global_arg_takes_the_build_arg():
    env = env_of("ARG V=1\nFROM x\nARG V\nENV E=$V\n", build_args={"V": "cli"})
    assert env["E"] == "cli"


def test_stage_arg_visible_from_its_declaration_only():
    env = env_of("FROM x\nENV B=$A\nARG A=1\nENV C=$A\n")
    assert (env["B"], env["C"]) == ("", "1")


def test_build_arg_overrides_stage_default():
    assert env_of("FROM x\nARG A=default\nENV E=$A\n", build_args={"A": "given"})["E"] == "given"


def test_build_arg_without_value_does_not_override():
    assert env_of("FROM x\nARG A=default\nENV E=$A\n", build_args={"A": None})["E"] == "default"


def test_arg_without_default_and_without_build_arg_is_unset():
    assert env_of("FROM x\nARG A\nENV E=${A-unset}\n")["E"] == "unset"


def test_env_beats_arg():
    evaluation = evaluate("FROM x\nARG A=arg\nENV A=env\nENV B=$A\nRUN echo $A\n")
    env = dict(entry.split("=", 1) for entry in evaluation.final_state.config.env)
    assert env["B"] == "env"
    run = evaluation.steps[-1]
    assert "A=arg" not in run.run.env
    assert run.created_by == "/bin/sh -c echo $A"


def test_args_do_not_cross_stages():
    text = "FROM x AS one\nARG A=1\nFROM x\nENV E=${A-none}\n"
    env = dict(entry.split("=", 1) for entry in evaluate(text).final_state.config.env)
    assert env["E"] == "none"


def test_run_gets_args_in_env_and_history():
    evaluation = evaluate("FROM x\nARG B=2\nARG A=1\nRUN make\n")
    run = evaluation.steps[-1]
    assert run.created_by == "|2 A=1 B=2 /bin/sh -c make"
    assert run.cache_args == ("A=1", "B=2")
    assert run.run.command == ("/bin/sh", "-c", "make")
    assert "A=1" in run.run.env and "B=2" in run.run.env


def test_run_exec_form_with_args():
    run = evaluate('FROM x\nARG A=1\nRUN ["echo", "hi"]\n').steps[-1]
    assert run.created_by == "|1 A=1 echo hi"


def test_proxy_build_arg_reaches_run_but_not_history():
    run = evaluate("FROM x\nRUN curl example.com\n", build_args={"HTTP_PROXY": "http://proxy:3128"}).steps[-1]
    assert "HTTP_PROXY=http://proxy:3128" in run.run.env
    assert run.created_by == "/bin/sh -c curl example.com"
    assert run.cache_args == ()


def test_declared_proxy_arg_goes_into_history():
    run = evaluate("FROM x\nARG HTTP_PROXY\nRUN curl x\n", build_args={"HTTP_PROXY": "p"}).steps[-1]
    assert run.created_by == "|1 HTTP_PROXY=p /bin/sh -c curl x"


def test_unused_build_args_warning():
    built = plan("ARG G\nFROM x\nARG USED\n", build_args={"FOO": "1", "BAR": "2", "USED": "x", "G": "y", "HTTP_PROXY": "p"})
    assert built.unused_build_args_warning() == "[Warning] One or more build-args [BAR FOO] were not consumed"
    assert plan("FROM x\n", build_args={"https_proxy": "p"}).unused_build_args_warning() is None


def test_args_of_skipped_stages_do_not_count_as_consumed():
    text = "FROM x AS unused\nARG ONLY_HERE\nFROM y\n"
    assert plan(text, build_args={"ONLY_HERE": "1"}).unused_build_args_warning() == (
        "[Warning] One or more build-args [ONLY_HERE] were not consumed"
    )
    assert plan(text, build_args={"ONLY_HERE": "1"}, all_stages=True).unused_build_args_warning() is None


def test_platform_args_are_automatic_globally_and_declared_in_stages():
    text = (
        "FROM --platform=$BUILDPLATFORM base-$TARGETOS AS build\n"
        "ENV BEFORE=${TARGETARCH-none}\n"
        "ARG TARGETARCH TARGETPLATFORM TARGETVARIANT\n"
        "ENV ARCH=$TARGETARCH PLATFORM=$TARGETPLATFORM VARIANT=$TARGETVARIANT\n"
    )
    options = {"platform": Platform.parse("linux/arm/v7"), "build_platform": Platform.parse("linux/amd64")}
    built = plan(text, **options)
    assert built.stages[0].base.name == "base-linux"
    assert built.stages[0].base.platform == Platform("linux", "amd64", "")
    env = env_of(text, **options)
    assert env["BEFORE"] == "none"
    assert (env["ARCH"], env["PLATFORM"], env["VARIANT"]) == ("arm", "linux/arm/v7", "v7")


def test_platform_parsing():
    assert str(Platform.parse("linux/x86_64")) == "linux/amd64"
    assert str(Platform.parse("arm64")) == "linux/arm64"
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64"
    with pytest.raises(BuildError):
        Platform.parse("linux/")


def test_expansion_error_names_the_line():
    with pytest.raises(BuildError) as caught:
        evaluate("FROM x\nRUN true\nENV A=${X:?needed}\n")
    assert caught.value.line == 3
    assert caught.value.message == 'failed to process "${X:?needed}": X: needed'


def test_arg_scope_is_immutable():
    scope = ArgScope(options={"A": "o"})
    declared = scope.declare("A", "d")
    assert scope.allowed() == {}
    assert declared.allowed() == {"A": "o"}
    assert declared.history_args(["A=env"]) == ()


def test_unused_warning_helper():
    assert unused_build_args_warning({}, []) is None
    assert unused_build_args_warning({"b": "1", "a": None}, []) == (
        "[Warning] One or more build-args [a b] were not consumed"
    )
