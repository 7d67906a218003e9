"""KeypointSLDS: Gibbs conditionals vs conjugate posteriors, recovery, files, determinism, real
data."""

from __future__ import annotations

import glob

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import i0e, i1e

import behavhmm
from behavhmm import KeypointSLDS
from behavhmm.models import _ar_programs, _slds_programs
from behavhmm.observations.keypoints import (
    heading_conditional,
    noise_scale_conditional,
    noise_variance_conditional,
    rotate_xy,
    sample_inverse_gamma,
    sample_von_mises,
)

# every fit here shares these shapes, so the compiled programs are reused across tests
N_FRAMES, N_KP, N_STATES, LATENT_DIM, NLAGS = 1500, 6, 3, 2, 1


# ----------------------------------------------------------------------------
# conditionals
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [0.3, 4.0, 60.0, 5000.0])
def test_von_mises_sampler_moments(kappa):
    n = 20000
    mu = 2.5
    h = np.asarray(sample_von_mises(jax.random.key(1), jnp.full(n, mu), jnp.full(n, kappa)))
    assert np.all(np.isfinite(h)) and np.all(np.abs(h) <= np.pi + 1e-6)
    resultant = np.mean(np.cos(h - mu))
    expected = i1e(kappa) / i0e(kappa)
    sd = np.sqrt(
        max(
            0.5 * (1 + (i0e(kappa) - 2 * i1e(kappa) / kappa + i0e(kappa)) / (2 * i0e(kappa)))
            - expected**2,
            1e-8,
        )
        / n
    )
    assert abs(resultant - expected) < 5 * sd + 1e-4
    assert abs(np.mean(np.sin(h - mu))) < 5 / np.sqrt(n * max(kappa, 1.0)) + 1e-3


@pytest.mark.requires_x64
@pytest.mark.parametrize("n_dims", [2, 3])
def test_heading_conditional_matches_grid(n_dims):
    rng = np.random.default_rng(n_dims)
    pose = rng.normal(size=(1, 5, n_dims))
    true_h = 1.0
    centred = np.asarray(rotate_xy(jnp.asarray(pose), jnp.asarray([true_h]))) + 0.5 * rng.normal(
        size=pose.shape
    )
    prec = rng.uniform(0.2, 1.0, size=(1, 5))
    mu, kappa = heading_conditional(jnp.asarray(centred), jnp.asarray(pose), jnp.asarray(prec))
    grid = np.linspace(-np.pi, np.pi, 4001)[:-1]
    rotated = np.asarray(rotate_xy(jnp.asarray(np.repeat(pose, len(grid), 0)), jnp.asarray(grid)))
    logp = -0.5 * np.sum(prec * np.sum((centred - rotated) ** 2, axis=-1), axis=1)
    dens = np.exp(logp - logp.max())
    dens /= dens.sum() * (grid[1] - grid[0])
    vm = np.exp(float(kappa[0]) * (np.cos(grid - float(mu[0])) - 1)) / (
        2 * np.pi * i0e(float(kappa[0]))
    )
    np.testing.assert_allclose(dens, vm, rtol=1e-6, atol=1e-9)


def _grid_posterior_mean(log_density, lo, hi):
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 40001))
    lp = log_density(grid) + np.log(grid)  # integrate in log space
    w = np.exp(lp - lp.max())
    return np.sum(w * grid) / np.sum(w)


@pytest.mark.requires_x64
def test_noise_scale_and_variance_conditionals_match_grid():
    n_dims, nu, s0, sigmasq, sq = 2, 5.0, 1.7, 0.3, 2.4
    shape, scale = noise_scale_conditional(
        jnp.array([[sq]]), jnp.array([sigmasq]), jnp.array([[s0]]), nu, jnp.array([[1.0]]), n_dims
    )

    def log_post_s(
        s,
    ):  # scaled-Inv-chi2(nu, s0) prior times the Gaussian likelihood of the residual
        return (
            -(nu / 2 + 1) * np.log(s)
            - nu * s0 / (2 * s)
            - n_dims / 2 * np.log(s * sigmasq)
            - sq / (2 * s * sigmasq)
        )

    expected = _grid_posterior_mean(log_post_s, 1e-3, 1e4)
    np.testing.assert_allclose(float(scale[0, 0] / (shape[0, 0] - 1)), expected, rtol=1e-4)
    # sigma^2 over several frames
    rng = np.random.default_rng(0)
    sqs, scales = rng.uniform(0.1, 3, size=(7, 1)), rng.uniform(0.5, 2, size=(7, 1))
    a0, b0 = 1.5, 0.2
    shape2, scale2 = noise_variance_conditional(
        jnp.asarray(sqs), jnp.asarray(scales), jnp.ones((7, 1)), a0, b0, n_dims
    )

    def log_post_v(v):
        lik = sum(
            -n_dims / 2 * np.log(s * v) - q / (2 * s * v)
            for q, s in zip(sqs[:, 0], scales[:, 0], strict=True)
        )
        return -(a0 + 1) * np.log(v) - b0 / v + lik

    np.testing.assert_allclose(
        float(scale2[0] / (shape2[0] - 1)), _grid_posterior_mean(log_post_v, 1e-3, 1e3), rtol=1e-4
    )
    # the inverse-gamma sampler has the right mean and variance
    draws = np.asarray(
        sample_inverse_gamma(jax.random.key(0), jnp.full(20000, 6.0), jnp.full(20000, 2.0))
    )
    assert abs(draws.mean() - 2.0 / 5.0) < 4 * np.sqrt(4.0 / (25 * 4) / 20000)
    np.testing.assert_allclose(draws.var(), 4.0 / (25 * 4), rtol=0.15)


@pytest.mark.requires_x64
def test_centroid_conditional_matches_dense_gaussian():
    rng = np.random.default_rng(4)
    n, k, d, q, p0 = 7, 3, 2, 0.3, 50.0
    starts = np.zeros(n, bool)
    starts[[0, 4]] = True
    y = rng.normal(size=(n, k, d))
    rotated = rng.normal(size=(n, k, d))
    prec = rng.uniform(0.5, 2.0, size=(n, k))
    prec[2] = 0.0  # a frame with no keypoint
    data = _slds_programs.KPData(
        jnp.asarray(y),
        jnp.ones((n, k)),
        jnp.ones((n, k)),
        jnp.asarray(starts),
        jnp.zeros(n, jnp.int32),
        jnp.ones(n),
    )
    hyper = _slds_programs.KPHyper(*([None] * 7), jnp.asarray(q), jnp.asarray(p0))
    # dense posterior, one coordinate at a time (coordinates are independent and share variances)
    J = np.zeros((n, n))
    for t in range(n):
        if starts[t]:
            J[t, t] += 1 / p0
        else:
            J[np.ix_([t - 1, t], [t - 1, t])] += np.array([[1, -1], [-1, 1]]) / q
        J[t, t] += prec[t].sum()
    cov = np.linalg.inv(J)
    h = np.stack([np.sum(prec * (y[..., i] - rotated[..., i]), axis=1) for i in range(d)], axis=1)
    mean = cov @ h
    sm = _slds_programs.smooth_centroid(data, jnp.asarray(rotated), jnp.asarray(prec), hyper)
    np.testing.assert_allclose(np.asarray(sm), mean, atol=1e-10)
    draw = jax.jit(
        jax.vmap(
            lambda key: _slds_programs.sample_centroid(
                key, data, jnp.asarray(rotated), jnp.asarray(prec), hyper
            )
        )
    )
    n_draws = 20000
    v = np.asarray(draw(jax.random.split(jax.random.key(2), n_draws)))[..., 0]
    assert np.all(np.abs(v.mean(0) - mean[:, 0]) < 5 * np.sqrt(np.diag(cov) / n_draws))
    np.testing.assert_allclose(np.cov(v, rowvar=False), cov, atol=0.05 * np.max(np.diag(cov)))


# ----------------------------------------------------------------------------
# a known model, simulated keypoints, and a fit shared by several tests
# ----------------------------------------------------------------------------


def _truth():
    rng = np.random.default_rng(0)
    model = KeypointSLDS(n_states=N_STATES, latent_dim=LATENT_DIM, nlags=NLAGS, noise_dof=5.0)
    shape = np.array([[2.0, 0.0], [1.0, 0.4], [0.0, 0.0], [-1.0, -0.4], [-2.0, 0.0], [0.0, 0.6]])
    shape -= shape.mean(0)
    basis = rng.normal(size=(N_KP, 2, LATENT_DIM))
    basis -= basis.mean(0)
    comps = np.linalg.qr(basis.reshape(-1, LATENT_DIM))[0].T
    model.pca_components_ = comps
    model.pca_mean_ = shape.reshape(-1) / np.sqrt(np.mean(np.sum(shape**2, 1)))
    targets = np.array([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]]) * 0.6
    model.coef_ = np.tile(0.8 * np.eye(LATENT_DIM), (N_STATES, 1, 1))
    model.intercept_ = 0.2 * targets
    model.covariances_ = np.tile(0.003 * np.eye(LATENT_DIM), (N_STATES, 1, 1))
    model.initial_prob_ = np.full(N_STATES, 1 / N_STATES)
    model.transition_prob_ = (
        np.full((N_STATES, N_STATES), 0.02 / (N_STATES - 1))
        + 0.98 * np.eye(N_STATES)
        - 0.02 / (N_STATES - 1) * np.eye(N_STATES)
    )
    model.noise_variance_ = np.full(N_KP, 0.002)
    model.scale_ = 20.0
    model.centroid_variance_ = 0.004
    model.latent_variance_ = np.ones(LATENT_DIM)
    model.n_keypoints_, model.n_dims_ = N_KP, 2
    return model


@pytest.fixture(scope="module")
def simulated():
    truth = _truth()
    starts = np.zeros(N_FRAMES, bool)
    starts[[0, 900]] = True
    sim = truth.simulate(jax.random.key(3), N_FRAMES, session_starts=starts)
    model = KeypointSLDS(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        kappa=100.0,
        n_iter_ar=10,
        n_iter=20,
        anterior_bodyparts=0,
        posterior_bodyparts=4,
        progress_bar=False,
        random_state=1,
    ).fit(sim.keypoints, session_starts=starts)
    return truth, sim, starts, model


def _agreement(a, b):
    ok = (a >= 0) & (b >= 0)
    conf = np.zeros((N_STATES, N_STATES))
    np.add.at(conf, (a[ok], b[ok]), 1)
    rows, cols = linear_sum_assignment(-conf)
    return conf[rows, cols].sum() / ok.sum()


def test_simulate_shapes(simulated):
    truth, sim, starts, _ = simulated
    assert sim.keypoints.shape == (N_FRAMES, N_KP, 2) and sim.latents.shape == (
        N_FRAMES,
        LATENT_DIM,
    )
    assert np.all(sim.states[starts] == -1) and set(np.unique(sim.states[sim.states >= 0])) <= set(
        range(N_STATES)
    )
    assert sim.heading.shape == (N_FRAMES,) and sim.centroid.shape == (N_FRAMES, 2)
    assert np.all(np.isfinite(sim.keypoints))


def test_recovers_states_heading_and_centroid(simulated):
    truth, sim, starts, model = simulated
    assert np.all(np.isfinite(model.log_likelihood_history_))
    dec = model.decode(sim.keypoints, session_starts=starts)
    err = np.angle(np.exp(1j * (dec.heading - sim.heading)))
    err -= np.angle(
        np.mean(np.exp(1j * err))
    )  # the fitted egocentric frame may be rotated by a constant
    assert np.median(np.abs(err)) < 0.1
    # centroid in the data's units (a body is ~20 units)
    assert (
        np.median(
            np.linalg.norm(
                dec.centroid - sim.centroid - np.mean(dec.centroid - sim.centroid, 0), axis=1
            )
        )
        < 1.0
    )
    assert _agreement(sim.states, dec.states) > 0.85
    assert _agreement(sim.states, model.states_) > 0.8
    chain_err = np.angle(np.exp(1j * (model.headings_ - sim.heading)))
    assert np.median(np.abs(chain_err - np.angle(np.mean(np.exp(1j * chain_err))))) < 0.15


def test_decode_is_deterministic_and_consistent(simulated):
    _, sim, starts, model = simulated
    a = model.decode(sim.keypoints, session_starts=starts)
    b = model.decode(sim.keypoints, session_starts=starts)
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    states = model.decode_state(sim.keypoints, session_starts=starts, state_format="index")
    np.testing.assert_array_equal(states, a.states)
    probs = model.smooth_proba(sim.keypoints, session_starts=starts)
    assert np.all(np.isnan(probs[starts])) and np.allclose(probs[~starts].sum(1), 1.0, atol=1e-4)
    filt = model.filter_proba(sim.keypoints, session_starts=starts)
    assert np.allclose(filt[~starts].sum(1), 1.0, atol=1e-4)
    assert np.isfinite(model.score(sim.keypoints, session_starts=starts))


def test_save_load_round_trip(simulated, tmp_path):
    _, sim, starts, model = simulated
    path = model.save_params(tmp_path / "kpslds.npz")
    loaded = behavhmm.load_model(path)
    assert isinstance(loaded, KeypointSLDS) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.pca_components_, model.pca_components_)
    a = model.decode(sim.keypoints, session_starts=starts)
    b = loaded.decode(sim.keypoints, session_starts=starts)
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    with np.load(path, allow_pickle=False) as npz:
        assert "latents_" not in npz.files  # no training data in the model file


def test_refit_does_not_recompile(simulated):
    _, sim, starts, _ = simulated
    programs = (
        _slds_programs.continuous_sweep,
        _ar_programs.gibbs_sweep,
        _slds_programs.decode_program,
    )
    before = [p._cache_size() for p in programs]
    model = KeypointSLDS(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        kappa=30.0,
        alpha=2.0,
        n_iter_ar=2,
        n_iter=2,
        anterior_bodyparts=0,
        posterior_bodyparts=4,
        progress_bar=False,
        random_state=5,
    ).fit(sim.keypoints[:-20], session_starts=starts[:-20])
    model.decode(sim.keypoints[:-20], session_starts=starts[:-20])
    assert [p._cache_size() for p in programs] == before


@pytest.mark.slow  # two fits, each compiling its own sweep
@pytest.mark.requires_x64
def test_state_sampler_side_by_side_gives_the_same_chain(simulated, monkeypatch):
    """The AR-HMM state sampler on the sessions' rows (on a CPU from MIN_CPU_ROW_STATES
    states) draws the one-axis sampler's states: the chain is the same."""
    from behavhmm.inference import _sessions

    _, sim, starts, _ = simulated
    X, st = sim.keypoints[:700], starts[:700]
    fits = []
    for min_states in (N_STATES + 1, 1):  # one axis, then rows (on a CPU)
        monkeypatch.setattr(_sessions, "MIN_CPU_ROW_STATES", min_states)
        monkeypatch.setattr(_sessions, "SIDE_BY_SIDE", None)
        fits.append(KeypointSLDS(**short_chain(n_iter=2, random_state=3)).fit(X, session_starts=st))
    np.testing.assert_allclose(fits[1].transition_prob_, fits[0].transition_prob_, rtol=1e-8)
    np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-7, atol=1e-10)


def short_chain(**overrides):
    """Settings of the short full-model chains of the tests below (700 frames)."""
    return dict(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        kappa=30.0,
        n_iter_ar=2,
        anterior_bodyparts=0,
        posterior_bodyparts=4,
        progress_bar=False,
        **overrides,
    )


@pytest.mark.slow  # 10-19 s in the default run (CI, 2 cores)
def test_checkpoint_resume_is_bit_identical(simulated, tmp_path):
    """A full-model chain stopped after 3 sweeps and resumed to 6 equals one run straight to 6."""
    _, sim, starts, _ = simulated
    X, st = sim.keypoints[:700], starts[:700]
    kw = short_chain(check_every=2, random_state=7)
    straight = KeypointSLDS(n_iter=6, **kw).fit(X, session_starts=st)
    path = tmp_path / "chain.npz"
    KeypointSLDS(n_iter=3, checkpoint_path=path, checkpoint_every=2, **kw).fit(X, session_starts=st)
    resumed = KeypointSLDS(n_iter=6, checkpoint_path=path, **kw).fit(
        X, session_starts=st, resume=True
    )
    for name in (
        "coef_",
        "transition_prob_",
        "beta_",
        "noise_variance_",
        "latents_",
        "headings_",
        "centroids_",
        "states_",
        "log_likelihood_history_",
        "ar_log_likelihood_history_",
    ):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name), err_msg=name)
    # the resumed fit continued the saved chain (its diagnostics include the interrupted run's last
    # sweep)
    assert straight.check_iterations_.tolist() == [2, 4, 6]
    assert resumed.check_iterations_.tolist() == [2, 3, 4, 6]
    with pytest.raises(ValueError, match="does not match this fit"):
        KeypointSLDS(n_iter=6, checkpoint_path=path, **{**kw, "kappa": 31.0}).fit(
            X, session_starts=st, resume=True
        )
    with pytest.raises(ValueError, match="does not match this fit"):
        KeypointSLDS(n_iter=6, checkpoint_path=path, **kw).fit(
            X[:-1], session_starts=st[:-1], resume=True
        )
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        KeypointSLDS(n_iter=6, checkpoint_path=tmp_path / "none.npz", **kw).fit(
            X, session_starts=st, resume=True
        )
    with pytest.raises(ValueError, match="resume=True needs checkpoint_path"):
        KeypointSLDS(n_iter=6, **kw).fit(X, session_starts=st, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint_path"):
        KeypointSLDS(n_iter=6, checkpoint_every=2, **kw).fit(X, session_starts=st)


def test_missing_keypoints_and_confidence(simulated):
    _, sim, starts, model = simulated
    X = sim.keypoints.copy()
    X[100:110, 2] = np.nan
    conf = np.ones(X.shape[:2])
    conf[200:220, 1] = 0.0
    X[200:220, 1] += 30.0  # a tracking error flagged by low confidence
    dec = model.decode(X, confidence=conf, session_starts=starts)
    clean = model.decode(sim.keypoints, session_starts=starts)
    assert np.all(np.isfinite(dec.latents)) and np.all(np.isfinite(dec.heading))
    # the flagged error barely moves the centroid
    assert np.max(np.linalg.norm(dec.centroid[200:220] - clean.centroid[200:220], axis=1)) < 1.5


def test_pynapple_in_pynapple_out(simulated):
    nap = pytest.importorskip("pynapple")
    _, sim, starts, model = simulated
    t = np.arange(N_FRAMES) / 30.0
    epochs = nap.IntervalSet(start=[t[0], t[900]], end=[t[899], t[-1]])
    X = nap.TsdTensor(t=t, d=sim.keypoints, time_support=epochs)
    states = model.decode_state(X, state_format="index")
    assert isinstance(states, nap.Tsd)
    np.testing.assert_array_equal(
        np.asarray(states.values),
        model.decode_state(sim.keypoints, session_starts=starts, state_format="index"),
    )


def test_bad_input_raises(simulated):
    _, sim, _, model = simulated
    with pytest.raises(ValueError, match="n_keypoints"):
        model.decode(sim.keypoints[:, :, 0])
    with pytest.raises(ValueError, match="keypoints"):
        model.decode(sim.keypoints[:, :4])
    with pytest.raises(ValueError, match="confidence"):
        model.decode(sim.keypoints, confidence=np.ones((3, 3)))
    with pytest.raises(ValueError, match="latent_dim"):
        KeypointSLDS(latent_dim=50, progress_bar=False).fit(sim.keypoints)
    with pytest.raises(ValueError, match="nlags"):
        model.decode(sim.keypoints[:1])


# ----------------------------------------------------------------------------
# real data
# ----------------------------------------------------------------------------


@pytest.mark.shared_data
def test_float32_real_recording_has_no_nan(shared_data):
    from behavhmm.io import load_keypoints

    ks = load_keypoints(glob.glob(str(shared_data / "dlc_golden_mouse" / "*.h5"))[0])
    names = list(ks.bodyparts)
    use = [
        names.index(b) for b in ("nose", "left_ear", "right_ear", "neck", "mid_back", "tail_base")
    ]
    X = np.asarray(ks.coordinates)[:N_FRAMES, use]
    conf = np.asarray(ks.confidence)[:N_FRAMES, use]
    model = KeypointSLDS(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        kappa=1e4,
        n_iter_ar=3,
        n_iter=5,
        anterior_bodyparts=0,
        posterior_bodyparts=5,
        progress_bar=False,
    ).fit(X, confidence=conf)
    assert model.coef_.dtype == np.float32
    for name in (
        "log_likelihood_history_",
        "latents_",
        "headings_",
        "centroids_",
        "noise_variance_",
        "coef_",
    ):
        assert np.all(np.isfinite(getattr(model, name))), name
    dec = model.decode(X, confidence=conf)
    assert all(
        np.all(np.isfinite(a)) for a in (dec.latents, dec.heading, dec.centroid)
    ) and np.isfinite(dec.log_likelihood)
    # the centroid follows the keypoints' mean (pixels)
    assert np.median(np.linalg.norm(dec.centroid - np.nanmean(X, axis=1), axis=1)) < 15.0


def test_initialisation_frames_are_bounded():
    from behavhmm.models.keypoint_slds import INIT_FRAMES

    model = KeypointSLDS(nlags=3)
    mask = np.zeros(16 * 4860, bool)
    mask[::4860] = True
    rows = model._init_rows(mask)
    assert len(rows) <= INIT_FRAMES + 16 and np.all(np.diff(rows) > 0)
    # every session contributes its opening stretch
    assert np.all(np.isin(np.flatnonzero(mask), rows))
    np.testing.assert_array_equal(model._init_rows(mask[:1000]), np.arange(1000))
