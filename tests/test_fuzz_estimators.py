"""Bad input never passes silently (issue 20): regression tests and property-based fuzzing.

Every fuzzed case either fits with finite outputs or raises one of the documented
error types with a message; anything else (another exception type, NaN in a fitted
attribute or a score) fails. Shapes are fixed per model so that each program
compiles once; hypothesis runs derandomised with a fixed number of examples.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behavhmm import ARHMM, GLMHMM, GaussianHMM, KeypointSLDS

#: Shared hypothesis settings: reproducible, bounded, no per-example deadline (compilation).
FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: BEHAVHMM_FUZZ_VERBOSE=1 prints every case's outcome and time (with pytest -s).
VERBOSE = os.environ.get("BEHAVHMM_FUZZ_VERBOSE", "") not in ("", "0")
ALLOWED = (ValueError, TypeError, FloatingPointError)
T, D = 48, 2


def _walk(rng, n=T, d=D):
    return np.cumsum(rng.normal(size=(n, d)), axis=0) * 0.1


# ----------------------------------------------------------------- regressions (item 1)
@pytest.mark.parametrize(
    ("algorithm", "name", "value"),
    [
        ("gibbs", "kappa", np.nan),
        ("gibbs", "alpha", np.nan),
        ("gibbs", "gamma", np.nan),
        ("gibbs", "kappa", np.inf),
        ("em", "kappa", np.nan),
        ("em", "kappa", -1.0),
    ],
)
def test_arhmm_non_finite_hyperparameter_is_named(algorithm, name, value):
    X = _walk(np.random.default_rng(0))
    model = ARHMM(2, 1, algorithm=algorithm, n_iter=2, progress_bar=False, **{name: value})
    with pytest.raises(ValueError, match=name) as info:
        model.fit(X)
    assert "scale of X" not in str(info.value)
    assert not hasattr(model, "transition_prob_")


def test_keypoint_slds_nan_kappa_is_named():
    Y = np.random.default_rng(0).normal(size=(T, 5, 2))
    with pytest.raises(ValueError, match="kappa"):
        KeypointSLDS(2, latent_dim=2, kappa=np.nan, n_iter=1, progress_bar=False).fit(Y)


# ----------------------------------------------------------------- regressions (item 2)
@pytest.mark.parametrize("scale", [1e30, 1e8])
def test_glmhmm_huge_design_is_refused_not_converged(scale):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 0.5).astype(float)
    model = GLMHMM(2, progress_bar=False)
    with pytest.raises(FloatingPointError, match=r"X is badly scaled \(largest \|X\| = "):
        model.fit(X * scale, y)
    assert not hasattr(model, "converged_")


def test_glmhmm_unit_scale_design_still_fits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * X[:, 0]))).astype(float)
    model = GLMHMM(2, progress_bar=False).fit(X, y)
    assert model.converged_
    assert np.all(np.isfinite(model.coef_)) and np.abs(model.coef_[0]).max() > 0.5


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("anterior_bodyparts", 13, ValueError),
        ("anterior_bodyparts", [0, 6], ValueError),
        ("posterior_bodyparts", -7, ValueError),
        ("posterior_bodyparts", [13], ValueError),
        ("posterior_bodyparts", 1.5, TypeError),
        ("anterior_bodyparts", [], TypeError),
    ],
)
def test_keypoint_slds_bodypart_index_out_of_range(name, value, error):
    Y = np.random.default_rng(0).normal(size=(T, 6, 2))
    model = KeypointSLDS(2, latent_dim=2, n_iter=1, n_iter_ar=0, progress_bar=False)
    model.set_params(**{name: value})
    with pytest.raises(error, match=name):
        model.fit(Y)


def test_arhmm_whiten_docstring_default_matches_code():
    import inspect

    default = inspect.signature(ARHMM).parameters["whiten"].default
    assert f'whiten : {{"all", "each", "none"}}, default "{default}"' in ARHMM.__doc__


# ----------------------------------------------------------------- property-based fuzzing
#: Counts of fuzzed cases per suite and outcome, printed at the end of the module (pytest -s).
CASES: dict[str, dict[str, int]] = {}

#: Hyperparameter values a careless user passes; valid ones must fit with finite outputs.
ODD_REALS = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-30, 1e30, 0.5, "1", None, True, [1.0]]
ODD_INTS = [np.nan, np.inf, -1, 0, 2.5, "2", None, True, [2], np.int64(2), 2.0]


def _x_variant(name: str, X: np.ndarray):
    """``X`` as a careless user might pass it (same number of time bins unless the name says)."""
    rng = np.random.default_rng(1)
    variants = {
        "float64": lambda: X,
        "float32": lambda: X.astype(np.float32),
        "int": lambda: np.round(X * 10).astype(np.int64),
        "list": lambda: X.tolist(),
        "huge": lambda: X * 1e30,
        "tiny": lambda: X * 1e-30,
        "constant": lambda: np.zeros_like(X),
        "nan_inside": lambda: np.where(rng.random(X.shape) < 0.05, np.nan, X),
        "inf": lambda: np.where(rng.random(X.shape) < 0.05, np.inf, X),
        "one_more_dim": lambda: X[..., None],
        "one_less_dim": lambda: (
            X.reshape(X.shape[0], -1)[:, 0] if X.ndim == 2 else X.reshape(len(X), -1)
        ),
        "empty": lambda: X[:0],
        "two_bins": lambda: X[:2],
        "strings": lambda: X.astype(str),
        "complex": lambda: X + 1j,
        "bool": lambda: X > 0,
    }
    return variants[name]()


STARTS = {
    "none": lambda n: None,
    "bool": lambda n: np.isin(np.arange(n), [0, n // 2]),
    "int": lambda n: np.array([0, n // 2]),
    "list": lambda n: [0, n // 2],
    "no_zero": lambda n: np.array([n // 2]),
    "unsorted": lambda n: np.array([n // 2, 0]),
    "duplicate": lambda n: np.array([0, 0, n // 2]),
    "out_of_range": lambda n: np.array([0, n + 5]),
    "negative": lambda n: np.array([-1, 0]),
    "float": lambda n: np.array([0.0, n / 2]),
    "wrong_length_bool": lambda n: np.isin(np.arange(n + 3), [0]),
    "two_dim": lambda n: np.zeros((n, 2), bool),
    "string": lambda n: "0",
}


def _hyper_values(table: dict) -> list[tuple[str, object] | None]:
    """(name, value) overrides of every numeric hyperparameter of a table, or None."""
    out: list[tuple[str, object] | None] = [None]
    for name, rule in table.items():
        kind = type(rule).__name__
        if kind == "Real":
            out += [(name, v) for v in ODD_REALS]
        elif kind == "Integer":
            out += [(name, v) for v in ODD_INTS]
        else:
            out += [(name, "nonsense"), (name, 3)]
    return out


def _finite_fitted(model) -> None:
    """Every float array attribute ending in ``_`` is finite."""
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        arr = value if isinstance(value, np.ndarray) else None
        if arr is None and hasattr(value, "dtype") and hasattr(value, "shape"):
            arr = np.asarray(value)
        if arr is not None and np.issubdtype(arr.dtype, np.floating):
            assert np.all(np.isfinite(arr)), f"{name} holds non-finite values"


def _outcome(suite: str, call) -> object | None:
    """Run ``call``; return its result, or None if it raised an allowed, explained error."""
    counts = CASES.setdefault(suite, {})
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except ALLOWED as exc:
        if VERBOSE:
            print(f"{suite} {time.perf_counter() - start:6.2f}s {type(exc).__name__}: {exc}")
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        if isinstance(exc, FloatingPointError):
            assert any(w in str(exc) for w in ("X", "scale", "hyperparameter", "kappa", "nlags")), (
                f"FloatingPointError does not name its cause: {exc}"
            )
        counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
        return None
    counts["fitted"] = counts.get("fitted", 0) + 1
    if VERBOSE:
        print(f"{suite} {time.perf_counter() - start:6.2f}s fitted")
    return result


@pytest.fixture(scope="module", autouse=True)
def _print_case_counts():
    yield
    for suite, counts in sorted(CASES.items()):
        print(f"\nfuzz cases {suite}: {sum(counts.values())} tried, {counts}")


def _fuzz_case(table: dict, x_names: list[str], extra=()):
    """(X variant, session_starts form, hyperparameter override): one of them odd at a time."""
    return st.one_of(
        st.just(("float64", "bool", None)),
        st.tuples(st.sampled_from(x_names), st.just("int"), st.just(None)),
        st.tuples(st.just("float64"), st.sampled_from(list(STARTS)), st.just(None)),
        st.tuples(
            st.just("float64"), st.just("bool"), st.sampled_from(_hyper_values(table) + list(extra))
        ),
    )


_X_NAMES = [
    "float64",
    "float32",
    "int",
    "list",
    "huge",
    "tiny",
    "constant",
    "nan_inside",
    "inf",
    "one_more_dim",
    "one_less_dim",
    "empty",
    "two_bins",
    "strings",
    "complex",
    "bool",
]
_VALID_STARTS = ["none", "bool", "int", "list"]


def _fit_and_score(model, X, starts, *fit_args):
    model.fit(X, *fit_args, session_starts=starts)
    _finite_fitted(model)
    score = model.score(X, *fit_args, session_starts=starts)
    assert np.isfinite(score), f"score is {score}"
    return model


@FUZZ
@given(
    case=_fuzz_case(
        GaussianHMM._hyperparameters,
        _X_NAMES,
        extra=[("mean_prior", np.nan), ("covariance_prior_scale", -1.0), ("mean_prior", [1.0])],
    )
)
def test_fuzz_gaussian_hmm(case):
    x_name, starts_name, hyper = case
    if VERBOSE:
        print(case, end=" ")
    X = _x_variant(x_name, _walk(np.random.default_rng(0)))
    starts = STARTS[starts_name](T)
    model = GaussianHMM(2, n_iter=2, progress_bar=False)
    if hyper is not None:
        model.set_params(**{hyper[0]: hyper[1]})
    _outcome("GaussianHMM", lambda: _fit_and_score(model, X, starts))


@FUZZ
@given(
    case=_fuzz_case(ARHMM._hyperparameters, _X_NAMES, extra=[("random_state", "seed")]),
    algorithm=st.sampled_from(["em", "gibbs"]),
)
def test_fuzz_arhmm(case, algorithm):
    x_name, starts_name, hyper = case
    if VERBOSE:
        print(case, end=" ")
    if hyper is not None and hyper[0] in ("algorithm", "n_iter", "check_every"):
        hyper = None  # algorithm is drawn below; n_iter=1e9 would run for ever, by design
    X = _x_variant(x_name, _walk(np.random.default_rng(0)))
    starts = STARTS[starts_name](T)
    model = ARHMM(2, 1, algorithm=algorithm, n_iter=2, progress_bar=False)
    if hyper is not None:
        model.set_params(**{hyper[0]: hyper[1]})
    _outcome(f"ARHMM-{algorithm}", lambda: _fit_and_score(model, X, starts))


Y_VARIANTS = {
    "valid": lambda y: y,
    "bool": lambda y: y.astype(bool),
    "two": lambda y: np.where(y > 0, 2.0, 0.0),
    "half": lambda y: y * 0.5,
    "nan": lambda y: np.where(np.arange(len(y)) == len(y) // 3, np.nan, y),
    "wrong_length": lambda y: y[:-3],
    "two_dim": lambda y: np.stack([y, y], 1),
    "strings": lambda y: y.astype(str),
}


@FUZZ
@given(
    case=_fuzz_case(
        GLMHMM._hyperparameters,
        _X_NAMES,
        extra=[
            (name, v)
            for name in ("regularizer_strength",)
            for v in (np.nan, np.inf, -1.0, 1e30, 0.0, "1")
        ]
        + [
            ("dirichlet_transition_proba", np.full((2, 2), np.nan)),
            ("dirichlet_initial_proba", np.array([np.inf, 1.0])),
            ("dirichlet_initial_proba", np.array([0.5, 1.0])),
            ("observation_model", "Banana"),
            ("regularizer", "Banana"),
            ("solver_name", "Banana"),
        ],
    ),
    y_name=st.sampled_from(list(Y_VARIANTS)),
)
def test_fuzz_glmhmm(case, y_name):
    x_name, starts_name, hyper = case
    if VERBOSE:
        print(case, end=" ")
    rng = np.random.default_rng(0)
    X0 = rng.normal(size=(T, D))
    y = Y_VARIANTS[y_name]((rng.random(T) < 0.5).astype(float))
    X = _x_variant(x_name, X0)
    starts = STARTS[starts_name](T)
    model = GLMHMM(2, maxiter=3, progress_bar=False)
    if hyper is not None:
        if hyper[0] == "maxiter" and not isinstance(hyper[1], str | type(None) | list):
            hyper = None  # a valid huge maxiter would only run long
        else:
            model.set_params(**{hyper[0]: hyper[1]})
    _outcome("GLMHMM", lambda: _fit_and_score(model, X, starts, y))


CONFIDENCE = {
    "none": lambda n: None,
    "valid": lambda n: np.full((n, 5), 0.9),
    "negative": lambda n: np.full((n, 5), -0.5),
    "nan": lambda n: np.where(np.arange(n)[:, None] == 3, np.nan, np.full((n, 5), 0.9)),
    "above_one": lambda n: np.full((n, 5), 3.0),
    "wrong_shape": lambda n: np.ones((n, 4)),
}


@FUZZ
@given(
    case=_fuzz_case(
        KeypointSLDS._hyperparameters,
        _X_NAMES,
        extra=[
            ("anterior_bodyparts", v)
            for v in (13, -6, [0, 1], 2.5, "nose", [], np.nan, [True], [4])
        ],
    ),
    conf_name=st.sampled_from(list(CONFIDENCE)),
)
def test_fuzz_keypoint_slds(case, conf_name):
    x_name, starts_name, hyper = case
    if VERBOSE:
        print(case, end=" ")
    if hyper is not None and hyper[0] in ("n_iter", "n_iter_ar", "block_size", "n_decode_rounds"):
        hyper = None  # iteration counts: a valid huge value would only run long
    X = _x_variant(x_name, np.random.default_rng(0).normal(size=(T, 5, 2)))
    starts = STARTS[starts_name](T)
    confidence = CONFIDENCE[conf_name](T)
    model = KeypointSLDS(2, latent_dim=2, nlags=1, n_iter=1, n_iter_ar=0, progress_bar=False)
    if hyper is not None:
        model.set_params(**{hyper[0]: hyper[1]})

    def fit():
        model.fit(X, confidence=confidence, session_starts=starts)
        _finite_fitted(model)
        return model

    _outcome("KeypointSLDS", fit)


@pytest.mark.parametrize("value", [np.array([np.inf, 1.0]), np.array([np.nan, 2.0])])
def test_glmhmm_non_finite_dirichlet_prior_is_called_non_finite(value):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(T, D)), (rng.random(T) < 0.5).astype(float)
    model = GLMHMM(2, dirichlet_initial_proba=value, progress_bar=False)
    with pytest.raises(ValueError, match=r"dirichlet_initial_proba\) must be finite"):
        model.fit(X, y)
