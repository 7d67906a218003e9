"""Syllables without video: typical keypoint trajectories, a dendrogram of their distances, and grid
movies.

Everything is drawn from keypoints alone, in the body frame of each
syllable's onset (centred on the centroid, heading along +x). Animations go
through matplotlib's writers: ``.gif`` with Pillow (always available with
matplotlib), ``.mp4`` with ffmpeg when it is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import _axes

__all__ = [
    "plot_typical_trajectories",
    "animate_typical_trajectories",
    "grid_movie",
    "plot_syllable_dendrogram",
]


def _grid(n_panels: int, ncols: int, size: float = 2.0):
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n_panels:]:
        ax.set_axis_off()
    return fig, axes.flat[:n_panels]


def _limits(points: np.ndarray, margin: float = 0.1):
    finite = points[np.isfinite(points).all(axis=-1)]
    if not len(finite):
        return (-1, 1), (-1, 1)
    lo, hi = finite[:, :2].min(axis=0), finite[:, :2].max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + margin) + 1e-9
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def _draw_pose(ax, pose, edges, color, alpha=1.0, size=6):
    """One frame's keypoints (x, y) and its skeleton edges."""
    artists = [ax.scatter(pose[:, 0], pose[:, 1], s=size, color=color, alpha=alpha, zorder=3)]
    for i, j in edges or ():
        (line,) = ax.plot(pose[[i, j], 0], pose[[i, j], 1], color=color, alpha=alpha, lw=1)
        artists.append(line)
    return artists


def _selected(traj, syllables, max_syllables):
    available = np.flatnonzero(np.isfinite(traj.trajectories).all(axis=(1, 2, 3)))
    chosen = (
        available
        if syllables is None
        else np.asarray([s for s in syllables if s in set(available)], int)
    )
    return chosen[:max_syllables] if max_syllables is not None else chosen


def plot_typical_trajectories(
    trajectories,
    syllables=None,
    *,
    edges=None,
    n_poses: int = 6,
    ncols: int = 5,
    max_syllables: int | None = 20,
    cmap: str = "viridis",
):
    """A grid of panels, one per syllable: poses along its typical trajectory, coloured by time.

    Parameters
    ----------
    trajectories : TypicalTrajectories
        From `behavhmm.analysis.typical_trajectories`.
    syllables : sequence of int, optional
        Syllables to draw (default: all with a trajectory).
    edges : sequence of (int, int), optional
        Skeleton: pairs of keypoint indices joined by lines.
    n_poses : int, default 6
        Poses drawn per panel, evenly spaced from the onset to the window's end.
    ncols : int, default 5
    max_syllables : int or None, default 20
    cmap : str, default "viridis"
        The onset's pose dark (purple), the last pose light (yellow).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no syllable has a trajectory.
    """
    import matplotlib.pyplot as plt

    chosen = _selected(trajectories, syllables, max_syllables)
    if not len(chosen):
        raise ValueError(
            "no syllable has a typical trajectory (too few instances): nothing to plot."
        )
    traj = trajectories.trajectories
    start = int(np.flatnonzero(trajectories.offsets == 0)[0]) if 0 in trajectories.offsets else 0
    frames = np.unique(
        np.linspace(start, len(trajectories.offsets) - 1, n_poses).round().astype(int)
    )
    colors = plt.get_cmap(cmap)(np.linspace(0.0, 1.0, len(frames)))
    xlim, ylim = _limits(traj[chosen][:, frames].reshape(-1, traj.shape[-1]))
    fig, axes = _grid(len(chosen), ncols)
    for ax, k in zip(axes, chosen, strict=True):
        for f, color in zip(frames, colors, strict=True):
            _draw_pose(ax, traj[k, f], edges, color)
        ax.set(xlim=xlim, ylim=ylim, aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"syllable {k} (n={trajectories.n_instances[k]})", fontsize=8)
    return fig


def _save_animation(fig, update, n_frames, path, fps):
    from matplotlib import animation

    path = Path(path)
    if path.suffix.lower() == ".gif":
        writer = animation.PillowWriter(fps=fps)
    elif path.suffix.lower() == ".mp4":
        if not animation.FFMpegWriter.isAvailable():
            raise RuntimeError("writing .mp4 needs ffmpeg on the PATH; write a .gif instead.")
        writer = animation.FFMpegWriter(fps=fps)
    else:
        raise ValueError(f"path must end in .gif or .mp4, got {path.name!r}.")
    import os

    anim = animation.FuncAnimation(fig, update, frames=n_frames, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(
        f".{path.stem}.partial{path.suffix}"
    )  # the writers pick the format by suffix
    try:
        anim.save(partial, writer=writer)
        os.replace(partial, path)  # atomic: no half-written movie under the final name
    finally:
        if partial.exists():
            partial.unlink()
    return path


def animate_typical_trajectories(
    trajectories,
    path,
    syllables=None,
    *,
    edges=None,
    fps: float | None = None,
    ncols: int = 5,
    max_syllables: int | None = 20,
):
    """Animate the typical trajectories (one panel per syllable) to a GIF or MP4.

    Parameters
    ----------
    trajectories : TypicalTrajectories
    path : str or path
        ``.gif`` (Pillow) or ``.mp4`` (ffmpeg).
    syllables, edges, ncols, max_syllables
        As in `plot_typical_trajectories`.
    fps : float, optional
        Playback rate (default: the trajectories' fps, else 10).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        For another suffix, or no trajectory to draw.
    RuntimeError
        For ``.mp4`` without ffmpeg.
    """
    import matplotlib.pyplot as plt

    chosen = _selected(trajectories, syllables, max_syllables)
    if not len(chosen):
        raise ValueError(
            "no syllable has a typical trajectory (too few instances): nothing to animate."
        )
    traj = trajectories.trajectories
    xlim, ylim = _limits(traj[chosen].reshape(-1, traj.shape[-1]))
    fig, axes = _grid(len(chosen), ncols)
    offsets = trajectories.offsets

    def update(f):
        for ax, k in zip(axes, chosen, strict=True):
            ax.clear()
            _draw_pose(ax, traj[k, f], edges, "C3" if offsets[f] >= 0 else "0.5", size=10)
            ax.set(xlim=xlim, ylim=ylim, aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"syllable {k}", fontsize=8)
        return []

    out = _save_animation(fig, update, len(offsets), path, fps or trajectories.fps or 10.0)
    plt.close(fig)
    return out


def grid_movie(
    states,
    coordinates,
    syllable: int,
    path,
    session_starts=None,
    *,
    anterior=0,
    posterior=-1,
    bodyparts=None,
    edges=None,
    n_examples: int = 9,
    pre: int = 5,
    post: int = 15,
    fps: float = 10.0,
    ncols: int = 3,
    random_state=0,
):
    """A keypoints-only "grid movie": example instances of one syllable, side by side, in their
    onset's body frame.

    Parameters
    ----------
    states : int array-like of shape (n_time_bins,)
    coordinates : array-like of shape (n_time_bins, n_keypoints, n_dims)
    syllable : int
    path : str or path
        ``.gif`` or ``.mp4``.
    session_starts : optional
    anterior, posterior, bodyparts
        As in `egocentric_align`.
    edges : sequence of (int, int), optional
        Skeleton.
    n_examples : int, default 9
        Instances drawn at random among those with a complete window.
    pre, post : int, default 5 and 15
        Frames shown before and after each onset; keypoints are grey before
        the onset, red while the syllable lasts, black after.
    fps : float, default 10
        Playback rate.
    ncols : int, default 3
    random_state : int, default 0

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If the syllable has no instance with a complete window.
    """
    import matplotlib.pyplot as plt

    from ..analysis.trajectories import _egocentric_windows, syllable_instances

    coords = np.asarray(coordinates, float)
    onsets, labels, lengths = syllable_instances(states, session_starts, pre=pre, post=post)
    offsets = np.arange(-pre, post + 1)
    keep = (labels == syllable) & np.isfinite(coords).all(axis=(1, 2))[
        onsets[:, None] + offsets
    ].all(axis=1)
    onsets, lengths = onsets[keep], lengths[keep]
    if not len(onsets):
        raise ValueError(
            f"syllable {syllable} has no instance with {pre} frames before and {post} after its "
            "onset."
        )
    pick = np.sort(
        np.random.default_rng(random_state).choice(
            len(onsets), min(n_examples, len(onsets)), replace=False
        )
    )
    windows = _egocentric_windows(coords, onsets[pick], offsets, anterior, posterior, bodyparts)
    xlim, ylim = _limits(windows.reshape(-1, coords.shape[-1]))
    fig, axes = _grid(len(pick), ncols)

    def update(f):
        for i, ax in enumerate(axes):
            ax.clear()
            color = "0.6" if offsets[f] < 0 else ("C3" if offsets[f] < lengths[pick[i]] else "k")
            _draw_pose(ax, windows[i, f], edges, color, size=10)
            ax.set(xlim=xlim, ylim=ylim, aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"frame {onsets[pick[i]]}", fontsize=7)
        fig.suptitle(f"syllable {syllable}", fontsize=9)
        return []

    out = _save_animation(fig, update, len(offsets), path, fps)
    plt.close(fig)
    return out


def plot_syllable_dendrogram(distance, ax=None, *, method: str = "average"):
    """Dendrogram of syllables by the distance of their typical trajectories (scipy).

    Parameters
    ----------
    distance : array-like of shape (n_states, n_states)
        From `behavhmm.analysis.syllable_similarity`.
    ax : matplotlib.axes.Axes, optional
    method : str, default "average"

    Returns
    -------
    matplotlib.axes.Axes
    """
    from scipy.cluster.hierarchy import dendrogram

    from ..analysis.trajectories import cluster_syllables

    tree, kept = cluster_syllables(distance, method=method)
    ax = _axes(ax, figsize=(max(4.0, 0.25 * len(kept) + 1.5), 3.2))
    dendrogram(
        tree, labels=[str(k) for k in kept], ax=ax, color_threshold=0, above_threshold_color="0.3"
    )
    ax.set_xlabel("syllable")
    ax.set_ylabel("trajectory distance (keypoint units)")
    return ax
