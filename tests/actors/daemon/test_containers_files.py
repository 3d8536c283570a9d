"""A container's files and mounts through the API: docker cp (archive), export, commit,
changes, volumes, binds, tmpfs, read-only roots, /etc files and network modes."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.actors.daemon.flottad_fixture import create, inspect
from tests.actors.daemon.streams_client import demultiplex
from tests.harness import Flottad

pytestmark = pytest.mark.root


def run(flottad: Flottad, body: dict, name: str = "") -> tuple[str, int, bytes, bytes]:
    container = create(flottad, body, name)
    flottad.api("POST", f"/containers/{container}/start")
    code = flottad.api("POST", f"/containers/{container}/wait").json()["StatusCode"]
    out, err = demultiplex(flottad.api("GET", f"/containers/{container}/logs?stdout=1&stderr=1").body)
    return container, code, out, err


def remove(flottad: Flottad, container: str) -> None:
    assert flottad.api("DELETE", f"/containers/{container}?force=1&v=1").status == 204


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def read_tar(data: bytes) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            extracted = archive.extractfile(member) if member.isfile() else None
            found[member.name] = extracted.read() if extracted else None
    return found


def stat_of(response: object) -> dict:
    headers = response.headers  # type: ignore[attr-defined]
    return json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))


@pytest.mark.parametrize("running", [True, False])
def test_copy_in_and_out(flottad: Flottad, running: bool) -> None:
    container = create(flottad, {"Cmd": ["sleep", "1000"]})
    if running:
        flottad.api("POST", f"/containers/{container}/start")
    put = flottad.api("PUT", f"/containers/{container}/archive?path=/tmp", tar_of({"dir/hello.txt": b"hello cp\n"}),
                      headers={"Content-Type": "application/x-tar"})
    assert put.status == 200, put.body
    head = flottad.api("HEAD", f"/containers/{container}/archive?path=/tmp/dir")
    assert head.status == 200
    stat = stat_of(head)
    assert stat["name"] == "dir" and stat["mode"] & (1 << 31)  # Go's ModeDir
    got = flottad.api("GET", f"/containers/{container}/archive?path=/tmp/dir")
    assert got.status == 200 and got.headers["Content-Type"] == "application/x-tar"
    assert read_tar(got.body)["dir/hello.txt"] == b"hello cp\n"
    missing = flottad.api("GET", f"/containers/{container}/archive?path=/nope")
    assert missing.status == 404
    assert missing.json()["message"] == f"Could not find the file /nope in container {container}"
    not_a_directory = flottad.api("PUT", f"/containers/{container}/archive?path=/etc/passwd", tar_of({"x": b"x"}))
    assert not_a_directory.status == 400
    if not running:
        flottad.api("POST", f"/containers/{container}/start")
    exec_id = flottad.api("POST", f"/containers/{container}/exec", {"Cmd": ["cat", "/tmp/dir/hello.txt"], "AttachStdout": True}).json()["Id"]
    from tests.actors.daemon.streams_client import hijack

    assert demultiplex(hijack(str(flottad.socket), f"/exec/{exec_id}/start", {}).read_all())[0] == b"hello cp\n"
    remove(flottad, container)


def test_copy_never_leaves_the_container(flottad: Flottad, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host only\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    container, code, _, _ = run(flottad, {"Cmd": ["sh", "-c", f"ln -s {secret} /leak && ln -s {outside} /escape && mkdir /real"]})
    assert code == 0
    # A symlink the container made resolves inside the container, where the host path is absent.
    assert flottad.api("GET", f"/containers/{container}/archive?path=/leak/").status == 404
    link = stat_of(flottad.api("HEAD", f"/containers/{container}/archive?path=/leak"))
    assert link["linkTarget"] == str(secret) and link["mode"] & (1 << 27)
    put = flottad.api("PUT", f"/containers/{container}/archive?path=/real",
                      tar_of({"f": b"x"}, links={"ln": str(outside)}))
    assert put.status == 200
    through_link = flottad.api("PUT", f"/containers/{container}/archive?path=/real", tar_of({"ln/planted": b"evil"}))
    assert through_link.status in (200, 400)
    assert not (outside / "planted").exists()
    escaping = flottad.api("PUT", f"/containers/{container}/archive?path=/real", tar_of({"../../../../etc/evil": b"x"}))
    assert escaping.status == 400
    assert not Path("/etc/evil").exists()
    remove(flottad, container)


def test_export_commit_and_changes(flottad: Flottad) -> None:
    container, code, _, _ = run(flottad, {"Cmd": ["sh", "-c", "echo made > /made.txt && rm /etc/group"]})
    assert code == 0
    changes = flottad.api("GET", f"/containers/{container}/changes").json()
    assert {"Path": "/made.txt", "Kind": 1} in changes and {"Path": "/etc/group", "Kind": 2} in changes
    exported = flottad.api("GET", f"/containers/{container}/export")
    assert exported.status == 200
    names = read_tar(exported.body)
    assert names.get("made.txt") == b"made\n" and "bin/busybox" in names and "etc/group" not in names
    committed = flottad.api("POST", f"/commit?container={container}&repo=committed&tag=v1&comment=mine"
                            "&changes=CMD%20%5B%22cat%22%2C%22%2Fmade.txt%22%5D")  # fmt: skip
    assert committed.status == 201, committed.body
    image_id = committed.json()["Id"]
    assert image_id.startswith("sha256:")
    image = flottad.api("GET", "/images/committed:v1/json").json()
    assert image["Id"] == image_id and image["Config"]["Cmd"] == ["cat", "/made.txt"]
    again, code, out, _ = run(flottad, {"Image": "committed:v1"})
    assert (code, out) == (0, b"made\n")
    users = flottad.api("DELETE", "/images/committed:v1")
    assert users.status == 409  # a container uses it
    remove(flottad, again)
    remove(flottad, container)
    assert flottad.api("DELETE", "/images/committed:v1").status == 200


def test_volumes_binds_and_tmpfs(flottad: Flottad, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("host\n")
    created_by_v = tmp_path / "made-by-docker-v"
    container, code, out, err = run(flottad, {
        "Cmd": ["sh", "-c", "cat /host/from-host; echo c > /host/from-ctr; ls /etc/passwd; "
                "echo v > /named/f; mount | grep -c ' /scratch type tmpfs'; touch /ro/x 2>&1 || echo ro-ok"],
        "HostConfig": {
            "Binds": [f"{shared}:/host", "named-data:/named", f"{created_by_v}:/made", "etc-copy:/etc"],
            "Tmpfs": {"/scratch": "size=1m"},
            "Mounts": [{"Type": "bind", "Source": str(shared), "Target": "/ro", "ReadOnly": True}],
        },
    })  # fmt: skip
    assert code == 0, err
    assert out.split(b"\n")[:2] == [b"host", b"/etc/passwd"]
    assert b"ro-ok" in out
    assert (shared / "from-ctr").read_text() == "c\n"
    assert created_by_v.is_dir()
    mounts = {mount["Destination"]: mount for mount in inspect(flottad, container)["Mounts"]}
    assert mounts["/host"]["Type"] == "bind" and mounts["/host"]["Source"] == str(shared)
    assert mounts["/named"]["Name"] == "named-data" and mounts["/named"]["Driver"] == "local"
    assert mounts["/ro"]["RW"] is False
    users = flottad.api("DELETE", "/volumes/named-data")
    assert users.status == 409
    listed = flottad.api("GET", "/containers/json?all=1&filters=%7B%22volume%22%3A%5B%22named-data%22%5D%7D").json()
    assert [item["Id"] for item in listed] == [container]
    second, code, out, _ = run(flottad, {"Cmd": ["sh", "-c", "cat /named/f; head -c 5 /copy/passwd"],
                                         "HostConfig": {"Binds": ["named-data:/named", "etc-copy:/copy"]}})
    assert out == b"v\nroot:"  # the volume got the image's /etc when it was first mounted there
    remove(flottad, container)
    remove(flottad, second)
    assert flottad.api("GET", "/volumes/named-data").status == 200  # rm -v keeps named volumes
    for name in ("named-data", "etc-copy"):
        assert flottad.api("DELETE", f"/volumes/{name}").status == 204


def test_read_only_root_and_resources(flottad: Flottad) -> None:
    container, code, out, _ = run(flottad, {
        "Cmd": ["sh", "-c", "touch /x 2>/dev/null || echo read-only; cat /sys/fs/cgroup/pids/pids.max; ulimit -n"],
        "HostConfig": {"ReadonlyRootfs": True, "PidsLimit": 20, "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 512}]},
    })  # fmt: skip
    assert code == 0
    assert out == b"read-only\n20\n512\n"
    remove(flottad, container)


def test_etc_files_and_network_modes(flottad: Flottad) -> None:
    container, code, out, _ = run(flottad, {
        "Cmd": ["sh", "-c", "hostname; cat /etc/hostname; grep extra /etc/hosts; ls /sys/class/net; "
                "readlink /proc/self/ns/net"],
        "Hostname": "boxname",
        "HostConfig": {"NetworkMode": "none", "ExtraHosts": ["extra:10.1.2.3"]},
    })  # fmt: skip
    assert code == 0
    lines = out.decode().split("\n")
    assert lines[:4] == ["boxname", "boxname", "10.1.2.3\textra", "lo"]
    assert lines[4] != os.readlink("/proc/self/ns/net")
    remove(flottad, container)
    host, _, out, _ = run(flottad, {"Cmd": ["readlink", "/proc/self/ns/net"], "HostConfig": {"NetworkMode": "host"}})
    assert out.decode().strip() == os.readlink("/proc/self/ns/net")
    assert inspect(flottad, host)["Config"]["Hostname"] == os.uname().nodename
    remove(flottad, host)
    target = create(flottad, {"Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}}, name="netns-owner")
    joiner = create(flottad, {"Cmd": ["readlink", "/proc/self/ns/net"], "HostConfig": {"NetworkMode": "container:netns-owner"}})
    refused = flottad.api("POST", f"/containers/{joiner}/start")
    assert refused.status == 409  # the owner is not running
    flottad.api("POST", f"/containers/{target}/start")
    owner_pid = inspect(flottad, target)["State"]["Pid"]
    assert flottad.api("POST", f"/containers/{joiner}/start").status == 204
    flottad.api("POST", f"/containers/{joiner}/wait")
    out, _ = demultiplex(flottad.api("GET", f"/containers/{joiner}/logs?stdout=1").body)
    assert out.decode().strip() == os.readlink(f"/proc/{owner_pid}/ns/net")
    remove(flottad, joiner)
    remove(flottad, target)
