"""Build layer tars and images in tests, hostile ones included."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from actors.images.store import ImageStore


class TarBuilder:
    """Entries in the order added; nothing is checked (that is the point)."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed by bytes()

    def _member(self, name: str, kind: bytes, mode: int, mtime: int = 1_600_000_000,
                uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.type, member.mode, member.mtime = kind, mode, mtime
        member.uid, member.gid = uid, gid
        return member

    def directory(self, name: str, mode: int = 0o755, **extra: int) -> TarBuilder:
        self.tar.addfile(self._member(name, tarfile.DIRTYPE, mode, **extra))
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644,
             xattrs: dict[str, bytes] | None = None, **extra: int) -> TarBuilder:
        member = self._member(name, tarfile.REGTYPE, mode, **extra)
        member.size = len(data)
        if xattrs:
            member.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
        self.tar.addfile(member, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str) -> TarBuilder:
        member = self._member(name, tarfile.SYMTYPE, 0o777)
        member.linkname = target
        self.tar.addfile(member)
        return self

    def hardlink(self, name: str, target: str) -> TarBuilder:
        member = self._member(name, tarfile.LNKTYPE, 0o644)
        member.linkname = target
        self.tar.addfile(member)
        return self

    def device(self, name: str, kind: bytes, major: int = 0, minor: int = 0,
               mode: int = 0o600) -> TarBuilder:
        member = self._member(name, kind, mode)
        member.devmajor, member.devminor = major, minor
        self.tar.addfile(member)
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buffer.getvalue()

    def stream(self) -> io.BytesIO:
        return io.BytesIO(self.bytes())


def tree(root: Path) -> dict[str, str]:
    """A comparable picture of a directory: path -> kind and content/target."""
    picture = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            picture[relative] = "link:" + str(path.readlink())
        elif path.is_dir():
            picture[relative] = "dir"
        elif path.is_file():
            picture[relative] = "file:" + path.read_bytes().decode(errors="replace")
        else:
            picture[relative] = "special"
    return picture


def make_image(store: ImageStore, layer_files: list[dict[str, bytes]], tag: str | None = None,
               created: str = "2024-01-01T00:00:00Z", parent: str | None = None,
               labels: dict[str, str] | None = None) -> str:
    """An image of one layer per dict (path -> content), optionally tagged."""
    diff_ids = []
    history = []
    for files in layer_files:
        builder = TarBuilder()
        for name, data in files.items():
            builder.file(name, data)
        diff_ids.append(store.add_layer_from_tar(builder.stream()))
        history.append({"created": created, "created_by": f"ADD {sorted(files)}"})
    config = {"created": created, "config": {"Cmd": ["sh"], "Labels": labels or {}},
              "history": history, "architecture": "amd64", "os": "linux"}
    image_id = store.create_image(config, diff_ids, parent=parent)
    if tag:
        store.tag(image_id, tag)
    return image_id


def directory_layers(store: ImageStore, scratch: Path, base_image: str) -> None:
    """Layers the way a build and a pull make them, then a save that needs their tars:
    a copied directory and a handed-over one (images `dir` and `dir2` on `base_image`),
    and a layer unpacked while read, kept as its gzip blob only (image `pulled`)."""
    import gzip
    import shutil

    from actors.images import archive

    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "etc").mkdir(parents=True)
    (scratch / "etc" / "motd").write_bytes(b"from a directory\n")
    base = store.image(base_image).diff_ids
    diff_id = store.add_layer_from_directory(scratch)
    store.tag(store.create_image({"config": {}}, [*base, diff_id]), "dir")
    (scratch / "etc" / "motd").write_bytes(b"handed over\n")
    donated = store.donation_path()
    os.rename(scratch, donated)
    handed = store.add_layer_from_directory(donated)
    store.tag(store.create_image({"config": {}}, [*base, handed]), "dir2")
    compressed = gzip.compress(TarBuilder().file("pulled", b"p" * 3000).bytes(), mtime=0)
    pulled = store.add_layer_from_tar(io.BytesIO(compressed), keep_tar=False, unpack=True)
    store.record_layer_digest(pulled, store.put_blob(compressed))
    store.tag(store.create_image({"config": {}}, [pulled]), "pulled")
    archive.save(store, ["dir", "dir2", "pulled"], io.BytesIO())
