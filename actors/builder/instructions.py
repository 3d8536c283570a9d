"""The typed Dockerfile model: one frozen class per instruction, stages, the file.

Instructions hold their arguments as written (before `$VAR` substitution, quotes still
in place where Docker keeps them for later word processing); `expand.py` produces the
substituted copies at build time, when the values are known. Every instruction keeps
its first and last source line and its source text (`original`, what Docker prints in
`Step 2/5 : RUN echo hi`).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from .lines import Heredoc

# Docker's word splitting for ENV/LABEL/ARG keeps quotes for the later substitution pass.


@attrs.frozen(kw_only=True)
class Instruction:
    keyword: ClassVar[str] = ""
    line: int
    end_line: int
    original: str


@attrs.frozen
class KeyValue:
    key: str
    value: str
    # False for the legacy `ENV key value` form, which has no '='.
    has_delimiter: bool = True


@attrs.frozen
class ArgDeclaration:
    name: str
    default: str | None = None


@attrs.frozen
class InlineSource:
    """A COPY/ADD source written inline as a heredoc: `COPY <<EOF /etc/motd`."""

    name: str
    data: str
    expand: bool


@attrs.frozen(kw_only=True)
class From(Instruction):
    keyword: ClassVar[str] = "FROM"
    base: str
    stage_name: str | None = None
    platform: str | None = None


@attrs.frozen(kw_only=True)
class Run(Instruction):
    keyword: ClassVar[str] = "RUN"
    command: tuple[str, ...]
    exec_form: bool
    heredocs: tuple[Heredoc, ...] = ()
    # BuildKit-only flags (--mount, --network, --security, --device), kept so that the
    # build can refuse them with a clear message instead of silently ignoring them.
    flags_used: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Cmd(Instruction):
    keyword: ClassVar[str] = "CMD"
    command: tuple[str, ...]
    exec_form: bool


@attrs.frozen(kw_only=True)
class Entrypoint(Instruction):
    keyword: ClassVar[str] = "ENTRYPOINT"
    # None for `ENTRYPOINT []`, which clears the entrypoint.
    command: tuple[str, ...] | None
    exec_form: bool


@attrs.frozen(kw_only=True)
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Env(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[KeyValue, ...]


@attrs.frozen(kw_only=True)
class Arg(Instruction):
    keyword: ClassVar[str] = "ARG"
    declarations: tuple[ArgDeclaration, ...]


@attrs.frozen(kw_only=True)
class Label(Instruction):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[KeyValue, ...]
    # Labels from `docker build --label` are taken literally.
    expand: bool = True


@attrs.frozen(kw_only=True)
class Expose(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Workdir(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str


@attrs.frozen(kw_only=True)
class User(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str


@attrs.frozen(kw_only=True)
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]


@attrs.frozen(kw_only=True)
class StopSignal(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@attrs.frozen(kw_only=True)
class Healthcheck(Instruction):
    keyword: ClassVar[str] = "HEALTHCHECK"
    # ("NONE",), ("CMD", arg, ...) for exec form, ("CMD-SHELL", command) for shell form.
    test: tuple[str, ...]
    interval_nanoseconds: int = 0
    timeout_nanoseconds: int = 0
    start_period_nanoseconds: int = 0
    start_interval_nanoseconds: int = 0
    retries: int = 0


@attrs.frozen(kw_only=True)
class Copy(Instruction):
    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    destination: str
    inline_sources: tuple[InlineSource, ...] = ()
    from_reference: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    excludes: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Add(Instruction):
    keyword: ClassVar[str] = "ADD"
    sources: tuple[str, ...]
    destination: str
    inline_sources: tuple[InlineSource, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    excludes: tuple[str, ...] = ()
    checksum: str | None = None
    keep_git_dir: bool | None = None
    # None: extract local archives only (Docker's default); True/False force either way.
    unpack: bool | None = None


@attrs.frozen(kw_only=True)
class Onbuild(Instruction):
    keyword: ClassVar[str] = "ONBUILD"
    # The trigger as stored in the image config (Docker's OnBuild entry).
    expression: str
    trigger: Instruction


@attrs.frozen(kw_only=True)
class Maintainer(Instruction):
    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


INSTRUCTION_CLASSES: tuple[type[Instruction], ...] = (
    From, Run, Cmd, Entrypoint, Shell, Env, Arg, Label, Expose, Workdir, User, Volume,
    StopSignal, Healthcheck, Copy, Add, Onbuild, Maintainer,
)
INSTRUCTION_NAMES = tuple(cls.keyword for cls in INSTRUCTION_CLASSES)


@attrs.frozen
class Stage:
    """A FROM line and the instructions up to the next FROM."""

    index: int
    from_instruction: From
    instructions: tuple[Instruction, ...]

    @property
    def name(self) -> str | None:
        return self.from_instruction.stage_name

    @property
    def base(self) -> str:
        return self.from_instruction.base

    @property
    def platform(self) -> str | None:
        return self.from_instruction.platform


@attrs.frozen
class Dockerfile:
    stages: tuple[Stage, ...]
    # ARG instructions before the first FROM: visible to FROM lines, and inside a stage
    # only when redeclared there.
    global_args: tuple[Arg, ...]
    escape: str = "\\"
    syntax: str | None = None
    directives: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def stage_by_name(self, name: str) -> Stage | None:
        lowered = name.lower()
        for stage in self.stages:
            if stage.name == lowered:
                return stage
        return None
