"""Model files: ``.npz`` archives of arrays plus one JSON metadata entry. No pickle.

A file holds every fitted array under its attribute name and a
``__metadata__`` entry: a JSON string with the file format and its version,
the behavhmm version that wrote it, the estimator class, its constructor
parameters (custom initializers by name) and the shape and dtype of every
array. `load_model` reads it with ``allow_pickle=False``, rebuilds the
estimator, and checks every shape and probability before returning it.
Files are written to a temporary file in the same folder and moved into place,
so an interrupted save never leaves a truncated file behind.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .._files import atomic_path
from .._version import __version__

__all__ = ["save_model", "load_model", "jsonable", "MODEL_FORMAT", "FORMAT_VERSION"]

MODEL_FORMAT = "behavhmm-model"
FORMAT_VERSION = 1
_META_KEY = "__metadata__"

#: Estimator classes by name, filled in by ``BaseHMM.__init_subclass__``.
MODEL_REGISTRY: dict[str, type] = {}


def jsonable(name: str, value):
    """``value`` as JSON-compatible Python data (arrays become nested lists).

    Raises
    ------
    TypeError
        For values JSON cannot represent (objects, functions).
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [jsonable(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(name, v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"Parameter {name}={value!r} of type {type(value).__name__} cannot be written to a "
        "model file; use numbers, strings, lists or dicts."
    )


def write_npz_atomic(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` as .npz through a temporary file and a rename.

    Parameters
    ----------
    path : str or path-like
        Destination; written exactly as given (no suffix is appended).
    arrays : mapping of str to ndarray
        Arrays to store; object arrays are refused.

    Returns
    -------
    Path
        The destination path.

    Raises
    ------
    TypeError
        If an array has object dtype (it would need pickle).
    """
    path = Path(path)
    for key, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"{key} has dtype object, which cannot be saved without pickle.")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def save_model(model, path: str | os.PathLike) -> Path:
    """Save a fitted estimator's parameters to ``path`` (.npz); see the module notes.

    Parameters
    ----------
    model : behavhmm estimator
        A fitted estimator (or one whose fitted attributes were set by hand).
    path : str or path-like
        Destination file.

    Returns
    -------
    Path

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator has no fitted parameters.
    TypeError
        If a constructor parameter cannot be represented in JSON.
    """
    model._validated_params()  # fitted and consistent, or raises
    arrays = model._arrays_for_file()
    scalars = {}
    for name in model._saved_scalars:
        if hasattr(model, name):
            scalars[name] = jsonable(name, getattr(model, name))
    meta = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "behavhmm_version": __version__,
        "class": type(model).__name__,
        "params": model._params_for_file(),
        "scalars": scalars,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    arrays[_META_KEY] = np.asarray(json.dumps(meta))
    return write_npz_atomic(path, arrays)


def load_model(path: str | os.PathLike, mapping_dict: Mapping[str, Callable] | None = None):
    """Load an estimator saved with ``save_params``.

    Parameters
    ----------
    path : str or path-like
        A file written by ``save_params``.
    mapping_dict : dict, optional
        Custom functions to restore, keyed by the name they were saved
        under (``module.qualname`` or just the function name), or, as in
        nemos, by parameter and slot
        (``{"model_initialization_funcs": {"glm_params_init": func}}``).
        Custom initializers not given here are replaced by a placeholder that
        raises a clear error if a refit needs it; prediction works without.

    Returns
    -------
    estimator
        An instance of the saved class with its parameters and fitted
        attributes; it predicts exactly as the saved model did.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a behavhmm model file, was written by a newer
        file format, names an unknown class, needs pickle, or holds arrays
        whose shapes do not match the model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}.")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise ValueError(f"{path} is not a readable .npz model file (not a zip archive).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _META_KEY not in npz.files:
                raise ValueError(f"{path} is not a behavhmm model file (no {_META_KEY} entry).")
            meta = json.loads(str(npz[_META_KEY][()]))
            arrays = {k: npz[k] for k in npz.files if k != _META_KEY}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npz model file: {exc}") from exc
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(
                f"{path} holds object arrays that need pickle; behavhmm never loads pickled data."
            ) from exc
        raise
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a behavhmm model file (format {meta.get('format')!r}).")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses model-file format {version}, newer than this behavhmm "
            f"({__version__}) reads (format {FORMAT_VERSION}); upgrade behavhmm to load it."
        )
    cls_name = meta.get("class")
    cls = MODEL_REGISTRY.get(cls_name)
    if cls is None:
        raise ValueError(
            f"{path} holds an unknown model class {cls_name!r}; known: {sorted(MODEL_REGISTRY)}."
        )
    params = dict(meta.get("params", {}))
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ValueError(f"{path} has parameters {sorted(unknown)} that {cls_name} does not take.")
    try:
        params = cls._params_from_file(params, dict(mapping_dict or {}))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    model = cls(**params)
    listed = meta.get("arrays", {})
    if set(listed) != set(arrays):
        raise ValueError(
            f"{path} is damaged: its arrays {sorted(arrays)} differ from its metadata {sorted(listed)}."
        )
    for name, arr in arrays.items():
        if list(arr.shape) != list(listed[name]["shape"]):
            raise ValueError(f"{path} is damaged: {name} has shape {arr.shape}, metadata says {listed[name]['shape']}.")
    try:
        model._load_arrays(arrays)
    except ValueError as exc:
        raise ValueError(f"{path} {exc}") from None
    for name, value in meta.get("scalars", {}).items():
        setattr(model, name, value)
    try:
        model._validated_params()
    except ValueError as exc:
        raise ValueError(f"{path} holds inconsistent parameters: {exc}") from exc
    return model
