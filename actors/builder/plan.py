"""From a parsed Dockerfile and the build options to the steps an executor performs.

Two phases, both pure:

1. `plan_build(dockerfile, options)` — no image needed. Substitutes the global ARGs,
   resolves every FROM (an earlier stage, `scratch`, or an image reference) and every
   `COPY --from` (an earlier stage by name or index, or an image), picks the target stage
   (`--target`, else the last) and the stages to build, and numbers the steps
   (`Step 3/7`).
2. `evaluate_stage(plan, stage, base)` — once the executor knows the base image's
   config. Runs the base image's ONBUILD triggers right after FROM, substitutes
   variables, applies each instruction to the config (apply.py) and returns one `Step`
   per instruction: its kind, its `created_by`, the config after it, and for RUN and
   COPY/ADD what to execute. The executor then runs RUN steps in containers, copies
   files for COPY/ADD (context.py), and keys its cache with cachekey.py.

Which stages are built: flotta builds only the stages the target needs — through FROM
<stage> and COPY --from=<stage> — like BuildKit. The classic builder builds every stage
up to the target; `BuildOptions(all_stages=True)` restores that (step numbers then match
Docker's output exactly). Either way the resulting image is the same.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

import attrs

from .apply import (
    Applied,
    RunSpec,
    StageState,
    StepKind,
    apply,
    begin_stage,
    normalize_destination,
)
from .buildargs import (
    PLATFORM_ARGS,
    ArgScope,
    Platform,
    platform_args,
    unused_build_args_warning,
)
from .errors import BuildError, DockerfileError
from .expand import expand_instruction
from .gocompat import go_quote
from .imageconfig import ImageConfig
from .instructions import (
    Add,
    Arg,
    Copy,
    Dockerfile,
    From,
    InlineSource,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    Stage,
)
from .lines import parse_lines
from .parser import parse_instruction
from .shellwords import ExpansionError, Lexer

_OCTAL = re.compile(r"^[0-7]+$")


@attrs.frozen
class BuildOptions:
    build_args: Mapping[str, str | None] = attrs.field(factory=dict)
    target: str | None = None
    # The platform to build for (default: the daemon's) and the one building.
    platform: Platform | None = None
    build_platform: Platform | None = None
    # `docker build --label`: added to the final image, never substituted.
    labels: Mapping[str, str] = attrs.field(factory=dict)
    all_stages: bool = False


class SourceKind(enum.Enum):
    SCRATCH = "scratch"
    IMAGE = "image"
    STAGE = "stage"


@attrs.frozen
class SourceReference:
    """What a FROM or a COPY --from names."""

    kind: SourceKind
    name: str
    stage_index: int | None = None
    platform: Platform | None = None


@attrs.frozen
class PlannedStage:
    stage: Stage
    base: SourceReference
    instructions: tuple[Instruction, ...]
    # COPY --from references by the line of their instruction.
    copy_sources: Mapping[int, SourceReference]
    dependencies: tuple[int, ...]
    first_step_number: int

    @property
    def index(self) -> int:
        return self.stage.index

    @property
    def name(self) -> str | None:
        return self.stage.name


@attrs.frozen
class BuildPlan:
    dockerfile: Dockerfile
    options: BuildOptions
    # Stages to build, in build order (dependencies first).
    stages: tuple[PlannedStage, ...]
    target_index: int
    total_steps: int
    # "Step n/N : ARG ..." texts for the global ARGs (printed before the first FROM).
    global_steps: tuple[str, ...]
    global_scope: ArgScope
    referenced_args: frozenset[str]

    def stage(self, index: int) -> PlannedStage:
        for planned in self.stages:
            if planned.index == index:
                return planned
        raise KeyError(index)

    def image_references(self) -> tuple[SourceReference, ...]:
        """Every external image the build reads (FROM images and COPY --from images)."""
        found: dict[str, SourceReference] = {}
        for planned in self.stages:
            for reference in (planned.base, *planned.copy_sources.values()):
                if reference.kind is SourceKind.IMAGE:
                    found.setdefault(reference.name, reference)
        return tuple(found.values())

    def unused_build_args_warning(self, extra_referenced: tuple[str, ...] = ()) -> str | None:
        referenced = {*self.referenced_args, *extra_referenced, *PLATFORM_ARGS}
        return unused_build_args_warning(self.options.build_args, referenced)


def _global_scope(dockerfile: Dockerfile, options: BuildOptions) -> tuple[ArgScope, frozenset[str]]:
    build = options.build_platform or Platform.host()
    target = options.platform or build
    scope = ArgScope(options=dict(options.build_args))
    for name, value in platform_args(target, build).items():
        scope = scope.declare_global(name, value)
    lexer = Lexer(escape=dockerfile.escape)
    referenced: set[str] = set()
    for arg in dockerfile.global_args:
        env = scope.allowed()
        for declaration in arg.declarations:
            try:
                name = lexer.process_word(declaration.name, env)
                default = (
                    None if declaration.default is None
                    else lexer.process_word(declaration.default, env)
                )
            except ExpansionError as error:
                raise BuildError(error.message, arg.line) from None
            scope = scope.declare_global(name, default)
            referenced.add(name)
    return scope, frozenset(referenced)


def _earlier_stage(dockerfile: Dockerfile, name: str, before: int) -> Stage | None:
    lowered = name.lower()
    for stage in dockerfile.stages[:before]:
        if stage.name == lowered:
            return stage
    return None


def _resolve_base(dockerfile: Dockerfile, stage: Stage, scope: ArgScope) -> SourceReference:
    lexer = Lexer(escape=dockerfile.escape)
    env = scope.global_values()
    instruction = stage.from_instruction
    try:
        name = lexer.process_word(instruction.base, env)
        platform_text = (
            lexer.process_word(instruction.platform, env) if instruction.platform else ""
        )
    except ExpansionError as error:
        raise BuildError(error.message, instruction.line) from None
    if name == "":
        raise BuildError(f"base name ({instruction.base}) should not be blank", instruction.line)
    platform = Platform.parse(platform_text) if platform_text else None
    earlier = _earlier_stage(dockerfile, name, stage.index)
    if earlier is not None:
        return SourceReference(SourceKind.STAGE, earlier.name or name, earlier.index, platform)
    if name == "scratch":
        return SourceReference(SourceKind.SCRATCH, name, None, platform)
    return SourceReference(SourceKind.IMAGE, name, None, platform)


def _resolve_copy_from(dockerfile: Dockerfile, stage: Stage, instruction: Copy) -> SourceReference:
    reference = instruction.from_reference
    assert reference is not None
    earlier = _earlier_stage(dockerfile, reference, stage.index)
    if earlier is not None:
        return SourceReference(SourceKind.STAGE, earlier.name or reference, earlier.index)
    if re.fullmatch(r"[+-]?[0-9]+", reference):
        index = int(reference)
        if index == stage.index:
            message = "refers to current build stage"
        elif index < 0 or index > stage.index:
            message = "index out of bounds"
        else:
            target = dockerfile.stages[index]
            return SourceReference(SourceKind.STAGE, target.name or str(index), index)
        raise BuildError(f"invalid from flag value {reference}: {message}", instruction.line)
    later = dockerfile.stage_by_name(reference)
    if later is not None:
        raise BuildError(
            f"cannot copy from stage {go_quote(reference)}, it needs to be defined before "
            f"current stage {go_quote(stage.name or str(stage.index))}",
            instruction.line,
        )
    return SourceReference(SourceKind.IMAGE, reference)


def _label_instructions(labels: Mapping[str, str]) -> tuple[Label, ...]:
    return tuple(
        Label(
            line=0, end_line=0, original=f"LABEL {key}={value}",
            pairs=(KeyValue(key, value),), expand=False,
        )
        for key, value in sorted(labels.items())
    )


def plan_build(dockerfile: Dockerfile, options: BuildOptions | None = None) -> BuildPlan:
    """The stages to build and their references (see the module docstring)."""
    options = options or BuildOptions()
    if not dockerfile.stages:
        raise BuildError("No image was generated. Is your Dockerfile empty?")
    seen_names: dict[str, int] = {}
    for stage in dockerfile.stages:
        if stage.name is not None:
            if stage.name in seen_names:
                raise DockerfileError(
                    f"{stage.name} stage name already used", stage.from_instruction.line
                )
            seen_names[stage.name] = stage.index
    target_index = len(dockerfile.stages) - 1
    if options.target:
        found = dockerfile.stage_by_name(options.target)
        if found is None:
            raise BuildError(f"target stage {go_quote(options.target)} could not be found")
        target_index = found.index
    scope, referenced = _global_scope(dockerfile, options)
    bases: dict[int, SourceReference] = {}
    copies: dict[int, dict[int, SourceReference]] = {}
    dependencies: dict[int, tuple[int, ...]] = {}
    for stage in dockerfile.stages[: target_index + 1]:
        bases[stage.index] = _resolve_base(dockerfile, stage, scope)
        copies[stage.index] = {
            instruction.line: _resolve_copy_from(dockerfile, stage, instruction)
            for instruction in stage.instructions
            if isinstance(instruction, Copy) and instruction.from_reference
        }
        needed = [
            reference.stage_index
            for reference in (bases[stage.index], *copies[stage.index].values())
            if reference.kind is SourceKind.STAGE and reference.stage_index is not None
        ]
        dependencies[stage.index] = tuple(sorted(set(needed)))
    if options.all_stages:
        selected = set(range(target_index + 1))
    else:
        selected = set()
        pending = [target_index]
        while pending:
            index = pending.pop()
            if index not in selected:
                selected.add(index)
                pending.extend(dependencies[index])
    step_number = len(dockerfile.global_args) + 1
    planned: list[PlannedStage] = []
    for stage in dockerfile.stages:
        if stage.index not in selected:
            continue
        instructions = stage.instructions
        if stage.index == target_index:
            instructions = (*instructions, *_label_instructions(options.labels))
        planned.append(
            PlannedStage(
                stage=stage, base=bases[stage.index], instructions=instructions,
                copy_sources=copies[stage.index], dependencies=dependencies[stage.index],
                first_step_number=step_number,
            )
        )
        step_number += 1 + len(instructions)
        for instruction in instructions:
            if isinstance(instruction, Arg):
                referenced |= {declaration.name for declaration in instruction.declarations}
    total = step_number - 1
    global_steps = tuple(
        f"Step {number}/{total} : {arg.original}"
        for number, arg in enumerate(dockerfile.global_args, start=1)
    )
    return BuildPlan(
        dockerfile=dockerfile, options=options, stages=tuple(planned), target_index=target_index,
        total_steps=total, global_steps=global_steps, global_scope=scope,
        referenced_args=frozenset(referenced),
    )


@attrs.frozen
class BaseImage:
    """What the executor learned about a stage's base (an image, a built stage, scratch)."""

    config: ImageConfig = attrs.field(factory=ImageConfig)
    os: str = "linux"
    image_id: str | None = None


@attrs.frozen
class CopySpec:
    """What a COPY/ADD step copies, substituted and resolved except for the files."""

    command: str
    sources: tuple[str, ...]
    inline_sources: tuple[InlineSource, ...]
    destination: str
    destination_path: str
    chown: str | None
    chmod: int | None
    from_source: SourceReference | None
    # COPY --from keeps the owners of the copied files unless --chown is given.
    preserve_ownership: bool
    excludes: tuple[str, ...]
    # ADD: unpack local archives / downloaded archives.
    unpack_local: bool
    unpack_remote: bool
    checksum: str | None
    link: bool


@attrs.frozen
class Step:
    number: int | None  # None for an ONBUILD trigger of the base image (not a numbered step)
    total: int
    text: str
    instruction: Instruction
    kind: StepKind
    state: StageState
    created_by: str | None
    run: RunSpec | None = None
    copy: CopySpec | None = None
    cache_args: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    @property
    def header(self) -> str | None:
        """`Step 2/5 : RUN echo hi`; None for a base image's ONBUILD trigger (not a step)."""
        if self.number is None:
            return None
        return f"Step {self.number}/{self.total} : {self.text}"

    @property
    def config(self) -> ImageConfig:
        return self.state.config


@attrs.frozen
class StageEvaluation:
    from_header: str
    triggers_message: str | None
    steps: tuple[Step, ...]
    initial_state: StageState
    final_state: StageState
    referenced_args: frozenset[str]


def parse_chmod(text: str | None, line: int | None = None) -> int | None:
    if text is None:
        return None
    if not _OCTAL.match(text) or int(text, 8) > 0o7777:
        raise BuildError(
            f"invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777",
            line,
        )
    return int(text, 8)


def parse_trigger(expression: str) -> Instruction:
    """An ONBUILD trigger from an image config, parsed as a one-line Dockerfile."""
    try:
        parsed = parse_lines(expression)
        if len(parsed.nodes) != 1:
            raise BuildError("onbuild trigger should be a single expression")
        instruction = parse_instruction(parsed.nodes[0], "\\")
    except DockerfileError as error:
        raise BuildError(f"invalid ONBUILD trigger {go_quote(expression)}: {error.message}") from None
    if isinstance(instruction, From | Onbuild | Maintainer):
        raise BuildError(f"{instruction.keyword} isn't allowed as an ONBUILD trigger")
    return instruction


def _resolve_trigger_copy_from(plan: BuildPlan, planned: PlannedStage, reference: str) -> SourceReference:
    """COPY --from in a base image's ONBUILD trigger: like the classic builder, only the
    stages already built in this build count (by name, then index); anything else is an
    image."""
    built = [stage for stage in plan.stages if stage.index < planned.index]
    for stage in built:
        if stage.name is not None and stage.name == reference.lower():
            return SourceReference(SourceKind.STAGE, stage.name, stage.index)
    if re.fullmatch(r"[0-9]+", reference):
        for stage in built:
            if stage.index == int(reference):
                return SourceReference(SourceKind.STAGE, stage.name or reference, stage.index)
    return SourceReference(SourceKind.IMAGE, reference)


def _copy_spec(
    state: StageState,
    instruction: Copy | Add,
    plan: BuildPlan,
    planned: PlannedStage,
    is_trigger: bool,
) -> CopySpec:
    from_source = None
    if isinstance(instruction, Copy) and instruction.from_reference:
        if is_trigger:
            from_source = _resolve_trigger_copy_from(plan, planned, instruction.from_reference)
        else:
            from_source = planned.copy_sources[instruction.line]
    is_add = isinstance(instruction, Add)
    unpack = instruction.unpack if isinstance(instruction, Add) else None
    return CopySpec(
        command=instruction.keyword,
        sources=instruction.sources,
        inline_sources=instruction.inline_sources,
        destination=instruction.destination,
        destination_path=normalize_destination(state.config.working_dir, instruction.destination),
        chown=instruction.chown,
        chmod=parse_chmod(instruction.chmod, instruction.line),
        from_source=from_source,
        preserve_ownership=from_source is not None and not instruction.chown,
        excludes=instruction.excludes,
        unpack_local=is_add and unpack is not False,
        unpack_remote=is_add and unpack is True,
        checksum=instruction.checksum if isinstance(instruction, Add) else None,
        link=instruction.link,
    )


def evaluate_stage(plan: BuildPlan, planned: PlannedStage, base: BaseImage) -> StageEvaluation:
    """Every step of one stage, given its base (see the module docstring)."""
    state, triggers = begin_stage(base.config, plan.global_scope, base.os)
    initial_state = state
    escape = plan.dockerfile.escape
    steps: list[Step] = []
    referenced: set[str] = set()
    triggered = [(None, parse_trigger(expression)) for expression in triggers]
    numbered = [
        (planned.first_step_number + offset, instruction)
        for offset, instruction in enumerate(planned.instructions, start=1)
    ]
    for number, instruction in (*triggered, *numbered):
        env = state.args.expansion_env(state.config.env)
        expanded = expand_instruction(instruction, env, escape)
        applied: Applied = apply(state, expanded)
        copy = None
        if isinstance(expanded, Copy | Add):
            copy = _copy_spec(state, expanded, plan, planned, number is None)
        if isinstance(expanded, Arg):
            referenced |= {declaration.name for declaration in expanded.declarations}
        cache_args: tuple[str, ...] = ()
        if applied.kind is StepKind.RUN:
            cache_args = state.args.history_args(state.config.env)
        steps.append(
            Step(
                number=number, total=plan.total_steps, text=instruction.original,
                instruction=expanded, kind=applied.kind, state=applied.state,
                created_by=applied.created_by, run=applied.run, copy=copy,
                cache_args=cache_args, messages=applied.messages,
            )
        )
        state = applied.state
    triggers_message = None
    if triggers:
        plural = "s" if len(triggers) > 1 else ""
        triggers_message = f"# Executing {len(triggers)} build trigger{plural}"
    return StageEvaluation(
        from_header=f"Step {planned.first_step_number}/{plan.total_steps} : "
        f"{planned.stage.from_instruction.original}",
        triggers_message=triggers_message,
        steps=tuple(steps),
        initial_state=initial_state,
        final_state=state,
        referenced_args=frozenset(referenced),
    )
