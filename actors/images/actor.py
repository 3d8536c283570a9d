"""The images actor: the image store behind messages.

Quick questions (resolve, inspect, list) are answered in turn; slow work (load, import,
bootstrap, commit, delete of big images) runs in the background with `reply_later`, in
worker threads, so `docker images` stays responsive during a load. The store itself is
thread-safe. Store errors become the Docker API's error kinds (errdefs).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from actors.errdefs import Conflict, InvalidParameter, NotFound
from actors.images import archive, bootstrap, importer
from actors.images.errors import BlobNotFound, ImageConflict, ImageError, ImageNotFound
from actors.images.messages import (
    Bootstrap,
    CommitContainer,
    CountImages,
    CreateImage,
    DeleteImage,
    Done,
    HoldImage,
    ImageHistory,
    ImageUserInfo,
    ImportRootfs,
    InspectImage,
    JsonResult,
    ListImages,
    LoadArchive,
    Login,
    LoginResult,
    LowerDirs,
    Progress,
    PruneImages,
    Pulled,
    PullImage,
    Pushed,
    PushImage,
    ReleaseImage,
    ResolvedImage,
    ResolveImage,
    SaveArchive,
    TagImage,
)
from actors.images.reference import InvalidReference
from actors.images.store import ImageStore, ImageUser
from runtime.actor import Actor, Ref

log = logging.getLogger("flotta.images")

T = TypeVar("T")


def translate_errors(function: Callable[..., T], *arguments: Any, **keywords: Any) -> T:
    """Run a store call, turning its errors into the API's error kinds."""
    try:
        return function(*arguments, **keywords)
    except (ImageNotFound, BlobNotFound) as error:
        raise NotFound(str(error)) from None
    except ImageConflict as error:
        raise Conflict(str(error)) from None
    except (InvalidReference, ValueError) as error:
        raise InvalidParameter(str(error)) from None
    except ImageError as error:
        raise InvalidParameter(str(error)) from None


def _users(infos: list[ImageUserInfo]) -> list[ImageUser]:
    return [ImageUser(info.container_id, info.image_id, info.running) for info in infos]


class ImagesActor(Actor):
    mailbox_capacity = 4096

    def __init__(self, root: Path, insecure_registries: tuple[str, ...] = ()) -> None:
        self.root = root
        self.insecure_registries = insecure_registries
        self.store: ImageStore | None = None

    async def started(self) -> None:
        self.store = await trio.to_thread.run_sync(ImageStore, self.root)

    async def _in_thread(self, function: Callable[..., T], *arguments: Any, **keywords: Any) -> T:
        return await trio.to_thread.run_sync(
            functools.partial(translate_errors, function, *arguments, **keywords)
        )

    def _progress_callback(self, target: Ref | None) -> Callable[[dict[str, Any]], None] | None:
        if target is None:
            return None
        token = trio.lowlevel.current_trio_token()
        node = self.node

        def report(body: dict[str, Any]) -> None:
            def send() -> None:
                try:
                    node.tell_nowait(target, Progress(body))
                except Exception:  # the requester went away; the work goes on
                    pass

            try:
                trio.from_thread.run_sync(send, trio_token=token)
            except trio.RunFinishedError:
                pass

        return report

    async def receive(self, message: Any) -> Any:
        store = self.store
        assert store is not None
        match message:
            case ResolveImage(reference):
                return await self._resolve(reference)
            case InspectImage(reference):
                return JsonResult(translate_errors(store.inspect, reference))
            case ImageHistory(reference):
                return JsonResult(translate_errors(store.history, reference))
            case ListImages(all=all_images, filters=filters, users=users, shared_size=shared):
                return JsonResult(
                    translate_errors(store.list_images, all_images, filters, _users(users), shared)
                )
            case CountImages():
                return JsonResult(len(store.images()))
            case TagImage(source, repository, tag):
                image_id = translate_errors(store.resolve, source)
                return JsonResult(translate_errors(store.tag_repository, image_id, repository, tag))
            case HoldImage(holder, image_id):
                paths = await self._in_thread(store.hold, holder, image_id)
                return LowerDirs([str(path) for path in paths])
            case ReleaseImage(holder):
                await self._in_thread(store.release, holder)
                return None
            case DeleteImage(reference, force, noprune, users):
                self.reply_later(self._delete, reference, force, noprune, users)
            case PruneImages(dangling_only, filters, users):
                self.reply_later(self._prune, dangling_only, filters, users)
            case LoadArchive(path, progress):
                self.reply_later(self._load, path, progress)
            case SaveArchive(names, path):
                self.reply_later(self._save, names, path)
            case ImportRootfs():
                self.reply_later(self._import, message)
            case Bootstrap(image, progress):
                self.reply_later(self._bootstrap, image, progress)
            case CommitContainer():
                self.reply_later(self._commit, message)
            case CreateImage():
                self.reply_later(self._create, message)
            case PullImage():
                self.reply_later(self._pull, message)
            case PushImage():
                self.reply_later(self._push, message)
            case Login(server, username, password):
                self.reply_later(self._login, server, username, password)
            case _:
                raise InvalidParameter(f"images: unexpected message {type(message).__name__}")
        return None

    async def _resolve(self, reference: str) -> ResolvedImage:
        store = self.store
        assert store is not None
        image_id = translate_errors(store.resolve, reference)
        image = translate_errors(store.image, image_id)
        return ResolvedImage(image_id, image.config, store.repo_tags(image_id))

    async def _delete(self, reference: str, force: bool, noprune: bool, users: list[ImageUserInfo]) -> JsonResult:
        assert self.store is not None
        return JsonResult(await self._in_thread(self.store.delete, reference, force, noprune, _users(users)))

    async def _prune(self, dangling_only: bool, filters: dict[str, list[str]], users: list[ImageUserInfo]) -> JsonResult:
        assert self.store is not None
        return JsonResult(await self._in_thread(self.store.prune, dangling_only, filters, _users(users)))

    async def _load(self, path: str, progress: Ref | None) -> Done:
        store = self.store
        assert store is not None
        report = self._progress_callback(progress)

        def load() -> list[str]:
            with open(path, "rb") as stream:
                return archive.load(store, stream, report)

        return Done(lines=await self._in_thread(load))

    async def _save(self, names: list[str], path: str) -> Done:
        store = self.store
        assert store is not None

        def save() -> None:
            with open(path, "wb") as out:
                archive.save(store, names, out)

        await self._in_thread(save)
        return Done()

    async def _import(self, request: ImportRootfs) -> Done:
        store = self.store
        assert store is not None

        def run() -> str:
            with open(request.path, "rb") as stream:
                return importer.import_rootfs(
                    store, stream, repo_tag=request.repo_tag, changes=request.changes, message=request.comment
                )

        return Done(image_id=await self._in_thread(run))

    async def _bootstrap(self, image: str, progress: Ref | None) -> Done:
        store = self.store
        assert store is not None
        report = self._progress_callback(progress)
        if image == "busybox":
            image_id = await self._in_thread(bootstrap.bootstrap_busybox, store, progress=report)
            return Done(image_id=image_id, lines=["busybox:latest"])
        if image in ("debian", "debian:bookworm"):
            image_id = await self._in_thread(bootstrap.bootstrap_debian, store, progress=report)
            return Done(image_id=image_id, lines=["debian:bookworm"])
        raise InvalidParameter(f"unknown bootstrap image {image!r}: expected busybox or debian")

    def _stream_to(self, target: Ref | None) -> Callable[[dict[str, Any]], None]:
        node = self.node

        def send(body: dict[str, Any]) -> None:
            if target is None:
                return
            try:
                node.tell_nowait(target, Progress(body))
            except Exception:  # the requester went away; the transfer goes on
                pass

        return send

    async def _pull(self, request: PullImage) -> Pulled:
        from actors.images import pull
        from actors.images.distribution import DistributionError
        from actors.images.registry_auth import decode_registry_auth

        assert self.store is not None
        try:
            credentials = decode_registry_auth(request.registry_auth or None).credentials()
            result = await pull.pull(
                self.store,
                request.reference,
                credentials=credentials,
                insecure_registries=self.insecure_registries,
                progress=self._stream_to(request.progress),
                platform=request.platform or "linux/amd64",
            )
        except (InvalidReference, ValueError) as error:
            raise InvalidParameter(str(error)) from None
        except DistributionError as error:
            raise _distribution_errors(error) from None
        return Pulled(result.image_id, str(result.reference), result.digest or "", result.status_line)

    async def _push(self, request: PushImage) -> Pushed:
        from actors.images import push
        from actors.images.distribution import DistributionError
        from actors.images.registry_auth import decode_registry_auth

        assert self.store is not None
        try:
            credentials = decode_registry_auth(request.registry_auth or None).credentials()
            result = await push.push(
                self.store,
                request.reference,
                credentials=credentials,
                insecure_registries=self.insecure_registries,
                progress=self._stream_to(request.progress),
                all_tags=request.all_tags,
            )
        except (InvalidReference, ValueError) as error:
            raise InvalidParameter(str(error)) from None
        except DistributionError as error:
            raise _distribution_errors(error) from None
        except ImageNotFound as error:
            raise NotFound(str(error)) from None
        return Pushed(result.digest, result.size, result.tag)

    async def _login(self, server: str, username: str, password: str) -> LoginResult:
        from actors.images import login
        from actors.images.distribution import DistributionError

        try:
            result = await login.login(server, username, password, self.insecure_registries)
        except DistributionError as error:
            raise _distribution_errors(error) from None
        return LoginResult(result.status, result.identity_token or "")

    async def _create(self, request: CreateImage) -> Done:
        store = self.store
        assert store is not None

        def run() -> str:
            config = dict(request.config)
            rootfs = config.pop("rootfs", None) or {}
            diff_ids = list(rootfs.get("diff_ids") or [])
            if request.new_layer_dir:
                diff_ids.append(store.add_layer_from_directory(Path(request.new_layer_dir)))
            return store.create_image(config, diff_ids, parent=request.parent or None)

        return Done(image_id=await self._in_thread(run))

    async def _commit(self, request: CommitContainer) -> Done:
        store = self.store
        assert store is not None

        def run() -> str:
            parent = store.image(request.parent_image_id)
            diff_id = store.add_layer_from_directory(Path(request.upper_dir))
            config = dict(parent.config)
            config["config"] = request.config
            config["created"] = _now_rfc3339()
            if request.author:
                config["author"] = request.author
            if request.comment:
                config["comment"] = request.comment
            if request.container_id:
                config["container"] = request.container_id
            history = list(config.get("history", []))
            entry: dict[str, Any] = {"created": config["created"], "created_by": request.created_by}
            if request.author:
                entry["author"] = request.author
            if request.comment:
                entry["comment"] = request.comment
            history.append(entry)
            config["history"] = history
            config.pop("rootfs", None)
            image_id = store.create_image(config, [*parent.diff_ids, diff_id], parent=parent.id)
            if request.repository:
                store.tag_repository(image_id, request.repository, request.tag)
            return image_id

        return Done(image_id=await self._in_thread(run))


def _distribution_errors(error: Exception) -> Exception:
    """Registry errors carry Docker's wording and an HTTP status: keep both."""
    from actors.errdefs import SystemError_, Unauthorized

    status = getattr(error, "status", 500)
    text = str(error)
    if status == 404:
        return NotFound(text)
    if status in (401, 403):
        return Unauthorized(text)
    if status == 400:
        return InvalidParameter(text)
    return SystemError_(text)


def _now_rfc3339() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
