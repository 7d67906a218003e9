"""Imports of the ``analysis`` extra (statsmodels, networkx, scikit-posthocs), made when a function
runs."""

from __future__ import annotations

import importlib


def optional_import(module: str):
    """Import an optional dependency of the ``analysis`` extra, or say how to install it.

    Raises
    ------
    ImportError
        Naming ``pip install 'behavhmm[analysis]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this function needs {module.split('.')[0]}: pip install 'behavhmm[analysis]'"
        ) from exc
