"""MoSeq-style commands on PC scores (moseq2-pca HDF5 files): learn, apply, kappa scan, count."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from .._files import atomic_path
from ._errors import Command, FileError, about, load_model_file


def _model_options(func):
    """Options shared by learn-model and kappa-scan."""
    options = [
        click.option("--npcs", default=10, show_default=True, help="PCs to model."),
        click.option(
            "--n-states", default=100, show_default=True, help="Maximum number of syllables."
        ),
        click.option("--nlags", default=3, show_default=True, help="Autoregressive lags."),
        click.option("--alpha", default=5.7, show_default=True, help="Transition concentration."),
        click.option(
            "--gamma",
            default=1000.0,
            show_default=True,
            help="HDP top-level concentration (Gibbs).",
        ),
        click.option(
            "--num-iter",
            "n_iter",
            default=100,
            show_default=True,
            help="Gibbs sweeps / EM iterations.",
        ),
        click.option(
            "--algorithm", type=click.Choice(["gibbs", "em"]), default="gibbs", show_default=True
        ),
        click.option(
            "--robust", is_flag=True, help="Student-t emissions (resist tracking outliers)."
        ),
        click.option(
            "--whiten", type=click.Choice(["all", "each", "none"]), default="all", show_default=True
        ),
        click.option(
            "--nan-policy",
            type=click.Choice(["interpolate", "split"]),
            default="interpolate",
            show_default=True,
            help="What to do with dropped (NaN) frames.",
        ),
        click.option("--seed", default=0, show_default=True, help="Random seed."),
        click.option(
            "--index",
            "index_file",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="moseq2 index file giving each session's group.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load_scores(path, npcs, index_file, nan_policy):
    from ..io import load_pc_scores

    with about(path if index_file is None else [path, index_file]):
        return load_pc_scores(path, npcs, index=index_file, nan_policy=nan_policy)


def _summary(model, scores, labels, fps):
    from ..analysis import median_duration

    n_frames = int(np.sum(labels >= 0))
    used = np.bincount(labels[labels >= 0], minlength=model.n_states)
    n_used = int(np.sum(used >= 0.005 * max(used.sum(), 1)))
    med = median_duration(labels, scores.session_starts)
    ll = model.score(
        scores.scores, session_starts=scores.session_starts, groups=scores.session_groups
    )
    click.echo(
        f"frames: {len(labels):,} ({n_frames:,} labelled) in {len(scores.sessions)} session(s) | "
        f"syllables used (>=0.5% of frames): {n_used} of {model.n_states} | "
        f"median duration: {med:.1f} frames = {1000 * med / fps:.0f} ms | "
        f"log-likelihood: {ll / max(n_frames, 1):.4f} nats/frame"
    )


def _write_results(dest, model, scores, labels, attrs):
    from ..analysis import relabel_by_usage
    from ..io import write_syllable_results

    fixed = len(getattr(model, "class_names_", ()))  # hand-labelled classes keep their numbers
    by_usage, order = relabel_by_usage(labels, model.n_states, fixed=fixed)
    per_session, per_session_usage = {}, {}
    for i, name in enumerate(scores.sessions):
        rows = scores.session_of_row == i
        n = int(scores.frame_index[rows].max()) + 1
        out = np.full(n, -1, np.int32)
        out[scores.frame_index[rows]] = labels[rows]
        per_session[name] = out
        out2 = np.full(n, -1, np.int32)
        out2[scores.frame_index[rows]] = by_usage[rows]
        per_session_usage[name] = out2
    return write_syllable_results(
        dest,
        per_session,
        attrs=attrs,
        extra={"labels_by_usage": per_session_usage, "syllable_order": {"order": order}},
    )


@click.command("learn-model", cls=Command)
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("dest_file", type=click.Path(dir_okay=False))
@_model_options
@click.option(
    "--kappa",
    type=float,
    default=None,
    help="Stickiness; default: the number of frames (as moseq2-model).",
)
@click.option(
    "--target-duration",
    type=float,
    default=None,
    help="Median syllable duration to reach, in seconds: kappa is then chosen by bisection.",
)
@click.option("--fps", default=30.0, show_default=True, help="Frames per second.")
@click.option(
    "--separate-trans", is_flag=True, help="One transition matrix per group (needs --index)."
)
@click.option(
    "--results",
    "results_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Labels per session (HDF5); default: DEST_FILE with .results.h5.",
)
@click.option(
    "--checkpoint-every",
    type=int,
    default=None,
    help="Write DEST_FILE.checkpoint.npz every N iterations.",
)
@click.option("--resume", is_flag=True, help="Continue from DEST_FILE.checkpoint.npz.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Run directory (states, metrics.csv, hparams.yaml, ...); default: DEST_FILE without "
    "its suffix, plus _run.",
)
def learn_model(
    input_file,
    dest_file,
    npcs,
    n_states,
    nlags,
    alpha,
    gamma,
    n_iter,
    algorithm,
    robust,
    whiten,
    nan_policy,
    seed,
    index_file,
    kappa,
    target_duration,
    fps,
    separate_trans,
    results_file,
    checkpoint_every,
    resume,
    no_progress,
    run_dir,
):
    """Fit an AR-HMM to PC scores (moseq2-pca HDF5) and write the model and the labels.

    Also writes a run directory (--run-dir; default DEST_FILE without its suffix plus
    "_run", or a version_N inside it when it already holds a run): <session>_states.npy,
    <session>.csv, metrics.csv, hparams.yaml, curves.png, model.npz and fit.log.
    """
    from ..runs import RunLog

    log = RunLog(click.echo)
    scores = _read_scores(input_file, npcs, index_file, nan_policy, separate_trans, log)
    checkpoint = str(dest_file) + ".checkpoint.npz" if (checkpoint_every or resume) else None
    model = _arhmm(
        (n_states, nlags, algorithm, alpha, gamma, robust, whiten, n_iter, seed),
        separate_trans=separate_trans,
        kappa=float(len(scores.scores) if kappa is None else kappa),
        target_duration=None if target_duration is None else target_duration * fps,
        checkpoint_path=checkpoint,
        checkpoint_every=checkpoint_every,
        progress_bar=not no_progress,
    )
    _fit_scores(model, scores, input_file, resume, log)
    model.save_params(dest_file)
    labels = model.predict(
        scores.scores, session_starts=scores.session_starts, groups=scores.session_groups
    )
    results = results_file or str(Path(dest_file).with_suffix("")) + ".results.h5"
    attrs = {"model": str(dest_file), "input": str(input_file), "kappa": model.kappa_, "fps": fps}
    _write_results(results, model, scores, labels, attrs)
    _summary(model, scores, labels, fps)
    options = {"npcs": npcs, "index": index_file, "nan_policy": nan_policy}
    run_dir = run_dir or str(Path(dest_file).with_suffix("")) + "_run"
    run = _write_pc_run(run_dir, model, scores, labels, (input_file, options), log)
    click.echo(f"Wrote {dest_file}, {results} and the run directory {run}.")


def _read_scores(input_file, npcs, index_file, nan_policy, separate_trans, log):
    """The PC scores of learn-model, checked against --separate-trans; logs what was read."""
    scores = _load_scores(input_file, npcs, index_file, nan_policy)
    if separate_trans and scores.groups is None:
        raise click.UsageError("--separate-trans needs --index (the sessions' groups).")
    log(
        f"Read {len(scores.scores):,} frames x {scores.scores.shape[1]} PCs from "
        f"{len(scores.sessions)} session(s) ({int(scores.filled.sum())} dropped frames "
        "interpolated)."
    )
    return scores


def _fit_scores(model, scores, input_file, resume, log):
    tic = time.perf_counter()
    with about(input_file):
        model.fit(
            scores.scores,
            session_starts=scores.session_starts,
            groups=scores.session_groups,
            resume=resume,
        )
    log(
        f"Fitted {model.algorithm} in {time.perf_counter() - tic:.1f} s "
        f"(kappa = {model.kappa_:.4g})."
    )


def _pc_session_states(model, scores, labels):
    """Per-session probabilities and labels on each session's frames in the file (-1/NaN: none)."""
    from ..runs import SessionStates

    probs = np.asarray(
        model.smooth_proba(
            scores.scores, session_starts=scores.session_starts, groups=scores.session_groups
        )
    )
    out = []
    for i, name in enumerate(scores.sessions):
        rows = scores.session_of_row == i
        n = int(scores.frame_index[rows].max()) + 1
        p = np.full((n, model.n_states), np.nan)
        p[scores.frame_index[rows]] = probs[rows]
        z = np.full(n, -1, np.int64)
        z[scores.frame_index[rows]] = labels[rows]
        out.append(SessionStates(str(name), p, z))
    return out


def _write_pc_run(run_dir, model, scores, labels, data, log):
    """The run directory of learn-model; returns its path."""
    from ..runs import claim_run_dir, fit_metrics, write_run
    from ..runs._fit import hparams_for

    input_file, options = data
    run = claim_run_dir(run_dir)
    if options["index"]:
        options = {**options, "index": str(Path(options["index"]).resolve())}
    config = {
        "model": {"type": "ARHMM"},
        "data": {"kind": "pc_scores", "paths": [str(Path(input_file).resolve())]},
        "output": str(Path(run_dir).resolve()),
    }
    config["data"]["options"] = options
    write_run(
        run,
        model=model,
        sessions=_pc_session_states(model, scores, labels),
        metrics=fit_metrics(model),
        hparams=hparams_for(config, model.set_params(checkpoint_path=None), run),
        log=log,
    )
    return run


def _arhmm(common, **params):
    """An ARHMM from the options of `_model_options` (in their order) and ``params``."""
    from ..models import ARHMM

    n_states, nlags, algorithm, alpha, gamma, robust, whiten, n_iter, seed = common
    return ARHMM(
        n_states=n_states,
        nlags=nlags,
        algorithm=algorithm,
        alpha=alpha,
        gamma=gamma,
        robust=robust,
        whiten=whiten,
        n_iter=n_iter,
        random_state=seed,
        **params,
    )


@click.command("apply-model", cls=Command)
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("dest_file", type=click.Path(dir_okay=False))
@click.option(
    "--index",
    "index_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="moseq2 index file giving each session's group.",
)
@click.option(
    "--nan-policy",
    type=click.Choice(["interpolate", "split"]),
    default="interpolate",
    show_default=True,
)
@click.option("--fps", default=30.0, show_default=True, help="Frames per second.")
def apply_model(model_file, input_file, dest_file, index_file, nan_policy, fps):
    """Label new sessions with a fitted model (deterministic: Viterbi under its parameters)."""
    model = load_model_file(model_file, ("ARHMM",), "apply-model")
    scores = _load_scores(input_file, model.n_features_in_, index_file, nan_policy)
    labels = model.predict(
        scores.scores, session_starts=scores.session_starts, groups=scores.session_groups
    )
    _write_results(
        dest_file,
        model,
        scores,
        labels,
        {"model": str(model_file), "input": str(input_file), "fps": fps},
    )
    _summary(model, scores, labels, fps)
    click.echo(f"Wrote {dest_file}.")


@click.command("kappa-scan", cls=Command)
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("dest_file", type=click.Path(dir_okay=False))
@_model_options
@click.option("--min-kappa", default=1e2, show_default=True)
@click.option("--max-kappa", default=1e8, show_default=True)
@click.option("--n-kappas", default=7, show_default=True)
@click.option("--scale", type=click.Choice(["log", "linear"]), default="log", show_default=True)
@click.option("--fps", default=30.0, show_default=True, help="Frames per second.")
@click.option(
    "--n-jobs",
    default=1,
    show_default=True,
    help="Parallel fits on this machine (joblib; -1: all cores).",
)
@click.option(
    "--cluster",
    type=click.Choice(["none", "local", "slurm"]),
    default="none",
    show_default=True,
    help="Run the fits on a Dask cluster (needs the 'cluster' extra): local processes or SLURM "
    "jobs.",
)
@click.option(
    "--slurm-jobs", default=4, show_default=True, help="SLURM jobs to start (--cluster slurm)."
)
@click.option("--slurm-cores", default=2, show_default=True, help="Cores per SLURM job.")
@click.option("--slurm-memory", default="8GB", show_default=True, help="Memory per SLURM job.")
@click.option(
    "--slurm-walltime", default="02:00:00", show_default=True, help="Walltime per SLURM job."
)
@click.option("--slurm-queue", default=None, help="SLURM partition.")
def kappa_scan_command(
    input_file,
    dest_file,
    npcs,
    n_states,
    nlags,
    alpha,
    gamma,
    n_iter,
    algorithm,
    robust,
    whiten,
    nan_policy,
    seed,
    index_file,
    min_kappa,
    max_kappa,
    n_kappas,
    scale,
    fps,
    n_jobs,
    cluster,
    slurm_jobs,
    slurm_cores,
    slurm_memory,
    slurm_walltime,
    slurm_queue,
):
    """Fit one model per kappa and write a table (CSV): kappa, median duration, log-likelihood."""

    from ..analysis import kappa_scan

    scores = _load_scores(input_file, npcs, index_file, nan_policy)
    model = _arhmm(
        (n_states, nlags, algorithm, alpha, gamma, robust, whiten, n_iter, seed),
        progress_bar=False,
    )
    kwargs = dict(
        session_starts=scores.session_starts,
        groups=scores.session_groups,
        min_kappa=min_kappa,
        max_kappa=max_kappa,
        n_kappas=n_kappas,
        scale=scale,
        fps=fps,
    )
    if cluster == "none":
        table = kappa_scan(model, scores.scores, n_jobs=n_jobs, **kwargs)
    else:
        slurm = dict(
            cores=slurm_cores, memory=slurm_memory, walltime=slurm_walltime, queue=slurm_queue
        )
        table = _scan_on_cluster(model, scores.scores, kwargs, cluster, n_jobs, slurm_jobs, slurm)
    with atomic_path(dest_file) as tmp:
        table.to_csv(tmp, index=False)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"Wrote {dest_file}.")


def _scan_on_cluster(model, X, kwargs, cluster, n_jobs, slurm_jobs, slurm):
    """`kappa_scan` through joblib's Dask backend on a local or SLURM Dask cluster."""
    import joblib

    from ..analysis import kappa_scan

    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise click.UsageError(
            "--cluster needs the 'cluster' extra: pip install 'behavhmm[cluster]'."
        ) from exc
    if cluster == "local":
        dask_cluster = LocalCluster(n_workers=max(n_jobs, 1), threads_per_worker=1)
    else:
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as exc:
            raise click.UsageError(
                "--cluster slurm needs the 'cluster' extra: pip install 'behavhmm[cluster]'."
            ) from exc

        dask_cluster = SLURMCluster(**slurm)
        dask_cluster.scale(jobs=slurm_jobs)
    with Client(dask_cluster), joblib.parallel_config(backend="dask"):
        table = kappa_scan(model, X, n_jobs=-1, **kwargs)
    dask_cluster.close()
    return table


@click.command("count-frames", cls=Command)
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False))
def count_frames(input_file):
    """Count the frames (and dropped, NaN frames) of each session in a PC-score file."""
    import h5py

    with about(input_file), h5py.File(input_file, "r") as f:
        if "scores" not in f:
            raise FileError(input_file, "has no 'scores' group (moseq2-pca layout).")
        names = sorted(f["scores"].keys())
        total = nan_total = 0
        for name in names:
            block = f["scores"][name][()]
            n_nan = int(np.isnan(block).any(axis=1).sum())
            total += len(block)
            nan_total += n_nan
            click.echo(f"{name}: {len(block):,} frames ({n_nan} NaN) x {block.shape[1]} PCs")
    click.echo(f"total: {total:,} frames ({nan_total} NaN) in {len(names)} session(s)")
