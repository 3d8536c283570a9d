"""docker-py 7 against flottad: containers.run/list/logs/exec_run/wait/attach/remove."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.actors.daemon.flottad_fixture import wait_for
from tests.harness import Flottad

pytestmark = [
    pytest.mark.root,
    pytest.mark.compat,
    # docker-py leaves the sockets of its attach/exec/log streams for the garbage collector.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def client(flottad: Flottad) -> Iterator[docker.DockerClient]:
    connection = docker.DockerClient(base_url=flottad.host)
    try:
        yield connection
    finally:
        connection.close()
        # docker-py leaves its stream sockets to the garbage collector: collect them here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.fixture(scope="module")
def net(flottad: Flottad) -> dict[str, Any]:
    return {"network_mode": "none"}  # see flottad_fixture.network_arguments


def test_version_and_images(client: docker.DockerClient) -> None:
    assert client.version()["ApiVersion"] == "1.45"
    assert any("busybox:latest" in image.tags for image in client.images.list())


def test_run_in_the_foreground(client: docker.DockerClient, net: dict[str, Any]) -> None:
    output = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, **net)
    assert output == b"out\n"
    both = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stderr=True, **net)
    assert sorted(both.splitlines()) == [b"err", b"out"]
    with pytest.raises(docker.errors.ContainerError) as caught:
        client.containers.run("busybox", ["sh", "-c", "echo broken >&2; exit 3"], remove=True, **net)
    assert caught.value.exit_status == 3 and b"broken" in caught.value.stderr
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("no-such-image-here", ["true"], **net)


def test_detached_container(client: docker.DockerClient, net: dict[str, Any]) -> None:
    container = client.containers.run(
        "busybox", ["sh", "-c", "echo hello; exec sleep 1000"], detach=True, name="py-detached",
        labels={"suite": "py"}, **net,
    )  # fmt: skip
    assert container.status in ("created", "running")
    listed = client.containers.list(filters={"label": "suite=py"})
    assert [item.name for item in listed] == ["py-detached"]
    assert listed[0].attrs["State"]["Status"] == "running"
    wait_for(lambda: container.logs() == b"hello\n")
    result = container.exec_run(["sh", "-c", "echo from exec; exit 2"])
    assert (result.exit_code, result.output) == (2, b"from exec\n")
    streamed = container.exec_run(["sh", "-c", "echo a; echo b"], stream=True)
    assert b"".join(streamed.output) == b"a\nb\n"
    container.kill()
    assert container.wait() == {"StatusCode": 137, "Error": None}
    container.reload()
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 137
    container.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("py-detached")


def test_attach_and_wait(client: docker.DockerClient, net: dict[str, Any]) -> None:
    container = client.containers.create("busybox", ["sh", "-c", "echo one; sleep 0.2; echo two"], **net)
    stream = container.attach(stream=True, logs=True)
    container.start()
    assert b"".join(stream) == b"one\ntwo\n"
    assert container.wait(condition="not-running")["StatusCode"] == 0
    container.remove(v=True)


def test_stop_and_prune(client: docker.DockerClient, net: dict[str, Any]) -> None:
    container = client.containers.run("busybox", ["sleep", "1000"], detach=True, **net)
    container.stop(timeout=1)  # sleep as pid 1 ignores SIGTERM: SIGKILL after 1 s
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 137
    pruned = client.containers.prune()
    assert container.id in pruned["ContainersDeleted"]
