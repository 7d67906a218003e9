"""Keypoint commands: fit-keypoints and apply-keypoints on pose-tracking files."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from ._errors import Command, about, load_model_file


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
    from ..analysis import median_duration

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


def _summary_line(model, st: dict) -> str:
    ms = f" = {st['median_ms']:.0f} ms" if st["median_ms"] is not None else ""
    return (
        f"frames: {st['n_frames']:,} in {st['n_sessions']} session(s) | syllables used (>=0.5% of "
        "frames): "
        f"{st['n_used']} of {model.n_states} | median duration: {st['median_frames']:.1f} "
        f"frames{ms} | "
        f"log-likelihood: {st['ll_per_frame']:.4f} nats/frame"
    )


def _keypoint_summary(model, results, log_likelihood):
    click.echo(_summary_line(model, _keypoint_stats(model, results, log_likelihood)))


def _body_axis(model_params, parts, anterior, posterior) -> dict:
    """KeypointSLDS arguments with the --anterior/--posterior bodypart names as indices."""
    params = {"anterior_bodyparts": 0, "posterior_bodyparts": -1, **model_params}
    front = _bodypart_index(anterior, parts, "--anterior")
    back = _bodypart_index(posterior, parts, "--posterior")
    if front is not None:
        params["anterior_bodyparts"] = front
    if back is not None:
        params["posterior_bodyparts"] = back
    return params


def _read_keypoint_files(files, bodyparts, fps, outlier_threshold, log):
    """Load and clean the pose files; log what was read. Returns (sessions, coords, conf, names)."""
    from ..workflows import load_and_clean

    with about(files):
        sessions, coords, conf, names = load_and_clean(
            files, bodyparts=_split_names(bodyparts), fps=fps, outlier_threshold=outlier_threshold
        )
    rate = _common_rate(sessions)
    log(
        f"Read {len(coords):,} frames x {len(sessions.bodyparts)} keypoints ({coords.shape[2]}-D) "
        f"in {len(names)} session(s)"
        + (f" at {rate:g} fps" if rate else "")
        + f"; {int((conf == 0).sum()):,} points missing or outliers."
    )
    return sessions, coords, conf, names


def _common_rate(sessions):
    rates = [s.fps for s in sessions]
    return rates[0] if len(set(rates)) == 1 else None


def _keypoint_model(params, out_dir, checkpoint_every, resume, no_progress):
    """The KeypointSLDS of a fit; its checkpoint (if any) lives in ``out_dir`` itself."""
    from ..models import KeypointSLDS

    checkpoint = None
    if checkpoint_every or resume:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        checkpoint = str(Path(out_dir) / "model.checkpoint.npz")
    return KeypointSLDS(
        **params,
        progress_bar=not no_progress,
        checkpoint_path=checkpoint,
        checkpoint_every=checkpoint_every,
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
    The results go to a run directory (`behavhmm.runs.claim_run_dir`): ``out_dir``
    itself, or ``out_dir/version_N`` when it already holds a run.
    Returns ``{"model", "results", "written", "figures", "stats", "run_dir"}``.
    """
    from ..runs import RunLog, claim_run_dir
    from ..workflows import fit_keypoints, plot_keypoint_summary

    log = RunLog(click.echo)
    sessions, coords, conf, names = _read_keypoint_files(
        files, bodyparts, fps, outlier_threshold, log
    )
    params = _body_axis(model_params, list(sessions.bodyparts), anterior, posterior)
    rate = _common_rate(sessions)
    if target_duration is not None and not rate:
        raise click.UsageError(
            "--target-duration is in seconds and needs the frame rate: give --fps."
        )
    target = None if target_duration is None else target_duration * rate
    model = _keypoint_model(params, out_dir, checkpoint_every, resume, no_progress)
    tic = time.perf_counter()
    with about(files):
        fit_keypoints(
            model, coords, conf, sessions.session_starts, target_duration=target, resume=resume
        )
    log(f"Fitted in {time.perf_counter() - tic:.1f} s (kappa = {model.kappa:.4g}).")
    run_dir = claim_run_dir(out_dir)
    model, results, written, ll = _decode_and_write(model, coords, conf, sessions, names, run_dir)
    stats = _keypoint_stats(model, results, ll)
    if echo_summary:
        log(_summary_line(model, stats))
    figures = [] if no_plots else plot_keypoint_summary(model, results, run_dir)
    options = {"bodyparts": _split_names(bodyparts), "fps": fps}
    options["outlier_threshold"] = outlier_threshold
    _write_keypoint_run(run_dir, model, results, files, options, out_dir, log)
    return {
        "model": model,
        "results": results,
        "written": written,
        "figures": figures,
        "stats": stats,
        "run_dir": run_dir,
    }


def _write_keypoint_run(run_dir, model, results, files, options, out_dir, log):
    """The run-directory files beside results.h5: states, metrics, hparams, curves, log."""
    from ..runs import SessionStates, fit_metrics, write_run
    from ..runs._fit import hparams_for

    config = {
        "model": {"type": "KeypointSLDS"},
        "data": {"kind": "keypoints", "paths": [str(Path(f).resolve()) for f in files]},
        "output": str(Path(out_dir).resolve()),
    }
    config["data"]["options"] = options
    hparams = hparams_for(config, model.set_params(checkpoint_path=None), run_dir)
    sessions = [SessionStates(r.name, r.probabilities, r.syllables) for r in results]
    write_run(
        run_dir,
        model=None,  # saved by _decode_and_write, syllables renumbered by usage
        sessions=sessions,
        metrics=fit_metrics(model),
        hparams=hparams,
        log=log,
        tables=False,  # results' <session>.csv (syllable, pose) is already written
    )


def _decode_and_write(model, coords, conf, sessions, names, out_dir):
    """Decode, renumber syllables by usage, save the model and write the results to ``out_dir``.

    Returns the relabelled model, the per-session results, the written files and
    the log-likelihood.
    """
    from ..analysis import permute_states
    from ..workflows import keypoint_results, write_keypoint_results

    parts = list(sessions.bodyparts)
    rates = [s.fps for s in sessions]
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
    return model, results, written, ll


@click.command("fit-keypoints", cls=Command)
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
    help="Median syllable duration to reach, in seconds (needs fps): kappa is then chosen by "
    "bisection.",
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
    """Syllables from pose tracking files: load, clean, fit a keypoint SLDS, write results.

    Writes a run directory to --out (or --out/version_N when --out already holds a
    run): the model, the per-frame results (HDF5 and CSV, <session>_states.npy),
    metrics.csv, hparams.yaml, curves.png, fit.log and the figures.
    """
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
    out, written = fitted["run_dir"], fitted["written"]
    click.echo(
        f"Wrote {out / 'model.npz'}, {written['h5']}, {len(written['csv'])} CSV file(s), "
        f"metrics.csv and hparams.yaml to {out}."
    )


@click.command("apply-keypoints", cls=Command)
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
    """Label new recordings with a fitted keypoint model (deterministic: same labels every run)."""
    from ..workflows import keypoint_results, load_and_clean, write_keypoint_results

    model = load_model_file(model_file, ("KeypointSLDS",), "apply-keypoints")
    with about(files):
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
    ll = decoding.log_likelihood
    written = write_keypoint_results(results, out_dir, attrs={"model": str(model_file)})
    _keypoint_summary(model, results, ll)
    click.echo(f"Wrote {written['h5']} and {len(written['csv'])} CSV file(s) to {out_dir}.")
