"""The cache index (cache.py): a model-checked key -> image map that survives restarts,
and --cache-from matching on image histories."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from actors.builder.cache import BuildCache, CacheCandidate, match_cache_from

KEYS = st.sampled_from([f"sha256:{index:064x}" for index in range(6)])
IMAGES = st.sampled_from([f"sha256:{index:064x}" for index in range(100, 105)])


class CacheIndexMachine(RuleBasedStateMachine):
    """The index against a dict; save + reopen at any point must give back the model as
    of the last save (the entries after it are lost, as after a crash)."""

    @initialize()
    def open(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.path = Path(self.directory.name) / "cache.json"
        self.cache = BuildCache(self.path, limit=4)
        self.model: dict[str, str] = {}
        self.saved: dict[str, str] = {}

    def teardown(self) -> None:
        self.directory.cleanup()

    def _bound(self) -> None:
        while len(self.model) > 4:
            del self.model[next(iter(self.model))]

    @rule(key=KEYS, image=IMAGES)
    def record(self, key: str, image: str) -> None:
        self.cache.record(key, image)
        if self.model.get(key) != image:
            self.model.pop(key, None)
            self.model[key] = image
        self._bound()

    @rule(key=KEYS)
    def forget(self, key: str) -> None:
        self.cache.forget(key)
        self.model.pop(key, None)

    @rule(existing=st.sets(IMAGES))
    def retain_only(self, existing: set[str]) -> None:
        dropped = self.cache.retain_only(existing)
        before = len(self.model)
        self.model = {key: image for key, image in self.model.items() if image in existing}
        assert dropped == before - len(self.model)

    @rule()
    def save(self) -> None:
        self.cache.save()
        self.saved = dict(self.model)

    @rule()
    def crash_and_reopen(self) -> None:
        self.cache = BuildCache(self.path, limit=4)
        self.model = dict(self.saved)

    @invariant()
    def agrees_with_the_model(self) -> None:
        if hasattr(self, "cache"):
            assert self.cache.snapshot() == self.model
            for key, image in self.model.items():
                assert self.cache.lookup(key) == image


TestCacheIndex = CacheIndexMachine.TestCase
TestCacheIndex.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_a_damaged_index_is_set_aside_and_the_cache_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text('{"version": 1, "entries": {"k": 3}}')
    cache = BuildCache(path)
    assert len(cache) == 0
    assert (tmp_path / "cache.json.damaged").exists() and not path.exists()
    cache.record("k", "sha256:x")
    cache.save()
    assert json.loads(path.read_text()) == {"version": 1, "entries": {"k": "sha256:x"}}
    path.write_text("not json")
    assert len(BuildCache(path)) == 0


def test_saving_an_unchanged_index_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache = BuildCache(path)
    cache.save()
    assert not path.exists()
    cache.record("k", "sha256:a")
    cache.save()
    written = path.stat().st_mtime_ns
    cache.record("k", "sha256:a")
    cache.save()
    assert path.stat().st_mtime_ns == written


def _image(history: list[tuple[str, bool]], layers: list[str]) -> dict[str, object]:
    return {
        "history": [{"created_by": text, **({"empty_layer": True} if empty else {})} for text, empty in history],
        "rootfs": {"type": "layers", "diff_ids": layers},
    }


BASE = _image([("ADD rootfs", False), ("CMD sh", True)], ["sha256:l1"])
BUILT = CacheCandidate(
    "sha256:built",
    _image(
        [("ADD rootfs", False), ("CMD sh", True), ("/bin/sh -c make", False), ("/bin/sh -c #(nop)  ENV A=1", True)],
        ["sha256:l1", "sha256:l2"],
    ),
)


def test_cache_from_matches_a_history_that_continues_the_parents() -> None:
    match = match_cache_from([BUILT], BASE, "/bin/sh -c make")
    assert match is not None and not match.is_last
    assert match.diff_ids == ("sha256:l1", "sha256:l2")
    assert [entry["created_by"] for entry in match.history][-1] == "/bin/sh -c make"
    parent = _image([("ADD rootfs", False), ("CMD sh", True), ("/bin/sh -c make", False)], ["sha256:l1", "sha256:l2"])
    last = match_cache_from([BUILT], parent, "/bin/sh -c #(nop)  ENV A=1")
    assert last is not None and last.is_last and last.diff_ids == ("sha256:l1", "sha256:l2")


@pytest.mark.parametrize(
    ("parent", "created_by"),
    [
        (BASE, "/bin/sh -c make other"),
        (_image([("ADD other", False), ("CMD sh", True)], ["sha256:l1"]), "/bin/sh -c make"),
        (_image([("ADD rootfs", False), ("CMD sh", True)], ["sha256:other"]), "/bin/sh -c make"),
        (BUILT.config, "/bin/sh -c anything"),
    ],
    ids=["other-command", "other-history", "other-layers", "nothing-after"],
)
def test_cache_from_refuses_what_does_not_continue(parent: dict[str, object], created_by: str) -> None:
    assert match_cache_from([BUILT], parent, created_by) is None


def test_cache_from_on_scratch_matches_the_first_entry() -> None:
    candidate = CacheCandidate("sha256:c", _image([("COPY file:x in / ", False)], ["sha256:l9"]))
    match = match_cache_from([candidate], None, "COPY file:x in / ")
    assert match is not None and match.is_last and match.diff_ids == ("sha256:l9",)
