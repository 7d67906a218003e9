"""State alignment, the EM loop's control flow, and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from behavhmm.analysis import match_states, state_accuracy, state_confusion
from behavhmm.cli import main
from behavhmm.fitting import run_em


def test_match_states_recovers_a_known_permutation(rng):
    ref = rng.integers(0, 4, size=500)
    perm = np.array([2, 0, 3, 1])
    relabelled = perm[ref]  # reference state i is called perm[i]
    np.testing.assert_array_equal(match_states(ref, relabelled), perm)
    assert state_accuracy(ref, relabelled) == 1.0
    noisy = relabelled.copy()
    noisy[:50] = (noisy[:50] + 1) % 4
    assert state_accuracy(ref, noisy) == pytest.approx(0.9, abs=0.02)
    # unmodelled frames (-1) are ignored, one-hot input is accepted
    ref2 = np.concatenate([[-1, -1], ref])
    onehot = np.eye(4, dtype=int)[relabelled]
    assert state_accuracy(ref2[2:], onehot) == 1.0
    assert state_confusion(ref2, np.concatenate([[0, 1], relabelled]), 4).sum() == 500


def test_state_confusion_errors():
    with pytest.raises(ValueError, match="same length"):
        state_confusion([0, 1], [0])
    with pytest.raises(ValueError, match="integer state indices"):
        state_confusion([0.5, 1.0], [0, 1])


def test_run_em_stops_on_tolerance_and_records_history():
    values = iter([-10.0, -5.0, -4.0, -3.98, -3.9799, -3.9798])

    def step(p):
        return p + 1, next(values), 0.0

    res = run_em(step, 0, n_iter=50, tol=1e-3, n_frames=10, progress_bar=False)
    assert res.converged and res.n_iter == 5 and res.params == 5
    np.testing.assert_array_equal(res.log_likelihood_history, [-10.0, -5.0, -4.0, -3.98, -3.9799])


def test_run_em_reports_non_convergence_and_non_finite_values():
    res = run_em(lambda p: (p, float(p), 0.0), 1, n_iter=3, tol=0.0, n_frames=1, progress_bar=False)
    assert not res.converged and res.n_iter == 3
    with pytest.raises(FloatingPointError, match="non-finite objective"):
        run_em(lambda p: (p, math.nan, 0.0), 0, n_iter=3, tol=0.0, n_frames=1, progress_bar=False)
    with pytest.raises(FloatingPointError, match="log-likelihood -inf"):
        run_em(lambda p: (p, -math.inf, 0.0), 0, n_iter=3, tol=0.0, n_frames=1, progress_bar=False)


def test_simulated_demo_command_runs_end_to_end():
    result = CliRunner().invoke(
        main, ["demo", "--simulated", "--sessions", "3", "--frames", "1000", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "State recovery" in result.output
    acc = float(result.output.split("State recovery")[1].split(":")[1].split("%")[0])
    assert acc > 95.0
    assert "Transition matrix" in result.output


def test_version_option():
    import behavhmm

    result = CliRunner().invoke(main, ["--version"])
    assert behavhmm.__version__ in result.output
