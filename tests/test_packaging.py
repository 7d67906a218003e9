"""Packaging: what the core package imports is installed by a plain ``pip install .``."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import behavhmm

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _core_distributions() -> set[str]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {_normalise(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in deps}


def _module_level_imports(path: Path) -> set[str]:
    """Top-level packages imported by the statements of the module itself (not inside functions)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"behavhmm", "__future__"}


@pytest.mark.skipif(
    not PYPROJECT.is_file(), reason="pyproject.toml is not part of this installation"
)
def test_every_module_level_import_is_a_core_dependency():
    root = Path(behavhmm.__file__).parent
    core = _core_distributions()
    dist_of = packages_distributions()
    missing = {}
    for path in root.rglob("*.py"):
        for module in _module_level_imports(path):
            dists = {_normalise(d) for d in dist_of.get(module, [module])}
            if not dists & core:
                missing.setdefault(module, []).append(str(path.relative_to(root)))
    assert not missing, f"imported at module level but not core dependencies: {missing}"
    # the demo's workflow (results files, figures, the h5py DeepLabCut reader) needs no extra either
    assert {"h5py", "matplotlib", "jaxtyping"} <= core
