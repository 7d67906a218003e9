"""Sessions side by side: the concatenated axis bucketed into padded rows (private).

The public kernels take every session on one concatenated time axis. When the
session boundaries are concrete (known on the host, outside ``jax.jit``), the
sequential kernels instead run the sessions side by side: sessions are grouped by
length into buckets of padded rows ``(n_rows, row_length)`` and one scan over the
row length steps every row. Row lengths are rounded up
to a fixed grid (four sizes per octave: ``m 2^k`` with ``m`` in 4..7), so datasets
of similar shape reuse the compiled row programs and padding stays below 25 %; row
counts to that grid or the next multiple of 8, whichever is smaller (`row_count`).
One-frame sessions (the padding frames of a model's data axis are such sessions) get
rows of length 1. Padding is never read back: results are gathered back onto the
concatenated axis.

Random draws use per-session keys (`session_draws`, on the concatenated axis, then
laid out in rows), so a draw never depends on how the sessions are bucketed.

With several devices (GPUs, or CPU devices from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``), each bucket's row count is
rounded up to a multiple of the device count and its rows are split over the
devices (`shard_rows`): the sessions run side by side on every device at once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: Sessions shorter than this share one row length (no bucket per tiny length).
MIN_ROW_LENGTH = 16


class Bucket(NamedTuple):
    """Sessions of similar length, padded to one row length.

    Attributes
    ----------
    index : int32 ndarray of shape (n_rows, row_length)
        Position on the concatenated axis of each row step (0 on padding).
    lengths : int32 ndarray of shape (n_rows,)
        Number of real steps of each row (0 for a padding row).
    """

    index: np.ndarray
    lengths: np.ndarray


class SessionPlan(NamedTuple):
    """How the concatenated axis maps onto buckets of rows.

    Attributes
    ----------
    buckets : tuple of Bucket
        One bucket per rounded row length, shortest first.
    back : int32 ndarray of shape (n_time_bins,)
        For each time bin, its flat position in the buckets' rows laid end to end.
    n_sessions : int
        Number of sessions.
    """

    buckets: tuple
    back: np.ndarray
    n_sessions: int


def grid_size(n: int, minimum: int = 1) -> int:
    """Round ``n`` up to the grid ``m 2^k`` (``m`` in 4..7), at least ``minimum``."""
    n = max(int(n), int(minimum))
    k = max(0, n.bit_length() - 3)
    m = -(-n // (1 << k))
    return m << k


def row_count(n_sessions: int) -> int:
    """Rows of a bucket of ``n_sessions``: the grid size or the next multiple of 8, if smaller.

    Then rounded up to a multiple of the device count. (200 sessions: 200 rows, where
    the grid alone gives 224, 12 % of the work on padding.)
    """
    n_devices = jax.device_count()
    n = min(grid_size(n_sessions), -(-int(n_sessions) // 8) * 8)
    return -(-n // n_devices) * n_devices


def concrete_starts(session_starts, n_time_bins: int) -> np.ndarray | None:
    """Session starts as a host bool array (``[0]`` forced True), or None if traced."""
    if session_starts is None:
        starts = np.zeros(n_time_bins, bool)
    elif isinstance(session_starts, jax.core.Tracer):
        return None
    else:
        starts = np.asarray(session_starts).astype(bool).reshape(-1).copy()
        if starts.shape != (n_time_bins,):
            return None  # the kernels' own check reports the shape
    if n_time_bins:
        starts[0] = True
    return starts


def session_plan(starts: np.ndarray) -> SessionPlan:
    """Bucket the sessions marked by ``starts`` (host bool array, ``[0]`` True) by length."""
    n_time_bins = starts.shape[0]
    first = np.flatnonzero(starts)
    if len(first) == 1:  # one session: one row of its exact length, no padding or copy
        one = Bucket(np.arange(n_time_bins, dtype=np.int32)[None], np.int32([n_time_bins]))
        return SessionPlan((one,), np.arange(n_time_bins, dtype=np.int32), 1)
    lengths = np.diff(np.append(first, n_time_bins))
    rounded = np.array([1 if n == 1 else grid_size(n, MIN_ROW_LENGTH) for n in lengths], np.int64)
    back = np.zeros(n_time_bins, np.int32)
    buckets, offset = [], 0
    for row_length in np.unique(rounded):
        members = np.flatnonzero(rounded == row_length)
        n_rows = row_count(len(members))
        pos = np.arange(row_length)
        lens = np.zeros(n_rows, np.int32)
        lens[: len(members)] = lengths[members]
        starts_of_rows = np.zeros(n_rows, np.int64)
        starts_of_rows[: len(members)] = first[members]
        valid = pos[None, :] < lens[:, None]
        index = np.where(valid, starts_of_rows[:, None] + pos[None, :], 0).astype(np.int32)
        # rows are laid out time-major, (row_length, n_rows): position p of row r is p n_rows + r
        flat = offset + np.arange(row_length * n_rows).reshape(row_length, n_rows).T
        back[index[valid]] = flat[valid]
        buckets.append(Bucket(index, lens))
        offset += n_rows * int(row_length)
    return SessionPlan(tuple(buckets), back, len(first))


def shard_rows(rows):
    """Split time-major rows ``(row_length, n_rows, ...)`` over all devices along the rows.

    A no-op with one device, or when ``n_rows`` is not a multiple of the device
    count (the one-session plan). Inside ``jit`` this is a sharding constraint, so
    XLA partitions the rows' scan over the devices; results are the same as on one
    device.
    """
    n_devices = jax.device_count()
    if rows is None or n_devices == 1 or rows.shape[1] % n_devices:
        return rows
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("sessions",))
    spec = jax.sharding.PartitionSpec(None, "sessions")
    return jax.lax.with_sharding_constraint(rows, jax.sharding.NamedSharding(mesh, spec))


def to_rows(array, bucket: Bucket):
    """Gather a concatenated array ``(n_time_bins, ...)`` into rows ``(row_length, n_rows, ...)``.

    Rows are time-major, so a scan over the row length reads contiguous slices.

    Padding steps hold a copy of time bin 0 (finite, or ``-inf`` for some states
    only), which the row kernels treat as one-step sessions of their own (see
    `row_starts`).
    """
    if array is None:
        return None
    array = jnp.asarray(array)
    if bucket.index.shape == (1, array.shape[0]):  # the single-session plan: the identity
        return array[:, None]
    return shard_rows(array[jnp.asarray(bucket.index.T)])


def from_rows(rows_per_bucket, plan: SessionPlan):
    """Inverse of `to_rows` over all buckets: rows back onto the concatenated axis."""
    if len(rows_per_bucket) == 1 and rows_per_bucket[0].shape[:2] == (plan.back.shape[0], 1):
        return rows_per_bucket[0][:, 0]
    flat = jnp.concatenate([r.reshape((-1,) + r.shape[2:]) for r in rows_per_bucket])
    return flat[jnp.asarray(plan.back)]


def row_starts(lengths, row_length: int):
    """Session-start flags ``(row_length, n_rows)``: each first step, and every padding step.

    Marking padding as one-step sessions makes the concatenated kernels' reset rule
    keep padding out of every message, expected count and backtrace of the real steps.
    """
    pos = jnp.arange(row_length)[:, None]
    return (pos == 0) | (pos >= jnp.asarray(lengths)[None, :])


def _draw_at(key, session, position, draw, shape, dtype):
    return draw(jax.random.fold_in(jax.random.fold_in(key, session), position), shape, dtype)


def session_draws(key, session_starts, dtype, shape=(), draw=jax.random.uniform):
    """Random numbers per time bin from per-session keys, on the concatenated axis.

    The draw of time bin ``t`` (``draw(k, shape, dtype)``, uniform by default)
    depends only on ``key``, the index of the session holding ``t`` and the
    position of ``t`` in that session. The row kernels lay these numbers out in
    rows (`to_rows`), so every bucketing draws the same. Returns
    ``(n_time_bins, *shape)``.
    """
    session_starts = jnp.asarray(session_starts).at[0].set(True)
    steps = jnp.arange(session_starts.shape[0])
    session = jnp.cumsum(session_starts.astype(jnp.int32)) - 1
    position = steps - jax.lax.cummax(jnp.where(session_starts, steps, 0))
    per_step = jax.vmap(_draw_at, in_axes=(None, 0, 0, None, None, None))
    return per_step(key, session, position, draw, shape, dtype)


#: Run sessions side by side (bucketed rows) in the sequential kernels: None (the
#: default) where it measured faster, True always, False never. Where it measured
#: faster: the Kalman kernels on every backend (a step's small factorisations batch
#: well, 1.5x on a 2-core CPU); the HMM posterior sampler and smoother on every
#: backend from `MIN_CPU_ROW_STATES` states (their steps become matrix products; on a
#: 2-core CPU, K = 100: sampler 1.84 -> 1.04 s for 200 sessions, smoother 2.04 -> 1.41 s
#: for 100; K <= 10: slower); the other HMM kernels on accelerators only (on this
#: project's 2-core CPUs their one-scan path measured as fast or faster; see
#: docs/guide/inference.md).
SIDE_BY_SIDE: bool | None = None

#: Fewest states for which the HMM sampler and smoother run sessions side by side on a CPU.
MIN_CPU_ROW_STATES = 24


def side_by_side(kernel: str = "hmm", n_states: int | None = None) -> bool:
    """Whether the sequential ``kernel`` buckets concrete sessions now.

    ``kernel`` is "hmm", "hmm_sample" or "hmm_smoother" (given ``n_states``), or
    "kalman".
    """
    if SIDE_BY_SIDE is not None:
        return bool(SIDE_BY_SIDE)
    if kernel == "kalman" or jax.default_backend() != "cpu":
        return True
    many_states = n_states is not None and n_states >= MIN_CPU_ROW_STATES
    return kernel in ("hmm_sample", "hmm_smoother") and many_states


def plan_for(
    session_starts,
    per_step,
    min_sessions: int = 2,
    always: bool = False,
    kernel: str = "hmm",
) -> SessionPlan | None:
    """The bucketing of concrete ``session_starts``, or None (traced, bad shape, too few, off).

    ``per_step`` is any ``(n_time_bins, ...)`` input of the kernel (its length is
    the number of time bins; for "hmm_sample" and "hmm_smoother", the
    ``(n_time_bins, n_states)`` log-likelihoods). ``always`` ignores `SIDE_BY_SIDE` (for parallel
    Viterbi, where rows replace a max-plus scan with K^3 work per step).
    """
    shape = jnp.shape(per_step)
    if not (always or side_by_side(kernel, shape[-1] if len(shape) == 2 else None)):
        return None
    if len(shape) != 2 or shape[0] < 1:
        return None
    starts = concrete_starts(session_starts, shape[0])
    if starts is None or np.count_nonzero(starts) < min_sessions:
        return None
    return session_plan(starts)
