"""Moved to `behavhmm.models.glmhmm.estimator`; re-exported here for one release.

The estimator looks its programs up in `behavhmm.models.glmhmm.estimator`: patch them there.
"""

from .glmhmm.estimator import (  # noqa: F401
    GLMHMM,
    EMState,
    GLMInitializer,
    HMMInitializer,
    KMeansInitializer,
    constant_scale_init,
    dirichlet_initial_proba_init,
    dirichlet_transition_proba_init,
    intercept_matching_mean,
    kmeans_glm_params_init,
    kmeans_initial_proba_init,
    kmeans_scale_init,
    kmeans_transition_proba_init,
    random_glm_params_init,
    random_initial_proba_init,
    random_transition_proba_init,
    sticky_transition_proba_init,
    uniform_initial_proba_init,
    uniform_transition_proba_init,
)

__all__ = [
    "GLMHMM",
    "EMState",
    "HMMInitializer",
    "GLMInitializer",
    "KMeansInitializer",
    "uniform_initial_proba_init",
    "random_initial_proba_init",
    "dirichlet_initial_proba_init",
    "kmeans_initial_proba_init",
    "sticky_transition_proba_init",
    "uniform_transition_proba_init",
    "random_transition_proba_init",
    "dirichlet_transition_proba_init",
    "kmeans_transition_proba_init",
    "random_glm_params_init",
    "kmeans_glm_params_init",
    "constant_scale_init",
    "kmeans_scale_init",
    "intercept_matching_mean",
]
