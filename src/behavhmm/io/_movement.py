"""``movement`` poses datasets (xarray), from NetCDF files or in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._keypoints import KeypointData

# movement >= 0.17 names the dimensions in the singular; earlier versions in the plural.
_DIM_ALIASES = {"keypoint": ("keypoint", "keypoints"), "individual": ("individual", "individuals")}


def _require_xarray():
    try:
        import xarray as xr
    except ImportError as exc:
        raise ImportError(
            "reading movement NetCDF files needs xarray and netCDF4 (or h5netcdf): pip install "
            "'behavhmm[io]'."
        ) from exc
    return xr


def _dim(ds, kind: str) -> str | None:
    for name in _DIM_ALIASES[kind]:
        if name in ds.dims:
            return name
    return None


def dataset_to_sessions(ds, *, source: str | None, fps: float | None = None) -> list[KeypointData]:
    """One `KeypointData` per individual of a ``movement`` poses dataset.

    Expects the layout of movement's documentation: data variables
    ``position`` (time, space, keypoint(s), individual(s)) and ``confidence``
    (time, keypoint(s), individual(s)), in any dimension order, and the
    attributes ``fps``, ``time_unit`` ("seconds" or "frames"),
    ``source_software`` and ``ds_type`` ("poses").
    """
    where = source or "the dataset"
    keypoint_dim, individual_dim = _check_poses(ds, where)
    position = ds["position"]
    if individual_dim is None:
        position = position.expand_dims("individual")
        individual_dim = "individual"
    position = position.transpose(individual_dim, "time", keypoint_dim, "space")
    space = (
        [str(s) for s in ds["space"].values]
        if "space" in ds.coords
        else ["x", "y", "z"][: ds.sizes["space"]]
    )
    if space not in (["x", "y"], ["x", "y", "z"]):
        raise ValueError(f"{where}: the space coordinate must be x, y[, z], got {space}.")
    xyz = np.asarray(position.values, dtype=np.float64)
    n_individuals, n_frames, n_keypoints, _ = xyz.shape
    conf = _confidence(ds, individual_dim, keypoint_dim, xyz.shape[:3])
    bodyparts = [str(k) for k in position[keypoint_dim].values]
    individuals = (
        [str(i) for i in position[individual_dim].values]
        if individual_dim in position.coords
        else [f"id_{i}" for i in range(n_individuals)]
    )
    session_fps, frames, timestamps = _time_axis(ds, fps, n_frames, where)
    video = ds.attrs.get("video_path")
    return [
        KeypointData(
            coordinates=xyz[i],
            confidence=conf[i],
            bodyparts=bodyparts,
            individual=individuals[i],
            fps=session_fps,
            frames=frames,
            timestamps=timestamps,
            source=source,
            format="movement",
            video=None if video is None else str(video),
        )
        for i in range(n_individuals)
    ]


def _check_poses(ds, where: str):
    """The keypoint and individual dimensions (None when absent) of a poses dataset; raises when
    ``ds`` is not one."""
    ds_type = ds.attrs.get("ds_type", "poses")
    if ds_type != "poses":
        raise ValueError(
            f"{where} is a movement {ds_type!r} dataset; behavhmm reads 'poses' datasets."
        )
    if "position" not in ds.data_vars:
        raise ValueError(
            f"{where} has no 'position' variable, so it is not a movement poses dataset "
            f"(data variables: {list(ds.data_vars)})."
        )
    keypoint_dim = _dim(ds, "keypoint")
    individual_dim = _dim(ds, "individual")
    if "time" not in ds.dims or "space" not in ds.dims or keypoint_dim is None:
        raise ValueError(
            f"{where}: a movement poses dataset has dimensions time, space, keypoint and "
            "individual "
            f"(or keypoints/individuals), got {tuple(ds.dims)}."
        )
    return keypoint_dim, individual_dim


def _confidence(ds, individual_dim: str, keypoint_dim: str, shape) -> np.ndarray:
    """Confidence as (individual, time, keypoint); ones when absent or all NaN."""
    if "confidence" not in ds.data_vars:
        return np.ones(shape)
    conf_da = ds["confidence"]
    if individual_dim not in conf_da.dims:
        conf_da = conf_da.expand_dims(individual_dim)
    conf = np.asarray(
        conf_da.transpose(individual_dim, "time", keypoint_dim).values, dtype=np.float64
    )
    if np.isnan(conf).all():  # movement fills confidence with NaN when the source had none
        conf = np.ones_like(conf)
    return conf


def _file_fps(ds) -> float | None:
    """The dataset's ``fps`` attribute when it is a positive finite number, else None."""
    file_fps = ds.attrs.get("fps")
    try:
        file_fps = None if file_fps is None else float(file_fps)
    except (TypeError, ValueError):
        file_fps = None
    if file_fps is not None and not (np.isfinite(file_fps) and file_fps > 0):
        file_fps = None
    return file_fps


def _time_axis(ds, fps: float | None, n_frames: int, where: str):
    """``(fps, frames, timestamps)`` of the sessions from the time coordinate and its unit."""
    file_fps = _file_fps(ds)
    time_unit = str(ds.attrs.get("time_unit", "frames" if file_fps is None else "seconds"))
    t = (
        np.asarray(ds["time"].values, dtype=np.float64)
        if "time" in ds.coords
        else np.arange(n_frames, dtype=float)
    )
    session_fps = fps if fps is not None else file_fps
    if time_unit == "seconds":
        timestamps = t
        rate = file_fps if file_fps is not None else fps
        frames = None if rate is None else np.round(t * rate).astype(np.int64)
    elif time_unit == "frames":
        frames = np.round(t).astype(np.int64)
        timestamps = None
    else:
        raise ValueError(f"{where}: time_unit must be 'seconds' or 'frames', got {time_unit!r}.")
    return session_fps, frames, timestamps


def load_movement(path: Path, *, fps: float | None = None) -> list[KeypointData]:
    """All individuals of a ``movement`` NetCDF file."""
    xr = _require_xarray()
    with xr.open_dataset(path) as ds:
        ds.load()
        return dataset_to_sessions(ds, source=str(path), fps=fps)
