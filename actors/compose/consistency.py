"""Profiles, and the checks that need the whole project: references and cycles.

Profiles: a service without `profiles` is always enabled; one with profiles is enabled
when one of them is active, or when `*` is active. A service named on the command line
activates its own profiles. Only enabled services are checked and run; a dependency on
a disabled service is an error unless the dependency says `required: false`, in which
case it is dropped with a warning.

The checks, each reported with the file and path of the reference:
- a service needs `image` or `build`;
- `depends_on` targets exist and are enabled; `depends_on` has no cycle;
- networks, volumes, secrets and configs a service uses are declared at the top level;
- `network_mode` excludes `networks`;
- `container_name` excludes more than one replica and is unique in the project;
- no two mounts share a container path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .errors import Diagnostics
from .graph import find_cycle


def is_enabled(service: dict[str, Any], profiles: set[str]) -> bool:
    declared = service.get("profiles") or []
    return not declared or "*" in profiles or any(profile in profiles for profile in declared)


def split_by_profiles(
    services: dict[str, Any],
    profiles: Iterable[str],
    targeted: Iterable[str],
    diagnostics: Diagnostics,
) -> tuple[list[str], list[str], tuple[str, ...]]:
    """(enabled service names, disabled ones, active profiles)."""
    active = list(dict.fromkeys(profiles))
    for name in targeted:
        if name not in services:
            diagnostics.error("", (), f"no such service: {name}")
            continue
        for profile in services[name].get("profiles") or []:
            if profile not in active:
                active.append(profile)
    active_set = set(active)
    enabled = [name for name in services if is_enabled(services[name], active_set)]
    disabled = [name for name in services if name not in enabled]
    return enabled, disabled, tuple(active)


def check_project(
    document: dict[str, Any],
    enabled: list[str],
    diagnostics: Diagnostics,
    origin: Callable[[str, str], str],
) -> None:
    services: dict[str, Any] = document.get("services", {})
    enabled_set = set(enabled)
    container_names: dict[str, str] = {}
    for name in enabled:
        service = services[name]
        file = origin("services", name)
        here = ("services", name)
        if "image" not in service and "build" not in service:
            diagnostics.error(
                file,
                here,
                "the service has neither an image nor a build context: set image or build",
            )
        _check_dependencies(name, service, services, enabled_set, diagnostics, file)
        if "network_mode" in service and service.get("networks"):
            diagnostics.error(file, here, "network_mode and networks cannot both be set")
        for network in service.get("networks") or {}:
            if network not in document.get("networks", {}):
                diagnostics.error(
                    file,
                    (*here, "networks", network),
                    f"network {network!r} is not declared in the top-level networks",
                )
        targets: dict[str, str] = {}
        for index, volume in enumerate(service.get("volumes") or []):
            source = volume.get("source")
            if volume["type"] == "volume" and source and source not in document.get("volumes", {}):
                diagnostics.error(
                    file,
                    (*here, "volumes", index),
                    f"volume {source!r} is not declared in the top-level volumes",
                )
            targets[volume["target"]] = f"volumes[{index}]"
        for index, entry in enumerate(service.get("tmpfs") or []):
            target = entry.split(":", 1)[0]
            if target in targets:
                diagnostics.error(
                    file,
                    (*here, "tmpfs", index),
                    f"{target} is already mounted by {targets[target]}",
                )
        for section in ("secrets", "configs"):
            for index, reference in enumerate(service.get(section) or []):
                if reference["source"] not in document.get(section, {}):
                    diagnostics.error(
                        file,
                        (*here, section, index),
                        f"{section[:-1]} {reference['source']!r} is not declared in the "
                        f"top-level {section}",
                    )
        container_name = service.get("container_name")
        if container_name:
            replicas = service.get("scale", (service.get("deploy") or {}).get("replicas", 1))
            if replicas > 1:
                diagnostics.error(
                    file,
                    (*here, "container_name"),
                    "container_name cannot be used with more than one replica",
                )
            if container_name in container_names:
                diagnostics.error(
                    file,
                    (*here, "container_name"),
                    f"container name {container_name!r} is also used by service "
                    f"{container_names[container_name]!r}",
                )
            container_names[container_name] = name
    graph = {
        name: [target for target in services[name].get("depends_on") or {} if target != name]
        for name in enabled
    }
    cycle = find_cycle(graph)
    if cycle:
        diagnostics.error(
            origin("services", cycle[0]),
            ("services", cycle[0], "depends_on"),
            "dependency cycle: " + " -> ".join(cycle),
        )


def _check_dependencies(
    name: str,
    service: dict[str, Any],
    services: dict[str, Any],
    enabled: set[str],
    diagnostics: Diagnostics,
    file: str,
) -> None:
    depends_on: dict[str, Any] = service.get("depends_on") or {}
    for dependency in list(depends_on):
        here = ("services", name, "depends_on", dependency)
        if dependency == name:
            diagnostics.error(file, here, "a service cannot depend on itself")
        elif dependency not in services:
            diagnostics.error(file, here, f"service {dependency!r} is not defined")
        elif dependency not in enabled:
            if depends_on[dependency].get("required", True):
                profiles = ", ".join(services[dependency].get("profiles") or [])
                diagnostics.error(
                    file,
                    here,
                    f"service {dependency!r} is not enabled by the active profiles "
                    f"(its profiles: {profiles})",
                )
            else:
                diagnostics.warn(
                    f"{file}: services.{name}.depends_on: optional dependency {dependency!r} "
                    "is disabled by profiles, ignored"
                )
                del depends_on[dependency]
