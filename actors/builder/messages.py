"""Messages of the builder actor (see actor.py).

A build is started with `StartBuild`, answered at once with `BuildStarted` (the build's
id). Everything the build has to say then arrives, in order, at the `progress` ref given:
`BuildOutput` messages carrying one JSON-stream object each (`{"stream": ...}`,
`{"aux": ...}`, pull progress), and exactly one `BuildFinished` at the end, which carries
the final image id or the error. `CancelBuild` stops a build (the client went away): its
container is removed, its mounts and temporary files go, and no image is made for the
step it was on.
"""

from __future__ import annotations

from typing import Any

import attrs

from runtime.actor import Ref
from runtime.codec import message


@message("builder.ulimit")
@attrs.frozen
class BuildUlimit:
    name: str
    soft: int
    hard: int


@message("builder.request")
@attrs.frozen
class BuildRequest:
    """`POST /build`'s parameters, parsed and checked (request.py). `context_directory` is
    the build context, already extracted from the request body by the caller (who also
    removes it after the build)."""

    context_directory: str = ""
    dockerfile: str = "Dockerfile"
    # Normalized references (`docker.io/library/app:latest`), in the order given.
    tags: tuple[str, ...] = ()
    quiet: bool = False
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    build_args: dict[str, str | None] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    cache_from: tuple[str, ...] = ()
    target: str = ""
    platform: str = ""
    # "default" (the default bridge, or none without a network actor), "none" or "host";
    # see docs/building.md "How builds run".
    network_mode: str = "default"
    extra_hosts: tuple[str, ...] = ()
    shm_size_bytes: int = 0
    memory_bytes: int = 0
    memory_swap_bytes: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    cpu_period_microseconds: int = 0
    cpu_quota_microseconds: int = 0
    ulimits: tuple[BuildUlimit, ...] = ()
    # X-Registry-Config: registry host -> AuthConfig, for pulls of FROM images.
    registry_auth: dict[str, dict[str, str]] = attrs.field(factory=dict)


@message("builder.start")
@attrs.frozen
class StartBuild:
    request: BuildRequest
    progress: Ref


@message("builder.started")
@attrs.frozen
class BuildStarted:
    build_id: str


@message("builder.cancel")
@attrs.frozen
class CancelBuild:
    build_id: str


@message("builder.output")
@attrs.frozen
class BuildOutput:
    """One object of the JSON stream, as the client will see it."""

    body: dict[str, Any]


@message("builder.finished")
@attrs.frozen
class BuildFinished:
    """The end of a build: `image_id` on success, else `error` (with Docker's `code` for
    the stream's errorDetail, and the error kind for an HTTP status if nothing was sent)."""

    build_id: str
    image_id: str = ""
    tags: tuple[str, ...] = ()
    error: str = ""
    error_code: int = 0
    error_kind: str = ""


@message("builder.pull_finished")
@attrs.frozen
class PullFinished:
    """Told by a build to its own pull-progress inbox after the pull's reply (images.py)."""


@message("builder.prune_cache")
@attrs.frozen
class PruneBuildCache:
    """Forget every cache entry (`POST /build/prune`); the images themselves stay."""


@message("builder.pruned")
@attrs.frozen
class BuildCachePruned:
    entries: int
