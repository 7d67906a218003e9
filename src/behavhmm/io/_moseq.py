"""MoSeq PC-score files (moseq2-pca's HDF5 layout), index files, and syllable results files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import atomic_path

__all__ = [
    "PCScores",
    "load_pc_scores",
    "load_index_groups",
    "write_syllable_results",
    "read_syllable_results",
]

_NAN_POLICIES = ("interpolate", "split")


@dataclass
class PCScores:
    """PC scores of several sessions, concatenated on one time axis.

    Attributes
    ----------
    scores : ndarray of shape (n_time_bins, n_components)
        The first ``n_components`` PC scores of every frame, sessions in the
        order of ``sessions``.
    session_starts : ndarray of bool, shape (n_time_bins,)
        True at each session's (or piece's) first frame.
    sessions : list of str
        Session identifiers (the file's uuids), one per session.
    session_of_row : ndarray of int, shape (n_time_bins,)
        Index into ``sessions`` of every row.
    frame_index : ndarray of int, shape (n_time_bins,)
        Row of each frame within its session in the file.
    filled : ndarray of bool, shape (n_time_bins,)
        Rows that were NaN in the file (dropped frames) and were interpolated.
    groups : ndarray or None
        Group label of every session (from an index file), or None.
    """

    scores: np.ndarray
    session_starts: np.ndarray
    sessions: list
    session_of_row: np.ndarray
    frame_index: np.ndarray
    filled: np.ndarray
    groups: np.ndarray | None = None

    @property
    def session_groups(self):
        """Group label of each piece (session start), for a model's ``groups``."""
        if self.groups is None:
            return None
        return self.groups[self.session_of_row[self.session_starts]]


def _interpolate_rows(block: np.ndarray) -> np.ndarray:
    """Linear interpolation of all-NaN rows (nearest value at the edges)."""
    nan = np.isnan(block).any(axis=1)
    if not nan.any():
        return block
    if nan.all():
        raise ValueError("a session has no finite PC scores.")
    good = np.flatnonzero(~nan)
    out = block.copy()
    for j in range(block.shape[1]):
        out[nan, j] = np.interp(np.flatnonzero(nan), good, block[good, j])
    return out


def load_pc_scores(
    path,
    n_components: int | None = 10,
    *,
    index=None,
    sessions=None,
    nan_policy: str = "interpolate",
) -> PCScores:
    """Read PC scores written by moseq2-pca (``scores/<uuid>`` datasets in an HDF5 file).

    Parameters
    ----------
    path : str or path
        HDF5 file with a ``scores`` group holding one ``(n_frames, n_pcs)``
        dataset per session (moseq2's ``pca_scores.h5``).
    n_components : int or None, default 10
        Keep the first ``n_components`` PCs (None: all).
    index : str or path, optional
        A moseq2 index file (YAML with ``files: [{uuid, group, ...}]``) giving
        each session's group.
    sessions : list of str, optional
        Sessions to read, in this order; default all, sorted by uuid.
    nan_policy : {"interpolate", "split"}, default "interpolate"
        Rows that are NaN (dropped frames) are linearly interpolated, or the
        session is split there into pieces (each piece then starts a new
        chain).

    Returns
    -------
    PCScores

    Raises
    ------
    FileNotFoundError
        If ``path`` (or ``index``) does not exist.
    ValueError
        If the file is not a readable HDF5 file (truncated or damaged), has
        no ``scores`` group, a session is missing or is not a 2-D table of
        finite-or-NaN scores, sessions differ in their number of PCs, or
        ``n_components`` is too large. The message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No PC-score file at {path}.")
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {_NAN_POLICIES}, got {nan_policy!r}.")
    names, blocks = _read_score_blocks(path, sessions)
    blocks = _checked_blocks(path, names, blocks, n_components)
    scores, starts, owner, frame, filled = [], [], [], [], []
    for i, block in enumerate(blocks):
        for values, idx, was_nan in _pieces(block, nan_policy):
            s = np.zeros(len(values), bool)
            s[0] = True
            scores.append(values)
            starts.append(s)
            owner.append(np.full(len(values), i))
            frame.append(idx)
            filled.append(was_nan)
    groups = None
    if index is not None:
        mapping = load_index_groups(index)
        groups = np.asarray([mapping.get(name, "default") for name in names])
    return PCScores(
        scores=np.concatenate(scores),
        session_starts=np.concatenate(starts),
        sessions=names,
        session_of_row=np.concatenate(owner),
        frame_index=np.concatenate(frame),
        filled=np.concatenate(filled),
        groups=groups,
    )


def _read_score_blocks(path: Path, sessions):
    """The session names (``sessions``, default all sorted) and their ``scores/<uuid>`` arrays."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "scores" not in f or not isinstance(f["scores"], h5py.Group):
                raise ValueError(
                    f"{path} has no 'scores' group (expected moseq2-pca's layout scores/<uuid>)."
                )
            available = sorted(f["scores"].keys())
            names = available if sessions is None else list(sessions)
            missing = [s for s in names if s not in available]
            if missing:
                raise ValueError(f"{path} has no session(s) {missing}; available: {available}.")
            blocks = [np.asarray(f["scores"][name][()], float) for name in names]
    except (OSError, KeyError, TypeError, RuntimeError) as exc:  # h5py on a damaged file
        raise ValueError(
            f"{path} is not a readable HDF5 PC-score file (truncated or damaged?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return names, blocks


def _checked_blocks(path: Path, names, blocks, n_components):
    """The blocks cut to ``n_components`` columns, after checking they are finite-or-NaN tables of
    one width."""
    bad = [name for name, b in zip(names, blocks, strict=True) if b.ndim != 2 or not len(b)]
    if bad:
        raise ValueError(f"{path}: scores/{bad[0]} is not a (n_frames, n_pcs) table.")
    if any(np.isinf(b).any() for b in blocks):
        raise ValueError(f"{path} holds infinite PC scores (damaged file?).")
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        raise ValueError(f"sessions of {path} have different numbers of PCs: {sorted(widths)}.")
    width = widths.pop()
    if n_components is not None:
        if n_components > width:
            raise ValueError(f"n_components={n_components} but {path} holds {width} PCs.")
        blocks = [b[:, :n_components] for b in blocks]
    return blocks


def _pieces(block: np.ndarray, nan_policy: str) -> list:
    """``(values, rows, was_nan)`` of a session: one piece with NaN rows interpolated, or the
    pieces between NaN rows."""
    nan = np.isnan(block).any(axis=1)
    rows = np.arange(len(block))
    if nan_policy == "interpolate":
        return [(block if not nan.any() else _interpolate_rows(block), rows, nan)]
    keep = ~nan
    cuts = np.flatnonzero(np.diff(keep.astype(int)) != 0) + 1
    return [
        (block[seg], rows[seg], np.zeros(len(seg), bool))
        for seg in np.split(rows, cuts)
        if keep[seg[0]]
    ]


def load_index_groups(path) -> dict:
    """``{uuid: group}`` from a moseq2 index file (YAML, ``files: [{uuid, group}]``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not plain YAML (``yaml.safe_load``: Python tags are
        refused, nothing is constructed from them) or has no ``files`` list of
        entries with ``uuid``.
    """
    try:
        import yaml
    except ImportError as exc:
        raise ImportError(
            "reading moseq2 index files needs PyYAML: pip install 'behavhmm[io]'."
        ) from exc

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No index file at {path}.")
    try:
        with open(path) as fh:
            content = yaml.safe_load(
                fh
            )  # plain YAML only: tags such as !!python/object are refused
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable YAML index file: {exc}") from None
    files = content.get("files") if isinstance(content, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and "uuid" in f for f in files):
        raise ValueError(
            f"{path} is not a moseq2 index file (expected 'files: [{{uuid: ..., group: ...}}]')."
        )
    return {str(f["uuid"]): str(f.get("group", "default")) for f in files}


def write_syllable_results(
    path, labels_by_session: dict, *, attrs: dict | None = None, extra: dict | None = None
):
    """Write syllable labels per session to HDF5 (atomically).

    Layout: ``labels/<session>`` int32 arrays (-1 for unlabelled frames) and,
    for every name in ``extra`` (e.g. ``"smoothed_probs"``), ``<name>/<session>``
    arrays; ``attrs`` are stored on the file (model path, kappa, ...).

    Parameters
    ----------
    path : str or path
    labels_by_session : dict of str to int array
    attrs : dict, optional
        Scalar or string attributes of the file.
    extra : dict of str to dict of str to array, optional

    Returns
    -------
    Path
    """
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, labels in labels_by_session.items():
            f.create_dataset(
                f"labels/{name}", data=np.asarray(labels, np.int32), compression="gzip"
            )
        for group, arrays in (extra or {}).items():
            for name, arr in arrays.items():
                f.create_dataset(f"{group}/{name}", data=np.asarray(arr), compression="gzip")
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


def read_syllable_results(path) -> dict:
    """``{session: labels}`` from a file written by :func:`write_syllable_results`."""
    import h5py

    with h5py.File(path, "r") as f:
        return {name: np.asarray(f["labels"][name][()]) for name in f["labels"]}
