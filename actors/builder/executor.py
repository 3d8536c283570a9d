"""Executing a build: stage by stage, step by step, with the cache.

    context tar ──► BuildContext ──► parse ──► plan ──► for each stage the target needs:
        FROM: the base image (a stage built earlier, scratch, or an image: pulled when
              missing or with --pull, if the daemon can pull)
        evaluate the stage on the base's config (plan.evaluate_stage)
        for each step:  key = step_cache_key(parent id, step, checksum)
            cached?  ─ yes ─► " ---> Using cache", the cached image is the new parent
              │ no
            METADATA (ENV, CMD, LABEL, ...): a new image config, no layer
            RUN:      a container on the parent, its upper dir committed as a layer
            COPY/ADD: files written through an overlay view of the parent, committed
            WORKDIR:  the directory made when missing (a layer), else config only
        " ---> <id>" after each step; aux {"ID"} after each stage
    ──► tags, "Successfully built <id>", "Successfully tagged <name>"

A step that changed no file (RUN true, WORKDIR of an existing directory) makes a config-
only image marked `empty_layer`, as Docker's classic builder does. Every new image is
recorded in the cache under its key. A failed or cancelled build leaves no image for the
step it was on: its container is removed, its mounts undone, its holds on image layers
released and its temporary directory deleted (the images of the steps before it stay,
as the cache). The output goes through `emit`, one JSON-stream object at a time; errors
are raised as `BuildFailure` carrying Docker's message and code.

In the last stage the extracted context's files that no remaining step can read are
deleted early (`_prune_context`), so that later filesystem syncs never write them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.images import reference as references
from actors.images.store import now_rfc3339, short_id
from runtime.errors import RemoteError

from . import digests
from .apply import StepKind
from .buildargs import Platform
from .cache import BuildCache, CacheCandidate, match_cache_from
from .cachekey import sources_checksum, step_cache_key, step_created_by
from .context import BuildContext, ResolvedSource, SourceTree, is_url, resolve_copy_spec
from .errors import BuildError, ContextError, DockerfileError
from .imageconfig import ImageConfig
from .images import ImageMissing, ImageRecord, ImagesClient, new_image_config
from .messages import BuildRequest
from .overlay import exists_in_layers, is_empty_directory, overlay_view, start_writeback
from .parser import parse_dockerfile
from .pathmatch import contains_wildcards
from .paths import clean_relative, escapes_root, resolve_in_scope
from .plan import (
    BaseImage,
    BuildOptions,
    BuildPlan,
    PlannedStage,
    SourceKind,
    Step,
    evaluate_stage,
    plan_build,
)
from .remote import fetch_url
from .runner import RunStepError, StepRunner, new_container_id
from .transfer import copy_into_rootfs, copy_owner
from .users import resolve_chown_in_rootfs

Emit = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger("flotta.builder")


class BuildFailure(Exception):
    """The build failed. `code` goes into errorDetail; `kind` is the error kind (an HTTP
    status when nothing was sent yet: errdefs' kinds)."""

    def __init__(self, message: str, code: int = 1, kind: str = "invalid_parameter") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind


@attrs.define
class BuildServices:
    images: ImagesClient
    runner: StepRunner
    cache: BuildCache
    scratch: Path
    # Whether FROM / COPY --from images may be pulled (missing ones, or all with --pull).
    can_pull: bool = True
    # Where `POST /build` extracts contexts (<data-root>/builder/contexts): a context
    # there is this build's own copy, removed once no step can read it any more.
    contexts_parent: Path | None = None


@attrs.frozen
class BuildResult:
    image_id: str
    tags: tuple[str, ...]


def holder_names(build_id: str) -> tuple[str, str]:
    """The two image holds a build may have at once: its parent image, and the image a
    COPY --from reads."""
    return f"builder-{build_id}-parent", f"builder-{build_id}-source"


class BuildJob:
    """One build (see the module docstring)."""

    def __init__(self, build_id: str, request: BuildRequest, services: BuildServices, emit: Emit) -> None:
        self.build_id = build_id
        self.request = request
        self.services = services
        self.emit = emit
        self.images = services.images
        self.cache = services.cache
        self.parent_holder, self.source_holder = holder_names(build_id)
        self.candidates: list[CacheCandidate] = []
        self.pulled: set[str] = set()
        self.directory: Path | None = None
        self.context: BuildContext | None = None
        self._context_dropped = False
        self._context_prunable = True

    async def say(self, text: str) -> None:
        await self.emit({"stream": text})

    async def run(self) -> BuildResult:
        self.services.scratch.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix=f"build-{self.build_id[:12]}-", dir=self.services.scratch))
        try:
            return await self._run()
        except (DockerfileError, BuildError) as error:
            raise BuildFailure(str(error) if isinstance(error, DockerfileError) else error.message) from None
        except ImageMissing as error:
            raise BuildFailure(error.message, kind="not_found") from None
        except RunStepError as error:
            raise BuildFailure(error.message, code=error.code, kind="system") from None
        except RemoteError as error:
            raise BuildFailure(error.message, kind=error.kind) from None
        finally:
            with trio.CancelScope(shield=True):
                if self.context is not None:
                    await trio.to_thread.run_sync(self.context.close)
                await trio.to_thread.run_sync(shutil.rmtree, self.directory, True)

    async def _run(self) -> BuildResult:
        assert self.directory is not None
        request = self.request
        self.context = await trio.to_thread.run_sync(self._open_context)
        data = await trio.to_thread.run_sync(self.context.read_dockerfile, request.dockerfile)
        dockerfile = parse_dockerfile(data)
        options = BuildOptions(
            build_args=dict(request.build_args),
            target=request.target or None,
            platform=Platform.parse(request.platform) if request.platform else None,
            labels=dict(request.labels),
        )
        plan = plan_build(dockerfile, options)
        await self._load_cache_from()
        for warning in dockerfile.warnings:
            await self.say(warning.rstrip("\n") + "\n")
        for text in plan.global_steps:
            await self.say(text + "\n")
        built: dict[int, ImageRecord] = {}
        referenced: set[str] = set()
        for planned in plan.stages:
            record, stage_referenced = await self._build_stage(plan, planned, built)
            built[planned.index] = record
            referenced |= stage_referenced
            await self.emit({"aux": {"ID": record.id}})
        final = built[plan.target_index]
        unused = plan.unused_build_args_warning(tuple(sorted(referenced)))
        if unused:
            await self.say(unused + "\n")
        await self.say(f"Successfully built {short_id(final.id)}\n")
        tagged = []
        for tag in request.tags:
            await self.images.tag(final.id, tag)
            familiar = references.parse(tag).familiar()
            tagged.append(familiar)
            await self.say(f"Successfully tagged {familiar}\n")
        return BuildResult(final.id, tuple(tagged))

    def _open_context(self) -> BuildContext:
        directory = self.request.context_directory
        if not directory:
            raise ContextError("the build context is missing")
        return BuildContext.from_directory(directory)

    async def _load_cache_from(self) -> None:
        for reference in self.request.cache_from:
            try:
                record = await self.images.get(reference)
            except ImageMissing:
                continue  # Docker: a --cache-from image that is not there is skipped
            self.candidates.append(CacheCandidate(record.id, record.config))

    # ---- images and pulls

    async def _image(self, name: str) -> ImageRecord:
        """An image a FROM or COPY --from names; pulled when asked or when missing."""
        if self.services.can_pull and self.request.pull and name not in self.pulled:
            await self._pull(name)
        try:
            return await self.images.get(name)
        except ImageMissing:
            if not self.services.can_pull or name in self.pulled:
                raise
        await self._pull(name)
        return await self.images.get(name)

    async def _pull(self, name: str) -> None:
        self.pulled.add(name)
        platform = self.request.platform or str(Platform.host())
        try:
            await self.images.pull(name, dict(self.request.registry_auth), platform, self.emit)
        except RemoteError as error:
            raise BuildFailure(error.message, kind=error.kind) from None

    @contextlib.asynccontextmanager
    async def _layers_of(self, record: ImageRecord | None, holder: str) -> AsyncIterator[list[str]]:
        """The image's lower dirs, its layers held for the duration (none for scratch)."""
        if record is None:
            yield []
            return
        try:
            # Inside the try: a hold made just before a cancellation is released too.
            yield await self.images.hold(holder, record.id)
        finally:
            with trio.CancelScope(shield=True):
                await self.images.release(holder)

    def _step_directory(self) -> Path:
        assert self.directory is not None
        return Path(tempfile.mkdtemp(prefix="step-", dir=self.directory))

    # ---- stages

    async def _build_stage(
        self, plan: BuildPlan, planned: PlannedStage, built: dict[int, ImageRecord]
    ) -> tuple[ImageRecord, frozenset[str]]:
        await self.say(
            f"Step {planned.first_step_number}/{plan.total_steps} : "
            f"{planned.stage.from_instruction.original}\n"
        )
        base = planned.base
        record: ImageRecord | None
        if base.kind is SourceKind.SCRATCH:
            record = None
        elif base.kind is SourceKind.STAGE:
            assert base.stage_index is not None
            record = built[base.stage_index]
        else:
            record = await self._image(base.name)
        await self.say(f" ---> {short_id(record.id) if record else ''}\n")
        config = ImageConfig.from_docker(record.runtime_config) if record else ImageConfig()
        evaluation = evaluate_stage(
            plan, planned,
            BaseImage(config=config, os=record.os if record else "linux", image_id=record.id if record else None),
        )
        if evaluation.triggers_message:
            await self.say(evaluation.triggers_message + "\n")
        # In the last stage, every step left is known: the context's files that no step
        # left can read are dropped, at the start and after each step that read it (see
        # _prune_context).
        last_stage = planned is plan.stages[-1]
        if last_stage:
            await self._prune_context(evaluation.steps)
        current = record
        for position, step in enumerate(evaluation.steps):
            if step.header:
                await self.say(step.header + "\n")
            for message in step.messages:
                await self.say(message + "\n")
            started = trio.current_time()
            current = await self._step(step, current, built)
            log.debug("build %s: %s took %.1f ms", self.build_id[:12], step.text, (trio.current_time() - started) * 1000)
            await self.say(f" ---> {short_id(current.id)}\n")
            if last_stage and _reads_context(step):
                await self._prune_context(evaluation.steps[position + 1:])
        if current is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        return current, evaluation.referenced_args

    async def _step(self, step: Step, parent: ImageRecord | None, built: dict[int, ImageRecord]) -> ImageRecord:
        match step.kind:
            case StepKind.METADATA:
                return await self._metadata(step, parent)
            case StepKind.RUN:
                return await self._run_step(step, parent)
            case StepKind.WORKDIR:
                return await self._workdir(step, parent)
            case StepKind.COPY | StepKind.ADD:
                return await self._copy(step, parent, built)
        raise BuildError(f"{step.text}: unsupported step")

    async def _prune_context(self, remaining: Sequence[Step]) -> None:
        """Delete the files of the context's extracted copy that none of the `remaining`
        steps can read, when the copy is this build's own (under `contexts_parent`; the
        request handler removes the directory again at the end, finding it gone or
        smaller). Files deleted before they reach the disk are never written: otherwise
        every later filesystem sync (a RUN container's unmount, a layer commit's syncfs)
        would flush them all. With no reader left the whole copy goes; otherwise files go
        only when every source left is a plain path (no wildcards) and the context has no
        symlinks and not too many entries (else nothing is deleted before the end)."""
        parent = self.services.contexts_parent
        context = self.context
        if parent is None or context is None or self._context_dropped:
            return
        root = context.root
        if os.path.dirname(root) != os.path.realpath(parent):
            return
        readers = [step for step in remaining if _reads_context(step)]
        if not readers:
            self._context_dropped = True

            def remove() -> None:
                digests.forget_under(root)
                shutil.rmtree(root, ignore_errors=True)

            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(remove)
            return
        if not self._context_prunable:
            return
        needed = _needed_context_paths(readers)
        if needed is None:
            self._context_prunable = False
            return
        with trio.CancelScope(shield=True):
            self._context_prunable = await trio.to_thread.run_sync(_prune_tree, root, needed)

    # ---- the cache

    async def _cached(self, key: str, parent: ImageRecord | None, created_by: str, step: Step) -> ImageRecord | None:
        if self.request.no_cache:
            return None
        image_id = self.cache.lookup(key)
        if image_id is not None:
            try:
                record = await self.images.get(image_id)
            except ImageMissing:
                self.cache.forget(key)
            else:
                await self.say(" ---> Using cache\n")
                return record
        match = match_cache_from(self.candidates, parent.config if parent else None, created_by)
        if match is None:
            return None
        if match.is_last:
            record = ImageRecord(match.candidate.image_id, dict(match.candidate.config))
        else:
            config = new_image_config(
                parent, step.config.to_docker(), created_by, step.state.author, now_rfc3339(),
                empty_layer=False, history=[dict(entry) for entry in match.history],
                diff_ids=list(match.diff_ids),
            )
            record = await self.images.create_image(config, parent.id if parent else "")
        self.cache.record(key, record.id)
        await self.say(" ---> Using cache\n")
        return record

    async def _config_only(self, step: Step, parent: ImageRecord | None, created_by: str) -> ImageRecord:
        config = new_image_config(
            parent, step.config.to_docker(), created_by, step.state.author, now_rfc3339(),
            empty_layer=True,
        )
        return await self.images.create_image(config, parent.id if parent else "")

    async def _commit(
        self, step: Step, parent: ImageRecord | None, upper: Path, created_by: str, container_id: str = ""
    ) -> ImageRecord:
        if await trio.to_thread.run_sync(is_empty_directory, upper):
            return await self._config_only(step, parent, created_by)
        started = trio.current_time()
        record = await self.images.commit_layer(
            parent, upper, runtime_config=step.config.to_docker(), created_by=created_by,
            author=step.state.author, container_id=container_id, created=now_rfc3339(),
        )
        log.debug("build %s: committing the layer took %.1f ms", self.build_id[:12],
                  (trio.current_time() - started) * 1000)
        return record

    # ---- the kinds of steps

    async def _metadata(self, step: Step, parent: ImageRecord | None) -> ImageRecord:
        created_by = step_created_by(step)
        key = step_cache_key(parent.id if parent else None, step)
        cached = await self._cached(key, parent, created_by, step)
        if cached is not None:
            return cached
        record = await self._config_only(step, parent, created_by)
        self.cache.record(key, record.id)
        return record

    async def _run_step(self, step: Step, parent: ImageRecord | None) -> ImageRecord:
        assert step.run is not None
        created_by = step_created_by(step)
        key = step_cache_key(parent.id if parent else None, step)
        cached = await self._cached(key, parent, created_by, step)
        if cached is not None:
            return cached
        container_id = new_container_id()
        await self.say(f" ---> Running in {container_id[:12]}\n")
        files = self._step_directory()
        succeeded = False
        try:
            async with self._layers_of(parent, self.parent_holder) as lower:
                outcome = await self.services.runner.run(
                    container_id, step.run, self.request, lower, files, self.say
                )
                record = await self._commit(step, parent, outcome.upper, created_by, container_id)
            succeeded = True
        finally:
            with trio.CancelScope(shield=True):
                await self.services.runner.remove(container_id)
                await trio.to_thread.run_sync(shutil.rmtree, files, True)
            if self.request.force_remove or (succeeded and self.request.remove):
                await self.say(f"Removing intermediate container {container_id[:12]}\n")
        self.cache.record(key, record.id)
        return record

    async def _workdir(self, step: Step, parent: ImageRecord | None) -> ImageRecord:
        created_by = step_created_by(step)
        key = step_cache_key(parent.id if parent else None, step)
        cached = await self._cached(key, parent, created_by, step)
        if cached is not None:
            return cached
        path = step.config.working_dir
        async with self._layers_of(parent, self.parent_holder) as lower:
            if await trio.to_thread.run_sync(exists_in_layers, lower, path):
                record = await self._config_only(step, parent, created_by)
            else:
                directory = self._step_directory()
                try:
                    upper = await trio.to_thread.run_sync(_make_workdir, lower, directory, path)
                    record = await self._commit(step, parent, upper, created_by)
                finally:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(shutil.rmtree, directory, True)
        self.cache.record(key, record.id)
        return record

    async def _copy(self, step: Step, parent: ImageRecord | None, built: dict[int, ImageRecord]) -> ImageRecord:
        spec = step.copy
        assert spec is not None
        async with contextlib.AsyncExitStack() as stack:
            tree = await self._source_tree(step, built, stack)
            downloads = self._step_directory()
            stack.push_async_callback(_remove_tree_shielded, downloads)

            def fetch(url: str) -> Any:
                return fetch_url(url, str(tempfile.mkdtemp(dir=downloads)))

            sources = await trio.to_thread.run_sync(resolve_copy_spec, tree, spec, fetch)
            owner = await self._copy_owner(step, parent)
            checksum = await trio.to_thread.run_sync(sources_checksum, sources, owner, spec.chmod)
            created_by = step_created_by(step, checksum)
            key = step_cache_key(parent.id if parent else None, step, checksum)
            cached = await self._cached(key, parent, created_by, step)
            if cached is not None:
                return cached
            directory = self._step_directory()
            try:
                async with self._layers_of(parent, self.parent_holder) as lower:
                    upper = await trio.to_thread.run_sync(
                        _copy_through_view, lower, directory, sources, spec.destination_path,
                        owner, spec.chmod,
                    )
                    record = await self._commit(step, parent, upper, created_by)
            finally:
                await _remove_tree_shielded(directory)
        self.cache.record(key, record.id)
        return record

    async def _copy_owner(self, step: Step, parent: ImageRecord | None) -> tuple[int, int] | None:
        """The owner copied files get; names in --chown are looked up in the parent image."""
        spec = step.copy
        assert spec is not None
        numeric = all(part.lstrip("+-").isdigit() for part in (spec.chown or "0").split(":")[:2])
        if numeric:
            return copy_owner(spec.chown, spec.preserve_ownership, "/nonexistent")
        assert spec.chown is not None
        directory = self._step_directory()
        try:
            async with self._layers_of(parent, self.parent_holder) as lower:
                return await trio.to_thread.run_sync(_resolve_owner_in_view, lower, directory, spec.chown)
        finally:
            await _remove_tree_shielded(directory)

    async def _source_tree(
        self, step: Step, built: dict[int, ImageRecord], stack: contextlib.AsyncExitStack
    ) -> SourceTree | None:
        spec = step.copy
        assert spec is not None
        if spec.from_source is None:
            assert self.context is not None
            return self.context.tree()
        reference = spec.from_source
        if reference.kind is SourceKind.STAGE:
            assert reference.stage_index is not None
            record = built[reference.stage_index]
        else:
            record = await self._image(reference.name)
        lower = await stack.enter_async_context(self._layers_of(record, self.source_holder))
        directory = self._step_directory()
        stack.push_async_callback(_remove_tree_shielded, directory)
        view = _MountedView(lower, directory)
        await trio.to_thread.run_sync(view.mount)
        stack.push_async_callback(view.unmount)
        return SourceTree(str(view.merged), is_context=False)


class _MountedView:
    """A read view of an image for COPY --from, mounted and unmounted from threads."""

    def __init__(self, lower: list[str], directory: Path) -> None:
        self.lower = lower
        self.directory = directory
        self.merged = directory / "merged"
        self._context: contextlib.AbstractContextManager[Any] | None = None

    def mount(self) -> None:
        self._context = overlay_view(self.lower, self.directory)
        self._context.__enter__()

    async def unmount(self) -> None:
        context = self._context
        if context is None:
            return
        self._context = None
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(context.__exit__, None, None, None)


def _reads_context(step: Step) -> bool:
    """Whether a step may read the build context (a COPY/ADD without --from)."""
    return step.kind in (StepKind.COPY, StepKind.ADD) and (step.copy is None or step.copy.from_source is None)


def _needed_context_paths(readers: Sequence[Step]) -> list[str] | None:
    """The context paths (cleaned, relative) the steps can read; None when that cannot
    be told from the paths alone (a wildcard, the whole context, a path climbing out)."""
    needed: list[str] = []
    for step in readers:
        spec = step.copy
        if spec is None:
            return None
        for source in spec.sources:
            if is_url(source):
                continue
            path = source[1:] if source.startswith("/") else source
            path = path[2:] if path.startswith("./") else path
            if contains_wildcards(path) or escapes_root(path):
                return None
            cleaned = clean_relative(path)
            if cleaned in ("", ".") or escapes_root(cleaned):
                return None
            needed.append(cleaned)
    return needed


# A context with more entries than this is left whole until the build no longer needs it.
prune_entries_max = 4096


def _prune_tree(root: str, needed: list[str]) -> bool:
    """Unlink the regular files under root whose relative path is neither one of
    `needed` nor below one; False (nothing deleted) when the tree has a symlink (a needed
    path could lead anywhere through it) or more than `prune_entries_max` entries."""
    candidates: list[str] = []
    pending = [(root, "")]
    count = 0
    while pending:
        host, relative = pending.pop()
        with os.scandir(host) as listing:
            entries = list(listing)
        for entry in entries:
            count += 1
            if count > prune_entries_max or entry.is_symlink():
                return False
            child = f"{relative}/{entry.name}" if relative else entry.name
            if any(child == path or child.startswith(path + "/") for path in needed):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, child))
            elif entry.is_file(follow_symlinks=False):
                candidates.append(entry.path)
    for path in candidates:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return True


async def _remove_tree_shielded(path: Path) -> None:
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(shutil.rmtree, path, True)


def _copy_through_view(
    lower: list[str], directory: Path, sources: list[ResolvedSource], destination: str,
    owner: tuple[int, int] | None, chmod: int | None,
) -> Path:
    with overlay_view(lower, directory) as (merged, upper):
        copy_into_rootfs(str(merged), sources, destination, owner=owner, chmod=chmod)
    start_writeback(upper)
    return upper


def _resolve_owner_in_view(lower: list[str], directory: Path, chown: str) -> tuple[int, int]:
    with overlay_view(lower, directory) as (merged, _):
        return resolve_chown_in_rootfs(chown, str(merged))


def _make_workdir(lower: list[str], directory: Path, path: str) -> Path:
    """mkdir -p the working directory (mode 0755, root) through a view; the upper dir."""
    parts = [part for part in path.split("/") if part]
    with overlay_view(lower, directory) as (merged, upper):
        for length in range(1, len(parts) + 1):
            target = resolve_in_scope(str(merged), "/".join(parts[:length]))
            if not os.path.lexists(target):
                os.mkdir(target, 0o755)
                os.chmod(target, 0o755)
            elif not os.path.isdir(target):
                raise BuildError(
                    f"cannot create the working directory {path}: "
                    f"/{'/'.join(parts[:length])} is not a directory"
                )
    return upper
