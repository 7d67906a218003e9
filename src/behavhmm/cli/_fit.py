"""``behavhmm fit CONFIG.yaml``: any estimator on any supported input, one run or a grid."""

from __future__ import annotations

import click

from ._errors import Command, about

_EXAMPLES = """
\b
Example config (paths are relative to the config file):
\b
  model:
    type: GaussianHMM            # GaussianHMM | ARHMM | GLMHMM | KeypointSLDS
    params: {n_states: [3, 5], covariance_type: [diag, full], n_iter: 50}
  data:
    kind: features               # keypoints | pc_scores | features | choice
    paths: [features.csv]
  labels: {paths: [session_labels.csv], weight: 1.0}   # optional
  output: runs/
  cv: {n_splits: 3}              # optional: whole-session held-out log-likelihood
  n_jobs: 2
\b
Examples:
  behavhmm fit config.yaml                         # 2 x 2 grid: runs/version_0..3 + summary.csv
  behavhmm fit runs/version_0/hparams.yaml --out again/   # re-run one point, same model.npz
"""


@click.command("fit", cls=Command, epilog=_EXAMPLES)
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the run(s), instead of the config's output.",
)
@click.option(
    "--n-jobs", type=int, default=None, help="Grid points fitted in parallel (joblib; -1: all)."
)
def fit_command(config_file, out_dir, n_jobs):
    """Fit the model of a YAML config file and write a run directory per fit.

    List-valued model parameters run a grid (one version_N folder per point,
    and summary.csv). Each run folder holds <session>_states.npy,
    <session>.csv, metrics.csv, hparams.yaml, curves.png, model.npz and fit.log.
    """
    from ..runs import fit_config, grid_points, load_config

    with about(config_file):  # a ConfigError (a ValueError) names the key
        config = load_config(config_file)
    n_points = len(grid_points(config))
    if n_points > 1:
        varied = [k for k, v in config["model"]["grid"].items() if len(v) > 1]
        click.echo(f"Grid of {n_points} fits over {', '.join(varied)}.")
    with about(config["data"]["paths"] + (config["labels"] or {}).get("paths", [])):
        done = fit_config(
            config, out_dir=out_dir, n_jobs=n_jobs, echo=click.echo if n_points == 1 else None
        )
    for run, row in zip(done["runs"], done["rows"], strict=True):
        held = row.get("heldout_log_likelihood")
        click.echo(
            f"{run}: log-likelihood {row['log_likelihood']:.6g}"
            + ("" if held is None else f", held-out {held:.6g}")
        )
    if done["summary"] is not None:
        click.echo(f"Wrote {done['summary']}.")
