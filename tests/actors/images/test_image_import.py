import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st
from image_tars import TarBuilder

from actors.images.changes import ChangeError, apply_changes
from actors.images.importer import import_rootfs
from actors.images.reference import InvalidReference
from actors.images.store import ImageStore


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "store", clock=lambda: 1_700_000_000.5)


def test_import_makes_a_single_layer_image(store):
    rootfs = TarBuilder().file("bin/tool", b"#!", mode=0o755).file("etc/os-release", b"ID=x").bytes()
    image_id = import_rootfs(store, __import__("io").BytesIO(gzip.compress(rootfs)), repo_tag="me/root:1",
                             changes=['CMD ["/bin/tool"]', "ENV A=1 B=two", "WORKDIR /srv",
                                      "EXPOSE 80 53/udp", "USER nobody", 'LABEL a="b c"',
                                      "VOLUME /data", "ENTRYPOINT exec thing"],
                             message="from a tarball")
    assert store.resolve("me/root:1") == image_id
    image = store.image(image_id)
    assert len(image.diff_ids) == 1
    config = store.image_config(image_id)
    assert config["created"] == "2023-11-14T22:13:20.500000000Z"
    assert config["history"] == [{"created": config["created"], "comment": "from a tarball"}]
    assert config["config"] == {
        "Cmd": ["/bin/tool"], "Env": ["A=1", "B=two"], "WorkingDir": "/srv",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "User": "nobody", "Labels": {"a": "b c"},
        "Volumes": {"/data": {}}, "Entrypoint": ["/bin/sh", "-c", "exec thing"],
    }
    assert (store.lower_dirs(image_id)[0] / "etc/os-release").read_bytes() == b"ID=x"
    assert store.history(image_id)[0]["Comment"] == "from a tarball"


def test_import_refuses_bad_input_before_storing(store):
    io = __import__("io")
    with pytest.raises(ChangeError, match="RUN is not a valid change command"):
        import_rootfs(store, io.BytesIO(TarBuilder().file("x").bytes()), changes=["RUN rm -rf /"])
    with pytest.raises(InvalidReference):
        import_rootfs(store, io.BytesIO(TarBuilder().file("x").bytes()), repo_tag="Bad Name")
    assert list((store.root / "blobs/sha256").iterdir()) == []
    image_id = import_rootfs(store, io.BytesIO(TarBuilder().file("x").bytes()))
    assert store.image_config(image_id)["history"][0]["comment"] == "Imported from -"
    assert store.list_images()[0]["RepoTags"] == []


def test_changes_details():
    assert apply_changes({"Env": ["A=0", "K=v"]}, ["ENV A 1 2"]) == {"Env": ["K=v", "A=1 2"]}
    assert apply_changes({"WorkingDir": "/a"}, ["WORKDIR b", "WORKDIR ../c"]) == {"WorkingDir": "/a/c"}
    assert apply_changes({}, ["EXPOSE 8000-8002/tcp"])["ExposedPorts"] == {
        "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}
    assert apply_changes({}, ['VOLUME ["/a", "/b"]'])["Volumes"] == {"/a": {}, "/b": {}}
    assert apply_changes({}, ["stopsignal SIGINT"]) == {"StopSignal": "SIGINT"}
    for bad in ["EXPOSE 70000", "EXPOSE http", "ENV", "LABEL novalue", "ENV A", "FROM x"]:
        with pytest.raises(ChangeError):
            apply_changes({}, [bad])
    original = {"Env": ["A=1"]}
    apply_changes(original, ["ENV A=2"])
    assert original == {"Env": ["A=1"]}


keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
values = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00\n\r"), max_size=20)


@given(st.dictionaries(keys, values, min_size=1, max_size=5))
def test_env_and_label_round_trip_through_quoting(pairs):
    quoted = " ".join(f"{k}={__import__('shlex').quote(v)}" for k, v in pairs.items())
    config = apply_changes({}, [f"ENV {quoted}", f"LABEL {quoted}"])
    assert config["Env"] == [f"{k}={v}" for k, v in pairs.items()]
    assert config["Labels"] == pairs
