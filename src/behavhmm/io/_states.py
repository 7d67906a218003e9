"""Fitted states back on the pose's time axis: a movement-style NetCDF and LISBET one-hot CSVs."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from .._files import atomic_path

__all__ = ["load_states", "save_states", "states_to_dataset", "write_annotation_csvs"]


def states_to_dataset(
    states,
    probabilities=None,
    *,
    time=None,
    individuals=None,
    fps: float | None = None,
    source: str | None = None,
):
    """Per-frame states (and probabilities) as an xarray dataset on the pose's time axis.

    Laid out like a ``movement`` dataset: a ``time`` dimension (seconds when
    ``time`` or ``fps`` gives them, else frames), an ``individual``
    dimension, and attributes ``fps``, ``time_unit``, ``source_software``
    and ``ds_type="states"``.

    Parameters
    ----------
    states : array-like of int, shape (n_time_bins,) or (n_time_bins, n_individuals)
        State of each frame (-1: not decoded), e.g. ``model.decode_state(...,
        state_format="index")``; one column per animal for separately modelled
        animals.
    probabilities : array-like of float, optional
        ``smooth_proba`` output (NaN rows where not decoded), of shape
        (n_time_bins, n_states) or (n_time_bins, n_individuals, n_states).
    time : array-like of shape (n_time_bins,), optional
        Time of each frame in seconds (``KeypointData.timestamps``).
    individuals : sequence of str, optional
        Animal names (default ``"id_0"`` ..., or one name for a stacked model).
    fps : float, optional
    source : str, optional
        Where the poses came from (stored as an attribute).

    Returns
    -------
    xarray.Dataset
        ``state`` (time, individual) int64 and, when given,
        ``state_probability`` (time, individual, state_id) float64.

    Raises
    ------
    ValueError
        For mismatched shapes or names.
    """
    import xarray as xr

    z = np.asarray(states)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or not np.issubdtype(z.dtype, np.integer):
        raise ValueError(
            f"states must be integers of shape (n_time_bins,) or (n_time_bins, n_individuals), got "
            f"{z.dtype} {z.shape}."
        )
    n_time, n_ind = z.shape
    names = (
        [f"id_{i}" for i in range(n_ind)] if individuals is None else [str(i) for i in individuals]
    )
    if len(names) != n_ind:
        raise ValueError(f"individuals has {len(names)} names for {n_ind} state columns.")
    if time is not None:
        t = np.asarray(time, dtype=float)
        if t.shape != (n_time,):
            raise ValueError(f"time must have shape ({n_time},), got {t.shape}.")
        unit = "seconds"
    elif fps is not None:
        t, unit = np.arange(n_time) / float(fps), "seconds"
    else:
        t, unit = np.arange(n_time, dtype=float), "frames"
    data = {"state": (("time", "individual"), z.astype(np.int64))}
    coords = {"time": t, "individual": names}
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=float)
        if p.ndim == 2:
            p = p[:, None, :]
        if p.ndim != 3 or p.shape[:2] != (n_time, n_ind):
            raise ValueError(
                f"probabilities must have shape ({n_time}, [{n_ind},] n_states), got {p.shape}."
            )
        data["state_probability"] = (("time", "individual", "state_id"), p)
        coords["state_id"] = np.arange(p.shape[2])
    attrs = {"ds_type": "states", "source_software": "behavhmm", "time_unit": unit}
    if fps is not None:
        attrs["fps"] = float(fps)
    if source is not None:
        attrs["source_file"] = str(source)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def save_states(path: str | PathLike, dataset) -> Path:
    """Write a [`states_to_dataset`][behavhmm.io.states_to_dataset] dataset to NetCDF, atomically.

    Returns
    -------
    Path
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp)
    return path


def load_states(path: str | PathLike):
    """Read a states NetCDF file written by [`save_states`][behavhmm.io.save_states].

    Raises
    ------
    ValueError
        If the file has no ``state`` variable.
    """
    import xarray as xr

    with xr.open_dataset(path) as ds:
        ds = ds.load()
    if "state" not in ds.data_vars:
        raise ValueError(f"{path} has no 'state' variable; it is not a behavhmm states file.")
    return ds


def write_annotation_csvs(
    folder: str | PathLike,
    states,
    n_states: int,
    *,
    session_starts=None,
    names=None,
    tag: str | None = None,
) -> list[Path]:
    """LISBET-style one-hot annotation tables.

    One ``<name>/machineAnnotation_hmm{K}.csv`` is written per session.

    Parameters
    ----------
    folder : str or path-like
    states : array-like of int, shape (n_time_bins,)
        -1 gives a row of zeros.
    n_states : int
    session_starts : bool array-like of shape (n_time_bins,) or int array-like, optional
    names : sequence of str, optional
        One per session (default ``seq0`` ...).
    tag : str, optional
        File name part after ``machineAnnotation_`` (default ``hmm{n_states}``).

    Returns
    -------
    list of Path
    """
    import pandas as pd

    from ..sessions import session_mask

    z = np.asarray(states)
    mask = session_mask(session_starts, z.shape[0])
    starts = np.flatnonzero(mask)
    ends = np.append(starts[1:], z.shape[0])
    names = [f"seq{i}" for i in range(len(starts))] if names is None else [str(n) for n in names]
    if len(names) != len(starts):
        raise ValueError(f"names has {len(names)} entries for {len(starts)} sessions.")
    written = []
    for name, a, b in zip(names, starts, ends, strict=True):
        block = z[a:b]
        onehot = np.zeros((block.shape[0], int(n_states)), dtype=np.int64)
        ok = block >= 0
        onehot[np.flatnonzero(ok), block[ok]] = 1
        path = Path(folder) / name / f"machineAnnotation_{tag or f'hmm{n_states}'}.csv"
        with atomic_path(path) as tmp:
            pd.DataFrame(onehot, columns=[f"Motif_{i}" for i in range(int(n_states))]).to_csv(tmp)
        written.append(path)
    return written
