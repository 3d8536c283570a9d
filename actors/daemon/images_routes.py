"""Image endpoints: list, inspect, history, tag, rmi, prune, save, load, import, pull,
push, and flotta's own bootstrap."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from actors.daemon.api import ApiError, Router, query_bool, query_filters, read_json_object
from actors.daemon.events import Event, publish
from actors.daemon.streaming import ask_with_progress, error_message

__all__ = ["build_router", "error_message", "image_users", "spooled_body"]
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
    Login,
    PruneImages,
    Pulled,
    PullImage,
    PushImage,
    SaveArchive,
    TagImage,
)
from actors.images.pull import reference_from_api
from actors.images.reference import InvalidReference, parse_repository_tag
from runtime.httpserver import Request, Response, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

IMAGE_FILTERS = {"dangling", "label", "before", "since", "reference", "until"}


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
            outcome = await ask_with_progress(
                context, request, context.images, lambda inbox: LoadArchive(path, inbox), quiet=quiet
            )
        if outcome.failed:
            return
        stream = await outcome.ensure_stream(request)
        for line in outcome.value.lines:
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
        try:
            reference = reference_from_api(image, request.query.get("tag") or "")
        except (InvalidReference, ValueError) as error:
            raise ApiError(400, str(error)) from None
        platform = request.query.get("platform") or "linux/amd64"
        auth = request.headers.get("x-registry-auth") or ""
        outcome = await ask_with_progress(
            context, request, context.images, lambda inbox: PullImage(reference, auth, inbox, platform)
        )
        if outcome.failed:
            return
        pulled: Pulled = outcome.value
        await outcome.ensure_stream(request)
        publish(context.events, Event("image", "pull", pulled.reference, {"name": pulled.reference}, time_nano=_now_nano()))

    @router.route("POST", "/images/(?P<name>.+)/push")
    async def push(request: Request, name: str) -> None:
        tag_name = request.query.get("tag") or ""
        reference = f"{name}:{tag_name}" if tag_name else name
        auth = request.headers.get("x-registry-auth") or ""
        outcome = await ask_with_progress(
            context, request, context.images, lambda inbox: PushImage(reference, auth, inbox, all_tags=not tag_name)
        )
        if outcome.failed:
            return
        await outcome.ensure_stream(request)
        publish(context.events, Event("image", "push", reference, {"name": reference}, time_nano=_now_nano()))

    @router.route("POST", "/auth")
    async def auth(request: Request) -> Response:
        body = await read_json_object(request)
        server = body.get("serveraddress") or "https://index.docker.io/v1/"
        result = await context.images.ask(
            Login(str(server), str(body.get("username") or ""), str(body.get("password") or "")), timeout=60
        )
        return json_response({"Status": result.status, "IdentityToken": result.identity_token})

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
        outcome = await ask_with_progress(context, request, context.images, lambda inbox: Bootstrap(image, inbox))
        if outcome.failed:
            return
        result: Done = outcome.value
        stream = await outcome.ensure_stream(request)
        await stream.send_json({"status": f"Bootstrapped {', '.join(result.lines)}", "aux": {"ID": result.image_id}})
        publish(context.events, Event("image", "bootstrap", result.image_id, {"name": ", ".join(result.lines)}, time_nano=_now_nano()))

    return router


def _now_nano() -> int:
    import time

    return time.time_ns()


def data_path(context: DaemonContext, *parts: str) -> Path:
    return context.config.data_root.joinpath(*parts)
