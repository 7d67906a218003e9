"""Progress of a fit: a tqdm bar on a terminal, plain lines in a log.

tqdm redraws its bar with carriage returns, which is right on a terminal and
wrong in a file: a fit piped to ``fit.log``, run in CI or under SLURM would
write thousands of ``\\r`` frames. `progress` gives tqdm when the stream is a
terminal (or a Jupyter kernel, where tqdm draws a widget) and otherwise a
`PlainProgress` that prints one line every ``every`` of the total.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["PlainProgress", "progress"]


def _in_notebook() -> bool:
    """Whether we run in a Jupyter kernel (tqdm.auto then draws a widget)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # pragma: no cover - a broken IPython install
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PlainProgress:
    """A progress report in plain lines, for logs (the subset of tqdm's API the fit loops use).

    Prints ``"<desc>: 40% (20/50 sweeps) ll_per_frame=-1.2345 [3.1 s]"``
    each time the count crosses another ``every`` fraction of ``total``, and
    when closed (the last count, if no line shows it yet: a fit that
    converged early); with no ``total``, one line per update. Lines end with
    ``"\\n"`` and never contain ``"\\r"``.

    Parameters
    ----------
    total : int or None
        Number of steps (None: unknown).
    initial : int, default 0
        Steps already done (a resumed fit).
    desc : str, default ""
        Label at the start of every line.
    unit : str, default "it"
        Name of a step.
    stream : text stream, optional
        Where to write (default: ``sys.stderr`` at the time of each write).
    every : float, default 0.1
        Fraction of ``total`` between two lines, in (0, 1].
    """

    def __init__(
        self,
        total=None,
        initial=0,
        desc="",
        unit="it",
        stream: TextIO | None = None,
        every: float = 0.1,
    ):
        if not 0 < every <= 1:
            raise ValueError(f"every must be in (0, 1], got {every}.")
        self.total = None if total is None else int(total)
        self.n = int(initial)
        self._initial = self.n
        self.desc = desc
        self.unit = unit
        self.stream = stream
        self.every = every
        self.postfix: dict = {}
        self._start = time.perf_counter()
        self._last_step = self._step(self.n)
        self._printed_n = None

    def _step(self, n):
        if not self.total:
            return n
        return int(n / self.total / self.every + 1e-9)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; print a line if another ``every`` of the total was crossed."""
        self.n += int(n)
        step = self._step(self.n)
        if step > self._last_step or (self.total and self.n >= self.total):
            self._last_step = step
            self._print()

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        """Values shown at the end of the next line (``name=value``), as tqdm's ``set_postfix``."""
        self.postfix = {**dict(ordered_dict or {}), **kwargs}

    def _print(self) -> None:
        if self._printed_n == self.n:
            return
        self._printed_n = self.n
        if self.total:
            head = f"{100 * self.n / self.total:3.0f}% ({self.n}/{self.total} {self.unit}s)"
        else:
            head = f"{self.n} {self.unit}s"
        extra = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        line = f"{self.desc}: {head}" + (f" {extra}" if extra else "")
        line += f" [{time.perf_counter() - self._start:.1f} s]"
        stream = self.stream if self.stream is not None else sys.stderr
        print(line, file=stream, flush=True)

    def close(self) -> None:
        """Print the last count if no line shows it yet (a fit that stopped early: converged)."""
        if self.n > self._initial:
            self._print()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress(
    *, total=None, initial=0, desc="", unit="it", disable=False, stream=None, every: float = 0.1
):
    """A progress reporter for a fit loop: tqdm on a terminal, `PlainProgress` otherwise.

    Parameters
    ----------
    total, initial, desc, unit
        As for tqdm.
    disable : bool, default False
        Report nothing (a disabled tqdm).
    stream : text stream, optional
        Where to write (default ``sys.stderr``); its ``isatty()`` decides.
    every : float, default 0.1
        Fraction of ``total`` between two plain lines.

    Returns
    -------
    tqdm or PlainProgress
        Use as a context manager; ``update(n)`` and ``set_postfix(...)``.
    """
    from tqdm.auto import tqdm

    stream = sys.stderr if stream is None else stream
    if disable:
        return tqdm(total=total, disable=True)
    if _is_terminal(stream) or _in_notebook():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, file=stream)
    return PlainProgress(
        total=total, initial=initial, desc=desc, unit=unit, stream=stream, every=every
    )
