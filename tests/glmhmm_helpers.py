"""Independent NumPy/SciPy references for the GLM-HMM tests: sampling, likelihoods, brute force."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from behavhmm import GLMHMM


def sticky(n_states, stay):
    off = (1.0 - stay) / max(n_states - 1, 1)
    return np.full((n_states, n_states), off) + (stay - off) * np.eye(n_states)


def hand_set(family, coef, intercept, scale, initial, transition, **kwargs):
    model = GLMHMM(len(initial), observation_model=family, progress_bar=False, **kwargs)
    model.coef_, model.intercept_, model.scale_ = coef, intercept, scale
    model.initial_prob_, model.transition_prob_ = initial, transition
    return model


def sample_states(rng, initial, transition, starts):
    z = np.zeros(len(starts), int)
    for t in range(len(starts)):
        p = initial if starts[t] else transition[z[t - 1]]
        z[t] = rng.choice(len(initial), p=p)
    return z


def mean_per_state(family, X, coef, intercept):
    eta = np.einsum("td,d...k->t...k", X, coef) + intercept
    if family == "Bernoulli":
        return 1.0 / (1.0 + np.exp(-eta))
    if family in ("Poisson", "NegativeBinomial"):
        return np.exp(eta)
    if family == "Gamma":
        return 1.0 / eta
    if family == "Categorical":
        e = np.exp(eta - eta.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return eta


def sample_y(rng, family, mean, scale):
    """One draw per entry; ``mean`` already in the drawn state ((T,), (T, C) or class probabilities
    (T, C))."""
    if family == "Bernoulli":
        return rng.binomial(1, mean).astype(float)
    if family == "Poisson":
        return rng.poisson(mean).astype(float)
    if family == "Gaussian":
        return rng.normal(mean, np.sqrt(scale))
    if family == "Gamma":
        return rng.gamma(1.0 / scale, mean * scale)
    if family == "NegativeBinomial":
        r = 1.0 / scale
        return rng.negative_binomial(r, r / (r + mean)).astype(float)
    if family == "Categorical":
        u = rng.uniform(size=(mean.shape[0], 1))
        return (u > np.cumsum(mean, axis=1)).sum(axis=1)
    raise ValueError(family)


def simulate(rng, family, X, coef, intercept, scale, initial, transition, starts):
    """NumPy sampler independent of behavhmm: states, then observations."""
    z = sample_states(rng, initial, transition, starts)
    mean = mean_per_state(family, X, coef, intercept)
    pick = z.reshape((-1,) + (1,) * (mean.ndim - 1))
    mean_z = np.take_along_axis(mean, pick, axis=-1)[..., 0]
    scale_z = np.moveaxis(np.asarray(scale), -1, 0)[z]
    return sample_y(rng, family, mean_z, scale_z), z


def log_likelihoods(family, X, y, coef, intercept, scale):
    """``log p(y_t | z_t = k)`` with scipy.stats, shape (T, K)."""
    mean = mean_per_state(family, X, coef, intercept)
    scale = np.asarray(scale, float)
    if family == "Categorical":
        return np.log(np.take_along_axis(mean, y.astype(int)[:, None, None], axis=1)[:, 0, :])
    yb = np.asarray(y, float)[..., None]
    if family == "Bernoulli":
        out = stats.bernoulli.logpmf(yb, mean)
    elif family == "Poisson":
        out = stats.poisson.logpmf(yb, mean)
    elif family == "Gaussian":
        out = stats.norm.logpdf(yb, mean, np.sqrt(scale))
    elif family == "Gamma":
        out = stats.gamma.logpdf(yb, a=1.0 / scale, scale=mean * scale)
    elif family == "NegativeBinomial":
        r = 1.0 / scale
        out = stats.nbinom.logpmf(yb, r, r / (r + mean))
    else:
        raise ValueError(family)
    return out.sum(axis=1) if out.ndim == 3 else out


def brute_force(ll, initial, transition, starts):
    """Enumerate every state path: log-likelihood, smoothed and filtered marginals, Viterbi path."""
    n_time_bins, n_states = ll.shape
    starts = np.asarray(starts, bool).copy()
    starts[0] = True

    def path_log_prob(path, lo):
        total = 0.0
        for t, k in zip(range(lo, lo + len(path)), path, strict=True):
            total += np.log(initial[k]) if starts[t] else np.log(transition[path[t - lo - 1], k])
            total += ll[t, k]
        return total

    paths = list(itertools.product(range(n_states), repeat=n_time_bins))
    logp = np.array([path_log_prob(p, 0) for p in paths])
    log_z = logsumexp(logp)
    post = np.exp(logp - log_z)
    smoothed = np.zeros((n_time_bins, n_states))
    for p, w in zip(paths, post, strict=True):
        smoothed[np.arange(n_time_bins), list(p)] += w
    viterbi = np.array(paths[int(np.argmax(logp))])
    filtered = np.zeros((n_time_bins, n_states))
    begin = 0
    for t in range(n_time_bins):
        if starts[t]:
            begin = t
        prefixes = list(itertools.product(range(n_states), repeat=t - begin + 1))
        lp = np.array([path_log_prob(p, begin) for p in prefixes])
        w = np.exp(lp - logsumexp(lp))
        for p, wi in zip(prefixes, w, strict=True):
            filtered[t, p[-1]] += wi
    return log_z, smoothed, filtered, viterbi
