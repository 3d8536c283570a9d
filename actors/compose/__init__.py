"""Compose: the file model (finding, loading, merging, checking Compose files) and,
on top of it, the reconciler behind `flotta compose`.

The model's entry points:
- `load_project(ProjectOptions(...)) -> Loaded` finds and loads a project as
  `docker compose` would; `ComposeError.problems` lists everything wrong with it.
- `config_yaml(project)` is what `flotta compose config` prints.
- `config_hash`, `container_labels`, `dependency_order` and friends are what the
  reconciler needs to create, find and order the project's objects.
"""

from .discovery import ProjectOptions, ProjectSource, discover, normalize_project_name
from .errors import ComposeError, Problem
from .graph import DependencyCycle, dependency_order, shutdown_order, with_dependencies
from .hashing import config_hash, network_hash, volume_hash
from .labels import container_labels, container_name, network_labels, volume_labels
from .loader import Loaded, load_files, load_project, load_source
from .model import Project, Service
from .normalize import config_yaml, to_dict

__all__ = [
    "ComposeError",
    "DependencyCycle",
    "Loaded",
    "Problem",
    "Project",
    "ProjectOptions",
    "ProjectSource",
    "Service",
    "config_hash",
    "config_yaml",
    "container_labels",
    "container_name",
    "dependency_order",
    "discover",
    "load_files",
    "load_project",
    "load_source",
    "network_hash",
    "network_labels",
    "normalize_project_name",
    "shutdown_order",
    "to_dict",
    "volume_hash",
    "volume_labels",
    "with_dependencies",
]
