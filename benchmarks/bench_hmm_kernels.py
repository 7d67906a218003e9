"""Side-by-side benchmark of HMM inference kernels: behavhmm vs dynamax vs hmmlearn.

Runs the filter, the smoother and Viterbi of the three libraries on the same
random problems, in one process per dtype, and separates compile time from
steady-state time. See ``benchmarks/README.md`` for how to run it and what is
measured.

Usage
-----
Full run (both dtypes, writes ``benchmarks/results/hmm_kernels.{md,json}``)::

    /work/venv/bin/python benchmarks/bench_hmm_kernels.py

Quick self-test of the script (small subset, writes nothing unless
``--out-prefix`` is given)::

    /work/venv/bin/python benchmarks/bench_hmm_kernels.py --quick

One dtype only, in this process (this is what the driver runs per dtype)::

    /work/venv/bin/python benchmarks/bench_hmm_kernels.py --dtype float32
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT_PREFIX = HERE / "results" / "hmm_kernels"

OPS = ("filter", "smoother", "viterbi")
LIBS = ("behavhmm", "dynamax", "hmmlearn")
PEERS = ("dynamax", "hmmlearn")

FULL_K = (3, 10, 50, 100)
FULL_T = (10_000, 100_000, 1_000_000)
FULL_SESSIONS = (100, 10_000)  # (number of sessions, steps per session)
QUICK_K = (3, 10)
QUICK_T = (10_000,)
QUICK_SESSIONS = (10, 1_000)

SEED = 20240521
#: A call slower than this many seconds is not repeated further (the record
#: keeps the number of repeats actually made).
SLOW_CALL_S = 8.0
#: Fast calls are repeated beyond the nominal count until this much time was
#: spent in steady-state calls (at most MAX_REPEATS calls), to tame timer noise.
FAST_BUDGET_S = 0.25
MAX_REPEATS = 25
#: Correctness tolerances: relative error of the log-likelihood, and the
#: fraction of Viterbi steps that must agree.
LOGLIK_RTOL = {"float32": 1e-4, "float64": 1e-8}
VITERBI_MIN_AGREEMENT = 0.999
#: Looser, informational tolerances for posteriors and expected transition
#: counts (max abs error on a fixed subset of steps; relative Frobenius error).
PROBS_ATOL = {"float32": 1e-3, "float64": 1e-7}
TRANS_RTOL = {"float32": 1e-3, "float64": 1e-7}
N_CHECK_STEPS = 2000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# problems
# ----------------------------------------------------------------------------


def case_list(quick: bool, ks=None, ts=None, sessions=True, singles=True):
    """Cases as dicts: K, T (total steps), n_sessions, session_length."""
    ks = ks or (QUICK_K if quick else FULL_K)
    ts = ts or (QUICK_T if quick else FULL_T)
    n_sess, sess_len = QUICK_SESSIONS if quick else FULL_SESSIONS
    cases = []
    for t in ts if singles else ():
        for k in ks:
            cases.append(dict(K=int(k), T=int(t), n_sessions=1, session_length=int(t)))
    if sessions:
        for k in ks:
            cases.append(
                dict(K=int(k), T=n_sess * sess_len, n_sessions=n_sess, session_length=sess_len)
            )
    return cases


def case_key(case) -> str:
    return f"K{case['K']}_T{case['T']}_S{case['n_sessions']}"


def make_problem(K: int, T: int, n_sessions: int, seed: int = SEED):
    """A random HMM problem in float64 (the same for every library and dtype).

    Transition matrix: Dirichlet(1) rows plus a diagonal boost of 9, row-normalised
    (self-transition probability about 0.9). Initial probabilities:
    Dirichlet(10) (close to uniform). Log-likelihoods: N(0, 2^2), shape (T, K).
    """
    rng = np.random.default_rng([seed, K, T, n_sessions])
    A = rng.dirichlet(np.ones(K), size=K) + 9.0 * np.eye(K)
    A /= A.sum(axis=1, keepdims=True)
    pi = rng.dirichlet(10.0 * np.ones(K))
    ll = rng.standard_normal((T, K))
    ll *= 2.0
    return pi, A, ll


def check_indices(T: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, T, 7])
    n = min(N_CHECK_STEPS, T)
    return np.sort(rng.choice(T, size=n, replace=False))


# ----------------------------------------------------------------------------
# library adapters: each returns a zero-argument callable and a summariser
# ----------------------------------------------------------------------------


def _jax_block(out):
    import jax

    return jax.block_until_ready(out)


def build_behavhmm(op, arrays, case):
    import behavhmm.inference as bi

    pi, A, ll, starts = arrays["pi"], arrays["A"], arrays["ll"], arrays["starts"]
    fn = {"filter": bi.hmm_filter, "smoother": bi.hmm_smoother, "viterbi": bi.hmm_viterbi}[op]

    def call():
        return fn(pi, A, ll, starts, method="sequential")

    def summarise(out):
        if op == "filter":
            return dict(
                loglik=float(out.log_likelihood),
                probs=np.asarray(out.filtered_probs[arrays["idx"]]),
            )
        if op == "smoother":
            return dict(
                loglik=float(out.log_likelihood),
                probs=np.asarray(out.smoothed_probs[arrays["idx"]]),
                trans=np.asarray(out.expected_transitions),
            )
        return dict(path=np.asarray(out, dtype=np.int32))

    return call, summarise


_DYNAMAX_JITTED = {}


def _dynamax_fn(op, batched):
    """jax.jit (and jax.vmap over sessions when batched) of a dynamax kernel."""
    key = (op, batched)
    if key not in _DYNAMAX_JITTED:
        import jax
        from dynamax.hidden_markov_model import inference as di

        if op == "filter":

            def f(pi, A, ll):
                return di.hmm_filter(pi, A, ll)
        elif op == "smoother":
            # compute_trans_probs keeps its default (True): dynamax also returns the
            # expected transition counts summed over time, like behavhmm.
            def f(pi, A, ll):
                return di.hmm_smoother(pi, A, ll)
        else:

            def f(pi, A, ll):
                return di.hmm_posterior_mode(pi, A, ll)

        if batched:
            f = jax.vmap(f, in_axes=(None, None, 0))
        _DYNAMAX_JITTED[key] = jax.jit(f)
    return _DYNAMAX_JITTED[key]


def build_dynamax(op, arrays, case):
    batched = case["n_sessions"] > 1
    fn = _dynamax_fn(op, batched)
    pi, A = arrays["pi"], arrays["A"]
    ll = arrays["ll_batched"] if batched else arrays["ll"]
    idx = arrays["idx"]

    def call():
        return fn(pi, A, ll)

    def flat(x):
        return x.reshape((-1,) + x.shape[2:]) if batched else x

    def summarise(out):
        if op == "filter":
            return dict(
                loglik=float(np.sum(np.asarray(out.marginal_loglik, dtype=np.float64))),
                probs=np.asarray(flat(out.filtered_probs)[idx]),
            )
        if op == "smoother":
            trans = np.asarray(out.trans_probs, dtype=np.float64)
            return dict(
                loglik=float(np.sum(np.asarray(out.marginal_loglik, dtype=np.float64))),
                probs=np.asarray(flat(out.smoothed_probs)[idx]),
                trans=trans.sum(axis=0) if batched else trans,
            )
        return dict(path=np.asarray(flat(out), dtype=np.int32))

    return call, summarise


def _hmmlearn_session(op, pi, A, ll):
    """hmmlearn's compiled kernels on one session (float64 NumPy arrays).

    The likelihoods are shifted by their per-step maximum before
    exponentiation (as behavhmm does inside its kernel) and the shift is added
    back to the log-likelihood; this preprocessing is inside the timing.
    """
    from hmmlearn import _hmmc

    if op == "viterbi":
        # hmmlearn 0.3.x: viterbi(startprob, transmat, log_frameprob); it takes
        # probabilities (it logs them itself), not log-probabilities.
        _, path = _hmmc.viterbi(pi, A, ll)
        return path
    shift = ll.max(axis=1, keepdims=True)
    frameprob = ll - shift
    np.exp(frameprob, out=frameprob)
    logprob, fwd, scaling = _hmmc.forward_scaling(pi, A, frameprob)
    logprob += float(shift.sum())
    if op == "filter":
        return logprob, fwd
    bwd = _hmmc.backward_scaling(pi, A, frameprob, scaling)
    post = fwd * bwd
    post /= post.sum(axis=1, keepdims=True)
    xi_sum = _hmmc.compute_scaling_xi_sum(fwd, A, bwd, frameprob)
    return logprob, post, xi_sum


def build_hmmlearn(op, arrays, case):
    pi, A, ll = arrays["pi_np"], arrays["A_np"], arrays["ll_np"]
    n_sess, L = case["n_sessions"], case["session_length"]
    idx = arrays["idx"]

    def call():
        if n_sess == 1:
            return _hmmlearn_session(op, pi, A, ll)
        # hmmlearn handles ``lengths`` with a Python loop over sessions.
        T, K = ll.shape
        if op == "viterbi":
            path = np.empty(T, np.int64)
            for s in range(n_sess):
                path[s * L : (s + 1) * L] = _hmmlearn_session(op, pi, A, ll[s * L : (s + 1) * L])
            return path
        total = 0.0
        probs = np.empty((T, K))
        xi = np.zeros((K, K))
        for s in range(n_sess):
            res = _hmmlearn_session(op, pi, A, ll[s * L : (s + 1) * L])
            total += res[0]
            probs[s * L : (s + 1) * L] = res[1]
            if op == "smoother":
                xi += res[2]
        return (total, probs) if op == "filter" else (total, probs, xi)

    def summarise(out):
        if op == "filter":
            return dict(loglik=float(out[0]), probs=np.asarray(out[1][idx]))
        if op == "smoother":
            return dict(
                loglik=float(out[0]), probs=np.asarray(out[1][idx]), trans=np.asarray(out[2])
            )
        return dict(path=np.asarray(out, dtype=np.int32))

    return call, summarise


BUILDERS = {"behavhmm": build_behavhmm, "dynamax": build_dynamax, "hmmlearn": build_hmmlearn}


# ----------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------


def time_call(call, *, is_jax: bool, n_repeats: int):
    """Time ``call``; returns (record, output of the last call).

    JAX: the first call includes tracing and compilation; the steady state is
    the minimum over ``n_repeats`` further calls, and compile time is
    ``first - steady``. hmmlearn (ahead-of-time compiled): every call counts
    as a repeat and there is no compile time. A call slower than
    ``SLOW_CALL_S`` stops the repeats early; fast calls are repeated until
    ``FAST_BUDGET_S`` was spent (at most ``MAX_REPEATS`` calls).
    """
    block = _jax_block if is_jax else (lambda x: x)
    t0 = time.perf_counter()
    out = block(call())
    first = time.perf_counter() - t0
    times = [] if is_jax else [first]

    def more():
        if times and times[-1] > SLOW_CALL_S:
            return False
        if len(times) < n_repeats:
            return True
        return sum(times) < FAST_BUDGET_S and len(times) < MAX_REPEATS

    while more():
        del out
        gc.collect()
        t0 = time.perf_counter()
        out = block(call())
        times.append(time.perf_counter() - t0)
    steady = min(times)
    record = dict(
        first_call_s=first,
        steady_s=steady,
        compile_s=(first - steady) if is_jax else None,
        times_s=times,
        repeats=len(times),
    )
    return record, out


def repeats_for(case) -> int:
    return 3 if case["T"] <= 100_000 else 2


# ----------------------------------------------------------------------------
# correctness
# ----------------------------------------------------------------------------


def compare(summary, ref, dtype):
    """Errors of one library's summary against a reference summary."""
    res = {}
    if "loglik" in summary and "loglik" in ref:
        res["loglik_rel_err"] = abs(summary["loglik"] - ref["loglik"]) / max(
            abs(ref["loglik"]), 1e-300
        )
        res["loglik_ok"] = bool(res["loglik_rel_err"] <= LOGLIK_RTOL[dtype])
    if "probs" in summary and "probs" in ref:
        res["probs_max_abs_err"] = float(
            np.max(np.abs(summary["probs"].astype(np.float64) - ref["probs"].astype(np.float64)))
        )
        res["probs_ok"] = bool(res["probs_max_abs_err"] <= PROBS_ATOL[dtype])
    if "trans" in summary and "trans" in ref:
        r = ref["trans"].astype(np.float64)
        res["trans_rel_err"] = float(
            np.linalg.norm(summary["trans"].astype(np.float64) - r) / np.linalg.norm(r)
        )
        res["trans_ok"] = bool(res["trans_rel_err"] <= TRANS_RTOL[dtype])
    if "path" in summary and "path" in ref:
        res["viterbi_agreement"] = float(np.mean(summary["path"] == ref["path"]))
        res["viterbi_ok"] = bool(res["viterbi_agreement"] >= VITERBI_MIN_AGREEMENT)
    return res


def save_reference(ref_dir: Path, case, op, summary, source):
    path = ref_dir / f"{case_key(case)}_{op}.npz"
    np.savez(path, source=np.array(source), **{k: np.asarray(v) for k, v in summary.items()})


def load_reference(ref_dir: Path | None, case, op):
    if ref_dir is None:
        return None, None
    path = ref_dir / f"{case_key(case)}_{op}.npz"
    if not path.exists():
        return None, None
    with np.load(path) as data:
        source = str(data["source"])
        summary = {
            k: (float(data[k]) if data[k].ndim == 0 else data[k])
            for k in data.files
            if k != "source"
        }
    return summary, source


# ----------------------------------------------------------------------------
# machine description
# ----------------------------------------------------------------------------


def _run(cmd):
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        ).stdout.strip()
    except OSError:
        return ""


def behavhmm_source() -> dict:
    """Where the imported behavhmm comes from, with hashes of its sources."""
    import behavhmm
    import behavhmm.inference.hmm as kernels

    pkg_dir = Path(behavhmm.__file__).resolve().parent
    tree = hashlib.sha256()
    for f in sorted(pkg_dir.rglob("*.py")):
        tree.update(str(f.relative_to(pkg_dir)).encode())
        tree.update(f.read_bytes())
    return dict(
        package_dir=str(pkg_dir),
        kernels_sha256_16=hashlib.sha256(Path(kernels.__file__).read_bytes()).hexdigest()[:16],
        package_sha256_16=tree.hexdigest()[:16],
    )


def machine_description(source: dict | None = None) -> dict:
    from importlib import metadata

    lscpu = {}
    for line in _run(["lscpu"]).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            lscpu[k.strip()] = v.strip()
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    versions = {}
    for pkg in ("behavhmm", "jax", "jaxlib", "numpy", "dynamax", "hmmlearn"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    source = source or behavhmm_source()
    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or None
    dirty = None
    if commit:
        dirty = bool(_run(["git", "diff", "--name-only", "HEAD", "--", "src"]))
    return dict(
        cpu_model=lscpu.get("Model name"),
        cpu_family_model_stepping=(
            f"{lscpu.get('CPU family')}/{lscpu.get('Model')}/{lscpu.get('Stepping')}"
        ),
        cpus=os.cpu_count(),
        cores_per_socket=lscpu.get("Core(s) per socket"),
        threads_per_core=lscpu.get("Thread(s) per core"),
        l2_cache=lscpu.get("L2 cache"),
        l3_cache=lscpu.get("L3 cache"),
        hypervisor=lscpu.get("Hypervisor vendor"),
        ram_gib=round(mem_kb / 2**20, 1),
        os=os_name,
        python=platform.python_version(),
        versions=versions,
        behavhmm_commit=commit,
        behavhmm_src_modified_since_commit=dirty,
        kernels_file_sha256_16=source.get("kernels_sha256_16"),
        behavhmm_package_sha256_16=source.get("package_sha256_16"),
        behavhmm_snapshot_utc=source.get("snapshot_utc"),
        xla_flags=os.environ.get("XLA_FLAGS"),
        date_utc=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


# ----------------------------------------------------------------------------
# worker: one dtype, all libraries, in this process
# ----------------------------------------------------------------------------


def run_worker(args) -> dict:
    dtype = args.dtype
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    libs = [lib for lib in args.libs if not (lib == "hmmlearn" and dtype != "float64")]
    if "hmmlearn" in args.libs and dtype != "float64":
        log("[info] hmmlearn is float64-only: it runs in the float64 process only.")
    ops = args.ops
    cases = case_list(args.quick, args.K, args.T, not args.no_sessions, not args.sessions_only)
    ref_dir = Path(args.reference) if args.reference else None
    save_dir = Path(args.save_reference) if args.save_reference else None
    np_dtype = np.dtype(dtype)

    records, checks, warnings = [], [], []
    t_start = time.perf_counter()
    for case in cases:
        K, T, n_sess, L = case["K"], case["T"], case["n_sessions"], case["session_length"]
        log(f"[{dtype}] case K={K} T={T} sessions={n_sess}x{L}")
        pi_np, A_np, ll_np = make_problem(K, T, n_sess)
        arrays = dict(idx=check_indices(T), pi_np=pi_np, A_np=A_np, ll_np=ll_np)
        arrays["pi"] = jnp.asarray(pi_np.astype(np_dtype))
        arrays["A"] = jnp.asarray(A_np.astype(np_dtype))
        arrays["ll"] = jnp.asarray(ll_np.astype(np_dtype))
        if n_sess > 1:
            starts = np.zeros(T, bool)
            starts[::L] = True
            arrays["starts"] = jnp.asarray(starts)
            arrays["ll_batched"] = arrays["ll"].reshape(n_sess, L, K)
        else:
            arrays["starts"] = None
        jax.block_until_ready(
            [v for k, v in arrays.items() if k in ("pi", "A", "ll", "ll_batched")]
        )
        if "hmmlearn" not in libs:
            del arrays["ll_np"]  # not needed; free the float64 copy
        n_rep = repeats_for(case)
        for op in ops:
            summaries = {}
            for lib in libs:
                call, summarise = BUILDERS[lib](op, arrays, case)
                rec, out = time_call(call, is_jax=(lib != "hmmlearn"), n_repeats=n_rep)
                summaries[lib] = summarise(out)
                del out, call
                gc.collect()
                rec.update(
                    op=op,
                    dtype=dtype,
                    library=lib,
                    library_dtype=dtype,
                    loadavg_1min=os.getloadavg()[0],
                    **case,
                )
                records.append(rec)
                comp = "" if rec["compile_s"] is None else f" compile {rec['compile_s']:.3f}s"
                log(
                    f"[{dtype}]   {op:8s} {lib:8s} steady {rec['steady_s']:.4f}s"
                    f" (x{rec['repeats']}){comp}"
                )
            # correctness against the reference
            ref, ref_source = load_reference(ref_dir, case, op)
            if ref is None:
                ref_lib = (
                    "hmmlearn"
                    if "hmmlearn" in summaries
                    else ("dynamax" if "dynamax" in summaries else None)
                )
                if ref_lib is not None:
                    ref, ref_source = summaries[ref_lib], f"{ref_lib} ({dtype})"
            if save_dir is not None and ref is not None:
                save_reference(save_dir, case, op, ref, ref_source)
            if ref is not None:
                for lib, summary in summaries.items():
                    if ref_source == f"{lib} ({dtype})":
                        continue
                    res = compare(summary, ref, dtype)
                    res.update(op=op, dtype=dtype, library=lib, reference=ref_source, **case)
                    checks.append(res)
                    bad = [k[:-3] for k, v in res.items() if k.endswith("_ok") and not v]
                    if bad:
                        detail = ", ".join(
                            f"{k}={v:.3g}"
                            for k, v in res.items()
                            if isinstance(v, float) and any(k.startswith(b) for b in bad)
                        )
                        msg = (
                            f"WARNING [{dtype}] {op} K={K} T={T} sessions={n_sess}: {lib} vs "
                            f"{ref_source}: {detail}"
                        )
                        warnings.append(msg)
                        log(msg)
            del summaries
            gc.collect()
        del arrays, pi_np, A_np, ll_np
        gc.collect()
    return dict(
        records=records,
        checks=checks,
        warnings=warnings,
        worker_runtime_s=time.perf_counter() - t_start,
        jax_backend=jax.default_backend(),
        behavhmm_source=behavhmm_source(),
    )


# ----------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------


def _fmt_s(x):
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def _fmt_T(T):
    e = int(round(np.log10(T)))
    return f"1e{e}" if 10**e == T else str(T)


def build_tables(records, dtype_list, ops):
    """Markdown tables, one per (op, dtype), and rows for JSON."""
    tables, rows = [], []
    for dtype in dtype_list:
        for op in ops:
            recs = [r for r in records if r["op"] == op and r["dtype"] == dtype]
            if not recs:
                continue
            keys = sorted({(r["n_sessions"], r["T"], r["K"]) for r in recs})
            libs_here = [lib for lib in LIBS if any(r["library"] == lib for r in recs)]
            hl_note = ""
            if any(r["library"] == "hmmlearn" and r["library_dtype"] != dtype for r in recs):
                hl_note = " (hmmlearn ran in float64: its only precision)"
            head = ["K", "T", "sessions"]
            head += [
                f"{lib} (s)" + (" [f64]" if lib == "hmmlearn" and hl_note else "")
                for lib in libs_here
            ]
            head += [f"{lib} compile (s)" for lib in libs_here if lib != "hmmlearn"]
            head += ["best peer", "ratio", "repeats"]
            lines = [
                f"#### {op} — {dtype}{hl_note}",
                "",
                "| " + " | ".join(head) + " |",
                "|" + "|".join(["---:"] * len(head)) + "|",
            ]
            for n_sess, T, K in keys:
                by_lib = {
                    r["library"]: r
                    for r in recs
                    if (r["n_sessions"], r["T"], r["K"]) == (n_sess, T, K)
                }
                steady = {lib: by_lib[lib]["steady_s"] for lib in by_lib}
                peers = {lib: steady[lib] for lib in PEERS if lib in steady}
                best = min(peers, key=peers.get) if peers else None
                ratio = (
                    (steady["behavhmm"] / peers[best]) if (best and "behavhmm" in steady) else None
                )
                sess = f"{n_sess}x{_fmt_T(T // n_sess)}" if n_sess > 1 else "1"
                cells = [str(K), _fmt_T(T), sess]
                cells += [_fmt_s(steady.get(lib)) for lib in libs_here]
                cells += [
                    _fmt_s(by_lib[lib]["compile_s"]) if lib in by_lib else "—"
                    for lib in libs_here
                    if lib != "hmmlearn"
                ]
                cells += [best or "—", f"{ratio:.2f}" if ratio is not None else "—"]
                cells += [
                    "/".join(str(by_lib[lib]["repeats"]) for lib in libs_here if lib in by_lib)
                ]
                lines.append("| " + " | ".join(cells) + " |")
                rows.append(
                    dict(
                        op=op,
                        dtype=dtype,
                        K=K,
                        T=T,
                        n_sessions=n_sess,
                        steady_s=steady,
                        compile_s={lib: by_lib[lib]["compile_s"] for lib in by_lib},
                        best_peer=best,
                        ratio_behavhmm_over_best_peer=ratio,
                    )
                )
            tables.append("\n".join(lines))
    return tables, rows


def checks_table(checks):
    if not checks:
        return "No correctness checks were run (no reference available)."
    head = [
        "op",
        "dtype",
        "K",
        "T",
        "sessions",
        "library",
        "reference",
        "loglik rel err",
        "probs max abs err",
        "trans rel err",
        "Viterbi agreement",
        "ok",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for c in checks:
        ok = all(v for k, v in c.items() if k.endswith("_ok"))

        def g(k, fmt, c=c):
            return fmt.format(c[k]) if k in c else "—"

        lines.append(
            "| "
            + " | ".join(
                [
                    c["op"],
                    c["dtype"],
                    str(c["K"]),
                    _fmt_T(c["T"]),
                    str(c["n_sessions"]),
                    c["library"],
                    c["reference"],
                    g("loglik_rel_err", "{:.1e}"),
                    g("probs_max_abs_err", "{:.1e}"),
                    g("trans_rel_err", "{:.1e}"),
                    g("viterbi_agreement", "{:.5f}"),
                    "yes" if ok else "**NO**",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def machine_markdown(m):
    v = m["versions"]
    return "\n".join(
        [
            f"- CPU: {m['cpu_model']} (family/model/stepping {m['cpu_family_model_stepping']}), "
            f"{m['cpus']} logical CPUs ({m['cores_per_socket']} cores/socket, "
            f"{m['threads_per_core']} thread/core), L2 {m['l2_cache']}, L3 {m['l3_cache']}, "
            f"hypervisor: {m['hypervisor']}",
            f"- RAM: {m['ram_gib']} GiB",
            f"- OS: {m['os']}",
            f"- Python {m['python']}; jax {v['jax']}, jaxlib {v['jaxlib']} (CPU backend), "
            f"numpy {v['numpy']}, dynamax {v['dynamax']}, hmmlearn {v['hmmlearn']}, "
            f"behavhmm {v['behavhmm']}",
            f"- behavhmm commit {m['behavhmm_commit']}"
            + (
                " (src/ modified since that commit)"
                if m["behavhmm_src_modified_since_commit"]
                else ""
            )
            + f"; sha256[:16] of src/behavhmm/inference/hmm.py: {m['kernels_file_sha256_16']}"
            + f", of all behavhmm sources: {m.get('behavhmm_package_sha256_16')}"
            + (
                f" (both processes imported one snapshot of src/behavhmm taken at "
                f"{m['behavhmm_snapshot_utc']})"
                if m.get("behavhmm_snapshot_utc")
                else ""
            ),
            f"- XLA_FLAGS: {m['xla_flags'] or '(unset)'}",
            f"- Date: {m['date_utc']}",
        ]
    )


METHOD_NOTES = f"""\
How it was measured (see `benchmarks/README.md`):

- Same random problem for every library: transition matrix = Dirichlet(1) rows + 9·I,
  row-normalised (self-transition ≈ 0.9); initial probs ~ Dirichlet(10·1);
  log-likelihoods ~ N(0, 2²) of shape (T, K); fixed seed. Generated in float64 and
  cast per dtype. Each dtype runs in its own process (`jax_enable_x64` is global);
  within one process all libraries see the same arrays.
- behavhmm: `behavhmm.inference.hmm_filter / hmm_smoother / hmm_viterbi`,
  `method="sequential"`. Sessions: one concatenated (100·10⁴, K) array plus a boolean
  `session_starts` mask. The smoother returns smoothed probs and expected transition
  counts summed over time.
- dynamax: `hmm_filter`, `hmm_smoother` (with its default `compute_trans_probs=True`,
  i.e. it also computes the expected transition counts summed over time, like
  behavhmm), `hmm_posterior_mode`, each under `jax.jit`. Sessions: `jax.vmap` over a
  (100, 10⁴, K) array.
- hmmlearn: its compiled kernels (`hmmlearn._hmmc`) called directly on the
  precomputed log-likelihoods, float64 only. Filter = `forward_scaling` on
  `exp(ll − rowmax)` (the shift and exp are timed, as they are inside behavhmm's
  kernel); smoother = forward + `backward_scaling` + normalised posteriors +
  `compute_scaling_xi_sum`; Viterbi = `viterbi(startprob, transmat, ll)`.
  Sessions: a Python loop over the sessions (as hmmlearn does for `lengths`).
  In the float32 tables the hmmlearn column repeats its float64 timing.
- Steady state = minimum wall time over the repeats (`jax.block_until_ready`);
  compile = first call − steady state (JAX only; hmmlearn has no compile step and its
  first call counts as a repeat). Repeats: 3 for T ≤ 1e5, 2 for T = 1e6; no
  further repeat after a call slower than {SLOW_CALL_S} s; calls faster than that are
  repeated until {FAST_BUDGET_S} s of steady-state calls were spent (at most {MAX_REPEATS}), to tame
  timer noise. The `repeats` column lists them per library (behavhmm/dynamax/hmmlearn).
- ratio = behavhmm steady time / fastest peer's steady time (lower is better;
  < 1 means behavhmm is faster).
- Correctness (warnings only): log-likelihood relative error ≤ 1e-4 (float32) /
  1e-8 (float64) and Viterbi agreement ≥ 99.9 % against the reference (hmmlearn in
  float64; the float32 run is checked against the float64 hmmlearn results);
  posteriors on {N_CHECK_STEPS} fixed steps (max abs error ≤ 1e-3 / 1e-7) and expected
  transition counts (relative Frobenius error ≤ 1e-3 / 1e-7) are also reported.
- Reading the compile columns: compile = first call − steady state is clean where
  steady-state calls are short (T ≤ 1e5). At T = 1e6 the difference also holds the
  first touch of freshly allocated output buffers (GBs) and the run-to-run noise of
  multi-second calls, and can even come out negative. Compile time of these
  scan-based kernels does not depend on T: read it from the T = 1e4 rows.
- The machine may be shared with other work while the benchmark runs: the load
  average below records how busy it was. Small ratios near 1 are within noise.
"""


CORRECTNESS_NOTES = """\
Known peer behaviour: dynamax's `hmm_posterior_mode` accumulates unnormalised
log-scores over the whole sequence, so in float32 they reach 10^5–10^6 in magnitude
and lose the resolution needed to break near-ties; its summed expected transition
counts are a running float32 sum over all T steps. Both show up as float32 warnings
for dynamax at T ≥ 1e5. behavhmm renormalises its Viterbi messages at every step
and sums transition counts in chunks."""


def write_outputs(result, out_prefix: Path, write_json: bool = True, render=None):
    """Write ``PREFIX.md`` (by ``render``, default this benchmark's report) and ``PREFIX.json``.

    Also used by bench_arhmm.py and bench_keypoint_slds.py with their renderers.
    """
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    json_path = out_prefix.with_suffix(".json")
    md_path = out_prefix.with_suffix(".md")
    if write_json:
        json_path.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    md_path.write_text((render or render_markdown)(result))
    return md_path, json_path


def correctness_summary(checks) -> str:
    """Failed checks counted per library and dtype, and behavhmm's worst errors."""
    if not checks:
        return ""
    lines = [f"{len(checks)} comparisons against the reference."]
    for lib in LIBS:
        for dtype in ("float32", "float64"):
            mine = [c for c in checks if c["library"] == lib and c["dtype"] == dtype]
            if not mine:
                continue
            failed = {}
            for c in mine:
                for k, v in c.items():
                    if k.endswith("_ok") and not v:
                        label = {
                            "loglik": "log-likelihood",
                            "probs": "probs",
                            "trans": "transitions",
                            "viterbi": "path agreement",
                        }[k[:-3]]
                        name = f"{c['op']} {label}"
                        failed[name] = failed.get(name, 0) + 1
            worst = []
            for key, label, fmt in (
                ("loglik_rel_err", "log-likelihood rel", "{:.1e}"),
                ("probs_max_abs_err", "probs abs", "{:.1e}"),
                ("trans_rel_err", "transitions rel", "{:.1e}"),
            ):
                vals = [c[key] for c in mine if key in c]
                if vals:
                    worst.append(f"{label} {fmt.format(max(vals))}")
            agree = [c["viterbi_agreement"] for c in mine if "viterbi_agreement" in c]
            if agree:
                worst.append(f"Viterbi agreement min {min(agree):.4f}")
            status = (
                "all passed"
                if not failed
                else "failed: " + ", ".join(f"{k} ×{n}" for k, n in sorted(failed.items()))
            )
            lines.append(
                f"- {lib} {dtype}: {len(mine)} comparisons, {status}; worst: " + ", ".join(worst)
            )
    return "\n".join(lines)


def render_markdown(result) -> str:
    md = [
        "# HMM inference kernels: behavhmm vs dynamax vs hmmlearn",
        "",
        "Command:",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Total runtime: {result['total_runtime_s'] / 60:.1f} min. "
        + _load_sentence(result["load_average"]),
        "",
        "## Machine",
        "",
        machine_markdown(result["machine"]),
        "",
        "## Method",
        "",
        METHOD_NOTES,
        "## Results (steady-state seconds per call)",
        "",
        "\n\n".join(result["tables_markdown"]),
        "",
        "## Correctness",
        "",
    ]
    if result["warnings"]:
        md += ["Warnings:", ""] + [f"- {w}" for w in result["warnings"]] + [""]
    else:
        md += ["All checks passed (no warnings).", ""]
    md += [
        correctness_summary(result["checks"]),
        "",
        CORRECTNESS_NOTES,
        "",
        "<details><summary>All comparisons</summary>",
        "",
        checks_table(result["checks"]),
        "",
        "</details>",
        "",
    ]
    return "\n".join(md)


def _load_sentence(load):
    if load["median"] is None:
        return ""
    return (
        f"1-minute load average after each measurement: min {load['min']:.2f}, "
        f"median {load['median']:.2f}, max {load['max']:.2f} (the benchmark itself "
        "accounts for about 1; more means other work shared the 2 cores)."
    )


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


# ----------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------


def worker_argv(args, dtype, json_out, ref_save=None, ref_load=None):
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--dtype",
        dtype,
        "--json-out",
        str(json_out),
    ]
    if args.quick:
        argv.append("--quick")
    if args.K:
        argv += ["--K", *map(str, args.K)]
    if args.T:
        argv += ["--T", *map(str, args.T)]
    if args.no_sessions:
        argv.append("--no-sessions")
    if args.sessions_only:
        argv.append("--sessions-only")
    argv += ["--libs", *args.libs, "--ops", *args.ops]
    if ref_save:
        argv += ["--save-reference", str(ref_save)]
    if ref_load:
        argv += ["--reference", str(ref_load)]
    return argv


def snapshot_behavhmm(tmp_dir: Path):
    """Copy ``src/behavhmm`` to ``tmp_dir/snapshot``; returns worker env and the copy's UTC time.

    The returned environment puts the snapshot first on ``PYTHONPATH``, so every
    worker process imports the same behavhmm even if the working tree is edited
    during the run.
    """
    snap = Path(tmp_dir) / "snapshot"
    shutil.copytree(
        REPO / "src" / "behavhmm", snap / "behavhmm", ignore=shutil.ignore_patterns("__pycache__")
    )
    snapshot_utc = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(snap), os.environ.get("PYTHONPATH")) if p)
    return env, snapshot_utc


def run_driver(args, command):
    t0 = time.perf_counter()
    dtypes = args.dtypes
    records, checks, warnings, runtimes = [], [], [], {}
    sources = {}
    with tempfile.TemporaryDirectory(prefix="bench_hmm_ref_") as ref_dir:
        # Both dtype processes import one snapshot of src/behavhmm, so an edit of the
        # working tree during the run cannot give them different kernels.
        env, snapshot_utc = snapshot_behavhmm(Path(ref_dir))
        snap = Path(ref_dir) / "snapshot"
        # float64 first: its hmmlearn results are the reference for float32.
        for dtype in sorted(dtypes, key=lambda d: d != "float64"):
            json_out = Path(ref_dir) / f"worker_{dtype}.json"
            argv = worker_argv(
                args,
                dtype,
                json_out,
                ref_save=ref_dir if dtype == "float64" else None,
                ref_load=ref_dir if dtype != "float64" else None,
            )
            log(f"[driver] {shlex.join(argv)}")
            proc = subprocess.run(argv, check=False, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"worker for {dtype} failed with exit code {proc.returncode}")
            res = json.loads(json_out.read_text())
            records += res["records"]
            checks += res["checks"]
            warnings += res["warnings"]
            runtimes[dtype] = res["worker_runtime_s"]
            sources[dtype] = res["behavhmm_source"]
            if Path(sources[dtype]["package_dir"]) != (snap / "behavhmm").resolve():
                raise SystemExit(f"worker for {dtype} did not import the snapshot: {sources}")
    shas = {src["package_sha256_16"] for src in sources.values()}
    if len(shas) != 1:
        warnings.append(f"WARNING: the dtype processes imported different behavhmm: {sources}")
    source = {**next(iter(sources.values())), "snapshot_utc": snapshot_utc}
    # hmmlearn is float64-only: show its float64 timings in the other tables too.
    for dtype in dtypes:
        if dtype == "float64":
            continue
        for r in [r for r in records if r["library"] == "hmmlearn" and r["dtype"] == "float64"]:
            records.append({**r, "dtype": dtype})
    return finish(
        args, command, records, checks, warnings, runtimes, time.perf_counter() - t0, source
    )


def finish(args, command, records, checks, warnings, runtimes, total, source=None):
    dtypes = [d for d in ("float32", "float64") if any(r["dtype"] == d for r in records)]
    tables, rows = build_tables(records, dtypes, args.ops)
    loads = [r["loadavg_1min"] for r in records if "loadavg_1min" in r]
    load = dict(
        note="1-minute load average sampled after each measurement; this benchmark "
        "itself contributes about 1",
        min=min(loads, default=None),
        median=float(np.median(loads)) if loads else None,
        max=max(loads, default=None),
    )
    result = dict(
        command=command,
        machine=machine_description(source),
        config=dict(
            quick=args.quick,
            seed=SEED,
            ops=list(args.ops),
            libs=list(args.libs),
            slow_call_s=SLOW_CALL_S,
            fast_budget_s=FAST_BUDGET_S,
            max_repeats=MAX_REPEATS,
            loglik_rtol=LOGLIK_RTOL,
            viterbi_min_agreement=VITERBI_MIN_AGREEMENT,
            probs_atol=PROBS_ATOL,
            trans_rtol=TRANS_RTOL,
            n_check_steps=N_CHECK_STEPS,
            behavhmm_method="sequential",
        ),
        summary=rows,
        records=records,
        checks=checks,
        warnings=warnings,
        worker_runtime_s=runtimes,
        total_runtime_s=total,
        load_average=load,
        tables_markdown=tables,
    )
    print()
    print("\n\n".join(tables))
    print()
    if warnings:
        print("Correctness warnings:")
        for w in warnings:
            print("  " + w)
    else:
        print(f"Correctness: all {len(checks)} checks passed.")
    print(f"Total runtime: {total:.0f} s")
    out_prefix = args.out_prefix
    if out_prefix is None and not args.quick and args.dtype is None:
        out_prefix = DEFAULT_OUT_PREFIX  # only a full driver run writes the default files
    if out_prefix is not None:
        md_path, json_path = write_outputs(result, Path(out_prefix))
        print(f"Wrote {md_path} and {json_path}")
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="worker mode: run this dtype only, in this process",
    )
    p.add_argument(
        "--dtypes",
        nargs="+",
        choices=("float32", "float64"),
        default=["float32", "float64"],
        help="driver mode: dtypes to run",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small subset (K 3,10; T 1e4; 10 sessions of 1000) to test the script",
    )
    p.add_argument("--K", nargs="+", type=int, help="override the numbers of states")
    p.add_argument("--T", nargs="+", type=lambda s: int(float(s)), help="override the lengths")
    p.add_argument("--no-sessions", action="store_true", help="skip the multi-session cases")
    p.add_argument("--sessions-only", action="store_true", help="run the multi-session cases only")
    p.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS))
    p.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    p.add_argument(
        "--out-prefix",
        type=Path,
        default=None,
        help="write <prefix>.md and <prefix>.json (default: "
        "benchmarks/results/hmm_kernels for a full two-dtype run; "
        "nothing for --quick or --dtype)",
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only rewrite the markdown report from a results JSON written by "
        "an earlier run (next to it, or to --out-prefix)",
    )
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    p.add_argument("--save-reference", help=argparse.SUPPRESS)
    p.add_argument("--reference", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if "behavhmm" not in args.libs:
        args.libs = ["behavhmm", *args.libs]
    command = shlex.join(
        [
            Path(sys.executable).as_posix(),
            "benchmarks/bench_hmm_kernels.py",
            *(sys.argv[1:] if argv is None else argv),
        ]
    )
    if args.render is not None:
        result = json.loads(args.render.read_text())
        dtypes = [
            d for d in ("float32", "float64") if any(r["dtype"] == d for r in result["records"])
        ]
        ops = result.get("config", {}).get("ops", list(OPS))
        result["tables_markdown"], result["summary"] = build_tables(result["records"], dtypes, ops)
        prefix = args.out_prefix or args.render.with_suffix("")
        md_path, _ = write_outputs(result, Path(prefix), write_json=args.out_prefix is not None)
        print(f"Wrote {md_path}")
        return
    if args.dtype is None:
        run_driver(args, command)
        return
    t0 = time.perf_counter()
    res = run_worker(args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, default=_json_default))
        return
    finish(
        args,
        command,
        res["records"],
        res["checks"],
        res["warnings"],
        {args.dtype: res["worker_runtime_s"]},
        time.perf_counter() - t0,
        res["behavhmm_source"],
    )


if __name__ == "__main__":
    main()
