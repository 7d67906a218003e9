"""ARHMM's chain helpers: the loop result (``ChainResult``), one chain's set-up, the
kappa search for ``target_duration`` and the checkpoint files of EM runs and Gibbs chains.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..._utils import float_dtype
from ...fitting._progress import progress
from .._checkpoints import checkpoint_meta, labels_digest, read_checkpoint, write_checkpoint
from ..base import (
    PreparedData,
)
from ._data import _ARFitData
from .gibbs import GibbsState
from .model import (
    ARHMMParams,
    Hyper,
    filter_program,
    median_duration_program,
    viterbi_program,
)
from .validation import _check_checkpoint_params


class ChainResult(NamedTuple):
    """One EM run or Gibbs chain of ARHMM at one ``kappa``.

    Attributes
    ----------
    params : ARHMMParams
        Final parameters.
    log_likelihood, log_joint : ndarray of shape (n_iter,)
        Training histories (nats; ``log_joint`` empty for a Gibbs chain without checks).
    history : dict of str to ndarray
        The loop's check-time records (``iteration``, ``median_duration``, ...).
    n_iter : int
    converged : bool
        EM met ``tol`` (always False for Gibbs).
    beta : jax.Array or None
        Global state weights of the HDP (Gibbs only).
    states : jax.Array or None
        Last sampled states (Gibbs only).
    train : PreparedData
        The training data the chain ran on.
    kappa : float
        Stickiness of this chain.
    """

    params: ARHMMParams
    log_likelihood: np.ndarray
    log_joint: np.ndarray
    history: dict
    n_iter: int
    converged: bool
    beta: jax.Array | None
    states: jax.Array | None
    train: PreparedData
    kappa: float


class _Loop(NamedTuple):
    """What one EM run or Gibbs chain of ARHMM needs besides its start."""

    hyper: Hyper
    method: str
    robust: bool
    train: PreparedData
    heldout: PreparedData | None
    progress: bool
    desc: str


class ARChain:
    """The set-up, kappa search and checkpoints of ARHMM's chains.

    ``_fit_chain`` hands the run to ``_em_chain`` / ``_gibbs_chain``, which stay in
    ``estimator.py`` so that they look ``em_step`` and ``gibbs_sweep`` up there.
    """

    def _run_loop(self, init: ARHMMParams, fd: _ARFitData, resume: bool) -> ChainResult:
        """One chain at ``kappa``, or the bisection over kappa for ``target_duration``."""
        if self.target_duration is None:
            return self._fit_chain(
                init,
                fd.train,
                fd.heldout,
                fd.prior,
                float(self.kappa),
                fd.key_chain,
                resume,
                self.progress_bar,
            )
        return self._tune_kappa(init, fd.train, fd.heldout, fd.prior, fd.key_chain)

    def _hyper(self, prior, kappa) -> Hyper:
        dtype = float_dtype()
        return Hyper(
            jnp.asarray(self.alpha, dtype),
            jnp.asarray(kappa, dtype),
            jnp.asarray(self.gamma, dtype),
            prior,
        )

    def _fit_chain(self, init, train: PreparedData, heldout, prior, kappa, key, resume, progress):
        """Run EM or the Gibbs sampler once at ``kappa``."""
        loop = _Loop(
            hyper=self._hyper(prior, kappa),
            method=self._method(),
            robust=bool(self.robust),
            train=train,
            heldout=heldout,
            progress=progress,
            desc=f"ARHMM {self.algorithm} (K={self.n_states})",
        )
        start, history, state = 0, None, None
        checkpoint = None
        if self.checkpoint_path is not None:
            checkpoint = partial(self._write_checkpoint, train=train, kappa=kappa, key=key)
            if resume:
                state, start, history = self._read_checkpoint(train, kappa, key)
        resumed = (state, start, history, checkpoint)
        try:
            if self.algorithm == "em":
                return self._em_chain(init, loop, resumed, kappa)
            return self._gibbs_chain(init, loop, resumed, kappa, key)
        except FloatingPointError as exc:
            raise FloatingPointError(
                f"{exc}{self._scale_hint(np.asarray(train.extra['y']))}"
            ) from None

    @staticmethod
    def _heldout_ll(params, loop: _Loop) -> dict:
        if loop.heldout is None:
            return {}
        data = loop.heldout.arrays["ar"]
        _, ll = filter_program(params, data, robust=loop.robust, method=loop.method)
        return {"heldout_log_likelihood": float(ll) + loop.heldout.extra["log_jacobian"]}

    def _median_duration(self, result: ChainResult) -> float:
        data = result.train.arrays["ar"]
        states = result.states
        if states is None:
            states = viterbi_program(
                result.params, data, robust=bool(self.robust), method=self._method()
            )
        return float(median_duration_program(states, data.starts, data.weights))

    def _tune_kappa(self, init, train, heldout, prior, key):
        """Bisection in log10(kappa) for the target median duration."""
        target = float(self.target_duration)
        tried: dict[float, tuple[float, ChainResult]] = {}

        def evaluate(log_k):
            log_k = round(float(log_k), 6)
            if log_k not in tried:
                res = self._fit_chain(init, train, heldout, prior, 10.0**log_k, key, False, False)
                tried[log_k] = (self._median_duration(res), res)
            return tried[log_k][0]

        with progress(desc="tuning kappa", unit="fit", disable=not self.progress_bar) as bar:

            def probe(log_k):
                dur = evaluate(log_k)
                bar.set_postfix(kappa=f"{10**log_k:.3g}", median_dur=f"{dur:.1f}", refresh=False)
                bar.update(1)
                return dur

            lo = hi = float(np.log10(max(self.kappa, 1e-12)))
            if probe(lo) < target:
                while probe(hi) < target and hi < 14:
                    lo, hi = hi, hi + 2.0
            else:
                while probe(lo) > target and lo > -4:
                    hi, lo = lo, lo - 2.0
            for _ in range(10):
                if hi - lo < 0.05:
                    break
                mid = 0.5 * (lo + hi)
                dur = probe(mid)
                if abs(dur - target) <= 0.05 * target:
                    break
                lo, hi = (mid, hi) if dur < target else (lo, mid)
        best = min(tried, key=lambda k: abs(tried[k][0] - target))
        if abs(tried[best][0] - target) > 0.2 * target:
            warnings.warn(
                f"target_duration={target:g} frames was not reached: the closest median duration "
                "was "
                f"{tried[best][0]:g} frames, at kappa={10.0**best:.3g} (tried "
                f"{10.0 ** min(tried):.3g} to "
                f"{10.0 ** max(tried):.3g}). The data decide the syllable boundaries more than "
                "kappa does; "
                "consider fewer states or more data.",
                UserWarning,
                stacklevel=5,
            )
        self.kappa_search_ = {
            "kappa": np.asarray([10.0**k for k in sorted(tried)]),
            "median_duration": np.asarray([tried[k][0] for k in sorted(tried)]),
        }
        return tried[best][1]

    # ---------------------------------------------------------- checkpoints
    def _checkpoint_meta(self, train: PreparedData, kappa):
        return checkpoint_meta(
            self,
            (train.extra["y"], train.extra["x"]),
            kappa=float(kappa),
            labels_sha256=labels_digest(train.arrays["ar"].log_evidence),
        )

    def _write_checkpoint(self, state, n_done, history, *, train, kappa, key):
        write_checkpoint(
            self.checkpoint_path, self._checkpoint_meta(train, kappa), state, n_done, history, key
        )

    def _read_checkpoint(self, train: PreparedData, kappa, key):
        state, start, history, _ = read_checkpoint(
            self.checkpoint_path,
            self._checkpoint_meta(train, kappa),
            key,
            self._state_template(train),
            n_iter=int(self.n_iter),
        )
        _check_checkpoint_params(
            self.checkpoint_path, state if self.algorithm == "em" else state.params
        )
        return state, start, history

    def _state_template(self, train: PreparedData):
        dtype = float_dtype()
        n_states, n_features = self.n_states, self.n_features_in_
        n_groups = len(self.groups_) if self.separate_trans else 1
        params = ARHMMParams(
            jnp.zeros(n_states, dtype),
            jnp.zeros((n_groups, n_states, n_states), dtype),
            jnp.zeros((n_states, n_features, self.nlags * n_features), dtype),
            jnp.zeros((n_states, n_features), dtype),
            jnp.zeros((n_states, n_features, n_features), dtype),
            jnp.zeros(n_states, dtype),
        )
        if self.algorithm == "em":
            return params
        n_padded = train.arrays["ar"].y.shape[0]
        return GibbsState(
            params,
            jnp.zeros(n_states, dtype),
            jnp.zeros(n_padded, jnp.int32),
            jnp.zeros(n_padded, dtype),
        )

    def _store(self, result: ChainResult, fd: _ARFitData) -> None:
        p = result.params
        self.initial_prob_ = np.asarray(p.initial_prob)
        trans = np.asarray(p.transition_prob)
        self.transition_prob_ = trans if self.separate_trans else trans[0]
        self.coef_ = np.asarray(p.coef)
        self.intercept_ = np.asarray(p.intercept)
        self.covariances_ = np.asarray(p.covariances)
        if self.robust:
            self.dof_ = np.asarray(p.dof)
        if result.beta is not None:
            self.beta_ = np.asarray(result.beta)
        self.kappa_ = float(result.kappa)
        history = result.history
        self.log_likelihood_history_ = np.asarray(result.log_likelihood)
        self.log_joint_history_ = np.asarray(result.log_joint)
        self.check_iterations_ = np.asarray(history.get("iteration", np.zeros(0)), int)
        self.median_duration_history_ = np.asarray(history.get("median_duration", np.zeros(0)))
        if "heldout_log_likelihood" in history:
            self.heldout_log_likelihood_history_ = np.asarray(history["heldout_log_likelihood"])
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        if self.algorithm == "em" and not result.converged:
            warnings.warn(
                f"EM did not converge in n_iter={self.n_iter} iterations (tol={self.tol} nats per "
                "frame); increase n_iter or tol.",
                ConvergenceWarning,
                stacklevel=4,
            )
