"""Anipose triangulation CSV files (``pose-3d/*.csv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._keypoints import KeypointData

#: Per-bodypart columns of an Anipose CSV besides the coordinates.
ANIPOSE_QUALITY_SUFFIXES = ("_error", "_ncams", "_score")


def anipose_bodyparts(columns) -> list[str]:
    """Bodyparts of an Anipose table, in column order.

    A bodypart has ``<name>_x`` and ``<name>_y`` columns plus at least one of
    ``<name>_error``, ``<name>_ncams`` or ``<name>_score``; this keeps
    Anipose's coordinate-frame columns (``M_00`` ... ``M_22``, ``center_0``
    ... ``center_2``, ``fnum``) out, even if a writer names the centre
    ``center_x``.
    """
    columns = [str(c) for c in columns]
    present = set(columns)
    names = []
    for c in columns:
        if not c.endswith("_x"):
            continue
        name = c[:-2]
        if f"{name}_y" in present and any(
            f"{name}{s}" in present for s in ANIPOSE_QUALITY_SUFFIXES
        ):
            names.append(name)
    return names


def load_anipose(path: Path) -> list[KeypointData]:
    """The one individual of an Anipose CSV.

    Coordinates are ``<bodypart>_x, _y, _z`` (2-D when no ``_z`` column
    exists), in the calibration's units after Anipose's optional change of
    coordinate frame (the ``M_ij`` rotation and ``center_i`` offset columns
    describe it; the coordinates are already transformed). Confidence is
    ``<bodypart>_score`` (Anipose writes NaN where fewer than two cameras saw
    the point; then it is 0). ``fnum`` gives the frame numbers.
    """
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas comes with pynapple
        raise ImportError(
            "reading Anipose files needs pandas: pip install 'behavhmm[io]'."
        ) from exc
    df = pd.read_csv(path)
    bodyparts = anipose_bodyparts(df.columns)
    if not bodyparts:
        raise ValueError(
            f"{path} is not an Anipose CSV: no <bodypart>_x/_y columns with _error, _ncams or "
            "_score beside them."
        )
    has_z = all(f"{b}_z" in df.columns for b in bodyparts)
    axes = ("x", "y", "z") if has_z else ("x", "y")
    xyz = np.stack(
        [
            np.stack([df[f"{b}_{a}"].to_numpy(dtype=np.float64) for a in axes], axis=1)
            for b in bodyparts
        ],
        axis=1,
    )
    conf = np.stack(
        [
            df[f"{b}_score"].to_numpy(dtype=np.float64)
            if f"{b}_score" in df.columns
            else np.ones(len(df))
            for b in bodyparts
        ],
        axis=1,
    )
    frames = df["fnum"].to_numpy() if "fnum" in df.columns else None
    if frames is not None and not np.issubdtype(frames.dtype, np.integer):
        frames = None
    return [
        KeypointData(
            coordinates=xyz,
            confidence=conf,
            bodyparts=bodyparts,
            individual="id_0",
            frames=frames,
            source=str(path),
            format="anipose",
        )
    ]
