"""Every Dockerfile instruction, executed for real by flottad on busybox."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
from buildexec_helpers import BuildDaemon, Entry, directory, symlink, tar_bytes

pytestmark = [pytest.mark.root]

EVERYTHING = """\
FROM busybox
ARG GREETING=hello
ARG SUFFIX
ENV APP_HOME=/srv/app MODE="two words"
LABEL org.example.name="demo app" version=1
EXPOSE 8080 53/udp
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "$GREETING from shell" > /greeting && echo "build arg: $GREETING$SUFFIX"
RUN ["/bin/sh", "-c", "echo exec form, mode $MODE > /exec-form"]
RUN <<EOF
echo heredoc line one > /heredoc
echo heredoc line two >> /heredoc
EOF
RUN <<SCRIPT
#!/bin/sh
echo "script run by $0" > /script-ran
SCRIPT
WORKDIR $APP_HOME
WORKDIR sub
COPY --chown=www-data:www-data files/ ./files/
COPY *.txt /texts/
COPY --chmod=0750 script.sh /usr/local/bin/script.sh
COPY --chown=33:1 link /links/
ADD archive.tar /unpacked/
ADD archive.tar.gz /unpacked-gz
ADD plain.dat /added/plain.dat
USER www-data
RUN id -u > /tmp/uid && pwd > /tmp/pwd
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD test -f /greeting
ONBUILD RUN echo triggered > /tmp/onbuild-ran
MAINTAINER someone@example.com
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /greeting"]
"""


def everything_context() -> dict[str, str | bytes | Entry]:
    archive = tar_bytes({"inner.txt": b"from the archive\n", "deep/er.txt": b"deeper\n"}, uid=1000, gid=1000)
    return {
        "Dockerfile": EVERYTHING,
        "files/a.conf": "a = 1\n",
        "files/nested/b.conf": "b = 2\n",
        "files/empty": directory(),
        "one.txt": "one\n",
        "two.txt": "two\n",
        "not-a-text.md": "no\n",
        "script.sh": Entry(data=b"#!/bin/sh\necho script\n", mode=0o644),
        "link": symlink("one.txt"),
        "archive.tar": archive,
        "archive.tar.gz": gzip.compress(archive),
        "plain.dat": "plain, not extracted\n",
    }


@pytest.fixture(scope="module")
def everything(build_daemon: BuildDaemon) -> tuple[BuildDaemon, str]:
    built = build_daemon.build(
        everything_context(),
        {"t": "every:1", "buildargs": {"GREETING": "bonjour", "NOT_USED": "x"}},
    )
    assert "build arg: bonjour\n" in built.text
    assert "[Warning] One or more build-args [NOT_USED] were not consumed\n" in built.text
    assert "Successfully tagged every:1\n" in built.text
    return build_daemon, built.image_id


def test_the_config_has_every_instructions_effect(everything: tuple[BuildDaemon, str]) -> None:
    daemon, image_id = everything
    inspected = daemon.inspect("every:1")
    assert inspected["Id"] == image_id
    config = inspected["Config"]
    assert "APP_HOME=/srv/app" in config["Env"] and "MODE=two words" in config["Env"]
    assert config["Labels"] == {"org.example.name": "demo app", "version": "1"}
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert config["WorkingDir"] == "/srv/app/sub"
    assert config["User"] == "www-data"
    assert set(config["Volumes"]) == {"/data", "/cache"}
    assert config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /greeting"], "Interval": 5_000_000_000, "Retries": 2}
    assert config["OnBuild"] == ["RUN echo triggered > /tmp/onbuild-ran"]
    assert config["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["Cmd"] == ["cat /greeting"]
    assert config["Shell"] == ["/bin/sh", "-e", "-c"]
    assert inspected["Author"] == "someone@example.com"


def test_history_records_each_step_as_the_classic_builder(everything: tuple[BuildDaemon, str]) -> None:
    daemon, _ = everything
    history = daemon.flottad.api("GET", "/images/every:1/history").json()
    created_by = [entry["CreatedBy"] for entry in reversed(history)]
    assert "/bin/sh -c #(nop)  ENV APP_HOME=/srv/app MODE=two words" in created_by
    run = next(text for text in created_by if "from shell" in text)
    assert run.startswith("|1 GREETING=bonjour /bin/sh -e -c ")
    assert "/bin/sh -e -c #(nop) WORKDIR /srv/app/sub" in created_by
    copies = [text for text in created_by if "#(nop) COPY" in text]
    assert copies[0].startswith("/bin/sh -e -c #(nop) COPY --chown=www-data:www-data dir:")
    assert any(" --chmod=0750 file:" in text for text in copies)
    # Metadata steps add no layer: only RUN/COPY/ADD/WORKDIR that changed files do.
    layered = [entry for entry in history if entry["Size"] > 0]
    assert len(daemon.inspect("every:1")["RootFS"]["Layers"]) <= len(created_by)
    assert layered


def test_the_filesystem_holds_what_the_steps_made(everything: tuple[BuildDaemon, str]) -> None:
    daemon, _ = everything
    script = (
        "cat /greeting /exec-form /heredoc /script-ran; "
        "cd /srv/app/sub/files; find . | sort; stat -c '%u:%g %n' a.conf nested/b.conf; "
        "ls /texts; stat -c '%a %u:%g' /usr/local/bin/script.sh; "
        "cat /links/link; stat -c '%u:%g %F' /links/link; "
        "cat /unpacked/inner.txt /unpacked/deep/er.txt /unpacked-gz/inner.txt; "
        "stat -c '%u:%g' /unpacked/inner.txt; cat /added/plain.dat; "
        "cat /tmp/uid /tmp/pwd"
    )
    assert daemon.output_of("every:1", script) == (
        "bonjour from shell\n"
        "exec form, mode two words\n"
        "heredoc line one\nheredoc line two\n"
        "script run by /dev/pipes/SCRIPT\n"
        ".\n./a.conf\n./empty\n./nested\n./nested/b.conf\n"
        "33:33 a.conf\n33:33 nested/b.conf\n"
        "one.txt\ntwo.txt\n"
        "750 0:0\n"
        "one\n33:1 regular file\n"
        "from the archive\ndeeper\nfrom the archive\n"
        "1000:1000\n"
        "plain, not extracted\n"
        "33\n/srv/app/sub\n"
    )


def test_onbuild_triggers_run_in_the_child_build(everything: tuple[BuildDaemon, str]) -> None:
    daemon, _ = everything
    child = daemon.build({"Dockerfile": "FROM every:1\nUSER root\nRUN cat /tmp/onbuild-ran\n"}, {"t": "every-child:1"})
    assert "# Executing 1 build trigger\n" in child.text
    assert "triggered\n" in child.text
    # The trigger fired once: the child's own config no longer carries it.
    assert daemon.inspect("every-child:1")["Config"]["OnBuild"] is None


def test_a_run_that_changes_nothing_adds_no_layer(daemon: BuildDaemon) -> None:
    built = daemon.build({"Dockerfile": "FROM busybox\nRUN true\nRUN echo x > /x\nENV A=b\n"}, {"t": "layers:1"})
    busybox = daemon.inspect("busybox")["RootFS"]["Layers"]
    layers = daemon.inspect("layers:1")["RootFS"]["Layers"]
    assert layers[: len(busybox)] == busybox and len(layers) == len(busybox) + 1
    history = daemon.flottad.api("GET", f"/images/{built.image_id}/history").json()
    assert [entry["CreatedBy"] for entry in history[:3]] == [
        "/bin/sh -c #(nop)  ENV A=b", "/bin/sh -c echo x > /x", "/bin/sh -c true",
    ]


def test_a_run_layer_holds_no_runtime_mountpoints(daemon: BuildDaemon) -> None:
    """The runtime bind-mounts /etc/hosts and mounts /proc, /dev, /sys: none of it may end
    up in the layer, even where the image lacked those paths (a scratch image)."""
    dockerfile = (
        "FROM busybox AS tools\n"
        "FROM scratch\n"
        "COPY --from=tools /bin/busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /made"]\n'
    )
    built = daemon.build({"Dockerfile": dockerfile}, {"t": "nomounts:1"})
    saved = daemon.flottad.api("GET", "/images/nomounts:1/get")
    assert saved.status == 200
    with tarfile.open(fileobj=io.BytesIO(saved.body)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = manifest[0]["Layers"]
        assert len(layers) == 2
        with tarfile.open(fileobj=archive.extractfile(layers[1])) as layer:  # type: ignore[arg-type]
            names = sorted(member.name.rstrip("/") for member in layer.getmembers())
    assert names == ["made"], built.text


def test_scratch_image_from_the_static_busybox_runs(daemon: BuildDaemon) -> None:
    dockerfile = (
        "FROM busybox AS tools\n"
        "FROM scratch\n"
        "COPY --from=tools /bin/busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /etc && /bin/busybox echo made in scratch > /etc/motd"]\n'
        'CMD ["/bin/busybox", "cat", "/etc/motd"]\n'
    )
    built = daemon.build({"Dockerfile": dockerfile}, {"t": "scratchy:1"})
    assert "Step 2/5 : FROM scratch\n ---> \n" in built.text
    inspected = daemon.inspect("scratchy:1")
    assert len(inspected["RootFS"]["Layers"]) == 2
    check = daemon.build({"Dockerfile": 'FROM scratchy:1\nRUN ["/bin/busybox", "cat", "/etc/motd"]\n'}, {"nocache": "1"})
    assert "made in scratch\n" in check.text


def test_dockerignore_leaves_files_out(daemon: BuildDaemon) -> None:
    files = {
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . | sort\n",
        ".dockerignore": "*.log\nsecret\n!secret/keep.txt\n**/*.tmp\n",
        "app.log": "log\n",
        "main.txt": "main\n",
        "secret/key": "k\n",
        "secret/keep.txt": "kept\n",
        "deep/x.tmp": "t\n",
        "deep/y.txt": "y\n",
    }
    built = daemon.build(files)
    listing = built.text.split(" ---> Running in ")[1].split("\n", 1)[1].split("Removing")[0]
    assert listing == (
        ".\n./.dockerignore\n./Dockerfile\n./deep\n./deep/y.txt\n./main.txt\n"
        "./secret\n./secret/keep.txt\n"
    )
    refused = daemon.build({**files, "Dockerfile": "FROM busybox\nCOPY app.log /\n"}, ok=False)
    assert refused.error == (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat app.log: file does not exist"
    )


def test_multi_stage_copy_from_and_target(daemon: BuildDaemon) -> None:
    dockerfile = (
        "FROM busybox AS build\n"
        "RUN mkdir -p /out && echo compiled > /out/app && echo second > /out/other\n"
        "FROM busybox AS unused\n"
        "RUN echo this stage must not run && exit 1\n"
        "FROM busybox\n"
        "COPY --from=build /out/app /app\n"
        "COPY --from=0 /out/other /other\n"
        "COPY --from=busybox /bin/busybox /copied-busybox\n"
        'CMD ["cat", "/app"]\n'
    )
    built = daemon.build({"Dockerfile": dockerfile}, {"t": "multi:1"})
    assert "this stage must not run" not in built.text
    aux = [message for message in built.messages if "aux" in message]
    assert len(aux) == 2  # one per stage built: "build" and the last
    assert daemon.output_of("multi:1", "cat /app /other; cmp /copied-busybox /bin/busybox && echo same") == (
        "compiled\nsecond\nsame\n"
    )
    target = daemon.build({"Dockerfile": dockerfile}, {"t": "multi-build:1", "target": "build"})
    assert target.cache_hits == 1
    assert daemon.inspect("multi-build:1")["Id"] == aux[0]["aux"]["ID"]
    assert daemon.output_of("multi-build:1", "cat /out/app") == "compiled\n"
    unknown = daemon.build({"Dockerfile": dockerfile}, {"target": "nope"}, ok=False)
    assert unknown.status == 400 and "nope" in (unknown.error or "")


def test_add_from_a_url_on_loopback(daemon: BuildDaemon, tmp_path: object) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"downloaded content\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *arguments: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        dockerfile = f"FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /fetched/\n"
        built = daemon.build({"Dockerfile": dockerfile}, {"t": "fetched:1"})
    finally:
        server.shutdown()
        server.server_close()
    assert daemon.output_of("fetched:1", "cat /fetched/remote.txt; stat -c %a /fetched/remote.txt") == (
        "downloaded content\n600\n"
    )
    assert built.image_id
