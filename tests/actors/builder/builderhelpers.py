"""Shared helpers for the builder tests: parse + plan + evaluate in one call."""

from __future__ import annotations

from actors.builder.imageconfig import ImageConfig
from actors.builder.parser import parse_dockerfile
from actors.builder.plan import (
    BaseImage,
    BuildOptions,
    BuildPlan,
    StageEvaluation,
    evaluate_stage,
    plan_build,
)

BUSYBOX = ImageConfig(env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",), cmd=("sh",))


def plan(text: str, **options) -> BuildPlan:
    return plan_build(parse_dockerfile(text), BuildOptions(**options))


def evaluate(text: str, base: ImageConfig = BUSYBOX, stage: int | None = None, **options) -> StageEvaluation:
    """Evaluate the target stage (or stage index `stage`) of a Dockerfile on a base config."""
    built = plan(text, **options)
    planned = built.stages[-1] if stage is None else built.stage(stage)
    return evaluate_stage(built, planned, BaseImage(config=base))


def last_config(text: str, base: ImageConfig = BUSYBOX, **options) -> ImageConfig:
    return evaluate(text, base, **options).final_state.config


def created_by(text: str, base: ImageConfig = BUSYBOX, **options) -> list[str | None]:
    return [step.created_by for step in evaluate(text, base, **options).steps]
