"""Shared test configuration: precision switching, seeds and real-data paths."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest

#: ../shared/data beside the repository (present in CI, absent in a user's clone).
SHARED_DATA = Path(
    os.environ.get("BEHAVHMM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(autouse=True)
def _precision(request):
    """Run ``requires_x64`` tests in float64 and everything else in float32."""
    wants_x64 = request.node.get_closest_marker("requires_x64") is not None
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", wants_x64)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed (override with BEHAVHMM_TEST_SEED)."""
    return np.random.default_rng(int(os.environ.get("BEHAVHMM_TEST_SEED", "0")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; tests that need it skip with a reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (../shared/data is CI-only)")
    return SHARED_DATA
