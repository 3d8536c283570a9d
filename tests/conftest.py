"""Suite-wide settings: Hypothesis profiles and the slow-test switch."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = os.environ.get("FLOTTA_SLOW") == "1"
    is_root = os.geteuid() == 0
    skip_slow = pytest.mark.skip(reason="slow sweep: run with FLOTTA_SLOW=1 (make test-all)")
    skip_root = pytest.mark.skip(reason="needs root (namespaces, cgroups, mounts)")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "root" in item.keywords and not is_root:
            item.add_marker(skip_root)
