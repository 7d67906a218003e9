"""Figures and numbers of docs/guide/moseq.md (real MoSeq PC scores, ../shared/data).

Run from the repository root:  python docs/scripts/moseq_gibbs.py [--quick]
Writes docs/guide/img/moseq-*.png and prints the numbers quoted in the page.
The data are under a non-commercial licence: only these derived figures are
committed, never the scores.
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import behavhmm  # noqa: E402
from behavhmm.analysis import kappa_scan, relabel_by_usage, syllable_usage, transition_matrix  # noqa: E402
from behavhmm.io import load_pc_scores  # noqa: E402
from behavhmm.plotting import plot_durations, plot_fit_history, plot_transition_matrix, plot_usage  # noqa: E402

quick = "--quick" in sys.argv
root = Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data" / "moseq2-depth-testdata" / "pca_pca_scores.h5"
out = root / "docs" / "guide" / "img"
n_iter = 10 if quick else 300
# a 1-minute recording: 100 states (MoSeq's default for hours of data) would leave ~18 frames each
N_STATES = 20

scores = load_pc_scores(data, n_components=10)
print("frames", scores.scores.shape, "filled", int(scores.filled.sum()))
model = behavhmm.ARHMM(
    n_states=N_STATES,
    nlags=3,
    algorithm="gibbs",
    kappa=1e4,
    whiten="all",
    n_iter=n_iter,
    check_every=10,
    heldout_fraction=0.1,
    progress_bar=False,
)
tic = time.perf_counter()
model.fit(scores.scores, session_starts=scores.session_starts)
print(f"fit {time.perf_counter() - tic:.1f} s")
z = model.predict(scores.scores, session_starts=scores.session_starts)
z_usage, order = relabel_by_usage(z, model.n_states)
used = np.bincount(z[z >= 0], minlength=N_STATES)
print("used states (>=0.5%)", int(np.sum(used >= 0.005 * used.sum())), "any", int(np.sum(used > 0)))
print("median duration", behavhmm.analysis.median_duration(z, scores.session_starts, fps=30))
print(
    "final heldout",
    model.heldout_log_likelihood_history_[-1]
    if hasattr(model, "heldout_log_likelihood_history_")
    else None,
)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
plot_fit_history(model, axes, fps=30)
fig.savefig(out / "moseq-fit-history.png", dpi=100)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
plot_durations(z, scores.session_starts, fps=30, ax=axes[0])
usage = syllable_usage(
    z_usage, scores.session_starts, session_names=[s[:8] for s in scores.sessions]
)
plot_usage(usage, ax=axes[1], max_syllables=25)
fig.savefig(out / "moseq-syllables.png", dpi=100)
fig, ax = plt.subplots(figsize=(4.4, 3.6), layout="constrained")
plot_transition_matrix(transition_matrix(z_usage, scores.session_starts), ax=ax, max_syllables=20)
fig.savefig(out / "moseq-transitions.png", dpi=100)

scan_model = behavhmm.ARHMM(
    n_states=N_STATES,
    nlags=3,
    algorithm="gibbs",
    whiten="all",
    n_iter=10 if quick else 150,
    progress_bar=False,
)
tic = time.perf_counter()
table = kappa_scan(
    scan_model,
    scores.scores,
    session_starts=scores.session_starts,
    min_kappa=1e1,
    max_kappa=1e7,
    n_kappas=4 if quick else 7,
    fps=30,
)
print(f"scan {time.perf_counter() - tic:.1f} s")
print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
fig, ax = plt.subplots(figsize=(4.6, 3.2), layout="constrained")
ax.semilogx(table["kappa"], 1000 * table["median_duration_s"], "o-")
ax.set_xlabel("kappa")
ax.set_ylabel("median syllable duration (ms)")
fig.savefig(out / "moseq-kappa-scan.png", dpi=100)

tuned = behavhmm.ARHMM(
    n_states=N_STATES,
    nlags=3,
    algorithm="gibbs",
    whiten="all",
    n_iter=10 if quick else 150,
    target_duration=0.4 * 30,
    progress_bar=False,
)
tuned.fit(scores.scores, session_starts=scores.session_starts)
zt = tuned.predict(scores.scores, session_starts=scores.session_starts)
print(
    "target 400 ms -> kappa",
    tuned.kappa_,
    "median ms",
    1000 * behavhmm.analysis.median_duration(zt, scores.session_starts, fps=30),
)
