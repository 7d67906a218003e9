"""The ``behavhmm`` command line."""

from __future__ import annotations

import time

import click
import numpy as np

from ._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="behavhmm")
def main():
    """behavhmm: discrete behavioural states from pose and neural time series."""


@main.command()
@click.option("--n-states", default=4, show_default=True, help="States of the simulated model.")
@click.option("--n-features", default=3, show_default=True, help="Features (pose dimensions).")
@click.option("--nlags", default=2, show_default=True, help="Autoregressive lags.")
@click.option("--sessions", "n_sessions", default=4, show_default=True, help="Simulated sessions.")
@click.option("--frames", "frames_per_session", default=2500, show_default=True, help="Frames per session.")
@click.option("--seed", default=0, show_default=True, help="Seed of the simulation and of the fit.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def demo(n_states, n_features, nlags, n_sessions, frames_per_session, seed, no_progress):
    """Simulate sessions from a known ARHMM, fit a fresh one, and report recovery."""
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
        n_states=n_states, nlags=nlags, kappa=100.0, alpha=1.0, n_iter=200, tol=1e-5,
        random_state=seed, progress_bar=not no_progress,
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
    click.echo(f"State recovery (Viterbi, states matched by the Hungarian method): {100 * acc:.2f}% of frames")
    click.echo(f"Log-likelihood per frame: fitted {ll_fit:.4f}, true parameters {ll_true:.4f} (nats)\n")

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


if __name__ == "__main__":  # pragma: no cover
    main()
