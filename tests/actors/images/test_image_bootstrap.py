import os
import stat
import subprocess
from pathlib import Path

import pytest

from actors.images import bootstrap
from actors.images.store import ImageStore


def test_busybox_image_is_minimal_deterministic_and_complete(tmp_path):
    first = ImageStore(tmp_path / "one")
    messages = []
    image_id = bootstrap.bootstrap_busybox(first, progress=messages.append)
    assert messages and messages[-1].startswith("Created busybox:latest")
    assert bootstrap.bootstrap_busybox(ImageStore(tmp_path / "two")) == image_id
    assert first.resolve("busybox") == image_id
    config = first.image_config(image_id)
    assert config["config"] == {"Cmd": ["sh"], "Env": [bootstrap.DEFAULT_PATH]}
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    (root,) = first.lower_dirs(image_id)
    binary = os.stat(root / "bin/busybox")
    assert binary.st_size == os.stat("/bin/busybox").st_size
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert len(applets) > 100
    for applet in applets:
        assert os.stat(root / applet).st_ino == binary.st_ino, applet
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(root / "root").st_mode) == 0o700
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert [line.split(":")[0] for line in passwd] == [
        "root", "daemon", "bin", "sys", "sync", "mail", "www-data", "operator", "nobody"]
    assert passwd[0] == "root:x:0:0:root:/root:/bin/sh"
    assert "nogroup:x:65534:" in (root / "etc/group").read_text()
    assert all(line.split(":")[1] == "*" for line in (root / "etc/shadow").read_text().splitlines())
    history = first.history("busybox")
    assert [h["CreatedBy"] for h in history] == ['CMD ["sh"]', history[1]["CreatedBy"]]
    assert history[1]["Size"] > 1_000_000


@pytest.mark.root
def test_busybox_image_runs_under_chroot(tmp_path):
    store = ImageStore(tmp_path / "store")
    image_id = bootstrap.bootstrap_busybox(store)
    (root,) = store.lower_dirs(image_id)
    result = subprocess.run(["/usr/sbin/chroot", str(root), "/bin/sh", "-c", "echo $((6*7)); id -un"],
                            capture_output=True, text=True, env={"PATH": "/bin:/usr/bin"})
    assert result.stdout.split() == ["42", "root"], result.stderr


def test_host_mirror_reads_deb822_and_one_line_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian-security\n\n"
                      "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert bootstrap.host_mirror((deb822,)) == "http://mirror.example/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://other.example/debian/ bookworm main\n")
    assert bootstrap.host_mirror((one_line,)) == "http://other.example/debian"
    assert bootstrap.host_mirror((tmp_path / "absent",)) == bootstrap.DEFAULT_MIRROR


@pytest.mark.slow
@pytest.mark.root
def test_debian_bootstrap(tmp_path):
    store = ImageStore(tmp_path / "store")
    image_id = bootstrap.bootstrap_debian(store, "bookworm")
    assert store.resolve("debian:bookworm") == image_id
    assert store.image_config(image_id)["config"]["Cmd"] == ["bash"]
    (root,) = store.lower_dirs(image_id)
    assert (root / "usr/bin/bash").exists() and (root / "etc/debian_version").exists()
    assert list((root / "var/lib/apt/lists").glob("*_Packages")) == []
    assert list((root / "var/cache/apt/archives").glob("*.deb")) == []
    assert list((root / "dev").iterdir()) == []
    result = subprocess.run(["/usr/sbin/chroot", str(root), "/bin/bash", "-c", "dpkg -s coreutils"],
                            capture_output=True, text=True)
    assert "Status: install ok installed" in result.stdout
    assert list(Path(store.root / "tmp").iterdir()) == []
