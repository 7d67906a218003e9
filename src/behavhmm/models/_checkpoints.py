"""Checkpoints of long fits (Gibbs chains, EM runs): written atomically, resumed bit for bit.

A checkpoint is an ``.npz`` file (no pickle) holding the leaves of the
chain's state, its history so far, the chain's random key and JSON metadata:
the estimator's class, its hyperparameters (all but those a resumed fit may
change, ``RESUMABLE_CHANGES``), a SHA-256 digest of the training data, a
SHA-256 digest of the hand labels' evidence (``labels``, ``label_weight`` or an
evidence array, as the ``log e_t(k)`` the chain conditions on; see
[`labels_digest`][behavhmm.models._checkpoints.labels_digest]) and any
fit-specific fields (e.g. the kappa a duration target chose). A resumed fit
checks every one of them, so a checkpoint never continues another fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .._files import read_npz
from ._initializers import describe_initializers
from ._serialization import write_npz_atomic

__all__ = [
    "CHECKPOINT_FORMAT",
    "RESUMABLE_CHANGES",
    "checkpoint_meta",
    "labels_digest",
    "write_checkpoint",
    "read_checkpoint",
]

CHECKPOINT_FORMAT = "behavhmm-checkpoint"
RESUMABLE_CHANGES = frozenset(
    {"n_iter", "progress_bar", "checkpoint_path", "checkpoint_every", "check_every"}
)
"""Hyperparameters that may differ between a checkpointed fit and its resumption."""


def checkpoint_meta(estimator, data_arrays, **fields) -> dict:
    """What identifies a fit: class, hyperparameters, a digest of ``data_arrays`` and ``fields``."""
    params = {
        k: v for k, v in estimator.get_params(deep=False).items() if k not in RESUMABLE_CHANGES
    }
    params["initialization_funcs"] = describe_initializers(params.get("initialization_funcs"))
    digest = hashlib.sha256()
    for array in data_arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return {
        "format": CHECKPOINT_FORMAT,
        "class": type(estimator).__name__,
        "params": json.loads(json.dumps(params, default=str)),
        "data_sha256": digest.hexdigest(),
        **json.loads(json.dumps(fields, default=float)),
    }


def labels_digest(log_evidence) -> str | None:
    """SHA-256 digest of the label evidence a chain conditions on, or None without labels.

    Parameters
    ----------
    log_evidence : array-like of shape (n_frames, n_states) or None
        ``log e_t(k)`` on the chain's frames (0 where unlabelled, ``-inf`` off
        a clamped label), as built by [`behavhmm.labels`][behavhmm.labels] from
        ``labels`` and ``label_weight``; None for a fit without labels.

    Returns
    -------
    str or None
        Hex digest of the shape and the float64 values, so it does not depend
        on the precision the chain runs in. Checkpoints written before labels
        were recorded hold no digest, which reads as None: they resume only
        without labels.
    """
    if log_evidence is None:
        return None
    values = np.ascontiguousarray(np.asarray(log_evidence, dtype=np.float64))
    digest = hashlib.sha256(repr(values.shape).encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


def write_checkpoint(
    path, meta: dict, state, n_done: int, history: Mapping, key, extra: Mapping | None = None
):
    """Write the state after ``n_done`` iterations atomically (a crash never leaves half a file)."""
    meta = {**meta, "iteration": int(n_done)}
    arrays = {
        f"state_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(state))
    }
    arrays.update({f"history__{k}": np.asarray(v) for k, v in history.items()})
    arrays.update({f"extra__{k}": np.asarray(v) for k, v in (extra or {}).items()})
    arrays["key"] = np.asarray(jax.random.key_data(key))
    arrays["__metadata__"] = np.asarray(json.dumps(meta))
    write_npz_atomic(path, arrays)


def read_checkpoint(path, expected_meta: dict, key, template, *, n_iter: int):
    """Read a checkpoint written by the same fit.

    Parameters
    ----------
    path : str or path-like
    expected_meta : dict
        `checkpoint_meta` of the fit that resumes; every field must match.
    key : jax.random key
        The chain's key; it must be the one stored.
    template : pytree of arrays
        The state's structure, shapes and dtypes.
    n_iter : int
        Iterations the resumed fit runs in all. A checkpoint that already
        holds more iterations is refused: a fit never reports fewer
        iterations than its state has seen (resume with ``n_iter`` at least
        the checkpoint's iteration; equal returns the checkpointed state).

    Returns
    -------
    state : pytree like ``template``
    n_done : int
        Iterations already run, ``0 <= n_done <= n_iter``.
    history : dict of arrays
    extra : dict of arrays
        What ``write_checkpoint`` got as ``extra``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a readable checkpoint (empty, truncated,
        corrupted, crafted, NaN in its state or history: the message
        names the file), was written by a
        fit with other data, hyperparameters, random key, precision or
        shapes, or holds more iterations than ``n_iter``.
    """
    try:
        arrays = read_npz(path, string_keys={"__metadata__"}, what="behavhmm checkpoint")
    except FileNotFoundError:
        raise FileNotFoundError(f"resume=True but there is no checkpoint at {path}.") from None
    damaged = f"{path} is not a readable behavhmm checkpoint"
    meta = _read_meta(arrays, damaged)
    iteration = _check_same_fit(meta, arrays, path, damaged, expected_meta, key, n_iter=n_iter)
    leaves, treedef = _read_state(arrays, template, path, damaged)
    history, extra = _read_history(arrays, damaged, iteration)
    return jax.tree_util.tree_unflatten(treedef, leaves), iteration, history, extra


def _read_meta(arrays: dict, damaged: str) -> dict:
    """The checkpoint's JSON metadata, checked to be of this format."""
    raw = arrays.get("__metadata__")
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise ValueError(f"{damaged}: it has no metadata string.")
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{damaged}: its metadata is not valid JSON ({exc}).") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{damaged} (format {meta.get('format') if isinstance(meta, dict) else None!r})."
        )
    return meta


def _check_same_fit(
    meta: dict, arrays: dict, path, damaged: str, expected_meta: dict, key, *, n_iter: int
) -> int:
    """Refuse a checkpoint of another fit, chain or longer run; return its iteration count."""
    for field_name, value in expected_meta.items():
        if field_name == "labels_sha256" and meta.get(field_name) != value:
            raise ValueError(
                f"The checkpoint at {path} was written by a fit with other labels (labels, "
                "label_weight or evidence differ): resume with the labels and label_weight of "
                "the interrupted fit."
            )
        if meta.get(field_name) != value:
            raise ValueError(
                f"The checkpoint at {path} does not match this fit ({field_name} differs): resume "
                "with the "
                "same data, hyperparameters and random_state as the interrupted fit."
            )
    iteration = meta.get("iteration")
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise ValueError(
            f"{damaged}: its iteration count {iteration!r} is not a non-negative integer."
        )
    if iteration > n_iter:
        raise ValueError(
            f"The checkpoint at {path} holds {iteration} iterations, more than n_iter={n_iter}: a "
            "resumed fit "
            f"continues the chain up to n_iter in all; resume with n_iter >= {iteration}."
        )
    stored_key = arrays.get("key")
    if stored_key is None or not np.array_equal(stored_key, np.asarray(jax.random.key_data(key))):
        raise ValueError(
            f"The checkpoint at {path} was written by a chain with another random key."
        )
    return iteration


def _read_state(arrays: dict, template, path, damaged: str):
    """The state's leaves (shapes and dtypes of ``template``, no NaN) and its treedef."""
    refs, treedef = jax.tree_util.tree_flatten(template)
    try:
        leaves = [jnp.asarray(arrays[f"state_{i}"]) for i in range(len(refs))]
    except KeyError as exc:
        raise ValueError(f"The checkpoint at {path} lacks the state array {exc}.") from None
    for leaf, ref in zip(leaves, refs, strict=True):
        if leaf.shape != ref.shape or leaf.dtype != ref.dtype:
            raise ValueError(
                f"The checkpoint at {path} holds arrays of shape {leaf.shape} / dtype {leaf.dtype} "
                "where "
                f"{ref.shape} / {ref.dtype} is expected (was it written with another precision?)."
            )
    for i, leaf in enumerate(leaves):  # +inf can be meant (a Gaussian's dof); NaN never is
        if jnp.issubdtype(leaf.dtype, jnp.inexact) and bool(jnp.any(jnp.isnan(leaf))):
            raise ValueError(f"{damaged}: its state array state_{i} holds NaN values.")
    return leaves, treedef


def _read_history(arrays: dict, damaged: str, iteration: int) -> tuple[dict, dict]:
    """The history (finite, one entry per iteration) and the extra arrays."""
    history = {k[len("history__") :]: v for k, v in arrays.items() if k.startswith("history__")}
    extra = {k[len("extra__") :]: v for k, v in arrays.items() if k.startswith("extra__")}
    if any(v.ndim != 1 for v in history.values()):
        raise ValueError(f"{damaged}: its history arrays are not one-dimensional.")
    for name in ("log_likelihood", "log_joint"):
        values = history.get(name)
        if values is not None and not (
            np.issubdtype(values.dtype, np.floating) and np.all(np.isfinite(values))
        ):
            raise ValueError(f"{damaged}: its {name} history is not all finite numbers.")
    n_recorded = len(history.get("log_likelihood", ()))
    if n_recorded != iteration:
        raise ValueError(
            f"{damaged}: it records {n_recorded} log-likelihoods for {iteration} iterations."
        )
    return history, extra
