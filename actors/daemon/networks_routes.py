"""Network endpoints: create, list, inspect, remove, prune, connect, disconnect."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from actors.daemon.api import ApiError, Router, check_filter_keys, query_filters, read_json_object
from actors.daemon.events import Event, publish
from actors.network.actor import (
    CreateNetwork,
    InspectNetwork,
    ListNetworks,
    PruneNetworks,
    RemoveNetwork,
)
from actors.supervisor.messages import ConnectNetwork, DisconnectNetwork
from runtime.actor import Ref
from runtime.httpserver import Request, Response, json_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}


def build_router(context: DaemonContext) -> Router:
    router = Router()
    networks = context.networks
    assert networks is not None

    def containers() -> Ref:
        if context.containers is None:
            raise ApiError(501, "containers are not available in this daemon")
        return context.containers

    def event(action: str, network_id: str, name: str, extra: dict[str, str] | None = None) -> None:
        attributes = {"name": name, "type": "bridge", **(extra or {})}
        publish(context.events, Event("network", action, network_id, attributes, time_nano=time.time_ns()))

    @router.route("POST", "/networks/create")
    async def create(request: Request) -> Response:
        body = await read_json_object(request, allow_empty=False)
        result = await networks.ask(CreateNetwork(body), timeout=120)
        event("create", result.body["Id"], str(body.get("Name", "")))
        return json_response(result.body, 201)

    @router.route("GET", "/networks")
    async def list_networks(request: Request) -> Response:
        filters = query_filters(request)
        check_filter_keys(filters, LIST_FILTERS)
        result = await networks.ask(ListNetworks(filters))
        return json_response(result.body)

    @router.route("GET", "/networks/(?P<reference>[^/]+)")
    async def inspect(request: Request, reference: str) -> Response:
        result = await networks.ask(InspectNetwork(reference))
        return json_response(result.body)

    @router.route("DELETE", "/networks/(?P<reference>[^/]+)")
    async def remove(request: Request, reference: str) -> Response:
        result = await networks.ask(RemoveNetwork(reference), timeout=120)
        event("destroy", result.body["Id"], result.body["Name"])
        return Response(204)

    @router.route("POST", "/networks/prune")
    async def prune(request: Request) -> Response:
        filters = query_filters(request)
        check_filter_keys(filters, PRUNE_FILTERS)
        result = await networks.ask(PruneNetworks(filters), timeout=300)
        return json_response(result.body)

    @router.route("POST", "/networks/(?P<reference>[^/]+)/connect")
    async def connect(request: Request, reference: str) -> Response:
        body = await read_json_object(request, allow_empty=False)
        container = body.get("Container")
        if not isinstance(container, str) or not container:
            raise ApiError(400, "Container is required")
        endpoint_config = body.get("EndpointConfig") or {}
        if not isinstance(endpoint_config, dict):
            raise ApiError(400, "EndpointConfig must be an object")
        await containers().ask(ConnectNetwork(container, reference, endpoint_config), timeout=120)
        return Response(200)

    @router.route("POST", "/networks/(?P<reference>[^/]+)/disconnect")
    async def disconnect(request: Request, reference: str) -> Response:
        body = await read_json_object(request, allow_empty=False)
        container = body.get("Container")
        if not isinstance(container, str) or not container:
            raise ApiError(400, "Container is required")
        await containers().ask(DisconnectNetwork(container, reference, bool(body.get("Force"))), timeout=120)
        return Response(200)

    return router
