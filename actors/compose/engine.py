"""The Engine API calls Compose makes, over `actors.client.api.Client`.

Objects of a project are found only by Docker Compose's labels
(`com.docker.compose.project=<name>`), as `docker compose` finds them, so the two tools
see each other's containers, networks and volumes. `observe` turns what the engine
reports into the planner's `Observed`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from actors.client import api
from actors.client.commands.common import quote_path

from . import labels as compose_labels
from .reconcile import Observed, ObservedContainer, ObservedNetwork, ObservedVolume


def label_filters(*labels: str, **other: list[str]) -> str:
    filters: dict[str, list[str]] = {"label": list(labels)}
    filters.update(other)
    return json.dumps(filters, separators=(",", ":"))


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, api.APIError) and error.status == 404


def container_name_of(summary: dict[str, Any]) -> str:
    names = summary.get("Names") or []
    for name in names:
        if name.count("/") == 1:
            return name.lstrip("/")
    return (names[0] if names else summary.get("Name", "")).lstrip("/")


def observed_container(summary: dict[str, Any]) -> ObservedContainer:
    labels = summary.get("Labels") or {}
    number_text = labels.get(compose_labels.CONTAINER_NUMBER, "")
    networks = ((summary.get("NetworkSettings") or {}).get("Networks") or {})
    return ObservedContainer(
        id=summary["Id"],
        name=container_name_of(summary),
        service=labels.get(compose_labels.SERVICE, ""),
        number=int(number_text) if number_text.isdigit() else None,
        oneoff=labels.get(compose_labels.ONEOFF) == "True",
        state=summary.get("State") or "",
        config_hash=labels.get(compose_labels.CONFIG_HASH),
        image_digest=labels.get(compose_labels.IMAGE),
        created=int(summary.get("Created") or 0),
        network_names=tuple(sorted(networks)),
        network_ids=tuple(sorted(settings.get("NetworkID") or "" for settings in
                                 networks.values() if settings and settings.get("NetworkID"))),
        volume_names=tuple(sorted(mount.get("Name") or "" for mount in summary.get("Mounts") or ()
                                  if mount.get("Type") == "volume" and mount.get("Name"))),
        labels=labels,
    )


def observed_network(summary: dict[str, Any]) -> ObservedNetwork:
    ipam = summary.get("IPAM") or {}
    return ObservedNetwork(
        id=summary.get("Id") or "",
        name=summary.get("Name") or "",
        labels=summary.get("Labels") or {},
        driver=summary.get("Driver") or "bridge",
        internal=bool(summary.get("Internal")),
        attachable=bool(summary.get("Attachable")),
        enable_ipv6=bool(summary.get("EnableIPv6")),
        options=summary.get("Options") or {},
        subnets=tuple(pool.get("Subnet") for pool in ipam.get("Config") or ()
                      if pool.get("Subnet")),
    )


def observed_volume(summary: dict[str, Any]) -> ObservedVolume:
    return ObservedVolume(
        name=summary.get("Name") or "",
        labels=summary.get("Labels") or {},
        driver=summary.get("Driver") or "local",
        options=summary.get("Options") or {},
    )


class Engine:
    """One daemon. Methods raise `api.ClientError` (APIError carries the daemon's message)."""

    def __init__(self, client: api.Client) -> None:
        self.client = client

    @property
    def api_version(self) -> str:
        return self.client.version

    # -- containers

    def containers(self, project_name: str, *, all: bool = True, oneoff: bool | None = None,
                   services: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The project's containers by label, in name order."""
        wanted = [compose_labels.project_filter(project_name)]
        if oneoff is not None:
            wanted.append(f"{compose_labels.ONEOFF}={'True' if oneoff else 'False'}")
        found = self.client.get_json("/containers/json", {
            "all": "1" if all else None, "filters": label_filters(*wanted)}) or []
        selected = set(services)
        if selected:
            found = [summary for summary in found
                     if (summary.get("Labels") or {}).get(compose_labels.SERVICE) in selected]
        return sorted(found, key=container_name_of)

    def all_containers(self, filters: str | None = None) -> list[dict[str, Any]]:
        return self.client.get_json("/containers/json", {"all": "1", "filters": filters}) or []

    def inspect(self, container: str) -> dict[str, Any]:
        return self.client.get_json(f"/containers/{quote_path(container)}/json")

    def create(self, query: dict[str, str], body: dict[str, Any]) -> tuple[str, list[str]]:
        answer = self.client.post_json("/containers/create", query, body) or {}
        return answer.get("Id", ""), list(answer.get("Warnings") or [])

    def start(self, container: str) -> None:
        self.client.request("POST", f"/containers/{quote_path(container)}/start").close()

    def stop(self, container: str, timeout_seconds: int | None = None) -> None:
        query = {"t": str(timeout_seconds)} if timeout_seconds is not None else None
        self.client.request("POST", f"/containers/{quote_path(container)}/stop", query).close()

    def restart(self, container: str, timeout_seconds: int | None = None) -> None:
        query = {"t": str(timeout_seconds)} if timeout_seconds is not None else None
        self.client.request("POST", f"/containers/{quote_path(container)}/restart",
                            query).close()

    def kill(self, container: str, signal: str | None = None) -> None:
        query = {"signal": signal} if signal else None
        self.client.request("POST", f"/containers/{quote_path(container)}/kill", query).close()

    def pause(self, container: str) -> None:
        self.client.request("POST", f"/containers/{quote_path(container)}/pause").close()

    def unpause(self, container: str) -> None:
        self.client.request("POST", f"/containers/{quote_path(container)}/unpause").close()

    def remove(self, container: str, *, volumes: bool = False, force: bool = False) -> None:
        self.client.request("DELETE", f"/containers/{quote_path(container)}",
                            {"v": "1" if volumes else None,
                             "force": "1" if force else None}).close()

    def rename(self, container: str, name: str) -> None:
        self.client.request("POST", f"/containers/{quote_path(container)}/rename",
                            {"name": name}).close()

    def wait(self, container: str, condition: str = "not-running") -> int:
        answer = self.client.post_json(f"/containers/{quote_path(container)}/wait",
                                       {"condition": condition}) or {}
        return int(answer.get("StatusCode") or 0)

    def attach(self, container: str, *, stdin: bool = False, logs: bool = False
               ) -> api.HijackedStream:
        return self.client.hijack(f"/containers/{quote_path(container)}/attach", {
            "stream": "1", "stdout": "1", "stderr": "1", "stdin": "1" if stdin else None,
            "logs": "1" if logs else None})

    def logs(self, container: str, *, follow: bool = False, tail: str = "all",
             timestamps: bool = False, since: str | None = None, until: str | None = None
             ) -> Iterator[bytes]:
        response = self.client.request("GET", f"/containers/{quote_path(container)}/logs", {
            "stdout": "1", "stderr": "1", "follow": "1" if follow else None, "tail": tail,
            "timestamps": "1" if timestamps else None, "since": since or None,
            "until": until or None})
        with response:
            yield from response.iter_raw()

    def top(self, container: str) -> dict[str, Any]:
        return self.client.get_json(f"/containers/{quote_path(container)}/top")

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        self.client.request("PUT", f"/containers/{quote_path(container)}/archive",
                            {"path": path}, body=data,
                            headers={"Content-Type": "application/x-tar"}).close()

    def exec_create(self, container: str, body: dict[str, Any]) -> str:
        answer = self.client.post_json(f"/containers/{quote_path(container)}/exec", None, body)
        return (answer or {}).get("Id", "")

    def exec_start(self, exec_id: str, *, detach: bool, tty: bool) -> api.HijackedStream | None:
        body = {"Detach": detach, "Tty": tty}
        if detach:
            self.client.request("POST", f"/exec/{exec_id}/start", json_body=body).close()
            return None
        return self.client.hijack(f"/exec/{exec_id}/start", json_body=body)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return self.client.get_json(f"/exec/{exec_id}/json")

    # -- networks and volumes

    def networks(self) -> list[dict[str, Any]]:
        return self.client.get_json("/networks") or []

    def project_networks(self, project_name: str) -> list[dict[str, Any]]:
        return self.client.get_json("/networks", {
            "filters": label_filters(compose_labels.project_filter(project_name))}) or []

    def create_network(self, body: dict[str, Any]) -> str:
        return (self.client.post_json("/networks/create", None, body) or {}).get("Id", "")

    def remove_network(self, network: str) -> None:
        self.client.request("DELETE", f"/networks/{quote_path(network)}").close()

    def connect(self, network: str, container: str, endpoint: dict[str, Any]) -> None:
        self.client.request("POST", f"/networks/{quote_path(network)}/connect",
                            json_body={"Container": container, "EndpointConfig": endpoint}
                            ).close()

    def volumes(self, filters: str | None = None) -> list[dict[str, Any]]:
        answer = self.client.get_json("/volumes", {"filters": filters}) or {}
        return answer.get("Volumes") or []

    def create_volume(self, body: dict[str, Any]) -> None:
        self.client.post_json("/volumes/create", None, body)

    def remove_volume(self, name: str, force: bool = False) -> None:
        self.client.request("DELETE", f"/volumes/{quote_path(name)}",
                            {"force": "1" if force else None}).close()

    # -- images

    def image(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get_json(f"/images/{quote_path(name)}/json")
        except api.APIError as error:
            if error.status == 404:
                return None
            raise

    def images(self, filters: str | None = None) -> list[dict[str, Any]]:
        return self.client.get_json("/images/json", {"filters": filters}) or []

    def remove_image(self, name: str, force: bool = False) -> list[dict[str, Any]]:
        return self.client.request("DELETE", f"/images/{quote_path(name)}",
                                   {"force": "1" if force else None}).json() or []

    # -- observation

    def observe(self, project_name: str, image_digests: dict[str, str] | None = None
                ) -> Observed:
        containers = self.client.get_json("/containers/json", {
            "all": "1",
            "filters": label_filters(compose_labels.project_filter(project_name))}) or []
        return Observed(
            containers=tuple(observed_container(summary) for summary in
                             sorted(containers, key=container_name_of)),
            networks=tuple(observed_network(summary) for summary in self.networks()),
            volumes=tuple(observed_volume(summary) for summary in self.volumes()),
            image_digests=dict(image_digests or {}),
        )
