"""Images and volumes through flottad, with the real docker CLI, docker-py and flotta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import Flottad

pytestmark = [pytest.mark.root, pytest.mark.compat]


def test_ping_version_and_errors_speak_dockers_dialect(flottad: Flottad) -> None:
    ping = flottad.api("GET", "/_ping")
    assert ping.status == 200 and ping.body == b"OK"
    assert ping.headers["Api-Version"] == "1.45"
    assert ping.headers["Builder-Version"] == "1"
    head = flottad.api("HEAD", "/_ping")
    assert head.status == 200 and head.body == b""
    assert flottad.api("GET", "/v1.45/version").json()["ApiVersion"] == "1.45"
    too_new = flottad.api("GET", "/v1.99/version")
    assert too_new.status == 400
    assert too_new.json() == {"message": "client version 1.99 is too new. Maximum supported API version is 1.45"}
    missing = flottad.api("GET", "/v1.45/nothing/here")
    assert missing.status == 404 and missing.json() == {"message": "page not found"}
    assert missing.headers["Content-Type"] == "application/json"
    version = flottad.docker("version", "--format", "{{.Server.APIVersion}}")
    assert version.stdout.strip() == "1.45"


def test_bootstrap_images_inspect_history(flottad: Flottad, busybox: str) -> None:
    listing = flottad.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert f"busybox:latest {busybox[7:19]}" in listing.stdout
    inspect = json.loads(flottad.docker("image", "inspect", "busybox").stdout)[0]
    assert inspect["Id"] == busybox
    assert inspect["Config"]["Cmd"] == ["sh"]
    assert inspect["RootFS"]["Type"] == "layers"
    history = flottad.docker("history", "--format", "{{.CreatedBy}}", "busybox").stdout
    assert "CMD" in history
    assert flottad.docker("image", "inspect", "nope", check=False).returncode == 1


def test_tag_and_rmi_follow_dockers_rules(flottad: Flottad, busybox: str) -> None:
    flottad.docker("tag", "busybox", "mine:1")
    flottad.docker("tag", "busybox", "mine:2")
    conflict = flottad.docker("rmi", busybox[7:19], check=False)
    assert conflict.returncode == 1
    assert "image is referenced in multiple repositories" in conflict.stderr
    untagged = flottad.docker("rmi", "mine:1").stdout
    assert "Untagged: mine:1" in untagged and "Deleted" not in untagged
    flottad.docker("rmi", "mine:2")
    missing = flottad.docker("rmi", "mine:3", check=False)
    assert "No such image: mine:3" in missing.stderr


def test_save_and_load_round_trip_with_the_docker_cli(flottad: Flottad, busybox: str, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    flottad.docker("tag", "busybox", "saved:latest")
    flottad.docker("save", "-o", str(archive), "saved:latest")
    flottad.docker("rmi", "saved:latest")
    loaded = flottad.docker("load", "-i", str(archive))
    assert "Loaded image: saved:latest" in loaded.stdout
    assert json.loads(flottad.docker("image", "inspect", "saved").stdout)[0]["Id"] == busybox
    corrupt = tmp_path / "corrupt.tar"
    corrupt.write_bytes(archive.read_bytes()[:5000])
    failed = flottad.docker("load", "-i", str(corrupt), check=False)
    assert failed.returncode != 0


def test_push_and_pull_through_the_built_in_registry(flottad: Flottad, busybox: str, registry: str) -> None:
    target = f"{registry}/tour/busybox:1"
    flottad.docker("tag", "busybox", target)
    pushed = flottad.docker("push", target).stdout
    assert "Pushed" in pushed and "digest: sha256:" in pushed
    flottad.docker("rmi", target)
    pulled = flottad.docker("pull", target).stdout
    assert "Digest: sha256:" in pulled
    assert f"Status: Downloaded newer image for {target}" in pulled
    again = flottad.docker("pull", target).stdout
    assert "Image is up to date" in again
    missing = flottad.docker("pull", f"{registry}/tour/absent:1", check=False)
    assert missing.returncode == 1 and "Error response from daemon" in missing.stderr


def test_docker_py_sees_the_same_images(flottad: Flottad, busybox: str) -> None:
    import docker

    client = docker.DockerClient(base_url=flottad.host)
    try:
        tags = {tag for image in client.images.list() for tag in image.tags}
        assert "busybox:latest" in tags
        assert client.images.get("busybox").id == busybox
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("does-not-exist")
    finally:
        client.close()


def test_volumes_with_the_docker_cli(flottad: Flottad) -> None:
    flottad.docker("volume", "create", "--label", "team=a", "data1")
    listing = flottad.docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}").stdout
    assert "local data1" in listing
    inspect = json.loads(flottad.docker("volume", "inspect", "data1").stdout)[0]
    assert inspect["Labels"] == {"team": "a"} and inspect["Mountpoint"].endswith("/data1/_data")
    assert "data1" in flottad.docker("volume", "ls", "-f", "label=team=a", "-q").stdout
    flottad.docker("volume", "rm", "data1")
    missing = flottad.docker("volume", "rm", "data1", check=False)
    assert "no such volume" in missing.stderr


def test_events_are_streamed_with_filters(flottad: Flottad, busybox: str) -> None:
    import time

    since = time.time()
    flottad.docker("tag", "busybox", "evented:1")
    flottad.docker("rmi", "evented:1")
    until = time.time() + 1
    from urllib.parse import quote

    response = flottad.api("GET", f"/events?since={since}&until={until}&filters=" + quote(json.dumps({"type": ["image"]})))
    actions = [event["Action"] for event in response.lines()]
    assert actions[:2] == ["tag", "untag"]
