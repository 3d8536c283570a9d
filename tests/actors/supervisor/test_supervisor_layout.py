"""Container metadata, ids, conmon's command line and the runtime's error messages."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.supervisor import conmon, layout, monitor

meta_strategy = st.builds(
    layout.ContainerMeta,
    id=st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True),
    created_ns=st.integers(min_value=0, max_value=2**63 - 1),
    terminal=st.booleans(),
    stdin_open=st.booleans(),
    stdin_once=st.booleans(),
    cgroups_path=st.text(min_size=1, max_size=30),
    lower_dirs=st.lists(st.text(max_size=40), max_size=5).map(tuple),
    runtime_path=st.text(max_size=30),
    log_size_max_bytes=st.integers(min_value=0, max_value=2**40),
)


@given(meta_strategy)
def test_meta_round_trips(meta):
    assert layout.ContainerMeta.from_json(meta.to_json()) == meta


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"{}", b'{"version": 99}', b'{"version": 1, "id": "x"}', b"\xff"]
)
def test_corrupt_meta_is_one_clear_error(raw):
    with pytest.raises(layout.LayoutError):
        layout.ContainerMeta.from_json(raw)


@pytest.mark.parametrize("good", ["a", "0" * 64, "web_1.service-2", "A" * 128])
def test_valid_ids(good):
    assert layout.check_container_id(good) == good


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "-x", "a" * 129, "sp ace", "ü"])
def test_invalid_ids(bad):
    with pytest.raises(layout.LayoutError, match="invalid container id"):
        layout.check_container_id(bad)


def test_layout_paths(tmp_path: Path):
    paths = layout.ContainerLayout.of(tmp_path / "s", tmp_path / "r", "abc")
    assert paths.directory == tmp_path / "s" / "abc"
    assert paths.exit_dir_file == tmp_path / "r" / "exits" / "abc"
    assert paths.attach.parent == paths.directory and paths.log.name == "container.log"


def test_conmon_command_line(tmp_path: Path):
    paths = layout.ContainerLayout.of(tmp_path / "s", tmp_path / "r", "abc")
    options = conmon.ConmonOptions(
        conmon_path="/usr/bin/conmon",
        runtime_path="/usr/bin/crun",
        runtime_root="/r/runtime",
        terminal=True,
        stdin_open=True,
        stdin_once=False,
        log_size_max_bytes=1000,
    )
    argv = conmon.conmon_argv(paths, options)
    assert argv[0] == "/usr/bin/conmon"
    assert argv[argv.index("--api-version") + 1] == "1"
    assert argv[argv.index("--cid") + 1] == "abc"
    assert argv[argv.index("--log-path") + 1] == f"k8s-file:{paths.log}"
    assert argv[argv.index("--exit-dir") + 1] == str(tmp_path / "r" / "exits")
    assert argv[argv.index("--persist-dir") + 1] == str(paths.directory)
    assert {"--terminal", "--stdin", "--leave-stdin-open", "--full-attach"} <= set(argv)
    assert argv[argv.index("--log-size-max") + 1] == "1000"
    once = conmon.conmon_argv(paths, attrs.evolve(options, stdin_once=True))
    assert "--leave-stdin-open" not in once
    colon = layout.ContainerLayout.of(tmp_path / "a:b", tmp_path / "r", "abc")
    with pytest.raises(conmon.CreateError, match="must not contain ':'"):
        conmon.conmon_argv(colon, options)


@pytest.mark.parametrize(
    ("message", "args", "code", "text"),
    [
        ("executable file `nope` not found in $PATH: No such file or directory", ["nope"], 127,
         'exec: "nope": executable file not found in $PATH'),
        ("executable file `/nope` not found in $PATH: No such file or directory", ["/nope"], 127,
         'exec: "/nope": stat /nope: no such file or directory'),
        ("open executable: Permission denied", ["/etc/passwd"], 126, 'exec: "/etc/passwd": permission denied'),
        ("open executable: Operation not permitted", ["/tmp"], 126, 'exec: "/tmp": permission denied'),
        ("mount `proc` to `proc`: Operation not permitted", ["sh"], 125,
         "OCI runtime create failed: mount `proc` to `proc`: Operation not permitted"),
    ],
)  # fmt: skip
def test_runtime_errors_in_dockers_words(message, args, code, text):
    error = conmon.runtime_error(message, args)
    assert (error.exit_code, error.message, error.runtime_message) == (code, text, message)


@pytest.mark.parametrize(
    ("value", "number"),
    [(9, 9), ("9", 9), ("KILL", 9), ("SIGTERM", 15), ("term", 15), ("SIGUSR1", 10)],
)
def test_parse_signal(value, number):
    assert monitor.parse_signal(value) == number


@pytest.mark.parametrize("value", ["", "NOPE", "0", "999", -1, "SIG"])
def test_parse_signal_rejects(value):
    with pytest.raises(ValueError, match="invalid signal"):
        monitor.parse_signal(value)
