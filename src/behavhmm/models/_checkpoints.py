"""Checkpoints of long fits (Gibbs chains, EM runs): written atomically, resumed bit for bit.

A checkpoint is an ``.npz`` file (no pickle) holding the leaves of the
chain's state, its history so far, the chain's random key and JSON metadata:
the estimator's class, its hyperparameters (all but those a resumed fit may
change, ``RESUMABLE_CHANGES``), a SHA-256 digest of the training data and
any fit-specific fields (e.g. the kappa a duration target chose). A resumed
fit checks every one of them, so a checkpoint never continues another fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ._initializers import describe_initializers
from ._serialization import write_npz_atomic

__all__ = ["CHECKPOINT_FORMAT", "RESUMABLE_CHANGES", "checkpoint_meta", "write_checkpoint", "read_checkpoint"]

CHECKPOINT_FORMAT = "behavhmm-checkpoint"
RESUMABLE_CHANGES = frozenset({"n_iter", "progress_bar", "checkpoint_path", "checkpoint_every", "check_every"})
"""Hyperparameters that may differ between a checkpointed fit and its resumption."""


def checkpoint_meta(estimator, data_arrays, **fields) -> dict:
    """What identifies a fit: class, hyperparameters, a digest of ``data_arrays`` and ``fields``."""
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in RESUMABLE_CHANGES}
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


def write_checkpoint(path, meta: dict, state, n_done: int, history: Mapping, key, extra: Mapping | None = None):
    """Write the state after ``n_done`` iterations atomically (a crash never leaves half a file)."""
    meta = {**meta, "iteration": int(n_done)}
    arrays = {f"state_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(state))}
    arrays.update({f"history__{k}": np.asarray(v) for k, v in history.items()})
    arrays.update({f"extra__{k}": np.asarray(v) for k, v in (extra or {}).items()})
    arrays["key"] = np.asarray(jax.random.key_data(key))
    arrays["__metadata__"] = np.asarray(json.dumps(meta))
    write_npz_atomic(path, arrays)


def read_checkpoint(path, expected_meta: dict, key, template):
    """Read a checkpoint written by the same fit.

    Returns
    -------
    state : pytree like ``template``
    n_done : int
        Iterations already run.
    history : dict of arrays
    extra : dict of arrays
        What ``write_checkpoint`` got as ``extra``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a readable checkpoint, or was written by a fit
        with other data, hyperparameters, random key, precision or shapes.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["__metadata__"][()]))
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"resume=True but there is no checkpoint at {path}.") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable behavhmm checkpoint: {exc}") from exc
    for field_name, value in expected_meta.items():
        if meta.get(field_name) != value:
            raise ValueError(
                f"The checkpoint at {path} does not match this fit ({field_name} differs): resume with the "
                "same data, hyperparameters and random_state as the interrupted fit."
            )
    if not np.array_equal(arrays["key"], np.asarray(jax.random.key_data(key))):
        raise ValueError(f"The checkpoint at {path} was written by a chain with another random key.")
    refs, treedef = jax.tree_util.tree_flatten(template)
    try:
        leaves = [jnp.asarray(arrays[f"state_{i}"]) for i in range(len(refs))]
    except KeyError as exc:
        raise ValueError(f"The checkpoint at {path} lacks the state array {exc}.") from None
    for leaf, ref in zip(leaves, refs, strict=True):
        if leaf.shape != ref.shape or leaf.dtype != ref.dtype:
            raise ValueError(
                f"The checkpoint at {path} holds arrays of shape {leaf.shape} / dtype {leaf.dtype} where "
                f"{ref.shape} / {ref.dtype} is expected (was it written with another precision?)."
            )
    history = {k[len("history__") :]: v for k, v in arrays.items() if k.startswith("history__")}
    extra = {k[len("extra__") :]: v for k, v in arrays.items() if k.startswith("extra__")}
    return jax.tree_util.tree_unflatten(treedef, leaves), int(meta["iteration"]), history, extra
