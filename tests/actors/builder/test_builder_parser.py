"""The Dockerfile parser against Docker's rules: one table of instructions and forms, one
of errors with their line numbers, and the line-level rules (directives, continuations,
comments, heredocs)."""

from __future__ import annotations

import attrs
import pytest

from actors.builder.errors import DockerfileError
from actors.builder.instructions import (
    Add,
    Arg,
    ArgDeclaration,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    InlineSource,
    KeyValue,
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
from actors.builder.lines import Heredoc
from actors.builder.parser import parse_dockerfile


def only_instruction(text: str):
    dockerfile = parse_dockerfile("FROM base\n" + text)
    assert len(dockerfile.stages) == 1
    instructions = dockerfile.stages[0].instructions
    assert len(instructions) == 1, instructions
    return instructions[0]


def assert_fields(instruction, cls, **expected) -> None:
    assert type(instruction) is cls, instruction
    actual = attrs.asdict(instruction, recurse=False)
    for key, value in expected.items():
        assert actual[key] == value, (key, actual[key], value)


SECONDS = 1_000_000_000

INSTRUCTION_CASES = [
    ("RUN echo hi", Run, {"command": ("echo hi",), "exec_form": False}),
    ("run   echo   hi  ", Run, {"command": ("echo   hi",), "exec_form": False}),
    ('RUN ["echo", "hi"]', Run, {"command": ("echo", "hi"), "exec_form": True}),
    ('RUN [ "echo" , "a b" ]', Run, {"command": ("echo", "a b"), "exec_form": True}),
    ('RUN ["echo", "unterminated"', Run, {"command": ('["echo", "unterminated"',), "exec_form": False}),
    ("RUN [echo]", Run, {"command": ("[echo]",), "exec_form": False}),
    ('RUN ["a"] trailing', Run, {"command": ('["a"] trailing',), "exec_form": False}),
    ("RUN --mount=type=cache,target=/x make", Run, {"command": ("make",), "flags_used": ("mount",)}),
    ("RUN --network=none --mount=a --mount=b ls", Run, {"flags_used": ("network", "mount")}),
    ("RUN -- --not-a-flag", Run, {"command": ("--not-a-flag",), "flags_used": ()}),
    ('CMD ["sh"]', Cmd, {"command": ("sh",), "exec_form": True}),
    ("CMD echo $HOME", Cmd, {"command": ("echo $HOME",), "exec_form": False}),
    ("CMD []", Cmd, {"command": (), "exec_form": True}),
    ("ENTRYPOINT []", Entrypoint, {"command": None, "exec_form": True}),
    ('ENTRYPOINT ["/entry.sh", "x"]', Entrypoint, {"command": ("/entry.sh", "x"), "exec_form": True}),
    ("ENTRYPOINT /entry.sh run", Entrypoint, {"command": ("/entry.sh run",), "exec_form": False}),
    ('SHELL ["/bin/bash", "-eo", "pipefail", "-c"]', Shell, {"shell": ("/bin/bash", "-eo", "pipefail", "-c")}),
    ("ENV A=1", Env, {"pairs": (KeyValue("A", "1"),)}),
    (
        'ENV A=1 B="x y" C=z\\ w',
        Env,
        {"pairs": (KeyValue("A", "1"), KeyValue("B", '"x y"'), KeyValue("C", "z\\ w"))},
    ),
    ("ENV A 1 2  3", Env, {"pairs": (KeyValue("A", "1 2  3", has_delimiter=False),)}),
    ("ENV A=", Env, {"pairs": (KeyValue("A", ""),)}),
    ("ENV A='x=y'", Env, {"pairs": (KeyValue("A", "'x=y'"),)}),
    ("ARG A", Arg, {"declarations": (ArgDeclaration("A"),)}),
    ("ARG A=1 B", Arg, {"declarations": (ArgDeclaration("A", "1"), ArgDeclaration("B"))}),
    ('ARG A="x y"', Arg, {"declarations": (ArgDeclaration("A", '"x y"'),)}),
    ("ARG A=", Arg, {"declarations": (ArgDeclaration("A", ""),)}),
    ('LABEL a=b "c d"="e f"', Label, {"pairs": (KeyValue("a", "b"), KeyValue('"c d"', '"e f"'))}),
    ("LABEL version 1.0", Label, {"pairs": (KeyValue("version", "1.0", has_delimiter=False),)}),
    ("EXPOSE 80 443/tcp 53/udp", Expose, {"ports": ("443/tcp", "53/udp", "80")}),
    ("EXPOSE $PORT", Expose, {"ports": ("$PORT",)}),
    ("WORKDIR /app dir", Workdir, {"path": "/app dir"}),
    ("USER app:app", User, {"user": "app:app"}),
    ("STOPSIGNAL SIGTERM", StopSignal, {"signal": "SIGTERM"}),
    ("VOLUME /data /logs", Volume, {"paths": ("/data", "/logs")}),
    ('VOLUME ["/a b", "/c"]', Volume, {"paths": ("/a b", "/c")}),
    ("COPY a b /dst/", Copy, {"sources": ("a", "b"), "destination": "/dst/", "from_reference": None}),
    ('COPY ["a b", "/x y/"]', Copy, {"sources": ("a b",), "destination": "/x y/"}),
    (
        "COPY --from=build --chown=app:app --chmod=755 --link a /b",
        Copy,
        {"from_reference": "build", "chown": "app:app", "chmod": "755", "link": True},
    ),
    ("COPY --link=false a /b", Copy, {"link": False}),
    ("COPY --exclude=*.md --exclude=*.txt . /", Copy, {"excludes": ("*.md", "*.txt")}),
    ('COPY --chown="a b" x /y', Copy, {"chown": "a b"}),
    (
        "ADD --checksum=sha256:abc https://example.com/f.tgz /z",
        Add,
        {"checksum": "sha256:abc", "sources": ("https://example.com/f.tgz",), "unpack": None},
    ),
    ("ADD --keep-git-dir=true x y", Add, {"keep_git_dir": True}),
    ("ADD --unpack=false a.tar /x", Add, {"unpack": False}),
    ("ADD --unpack a.tar /x", Add, {"unpack": True}),
    ("HEALTHCHECK NONE", Healthcheck, {"test": ("NONE",)}),
    (
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=10s --start-interval=1s "
        "--retries=3 CMD curl -f http://localhost/ || exit 1",
        Healthcheck,
        {
            "test": ("CMD-SHELL", "curl -f http://localhost/ || exit 1"),
            "interval_nanoseconds": 300 * SECONDS,
            "timeout_nanoseconds": 3 * SECONDS,
            "start_period_nanoseconds": 10 * SECONDS,
            "start_interval_nanoseconds": 1 * SECONDS,
            "retries": 3,
        },
    ),
    ('HEALTHCHECK CMD ["curl", "-f", "x"]', Healthcheck, {"test": ("CMD", "curl", "-f", "x")}),
    ("healthcheck --interval=1.5s cmd true", Healthcheck, {"test": ("CMD-SHELL", "true"), "interval_nanoseconds": 1_500_000_000}),
    ("HEALTHCHECK --interval=0s CMD true", Healthcheck, {"interval_nanoseconds": 0}),
    ("MAINTAINER Jane Doe <jane@example.com>", Maintainer, {"maintainer": "Jane Doe <jane@example.com>"}),
    ("ONBUILD RUN echo hi", Onbuild, {"expression": "RUN echo hi"}),
    ("onbuild   copy . /app", Onbuild, {"expression": "copy . /app"}),
]


@pytest.mark.parametrize(("text", "cls", "expected"), INSTRUCTION_CASES, ids=[case[0][:40] for case in INSTRUCTION_CASES])
def test_instruction_table(text, cls, expected):
    instruction = only_instruction(text)
    assert_fields(instruction, cls, **expected)
    assert instruction.line == 2
    assert instruction.original == text.strip()


def test_onbuild_trigger_is_parsed():
    instruction = only_instruction("ONBUILD COPY --chown=1:1 a /b")
    assert isinstance(instruction, Onbuild)
    assert_fields(instruction.trigger, Copy, sources=("a",), destination="/b", chown="1:1")


def test_from_forms():
    dockerfile = parse_dockerfile(
        "FROM busybox\n"
        "from busybox:1.36 as Builder\n"
        "FROM --platform=$BUILDPLATFORM golang AS build2\n"
        "FROM scratch\n"
    )
    assert [stage.base for stage in dockerfile.stages] == ["busybox", "busybox:1.36", "golang", "scratch"]
    assert [stage.name for stage in dockerfile.stages] == [None, "builder", "build2", None]
    assert dockerfile.stages[2].platform == "$BUILDPLATFORM"
    assert [stage.index for stage in dockerfile.stages] == [0, 1, 2, 3]


def test_global_args_before_first_from():
    dockerfile = parse_dockerfile("ARG A=1\nARG B\nFROM x\nARG C\n")
    assert [arg.declarations for arg in dockerfile.global_args] == [
        (ArgDeclaration("A", "1"),),
        (ArgDeclaration("B"),),
    ]
    assert dockerfile.stages[0].instructions[0].declarations == (ArgDeclaration("C"),)


ERROR_CASES = [
    ("FROM x\nENV A", 2, "ENV must have two arguments"),
    ("FROM x\nENV A=1 B", 2, "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    ("FROM x\nENV =x", 2, "ENV names can not be blank"),
    ("FROM x\nENV", 2, "ENV requires at least one argument"),
    ("FROM x\nARG =1", 2, "ARG names can not be blank"),
    ("FROM x\nARG", 2, "ARG requires at least one argument"),
    ("FROM x\nLABEL", 2, "LABEL requires at least one argument"),
    ("FROM x\nCOPY a", 2, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM x\nADD a", 2, "ADD requires at least two arguments"),
    ("FROM x\nCOPY --foo=bar a b", 2, "unknown flag: --foo"),
    ("FROM x\nCOPY --form=x a b", 2, "unknown flag: --form (did you mean from?)"),
    ("FROM x\nCOPY --from a b", 2, "missing a value on flag: --from"),
    ("FROM x\nCOPY --from=a --from=b x y", 2, "duplicate flag specified: --from"),
    ("FROM x\nCOPY --link=maybe a b", 2, "expecting boolean value for flag --link, not: maybe"),
    ("FROM x\nCOPY --link= a b", 2, "missing a value on flag: --link"),
    ("FROM x\nENV --x=1 A=b", 2, "unknown flag: --x"),
    ("FROM --plat=x y", 1, "unknown flag: --plat"),
    ("FROM x\nHEALTHCHECK", 2, "HEALTHCHECK requires at least one argument"),
    ("FROM x\nHEALTHCHECK NONE x", 2, "HEALTHCHECK NONE takes no arguments"),
    ("FROM x\nHEALTHCHECK CMD", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM x\nHEALTHCHECK FOO x", 2, 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM x\nHEALTHCHECK --interval=1us CMD x", 2, 'Interval "interval" cannot be less than 1ms'),
    ("FROM x\nHEALTHCHECK --timeout=abc CMD x", 2, 'time: invalid duration "abc"'),
    ("FROM x\nHEALTHCHECK --timeout=10 CMD x", 2, 'time: missing unit in duration "10"'),
    ("FROM x\nHEALTHCHECK --timeout=10y CMD x", 2, 'time: unknown unit "y" in duration "10y"'),
    ("FROM x\nHEALTHCHECK --retries=-1 CMD x", 2, "--retries cannot be negative (-1)"),
    ("FROM x\nHEALTHCHECK --retries=x CMD x", 2, 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("FROM x\nHEALTHCHECK --bogus=1 CMD x", 2, "unknown flag: --bogus"),
    ("FROM x\nONBUILD ONBUILD RUN x", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM x\nONBUILD FROM y", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM x\nONBUILD maintainer y", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM x\nONBUILD", 2, "ONBUILD requires at least one argument"),
    ("FROM x\nONBUILD FOO bar", 2, "unknown instruction: FOO"),
    ("FROM x\n\nFOO bar", 3, "unknown instruction: FOO"),
    ("FROM x\nRUNN make", 2, "unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM a b", 1, "FROM requires either one or three arguments"),
    ("FROM", 1, "FROM requires either one or three arguments"),
    ("FROM a AS 1x", 1, 'invalid name for build stage: "1x", name can\'t start with a number or contain symbols'),
    ("FROM a AS b$c", 1, "invalid name for build stage"),
    ("FROM x\nSHELL /bin/sh -c", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM x\nSHELL []", 2, "SHELL requires at least one argument"),
    ("FROM x\nRUN [1, 2]", 2, "when using JSON array syntax, arrays must be comprised of strings only"),
    ('FROM x\nCMD ["a", null]', 2, "arrays must be comprised of strings only"),
    ("FROM x\nRUN", 2, "RUN requires at least one argument"),
    ("FROM x\nCMD", 2, "CMD requires at least one argument"),
    ("FROM x\nWORKDIR", 2, "WORKDIR requires exactly one argument"),
    ("FROM x\nUSER", 2, "USER requires exactly one argument"),
    ("FROM x\nSTOPSIGNAL", 2, "STOPSIGNAL requires exactly one argument"),
    ("FROM x\nMAINTAINER", 2, "MAINTAINER requires exactly one argument"),
    ("FROM x\nEXPOSE", 2, "EXPOSE requires at least one argument"),
    ("FROM x\nVOLUME", 2, "VOLUME requires at least one argument"),
    ('FROM x\nVOLUME [""]', 2, "VOLUME specified can not be an empty string"),
    ("ENV a=b\nFROM x", 1, "no build stage in current context"),
    ("ARG a\nRUN x\nFROM x", 2, "no build stage in current context"),
    ("", None, "file with no instructions"),
    ("# just a comment\n\n   \n", None, "file with no instructions"),
    ("# escape=`\n# escape=\\\nFROM x", 2, "only one escape parser directive can be used"),
    ("# escape=x\nFROM x", 1, "invalid escape token 'x' does not match ` or \\"),
    ("FROM x\nRUN <<EOF\necho hi\n", 2, "unterminated heredoc EOF"),
    ("FROM x\nCOPY a <<EOF\nbody\nEOF\n", 2, "COPY cannot accept a heredoc as a destination"),
    # An unbalanced quote on the line means no heredoc at all (Docker ignores the lexing
    # error), so the would-be body is parsed as instructions.
    ('FROM x\nRUN <<"EOF\nx\n', 3, "unknown instruction: x"),
    ("FROM x\nRUN a \\\n  b\nBAD c", 4, "unknown instruction: BAD"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERROR_CASES, ids=[case[2][:40] for case in ERROR_CASES])
def test_error_table(text, line, message):
    with pytest.raises(DockerfileError) as caught:
        parse_dockerfile(text)
    assert message in caught.value.message
    assert caught.value.line == line
    if line is not None:
        assert str(caught.value).startswith(f"dockerfile parse error on line {line}: ")


def test_error_spanning_continuation_reports_start_line():
    with pytest.raises(DockerfileError) as caught:
        parse_dockerfile("FROM x\nCOPY \\\n  onlyone\n")
    assert caught.value.line == 2
    assert caught.value.end_line == 3


# --- line-level rules ------------------------------------------------------------------


def test_continuation_keeps_leading_whitespace_and_skips_comments_and_blank_lines():
    dockerfile = parse_dockerfile(
        "FROM x\n"
        "RUN apt-get update && \\\n"
        "    # a comment inside the continuation\n"
        "\n"
        "    apt-get install -y curl\n"
        "RUN next\n"
    )
    first, second = dockerfile.stages[0].instructions
    assert first.command == ("apt-get update &&     apt-get install -y curl",)
    assert (first.line, first.end_line) == (2, 5)
    assert second.line == 6
    assert dockerfile.warnings == (
        "Empty continuation line found in: RUN apt-get update &&     apt-get install -y curl",
    )


def test_continuation_trailing_whitespace_after_escape():
    dockerfile = parse_dockerfile("FROM x\nRUN a \\  \t\n b\n")
    assert dockerfile.stages[0].instructions[0].command == ("a  b",)


def test_escaped_escape_character_is_not_a_continuation():
    dockerfile = parse_dockerfile("FROM x\nRUN echo \\\\\nRUN two\n")
    first, second = dockerfile.stages[0].instructions
    assert first.command == ("echo \\\\",)
    assert second.command == ("two",)


def test_continuation_at_end_of_file():
    dockerfile = parse_dockerfile("FROM x\nRUN echo \\")
    assert dockerfile.stages[0].instructions[0].command == ("echo",)


def test_continuation_character_alone_on_a_line():
    dockerfile = parse_dockerfile("FROM x\nRUN a \\\n\\\n b\n")
    assert dockerfile.stages[0].instructions[0].command == ("a  b",)


def test_backtick_escape_directive():
    dockerfile = parse_dockerfile(
        "# escape=`\nFROM windows\nRUN dir c:\\ `\n  /s\nCOPY c:\\src c:\\dst\n"
    )
    assert dockerfile.escape == "`"
    run, copy = dockerfile.stages[0].instructions
    assert run.command == ("dir c:\\   /s",)
    assert copy.sources == ("c:\\src",)


def test_directives_only_at_the_top():
    dockerfile = parse_dockerfile("FROM x\n# escape=`\nRUN a `\n")
    assert dockerfile.escape == "\\"
    assert dockerfile.stages[0].instructions[0].command == ("a `",)
    after_comment = parse_dockerfile("# hello\n# escape=`\nFROM x\nRUN a \\\nb\n")
    assert after_comment.escape == "\\"
    after_blank = parse_dockerfile("\n# escape=`\nFROM x\n")
    assert after_blank.escape == "\\"


def test_directive_spelling_and_records():
    dockerfile = parse_dockerfile(
        "#  Syntax = docker/dockerfile:1.7  \n# check=skip=all\n#ESCAPE=`\nFROM x\n"
    )
    assert dockerfile.syntax == "docker/dockerfile:1.7"
    assert dict(dockerfile.directives) == {
        "syntax": "docker/dockerfile:1.7",
        "check": "skip=all",
        "escape": "`",
    }
    assert dockerfile.escape == "`"


def test_unknown_directive_ends_directives():
    dockerfile = parse_dockerfile("# foo=bar\n# escape=`\nFROM x\n")
    assert dockerfile.escape == "\\"
    assert dockerfile.directives == ()


def test_comments_only_at_line_start():
    dockerfile = parse_dockerfile("FROM x\n   # indented comment\nRUN echo # not a comment\n")
    assert dockerfile.stages[0].instructions[0].command == ("echo # not a comment",)


def test_byte_order_mark_and_crlf():
    dockerfile = parse_dockerfile(b"\xef\xbb\xbfFROM x\r\nRUN a \\\r\n b\r\nENV A=1\r\n")
    run, env = dockerfile.stages[0].instructions
    assert run.command == ("a  b",)
    assert env.pairs == (KeyValue("A", "1"),)


def test_keywords_are_case_insensitive_and_original_kept():
    dockerfile = parse_dockerfile("from x\nrUn echo hi\nCoPy a b\n")
    run, copy = dockerfile.stages[0].instructions
    assert isinstance(run, Run) and isinstance(copy, Copy)
    assert run.original == "rUn echo hi"


def test_invalid_utf8_in_instruction_is_refused_but_allowed_in_comments():
    parse_dockerfile(b"# caf\xe9\nFROM x\n")
    with pytest.raises(DockerfileError) as caught:
        parse_dockerfile(b"FROM x\nRUN echo caf\xe9\n")
    assert caught.value.line == 2


# --- heredocs ------------------------------------------------------------------------


def test_run_heredoc():
    dockerfile = parse_dockerfile("FROM x\nRUN <<EOF\necho one\necho $HOME\nEOF\nRUN after\n")
    run, after = dockerfile.stages[0].instructions
    assert run.command == ("<<EOF",)
    assert run.heredocs == (Heredoc("EOF", "echo one\necho $HOME\n", expand=True, chomp=False),)
    assert (run.line, run.end_line) == (2, 5)
    assert after.line == 6


def test_heredoc_chomp_and_quoted_names():
    dockerfile = parse_dockerfile(
        "FROM x\nRUN <<-EOT bash\n\techo tab\n\tEOT\nRUN <<'A' cat\n$X\nA\nRUN <<\"B\"\n$Y\nB\n"
    )
    chomped, single, double = dockerfile.stages[0].instructions
    assert chomped.heredocs[0] == Heredoc("EOT", "\techo tab\n", expand=True, chomp=True)
    assert chomped.heredocs[0].chomped_content() == "echo tab\n"
    assert single.heredocs[0].expand is False and single.heredocs[0].name == "A"
    assert double.heredocs[0].expand is False and double.heredocs[0].name == "B"


def test_several_heredocs_on_one_line():
    dockerfile = parse_dockerfile(
        "FROM x\nRUN cat <<A > /a && cat <<B > /b\nalpha\nA\nbeta\nB\nENV Z=1\n"
    )
    run, env = dockerfile.stages[0].instructions
    assert [(heredoc.name, heredoc.content) for heredoc in run.heredocs] == [
        ("A", "alpha\n"),
        ("B", "beta\n"),
    ]
    assert env.line == 7


def test_heredoc_file_descriptor_and_space_before_name():
    dockerfile = parse_dockerfile("FROM x\nRUN python3 3<< EOF\nprint(1)\nEOF\n")
    heredoc = dockerfile.stages[0].instructions[0].heredocs[0]
    assert (heredoc.name, heredoc.file_descriptor) == ("EOF", 3)


def test_copy_heredoc_sources():
    dockerfile = parse_dockerfile(
        "FROM x\nCOPY <<one <<-two /dst/\nfirst $A\none\n\tsecond\n\ttwo\nCOPY <<'Q' /q\n$B\nQ\n"
    )
    copy, quoted = dockerfile.stages[0].instructions
    assert copy.sources == ()
    assert copy.destination == "/dst/"
    assert copy.inline_sources == (
        InlineSource("one", "first $A\n", expand=True),
        InlineSource("two", "second\n", expand=True),
    )
    assert quoted.inline_sources == (InlineSource("Q", "$B\n", expand=False),)


def test_heredoc_not_detected_in_json_form_or_quotes():
    dockerfile = parse_dockerfile(
        'FROM x\nRUN ["cat", "<<EOF"]\nRUN echo "<<EOF"\nRUN echo \'<<EOF\'\nRUN echo a<b\n'
    )
    assert all(instruction.heredocs == () for instruction in dockerfile.stages[0].instructions)


def test_heredoc_not_detected_for_other_instructions():
    dockerfile = parse_dockerfile("FROM x\nENV A=<<EOF\nLABEL b=c\n")
    assert len(dockerfile.stages[0].instructions) == 2


def test_onbuild_heredoc():
    dockerfile = parse_dockerfile("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n")
    onbuild = dockerfile.stages[0].instructions[0]
    assert onbuild.expression == "RUN <<EOF\necho hi\nEOF"
    assert onbuild.trigger.heredocs[0].content == "echo hi\n"


def test_stage_grouping_and_names():
    dockerfile = parse_dockerfile(
        "FROM a AS one\nRUN x\nFROM b\nRUN y\nRUN z\nFROM one AS Three\n"
    )
    assert [len(stage.instructions) for stage in dockerfile.stages] == [1, 2, 0]
    assert dockerfile.stage_by_name("THREE") is dockerfile.stages[2]
    assert dockerfile.stage_by_name("missing") is None
