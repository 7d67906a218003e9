"""Transition priors: sticky Dirichlet MAP updates (sticky HDP draws slot in here)."""

from .dirichlet import (
    dirichlet_log_density,
    dirichlet_map,
    initial_dirichlet_map,
    sticky_concentration,
    sticky_dirichlet_map,
)

__all__ = [
    "dirichlet_log_density",
    "dirichlet_map",
    "initial_dirichlet_map",
    "sticky_concentration",
    "sticky_dirichlet_map",
]
