"""User errors of the command line: one line naming the file and the problem.

A command wraps each step that reads or interprets a file in `about(path)`; an error
of one of `USER_ERRORS` raised there becomes a `FileError`, which click prints as
one line (``Error: PATH: problem``) and exits with status 1. The group catches the
user errors that escape every `about` block and names the command's files instead.
With ``behavhmm --debug`` the original exception propagates with its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click

#: Exceptions that mean "the input is wrong", not "behavhmm is broken".
USER_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OSError,  # includes FileNotFoundError, PermissionError, h5py's truncated files
    ImportError,  # a missing optional extra (the message names it)
    FloatingPointError,  # a numerical failure whose message names what to change
)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (its type name when it has no message)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(str(text).split())
    return text or type(exc).__name__


class FileError(click.ClickException):
    """A user error about one file: printed as ``Error: PATH: problem``, exit status 1.

    Parameters
    ----------
    path : str or path-like or sequence of them
        The file (or files) the problem is about.
    problem : str
        What is wrong, in one line.
    """

    def __init__(self, path, problem: str):
        self.paths = _names(path)
        named = any(p in problem for p in self.paths)
        prefix = "" if named or not self.paths else ", ".join(self.paths) + ": "
        super().__init__(prefix + " ".join(problem.split()))


def _names(path) -> list[str]:
    if path is None:
        return []
    if isinstance(path, str | Path):
        return [str(path)]
    return [str(p) for p in path if p is not None]


@contextmanager
def about(path: str | Path | Sequence[str | Path] | None) -> Iterator[None]:
    """Turn a user error raised inside the block into a `FileError` naming ``path``.

    Raises
    ------
    FileError
        For any of `USER_ERRORS`, unless the command line runs with ``--debug``,
        in which case the original exception propagates unchanged.
    """
    try:
        yield
    except click.ClickException:
        raise
    except USER_ERRORS as exc:
        if debugging():
            raise
        raise FileError(path, one_line(exc)) from exc


def load_model_file(path, kinds: tuple[str, ...], command: str):
    """Load a model file and check that it holds one of ``kinds`` (class names).

    Raises
    ------
    FileError
        If the file cannot be read as a model, or holds another kind of model.
    """
    from ..models import load_model

    with about(path):
        model = load_model(path)
    if type(model).__name__ not in kinds:
        wanted = " or ".join(kinds)
        raise FileError(
            path,
            f"holds {type(model).__name__} parameters; {command} needs a {wanted} model file.",
        )
    return model


def debugging() -> bool:
    """True when the running command line was given ``--debug``."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get("behavhmm.debug", False))


def command_files(ctx: click.Context) -> list[str]:
    """The values of a command's file and folder arguments, in order."""
    files = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or not isinstance(param.type, click.Path):
            continue
        files.extend(_names(value) if isinstance(value, list | tuple) else [str(value)])
    return files


class Command(click.Command):
    """A click command that reports user errors in one line naming its files.

    Errors already turned into `FileError` by `about` pass through; any other of
    `USER_ERRORS` names the command's file arguments. ``--debug`` re-raises the
    original exception instead, so its traceback prints.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except USER_ERRORS as exc:
            if debugging():
                raise
            files = command_files(ctx)
            if not files:
                raise click.ClickException(f"{ctx.info_name}: {one_line(exc)}") from exc
            raise FileError(files, one_line(exc)) from exc
