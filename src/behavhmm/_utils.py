"""Low-level JAX helpers shared by every layer (imports nothing from behavhmm)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

#: Bytes one chunk of a time-chunked computation may use by default.
DEFAULT_CHUNK_BYTES = 2**26


def float_dtype():
    """The floating dtype JAX computes in: float32, or float64 with ``jax_enable_x64``."""
    return jnp.result_type(float)


def x64_enabled() -> bool:
    """Whether JAX computes in float64 (``jax_enable_x64``) in this process."""
    return bool(jax.config.jax_enable_x64)


def _with_x64(fn, x64: bool, *args, **kwargs):
    if x64_enabled() != x64:
        jax.config.update("jax_enable_x64", x64)
    return fn(*args, **kwargs)


def in_caller_precision(fn):
    """``fn`` for a joblib task: it runs in this process's precision wherever it runs.

    joblib's worker processes start in float32 whatever the caller set with
    ``jax_enable_x64``; ``delayed(in_caller_precision(fn))(...)`` switches the
    worker to the caller's setting first (a no-op in the caller's own process).
    """
    return functools.partial(_with_x64, fn, x64_enabled())


def rows_per_chunk(bytes_per_row: int, budget: int = DEFAULT_CHUNK_BYTES) -> int:
    """How many time steps fit into ``budget`` bytes, at least 1."""
    return max(1, int(budget) // max(1, int(bytes_per_row)))


def chunked_sum(fn, arrays, chunk: int):
    """``sum_t fn(arrays[t])`` over the leading (time) axis, ``chunk`` steps at a time.

    ``fn`` maps a block of shape ``(chunk, ...)`` to a pytree of partial sums.
    The fewest blocks of at most ``chunk`` steps are used, all of one size,
    so the time axis is padded with fewer zeros than there are blocks; ``fn``
    must return zero for all-zero rows (true for weighted statistics whose
    weights are padded with zeros). Memory is bounded by one block.
    """
    n_time_bins = arrays[0].shape[0]
    n_blocks = -(-n_time_bins // max(1, min(chunk, n_time_bins)))
    chunk = -(-n_time_bins // n_blocks)  # balanced blocks: at most n_blocks - 1 padded rows
    n_pad = n_blocks * chunk - n_time_bins
    blocks = [
        jnp.concatenate([a, jnp.zeros((n_pad,) + a.shape[1:], a.dtype)]).reshape(
            (n_blocks, chunk) + a.shape[1:]
        )
        for a in arrays
    ]
    first = fn(*[b[0] for b in blocks])
    if n_blocks == 1:
        return first

    def body(total, block):
        return jax.tree_util.tree_map(jnp.add, total, fn(*block)), None

    total, _ = jax.lax.scan(body, first, [b[1:] for b in blocks])
    return total


def bucket_length(n: int) -> int:
    """Round ``n`` up so that similar lengths share one compiled program.

    Lengths are rounded up to a multiple of ``2**(floor(log2 n) - 3)``, which
    wastes at most 12.5% and gives at most 8 distinct lengths per octave.
    """
    if n <= 16:
        return max(int(n), 1)
    step = 2 ** (int(np.floor(np.log2(n))) - 3)
    return int(-(-n // step) * step)


def flat_random(sampler, key, shape, dtype, **kwargs):
    """``sampler(key, shape, dtype)`` drawn as one flat vector and reshaped.

    Gives exactly the values of ``sampler(key, shape, dtype, **kwargs)``
    (with JAX's default partitionable threefry the bits depend only on the
    flat index), but compiles several times faster on CPU: multi-dimensional
    threefry draws make XLA emit much larger kernels (measured with JAX
    0.10: 1.6 s instead of 0.2 s for a (100, 10, 10) normal draw).

    Parameters
    ----------
    sampler : callable
        ``jax.random.normal``, ``jax.random.uniform`` or another sampler
        with the signature ``(key, shape, dtype, **kwargs)``.
    key : jax.random key
    shape : tuple of int
    dtype : dtype
    **kwargs
        Passed to ``sampler`` (e.g. ``minval``).

    Returns
    -------
    array of shape ``shape`` and dtype ``dtype``
    """
    shape = tuple(int(s) for s in shape)
    return sampler(key, (int(np.prod(shape, dtype=np.int64)),), dtype, **kwargs).reshape(shape)


#: Proposals per variate of :func:`log_gamma_variates`; each is accepted with
#: probability above 0.95, so all fail with probability below 1e-20.
GAMMA_PROPOSALS = 16


def log_gamma_variates(key, shape):
    """``log G`` with ``G ~ Gamma(shape, 1)``, elementwise, by Marsaglia-Tsang without loops.

    Each variate gets :data:`GAMMA_PROPOSALS` proposals at once and keeps the
    first accepted one, so the computation has a fixed shape (it compiles in a
    fraction of the time of JAX's while-loop samplers and vectorises over any
    number of variates). Shapes below 1 use ``G(a) = G(a + 1) U^{1/a}`` in log
    space, so tiny shapes (Dirichlet concentrations of unused states) neither
    underflow nor lose accuracy.

    Parameters
    ----------
    key : jax.random key
    shape : array
        Gamma shape parameters (> 0).

    Returns
    -------
    array of the shape and dtype of ``shape``

    References
    ----------
    G. Marsaglia and W. W. Tsang (2000). A simple method for generating gamma
    variables. ACM Trans. Math. Software 26(3), 363-372.
    """
    shape = jnp.asarray(shape)
    dtype = shape.dtype if jnp.issubdtype(shape.dtype, jnp.floating) else float_dtype()
    shape = shape.astype(dtype)
    boosted = jnp.where(shape < 1.0, shape + 1.0, shape)
    d = boosted - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    k_norm, k_unif, k_boost = jax.random.split(key, 3)
    draws = (GAMMA_PROPOSALS,) + shape.shape
    x = flat_random(jax.random.normal, k_norm, draws, dtype)
    log_u = jnp.log(
        flat_random(jax.random.uniform, k_unif, draws, dtype, minval=jnp.finfo(dtype).tiny)
    )
    v = (1.0 + c * x) ** 3
    safe_v = jnp.where(v > 0, v, 1.0)
    accept = (v > 0) & (log_u < 0.5 * x * x + d - d * safe_v + d * jnp.log(safe_v))
    first = jnp.argmax(accept, axis=0)
    log_v = jnp.take_along_axis(jnp.log(safe_v), first[None], axis=0)[0]
    log_g = jnp.log(d) + log_v
    tiny = jnp.finfo(dtype).tiny
    log_boost = (
        jnp.log(flat_random(jax.random.uniform, k_boost, shape.shape, dtype, minval=tiny)) / shape
    )
    return jnp.where(shape < 1.0, log_g + log_boost, log_g)


# design pytrees of the GLM-HMM (re-exported by behavhmm.observations.glm)


def flatten_design(X) -> np.ndarray:
    """A dict (pytree) of 2-D arrays joined along features, in ``jax.tree_util`` leaf order.

    Parameters
    ----------
    X : array-like of shape (n_time_bins, n_features) or dict of such arrays
        A design matrix, or named blocks of one (nemos' ``FeaturePytree`` form).

    Returns
    -------
    ndarray of shape (n_time_bins, total_features)
    """
    leaves = jax.tree_util.tree_leaves(X)
    if len(leaves) == 1:
        return np.asarray(leaves[0])
    return np.concatenate([np.asarray(leaf) for leaf in leaves], axis=1)


def unflatten_coef(X, coef, axis: int = 0):
    """Split an array along its feature ``axis`` into the structure of the design ``X``.

    With ``axis=0`` it turns flattened coefficients into a dict like ``X``;
    with ``axis=1`` it splits a flattened design the same way.
    """
    leaves, treedef = jax.tree_util.tree_flatten(X)
    if treedef.num_leaves == 1 and not isinstance(X, dict | list | tuple):
        return coef
    widths = np.cumsum([np.shape(leaf)[1] for leaf in leaves])[:-1]
    return jax.tree_util.tree_unflatten(treedef, np.split(np.asarray(coef), widths, axis=axis))
