"""The builder actor: runs `POST /build` builds (executor.py) and owns the build cache.

    StartBuild(request, progress) ──► BuildStarted(build_id)      (answered at once)
        ... BuildOutput(body) ... ──► progress                      (the JSON stream)
        BuildFinished(...)        ──► progress                      (exactly once)
    CancelBuild(build_id)             the client went away: stop that build
    PruneBuildCache()         ──► BuildCachePruned(entries)

Each build runs as a task in the actor's nursery, so the actor keeps answering while
builds run; at most `builds_max` run at once, the others wait their turn. RUN steps use
the actor's own container `Executor` (state under `<data-root>/builder/containers`,
runtime state under `<exec-root>/builder`, cgroups under `/flotta-builder`), never the
containers actor's. A build that cannot deliver its output (the client disconnected) is
cancelled like one that got `CancelBuild`.

On start the actor clears what a previous daemon left mid-build: containers of its
executor are removed, mounts and files under `<data-root>/builder/tmp` go, so do build
contexts left in `<data-root>/builder/contexts` (the API serves no request yet), holds of
builds that never finished are released (each build leaves a marker file under
`builds/` while it runs), and the cache index is checked against the image store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import trio

from actors.errdefs import InvalidParameter
from actors.supervisor import rootfs
from actors.supervisor.monitor import Executor
from runtime.actor import Actor, Ref
from runtime.errors import ActorBusy, ActorError, NoSuchActor

from .cache import BuildCache
from .executor import BuildFailure, BuildJob, BuildServices, holder_names
from .images import ImagesClient
from .messages import (
    BuildCachePruned,
    BuildFinished,
    BuildOutput,
    BuildRequest,
    BuildStarted,
    CancelBuild,
    PruneBuildCache,
    StartBuild,
)
from .runner import StepRunner

log = logging.getLogger("flotta.builder")

BUILDER_CGROUP_PARENT = "/flotta-builder"
builds_max_default = 4


class _ClientGone(Exception):
    """The build's output has nowhere to go any more."""


def contexts_directory(data_root: Path) -> Path:
    """Where `POST /build` extracts build contexts while their builds run."""
    return Path(data_root) / "builder" / "contexts"


def mounted_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    return sorted((point for point in points if point.startswith(prefix)), key=len, reverse=True)


class BuilderActor(Actor):
    mailbox_capacity = 256

    def __init__(
        self,
        data_root: Path,
        exec_root: Path,
        images: Ref,
        *,
        networks: Ref | None = None,
        runtime: str = "crun",
        cgroup_parent: str = BUILDER_CGROUP_PARENT,
        can_pull: bool = True,
        builds_max: int = builds_max_default,
    ) -> None:
        self.root = Path(data_root) / "builder"
        self.run_root = Path(exec_root) / "builder"
        self.images_ref = images
        self.networks_ref = networks
        self.runtime = runtime
        self.cgroup_parent = cgroup_parent
        self.can_pull = can_pull
        self.builds: dict[str, trio.CancelScope] = {}
        self.slots = trio.Semaphore(builds_max)
        self.executor: Executor | None = None
        self.cache: BuildCache | None = None

    @property
    def scratch(self) -> Path:
        return self.root / "tmp"

    @property
    def donations(self) -> Path:
        """The image store's tmp/ (the daemon's store is `<data-root>/images`): where
        finished step layers are handed over (see ImagesClient)."""
        return self.root.parent / "images" / "tmp"

    @property
    def markers(self) -> Path:
        return self.root / "builds"

    async def started(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.executor = await trio.to_thread.run_sync(
            lambda: Executor(
                self.root / "containers", self.run_root, runtime=self.runtime,
                cgroup_parent=self.cgroup_parent,
            )
        )
        await self._clear_leftovers()
        self.cache = await trio.to_thread.run_sync(BuildCache, self.root / "cache.json")
        images = ImagesClient(self.node, self.images_ref, self.scratch, self.donations)
        try:
            dropped = self.cache.retain_only(await images.existing_ids())
        except ActorError as error:
            log.warning("build cache not verified against the image store: %s", error)
        else:
            if dropped:
                log.info("build cache: dropped %d entries whose images are gone", dropped)
        await trio.to_thread.run_sync(self.cache.save)

    async def _clear_leftovers(self) -> None:
        assert self.executor is not None
        for container in await trio.to_thread.run_sync(self.executor.recover):
            with contextlib.suppress(Exception):
                await container.remove(force=True)

        def clear_scratch() -> None:
            for point in mounted_under(self.scratch):
                rootfs.unmount(point)
            # No request is served yet: every context here belongs to a build that died.
            for directory in (self.scratch, contexts_directory(self.root.parent)):
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.markers.mkdir(mode=0o700, parents=True, exist_ok=True)

        await trio.to_thread.run_sync(clear_scratch)
        for marker in sorted(self.markers.iterdir()):
            for holder in holder_names(marker.name):
                with contextlib.suppress(ActorError):
                    await self.images_ref.ask(_release(holder), timeout=30)
            marker.unlink()

    async def receive(self, message: Any) -> Any:
        match message:
            case StartBuild(request=request, progress=progress):
                if not request.context_directory:
                    raise InvalidParameter("the build context is missing")
                build_id = secrets.token_hex(32)
                scope = trio.CancelScope()
                self.builds[build_id] = scope
                self.nursery.start_soon(self._build, build_id, request, progress, scope)
                return BuildStarted(build_id)
            case CancelBuild(build_id=build_id):
                running = self.builds.get(build_id)
                if running is not None:
                    running.cancel()
                return None
            case PruneBuildCache():
                assert self.cache is not None
                entries = self.cache.clear()
                await trio.to_thread.run_sync(self.cache.save)
                return BuildCachePruned(entries)
        raise InvalidParameter(f"builder: unexpected message {type(message).__name__}")

    async def _build(self, build_id: str, request: BuildRequest, progress: Ref, scope: trio.CancelScope) -> None:
        assert self.executor is not None and self.cache is not None
        node = self.node

        async def emit(body: dict[str, Any]) -> None:
            try:
                await node.tell(progress, BuildOutput(body))
            except (NoSuchActor, ActorBusy):
                raise _ClientGone() from None

        finished = BuildFinished(build_id, error="the build was cancelled", error_code=1, error_kind="system")
        marker = self.markers / build_id
        services = BuildServices(
            images=ImagesClient(node, self.images_ref, self.scratch, self.donations),
            runner=StepRunner(self.executor, self.networks_ref),
            cache=self.cache,
            scratch=self.scratch,
            can_pull=self.can_pull,
            contexts_parent=contexts_directory(self.root.parent),
        )
        try:
            with scope:
                async with self.slots:
                    await trio.to_thread.run_sync(marker.touch)
                    result = await BuildJob(build_id, request, services, emit).run()
                finished = BuildFinished(build_id, image_id=result.image_id, tags=result.tags)
        except BuildFailure as error:
            finished = BuildFinished(
                build_id, error=error.message, error_code=error.code, error_kind=error.kind
            )
        except _ClientGone:
            log.info("build %s: the client went away; build stopped", build_id[:12])
        except Exception as error:
            log.exception("build %s failed", build_id[:12])
            finished = BuildFinished(
                build_id, error=f"{type(error).__name__}: {error}", error_code=1, error_kind="system"
            )
        finally:
            self.builds.pop(build_id, None)
            if not self.builds:
                # No RUN container exists or is being made now (one thread: this one);
                # crun leaves the parent cgroup behind, so it goes here.
                self.executor.remove_cgroup_parent()
            with trio.CancelScope(shield=True):
                with contextlib.suppress(OSError):
                    await trio.to_thread.run_sync(self.cache.save)
                with contextlib.suppress(FileNotFoundError):
                    await trio.to_thread.run_sync(marker.unlink)
            with contextlib.suppress(ActorError):
                node.tell_nowait(progress, finished)


def _release(holder: str) -> Any:
    from actors.images.messages import ReleaseImage

    return ReleaseImage(holder)
