"""The run directory: one folder per fit with everything needed to read and reproduce it.

Layout (every file written atomically with `behavhmm._files.atomic_path`)::

    <run>/
      <session>_states.npy   float32 (n_time_bins, n_states): smoothed state probabilities
      <session>.csv          per-frame labels (frame, state; the keypoint workflow adds pose)
      metrics.csv            iteration, log_likelihood[, heldout_log_likelihood, label_*]
      hparams.yaml           the config of this fit: estimator parameters, data files with
                             sha256, versions (``behavhmm fit hparams.yaml`` re-runs it)
      curves.png             the metrics against iteration
      model.npz              ``save_params``
      fit.log                what the fit printed

A second run into a folder that already holds a run (or a grid's ``summary.csv``) goes to
``version_N/`` inside it (N one more than the largest existing), never over the first.
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import atomic_path

__all__ = [
    "RunLog",
    "SessionStates",
    "claim_run_dir",
    "claim_versions",
    "file_record",
    "safe_session_name",
    "versions",
    "write_run",
]

#: Files whose presence marks a folder as holding a run (``results.h5``: an old-style
#: fit-keypoints folder; ``summary.csv``: a grid).
RUN_MARKERS = ("hparams.yaml", "model.npz", "results.h5", "metrics.csv", "summary.csv")
_VERSION = re.compile(r"^version_(\d+)$")


def _taken(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in RUN_MARKERS)


def _next_version(folder: Path) -> int:
    numbers = [
        int(m.group(1))
        for p in folder.iterdir()
        if p.is_dir() and (m := _VERSION.match(p.name)) is not None
    ]
    if numbers:
        return max(numbers) + 1
    return 1 if _taken(folder) else 0


def claim_versions(out_dir, n: int) -> list[Path]:
    """Create ``n`` new ``version_N`` folders in ``out_dir`` and return them, in order.

    Numbers continue after the largest existing ``version_N`` (from 0 in a fresh
    folder, from 1 when ``out_dir`` itself holds a run). Each folder is created
    with ``mkdir(exist_ok=False)``, so two processes never claim the same one.

    Parameters
    ----------
    out_dir : str or path-like
    n : int

    Returns
    -------
    list of Path
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claimed = []
    while len(claimed) < n:
        path = out / f"version_{_next_version(out)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue  # another process took it: try the next number
        claimed.append(path)
    return claimed


def claim_run_dir(out_dir) -> Path:
    """The folder a new run writes to: ``out_dir`` itself, or a new ``version_N`` inside it.

    ``out_dir`` is used when it does not exist or holds no run (none of
    `RUN_MARKERS`); otherwise a new ``version_N`` folder is created (see
    `claim_versions`).

    Parameters
    ----------
    out_dir : str or path-like

    Returns
    -------
    Path
        An existing folder that holds no run.

    Raises
    ------
    NotADirectoryError
        If ``out_dir`` is a file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; the run needs a folder.")
    if not _taken(out):
        out.mkdir(parents=True, exist_ok=True)
        return out
    return claim_versions(out, 1)[0]


def safe_session_name(name: str) -> str:
    """A session name usable as a file name (slashes and odd characters become ``_``)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return text or "session"


def sha256(path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path) -> dict:
    """``{"path": absolute path, "sha256": hex}`` of a data file, or of every file in a folder."""
    p = Path(path).resolve()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        return {"path": str(p), "files": {str(f.relative_to(p)): sha256(f) for f in files}}
    return {"path": str(p), "sha256": sha256(p)}


def versions() -> dict:
    """Versions of behavhmm, jax, numpy, scikit-learn and Python, as strings."""
    import jax
    import sklearn

    from .._version import __version__

    return {
        "behavhmm": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": sys.version.split()[0],
    }


class RunLog:
    """Lines of a fit's log: echoed as they come, written to ``fit.log`` by `write_run`.

    Parameters
    ----------
    echo : callable, optional
        Called with each line as it is logged (e.g. ``click.echo``); None: silent.
    """

    def __init__(self, echo=None):
        self.lines: list[str] = []
        self._echo = echo

    def __call__(self, message: str) -> None:
        self.lines.append(str(message))
        if self._echo is not None:
            self._echo(message)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


@dataclass
class SessionStates:
    """Per-frame outputs of one session for the run directory.

    Attributes
    ----------
    name : str
        Session name (made file-safe by `safe_session_name` when written).
    probabilities : ndarray of shape (n_time_bins, n_states)
        Smoothed state probabilities (NaN where the model gives none, e.g. the
        first ``nlags`` frames of an autoregressive model).
    labels : ndarray of int, shape (n_time_bins,)
        Most likely state of each frame (-1: none).
    table : pandas.DataFrame, optional
        The ``<session>.csv`` to write instead of ``frame, state`` (the
        keypoint workflow's table, with pose columns).
    """

    name: str
    probabilities: np.ndarray
    labels: np.ndarray
    table: object = field(default=None)


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_session_files(run_dir, sessions, *, tables: bool = True) -> list[Path]:
    """Write ``<session>_states.npy`` (float32) and (``tables``) ``<session>.csv`` per session."""
    import pandas as pd

    run_dir = Path(run_dir)
    written = []
    for s in sessions:
        name = safe_session_name(s.name)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(s.probabilities, dtype=np.float32), allow_pickle=False)
        _write_bytes(run_dir / f"{name}_states.npy", buffer.getvalue())
        written.append(run_dir / f"{name}_states.npy")
        if not tables:
            continue
        table = s.table
        if table is None:
            labels = np.asarray(s.labels)
            table = pd.DataFrame({"frame": np.arange(len(labels)), "state": labels})
        with atomic_path(run_dir / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
        written.append(run_dir / f"{name}.csv")
    return written


def write_curves(path, metrics) -> Path:
    """Draw ``metrics`` (a DataFrame with an ``iteration`` column) against iteration as a PNG."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in metrics.columns if c != "iteration" and metrics[c].notna().any()]
    fig, axes = plt.subplots(
        1, max(len(columns), 1), figsize=(4 * max(len(columns), 1), 3), layout="constrained"
    )
    for ax, column in zip(np.atleast_1d(axes), columns, strict=False):
        rows = metrics[column].notna()
        ax.plot(metrics["iteration"][rows], metrics[column][rows], marker=".")
        ax.set_xlabel("iteration")
        ax.set_title(column)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(path)


def write_yaml(path, data: dict) -> Path:
    """Write ``data`` (plain Python values) as YAML with `yaml.safe_dump`, atomically."""
    import yaml

    _write_bytes(Path(path), yaml.safe_dump(data, sort_keys=False).encode())
    return Path(path)


def write_run(
    run_dir, *, model, sessions, metrics, hparams: dict, log: RunLog, tables: bool = True
) -> dict:
    """Write the files of one run into ``run_dir`` (see the module docstring for the layout).

    Parameters
    ----------
    run_dir : str or path-like
        A folder from `claim_run_dir` or `claim_versions`.
    model : fitted estimator or None
        Saved with ``save_params`` as ``model.npz`` (None: the caller saved it).
    sessions : list of SessionStates
    metrics : pandas.DataFrame
        One row per iteration (column ``iteration`` first).
    hparams : dict
        Plain values (``yaml.safe_dump``-able).
    log : RunLog
    tables : bool, default True
        Write ``<session>.csv``; False when the caller wrote richer tables
        itself (the keypoint workflow).

    Returns
    -------
    dict
        Paths written: ``model``, ``metrics``, ``hparams``, ``curves``, ``log``, ``sessions``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out = {"sessions": write_session_files(run_dir, sessions, tables=tables)}
    if model is not None:
        out["model"] = model.save_params(run_dir / "model.npz")
    with atomic_path(run_dir / "metrics.csv") as tmp:
        metrics.to_csv(tmp, index=False)
    out["metrics"] = run_dir / "metrics.csv"
    out["curves"] = write_curves(run_dir / "curves.png", metrics)
    out["hparams"] = write_yaml(run_dir / "hparams.yaml", hparams)
    _write_bytes(run_dir / "fit.log", log.text.encode())
    out["log"] = run_dir / "fit.log"
    return out
