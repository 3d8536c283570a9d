"""The configuration hash of a service, network or volume.

Docker Compose stores a hash of each service's configuration on its containers
(`com.docker.compose.config-hash`) and recreates a container only when the hash of the
service changes. The hash here is the SHA-256 of the service's canonical dict (the one
`config` prints, env files already merged into `environment`) as JSON with sorted
keys, so it does not change with key order, short versus long syntax, which file a key
came from, or YAML formatting; it changes with anything that reaches the container.
As in Docker Compose, what only decides how many containers run or how the image is
obtained is left out: `scale`, `deploy.replicas`, `build`, `pull_policy`,
`depends_on` and `profiles`. The values are flotta's own: they are not equal to the
hashes Docker Compose computes from its Go structures.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs

from .model import Deploy, Network, Service, Volume
from .normalize import record_dict, service_dict


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(service: Service) -> str:
    deploy = service.deploy
    if deploy is not None:
        deploy = attrs.evolve(deploy, replicas=None)
        if deploy == Deploy():
            deploy = None
    relevant = attrs.evolve(
        service,
        build=None,
        pull_policy=None,
        scale=None,
        depends_on={},
        profiles=(),
        deploy=deploy,
    )
    return _digest(service_dict(relevant))


def network_hash(network: Network) -> str:
    return _digest(record_dict(network))


def volume_hash(volume: Volume) -> str:
    if volume.driver is None:
        volume = attrs.evolve(volume, driver="local")
    return _digest(record_dict(volume))
