"""Model files: ``.npz`` archives of arrays plus one JSON metadata entry. No pickle.

A file holds every fitted array under its attribute name and a
``__metadata__`` entry: a JSON string with the file format and its version,
the behavhmm version that wrote it, the estimator class, its constructor
parameters (custom initializers by name) and the shape and dtype of every
array. `load_model` reads it with ``allow_pickle=False``, checks member
sizes before decompression and the metadata against a fixed schema
(`METADATA_SCHEMA`), rebuilds the estimator, and checks every shape and
probability before returning it. Paths are neither written to a file nor
restored from one (`NOT_RESTORED`).
Files are written to a temporary file in the same folder and moved into place,
so an interrupted save never leaves a truncated file behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .._files import atomic_path, read_npz
from .._version import __version__

__all__ = [
    "save_model",
    "load_model",
    "jsonable",
    "MODEL_FORMAT",
    "FORMAT_VERSION",
    "METADATA_SCHEMA",
    "SCALAR_SCHEMA",
    "NOT_RESTORED",
]

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
        "params": model._params_for_file(),  # NOT_RESTORED parameters are written as None
        "scalars": scalars,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    arrays[_META_KEY] = np.asarray(json.dumps(meta))
    return write_npz_atomic(path, arrays)


#: The schema of a model file's ``__metadata__`` JSON: key -> (type, required). Nothing else is
#: accepted.
METADATA_SCHEMA: dict[str, tuple[type, bool]] = {
    "format": (str, True),
    "format_version": (int, True),
    "behavhmm_version": (str, False),
    "class": (str, True),
    "params": (dict, True),
    "scalars": (dict, False),
    "arrays": (dict, True),
}
#: Fitted scalars a model file may hold, with their types; ``BaseHMM._saved_scalars`` lists a
#: class's.
SCALAR_SCHEMA: dict[str, type] = {"n_iter_": int, "converged_": bool, "n_features_in_": int}
#: The fields describing each array in ``__metadata__["arrays"]``.
ARRAY_ENTRY_SCHEMA: dict[str, type] = {"shape": list, "dtype": str}
#: Constructor parameters that are never read from a model file: a loaded model has them None,
#: so no path stored in a file is ever written to (set them again to checkpoint a refit).
NOT_RESTORED = ("checkpoint_path", "checkpoint_every")


def _is_type(value, kind: type) -> bool:
    if kind is int:  # JSON has no separate bool/int, Python does
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_metadata(meta, path: Path) -> None:
    """Check ``meta`` against `METADATA_SCHEMA`, `SCALAR_SCHEMA` and `ARRAY_ENTRY_SCHEMA`."""
    if not isinstance(meta, dict):
        raise ValueError(
            f"{path} is not a behavhmm model file (its metadata is a {type(meta).__name__})."
        )
    unknown = sorted(set(meta) - set(METADATA_SCHEMA))
    if unknown:
        raise ValueError(
            f"{path} has unknown metadata keys {unknown}; a model file holds "
            f"{sorted(METADATA_SCHEMA)}."
        )
    if meta.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a behavhmm model file (format {meta.get('format')!r}).")
    for key, (kind, required) in METADATA_SCHEMA.items():
        if key not in meta:
            if required:
                raise ValueError(f"{path} is damaged: its metadata lacks {key!r}.")
            continue
        if not _is_type(meta[key], kind):
            raise ValueError(
                f"{path} is damaged: metadata {key!r} must be of type {kind.__name__}, got "
                f"{type(meta[key]).__name__}."
            )
    for name, value in meta.get("scalars", {}).items():
        kind = SCALAR_SCHEMA.get(name)
        if kind is None:
            raise ValueError(
                f"{path} has an unknown fitted scalar {name!r} in its metadata; known: "
                f"{sorted(SCALAR_SCHEMA)}."
            )
        if not _is_type(value, kind) or (kind is int and value < 0):
            raise ValueError(
                f"{path} is damaged: the scalar {name} must be of type {kind.__name__} (ints >= "
                f"0), got {value!r}."
            )
    for name, entry in meta["arrays"].items():
        if not isinstance(entry, dict) or set(entry) != set(ARRAY_ENTRY_SCHEMA):
            raise ValueError(
                f"{path} is damaged: the metadata of array {name!r} must have exactly the keys "
                f"{sorted(ARRAY_ENTRY_SCHEMA)}."
            )
        shape = entry["shape"]
        if (
            not isinstance(shape, list)
            or not all(_is_type(n, int) and n >= 0 for n in shape)
            or len(shape) > 32
        ):
            raise ValueError(
                f"{path} is damaged: array {name!r} has an invalid shape {shape!r} in its metadata."
            )
        if not isinstance(entry["dtype"], str):
            raise ValueError(
                f"{path} is damaged: array {name!r} has an invalid dtype in its metadata."
            )


def load_model(path: str | os.PathLike, mapping_dict: Mapping[str, Callable] | None = None):
    """Load an estimator saved with ``save_params``.

    The file is read without pickle and checked before anything is built
    from it: member sizes against the zip directory before decompression
    (`behavhmm._files.read_npz`), the ``__metadata__`` JSON against a fixed
    schema (`METADATA_SCHEMA`: known keys and types; fitted scalars from
    `SCALAR_SCHEMA` only; each array's shape and dtype), then every array
    against its declared shape and the model's consistency checks.

    ``checkpoint_path`` and ``checkpoint_every`` are never restored: a loaded
    model has both None, whatever the file says, so a file cannot make a
    later ``fit`` write somewhere. Set them with ``set_params`` to checkpoint
    a refit.

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
        If the file is not a readable behavhmm model file (truncated,
        corrupted, expanding too much, object arrays that need pickle), was
        written by a newer file format, names an unknown class, has metadata
        keys, parameters or fitted scalars outside the schema, or holds arrays
        whose shapes do not match its metadata or the model. The message
        names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}.")
    arrays = read_npz(path, string_keys={_META_KEY, "class_names_"}, what=".npz model file")
    meta = _read_metadata(arrays, path)
    model = _model_from_metadata(meta, path, mapping_dict)
    _check_arrays(arrays, meta["arrays"], path)
    try:
        model._load_arrays(arrays)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"{path} {exc}") from None
    for name, value in meta.get("scalars", {}).items():
        setattr(
            model, name, value
        )  # names checked against SCALAR_SCHEMA and the class's _saved_scalars
    try:
        model._validated_params()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{path} holds inconsistent parameters: {exc}") from exc
    return model


def _read_metadata(arrays: dict, path: Path) -> dict:
    """Pop the ``__metadata__`` JSON from ``arrays`` and check its schema and format version."""
    raw = arrays.pop(_META_KEY, None)
    if raw is None:
        raise ValueError(f"{path} is not a behavhmm model file (no {_META_KEY} entry).")
    if raw.shape != () or raw.dtype.kind != "U":
        raise ValueError(f"{path} is damaged: {_META_KEY} is not one JSON string.")
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is damaged: its {_META_KEY} is not valid JSON ({exc}).") from None
    _check_metadata(meta, path)
    version = meta["format_version"]
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses model-file format {version}, newer than this behavhmm "
            f"({__version__}) reads (format {FORMAT_VERSION}); upgrade behavhmm to load it."
        )
    return meta


def _model_from_metadata(meta: dict, path: Path, mapping_dict):
    """An unfitted estimator of the saved class with the saved parameters."""
    cls_name = meta["class"]
    cls = MODEL_REGISTRY.get(cls_name)
    if cls is None:
        raise ValueError(
            f"{path} holds an unknown model class {cls_name!r}; known: {sorted(MODEL_REGISTRY)}."
        )
    params = dict(meta["params"])
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ValueError(f"{path} has parameters {sorted(unknown)} that {cls_name} does not take.")
    misplaced = set(meta.get("scalars", {})) - set(cls._saved_scalars)
    if misplaced:
        raise ValueError(
            f"{path} has fitted scalars {sorted(misplaced)} that {cls_name} does not save."
        )
    for name in NOT_RESTORED:
        if name in params:
            params[name] = None
    try:
        params = cls._params_from_file(params, dict(mapping_dict or {}))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: invalid parameters ({type(exc).__name__}: {exc})") from None
    return cls(**params)


def _check_arrays(arrays: dict, listed: dict, path: Path) -> None:
    """Every array is listed in the metadata, with the listed shape and dtype."""
    if set(listed) != set(arrays):
        raise ValueError(
            f"{path} is damaged: its arrays {sorted(arrays)} differ from its metadata "
            f"{sorted(listed)}."
        )
    for name, arr in arrays.items():
        if list(arr.shape) != listed[name]["shape"]:
            raise ValueError(
                f"{path} is damaged: {name} has shape {arr.shape}, metadata says "
                f"{listed[name]['shape']}."
            )
        if str(arr.dtype) != listed[name]["dtype"]:
            raise ValueError(
                f"{path} is damaged: {name} has dtype {arr.dtype}, metadata says "
                f"{listed[name]['dtype']}."
            )
