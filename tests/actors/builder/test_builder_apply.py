"""Image config evolution and the classic builder's `created_by` strings."""

from __future__ import annotations

import pytest
from builderhelpers import BUSYBOX, created_by, evaluate, last_config
from hypothesis import given
from hypothesis import strategies as st

from actors.builder.apply import (
    StageState,
    StepKind,
    apply,
    begin_stage,
    copy_created_by,
    expose_ports,
    healthcheck_text,
    normalize_destination,
    normalize_workdir,
)
from actors.builder.buildargs import ArgScope
from actors.builder.errors import BuildError
from actors.builder.imageconfig import DEFAULT_PATH, HealthConfig, ImageConfig
from actors.builder.instructions import Copy
from actors.builder.parser import parse_dockerfile

CREATED_BY_CASES = [
    ("ENV A=1 B=\"two words\"", "/bin/sh -c #(nop)  ENV A=1 B=two words"),
    ("ENV LEGACY a b", "/bin/sh -c #(nop)  ENV LEGACY=a b"),
    ('CMD ["sh"]', '/bin/sh -c #(nop)  CMD ["sh"]'),
    ("CMD echo hi", '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]'),
    ("CMD []", "/bin/sh -c #(nop)  CMD []"),
    ('ENTRYPOINT ["/e", "a\\"b"]', '/bin/sh -c #(nop)  ENTRYPOINT ["/e" "a\\"b"]'),
    ("ENTRYPOINT []", "/bin/sh -c #(nop)  ENTRYPOINT []"),
    ("WORKDIR /app", "/bin/sh -c #(nop) WORKDIR /app"),
    ("RUN echo hi", "/bin/sh -c echo hi"),
    ('RUN ["echo", "hi"]', "echo hi"),
    ("USER app", "/bin/sh -c #(nop)  USER app"),
    ("VOLUME /data /logs", "/bin/sh -c #(nop)  VOLUME [/data /logs]"),
    ("EXPOSE 8080 80/udp", "/bin/sh -c #(nop)  EXPOSE 80/udp 8080"),
    ("LABEL a=b c=d", "/bin/sh -c #(nop)  LABEL a=b c=d"),
    ("STOPSIGNAL SIGQUIT", "/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT"),
    ('SHELL ["/bin/bash", "-c"]', "/bin/bash -c #(nop)  SHELL [/bin/bash -c]"),
    ("ARG A=1 B", "/bin/sh -c #(nop)  ARG A=1 B"),
    ("ONBUILD RUN echo $HOME", "/bin/sh -c #(nop)  ONBUILD RUN echo $HOME"),
    ("MAINTAINER Jane <j@x>", "/bin/sh -c #(nop)  MAINTAINER Jane <j@x>"),
    (
        "HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1",
        '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] '
        '"5m0s" "3s" "0s" "0s" \'\\x03\'}',
    ),
    ("HEALTHCHECK NONE", '/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" \'\\x00\'}'),
]


@pytest.mark.parametrize(("instruction", "expected"), CREATED_BY_CASES)
def test_created_by_strings(instruction, expected):
    assert created_by("FROM busybox\n" + instruction + "\n") == [expected]


def test_shell_changes_later_prefixes():
    assert created_by('FROM x\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nENV A=1\nRUN echo\nWORKDIR w\n')[1:] == [
        "/bin/bash -eo pipefail -c #(nop)  ENV A=1",
        "/bin/bash -eo pipefail -c echo",
        "/bin/bash -eo pipefail -c #(nop) WORKDIR /w",
    ]


def test_copy_created_by():
    state = StageState(config=BUSYBOX)
    copy = Copy(line=1, end_line=1, original="", sources=("a",), destination="/dst")
    assert copy_created_by(state, copy, "file:abc") == "/bin/sh -c #(nop) COPY file:abc in /dst "
    chowned = Copy(line=1, end_line=1, original="", sources=("a",), destination="rel/", chown="1:2", chmod="755")
    assert copy_created_by(state, chowned, "dir:x") == (
        "/bin/sh -c #(nop) COPY --chown=1:2 --chmod=755 dir:x in rel/ "
    )


def test_env_replaces_in_place_and_appends():
    base = ImageConfig(env=("PATH=/bin", "A=old", "Z=z"))
    config = last_config("FROM x\nENV A=new C=c\n", base=base)
    assert config.env == ("PATH=/bin", "A=new", "Z=z", "C=c")


def test_env_values_use_the_previous_environment():
    config = last_config("FROM x\nENV A=1\nENV A=2 B=$A\n")
    assert config.env_value("B") == "1"


def test_entrypoint_resets_inherited_cmd():
    config = last_config('FROM x\nENTRYPOINT ["/e"]\n', base=ImageConfig(cmd=("sh",)))
    assert config.entrypoint == ("/e",)
    assert config.cmd is None


def test_entrypoint_keeps_cmd_set_in_the_same_stage():
    config = last_config('FROM x\nCMD ["--help"]\nENTRYPOINT ["/e"]\n', base=ImageConfig(cmd=("sh",)))
    assert config.cmd == ("--help",)


def test_empty_cmd_does_not_protect_against_entrypoint_reset():
    config = last_config('FROM x\nCMD []\nENTRYPOINT ["/e"]\n')
    assert config.cmd is None


def test_shell_form_cmd_and_entrypoint_use_the_shell():
    config = last_config('FROM x\nSHELL ["/bin/ash", "-c"]\nENTRYPOINT exec run\n')
    assert config.entrypoint == ("/bin/ash", "-c", "exec run")


def test_entrypoint_empty_clears():
    config = last_config("FROM x\nENTRYPOINT []\n", base=ImageConfig(entrypoint=("/old",)))
    assert config.entrypoint is None


def test_workdir_chain():
    evaluation = evaluate("FROM x\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c\nENV D=d\nWORKDIR $D/e\n")
    assert [step.state.config.working_dir for step in evaluation.steps] == ["/a", "/a/b", "/a/c", "/a/c", "/a/c/d/e"]
    assert evaluation.steps[0].kind is StepKind.WORKDIR
    assert evaluation.steps[3].kind is StepKind.METADATA


def test_workdir_normalization():
    assert normalize_workdir("", "app") == "/app"
    assert normalize_workdir("/a/b", "/x/../y/") == "/y"
    assert normalize_workdir("/a", "../../..") == "/"
    with pytest.raises(BuildError):
        normalize_workdir("/a", "")


def test_destination_normalization():
    assert normalize_destination("", ".") == "/"
    assert normalize_destination("/app", ".") == "/app"
    assert normalize_destination("/app", "./") == "/app/"
    assert normalize_destination("/app", "sub/") == "/app/sub/"
    assert normalize_destination("/app", "/abs") == "/abs"


def test_expose_ports():
    config = last_config("FROM x\nENV P=\"80 443\"\nEXPOSE $P 53/UDP 8000-8002/tcp\n")
    assert config.exposed_ports == ("443/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp")
    assert expose_ports("127.0.0.1:8080:80") == ["80/tcp"]
    for bad, message in [
        ("abc", "invalid containerPort: abc"),
        ("80/xyz", "invalid proto: xyz"),
        ("/tcp", "no port specified: /tcp<empty>"),
        ("70000", "invalid containerPort: 70000"),
        ("90-80", "invalid containerPort: 90-80"),
    ]:
        with pytest.raises(BuildError) as caught:
            expose_ports(bad)
        assert caught.value.message == message


def test_volume_labels_user_stopsignal():
    config = last_config(
        'FROM x\nENV D=/data\nVOLUME $D /logs\nLABEL "a b"=c\nUSER 1000:1000\nSTOPSIGNAL 9\n'
    )
    assert config.volumes == ("/data", "/logs")
    assert config.labels_dict() == {"a b": "c"}
    assert config.user == "1000:1000"
    assert config.stop_signal == "9"


@pytest.mark.parametrize("signal", ["SIGFOO", "0", "$EMPTY", "KILLER"])
def test_bad_stopsignal(signal):
    with pytest.raises(BuildError) as caught:
        evaluate(f"FROM x\nSTOPSIGNAL {signal}\n")
    assert caught.value.message.startswith("invalid signal: ")
    assert caught.value.line == 2


def test_stopsignal_names():
    assert last_config("FROM x\nSTOPSIGNAL sigrtmin+3\n").stop_signal == "sigrtmin+3"
    assert last_config("FROM x\nSTOPSIGNAL usr1\n").stop_signal == "usr1"


def test_healthcheck_replacement_note():
    evaluation = evaluate("FROM x\nHEALTHCHECK CMD a\nHEALTHCHECK CMD b\n")
    assert evaluation.steps[1].messages == ("Note: overriding previous HEALTHCHECK: [CMD-SHELL a]",)
    assert evaluation.final_state.config.healthcheck.test == ("CMD-SHELL", "b")


def test_healthcheck_text_formats_go_durations():
    health = HealthConfig(("CMD", "x"), 90_000_000_000, 1_500_000, 0, 3_600_000_000_000, 65)
    assert healthcheck_text(health) == '&{["CMD" "x"] "1m30s" "1.5ms" "0s" "1h0m0s" \'A\'}'


def test_maintainer_sets_author():
    assert evaluate("FROM x\nMAINTAINER me\n").final_state.author == "me"


def test_onbuild_records_expression():
    config = last_config("FROM x\nONBUILD ADD . /app\nONBUILD RUN make\n")
    assert config.on_build == ("ADD . /app", "RUN make")


def test_run_does_not_change_config_and_describes_the_run():
    evaluation = evaluate("FROM x\nUSER app\nWORKDIR /w\nRUN make\n")
    run = evaluation.steps[-1]
    assert run.kind is StepKind.RUN
    assert run.state.config == evaluation.steps[-2].state.config
    assert (run.run.user, run.run.working_dir) == ("app", "/w")
    assert run.run.env == BUSYBOX.env


def test_run_heredoc_script_and_shebang():
    evaluation = evaluate(
        "FROM x\nRUN <<EOF\necho one\nEOF\nRUN <<-EOF\n\t#!/usr/bin/env python3\n\tprint(1)\n\tEOF\n"
        "RUN cat <<A\nbody\nA\n"
    )
    plain, shebang, inline = evaluation.steps
    assert plain.run.command == ("/bin/sh", "-c", "echo one\n")
    assert shebang.run.command == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert shebang.run.inline_files[0].data == "#!/usr/bin/env python3\nprint(1)\n"
    assert shebang.run.inline_files[0].mode == 0o755
    assert inline.run.command == ("/bin/sh", "-c", "cat <<A\nbody\nA")


def test_begin_stage_adds_path_and_takes_triggers():
    state, triggers = begin_stage(ImageConfig(on_build=("RUN x",)), ArgScope())
    assert state.config.env == (f"PATH={DEFAULT_PATH}",)
    assert state.config.on_build == ()
    assert triggers == ("RUN x",)
    kept, _ = begin_stage(ImageConfig(env=("PATH=/only",)), ArgScope())
    assert kept.config.env == ("PATH=/only",)


def test_apply_is_pure():
    dockerfile = parse_dockerfile("FROM x\nENV A=1\n")
    state = StageState(config=BUSYBOX)
    applied = apply(state, dockerfile.stages[0].instructions[0])
    assert state.config == BUSYBOX
    assert applied.state.config.env_value("A") == "1"


configs = st.builds(
    ImageConfig,
    user=st.text(max_size=5),
    exposed_ports=st.lists(st.from_regex(r"[0-9]{1,4}/(tcp|udp)", fullmatch=True), unique=True).map(lambda x: tuple(sorted(x))),
    env=st.lists(st.from_regex(r"[A-Z]{1,3}=[a-z]{0,3}", fullmatch=True)).map(tuple),
    cmd=st.none() | st.lists(st.text(max_size=4)).map(tuple),
    healthcheck=st.none() | st.builds(HealthConfig, test=st.lists(st.text(min_size=1, max_size=4), min_size=1).map(tuple), retries=st.integers(0, 9)),
    volumes=st.lists(st.from_regex(r"/[a-z]{1,4}", fullmatch=True), unique=True).map(lambda x: tuple(sorted(x))),
    working_dir=st.text(max_size=5),
    entrypoint=st.none() | st.lists(st.text(max_size=4)).map(tuple),
    on_build=st.lists(st.text(min_size=1, max_size=5)).map(tuple),
    labels=st.dictionaries(st.text(max_size=3), st.text(max_size=3)).map(lambda d: tuple(sorted(d.items()))),
    stop_signal=st.text(max_size=4),
    shell=st.lists(st.text(min_size=1, max_size=4)).map(tuple),
)


@given(configs)
def test_docker_json_round_trip(config):
    assert ImageConfig.from_docker(config.to_docker()) == config
