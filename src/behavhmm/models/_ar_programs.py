"""Moved: `behavhmm.models.arhmm.model`, `.em` and `.gibbs` (and `behavhmm.observations.student_t`).

Re-exported here for one release.
"""

from ..observations.student_t import DOF_BOUNDS, DOF_PRIOR, DOF_STEP
from ..observations.student_t import log_gamma_density as _log_gamma_density
from ..observations.student_t import sample_dof as _sample_dof
from ..observations.student_t import solve_dof as _solve_dof
from .arhmm.em import em_step, log_prior_map, m_step_program
from .arhmm.gibbs import GibbsState, gibbs_sweep, log_joint_program
from .arhmm.model import (
    ARData,
    ARHMMParams,
    Hyper,
    _transitions,
    emission_log_likelihoods,
    filter_program,
    log_likelihood_program,
    median_duration_program,
    posterior,
    run_lengths,
    simulate_program,
    viterbi_program,
)

__all__ = [
    "DOF_BOUNDS",
    "DOF_PRIOR",
    "DOF_STEP",
    "ARData",
    "ARHMMParams",
    "GibbsState",
    "Hyper",
    "_log_gamma_density",
    "_sample_dof",
    "_solve_dof",
    "_transitions",
    "em_step",
    "emission_log_likelihoods",
    "filter_program",
    "gibbs_sweep",
    "log_joint_program",
    "log_likelihood_program",
    "log_prior_map",
    "m_step_program",
    "median_duration_program",
    "posterior",
    "run_lengths",
    "simulate_program",
    "viterbi_program",
]
