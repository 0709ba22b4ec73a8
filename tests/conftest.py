"""Shared fixtures: the real data sets beside the repository (../shared/data), when present."""

from __future__ import annotations

import fcntl
import os
import tarfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CACHE = Path(os.environ.get("SELFSUP_TEST_CACHE", Path.home() / ".cache" / "selfsup-tests"))


def pytest_configure(config):
    """Under pytest-xdist each worker computes with one thread: two workers with two threads each
    on two cores wait for each other (a 2-thread MAE run took 10 min beside another process,
    against 2 min alone)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def require_shared(name: str) -> Path:
    """Path of ../shared/data/<name>, or skip the test saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared data sets beside the repo")
    return path


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """The CIFAR-10 JPEG folder (train/ and test/), unpacked once into a cache directory."""
    tarball = require_shared("cifar10-jpg.tar.gz")
    root = CACHE / "cifar10"
    marker = CACHE / "cifar10.unpacked"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "cifar10.lock", "w") as lock:  # xdist workers unpack it once, in turn
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            with tarfile.open(tarball) as tar:
                tar.extractall(CACHE, filter="data")
            marker.write_text(str(tarball.stat().st_mtime_ns))
    return root


@pytest.fixture(scope="session")
def cifar10(cifar10_root):
    """(train 50k, test 10k) in-memory uint8 CIFAR-10, decoded once and cached."""
    from selfsup.data import load_image_splits

    with open(CACHE / "cifar10.lock", "w") as lock:  # one worker decodes, the other reads it
        fcntl.flock(lock, fcntl.LOCK_EX)
        return load_image_splits(cifar10_root, cache_dir=CACHE / "decoded")
