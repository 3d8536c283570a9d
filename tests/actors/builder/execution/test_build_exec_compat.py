"""Clients building against flottad: the docker CLI's classic builder, docker-py, flotta."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import docker
import docker.errors
import pytest
from buildexec_helpers import BuildDaemon, context_tar

pytestmark = [pytest.mark.root, pytest.mark.compat]

DOCKERFILE = """\
FROM busybox
ARG WHO=world
COPY greeting.txt /srv/greeting.txt
RUN echo "hello $WHO" > /srv/hello.txt
WORKDIR /srv
ENTRYPOINT ["cat"]
CMD ["hello.txt", "greeting.txt"]
"""


def write_context(directory: Path, greeting: str = "from the context\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "greeting.txt").write_text(greeting)
    (directory / ".dockerignore").write_text("ignored.txt\n")
    (directory / "ignored.txt").write_text("not sent\n")
    return directory


def test_docker_cli_classic_build(daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx")
    iidfile = tmp_path / "iid"
    result = daemon.flottad.docker(
        "build", "--network", "none", "-t", "cli-built:1", "--build-arg", "WHO=docker", "--iidfile", str(iidfile), str(context)
    )
    assert "DEPRECATED: The legacy builder is deprecated" in result.stderr
    assert "Step 1/7 : FROM busybox\n" in result.stdout
    assert " ---> Running in " in result.stdout
    assert "Successfully tagged cli-built:1\n" in result.stdout
    image_id = iidfile.read_text().strip()
    assert f"Successfully built {image_id[7:19]}\n" in result.stdout
    assert daemon.inspect("cli-built:1")["Id"] == image_id
    again = daemon.flottad.docker("build", "--network", "none", "-t", "cli-built:1", "--build-arg", "WHO=docker", str(context))
    assert again.stdout.count(" ---> Using cache\n") == 6
    assert daemon.output_of("cli-built:1", "cat /srv/hello.txt /srv/greeting.txt") == "hello docker\nfrom the context\n"
    images = daemon.flottad.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert f"cli-built:1 {image_id[7:19]}" in images


def test_docker_cli_reports_a_failed_run_with_its_exit_code(daemon: BuildDaemon, tmp_path: Path) -> None:
    context = tmp_path / "failing"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo about to fail; exit 7\n")
    result = daemon.flottad.docker("build", "--network", "none", str(context), check=False)
    assert result.returncode == 7
    assert "about to fail" in result.stdout
    assert "The command '/bin/sh -c echo about to fail; exit 7' returned a non-zero code: 7" in result.stderr
    syntax = tmp_path / "syntax"
    syntax.mkdir()
    (syntax / "Dockerfile").write_text("FROM busybox\nCOPY\n")
    refused = daemon.flottad.docker("build", str(syntax), check=False)
    assert refused.returncode == 1
    assert "Error response from daemon: dockerfile parse error on line 2" in refused.stderr


def test_docker_cli_context_and_dockerfile_on_stdin(daemon: BuildDaemon) -> None:
    tar = context_tar({"Dockerfile": "FROM busybox\nCOPY file.txt /\nRUN cat /file.txt\n", "file.txt": "from a piped tar\n"}, pax=False)
    piped = daemon.flottad.docker("build", "--network", "none", "-t", "piped:1", "-", input=tar.decode("ascii"))
    assert "from a piped tar\n" in piped.stdout
    bare = daemon.flottad.docker("build", "--network", "none", "-t", "bare:1", "-", input="FROM busybox\nRUN echo bare dockerfile\n")
    assert "bare dockerfile\n" in bare.stdout
    assert daemon.inspect("bare:1")["Id"]


def test_flotta_build(daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", greeting="via flotta\n")
    result = daemon.flottad.cli("build", "--network", "none", "-t", "flotta-built:1", "--build-arg", "WHO=flotta", str(context))
    assert "Successfully tagged flotta-built:1" in result.stdout
    assert daemon.output_of("flotta-built:1", "cat /srv/hello.txt /srv/greeting.txt") == "hello flotta\nvia flotta\n"
    quiet = daemon.flottad.cli("build", "--network", "none", "-q", "--build-arg", "WHO=flotta", str(context))
    assert quiet.stdout.strip() == daemon.inspect("flotta-built:1")["Id"]
    tar = context_tar({"Dockerfile": "FROM busybox\nRUN echo stdin context\n"})
    piped = daemon.flottad.cli("build", "--network", "none", "-t", "flotta-stdin:1", "-", input=tar)
    assert "stdin context" in piped.stdout


def test_docker_py_images_build(daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", greeting="via docker-py\n")
    client = docker.DockerClient(base_url=daemon.flottad.host, timeout=300)
    try:
        image, logs = client.images.build(path=str(context), tag="py-built:1", buildargs={"WHO": "python"}, network_mode="none")
        lines = list(logs)
        assert image.id == daemon.inspect("py-built:1")["Id"]
        assert "py-built:1" in image.tags
        assert any("Successfully built" in line.get("stream", "") for line in lines)
        assert image.attrs["Config"]["Entrypoint"] == ["cat"]
        with pytest.raises(docker.errors.BuildError) as failure:
            client.images.build(fileobj=_dockerfile("FROM busybox\nRUN exit 5\n"), tag="py-fail:1", network_mode="none")
        assert "returned a non-zero code: 5" in str(failure.value)
        with pytest.raises(docker.errors.APIError) as refused:
            client.images.build(fileobj=_dockerfile("FROM busybox\nRUNX\n"))
        assert "dockerfile parse error on line 2" in str(refused.value)
    finally:
        client.close()
        # docker-py leaves the response of a build that raised unclosed: collect it here,
        # where its ResourceWarning is docker-py's, not ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def _dockerfile(text: str):
    import io

    return io.BytesIO(text.encode())


def test_docker_run_of_the_built_image_prints_what_the_dockerfile_made(daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", greeting="run me\n")
    daemon.flottad.docker("build", "--network", "none", "-t", "runnable:1", "--build-arg", "WHO=runner", str(context))
    result = daemon.flottad.docker("run", "--rm", "--network", "none", "runnable:1")
    assert result.stdout == "hello runner\nrun me\n"
    override = daemon.flottad.docker("run", "--rm", "--network", "none", "--entrypoint", "pwd", "runnable:1")
    assert override.stdout == "/srv\n"


def test_docker_py_streams_a_build_with_the_low_level_api(daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx")
    client = docker.APIClient(base_url=daemon.flottad.host, timeout=300)
    try:
        chunks = list(client.build(path=str(context), tag="lowlevel:1", decode=True, buildargs={"WHO": "api"}, rm=True, forcerm=True, pull=False, nocache=True, network_mode="none"))
    finally:
        client.close()
    streams = "".join(chunk.get("stream", "") for chunk in chunks)
    assert "Successfully tagged lowlevel:1\n" in streams
    assert "Using cache" not in streams
    assert streams.count("Removing intermediate container") == 1
