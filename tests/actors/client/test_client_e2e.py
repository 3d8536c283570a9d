"""The CLI as a subprocess against a stub daemon: requests sent, output, exit codes."""

import io
import json
import tarfile
import threading
import time

from client_stub_daemon import Reply, frame, read_available

CONTAINER_ID = "a1b2c3d4e5f6" + "0" * 52


def container_summary(**overrides):
    item = {
        "Id": CONTAINER_ID, "Names": ["/web"], "Image": "nginx:latest",
        "ImageID": "sha256:" + "f" * 64, "Command": "nginx -g 'daemon off;'",
        "Created": int(time.time()) - 125, "State": "running", "Status": "Up 2 minutes",
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        "Labels": {}, "Mounts": [], "NetworkSettings": {"Networks": {"bridge": {}}},
    }
    item.update(overrides)
    return item


def test_ps_prints_docker_table(daemon, flotta):
    daemon.reply("GET", "/containers/json", 200, [container_summary()])
    result = flotta("ps")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS         "
        "PORTS                  NAMES",
        'a1b2c3d4e5f6   nginx:latest   "nginx -g \'daemon of…"   2 minutes ago   Up 2 minutes   '
        "0.0.0.0:8080->80/tcp   web",
    ]
    (request,) = daemon.calls("GET", "/containers/json")
    assert request.version == "1.45"
    assert request.query == {}


def test_ps_flags_become_query(daemon, flotta):
    daemon.reply("GET", "/containers/json", 200, [])
    result = flotta("ps", "-a", "-n", "3", "-s", "-f", "status=exited", "-f", "label=a=b")
    assert result.returncode == 0, result.stderr
    (request,) = daemon.calls("GET", "/containers/json")
    assert request.arg("all") == "1"
    assert request.arg("limit") == "3"
    assert request.arg("size") == "1"
    assert json.loads(request.arg("filters")) == {"label": {"a=b": True},
                                                  "status": {"exited": True}}


def test_ps_quiet_and_format(daemon, flotta):
    daemon.reply("GET", "/containers/json", 200, [container_summary(Labels={"tier": "web"})])
    assert flotta("ps", "-q").stdout == b"a1b2c3d4e5f6\n"
    result = flotta("ps", "--format", '{{.Names}}|{{.Label "tier"}}|{{.State}}')
    assert result.stdout == b"web|web|running\n"


def test_bad_template_fails_before_any_request(daemon, flotta):
    result = flotta("ps", "--format", "{{.Nope}}")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("failed to execute template: template: :1:2: "
                                             'executing "" at <.Nope>: can\'t evaluate field Nope')
    assert daemon.calls() == []


def test_images_table(daemon, flotta):
    daemon.reply("GET", "/images/json", 200, [
        {"Id": "sha256:" + "ab" * 32, "RepoTags": ["busybox:latest"], "RepoDigests": [],
         "Created": int(time.time()) - 3 * 86400, "Size": 4261234},
        {"Id": "sha256:" + "cd" * 32, "RepoTags": [], "RepoDigests": [],
         "Created": int(time.time()) - 7200, "Size": 999},
    ])
    result = flotta("images")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE",
        "busybox      latest    abababababab   3 days ago    4.26MB",
        "<none>       <none>    cdcdcdcdcdcd   2 hours ago   999B",
    ]


def test_run_detached_sequence_and_body(daemon, flotta):
    daemon.reply("POST", "/containers/create", 201, {"Id": CONTAINER_ID, "Warnings": ["low"]})
    daemon.reply("POST", "/containers/[^/]+/wait", 200, {"StatusCode": 0})
    daemon.reply("POST", "/containers/[^/]+/start", 204)
    result = flotta("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "echo", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (CONTAINER_ID + "\n").encode()
    assert result.stderr == b"WARNING: low\n"
    calls = [(request.method, request.path) for request in daemon.calls()]
    assert calls == [("POST", "/containers/create"),
                     ("POST", f"/containers/{CONTAINER_ID}/wait"),
                     ("POST", f"/containers/{CONTAINER_ID}/start")]
    create, wait, _ = daemon.calls()
    assert create.query == {"name": ["web"]}
    assert create.headers["content-type"] == "application/json"
    body = create.json()
    assert body["Cmd"] == ["echo", "hi"]
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert wait.arg("condition") == "next-exit"


def test_run_pulls_missing_image_then_retries_create(daemon, flotta):
    attempts = []

    def create(request):
        attempts.append(request)
        if len(attempts) == 1:
            return Reply(404, {"message": "No such image: busybox:latest"})
        return Reply(201, {"Id": CONTAINER_ID, "Warnings": []})

    daemon.route("POST", "/containers/create")(create)
    daemon.reply("POST", "/images/create", 200, chunks=[
        json.dumps({"status": "Pulling from library/busybox", "id": "latest"}) + "\n",
        json.dumps({"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"}) + "\n",
        json.dumps({"status": "Downloading", "progressDetail": {"current": 5, "total": 10},
                    "progress": "[==>   ]", "id": "abc"}) + "\n",
        json.dumps({"status": "Pull complete", "progressDetail": {}, "id": "abc"}) + "\n",
        json.dumps({"status": "Digest: sha256:" + "1" * 64}) + "\n",
        json.dumps({"status": "Status: Downloaded newer image for busybox:latest"}) + "\n",
    ])
    daemon.reply("POST", "/containers/[^/]+/wait", 200, {"StatusCode": 0})
    daemon.reply("POST", "/containers/[^/]+/start", 204)
    result = flotta("run", "-d", "busybox")
    assert result.returncode == 0, result.stderr
    assert len(attempts) == 2
    assert result.stderr.decode().splitlines() == [
        "Unable to find image 'busybox:latest' locally",
        "latest: Pulling from library/busybox",
        "abc: Pulling fs layer",
        "abc: Pull complete",
        "Digest: sha256:" + "1" * 64,
        "Status: Downloaded newer image for busybox:latest",
    ]
    (pull,) = daemon.calls("POST", "/images/create")
    assert pull.arg("fromImage") == "docker.io/library/busybox"
    assert pull.arg("tag") == "latest"
    assert pull.headers["x-registry-auth"] == "e30="


def test_run_pull_never_reports_the_404(daemon, flotta):
    daemon.reply("POST", "/containers/create", 404, {"message": "No such image: busybox:latest"})
    result = flotta("run", "--pull", "never", "-d", "busybox")
    assert result.returncode == 125
    assert result.stderr.decode() == (
        "flotta: Error response from daemon: No such image: busybox:latest\n\n"
        "Run 'flotta run --help' for more information\n")
    assert daemon.calls("POST", "/images/create") == []


def _attached_run(daemon, exit_code, output_frames, echo_stdin=False):
    """Routes for an attached run: the hijacked attach streams `output_frames`."""
    received = {}
    wait_release = threading.Event()

    def attach(sock, rfile, request):
        received["query"] = request.query
        if echo_stdin:
            # Read stdin until the client half-closes, then answer with what came in.
            data = rfile.read1(65536) if hasattr(rfile, "read1") else b""
            while True:
                piece = rfile.read1(65536)
                if not piece:
                    break
                data += piece
            received["stdin"] = data
            sock.sendall(frame(1, b"echo:" + data))
        for item in output_frames:
            sock.sendall(item)
        sock.close()
        wait_release.set()

    def wait(request):
        received["condition"] = request.arg("condition")
        return Reply(200, chunks=[lambda: wait_release.wait(10),
                                  json.dumps({"StatusCode": exit_code, "Error": None}) + "\n"])

    daemon.reply("POST", "/containers/create", 201, {"Id": CONTAINER_ID, "Warnings": []})
    daemon.route("POST", "/containers/[^/]+/attach")(
        lambda request: Reply(hijack=attach,
                              content_type="application/vnd.docker.multiplexed-stream"))
    daemon.route("POST", "/containers/[^/]+/wait")(wait)
    daemon.reply("POST", "/containers/[^/]+/start", 204)
    return received


def test_run_attached_demultiplexes_and_exits_with_container_code(daemon, flotta):
    received = _attached_run(daemon, 3, [frame(1, "to stdout\n"), frame(2, "to stderr\n"),
                                         frame(1, "more\n")])
    result = flotta("run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == b"to stdout\nmore\n"
    assert result.stderr == b"to stderr\n"
    assert received["condition"] == "removed"
    assert received["query"] == {"stream": ["1"], "stdout": ["1"], "stderr": ["1"]}
    order = [request.path.rsplit("/", 1)[-1] for request in daemon.calls()]
    assert order == ["create", "attach", "wait", "start"]


def test_run_interactive_sends_stdin_then_half_closes(daemon, flotta):
    received = _attached_run(daemon, 0, [frame(2, "done\n")], echo_stdin=True)
    result = flotta("run", "-i", "busybox", "cat", input=b"hello stdin")
    assert result.returncode == 0, result.stderr
    assert received["stdin"] == b"hello stdin"
    assert result.stdout == b"echo:hello stdin"
    assert result.stderr == b"done\n"
    assert received["query"]["stdin"] == ["1"]


def test_run_start_failure_maps_exit_code(daemon, flotta):
    daemon.reply("POST", "/containers/create", 201, {"Id": CONTAINER_ID, "Warnings": []})
    daemon.reply("POST", "/containers/[^/]+/wait", 200, {"StatusCode": 127})
    daemon.reply("POST", "/containers/[^/]+/start", 400, {
        "message": 'failed to create task: exec: "nope": executable file not found in $PATH'})
    result = flotta("run", "-d", "busybox", "nope")
    assert result.returncode == 127
    assert b"executable file not found" in result.stderr
    assert result.stderr.startswith(b"flotta: Error response from daemon: ")


def test_attach_to_running_container(daemon, flotta):
    daemon.reply("GET", "/containers/web/json", 200, {
        "Id": CONTAINER_ID, "State": {"Running": True}, "Config": {"Tty": False,
                                                                   "OpenStdin": False}})
    received = _attached_run(daemon, 7, [frame(1, "attached output\n")])
    result = flotta("attach", "web")
    assert result.returncode == 7, result.stderr
    assert result.stdout == b"attached output\n"
    assert received["query"]["stdout"] == ["1"]
    assert "stdin" not in received["query"]


def test_attach_refuses_stopped_container(daemon, flotta):
    daemon.reply("GET", "/containers/web/json", 200, {
        "Id": CONTAINER_ID, "State": {"Running": False}, "Config": {}})
    result = flotta("attach", "web")
    assert result.returncode == 1
    assert result.stderr == b"You cannot attach to a stopped container, start it first\n"


def _exec_routes(daemon, exit_code, output):
    daemon.reply("GET", "/containers/web/json", 200, {"Id": CONTAINER_ID})
    daemon.reply("POST", "/containers/web/exec", 201, {"Id": "e" * 64})

    def start(request):
        if request.json()["Detach"]:
            return Reply(200, raw=b"")

        def stream(sock, rfile, request):
            sock.sendall(output)
            sock.close()

        return Reply(hijack=stream, content_type="application/vnd.docker.multiplexed-stream")

    daemon.route("POST", "/exec/[^/]+/start")(start)
    daemon.reply("GET", "/exec/[^/]+/json", 200, {"ExitCode": exit_code, "Running": False})


def test_exec_exit_code_comes_from_exec_inspect(daemon, flotta):
    _exec_routes(daemon, 5, frame(1, "out\n") + frame(2, "err\n"))
    result = flotta("exec", "-e", "A=1", "-w", "/tmp", "web", "sh", "-c", "exit 5")
    assert result.returncode == 5, result.stderr
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    (create,) = daemon.calls("POST", "/containers/web/exec")
    assert create.json() == {
        "User": "", "Privileged": False, "Tty": False, "AttachStdin": False,
        "AttachStderr": True, "AttachStdout": True, "Detach": False, "DetachKeys": "",
        "Env": ["A=1"], "WorkingDir": "/tmp", "Cmd": ["sh", "-c", "exit 5"]}
    (start,) = daemon.calls("POST", "/exec/[^/]+/start")
    assert start.json() == {"Detach": False, "Tty": False}
    assert start.headers["upgrade"] == "tcp"


def test_exec_detached_does_not_hijack(daemon, flotta):
    _exec_routes(daemon, 0, b"")
    result = flotta("exec", "-d", "web", "sleep", "1")
    assert result.returncode == 0, result.stderr
    (start,) = daemon.calls("POST", "/exec/[^/]+/start")
    assert start.json() == {"Detach": True, "Tty": False}
    assert "upgrade" not in start.headers
    assert daemon.calls("GET", "/exec/[^/]+/json") == []


def test_logs_demultiplexed_and_query(daemon, flotta):
    daemon.reply("GET", "/containers/web/json", 200, {"Id": CONTAINER_ID,
                                                       "Config": {"Tty": False}})
    daemon.reply("GET", "/containers/[^/]+/logs", 200,
                 chunks=[frame(1, "line one\n")[:5], frame(1, "line one\n")[5:],
                         frame(2, "oops\n"), frame(1, "")],
                 content_type="application/vnd.docker.multiplexed-stream")
    result = flotta("logs", "--tail", "5", "-t", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"line one\n"
    assert result.stderr == b"oops\n"
    (logs,) = daemon.calls("GET", "/containers/[^/]+/logs")
    assert logs.query == {"stdout": ["1"], "stderr": ["1"], "tail": ["5"], "timestamps": ["1"]}


def test_logs_of_tty_container_are_raw(daemon, flotta):
    daemon.reply("GET", "/containers/web/json", 200, {"Id": CONTAINER_ID,
                                                       "Config": {"Tty": True}})
    daemon.reply("GET", "/containers/[^/]+/logs", 200, chunks=[b"\x01raw tty bytes\r\n"],
                 content_type="application/vnd.docker.raw-stream")
    result = flotta("logs", "web")
    assert result.stdout == b"\x01raw tty bytes\r\n"


def test_pull_progress_and_error_detail(daemon, flotta):
    daemon.reply("POST", "/images/create", 200, chunks=[
        json.dumps({"status": "Pulling from library/busybox", "id": "1.36"}) + "\n",
        json.dumps({"errorDetail": {"message": "manifest unknown"},
                    "error": "manifest unknown"}) + "\n",
    ])
    result = flotta("pull", "busybox:1.36")
    assert result.returncode == 1
    assert result.stdout == b"1.36: Pulling from library/busybox\n"
    assert result.stderr == b"manifest unknown\n"


def test_pull_prints_canonical_reference(daemon, flotta):
    daemon.reply("POST", "/images/create", 200, chunks=[
        json.dumps({"status": "Status: Image is up to date for busybox:latest"}) + "\n"])
    result = flotta("pull", "busybox")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Using default tag: latest",
        "Status: Image is up to date for busybox:latest",
        "docker.io/library/busybox:latest",
    ]


def test_daemon_error_is_one_line_with_exit_1(daemon, flotta):
    daemon.reply("POST", "/containers/[^/]+/stop", 404, {"message": "No such container: zz"})
    result = flotta("stop", "zz")
    assert result.returncode == 1
    assert result.stderr == b"Error response from daemon: No such container: zz\n"


def test_stop_prints_each_name_and_collects_errors(daemon, flotta):
    def stop(request):
        if "bad" in request.path:
            return Reply(404, {"message": "No such container: bad"})
        return Reply(204)

    daemon.route("POST", "/containers/[^/]+/stop")(stop)
    result = flotta("stop", "-t", "3", "a", "bad", "b")
    assert result.returncode == 1
    assert result.stdout == b"a\nb\n"
    assert result.stderr == b"Error response from daemon: No such container: bad\n"
    assert all(call.arg("t") == "3" for call in daemon.calls("POST", "/containers/[^/]+/stop"))


def test_cannot_connect_message(flotta, short_dir):
    host = f"unix://{short_dir}/absent.sock"
    result = flotta("ps", host=host)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"Cannot connect to the flotta daemon at {host}. Is the flotta daemon running?\n")
    result = flotta("run", "busybox", host=host)
    assert result.returncode == 125
    assert result.stderr.decode().startswith("flotta: Cannot connect to the flotta daemon")


def test_version_negotiation_uses_the_daemons_older_version(daemon, flotta):
    daemon.api_version = "1.41"
    daemon.reply("GET", "/containers/json", 200, [])
    assert flotta("ps").returncode == 0
    (request,) = daemon.calls("GET", "/containers/json")
    assert request.version == "1.41"
    pings = [r for r in daemon.requests if r.path == "/_ping"]
    assert pings[0].method == "HEAD" and pings[0].version is None


def test_ping_falls_back_to_get_when_head_is_refused(daemon, flotta):
    daemon.reply("HEAD", "/_ping", 405, {"message": "no HEAD"})
    daemon.reply("GET", "/containers/json", 200, [])
    assert flotta("ps").returncode == 0
    methods = [r.method for r in daemon.requests if r.path == "/_ping"]
    assert methods == ["HEAD", "GET"]


def test_host_flag_beats_environment(daemon, flotta, short_dir):
    daemon.reply("GET", "/containers/json", 200, [])
    result = flotta("-H", daemon.url, "ps", host=f"unix://{short_dir}/absent.sock")
    assert result.returncode == 0, result.stderr
    result = flotta("ps", host="unix:///nonexistent/x.sock",
                    env={"FLOTTA_HOST": daemon.url})
    assert result.returncode == 0, result.stderr


def test_usage_errors_match_docker(flotta):
    result = flotta("ps", "--bogus")
    assert result.returncode == 125
    assert result.stderr.decode() == ("unknown flag: --bogus\n\nUsage:  flotta ps [OPTIONS]\n\n"
                                      "Run 'flotta ps --help' for more information\n")
    result = flotta("nosuch")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("flotta: unknown command: flotta nosuch\n")
    result = flotta("rm")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("flotta: 'flotta rm' requires at least 1 argument")
    result = flotta("run", "-m", "12x", "busybox")
    assert result.returncode == 125
    assert result.stderr.decode().startswith(
        "invalid argument \"12x\" for \"-m, --memory\" flag: invalid suffix: 'x'")


def test_inspect_format_and_missing_key(daemon, flotta):
    daemon.reply("GET", "/containers/web/json", 200, {"Id": CONTAINER_ID,
                                                       "State": {"Pid": 42}, "Config": {}})
    result = flotta("inspect", "-f", "{{.State.Pid}} {{json .Config}}", "web")
    assert result.stdout == b"42 {}\n"
    result = flotta("container", "inspect", "-f", "{{.Nope}}", "web")
    assert result.returncode == 1
    assert b'map has no entry for key "Nope"' in result.stderr
    result = flotta("inspect", "web")
    assert json.loads(result.stdout) == [{"Id": CONTAINER_ID, "State": {"Pid": 42},
                                          "Config": {}}]
    assert result.stdout.startswith(b'[\n    {\n        "Id"')


def test_inspect_tries_each_type_in_turn(daemon, flotta):
    daemon.reply("GET", "/volumes/data", 200, {"Name": "data", "Driver": "local"})
    result = flotta("inspect", "-f", "{{.Driver}}", "data")
    assert result.stdout == b"local\n"
    paths = [request.path for request in daemon.calls("GET")]
    assert paths == ["/containers/data/json", "/images/data/json", "/networks/data",
                     "/volumes/data"]
    result = flotta("inspect", "nothing")
    assert result.returncode == 1
    assert result.stdout == b"[]\n"
    assert result.stderr == b"Error: No such object: nothing\n"


def test_build_sends_filtered_context(daemon, flotta, tmp_path):
    context = tmp_path / "ctx"
    (context / "sub").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM busybox\n")
    (context / ".dockerignore").write_text("*.log\nsub\n!sub/keep.txt\nDockerfile\n")
    (context / "app.py").write_text("print(1)\n")
    (context / "debug.log").write_text("noise\n")
    (context / "sub" / "keep.txt").write_text("keep\n")
    (context / "sub" / "drop.txt").write_text("drop\n")
    daemon.reply("POST", "/build", 200, chunks=[
        json.dumps({"stream": "Step 1/1 : FROM busybox\n"}) + "\n",
        json.dumps({"stream": " ---> abcdef012345\n"}) + "\n",
        json.dumps({"aux": {"ID": "sha256:" + "9" * 64}}) + "\n",
        json.dumps({"stream": "Successfully built abcdef012345\n"}) + "\n",
        json.dumps({"stream": "Successfully tagged app:1\n"}) + "\n",
    ])
    iidfile = tmp_path / "iid"
    result = flotta("build", "-t", "app:1", "--build-arg", "X=1", "--iidfile", str(iidfile),
                    str(context))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("Sending build context to flotta daemon")
    assert lines[1:] == ["Step 1/1 : FROM busybox", " ---> abcdef012345",
                         "Successfully built abcdef012345", "Successfully tagged app:1"]
    assert iidfile.read_text() == "sha256:" + "9" * 64
    (request,) = daemon.calls("POST", "/build")
    assert request.query["t"] == ["app:1"]
    assert json.loads(request.arg("buildargs")) == {"X": "1"}
    assert request.arg("dockerfile") == "Dockerfile"
    assert request.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(request.body)) as archive:
        names = sorted(archive.getnames())
        owners = {(member.uid, member.gid) for member in archive.getmembers()}
    assert names == [".dockerignore", "Dockerfile", "app.py", "sub/keep.txt"]
    assert owners == {(0, 0)}


def test_build_error_detail_exit_code(daemon, flotta, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN false\n")
    daemon.reply("POST", "/build", 200, chunks=[
        json.dumps({"stream": "Step 2/2 : RUN false\n"}) + "\n",
        json.dumps({"errorDetail": {"code": 1, "message": "The command '/bin/sh -c false' "
                                    "returned a non-zero code: 1"},
                    "error": "The command '/bin/sh -c false' returned a non-zero code: 1"})
        + "\n",
    ])
    result = flotta("build", "-q", str(tmp_path))
    assert result.returncode == 1
    assert b"returned a non-zero code: 1" in result.stderr


def test_login_stores_credentials_and_pull_sends_them(daemon, flotta):
    import base64

    daemon.reply("POST", "/auth", 200, {"Status": "Login Succeeded"})
    daemon.reply("POST", "/images/create", 200, chunks=[json.dumps({"status": "ok"}) + "\n"])
    result = flotta("login", "-u", "bob", "--password-stdin", "myreg:5000", input=b"s3cret\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Login Succeeded\n"
    (auth,) = daemon.calls("POST", "/auth")
    assert auth.json() == {"username": "bob", "password": "s3cret",
                           "serveraddress": "myreg:5000"}
    stored = json.loads((flotta.config_dir / "config.json").read_text())
    assert stored["auths"]["myreg:5000"]["auth"] == base64.b64encode(b"bob:s3cret").decode()
    assert flotta("pull", "myreg:5000/app:1").returncode == 0
    (pull,) = daemon.calls("POST", "/images/create")
    header = json.loads(base64.urlsafe_b64decode(pull.headers["x-registry-auth"]))
    assert header == {"serveraddress": "myreg:5000", "username": "bob", "password": "s3cret"}
    result = flotta("logout", "myreg:5000")
    assert result.stdout == b"Removing login credentials for myreg:5000\n"
    stored = json.loads((flotta.config_dir / "config.json").read_text())
    assert "myreg:5000" not in stored["auths"]


def test_cp_from_container_extracts_with_docker_rules(daemon, flotta, tmp_path):
    import base64

    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        info = tarfile.TarInfo("hosts")
        data = b"127.0.0.1 localhost\n"
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    stat = base64.b64encode(json.dumps({"name": "hosts", "size": 20, "mode": 0o644,
                                        "mtime": "2024-01-01T00:00:00Z"}).encode()).decode()
    daemon.reply("GET", "/containers/web/archive", 200, raw=payload.getvalue(),
                 content_type="application/x-tar",
                 headers={"X-Docker-Container-Path-Stat": stat})
    result = flotta("cp", "web:/etc/hosts", str(tmp_path / "copied"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copied").read_bytes() == b"127.0.0.1 localhost\n"
    (tmp_path / "into").mkdir()
    assert flotta("cp", "-q", "web:/etc/hosts", str(tmp_path / "into")).returncode == 0
    assert (tmp_path / "into" / "hosts").read_bytes() == b"127.0.0.1 localhost\n"


def test_cp_refuses_entries_escaping_the_destination(daemon, flotta, tmp_path):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    daemon.reply("GET", "/containers/web/archive", 200, raw=payload.getvalue(),
                 content_type="application/x-tar")
    (tmp_path / "dest").mkdir()
    result = flotta("cp", "web:/x", str(tmp_path / "dest"))
    assert result.returncode == 1
    assert not (tmp_path / "escape").exists()


def test_cp_to_container_uploads_tar(daemon, flotta, tmp_path):
    (tmp_path / "file.txt").write_text("content")
    daemon.reply("HEAD", "/containers/web/archive", 404, {"message": "Could not find the file"})
    daemon.reply("PUT", "/containers/web/archive", 200)
    result = flotta("cp", str(tmp_path / "file.txt"), "web:/tmp/renamed.txt")
    assert result.returncode == 0, result.stderr
    (put,) = daemon.calls("PUT", "/containers/web/archive")
    assert put.arg("path") == "/tmp"
    with tarfile.open(fileobj=io.BytesIO(put.body)) as archive:
        assert archive.getnames() == ["renamed.txt"]
        assert archive.extractfile("renamed.txt").read() == b"content"


def test_network_and_volume_create_bodies(daemon, flotta):
    daemon.reply("POST", "/networks/create", 201, {"Id": "n" * 64, "Warning": ""})
    daemon.reply("POST", "/volumes/create", 201, {"Name": "myvol", "Driver": "local"})
    result = flotta("network", "create", "--subnet", "10.1.0.0/24", "--gateway", "10.1.0.1",
                    "--internal", "--label", "a=b", "foo")
    assert result.stdout == b"n" * 64 + b"\n"
    (network,) = daemon.calls("POST", "/networks/create")
    assert network.json() == {
        "Driver": "bridge", "Scope": "", "IPAM": {
            "Driver": "default", "Options": {},
            "Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}]},
        "Internal": True, "Attachable": False, "Ingress": False, "ConfigOnly": False,
        "ConfigFrom": None, "Options": {}, "Labels": {"a": "b"}, "Name": "foo"}
    result = flotta("volume", "create", "-o", "type=tmpfs", "--label", "k=v", "myvol")
    assert result.stdout == b"myvol\n"
    (volume,) = daemon.calls("POST", "/volumes/create")
    assert volume.json() == {"Driver": "local", "DriverOpts": {"type": "tmpfs"},
                             "Labels": {"k": "v"}, "Name": "myvol"}


def test_events_stream_lines(daemon, flotta):
    daemon.reply("GET", "/events", 200, chunks=[json.dumps({
        "Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {
            "name": "web", "image": "nginx"}}, "time": 1700000000,
        "timeNano": 1700000000123456789}) + "\n"])
    result = flotta("events", "--since", "1700000000", env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == (b"2023-11-14T22:13:20.123456789Z container start abc "
                             b"(image=nginx, name=web)\n")
    (request,) = daemon.calls("GET", "/events")
    assert request.arg("since") == "1700000000"


def test_bootstrap_posts_and_renders_progress(daemon, flotta):
    daemon.reply("POST", "/flotta/bootstrap", 200, chunks=[
        json.dumps({"status": "Creating busybox image"}) + "\n",
        json.dumps({"status": "Done"}) + "\n"])
    result = flotta("bootstrap", "busybox")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Creating busybox image\nDone\n"
    (request,) = daemon.calls("POST", "/flotta/bootstrap")
    assert request.arg("image") == "busybox"


def test_read_available_helper_returns_on_close():
    import socket

    left, right = socket.socketpair()
    right.sendall(b"abc")
    right.close()
    assert read_available(left) == b"abc"
    left.close()


def test_signal_proxy_forwards_sigint_as_kill(daemon, flotta, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

    started = threading.Event()
    killed = threading.Event()

    def attach(sock, rfile, request):
        killed.wait(20)
        sock.sendall(frame(1, "got signal\n"))
        sock.close()

    def kill(request):
        killed.set()
        return Reply(204)

    daemon.reply("POST", "/containers/create", 201, {"Id": CONTAINER_ID, "Warnings": []})
    daemon.route("POST", "/containers/[^/]+/attach")(lambda request: Reply(
        hijack=attach, content_type="application/vnd.docker.multiplexed-stream"))
    daemon.route("POST", "/containers/[^/]+/wait")(lambda request: Reply(200, chunks=[
        lambda: killed.wait(20), json.dumps({"StatusCode": 130}) + "\n"]))
    daemon.route("POST", "/containers/[^/]+/start")(
        lambda request: started.set() or Reply(204))
    daemon.route("POST", "/containers/[^/]+/kill")(kill)
    environment = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": daemon.url,
                   "PYTHONPATH": repository, "HOME": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "actors.client.main", "run", "busybox",
                                "sleep", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=environment)
    try:
        assert started.wait(20)
        # The handlers are installed right after start returns; give them a moment.
        deadline = time.monotonic() + 20
        while not killed.is_set() and time.monotonic() < deadline:
            process.send_signal(signal.SIGINT)
            killed.wait(0.2)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 130, stderr
    assert stdout == b"got signal\n"
    kills = daemon.calls("POST", "/containers/[^/]+/kill")
    assert kills and kills[0].arg("signal") == "INT"


def test_rm_force_ignores_missing_containers(daemon, flotta):
    def remove(request):
        if "gone" in request.path:
            return Reply(404, {"message": "No such container: gone"})
        return Reply(204)

    daemon.route("DELETE", "/containers/[^/]+")(remove)
    result = flotta("rm", "-f", "-v", "here", "gone")
    assert result.returncode == 0
    assert result.stdout == b"here\n"
    assert result.stderr == b"Error response from daemon: No such container: gone\n"
    assert daemon.calls("DELETE")[0].query == {"force": ["1"], "v": ["1"]}
    result = flotta("rm", "gone")
    assert result.returncode == 1


def test_commit_query(daemon, flotta):
    daemon.reply("POST", "/commit", 201, {"Id": "sha256:" + "1" * 64})
    result = flotta("commit", "-m", "msg", "-a", "me", "-c", "ENV A=1", "-c", "CMD x",
                    "--pause=false", "c1", "myrepo:v1")
    assert result.stdout == b"sha256:" + b"1" * 64 + b"\n"
    (request,) = daemon.calls("POST", "/commit")
    assert request.raw_query == ("author=me&changes=ENV%20A%3D1&changes=CMD%20x&comment=msg&"
                                 "container=c1&pause=0&repo=docker.io%2Flibrary%2Fmyrepo&tag=v1")
    assert request.body == b"null"


def test_update_body_matches_docker(daemon, flotta):
    daemon.reply("POST", "/containers/[^/]+/update", 200, {"Warnings": []})
    result = flotta("update", "--cpus", "1", "-m", "10m", "--restart", "always", "c1")
    assert result.returncode == 0, result.stderr
    (request,) = daemon.calls("POST", "/containers/[^/]+/update")
    body = request.json()
    assert body["Memory"] == 10485760 and body["NanoCpus"] == 1_000_000_000
    assert body["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    assert body["PidsLimit"] is None and body["MemorySwappiness"] is None
    assert len(body) == 30


def test_save_to_file_and_load_from_file(daemon, flotta, tmp_path):
    daemon.reply("GET", "/images/get", 200, raw=b"tar-bytes", content_type="application/x-tar")
    daemon.reply("POST", "/images/load", 200, chunks=[
        json.dumps({"stream": "Loaded image: busybox:latest\n"}) + "\n"])
    target = tmp_path / "out.tar"
    assert flotta("save", "-o", str(target), "busybox", "alpine:3").returncode == 0
    assert target.read_bytes() == b"tar-bytes"
    (save,) = daemon.calls("GET", "/images/get")
    assert save.query == {"names": ["busybox", "alpine:3"]}
    result = flotta("load", "-i", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Loaded image: busybox:latest\n"
    (load,) = daemon.calls("POST", "/images/load")
    assert load.body == b"tar-bytes"
    assert load.arg("quiet") == "1"
