"""The ``behavhmm`` command line.

Every command reports a user error (a file that is missing, unreadable or of the
wrong kind, a bad value) as one line naming the file and the problem, and exits
with status 1; ``behavhmm --debug COMMAND ...`` shows the Python traceback instead.
"""

from __future__ import annotations

import click

from .._version import __version__
from ._demo import demo
from ._errors import Command, FileError, about
from ._fit import fit_command
from ._keypoints import apply_keypoints_command, fit_keypoints_command
from ._moseq import apply_model, count_frames, kappa_scan_command, learn_model
from ._motifs import (
    _dendrogram_figure,
    _ethogram_figure,
    _metrics_figure,
    segment_motifs_command,
    select_prototypes_command,
)
from ._results import merge_syllables_command, report_command

__all__ = ["main", "Command", "FileError", "about"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="behavhmm")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the Python traceback of an error instead of its one-line message.",
)
@click.pass_context
def main(ctx, debug):
    """behavhmm: discrete behavioural states from pose and neural time series."""
    ctx.meta["behavhmm.debug"] = debug


for _command in (
    demo,
    fit_command,
    learn_model,
    apply_model,
    kappa_scan_command,
    count_frames,
    fit_keypoints_command,
    apply_keypoints_command,
    report_command,
    merge_syllables_command,
    segment_motifs_command,
    select_prototypes_command,
):
    main.add_command(_command)
del _command

# figure helpers used by the docs' scripts
_FIGURES = (_dendrogram_figure, _ethogram_figure, _metrics_figure)
