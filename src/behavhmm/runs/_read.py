"""Read a run directory back: today's layout, and fit-keypoints folders written before it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RunResults", "read_run"]


@dataclass
class RunResults:
    """What a run directory holds.

    Attributes
    ----------
    path : Path
    model : fitted estimator or None
        ``model.npz`` loaded with `behavhmm.load_model` (None when absent).
    probabilities : dict of str to ndarray of shape (n_time_bins, n_states)
        Per session.
    labels : dict of str to ndarray of int, shape (n_time_bins,)
        Per session (keypoint folders: the syllables).
    metrics : pandas.DataFrame or None
        ``metrics.csv`` (None in folders written before the run layout).
    hparams : dict or None
        ``hparams.yaml`` (None in folders written before the run layout).
    keypoint_results : list of KeypointResults or None
        ``results.h5`` of a keypoint fit.
    """

    path: Path
    model: object
    probabilities: dict
    labels: dict
    metrics: object = None
    hparams: dict | None = None
    keypoint_results: list | None = None


def _label_column(table) -> np.ndarray:
    for column in ("state", "syllable", "label"):
        if column in table.columns:
            return table[column].to_numpy(np.int64)
    raise ValueError(f"no state, syllable or label column (columns: {list(table.columns)}).")


def read_run(path) -> RunResults:
    """Read a run directory (or an old fit-keypoints folder with ``results.h5``).

    Parameters
    ----------
    path : str or path-like
        The run folder (``OUT`` or ``OUT/version_N``).

    Returns
    -------
    RunResults

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder, or holds neither ``*_states.npy`` files
        nor ``results.h5``.
    ValueError
        If a file is not what the layout says (the message names it).
    """
    import pandas as pd
    import yaml

    from ..models import load_model
    from ..workflows import read_keypoint_results

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No run folder at {path}.")
    model = load_model(path / "model.npz") if (path / "model.npz").is_file() else None
    keypoints = None
    if (path / "results.h5").is_file():
        keypoints = read_keypoint_results(path / "results.h5")
    probs, labels = {}, {}
    for file in sorted(path.glob("*_states.npy")):
        name = file.name[: -len("_states.npy")]
        probs[name] = np.load(file, allow_pickle=False)
        table_path = path / f"{name}.csv"
        if table_path.is_file():
            try:
                labels[name] = _label_column(pd.read_csv(table_path))
            except ValueError as exc:
                raise ValueError(f"{table_path}: {exc}") from None
    if not probs and keypoints is not None:  # a folder written before the run layout
        probs = {r.name: r.probabilities for r in keypoints}
        labels = {r.name: r.syllables for r in keypoints}
    if not probs:
        raise FileNotFoundError(f"{path} holds no run: neither *_states.npy nor results.h5.")
    metrics = pd.read_csv(path / "metrics.csv") if (path / "metrics.csv").is_file() else None
    hparams = None
    if (path / "hparams.yaml").is_file():
        hparams = yaml.safe_load((path / "hparams.yaml").read_text())
    return RunResults(path, model, probs, labels, metrics, hparams, keypoints)
