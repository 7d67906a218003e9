"""``behavhmm demo``: the bundled recording, or recovery of a simulated model."""

from __future__ import annotations

import time

import click
import numpy as np

from .._version import __version__
from ._errors import Command
from ._keypoints import _fit_keypoint_files

_SIMULATED_ONLY = ("n_states", "n_features", "nlags", "n_sessions", "frames_per_session", "which")


@click.command(cls=Command)
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
    help="Instead of the real recording: simulate sessions from a known model, fit one, report "
    "recovery.",
)
@click.option(
    "--model",
    "which",
    type=click.Choice(["arhmm", "keypoints"]),
    default="arhmm",
    show_default=True,
    help="With --simulated: arhmm, PC-like features from a known ARHMM; keypoints, 2-D keypoints "
    "from a "
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
    """The keypoint workflow of ``fit-keypoints`` on the bundled recording (demo settings)."""
    from ..datasets import DEMO_KEYPOINT_SETTINGS, DEMO_RECORDING_FPS, demo_recording

    tic = time.perf_counter()
    path = demo_recording()
    settings = DEMO_KEYPOINT_SETTINGS
    click.echo(f"behavhmm {__version__} demo: syllables from a real recording\n")
    click.echo(
        f"Recording: {path.name}\n(DeepLabCut's open-field mouse, top view, bundled with behavhmm; "
        "MIT licence, "
        f"see {path.parent / 'README.md'})."
    )
    click.echo(
        f"Model: keypoint SLDS (Keypoint-MoSeq), latent_dim={settings['latent_dim']}, "
        f"nlags={settings['nlags']}, "
        f"up to {settings['n_states']} syllables, kappa={settings['kappa']:g}; "
        f"{settings['n_iter_ar']} AR-only "
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
        f"Median syllable duration: {stats['median_ms']:.0f} ms ({stats['median_frames']:.1f} "
        "frames)\n"
        f"Log-likelihood: {stats['ll_per_frame']:.4f} nats/frame\n"
    )
    out = fitted["run_dir"]
    click.echo(f"Files in {out}/:")
    click.echo(
        f"  {fitted['written']['csv'][0].name:<24} per-frame syllable, centroid, heading, latent "
        "pose"
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
    from ..analysis import match_states, state_accuracy
    from ..datasets import demo_arhmm, simulate_demo_sessions
    from ..models import ARHMM

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
        "State recovery (Viterbi, states matched by the Hungarian method): "
        f"{100 * acc:.2f}% of frames"
    )
    click.echo(
        f"Log-likelihood per frame: fitted {ll_fit:.4f}, true parameters {ll_true:.4f} (nats)\n"
    )
    _echo_recovery_table(truth, model, z_true, z_fit, perm)


def _echo_recovery_table(truth, model, z_true, z_fit, perm):
    """Usage, dwell time and parameter errors per true state, and both transition matrices."""
    n_states = model.n_states
    n_frames = int(np.sum(z_true >= 0))

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

    from ..analysis import state_accuracy
    from ..datasets import demo_keypoint_slds
    from ..models import KeypointSLDS

    truth = demo_keypoint_slds(n_states, seed=seed)
    n = n_sessions * frames_per_session
    starts = np.zeros(n, bool)
    starts[::frames_per_session] = True
    sim = truth.simulate(jax.random.key(seed), n, session_starts=starts)
    click.echo(f"behavhmm {__version__} demo: keypoint SLDS recovery on simulated keypoints\n")
    click.echo(
        f"Simulated {n_sessions} sessions x {frames_per_session:,} frames of 6 keypoints (2-D, "
        "pixels) from a known "
        f"keypoint SLDS\n(n_states={n_states}, latent_dim={truth.latent_dim}, nlags=1, heading and "
        "centroid "
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
        "State recovery (deterministic decoding, states matched by the Hungarian method): "
        f"{100 * acc:.2f}% "
        "of frames"
    )
    click.echo(f"Heading error: median {np.degrees(np.median(np.abs(err))):.2f} degrees")
    click.echo(
        f"Centroid error: median {np.median(cerr):.2f} pixels (the body is about 40 pixels long)"
    )
