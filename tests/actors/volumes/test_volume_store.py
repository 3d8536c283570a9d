"""The local volume store: names, idempotent create, in-use refusal, filters, copy-up, crash sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.volumes.store import (
    ANONYMOUS_LABEL,
    InvalidVolume,
    VolumeInUse,
    VolumeNotFound,
    VolumeStore,
    check_name,
    matches_filters,
)


def test_create_is_idempotent_and_lists_sorted(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    volume, created = store.create("data", labels={"team": "a"})
    assert created
    again, created_again = store.create("data", labels={"other": "x"})
    assert not created_again
    assert again == volume
    store.create("alpha")
    assert [v.name for v in store.list()] == ["alpha", "data"]
    assert volume.to_api()["Mountpoint"] == str(tmp_path / "data" / "_data")
    assert volume.to_api()["Labels"] == {"team": "a"}


@pytest.mark.parametrize("bad", ["a", "-x", "has space", "slash/name", "dots..ok?", ""])
def test_bad_names_are_refused_with_dockers_message(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidVolume, match="includes invalid characters for a local volume name"):
        VolumeStore(tmp_path).create(bad)
    assert list(tmp_path.iterdir()) == []


@given(st.text(max_size=20))
def test_name_check_accepts_exactly_dockers_pattern(name: str) -> None:
    import re

    valid = re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name) is not None
    try:
        check_name(name)
        assert valid
    except InvalidVolume:
        assert not valid


def test_remove_refuses_a_volume_in_use_and_then_removes(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.create("data")
    (store.data_path("data") / "file").write_text("kept")
    with pytest.raises(VolumeInUse, match=r"remove data: volume is in use - \[web\]"):
        store.remove("data", in_use_by=["web"])
    assert (store.data_path("data") / "file").read_text() == "kept"
    store.remove("data")
    assert not (tmp_path / "data").exists()
    with pytest.raises(VolumeNotFound, match="get data: no such volume"):
        store.get("data")


def test_unsupported_driver_and_options_create_nothing(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    with pytest.raises(InvalidVolume, match='plugin "nfs" not found'):
        store.create("x1", driver="nfs")
    with pytest.raises(InvalidVolume, match="invalid option key"):
        store.create("x2", options={"weird": "1"})
    with pytest.raises(InvalidVolume, match="device=<absolute host path>"):
        store.create("x3", options={"o": "bind", "device": "relative"})
    assert store.list() == []


def test_an_interrupted_create_is_swept_at_open(tmp_path: Path) -> None:
    (tmp_path / "half" / "_data").mkdir(parents=True)
    store = VolumeStore(tmp_path)
    assert store.list() == []
    assert not (tmp_path / "half").exists()


def test_metadata_is_plain_json_written_whole(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.create("data", labels={ANONYMOUS_LABEL: ""})
    meta = json.loads((tmp_path / "data" / "volume.json").read_text())
    assert meta["Driver"] == "local"
    assert store.get("data").anonymous


def test_copy_up_only_into_an_empty_volume(tmp_path: Path) -> None:
    source = tmp_path / "image-path"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("from image")
    (source / "link").symlink_to("sub/a.txt")
    store = VolumeStore(tmp_path / "volumes")
    store.create("data")
    assert store.populate_if_empty("data", source)
    data = store.data_path("data")
    assert (data / "sub" / "a.txt").read_text() == "from image"
    assert (data / "link").is_symlink()
    (source / "sub" / "a.txt").write_text("changed")
    assert not store.populate_if_empty("data", source)
    assert (data / "sub" / "a.txt").read_text() == "from image"


def test_filters(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    web, _ = store.create("web-data", labels={"app": "web"})
    db, _ = store.create("db-data", labels={"app": "db", "tier": "back"})
    in_use = {"web-data"}

    def names(filters: dict[str, list[str]]) -> list[str]:
        return [v.name for v in (web, db) if matches_filters(v, filters, in_use)]

    assert names({"name": ["web"]}) == ["web-data"]
    assert names({"label": ["app"]}) == ["web-data", "db-data"]
    assert names({"label": ["app=db"]}) == ["db-data"]
    assert names({"label!": ["tier"]}) == ["web-data"]
    assert names({"dangling": ["true"]}) == ["db-data"]
    assert names({"dangling": ["false"]}) == ["web-data"]
    with pytest.raises(InvalidVolume, match="invalid filter 'colour'"):
        names({"colour": ["red"]})
