"""``behavhmm report``: from a keypoint results folder to tables, figures and one HTML page.

Reads what ``fit-keypoints`` / ``apply-keypoints`` wrote (``results.h5``, and
``model.npz`` when present), joins a group index, and writes to one folder:
the frame table, per-syllable statistics, group tests, transition matrices
(CSV); usage, durations, statistics, transition graphs and their group
differences, typical trajectories, a similarity dendrogram and grid movies
(PNG/GIF); and ``index.html``, a page with no external resources that shows
them all by relative links.
"""

from __future__ import annotations

import html
import json
import re
import string
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._files import atomic_path

__all__ = ["read_group_index", "write_report"]

_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title>
<style>
body { font-family: sans-serif; max-width: 70em; margin: 2em auto; color: #222; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; }
.note { color: #555; font-size: 0.9em; }
</style></head>
<body>
<h1>$title</h1>
<p class="note">$summary</p>
$sections
</body></html>
""")


def read_group_index(path) -> dict:
    """Read a group index: a CSV with columns ``session`` (or ``name``) and ``group``.

    Parameters
    ----------
    path : str or path
        One row per session; session names as in the results (the file stem,
        plus ``_<individual>`` for multi-animal files).

    Returns
    -------
    dict
        ``{session: group}``.

    Raises
    ------
    ValueError
        If the columns are missing or a session is listed twice.
    """
    table = pd.read_csv(path, dtype=str)
    key = "session" if "session" in table.columns else "name" if "name" in table.columns else None
    if key is None or "group" not in table.columns:
        raise ValueError(
            f"{path}: a group index needs columns 'session' (or 'name') and 'group', got "
            f"{list(table)}."
        )
    if table[key].duplicated().any():
        raise ValueError(
            f"{path}: sessions listed twice: {sorted(table.loc[table[key].duplicated(), key])}."
        )
    return dict(zip(table[key].str.strip(), table["group"].str.strip(), strict=True))


def _slug(value) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)) or "_"


def write_report(
    results_dir,
    out_dir,
    *,
    groups=None,
    model=None,
    statistic: str = "frequency",
    max_syllables: int = 20,
    smooth_sigma: float = 1.0,
    keypoints: bool = True,
    pre: int = 5,
    post: int = 15,
    movies: bool = True,
    correction: str = "fdr_bh",
) -> Path:
    """Write every table and figure of the analysis of a keypoint results folder, and an HTML page.

    Parameters
    ----------
    results_dir : str or path
        A folder written by ``behavhmm fit-keypoints`` or ``apply-keypoints``.
    out_dir : str or path
        Destination folder (created).
    groups : dict, str or path, optional
        ``{session: group}``, or a CSV read by `read_group_index`. Default:
        one group ``"all"``. Every session of the results needs a group.
    model : str or path, optional
        The model file (default ``results_dir/model.npz`` when present, else
        the model named in ``results.h5``, as ``apply-keypoints`` writes): its
        anterior/posterior keypoints define the heading of trajectories, and a
        syllable mapping from `behavhmm.analysis.merge_syllables` is applied
        to results written before the merge.
    statistic : str, default "frequency"
        The syllable statistic compared between groups and plotted.
    max_syllables : int, default 20
        Syllables shown in the figures.
    smooth_sigma : float, default 1.0
        Kinematic smoothing (frames), see `behavhmm.analysis.frame_table`.
    keypoints : bool, default True
        Reload the pose files named in the results for typical trajectories,
        similarity and grid movies (skipped, with a note, when unreachable).
    pre, post : int, default 5 and 15
        Frames around onsets for trajectories and movies.
    movies : bool, default True
        Write GIF animations (typical trajectories, a grid movie of the most
        used syllable).
    correction : str, default "fdr_bh"
        Multiple-testing correction of the group tests.

    Returns
    -------
    Path
        ``out_dir/index.html``.

    Raises
    ------
    FileNotFoundError
        If ``results.h5`` is missing.
    ValueError
        If a session has no group.
    """
    _use_file_backend()
    from .workflows import read_keypoint_results

    results_dir, out = Path(results_dir), Path(out_dir)
    h5 = results_dir / "results.h5"
    if not h5.is_file():
        raise FileNotFoundError(
            f"no results.h5 in {results_dir} (write one with behavhmm fit-keypoints)."
        )
    out.mkdir(parents=True, exist_ok=True)
    results = read_keypoint_results(h5)
    group_of = _group_of_sessions(results, groups)
    fitted = _fitted_model(model, results_dir, h5)
    report = _Outputs(out)
    n_states = (
        int(fitted.n_states)
        if fitted is not None
        else int(max(r.syllables.max() for r in results) + 1)
    )
    _apply_merges(results, fitted, report.notes)
    options = _Options(statistic, max_syllables, smooth_sigma, pre, post, movies, correction)
    session_groups = [group_of[r.name] for r in results]
    labelled = _Labels(
        z=np.concatenate([r.syllables for r in results]),
        starts=np.cumsum([0] + [len(r.syllables) for r in results[:-1]]),
        n_states=n_states,
        session_groups=session_groups,
        labels=sorted(set(session_groups), key=str),
    )
    coords, individuals, reason = _reload_keypoints(results, h5) if keypoints else (None, None, "")
    usage = _statistics_figures(results, labelled, individuals, options, report)
    _transition_figures(labelled, usage, options.max_syllables, report)
    if keypoints and coords is None:
        report.notes.append(reason)
    elif keypoints:
        _trajectory_figures(labelled, coords, fitted, results[0].fps, options, report)
    return _write_page(report, results, labelled, results_dir)


class _Options(NamedTuple):
    """The keyword options of `write_report` that shape its tables and figures."""

    statistic: str
    max_syllables: int
    smooth_sigma: float
    pre: int
    post: int
    movies: bool
    correction: str


class _Labels(NamedTuple):
    """The syllables of all sessions on one time axis, and the sessions' groups."""

    z: np.ndarray
    starts: np.ndarray
    n_states: int
    session_groups: list
    labels: list


class _Outputs:
    """The report folder: tables and figures written atomically, listed in order for the page."""

    def __init__(self, out: Path):
        self.out = out
        self.files: list[tuple[str, str, str]] = []
        self.notes: list[str] = []

    def table(self, table, name, caption, index=False):
        """Write ``table`` as ``name`` (CSV) and list it."""
        with atomic_path(self.out / name) as tmp:
            table.to_csv(tmp, index=index)
        self.files.append(("table", name, caption))

    def figure(self, fig, name, caption):
        """Save ``fig`` as ``name`` (PNG), close it and list it."""
        import matplotlib.pyplot as plt

        with atomic_path(self.out / name) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        self.files.append(("figure", name, caption))

    def listed(self, name, caption):
        """List a figure written by someone else (an animation)."""
        self.files.append(("figure", name, caption))


def _use_file_backend():
    """Switch matplotlib to Agg unless it already draws to files only."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")


def _group_of_sessions(results, groups) -> dict:
    """``{session: group}`` from ``groups`` (default one group "all"); every session needs one."""
    names = [r.name for r in results]
    group_of = (
        {n: "all" for n in names}
        if groups is None
        else (dict(groups) if isinstance(groups, dict) else read_group_index(groups))
    )
    missing = [n for n in names if n not in group_of]
    if missing:
        raise ValueError(f"sessions without a group in the index: {missing}.")
    return group_of


def _fitted_model(model, results_dir: Path, h5: Path):
    """The model file given, else ``model.npz`` of the results, else the one ``results.h5`` names;
    None when there is none."""
    from .models import load_model

    model_path = Path(model) if model is not None else results_dir / "model.npz"
    if model is None and not model_path.is_file():  # apply-keypoints results name their model file
        import h5py

        with h5py.File(h5, "r") as f:
            model_path = Path(str(f.attrs.get("model", model_path)))
    return load_model(model_path) if model_path.is_file() else None


def _apply_merges(results, fitted, notes):
    """Apply the model's syllable mapping to results written before the merge (in place)."""
    from . import analysis as an

    mapping = getattr(fitted, "syllable_mapping_", None)
    if mapping is not None:
        moved = np.flatnonzero(np.asarray(mapping) != np.arange(len(mapping)))
        if any(np.isin(r.syllables, moved).any() for r in results):
            for r in results:
                r.syllables = an.apply_syllable_mapping(r.syllables, mapping)
            notes.append("the model's syllable merges were applied to these results")


def _statistics_figures(results, labelled, individuals, options, report):
    """The frame table, syllable statistics, usage, durations and group tests; returns the usage
    per group."""
    from . import analysis as an
    from . import plotting as pl

    z, starts, n_states = labelled.z, labelled.starts, labelled.n_states
    frames = an.frame_table(
        results,
        groups=labelled.session_groups,
        individuals=individuals,
        smooth_sigma=options.smooth_sigma,
    )
    report.table(
        frames,
        "frame_table.csv",
        "one row per frame: syllable, onset, centroid, heading, speed, angular velocity",
    )
    stats = an.syllable_stats(frames, n_states=n_states)
    report.table(
        stats,
        "syllable_stats.csv",
        "per group, session and syllable: frequency, usage, durations, kinematics",
    )
    usage = an.syllable_usage(z, starts, labelled.session_groups, n_states=n_states, by="instances")
    ax = pl.plot_usage(usage, max_syllables=options.max_syllables)
    ax.set_title("syllable usage by group (fraction of instances)")
    report.figure(ax.figure, "syllable_usage.png", "usage per group")
    ax = pl.plot_durations(z, starts, fps=results[0].fps)
    report.figure(ax.figure, "syllable_durations.png", "syllable durations")
    statistic = options.statistic
    tests = _group_tests(stats, labelled.labels, statistic, options.correction, report)
    ax = pl.plot_syllable_stats(stats, statistic, tests, max_syllables=options.max_syllables)
    report.figure(
        ax.figure,
        _statistic_figure_name(statistic),
        f"{statistic} per syllable and group (mean, SEM)",
    )
    return usage


def _write_page(report, results, labelled, results_dir) -> Path:
    """Write ``index.html`` linking every listed file, and ``report.json``; returns the page."""
    sections = []
    for kind, name, caption in report.files:
        link = html.escape(name)
        if kind == "figure":
            sections.append(
                f'<figure><img src="{link}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        else:
            sections.append(
                f'<p>Table: <a href="{link}">{link}</a> &mdash; {html.escape(caption)}</p>'
            )
    labels, z = labelled.labels, labelled.z
    summary = (
        f"{len(results)} session(s), {len(labels)} group(s) ({', '.join(map(str, labels))}), "
        f"{int((z >= 0).sum()):,} labelled frames, {labelled.n_states} syllables in the model. "
        f"Results: {results_dir}."
    )
    if report.notes:
        summary += " Notes: " + "; ".join(report.notes) + "."
    page = _PAGE.substitute(
        title="behavhmm report", summary=html.escape(summary), sections="\n".join(sections)
    )
    index = report.out / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(report.out / "report.json") as tmp:
        tmp.write_text(
            json.dumps(
                {"files": [name for _, name, _ in report.files], "notes": report.notes}, indent=1
            )
        )
    return index


def _reload_keypoints(results, h5):
    """The results' keypoints reloaded and cleaned as for the fit, in the results' order, and each
    session's animal.

    Returns ``(coordinates, individuals, "")``, or ``(None, None, reason)`` when the files cannot be
    matched.
    """
    import h5py

    from .workflows import load_and_clean

    sources = list(dict.fromkeys(r.source for r in results))
    if any(not s or not Path(s).is_file() for s in sources):
        return (
            None,
            None,
            "the pose files named in the results are not all reachable: no trajectories",
        )
    with h5py.File(h5, "r") as f:
        bodyparts = json.loads(f.attrs["bodyparts"]) if "bodyparts" in f.attrs else None
    rates = {r.fps for r in results}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sessions, coords, _, names = load_and_clean(
            sources, bodyparts=bodyparts, fps=rates.pop() if len(rates) == 1 else None
        )
    begin = np.flatnonzero(np.asarray(sessions.session_starts))
    end = np.append(begin[1:], len(coords))
    pieces = dict(zip(names, (coords[a:b] for a, b in zip(begin, end, strict=True)), strict=True))
    if any(r.name not in pieces or len(pieces[r.name]) != len(r.syllables) for r in results):
        return (
            None,
            None,
            "the reloaded pose files do not match the results' sessions: no trajectories",
        )
    animal = dict(zip(names, (s.individual or "" for s in sessions), strict=True))
    return np.concatenate([pieces[r.name] for r in results]), [animal[r.name] for r in results], ""


def _statistic_figure_name(statistic: str) -> str:
    """The file of the per-statistic figure, never one of the fixed usage/durations figures."""
    name = f"syllable_{_slug(statistic)}.png"
    if name in ("syllable_usage.png", "syllable_durations.png"):
        name = f"syllable_{_slug(statistic)}_per_group.png"
    return name


def _group_tests(stats, labels, statistic, correction, report):
    """Group tests of ``statistic`` and the usual statistics (saved); None for one group."""
    from . import analysis as an

    tests = None
    if len(labels) >= 2:
        parts = []
        for name in dict.fromkeys(
            [statistic, "frequency", "usage", "duration_median", "speed_mean"]
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                table = an.compare_groups(stats, name, correction=correction)
            parts.append(table.assign(statistic_name=name))
            if name == statistic:
                tests = table
        report.table(
            pd.concat(parts, ignore_index=True),
            "group_tests.csv",
            "Kruskal-Wallis per syllable, Dunn's post-hoc pairs, corrected p-values",
        )
        if tests["p_value"].isna().all():
            report.notes.append(
                "no group test could be computed: each group needs at least two sessions"
            )
    else:
        report.notes.append("one group only: no group tests")
    return tests


def _transition_figures(labelled, usage, max_syllables, report):
    """Transition tables per group, transition graphs and their differences between groups."""
    from . import analysis as an
    from . import plotting as pl

    z, starts, n_states = labelled.z, labelled.starts, labelled.n_states
    labels, session_groups = labelled.labels, labelled.session_groups
    matrices = an.transition_matrix(z, starts, n_states=n_states, groups=session_groups)
    # graphs show joint bigram probabilities (normalize="all", as keypoint-moseq's graphs): a
    # rarely used syllable's rows hold probabilities of 0 or 1 that would otherwise dominate
    joint = an.transition_matrix(
        z, starts, n_states=n_states, groups=session_groups, normalize="all"
    )
    group_usage = usage.reindex(columns=range(n_states)).fillna(0)
    pos = None
    for g in labels:
        report.table(
            pd.DataFrame(matrices[g]).rename_axis(index="from", columns="to"),
            f"transitions_{_slug(g)}.csv",
            f"bigram transition probabilities, group {g}",
            index=True,
        )
        if pos is None:
            used = np.flatnonzero(group_usage.max(axis=0).to_numpy()[:max_syllables] >= 0.005)
            pos = pl.graph_layout(an.transition_graph(joint[g], syllables=used))
        ax = pl.plot_transition_graph(
            joint[g],
            group_usage.loc[g].to_numpy(),
            max_syllables=max_syllables,
            pos=pos,
            threshold=0.005,
        )
        ax.set_title(f"transitions, group {g}")
        report.figure(
            ax.figure,
            f"transition_graph_{_slug(g)}.png",
            f"transition graph, group {g}: nodes sized by usage, edges by bigram probability (> "
            "0.005)",
        )
    for g in labels[1:]:
        ax = pl.plot_transition_graph_difference(
            joint[labels[0]],
            joint[g],
            group_usage.loc[labels[0]].to_numpy(),
            group_usage.loc[g].to_numpy(),
            max_syllables=max_syllables,
            pos=pos,
            labels=(str(labels[0]), str(g)),
            threshold=0.002,
        )
        report.figure(
            ax.figure,
            f"transition_difference_{_slug(labels[0])}_{_slug(g)}.png",
            f"difference of bigram probabilities and usage, {g} - {labels[0]} (edges > 0.002)",
        )


def _body_axis(fitted, n_keypoints: int):
    """The model's anterior and posterior keypoints (default first and last), and the edge drawn
    from the first posterior to the first anterior one."""
    front = getattr(fitted, "anterior_bodyparts", 0)
    back = getattr(fitted, "posterior_bodyparts", -1)
    edge = (int(np.atleast_1d(back)[0]) % n_keypoints, int(np.atleast_1d(front)[0]) % n_keypoints)
    return front, back, [edge]


def _trajectory_figures(labelled, coords, fitted, fps, options, report):
    """Typical trajectories, their distances and dendrogram, and (optionally) movies."""
    from . import analysis as an
    from . import plotting as pl

    front, back, axis = _body_axis(fitted, coords.shape[1])
    traj = an.typical_trajectories(
        labelled.z,
        coords,
        labelled.starts,
        anterior=front,
        posterior=back,
        pre=options.pre,
        post=options.post,
        n_states=labelled.n_states,
        fps=fps,
    )
    fig = (
        pl.plot_typical_trajectories(traj, edges=axis, max_syllables=options.max_syllables)
        if np.isfinite(traj.trajectories).any()
        else None
    )
    if fig is None:
        report.notes.append("no syllable has enough complete instances for a typical trajectory")
        return
    report.figure(
        fig,
        "typical_trajectories.png",
        "typical trajectories (body frame of the onset; purple: "
        "onset, yellow: end; line: posterior to anterior)",
    )
    distance = an.syllable_similarity(traj)
    report.table(
        pd.DataFrame(distance).rename_axis(index="syllable", columns="syllable"),
        "syllable_similarity.csv",
        "distance between typical trajectories (keypoint units)",
        index=True,
    )
    if np.isfinite(distance).any(axis=1).sum() >= 2:
        ax = pl.plot_syllable_dendrogram(distance)
        report.figure(
            ax.figure,
            "syllable_dendrogram.png",
            "syllables clustered by trajectory distance",
        )
    if options.movies:
        _trajectory_movies(traj, labelled, coords, fitted, fps, options, report)


def _trajectory_movies(traj, labelled, coords, fitted, fps, options, report):
    """Animated typical trajectories and a grid movie of the syllable with most instances."""
    from . import plotting as pl

    front, back, axis = _body_axis(fitted, coords.shape[1])
    pl.animate_typical_trajectories(
        traj,
        report.out / "typical_trajectories.gif",
        edges=axis,
        max_syllables=options.max_syllables,
    )
    report.listed("typical_trajectories.gif", "typical trajectories, animated")
    top = int(np.argmax(traj.n_instances))
    pl.grid_movie(
        labelled.z,
        coords,
        top,
        report.out / f"grid_movie_syllable_{top}.gif",
        labelled.starts,
        anterior=front,
        posterior=back,
        edges=axis,
        pre=options.pre,
        post=options.post,
        fps=fps or 10.0,
    )
    report.listed(
        f"grid_movie_syllable_{top}.gif",
        f"keypoints-only grid movie of syllable {top} (grey: before onset, red: syllable)",
    )
