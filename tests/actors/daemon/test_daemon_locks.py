"""One flottad per data root and per network namespace, with a clear error for a second."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.daemon.main import StartupError, lock_data_root, lock_network_namespace


def test_a_second_daemon_in_the_same_network_namespace_is_refused(tmp_path: Path) -> None:
    first = lock_network_namespace(tmp_path / "root-a", lock_dir=tmp_path / "locks")
    try:
        with pytest.raises(StartupError, match=rf"pid {os.getpid()}, data root {tmp_path / 'root-a'}"):
            lock_network_namespace(tmp_path / "root-b", lock_dir=tmp_path / "locks")
    finally:
        os.close(first)
    # Released with its descriptor (the kernel does the same when the process dies).
    os.close(lock_network_namespace(tmp_path / "root-b", lock_dir=tmp_path / "locks"))


def test_a_second_daemon_on_the_same_data_root_is_refused(tmp_path: Path) -> None:
    first = lock_data_root(tmp_path / "root")
    try:
        with pytest.raises(StartupError, match="another flottad is using the data root"):
            lock_data_root(tmp_path / "root")
    finally:
        os.close(first)
