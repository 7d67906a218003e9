"""Progress of fits: tqdm on a terminal, plain lines (no carriage returns) in logs."""

from __future__ import annotations

import io

import numpy as np
from click.testing import CliRunner

from behavhmm.cli import main
from behavhmm.fitting import run_em, run_gibbs
from behavhmm.fitting._progress import PlainProgress, progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_progress_prints_one_line_every_tenth_and_at_the_end():
    stream = io.StringIO()
    with PlainProgress(total=50, desc="Gibbs", unit="sweep", stream=stream) as bar:
        for i in range(50):
            bar.update(1)
            bar.set_postfix({"ll_per_frame": f"{-i:.1f}"})
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("Gibbs:  10% (5/50 sweeps)")
    assert lines[-1].startswith("Gibbs: 100% (50/50 sweeps) ll_per_frame=-48.0")
    # a resumed fit starts counting where it stopped; an unknown total prints every update
    stream = io.StringIO()
    with PlainProgress(total=10, initial=7, desc="EM", unit="iter", stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert stream.getvalue().startswith("EM: 100% (10/10 iters)")
    stream = io.StringIO()
    with PlainProgress(desc="tuning kappa", unit="fit", stream=stream) as bar:
        bar.update(1)
        bar.set_postfix(kappa="100")
        bar.update(1)
    assert [x.split(" [")[0] for x in stream.getvalue().splitlines()] == [
        "tuning kappa: 1 fits",
        "tuning kappa: 2 fits kappa=100",
    ]


def test_progress_is_tqdm_on_a_terminal_and_plain_lines_elsewhere():
    from tqdm.auto import tqdm

    assert isinstance(progress(total=5, stream=io.StringIO()), PlainProgress)
    bar = progress(total=5, stream=_Terminal())
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
    assert progress(total=5, stream=io.StringIO(), disable=True).disable


def test_fit_loops_write_plain_lines_to_a_non_terminal_stderr(capsys):
    import jax

    result = run_gibbs(
        lambda s, k: (s + 1, -2.0 * s), 0, jax.random.key(0), n_iter=20, n_frames=2, desc="Gibbs"
    )
    assert result.state == 20
    err = capsys.readouterr().err
    assert "\r" not in err
    assert len(err.splitlines()) == 10
    assert err.splitlines()[-1].startswith("Gibbs: 100% (20/20 sweeps) ll_per_frame=-19.0000")

    run_em(lambda p: (p + 1, -1.0 / (p + 1), 0.0), 0, n_iter=30, tol=0.0, n_frames=1, desc="EM")
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines()[-1].startswith("EM: 100% (30/30 iters)")


def test_a_piped_cli_fit_logs_plain_lines():
    """The simulated demo with progress on, output not a terminal (CliRunner): no tqdm frames."""
    result = CliRunner().invoke(main, ["demo", "--simulated", "--sessions", "2", "--frames", "600"])
    assert result.exit_code == 0, result.output
    text = result.output  # stdout and stderr as a terminal would show them
    assert "\r" not in text
    lines = [x for x in text.splitlines() if x.startswith("ARHMM em (K=4): ")]
    assert lines and all(
        "iters) ll_per_frame=" in x for x in lines
    )  # the last one: EM converged early
    assert np.all(np.diff([int(x.split("%")[0].split()[-1]) for x in lines]) > 0)
    assert "State recovery" in text
