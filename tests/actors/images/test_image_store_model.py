"""The store's references against a tiny model, through tags, deletes and reopenings."""

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from image_tars import make_image

from actors.images import reference as references
from actors.images.errors import ImageConflict, ImageNotFound
from actors.images.store import ImageStore, ImageUser

NAMES = ["a", "b", "c:1", "other/x:2"]
CONTENTS = [{"f": b"1"}, {"f": b"2"}, {"g": b"3"}]


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="flotta-model-"))
        self.store = ImageStore(self.directory)
        self.images: dict[int, str] = {}  # content index -> image id
        self.tags: dict[str, str] = {}  # normalized tag -> image id
        self.users: list[ImageUser] = []

    def teardown(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(content=st.integers(0, len(CONTENTS) - 1))
    def create(self, content):
        self.images[content] = make_image(self.store, [CONTENTS[content]])

    @precondition(lambda self: self.images)
    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def tag(self, data, name):
        image_id = data.draw(st.sampled_from(sorted(self.images.values())))
        self.store.tag(image_id, name)
        self.tags[references.normalize(name)] = image_id

    @rule(name=st.sampled_from(NAMES))
    def untag(self, name):
        full = references.normalize(name)
        users = self.users
        try:
            records = self.store.delete(name, in_use=users)
        except ImageNotFound:
            assert full not in self.tags
            return
        except ImageConflict:
            assert any(u.image_id == self.tags[full] for u in users)
            return
        image_id = self.tags.pop(full)
        assert records[0] == {"Untagged": references.familiar(full)}
        if image_id not in self.tags.values():
            assert {"Deleted": image_id} in records
            self._forget(image_id)

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    def delete_by_id(self, data):
        image_id = data.draw(st.sampled_from(sorted(self.images.values())))
        try:
            records = self.store.delete(image_id, force=True, in_use=self.users)
        except ImageConflict:
            assert any(u.image_id == image_id and u.running for u in self.users)
            return
        assert {"Deleted": image_id} in records
        for name in [n for n, i in self.tags.items() if i == image_id]:
            del self.tags[name]
        self._forget(image_id)

    @precondition(lambda self: self.images)
    @rule(data=st.data(), running=st.booleans())
    def container(self, data, running):
        image_id = data.draw(st.sampled_from(sorted(self.images.values())))
        self.users.append(ImageUser(f"c{len(self.users)}", image_id, running))

    @rule()
    def containers_removed(self):
        self.users = []

    @rule()
    def reopen(self):
        self.store = ImageStore(self.directory)

    def _forget(self, image_id):
        for content in [c for c, i in self.images.items() if i == image_id]:
            del self.images[content]

    @invariant()
    def references_agree(self):
        for name, image_id in self.tags.items():
            assert self.store.resolve(name) == image_id
        listed = {i.id for i in self.store.images()}
        assert listed == set(self.images.values())
        tags = sorted(t for s in self.store.list_images(all=True) for t in s["RepoTags"])
        assert tags == sorted(references.familiar(n) for n in self.tags)

    @invariant()
    def consistent(self):
        assert self.store.verify() == []


StoreModel.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)
TestStoreModel = StoreModel.TestCase
