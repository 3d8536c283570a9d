"""Getting the images a project's services run: pull, build (classic `POST /build`), push.

Which services are built or pulled, as Docker Compose decides (`ensureImagesExists`):
- a service with `build:` is built when `--build` is given, when `pull_policy: build`,
  or when its image is not there yet (never with `--no-build`: then a missing image is
  an error);
- any other service is pulled when its image is missing (`pull_policy: missing`, the
  default), always with `pull_policy: always` or `--pull always`, never with `never`.
A built image is tagged `image:` or `<project>-<service>`, carries the build's labels
plus `com.docker.compose.project`/`.service`/`.version`, and is sent with its context
tarred as the docker CLI tars it (.dockerignore honoured).
Afterwards each service's image ID is what `com.docker.compose.image` records, so a
rebuilt or re-pulled image makes `up` recreate the containers using it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from typing import Any, TextIO

from actors.client import api, buildcontext, config
from actors.client import progress as client_progress
from actors.client import reference as references
from actors.client.commands.common import quote_path

from . import labels as compose_labels
from .engine import Engine
from .model import Project, Service
from .progress import DONE, ERROR, WORKING, Progress

UPLOAD_CHUNK_BYTES = 256 * 1024


class ImageError(Exception):
    """An image could not be pulled, built or pushed; the message says which and why."""


def _auth_header(config_directory: str, image: str) -> dict[str, str]:
    try:
        reference = references.parse_normalized_named(image)
    except references.ReferenceError:
        return {}
    return {"X-Registry-Auth": config.registry_auth_header(
        config_directory, references.registry_host(reference))}


def _consume(messages: Iterable[Any], out: TextIO | None) -> dict[str, Any]:
    """Render (or swallow) a JSON progress stream; raise ImageError on an error message."""
    aux: dict[str, Any] = {}

    def keep(value: Any) -> None:
        if isinstance(value, dict):
            aux.update(value)

    renderer = client_progress.ProgressRenderer(out, False, aux_callback=keep) if out else None
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("errorDetail") or message.get("error"):
            detail = message.get("errorDetail") or {}
            raise ImageError(detail.get("message") or message.get("error") or "unknown error")
        if message.get("aux") is not None:
            keep(message["aux"])
            continue
        if renderer is not None:
            renderer.feed(message)
    return aux


class Images:
    def __init__(self, engine: Engine, progress: Progress, *, config_directory: str,
                 build_output: TextIO | None = None) -> None:
        self.engine = engine
        self.progress = progress
        self.config_directory = config_directory
        self.build_output = build_output

    # -- pull

    def pull(self, service: Service, image: str, quiet: bool = False) -> None:
        identifier = service.name
        self.progress.event(identifier, WORKING, "Pulling")
        try:
            reference = references.parse_normalized_named(image).with_default_tag()
        except references.ReferenceError as error:
            self.progress.event(identifier, ERROR, "Error")
            raise ImageError(f"invalid image reference {image!r}: {error}") from None
        query = {"fromImage": reference.name, "tag": reference.digest or reference.tag}
        if service.platform:
            query["platform"] = service.platform
        try:
            messages = self.engine.client.stream_json(
                "POST", "/images/create", query,
                headers=_auth_header(self.config_directory, image))
            _consume(messages, None)
        except (ImageError, api.ClientError) as error:
            self.progress.event(identifier, ERROR, "Error")
            raise ImageError(str(error)) from None
        self.progress.event(identifier, DONE, "Pulled")

    # -- build

    def build_query(self, project: Project, service: Service, dockerfile: str, *,
                    no_cache: bool, pull: bool, build_args: dict[str, str]) -> dict[str, Any]:
        build = service.build
        assert build is not None
        image = compose_labels.image_name(project, service)
        image_labels = dict(build.labels)
        image_labels.update({compose_labels.VERSION: compose_labels.COMPOSE_VERSION,
                             compose_labels.PROJECT: project.name,
                             compose_labels.SERVICE: service.name})
        args = {key: value for key, value in build.args.items() if value is not None}
        args.update(build_args)
        query: dict[str, Any] = {
            "t": [image, *build.tags],
            "dockerfile": dockerfile,
            "labels": json.dumps(image_labels, separators=(",", ":"), sort_keys=True),
            "buildargs": json.dumps(args, separators=(",", ":"), sort_keys=True) if args else None,
            "nocache": "1" if (no_cache or build.no_cache) else None,
            "pull": "1" if (pull or build.pull) else None,
            "target": build.target or None,
            "networkmode": build.network or None,
            "extrahosts": [f"{entry.host}:{entry.ip}" for entry in build.extra_hosts] or None,
            "shmsize": str(build.shm_size) if build.shm_size else None,
            "cachefrom": json.dumps(list(build.cache_from), separators=(",", ":"))
            if build.cache_from else None,
            "platform": service.platform or None,
            "rm": "1",
            "forcerm": "1",
            "version": "1",
        }
        return query

    def build(self, project: Project, service: Service, *, no_cache: bool = False,
              pull: bool = False, build_args: dict[str, str] | None = None,
              quiet: bool = False) -> str:
        """Build the service's image; return its ID."""
        build = service.build
        if build is None:
            raise ImageError(f"service {service.name!r} has no build section")
        identifier = f"Image {compose_labels.image_name(project, service)}"
        self.progress.event(identifier, WORKING, "Building")
        try:
            with tempfile.TemporaryFile() as spool:
                context = buildcontext.validate_context_dir(build.context)
                if build.dockerfile_inline is not None:
                    name = buildcontext.write_context(
                        context, spool, "Dockerfile", build.dockerfile_inline.encode())
                else:
                    path = os.path.join(context, build.dockerfile or "Dockerfile")
                    relative, injected = buildcontext.resolve_dockerfile(context, path)
                    name = buildcontext.write_context(context, spool, relative or "Dockerfile",
                                                      injected)
                query = self.build_query(project, service, name, no_cache=no_cache, pull=pull,
                                         build_args=build_args or {})
                spool.seek(0)

                def upload():
                    while True:
                        data = spool.read(UPLOAD_CHUNK_BYTES)
                        if not data:
                            return
                        yield data

                headers = {"Content-Type": "application/x-tar",
                           "X-Registry-Config": _registry_config(self.config_directory)}
                response = self.engine.client.request("POST", "/build", query, body=upload(),
                                                      headers=headers)
            with response:
                aux = _consume(response.iter_json(), None if quiet else self.build_output)
        except (buildcontext.ContextError, ImageError, api.ClientError) as error:
            self.progress.event(identifier, ERROR, "Error")
            raise ImageError(f"failed to build {service.name}: {error}") from None
        self.progress.event(identifier, DONE, "Built")
        image_id = aux.get("ID") or ""
        if not image_id:
            found = self.engine.image(compose_labels.image_name(project, service))
            image_id = (found or {}).get("Id", "")
        return image_id

    # -- push

    def push(self, service: Service, image: str) -> None:
        identifier = service.name
        self.progress.event(identifier, WORKING, "Pushing")
        try:
            reference = references.parse_normalized_named(image).with_default_tag()
            messages = self.engine.client.stream_json(
                "POST", f"/images/{quote_path(reference.name)}/push",
                {"tag": reference.tag or None},
                headers=_auth_header(self.config_directory, image))
            _consume(messages, None)
        except (references.ReferenceError, ImageError, api.ClientError) as error:
            self.progress.event(identifier, ERROR, "Error")
            raise ImageError(str(error)) from None
        self.progress.event(identifier, DONE, "Pushed")

    # -- the whole project

    def ensure(self, project: Project, services: Iterable[str], *, build: bool = False,
               no_build: bool = False, pull_policy: str | None = None,
               quiet_pull: bool = False) -> dict[str, str]:
        """Pull or build what the services need; return service -> image ID."""
        digests: dict[str, str] = {}
        for name in services:
            service = project.services[name]
            image = compose_labels.image_name(project, service)
            policy = pull_policy or service.pull_policy or "missing"
            found = self.engine.image(image)
            if service.build is not None:
                if not no_build and (build or policy == "build" or found is None):
                    digests[name] = self.build(project, service)
                    continue
                if found is None:
                    raise ImageError(f"image {image} for service {name} is missing and was not "
                                     "built (--no-build)")
            elif policy == "always" or (found is None and policy != "never"):
                try:
                    self.pull(service, image, quiet=quiet_pull)
                except ImageError:
                    if found is None:
                        raise
                found = self.engine.image(image)
            if found is None:
                raise ImageError(f"No such image: {image} (pull_policy: {policy})")
            digests[name] = found.get("Id", "")
        return digests


def _registry_config(config_directory: str) -> str:
    import base64

    try:
        stored = config.ConfigFile(config_directory)
        auths = {key: stored.get_auth(key) for key in (stored.data.get("auths") or {})}
    except config.ConfigError:
        auths = {}
    return base64.urlsafe_b64encode(json.dumps(auths, separators=(",", ":")).encode()).decode()
