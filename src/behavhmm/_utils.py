"""Low-level JAX helpers shared by every layer (imports nothing from behavhmm)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

#: Bytes one chunk of a time-chunked computation may use by default.
DEFAULT_CHUNK_BYTES = 2**26


def float_dtype():
    """The floating dtype JAX computes in: float32, or float64 with ``jax_enable_x64``."""
    return jnp.result_type(float)


def rows_per_chunk(bytes_per_row: int, budget: int = DEFAULT_CHUNK_BYTES) -> int:
    """How many time steps fit into ``budget`` bytes, at least 1."""
    return max(1, int(budget) // max(1, int(bytes_per_row)))


def chunked_sum(fn, arrays, chunk: int):
    """``sum_t fn(arrays[t])`` over the leading (time) axis, ``chunk`` steps at a time.

    ``fn`` maps a block of shape ``(chunk, ...)`` to a pytree of partial sums.
    The time axis is padded with zeros to a multiple of ``chunk``; ``fn`` must
    return zero for all-zero rows (true for weighted statistics whose weights
    are padded with zeros). Memory is bounded by one block.
    """
    n_time_bins = arrays[0].shape[0]
    chunk = min(chunk, n_time_bins)
    n_blocks = -(-n_time_bins // chunk)
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
