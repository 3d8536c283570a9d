"""Overlay roots through mount(2) and the new mount API."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.supervisor import rootfs

pytestmark = pytest.mark.root


@pytest.fixture
def area(tmp_path: Path):
    yield tmp_path
    for mountpoint in sorted(
        (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        key=len,
        reverse=True,
    ):
        if mountpoint.startswith(str(tmp_path) + "/"):
            rootfs.unmount(mountpoint)


def make_layers(base: Path, count: int, name_length: int = 20) -> list[str]:
    layers = []
    for index in range(count):
        layer = base / "layers" / (f"{index:04d}".ljust(name_length, "x"))
        layer.mkdir(parents=True)
        (layer / f"only-{index}").write_text(str(index))
        (layer / "shared").write_text(str(index))
        layers.append(str(layer))
    return layers


@pytest.mark.parametrize("use_new_api", [False, True])
def test_overlay_top_layer_wins_and_writes_go_up(area, use_new_api):
    lowers = make_layers(area, 3)
    top_first = list(reversed(lowers))
    target = area / "merged"
    rootfs.mount_overlay(
        str(target), top_first, str(area / "upper"), str(area / "work"), use_new_api=use_new_api
    )
    assert rootfs.is_mount_point(str(target))
    assert (target / "shared").read_text() == "2"
    assert sorted(p.name for p in target.iterdir() if p.name.startswith("only")) == [
        "only-0", "only-1", "only-2",
    ]  # fmt: skip
    (target / "new").write_text("n")
    (target / "only-1").unlink()
    assert (area / "upper" / "new").read_text() == "n"
    assert (area / "upper" / "only-1").is_char_device()  # a whiteout
    assert (Path(lowers[1]) / "only-1").exists()
    assert rootfs.unmount(str(target)) is True
    assert rootfs.unmount(str(target)) is False
    assert not rootfs.is_mount_point(str(target))


def test_many_long_layers_exceed_the_page_and_still_mount(area):
    lowers = make_layers(area / ("deep" * 20), 150, name_length=60)
    upper, work = str(area / "upper"), str(area / "work")
    assert rootfs.needs_new_mount_api(lowers, upper, work)
    assert len(rootfs.overlay_options(lowers, upper, work)) > 4096
    target = area / "merged"
    rootfs.mount_overlay(str(target), lowers, upper, work)
    assert (target / "shared").read_text() == "0"  # lowers[0] is the top layer
    assert len(list(target.glob("only-*"))) == 150
    rootfs.unmount(str(target))


def test_separators_in_paths_use_the_new_api(area):
    layer = area / "odd,name:with"
    layer.mkdir()
    (layer / "file").write_text("ok")
    assert rootfs.needs_new_mount_api([str(layer)], str(area / "u"), str(area / "w"))
    rootfs.mount_overlay(str(area / "m"), [str(layer)], str(area / "u"), str(area / "w"))
    assert (area / "m" / "file").read_text() == "ok"


def test_no_lower_layers(area):
    target = area / "merged"
    rootfs.mount_overlay(str(target), [], str(area / "upper"), str(area / "work"))
    assert list(target.iterdir()) == []
    (target / "made").write_text("x")
    assert (area / "upper" / "made").exists()
    assert (area / rootfs.EMPTY_LOWER_NAME).is_dir()


def test_kernel_refusal_is_a_clear_error(area):
    (area / "same").mkdir()
    with pytest.raises(rootfs.MountError, match=r"cannot mount the overlay root at .*merged"):
        rootfs.mount_overlay(
            str(area / "merged"), [str(area / "same")], str(area / "same"), str(area / "work")
        )
    with pytest.raises(rootfs.MountError, match="is not a directory"):
        rootfs.mount_overlay(
            str(area / "merged"), [str(area / "absent")], str(area / "u"), str(area / "w")
        )
    too_long = area / ("x" * 250)
    too_long.mkdir()
    with pytest.raises(rootfs.MountError, match="longer than the kernel's 255 bytes"):
        rootfs.mount_overlay(
            str(area / "merged"),
            [str(too_long)],
            str(area / "u"),
            str(area / "w"),
            use_new_api=True,
        )
    assert not rootfs.is_mount_point(str(area / "merged"))
