"""`POST /build` as clients see it: the stream, errors, parameters, and what a failed or
abandoned build leaves behind (nothing)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import socket
import threading
import time

import pytest
from buildexec_helpers import BuildDaemon, BuildOutput, context_tar

pytestmark = [pytest.mark.root]


def test_the_stream_has_the_classic_builders_lines(daemon: BuildDaemon) -> None:
    built = daemon.build(
        {"Dockerfile": "FROM busybox\nRUN echo out && echo err >&2\nENV A=1\n"},
        {"t": ["stream:1", "stream:2"]},
    )
    busybox = daemon.inspect("busybox")["Id"][7:19]
    container = built.containers[0]
    final = built.image_id[7:19]
    streams = [message.get("stream") for message in built.messages]
    assert streams[:4] == ["Step 1/3 : FROM busybox\n", f" ---> {busybox}\n", "Step 2/3 : RUN echo out && echo err >&2\n", f" ---> Running in {container}\n"]
    assert "out\n" in streams and "\x1b[91merr\n\x1b[0m" in streams
    assert streams[-3:] == [f"Successfully built {final}\n", "Successfully tagged stream:1\n", "Successfully tagged stream:2\n"]
    assert {"aux": {"ID": built.image_id}} in built.messages
    assert f"Removing intermediate container {container}\n" in streams
    assert daemon.inspect("stream:2")["Id"] == built.image_id


def test_without_rm_the_removal_lines_are_left_out(daemon: BuildDaemon) -> None:
    built = daemon.build({"Dockerfile": "FROM busybox\nRUN echo kept quiet\n"}, {"rm": "0", "nocache": "1"})
    assert "kept quiet\n" in built.text
    assert "Removing intermediate container" not in built.text
    # The container is removed all the same (the fixture checks): nothing could reach it.


def test_an_unknown_user_fails_the_run_step(daemon: BuildDaemon) -> None:
    failed = daemon.build({"Dockerfile": "FROM busybox\nUSER nobody-here\nRUN true\n"}, ok=False)
    assert failed.status == 200
    assert failed.error == "unable to find user nobody-here: no matching entries in passwd file"


def test_quiet_sends_only_the_image_id(daemon: BuildDaemon) -> None:
    built = daemon.build({"Dockerfile": "FROM busybox\nRUN echo hidden\n"}, {"q": "1", "nocache": "1"})
    assert len(built.messages) == 1
    image_id = built.messages[0]["stream"].strip()
    assert image_id.startswith("sha256:") and image_id in daemon.image_ids()
    failed = daemon.build({"Dockerfile": "FROM busybox\nRUN echo shown && false\n"}, {"q": "true"}, ok=False)
    assert "shown\n" in failed.text
    assert failed.error == "The command '/bin/sh -c echo shown && false' returned a non-zero code: 1"


def test_a_failing_run_reports_its_exit_code_and_leaves_nothing(daemon: BuildDaemon) -> None:
    images_before = daemon.image_ids()
    failed = daemon.build({"Dockerfile": "FROM busybox\nRUN echo doing && exit 3\nRUN echo never\n"}, {"t": "failing:1"}, ok=False)
    assert failed.status == 200
    assert failed.error == "The command '/bin/sh -c echo doing && exit 3' returned a non-zero code: 3"
    assert failed.error_code == 3
    assert failed.messages[-1] == {
        "errorDetail": {"code": 3, "message": failed.error}, "error": failed.error,
    }
    assert "doing\n" in failed.text and "never" not in failed.text
    assert "Removing intermediate container" not in failed.text
    assert daemon.image_ids() == images_before
    assert daemon.flottad.api("GET", "/images/failing:1/json").status == 404
    # (the fixture checks no container, mount, hold marker or temporary file remains)
    forced = daemon.build({"Dockerfile": "FROM busybox\nRUN exit 4\n"}, {"forcerm": "1"}, ok=False)
    assert forced.error_code == 4
    assert f"Removing intermediate container {forced.containers[0]}\n" in forced.text


def test_a_command_that_cannot_start(daemon: BuildDaemon) -> None:
    failed = daemon.build({"Dockerfile": 'FROM busybox\nRUN ["/no/such/binary"]\n'}, ok=False)
    assert failed.status == 200 and failed.error_code == 127
    assert "/no/such/binary" in (failed.error or "")


def test_dockerfile_errors_are_http_errors_naming_the_line(daemon: BuildDaemon) -> None:
    images_before = daemon.image_ids()
    bad = daemon.build({"Dockerfile": "FROM busybox\n\nRUNN echo\n"}, ok=False)
    assert bad.status == 400
    assert bad.error == "dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)"
    missing = daemon.build({"Other": "FROM busybox\n"}, ok=False)
    assert missing.status == 400
    assert "Cannot locate specified Dockerfile: Dockerfile" in (missing.error or "")
    empty = daemon.build({"Dockerfile": "# only a comment\n"}, ok=False)
    assert empty.status == 400
    assert daemon.image_ids() == images_before


def test_a_base_image_that_cannot_be_found_or_pulled_fails_in_band(daemon: BuildDaemon) -> None:
    # A registry on a loopback port nobody listens on: the pull fails at once.
    failed = daemon.build({"Dockerfile": "FROM 127.0.0.1:9/no-such-image:1\nRUN true\n"}, ok=False)
    assert failed.status == 200
    assert failed.text == "Step 1/2 : FROM 127.0.0.1:9/no-such-image:1\n"
    assert "127.0.0.1:9" in (failed.error or "")
    assert failed.error_code == 1


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, None], ids=["gzip", "bzip2", "xz", "bare"])
def test_compressed_contexts_and_a_bare_dockerfile(daemon: BuildDaemon, compress) -> None:
    dockerfile = b"FROM busybox\nRUN echo from the body\n"
    body = dockerfile if compress is None else compress(context_tar({"Dockerfile": dockerfile}))
    response = daemon.build_raw(body, {"nocache": "1"})
    output = BuildOutput(response.status, response.lines(), response.body)
    assert output.error is None, output.text
    assert "from the body\n" in output.text


def test_another_dockerfile_name_and_a_corrupt_context(daemon: BuildDaemon) -> None:
    built = daemon.build({"build/Custom.dockerfile": "FROM busybox\nLABEL custom=yes\n"}, {"dockerfile": "build/Custom.dockerfile", "t": "custom:1"})
    assert daemon.inspect("custom:1")["Config"]["Labels"] == {"custom": "yes"}
    assert built.image_id
    corrupt = daemon.build_raw(gzip.compress(b"not a tar at all")[:20])
    assert corrupt.status == 400
    assert "failed to read the build context" in corrupt.json()["message"]


def test_empty_and_zero_parameters_are_tolerated(daemon: BuildDaemon) -> None:
    query = (
        "t=tolerant:1&cachefrom=%5B%5D&buildargs=%7B%7D&labels=%7B%7D&ulimits=null&networkmode=none"
        "&memory=0&memswap=0&cpushares=0&cpusetcpus=&cpuperiod=0&cpuquota=0&shmsize=0&rm=1&forcerm=0"
        "&pull=&q=0&nocache=False&target=&platform=&extrahosts=&isolation=&session=&buildid=x&version=1"
    )
    response = daemon.build_raw(context_tar({"Dockerfile": "FROM busybox\nRUN true\n"}), query)
    output = BuildOutput(response.status, response.lines() if response.status == 200 else [], response.body)
    assert output.error is None, output.body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("buildargs=%5B1%5D", "invalid buildargs"),
        ("t=Upper:case", "invalid tag 'Upper:case'"),
        ("version=2", "BuildKit (version=2) is not supported"),
        ("networkmode=container:abc", "network mode 'container:abc' is not supported"),
        ("remote=https://example.com/x.git", "remote build contexts are not supported"),
        ("memory=lots", "invalid value for memory"),
        ("platform=linux/s390x", "platform linux/s390x is not supported"),
    ],
)
def test_unusable_parameters_are_refused_before_building(daemon: BuildDaemon, query: str, message: str) -> None:
    response = daemon.build_raw(context_tar({"Dockerfile": "FROM busybox\n"}), query)
    assert response.status == 400
    assert message in response.json()["message"]


def test_labels_extra_hosts_and_no_network(daemon: BuildDaemon) -> None:
    built = daemon.build(
        {"Dockerfile": "FROM busybox\nRUN cat /etc/hosts; ls /sys/class/net\n"},
        {"t": "labelled:1", "nocache": "1", "labels": {"team": "build"}, "extrahosts": ["db:10.1.2.3"], "networkmode": "none"},
    )
    assert "10.1.2.3\tdb\n" in built.text
    assert "127.0.0.1\tlocalhost\n" in built.text
    assert "lo\n" in built.text and "eth0" not in built.text
    assert daemon.inspect("labelled:1")["Config"]["Labels"] == {"team": "build"}


def test_a_client_that_goes_away_cancels_the_build(daemon: BuildDaemon) -> None:
    body = context_tar({"Dockerfile": "FROM busybox\nRUN echo started && sleep 600\n"})
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(daemon.flottad.socket))
        head = (
            "POST /build?nocache=1&networkmode=none HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        connection.sendall(head + body)
        received = b""
        while b'{"stream":"started\\n"}' not in received:
            chunk = connection.recv(65536)
            assert chunk, received
            received += chunk
        containers = daemon.data_root / "builder" / "containers"
        assert [name for name in containers.iterdir() if not name.name.startswith(".")]
    finally:
        connection.close()
    deadline = time.monotonic() + 60
    while daemon.builder_leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.builder_leftovers() == {}


def test_builds_run_side_by_side(daemon: BuildDaemon) -> None:
    results: dict[int, BuildOutput] = {}

    def build(index: int) -> None:
        results[index] = daemon.build(
            {"Dockerfile": f"FROM busybox\nRUN echo parallel {index} > /which\nCMD [\"cat\", \"/which\"]\n"},
            {"nocache": "1", "t": f"parallel:{index}"},
        )

    threads = [threading.Thread(target=build, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1, 2]
    for index, built in results.items():
        assert daemon.output_of(f"parallel:{index}", "cat /which") == f"parallel {index}\n"
        assert built.image_id


def test_build_prune_forgets_the_cache(daemon: BuildDaemon) -> None:
    files = {"Dockerfile": "FROM busybox\nRUN echo prune-me\n"}
    daemon.build(files)
    assert daemon.build(files).cache_hits == 1
    pruned = daemon.flottad.api("POST", "/build/prune")
    assert pruned.status == 200 and json.loads(pruned.body) == {"CachesDeleted": [], "SpaceReclaimed": 0}
    assert daemon.build(files).cache_hits == 0
