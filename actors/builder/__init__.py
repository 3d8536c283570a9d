"""flotta's Dockerfile builder: the pure parts (parsing, substitution, planning, the build
context, cache keys). Executing steps (running RUN in containers, committing layers)
lives in actor.py / executor.py on top of these modules.

The flow an executor follows:

    context = BuildContext.from_tar_stream(body)              # context.py
    dockerfile = parse_dockerfile(context.read_dockerfile())  # parser.py
    plan = plan_build(dockerfile, BuildOptions(...))          # plan.py
    for stage in plan.stages:
        base = BaseImage(config=...)                          # from the image store
        evaluation = evaluate_stage(plan, stage, base)
        for step in evaluation.steps:
            # RUN: step.run; COPY/ADD: resolve_copy_spec(...) + sources_checksum(...)
            key = step_cache_key(parent_id, step, checksum)   # cachekey.py
"""

from .apply import StageState, StepKind, apply, begin_stage, copy_created_by
from .buildargs import ArgScope, Platform
from .cachekey import cache_key, source_checksum, sources_checksum, step_cache_key, step_created_by
from .context import (
    BuildContext,
    ResolvedSource,
    SourceTree,
    resolve_copy_spec,
    resolve_sources,
)
from .errors import BuildError, ContextError, DockerfileError
from .imageconfig import HealthConfig, ImageConfig
from .instructions import Dockerfile, Instruction, Stage
from .parser import parse_dockerfile
from .plan import (
    BaseImage,
    BuildOptions,
    BuildPlan,
    CopySpec,
    PlannedStage,
    SourceKind,
    SourceReference,
    Step,
    evaluate_stage,
    plan_build,
)
from .transfer import copy_into_rootfs, copy_owner

__all__ = [
    "ArgScope",
    "BaseImage",
    "BuildContext",
    "BuildError",
    "BuildOptions",
    "BuildPlan",
    "ContextError",
    "CopySpec",
    "Dockerfile",
    "DockerfileError",
    "HealthConfig",
    "ImageConfig",
    "Instruction",
    "PlannedStage",
    "Platform",
    "ResolvedSource",
    "SourceKind",
    "SourceReference",
    "SourceTree",
    "Stage",
    "StageState",
    "Step",
    "StepKind",
    "apply",
    "begin_stage",
    "cache_key",
    "copy_created_by",
    "copy_into_rootfs",
    "copy_owner",
    "evaluate_stage",
    "parse_dockerfile",
    "plan_build",
    "resolve_copy_spec",
    "resolve_sources",
    "source_checksum",
    "sources_checksum",
    "step_cache_key",
    "step_created_by",
]
