"""Memory a fit needs, by component, and a check against the memory available before it starts.

Every estimate counts the arrays whose size grows with the number of frames
(per frame, by component) and ignores what does not (parameters, compiled
programs, the Python process: a few hundred MiB). The numbers were checked
against peak RSS on the CPU (``benchmarks/bench_scale.py``; see the Scale page
of the docs). A fit whose estimate exceeds the memory available raises
``MemoryError`` before any work starts; ``BEHAVHMM_SKIP_MEMORY_CHECK=1`` skips
the check.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax

__all__ = [
    "MemoryEstimate",
    "arhmm_fit_memory",
    "available_memory",
    "check_fit_memory",
    "glmhmm_fit_memory",
    "keypoint_slds_fit_memory",
]

_MIB = 2**20
#: ``(L d)^2 + L d`` blocks per frame the Kalman sampler holds (filtered covariances and means,
#: and its backward pass's temporaries), measured by peak RSS on the CPU (float32,
#: latent_dim 10, nlags 3): 1.5 with the sessions on one axis (8,487 bytes per frame between
#: 97,200 and 972,000 frames), 2.0 since they run side by side in rows (peak RSS at 972,000
#: frames 8,698 MiB against 7,222 MiB on one axis: 1,592 bytes per frame more, 0.43 blocks).
KALMAN_MATRICES = 2.0


class MemoryEstimate(NamedTuple):
    """Bytes a fit needs.

    Attributes
    ----------
    n_frames : int
        Frames of the fit.
    per_frame : dict of str to float
        Bytes per frame of each component.
    """

    n_frames: int
    per_frame: dict

    @property
    def bytes_per_frame(self) -> float:
        """Sum of the components, bytes per frame."""
        return float(sum(self.per_frame.values()))

    @property
    def total(self) -> float:
        """Bytes for all frames."""
        return self.n_frames * self.bytes_per_frame


def arhmm_fit_memory(
    n_frames: int,
    n_states: int,
    n_features: int,
    nlags: int,
    *,
    itemsize: int,
    algorithm: str = "em",
) -> MemoryEstimate:
    """Bytes per frame of ``ARHMM.fit``, by component.

    Parameters
    ----------
    n_frames : int
        Frames (time bins) to fit.
    n_states, n_features, nlags : int
        ``K``, ``D`` and ``L`` of the model.
    itemsize : int
        4 (float32) or 8 (float64).
    algorithm : {"em", "gibbs"}
        The fitting algorithm.

    Returns
    -------
    MemoryEstimate
        Components: ``input`` (the caller's array and its float64 validated
        copy), ``init`` (float64 lagged design and z-scored k-means features,
        freed before the first sweep but part of the peak), ``data`` (frames,
        lags, masks on the device), ``design`` (the conditioned regressors of
        the AR update; for Gibbs also the frames sorted by state for its
        statistics), ``log_likelihoods`` (``K`` per frame),
        ``messages`` (filtered/smoothed messages of the HMM kernels and the
        posteriors: 3 K per frame for EM, 2 K for Gibbs).
    """
    k, d, lags = int(n_states), int(n_features), int(nlags)
    q = lags * d + 1
    per_frame = {
        "input": itemsize * d + 8 * d,
        "init": 8 * 3 * (d + lags * d),
        "data": itemsize * (d + lags * d + 1) + 5,
        # Gibbs: the conditioned regressors, and the frames sorted by state for the AR statistics
        # (`ar_state_statistics`: the (d + q)-vector of each frame, twice)
        "design": itemsize
        * (2 * d + max(lags - 1, 0) * d + (q + 2 * (d + q) if algorithm == "gibbs" else 0)),
        "log_likelihoods": itemsize * k,
        "messages": itemsize * k * (3 if algorithm == "em" else 2) + 4,
    }
    return MemoryEstimate(int(n_frames), per_frame)


def keypoint_slds_fit_memory(
    n_frames: int,
    n_states: int,
    n_keypoints: int,
    n_dims: int,
    latent_dim: int,
    nlags: int,
    *,
    itemsize: int,
    block_size: int | None = None,
) -> MemoryEstimate:
    """Bytes per frame of ``KeypointSLDS.fit``, by component.

    Parameters
    ----------
    n_frames : int
        Frames (time bins) to fit.
    n_states, n_keypoints, n_dims, latent_dim, nlags : int
        Sizes of the model.
    itemsize : int
        4 (float32) or 8 (float64).
    block_size : int, optional
        The model's ``block_size``: the Kalman covariances of only that many
        frames are held at once (then amortised over all frames).

    Returns
    -------
    MemoryEstimate
        Components: ``keypoints`` (coordinates, confidences, masks, noise
        scales and the float64 host copies), ``latents`` (latents, heading,
        centroid and the AR view of the latents), ``hmm`` (log-likelihoods and
        messages of the discrete states, 3 K per frame), ``kalman`` (filtered
        means and covariances of the ``nlags * latent_dim`` state and the
        sampler's temporaries: ``KALMAN_MATRICES`` of those per frame).
    """
    n = int(n_frames)
    kd = int(n_keypoints) * int(n_dims)
    s = int(nlags) * int(latent_dim)
    kalman_rows = n if block_size is None else min(n, int(block_size))
    per_frame = {
        "keypoints": itemsize * (kd + 4 * int(n_keypoints)) + 8 * 2 * (kd + int(n_keypoints)),
        "latents": itemsize * (3 * int(latent_dim) + s + 2 + int(n_dims) + kd),
        "hmm": itemsize * 3 * int(n_states) + 4,
        "kalman": itemsize * KALMAN_MATRICES * (s * s + s) * kalman_rows / max(n, 1),
    }
    return MemoryEstimate(n, per_frame)


def glmhmm_fit_memory(
    n_frames: int,
    n_states: int,
    n_features: int,
    *,
    itemsize: int,
    n_outputs: int = 1,
    block_size: int | None = None,
) -> MemoryEstimate:
    """Bytes per frame of ``GLMHMM.fit``, by component.

    The device components were read from XLA's memory analysis of the fit's
    compiled programs (``jax.jit(...).lower(...).compile().memory_analysis()``:
    arguments, outputs and temporaries per frame, for K in {2, 4, 8} and F in
    {5, 10, 20}, float32 and float64); the host components count the copies
    the validation makes.

    Parameters
    ----------
    n_frames : int
        Frames (time bins) to fit.
    n_states, n_features : int
        ``K`` and ``F`` (all features of a dict ``X`` together).
    itemsize : int
        4 (float32) or 8 (float64).
    n_outputs : int, default 1
        Neurons of a population ``y`` (or classes of a Categorical model):
        the M-step solves ``K * n_outputs`` problems at once.
    block_size : int, optional
        The model's ``block_size``: the E-step's log-likelihoods and the
        M-step's sums take that many frames at a time (the M-step
        ``M_STEP_BLOCK`` = 65,536 when None).

    Returns
    -------
    MemoryEstimate
        Components: ``input`` (the caller's ``X`` in the model's dtype and
        ``y``), ``host`` (the float64 copy of the kept ``X`` and ``y`` the
        initializers read, row indices and masks), ``data`` (design,
        responses, constants, weights and session starts on the device),
        ``e_step`` (log-likelihoods ``K``, the smoother's messages and
        temporaries ``4 K + 5`` and posteriors ``K + 1`` numbers per frame),
        ``m_step`` (what the M-step holds beyond the E-step's peak, which it
        follows: the posteriors, ``K + 1`` numbers, the weights of each
        problem, ``3 K n_outputs``, and the Newton blocks' temporaries,
        ``(F + 1)(K + 1) + 7 K`` numbers per frame of one block, amortised
        over all frames; often 0).
    """
    n, k, f, b = int(n_frames), int(n_states), int(n_features), int(itemsize)
    c = max(int(n_outputs), 1)
    block = min(n, 1 << 16 if block_size is None else int(block_size))
    per_frame = {
        "input": b * f + 8 * c,
        "host": 8 * f + 16 * c + 10,
        "data": b * (f + 2 + c) + 1,
        "e_step": b * (6 * k + 6),
    }
    # the M-step runs after the E-step: it adds only what its arrays (the E-step's posteriors,
    # K + 1 numbers, then 3 K n_outputs weights and the blocks' temporaries) hold beyond those
    m_phase = b * (k + 1) + b * 3 * k * c + b * ((f + 1) * (k + 1) + 7 * k) * c * block / max(n, 1)
    per_frame["m_step"] = max(0.0, m_phase - per_frame["e_step"])
    return MemoryEstimate(n, per_frame)


def available_memory() -> tuple[int | None, str]:
    """Bytes free for a fit on JAX's default device, and where that number comes from.

    Returns
    -------
    bytes : int or None
        On a GPU/TPU the allocator's limit minus what is in use; on the CPU
        ``MemAvailable`` of ``/proc/meminfo`` (or free physical pages); None
        when neither is known.
    source : str
        A few words naming the source.
    """
    dev = jax.local_devices()[0]
    if dev.platform != "cpu":
        try:
            stats = dev.memory_stats() or {}
        except Exception:  # noqa: BLE001  (backends without allocator statistics)
            stats = {}
        if "bytes_limit" in stats:
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            return free, f"{dev.platform} device memory"
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable (/proc/meminfo)"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free physical pages"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def check_fit_memory(estimate: MemoryEstimate, what: str, hint: str) -> None:
    """Raise ``MemoryError`` before a fit whose estimate exceeds the memory available.

    Parameters
    ----------
    estimate : MemoryEstimate
        What the fit needs.
    what : str
        The fit, for the message (``"ARHMM.fit"``).
    hint : str
        What the user can change (``block_size``, fewer states, float32...).

    Raises
    ------
    MemoryError
        If the estimate is larger than the memory available (unless
        ``BEHAVHMM_SKIP_MEMORY_CHECK=1``).
    """
    if os.environ.get("BEHAVHMM_SKIP_MEMORY_CHECK", "") not in ("", "0"):
        return
    free, source = available_memory()
    if free is None or estimate.total <= free:
        return
    parts = ", ".join(
        f"{name} {b:.0f}" for name, b in sorted(estimate.per_frame.items(), key=lambda kv: -kv[1])
    )
    raise MemoryError(
        f"{what} needs about {estimate.total / _MIB:,.0f} MiB for {estimate.n_frames:,} frames "
        f"({estimate.bytes_per_frame:,.0f} bytes per frame: {parts}), but only "
        f"{free / _MIB:,.0f} MiB are available ({source}). {hint} "
        "Set BEHAVHMM_SKIP_MEMORY_CHECK=1 to try anyway."
    )
