"""Per-syllable comparisons between groups of sessions: an omnibus test, post-hoc pairs,
multiple-testing correction.

Every test statistic comes from scipy, scikit-posthocs or statsmodels; this
module only arranges the sessions' numbers and tabulates the results.
statsmodels and scikit-posthocs are in the ``analysis`` extra
(``pip install 'behavhmm[analysis]'``) and imported when a function runs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ._optional import optional_import as _optional

__all__ = ["compare_groups"]

_METHODS = ("kruskal", "anova")
_POSTHOC = ("dunn", "mannwhitney", "ttest", None)


def _omnibus(method, samples, n_permutations, rng):
    from scipy import stats

    test = stats.kruskal if method == "kruskal" else stats.f_oneway
    if n_permutations is None:
        res = test(*samples)
        return float(res.statistic), float(res.pvalue)
    kwargs = dict(
        permutation_type="independent", n_resamples=int(n_permutations), alternative="greater"
    )
    try:
        res = stats.permutation_test(samples, lambda *s: test(*s).statistic, rng=rng, **kwargs)
    except TypeError:  # scipy < 1.15 names the generator random_state
        res = stats.permutation_test(
            samples, lambda *s: test(*s).statistic, random_state=rng, **kwargs
        )
    return float(res.statistic), float(res.pvalue)


def _pairs(posthoc, samples, labels):
    """(group1, group2, statistic, p) for every pair of groups."""
    from scipy import stats

    if posthoc == "dunn":
        sp = _optional("scikit_posthocs")
        values = np.concatenate(samples)
        names = np.repeat(np.arange(len(samples)), [len(s) for s in samples])
        frame = pd.DataFrame({"value": values, "group": names})
        table = sp.posthoc_dunn(frame, val_col="value", group_col="group", p_adjust=None)
        return [
            (labels[i], labels[j], np.nan, float(table.loc[i, j]))
            for i, j in itertools.combinations(range(len(samples)), 2)
        ]
    out = []
    for i, j in itertools.combinations(range(len(samples)), 2):
        if posthoc == "mannwhitney":
            res = stats.mannwhitneyu(samples[i], samples[j], alternative="two-sided")
        else:
            res = stats.ttest_ind(samples[i], samples[j], equal_var=False)
        out.append((labels[i], labels[j], float(res.statistic), float(res.pvalue)))
    return out


def _adjust(p: np.ndarray, correction: str | None) -> np.ndarray:
    """Corrected p-values (statsmodels ``multipletests``) of the finite entries; NaN stays NaN."""
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if correction is None:
        out[ok] = p[ok]
    elif ok.any():
        multitest = _optional("statsmodels.stats.multitest")
        out[ok] = multitest.multipletests(p[ok], method=correction)[1]
    return out


def compare_groups(
    stats: pd.DataFrame,
    statistic: str = "frequency",
    *,
    method: str = "kruskal",
    posthoc: str | None = "dunn",
    correction: str | None = "fdr_bh",
    n_permutations: int | None = None,
    alpha: float = 0.05,
    random_state=0,
) -> pd.DataFrame:
    """Test, syllable by syllable, whether a statistic differs between groups of sessions.

    Each session is one observation. For each syllable an omnibus test
    compares all groups (Kruskal-Wallis ``scipy.stats.kruskal``, or one-way
    ANOVA ``scipy.stats.f_oneway``); its p-value is exact-ish from the
    asymptotic distribution, or, with ``n_permutations``, from that many
    random reassignments of sessions to groups (``scipy.stats.permutation_test``).
    Then every pair of groups is compared post hoc (Dunn's test from
    scikit-posthocs, Mann-Whitney U or Welch's t-test from scipy). The
    omnibus p-values are corrected across syllables, and the post-hoc
    p-values across all syllables and pairs together, by
    ``statsmodels.stats.multitest.multipletests``.

    Parameters
    ----------
    stats : pandas.DataFrame
        From [`syllable_stats`][behavhmm.analysis.kinematics.syllable_stats]:
        columns ``group``, ``session``, ``syllable`` and ``statistic``.
    statistic : str, default "frequency"
        Column to compare (e.g. ``"usage"``, ``"duration_median"``, ``"speed_mean"``).
    method : {"kruskal", "anova"}, default "kruskal"
    posthoc : {"dunn", "mannwhitney", "ttest"} or None, default "dunn"
    correction : str or None, default "fdr_bh"
        A ``multipletests`` method (``"bonferroni"``, ``"holm"``, ``"fdr_bh"``, ...), or None.
    n_permutations : int, optional
        Permutation p-values for the omnibus test.
    alpha : float, default 0.05
        Level for the ``significant`` column (on corrected p-values).
    random_state : int or numpy Generator, default 0
        Seeds the permutations.

    Returns
    -------
    pandas.DataFrame
        Tidy: one ``"omnibus"`` row per syllable (``group1``/``group2`` empty)
        and one ``"posthoc"`` row per syllable and pair of groups, with columns
        ``syllable``, ``comparison``, ``test``, ``group1``, ``group2``,
        ``statistic`` (NaN for Dunn), ``p_value``, ``p_adjusted`` and
        ``significant``. A syllable whose values are all equal, or with fewer
        than two sessions with a value in some group, gets NaN p-values (and
        is left out of the correction).

    Raises
    ------
    ValueError
        If a column is missing, fewer than two groups are present, or
        ``method``/``posthoc`` is unknown.
    ImportError
        Without the ``analysis`` extra (statsmodels, scikit-posthocs).

    References
    ----------
    O. J. Dunn (1964). Multiple comparisons using rank sums. Technometrics 6(3), 241-252.

    Y. Benjamini and Y. Hochberg (1995). Controlling the false discovery rate.
    J. R. Statist. Soc. B 57(1), 289-300.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if posthoc not in _POSTHOC:
        raise ValueError(f"posthoc must be one of {_POSTHOC}, got {posthoc!r}.")
    missing = {"group", "session", "syllable", statistic} - set(stats.columns)
    if missing:
        raise ValueError(
            f"stats lacks the columns {sorted(missing)} (make it with syllable_stats)."
        )
    labels = sorted(stats["group"].unique(), key=str)
    if len(labels) < 2:
        raise ValueError(f"compare_groups needs at least two groups, got {labels}.")
    rng = np.random.default_rng(random_state)
    test_name = {"kruskal": "kruskal-wallis", "anova": "one-way anova"}[method]
    rows = []
    for syllable, block in stats.groupby("syllable", sort=True):
        samples = [
            block.loc[block["group"] == g, statistic].dropna().to_numpy(float) for g in labels
        ]
        testable = all(len(s) >= 2 for s in samples) and np.ptp(np.concatenate(samples)) > 0
        stat, p = _omnibus(method, samples, n_permutations, rng) if testable else (np.nan, np.nan)
        rows.append(
            (
                syllable,
                "omnibus",
                test_name + (" (permutation)" if n_permutations else ""),
                "",
                "",
                stat,
                p,
            )
        )
        if posthoc is not None:
            pairs = (
                _pairs(posthoc, samples, labels)
                if testable
                else [(a, b, np.nan, np.nan) for a, b in itertools.combinations(labels, 2)]
            )
            rows.extend((syllable, "posthoc", posthoc, a, b, s, q) for a, b, s, q in pairs)
    table = pd.DataFrame(
        rows, columns=["syllable", "comparison", "test", "group1", "group2", "statistic", "p_value"]
    )
    table["p_adjusted"] = np.nan
    for kind in ("omnibus", "posthoc"):
        rows_of = (table["comparison"] == kind).to_numpy()
        table.loc[rows_of, "p_adjusted"] = _adjust(
            table.loc[rows_of, "p_value"].to_numpy(float), correction
        )
    table["significant"] = table["p_adjusted"] < alpha
    return table
