"""`extends`: a service built on top of another service, in the same file or another.

The referenced service is resolved first (it may extend something itself); then the
extending service's keys are merged on top of a copy of it with the usual merge rules
(merge.py). A service from another file brings its relative paths resolved against
that file's directory; `extends.file` itself is relative to the project directory for
the project's own files, and to the referencing file for files reached by `extends`.
A chain that comes back to a service already on it is an error naming the chain.
Resources the base service uses (networks, volumes, ...) are not imported: the project
must declare them, as the specification says.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

from .errors import Diagnostics
from .kinds import Overridden
from .merge import merge_service, strip_markers

DocumentLoader = Callable[[str], "dict[str, Any] | None"]
ServiceKey = tuple[str, str]


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Overridden) else value


class ExtendsResolver:
    """Resolves `extends` in documents; other files come from `load_document`."""

    def __init__(
        self,
        diagnostics: Diagnostics,
        load_document: DocumentLoader,
        absolutize: Callable[[dict[str, Any], str], dict[str, Any]],
    ) -> None:
        self.diagnostics = diagnostics
        self.load_document = load_document
        self.absolutize = absolutize

    def resolve_document(self, document: dict[str, Any], file: str, relative_to: str) -> None:
        services = document.get("services")
        if not isinstance(services, dict):
            return
        for name in list(services):
            resolved = self._resolve(name, services, file, relative_to, ())
            if resolved is not None:
                services[name] = resolved

    def _resolve(
        self,
        name: str,
        services: dict[str, Any],
        file: str,
        relative_to: str,
        chain: tuple[ServiceKey, ...],
    ) -> dict[str, Any] | None:
        service = _unwrap(services.get(name))
        if not isinstance(service, dict):
            return None
        reference = _unwrap(service.get("extends"))
        if not isinstance(reference, dict) or "service" not in reference:
            return service
        path = ("services", name, "extends")
        key = (file, name)
        if key in chain:
            links = [*chain[chain.index(key) :], key]
            described = " -> ".join(
                f"{service_name} ({os.path.basename(file_name)})"
                for file_name, service_name in links
            )
            self.diagnostics.error(file, path, f"circular extends: {described}")
            return None
        base_name = reference["service"]
        child = {field: value for field, value in service.items() if field != "extends"}
        if "file" in reference:
            target = os.path.normpath(
                os.path.join(relative_to, os.path.expanduser(reference["file"]))
            )
            other = self.load_document(target)
            if other is None:
                self.diagnostics.error(file, (*path, "file"), f"cannot load {target}")
                return None
            other_services = other.get("services")
            if not isinstance(other_services, dict) or base_name not in other_services:
                self.diagnostics.error(
                    file, (*path, "service"), f"service {base_name!r} not found in {target}"
                )
                return None
            base = self._resolve(
                base_name, other_services, target, os.path.dirname(target), (*chain, key)
            )
            if base is None:
                return None
            base = self.absolutize(copy.deepcopy(base), os.path.dirname(target))
        else:
            if base_name not in services:
                self.diagnostics.error(
                    file, (*path, "service"), f"service {base_name!r} not found in {file}"
                )
                return None
            base = self._resolve(base_name, services, file, relative_to, (*chain, key))
            if base is None:
                return None
        base = strip_markers({"service": base})["service"]
        return merge_service(base, child, name)
