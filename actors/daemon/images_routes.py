"""Image endpoints: list, inspect, history, tag, rmi, prune, save, load, import, pull,
push, and flotta's own bootstrap."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors.daemon.api import ApiError, Router, query_bool, query_filters
from actors.daemon.events import Event, publish
from actors.images.messages import (
    Bootstrap,
    DeleteImage,
    Done,
    ImageHistory,
    ImageUserInfo,
    ImportRootfs,
    InspectImage,
    ListImages,
    LoadArchive,
    Progress,
    PruneImages,
    SaveArchive,
    TagImage,
)
from actors.images.reference import InvalidReference, parse_repository_tag
from runtime.errors import RemoteError
from runtime.httpserver import Request, Response, ResponseStream, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

IMAGE_FILTERS = {"dangling", "label", "before", "since", "reference", "until"}


def error_message(text: str, code: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": text}
    if code is not None:
        detail["code"] = code
    return {"errorDetail": detail, "error": text}


async def image_users(context: DaemonContext) -> list[ImageUserInfo]:
    if context.containers is None:
        return []
    from actors.supervisor.messages import ListImageUsers

    result = await context.containers.ask(ListImageUsers())
    return list(result.users)


@contextlib.asynccontextmanager
async def spooled_body(context: DaemonContext, request: Request, suffix: str) -> AsyncIterator[str]:
    """The request body written to a temporary file under the data root."""
    directory = context.config.data_root / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, path = tempfile.mkstemp(dir=directory, suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as out:
            async for chunk in request.body:
                await trio.to_thread.run_sync(out.write, chunk)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


async def forward_progress(inbox: Any, stream: ResponseStream, done: trio.Event, quiet: bool) -> None:
    while not done.is_set():
        item = await inbox.receive()
        if isinstance(item, Progress) and not quiet:
            await stream.send_json(item.body)


def build_router(context: DaemonContext) -> Router:
    router = Router()

    @router.route("GET", "/images/json")
    async def list_images(request: Request) -> Response:
        filters = query_filters(request)
        for key in filters:
            if key not in IMAGE_FILTERS:
                raise ApiError(400, f"invalid filter '{key}'")
        users = await image_users(context)
        result = await context.images.ask(
            ListImages(query_bool(request, "all"), filters, users, query_bool(request, "shared-size"))
        )
        return json_response(result.body)

    @router.route("GET", "/images/(?P<name>.+)/json")
    async def inspect(request: Request, name: str) -> Response:
        result = await context.images.ask(InspectImage(name))
        return json_response(result.body)

    @router.route("GET", "/images/(?P<name>.+)/history")
    async def history(request: Request, name: str) -> Response:
        result = await context.images.ask(ImageHistory(name))
        return json_response(result.body)

    @router.route("POST", "/images/(?P<name>.+)/tag")
    async def tag(request: Request, name: str) -> Response:
        repository = request.query.get("repo") or ""
        tag_name = request.query.get("tag") or ""
        if not repository:
            raise ApiError(400, "repository name must have at least one component")
        try:
            parse_repository_tag(repository, tag_name)
        except InvalidReference as error:
            raise ApiError(400, str(error)) from None
        reference = await context.images.ask(TagImage(name, repository, tag_name))
        publish(context.events, Event("image", "tag", str(reference.body), {"name": str(reference.body)}, time_nano=_now_nano()))
        return Response(201)

    @router.route("DELETE", "/images/(?P<name>.+)")
    async def remove(request: Request, name: str) -> Response:
        users = await image_users(context)
        result = await context.images.ask(
            DeleteImage(name, query_bool(request, "force"), query_bool(request, "noprune"), users),
            timeout=600,
        )
        for item in result.body:
            for action, value in item.items():
                publish(context.events, Event("image", "untag" if action == "Untagged" else "delete", value, {"name": value}, time_nano=_now_nano()))
        return json_response(result.body)

    @router.route("POST", "/images/prune")
    async def prune(request: Request) -> Response:
        filters = query_filters(request)
        dangling = filters.pop("dangling", ["true"])
        dangling_only = not any(value.lower() in ("false", "0") for value in dangling)
        users = await image_users(context)
        result = await context.images.ask(PruneImages(dangling_only, filters, users), timeout=600)
        return json_response(result.body)

    async def save(request: Request, names: list[str]) -> None:
        if not names:
            raise ApiError(400, "no image names given")
        directory = context.config.data_root / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, path = tempfile.mkstemp(dir=directory, suffix=".tar")
        os.close(descriptor)
        try:
            await context.images.ask(SaveArchive(names, path), timeout=3600)
            stream = await request.start_stream(content_type="application/x-tar")
            with open(path, "rb") as source:
                while True:
                    chunk = await trio.to_thread.run_sync(source.read, 1024 * 1024)
                    if not chunk:
                        break
                    await stream.send(chunk)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @router.route("GET", "/images/get")
    async def save_many(request: Request) -> None:
        await save(request, request.query.get_all("names"))

    @router.route("GET", "/images/(?P<name>.+)/get")
    async def save_one(request: Request, name: str) -> None:
        await save(request, [name])

    @router.route("POST", "/images/load")
    async def load(request: Request) -> None:
        quiet = query_bool(request, "quiet", default=True)
        async with spooled_body(context, request, ".tar") as path:
            async with context.node.open_inbox(prefix="load-progress") as inbox:
                done = trio.Event()
                stream = await request.start_stream()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(forward_progress, inbox, stream, done, quiet)
                    try:
                        result: Done = await context.images.ask(LoadArchive(path, inbox.ref), timeout=3600)
                    except RemoteError as error:
                        done.set()
                        nursery.cancel_scope.cancel()
                        await stream.send_json(error_message(error.message))
                        return
                    done.set()
                    nursery.cancel_scope.cancel()
                for line in result.lines:
                    await stream.send_json({"stream": line + "\n"})
                    publish(context.events, Event("image", "load", line, {"name": line}, time_nano=_now_nano()))

    @router.route("POST", "/images/create")
    async def create(request: Request) -> None:
        source = request.query.get("fromSrc")
        if source is not None:
            await import_image(request, source)
            return
        image = request.query.get("fromImage")
        if not image:
            raise ApiError(400, "fromImage or fromSrc is required")
        pull = context.extras.get("pull")
        if pull is None:
            raise ApiError(501, "pulling images is not available in this daemon")
        await pull(request, image, request.query.get("tag") or "")

    async def import_image(request: Request, source: str) -> None:
        if source != "-":
            raise ApiError(400, "importing from a URL is not supported: send the tarball in the request body (fromSrc=-)")
        repository = request.query.get("repo") or ""
        tag_name = request.query.get("tag") or ""
        repo_tag = None
        if repository:
            try:
                repo_tag = str(parse_repository_tag(repository, tag_name))
            except InvalidReference as error:
                raise ApiError(400, str(error)) from None
        changes = request.query.get_all("changes")
        comment = request.query.get("message") or ""
        async with spooled_body(context, request, ".tar") as path:
            result = await context.images.ask(ImportRootfs(path, repo_tag, changes, comment), timeout=3600)
        stream = await request.start_stream()
        await stream.send_json({"status": result.image_id})
        publish(context.events, Event("image", "import", result.image_id, {}, time_nano=_now_nano()))

    @router.route("POST", "/flotta/bootstrap")
    async def bootstrap(request: Request) -> None:
        image = request.query.get("image") or ""
        if image not in ("busybox", "debian", "debian:bookworm"):
            raise ApiError(400, f"unknown bootstrap image {image!r}: expected busybox or debian")
        async with context.node.open_inbox(prefix="bootstrap-progress") as inbox:
            done = trio.Event()
            stream = await request.start_stream()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(forward_progress, inbox, stream, done, False)
                try:
                    result: Done = await context.images.ask(Bootstrap(image, inbox.ref), timeout=3600)
                except RemoteError as error:
                    done.set()
                    nursery.cancel_scope.cancel()
                    await stream.send_json(error_message(error.message))
                    return
                done.set()
                nursery.cancel_scope.cancel()
            await stream.send_json({"status": f"Bootstrapped {', '.join(result.lines)}", "aux": {"ID": result.image_id}})
            publish(context.events, Event("image", "bootstrap", result.image_id, {"name": ", ".join(result.lines)}, time_nano=_now_nano()))

    return router


def _now_nano() -> int:
    import time

    return time.time_ns()


def data_path(context: DaemonContext, *parts: str) -> Path:
    return context.config.data_root.joinpath(*parts)
