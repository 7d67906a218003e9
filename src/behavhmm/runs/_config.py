"""The ``behavhmm fit CONFIG.yaml`` schema and its validation (errors name the key).

Schema (YAML)::

    model:
      type: GaussianHMM          # GaussianHMM | ARHMM | GLMHMM | KeypointSLDS
      params: {n_states: [4, 8], kappa: 100.0}   # a list: one fit per value (a grid)
    data:
      kind: features             # keypoints | pc_scores | features | choice
      paths: [features.csv]      # relative to the config file's folder
      options: {}                # per kind, see DATA_OPTIONS
    labels:                      # optional hand labels (behavhmm.io label files)
      paths: [session1_labels.csv]   # one per session, in session order
      format: auto               # auto | daart | boris | plain
      weight: 1.0                # label_weight of fit
      fps: 30.0                  # BORIS files (event times in seconds)
    output: runs/                # or {dir: runs/}
    cv: {n_splits: 3}            # optional: whole-session K-fold held-out log-likelihood
    n_jobs: 1                    # parallel grid points (joblib; -1: all cores)

A parameter whose value is a list runs a grid over its values; a parameter whose
value itself is a list is written as a list of one list (``[[0, 1]]``).
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

__all__ = [
    "DATA_KINDS",
    "DATA_OPTIONS",
    "MODEL_TYPES",
    "ConfigError",
    "load_config",
    "validate_config",
]

#: Estimators a config can name, and the data kinds each accepts.
MODEL_TYPES = {
    "GaussianHMM": ("features", "pc_scores", "keypoints"),
    "ARHMM": ("pc_scores", "features", "keypoints"),
    "GLMHMM": ("choice",),
    "KeypointSLDS": ("keypoints",),
}
DATA_KINDS = ("keypoints", "pc_scores", "features", "choice")
#: Options of each data kind: name -> (expected type(s), default, description).
DATA_OPTIONS = {
    "keypoints": {
        "bodyparts": ((list, type(None)), None, "a list of bodypart names"),
        "fps": ((int, float, type(None)), None, "a number (frames per second)"),
        "outlier_threshold": ((int, float), 6.0, "a number (MAD multiples)"),
    },
    "pc_scores": {
        "npcs": (int, 10, "an int >= 1"),
        "index": ((str, type(None)), None, "a moseq2 index file path"),
        "nan_policy": (str, "interpolate", "'interpolate' or 'split'"),
    },
    "features": {
        "key": ((str, type(None)), None, "an HDF5 dataset name"),
        "pattern": ((str, type(None)), None, "a glob pattern"),
    },
    "choice": {
        "y": (str, None, "the column of the choices (0/1)"),
        "X": (list, None, "a list of regressor columns"),
        "session": ((str, type(None)), None, "the column of the session ids"),
    },
}
_TOP = ("model", "data", "labels", "output", "cv", "n_jobs", "versions", "run")
_LABEL_KEYS = ("path", "paths", "format", "weight", "fps", "class_names", "files")
_LABEL_FORMATS = ("auto", "daart", "boris", "plain")


class ConfigError(ValueError):
    """A bad config: the message starts with the key, e.g. ``model.params.n_states: ...``."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(f"{key}: {problem}")


def _expect(key: str, value, kind, what: str):
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(key, f"expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(key, f"expected {what}, got {value!r}")
    return value


def load_config(path) -> dict:
    """Read and validate a config file (YAML).

    Relative data and label paths are resolved against the config file's folder.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        The validated config (see `validate_config`).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ConfigError
        If the YAML does not parse or breaks the schema (the message names the key).
    """
    import yaml

    path = Path(path)
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("(file)", f"not valid YAML: {' '.join(str(exc).split())}") from None
    return validate_config(raw, base_dir=path.resolve().parent)


def validate_config(raw, base_dir=None) -> dict:
    """Check a config dict against the schema and fill in defaults.

    Parameters
    ----------
    raw : dict
        The parsed YAML.
    base_dir : path-like, optional
        Folder that relative paths are relative to (default: the current folder).

    Returns
    -------
    dict
        A new dict: ``model`` ({type, params, grid}: ``grid`` maps every
        parameter to its list of values), ``data`` ({kind, paths (absolute),
        options with defaults}), ``labels`` (or None), ``output`` (absolute
        path), ``cv`` (or None) and ``n_jobs``.

    Raises
    ------
    ConfigError
        For the first key that breaks the schema.
    """
    base = Path(base_dir or ".").resolve()
    _expect("(top level)", raw, dict, "a mapping with keys model, data, output")
    for key in raw:
        if key not in _TOP:
            raise ConfigError(str(key), f"unknown key (known: {', '.join(_TOP[:-2])})")
    for key in ("model", "data", "output"):
        if key not in raw:
            raise ConfigError(key, "missing (required)")
    model = _model_section(raw["model"])
    data = _data_section(raw["data"], base)
    if data["kind"] not in MODEL_TYPES[model["type"]]:
        raise ConfigError(
            "data.kind",
            f"{model['type']} cannot fit {data['kind']!r} data (it fits "
            f"{', '.join(MODEL_TYPES[model['type']])})",
        )
    output = raw["output"]
    if isinstance(output, dict):
        output = output.get("dir")
        key = "output.dir"
    else:
        key = "output"
    _expect(key, output, str, "a folder path")
    return {
        "model": model,
        "data": data,
        "labels": _labels_section(raw.get("labels"), base),
        "output": str(base / output),
        "cv": _cv_section(raw.get("cv")),
        "n_jobs": _expect("n_jobs", raw.get("n_jobs", 1), int, "an int (-1: all cores)"),
    }


def _model_section(section) -> dict:
    from ..models import ARHMM, GLMHMM, GaussianHMM, KeypointSLDS

    classes = {c.__name__: c for c in (GaussianHMM, ARHMM, GLMHMM, KeypointSLDS)}
    _expect("model", section, dict, "a mapping with keys type, params")
    for key in section:
        if key not in ("type", "params"):
            raise ConfigError(f"model.{key}", "unknown key (known: type, params)")
    kind = section.get("type")
    if kind not in classes:
        raise ConfigError("model.type", f"expected one of {', '.join(classes)}, got {kind!r}")
    params = section.get("params") or {}
    _expect("model.params", params, dict, "a mapping of estimator parameters")
    cls = classes[kind]
    known = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    grid = {}
    for name, value in params.items():
        key = f"model.params.{name}"
        if name not in known:
            raise ConfigError(
                key, f"not a parameter of {kind} (its parameters: {', '.join(known)})"
            )
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigError(key, "an empty list gives no value to fit")
        grid[name] = [_check_param(cls, key, name, v) for v in values]
    if kind == "GLMHMM" and "n_states" not in grid:
        raise ConfigError("model.params.n_states", "missing (GLMHMM has no default)")
    return {"type": kind, "params": copy.deepcopy(params), "grid": grid}


def _check_param(cls, key: str, name: str, value):
    """``value`` checked against the estimator's hyperparameter table (YAML's ``1e6`` → float)."""
    from ..models.validation import Real

    constraint = getattr(cls, "_hyperparameters", {}).get(name)
    if constraint is None:
        return value
    if isinstance(constraint, Real) and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e6 (no dot) as a string
        except ValueError:
            pass
    try:
        constraint.check(name, value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected {constraint.describe()}, got {value!r}") from None
    return value


def _data_section(section, base: Path) -> dict:
    _expect("data", section, dict, "a mapping with keys kind, paths, options")
    for key in section:
        if key not in ("kind", "paths", "path", "options", "files"):
            raise ConfigError(f"data.{key}", "unknown key (known: kind, paths, options)")
    kind = section.get("kind")
    if kind not in DATA_KINDS:
        raise ConfigError("data.kind", f"expected one of {', '.join(DATA_KINDS)}, got {kind!r}")
    paths = section.get("paths", section.get("path"))
    if isinstance(paths, str):
        paths = [paths]
    _expect("data.paths", paths, list, "a list of file paths")
    if not paths:
        raise ConfigError("data.paths", "expected at least one file")
    resolved = []
    for i, p in enumerate(paths):
        _expect(f"data.paths[{i}]", p, str, "a file path")
        full = base / p
        if not full.exists():
            raise ConfigError(f"data.paths[{i}]", f"no such file or folder: {full}")
        resolved.append(str(full))
    options = section.get("options") or {}
    _expect("data.options", options, dict, "a mapping")
    table = DATA_OPTIONS[kind]
    checked = {}
    for name, value in options.items():
        if name not in table:
            raise ConfigError(
                f"data.options.{name}", f"unknown option for {kind} (known: {', '.join(table)})"
            )
        types, _, what = table[name]
        checked[name] = _expect(f"data.options.{name}", value, types, what)
    for name, (_, default, what) in table.items():
        if name not in checked:
            if default is None and kind == "choice" and name in ("y", "X"):
                raise ConfigError(f"data.options.{name}", f"missing: {what}")
            checked[name] = default
    if kind == "pc_scores" and checked.get("index"):
        checked["index"] = str(base / checked["index"])
    _check_records("data.files", section.get("files"), resolved)
    return {"kind": kind, "paths": resolved, "options": checked}


def _check_records(key: str, records, paths) -> None:
    """Warn when a file's sha256 differs from the one recorded in a ``hparams.yaml``."""
    import warnings

    from ._layout import file_record

    if not records:
        return
    _expect(key, records, list, "a list of {path, sha256} records")
    for record, path in zip(records, paths, strict=False):
        if not isinstance(record, dict) or "sha256" not in record:
            continue
        now = file_record(path).get("sha256")
        if now != record["sha256"]:
            warnings.warn(
                f"{key}: {path} has changed since the run was recorded (sha256 {now[:12]}..., "
                f"recorded {str(record['sha256'])[:12]}...); the fit will not reproduce it.",
                UserWarning,
                stacklevel=2,
            )


def _labels_section(section, base: Path):
    if section is None:
        return None
    _expect("labels", section, dict, "a mapping with keys paths, format, weight")
    for key in section:
        if key not in _LABEL_KEYS:
            raise ConfigError(f"labels.{key}", f"unknown key (known: {', '.join(_LABEL_KEYS)})")
    paths = section.get("paths", section.get("path"))
    if isinstance(paths, str):
        paths = [paths]
    _expect("labels.paths", paths, list, "a list of label files, one per session")
    resolved = []
    for i, p in enumerate(paths):
        _expect(f"labels.paths[{i}]", p, str, "a file path")
        if not (base / p).is_file():
            raise ConfigError(f"labels.paths[{i}]", f"no such file: {base / p}")
        resolved.append(str(base / p))
    fmt = section.get("format", "auto")
    if fmt not in _LABEL_FORMATS:
        raise ConfigError("labels.format", f"expected one of {_LABEL_FORMATS}, got {fmt!r}")
    weight = section.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise ConfigError("labels.weight", f"expected a number in [0, 1], got {weight!r}")
    fps = section.get("fps")
    if fmt == "boris" and fps is None:
        raise ConfigError("labels.fps", "BORIS files give times in seconds: give the frame rate")
    if fps is not None:
        _expect("labels.fps", fps, (int, float), "a number (frames per second)")
    _check_records("labels.files", section.get("files"), resolved)
    names = section.get("class_names")
    if names is not None:
        _expect("labels.class_names", names, list, "a list of class names")
    return {
        "paths": resolved,
        "format": fmt,
        "weight": float(weight),
        "fps": fps,
        "class_names": names,
    }


def _cv_section(section):
    if section is None:
        return None
    _expect("cv", section, dict, "a mapping {n_splits: int}")
    for key in section:
        if key != "n_splits":
            raise ConfigError(f"cv.{key}", "unknown key (known: n_splits)")
    n = section.get("n_splits", 3)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError("cv.n_splits", f"expected an int >= 2, got {n!r}")
    return {"n_splits": n}
