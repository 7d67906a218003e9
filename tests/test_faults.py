"""Faults (issue 20): kill -9 during checkpointed fits, and failed writes.

A fit killed outright (SIGKILL, in a subprocess) between two checkpoints or in
the middle of writing one resumes from its last complete checkpoint to
parameters bit-identical to a fit that was never interrupted. A write that
fails (a full disk, a failed rename) raises an OSError naming the file and
leaves the previous model file or checkpoint intact and readable.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import behavhmm
from behavhmm import ARHMM, GaussianHMM

#: The child process: fit one small model, optionally killing itself with SIGKILL just before
#: or just after the k-th rename onto the checkpoint, and save every fitted float array.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    kind, out, ckpt, n_iter, kill_mode, kill_at, resume, reference_out = sys.argv[1:9]
    n_iter, kill_at, resume = int(n_iter), int(kill_at), resume == "1"
    from behavhmm import ARHMM, KeypointSLDS

    real_replace, count = os.replace, [0]

    def replace(src, dst, *args, **kwargs):
        if ckpt != "-" and os.path.abspath(dst) == os.path.abspath(ckpt):
            count[0] += 1
            if kill_mode == "before" and count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # the temporary file is written, not renamed
            real_replace(src, dst, *args, **kwargs)
            if kill_mode == "after" and count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return
        real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    rng = np.random.default_rng(0)
    if kind == "slds":
        X = rng.normal(size=(80, 5, 2)) + np.linspace(0, 3, 5)[None, :, None]
    else:
        X = np.cumsum(rng.normal(size=(120, 2)), axis=0) * 0.1


    def fit_and_save(path, checkpoint, resume):
        common = dict(n_iter=n_iter, progress_bar=False, random_state=3)
        if checkpoint != "-":
            common.update(checkpoint_path=checkpoint, checkpoint_every=1)
        if kind == "slds":
            model = KeypointSLDS(2, latent_dim=2, nlags=1, n_iter_ar=2, kappa=10.0, **common)
        else:
            model = ARHMM(2, 1, algorithm=kind, kappa=10.0, tol=0.0, **common)
        model.fit(X, resume=resume)
        arrays = {
            k: np.asarray(v)
            for k, v in vars(model).items()
            if k.endswith("_") and isinstance(v, np.ndarray) and v.dtype.kind in "fiu"
        }
        np.savez(path, **arrays)


    fit_and_save(out, ckpt, resume)
    if reference_out != "-":  # a fresh, uninterrupted fit without checkpoints (same process)
        fit_and_save(reference_out, "-", False)
    """
)


def _run(tmp_path: Path, *args: str, expect_killed: bool = False) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if expect_killed:
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "n_iter"),
    [("em", 6), ("gibbs", 6), ("slds", 4)],
    ids=["arhmm-em", "arhmm-gibbs", "keypoint-slds"],
)
def test_kill_9_then_resume_is_bit_identical(tmp_path, kind, n_iter):
    seeded = np.random.default_rng(sum(map(ord, kind)))
    kill_mode = str(seeded.choice(["before", "after"]))
    kill_at = int(seeded.integers(2, n_iter))  # the 2nd .. (n_iter - 1)-th checkpoint write
    reference, resumed = tmp_path / "reference.npz", tmp_path / "resumed.npz"
    ckpt = tmp_path / "fit.ckpt.npz"
    _run(tmp_path, kind, tmp_path / "never.npz", ckpt, n_iter, kill_mode, kill_at, 0, "-",
         expect_killed=True)  # fmt: skip
    assert ckpt.is_file(), "no checkpoint survived the kill"
    assert not (tmp_path / "never.npz").exists()
    leftovers = list(tmp_path.glob(".fit.ckpt.npz.*.tmp"))
    assert (len(leftovers) == 1) == (kill_mode == "before")  # killed mid-write: a stale temp file
    _run(tmp_path, kind, resumed, ckpt, n_iter, "none", 0, 1, reference)
    want, got = _load(reference), _load(resumed)
    assert sorted(want) == sorted(got)
    assert "log_likelihood_history_" in want and len(want["log_likelihood_history_"]) == n_iter
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert not list(tmp_path.glob(".fit.ckpt.npz.*.tmp")), "the resumed fit left the temp file"


# ----------------------------------------------------------------- failed writes
def _fitted(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianHMM(2, n_iter=3, progress_bar=False, **kw).fit(data)


@pytest.fixture(scope="module")
def data():
    return np.cumsum(np.random.default_rng(0).normal(size=(60, 2)), axis=0) * 0.1


def _full_disk_savez(fh, **arrays):
    fh.write(b"PK\x03\x04 half an archive")
    raise OSError(errno.ENOSPC, "No space left on device")


def _failed_rename(src, dst, *args, **kwargs):
    raise OSError(errno.EIO, "Input/output error")


@pytest.mark.parametrize(
    ("target", "replacement"),
    [("numpy.savez", _full_disk_savez), ("os.replace", _failed_rename)],
    ids=["full-disk", "failed-rename"],
)
def test_failed_model_write_keeps_previous_file(data, tmp_path, monkeypatch, target, replacement):
    path = tmp_path / "model.npz"
    first = _fitted(data, random_state=0)
    first.save_params(path)
    before = path.read_bytes()
    second = _fitted(data, random_state=1, kappa=5.0)
    monkeypatch.setattr(target, replacement)
    with pytest.raises(OSError, match="model.npz") as info:
        second.save_params(path)
    assert info.value.errno in (errno.ENOSPC, errno.EIO)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"], "a temporary file is left"
    loaded = behavhmm.load_model(path)
    np.testing.assert_array_equal(loaded.transition_prob_, first.transition_prob_)
    assert loaded.kappa == first.kappa


@pytest.mark.parametrize("target", ["numpy.savez", "os.replace"], ids=["full-disk", "rename"])
def test_failed_checkpoint_write_keeps_previous_checkpoint(data, tmp_path, monkeypatch, target):
    kw = dict(n_states=2, nlags=1, progress_bar=False, random_state=2, tol=0.0)
    ckpt = tmp_path / "fit.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ARHMM(n_iter=4, **kw).fit(data)
        ARHMM(n_iter=2, checkpoint_path=ckpt, checkpoint_every=1, **kw).fit(data)
    before = ckpt.read_bytes()
    monkeypatch.setattr(target, _full_disk_savez if target == "numpy.savez" else _failed_rename)
    with pytest.raises(OSError, match="fit.npz"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ARHMM(n_iter=4, checkpoint_path=ckpt, checkpoint_every=1, **kw).fit(data, resume=True)
    monkeypatch.undo()
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.npz"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = ARHMM(n_iter=4, checkpoint_path=ckpt, **kw).fit(data, resume=True)
    for name in ("transition_prob_", "coef_", "covariances_", "log_likelihood_history_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(reference, name))
