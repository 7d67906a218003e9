"""Property-based tests (issue 20): the public HMM kernels and the command line under fuzzed input.

Kernels: random log-likelihoods with NaN, +inf and -inf entries and random session starts at one
fixed shape (one compilation per kernel). Each call either returns finite probabilities (rows sum
to 1) and a finite log-likelihood, or raises ValueError — exactly when the input has a NaN or +inf
entry, or a frame where every state is impossible (-inf). CLI: random commands with bad arguments
(missing files, text files posing as data, empty folders, out-of-range numbers) never end in a
Python traceback, and fail with exit status 1 (one line naming the problem) or 2 (click usage).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behavhmm.cli import main
from behavhmm.inference import hmm_filter, hmm_sample, hmm_smoother, hmm_viterbi

T, K = 7, 3
FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VERBOSE = os.environ.get("BEHAVHMM_FUZZ_VERBOSE") == "1"

finite = st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=T * K, max_size=T * K)
special = st.lists(  # a few NaN/+inf/-inf entries, and sometimes a frame with no possible state
    st.tuples(st.integers(0, T * K - 1), st.sampled_from([-np.inf, -np.inf, np.inf, np.nan])),
    max_size=3,
)
dead_rows = st.lists(st.integers(0, T - 1), max_size=1)


@st.composite
def log_likelihoods(draw):
    ll = np.asarray(draw(finite), np.float32).reshape(T, K)
    for i, value in draw(special):
        ll.flat[i] = value
    for t in draw(dead_rows):
        ll[t] = -np.inf
    return ll


starts = st.lists(st.booleans(), min_size=T - 1, max_size=T - 1).map(
    lambda v: np.asarray([True, *v])
)


def _expect_error(ll: np.ndarray) -> bool:
    return bool(np.isnan(ll).any() or np.isposinf(ll).any() or np.isneginf(ll).all(axis=1).any())


def _params():
    pi = np.full(K, 1.0 / K, np.float32)
    trans = np.full((K, K), 0.1 / (K - 1), np.float32) + 0.9 * np.eye(K, dtype=np.float32)
    return pi, trans / trans.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kernel", ["filter", "smoother", "viterbi", "sample"])
@FUZZ
@given(ll=log_likelihoods(), session_starts=starts)
def test_kernels_refuse_bad_log_likelihoods_or_give_finite_output(kernel, ll, session_starts):
    pi, trans = _params()
    bad = _expect_error(ll)
    try:
        if kernel == "filter":
            out = hmm_filter(pi, trans, ll, session_starts)
            probs, total = np.asarray(out.filtered_probs), float(out.log_likelihood)
        elif kernel == "smoother":
            out = hmm_smoother(pi, trans, ll, session_starts)
            probs, total = np.asarray(out.smoothed_probs), float(out.log_likelihood)
        elif kernel == "viterbi":
            path = np.asarray(hmm_viterbi(pi, trans, ll, session_starts))
            probs, total = None, 0.0
        else:
            out = hmm_sample(jax.random.key(0), pi, trans, ll, session_starts)
            path, probs, total = np.asarray(out.states), None, float(out.log_likelihood)
    except ValueError as exc:
        assert bad, f"{kernel} refused valid log-likelihoods: {exc}"
        assert "log_likelihoods" in str(exc)
        if VERBOSE:
            print(kernel, "ValueError")
        return
    assert not bad, f"{kernel} accepted NaN/+inf or an all--inf frame:\n{ll}"
    assert np.isfinite(total)
    if probs is not None:
        assert np.isfinite(probs).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    else:  # a path never visits an impossible state
        assert np.isfinite(ll[np.arange(T), path]).all()
    if VERBOSE:
        print(kernel, "finite output")


@pytest.fixture(scope="module")
def bad_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-fuzz")
    text = root / "notes.h5"
    text.write_text("not an HDF5 file\n")
    csv = root / "poses.csv"
    csv.write_text("scorer,a\n1,2,3\n")
    empty = root / "empty"
    empty.mkdir()
    return [str(root / "missing.h5"), str(text), str(csv), str(empty), str(root / "missing.npz")]


COMMANDS = sorted(set(main.commands) - {"demo"})  # demo takes no file: a full fit, not a probe
VALUES = ["-3", "0", "nan", "inf", "1e309", "abc", ""]


def _options(command):
    return sorted(
        opt
        for param in main.commands[command].params
        if param.param_type_name == "option"
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    )


@FUZZ
@given(data=st.data())
def test_cli_bad_arguments_never_end_in_a_traceback(bad_paths, data):
    command = data.draw(st.sampled_from(COMMANDS))
    n_args = sum(p.param_type_name == "argument" for p in main.commands[command].params)
    n_paths = data.draw(st.sampled_from([n_args, n_args, n_args, max(n_args - 1, 0)]))
    args = [command, *(data.draw(st.sampled_from(bad_paths)) for _ in range(n_paths))]
    names = _options(command)
    if names:
        for _ in range(data.draw(st.integers(0, 2))):
            args += [data.draw(st.sampled_from(names)), data.draw(st.sampled_from(VALUES))]
    here = os.getcwd()
    os.chdir(Path(bad_paths[0]).parent)  # nothing a command writes lands in the checkout
    try:
        result = CliRunner().invoke(main, args)
    finally:
        os.chdir(here)
    if VERBOSE:
        print("cli", result.exit_code, args)
    assert "Traceback" not in result.output, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
        result.output,
    )
    if result.exit_code == 1:  # a user error: one line, "Error: ..."
        assert result.output.strip().splitlines()[-1].startswith("Error"), (args, result.output)
    else:
        assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
