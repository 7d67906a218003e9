"""Commands on fitted results: report and merge-syllables."""

from __future__ import annotations

import click

from ._errors import Command, about, load_model_file


@click.command("report", cls=Command)
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
    """Tables, figures and an HTML page from a keypoint results folder.

    RESULTS_DIR is the --out folder of fit-keypoints or apply-keypoints.
    """
    from ..report import write_report

    with about([results_dir, groups_file, model_file]):
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
    click.echo(f"Wrote {index} and its tables and figures.")


@click.command("merge-syllables", cls=Command)
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
    """Write a copy of a model whose syllables are merged many-to-one (same dynamics)."""
    from ..analysis import merge_syllables

    model = load_model_file(model_file, ("ARHMM", "KeypointSLDS", "GLMHMM"), "merge-syllables")
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
