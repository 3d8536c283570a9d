"""How each instruction changes a stage: image config evolution as pure functions.

`apply(state, instruction)` takes the stage state before an (already substituted)
instruction and returns the state after it plus what the step must do and the
`created_by` string the classic builder writes into the image history. Those strings
are part of the cache key, so they are reproduced exactly:

    ENV a=b            /bin/sh -c #(nop)  ENV a=b           (two spaces: a two-part comment)
    CMD ["sh"]         /bin/sh -c #(nop)  CMD ["sh"]
    WORKDIR /app       /bin/sh -c #(nop) WORKDIR /app       (one space: single-part comment)
    COPY a /dst        /bin/sh -c #(nop) COPY file:<sum> in /dst    (trailing space)
    RUN echo hi        /bin/sh -c echo hi
    RUN with args      |1 A=b /bin/sh -c echo hi

The `/bin/sh -c` prefix is the stage's SHELL when one was set. Docker's rules kept here:
ENV replaces an existing variable in place; a later ENTRYPOINT clears a CMD inherited
from the base image but not one set earlier in the same stage; WORKDIR is relative to the
previous WORKDIR and is created; HEALTHCHECK replaces the previous one; ONBUILD records
the trigger for images built FROM this one; MAINTAINER sets the image author.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import Any

import attrs

from .buildargs import ArgScope
from .errors import BuildError
from .gocompat import go_clean, go_format_duration, go_join, go_quote, go_quote_list, go_quote_rune
from .imageconfig import DEFAULT_PATH, HealthConfig, ImageConfig, set_env, set_label
from .instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from .lines import parse_heredoc_word

INLINE_SCRIPT_DIRECTORY = "/dev/pipes"
_SIGNAL_NAMES = frozenset(
    (
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ", "RTMIN", "RTMAX",
        *(f"RTMIN+{n}" for n in range(1, 16)),
        *(f"RTMAX-{n}" for n in range(1, 15)),
    )
)
_SIGNED_DECIMAL = re.compile(r"^[+-]?[0-9]+$")
_UNSIGNED_DECIMAL = re.compile(r"^[0-9]+$")


class StepKind(enum.Enum):
    METADATA = "metadata"  # config only: an empty layer
    RUN = "run"  # run a command in a container, commit its changes
    WORKDIR = "workdir"  # create the directory, commit
    COPY = "copy"
    ADD = "add"


@attrs.frozen
class StageState:
    config: ImageConfig
    args: ArgScope = attrs.field(factory=ArgScope)
    os: str = "linux"
    # True once a CMD with arguments ran in this stage: a later ENTRYPOINT keeps it.
    cmd_set: bool = False
    author: str = ""


@attrs.frozen
class InlineFile:
    path: str
    data: str
    mode: int


@attrs.frozen
class RunSpec:
    """What the executor runs for a RUN step.

    As the classic builder does: run `command` with no entrypoint (the image's is
    overridden) and no healthcheck, as `user` in `working_dir`, with `env` (the image's
    Env plus the build args in effect); then commit the container's changes. The image
    config does not change; `Step.created_by` is what goes into the history.
    """

    command: tuple[str, ...]
    env: tuple[str, ...]
    user: str
    working_dir: str
    # Files to provide inside the container before running (a heredoc script with #!).
    inline_files: tuple[InlineFile, ...] = ()


@attrs.frozen
class Applied:
    state: StageState
    kind: StepKind
    # None for COPY/ADD: the string needs the checksum of the sources (copy_created_by).
    created_by: str | None
    run: RunSpec | None = None
    messages: tuple[str, ...] = ()


def begin_stage(base: ImageConfig, args: ArgScope, os_name: str = "linux") -> tuple[StageState, tuple[str, ...]]:
    """The state right after FROM, and the base image's ONBUILD triggers to run now.

    A PATH is added when the base sets none (scratch included); the triggers are taken
    out of the config, so they fire once, in the first build that uses the image.
    """
    config = base
    if config.env_value("PATH") is None:
        config = attrs.evolve(config, env=(*config.env, f"PATH={DEFAULT_PATH}"))
    triggers = config.on_build
    config = attrs.evolve(config, on_build=())
    return StageState(config=config, args=args.enter_stage(), os=os_name), triggers


def _nop(state: StageState, comment: str) -> str:
    return " ".join((*state.config.effective_shell(), "#(nop) ", comment))


def _nop_string(state: StageState, comment: str) -> str:
    return " ".join((*state.config.effective_shell(), "#(nop) " + comment))


def _with_config(state: StageState, **changes: Any) -> StageState:
    return attrs.evolve(state, config=attrs.evolve(state.config, **changes))


def normalize_workdir(current: str, requested: str) -> str:
    if requested == "":
        raise BuildError("cannot normalize nothing")
    if not requested.startswith("/"):
        return go_join("/", current, requested)
    return go_clean(requested)


def normalize_destination(working_dir: str, requested: str) -> str:
    """COPY/ADD destination made absolute against WORKDIR, trailing '/' kept."""
    if requested.startswith("/"):
        return requested
    destination = go_join("/", working_dir, requested)
    if requested.endswith("/") and not destination.endswith("/"):
        destination += "/"
    return destination


def healthcheck_text(health: HealthConfig) -> str:
    """Go's `%q` of Docker's *HealthConfig, as written into the HEALTHCHECK history entry."""
    durations = " ".join(
        go_quote(go_format_duration(value))
        for value in (
            health.interval_nanoseconds,
            health.timeout_nanoseconds,
            health.start_period_nanoseconds,
            health.start_interval_nanoseconds,
        )
    )
    return f"&{{{go_quote_list(health.test)} {durations} {go_quote_rune(health.retries)}}}"


def validate_signal(signal: str) -> None:
    if _SIGNED_DECIMAL.match(signal):
        if int(signal) == 0:
            raise BuildError(f"invalid signal: {signal}")
        return
    name = signal.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in _SIGNAL_NAMES:
        raise BuildError(f"invalid signal: {signal}")


def _port_range(text: str, kind: str) -> tuple[int, int]:
    start_text, dash, end_text = text.partition("-")
    if not (_UNSIGNED_DECIMAL.match(start_text) and (not dash or _UNSIGNED_DECIMAL.match(end_text))):
        raise BuildError(f"invalid {kind}: {text}")
    start = int(start_text)
    end = int(end_text) if dash else start
    if start > 65535 or end > 65535 or end < start:
        raise BuildError(f"invalid {kind}: {text}")
    return start, end


def expose_ports(spec: str) -> list[str]:
    """The `port/proto` keys one EXPOSE word stands for (ranges expanded)."""
    parts = spec.split(":")
    container = parts[-1]
    host_port = parts[-2] if len(parts) >= 2 else ""
    address = ":".join(parts[:-2]) if len(parts) >= 3 else ""
    port, _, protocol = container.partition("/")
    if port == "":
        raise BuildError(f"no port specified: {spec}<empty>")
    protocol = (protocol or "tcp").lower()
    if protocol not in ("tcp", "udp", "sctp"):
        raise BuildError(f"invalid proto: {protocol}")
    if address:
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise BuildError(f"invalid IP address: {address}") from None
    start, end = _port_range(port, "containerPort")
    if host_port:
        host_start, host_end = _port_range(host_port, "hostPort")
        if end - start != host_end - host_start and end != start:
            raise BuildError(
                f"invalid ranges specified for container and host Ports: {port} and {host_port}"
            )
    return [f"{number}/{protocol}" for number in range(start, end + 1)]


def resolve_command(command: tuple[str, ...] | None, exec_form: bool, state: StageState) -> tuple[str, ...] | None:
    if command is None or exec_form:
        return command
    return (*state.config.effective_shell(), *command)


def _run_command(instruction: Run, state: StageState) -> tuple[tuple[str, ...], tuple[InlineFile, ...]]:
    if instruction.exec_form or not instruction.heredocs:
        command = resolve_command(instruction.command, instruction.exec_form, state)
        assert command is not None
        return command, ()
    line = instruction.command[0]
    if parse_heredoc_word(line) is not None:
        # The whole command is one heredoc: its body is the script (BuildKit's rule).
        heredoc = instruction.heredocs[0]
        body = heredoc.chomped_content()
        if body.startswith("#!"):
            path = f"{INLINE_SCRIPT_DIRECTORY}/{heredoc.name}"
            files = (InlineFile(path=path, data=body, mode=0o755),)
            return (*state.config.effective_shell(), path), files
        return (*state.config.effective_shell(), body), ()
    # Heredocs inside a longer command: hand the shell the text as written.
    script = line + "".join("\n" + heredoc.content + heredoc.name for heredoc in instruction.heredocs)
    return (*state.config.effective_shell(), script), ()


def _apply_run(state: StageState, instruction: Run) -> Applied:
    if instruction.flags_used:
        flag = instruction.flags_used[0]
        raise BuildError(
            f"the --{flag} option of RUN needs BuildKit; flotta builds with the classic "
            "builder, which does not support it",
            instruction.line,
        )
    command, inline_files = _run_command(instruction, state)
    history = state.args.history_args(state.config.env)
    saved = (f"|{len(history)}", *history, *command) if history else command
    run_args = state.args.run_args(state.config.env)
    env = (*state.config.env, *(f"{name}={value}" for name, value in sorted(run_args.items())))
    run = RunSpec(
        command=command, env=env, user=state.config.user,
        working_dir=state.config.working_dir, inline_files=inline_files,
    )
    return Applied(state=state, kind=StepKind.RUN, created_by=" ".join(saved), run=run)


def apply(state: StageState, instruction: Instruction) -> Applied:
    """The state after one substituted instruction (see the module docstring)."""
    try:
        return _apply(state, instruction)
    except BuildError as error:
        if error.line is None:
            raise BuildError(error.message, instruction.line) from None
        raise


def _apply(state: StageState, instruction: Instruction) -> Applied:
    config = state.config
    match instruction:
        case Env(pairs=pairs):
            env = config.env
            for pair in pairs:
                env = set_env(env, pair.key, pair.value)
            comment = "ENV" + "".join(f" {pair.key}={pair.value}" for pair in pairs)
            return _metadata(state, comment, env=env)
        case Label(pairs=pairs):
            labels = config.labels
            for pair in pairs:
                labels = set_label(labels, pair.key, pair.value)
            comment = "LABEL" + "".join(f" {pair.key}={pair.value}" for pair in pairs)
            return _metadata(state, comment, labels=labels)
        case Maintainer(maintainer=maintainer):
            new_state = attrs.evolve(state, author=maintainer)
            return Applied(new_state, StepKind.METADATA, _nop(new_state, "MAINTAINER " + maintainer))
        case Arg(declarations=declarations):
            args = state.args
            parts = []
            for declaration in declarations:
                args = args.declare(declaration.name, declaration.default)
                parts.append(
                    declaration.name
                    if declaration.default is None
                    else f"{declaration.name}={declaration.default}"
                )
            new_state = attrs.evolve(state, args=args)
            return Applied(new_state, StepKind.METADATA, _nop(new_state, "ARG " + " ".join(parts)))
        case Onbuild(expression=expression):
            return _metadata(state, "ONBUILD " + expression, on_build=(*config.on_build, expression))
        case Workdir(path=path):
            working_dir = normalize_workdir(config.working_dir, path)
            new_state = _with_config(state, working_dir=working_dir)
            return Applied(new_state, StepKind.WORKDIR, _nop_string(new_state, "WORKDIR " + working_dir))
        case Run():
            return _apply_run(state, instruction)
        case Cmd(command=command, exec_form=exec_form):
            cmd = resolve_command(command, exec_form, state)
            new_state = attrs.evolve(
                state,
                config=attrs.evolve(config, cmd=cmd, args_escaped=False),
                cmd_set=state.cmd_set or bool(command),
            )
            return Applied(new_state, StepKind.METADATA, _nop(new_state, "CMD " + go_quote_list(cmd)))
        case Entrypoint(command=command, exec_form=exec_form):
            entrypoint = resolve_command(command, exec_form, state)
            cmd = config.cmd if state.cmd_set else None
            new_state = _with_config(state, entrypoint=entrypoint, cmd=cmd, args_escaped=False)
            comment = "ENTRYPOINT " + go_quote_list(entrypoint)
            return Applied(new_state, StepKind.METADATA, _nop(new_state, comment))
        case Healthcheck():
            return _apply_healthcheck(state, instruction)
        case Expose(ports=ports):
            exposed = set(config.exposed_ports)
            for port in ports:
                exposed.update(expose_ports(port))
            comment = "EXPOSE " + " ".join(ports)
            return _metadata(state, comment, exposed_ports=tuple(sorted(exposed)))
        case User(user=user):
            return _metadata(state, "USER " + user, user=user)
        case Volume(paths=paths):
            if any(path == "" for path in paths):
                raise BuildError("VOLUME specified can not be an empty string")
            volumes = tuple(sorted(set(config.volumes) | set(paths)))
            return _metadata(state, "VOLUME [" + " ".join(paths) + "]", volumes=volumes)
        case StopSignal(signal=signal):
            validate_signal(signal)
            return _metadata(state, "STOPSIGNAL " + signal, stop_signal=signal)
        case Shell(shell=shell):
            return _metadata(state, "SHELL [" + " ".join(shell) + "]", shell=shell)
        case Copy():
            return Applied(state, StepKind.COPY, None)
        case Add():
            return Applied(state, StepKind.ADD, None)
    raise BuildError(f"{instruction.keyword} cannot be used here")


def _metadata(state: StageState, comment: str, **changes: Any) -> Applied:
    new_state = _with_config(state, **changes)
    return Applied(new_state, StepKind.METADATA, _nop(new_state, comment))


def _apply_healthcheck(state: StageState, instruction: Healthcheck) -> Applied:
    messages: tuple[str, ...] = ()
    previous = state.config.healthcheck
    if previous is not None and previous.test and previous.test[0] != "NONE":
        messages = (f"Note: overriding previous HEALTHCHECK: [{' '.join(previous.test)}]",)
    health = HealthConfig(
        test=instruction.test,
        interval_nanoseconds=instruction.interval_nanoseconds,
        timeout_nanoseconds=instruction.timeout_nanoseconds,
        start_period_nanoseconds=instruction.start_period_nanoseconds,
        start_interval_nanoseconds=instruction.start_interval_nanoseconds,
        retries=instruction.retries,
    )
    new_state = _with_config(state, healthcheck=health)
    comment = "HEALTHCHECK " + healthcheck_text(health)
    return Applied(new_state, StepKind.METADATA, _nop(new_state, comment), messages=messages)


def copy_created_by(
    state: StageState, instruction: Copy | Add, source_checksum: str
) -> str:
    """`/bin/sh -c #(nop) COPY [--chown=u:g ][--chmod=m ]<checksum> in <dest> `.

    `--chmod` is not in Docker's string (its classic builder refuses the flag); flotta
    supports it and records it the same way as --chown so that it reaches the cache key.
    """
    options = ""
    if instruction.chown:
        options += f"--chown={instruction.chown} "
    if instruction.chmod:
        options += f"--chmod={instruction.chmod} "
    comment = f"{instruction.keyword} {options}{source_checksum} in {instruction.destination} "
    return _nop_string(state, comment)
