"""The registry's storage driven side by side with a dictionary model: uploads appended,
committed with right and wrong digests, cancelled, mounted, deleted, and the storage
reopened (as after a restart) between any two steps."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from actors.images.registry_protocol import RegistryError
from actors.images.registry_storage import RegistryStorage

REPOSITORIES = ("one", "two/sub")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 7):
        yield data[start:start + 7]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class StorageModel(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="registry-model-"))
        self.storage = RegistryStorage(self.root)
        self.uploads: dict[str, tuple[str, bytes]] = {}  # id -> (repository, data so far)
        self.blobs: dict[tuple[str, str], bytes] = {}  # (repository, digest) -> content

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(target=sessions, repository=st.sampled_from(REPOSITORIES))
    def start(self, repository: str) -> str:
        session = self.storage.start_upload(repository)
        self.uploads[session.uuid] = (repository, b"")
        return session.uuid

    @rule(session_id=sessions, data=st.binary(max_size=40))
    def append(self, session_id: str, data: bytes) -> None:
        if session_id not in self.uploads:
            return
        repository, so_far = self.uploads[session_id]

        async def run() -> int:
            session = await self.storage.get_upload(repository, session_id)
            return await self.storage.append_upload(session, _chunks(data))

        assert trio.run(run) == len(data)
        self.uploads[session_id] = (repository, so_far + data)

    @rule(session_id=sessions, correct=st.booleans())
    def finish(self, session_id: str, correct: bool) -> None:
        if session_id not in self.uploads:
            return
        repository, data = self.uploads.pop(session_id)
        digest = _digest(data if correct else data + b"!")

        async def run() -> None:
            session = await self.storage.get_upload(repository, session_id)
            try:
                await self.storage.finish_upload(session, digest)
            except RegistryError as exc:
                assert exc.code == "DIGEST_INVALID" and not correct
                self.storage.cancel_upload(session)
                return
            assert correct

        trio.run(run)
        if correct:
            self.blobs[(repository, digest)] = data

    @rule(session_id=sessions)
    def cancel(self, session_id: str) -> None:
        if session_id not in self.uploads:
            return
        repository, _ = self.uploads.pop(session_id)
        session = trio.run(self.storage.get_upload, repository, session_id)
        self.storage.cancel_upload(session)

    @precondition(lambda self: bool(self.blobs))
    @rule(data=st.data())
    def mount_or_delete(self, data: st.DataObject) -> None:
        repository, digest = data.draw(st.sampled_from(sorted(self.blobs)))
        if data.draw(st.booleans()):
            target = data.draw(st.sampled_from(REPOSITORIES))
            assert self.storage.mount_blob(target, digest, repository)
            self.blobs[(target, digest)] = self.blobs[(repository, digest)]
        else:
            self.storage.delete_blob(repository, digest)
            del self.blobs[(repository, digest)]

    @rule()
    def restart(self) -> None:
        self.storage = RegistryStorage(self.root)

    @invariant()
    def sessions_hold_what_was_sent(self) -> None:
        for session_id, (repository, data) in self.uploads.items():
            session = trio.run(self.storage.get_upload, repository, session_id)
            assert session.size == len(data)
            assert session.hasher.hexdigest() == hashlib.sha256(data).hexdigest()

    @invariant()
    def blobs_are_exactly_the_committed_ones(self) -> None:
        for repository in REPOSITORIES:
            for (owner, digest), data in self.blobs.items():
                if owner != repository:
                    continue
                info = self.storage.blob_info(repository, digest)
                assert info.path.read_bytes() == data
        linked = {
            (repository, f"sha256:{path.name}")
            for repository in REPOSITORIES
            for path in (self.root / "repositories" / repository / "_layers" / "sha256").glob("*")
        }
        assert linked == set(self.blobs)


TestStorageModel = StorageModel.TestCase
TestStorageModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
