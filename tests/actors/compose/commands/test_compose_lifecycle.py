"""`flotta compose` against a real flottad: the reconciler's behaviour end to end.

These projects use `network_mode: none`, so they exercise containers, volumes, images,
healthchecks and the command line without the network component; the example projects
(test_compose_examples.py) add networking by service name.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

pytestmark = pytest.mark.root

# A service that stops promptly on SIGTERM (busybox sh as PID 1 ignores it otherwise).
LOOP = "trap 'exit 0' TERM; {body} while :; do sleep 1; done"


def service(body: str = "", **extra: str) -> str:
    lines = ["    image: busybox", "    network_mode: none",
             f'    command: ["sh", "-c", "{LOOP.format(body=body)}"]']
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines)


TWO = f"""
services:
  a:
{service("echo a-up;", environment="{COLOR: blue}")}
  b:
{service("echo b-up;", environment="{COLOR: red}")}
"""


def test_up_twice_is_idempotent_and_a_change_recreates_only_that_service(compose_project):
    compose = compose_project
    compose.write(TWO)
    first = compose("up", "-d")
    assert f" Container {compose.name}-a-1  Created" in first.stderr
    assert f" Container {compose.name}-b-1  Started" in first.stderr
    before = compose.ids()
    assert sorted(before) == [f"{compose.name}-a-1", f"{compose.name}-b-1"]

    again = compose("up", "-d")
    assert f" Container {compose.name}-a-1  Running" in again.stderr
    assert f" Container {compose.name}-b-1  Running" in again.stderr
    assert "Created" not in again.stderr and "Recreate" not in again.stderr
    assert compose.ids() == before

    compose.write(TWO.replace("COLOR: red", "COLOR: green"))
    changed = compose("up", "-d")
    assert f" Container {compose.name}-a-1  Running" in changed.stderr
    assert f" Container {compose.name}-b-1  Recreated" in changed.stderr
    after = compose.ids()
    assert after[f"{compose.name}-a-1"] == before[f"{compose.name}-a-1"]
    assert after[f"{compose.name}-b-1"] != before[f"{compose.name}-b-1"]
    details = compose.inspect(f"{compose.name}-b-1")
    assert "COLOR=green" in details["Config"]["Env"]
    assert details["State"]["Running"]
    assert details["Config"]["Labels"]["com.docker.compose.replace"] == \
        before[f"{compose.name}-b-1"]

    forced = compose("up", "-d", "--force-recreate", "a")
    assert f" Container {compose.name}-a-1  Recreated" in forced.stderr
    assert compose.ids()[f"{compose.name}-b-1"] == after[f"{compose.name}-b-1"]


def test_labels_and_names_are_docker_composes(compose_project):
    compose = compose_project
    compose.write(TWO)
    compose("up", "-d", "a")
    (container,) = compose.containers()
    labels = container["Labels"]
    assert container["Names"] == [f"/{compose.name}-a-1"]
    assert labels["com.docker.compose.project"] == compose.name
    assert labels["com.docker.compose.service"] == "a"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert labels["com.docker.compose.project.working_dir"] == str(compose.directory)
    assert labels["com.docker.compose.project.config_files"] == \
        str(compose.directory / "compose.yaml")
    assert labels["com.docker.compose.image"].startswith("sha256:")
    assert len(labels["com.docker.compose.config-hash"]) == 64


def test_scale_to_three_and_back_to_one(compose_project):
    compose = compose_project
    compose.write(f"services:\n  web:\n{service()}\n")
    compose("up", "-d", "--scale", "web=3")
    assert compose.names() == [f"{compose.name}-web-{n}" for n in (1, 2, 3)]
    assert all(c["State"] == "running" for c in compose.containers())
    down = compose("up", "-d", "--scale", "web=1")
    assert f" Container {compose.name}-web-3  Removed" in down.stderr
    assert compose.names() == [f"{compose.name}-web-1"]
    ps = compose("ps", "--format", "json")
    rows = [json.loads(line) for line in ps.stdout.splitlines()]
    assert [(row["Name"], row["Service"], row["State"]) for row in rows] == [
        (f"{compose.name}-web-1", "web", "running")]
    # Go templates, bare and as a table, as Docker Compose takes them.
    assert compose("ps", "--format", "{{.Name}} {{.State}}").stdout == f"{compose.name}-web-1 running\n"
    table = compose("ps", "--format", "table {{.Service}}\t{{.Status}}").stdout.splitlines()
    assert table[0].split() == ["SERVICE", "STATUS"] and table[1].split()[:2] == ["web", "Up"]
    bad = compose("ps", "--format", "{{.Name", check=False)
    assert bad.returncode != 0 and "template" in bad.stderr


HEALTH = """
services:
  db:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 2; touch /shared/ready; while :; do sleep 1; done"]
    volumes: [shared:/shared]
    healthcheck: {test: [CMD, test, -f, /shared/ready], interval: 1s, timeout: 1s, retries: 30}
  web:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "trap 'exit 0' TERM; test -f /shared/ready && echo web-saw-ready; while :; do sleep 1; done"]
    volumes: [shared:/shared]
    depends_on: {db: {condition: service_healthy}}
volumes:
  shared: {}
"""


def test_service_healthy_gates_the_start(compose_project):
    compose = compose_project
    compose.write(HEALTH)
    result = compose("up", "-d")
    lines = result.stderr.splitlines()
    db, web = f"Container {compose.name}-db-1", f"Container {compose.name}-web-1"
    assert lines.index(f" {db}  Healthy") < lines.index(f" {web}  Started")
    assert lines.index(f" {db}  Waiting") < lines.index(f" {db}  Healthy")
    logs = compose("logs", "web")
    assert "web-1 | web-saw-ready" in logs.stdout


def test_unhealthy_dependency_fails_with_composes_message(compose_project):
    compose = compose_project
    compose.write(HEALTH.replace("[CMD, test, -f, /shared/ready]", "[CMD, \"false\"]")
                  .replace("retries: 30", "retries: 1"))
    result = compose("up", "-d", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"dependency failed to start: container {compose.name}-db-1 is unhealthy")
    assert compose.inspect(f"{compose.name}-web-1")["State"]["Status"] == "created"


def test_completed_successfully_dependency(compose_project):
    compose = compose_project
    compose.write("""
        services:
          migrate:
            image: busybox
            network_mode: none
            command: ["sh", "-c", "echo migrated > /shared/done"]
            volumes: [shared:/shared]
          app:
            image: busybox
            network_mode: none
            command: ["sh", "-c", "cat /shared/done"]
            volumes: [shared:/shared]
            depends_on: {migrate: {condition: service_completed_successfully}}
        volumes:
          shared: {}
        """)
    result = compose("up", "--abort-on-container-exit", "--exit-code-from", "app", "app")
    assert result.returncode == 0
    assert "app-1 | migrated" in result.stdout


VOLUME = f"""
services:
  counter:
{service('echo boot >> /data/boots; echo boots=$$(wc -l < /data/boots);')}
    volumes: [data:/data]
volumes:
  data: {{}}
"""


def test_named_volume_survives_down_and_goes_with_down_v(compose_project):
    compose = compose_project
    compose.write(VOLUME)
    compose("up", "-d")
    assert compose.volumes() == [f"{compose.name}_data"]
    assert "boots=1" in compose("logs").stdout
    compose("down")
    assert compose.names() == []
    assert compose.volumes() == [f"{compose.name}_data"]
    compose("up", "-d")
    assert "boots=2" in compose("logs").stdout
    result = compose("down", "-v")
    assert f" Volume {compose.name}_data  Removed" in result.stderr
    assert compose.names() == [] and compose.volumes() == []


def test_build_from_a_local_dockerfile(compose_project):
    compose = compose_project
    (compose.directory / "Dockerfile").write_text(
        "FROM busybox\nARG GREETING=hello\nRUN echo \"$GREETING built\" > /greeting\n")
    compose.write("""
        services:
          greeter:
            build: {context: ., args: {GREETING: hi}, network: none}
            network_mode: none
            command: ["cat", "/greeting"]
        """)
    built = compose("up", "--build", "--exit-code-from", "greeter")
    assert "greeter-1 | hi built" in built.stdout
    image = compose.flottad.api("GET", f"/images/{compose.name}-greeter/json")
    assert image.status == 200
    assert image.json()["Config"]["Labels"]["com.docker.compose.service"] == "greeter"
    # Nothing changed: the image is not rebuilt and the container is reused.
    again = compose("up", "-d")
    assert "Building" not in again.stderr and "Recreate" not in again.stderr
    compose("down", "--rmi", "local")
    assert compose.flottad.api("GET", f"/images/{compose.name}-greeter/json").status == 404


def test_exec_run_logs_ps_and_config(compose_project):
    compose = compose_project
    compose.write(f"services:\n  app:\n{service('echo started;')}\n")
    compose("up", "-d")
    assert compose("exec", "-T", "app", "echo", "inside").stdout == "inside\n"
    failed = compose("exec", "-T", "app", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    assert compose("exec", "-T", "-e", "X=42", "app", "sh", "-c", "echo $X").stdout == "42\n"

    one_off = compose("run", "--rm", "-T", "app", "sh", "-c", "echo one-off; exit 4",
                      check=False)
    assert one_off.returncode == 4 and "one-off" in one_off.stdout
    assert compose.names() == [f"{compose.name}-app-1"]

    detached = compose("run", "-d", "app", "sleep", "60")
    run_id = detached.stdout.strip()
    labels = compose.inspect(run_id)["Config"]["Labels"]
    assert labels["com.docker.compose.oneoff"] == "True"
    assert compose.inspect(run_id)["Name"].startswith(f"/{compose.name}-app-run-")

    assert compose("logs", "--no-log-prefix", "app").stdout == "started\n"
    table = compose("ps").stdout.splitlines()
    assert table[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS",
                                "PORTS"]
    assert next(line.split()[0] for line in table[1:]) == f"{compose.name}-app-1"
    assert compose("ps", "--services").stdout == "app\n"
    assert compose("config", "--services").stdout == "app\n"
    assert f"name: {compose.name}\n" in compose("config").stdout
    missing = compose("exec", "nope", "true", check=False)
    assert (missing.returncode, missing.stderr) == (1, "no such service: nope\n")


def test_foreground_up_prefixes_output_and_aborts_on_exit(compose_project):
    compose = compose_project
    compose.write(
        "services:\n"
        "  short:\n"
        "    image: busybox\n"
        "    network_mode: none\n"
        '    command: ["sh", "-c", "echo short-says-hi; exit 3"]\n'
        "  long:\n" + service("echo long-up;") + "\n")
    result = compose("up", "--abort-on-container-exit", check=False)
    assert result.returncode == 3
    assert "short-1 | short-says-hi" in result.stdout
    assert "short-1 exited with code 3" in result.stdout
    assert "Aborting on container exit..." in result.stdout
    assert result.stdout.startswith("Attaching to long-1, short-1\n")
    states = {c["Names"][0]: c["State"] for c in compose.containers()}
    assert states == {f"/{compose.name}-long-1": "exited", f"/{compose.name}-short-1": "exited"}


def test_ctrl_c_stops_gracefully(compose_project):
    compose = compose_project
    compose.write(f"services:\n  app:\n{service('echo ready-for-signal;')}\n")
    process = compose.popen("up")
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "ready-for-signal" not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen += line
        assert "app-1 | ready-for-signal" in seen
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Gracefully stopping... (press Ctrl+C again to force)" in stderr
    assert f" Container {compose.name}-app-1  Stopped" in stderr
    assert [c["State"] for c in compose.containers()] == ["exited"]


def test_stop_start_restart_kill_rm(compose_project):
    compose = compose_project
    compose.write(TWO)
    compose("up", "-d")
    compose("stop", "-t", "1", "a")
    states = {c["Labels"]["com.docker.compose.service"]: c["State"] for c in compose.containers()}
    assert states == {"a": "exited", "b": "running"}
    compose("start", "a")
    assert all(c["State"] == "running" for c in compose.containers())
    before = compose.inspect(f"{compose.name}-b-1")["State"]["StartedAt"]
    compose("restart", "-t", "1", "b")
    assert compose.inspect(f"{compose.name}-b-1")["State"]["StartedAt"] != before
    killed = compose("kill", "b")
    assert f" Container {compose.name}-b-1  Killed" in killed.stderr
    removed = compose("rm", "-f")
    assert f" Container {compose.name}-b-1  Removed" in removed.stderr
    assert compose.names() == [f"{compose.name}-a-1"]


def test_orphans_are_reported_then_removed(compose_project):
    compose = compose_project
    compose.write(TWO)
    compose("up", "-d")
    compose.write(TWO.split("  b:")[0])
    warned = compose("up", "-d")
    assert f"Found orphan containers ([{compose.name}-b-1])" in warned.stderr
    assert f"{compose.name}-b-1" in compose.names()
    compose("up", "-d", "--remove-orphans")
    assert compose.names() == [f"{compose.name}-a-1"]


def test_down_leaves_nothing_of_the_project(compose_project):
    compose = compose_project
    compose.write(VOLUME.replace("counter:", "counter:\n    deploy: {replicas: 2}"))
    compose("up", "-d")
    compose("run", "-d", "counter", "sleep", "30")
    assert len(compose.names()) == 3
    compose("down", "-v", "--remove-orphans", "-t", "1")
    assert compose.names() == [] and compose.volumes() == [] and compose.networks() == []
    nothing = compose("down")
    assert nothing.stderr == f'Warning: No resource found to remove for project "{compose.name}".\n'


def test_project_by_name_without_a_file(compose_project):
    compose = compose_project
    compose.write(TWO)
    compose("up", "-d")
    elsewhere = compose.directory.parent / "elsewhere"
    elsewhere.mkdir()
    compose.directory, home = elsewhere, compose.directory
    try:
        listed = compose("-p", compose.name, "ps", "--services")
        assert listed.stdout == "a\nb\n"
        compose("-p", compose.name, "down", "-t", "1")
        assert compose.names() == []
    finally:
        compose.directory = home


def test_bad_file_is_reported_and_creates_nothing(compose_project):
    compose = compose_project
    compose.write("""
        services:
          web:
            image: busybox
            portz: ["80"]
        """)
    result = compose("up", "-d", check=False)
    assert result.returncode == 1
    assert result.stderr == (f"{compose.directory}/compose.yaml: services.web.portz: unknown "
                             "key 'portz' (did you mean 'ports'?)\n")
    compose.write("""
        services:
          web: {image: busybox, ports: ["http"]}
          db: {image: busybox, ports: ["8080:80:90:100:x"]}
        """)
    result = compose("up", "-d", check=False)
    assert result.returncode == 1
    # Every problem, one per line, before anything is created.
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] == [
        "services.web.ports[0]", "services.db.ports[0]"]
    assert compose.names() == [] and compose.volumes() == [] and compose.networks() == []


def test_stdin_logs_follow_top_images_ls_pause(compose_project):
    compose = compose_project
    compose.write(f"services:\n  app:\n{service('echo hello-log;')}\n"
                  "  once:\n    image: busybox\n    network_mode: none\n"
                  '    command: ["sh", "-c", "echo first; sleep 1; echo second"]\n')
    compose("up", "-d")
    assert compose("exec", "-T", "app", "cat", input="piped in\n").stdout == "piped in\n"
    assert compose("run", "--rm", "-T", "app", "cat", input="to run\n").stdout == "to run\n"
    # -f follows until the container stops.
    followed = compose("logs", "-f", "once")
    assert followed.stdout == "once-1 | first\nonce-1 | second\n"
    assert compose("logs", "--tail", "1", "once").stdout == "once-1 | second\n"

    top = compose("top", "app").stdout.splitlines()
    assert top[0] == f"{compose.name}-app-1"
    assert top[1].split()[0] == "UID" and any("sleep" in line or "sh" in line
                                               for line in top[2:])
    images = compose("images").stdout.splitlines()
    assert images[0].split() == ["CONTAINER", "REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"]
    assert images[1].split()[:3] == [f"{compose.name}-app-1", "busybox", "latest"]
    listed = compose("ls").stdout.splitlines()
    assert any(line.split()[0] == compose.name and "running(1)" in line for line in listed)

    compose("pause", "app")
    assert compose.inspect(f"{compose.name}-app-1")["State"]["Paused"] is True
    compose("unpause", "app")
    assert compose.inspect(f"{compose.name}-app-1")["State"]["Paused"] is False


def test_secrets_and_up_wait(compose_project):
    compose = compose_project
    (compose.directory / "token.txt").write_text("from-a-file\n")
    compose.write(f"""
services:
  app:
{service()}
    secrets: [token, {{source: key, target: api-key}}]
    healthcheck: {{test: [CMD, test, -f, /run/secrets/api-key], interval: 1s, retries: 10}}
secrets:
  token: {{file: ./token.txt}}
  key: {{environment: API_KEY}}
""")
    result = compose("up", "-d", "--wait", env={"API_KEY": "from-the-environment"})
    assert f" Container {compose.name}-app-1  Healthy" in result.stderr
    read = compose("exec", "-T", "app", "cat", "/run/secrets/token", "/run/secrets/api-key")
    assert read.stdout == "from-a-file\nfrom-the-environment"


@pytest.mark.compat
def test_the_docker_cli_sees_the_project_by_its_labels(compose_project):
    compose = compose_project
    compose.write(TWO)
    compose("up", "-d")
    found = compose.flottad.docker(
        "ps", "-a", "--filter", f"label=com.docker.compose.project={compose.name}",
        "--format", '{{.Names}} {{.Label "com.docker.compose.service"}}')
    assert sorted(found.stdout.splitlines()) == [f"{compose.name}-a-1 a", f"{compose.name}-b-1 b"]
    # A container made by hand with Compose's labels is part of the project for `down`.
    compose.flottad.docker(
        "run", "-d", "--network", "none", "--name", f"{compose.name}-c-1",
        "--label", f"com.docker.compose.project={compose.name}",
        "--label", "com.docker.compose.service=c", "--label", "com.docker.compose.oneoff=False",
        "--label", "com.docker.compose.container-number=1", "busybox", "sleep", "60")
    compose("down", "--remove-orphans", "-t", "1")
    assert compose.names() == []


def test_push_then_pull_through_a_registry(compose_project, registry):
    compose = compose_project
    image = f"{registry}/{compose.name}/app:1"
    (compose.directory / "Dockerfile").write_text("FROM busybox\nCMD [\"echo\", \"pushed\"]\n")
    compose.write(f"""
        services:
          app:
            image: {image}
            build: {{context: ., network: none}}
            network_mode: none
        """)
    compose("build")
    pushed = compose("push")
    assert " app  Pushed" in pushed.stderr
    compose.flottad.api("DELETE", f"/images/{image}")
    assert compose.flottad.api("GET", f"/images/{image}/json").status == 404
    pulled = compose("pull")
    assert " app  Pulled" in pulled.stderr
    assert compose.flottad.api("GET", f"/images/{image}/json").status == 200
    assert compose("up", "--exit-code-from", "app").stdout == (
        "Attaching to app-1\napp-1 | pushed\napp-1 exited with code 0\n"
        "Aborting on container exit...\n")


def test_foreground_follows_restarts(compose_project):
    compose = compose_project
    compose.write("""
        services:
          flaky:
            image: busybox
            network_mode: none
            restart: on-failure:1
            command: ["sh", "-c", "echo run; sleep 1; exit 2"]
        """)
    result = compose("up")
    assert result.returncode == 0
    assert result.stdout == ("Attaching to flaky-1\n"
                             "flaky-1 | run\nflaky-1 exited with code 2\n"
                             "flaky-1 | run\nflaky-1 exited with code 2\n")
