"""Transition priors: sticky Dirichlet MAP updates (sticky HDP draws slot in here)."""

from .dirichlet import (
    dirichlet_log_density,
    dirichlet_map,
    initial_dirichlet_map,
    sticky_concentration,
    sticky_dirichlet_map,
)
from .hdp import (
    hdp_log_prior,
    sample_corrected_table_counts,
    sample_global_weights,
    sample_initial_probs,
    sample_override_counts,
    sample_table_counts,
    sample_transition_rows,
    transition_counts,
)

__all__ = [
    "hdp_log_prior",
    "sample_corrected_table_counts",
    "sample_global_weights",
    "sample_initial_probs",
    "sample_override_counts",
    "sample_table_counts",
    "sample_transition_rows",
    "transition_counts",
    "dirichlet_log_density",
    "dirichlet_map",
    "initial_dirichlet_map",
    "sticky_concentration",
    "sticky_dirichlet_map",
]
