"""Messages of the volumes actor."""

from __future__ import annotations

from typing import Any

import attrs

from runtime.codec import message


@message("volumes.create")
@attrs.frozen
class CreateVolume:
    name: str = ""
    driver: str = "local"
    labels: dict[str, str] = attrs.field(factory=dict)
    options: dict[str, str] = attrs.field(factory=dict)
    anonymous: bool = False


@message("volumes.inspect")
@attrs.frozen
class InspectVolume:
    name: str


@message("volumes.list")
@attrs.frozen
class ListVolumes:
    filters: dict[str, list[str]] = attrs.field(factory=dict)
    in_use: list[str] = attrs.field(factory=list)


@message("volumes.remove")
@attrs.frozen
class RemoveVolume:
    name: str
    force: bool = False
    used_by: list[str] = attrs.field(factory=list)


@message("volumes.prune")
@attrs.frozen
class PruneVolumes:
    filters: dict[str, list[str]] = attrs.field(factory=dict)
    in_use: list[str] = attrs.field(factory=list)


@message("volumes.populate")
@attrs.frozen
class PopulateVolume:
    """Copy `source` into the volume if the volume is empty (Docker's copy-up)."""

    name: str
    source: str


@message("volumes.info")
@attrs.frozen
class VolumeInfo:
    body: dict[str, Any]
    created: bool = False


@message("volumes.result")
@attrs.frozen
class VolumesResult:
    body: Any
