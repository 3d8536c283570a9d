"""Docker Compose's labels and names, by which `up`, `down`, `ps` find their objects.

Objects belong to a project only through labels, exactly as Docker Compose sets them,
so that either tool recognises the other's containers, networks and volumes:
- containers: project, service, container-number (not on one-off containers), oneoff
  ("True"/"False"), config-hash, depends_on (`service:condition:restart`, comma
  separated), image (the image digest, once known), version, project.working_dir,
  project.config_files (comma separated), project.environment_file (when env files
  were read), and on top the service's own `labels`;
- networks: project, network (the key in the file), version, config-hash;
- volumes: project, volume (the key in the file), version, config-hash.

Names: containers `<project>-<service>-<n>` (n from 1) unless `container_name`;
one-off containers `<project>-<service>-run-<slug>`; networks and volumes
`<project>_<key>` unless `name:` or `external` (the loader fills `Network.name` and
`Volume.name`, so use those).
"""

from __future__ import annotations

from .hashing import config_hash, network_hash, volume_hash
from .model import Project, Service

PREFIX = "com.docker.compose."
PROJECT = PREFIX + "project"
SERVICE = PREFIX + "service"
CONTAINER_NUMBER = PREFIX + "container-number"
ONEOFF = PREFIX + "oneoff"
SLUG = PREFIX + "slug"
CONFIG_HASH = PREFIX + "config-hash"
DEPENDS_ON = PREFIX + "depends_on"
IMAGE = PREFIX + "image"
VERSION = PREFIX + "version"
WORKING_DIR = PREFIX + "project.working_dir"
CONFIG_FILES = PREFIX + "project.config_files"
ENVIRONMENT_FILE = PREFIX + "project.environment_file"
REPLACE = PREFIX + "replace"
NETWORK = PREFIX + "network"
VOLUME = PREFIX + "volume"

# The Docker Compose release whose behaviour flotta follows; written in `.version`.
COMPOSE_VERSION = "2.40.0"
SEPARATOR = "-"


def project_filter(project_name: str) -> str:
    """The `label=` filter value that selects a project's objects."""
    return f"{PROJECT}={project_name}"


def service_filter(service_name: str) -> str:
    return f"{SERVICE}={service_name}"


def container_name(project: Project, service: Service, number: int) -> str:
    if service.container_name:
        return service.container_name
    return f"{project.name}{SEPARATOR}{service.name}{SEPARATOR}{number}"


def image_name(project: Project, service: Service) -> str:
    """The image a service runs: `image`, or `<project>-<service>` for a build-only service."""
    return service.image or f"{project.name}{SEPARATOR}{service.name}"


def oneoff_container_name(project: Project, service: Service, slug: str) -> str:
    return f"{project.name}{SEPARATOR}{service.name}{SEPARATOR}run{SEPARATOR}{slug[:12]}"


def depends_on_label(service: Service) -> str:
    return ",".join(
        f"{name}:{dependency.condition}:{'true' if dependency.restart else 'false'}"
        for name, dependency in sorted(service.depends_on.items())
    )


def _project_labels(project: Project) -> dict[str, str]:
    labels = {
        PROJECT: project.name,
        VERSION: COMPOSE_VERSION,
        WORKING_DIR: project.working_dir,
        CONFIG_FILES: ",".join(project.config_files),
    }
    if project.env_files:
        labels[ENVIRONMENT_FILE] = ",".join(project.env_files)
    return labels


def container_labels(
    project: Project,
    service: Service,
    number: int | None,
    *,
    oneoff: bool = False,
    slug: str | None = None,
    image_digest: str | None = None,
    replaces: str | None = None,
) -> dict[str, str]:
    """The labels of container `number` of `service` (None for a one-off container)."""
    labels = dict(service.labels)
    labels.update(_project_labels(project))
    labels[SERVICE] = service.name
    labels[ONEOFF] = "True" if oneoff else "False"
    labels[CONFIG_HASH] = config_hash(service)
    labels[DEPENDS_ON] = depends_on_label(service)
    if number is not None and not oneoff:
        labels[CONTAINER_NUMBER] = str(number)
    if slug is not None:
        labels[SLUG] = slug
    if image_digest is not None:
        labels[IMAGE] = image_digest
    if replaces is not None:
        labels[REPLACE] = replaces
    return labels


def network_labels(project: Project, key: str) -> dict[str, str]:
    network = project.networks[key]
    labels = dict(network.labels)
    labels.update(
        {
            PROJECT: project.name,
            NETWORK: key,
            VERSION: COMPOSE_VERSION,
            CONFIG_HASH: network_hash(network),
        }
    )
    return labels


def volume_labels(project: Project, key: str) -> dict[str, str]:
    volume = project.volumes[key]
    labels = dict(volume.labels)
    labels.update(
        {
            PROJECT: project.name,
            VOLUME: key,
            VERSION: COMPOSE_VERSION,
            CONFIG_HASH: volume_hash(volume),
        }
    )
    return labels


def endpoint_aliases(service: Service, network_key: str, name: str) -> list[str]:
    """DNS aliases of a container on a network: the service, the container, the extras."""
    aliases = [service.name, name]
    settings = service.networks.get(network_key)
    if settings is not None:
        aliases.extend(alias for alias in settings.aliases if alias not in aliases)
    return aliases
