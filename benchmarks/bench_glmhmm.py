"""Side-by-side benchmark of GLM-HMM fitting: behavhmm vs nemos, same data, same start.

Each library runs in its own process (nemos' GLM-HMM needs Python >= 3.12
and lives in its own virtual environment); the driver simulates the
problems once, writes them and a common initialisation to a temporary
folder, runs every fit, and scores every fitted model with one evaluator
(behavhmm's forward filter in float64 on hand-set parameters), so the final
log-likelihoods are compared on equal terms. See ``benchmarks/README.md``.

Usage
-----
Full run (writes ``benchmarks/results/glmhmm.{md,json}``)::

    /work/venv/bin/python benchmarks/bench_glmhmm.py

Quick self-test (small problems, writes nothing unless ``--out-prefix``)::

    /work/venv/bin/python benchmarks/bench_glmhmm.py --quick

One library on one prepared problem (what the driver runs; prints JSON)::

    python benchmarks/bench_glmhmm.py --runner behavhmm --problem DIR --tol 1e-8
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT_PREFIX = HERE / "results" / "glmhmm"
NEMOS_PYTHON = HERE / ".envs" / "nemos" / "bin" / "python"
NEMOS_SRC = HERE / ".peers" / "nemos"
SEED = 20240607
TOL = 1e-8
MAXITER = 1000

PROBLEMS = {
    # name: (family, n_time_bins, n_features, n_outputs or None, n_states, n_sessions)
    "bernoulli": ("Bernoulli", 100_000, 5, None, 3, 50),
    "poisson-population": ("Poisson", 50_000, 10, 20, 4, 1),
}
QUICK = {
    "bernoulli": ("Bernoulli", 10_000, 5, None, 3, 10),
    "poisson-population": ("Poisson", 5_000, 10, 20, 4, 1),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# problems
# ----------------------------------------------------------------------------


def simulate_problem(name, spec, folder: Path, seed: int) -> dict:
    """Draw a GLM-HMM problem and nemos' default initialisation; write them to ``folder``."""
    family, n_time_bins, n_features, n_outputs, n_states, n_sessions = spec
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_time_bins, n_features))
    if family == "Bernoulli":
        coef = rng.normal(scale=1.5, size=(n_features, n_states))
        coef[0] = np.linspace(4.0, 0.5, n_states)  # the "stimulus" weight: engaged to disengaged
        intercept = np.linspace(-1.5, 1.5, n_states)
    else:
        coef = rng.normal(scale=0.3, size=(n_features, n_outputs, n_states))
        intercept = rng.normal(loc=0.0, scale=0.5, size=(n_outputs, n_states))
    stay = 0.98
    trans = np.full((n_states, n_states), (1 - stay) / (n_states - 1)) + (
        stay - (1 - stay) / (n_states - 1)
    ) * np.eye(n_states)
    starts = np.zeros(n_time_bins, bool)
    starts[:: n_time_bins // n_sessions] = True
    z = np.zeros(n_time_bins, int)
    for t in range(n_time_bins):
        z[t] = rng.integers(n_states) if starts[t] else rng.choice(n_states, p=trans[z[t - 1]])
    eta = np.einsum("td,d...k->t...k", X, coef) + intercept
    eta_z = np.take_along_axis(eta, z.reshape((-1,) + (1,) * (eta.ndim - 1)), axis=-1)[..., 0]
    y = (
        rng.binomial(1, 1 / (1 + np.exp(-eta_z)))
        if family == "Bernoulli"
        else rng.poisson(np.exp(eta_z))
    )
    # nemos' default initialisation: uniform, sticky 0.95, coef ~ N(0, 0.001), intercept matching
    # the mean
    init_coef = 0.001 * rng.normal(size=coef.shape)
    mean = (
        np.clip(y.mean(axis=0), 1e-3, 1 - 1e-3)
        if family == "Bernoulli"
        else np.maximum(y.mean(axis=0), 1e-3)
    )
    base = np.log(mean / (1 - mean)) if family == "Bernoulli" else np.log(mean)
    init_intercept = np.repeat(np.asarray(base)[..., None], n_states, axis=-1)
    init_trans = np.full((n_states, n_states), 0.05 / (n_states - 1)) + (
        0.95 - 0.05 / (n_states - 1)
    ) * np.eye(n_states)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "problem.npz",
        X=X,
        y=y.astype(float),
        session_starts=starts,
        states=z,
        true_coef=coef,
        true_intercept=intercept,
        true_transition=trans,
        init_coef=init_coef,
        init_intercept=init_intercept,
        init_scale=np.ones(init_intercept.shape),
        init_initial=np.full(n_states, 1.0 / n_states),
        init_transition=init_trans,
    )
    meta = {
        "name": name,
        "family": family,
        "n_time_bins": n_time_bins,
        "n_features": n_features,
        "n_outputs": n_outputs,
        "n_states": n_states,
        "n_sessions": n_sessions,
    }
    (folder / "problem.json").write_text(json.dumps(meta))
    return meta


# ----------------------------------------------------------------------------
# runners (one library per process)
# ----------------------------------------------------------------------------


def _load(folder: Path):
    meta = json.loads((folder / "problem.json").read_text())
    with np.load(folder / "problem.npz") as f:
        data = {k: f[k] for k in f.files}
    init = (
        data["init_coef"],
        data["init_intercept"],
        data["init_scale"],
        data["init_initial"],
        data["init_transition"],
    )
    return meta, data, init


def run_behavhmm(folder: Path, tol: float, dtype: str, solver: str | None = None) -> dict:
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    import behavhmm
    from behavhmm import GLMHMM

    meta, data, init = _load(folder)
    out = {
        "library": "behavhmm",
        "version": behavhmm.__version__,
        "jax": jax.__version__,
        "fits": [],
    }
    for repeat in range(2):
        model = GLMHMM(
            meta["n_states"],
            observation_model=meta["family"],
            maxiter=MAXITER,
            tol=tol,
            progress_bar=False,
            solver_name=solver,
        )
        t0 = time.perf_counter()
        model.fit(data["X"], data["y"], init_params=init, session_starts=data["session_starts"])
        elapsed = time.perf_counter() - t0
        out["fits"].append(
            {
                "seconds": elapsed,
                "iterations": int(model.n_iter_),
                "converged": bool(model.converged_),
            }
        )
        log(f"  behavhmm fit {repeat + 1}: {elapsed:.2f} s, {model.n_iter_} iterations")
    out["solver"] = model._spec().solver
    np.savez(
        folder / f"fit_{_tag('behavhmm', solver)}.npz",
        coef=model.coef_,
        intercept=model.intercept_,
        scale=model.scale_,
        initial=model.initial_prob_,
        transition=model.transition_prob_,
    )
    return out


def run_nemos(folder: Path, tol: float, dtype: str) -> dict:
    import dataclasses
    import warnings

    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    import nemos as nmo

    meta, data, init = _load(folder)
    out = {"library": "nemos", "version": nmo.__version__, "jax": jax.__version__, "fits": []}
    y = data["y"]
    population = y.ndim == 2
    for repeat in range(2):
        model = nmo.glm_hmm.GLMHMM(
            n_states=meta["n_states"], observation_model=meta["family"], maxiter=MAXITER, tol=tol
        )
        if population:
            # nemos' class rejects a 2-D y although its EM supports it: widen the validator
            model._validator = dataclasses.replace(
                model._validator, y_dimensionality=2, expected_param_dims=(3, 2, 2, 1, 2)
            )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data["X"], y, init_params=init, session_starts=data["session_starts"])
        elapsed = time.perf_counter() - t0
        state = model.solver_state_
        out["fits"].append(
            {
                "seconds": elapsed,
                "iterations": int(state.iterations),
                "converged": bool(state.converged),
            }
        )
        log(f"  nemos fit {repeat + 1}: {elapsed:.2f} s, {int(state.iterations)} iterations")
    np.savez(
        folder / "fit_nemos.npz",
        coef=np.asarray(model.coef_),
        intercept=np.asarray(model.intercept_),
        scale=np.ones(np.shape(model.intercept_)),
        initial=np.asarray(model.initial_prob_),
        transition=np.asarray(model.transition_prob_),
    )
    return out


# ----------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------


def evaluate(folder: Path, which: str) -> dict:
    """Log-likelihood of a fitted model and of the truth with one evaluator (behavhmm, float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from behavhmm import GLMHMM
    from behavhmm.analysis import state_accuracy

    meta, data, _ = _load(folder)
    with np.load(folder / f"fit_{which}.npz") as f:
        fit = {k: f[k] for k in f.files}
    model = GLMHMM(meta["n_states"], observation_model=meta["family"], regularizer="Ridge")
    model.coef_, model.intercept_, model.scale_ = fit["coef"], fit["intercept"], fit["scale"]
    model.initial_prob_, model.transition_prob_ = fit["initial"], fit["transition"]
    args = (data["X"], data["y"])
    ll = model.score(*args, session_starts=data["session_starts"])
    penalty = 0.5 * float(np.sum(fit["coef"] ** 2))
    z = model.decode_state(*args, session_starts=data["session_starts"], state_format="index")
    return {
        "log_likelihood": ll,
        "penalized": ll - penalty,
        "state_accuracy": state_accuracy(data["states"], z),
    }


def _tag(lib: str, solver: str | None) -> str:
    return lib if solver is None else f"{lib}_{solver}"


def _runner(lib: str, folder: Path, tol: float, dtype: str, solver: str | None = None) -> dict:
    if lib == "behavhmm":
        cmd = [
            sys.executable,
            __file__,
            "--runner",
            "behavhmm",
            "--problem",
            str(folder),
            "--tol",
            repr(tol),
            "--dtype",
            dtype,
        ]
        if solver is not None:
            cmd += ["--solver", solver]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    else:
        cmd = [
            str(NEMOS_PYTHON),
            __file__,
            "--runner",
            "nemos",
            "--problem",
            str(folder),
            "--tol",
            repr(tol),
            "--dtype",
            dtype,
        ]
        env = dict(os.environ)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    sys.stderr.write(
        res.stderr[-3000:]
        if res.returncode
        else "".join(line + "\n" for line in res.stderr.splitlines() if line.startswith("  "))
    )
    if res.returncode:
        raise RuntimeError(f"{lib} runner failed (exit {res.returncode})")
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def drive(problems: dict, out_prefix: Path | None, dtype: str) -> dict:
    results = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "dtype": dtype,
        "tol": TOL,
        "maxiter": MAXITER,
        "load_average_start": list(os.getloadavg()),
        "problems": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, spec) in enumerate(problems.items()):
            folder = Path(tmp) / name
            meta = simulate_problem(name, spec, folder, SEED + i)
            log(f"{name}: {meta}")
            ours = _runner("behavhmm", folder, TOL, dtype)
            ours.update(evaluate(folder, "behavhmm"))
            # behavhmm with nemos' M-step solver (L-BFGS), to separate the solver from the rest
            ours_lbfgs = _runner("behavhmm", folder, TOL, dtype, "LBFGS")
            ours_lbfgs.update(evaluate(folder, _tag("behavhmm", "LBFGS")))
            # nemos tests |exp(LL_new / T) - exp(LL_old / T)| < tol; the tolerance equal to ours
            # (|Δ LL| / T < TOL) is TOL * exp(LL / T) at the solution
            matched_tol = TOL * float(np.exp(ours["log_likelihood"] / meta["n_time_bins"]))
            runs = {"behavhmm": ours, "behavhmm (LBFGS, nemos' solver)": ours_lbfgs}
            for label, tol in (
                ("nemos (same tolerance)", matched_tol),
                ("nemos (default tol=1e-8)", TOL),
            ):
                log(f"  {label}: tol={tol:.3g}")
                res = _runner("nemos", folder, tol, dtype)
                res.update(evaluate(folder, "nemos"))
                res["tol"] = tol
                runs[label] = res
            results["problems"].append({"meta": meta, "runs": runs})
    results["load_average_end"] = list(os.getloadavg())
    if out_prefix is not None:
        out_prefix.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{out_prefix}.json").write_text(json.dumps(results, indent=2))
        Path(f"{out_prefix}.md").write_text(render(results))
    print(render(results))
    return results


def ratio(slow: dict, fast: dict, fit: int) -> float:
    """Seconds of ``slow``'s fit number ``fit`` over ``fast``'s."""
    return slow["fits"][fit]["seconds"] / fast["fits"][fit]["seconds"]


def per_iteration(run: dict) -> float:
    """Seconds per EM iteration of a run's second fit."""
    return run["fits"][1]["seconds"] / max(run["fits"][1]["iterations"], 1)


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# GLM-HMM fits: behavhmm vs nemos",
        "",
        f"{results['date']}; {m['cpu']}, {m['cores']} cores; {results['dtype']}; both libraries "
        "from the same",
        f"initialisation (nemos' defaults), Ridge strength 1, maxiter {results['maxiter']}; M-step "
        "solvers: nemos LBFGS (its",
        "default), behavhmm its default (Newton's method on the exact GLM Hessian for these "
        "canonical links) and, in a",
        "second row, LBFGS like nemos.",
        f"Tolerance: behavhmm stops when the EM objective changes by less than {results['tol']:g} "
        "nats per time bin;",
        "nemos stops when |exp(LL_new/T) - exp(LL_old/T)| < tol, run once with the equivalent "
        "tolerance",
        f"({results['tol']:g} x exp(LL/T)) and once with its default (1e-8). Log-likelihoods: one "
        "evaluator",
        "(behavhmm's filter, float64) on every fitted model; 'penalized' subtracts the Ridge "
        "penalty (the EM objective).",
        "First fit includes compilation; the second fit is a new estimator on the same data.",
    ]
    if "load_average_start" in results:
        start, end = results["load_average_start"], results["load_average_end"]
        lines.append(
            f"Load average (1, 5, 15 min) at the start {start[0]:.2f}, {start[1]:.2f}, "
            f"{start[2]:.2f}; at the end {end[0]:.2f}, {end[1]:.2f}, {end[2]:.2f} (a shared "
            "machine: other jobs ran alongside)."
        )
    lines.append("")
    for prob in results["problems"]:
        meta = prob["meta"]
        shape = (
            f"T={meta['n_time_bins']:,} x {meta['n_features']} features"
            + (f" x {meta['n_outputs']} neurons" if meta["n_outputs"] else "")
            + f" x {meta['n_states']} states"
        )
        lines += [
            f"## {meta['family']}: {shape}, {meta['n_sessions']} session(s)",
            "",
            "| run | first fit (s) | second fit (s) | iterations | ms / iteration | "
            "log-likelihood | penalized | state accuracy |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, run in prob["runs"].items():
            f1, f2 = run["fits"]
            per_iter = 1000 * f2["seconds"] / max(f2["iterations"], 1)
            lines.append(
                f"| {label} | {f1['seconds']:.2f} | {f2['seconds']:.2f} | {f2['iterations']} | "
                f"{per_iter:.1f} | {run['log_likelihood']:.2f} | {run['penalized']:.2f} | "
                f"{run['state_accuracy']:.4f} |"
            )
        ours = prob["runs"]["behavhmm"]
        same = prob["runs"]["nemos (same tolerance)"]
        lines += [
            "",
            f"Ratios (nemos / behavhmm, same tolerance): second fit {ratio(same, ours, 1):.1f}x, "
            f"first fit {ratio(same, ours, 0):.1f}x, "
            f"time per iteration {per_iteration(same) / per_iteration(ours):.1f}x; "
            "final log-likelihood behavhmm - nemos = "
            f"{ours['log_likelihood'] - same['log_likelihood']:+.2f} nats.",
        ]
        lbfgs = prob["runs"].get("behavhmm (LBFGS, nemos' solver)")
        if lbfgs is not None:
            lines.append(
                f"With L-BFGS M-steps like nemos: second fit {ratio(same, lbfgs, 1):.1f}x, "
                "final log-likelihood behavhmm - nemos = "
                f"{lbfgs['log_likelihood'] - same['log_likelihood']:+.2f} nats."
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small problems; writes nothing unless --out-prefix"
    )
    parser.add_argument("--out-prefix", type=Path, default=None)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--runner", choices=("behavhmm", "nemos"))
    parser.add_argument("--problem", type=Path)
    parser.add_argument("--tol", type=float, default=TOL)
    parser.add_argument("--solver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runner:
        if args.runner == "behavhmm":
            print(json.dumps(run_behavhmm(args.problem, args.tol, args.dtype, args.solver)))
        else:
            print(json.dumps(run_nemos(args.problem, args.tol, args.dtype)))
        return
    sys.path.insert(0, str(REPO / "src"))  # the evaluator uses this checkout's behavhmm
    if not NEMOS_PYTHON.exists():
        sys.exit(
            f"nemos environment missing at {NEMOS_PYTHON}; see benchmarks/README.md to build it."
        )
    out = args.out_prefix if (args.out_prefix or args.quick) else DEFAULT_OUT_PREFIX
    drive(QUICK if args.quick else PROBLEMS, out, args.dtype)


if __name__ == "__main__":
    main()
