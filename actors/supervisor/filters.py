"""`GET /containers/json` and `POST /containers/prune`: which containers a query selects.

Docker's semantics: filters AND across keys and OR within a key; `name` and `id` are
regular expressions searched in the name (with its leading "/") and the id; `label` takes
`key` or `key=value` and every one must match; `before`/`since` name a container and
select those created earlier/later; a `status` or `exited` filter, or `all`, includes
stopped containers. Results are newest first; `limit` keeps the newest N (and includes
stopped containers, as `docker ps -n` does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from actors.errdefs import InvalidParameter
from actors.supervisor import createconfig
from actors.supervisor.records import STATUSES, ContainerRecord

LIST_FILTERS = {
    "ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label",
    "name", "network", "publish", "since", "status", "volume",
}  # fmt: skip
PRUNE_FILTERS = {"until", "label", "label!"}
HEALTH_VALUES = {"starting", "healthy", "unhealthy", "none"}


def check_list_filters(filters: Mapping[str, Sequence[str]]) -> None:
    for key, values in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        for value in values:
            if key == "status" and value not in STATUSES:
                raise InvalidParameter(f"invalid filter 'status={value}'")
            if key == "health" and value not in HEALTH_VALUES:
                raise InvalidParameter(f"Unrecognised filter value for health: {value}")
            if key == "exited":
                try:
                    int(value)
                except ValueError:
                    raise InvalidParameter(f"invalid filter 'exited={value}'") from None
            if key in ("name", "id"):
                try:
                    re.compile(value)
                except re.error:
                    raise InvalidParameter(f"invalid filter '{key}={value}'") from None


def label_matches(labels: Mapping[str, str], expression: str) -> bool:
    key, separator, value = expression.partition("=")
    if not separator:
        return key in labels
    return labels.get(key) == value


def _port_set(keys: Sequence[str]) -> set[tuple[int, str]]:
    ports: set[tuple[int, str]] = set()
    for key in keys:
        first, last, protocol = createconfig.parse_port_key(key)
        ports.update((port, protocol) for port in range(first, last + 1))
    return ports


def _port_matches(wanted: str, available: set[tuple[int, str]]) -> bool:
    try:
        first, last, protocol = createconfig.parse_port_key(wanted)
    except InvalidParameter:
        raise InvalidParameter(f"invalid filter value {wanted!r}: not a port specification") from None
    return any((port, protocol) in available for port in range(first, last + 1))


def _health(record: ContainerRecord) -> str:
    if record.state.health is None:
        return "none"
    return str(record.state.health.get("Status", "none"))


def record_matches(
    record: ContainerRecord,
    filters: Mapping[str, Sequence[str]],
    ancestors: set[str],
    network_ids: Mapping[str, str],
) -> bool:
    """Whether one container passes every filter except before/since (handled by order)."""
    for key, values in filters.items():
        if not values or key in ("before", "since", "isolation"):
            continue
        if key == "id":
            ok = any(re.search(value, record.id) for value in values)
        elif key == "name":
            ok = any(re.search(value, "/" + record.name) for value in values)
        elif key == "label":
            ok = all(label_matches(record.labels, value) for value in values)
        elif key == "status":
            ok = record.state.status in values
        elif key == "exited":
            ok = record.state.status == "exited" and str(record.state.exit_code) in values
        elif key == "health":
            ok = _health(record) in values
        elif key == "ancestor":
            ok = record.image_id in ancestors or record.image_reference in values
        elif key == "volume":
            ok = any(
                value in (mount.name, mount.destination, mount.source)
                for mount in record.mounts
                for value in values
            )
        elif key == "network":
            names = set(record.endpoints) | set(record.network.get("Networks") or {})
            ids = {network_ids.get(name, "") for name in names} - {""}
            ok = any(
                value in names or any(identifier.startswith(value) for identifier in ids)
                for value in values
            )
        elif key == "publish":
            published = {
                (int(item["PrivatePort"]), str(item["Type"]))
                for item in record.network.get("PortsList") or []
            }
            published |= {
                (int(item["PublicPort"]), str(item["Type"]))
                for item in record.network.get("PortsList") or []
                if item.get("PublicPort")
            }
            ok = any(_port_matches(value, published) for value in values)
        elif key == "expose":
            exposed = _port_set(list(record.config.get("ExposedPorts") or {}))
            ok = any(_port_matches(value, exposed) for value in values)
        elif key == "is-task":
            is_task = "com.docker.swarm.task" in record.labels
            ok = any((value.lower() in ("1", "true")) == is_task for value in values)
        else:
            ok = True
        if not ok:
            return False
    return True


def select(
    records: Sequence[ContainerRecord],
    *,
    all_containers: bool,
    limit: int,
    filters: Mapping[str, Sequence[str]],
    resolve: Callable[[str], ContainerRecord],
    ancestors: set[str] | None = None,
    network_ids: Mapping[str, str] | None = None,
) -> list[ContainerRecord]:
    """The containers a list query selects, newest first (see the module docstring)."""
    ordered = sorted(records, key=lambda record: (record.created_ns, record.id), reverse=True)
    include_stopped = all_containers or limit > 0 or "status" in filters or "exited" in filters
    before = [resolve(value) for value in filters.get("before", [])]
    since = [resolve(value) for value in filters.get("since", [])]
    selected = []
    for record in ordered:
        if not include_stopped and record.state.status not in ("running", "paused", "restarting"):
            continue
        if any(record.created_ns >= other.created_ns for other in before):
            continue
        if any(record.created_ns <= other.created_ns for other in since):
            continue
        if not record_matches(record, filters, ancestors or set(), network_ids or {}):
            continue
        selected.append(record)
        if limit > 0 and len(selected) >= limit:
            break
    return selected


def check_prune_filters(filters: Mapping[str, Sequence[str]]) -> None:
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")


def prune_matches(record: ContainerRecord, filters: Mapping[str, Sequence[str]], until_ns: int | None) -> bool:
    if until_ns is not None and record.created_ns >= until_ns:
        return False
    labels = record.labels
    if not all(label_matches(labels, value) for value in filters.get("label", [])):
        return False
    return not any(label_matches(labels, value) for value in filters.get("label!", []))
