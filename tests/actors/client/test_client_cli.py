"""Flag parsing (pflag rules, docker's messages), dispatch, and what the client imports."""

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client import main as entry
from actors.client.cli import (
    Command,
    UsageError,
    bool_flag,
    check_arg_count,
    int_flag,
    list_flag,
    parse_flags,
    string_flag,
)

FLAGS = [
    bool_flag("detach", "d"), bool_flag("interactive", "i"), bool_flag("tty", "t"),
    bool_flag("sig-proxy", "", default=True), string_flag("name"), list_flag("env", "e"),
    list_flag("publish", "p"), int_flag("time", "t2"), int_flag("last", "n", default=-1),
]


@pytest.mark.parametrize(("argv", "expected", "positional"), [
    (["-it", "img"], {"interactive": True, "tty": True}, ["img"]),
    (["-d", "--name", "x", "img"], {"detach": True, "name": "x"}, ["img"]),
    (["--name=x", "img"], {"name": "x"}, ["img"]),
    (["-e", "A=1", "-eB=2", "-e=C=3", "img"], {"env": ["A=1", "B=2", "C=3"]}, ["img"]),
    (["-p8080:80", "img"], {"publish": ["8080:80"]}, ["img"]),
    (["-ip", "80", "img"], {"interactive": True, "publish": ["80"]}, ["img"]),
    (["--sig-proxy=false", "img"], {"sig_proxy": False}, ["img"]),
    (["-d=true", "img"], {"detach": True}, ["img"]),
    (["-n", "-1"], {"last": -1}, []),
    (["--", "-d"], {"detach": False}, ["-d"]),
    (["img", "-d"], {"detach": True}, ["img"]),
])
def test_interspersed_parsing(argv, expected, positional):
    options, args = parse_flags(FLAGS, argv)
    for key, value in expected.items():
        assert options[key] == value
    assert args == positional


def test_non_interspersed_stops_at_the_image():
    options, args = parse_flags(FLAGS, ["-d", "busybox", "ls", "-la", "--name", "x"],
                                interspersed=False)
    assert options.detach and options.name == ""
    assert args == ["busybox", "ls", "-la", "--name", "x"]


def test_given_tracks_what_the_user_typed():
    options, _ = parse_flags(FLAGS, ["--name", "", "-n", "3"])
    assert options.given == {"name", "last"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--bogus"], "unknown flag: --bogus"),
    (["-z"], "unknown shorthand flag: 'z' in -z"),
    (["-dz"], "unknown shorthand flag: 'z' in -dz"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--sig-proxy=maybe"], 'invalid argument "maybe" for "--sig-proxy" flag: '
                            'strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["-n", "x"], 'invalid argument "x" for "-n, --last" flag: strconv.ParseInt: parsing '
                  '"x": invalid syntax'),
])
def test_flag_errors_have_pflag_wording(argv, message):
    with pytest.raises(UsageError) as caught:
        parse_flags(FLAGS, argv)
    assert caught.value.message == message
    assert caught.value.exit_code == 125


@given(st.lists(st.sampled_from(["-d", "-i", "-t", "--name=n", "-e", "X=1", "img", "arg"]),
                max_size=10))
def test_parser_never_crashes_and_keeps_positional_order(argv):
    try:
        _options, args = parse_flags(FLAGS, argv)
    except UsageError:
        return
    plain = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "-e":
            skip = True
        elif not word.startswith("-"):
            plain.append(word)
    assert args == plain


@pytest.mark.parametrize(("minimum", "maximum", "count", "message"), [
    (1, None, 0, "'flotta x' requires at least 1 argument"),
    (2, 2, 1, "'flotta x' requires 2 arguments"),
    (0, 0, 1, "'flotta x' accepts no arguments"),
    (1, 2, 3, "'flotta x' requires at least 1 and at most 2 arguments"),
])
def test_argument_counts(minimum, maximum, count, message):
    command = Command("x", "", "", [], None, args_min=minimum, args_max=maximum)
    with pytest.raises(UsageError) as caught:
        check_arg_count(command, "flotta x", ["a"] * count)
    assert caught.value.message == message
    assert caught.value.exit_code == 1


def test_every_routed_command_exists_and_has_usage():
    routes = list(entry.TOP_LEVEL.values())
    for _, commands in entry.MANAGEMENT.values():
        routes.extend(commands.values())
    for route in routes:
        command = entry.load_command(route)
        assert command.usage and command.help and callable(command.run)
        names = [flag.long for flag in command.flags]
        assert len(names) == len(set(names)), route
        shorts = [flag.short for flag in command.flags if flag.short]
        assert len(shorts) == len(set(shorts)), route


def test_help_and_version(capsys):
    assert entry.main(["--version"]) == 0
    assert capsys.readouterr().out == "flotta version 0.1.0\n"
    assert entry.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage:  flotta run [OPTIONS] IMAGE [COMMAND] [ARG...]")
    assert "  -d, --detach" in out and "--health-cmd string" in out
    assert entry.main(["container"]) == 0
    assert "Usage:  flotta container COMMAND" in capsys.readouterr().out


def test_unknown_management_subcommand(capsys):
    assert entry.main(["network", "frob"]) == 1
    assert capsys.readouterr().err == (
        "flotta: unknown command: flotta network frob\n\nUsage:  flotta network\n\n"
        "Run 'flotta network --help' for more information\n")


def test_compose_and_registry_are_dispatched_lazily(monkeypatch, capsys):
    calls = []
    fake = type(sys)("actors.compose.cli")
    fake.main = lambda args: calls.append(("compose", args)) or 3
    registry = type(sys)("actors.images.registry_server")
    registry.main = lambda args: calls.append(("registry", args)) or 0
    monkeypatch.setitem(sys.modules, "actors.compose.cli", fake)
    monkeypatch.setitem(sys.modules, "actors.images.registry_server", registry)
    assert entry.main(["compose", "up", "-d"]) == 3
    assert entry.main(["registry", "serve", "--addr", ":5000"]) == 0
    assert calls == [("compose", ["up", "-d"]), ("registry", ["serve", "--addr", ":5000"])]


def test_sim_execs_python_m_sim(monkeypatch):
    seen = []

    def fake_execv(path, argv):
        seen.append((path, argv))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", fake_execv)
    with pytest.raises(SystemExit):
        entry.main(["sim", "run", "--seed", "7"])
    assert seen == [(sys.executable, [sys.executable, "-m", "sim", "run", "--seed", "7"])]


HEAVY = ("trio", "pyroute2", "cattrs", "attrs", "msgpack", "yaml", "sim", "h11", "anyio",
         "asyncio", "ssl", "threading", "tarfile", "argparse", "dataclasses", "typing",
         # cheaper but still measurable: the C modules underneath are used instead
         "socket", "selectors", "signal")


@pytest.mark.parametrize("argv", [["version"], ["ps"], ["images"], ["ps", "--format", "json"]])
def test_client_path_imports_no_heavy_modules(argv, short_dir):
    """The fast path must not pull in the runtime's dependencies (or even threads/TLS)."""
    code = (
        "import sys\n"
        f"sys.argv = ['flotta', *{argv!r}]\n"
        "from actors.client import main\n"
        "try:\n"
        "    main.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    environment = dict(os.environ, DOCKER_HOST=f"unix://{short_dir}/none.sock")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, timeout=60)
    loaded = set(result.stdout.split())
    assert "actors.client.main" in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert heavy == []
    # Default tables are rendered without the template engine.
    assert ("actors.client.gotemplate" in loaded) == ("--format" in argv)


def test_global_host_and_tls_reach_compose(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from actors.client.main import GLOBAL_FLAGS, _compose_global_args

    monkeypatch.delenv("FLOTTA_CERT_PATH", raising=False)
    monkeypatch.delenv("FLOTTA_TLS_VERIFY", raising=False)
    options, rest = parse_flags(GLOBAL_FLAGS, ["-H", "tcp://127.0.0.1:2376", "--tlsverify",
                                               "--tlscacert", str(tmp_path / "ca.pem"), "compose", "ps"],
                                interspersed=False)
    assert rest == ["compose", "ps"]
    assert _compose_global_args(options) == ["--host", "tcp://127.0.0.1:2376"]
    assert os.environ["FLOTTA_TLS_VERIFY"] == "1"
    assert os.environ["FLOTTA_CERT_PATH"] == str(tmp_path)

    options, _ = parse_flags(GLOBAL_FLAGS, ["--tlscacert", "/a/ca.pem", "--tlscert", "/b/cert.pem",
                                            "compose"], interspersed=False)
    with pytest.raises(UsageError, match="one directory"):
        _compose_global_args(options)
