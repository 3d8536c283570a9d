"""Loading a Compose project: files → typed `Project`, or every problem found.

The pipeline, per file and per YAML document in it, in the order given:
parse (YAML 1.2 rules, yamlload.py) → interpolate values (interpolation.py) → check
and canonicalize (schema.py) → resolve `extends` (extends.py) → merge into the
documents before it (merge.py). Then, on the merged document: complete it
(resolve.py: paths, environment, defaults, legacy keys, default network, names),
apply profiles and check references and cycles (consistency.py), and type it
(model.py).

Nothing is created anywhere: loading only reads files. Problems are collected across
all the steps a file can go through; the loader stops before the next stage when a
stage found any, so later stages only see well-formed input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .consistency import check_project, split_by_profiles
from .discovery import (
    ConfigFile,
    ProjectOptions,
    ProjectSource,
    _read_config,
    discover,
    normalize_project_name,
    problem_for_name,
)
from .errors import ComposeError, Diagnostics
from .extends import ExtendsResolver
from .interpolation import InterpolationError, TreeTooLarge, interpolate_tree, substitute
from .kinds import Context
from .merge import enforce_unique, merge_documents
from .model import Network, Project, Secret, Volume, converter, structure_service
from .resolve import absolutize_service, complete_document
from .schema import check_document
from .yamlload import YamlProblem, load_documents

_SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


@attrs.frozen
class Loaded:
    project: Project
    warnings: tuple[str, ...]


def load_project(options: ProjectOptions) -> Loaded:
    """Discover and load a project the way `docker compose` would. Raises ComposeError."""
    return load_source(discover(options), services=options.services)


def load_files(
    files: Sequence[tuple[str, str]],
    *,
    working_dir: str,
    environment: Mapping[str, str] | None = None,
    project_name: str | None = None,
    profiles: Iterable[str] = (),
    services: Iterable[str] = (),
) -> Loaded:
    """Load `(path, text)` pairs directly, without discovery (for tools and tests)."""
    source = ProjectSource(
        config_files=tuple(ConfigFile(path, text) for path, text in files),
        working_dir=os.path.abspath(working_dir),
        environment=dict(environment or {}),
        env_files=(),
        profiles=tuple(profiles),
        explicit_name=project_name,
    )
    return load_source(source, services=services)


class _Documents:
    """Parses, interpolates and checks files; caches files reached through extends."""

    def __init__(self, diagnostics: Diagnostics, environment: Mapping[str, str]) -> None:
        self.diagnostics = diagnostics
        self.environment = environment
        self.cache: dict[str, dict[str, Any] | None] = {}

    def canonical(self, raw: Any, file: str) -> dict[str, Any] | None:
        try:
            interpolated = interpolate_tree(raw, self.environment.get, self.diagnostics, file)
        except TreeTooLarge as error:
            self.diagnostics.error(file, (), str(error))
            return None
        document = check_document(interpolated, Context(self.diagnostics, file))
        return None if document is None else enforce_unique(document)

    def other_file(self, path: str) -> dict[str, Any] | None:
        if path in self.cache:
            return self.cache[path]
        self.cache[path] = None
        try:
            text = _read_config(path, None).content
            raws = load_documents(text, path)
        except ComposeError as error:
            self.diagnostics.problems.extend(error.problems)
            return None
        except YamlProblem as error:
            self.diagnostics.problems.append(error.problem)
            return None
        merged: dict[str, Any] = {}
        for raw in raws:
            document = self.canonical(raw, path)
            if document is not None:
                merged = merge_documents(merged, document)
        self.cache[path] = merged
        return merged


def _name_from_files(
    parsed: list[tuple[str, list[Any]]], environment: Mapping[str, str], diagnostics: Diagnostics
) -> str:
    """The top-level `name:` the files give (the last one wins), interpolated."""
    found = ""
    for file, documents in parsed:
        for document in documents:
            value = document.get("name") if isinstance(document, dict) else None
            if isinstance(value, str) and value:
                try:
                    found = substitute(value, environment.get) or found
                except InterpolationError as error:
                    diagnostics.error(file, ("name",), str(error))
    return found


def load_source(source: ProjectSource, services: Iterable[str] = ()) -> Loaded:
    """Load the files of a discovered project. Raises ComposeError with every problem."""
    diagnostics = Diagnostics()
    for warning in source.warnings:
        diagnostics.warn(warning)
    parsed: list[tuple[str, list[Any]]] = []
    for config in source.config_files:
        try:
            parsed.append((config.path, load_documents(config.content, config.path)))
        except YamlProblem as error:
            diagnostics.problems.append(error.problem)
    diagnostics.raise_if_any()

    name = source.explicit_name or normalize_project_name(
        _name_from_files(parsed, source.environment, diagnostics)
    )
    if not name:
        name = normalize_project_name(os.path.basename(source.working_dir))
    if not name:
        raise ComposeError([problem_for_name(source.working_dir)])
    environment = {**source.environment, "COMPOSE_PROJECT_NAME": name}
    home = environment.get("HOME")

    documents = _Documents(diagnostics, environment)
    resolver = ExtendsResolver(
        diagnostics,
        documents.other_file,
        lambda service, directory: absolutize_service(service, directory, home),
    )
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, str], str] = {}
    saw_content = False
    for file, raws in parsed:
        for raw in raws:
            document = documents.canonical(raw, file)
            if document is None:
                continue
            saw_content = saw_content or bool(document)
            resolver.resolve_document(document, file, source.working_dir)
            for section in _SECTIONS:
                for key in document.get(section) or {}:
                    origins[(section, key)] = file
            merged = merge_documents(merged, document)
    diagnostics.raise_if_any()
    if not saw_content:
        files = ", ".join(config.path for config in source.config_files)
        raise ComposeError.single(files, "", "empty compose file")

    first_file = source.config_files[0].path if source.config_files else ""

    def origin(section: str, key: str) -> str:
        return origins.get((section, key), first_file)

    enabled, disabled, active = split_by_profiles(
        merged.get("services") or {}, source.profiles, services, diagnostics
    )
    merged = complete_document(
        merged,
        project_name=name,
        working_dir=source.working_dir,
        environment=environment,
        diagnostics=diagnostics,
        origin=origin,
        read_env_files=set(enabled),
    )
    check_project(merged, enabled, diagnostics, origin)
    diagnostics.raise_if_any()
    project = _build_project(merged, name, source, enabled, disabled, active)
    return Loaded(project, tuple(diagnostics.warnings))


def _used_resources(services: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {section: set() for section in _SECTIONS[1:]}
    for service in services:
        used["networks"].update(service.get("networks") or {})
        for volume in service.get("volumes") or []:
            if volume["type"] == "volume" and volume.get("source"):
                used["volumes"].add(volume["source"])
        for section in ("secrets", "configs"):
            used[section].update(reference["source"] for reference in service.get(section) or [])
    return used


def _build_project(
    document: dict[str, Any],
    name: str,
    source: ProjectSource,
    enabled: list[str],
    disabled: list[str],
    active: tuple[str, ...],
) -> Project:
    services = document["services"]
    used = _used_resources(services[service] for service in enabled)
    kinds: dict[str, type] = {
        "networks": Network,
        "volumes": Volume,
        "secrets": Secret,
        "configs": Secret,
    }
    try:
        resources: dict[str, dict[str, Any]] = {
            section: {
                key: converter.structure(value, kinds[section])
                for key, value in sorted(document.get(section, {}).items())
                if key in used[section]
            }
            for section in kinds
        }
        return Project(
            name=name,
            working_dir=source.working_dir,
            config_files=tuple(config.path for config in source.config_files),
            services={
                service: structure_service(service, services[service])
                for service in sorted(enabled)
            },
            disabled_services={
                service: structure_service(service, services[service])
                for service in sorted(disabled)
            },
            networks=resources["networks"],
            volumes=resources["volumes"],
            secrets=resources["secrets"],
            configs=resources["configs"],
            profiles=active,
            env_files=source.env_files,
            environment=dict(source.environment, COMPOSE_PROJECT_NAME=name),
        )
    except Exception as error:  # a gap between schema.py and model.py is a bug; say where
        raise ComposeError.single(
            "", "", f"internal error while typing the project: {error}"
        ) from error
