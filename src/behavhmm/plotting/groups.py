"""Per-syllable statistics by group, with SEM error bars and significance marks."""

from __future__ import annotations

import numpy as np

from ._common import _axes

__all__ = ["plot_syllable_stats"]


def plot_syllable_stats(
    stats,
    statistic: str = "frequency",
    tests=None,
    ax=None,
    *,
    max_syllables: int | None = 30,
    alpha: float = 0.05,
):
    """Mean of a per-session statistic for each syllable and group, with the standard error.

    Parameters
    ----------
    stats : pandas.DataFrame
        From `behavhmm.analysis.syllable_stats` (columns ``group``,
        ``session``, ``syllable`` and ``statistic``).
    statistic : str, default "frequency"
    tests : pandas.DataFrame, optional
        From `behavhmm.analysis.compare_groups` on the same statistic: an
        asterisk marks each syllable whose omnibus corrected p-value is below
        ``alpha``.
    ax : matplotlib.axes.Axes, optional
    max_syllables : int or None, default 30
        The first syllables only (by label; relabel by usage to see the most used).
    alpha : float, default 0.05

    Returns
    -------
    matplotlib.axes.Axes
        Markers at the group means over sessions, error bars of one SEM
        (``scipy.stats.sem``, NaN sessions skipped).

    Raises
    ------
    ValueError
        If a column is missing.
    """
    from scipy.stats import sem

    missing = {"group", "session", "syllable", statistic} - set(stats.columns)
    if missing:
        raise ValueError(f"stats lacks the columns {sorted(missing)}.")
    syllables = np.sort(stats["syllable"].unique())
    if max_syllables is not None:
        syllables = syllables[:max_syllables]
    groups = sorted(stats["group"].unique(), key=str)
    ax = _axes(ax, figsize=(max(4.5, 0.3 * len(syllables) + 2), 3.2))
    x = np.arange(len(syllables))
    width = 0.8 / max(len(groups), 1)
    top = np.full(len(syllables), -np.inf)
    for i, group in enumerate(groups):
        block = stats[(stats["group"] == group) & stats["syllable"].isin(syllables)]
        values = block.groupby("syllable")[statistic]
        mean = values.mean().reindex(syllables).to_numpy(float)
        err = values.agg(lambda v: sem(v, nan_policy="omit") if v.notna().sum() > 1 else np.nan)
        err = np.asarray(err.reindex(syllables).to_numpy(float))
        ax.errorbar(
            x + (i - (len(groups) - 1) / 2) * width,
            mean,
            yerr=np.nan_to_num(err),
            fmt="o",
            ms=4,
            capsize=2,
            label=str(group),
        )
        top = np.fmax(top, mean + np.nan_to_num(err))
    if tests is not None:
        omnibus = tests[tests["comparison"] == "omnibus"].set_index("syllable")["p_adjusted"]
        span = np.nanmax(top[np.isfinite(top)]) if np.isfinite(top).any() else 1.0
        for j, syllable in enumerate(syllables):
            p = omnibus.get(syllable, np.nan)
            if np.isfinite(p) and p < alpha and np.isfinite(top[j]):
                ax.text(
                    x[j],
                    top[j] + 0.04 * span,
                    "*",
                    ha="center",
                    va="bottom",
                    fontsize=12,
                    color="C3",
                )
    ax.set_xticks(x, [str(s) for s in syllables], fontsize=7)
    ax.set_xlabel("syllable")
    ax.set_ylabel(statistic.replace("_", " "))
    if len(groups) <= 10:
        ax.legend(frameon=False, fontsize=7)
    if tests is not None:
        ax.set_title(f"* omnibus corrected p < {alpha:g}", fontsize=8, loc="right")
    return ax
