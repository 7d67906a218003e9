"""Run directories, config-file fits and grids (``behavhmm fit CONFIG.yaml``).

Every command-line fit writes one folder per fit (see `behavhmm.runs._layout` for the
layout): per-session state probabilities and labels, ``metrics.csv``, ``hparams.yaml``
(which ``behavhmm fit`` re-runs), ``curves.png``, ``model.npz`` and ``fit.log``. A second
run into the same folder goes to ``version_N/``. A config whose model parameters hold
lists runs a grid (scikit-learn ``ParameterGrid``), one version per point, and writes
``summary.csv``.
"""

from ._config import (
    DATA_KINDS,
    DATA_OPTIONS,
    MODEL_TYPES,
    ConfigError,
    load_config,
    validate_config,
)
from ._data import FitData, load_data, load_labels
from ._fit import fit_config, grid_points, make_estimator
from ._layout import (
    RunLog,
    SessionStates,
    claim_run_dir,
    claim_versions,
    file_record,
    safe_session_name,
    versions,
    write_run,
)
from ._metrics import fit_metrics, label_scores
from ._read import RunResults, read_run

__all__ = [
    "DATA_KINDS",
    "DATA_OPTIONS",
    "MODEL_TYPES",
    "ConfigError",
    "FitData",
    "RunLog",
    "RunResults",
    "SessionStates",
    "claim_run_dir",
    "claim_versions",
    "file_record",
    "fit_config",
    "fit_metrics",
    "grid_points",
    "label_scores",
    "load_config",
    "load_data",
    "load_labels",
    "make_estimator",
    "read_run",
    "safe_session_name",
    "validate_config",
    "versions",
    "write_run",
]
