"""Shared test configuration: precision switching, seeds and real-data paths."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest

#: ../shared/data beside the repository (present in CI, absent in a user's clone); the
#: environment variable BEHAVHMM_SHARED_DATA points elsewhere (CI's fresh copies of the clone).
SHARED_DATA = Path(
    os.environ.get("BEHAVHMM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

#: BEHAVHMM_REQUIRE_SHARED_DATA=1 (set by .ci/run): a shared-data test that would skip fails
#: instead, whatever the reason (no data folder, a missing optional package), and so does a test
#: module skipped whole; the terminal summary counts the shared-data tests.
REQUIRE_SHARED_DATA = os.environ.get("BEHAVHMM_REQUIRE_SHARED_DATA", "") not in ("", "0")
_shared_counts = {"passed": 0, "failed": 0, "skipped": 0}


def _uses_shared_data(item) -> bool:
    return item.get_closest_marker("shared_data") is not None or "shared_data" in getattr(
        item, "fixturenames", ()
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not _uses_shared_data(item) or (
        report.when != "call" and not report.skipped and report.passed
    ):
        return
    if report.skipped and REQUIRE_SHARED_DATA:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"shared-data test skipped while BEHAVHMM_REQUIRE_SHARED_DATA is set: {reason}"
        )
    if report.when == "call" or report.skipped or report.failed:
        # counted in pytest_runtest_logreport, which also runs in pytest-xdist's controller
        report.user_properties.append(("shared_data", True))


def pytest_runtest_logreport(report):
    if any(name == "shared_data" for name, _ in report.user_properties) and (
        report.when == "call" or report.skipped or report.failed
    ):
        _shared_counts[report.outcome] += 1


def pytest_collectreport(report):
    if REQUIRE_SHARED_DATA and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"test module skipped while BEHAVHMM_REQUIRE_SHARED_DATA is set: {reason}"


def pytest_terminal_summary(terminalreporter):
    if REQUIRE_SHARED_DATA or any(_shared_counts.values()):
        c = _shared_counts
        terminalreporter.write_line(
            f"shared-data tests ({SHARED_DATA}): {c['passed']} passed, {c['failed']} failed, "
            f"{c['skipped']} skipped"
        )


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every compiled XLA CPU program keeps memory mappings alive; over the whole
    suite one process accumulated tens of thousands of them (a demo fit adds
    about 2,600) and XLA crashed in compilation near the end of a full run,
    close to the kernel's limit of 65,530 mappings (vm.max_map_count).
    """
    yield
    jax.clear_caches()


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
        if REQUIRE_SHARED_DATA:
            pytest.fail(
                f"real recordings not found at {SHARED_DATA}, and BEHAVHMM_REQUIRE_SHARED_DATA is "
                "set"
            )
        pytest.skip(f"real recordings not found at {SHARED_DATA} (../shared/data is CI-only)")
    return SHARED_DATA
