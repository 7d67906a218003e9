"""The ``behavhmm`` command line."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from ._files import atomic_path
from ._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="behavhmm")
def main():
    """behavhmm: discrete behavioural states from pose and neural time series."""


_SIMULATED_ONLY = ("n_states", "n_features", "nlags", "n_sessions", "frames_per_session", "which")


@main.command()
@click.option(
    "--out",
    "out_dir",
    default="behavhmm-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the syllables CSV, the model and the figures (real-recording demo).",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the fit (and of the simulation)."
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@click.option(
    "--simulated",
    is_flag=True,
    help="Instead of the real recording: simulate sessions from a known model, fit one, report recovery.",
)
@click.option(
    "--model",
    "which",
    type=click.Choice(["arhmm", "keypoints"]),
    default="arhmm",
    show_default=True,
    help="With --simulated: arhmm, PC-like features from a known ARHMM; keypoints, 2-D keypoints from a "
    "known keypoint SLDS.",
)
@click.option(
    "--n-states",
    default=4,
    show_default=True,
    help="With --simulated: states of the simulated model.",
)
@click.option(
    "--n-features",
    default=3,
    show_default=True,
    help="With --simulated: features (pose dimensions).",
)
@click.option(
    "--nlags", default=2, show_default=True, help="With --simulated: autoregressive lags."
)
@click.option(
    "--sessions", "n_sessions", default=4, show_default=True, help="With --simulated: sessions."
)
@click.option(
    "--frames",
    "frames_per_session",
    default=2500,
    show_default=True,
    help="With --simulated: frames per session.",
)
@click.pass_context
def demo(
    ctx,
    out_dir,
    seed,
    no_progress,
    simulated,
    which,
    n_states,
    n_features,
    nlags,
    n_sessions,
    frames_per_session,
):
    """Syllables from a real recording: fit the keypoint model to the bundled DeepLabCut mouse.

    Runs what `behavhmm fit-keypoints` runs, on the open-field mouse of
    DeepLabCut's examples that ships with behavhmm (2,330 frames x 4
    keypoints at 30 fps, MIT licence), and writes the per-frame syllables
    (CSV and HDF5), the model and the figures to --out. With --simulated it
    fits a model to sessions simulated from a known one and reports how well
    the truth is recovered (--model keypoints: a keypoint SLDS).
    """
    if not simulated:
        given = [
            name
            for name in _SIMULATED_ONLY
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            options = ", ".join(
                "--"
                + {"which": "model", "n_sessions": "sessions", "frames_per_session": "frames"}.get(
                    n, n
                ).replace("_", "-")
                for n in given
            )
            verb = "describes" if len(given) == 1 else "describe"
            raise click.UsageError(f"{options} {verb} the simulated demo: add --simulated.")
        return _recording_demo(out_dir, seed, no_progress)
    if ctx.get_parameter_source("out_dir") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--simulated writes no files: drop --out.")
    if which == "keypoints":
        return _keypoint_demo(n_states, n_sessions, frames_per_session, seed, no_progress)
    _arhmm_demo(n_states, n_features, nlags, n_sessions, frames_per_session, seed, no_progress)


def _recording_demo(out_dir, seed, no_progress):
    """The keypoint workflow of ``fit-keypoints`` on the bundled recording, with the demo's settings."""
    from .datasets import DEMO_KEYPOINT_SETTINGS, DEMO_RECORDING_FPS, demo_recording

    tic = time.perf_counter()
    path = demo_recording()
    settings = DEMO_KEYPOINT_SETTINGS
    click.echo(f"behavhmm {__version__} demo: syllables from a real recording\n")
    click.echo(
        f"Recording: {path.name}\n(DeepLabCut's open-field mouse, top view, bundled with behavhmm; MIT licence, "
        f"see {path.parent / 'README.md'})."
    )
    click.echo(
        f"Model: keypoint SLDS (Keypoint-MoSeq), latent_dim={settings['latent_dim']}, nlags={settings['nlags']}, "
        f"up to {settings['n_states']} syllables, kappa={settings['kappa']:g}; {settings['n_iter_ar']} AR-only "
        f"sweeps, then {settings['n_iter']} full-model sweeps; seed {seed}.\n"
    )
    fitted = _fit_keypoint_files(
        [str(path)],
        out_dir,
        fps=DEMO_RECORDING_FPS,
        model_params={**settings, "random_state": seed},
        no_progress=no_progress,
        echo_summary=False,
    )
    stats = fitted["stats"]
    click.echo(
        f"\nFrames: {stats['n_frames']:,} ({stats['n_frames'] / DEMO_RECORDING_FPS:.0f} s at "
        f"{DEMO_RECORDING_FPS:g} fps)\n"
        f"Syllables used: {stats['n_used_2pct']} in at least 2 % of the frames "
        f"({stats['n_used']} in at least 0.5 %) of {settings['n_states']}\n"
        f"Median syllable duration: {stats['median_ms']:.0f} ms ({stats['median_frames']:.1f} frames)\n"
        f"Log-likelihood: {stats['ll_per_frame']:.4f} nats/frame\n"
    )
    out = Path(out_dir)
    click.echo(f"Files in {out}/:")
    click.echo(
        f"  {fitted['written']['csv'][0].name:<24} per-frame syllable, centroid, heading, latent pose"
    )
    click.echo(f"  {fitted['written']['h5'].name:<24} the same with syllable probabilities (HDF5)")
    click.echo(
        f"  {'model.npz':<24} the fitted model (behavhmm.load_model; behavhmm apply-keypoints)"
    )
    for fig in fitted["figures"]:
        click.echo(f"  {fig.name:<24} figure")
    click.echo(
        f"\nFitted, decoded and written in {time.perf_counter() - tic:.0f} s. Your own files: "
        "behavhmm fit-keypoints FILE... --out DIR (see behavhmm fit-keypoints --help)."
    )


def _arhmm_demo(n_states, n_features, nlags, n_sessions, frames_per_session, seed, no_progress):
    from .analysis import match_states, state_accuracy
    from .datasets import demo_arhmm, simulate_demo_sessions
    from .models import ARHMM

    truth = demo_arhmm(n_states, n_features, nlags, seed=seed)
    X, z_true, starts, _ = simulate_demo_sessions(truth, n_sessions, frames_per_session, seed=seed)
    click.echo(f"behavhmm {__version__} demo: ARHMM recovery on simulated behaviour\n")
    click.echo(
        f"Simulated {n_sessions} sessions x {frames_per_session:,} frames = {len(X):,} frames of "
        f"{n_features} features from a known sticky ARHMM\n(n_states={n_states}, nlags={nlags}, "
        f"self-transition {truth.transition_prob_[0, 0]:.2f}, seed {seed}).\n"
    )
    model = ARHMM(
        n_states=n_states,
        nlags=nlags,
        kappa=100.0,
        alpha=1.0,
        n_iter=200,
        tol=1e-5,
        random_state=seed,
        progress_bar=not no_progress,
    )
    click.echo(f"Fitting {model!r} by EM ...")
    tic = time.perf_counter()
    model.fit(X, session_starts=starts)
    elapsed = time.perf_counter() - tic
    n_frames = int(np.sum(z_true >= 0))
    status = "converged" if model.converged_ else "stopped (not converged)"
    click.echo(f"EM {status} after {model.n_iter_} iterations in {elapsed:.1f} s.\n")

    z_fit = model.decode_state(X, session_starts=starts, state_format="index")
    perm = match_states(z_true, z_fit, n_states)
    acc = state_accuracy(z_true, z_fit, n_states)
    ll_fit = model.score(X, session_starts=starts) / n_frames
    ll_true = truth.score(X, session_starts=starts) / n_frames
    click.echo(
        f"State recovery (Viterbi, states matched by the Hungarian method): {100 * acc:.2f}% of frames"
    )
    click.echo(
        f"Log-likelihood per frame: fitted {ll_fit:.4f}, true parameters {ll_true:.4f} (nats)\n"
    )

    def dwell(p):
        return 1.0 / max(1.0 - p, 1e-12)

    usage_true = np.bincount(z_true[z_true >= 0], minlength=n_states) / n_frames
    z_fit_matched = np.argsort(perm)[z_fit[z_fit >= 0]]
    usage_fit = np.bincount(z_fit_matched, minlength=n_states) / n_frames
    trans_fit = model.transition_prob_[np.ix_(perm, perm)]
    header = (
        f"{'state':>5} | {'usage true/fit':>15} | {'dwell true/fit':>16} | "
        f"{'max|coef err|':>13} | {'max|intercept err|':>18} | {'max|cov err|':>12}"
    )
    click.echo("Recovered vs true parameters (fitted states matched to the true ones):")
    click.echo(header)
    click.echo("-" * len(header))
    for k in range(n_states):
        j = perm[k]
        click.echo(
            f"{k:>5} | {usage_true[k]:>6.3f} / {usage_fit[k]:<6.3f} | "
            f"{dwell(truth.transition_prob_[k, k]):>6.1f} / {dwell(trans_fit[k, k]):<7.1f} | "
            f"{np.abs(model.coef_[j] - truth.coef_[k]).max():>13.3f} | "
            f"{np.abs(model.intercept_[j] - truth.intercept_[k]).max():>18.3f} | "
            f"{np.abs(model.covariances_[j] - truth.covariances_[k]).max():>12.4f}"
        )
    click.echo("\nTransition matrix, true (left) and fitted (right):")
    for k in range(n_states):
        left = " ".join(f"{v:.3f}" for v in truth.transition_prob_[k])
        right = " ".join(f"{v:.3f}" for v in trans_fit[k])
        click.echo(f"  [{left}]    [{right}]")


def _keypoint_demo(n_states, n_sessions, frames_per_session, seed, no_progress):
    import jax

    from .analysis import state_accuracy
    from .datasets import demo_keypoint_slds
    from .models import KeypointSLDS

    truth = demo_keypoint_slds(n_states, seed=seed)
    n = n_sessions * frames_per_session
    starts = np.zeros(n, bool)
    starts[::frames_per_session] = True
    sim = truth.simulate(jax.random.key(seed), n, session_starts=starts)
    click.echo(f"behavhmm {__version__} demo: keypoint SLDS recovery on simulated keypoints\n")
    click.echo(
        f"Simulated {n_sessions} sessions x {frames_per_session:,} frames of 6 keypoints (2-D, pixels) from a known "
        f"keypoint SLDS\n(n_states={n_states}, latent_dim={truth.latent_dim}, nlags=1, heading and centroid "
        f"random walks, noisy keypoints, seed {seed}).\n"
    )
    model = KeypointSLDS(
        n_states=n_states,
        latent_dim=truth.latent_dim,
        nlags=1,
        kappa=100.0,
        n_iter_ar=10,
        n_iter=30,
        anterior_bodyparts=0,
        posterior_bodyparts=5,
        random_state=seed,
        progress_bar=not no_progress,
    )
    click.echo("Fitting: PCA, AR-only stage (10 sweeps), full model (30 sweeps) ...")
    tic = time.perf_counter()
    model.fit(sim.keypoints, session_starts=starts)
    click.echo(f"Fitted in {time.perf_counter() - tic:.1f} s.\n")
    dec = model.decode(sim.keypoints, session_starts=starts)
    acc = state_accuracy(sim.states, dec.states, n_states)
    err = np.angle(np.exp(1j * (dec.heading - sim.heading)))
    err = np.angle(
        np.exp(1j * (err - np.angle(np.mean(np.exp(1j * err)))))
    )  # the egocentric frame's fixed offset
    shift = dec.centroid - sim.centroid
    cerr = np.linalg.norm(shift - shift.mean(axis=0), axis=1)
    click.echo(
        f"State recovery (deterministic decoding, states matched by the Hungarian method): {100 * acc:.2f}% "
        "of frames"
    )
    click.echo(f"Heading error: median {np.degrees(np.median(np.abs(err))):.2f} degrees")
    click.echo(
        f"Centroid error: median {np.median(cerr):.2f} pixels (the body is about 40 pixels long)"
    )


# ----------------------------------------------------------------------------
# MoSeq-style commands on PC scores (moseq2-pca HDF5 files)
# ----------------------------------------------------------------------------


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
    from .io import load_pc_scores

    try:
        return load_pc_scores(path, npcs, index=index_file, nan_policy=nan_policy)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


def _summary(model, scores, labels, fps):
    from .analysis import median_duration

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
    from .analysis import relabel_by_usage
    from .io import write_syllable_results

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


@main.command("learn-model")
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
):
    """Fit an AR-HMM to PC scores (moseq2-pca HDF5) and write the model and the labels."""
    from .models import ARHMM

    scores = _load_scores(input_file, npcs, index_file, nan_policy)
    if separate_trans and scores.groups is None:
        raise click.UsageError("--separate-trans needs --index (the sessions' groups).")
    n_frames = len(scores.scores)
    click.echo(
        f"Read {n_frames:,} frames x {scores.scores.shape[1]} PCs from {len(scores.sessions)} session(s) "
        f"({int(scores.filled.sum())} dropped frames interpolated)."
    )
    checkpoint = str(dest_file) + ".checkpoint.npz" if (checkpoint_every or resume) else None
    model = ARHMM(
        n_states=n_states,
        nlags=nlags,
        algorithm=algorithm,
        alpha=alpha,
        gamma=gamma,
        robust=robust,
        separate_trans=separate_trans,
        whiten=whiten,
        n_iter=n_iter,
        random_state=seed,
        kappa=float(n_frames if kappa is None else kappa),
        target_duration=None if target_duration is None else target_duration * fps,
        checkpoint_path=checkpoint,
        checkpoint_every=checkpoint_every,
        progress_bar=not no_progress,
    )
    tic = time.perf_counter()
    try:
        model.fit(
            scores.scores,
            session_starts=scores.session_starts,
            groups=scores.session_groups,
            resume=resume,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Fitted {algorithm} in {time.perf_counter() - tic:.1f} s (kappa = {model.kappa_:.4g})."
    )
    model.save_params(dest_file)
    labels = model.predict(
        scores.scores, session_starts=scores.session_starts, groups=scores.session_groups
    )
    results = results_file or str(Path(dest_file).with_suffix("")) + ".results.h5"
    _write_results(
        results,
        model,
        scores,
        labels,
        {"model": str(dest_file), "input": str(input_file), "kappa": model.kappa_, "fps": fps},
    )
    _summary(model, scores, labels, fps)
    click.echo(f"Wrote {dest_file} and {results}.")


@main.command("apply-model")
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
    from .models import load_model

    try:
        model = load_model(model_file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
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


@main.command("kappa-scan")
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
    help="Run the fits on a Dask cluster (needs the 'cluster' extra): local processes or SLURM jobs.",
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
    import joblib

    from .analysis import kappa_scan
    from .models import ARHMM

    scores = _load_scores(input_file, npcs, index_file, nan_policy)
    model = ARHMM(
        n_states=n_states,
        nlags=nlags,
        algorithm=algorithm,
        alpha=alpha,
        gamma=gamma,
        robust=robust,
        whiten=whiten,
        n_iter=n_iter,
        random_state=seed,
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

            dask_cluster = SLURMCluster(
                cores=slurm_cores, memory=slurm_memory, walltime=slurm_walltime, queue=slurm_queue
            )
            dask_cluster.scale(jobs=slurm_jobs)
        with Client(dask_cluster), joblib.parallel_config(backend="dask"):
            table = kappa_scan(model, scores.scores, n_jobs=-1, **kwargs)
        dask_cluster.close()
    with atomic_path(dest_file) as tmp:
        table.to_csv(tmp, index=False)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"Wrote {dest_file}.")


def _bodypart_index(name, bodyparts, option):
    if name is None:
        return None
    if name not in bodyparts:
        raise click.BadParameter(
            f"{name!r} is not one of the bodyparts {list(bodyparts)}.", param_hint=option
        )
    return bodyparts.index(name)


def _split_names(value):
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _keypoint_stats(model, results, log_likelihood) -> dict:
    """Frames, syllables used, median duration and log-likelihood per frame of keypoint results."""
    from .analysis import median_duration

    syllables = np.concatenate([r.syllables for r in results])
    starts = np.zeros(len(syllables), bool)
    starts[np.cumsum([0] + [len(r.syllables) for r in results[:-1]])] = True
    used = np.bincount(syllables[syllables >= 0], minlength=model.n_states)
    total = max(int(used.sum()), 1)
    med = float(median_duration(syllables, starts))
    fps = results[0].fps
    return {
        "n_frames": len(syllables),
        "n_sessions": len(results),
        "n_labelled": int(used.sum()),
        "n_used": int(np.sum(used >= 0.005 * total)),
        "n_used_2pct": int(np.sum(used >= 0.02 * total)),
        "median_frames": med,
        "median_ms": 1000 * med / fps if fps else None,
        "ll_per_frame": float(log_likelihood) / total,
    }


def _keypoint_summary(model, results, log_likelihood):
    st = _keypoint_stats(model, results, log_likelihood)
    ms = f" = {st['median_ms']:.0f} ms" if st["median_ms"] is not None else ""
    click.echo(
        f"frames: {st['n_frames']:,} in {st['n_sessions']} session(s) | syllables used (>=0.5% of frames): "
        f"{st['n_used']} of {model.n_states} | median duration: {st['median_frames']:.1f} frames{ms} | "
        f"log-likelihood: {st['ll_per_frame']:.4f} nats/frame"
    )


def _fit_keypoint_files(
    files,
    out_dir,
    *,
    model_params,
    bodyparts=None,
    anterior=None,
    posterior=None,
    fps=None,
    target_duration=None,
    outlier_threshold=6.0,
    checkpoint_every=None,
    resume=False,
    no_plots=False,
    no_progress=False,
    echo_summary=True,
) -> dict:
    """The keypoint workflow of ``fit-keypoints`` (and of ``demo``): load, clean, fit, write, draw.

    ``model_params`` are KeypointSLDS arguments; ``anterior``/``posterior``
    (bodypart names) override its ``anterior_bodyparts``/``posterior_bodyparts``.
    Returns ``{"model", "results", "written", "figures", "stats"}``.
    """
    from .analysis import permute_states
    from .models import KeypointSLDS
    from .workflows import (
        fit_keypoints,
        keypoint_results,
        load_and_clean,
        plot_keypoint_summary,
        write_keypoint_results,
    )

    try:
        sessions, coords, conf, names = load_and_clean(
            files, bodyparts=_split_names(bodyparts), fps=fps, outlier_threshold=outlier_threshold
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    parts = list(sessions.bodyparts)
    params = {"anterior_bodyparts": 0, "posterior_bodyparts": -1, **model_params}
    front = _bodypart_index(anterior, parts, "--anterior")
    back = _bodypart_index(posterior, parts, "--posterior")
    if front is not None:
        params["anterior_bodyparts"] = front
    if back is not None:
        params["posterior_bodyparts"] = back
    rates = [s.fps for s in sessions]
    rate = rates[0] if len(set(rates)) == 1 else None
    click.echo(
        f"Read {len(coords):,} frames x {len(parts)} keypoints ({coords.shape[2]}-D) in {len(names)} session(s)"
        + (f" at {rate:g} fps" if rate else "")
        + f"; {int((conf == 0).sum()):,} points missing or outliers."
    )
    target = None
    if target_duration is not None:
        if not rate:
            raise click.UsageError(
                "--target-duration is in seconds and needs the frame rate: give --fps."
            )
        target = target_duration * rate
    model = KeypointSLDS(
        **params,
        progress_bar=not no_progress,
        checkpoint_path=str(Path(out_dir) / "model.checkpoint.npz")
        if (checkpoint_every or resume)
        else None,
        checkpoint_every=checkpoint_every,
    )
    if model.checkpoint_path is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    try:
        fit_keypoints(
            model, coords, conf, sessions.session_starts, target_duration=target, resume=resume
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Fitted in {time.perf_counter() - tic:.1f} s (kappa = {model.kappa:.4g}).")
    decoding = model.decode(
        coords, conf, session_starts=sessions.session_starts, smoothed_proba=True
    )
    results, order = keypoint_results(
        model,
        coords,
        conf,
        sessions.session_starts,
        names,
        sources=sessions.sources,
        fps=rates,
        decoding=decoding,
    )
    model = permute_states(model, order)  # the saved model's syllable i is the i-th most used
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_params(out / "model.npz")
    ll = (
        decoding.log_likelihood
    )  # = model.score(coords, conf, ...): the relabelling does not change it
    written = write_keypoint_results(
        # the model file by name: it lies beside results.h5, and the folder can move
        results,
        out,
        attrs={"model": "model.npz", "kappa": float(model.kappa), "bodyparts": parts},
    )
    if echo_summary:
        _keypoint_summary(model, results, ll)
    figures = [] if no_plots else plot_keypoint_summary(model, results, out)
    return {
        "model": model,
        "results": results,
        "written": written,
        "figures": figures,
        "stats": _keypoint_stats(model, results, ll),
    }


@main.command("fit-keypoints")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the model, results and figures.",
)
@click.option(
    "--bodyparts", default=None, help="Comma-separated keypoints to model (default: all)."
)
@click.option(
    "--anterior", default=None, help="Bodypart at the front of the body (default: the first)."
)
@click.option(
    "--posterior", default=None, help="Bodypart at the back of the body (default: the last)."
)
@click.option(
    "--fps", type=float, default=None, help="Frames per second, for files that do not say."
)
@click.option(
    "--latent-dim", default=10, show_default=True, help="Dimensions of the latent pose (PCs)."
)
@click.option("--n-states", default=100, show_default=True, help="Maximum number of syllables.")
@click.option(
    "--nlags", default=3, show_default=True, help="Autoregressive lags of the latent pose."
)
@click.option(
    "--kappa",
    type=float,
    default=1e6,
    show_default=True,
    help="Stickiness (larger: longer syllables).",
)
@click.option(
    "--target-duration",
    type=float,
    default=None,
    help="Median syllable duration to reach, in seconds (needs fps): kappa is then chosen by bisection.",
)
@click.option(
    "--ar-iters", default=50, show_default=True, help="Gibbs sweeps of the AR-only stage."
)
@click.option("--iters", default=50, show_default=True, help="Gibbs sweeps of the full model.")
@click.option(
    "--outlier-threshold", default=6.0, show_default=True, help="Outlier cut in MAD multiples."
)
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option(
    "--checkpoint-every",
    type=int,
    default=None,
    help="Write OUT/model.checkpoint.npz every N full-model sweeps (and after the last).",
)
@click.option(
    "--resume", is_flag=True, help="Continue the full-model chain from OUT/model.checkpoint.npz."
)
@click.option("--no-plots", is_flag=True, help="Do not draw figures.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def fit_keypoints_command(
    files,
    out_dir,
    bodyparts,
    anterior,
    posterior,
    fps,
    latent_dim,
    n_states,
    nlags,
    kappa,
    target_duration,
    ar_iters,
    iters,
    outlier_threshold,
    seed,
    checkpoint_every,
    resume,
    no_plots,
    no_progress,
):
    """Syllables from pose tracking files: load, clean, fit a keypoint SLDS, write results and figures."""
    fitted = _fit_keypoint_files(
        files,
        out_dir,
        bodyparts=bodyparts,
        anterior=anterior,
        posterior=posterior,
        fps=fps,
        model_params={
            "n_states": n_states,
            "latent_dim": latent_dim,
            "nlags": nlags,
            "kappa": kappa,
            "n_iter_ar": ar_iters,
            "n_iter": iters,
            "random_state": seed,
        },
        target_duration=target_duration,
        outlier_threshold=outlier_threshold,
        checkpoint_every=checkpoint_every,
        resume=resume,
        no_plots=no_plots,
        no_progress=no_progress,
    )
    out, written = Path(out_dir), fitted["written"]
    click.echo(
        f"Wrote {out / 'model.npz'}, {written['h5']} and {len(written['csv'])} CSV file(s) to {out}."
    )


@main.command("apply-keypoints")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the results.",
)
@click.option(
    "--bodyparts", default=None, help="Comma-separated keypoints, as in the fit (default: all)."
)
@click.option(
    "--fps", type=float, default=None, help="Frames per second, for files that do not say."
)
@click.option(
    "--outlier-threshold", default=6.0, show_default=True, help="Outlier cut in MAD multiples."
)
def apply_keypoints_command(model_file, files, out_dir, bodyparts, fps, outlier_threshold):
    """Label new recordings with a fitted keypoint model (deterministic: the same labels every run)."""
    from .models import load_model
    from .workflows import keypoint_results, load_and_clean, write_keypoint_results

    try:
        model = load_model(model_file)
        sessions, coords, conf, names = load_and_clean(
            files, bodyparts=_split_names(bodyparts), fps=fps, outlier_threshold=outlier_threshold
        )
        decoding = model.decode(
            coords, conf, session_starts=sessions.session_starts, smoothed_proba=True
        )
        results, _ = keypoint_results(
            model,
            coords,
            conf,
            sessions.session_starts,
            names,
            sources=sessions.sources,
            fps=[s.fps for s in sessions],
            order=np.arange(model.n_states),
            decoding=decoding,
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    ll = decoding.log_likelihood
    written = write_keypoint_results(results, out_dir, attrs={"model": str(model_file)})
    _keypoint_summary(model, results, ll)
    click.echo(f"Wrote {written['h5']} and {len(written['csv'])} CSV file(s) to {out_dir}.")


@main.command("count-frames")
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False))
def count_frames(input_file):
    """Count the frames (and dropped, NaN frames) of each session in a PC-score file."""
    import h5py

    with h5py.File(input_file, "r") as f:
        if "scores" not in f:
            raise click.UsageError(f"{input_file} has no 'scores' group (moseq2-pca layout).")
        names = sorted(f["scores"].keys())
        total = nan_total = 0
        for name in names:
            block = f["scores"][name][()]
            n_nan = int(np.isnan(block).any(axis=1).sum())
            total += len(block)
            nan_total += n_nan
            click.echo(f"{name}: {len(block):,} frames ({n_nan} NaN) x {block.shape[1]} PCs")
    click.echo(f"total: {total:,} frames ({nan_total} NaN) in {len(names)} session(s)")


@main.command("report")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the report.",
)
@click.option(
    "--groups",
    "groups_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CSV with columns session,group (default: one group).",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Model file (default: RESULTS_DIR/model.npz).",
)
@click.option(
    "--statistic",
    default="frequency",
    show_default=True,
    help="Syllable statistic compared and plotted.",
)
@click.option("--max-syllables", default=20, show_default=True, help="Syllables shown in figures.")
@click.option(
    "--no-keypoints", is_flag=True, help="Do not reload pose files (no trajectories or movies)."
)
@click.option("--no-movies", is_flag=True, help="No GIF animations.")
def report_command(
    results_dir, out_dir, groups_file, model_file, statistic, max_syllables, no_keypoints, no_movies
):
    """Tables, figures and an HTML page from a keypoint results folder (fit-keypoints / apply-keypoints)."""
    from .report import write_report

    try:
        index = write_report(
            results_dir,
            out_dir,
            groups=groups_file,
            model=model_file,
            statistic=statistic,
            max_syllables=max_syllables,
            keypoints=not no_keypoints,
            movies=not no_movies,
        )
    except (ValueError, FileNotFoundError, KeyError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Wrote {index} and its tables and figures.")


@main.command("merge-syllables")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("dest_file", type=click.Path(dir_okay=False))
@click.option(
    "--merge",
    "merges",
    multiple=True,
    required=True,
    help="Comma-separated syllables merged into the smallest of them (repeat for several groups).",
)
def merge_syllables_command(model_file, dest_file, merges):
    """Write a copy of a model whose syllables are merged many-to-one (its dynamics are unchanged)."""
    from .analysis import merge_syllables
    from .models import load_model

    model = load_model(model_file)
    try:
        groups = [[int(v) for v in m.split(",") if v.strip()] for m in merges]
        merged = merge_syllables(model, groups)
    except ValueError as exc:
        raise click.ClickException(f"--merge: {exc}") from exc
    merged.save_params(dest_file)
    mapping = merged.syllable_mapping_
    moved = {int(k): int(v) for k, v in enumerate(mapping) if k != v}
    click.echo(
        f"Wrote {dest_file}: syllables {moved} (old: new) relabelled; "
        f"{len(set(mapping.tolist()))} distinct labels of {len(mapping)}."
    )


# ------------------------------------------------------------------ motifs (LISBET's unsupervised half)
def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


@main.command("segment-motifs")
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
    help="Models fitted in parallel (joblib threads; -1: all cores).",
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
      behavhmm segment-motifs features/ --min-n-states 2 --max-n-states 12 --cv 5 --n-jobs 4 --out motifs
    """
    from . import GaussianHMM
    from .io import load_features
    from .model_selection import scan_n_states

    if not 1 <= min_n_states <= max_n_states:
        raise click.BadParameter(
            "need 1 <= --min-n-states <= --max-n-states.", param_hint="--min-n-states"
        )
    try:
        feats = load_features(features_dir)
        click.echo(
            f"{len(feats.names)} sequences, {feats.X.shape[0]} frames x {feats.X.shape[1]} features."
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
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
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


@main.command("select-prototypes")
@click.argument("scan_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--fps", type=float, required=True, help="Frames per second of the sequences.")
@click.option(
    "--method",
    type=click.Choice(["best", "min"]),
    default="best",
    show_default=True,
    help="best: the column with the highest silhouette per cluster; min: the one from the smallest K.",
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
    from .model_selection import NStatesScan, select_prototypes

    try:
        scan = NStatesScan.load(scan_dir)
        protos = select_prototypes(
            scan,
            fps,
            min_frame_fraction=min_frame_fraction,
            min_bout_s=min_bout_s,
            max_distance=max_distance,
            method=method,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
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
        f"{len(protos.columns_)} states passed the filters; {protos.n_clusters_} clusters; prototypes "
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


if __name__ == "__main__":  # pragma: no cover
    main()
