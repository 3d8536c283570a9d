"""The daemon actor: owns the REST API server and routes requests to the components.

Requests are served by the HTTP server's own tasks (one per connection, see
runtime/httpserver.py) running in this actor's nursery; each handler asks the component
actors and shapes their answers as the Docker Engine API does. The actor itself handles
one message, `Shutdown`, which stops accepting and lets in-flight requests finish.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from actors.daemon import api, images_routes, system
from actors.daemon.config import DaemonConfig
from actors.daemon.context import DaemonContext
from runtime.actor import Actor
from runtime.codec import message
from runtime.httpserver import (
    HTTPServer,
    Request,
    Response,
    listener_address,
    open_tcp_listeners,
    open_unix_listener,
    tls_listener,
)
from runtime.tls import server_context

log = logging.getLogger("flotta.daemon")


@message("daemon.shutdown")
@attrs.frozen
class Shutdown:
    grace_seconds: float = 10.0


@message("daemon.addresses")
@attrs.frozen
class Addresses:
    listening: list[str]


@message("daemon.get_addresses")
@attrs.frozen
class GetAddresses:
    pass


def build_router(context: DaemonContext) -> api.Router:
    router = api.Router()
    router.include(system.build_router(context))
    router.include(images_routes.build_router(context))
    for extension in context.extras.get("routers", []):
        router.include(extension(context))
    return router


class DaemonActor(Actor):
    def __init__(self, config: DaemonConfig, context_factory: Any) -> None:
        self.config = config
        self.context_factory = context_factory
        self.server: HTTPServer | None = None
        self.addresses: list[str] = []

    async def started(self) -> None:
        context: DaemonContext = self.context_factory(self)
        router = build_router(context)

        async def handle(request: Request) -> Response | None:
            return await router.dispatch(request)

        self.server = HTTPServer(
            handle, default_headers=api.default_headers(), error_handler=api.error_response
        )
        listeners: list[Any] = []
        for listen in self.config.listens:
            if listen.kind == "unix":
                listener = await open_unix_listener(listen.address, mode=self.config.socket_mode)
                listeners.append(listener)
                self.addresses.append(f"unix://{listen.address}")
            else:
                tcp = await open_tcp_listeners(listen.host, listen.port)
                if self.config.tls_verify:
                    assert self.config.tls_cert and self.config.tls_key and self.config.tls_ca
                    context_tls = server_context(
                        self.config.tls_cert, self.config.tls_key, self.config.tls_ca, require_client_cert=True
                    )
                    tcp = [tls_listener(item, context_tls) for item in tcp]
                else:
                    log.warning(
                        "LISTENING ON TCP %s WITHOUT TLS: anyone who can connect controls this host",
                        listen.address,
                    )
                for item in tcp:
                    host, port = listener_address(item)  # type: ignore[misc]
                    self.addresses.append(f"tcp://{host}:{port}")
                listeners.extend(tcp)
        await self.nursery.start(self.server.serve, listeners)
        log.info("API listening on %s", ", ".join(self.addresses))

    async def receive(self, message: Any) -> Any:
        match message:
            case Shutdown(grace_seconds):
                if self.server is not None:
                    await self.server.shutdown(grace_seconds)
                return None
            case GetAddresses():
                return Addresses(list(self.addresses))
        return None
