"""Fixtures for the pull/push tests: the registry tests' fixtures (our server in-process,
Debian's docker-registry, skopeo) reused as they are, plus stores with test images."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_REGISTRY_TESTS = Path(__file__).resolve().parent.parent / "registry"
if str(_REGISTRY_TESTS) not in sys.path:
    sys.path.insert(0, str(_REGISTRY_TESTS))

_spec = importlib.util.spec_from_file_location("registry_fixtures_for_transfer",
                                               _REGISTRY_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_registry_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_registry_fixtures)

registry = _registry_fixtures.registry
docker_registry = _registry_fixtures.docker_registry
skopeo = _registry_fixtures.skopeo


@pytest.fixture
def busybox_store(tmp_path: Path):
    """A store holding busybox:latest bootstrapped from the host's static busybox."""
    from actors.images.bootstrap import bootstrap_busybox
    from actors.images.store import ImageStore

    store = ImageStore(tmp_path / "source-store")
    image_id = bootstrap_busybox(store)
    return store, image_id
