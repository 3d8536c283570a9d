import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile

import pytest
from image_tars import TarBuilder, tree

from actors.images import layers
from actors.images.layers import LayerError, extract_layer, write_layer_tar


@pytest.fixture
def outside(tmp_path):
    """A directory beside the target that hostile tars try to reach."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "passwd").write_text("original\n")
    return directory


def assert_rejected(tmp_path, outside, data, *, words, allow_devices=False):
    before = tree(outside)
    target = tmp_path / "layer"
    with pytest.raises(LayerError) as caught:
        extract_layer(io.BytesIO(data), target, allow_devices=allow_devices)
    for word in words:
        assert word in str(caught.value)
    assert not target.exists(), "a failed extraction left its directory behind"
    assert tree(outside) == before, "a hostile tar wrote outside the layer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]
    return str(caught.value)


def test_extracts_files_links_modes_owners_times_xattrs(tmp_path):
    data = (
        TarBuilder()
        .directory("./bin", mode=0o755)
        .file("bin/busybox", b"ELF", mode=0o4755, uid=1234, gid=5678, mtime=1_500_000_000)
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/ls", "bin/busybox")
        .file("usr/lib/deep/file", b"implicit parents")
        .file("cap", b"x", xattrs={"user.note": b"hello", "security.capability": b"\x01\x00\x00\x02"
                                   + b"\x00" * 16, "trusted.evil": b"y"})
        .directory("bin", mode=0o700, mtime=1_400_000_000)
        .bytes()
    )
    target = tmp_path / "layer"
    result = extract_layer(io.BytesIO(data), target)
    assert result.entry_count == 7
    busybox = os.stat(target / "bin/busybox")
    assert stat.S_IMODE(busybox.st_mode) == 0o4755, "setuid bit lost"
    assert (busybox.st_uid, busybox.st_gid) == (1234, 5678)
    assert busybox.st_mtime == 1_500_000_000
    assert os.readlink(target / "bin/sh") == "/bin/busybox", "absolute symlink target changed"
    assert os.stat(target / "bin/ls").st_ino == busybox.st_ino
    assert (target / "usr/lib/deep/file").read_bytes() == b"implicit parents"
    assert stat.S_IMODE(os.stat(target / "bin").st_mode) == 0o700
    assert os.stat(target / "bin").st_mtime == 1_400_000_000, "directory time not applied last"
    assert os.getxattr(target / "cap", "user.note") == b"hello"
    assert "trusted.evil" not in os.listxattr(target / "cap")
    assert result.size_bytes == 3 + len("/bin/busybox") + len(b"implicit parents") + 1


@pytest.mark.root
def test_aufs_whiteouts_become_overlay_whiteouts(tmp_path):
    data = (
        TarBuilder()
        .directory("etc")
        .file("etc/.wh.motd")
        .directory("var/cache")
        .file("var/cache/.wh..wh..opq")
        .file(".wh..wh.plnk")
        .device("dev-whiteout", tarfile.CHRTYPE, 0, 0)
        .bytes()
    )
    target = tmp_path / "layer"
    extract_layer(io.BytesIO(data), target)
    whiteout = os.lstat(target / "etc/motd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(target / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not (target / ".wh..wh.plnk").exists()
    assert not (target / "etc/.wh.motd").exists()
    assert stat.S_ISCHR(os.lstat(target / "dev-whiteout").st_mode)


HOSTILE = {
    "dotdot": (TarBuilder().file("../evil", b"x"), ["'../evil'", "'..'"]),
    "dotdot-inside": (TarBuilder().file("a/../../outside/passwd", b"x"), ["'..'"]),
    "absolute": (TarBuilder().file("/tmp/evil", b"x"), ["absolute path"]),
    "hardlink-absolute": (TarBuilder().hardlink("x", "/etc/passwd"), ["hard link", "absolute"]),
    "hardlink-dotdot": (TarBuilder().hardlink("x", "../outside/passwd"), ["hard link", "'..'"]),
    "hardlink-not-extracted": (TarBuilder().hardlink("x", "later").file("later"),
                               ["'later'", "not a file extracted earlier"]),
    "char-device": (TarBuilder().device("null", tarfile.CHRTYPE, 1, 3), ["character device 1:3"]),
    "block-device": (TarBuilder().device("sda", tarfile.BLKTYPE, 8, 0), ["block device 8:0"]),
    "fifo": (TarBuilder().device("pipe", tarfile.FIFOTYPE), ["fifo"]),
    "long-component": (TarBuilder().file("a/" + "n" * 300, b"x"), ["longer than 255"]),
    "long-path": (TarBuilder().file("/".join(["d" * 200] * 25), b"x"), ["longer than 4095"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tars_are_rejected(tmp_path, outside, case):
    builder, words = HOSTILE[case]
    assert_rejected(tmp_path, outside, builder.bytes(), words=words)


def test_symlink_escape_through_path_component(tmp_path, outside):
    data = (TarBuilder().file("first", b"ok").symlink("a", str(outside))
            .file("a/passwd", b"pwned\n").bytes())
    message = assert_rejected(tmp_path, outside, data, words=["a/passwd", "symlink"])
    assert "refusing to write through it" in message


def test_relative_symlink_escape(tmp_path, outside):
    data = (TarBuilder().symlink("up", "../outside").file("up/passwd", b"pwned\n").bytes())
    assert_rejected(tmp_path, outside, data, words=["up/passwd", "symlink"])


def test_hardlink_through_symlinked_directory(tmp_path, outside):
    data = (TarBuilder().symlink("esc", str(outside)).hardlink("x", "esc/passwd").bytes())
    assert_rejected(tmp_path, outside, data, words=["hard link"])


def test_symlink_then_file_of_same_name_replaces_link_not_target(tmp_path, outside):
    data = TarBuilder().symlink("p", str(outside / "passwd")).file("p", b"mine").bytes()
    target = tmp_path / "layer"
    extract_layer(io.BytesIO(data), target)
    assert (target / "p").read_bytes() == b"mine"
    assert not (target / "p").is_symlink()
    assert (outside / "passwd").read_text() == "original\n"


def test_devices_allowed_when_asked(tmp_path):
    data = TarBuilder().device("null", tarfile.CHRTYPE, 1, 3, mode=0o666).device(
        "pipe", tarfile.FIFOTYPE).bytes()
    target = tmp_path / "layer"
    extract_layer(io.BytesIO(data), target, allow_devices=True)
    null = os.lstat(target / "null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISFIFO(os.lstat(target / "pipe").st_mode)


@pytest.mark.parametrize("garbage", [b"not a tar at all" * 100, b"\x1f\x8b\x08garbage",
                                     gzip.compress(b"\x00" * 5000)[:20], b"BZh9" + b"x" * 50])
def test_garbage_is_a_layer_error_and_leaves_nothing(tmp_path, outside, garbage):
    assert_rejected(tmp_path, outside, garbage, words=["layer tar"])


def test_truncated_tar(tmp_path, outside):
    data = TarBuilder().file("big", b"x" * 5000).bytes()[:2048]
    assert_rejected(tmp_path, outside, data, words=["layer tar"])


def _zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, _zstd],
                         ids=["gzip", "bzip2", "xz", "zstd"])
def test_compressed_layers(tmp_path, compress):
    if compress is _zstd and shutil.which("zstd") is None:
        pytest.fail("the zstd tool is part of the project's system packages")
    data = TarBuilder().file("hello", b"world").bytes()
    extract_layer(io.BytesIO(compress(data)), tmp_path / "layer")
    assert (tmp_path / "layer/hello").read_bytes() == b"world"


def make_upper(root):
    root.mkdir()
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("box\n")
    os.link(root / "etc/hostname", root / "etc/hostname2")
    os.symlink("/usr/bin/env", root / "env")
    os.mknod(root / "etc/removed", stat.S_IFCHR, os.makedev(0, 0))
    (root / "opaque").mkdir()
    (root / "opaque/new").write_text("n")
    os.setxattr(root / "opaque", "trusted.overlay.opaque", b"y")
    os.setxattr(root / "etc/hostname", "user.flavor", b"salty")
    for path in [root / "etc/hostname", root / "etc", root / "opaque/new", root / "opaque", root]:
        os.utime(path, (1_600_000_000, 1_600_000_000))


@pytest.mark.root
def test_write_layer_tar_from_upper_dir(tmp_path):
    upper = tmp_path / "upper"
    make_upper(upper)
    first, second = io.BytesIO(), io.BytesIO()
    diff_id = write_layer_tar(upper, first)
    assert write_layer_tar(upper, second) == diff_id
    assert first.getvalue() == second.getvalue(), "layer tar is not deterministic"
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        names = [m.name for m in tar.getmembers()]
    # Sorted by the upper dir's names (a whiteout sorts as the name it hides), as Docker walks.
    assert names == ["env", "etc", "etc/hostname", "etc/hostname2", "etc/.wh.removed",
                     "opaque", "opaque/.wh..wh..opq", "opaque/new"]
    assert members["etc/hostname2"].islnk() and members["etc/hostname2"].linkname == "etc/hostname"
    assert members["env"].linkname == "/usr/bin/env"
    assert members["etc/hostname"].pax_headers["SCHILY.xattr.user.flavor"] == "salty"
    assert "trusted.overlay.opaque" not in str(members["opaque"].pax_headers)
    # Round trip: extracting the tar gives back the upper dir's overlay form.
    extract_layer(io.BytesIO(first.getvalue()), tmp_path / "again")
    assert tree(tmp_path / "again") == tree(upper)
    assert os.getxattr(tmp_path / "again/opaque", "trusted.overlay.opaque") == b"y"
    assert stat.S_ISCHR(os.lstat(tmp_path / "again/etc/removed").st_mode)


def test_write_layer_tar_excludes(tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/hosts").write_text("x")
    (upper / "etc/keep").write_text("y")
    (upper / "run/secrets").mkdir(parents=True)
    (upper / "run/secrets/s").write_text("z")
    out = io.BytesIO()
    write_layer_tar(upper, out, exclude=lambda p: p in ("etc/hosts", "run/secrets"))
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.getnames() == ["etc", "etc/keep", "run"]


def test_check_layer_tar_catches_names_without_writing():
    with pytest.raises(LayerError, match="absolute path"):
        layers.check_layer_tar(TarBuilder().file("/x").stream())
    with pytest.raises(LayerError, match="hard link"):
        layers.check_layer_tar(TarBuilder().hardlink("x", "y").stream())
    assert layers.check_layer_tar(TarBuilder().file("y").hardlink("x", "y").stream()) == 2


@pytest.mark.root
def test_layers_stack_as_overlay_lower_dirs(tmp_path):
    """The overlay form works in the kernel: whiteouts hide, opaque dirs hide below."""
    base = TarBuilder().file("etc/motd", b"hi").file("etc/keep", b"k").file("cache/a", b"a").bytes()
    top = TarBuilder().file("etc/.wh.motd").file("cache/.wh..wh..opq").file("cache/b", b"b").bytes()
    lower1, lower2 = tmp_path / "l1", tmp_path / "l2"
    extract_layer(io.BytesIO(base), lower1)
    extract_layer(io.BytesIO(top), lower2)
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower2}:{lower1}",
                    str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["keep"]
        assert sorted(os.listdir(merged / "cache")) == ["b"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
