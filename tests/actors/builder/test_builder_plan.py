"""Multi-stage planning: stage selection, target, FROM and COPY --from resolution, step
numbering, --label, and ONBUILD triggers of the base image."""

from __future__ import annotations

import pytest
from builderhelpers import BUSYBOX, evaluate, plan

from actors.builder.apply import StepKind
from actors.builder.errors import BuildError, DockerfileError
from actors.builder.imageconfig import ImageConfig
from actors.builder.plan import (
    BaseImage,
    SourceKind,
    SourceReference,
    evaluate_stage,
    parse_trigger,
)

MULTI = (
    "FROM golang:1.22 AS build\n"
    "RUN go build -o /app .\n"
    "FROM alpine AS unused\n"
    "RUN echo never\n"
    "FROM scratch\n"
    "COPY --from=build /app /app\n"
    'ENTRYPOINT ["/app"]\n'
)


def test_single_stage_numbering_and_headers():
    built = plan("FROM busybox\nRUN echo hi\nCMD [\"sh\"]\n")
    assert built.total_steps == 3
    evaluation = evaluate_stage(built, built.stages[0], BaseImage(BUSYBOX))
    assert evaluation.from_header == "Step 1/3 : FROM busybox"
    assert [step.header for step in evaluation.steps] == [
        "Step 2/3 : RUN echo hi",
        'Step 3/3 : CMD ["sh"]',
    ]


def test_only_needed_stages_are_built():
    built = plan(MULTI)
    assert [stage.index for stage in built.stages] == [0, 2]
    assert built.total_steps == 5
    assert [stage.first_step_number for stage in built.stages] == [1, 3]
    final = built.stages[-1]
    assert final.base == SourceReference(SourceKind.SCRATCH, "scratch")
    assert final.dependencies == (0,)
    (reference,) = final.copy_sources.values()
    assert reference == SourceReference(SourceKind.STAGE, "build", 0)


def test_all_stages_mode_matches_the_classic_builder():
    built = plan(MULTI, all_stages=True)
    assert [stage.index for stage in built.stages] == [0, 1, 2]
    assert built.total_steps == 7
    assert [stage.first_step_number for stage in built.stages] == [1, 3, 5]


def test_target_selects_a_stage_case_insensitively():
    built = plan(MULTI, target="BUILD")
    assert [stage.index for stage in built.stages] == [0]
    assert built.target_index == 0
    with pytest.raises(BuildError) as caught:
        plan(MULTI, target="nope")
    assert caught.value.message == 'target stage "nope" could not be found'


def test_transitive_dependencies_and_stage_bases():
    text = (
        "FROM alpine AS a\nRUN touch /a\n"
        "FROM alpine AS b\nCOPY --from=a /a /a\n"
        "FROM b AS c\nRUN ls\n"
        "FROM alpine AS d\n"
    )
    built = plan(text, target="c")
    assert [stage.index for stage in built.stages] == [0, 1, 2]
    assert built.stage(2).base == SourceReference(SourceKind.STAGE, "b", 1)


def test_from_refers_only_to_earlier_stages():
    built = plan("FROM node AS node\nRUN x\nFROM later\nFROM alpine AS later\n", all_stages=True)
    assert built.stage(0).base == SourceReference(SourceKind.IMAGE, "node")
    assert built.stage(1).base == SourceReference(SourceKind.IMAGE, "later")


def test_copy_from_index_and_image():
    text = "FROM alpine\nRUN x\nFROM alpine\nCOPY --from=0 /x /x\nCOPY --from=nginx:1.25 /etc/nginx /n\n"
    built = plan(text)
    sources = list(built.stages[-1].copy_sources.values())
    assert sources[0] == SourceReference(SourceKind.STAGE, "0", 0)
    assert sources[1] == SourceReference(SourceKind.IMAGE, "nginx:1.25")
    assert [reference.name for reference in built.image_references()] == ["alpine", "nginx:1.25"]


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("1", "invalid from flag value 1: refers to current build stage"),
        ("5", "invalid from flag value 5: index out of bounds"),
        ("-1", "invalid from flag value -1: index out of bounds"),
        ("later", 'cannot copy from stage "later", it needs to be defined before current stage "1"'),
    ],
)
def test_copy_from_errors(reference, message):
    text = f"FROM alpine\nFROM alpine\nCOPY --from={reference} /x /x\nFROM alpine AS later\n"
    with pytest.raises(BuildError) as caught:
        plan(text, target=None, all_stages=True)
    assert caught.value.message == message
    assert caught.value.line == 3


def test_copy_from_with_variable_is_refused():
    with pytest.raises(BuildError) as caught:
        evaluate("FROM alpine\nARG S=x\nCOPY --from=$S /a /b\n")
    assert "variable expansion is not supported for --from" in caught.value.message


def test_duplicate_stage_names():
    with pytest.raises(DockerfileError) as caught:
        plan("FROM a AS x\nFROM b AS X\n")
    assert caught.value.message == "x stage name already used"
    assert caught.value.line == 2


def test_blank_base_name():
    with pytest.raises(BuildError) as caught:
        plan("ARG IMAGE\nFROM $IMAGE\n")
    assert caught.value.message == "base name ($IMAGE) should not be blank"


def test_platform_flag_is_substituted_and_parsed():
    built = plan("ARG P=linux/arm64\nFROM --platform=$P alpine\n")
    assert str(built.stages[0].base.platform) == "linux/arm64"
    with pytest.raises(BuildError):
        plan("FROM --platform=nonsense/ alpine\n")


def test_dockerfile_with_only_args():
    with pytest.raises(BuildError) as caught:
        plan("ARG A=1\n")
    assert caught.value.message == "No image was generated. Is your Dockerfile empty?"


def test_global_steps_are_numbered_first():
    built = plan("ARG A=1\nARG B\nFROM x\nRUN y\n")
    assert built.global_steps == ("Step 1/4 : ARG A=1", "Step 2/4 : ARG B")
    evaluation = evaluate_stage(built, built.stages[0], BaseImage(BUSYBOX))
    assert evaluation.from_header == "Step 3/4 : FROM x"


def test_labels_option_goes_to_the_target_stage_literally():
    built = plan("FROM x AS a\nFROM y\n", labels={"b": "$NOT_EXPANDED", "a": "1"}, target="a")
    instructions = built.stages[0].instructions
    assert [instruction.original for instruction in instructions] == ["LABEL a=1", "LABEL b=$NOT_EXPANDED"]
    evaluation = evaluate_stage(built, built.stages[0], BaseImage(BUSYBOX))
    assert evaluation.final_state.config.labels_dict() == {"a": "1", "b": "$NOT_EXPANDED"}
    assert built.total_steps == 3


def test_base_image_onbuild_triggers_run_first():
    base = ImageConfig(env=("PATH=/bin",), on_build=("ENV FROM_TRIGGER=1", "COPY . /src"))
    evaluation = evaluate("FROM parent\nRUN make\n", base=base)
    assert evaluation.triggers_message == "# Executing 2 build triggers"
    trigger_env, trigger_copy, run = evaluation.steps
    assert trigger_env.number is None and trigger_copy.number is None
    assert trigger_env.created_by == "/bin/sh -c #(nop)  ENV FROM_TRIGGER=1"
    assert trigger_copy.kind is StepKind.COPY
    assert run.header == "Step 2/2 : RUN make"
    assert evaluation.initial_state.config.on_build == ()
    assert evaluation.final_state.config.on_build == ()


def test_onbuild_declared_in_stage_is_recorded_not_run():
    evaluation = evaluate("FROM parent\nONBUILD RUN echo child\n")
    assert evaluation.final_state.config.on_build == ("RUN echo child",)
    assert evaluation.triggers_message is None


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("RUN a\nRUN b", "onbuild trigger should be a single expression"),
        ("BOGUS x", "unknown instruction: BOGUS"),
    ],
)
def test_bad_triggers(trigger, message):
    with pytest.raises(BuildError) as caught:
        parse_trigger(trigger)
    assert message in caught.value.message


def test_copy_spec_of_a_step():
    evaluation = evaluate(
        "FROM alpine AS b\nFROM alpine\nWORKDIR /app\nARG OWNER=app\n"
        "COPY --from=b --chown=$OWNER:$OWNER --chmod=640 src/ ./dst/\n"
        "ADD --unpack=true https://example.com/x.tgz /opt/\n"
    )
    copy, add = evaluation.steps[-2:]
    assert copy.kind is StepKind.COPY and copy.created_by is None
    spec = copy.copy
    assert spec.sources == ("src/",)
    assert spec.destination == "./dst/"
    assert spec.destination_path == "/app/dst/"
    assert (spec.chown, spec.chmod) == ("app:app", 0o640)
    assert spec.from_source == SourceReference(SourceKind.STAGE, "b", 0)
    assert spec.preserve_ownership is False
    assert add.copy.unpack_remote is True and add.copy.unpack_local is True


def test_copy_from_without_chown_preserves_ownership():
    evaluation = evaluate("FROM alpine AS b\nFROM alpine\nCOPY --from=b /a /a\nCOPY a /b\n")
    from_stage, from_context = evaluation.steps
    assert from_stage.copy.preserve_ownership is True
    assert from_context.copy.preserve_ownership is False


def test_bad_chmod():
    with pytest.raises(BuildError) as caught:
        evaluate("FROM alpine\nCOPY --chmod=999 a /b\n")
    assert "invalid chmod parameter: '999'" in caught.value.message
    assert caught.value.line == 2


def test_run_flags_are_refused_at_build_time():
    with pytest.raises(BuildError) as caught:
        evaluate("FROM alpine\nRUN --mount=type=cache,target=/root/.cache pip install x\n")
    assert caught.value.message.startswith("the --mount option of RUN needs BuildKit")
    assert caught.value.line == 2


def test_trigger_copy_from_resolves_against_this_dockerfile():
    base = ImageConfig(on_build=("COPY --from=builder /out /out", "COPY --from=nginx /etc/nginx /n"))
    built = plan("FROM alpine AS builder\nFROM parent\n", all_stages=True)
    evaluation = evaluate_stage(built, built.stages[-1], BaseImage(base))
    stage_copy, image_copy = evaluation.steps
    assert stage_copy.copy.from_source == SourceReference(SourceKind.STAGE, "builder", 0)
    assert image_copy.copy.from_source == SourceReference(SourceKind.IMAGE, "nginx")
    assert stage_copy.header is None
    # When the stage is not part of the build, the name stands for an image (classic rule).
    pruned = plan("FROM alpine AS builder\nFROM parent\n")
    evaluation = evaluate_stage(pruned, pruned.stages[-1], BaseImage(base))
    assert evaluation.steps[0].copy.from_source == SourceReference(SourceKind.IMAGE, "builder")
