"""The volumes actor: the local volume store behind messages."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import trio

from actors.errdefs import Conflict, InvalidParameter, NotFound
from actors.volumes.messages import (
    CreateVolume,
    InspectVolume,
    ListVolumes,
    PopulateVolume,
    PruneVolumes,
    RemoveVolume,
    VolumeInfo,
    VolumesResult,
)
from actors.volumes.store import (
    ANONYMOUS_LABEL,
    InvalidVolume,
    VolumeInUse,
    VolumeNotFound,
    VolumeStore,
    matches_filters,
)
from runtime.actor import Actor


class VolumesActor(Actor):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store: VolumeStore | None = None

    async def started(self) -> None:
        self.store = await trio.to_thread.run_sync(VolumeStore, self.root)

    async def receive(self, message: Any) -> Any:
        store = self.store
        assert store is not None
        try:
            return await self._handle(store, message)
        except VolumeNotFound as error:
            raise NotFound(str(error)) from None
        except VolumeInUse as error:
            raise Conflict(str(error)) from None
        except InvalidVolume as error:
            raise InvalidParameter(str(error)) from None

    async def _handle(self, store: VolumeStore, message: Any) -> Any:
        match message:
            case CreateVolume(name, driver, labels, options, anonymous):
                labels = dict(labels)
                if not name:
                    name = secrets.token_hex(32)
                    anonymous = True
                if anonymous:
                    labels.setdefault(ANONYMOUS_LABEL, "")
                volume, created = store.create(name, driver or "local", labels, options)
                return VolumeInfo(volume.to_api(), created)
            case InspectVolume(name):
                return VolumeInfo(store.get(name).to_api())
            case ListVolumes(filters, in_use):
                used = set(in_use)
                return VolumesResult(
                    [volume.to_api() for volume in store.list() if matches_filters(volume, filters, used)]
                )
            case RemoveVolume(name, force, used_by):
                store.get(name)
                await trio.to_thread.run_sync(store.remove, name, used_by, force)
                return VolumesResult(None)
            case PruneVolumes(filters, in_use):
                return VolumesResult(await trio.to_thread.run_sync(self._prune, store, filters, set(in_use)))
            case PopulateVolume(name, source):
                copied = await trio.to_thread.run_sync(store.populate_if_empty, name, Path(source))
                return VolumesResult(copied)
        raise InvalidParameter(f"volumes: unexpected message {type(message).__name__}")

    @staticmethod
    def _prune(store: VolumeStore, filters: dict[str, list[str]], in_use: set[str]) -> dict[str, Any]:
        # API >= 1.42: only anonymous volumes unless the `all` filter is set.
        everything = any(value.lower() in ("true", "1") for value in filters.get("all", []))
        deleted = []
        reclaimed = 0
        for volume in store.list():
            if volume.name in in_use or not matches_filters(volume, filters, in_use):
                continue
            if not everything and not volume.anonymous:
                continue
            reclaimed += store.size(volume.name)
            store.remove(volume.name)
            deleted.append(volume.name)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}
