"""Shared fixtures: the real data in ../shared/data (skipped with a reason where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ASSETS = REPO / "pyramidpose" / "assets"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test where the shared data set is not present."""
    if not (SHARED_DATA / "coco-mini").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (only CI and developer machines have it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def coco_mini(shared_data: Path) -> Path:
    """Path to ../shared/data/coco-mini."""
    return shared_data / "coco-mini"


@pytest.fixture
def one_thread():
    """Run the test with one torch thread: tiny models train much faster that way than on an
    oversubscribed CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
