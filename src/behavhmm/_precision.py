"""Full float32 precision for the compiled programs whose numerics need it.

On recent NVIDIA GPUs JAX multiplies float32 matrices in TF32 (about 10
mantissa bits) unless told otherwise, and ``jax_default_matmul_precision``
can lower it anywhere. The fitting programs of behavhmm (log-likelihoods,
sufficient statistics, forward-backward messages, Kalman steps) lose states
and give non-finite log-likelihoods at that precision, so each of them is
traced under ``jax.default_matmul_precision("highest")``: every
``dot_general`` inside, including those of the inference kernels called from
it, then carries ``HIGHEST`` precision whatever the global setting is. No
global setting is changed at import.

Factorisations and triangular solves (Cholesky, ``solve_triangular``) do not
read this setting: on the CPU they are LAPACK calls, on GPUs cuSOLVER/cuBLAS
calls in the array's own precision.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._utils import chunked_sum

__all__ = ["PRECISION", "blocked_sum", "pinned", "pinned_jit"]

#: The matmul precision every program of the fits runs at.
PRECISION = "highest"


def pinned(fun):
    """``fun`` traced (and, if not jitted, run) under full float32 matmul precision.

    Parameters
    ----------
    fun : callable
        A JAX function, jitted or not.

    Returns
    -------
    callable
        Same signature; its ``dot_general`` operations carry ``HIGHEST``
        precision whatever ``jax_default_matmul_precision`` says.
    """

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        with jax.default_matmul_precision(PRECISION):
            return fun(*args, **kwargs)

    return wrapper


def pinned_jit(fun=None, **jit_kwargs):
    """``jax.jit(pinned(fun), **jit_kwargs)``; usable as ``@pinned_jit`` or ``@pinned_jit(...)``.

    Parameters
    ----------
    fun : callable, optional
        The function to compile.
    **jit_kwargs
        Passed to ``jax.jit`` (``static_argnames`` and so on).

    Returns
    -------
    callable
        The jitted function (or a decorator when ``fun`` is None).
    """
    if fun is None:
        return functools.partial(pinned_jit, **jit_kwargs)
    return jax.jit(pinned(fun), **jit_kwargs)


def blocked_sum(x, block: int = 4096):
    """Sum over the leading (time) axis as the sum of per-block sums.

    A float32 sum of ``n`` terms added one after the other has an error
    growing like ``n ε``; summing ``block`` terms at a time and then the block
    sums brings it to about ``(block + n / block) ε``.

    Parameters
    ----------
    x : array of shape (n_time_bins, ...)
        Terms.
    block : int, default 4096
        Terms per block.

    Returns
    -------
    array of shape ``x.shape[1:]``
    """
    if x.shape[0] <= block:  # one block (also no frames at all)
        return jnp.sum(x, axis=0)
    return chunked_sum(lambda b: jnp.sum(b, axis=0), (x,), block)
