"""save_params / load_model: identical predictions, no pickle, clear refusals."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import behavhmm
from behavhmm import ARHMM, load_model
from behavhmm.datasets import demo_arhmm, simulate_demo_sessions
from behavhmm.models import MissingInitializer


def my_initial(n_states, X, session_starts, random_key, **kwargs):
    return np.ones(n_states) / n_states


@pytest.fixture(scope="module")
def fitted_and_data():
    truth = demo_arhmm(n_states=3, n_features=2, nlags=1, seed=7)
    X, _, starts, _ = simulate_demo_sessions(truth, n_sessions=2, frames_per_session=500, seed=1)
    model = ARHMM(n_states=3, nlags=1, kappa=30.0, n_iter=30, progress_bar=False)
    model.setup(
        initial_proba_init=my_initial,
        transition_proba_init="sticky",
        transition_proba_init_kwargs={"stickiness": 0.9},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, session_starts=starts)
    return model, X, starts


def test_round_trip_gives_identical_predictions(fitted_and_data, tmp_path):
    model, X, starts = fitted_and_data
    path = model.save_params(tmp_path / "arhmm.npz")
    loaded = load_model(path, mapping_dict={"my_initial": my_initial})
    assert type(loaded) is ARHMM
    assert loaded.get_params() == model.get_params()
    for name in (
        "initial_prob_",
        "transition_prob_",
        "coef_",
        "intercept_",
        "covariances_",
        "log_likelihood_history_",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.n_iter_ == model.n_iter_ and loaded.converged_ == model.converged_
    assert loaded.n_features_in_ == model.n_features_in_
    np.testing.assert_array_equal(
        loaded.predict(X, session_starts=starts), model.predict(X, session_starts=starts)
    )
    np.testing.assert_array_equal(
        loaded.smooth_proba(X, session_starts=starts), model.smooth_proba(X, session_starts=starts)
    )
    assert loaded.score(X, session_starts=starts) == model.score(X, session_starts=starts)
    assert [p.name for p in tmp_path.iterdir()] == ["arhmm.npz"]  # no temporary file left behind


def test_file_is_plain_npz_with_json_metadata(fitted_and_data, tmp_path):
    model, _, _ = fitted_and_data
    path = model.save_params(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__metadata__"]))
        assert npz["coef_"].shape == (3, 2, 2)
    assert meta["format"] == "behavhmm-model" and meta["format_version"] == 1
    assert meta["behavhmm_version"] == behavhmm.__version__
    assert meta["class"] == "ARHMM"
    assert meta["params"]["initialization_funcs"]["initial_proba_init"] == {
        "custom": f"{__name__}.my_initial"
    }
    assert meta["params"]["initialization_funcs"]["transition_proba_init"] == "sticky"


def test_custom_initializer_without_mapping_loads_but_refuses_to_refit(fitted_and_data, tmp_path):
    model, X, starts = fitted_and_data
    loaded = load_model(model.save_params(tmp_path / "m.npz"))
    assert isinstance(loaded.initialization_funcs["initial_proba_init"], MissingInitializer)
    np.testing.assert_array_equal(
        loaded.predict(X, session_starts=starts), model.predict(X, session_starts=starts)
    )
    with pytest.raises(ValueError, match="pass mapping_dict"):
        loaded.fit(X, session_starts=starts)


def test_hand_set_model_can_be_saved(tmp_path):
    truth = demo_arhmm(n_states=2, n_features=1, nlags=1)
    loaded = load_model(truth.save_params(tmp_path / "truth.npz"))
    np.testing.assert_array_equal(loaded.coef_, truth.coef_)


def test_saving_unfitted_model_fails(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ARHMM().save_params(tmp_path / "x.npz")
    assert not any(tmp_path.iterdir())


def _rewrite(path, out, edit_meta=None, edit_arrays=None):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("__metadata__")))
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    np.savez(out, __metadata__=np.asarray(json.dumps(meta)), **arrays)
    return out


def test_refuses_bad_files(fitted_and_data, tmp_path):
    model, _, _ = fitted_and_data
    good = model.save_params(tmp_path / "good.npz")

    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_model(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a behavhmm model file"):
        load_model(tmp_path / "plain.npz")
    np.savez(tmp_path / "pickled.npz", __metadata__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="never loads pickled data"):
        load_model(tmp_path / "pickled.npz")

    def newer(meta):
        meta["format_version"] = 99

    with pytest.raises(ValueError, match="upgrade behavhmm"):
        load_model(_rewrite(good, tmp_path / "newer.npz", edit_meta=newer))

    def other_class(meta):
        meta["class"] = "Nope"

    with pytest.raises(ValueError, match="unknown model class 'Nope'"):
        load_model(_rewrite(good, tmp_path / "cls.npz", edit_meta=other_class))

    def wrong_shape(arrays):
        arrays["coef_"] = arrays["coef_"][:2]

    with pytest.raises(ValueError, match="coef_ has shape"):
        load_model(_rewrite(good, tmp_path / "shape.npz", edit_arrays=wrong_shape))

    def consistent_but_wrong(meta):
        meta["params"]["n_states"] = 4

    with pytest.raises(ValueError, match="inconsistent parameters.*n_states=4"):
        load_model(_rewrite(good, tmp_path / "k.npz", edit_meta=consistent_but_wrong))

    def bad_probs(arrays):
        arrays["transition_prob_"] = arrays["transition_prob_"] * 2

    with pytest.raises(ValueError, match="transition_prob_ must sum to 1"):
        load_model(_rewrite(good, tmp_path / "p.npz", edit_arrays=bad_probs))


def test_atomic_write_keeps_old_file_on_failure(fitted_and_data, tmp_path, monkeypatch):
    model, _, _ = fitted_and_data
    path = model.save_params(tmp_path / "m.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save_params(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# ----------------------------------------------------------------------------
# files written by v0.1 (main at f6aabd6) must still load and predict the same
# ----------------------------------------------------------------------------

V0_1 = os.path.join(os.path.dirname(__file__), "data", "model_files_v0_1")
V0_1_CLASSES = {
    "arhmm_em": "ARHMM",
    "arhmm_gibbs": "ARHMM",
    "glmhmm": "GLMHMM",
    "gaussian_hmm": "GaussianHMM",
    "keypoint_slds": "KeypointSLDS",
}


@pytest.mark.parametrize("name", sorted(V0_1_CLASSES))
def test_v0_1_model_files_load_and_predict_the_stored_outputs(name):
    with np.load(os.path.join(V0_1, "inputs.npz"), allow_pickle=False) as npz:
        d = {k: npz[k] for k in npz.files}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(os.path.join(V0_1, f"{name}.npz"))
    assert type(model).__name__ == V0_1_CLASSES[name]
    if name == "glmhmm":
        args, kw = (d["Xg"], d["yg"]), {"session_starts": d["starts"]}
    elif name == "keypoint_slds":
        args, kw = (d["kp"],), {"confidence": d["conf"], "session_starts": d["starts"]}
    else:
        args, kw = (d["X"],), {"session_starts": d["starts"]}
    with np.load(os.path.join(V0_1, f"{name}_expected.npz"), allow_pickle=False) as npz:
        expected = {k: npz[k] for k in npz.files}
    assert set(expected) == {"score", "smooth_proba", "filter_proba", "decode_state"}
    np.testing.assert_allclose(model.score(*args, **kw), expected["score"], rtol=1e-4)
    np.testing.assert_allclose(
        model.smooth_proba(*args, **kw), expected["smooth_proba"], rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(
        model.filter_proba(*args, **kw), expected["filter_proba"], rtol=1e-3, atol=1e-4
    )
    np.testing.assert_array_equal(
        model.decode_state(*args, **kw, state_format="index"), expected["decode_state"]
    )
