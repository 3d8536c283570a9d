"""Layer helpers of the executor: looking paths up in layer dirs, the overlay views COPY
writes through, the mount points a RUN layer must not keep, and the image configs the
builder hands to the images actor."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from actors.builder.images import ImageRecord, new_image_config
from actors.builder.overlay import (
    OPAQUE_XATTR,
    exists_in_layers,
    find_in_layers,
    overlay_view,
    remove_runtime_mountpoints,
)


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def layer(root: Path, files: dict[str, str]) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if data.endswith("/"):
            target.mkdir(exist_ok=True)
        else:
            target.write_text(data)
    return str(root)


@pytest.mark.root
def test_find_in_layers_respects_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    bottom = layer(tmp_path / "bottom", {"etc/hosts": "x", "etc/passwd": "p", "srv/a": "a", "opt/old": "o"})
    top = layer(tmp_path / "top", {"srv/b": "b", "opt/": "opt/"})
    whiteout(Path(top) / "etc" / "hosts")
    os.setxattr(Path(top) / "opt", OPAQUE_XATTR, b"y")
    lowers = [top, bottom]
    assert not exists_in_layers(lowers, "/etc/hosts")
    assert find_in_layers(lowers, "/etc/passwd") == Path(bottom) / "etc" / "passwd"
    assert find_in_layers(lowers, "/srv/b") == Path(top) / "srv" / "b"
    assert exists_in_layers(lowers, "/srv/a")
    assert exists_in_layers(lowers, "/opt")
    assert not exists_in_layers(lowers, "/opt/old")
    assert not exists_in_layers(lowers, "/nowhere")
    assert not exists_in_layers([], "/etc")
    whiteout(Path(top) / "srv-gone")
    assert not exists_in_layers(lowers, "/srv-gone/x")


def test_runtime_mountpoints_are_removed_only_when_the_image_lacked_them(tmp_path: Path) -> None:
    lower = layer(tmp_path / "lower", {"etc/passwd": "p", "proc/": "proc/"})
    os.chmod(Path(lower) / "etc", 0o755)
    os.chmod(Path(lower) / "proc", 0o755)
    upper = tmp_path / "upper"
    # What the runtime left: mount points it made, a copied-up /etc, and real work.
    for directory in ("dev", "sys", "proc", "etc", "made"):
        (upper / directory).mkdir(parents=True)
        os.chmod(upper / directory, 0o755)
    (upper / "etc" / "hosts").write_text("")
    (upper / "made" / "file").write_text("kept")
    removed = remove_runtime_mountpoints(upper, ["/proc", "/dev", "/sys", "/etc/hosts"], [lower])
    # /proc is in the image with the same mode and owner: its empty copy-up goes too.
    assert sorted(removed) == ["/dev", "/etc", "/etc/hosts", "/proc", "/sys"]
    assert os.listdir(upper) == ["made"]
    assert (upper / "made" / "file").read_text() == "kept"


def test_a_copied_up_directory_the_run_changed_is_kept(tmp_path: Path) -> None:
    lower = layer(tmp_path / "lower", {"etc/passwd": "p"})
    os.chmod(Path(lower) / "etc", 0o755)
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", 0o700)
    (upper / "etc" / "hosts").write_text("")
    assert remove_runtime_mountpoints(upper, ["/etc/hosts"], [lower]) == ["/etc/hosts"]
    assert (upper / "etc").is_dir()
    (upper / "etc" / "hosts").write_text("written by the run")
    assert remove_runtime_mountpoints(upper, ["/etc/hosts"], [lower]) == []


@pytest.mark.root
def test_writes_through_an_overlay_view_land_in_the_upper_dir(tmp_path: Path) -> None:
    lower = layer(tmp_path / "lower", {"etc/passwd": "p", "srv/old": "old"})
    area = tmp_path / "area"
    area.mkdir()
    with overlay_view([lower], area) as (merged, upper):
        assert (merged / "etc" / "passwd").read_text() == "p"
        (merged / "srv" / "new").write_text("new")
        (merged / "srv" / "old").unlink()
    assert not os.path.ismount(area / "merged")
    assert (upper / "srv" / "new").read_text() == "new"
    info = os.lstat(upper / "srv" / "old")
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == 0
    assert not (upper / "etc").exists()
    empty = tmp_path / "scratch"
    empty.mkdir()
    with overlay_view([], empty) as (merged, upper):
        (merged / "only").write_text("x")
    assert os.listdir(upper) == ["only"]


def test_a_child_config_records_the_step() -> None:
    parent = ImageRecord("sha256:p", {
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}, "container": "abc",
        "history": [{"created_by": "ADD x", "created": "t0"}],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:l1"]},
    })
    config = new_image_config(parent, {"Cmd": ["true"]}, "/bin/sh -c #(nop)  CMD [\"true\"]", "me", "t1", empty_layer=True)
    assert config["config"] == {"Cmd": ["true"]} and config["created"] == "t1" and config["author"] == "me"
    assert "container" not in config
    assert config["history"][-1] == {"created": "t1", "created_by": "/bin/sh -c #(nop)  CMD [\"true\"]", "author": "me", "empty_layer": True}
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:l1"]}
    assert parent.config["history"] == [{"created_by": "ADD x", "created": "t0"}]
    scratch = new_image_config(None, {}, "COPY", "", "t2", empty_layer=False)
    assert scratch["os"] == "linux" and scratch["history"] == [{"created": "t2", "created_by": "COPY"}]
