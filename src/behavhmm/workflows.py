"""The keypoint workflow behind ``behavhmm fit-keypoints`` and ``apply-keypoints``.

load (any pose format) -> outlier removal and NaN interpolation -> KeypointSLDS
(PCA, AR-only stage, full model) -> per-session results (syllables relabelled
by usage, latent pose, centroid, heading, smoothed syllable probabilities) as
pynapple objects, CSV and HDF5 files, and figures.

References
----------
C. Weinreb et al. (2024). Keypoint-MoSeq: parsing behavior by linking point
tracking to pose dynamics. Nature Methods 21, 1329-1339.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import atomic_path

__all__ = [
    "KeypointResults",
    "load_and_clean",
    "fit_keypoints",
    "keypoint_results",
    "write_keypoint_results",
    "read_keypoint_results",
    "plot_keypoint_summary",
]


@dataclass
class KeypointResults:
    """Syllables and pose of one session (one individual in one file).

    Attributes
    ----------
    name : str
        Session name: the file's stem, plus the individual for multi-animal files.
    source : str or None
        The file it came from.
    fps : float or None
        Frames per second.
    timestamps : ndarray of float64, shape (n_frames,)
        Seconds (``frames / fps``; frame indices when fps is unknown).
    syllables : ndarray of int32, shape (n_frames,)
        Syllable of every frame, relabelled by usage in the training data
        (0 = most used); -1 on the first ``nlags`` frames.
    latents : ndarray of shape (n_frames, latent_dim)
        Smoothed latent pose (the model's PC scores).
    centroid : ndarray of shape (n_frames, n_dims)
        Centroid in the file's units (pixels, mm).
    heading : ndarray of shape (n_frames,)
        Heading in radians, counter-clockwise from +x.
    probabilities : ndarray of shape (n_frames, n_states)
        Smoothed syllable probabilities, columns in the relabelled order; NaN
        on the first ``nlags`` frames.
    """

    name: str
    source: str | None
    fps: float | None
    timestamps: np.ndarray
    syllables: np.ndarray
    latents: np.ndarray
    centroid: np.ndarray
    heading: np.ndarray
    probabilities: np.ndarray

    def to_pynapple(self) -> dict:
        """The results as pynapple objects on the session's timestamps.

        Returns
        -------
        dict
            ``syllables`` (Tsd), ``latents`` (TsdFrame), ``centroid``
            (TsdFrame, columns x, y[, z]), ``heading`` (Tsd) and
            ``probabilities`` (TsdFrame, one column per syllable).
        """
        import pynapple as nap

        t = self.timestamps
        dims = ["x", "y", "z"][: self.centroid.shape[1]]
        return {
            "syllables": nap.Tsd(t=t, d=self.syllables),
            "latents": nap.TsdFrame(
                t=t, d=self.latents, columns=[f"pc{i}" for i in range(self.latents.shape[1])]
            ),
            "centroid": nap.TsdFrame(t=t, d=self.centroid, columns=dims),
            "heading": nap.Tsd(t=t, d=self.heading),
            "probabilities": nap.TsdFrame(t=t, d=self.probabilities),
        }


def _session_name(data, taken: set) -> str:
    stem = Path(data.source).stem if data.source else "session"
    name = (
        stem if data.individual in (None, "id_0", "individual_0") else f"{stem}_{data.individual}"
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    base, i = name, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def load_and_clean(
    paths,
    *,
    bodyparts=None,
    fps=None,
    outlier_threshold: float = 6.0,
    min_observed: float = 0.5,
    min_frames: int = 30,
):
    """Load pose files and clean them: outliers to NaN (confidence 0), then interpolation.

    Before cleaning, keypoints that are never observed in any session are
    dropped, and so are sessions (individuals, track fragments) shorter than
    ``min_frames`` or with less than ``min_observed`` of their points
    observed; each drop is reported with a ``UserWarning``.

    Parameters
    ----------
    paths : path or sequence of paths
        Files of any format `behavhmm.io.load_keypoints` reads.
    bodyparts : sequence of str, optional
        Keypoints to keep, in this order (default: all).
    fps : float, optional
        Frames per second, for files that do not state it.
    outlier_threshold : float, default 6.0
        MAD multiples beyond which a keypoint is an outlier
        (`behavhmm.preprocessing.remove_outliers`).
    min_observed : float, default 0.5
        Smallest fraction of observed (non-NaN) points a session needs.
    min_frames : int, default 30
        Shortest session kept, in frames.

    Returns
    -------
    sessions : KeypointSessions
        The loaded sessions.
    coordinates : ndarray of shape (n_time_bins, n_keypoints, n_dims)
        Cleaned keypoints, sessions concatenated.
    confidence : ndarray of shape (n_time_bins, n_keypoints)
        Confidence, 0 at outliers and interpolated points.
    names : list of str
        One name per session.

    Raises
    ------
    FileNotFoundError, ValueError
        From the loaders (unknown format, missing bodyparts, ...).
    """
    from .io import load_keypoints
    from .preprocessing import remove_outliers

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    sessions = _screen(
        load_keypoints(list(paths), bodyparts=bodyparts, fps=fps), min_observed, min_frames
    )
    cleaned = remove_outliers(
        sessions.coordinates,
        sessions.confidence,
        sessions.session_starts,
        threshold=outlier_threshold,
    )
    taken: set = set()
    names = [_session_name(s, taken) for s in sessions]
    return sessions, np.asarray(cleaned.coordinates), np.asarray(cleaned.confidence), names


def _screen(sessions, min_observed: float, min_frames: int):
    """Drop never-observed keypoints and short or mostly missing sessions, with warnings."""
    import warnings

    from .io import KeypointSessions

    kept = []
    for s in sessions:
        observed = np.isfinite(s.coordinates).all(axis=2)
        label = f"{Path(s.source).name if s.source else 'session'} / {s.individual}"
        if s.n_frames < min_frames or observed.mean() < min_observed:
            warnings.warn(
                f"dropped {label}: {s.n_frames} frames with {100 * observed.mean():.0f}% of points "
                f"observed (need at least {min_frames} frames and {100 * min_observed:.0f}%).",
                UserWarning,
                stacklevel=3,
            )
            continue
        kept.append(s)
    if not kept:
        raise ValueError(
            f"no session has at least {min_frames} frames and {100 * min_observed:.0f}% of its "
            "points observed."
        )
    sessions = KeypointSessions(kept)
    seen = np.zeros(len(sessions.bodyparts), bool)
    for s in sessions:
        seen |= np.isfinite(s.coordinates).all(axis=2).any(axis=0)
    if not seen.all():
        never = [b for b, ok in zip(sessions.bodyparts, seen, strict=True) if not ok]
        warnings.warn(
            f"dropped keypoints never observed in any session: {never}.", UserWarning, stacklevel=3
        )
        sessions = sessions.select(
            bodyparts=[b for b, ok in zip(sessions.bodyparts, seen, strict=True) if ok]
        )
    return sessions


def fit_keypoints(
    model,
    coordinates,
    confidence,
    session_starts,
    *,
    target_duration: float | None = None,
    resume: bool = False,
):
    """Fit a KeypointSLDS, first choosing ``kappa`` for a target median duration if asked.

    Parameters
    ----------
    model : KeypointSLDS
        Unfitted estimator (its hyperparameters are used).
    coordinates : ndarray of shape (n_time_bins, n_keypoints, n_dims)
    confidence : ndarray of shape (n_time_bins, n_keypoints)
    session_starts : bool ndarray of shape (n_time_bins,)
    target_duration : float, optional
        Wanted median syllable duration in frames. ``kappa`` is then found by
        bisection in ``log10(kappa)`` with an `ARHMM` on the model's PCA of
        the aligned keypoints (its AR-only stage), and used for both stages.
    resume : bool, default False
        Continue the chain saved at the model's ``checkpoint_path`` (the
        kappa search, deterministic, is run again first).

    Returns
    -------
    KeypointSLDS
        The fitted model (``kappa`` set to the tuned value when tuned).
    """
    if target_duration is not None:
        from .models import ARHMM

        probe = type(model)(
            **{
                **model.get_params(),
                "n_iter": 1,
                "n_iter_ar": 0,
                "progress_bar": False,
                "checkpoint_path": None,
                "checkpoint_every": None,
            }
        )
        probe.fit(coordinates, confidence=confidence, session_starts=session_starts)
        scores = probe.decode(
            coordinates, confidence=confidence, session_starts=session_starts
        ).latents
        ar = ARHMM(
            n_states=model.n_states,
            nlags=model.nlags,
            algorithm="gibbs",
            alpha=model.alpha,
            gamma=model.gamma,
            kappa=model.kappa,
            n_iter=max(model.n_iter_ar, 10),
            target_duration=target_duration,
            random_state=model.random_state,
            progress_bar=model.progress_bar,
        ).fit(scores, session_starts=session_starts)
        model.set_params(kappa=float(ar.kappa_))
    return model.fit(
        coordinates, confidence=confidence, session_starts=session_starts, resume=resume
    )


def keypoint_results(
    model,
    coordinates,
    confidence,
    session_starts,
    names,
    *,
    sources=None,
    fps=None,
    order=None,
    decoding=None,
):
    """Decode every session and gather its results.

    Parameters
    ----------
    model : fitted KeypointSLDS
    coordinates, confidence, session_starts
        As for ``model.decode``.
    names : list of str
        One name per session.
    sources : list of str, optional
        File of each session.
    fps : float or list of float, optional
        Frames per second (one value, or one per session).
    order : ndarray of int, optional
        ``order[new] = old`` syllable relabelling (from
        `behavhmm.analysis.relabel_by_usage`); default: by usage in these data.
    decoding : KeypointDecoding, optional
        ``model.decode(..., smoothed_proba=True)`` of these data, if already
        computed (it is computed here otherwise: one decoding in all).

    Returns
    -------
    results : list of KeypointResults
    order : ndarray of int, shape (n_states,)
    """
    from .analysis import relabel_by_usage, relabel_states
    from .sessions import session_bounds, session_mask

    dec = decoding
    if dec is None or dec.smoothed_probs is None:
        dec = model.decode(
            coordinates, confidence=confidence, session_starts=session_starts, smoothed_proba=True
        )
    probs = np.asarray(dec.smoothed_probs)
    if order is None:
        fixed = len(getattr(model, "class_names_", ()))  # hand-labelled classes keep their numbers
        _, order = relabel_by_usage(dec.states, model.n_states, fixed=fixed)
    order = np.asarray(order)
    syllables = relabel_states(dec.states, order).astype(np.int32)
    probs = probs[:, order]
    begin, end = session_bounds(session_mask(session_starts, len(dec.states)))
    n = len(begin)
    sources = sources or [None] * n
    fps_list = list(fps) if isinstance(fps, list | tuple | np.ndarray) else [fps] * n
    out = []
    for i, (a, b) in enumerate(zip(begin, end, strict=True)):
        rate = fps_list[i]
        frames = np.arange(b - a, dtype=float)
        out.append(
            KeypointResults(
                name=names[i],
                source=sources[i],
                fps=rate,
                timestamps=frames / rate if rate else frames,
                syllables=syllables[a:b],
                latents=np.asarray(dec.latents[a:b]),
                centroid=np.asarray(dec.centroid[a:b]),
                heading=np.asarray(dec.heading[a:b]),
                probabilities=probs[a:b],
            )
        )
    return out, order


def write_keypoint_results(results, out_dir, *, attrs: dict | None = None) -> dict:
    """Write results as ``results.h5`` (all sessions) and one ``<session>.csv`` each, atomically.

    The HDF5 file holds, per session, a group ``<name>`` with datasets
    ``syllables``, ``latents``, ``centroid``, ``heading``, ``probabilities``
    and ``timestamps`` (attributes ``source``, ``fps``); ``attrs`` go on the
    file. Each CSV has columns ``frame, time_s, syllable, centroid_x,
    centroid_y[, centroid_z], heading, pc0, pc1, ...`` (probabilities only
    in the HDF5 file).

    Parameters
    ----------
    results : list of KeypointResults
    out_dir : str or path
    attrs : dict, optional
        Scalars or strings stored on the HDF5 file.

    Returns
    -------
    dict
        ``{"h5": path, "csv": [paths]}``.
    """
    import h5py
    import pandas as pd

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h5_path = out_dir / "results.h5"
    with atomic_path(h5_path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if not isinstance(value, dict | list) else json.dumps(value)
        for r in results:
            g = f.create_group(r.name)
            g.attrs["source"] = r.source or ""
            g.attrs["fps"] = float(r.fps) if r.fps else np.nan
            for field in (
                "timestamps",
                "syllables",
                "latents",
                "centroid",
                "heading",
                "probabilities",
            ):
                g.create_dataset(field, data=np.asarray(getattr(r, field)), compression="gzip")
    csvs = []
    for r in results:
        dims = ["x", "y", "z"][: r.centroid.shape[1]]
        table = pd.DataFrame(
            {"frame": np.arange(len(r.syllables)), "time_s": r.timestamps, "syllable": r.syllables}
        )
        for j, d in enumerate(dims):
            table[f"centroid_{d}"] = r.centroid[:, j]
        table["heading"] = r.heading
        for j in range(r.latents.shape[1]):
            table[f"pc{j}"] = r.latents[:, j]
        path = out_dir / f"{r.name}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        csvs.append(path)
    return {"h5": h5_path, "csv": csvs}


def read_keypoint_results(path) -> list[KeypointResults]:
    """Read a ``results.h5`` written by `write_keypoint_results`.

    Returns
    -------
    list of KeypointResults
    """
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        for name in f:
            g = f[name]
            fps = float(g.attrs["fps"])
            out.append(
                KeypointResults(
                    name=name,
                    source=str(g.attrs["source"]) or None,
                    fps=None if np.isnan(fps) else fps,
                    **{
                        k: np.asarray(g[k][()])
                        for k in (
                            "timestamps",
                            "syllables",
                            "latents",
                            "centroid",
                            "heading",
                            "probabilities",
                        )
                    },
                )
            )
    return out


def plot_keypoint_summary(model, results, out_dir) -> list[Path]:
    """Save the figures of a keypoint fit: syllable usage, durations, fit progress.

    Parameters
    ----------
    model : fitted KeypointSLDS
    results : list of KeypointResults
    out_dir : str or path

    Returns
    -------
    list of Path
        ``syllable_usage.png``, ``syllable_durations.png``, ``fit_progress.png``.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .analysis import syllable_usage
    from .plotting import plot_durations, plot_fit_history, plot_usage

    out_dir = Path(out_dir)
    syllables = np.concatenate([r.syllables for r in results])
    starts = np.zeros(len(syllables), bool)
    starts[np.cumsum([0] + [len(r.syllables) for r in results[:-1]])] = True
    fps = results[0].fps if all(r.fps == results[0].fps for r in results) else None
    paths = []
    usage = syllable_usage(
        syllables, starts, n_states=model.n_states, session_names=[r.name for r in results]
    )
    ax = plot_usage(usage, max_syllables=25, min_usage=0.001)
    ax.set_title("syllable usage (relabelled by frequency)")
    paths.append(out_dir / "syllable_usage.png")
    ax.figure.savefig(paths[-1], dpi=110)
    ax = plot_durations(syllables, starts, fps=fps)
    paths.append(out_dir / "syllable_durations.png")
    ax.figure.savefig(paths[-1], dpi=110)
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.2), layout="constrained")
    ar = np.asarray(getattr(model, "ar_log_likelihood_history_", np.zeros(0)))
    if len(ar):
        axes[0].plot(np.arange(1, len(ar) + 1), ar, color="C2")
    axes[0].set_xlabel("sweep")
    axes[0].set_ylabel("log-likelihood of the PC scores (nats)")
    axes[0].set_title("AR-only stage")
    plot_fit_history(model, axes[1:], fps=fps)
    axes[1].set_title("full model")
    axes[2].set_title("median syllable duration")
    paths.append(out_dir / "fit_progress.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close("all")
    return paths
