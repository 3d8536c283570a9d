"""Base images made offline from what the host has: `busybox:latest` and `debian:<suite>`.

`bootstrap_busybox` packs the host's static busybox binary and one hard link per applet
(at the paths `busybox --list-full` gives) with a small /etc, like the official image.
Every byte is a function of the binary: entry order is sorted, times are the binary's
mtime, owners are 0:0; so the same binary always gives the same image id.

`bootstrap_debian` runs `debootstrap --variant=minbase` (it downloads from a Debian
mirror), cleans apt's caches and device nodes, and packs the result as one layer.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from actors.images import layers
from actors.images.store import ImageStore, host_architecture

Progress = Callable[[str], None]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

_GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:daemon
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""

_DIRECTORIES = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
    "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755,
    "var/www": 0o755,
}


def _locked_shadow() -> str:
    names = [line.split(":", 1)[0] for line in _PASSWD.splitlines()]
    return "".join(f"{name}:*::0:99999:7:::\n" for name in names)


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def busybox_applets(source: str) -> list[str]:
    """Applet paths (relative, e.g. `bin/sh`) that `busybox --list-full` prints."""
    output = subprocess.run([source, "--list-full"], check=True, capture_output=True,
                            text=True).stdout
    applets = []
    for line in output.splitlines():
        path = line.strip().lstrip("/")
        if path and path != "bin/busybox":
            layers.clean_entry_name(path)
            applets.append(path)
    return sorted(set(applets))


def busybox_layer(source: str, out: io.BufferedIOBase | io.BytesIO) -> int:
    """Write the busybox rootfs tar to `out`; returns the time stamp used (binary mtime)."""
    info = os.stat(source)
    stamp = int(info.st_mtime)
    applets = busybox_applets(source)
    directories = dict(_DIRECTORIES)
    for applet in applets:
        parent = applet.rpartition("/")[0]
        while parent and parent not in directories:
            directories[parent] = 0o755
            parent = parent.rpartition("/")[0]
    entries: dict[str, tuple[str, object]] = {name: ("dir", mode) for name, mode in directories.items()}
    entries["bin/busybox"] = ("file", source)
    for applet in applets:
        entries[applet] = ("link", "bin/busybox")
    files = {
        "etc/passwd": (_PASSWD, 0o644), "etc/group": (_GROUP, 0o644),
        "etc/shadow": (_locked_shadow(), 0o640), "etc/nsswitch.conf": ("hosts: files dns\n", 0o644),
    }
    for name, (text, mode) in files.items():
        entries[name] = ("text", (text, mode))

    def member(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        item = tarfile.TarInfo(name)
        item.type, item.mode, item.mtime = kind, mode, stamp
        item.uid = item.gid = 0
        item.uname = item.gname = ""
        return item

    # bin/busybox must precede its hard links; sorted order puts "bin/" entries early,
    # but links in bin/ that sort before "busybox" (bin/ash) would not see it: emit it first.
    order = ["bin", "bin/busybox", *sorted(n for n in entries if n not in ("bin", "bin/busybox"))]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in order:
            kind, value = entries[name]
            if kind == "dir":
                tar.addfile(member(name, tarfile.DIRTYPE, int(value)))  # type: ignore[call-overload]
            elif kind == "file":
                item = member(name, tarfile.REGTYPE, 0o755)
                item.size = info.st_size
                with open(source, "rb") as handle:
                    tar.addfile(item, handle)
            elif kind == "link":
                item = member(name, tarfile.LNKTYPE, 0o755)
                item.linkname = str(value)
                tar.addfile(item)
            else:
                text, mode = value  # type: ignore[misc]
                data = text.encode()
                item = member(name, tarfile.REGTYPE, mode)
                item.size = len(data)
                tar.addfile(item, io.BytesIO(data))
    return stamp


def bootstrap_busybox(store: ImageStore, source: str = "/bin/busybox",
                      progress: Progress | None = None, tag: str = "busybox:latest") -> str:
    """Make `busybox:latest` from the host's static busybox; returns the image id."""
    if progress is not None:
        progress(f"Packing {source} and its applets")
    buffer = io.BytesIO()
    stamp = busybox_layer(source, buffer)
    buffer.seek(0)
    diff_id = store.add_layer_from_tar(buffer)
    created = _rfc3339(stamp)
    config = {
        "architecture": host_architecture(),
        "os": "linux",
        "created": created,
        "config": {"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
        "history": [
            {"created": created, "created_by": f"ADD busybox rootfs ({diff_id}) in / "},
            {"created": created, "created_by": 'CMD ["sh"]', "empty_layer": True},
        ],
    }
    if progress is not None:
        progress("Unpacking layer")
    image_id = store.create_image(config, [diff_id])
    store.tag(image_id, tag)
    if progress is not None:
        progress(f"Created {tag} {image_id}")
    return image_id


def host_mirror(sources: tuple[Path, ...] = (Path("/etc/apt/sources.list"),
                                             Path("/etc/apt/sources.list.d"))) -> str:
    """The Debian mirror the host's apt uses for the main archive (not security)."""
    texts: list[str] = []
    for source in sources:
        if source.is_dir():
            texts.extend(p.read_text(errors="replace") for p in sorted(source.iterdir())
                         if p.suffix in (".list", ".sources"))
        elif source.is_file():
            texts.append(source.read_text(errors="replace"))
    candidates = []
    for text in texts:
        candidates += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s", text, re.MULTILINE)
        candidates += re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
    for uri in candidates:
        if re.search(r"/debian/?$", uri) and "security" not in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve())
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _unmount_all_under(directory: Path) -> None:
    for point in _mounts_under(directory):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _clean_rootfs(rootfs: Path) -> None:
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/archives/partial/*",
                    "var/cache/apt/*.bin", "var/lib/apt/lists/*", "var/log/*.log",
                    "var/log/apt/*", "var/cache/debconf/*-old", "tmp/*", "dev/*"):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                layers.remove_tree(path)
            else:
                path.unlink()


def bootstrap_debian(store: ImageStore, suite: str = "bookworm", mirror: str | None = None,
                     progress: Progress | None = None, tag: str | None = None) -> str:
    """Make `debian:<suite>` with debootstrap (network to a Debian mirror); the image id."""
    mirror = mirror or host_mirror()
    tag = tag or f"debian:{suite}"
    work = Path(tempfile.mkdtemp(prefix="flotta-debootstrap-", dir=store.root / "tmp"))
    rootfs = work / "rootfs"
    try:
        if progress is not None:
            progress(f"debootstrap --variant=minbase {suite} from {mirror}")
        command = ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror]
        tail: list[str] = []
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as process:
            assert process.stdout is not None
            for line in process.stdout:
                tail = [*tail[-20:], line.rstrip()]
                if progress is not None and line.startswith("I: "):
                    progress(line[3:].rstrip())
        if process.returncode != 0:
            raise RuntimeError("debootstrap failed:\n" + "\n".join(tail))
        _unmount_all_under(rootfs)
        _clean_rootfs(rootfs)
        if progress is not None:
            progress("Packing the root filesystem")
        diff_id = store.add_layer_from_directory(rootfs)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        config = {
            "architecture": host_architecture(),
            "os": "linux",
            "created": created,
            "config": {"Env": [DEFAULT_PATH], "Cmd": ["bash"]},
            "history": [
                {"created": created, "created_by": f"debootstrap --variant=minbase {suite}"},
                {"created": created, "created_by": 'CMD ["bash"]', "empty_layer": True},
            ],
        }
        image_id = store.create_image(config, [diff_id])
        store.tag(image_id, tag)
        if progress is not None:
            progress(f"Created {tag} {image_id}")
        return image_id
    finally:
        _unmount_all_under(work)
        if not _mounts_under(work):
            shutil.rmtree(work, ignore_errors=True)
