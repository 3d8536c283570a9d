import gzip
import hashlib
import io
import json
import lzma
import tarfile

import pytest
from image_tars import TarBuilder, make_image, tree

from actors.images import archive
from actors.images.archive import ArchiveError
from actors.images.errors import DigestMismatch
from actors.images.layers import LayerError
from actors.images.store import ImageStore


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_json(value) -> bytes:
    """What Go's json.Marshal writes: no spaces, no trailing newline."""
    return json.dumps(value, separators=(",", ":")).encode()


class ArchiveBuilder:
    """A tar written entry by entry the way Docker's tar export writes it."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed by bytes()

    def directory(self, name):
        member = tarfile.TarInfo(name)
        member.type, member.mode, member.mtime = tarfile.DIRTYPE, 0o755, 0
        self.tar.addfile(member)

    def file(self, name, data):
        member = tarfile.TarInfo(name)
        member.size, member.mode, member.mtime = len(data), 0o644, 0
        self.tar.addfile(member, io.BytesIO(data))

    def symlink(self, name, target):
        member = tarfile.TarInfo(name)
        member.type, member.linkname, member.mtime = tarfile.SYMTYPE, target, 0
        self.tar.addfile(member)

    def bytes(self):
        self.tar.close()
        return self.buffer.getvalue()


def busybox_like_layer() -> bytes:
    return (TarBuilder().directory("bin").file("bin/busybox", b"\x7fELF fake", mode=0o755)
            .hardlink("bin/sh", "bin/busybox").directory("tmp", mode=0o1777)
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n").bytes())


def image_config(diff_ids, created="2024-09-26T21:31:42Z") -> bytes:
    return go_json({
        "architecture": "amd64",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "created": created,
        "history": [{"created": created, "created_by": "BusyBox 1.37.0 (glibc), Debian 12"},
                    {"created": created, "created_by": 'CMD ["sh"]', "empty_layer": True}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })


def docker28_archive(layer: bytes, config: bytes, tag="busybox:latest", full="docker.io/library/busybox:latest"):
    """A `docker save busybox` archive laid out exactly as Engine 25-28 writes it."""
    manifest = go_json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}],
    })
    index = go_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                    "digest": sha(manifest), "size": len(manifest),
                                    "annotations": {"io.containerd.image.name": full,
                                                    "org.opencontainers.image.ref.name": tag.split(":")[1]}}]})
    builder = ArchiveBuilder()
    builder.directory("blobs")
    builder.directory("blobs/sha256")
    for blob in sorted([config, layer, manifest], key=sha):
        builder.file("blobs/sha256/" + sha(blob)[7:], blob)
    builder.file("index.json", index)
    builder.file("manifest.json", go_json([{"Config": "blobs/sha256/" + sha(config)[7:],
                                            "RepoTags": [tag],
                                            "Layers": ["blobs/sha256/" + sha(layer)[7:]]}]))
    builder.file("oci-layout", go_json({"imageLayoutVersion": "1.0.0"}))
    name, _, version = tag.partition(":")
    builder.file("repositories", go_json({name: {version: sha(layer)[7:]}}))
    return builder.bytes()


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "store")


def snapshot(store):
    return tree(store.root)


def test_loads_a_docker_28_archive(store):
    layer = busybox_like_layer()
    config = image_config([sha(layer)])
    progress = []
    lines = archive.load(store, io.BytesIO(docker28_archive(layer, config)), progress=progress.append)
    assert lines == ["Loaded image: busybox:latest"]
    assert store.resolve("busybox") == sha(config)
    assert (store.lower_dirs("busybox")[0] / "bin/busybox").read_bytes() == b"\x7fELF fake"
    assert progress[-1] == {"status": "Loading layer", "progressDetail": {"current": len(layer), "total": len(layer)},
                            "id": sha(layer)[7:19]}
    assert store.verify() == []
    # Loading again changes nothing; loading over another image's tag renames it, as Docker says.
    assert archive.load(store, io.BytesIO(docker28_archive(layer, config))) == ["Loaded image: busybox:latest"]
    other = image_config([sha(layer)], created="2025-01-01T00:00:00Z")
    lines = archive.load(store, io.BytesIO(docker28_archive(layer, other)))
    assert lines == [f"The image busybox:latest already exists, renaming the old one with ID {sha(config)} to empty string",
                     "Loaded image: busybox:latest"]


def test_loads_the_legacy_layout_with_shared_layer_symlinks(store):
    base, top = busybox_like_layer(), TarBuilder().file("app", b"app").bytes()
    config_one = image_config([sha(base)])
    config_two = image_config([sha(base), sha(top)], created="2024-10-01T00:00:00Z")
    builder = ArchiveBuilder()
    for v1_id, files in [("1" * 64, {"layer.tar": base}), ("2" * 64, {"layer.tar": top}),
                         ("3" * 64, None)]:
        builder.directory(v1_id)
        builder.file(f"{v1_id}/VERSION", b"1.0")
        builder.file(f"{v1_id}/json", go_json({"id": v1_id}))
        if files:
            builder.file(f"{v1_id}/layer.tar", files["layer.tar"])
        else:
            builder.symlink(f"{v1_id}/layer.tar", f"../{'1' * 64}/layer.tar")
    builder.file(sha(config_one)[7:] + ".json", config_one)
    builder.file(sha(config_two)[7:] + ".json", config_two)
    builder.file("manifest.json", go_json([
        {"Config": sha(config_one)[7:] + ".json", "RepoTags": ["base:1"], "Layers": [f"{'3' * 64}/layer.tar"]},
        {"Config": sha(config_two)[7:] + ".json", "RepoTags": None,
         "Layers": [f"{'1' * 64}/layer.tar", f"{'2' * 64}/layer.tar"]},
    ]))
    builder.file("repositories", go_json({"base": {"1": "3" * 64}}))
    lines = archive.load(store, io.BytesIO(gzip.compress(builder.bytes())))
    assert lines == ["Loaded image: base:1", f"Loaded image ID: {sha(config_two)}"]
    assert len(store.lower_dirs(sha(config_two))) == 2
    assert store.lower_dirs(sha(config_two))[1] == store.lower_dirs("base:1")[0]


@pytest.mark.parametrize("ref_name", ["localhost/app:1", "1.0"])
def test_loads_a_pure_oci_layout_with_compressed_layers(store, ref_name):
    layer = busybox_like_layer()
    compressed = gzip.compress(layer, mtime=0)
    config = image_config([sha(layer)])
    manifest = go_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": sha(config), "size": len(config)},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                    "digest": sha(compressed), "size": len(compressed)}]})
    index = go_json({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref_name}}]})
    builder = ArchiveBuilder()
    builder.file("oci-layout", go_json({"imageLayoutVersion": "1.0.0"}))
    builder.file("index.json", index)
    for blob in (config, compressed, manifest):
        builder.file("blobs/sha256/" + sha(blob)[7:], blob)
    lines = archive.load(store, io.BytesIO(lzma.compress(builder.bytes())))
    if ref_name == "1.0":
        assert lines == [f"Loaded image ID: {sha(config)}"]
    else:
        assert lines == ["Loaded image: localhost/app:1"]
    assert store.image(sha(config)).diff_ids == (sha(layer),)


def test_save_writes_the_engine_25_layout(store):
    base = make_image(store, [{"etc/base": b"b"}], tag="busybox:latest")
    store.tag(base, "busybox:1.36")
    app = make_image(store, [{"etc/base": b"b"}, {"app": b"a"}], created="2024-06-01T00:00:00Z")
    first, second = io.BytesIO(), io.BytesIO()
    archive.save(store, ["busybox", app[7:19]], first)
    archive.save(store, ["busybox", app[7:19]], second)
    assert first.getvalue() == second.getvalue(), "save is not deterministic"
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        members = tar.getmembers()
        contents = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}
    names = [m.name for m in members]
    blob_names = sorted(n for n in names if n.startswith("blobs/sha256/"))
    assert names == ["blobs", "blobs/sha256", *blob_names, "index.json", "manifest.json",
                     "oci-layout", "repositories"]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    assert all(m.mode == (0o755 if m.isdir() else 0o644) for m in members)
    for name in blob_names:
        assert sha(contents[name]) == "sha256:" + name.rpartition("/")[2], name
    assert json.loads(contents["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(contents["manifest.json"])
    base_image, app_image = store.image(base), store.image(app)
    assert manifest == [
        {"Config": f"blobs/sha256/{base[7:]}", "RepoTags": ["busybox:1.36", "busybox:latest"],
         "Layers": [f"blobs/sha256/{base_image.diff_ids[0][7:]}"]},
        {"Config": f"blobs/sha256/{app[7:]}", "RepoTags": None,
         "Layers": [f"blobs/sha256/{d[7:]}" for d in app_image.diff_ids]},
    ]
    index = json.loads(contents["index.json"])
    assert index["schemaVersion"] == 2 and index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    annotations = [d.get("annotations") for d in index["manifests"]]
    assert annotations == [
        {"io.containerd.image.name": "docker.io/library/busybox:1.36", "org.opencontainers.image.ref.name": "1.36"},
        {"io.containerd.image.name": "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name": "latest"},
        None,
    ]
    oci_manifest = json.loads(contents["blobs/sha256/" + index["manifests"][2]["digest"][7:]])
    assert oci_manifest["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": app, "size": app_image.config_size}
    assert [layer["mediaType"] for layer in oci_manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * 2
    assert json.loads(contents["repositories"]) == {
        "busybox": {"1.36": base_image.diff_ids[0][7:], "latest": base_image.diff_ids[0][7:]}}


def test_save_then_load_round_trip(store, tmp_path):
    base = make_image(store, [{"etc/base": b"b"}], tag="busybox:latest")
    app = make_image(store, [{"etc/base": b"b"}, {"app": b"a"}], tag="me/app:2")
    saved = io.BytesIO()
    archive.save(store, ["busybox:latest", "me/app:2"], saved)
    other = ImageStore(tmp_path / "other")
    assert archive.load(other, io.BytesIO(saved.getvalue())) == [
        "Loaded image: busybox:latest", "Loaded image: me/app:2"]
    assert other.resolve("busybox") == base and other.resolve("me/app:2") == app
    assert tree(other.lower_dirs(app)[0]) == tree(store.lower_dirs(app)[0])
    again = io.BytesIO()
    archive.save(other, ["busybox:latest", "me/app:2"], again)
    assert again.getvalue() == saved.getvalue()


def corrupt_cases():
    layer = busybox_like_layer()
    config = image_config([sha(layer)])
    good = docker28_archive(layer, config)
    tampered_layer = good.replace(b"\x7fELF fake", b"\x7fELF evil")
    wrong_config = docker28_archive(layer, config).replace(b'"Cmd":["sh"]', b'"Cmd":["rm"]')
    escape_layer = TarBuilder().symlink("a", "/etc").file("a/passwd", b"x").bytes()
    escaping = docker28_archive(escape_layer, image_config([sha(escape_layer)]))
    outside = ArchiveBuilder()
    outside.file("manifest.json", go_json([{"Config": "../../etc/passwd", "Layers": []}]))
    traversal = ArchiveBuilder()
    traversal.file("../evil", b"x")
    count = ArchiveBuilder()
    count.file("c.json", config)
    count.file("manifest.json", go_json([{"Config": "c.json", "Layers": []}]))
    second_bad = ArchiveBuilder()
    second_bad.file("good.tar", layer)
    second_bad.file("c.json", config)
    second_bad.file("manifest.json", go_json([
        {"Config": "c.json", "RepoTags": ["ok:1"], "Layers": ["good.tar"]},
        {"Config": "c.json", "RepoTags": ["bad tag!"], "Layers": ["good.tar"]}]))
    return {
        "tampered-layer": (tampered_layer, DigestMismatch, "diff id"),
        "tampered-config": (wrong_config, DigestMismatch, "archive config"),
        "symlink-escape-layer": (escaping, LayerError, "symlink"),
        "config-outside": (outside.bytes(), ArchiveError, "not a path inside it"),
        "entry-traversal": (traversal.bytes(), ArchiveError, "unsafe archive"),
        "layer-count": (count.bytes(), ArchiveError, "0 layers in the archive, 1 in its config"),
        "truncated": (good[: len(good) // 2], ArchiveError, "malformed archive"),
        "corrupt-gzip": (gzip.compress(good)[:-200] + b"\x00" * 200, ArchiveError, "malformed archive"),
        "corrupt-xz": (lzma.compress(good)[:300], ArchiveError, "malformed archive"),
        "not-an-archive": (b"hello" * 300, ArchiveError, "malformed archive"),
        "no-manifest": (TarBuilder().file("x").bytes(), ArchiveError, "no manifest.json"),
        "second-image-bad": (second_bad.bytes(), ValueError, "invalid reference format"),
    }


CORRUPT = corrupt_cases()


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_bad_archives_change_nothing(store, case):
    data, error_type, words = CORRUPT[case]
    existing = make_image(store, [{"keep": b"k"}], tag="keep")
    before = snapshot(store)
    with pytest.raises(error_type) as caught:
        archive.load(store, io.BytesIO(data))
    assert words in str(caught.value)
    assert snapshot(store) == before
    assert [i.id for i in ImageStore(store.root).images()] == [existing]


def test_an_independent_reader_takes_our_archive(store, tmp_path):
    """skopeo (containers/image, the library behind Podman) reads what `save` writes as a
    docker-archive, and copies it out with every blob's digest verified."""
    import subprocess

    app = make_image(store, [{"etc/base": b"b"}, {"app": b"a"}], tag="me/app:2")
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as handle:
        archive.save(store, ["me/app:2"], handle)
    inspected = subprocess.run(["skopeo", "inspect", f"docker-archive:{saved}"],
                               capture_output=True, text=True, timeout=60)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Layers"] == list(store.image(app).diff_ids)
    copied = subprocess.run(["skopeo", "copy", f"docker-archive:{saved}", f"oci:{tmp_path / 'oci'}:app"],
                            capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    manifest_digest = json.loads((tmp_path / "oci" / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((tmp_path / "oci" / "blobs" / "sha256" / manifest_digest[7:]).read_text())
    # skopeo rewrites the config as OCI's: the layers are what must come through.
    assert len(manifest["layers"]) == len(store.image(app).diff_ids)
    config = json.loads((tmp_path / "oci" / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    assert config["rootfs"]["diff_ids"] == list(store.image(app).diff_ids)
