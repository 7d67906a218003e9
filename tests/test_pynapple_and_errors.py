"""pynapple in and out, NaN borders, and clear errors for bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pynapple as nap
import pytest

from behavhmm import ARHMM
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions


@pytest.fixture(scope="module")
def model_and_data():
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, seed=5)
    X, _, starts, _ = simulate_demo_sessions(truth, n_sessions=3, frames_per_session=300, seed=8)
    model = ARHMM(n_states=3, nlags=1, kappa=30.0, n_iter=20, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, session_starts=starts)
    return model, X, starts


def as_tsdframe(X, starts, fps=30.0, gap=5.0):
    """Sessions as epochs separated by ``gap`` seconds."""
    first = np.flatnonzero(starts)
    t = np.arange(len(X)) / fps + gap * (np.cumsum(starts) - 1)
    ends = np.append(first[1:], len(X)) - 1
    epochs = nap.IntervalSet(start=t[first], end=t[ends])
    return nap.TsdFrame(t=t, d=X, time_support=epochs)


def test_pynapple_in_pynapple_out_on_same_timestamps(model_and_data):
    model, X, starts = model_and_data
    tsd = as_tsdframe(X, starts)
    proba = model.smooth_proba(tsd)
    assert isinstance(proba, nap.TsdFrame)
    np.testing.assert_array_equal(proba.t, tsd.t)
    np.testing.assert_array_equal(proba.time_support.values, tsd.time_support.values)
    # sessions come from time_support: same numbers as the explicit mask
    np.testing.assert_allclose(
        proba.values, model.smooth_proba(X, session_starts=starts), equal_nan=True
    )
    z = model.decode_state(tsd, state_format="index")
    assert isinstance(z, nap.Tsd)
    np.testing.assert_array_equal(z.values, model.predict(X, session_starts=starts))
    assert isinstance(model.decode_state(tsd), nap.TsdFrame)
    assert isinstance(model.filter_proba(tsd), nap.TsdFrame)
    np.testing.assert_allclose(model.score(tsd), model.score(X, session_starts=starts), rtol=1e-6)


def test_fit_on_pynapple_equals_fit_on_arrays(model_and_data):
    model, X, starts = model_and_data
    from sklearn.base import clone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = clone(model).fit(as_tsdframe(X, starts))
        b = clone(model).fit(X, session_starts=starts)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-5, atol=1e-6)


def test_interval_set_session_starts(model_and_data):
    model, X, starts = model_and_data
    t = np.arange(len(X)) / 30.0
    tsd = nap.TsdFrame(t=t, d=X)  # one epoch: sessions only from the IntervalSet
    first = np.flatnonzero(starts)
    epochs = nap.IntervalSet(start=t[first], end=np.append(t[first[1:] - 1], t[-1]))
    np.testing.assert_allclose(
        model.score(tsd, session_starts=epochs), model.score(X, session_starts=starts), rtol=1e-6
    )
    with pytest.raises(ValueError, match="IntervalSet, which needs X as a pynapple object"):
        model.score(X, session_starts=epochs)


def test_nan_at_epoch_borders_is_dropped(model_and_data):
    model, X, starts = model_and_data
    Xn = X.copy()
    first = np.flatnonzero(starts)
    Xn[first[1] : first[1] + 3] = np.nan  # start of session 1
    Xn[first[2] - 2 : first[2]] = np.nan  # end of session 1
    Xn[-1] = np.nan  # end of the last session
    proba = model.smooth_proba(Xn, session_starts=starts)
    z = model.predict(Xn, session_starts=starts)
    nan_rows = np.isnan(Xn).any(1)
    assert np.all(z[nan_rows] == -1) and np.all(np.isnan(proba[nan_rows]))
    # the first kept frame of session 1 conditions the AR model
    assert z[first[1] + 3] == -1 and z[first[1] + 4] >= 0
    # dropping the rows by hand gives the same result
    keep = ~nan_rows
    starts_kept = np.zeros(keep.sum(), bool)
    starts_kept[np.searchsorted(np.flatnonzero(keep), [0, first[1] + 3, first[2]])] = True
    np.testing.assert_allclose(
        model.score(Xn, session_starts=starts),
        model.score(X[keep], session_starts=starts_kept),
        rtol=1e-6,
    )
    # pynapple input with NaN at epoch borders, as after a convolution
    tsd = as_tsdframe(Xn, starts)
    out = model.smooth_proba(tsd)
    assert isinstance(out, nap.TsdFrame) and np.all(np.isnan(out.values[nan_rows]))


def test_whole_nan_session_is_ignored_with_a_warning(model_and_data):
    model, X, starts = model_and_data
    Xn = X.copy()
    first = np.flatnonzero(starts)
    Xn[first[1] : first[2]] = np.nan
    with pytest.warns(UserWarning, match="entirely NaN"):
        z = model.predict(Xn, session_starts=starts)
    assert np.all(z[first[1] : first[2]] == -1)


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda X, s: (np.where(np.arange(len(X))[:, None] == 50, np.nan, X), s),
            "NaN at time bin 50, inside a session",
        ),
        (
            lambda X, s: (np.where(np.arange(len(X))[:, None] == 7, np.inf, X), s),
            "X contains infinity",
        ),
        (lambda X, s: (X, np.array([0, 5000])), r"index 5000, outside \[0, 900\)"),
        (lambda X, s: (X, np.array([0, -1])), "outside"),
        (lambda X, s: (X, s[:-1]), r"must have shape \(900,\)"),
        (lambda X, s: (X, np.array([0.5, 3.0])), "integer start indices"),
        (lambda X, s: (X, np.array([0, 1, 400])), r"Session 0 \(time bins 0-0\) has 1 frame"),
        (lambda X, s: (X[:, :1], s), "X has 1 features, but ARHMM is expecting 2"),
        (lambda X, s: (X[:, :, None], s), "Found array with dim 3"),
        (lambda X, s: (X[:1], None), "n_samples=1"),
    ],
    ids=[
        "nan-mid-session",
        "inf",
        "start-out-of-range",
        "negative-start",
        "mask-length",
        "float-starts",
        "too-few-frames-for-nlags",
        "n-features",
        "3d",
        "one-sample",
    ],
)
def test_bad_input_gives_clear_errors(model_and_data, make, match):
    model, X, starts = model_and_data
    Xb, sb = make(X, starts)
    err = TypeError if "integer start indices" in match else ValueError
    with pytest.raises(err, match=match):
        model.score(Xb, session_starts=sb)


@pytest.mark.parametrize(
    "params, err, match",
    [
        (dict(n_states=0), ValueError, "n_states == 0, must be >= 1"),
        (dict(n_states=2.5), TypeError, "n_states must be an instance of int"),
        (dict(nlags=-1), ValueError, "nlags == -1, must be >= 0"),
        (dict(kappa=-1.0), ValueError, "kappa == -1.0, must be >= 0"),
        (dict(alpha=0.0), ValueError, "alpha == 0.0, must be > 0"),
        (dict(inference_method="gpu"), ValueError, "inference_method must be one of"),
        (
            dict(covariance_prior_dof=0.5),
            ValueError,
            "covariance_prior_dof must exceed n_features - 1",
        ),
        (dict(random_state="seed"), TypeError, "random_state must be an int"),
        (dict(progress_bar="yes"), TypeError, "progress_bar must be a bool"),
    ],
)
def test_bad_hyperparameters_raise_in_fit(model_and_data, params, err, match):
    _, X, starts = model_and_data
    with pytest.raises(err, match=match):
        ARHMM(**{**dict(n_states=2, nlags=1, progress_bar=False), **params}).fit(
            X, session_starts=starts
        )


def test_other_method_errors(model_and_data):
    model, X, _ = model_and_data
    with pytest.raises(ValueError, match="state_format must be one of"):
        model.decode_state(X, state_format="onehot")
    with pytest.raises(TypeError, match="random_key must be a jax.random.key"):
        model.simulate("key", 10)
    with pytest.raises(ValueError, match=r"init_frames must have shape \(1, 2\)"):
        model.simulate(0, 10, init_frames=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_time_bins == 0"):
        model.simulate(0, 0)


def test_layers_import_only_downward():
    """inference <- observations/transitions <- fitting <- models <- io/analysis/plotting/cli."""
    import ast
    from pathlib import Path

    import behavhmm

    root = Path(behavhmm.__file__).parent
    order = {
        "sessions": 0,
        "labels": 1,  # hand labels' checks and evidence (imports sessions)
        "inference": 0,
        "observations": 1,
        "transitions": 1,
        "fitting": 2,
        "models": 3,
        "io": 4,
        "preprocessing": 4,
        "analysis": 4,
        "plotting": 4,
        "model_selection": 4,
        "datasets": 5,
        "workflows": 5,
        "runs": 5,  # run directories and config fits (imports workflows, io, models)
        "cli": 6,
    }
    violations = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).parts
        layer = rel[0].removesuffix(".py")
        if layer not in order:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 0 and node.module and node.module.startswith("behavhmm."):
                    target = node.module.split(".")[1]
                elif node.level > 0:
                    depth = len(rel) - 1  # folders below behavhmm/
                    if node.level <= depth:
                        continue  # inside its own subpackage
                    target = (node.module or "").split(".")[0]
                else:
                    continue
                if target in order and order[target] > order[layer]:
                    violations.append(f"{'/'.join(rel)} imports {target}")
    assert not violations, violations


def _imported_modules(path, rel):
    """Absolute ``behavhmm.…`` names a file imports (``from X import y`` gives X and X.y)."""
    import ast

    package = ["behavhmm", *rel[:-1]]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def test_private_model_modules_stay_inside_models():
    """No module outside models/ imports models._*; analysis/ uses only public model methods."""
    import ast
    from pathlib import Path

    import behavhmm

    root = Path(behavhmm.__file__).parent
    violations = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).parts
        if rel[0] == "models":
            continue
        for module in _imported_modules(path, rel):
            parts = module.split(".")
            if parts[:2] == ["behavhmm", "models"] and len(parts) > 2 and parts[2].startswith("_"):
                violations.append(f"{'/'.join(rel)} imports {module}")
        if rel[0] == "analysis":
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "model"
                    and node.attr.startswith("_")
                ):
                    violations.append(f"{'/'.join(rel)} uses model.{node.attr}")
    assert not violations, violations


def test_moved_modules_keep_their_old_import_paths():
    """Sessions live in behavhmm.sessions; the old private paths still import for one release."""
    import behavhmm.sessions
    from behavhmm.models import _glm_init
    from behavhmm.models._sessions import session_mask, split_pynapple
    from behavhmm.observations.glm import flatten_design

    assert (
        session_mask is behavhmm.sessions.session_mask
        and split_pynapple is behavhmm.sessions.split_pynapple
    )
    assert _glm_init.flatten_design is flatten_design
    assert flatten_design({"a": np.ones((3, 1)), "b": np.zeros((3, 2))}).shape == (3, 3)


def test_emission_log_likelihood_is_nan_only_on_conditioning_frames(model_and_data):
    model, X, starts = model_and_data
    ll = model.emission_log_likelihood(X, session_starts=starts)
    assert ll.shape == (len(X), model.n_states)
    first = np.flatnonzero(starts)
    conditioning = np.zeros(len(X), bool)
    for lag in range(model.nlags):
        conditioning[first + lag] = True
    assert np.all(np.isnan(ll[conditioning])) and np.all(np.isfinite(ll[~conditioning]))


def test_arhmm_package_and_the_old_module_paths(model_and_data, monkeypatch):
    """ARHMM lives in models/arhmm/; ar_hmm and _ar_programs re-export it; benchmarks patch the
    estimator module."""
    from behavhmm.models import _ar_programs, ar_hmm, arhmm
    from behavhmm.models.arhmm import em, estimator, gibbs, model
    from behavhmm.observations import student_t

    assert ar_hmm.ARHMM is estimator.ARHMM is ARHMM is arhmm.ARHMM
    assert ar_hmm.kmeans_ar_params is estimator.kmeans_ar_params
    assert _ar_programs.gibbs_sweep is gibbs.gibbs_sweep and _ar_programs.em_step is em.em_step
    assert (
        _ar_programs.ARHMMParams is model.ARHMMParams
        and _ar_programs._solve_dof is student_t.solve_dof
    )
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return em.em_step(*args, **kwargs)

    monkeypatch.setattr(estimator, "em_step", counting)  # what benchmarks/bench_arhmm.py does
    _, X, starts = model_and_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ARHMM(n_states=3, nlags=1, n_iter=3, tol=0.0, progress_bar=False).fit(
            X, session_starts=starts
        )
    assert len(calls) == 3


def test_keypoint_slds_package_and_the_old_module_paths():
    """KeypointSLDS lives in models/keypoint_slds/; the old module names still resolve."""
    import behavhmm
    from behavhmm.models import _slds_programs, keypoint_slds
    from behavhmm.models.keypoint_slds import estimator, gibbs

    assert keypoint_slds.KeypointSLDS is estimator.KeypointSLDS is behavhmm.KeypointSLDS
    assert keypoint_slds.KeypointDecoding is estimator.KeypointDecoding
    assert _slds_programs is gibbs  # an alias: attribute reads and patches reach the new module
    assert estimator.slds_sweep is gibbs.slds_sweep  # benchmarks patch it on the estimator module


def test_glmhmm_package_and_the_old_module_paths():
    """GLMHMM lives in models/glmhmm/; glm_hmm re-exports it; _glm_core, _glm_init are aliases."""
    import behavhmm
    from behavhmm.models import _glm_core, _glm_init, glm_hmm
    from behavhmm.models.glmhmm import em, estimator, initialize

    assert glm_hmm.GLMHMM is estimator.GLMHMM is behavhmm.GLMHMM
    assert (
        glm_hmm.HMMInitializer is estimator.HMMInitializer and glm_hmm.EMState is estimator.EMState
    )
    assert _glm_core is em and _glm_init is initialize
    assert estimator.core is em  # the estimator reads its programs from em
