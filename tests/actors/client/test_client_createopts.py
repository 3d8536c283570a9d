"""run/create command lines -> the create request, compared with what docker 28 sends.

golden/create_bodies.json was recorded by pointing the docker CLI 28.2.2 at a recording
stub (docker-api.md §2.1/§2.2 describe the same shape); the comparison is on the exact JSON
text, key order included.
"""

import json
import os
import shlex

import pytest

from actors.client import createopts
from actors.client.cli import CommandError, UsageError, parse_flags

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "create_bodies.json")
ENV_FILE = "# comment\nFILEVAR=1\n  SPACED=two words\nENVFROMHOST\nUNSETVAR\n"

with open(GOLDEN, encoding="utf-8") as handle:
    CASES = json.load(handle)


def build(line: str, env_file: str = "", environ=None, console=(0, 0)):
    argv = shlex.split(line.replace("ENVFILE", env_file))
    command = argv[0]
    flags = createopts.RUN_FLAGS if command == "run" else createopts.CREATE_FLAGS
    options, args = parse_flags(flags, argv[1:], interspersed=False)
    return createopts.build_create_request(options, args, detach=command == "run",
                                           console_size=console, environ=environ or {})


@pytest.mark.parametrize("line", sorted(CASES))
def test_create_body_matches_docker_byte_for_byte(line, tmp_path):
    env_file = tmp_path / "env.list"
    env_file.write_text(ENV_FILE)
    query, body = build(line, str(env_file), {"ENVFROMHOST": "hostvalue"})
    expected = CASES[line]
    assert json.dumps(body) == json.dumps(expected["body"])
    encoded = "&".join(f"{key}={value.replace('/', '%2F')}"
                       for key, value in sorted(query.items()) if value)
    assert encoded == expected["query"]


def test_docker_api_md_run_rm_it():
    """docker-api.md §2.1: `docker run --rm -it busybox sh` on an 80x24 terminal."""
    _, body = build("run --rm -it busybox sh", console=(24, 80))
    assert body["AttachStdin"] and body["AttachStdout"] and body["AttachStderr"]
    assert body["Tty"] and body["OpenStdin"] and body["StdinOnce"]
    assert body["Cmd"] == ["sh"] and body["Image"] == "busybox"
    assert body["Entrypoint"] is None and body["Labels"] == {} and body["Volumes"] == {}
    host = body["HostConfig"]
    assert host["AutoRemove"] is True
    assert host["NetworkMode"] == "default"
    assert host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host["ConsoleSize"] == [24, 80]
    assert host["MemorySwappiness"] == -1 and host["PidsLimit"] == 0
    assert list(body["NetworkingConfig"]["EndpointsConfig"]) == ["default"]


def test_docker_api_md_run_d_publish():
    """docker-api.md §2.2: `docker run -d -p 8080:80 img`."""
    _, body = build("run -d -p 8080:80 img")
    assert not (body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"])
    assert body["ExposedPorts"] == {"80/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort":
                                                             "8080"}]}
    _, body = build("run -d -p 127.0.0.1:8080:80/udp -p 80 -P img")
    assert body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": ""}],
        "80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert body["HostConfig"]["PublishAllPorts"] is True


def test_relative_bind_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, body = build("run -d -v ./data:/data img")
    assert body["HostConfig"]["Binds"] == [f"{tmp_path}/data:/data"]


def test_multiple_networks_and_advanced_syntax():
    _, body = build("run -d --network name=a,alias=x,ip=10.0.0.2 --network b img")
    endpoints = body["NetworkingConfig"]["EndpointsConfig"]
    assert list(endpoints) == ["a", "b"]
    assert endpoints["a"]["Aliases"] == ["x"]
    assert endpoints["a"]["IPAMConfig"] == {"IPv4Address": "10.0.0.2"}
    assert body["HostConfig"]["NetworkMode"] == "a"


@pytest.mark.parametrize(("line", "error", "message"), [
    ("run -d --restart always --rm img", CommandError,
     "conflicting options: cannot specify both --restart and --rm"),
    ("run -d --no-healthcheck --health-cmd x img", CommandError,
     "--no-healthcheck conflicts with --health-* options"),
    ("run -d -a stdout img", CommandError,
     "conflicting options: cannot specify both --attach and --detach"),
    ("run -d --network-alias x img", CommandError,
     "network-scoped aliases are only supported for user-defined networks"),
    ("run -d --network host --network mine img", CommandError,
     "conflicting options: cannot attach both user-defined and non-user-defined "
     "network-modes"),
    ("run -d -p x img", CommandError, "invalid containerPort: x"),
    ("run -d -v :/x img", CommandError, "invalid spec: :/x: empty section between colons"),
    ("run -d --restart on-failure:x img", CommandError,
     "invalid restart policy format: maximum retry count must be an integer"),
    ("run -d -m 12x img", UsageError,
     "invalid argument \"12x\" for \"-m, --memory\" flag: invalid suffix: 'x'"),
    ("run -d --cpus x img", UsageError,
     'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number'),
    ("run -d --health-interval 5 img", UsageError,
     'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"'),
    ("run -d -a foo img", UsageError,
     'invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and '
     "STDERR"),
    ("run -d --add-host a:b img", UsageError,
     'invalid argument "a:b" for "--add-host" flag: invalid IP address in add-host: "b"'),
    ("run -d -e =x img", UsageError,
     'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
    ("run -d -l =x img", UsageError,
     "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': empty name"),
    ("run -d --mount type=bind img", UsageError,
     'invalid argument "type=bind" for "--mount" flag: target is required'),
    ("run -d --mount foo=bar,dst=/x img", UsageError,
     "invalid argument \"foo=bar,dst=/x\" for \"--mount\" flag: unexpected key 'foo' in "
     "'foo=bar'"),
    ("run -d --env-file /nonexistent/env img", CommandError,
     "open /nonexistent/env: no such file or directory"),
])
def test_invalid_options_have_dockers_messages(line, error, message):
    with pytest.raises(error) as caught:
        build(line)
    assert caught.value.message == message
