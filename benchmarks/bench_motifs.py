"""LISBET's n_states scan: behavhmm.model_selection.scan_n_states vs hmmlearn run the way LISBET
runs it.

For every K in 2..32 (31 models): full covariances, 10 EM iterations from the same starting
parameters for both libraries (``bench_gaussian_hmm.simulate_problem``: means K random frames,
covariances the data covariance + 1e-3 I, uniform initial distribution, 0.9 self-transitions), then
the log-likelihood and the Viterbi labels of all frames. T = 100,000 frames x 32 features (simulated
embeddings, a sticky 16-state Gaussian HMM).

- hmmlearn 0.3 ``GaussianHMM(covariance_type="full", init_params="", n_iter=10, tol=-inf)`` (LISBET
  uses ``tol=1e-3`` on the total log-likelihood, which never stops 10 iterations on 1e5 frames), one
  K per task in ``joblib.Parallel(n_jobs, prefer="threads")`` as LISBET's ``segment_hmm`` does, then
  ``score`` and ``predict``.
- behavhmm ``scan_n_states(GaussianHMM(..., hmmlearn's MLE priors), n_jobs=n_jobs)`` (joblib
  processes, as many as hmmlearn's threads; in float32, its default precision), which fits,
  scores and decodes every K; its wall time includes starting the worker processes and JAX
  compilation (one program per K).
- Both libraries get the covariance prior ``1e-2 I`` by default (``--covars-prior identity``).
  LISBET's hmmlearn default adds ``1e-2`` to every entry (``--covars-prior ones``), a rank-one
  prior under which, at large K, a state can collapse onto a few frames: the two libraries then
  end in different collapsed optima (8.9e-4 relative log-likelihood apart at K = 32), which
  compares the degenerate optimum reached, not the EM.

One run each, wall time of the whole scan; the log-likelihood of every K is compared (goal: 1e-4
relative) and the speedup (goal: >= 3x).

Usage::

    /work/venv/bin/python benchmarks/bench_motifs.py                       # full: T = 100,000
    /work/venv/bin/python benchmarks/bench_motifs.py --n-time-bins 20000   # reduced
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_gaussian_hmm as bg  # noqa: E402  (simulated problem and common starts)

STATES = tuple(range(2, 33))
GOAL_SPEEDUP, GOAL_RTOL = 3.0, 1e-4


def covariance_prior(kind: str, n_features: int) -> np.ndarray:
    """The (D, D) covariance prior scale both libraries get.

    "ones": hmmlearn's default ``covars_prior=1e-2`` (LISBET's setting), which hmmlearn adds to
    every entry of a full matrix: a rank-one prior, so a state that owns a few frames can collapse
    onto them and its likelihood grows without bound. "identity": ``1e-2 I``, a proper prior under
    which the maximum-likelihood problem is well posed for every K.
    """
    base = np.ones((n_features, n_features)) if kind == "ones" else np.eye(n_features)
    return 1e-2 * base


def run_hmmlearn(npz, states, n_jobs, prior="ones"):
    from hmmlearn.hmm import GaussianHMM as Ref
    from joblib import Parallel, delayed

    X = npz["X"]

    def one(k):
        pi, A, means, covars = bg._start(npz, k)
        ref = Ref(
            k,
            covariance_type="full",
            min_covar=bg.MIN_COVAR,
            covars_prior=np.broadcast_to(
                covariance_prior(prior, X.shape[1]), (k, *[X.shape[1]] * 2)
            ),
            init_params="",
            n_iter=bg.N_ITER,
            tol=-np.inf,
        )
        ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = pi, A, means, covars
        ref.fit(X)
        return k, float(ref.score(X)), ref.predict(X)

    t0 = time.perf_counter()
    out = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(k) for k in states)
    return time.perf_counter() - t0, {k: ll for k, ll, _ in out}, {k: z for k, _, z in out}


def run_behavhmm(npz, states, n_jobs, dtype="float64", min_covar=bg.MIN_COVAR, prior="ones"):
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    from behavhmm import GaussianHMM
    from behavhmm.model_selection import scan_n_states

    X = npz["X"].astype(dtype)
    starts = {k: bg._start(npz, k) for k in states}
    est = GaussianHMM(
        2,
        "full",
        alpha=0.0,
        covariance_prior_scale=covariance_prior(prior, X.shape[1]),
        min_covar=min_covar,
        n_iter=bg.N_ITER,
        tol=0.0,
        progress_bar=False,
    ).setup(
        initial_proba_init=lambda n, X, s, key, **kw: starts[n][0],
        transition_proba_init=lambda n, X, s, key, **kw: starts[n][1],
        gaussian_params_init=lambda n, X, s, key, **kw: (starts[n][2], starts[n][3]),
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scan = scan_n_states(est, X, n_states=states, n_jobs=n_jobs)
    seconds = time.perf_counter() - t0
    lls = {
        int(k): float(v)
        for k, v in zip(scan.metrics_["n_states"], scan.metrics_["log_likelihood"], strict=True)
    }
    return seconds, lls, scan.labels_


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-time-bins", type=int, default=100_000)
    p.add_argument("--states", type=int, nargs="+", default=list(STATES))
    p.add_argument(
        "--n-jobs", type=int, default=2, help="hmmlearn's joblib threads (LISBET: all cores)."
    )
    p.add_argument(
        "--behavhmm-n-jobs",
        type=int,
        default=None,
        help="scan_n_states processes (default: --n-jobs, as many as hmmlearn's threads).",
    )
    p.add_argument(
        "--dtype", choices=("float64", "float32"), default="float32", help="behavhmm's precision."
    )
    p.add_argument(
        "--min-covar",
        type=float,
        default=bg.MIN_COVAR,
        help="behavhmm's eigenvalue floor during EM (hmmlearn applies none during EM).",
    )
    p.add_argument(
        "--covars-prior",
        choices=("ones", "identity"),
        default="identity",
        help="covariance prior of both libraries: hmmlearn's default 1e-2 on every entry "
        "(LISBET) or 1e-2 I (well posed at every K).",
    )
    p.add_argument(
        "--reuse-hmmlearn",
        type=Path,
        default=None,
        help="JSON of an earlier run on the same problem: take hmmlearn's time and "
        "log-likelihoods from it instead of rerunning hmmlearn (no label agreement then).",
    )
    p.add_argument("--out-prefix", type=Path, default=None)
    args = p.parse_args(argv)
    if args.behavhmm_n_jobs is None:
        args.behavhmm_n_jobs = args.n_jobs
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_motifs_") as tmp:
        path = Path(tmp) / "problem.npz"
        problem = bg.simulate_problem(path, args.n_time_bins, args.states)
        npz = dict(np.load(path))
    ours_s, ours_ll, ours_z = run_behavhmm(
        npz, args.states, args.behavhmm_n_jobs, args.dtype, args.min_covar, args.covars_prior
    )
    print(f"behavhmm scan: {ours_s:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    args.states = [int(k) for k in args.states]
    if args.reuse_hmmlearn is not None:
        old = json.loads(args.reuse_hmmlearn.read_text())
        same = old["data"] == problem and old.get("covars_prior", "ones") == args.covars_prior
        if not same or [int(k) for k in old["states"]] != args.states:
            raise SystemExit(f"{args.reuse_hmmlearn} was run on another problem or other K values.")
        ref_s = old["hmmlearn_s"]
        ref_ll = {int(k): v for k, v in old["log_likelihood_hmmlearn"].items()}
        ref_z = None
        print(f"hmmlearn scan: {ref_s:.1f} s, from {args.reuse_hmmlearn}", flush=True)
    else:
        ref_s, ref_ll, ref_z = run_hmmlearn(npz, args.states, args.n_jobs, args.covars_prior)
        print(
            f"hmmlearn scan (joblib threads): {ref_s:.1f} s (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    rel = {k: abs(ours_ll[k] - ref_ll[k]) / abs(ref_ll[k]) for k in args.states}
    agree = (
        {k: float(np.mean(ours_z[k] == ref_z[k])) for k in args.states} if ref_z is not None else {}
    )
    result = dict(
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        machine=platform.platform(),
        cpus=os.cpu_count(),
        loadavg_start=load_start,
        loadavg_end=os.getloadavg(),
        data=problem,
        n_jobs=args.n_jobs,
        behavhmm_n_jobs=args.behavhmm_n_jobs,
        dtype=args.dtype,
        min_covar=args.min_covar,
        covars_prior=args.covars_prior,
        states=args.states,
        behavhmm_s=ours_s,
        hmmlearn_s=ref_s,
        speedup=ref_s / ours_s,
        max_rel_ll_diff=max(rel.values()),
        rel_ll_diff=rel,
        label_agreement=agree,
        log_likelihood_behavhmm=ours_ll,
        log_likelihood_hmmlearn=ref_ll,
    )
    result["goal_met"] = bool(
        result["speedup"] >= GOAL_SPEEDUP and result["max_rel_ll_diff"] <= GOAL_RTOL
    )
    reused = f" (from {args.reuse_hmmlearn})" if args.reuse_hmmlearn else ""
    min_agree = min(agree.values()) if agree else float("nan")
    goal = "met" if result["goal_met"] else "NOT met"
    lines = [
        "# n_states scan (LISBET's segment_hmm): behavhmm vs hmmlearn",
        "",
        f"Command: `{result['command']}`; {platform.platform()}, {os.cpu_count()} CPUs (shared), "
        f"load {load_start[0]:.1f} -> {result['loadavg_end'][0]:.1f}.",
        "",
        f"K = {min(args.states)}..{max(args.states)} ({len(args.states)} models), full "
        f"covariances, {bg.N_ITER} EM iterations from the same start, T = {args.n_time_bins:,}, D "
        f"= {bg.N_FEATURES}, hmmlearn n_jobs = {args.n_jobs} threads, behavhmm n_jobs = "
        f"{args.behavhmm_n_jobs}, one run; fit + log-likelihood + Viterbi labels of every K; "
        f"covariance prior {args.covars_prior!r} (see `covariance_prior`).",
        "",
        "| | wall time (s) |",
        "|---|---|",
        f"| behavhmm `scan_n_states` ({args.dtype}, min_covar {args.min_covar:g}, compile "
        f"included) | {ours_s:.1f} |",
        f"| hmmlearn, joblib threads (LISBET){reused} | {ref_s:.1f} |",
        "",
        f"Speedup {result['speedup']:.1f}x (goal {GOAL_SPEEDUP:g}x). Largest relative "
        f"log-likelihood difference over K: {result['max_rel_ll_diff']:.1e} (goal {GOAL_RTOL:g}); "
        f"smallest Viterbi label agreement {min_agree:.4f}. Goal {goal}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out_prefix is not None:
        args.out_prefix.with_suffix(".md").write_text(text)
        args.out_prefix.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
