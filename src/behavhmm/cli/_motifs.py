"""Motif commands (LISBET's unsupervised half): segment-motifs and select-prototypes."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .._files import atomic_path
from ._errors import Command, about


# motifs (LISBET's unsupervised half)
def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


@click.command("segment-motifs", cls=Command)
@click.argument("features_dir", type=click.Path(exists=True))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the models, metrics, one-hot annotation CSVs and figures.",
)
@click.option("--min-n-states", default=2, show_default=True, help="Smallest number of states.")
@click.option("--max-n-states", default=32, show_default=True, help="Largest number of states.")
@click.option(
    "--n-iter", default=10, show_default=True, help="EM iterations per model (LISBET: 10)."
)
@click.option("--tol", default=1e-3, show_default=True, help="EM tolerance, nats per frame.")
@click.option(
    "--covariance-type",
    type=click.Choice(["full", "diag", "spherical", "tied"]),
    default="full",
    show_default=True,
)
@click.option(
    "--fit-frac", type=float, default=None, help="Fit on this fraction of the sequences (0-1]."
)
@click.option(
    "--cv", type=int, default=None, help="Also score held-out sequences in this many session folds."
)
@click.option(
    "--n-jobs",
    type=int,
    default=None,
    help="Models fitted in parallel (joblib processes; -1: all cores).",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of every model (all K start from it)."
)
def segment_motifs_command(
    features_dir,
    out_dir,
    min_n_states,
    max_n_states,
    n_iter,
    tol,
    covariance_type,
    fit_frac,
    cv,
    n_jobs,
    seed,
):
    """Fit one Gaussian HMM per number of states to per-sequence features (LISBET's segment_hmm).

    FEATURES_DIR is a LISBET embeddings folder (embeddings/<key>/features_*_embedding.csv) or a
    folder of per-sequence .csv/.npy/.h5 tables. --out receives models/hmm{K}.npz (no pickle),
    history_hmm{K}.csv, metrics_hmm{K}.yaml, metrics.csv, <sequence>/machineAnnotation_hmm{K}.csv
    and metrics_vs_n_states.png.

    \b
    Examples:
      behavhmm segment-motifs lisbet_out/embeddings/lisbet32x4 --out motifs
      behavhmm segment-motifs features/ --min-n-states 2 --max-n-states 12 --cv 5 \\
        --n-jobs 4 --out motifs
    """
    from .. import GaussianHMM
    from ..io import load_features
    from ..model_selection import scan_n_states

    if not 1 <= min_n_states <= max_n_states:
        raise click.BadParameter(
            "need 1 <= --min-n-states <= --max-n-states.", param_hint="--min-n-states"
        )
    with about(features_dir):
        feats = load_features(features_dir)
        click.echo(
            f"{len(feats.names)} sequences, {feats.X.shape[0]} frames x {feats.X.shape[1]} "
            "features."
        )
        estimator = GaussianHMM(
            covariance_type=covariance_type,
            n_iter=n_iter,
            tol=tol,
            random_state=seed,
            progress_bar=False,
        )
        tic = time.perf_counter()
        scan = scan_n_states(
            estimator,
            feats.X,
            feats.session_starts,
            n_states=range(min_n_states, max_n_states + 1),
            fit_fraction=fit_frac,
            cv=cv,
            n_jobs=n_jobs,
            random_state=seed,
            sequence_names=feats.names,
        )
    out = Path(out_dir)
    scan.save(out)
    _save_figure(_metrics_figure(scan.metrics_), out / "metrics_vs_n_states.png")
    click.echo(
        f"Fitted {len(scan.n_states_)} models in {time.perf_counter() - tic:.1f} s; best by BIC: "
        f"K={scan.best_n_states('bic')}. Wrote {out}."
    )


def _metrics_figure(metrics):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [
        c
        for c in ("log_likelihood", "heldout_log_likelihood", "aic", "bic")
        if c in metrics.columns
    ]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(metrics["n_states"], metrics[name], "o-", ms=3)
        ax.set_xlabel("number of states")
        ax.set_title(name.replace("_", " "))
    fig.tight_layout()
    return fig


@click.command("select-prototypes", cls=Command)
@click.argument("scan_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--fps", type=float, required=True, help="Frames per second of the sequences.")
@click.option(
    "--method",
    type=click.Choice(["best", "min"]),
    default="best",
    show_default=True,
    help="best: the column with the highest silhouette per cluster; min: the one from the smallest "
    "K.",
)
@click.option(
    "--min-frame-fraction",
    default=0.05,
    show_default=True,
    help="Drop states used in fewer frames.",
)
@click.option(
    "--min-bout-s",
    default=0.5,
    show_default=True,
    help="Drop states whose mean bout is shorter (s).",
)
@click.option(
    "--max-distance",
    default=0.6,
    show_default=True,
    help="Drop states with no other state within this Jaccard distance.",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Output folder (default: SCAN_DIR).",
)
def select_prototypes_command(
    scan_dir, fps, method, min_frame_fraction, min_bout_s, max_distance, out_dir
):
    """Prototype motifs among all states of a segment-motifs folder (LISBET's select_prototypes).

    Writes prototypes/<sequence>/machineAnnotation_hmm{method}_{min}_{max}.csv,
    info_hmm{method}_{min}_{max}.npz, prototypes.csv and the figures prototype_dendrogram.png and
    ethogram_<first sequence>.png.

    \b
    Examples:
      behavhmm select-prototypes motifs --fps 30
      behavhmm select-prototypes motifs --fps 25 --method min --min-bout-s 0.2 --out motifs/min
    """
    from ..model_selection import NStatesScan, select_prototypes

    with about(scan_dir):
        scan = NStatesScan.load(scan_dir)
        protos = select_prototypes(
            scan,
            fps,
            min_frame_fraction=min_frame_fraction,
            min_bout_s=min_bout_s,
            max_distance=max_distance,
            method=method,
        )
    out = Path(out_dir or scan_dir)
    protos.save(out, scan)
    import pandas as pd

    table = pd.DataFrame(
        {
            "name": protos.names_,
            "n_states": [k for k, _ in protos.prototypes_],
            "state": [s for _, s in protos.prototypes_],
            "frame_fraction": protos.annotations_.mean(axis=0),
        }
    )
    with atomic_path(out / "prototypes.csv") as tmp:
        table.to_csv(tmp, index=False)
    _save_figure(_dendrogram_figure(protos), out / "prototype_dendrogram.png")
    first = scan.sequence_slices()[0]
    name = scan.sequence_names_[0].replace("/", "_")
    _save_figure(
        _ethogram_figure(protos, first, fps, scan.sequence_names_[0]), out / f"ethogram_{name}.png"
    )
    click.echo(
        f"{len(protos.columns_)} states passed the filters; {protos.n_clusters_} clusters; "
        "prototypes "
        f"{', '.join(protos.names_)}. Wrote {out}."
    )


def _dendrogram_figure(protos):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy.cluster import hierarchy

    fig, ax = plt.subplots(figsize=(max(4, 0.25 * len(protos.columns_)), 3))
    if len(protos.linkage_):
        labels = [
            f"{k}_{s}" + ("*" if (k, s) in protos.prototypes_ else "") for k, s in protos.columns_
        ]
        hierarchy.dendrogram(protos.linkage_, labels=labels, ax=ax, leaf_rotation=90)
    ax.set_ylabel("Jaccard distance")
    ax.set_title(f"states (K_state; * prototype), {protos.n_clusters_} clusters")
    fig.tight_layout()
    return fig


def _ethogram_figure(protos, rows, fps, name):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    block = protos.annotations_[rows].T
    fig, ax = plt.subplots(figsize=(8, 0.3 * block.shape[0] + 1))
    ax.imshow(
        block,
        aspect="auto",
        interpolation="nearest",
        cmap="Greys",
        extent=(0, block.shape[1] / fps, block.shape[0] - 0.5, -0.5),
    )
    ax.set_yticks(range(block.shape[0]), protos.names_)
    ax.set_xlabel("time (s)")
    ax.set_title(f"prototype ethogram: {name}")
    fig.tight_layout()
    return fig
