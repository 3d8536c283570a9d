import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import threading

import pytest
from image_tars import TarBuilder, make_image

from actors.images.errors import DigestMismatch, ImageConflict, ImageNotFound, InvalidImage
from actors.images.layers import LayerError
from actors.images.reference import InvalidReference
from actors.images.store import ImageStore, ImageUser, chain_ids


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def test_blobs_are_verified_and_a_mismatch_stores_nothing(store):
    digest = store.put_blob(b"hello")
    assert digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.read_blob(digest) == b"hello"
    assert store.put_blob(io.BytesIO(b"hello"), digest) == digest
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="expected sha256:0000"):
        store.put_blob(b"other", wrong)
    assert not store.has_blob(wrong)
    assert list((store.root / "tmp").iterdir()) == []
    with pytest.raises(InvalidImage, match="invalid digest"):
        store.put_blob(b"x", "md5:abc")


def test_manifests_keep_their_media_type(store):
    data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}).encode()
    digest = store.put_manifest(data)
    assert store.get_manifest(digest) == (data, "application/vnd.docker.distribution.manifest.v2+json")
    with pytest.raises(InvalidImage, match="not JSON"):
        store.put_manifest(b"{nope")


def test_chain_ids_follow_docker():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    second = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, second]


def test_image_id_is_the_digest_of_the_stored_config(store):
    image_id = make_image(store, [{"a": b"1"}], tag="x")
    assert image_id == "sha256:" + hashlib.sha256(store.config_bytes(image_id)).hexdigest()
    config = store.image_config(image_id)
    assert config["rootfs"]["diff_ids"] == list(store.image(image_id).diff_ids)
    assert make_image(store, [{"a": b"1"}]) == image_id


def test_layers_are_unpacked_once_per_chain_and_shared(store):
    base = make_image(store, [{"etc/base": b"b"}], tag="base")
    app = make_image(store, [{"etc/base": b"b"}, {"app": b"a"}], tag="app")
    other = make_image(store, [{"etc/base": b"b"}, {"other": b"o"}], tag="other")
    assert len(list((store.root / "layers").iterdir())) == 3
    lowers = store.lower_dirs(app)
    assert [sorted(p.name for p in d.rglob("*")) for d in lowers] == [["app"], ["base", "etc"]]
    assert store.lower_dirs(base)[0] == lowers[1] == store.lower_dirs(other)[1]
    store.delete("base")
    store.delete("app")
    assert lowers[1].is_dir(), "a layer still used by `other` was removed"
    assert not lowers[0].exists()
    store.delete("other")
    assert list((store.root / "layers").iterdir()) == []
    assert list((store.root / "blobs/sha256").iterdir()) == []


def test_create_image_refuses_unknown_layers_and_bad_configs(store):
    with pytest.raises(InvalidImage, match="not in the store"):
        store.create_image({}, ["sha256:" + "c" * 64])
    with pytest.raises(InvalidImage, match="rootfs"):
        store.register_image(b'{"rootfs": 3}')
    with pytest.raises(InvalidImage, match="not JSON"):
        store.register_image(b"{")
    with pytest.raises(DigestMismatch):
        store.register_image(b'{"rootfs":{"type":"layers","diff_ids":[]}}', expected_id="sha256:" + "d" * 64)
    assert store.images() == []


def test_a_hostile_layer_is_refused_when_added(store):
    with pytest.raises(LayerError, match="absolute path"):
        store.add_layer_from_tar(TarBuilder().file("/etc/passwd", b"x").stream())
    assert list((store.root / "blobs/sha256").iterdir()) == []
    assert list((store.root / "tmp").iterdir()) == []


def test_hostile_layer_found_at_extraction_leaves_no_image(store):
    # Names pass the header check; the symlink escape is only seen while extracting.
    diff_id = store.add_layer_from_tar(
        TarBuilder().symlink("a", "/etc").file("a/passwd", b"x").stream())
    with pytest.raises(LayerError, match="symlink"):
        store.create_image({}, [diff_id])
    assert store.images() == []
    assert list((store.root / "layers").iterdir()) == []
    assert list((store.root / "tmp").iterdir()) == []


def test_resolution(store):
    image_id = make_image(store, [{"a": b"1"}], tag="busybox")
    store.tag(image_id, "host:5000/x:2")
    hex_id = image_id[len("sha256:"):]
    for name in ["busybox", "busybox:latest", "docker.io/library/busybox", image_id, hex_id,
                 hex_id[:12], "sha256:" + hex_id[:5], "host:5000/x:2"]:
        assert store.resolve(name) == image_id, name
    with pytest.raises(ImageNotFound, match=r"^No such image: nothing:latest$"):
        store.resolve("nothing")
    with pytest.raises(ImageNotFound, match="No such image: x:9"):
        store.resolve("x:9")
    with pytest.raises(InvalidReference):
        store.resolve("Bad:Name:")


def test_ambiguous_prefix_is_not_found(store):
    ids = [make_image(store, [{str(n): b"x"}]) for n in range(40)]
    by_first = {}
    for image_id in ids:
        by_first.setdefault(image_id[7], []).append(image_id)
    shared = next(group for group in by_first.values() if len(group) > 1)
    with pytest.raises(ImageNotFound):
        store.resolve(shared[0][7])


def test_repo_digests(store):
    image_id = make_image(store, [{"a": b"1"}], tag="app:1")
    manifest = store.put_manifest(b'{"schemaVersion":2}')
    store.add_repo_digest("docker.io/library/app", manifest, image_id)
    assert store.repo_digests(image_id) == [f"app@{manifest}"]
    assert store.resolve(f"app@{manifest}") == image_id
    # Untagging the last tag of a repository drops its digests too, then the image.
    records = store.delete("app:1")
    assert records[:2] == [{"Untagged": "app:1"}, {"Untagged": f"app@{manifest}"}]
    assert {"Deleted": image_id} in records
    assert not store.has_blob(manifest)


def test_rmi_untags_first_when_several_tags(store):
    image_id = make_image(store, [{"a": b"1"}], tag="one")
    store.tag(image_id, "two")
    assert store.delete("one") == [{"Untagged": "one:latest"}]
    assert store.exists(image_id)
    (chain,) = store.image(image_id).chain_ids
    assert store.delete("two") == [
        {"Untagged": "two:latest"}, {"Deleted": image_id}, {"Deleted": chain}]


def test_rmi_by_id_with_several_repositories_needs_force(store):
    image_id = make_image(store, [{"a": b"1"}], tag="one")
    store.tag(image_id, "two")
    with pytest.raises(ImageConflict) as caught:
        store.delete(image_id[7:19])
    assert str(caught.value) == (
        f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
        "image is referenced in multiple repositories")
    records = store.delete(image_id[7:19], force=True)
    assert records[:3] == [{"Untagged": "one:latest"}, {"Untagged": "two:latest"}, {"Deleted": image_id}]


def test_rmi_of_an_image_a_container_uses(store):
    image_id = make_image(store, [{"a": b"1"}], tag="busybox")
    container = "c" * 64
    stopped = [ImageUser(container, image_id, running=False)]
    with pytest.raises(ImageConflict) as caught:
        store.delete("busybox", in_use=stopped)
    assert str(caught.value) == (
        f'conflict: unable to remove repository reference "busybox" (must force) - container '
        f"cccccccccccc is using its referenced image {image_id[7:19]}")
    with pytest.raises(ImageConflict, match=r"\(must be forced\) - image is being used by stopped container cccccccccccc"):
        store.delete(image_id, in_use=stopped)
    running = [ImageUser(container, image_id, running=True)]
    with pytest.raises(ImageConflict, match=r"\(cannot be forced\) - image is being used by running container"):
        store.delete(image_id, force=True, in_use=running)
    assert store.repo_tags(image_id) == ["busybox:latest"], "a refused delete changed something"
    # A stopped container's layers survive a forced delete through its hold.
    lowers = store.hold(container, image_id)
    records = store.delete("busybox", force=True, in_use=stopped)
    assert records[:2] == [{"Untagged": "busybox:latest"}, {"Deleted": image_id}]
    assert all(path.is_dir() for path in lowers)
    assert store.held_lower_dirs(container) == lowers
    store.release(container)
    assert not any(path.exists() for path in lowers)


def test_children_block_delete_and_parents_are_pruned(store):
    parent = make_image(store, [{"a": b"1"}])
    child = make_image(store, [{"a": b"1"}, {"b": b"2"}], tag="child", parent=parent)
    with pytest.raises(ImageConflict, match=r"\(cannot be forced\) - image has dependent child images"):
        store.delete(parent, force=True)
    assert [i["Id"] for i in store.list_images()] == [child]
    assert {i["Id"] for i in store.list_images(all=True)} == {parent, child}
    parent_chain, child_chain = store.image(child).chain_ids
    assert store.delete("child") == [
        {"Untagged": "child:latest"}, {"Deleted": child}, {"Deleted": child_chain},
        {"Deleted": parent}, {"Deleted": parent_chain}]
    assert store.images() == []
    parent = make_image(store, [{"a": b"1"}])
    make_image(store, [{"a": b"1"}, {"b": b"2"}], tag="child", parent=parent)
    store.delete("child", noprune=True)
    assert [i.id for i in store.images()] == [parent]


def test_tag_validation(store):
    image_id = make_image(store, [{"a": b"1"}])
    with pytest.raises(InvalidImage, match="digest"):
        store.tag(image_id, "x@sha256:" + "a" * 64)
    with pytest.raises(InvalidReference):
        store.tag(image_id, "UPPER")
    with pytest.raises(ImageNotFound):
        store.tag("missing", "x")
    assert store.tag_repository(image_id, "docker.io/library/b", "1") == "docker.io/library/b:1"
    assert store.repo_tags(image_id) == ["b:1"]


def test_list_images_fields_and_filters(store):
    old = make_image(store, [{"a": b"1"}], tag="busybox:1", created="2020-01-01T00:00:00Z",
                     labels={"team": "a"})
    new = make_image(store, [{"a": b"1"}, {"b": b"22"}], tag="user/app:2",
                     created="2024-01-01T00:00:00.123456789Z", labels={"team": "b", "x": "y"})
    dangling = make_image(store, [{"c": b"333"}], created="2022-01-01T00:00:00Z")
    summaries = store.list_images(in_use=[ImageUser("c1", new), ImageUser("c2", new)],
                                  shared_size=True)
    assert [s["Id"] for s in summaries] == [new, dangling, old]
    top = summaries[0]
    assert top == {
        "Containers": 2, "Created": 1704067200, "Id": new, "Labels": {"team": "b", "x": "y"},
        "ParentId": "", "RepoDigests": [], "RepoTags": ["user/app:2"], "SharedSize": 1,
        "Size": 3,
    }
    assert store.list_images()[1]["Containers"] == -1
    ids = lambda **kw: [s["Id"] for s in store.list_images(**kw)]  # noqa: E731
    assert ids(filters={"dangling": {"true": True}}) == [dangling]
    assert ids(filters={"dangling": ["false"]}) == [new, old]
    assert ids(filters={"reference": ["busy*"]}) == [old]
    assert ids(filters={"reference": ["user/*:2"]}) == [new]
    assert ids(filters={"reference": ["*"]}) == [old]  # `*` does not cross "/"
    assert ids(filters={"label": ["team=b"]}) == [new]
    assert ids(filters={"label": ["team"]}) == [new, old]
    assert ids(filters={"before": ["user/app:2"]}) == [dangling, old]
    assert ids(filters={"since": ["busybox:1"]}) == [new, dangling]
    assert ids(filters={"until": ["2021-01-01T00:00:00Z"]}) == [old]
    with pytest.raises(InvalidImage, match="invalid filter 'bogus'"):
        store.list_images(filters={"bogus": ["1"]})


def test_inspect_and_history(store):
    parent = make_image(store, [{"a": b"1"}], tag="base:1")
    diff = store.add_layer_from_tar(TarBuilder().file("b", b"22").stream())
    config = store.image_config(parent)
    config.pop("rootfs")
    config["config"] = {"Env": ["PATH=/bin"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}}
    config["history"] = [*config["history"],
                         {"created": "2024-02-01T00:00:00Z", "created_by": "ENV x", "empty_layer": True},
                         {"created": "2024-02-02T00:00:00Z", "created_by": "RUN b", "comment": "c"}]
    child = store.create_image(config, [*store.image(parent).diff_ids, diff], parent=parent)
    store.tag(child, "app")
    info = store.inspect("app")
    assert info["Id"] == child and info["Parent"] == parent
    assert info["RepoTags"] == ["app:latest"] and info["RepoDigests"] == []
    assert info["Config"]["Env"] == ["PATH=/bin"] and info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert info["Config"]["Tty"] is False and "Healthcheck" not in info["Config"]
    assert info["RootFS"] == {"Type": "layers", "Layers": list(store.image(child).diff_ids)}
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert info["GraphDriver"]["Data"]["UpperDir"] == str(store.lower_dirs(child)[0])
    assert info["GraphDriver"]["Data"]["LowerDir"] == str(store.lower_dirs(child)[1])
    assert info["Size"] == 3 and info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["Metadata"]["LastTagTime"].endswith("Z")
    assert info["Comment"] == "c"
    history = store.history("app")
    assert [h["Id"] for h in history] == [child, "<missing>", parent]
    assert [h["Size"] for h in history] == [2, 0, 1]
    assert history[0]["Tags"] == ["app:latest"] and history[2]["Tags"] == ["base:1"]
    assert history[1]["CreatedBy"] == "ENV x" and history[0]["Comment"] == "c"
    assert list(history[0]) == ["Id", "Created", "CreatedBy", "Tags", "Size", "Comment"]


def test_prune(store):
    keep = make_image(store, [{"a": b"1"}], tag="keep")
    dangling = make_image(store, [{"d": b"1234"}])
    used = make_image(store, [{"u": b"1"}])
    result = store.prune(in_use=[ImageUser("c", used)])
    assert result["ImagesDeleted"][0] == {"Deleted": dangling}
    assert result["SpaceReclaimed"] == 4
    assert {i.id for i in store.images()} == {keep, used}
    labelled = make_image(store, [{"l": b"1"}], tag="lab", labels={"drop": "yes"})
    result = store.prune(dangling_only=False, filters={"label": ["drop=yes"]})
    assert result["ImagesDeleted"][:2] == [{"Untagged": "lab:latest"}, {"Deleted": labelled}]
    result = store.prune(filters={"dangling": ["false"]}, in_use=[ImageUser("c", used)])
    assert {"Deleted": keep} in result["ImagesDeleted"]
    assert [i.id for i in store.images()] == [used]
    assert store.prune(in_use=[ImageUser("c", used)]) == {"ImagesDeleted": [], "SpaceReclaimed": 0}


def test_compressed_blob_to_layer_mapping(store):
    tar = TarBuilder().file("x", b"y").bytes()
    compressed = store.put_blob(gzip.compress(tar, mtime=0))
    diff_id = store.add_layer_from_blob(compressed)
    assert diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert store.compressed_digests(diff_id) == [compressed]
    assert store.diff_id_for(compressed) == diff_id
    image_id = store.create_image({}, [diff_id])
    reopened = ImageStore(store.root)
    assert reopened.compressed_digests(diff_id) == [compressed]
    reopened.delete(image_id)
    assert reopened.compressed_digests(diff_id) == []
    assert not reopened.has_blob(compressed)


def test_state_survives_reopening_and_orphans_are_collected(store):
    image_id = make_image(store, [{"a": b"1"}], tag="x")
    orphan_layer = store.add_layer_from_tar(TarBuilder().file("o", b"o").stream())
    orphan_blob = store.put_blob(b"orphan")
    (store.root / "tmp" / "leftover-dir").mkdir()
    (store.root / "tmp" / "leftover-file").write_bytes(b"junk")
    reopened = ImageStore(store.root)
    assert reopened.resolve("x") == image_id
    assert reopened.lower_dirs(image_id) == store.lower_dirs(image_id)
    assert not reopened.has_blob(orphan_layer) and not reopened.has_blob(orphan_blob)
    assert reopened.verify() == []


def test_layer_from_directory_round_trip(store, tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/conf").write_text("v=1")
    diff_id = store.add_layer_from_directory(upper)
    image_id = store.create_image({}, [diff_id])
    assert (store.lower_dirs(image_id)[0] / "etc/conf").read_text() == "v=1"


def test_concurrent_creates_tags_and_deletes(store):
    errors = []
    base = {"shared/base": b"base"}

    def work(number):
        try:
            for round_ in range(3):
                image_id = make_image(store, [base, {f"own/{number}/{round_}": b"x"}])
                store.tag(image_id, f"t{number}:{round_}")
                if round_ == 1:
                    store.delete(f"t{number}:{round_}")
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.images()) == 12
    assert store.verify() == []
    assert ImageStore(store.root).verify() == []
    assert len(list((store.root / "layers").iterdir())) == 13


@pytest.mark.root
def test_lower_dirs_mount_as_the_image_rootfs(store, tmp_path):
    base = store.add_layer_from_tar(
        TarBuilder().file("etc/motd", b"hi").file("etc/keep", b"k").symlink("bin", "usr/bin").stream())
    top = store.add_layer_from_tar(TarBuilder().file("etc/.wh.motd").file("etc/new", b"n").stream())
    image_id = store.create_image({}, [base, top])
    upper, work, merged = (tmp_path / name for name in ("upper", "work", "merged"))
    for directory in (upper, work, merged):
        directory.mkdir()
    lower = ":".join(str(p) for p in store.lower_dirs(image_id))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["keep", "new"]
        assert os.readlink(merged / "bin") == "usr/bin"
        (merged / "etc/keep").unlink()
        (merged / "etc/added").write_text("a")
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    # The container's changes become a layer, and a child image shows them.
    diff_id = store.add_layer_from_directory(upper)
    child = store.create_image({}, [base, top, diff_id], parent=image_id)
    layers_top_first = store.lower_dirs(child)
    assert (layers_top_first[0] / "etc/added").read_text() == "a"
    whiteout = os.stat(layers_top_first[0] / "etc/keep", follow_symlinks=False)
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
