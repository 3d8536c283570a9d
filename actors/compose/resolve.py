"""Completing the merged canonical document before it is typed.

- Relative host paths (build contexts, env files, bind mount sources, secret and config
  files) become absolute against the project directory; `~` is the user's home.
- `environment` entries without a value take it from the project environment (shell,
  then env files) or stay unset (null); `env_file` files are read and their values go
  under `environment`, which wins. Build `args` without a value take it from the
  environment or are dropped.
- `build` gets its defaults: context `.`, dockerfile `Dockerfile`.
- The legacy keys `mem_limit`, `mem_reservation`, `cpus` and `pids_limit` move into
  `deploy.resources`; giving both forms different values is an error, as is `scale`
  different from `deploy.replicas`.
- Dependencies implied by `links`, `volumes_from` and `service:` namespaces are added
  to `depends_on`, as Docker Compose does.
- A service with neither `networks` nor `network_mode` joins the `default` network,
  which is added to the top-level networks when used.
- `extra_hosts` are sorted by host name (Docker Compose keeps them as a mapping).
- Networks, volumes, secrets and configs get their engine names:
  `<project>_<key>` unless `name:` is set or they are external (then `name` or key).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from .dotenv import EnvFileError, parse_env_text, parse_raw_env_text
from .errors import Diagnostics

_REMOTE_CONTEXT = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@)")
_NON_PATH_CONTEXT = re.compile(r"^(?:docker-image://|service:|target:|oci-layout://)")


def expand_home(path: str, home: str | None) -> str:
    if path == "~" or path.startswith("~/"):
        base = home if home else os.path.expanduser("~")
        return base + path[1:]
    if path.startswith("~"):
        return os.path.expanduser(path)
    return path


def absolute(path: str, base_dir: str, home: str | None) -> str:
    return os.path.normpath(os.path.join(base_dir, expand_home(path, home)))


def absolutize_service(service: dict[str, Any], base_dir: str, home: str | None) -> dict[str, Any]:
    """Make a canonical service's host paths absolute against `base_dir` (in place)."""
    build = service.get("build")
    if isinstance(build, dict):
        context = build.get("context")
        if isinstance(context, str) and not _REMOTE_CONTEXT.match(context):
            build["context"] = absolute(context, base_dir, home)
        contexts = build.get("additional_contexts")
        if isinstance(contexts, dict):
            for key, value in contexts.items():
                if value and not (_REMOTE_CONTEXT.match(value) or _NON_PATH_CONTEXT.match(value)):
                    contexts[key] = absolute(value, base_dir, home)
    for entry in service.get("env_file") or []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            entry["path"] = absolute(entry["path"], base_dir, home)
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("type") == "bind" and volume.get("source"):
            volume["source"] = absolute(volume["source"], base_dir, home)
    return service


def _load_env_file(entry: dict[str, Any], lookup: Callable[[str], str | None]) -> dict[str, str]:
    path = entry["path"]
    if not os.path.exists(path):
        if entry.get("required", True):
            raise EnvFileError("env file not found")
        return {}
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if entry.get("format") == "raw":
        return parse_raw_env_text(text, lookup)
    return parse_env_text(text, lookup)


def resolve_environment(
    service: dict[str, Any],
    environment: Mapping[str, str],
    diagnostics: Diagnostics,
    file: str,
    name: str,
    read_files: bool = True,
) -> None:
    declared: dict[str, str | None] = {}
    for key, value in (service.get("environment") or {}).items():
        declared[key] = environment.get(key) if value is None else value
    merged: dict[str, str | None] = {}
    for index, entry in enumerate(service.get("env_file") or [] if read_files else []):

        def lookup(key: str) -> str | None:
            found = environment.get(key)
            return found if found is not None else declared.get(key)

        try:
            merged.update(_load_env_file(entry, lookup))
        except (EnvFileError, OSError, UnicodeDecodeError) as error:
            diagnostics.error(
                file, ("services", name, "env_file", index), f"{entry['path']}: {error}"
            )
    merged.update(declared)
    if merged or "environment" in service:
        service["environment"] = merged


def _fold(
    service: dict[str, Any],
    legacy: str,
    section: str,
    key: str,
    diagnostics: Diagnostics,
    file: str,
    name: str,
) -> None:
    if legacy not in service:
        return
    value = service.pop(legacy)
    deploy = service.setdefault("deploy", {})
    resources = deploy.setdefault("resources", {})
    target = resources.setdefault(section, {})
    if key in target and target[key] != value:
        diagnostics.error(
            file,
            ("services", name),
            f"{legacy} and deploy.resources.{section}.{key} have different values",
        )
        return
    target[key] = value


def _implied_dependencies(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    implied: dict[str, dict[str, Any]] = {}
    for link in service.get("links") or []:
        implied[link.split(":", 1)[0]] = {
            "condition": "service_started",
            "restart": True,
            "required": True,
        }
    for namespace in ("network_mode", "ipc", "pid"):
        value = service.get(namespace)
        if isinstance(value, str) and value.startswith("service:"):
            implied[value[len("service:") :]] = {
                "condition": "service_started",
                "restart": True,
                "required": True,
            }
    for source in service.get("volumes_from") or []:
        if not source.startswith("container:"):
            implied[source.split(":", 1)[0]] = {
                "condition": "service_started",
                "restart": False,
                "required": True,
            }
    return implied


def complete_document(
    document: dict[str, Any],
    *,
    project_name: str,
    working_dir: str,
    environment: Mapping[str, str],
    diagnostics: Diagnostics,
    origin: Callable[[str, str], str],
    read_env_files: set[str] | None = None,
) -> dict[str, Any]:
    """The merged canonical document, completed as described in the module docstring.

    `env_file`s are read only for the services in `read_env_files` (the enabled ones;
    all when None), so a disabled service's missing env file is no error.
    """
    home = environment.get("HOME")
    services: dict[str, Any] = document.setdefault("services", {})
    uses_default_network = False
    for name, service in services.items():
        file = origin("services", name)
        absolutize_service(service, working_dir, home)
        build = service.get("build")
        if isinstance(build, dict):
            build.setdefault("context", working_dir)
            if "dockerfile_inline" not in build:
                build.setdefault("dockerfile", "Dockerfile")
            if "args" in build:
                build["args"] = {
                    key: value if value is not None else environment[key]
                    for key, value in build["args"].items()
                    if value is not None or key in environment
                }
        for owner in (service, build if isinstance(build, dict) else {}):
            if isinstance(owner.get("extra_hosts"), list):
                owner["extra_hosts"] = sorted(
                    owner["extra_hosts"], key=lambda entry: (entry["host"], entry["ip"])
                )
        resolve_environment(
            service,
            environment,
            diagnostics,
            file,
            name,
            read_files=read_env_files is None or name in read_env_files,
        )
        _fold(service, "mem_limit", "limits", "memory", diagnostics, file, name)
        _fold(service, "cpus", "limits", "cpus", diagnostics, file, name)
        _fold(service, "pids_limit", "limits", "pids", diagnostics, file, name)
        _fold(service, "mem_reservation", "reservations", "memory", diagnostics, file, name)
        deploy = service.get("deploy")
        replicas = (deploy or {}).get("replicas", service.get("scale"))
        if "scale" in service and replicas != service["scale"]:
            diagnostics.error(
                file, ("services", name), "scale and deploy.replicas have different values"
            )
        depends_on = service.get("depends_on") or {}
        for dependency, settings in _implied_dependencies(service).items():
            depends_on.setdefault(dependency, settings)
        if depends_on:
            service["depends_on"] = depends_on
        if "network_mode" not in service:
            attached = service.get("networks")
            if not attached:
                service["networks"] = {"default": None}
                uses_default_network = True
            elif "default" in attached:
                uses_default_network = True
    networks: dict[str, Any] = document.setdefault("networks", {})
    if uses_default_network and "default" not in networks:
        networks["default"] = {}
    for section in ("networks", "volumes", "secrets", "configs"):
        resources = document.setdefault(section, {})
        for key, resource in resources.items():
            if "name" not in resource:
                resource["name"] = key if resource.get("external") else f"{project_name}_{key}"
            if section in ("secrets", "configs") and isinstance(resource.get("file"), str):
                resource["file"] = absolute(resource["file"], working_dir, home)
    return document
