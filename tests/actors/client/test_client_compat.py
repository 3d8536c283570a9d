"""Differential tests: the real docker CLI and flotta against the same stub daemon.

They need the docker CLI binary (no dockerd): both clients talk to a recording stub, and
their requests and output are compared.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from client_stub_daemon import Reply, frame
from test_client_createopts import CASES as GOLDEN_CASES
from test_client_createopts import ENV_FILE
from test_client_gotemplate import CASES as TEMPLATE_CASES
from test_client_gotemplate import DATA as TEMPLATE_DATA

pytestmark = pytest.mark.compat

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def _environment(daemon, tmp_path, extra=None):
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "DOCKER_HOST": daemon.url, "DOCKER_CONFIG": str(tmp_path / "config"),
        "PYTHONPATH": REPOSITORY, "TZ": "UTC", "LC_ALL": "C.UTF-8",
    }
    environment.update(extra or {})
    return environment


def run_both(daemon, tmp_path, argv, extra_env=None):
    environment = _environment(daemon, tmp_path, extra_env)
    docker = subprocess.run([DOCKER, *argv], capture_output=True, env=environment, timeout=60,
                            stdin=subprocess.DEVNULL)
    flotta = subprocess.run([sys.executable, "-m", "actors.client.main", *argv],
                            capture_output=True, env=environment, timeout=60,
                            stdin=subprocess.DEVNULL)
    return docker, flotta


def normalized(text: bytes) -> str:
    return text.decode().replace("docker", "flotta").replace("Docker", "flotta")


def _create_routes(daemon):
    daemon.reply("POST", "/containers/create", 201, {"Id": "a" * 64, "Warnings": []})
    daemon.reply("POST", "/containers/[^/]+/wait", 200, {"StatusCode": 0})
    daemon.reply("POST", "/containers/[^/]+/start", 204)
    daemon.route("POST", "/containers/[^/]+/attach")(lambda request: Reply(
        hijack=lambda sock, rfile, req: sock.close(),
        content_type="application/vnd.docker.multiplexed-stream"))


@pytest.mark.parametrize("line", sorted(GOLDEN_CASES))
def test_create_request_identical_to_docker(line, daemon, tmp_path):
    _create_routes(daemon)
    env_file = tmp_path / "env.list"
    env_file.write_text(ENV_FILE)
    argv = shlex.split(line.replace("ENVFILE", str(env_file)))
    run_both(daemon, tmp_path, argv, {"ENVFROMHOST": "hostvalue"})
    docker_create, flotta_create = daemon.calls("POST", "/containers/create")
    docker_body, flotta_body = docker_create.json(), flotta_create.json()
    # docker 28 sometimes reorders Env and Binds (they pass through maps); flotta keeps
    # flag order.
    for body in (docker_body, flotta_body):
        body["Env"] = sorted(body["Env"]) if body["Env"] else body["Env"]
        host = body.get("HostConfig") or {}
        if host.get("Binds"):
            host["Binds"] = sorted(host["Binds"])
    assert flotta_body == docker_body
    assert flotta_create.raw_query == docker_create.raw_query
    # docker sends wait from a goroutine that races start (and, with -d, the CLI's exit), so
    # compare the other calls; flotta's own order is checked in test_client_e2e.
    docker_calls, flotta_calls = [], []
    target = docker_calls
    for request in daemon.calls():
        step = request.path.rsplit("/", 1)[-1]
        if step == "create" and docker_calls:
            target = flotta_calls
        if step != "wait":
            target.append(step)
    assert docker_calls == flotta_calls


def _listing_routes(daemon):
    now = int(time.time())
    daemon.reply("GET", "/containers/json", 200, [
        {"Id": "a1b2c3d4e5f6" + "0" * 52, "Names": ["/web"], "Image": "nginx:latest",
         "ImageID": "sha256:" + "f" * 64, "Command": "/docker-entrypoint.sh nginx -g 'daemon off;'",
         "Created": now - 7200, "State": "running", "Status": "Up 2 hours (healthy)",
         "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                   {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                   {"PrivatePort": 443, "Type": "tcp"}, {"PrivatePort": 444, "Type": "tcp"}],
         # One label: docker joins labels in map iteration order.
         "Labels": {"tier": "web"}, "SizeRw": 1234, "SizeRootFs": 187654321,
         "Mounts": [{"Name": "averyveryverylongvolumename", "Source": "/x", "Driver": "local"}],
         # One network: docker lists them in map iteration order.
         "NetworkSettings": {"Networks": {"bridge": {}}}},
        {"Id": "ffeeddccbbaa" + "1" * 52, "Names": ["/db"], "Image": "e" * 64,
         "ImageID": "sha256:" + "e" * 64, "Command": "postgres", "Created": now - 100000,
         "State": "exited", "Status": "Exited (137) 3 days ago", "Ports": [],
         "Labels": {}, "Mounts": [], "NetworkSettings": {"Networks": {}}},
    ])
    daemon.reply("GET", "/images/json", 200, [
        # One tag per image: docker orders the rows of a multi-tag image by map iteration.
        {"Id": "sha256:" + "ab" * 32, "RepoTags": ["busybox:latest"],
         "RepoDigests": ["busybox@sha256:" + "cd" * 32], "Created": now - 86400 * 40,
         "Size": 4261234, "SharedSize": -1, "Containers": 2},
        {"Id": "sha256:" + "ef" * 32, "RepoTags": ["localhost:5000/x/b:v1"],
         "RepoDigests": [], "Created": now - 86400 * 400, "Size": 9_999_999,
         "SharedSize": -1, "Containers": 0},
        {"Id": "sha256:" + "12" * 32, "RepoTags": [], "RepoDigests": [], "Created": now - 60,
         "Size": 1_234_567_890, "SharedSize": -1, "Containers": -1},
    ])
    daemon.reply("GET", "/images/[^/]+/history", 200, [
        {"Id": "sha256:" + "ab" * 32, "Created": now - 5000, "CreatedBy": "/bin/sh -c #(nop) "
         " CMD [\"sh\"]", "Tags": ["busybox:latest"], "Size": 0, "Comment": ""},
        {"Id": "<missing>", "Created": now - 5000, "CreatedBy": "/bin/sh -c #(nop) ADD file:0"
         "123456789abcdef0123456789 in / ", "Tags": None, "Size": 4261234, "Comment": "x"}])
    daemon.reply("GET", "/networks", 200, [
        {"Name": "bridge", "Id": "9" * 64, "Driver": "bridge", "Scope": "local",
         "Created": "2024-01-02T03:04:05.1234Z", "EnableIPv4": True, "Labels": {"k": "v"}},
        {"Name": "alpha", "Id": "8" * 64, "Driver": "overlay", "Scope": "swarm"}])
    daemon.reply("GET", "/volumes", 200, {"Volumes": [
        {"Name": "zeta", "Driver": "local", "Scope": "local"},
        {"Name": "a" * 64, "Driver": "local", "Scope": "local"}], "Warnings": []})
    daemon.reply("GET", "/containers/web/json", 200, {
        "Id": "c" * 64, "Name": "/web", "State": {"Status": "running", "Pid": 42,
                                                  "Running": True},
        "Config": {"Tty": False, "Env": ["A=1", "B=2"], "Labels": {"k": "v"}},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                                 {"HostIp": "::", "HostPort": "8080"}],
                                      "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
                                      "9/tcp": None}}})
    daemon.reply("GET", "/containers/[^/]+/logs", 200, chunks=[
        frame(1, "stdout line\n"), frame(2, "stderr line\n")],
        content_type="application/vnd.docker.multiplexed-stream")
    daemon.reply("GET", "/containers/web/top", 200, {
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": [["root", "1", "0", "0", "10:00", "?", "00:00:00", "nginx: master"]]})
    daemon.reply("GET", "/containers/web/changes", 200, [
        {"Path": "/etc", "Kind": 0}, {"Path": "/etc/new", "Kind": 1}, {"Path": "/gone",
                                                                       "Kind": 2}])
    daemon.reply("GET", "/containers/web/stats", 200, {
        "id": "c" * 64, "name": "/web",
        "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000}, "system_cpu_usage":
                      20_000_000_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 200_000_000}, "system_cpu_usage":
                         19_000_000_000},
        "memory_stats": {"usage": 52_428_800, "limit": 2_147_483_648,
                         "stats": {"inactive_file": 2_097_152}},
        "networks": {"eth0": {"rx_bytes": 1_234_567, "tx_bytes": 89_012}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "read", "value": 4_096_000},
            {"major": 8, "minor": 0, "op": "write", "value": 8192}]},
        "pids_stats": {"current": 5}})
    daemon.reply("GET", "/events", 200, chunks=[json.dumps({
        "Type": "container", "Action": "die", "Actor": {"ID": "c" * 64, "Attributes": {
            "exitCode": "0", "name": "web"}}, "scope": "local", "time": 1700000000,
        "timeNano": 1700000000000000001}) + "\n"])
    daemon.reply("GET", "/system/df", 200, {
        "LayersSize": 1_000_000, "Images": [
            {"Id": "sha256:" + "1" * 64, "Size": 600_000, "SharedSize": 0, "Containers": 1},
            {"Id": "sha256:" + "2" * 64, "Size": 400_000, "SharedSize": 0, "Containers": 0}],
        "Containers": [{"Id": "a" * 64, "SizeRw": 100, "State": "running"},
                       {"Id": "b" * 64, "SizeRw": 300, "State": "exited"}],
        "Volumes": [{"Name": "v", "UsageData": {"Size": 1000, "RefCount": 0}}],
        "BuildCache": []})
    daemon.reply("GET", "/version", 200, {
        "Version": "0.1.0", "ApiVersion": "1.45", "MinAPIVersion": "1.24", "Os": "linux",
        "Arch": "amd64", "GoVersion": "python3.11", "GitCommit": "abc", "BuildTime": "now",
        "KernelVersion": "6.1", "Experimental": False, "Platform": {"Name": "flotta"}})


OUTPUT_CASES = [
    ["ps"], ["ps", "-a", "--no-trunc"], ["ps", "-q"], ["ps", "-s"],
    ["ps", "--format", "table {{.Names}}\\t{{.Ports}}\\t{{.Mounts}}\\t{{.Networks}}"],
    ["ps", "--format", "{{.ID}} {{.Label \"tier\"}} {{.Labels}} {{.LocalVolumes}}"],
    ["ps", "--format", "json"], ["ps", "--format", "{{json .Names}} {{.Size}}"],
    ["ps", "--format", "{{.Nope}}"], ["ps", "--format", "{{.Names"],
    ["images"], ["images", "--digests"], ["images", "-q"], ["images", "--no-trunc"],
    ["images", "--format", "{{.Repository}}|{{.Tag}}|{{.Digest}}|{{.Containers}}"],
    ["history", "busybox"], ["history", "--no-trunc", "busybox"], ["history", "-q", "busybox"],
    ["network", "ls"], ["network", "ls", "-q"], ["volume", "ls"], ["volume", "ls", "-q"],
    ["images", "--format", "json"], ["network", "ls", "--format", "json"],
    ["volume", "ls", "--format", "json"], ["history", "--format", "json", "busybox"],
    ["inspect", "-f", "{{.State.Pid}} {{.Config.Env}} {{json .Config.Labels}}", "web"],
    ["inspect", "web"], ["container", "inspect", "--format", "{{.Name}}", "web"],
    ["port", "web"], ["port", "web", "80/tcp"], ["port", "web", "53/udp"],
    ["logs", "web"], ["top", "web"], ["diff", "web"], ["stats", "--no-stream", "web"],
    ["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemPerc}}", "web"],
    ["events", "--since", "1700000000"], ["events", "--format", "{{.Type}} {{.Action}}"],
    ["system", "df"],
    ["version", "--format", "{{.Server.Version}} {{.Server.Os}}"],
    ["ps", "--bogus"], ["ps", "extra"], ["rm"], ["rename", "a"], ["nosuch"],
    ["run", "-m", "12x", "img"], ["run", "--cpus", "x", "img"], ["run", "-p", "x", "img"],
    ["run", "-d", "-a", "stdout", "img"], ["run", "--restart", "on-failure:x", "img"],
    ["run", "--mount", "type=bind", "img"], ["run", "-e", "=x", "img"],
    ["run", "--no-healthcheck", "--health-cmd", "x", "img"], ["stop", "-t", "x", "a"],
]


@pytest.mark.parametrize("argv", OUTPUT_CASES, ids=lambda argv: " ".join(argv))
def test_output_identical_to_docker(argv, daemon, tmp_path):
    _listing_routes(daemon)
    docker, flotta = run_both(daemon, tmp_path, argv)
    assert normalized(flotta.stdout) == normalized(docker.stdout)
    assert normalized(flotta.stderr) == normalized(docker.stderr)
    assert flotta.returncode == docker.returncode


# Where docker's raw inspect path differs from typed data on purpose, we follow the typed
# path (the one real templates hit): docker decodes raw JSON numbers as json.Number strings,
# so they print as their literal, are truthy when "0", and fail printf %d / eq / join.
ORACLE_DIFFERENT = {
    "{{.Missing}}",  # inspect runs with missingkey=error; see the error test below
    "{{.Count}}-{{.Ratio}}-{{.Big}}",
    "{{if or .Zero .Empty}}x{{else}}neither{{end}}",
    '{{join .List ","}}',
    '{{join .Env " "}}',
    '{{printf "%s=%d" .Name .Count}}',
    '{{printf "%.2f" .Ratio}}',
    "{{eq .Count 3}} {{ne .Count 3}} {{lt .Count 4}} {{le .Count 3}} {{gt .Count 3}} "
    "{{ge .Count 4}}",
}


@pytest.mark.parametrize(("source", "expected"), [
    case for case in TEMPLATE_CASES if case[0] not in ORACLE_DIFFERENT])
def test_template_engine_agrees_with_go(source, expected, daemon, tmp_path):
    """Go's text/template (inside `docker container inspect -f`) is the oracle."""
    daemon.reply("GET", "/containers/data/json", 200, TEMPLATE_DATA)
    docker, flotta = run_both(daemon, tmp_path, ["container", "inspect", "-f", source, "data"])
    assert docker.returncode == 0, docker.stderr
    assert flotta.stdout == docker.stdout
    assert flotta.stdout.decode()[:-1] == expected


@pytest.mark.parametrize("source", ["{{.Missing}}", "{{.Nested.Missing.X}}", "{{.Name.Sub}}",
                                    "{{index .List 7}}"])
def test_template_errors_agree_with_go(source, daemon, tmp_path):
    daemon.reply("GET", "/containers/data/json", 200, TEMPLATE_DATA)
    docker, flotta = run_both(daemon, tmp_path, ["container", "inspect", "-f", source, "data"])
    assert flotta.returncode == docker.returncode == 1
    docker_error = docker.stderr.decode().replace("interface {}", "string")
    assert flotta.stderr.decode() == docker_error


def test_build_context_and_query_identical_to_docker(daemon, tmp_path):
    context = tmp_path / "ctx"
    (context / "sub" / "deep").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM busybox\n")
    (context / ".dockerignore").write_text("# comment\n*.log\nsub/**\n!sub/deep/keep.txt\n"
                                           "Dockerfile\n")
    for name in ("a.py", "b.log", "sub/x.txt", "sub/deep/keep.txt", "sub/deep/drop.txt"):
        (context / name).write_text(name)
    daemon.reply("POST", "/build", 200, chunks=[json.dumps({"stream": "ok\n"}) + "\n"])
    argv = ["build", "-t", "a:1", "-t", "b", "--build-arg", "X=1", "--build-arg", "Y",
            "--label", "l=v", "--no-cache", "--pull", "--target", "t", str(context)]
    run_both(daemon, tmp_path, argv, {"DOCKER_BUILDKIT": "0"})
    docker_build, flotta_build = daemon.calls("POST", "/build")
    assert flotta_build.query == docker_build.query

    import io
    import tarfile

    def names(body):
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            return sorted((m.name.rstrip("/"), m.type, m.uid, m.gid) for m in archive)

    assert names(flotta_build.body) == names(docker_build.body)
