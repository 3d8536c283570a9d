"""Volume endpoints: create, list, inspect, remove, prune."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.daemon.api import (
    ApiError,
    Router,
    check_filter_keys,
    query_bool,
    query_filters,
    read_json_object,
)
from actors.daemon.events import Event, publish
from actors.volumes.messages import (
    CreateVolume,
    InspectVolume,
    ListVolumes,
    PruneVolumes,
    RemoveVolume,
)
from runtime.httpserver import Request, Response, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

LIST_FILTERS = {"dangling", "driver", "label", "name"}
PRUNE_FILTERS = {"label", "label!", "all"}


async def volume_users(context: DaemonContext) -> dict[str, list[str]]:
    if context.containers is None:
        return {}
    from actors.supervisor.messages import ListVolumeUsers

    result = await context.containers.ask(ListVolumeUsers())
    return {name: list(users) for name, users in result.users.items()}


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ApiError(400, f"{field} must be a map of strings")
    return dict(value)


def build_router(context: DaemonContext) -> Router:
    router = Router()
    volumes = context.volumes
    assert volumes is not None

    def event(action: str, name: str, attributes: dict[str, str] | None = None) -> None:
        publish(context.events, Event("volume", action, name, {"driver": "local", **(attributes or {})}, time_nano=time.time_ns()))

    @router.route("POST", "/volumes/create")
    async def create(request: Request) -> Response:
        body = await read_json_object(request)
        name = body.get("Name") or ""
        if not isinstance(name, str):
            raise ApiError(400, "Name must be a string")
        driver = body.get("Driver") or "local"
        result = await volumes.ask(
            CreateVolume(name, driver, _string_map(body.get("Labels"), "Labels"), _string_map(body.get("DriverOpts"), "DriverOpts"))
        )
        if result.created:
            event("create", result.body["Name"])
        return json_response(result.body, 201)

    @router.route("GET", "/volumes")
    async def list_volumes(request: Request) -> Response:
        filters = query_filters(request)
        check_filter_keys(filters, LIST_FILTERS)
        users = await volume_users(context)
        result = await volumes.ask(ListVolumes(filters, sorted(users)))
        return json_response({"Volumes": result.body, "Warnings": []})

    @router.route("GET", "/volumes/(?P<name>[^/]+)")
    async def inspect(request: Request, name: str) -> Response:
        result = await volumes.ask(InspectVolume(name))
        return json_response(result.body)

    @router.route("DELETE", "/volumes/(?P<name>[^/]+)")
    async def remove(request: Request, name: str) -> Response:
        users = await volume_users(context)
        await volumes.ask(RemoveVolume(name, query_bool(request, "force"), users.get(name, [])))
        event("destroy", name)
        return Response(204)

    @router.route("POST", "/volumes/prune")
    async def prune(request: Request) -> Response:
        filters = query_filters(request)
        check_filter_keys(filters, PRUNE_FILTERS)
        users = await volume_users(context)
        result = await volumes.ask(PruneVolumes(filters, sorted(users)), timeout=600)
        for name in result.body["VolumesDeleted"]:
            event("destroy", name)
        return json_response(result.body)

    return router
