"""Damaged model files and checkpoints (issue 20): fuzzed bytes, metadata and arrays.

`load_model` on a damaged file either gives a model whose predictions are
finite or raises a ValueError (or FileNotFoundError) that names the file; a
resumed fit from a damaged checkpoint either continues with finite results or
refuses with a ValueError naming the checkpoint. Never another exception type.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import behavhmm
from behavhmm import ARHMM, GaussianHMM

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
T, D = 48, 2
CASES: dict[str, dict[str, int]] = {}

#: JSON values that replace a metadata entry.
ODD_JSON = [None, True, -1, 0, 3, 1e308, -1.5, "", "x" * 300, [], [1, 2], {}, {"a": 1}, "nan"]
#: Arrays that replace a stored array.
ODD_ARRAYS = {
    "nan": lambda a: np.full_like(a, np.nan, dtype=float),
    "inf": lambda a: np.full_like(a, np.inf, dtype=float),
    "negative": lambda a: -np.abs(a.astype(float)) - 1,
    "zeros": lambda a: np.zeros_like(a),
    "scalar": lambda a: np.float64(1.0),
    "extra_dim": lambda a: a[None],
    "transposed": lambda a: np.asarray(a).T.copy() if np.ndim(a) > 1 else a[:-1],
    "int8": lambda a: np.asarray(a).astype(np.int8),
    "complex": lambda a: np.asarray(a).astype(complex),
    "strings": lambda a: np.asarray(a).astype(str),
}


class _Blobs(dict):
    """File contents by name, with a short repr for hypothesis' failure reports."""

    def __repr__(self):
        return f"<{', '.join(f'{k}: {len(v)} bytes' for k, v in self.items())}>"


class _Blob(bytes):
    def __repr__(self):
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return np.cumsum(rng.normal(size=(T, D)), axis=0) * 0.1


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """Bytes of a saved GaussianHMM and an ARHMM model file."""
    folder = tmp_path_factory.mktemp("models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "GaussianHMM": GaussianHMM(2, n_iter=3, progress_bar=False).fit(data),
            "ARHMM": ARHMM(2, 1, n_iter=3, progress_bar=False).fit(data),
        }
    out = _Blobs()
    for name, model in models.items():
        path = model.save_params(folder / f"{name}.npz")
        out[name] = path.read_bytes()
    return out


def _members(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path: Path, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _count(suite: str, outcome: str) -> None:
    CASES.setdefault(suite, {})
    CASES[suite][outcome] = CASES[suite].get(outcome, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _print_case_counts():
    yield
    for suite, counts in sorted(CASES.items()):
        print(f"\nfuzz cases {suite}: {sum(counts.values())} tried, {counts}")


def _check_load(path: Path, X, suite: str) -> None:
    """load_model succeeds with finite predictions, or refuses with a ValueError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = behavhmm.load_model(path)
    except (ValueError, FileNotFoundError) as exc:
        assert path.name in str(exc), f"error does not name the file: {exc}"
        _count(suite, type(exc).__name__)
        return
    try:
        score = model.score(X)
        proba = model.smooth_proba(X)
    except (ValueError, TypeError) as exc:  # e.g. a file whose n_features_in_ was changed
        assert str(exc).strip()
        _count(suite, "loaded, refused X")
        return
    assert np.isfinite(score), "a loaded model scores NaN"
    skip = getattr(model, "nlags", 0)  # documented NaN rows: an AR model's conditioning frames
    assert np.all(np.isfinite(np.asarray(proba)[skip:]))
    _count(suite, "loaded")


# ----------------------------------------------------------------- load_model
@FUZZ
@given(
    model=st.sampled_from(["GaussianHMM", "ARHMM"]),
    damage=st.one_of(
        st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
        st.tuples(st.just("flip"), st.lists(st.floats(0.0, 0.999), min_size=1, max_size=4)),
    ),
)
def test_fuzz_model_file_bytes(saved, data, tmp_path_factory, model, damage):
    blob = bytearray(saved[model])
    kind, where = damage
    if kind == "truncate":
        blob = blob[: int(len(blob) * where)]
    else:
        for w in where:
            i = int(len(blob) * w)
            blob[i] ^= 0xFF
    path = tmp_path_factory.mktemp("bytes") / "damaged.npz"
    path.write_bytes(bytes(blob))
    _check_load(path, data, "load_model bytes")


def _metadata_paths(meta, prefix=()):
    """Every key path of a JSON tree (dict keys and list indices)."""
    yield prefix
    if isinstance(meta, dict):
        for k, v in meta.items():
            yield from _metadata_paths(v, (*prefix, k))
    elif isinstance(meta, list):
        for i, v in enumerate(meta):
            yield from _metadata_paths(v, (*prefix, i))


@FUZZ
@given(
    model=st.sampled_from(["GaussianHMM", "ARHMM"]),
    pick=st.integers(0, 10_000),
    action=st.one_of(
        st.tuples(st.just("set"), st.sampled_from(ODD_JSON)),
        st.tuples(st.just("delete"), st.none()),
        st.tuples(st.just("raw"), st.sampled_from(["", "{", "[]", "null", '"x"', "1e999"])),
    ),
)
def test_fuzz_model_file_metadata(saved, data, tmp_path_factory, model, pick, action):
    arrays = _members(saved[model])
    meta = json.loads(str(arrays["__metadata__"][()]))
    kind, value = action
    if kind == "raw":
        arrays["__metadata__"] = np.asarray(value)
    else:
        paths = [p for p in _metadata_paths(meta) if p]
        target = paths[pick % len(paths)]
        parent = meta
        for k in target[:-1]:
            parent = parent[k]
        if kind == "delete":
            del parent[target[-1]]
        else:
            parent[target[-1]] = value
        arrays["__metadata__"] = np.asarray(json.dumps(meta))
    path = tmp_path_factory.mktemp("meta") / "edited.npz"
    _write(path, arrays)
    _check_load(path, data, "load_model metadata")


@FUZZ
@given(
    model=st.sampled_from(["GaussianHMM", "ARHMM"]),
    pick=st.integers(0, 10_000),
    damage=st.sampled_from(sorted(ODD_ARRAYS)),
    keep_metadata_consistent=st.booleans(),
)
def test_fuzz_model_file_arrays(
    saved, data, tmp_path_factory, model, pick, damage, keep_metadata_consistent
):
    arrays = _members(saved[model])
    meta = json.loads(str(arrays["__metadata__"][()]))
    names = sorted(k for k in arrays if k != "__metadata__")
    name = names[pick % len(names)]
    arrays[name] = np.asarray(ODD_ARRAYS[damage](arrays[name]))
    if keep_metadata_consistent:  # the damage a careless hand edit would make
        meta["arrays"][name] = {"shape": list(arrays[name].shape), "dtype": str(arrays[name].dtype)}
        arrays["__metadata__"] = np.asarray(json.dumps(meta))
    path = tmp_path_factory.mktemp("arrays") / "edited.npz"
    _write(path, arrays)
    _check_load(path, data, "load_model arrays")


def test_model_file_not_a_zip_and_missing(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match="notes.npz"):
        behavhmm.load_model(bad)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        behavhmm.load_model(tmp_path / "missing.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ValueError, match="empty.npz"):
        behavhmm.load_model(tmp_path / "empty.npz")


# ----------------------------------------------------------------- checkpoints
CHECKPOINT_KW = dict(n_states=2, nlags=1, progress_bar=False, random_state=1)


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    """Bytes of an ARHMM EM checkpoint after 2 of 4 iterations."""
    path = tmp_path_factory.mktemp("ckpt") / "fit.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ARHMM(n_iter=2, tol=0.0, checkpoint_path=path, checkpoint_every=1, **CHECKPOINT_KW).fit(
            data
        )
    return _Blob(path.read_bytes())


def _check_resume(path: Path, X, suite: str) -> None:
    model = ARHMM(n_iter=4, tol=0.0, checkpoint_path=path, **CHECKPOINT_KW)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, resume=True)
    except (ValueError, FileNotFoundError) as exc:
        assert path.name in str(exc), f"error does not name the checkpoint: {exc}"
        _count(suite, type(exc).__name__)
        return
    for name in ("transition_prob_", "coef_", "covariances_", "log_likelihood_history_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert model.n_iter_ <= 4
    _count(suite, "resumed")


@FUZZ
@given(
    damage=st.one_of(
        st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
        st.tuples(st.just("flip"), st.lists(st.floats(0.0, 0.999), min_size=1, max_size=3)),
        st.tuples(st.just("metadata"), st.tuples(st.integers(0, 1000), st.sampled_from(ODD_JSON))),
        st.tuples(
            st.just("array"), st.tuples(st.integers(0, 1000), st.sampled_from(sorted(ODD_ARRAYS)))
        ),
    ),
)
def test_fuzz_checkpoint(checkpoint, data, tmp_path_factory, damage):
    kind, where = damage
    path = tmp_path_factory.mktemp("ckpt_fuzz") / "damaged.npz"
    if kind in ("truncate", "flip"):
        blob = bytearray(checkpoint)
        if kind == "truncate":
            blob = blob[: int(len(blob) * where)]
        else:
            for w in where:
                blob[int(len(blob) * w)] ^= 0xFF
        path.write_bytes(bytes(blob))
    else:
        arrays = _members(checkpoint)
        pick, value = where
        if kind == "metadata":
            meta = json.loads(str(arrays["__metadata__"][()]))
            keys = sorted(meta)
            meta[keys[pick % len(keys)]] = value
            arrays["__metadata__"] = np.asarray(json.dumps(meta))
        else:
            names = sorted(k for k in arrays if k != "__metadata__")
            name = names[pick % len(names)]
            arrays[name] = np.asarray(ODD_ARRAYS[value](arrays[name]))
        _write(path, arrays)
    _check_resume(path, data, "checkpoint")


@pytest.mark.parametrize(
    ("member", "edit", "message"),
    [
        ("state_0", lambda a: np.full_like(a, np.nan), "state_0 holds NaN"),
        ("state_0", lambda a: -a, "initial_prob must hold finite, non-negative"),
        ("state_4", lambda a: -a, "covariances are not positive definite"),
        ("state_2", lambda a: np.full_like(a, np.inf), "coef holds invalid values"),
        ("history__log_likelihood", lambda a: a * np.nan, "log_likelihood history"),
    ],
)
def test_damaged_checkpoint_is_refused_by_name(checkpoint, data, tmp_path, member, edit, message):
    arrays = _members(checkpoint)
    arrays[member] = edit(arrays[member])
    path = tmp_path / "edited.npz"
    _write(path, arrays)
    model = ARHMM(n_iter=4, tol=0.0, checkpoint_path=path, **CHECKPOINT_KW)
    with pytest.raises(ValueError, match=f"edited.npz is not a readable.*{message}"):
        model.fit(data, resume=True)
