"""GLM emission families, regularizers and M-step solvers against independent references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from glmhmm_helpers import log_likelihoods
from scipy.optimize import minimize as scipy_minimize

from behavhmm.fitting.regularizers import (
    ElasticNet,
    GroupLasso,
    Lasso,
    Ridge,
    UnRegularized,
    get_regularizer,
    regularizer_penalty,
    regularizer_prox,
)
from behavhmm.fitting.solvers import (
    check_solver_kwargs,
    default_solver_kwargs,
    freeze_kwargs,
    minimize,
)
from behavhmm.observations.glm import (
    GLMParams,
    gaussian_scale_map,
    glm_log_likelihoods,
    resolve_inverse_link,
)

FAMILY_CASES = {
    "Bernoulli": (lambda rng, s: rng.binomial(1, 0.4, s).astype(float), None),
    "Poisson": (lambda rng, s: rng.poisson(2.0, s).astype(float), None),
    "Gaussian": (lambda rng, s: rng.normal(size=s), 0.7),
    "Gamma": (lambda rng, s: rng.gamma(2.0, 1.0, s), 0.4),
    "NegativeBinomial": (lambda rng, s: rng.negative_binomial(3, 0.4, s).astype(float), 0.6),
}


@pytest.mark.requires_x64
@pytest.mark.parametrize("family", list(FAMILY_CASES))
@pytest.mark.parametrize("n_outputs", [None, 3])
def test_log_likelihoods_match_scipy(rng, family, n_outputs):
    draw, scale_value = FAMILY_CASES[family]
    n_time_bins, n_features, n_states = 40, 3, 2
    X = rng.normal(scale=0.3, size=(n_time_bins, n_features))
    shape = (n_features, n_states) if n_outputs is None else (n_features, n_outputs, n_states)
    coef = rng.normal(scale=0.3, size=shape)
    intercept = rng.normal(scale=0.2, size=shape[1:]) + (2.0 if family == "Gamma" else 0.0)
    scale = np.full(shape[1:], scale_value or 1.0)
    y = draw(rng, (n_time_bins,) if n_outputs is None else (n_time_bins, n_outputs))
    link = resolve_inverse_link(None, family)
    ours = glm_log_likelihoods(
        family,
        link,
        GLMParams(jnp.asarray(coef), jnp.asarray(intercept)),
        jnp.asarray(scale),
        jnp.asarray(X),
        jnp.asarray(y),
    )
    np.testing.assert_allclose(
        ours, log_likelihoods(family, X, y, coef, intercept, scale), rtol=1e-10, atol=1e-10
    )


@pytest.mark.requires_x64
def test_categorical_log_likelihood_is_log_softmax(rng):
    X = rng.normal(size=(30, 2))
    coef = rng.normal(size=(2, 4, 3))
    intercept = rng.normal(size=(4, 3))
    y = rng.integers(0, 4, 30)
    link = resolve_inverse_link(None, "Categorical")
    ours = glm_log_likelihoods(
        "Categorical",
        link,
        GLMParams(jnp.asarray(coef), jnp.asarray(intercept)),
        jnp.ones(3),
        jnp.asarray(X),
        jnp.asarray(y),
    )
    np.testing.assert_allclose(
        ours, log_likelihoods("Categorical", X, y, coef, intercept, None), rtol=1e-10
    )


@pytest.mark.requires_x64
@pytest.mark.parametrize("link_name", ["softplus", "exp", "norm_cdf", "identity"])
def test_non_canonical_links(rng, link_name):
    """Non-canonical links go through the mean; compare with the formula on the mean."""
    from scipy import stats

    family = (
        "Bernoulli"
        if link_name == "norm_cdf"
        else ("Gaussian" if link_name == "identity" else "Poisson")
    )
    X = rng.normal(scale=0.3, size=(25, 2))
    coef = rng.normal(scale=0.3, size=(2, 2))
    intercept = np.array([0.5, 1.0])
    link = resolve_inverse_link(link_name, family)
    eta = X @ coef + intercept
    mean = np.asarray(link(jnp.asarray(eta)))
    y = FAMILY_CASES[family][0](rng, (25,))
    expected = {
        "Bernoulli": lambda: stats.bernoulli.logpmf(y[:, None], mean),
        "Poisson": lambda: stats.poisson.logpmf(y[:, None], mean),
        "Gaussian": lambda: stats.norm.logpdf(y[:, None], mean, 1.0),
    }[family]()
    ours = glm_log_likelihoods(
        family,
        link,
        GLMParams(jnp.asarray(coef), jnp.asarray(intercept)),
        jnp.ones(2),
        jnp.asarray(X),
        jnp.asarray(y),
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


def test_inverse_link_resolution_errors():
    with pytest.raises(ValueError, match="Unknown link function"):
        resolve_inverse_link("cubic", "Poisson")
    with pytest.raises(TypeError, match="must be a Callable"):
        resolve_inverse_link(3, "Poisson")
    with pytest.raises(ValueError, match="only the softmax"):
        resolve_inverse_link("exp", "Categorical")
    with pytest.raises(ValueError, match="differentiable"):
        resolve_inverse_link(lambda x: np.asarray(x) ** 2, "Poisson")
    assert resolve_inverse_link(jax.nn.sigmoid, "Bernoulli") is resolve_inverse_link(
        None, "Bernoulli"
    )
    custom = lambda x: jnp.exp(x) + 1.0  # noqa: E731
    assert resolve_inverse_link(custom, "Poisson") is custom


@pytest.mark.requires_x64
def test_gaussian_variance_update_is_the_weighted_mle(rng):
    X = rng.normal(size=(200, 2))
    y = rng.normal(size=(200, 2))
    coef = rng.normal(size=(2, 2, 3))
    intercept = rng.normal(size=(2, 3))
    gamma = rng.dirichlet(np.ones(3), 200)
    link = resolve_inverse_link(None, "Gaussian")
    var = np.asarray(
        gaussian_scale_map(
            link,
            GLMParams(jnp.asarray(coef), jnp.asarray(intercept)),
            jnp.asarray(X),
            jnp.asarray(y),
            jnp.asarray(gamma),
            1e-12,
        )
    )
    mean = np.einsum("td,dck->tck", X, coef) + intercept
    for c in range(2):
        for k in range(3):

            def nll(log_v, c=c, k=k):
                v = np.exp(log_v[0])
                return np.sum(
                    gamma[:, k] * (0.5 * np.log(v) + (y[:, c] - mean[:, c, k]) ** 2 / (2 * v))
                )

            best = scipy_minimize(nll, [0.0], method="BFGS", options={"gtol": 1e-10}).x[0]
            np.testing.assert_allclose(var[c, k], np.exp(best), rtol=1e-6)


# ----------------------------------------------------------------------------
# regularizers
# ----------------------------------------------------------------------------


@pytest.mark.requires_x64
@pytest.mark.parametrize(
    "reg, strength",
    [
        (Ridge(), 0.7),
        (Lasso(), 0.3),
        (ElasticNet(), (0.5, 0.3)),
        (GroupLasso(), 0.4),
        (GroupLasso(mask=np.array([[1, 1, 0, 0], [0, 0, 1, 1]])), np.array([0.2, 0.6])),
    ],
    ids=["ridge", "lasso", "elasticnet", "grouplasso-default", "grouplasso-mask"],
)
def test_prox_is_the_argmin_of_penalty_plus_distance(rng, reg, strength):
    coef = rng.normal(size=(4, 3))
    hyper = reg.hyperparameters(strength, coef.shape, jnp.float64)
    scaling = 0.8
    prox = np.asarray(regularizer_prox(reg.name, jnp.asarray(coef), hyper, scaling))

    def objective(w):
        w = w.reshape(coef.shape)
        return scaling * float(regularizer_penalty(reg.name, jnp.asarray(w), hyper)) + 0.5 * np.sum(
            (w - coef) ** 2
        )

    # the prox is optimal: no random perturbation improves the objective
    best = objective(prox.ravel())
    for _ in range(200):
        trial = prox.ravel() + rng.normal(scale=1e-3, size=coef.size)
        assert objective(trial) >= best - 1e-12


def test_penalties_follow_the_documented_formulas(rng):
    w = rng.normal(size=(4, 2))
    h = Ridge().hyperparameters(2.0, w.shape, jnp.float32)
    np.testing.assert_allclose(
        regularizer_penalty("Ridge", jnp.asarray(w), h), 0.5 * 2.0 * np.sum(w**2), rtol=1e-5
    )
    h = Lasso().hyperparameters(2.0, w.shape, jnp.float32)
    np.testing.assert_allclose(
        regularizer_penalty("Lasso", jnp.asarray(w), h), 2.0 * np.abs(w).sum(), rtol=1e-5
    )
    h = ElasticNet().hyperparameters((2.0, 0.25), w.shape, jnp.float32)
    expected = 2.0 * np.sum(0.75 * 0.5 * w**2 + 0.25 * np.abs(w))
    np.testing.assert_allclose(
        regularizer_penalty("ElasticNet", jnp.asarray(w), h), expected, rtol=1e-5
    )
    mask = np.array([[1, 1, 0, 0], [0, 0, 1, 0]])
    h = GroupLasso(mask).hyperparameters(np.array([1.0, 3.0]), w.shape, jnp.float32)
    expected = sum(
        s * np.sqrt(m.sum()) * np.linalg.norm(w[m.astype(bool), k])
        for s, m in zip([1.0, 3.0], mask, strict=True)
        for k in range(2)
    )
    np.testing.assert_allclose(
        regularizer_penalty("GroupLasso", jnp.asarray(w), h), expected, rtol=1e-5
    )
    assert (
        float(
            regularizer_penalty(
                "UnRegularized",
                jnp.asarray(w),
                UnRegularized().hyperparameters(5.0, w.shape, jnp.float32),
            )
        )
        == 0.0
    )


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda: Ridge().hyperparameters(-1.0, (3, 2), jnp.float32), ValueError, "non-negative"),
        (
            lambda: Ridge().hyperparameters("strong", (3, 2), jnp.float32),
            TypeError,
            "Could not convert",
        ),
        (
            lambda: Ridge().hyperparameters(np.ones(5), (3, 2), jnp.float32),
            ValueError,
            "does not broadcast",
        ),
        (
            lambda: ElasticNet().hyperparameters((1.0, 0.0), (3, 2), jnp.float32),
            ValueError,
            r"ratio must be in \(0, 1\]",
        ),
        (
            lambda: ElasticNet().hyperparameters((1.0, 0.5, 2.0), (3, 2), jnp.float32),
            TypeError,
            "tuple",
        ),
        (
            lambda: GroupLasso(np.array([[1, 2, 0]])).hyperparameters(1.0, (3, 2), jnp.float32),
            ValueError,
            "0s and 1s",
        ),
        (
            lambda: GroupLasso(np.array([[1, 1, 0], [0, 1, 1]])).hyperparameters(
                1.0, (3, 2), jnp.float32
            ),
            ValueError,
            "more than one group",
        ),
        (
            lambda: GroupLasso(np.zeros((1, 3))).hyperparameters(1.0, (3, 2), jnp.float32),
            ValueError,
            "Empty mask",
        ),
        (
            lambda: GroupLasso(np.ones((1, 4))).hyperparameters(1.0, (3, 2), jnp.float32),
            ValueError,
            "shape mismatch",
        ),
        (
            lambda: GroupLasso(np.ones((2, 3)) * [[1, 1, 0], [0, 0, 1]]).hyperparameters(
                np.ones(3), (3, 2), jnp.float32
            ),
            ValueError,
            "scalar or shape",
        ),
        (lambda: Lasso().check_solver("LBFGS"), ValueError, "not allowed for Lasso"),
        (lambda: get_regularizer("Tikhonov"), ValueError, "Unknown regularizer"),
        (lambda: get_regularizer(3.0), TypeError, "should be either a string"),
        (
            lambda: check_solver_kwargs("LBFGS", {"stepsize": 0.1, "learning_rate": 1.0}),
            NameError,
            "learning_rate",
        ),
        (lambda: check_solver_kwargs("Adam", {}), ValueError, "Unknown solver"),
        (lambda: freeze_kwargs({"tol": np.ones(2)}), TypeError, "hashable"),
    ],
)
def test_regularizer_and_solver_errors(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.requires_x64
@pytest.mark.parametrize(
    "solver", ["GradientDescent", "BFGS", "LBFGS", "NonlinearCG", "ProximalGradient"]
)
def test_every_solver_reaches_the_ridge_logistic_optimum(rng, solver):
    """Weighted Ridge logistic regression per state: each jaxopt solver equals scipy's L-BFGS-B."""
    from behavhmm.observations.glm import glm_expected_nll

    X = rng.normal(size=(400, 3))
    y = rng.binomial(1, 0.4, 400).astype(float)
    gamma = rng.dirichlet(np.ones(2), 400)
    link = resolve_inverse_link(None, "Bernoulli")
    n = 400.0
    hyper = {"strength": jnp.asarray(0.5 / n)}

    def objective(p, X, y, gamma):
        return glm_expected_nll("Bernoulli", link, p, jnp.ones(2), X, y, gamma, n)

    kwargs = {**default_solver_kwargs(solver, jnp.float64), "maxiter": 5000, "tol": 1e-9}
    init = GLMParams(jnp.zeros((3, 2)), jnp.zeros(2))
    params, _ = jax.jit(
        lambda init, X, y, g: minimize(
            objective,
            init,
            (X, y, g),
            solver_name=solver,
            solver_kwargs=freeze_kwargs(kwargs),
            regularizer="Ridge",
            hyper=hyper,
        )
    )(init, jnp.asarray(X), jnp.asarray(y), jnp.asarray(gamma))

    def reference(theta):
        W, b = theta[:6].reshape(3, 2), theta[6:]
        eta = X @ W + b
        nll = np.sum(gamma * (np.logaddexp(0, eta) - y[:, None] * eta))
        return nll + 0.5 * 0.5 * np.sum(W**2)

    best = scipy_minimize(
        reference, np.zeros(8), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10}
    ).x
    np.testing.assert_allclose(np.asarray(params.coef), best[:6].reshape(3, 2), atol=2e-4)
    np.testing.assert_allclose(np.asarray(params.intercept), best[6:], atol=2e-4)


NEWTON_CASES = {
    # family, inverse link, data, scale
    "Bernoulli-logistic": (
        "Bernoulli",
        None,
        lambda rng, eta: rng.binomial(1, 1 / (1 + np.exp(-eta))),
        1.0,
    ),
    "Poisson-exp": ("Poisson", None, lambda rng, eta: rng.poisson(np.exp(eta)), 1.0),
    "Gaussian-identity": (
        "Gaussian",
        None,
        lambda rng, eta: eta + 0.5 * rng.normal(size=eta.shape),
        0.25,
    ),
    "Poisson-softplus": (
        "Poisson",
        "softplus",
        lambda rng, eta: rng.poisson(np.logaddexp(0, eta)),
        1.0,
    ),
    "Gamma-exp": ("Gamma", "exp", lambda rng, eta: rng.gamma(2.0, np.exp(eta) / 2.0), 0.5),
}


@pytest.mark.requires_x64
@pytest.mark.parametrize("case", list(NEWTON_CASES))
@pytest.mark.parametrize("regularizer", ["UnRegularized", "Ridge"])
def test_newton_reaches_the_weighted_glm_optimum_in_few_iterations(rng, case, regularizer):
    """behavhmm's Newton solver equals scipy's L-BFGS-B on the weighted, penalised GLM objective."""
    from behavhmm.fitting.solvers import minimize_glm_newton
    from behavhmm.observations.glm import glm_elementwise_log_prob

    family, link_name, draw, scale = NEWTON_CASES[case]
    link = resolve_inverse_link(link_name, family)
    n_time_bins = 600
    X = rng.normal(size=(n_time_bins, 4))
    w_true, b_true = rng.normal(scale=0.4, size=4), 0.3
    y = draw(rng, X @ w_true + b_true).astype(float)
    weights = rng.uniform(0.0, 1.0, n_time_bins)
    n = float(n_time_bins)
    strength = 0.0 if regularizer == "UnRegularized" else 3.0
    hyper = {} if regularizer == "UnRegularized" else {"strength": jnp.full(4, strength / n)}

    def log_prob(eta):
        return glm_elementwise_log_prob(family, link, jnp.asarray(y), eta, jnp.asarray(scale))

    run = jax.jit(
        lambda w, b: minimize_glm_newton(
            log_prob,
            w,
            b,
            jnp.asarray(X),
            jnp.asarray(weights),
            n,
            regularizer=regularizer,
            hyper=hyper,
            solver_kwargs=freeze_kwargs({"tol": 1e-10, "maxiter": 100}),
        )
    )
    (w, b), info = run(jnp.zeros(4), jnp.asarray(0.1 if family == "Gamma" else 0.0))

    def reference(theta):
        eta = jnp.asarray(X) @ theta[:4] + theta[4]
        nll = -jnp.sum(jnp.asarray(weights) * log_prob(eta))
        return float(nll + 0.5 * strength * jnp.sum(theta[:4] ** 2))

    grad = jax.grad(
        lambda th: (
            -jnp.sum(jnp.asarray(weights) * log_prob(jnp.asarray(X) @ th[:4] + th[4]))
            + 0.5 * strength * jnp.sum(th[:4] ** 2)
        )
    )
    best = scipy_minimize(
        reference,
        np.r_[np.zeros(4), 0.1 if family == "Gamma" else 0.0],
        jac=lambda th: np.asarray(grad(jnp.asarray(th))),
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10000},
    ).x
    np.testing.assert_allclose(np.asarray(w), best[:4], atol=1e-5)
    np.testing.assert_allclose(float(b), best[4], atol=1e-5)
    assert float(info.error) < 1e-8
    canonical = case in ("Bernoulli-logistic", "Poisson-exp", "Gaussian-identity")
    assert int(info.iterations) <= (12 if canonical else 40)


@pytest.mark.slow  # over ~15 s; CI runs it in its slow step
@pytest.mark.requires_x64
def test_newton_objective_never_increases_from_a_far_start(rng):
    """From coefficients whose rates overflow-scale (exp(12)), every accepted step lowers the
    objective."""
    from behavhmm.fitting.solvers import minimize_glm_newton
    from behavhmm.observations.glm import exp as exp_link
    from behavhmm.observations.glm import glm_elementwise_log_prob

    X = rng.normal(size=(500, 3))
    y = rng.poisson(np.exp(0.2 * X[:, 0])).astype(float)
    weights = np.ones(500)

    def log_prob(eta):
        return glm_elementwise_log_prob("Poisson", exp_link, jnp.asarray(y), eta, jnp.asarray(1.0))

    def objective(w, b):
        return float(-jnp.sum(log_prob(jnp.asarray(X) @ w + b)) / 500.0)

    w, b = jnp.asarray([4.0, -4.0, 4.0]), jnp.asarray(0.0)
    values = [objective(w, b)]
    for _ in range(30):  # one Newton iteration at a time
        (w, b), info = minimize_glm_newton(
            log_prob,
            w,
            b,
            jnp.asarray(X),
            jnp.asarray(weights),
            500.0,
            regularizer="UnRegularized",
            hyper={},
            solver_kwargs=freeze_kwargs({"maxiter": 1, "tol": 1e-10}),
        )
        values.append(objective(w, b))
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) <= 1e-12)
    np.testing.assert_allclose(np.asarray(w), [0.2, 0.0, 0.0], atol=0.15)
    assert values[-1] < values[0] - 100.0


def test_default_solver_is_newton_for_canonical_smooth_models_only():
    from behavhmm import GLMHMM

    assert GLMHMM(2)._spec().solver == "Newton"
    assert (
        GLMHMM(2, observation_model="Poisson", regularizer="UnRegularized")._spec().solver
        == "Newton"
    )
    assert (
        GLMHMM(2, observation_model="Poisson", inverse_link_function=jax.nn.softplus)._spec().solver
        == "LBFGS"
    )
    assert GLMHMM(2, observation_model="Gamma")._spec().solver == "LBFGS"
    assert GLMHMM(2, regularizer="Lasso")._spec().solver == "ProximalGradient"
    # kwargs only jaxopt's L-BFGS takes keep nemos' default
    assert GLMHMM(2, solver_kwargs={"history_size": 5})._spec().solver == "LBFGS"
    assert GLMHMM(2, solver_kwargs={"maxiter": 5})._spec().solver == "Newton"
    with pytest.raises(ValueError, match="one linear predictor per output"):
        GLMHMM(2, observation_model="Categorical", solver_name="Newton")._spec()
    with pytest.raises(ValueError, match="not allowed for Lasso"):
        GLMHMM(2, regularizer="Lasso", solver_name="Newton")._spec()
    with pytest.raises(NameError, match="history_size"):
        GLMHMM(2, solver_name="Newton", solver_kwargs={"history_size": 5})._spec()
