"""Side-by-side ARHMM benchmark: behavhmm vs keypoint-moseq (Gibbs) and dynamax (EM).

On the real DeepLabCut golden-mouse recording (4,860 frames), preprocessed once
(low-confidence points interpolated, egocentric alignment, PCA to 10
dimensions) and saved as one ``.npz`` that every library reads:

- Gibbs sampling, K = 100 states, 3 lags: seconds per sweep and compile time
  of ``behavhmm.ARHMM(algorithm="gibbs")`` and of keypoint-moseq's AR-HMM
  stage (``keypoint_moseq.fit_model(..., ar_only=True)``, run by the Python of
  its own virtual environment), and whether behavhmm compiles anything after
  its first sweep;
- EM, K = 100 and K = 10: seconds per iteration of
  ``behavhmm.ARHMM(algorithm="em")`` and of dynamax's
  ``LinearAutoregressiveHMM``.

Every library runs in its own process (compile times start from nothing, and
keypoint-moseq switches on ``jax_enable_x64`` when imported). See
``benchmarks/README.md`` for how to run it and what is measured.

Usage
-----
Full run (writes ``benchmarks/results/arhmm.{md,json}``; about 5-10 minutes)::

    /work/venv/bin/python benchmarks/bench_arhmm.py

Quick self-test (fewer sweeps and iterations, writes nothing unless
``--out-prefix`` is given)::

    /work/venv/bin/python benchmarks/bench_arhmm.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import bench_hmm_kernels as hk  # noqa: E402  (machine description, snapshot, JSON helpers)

DEFAULT_OUT_PREFIX = HERE / "results" / "arhmm"
DEFAULT_KPMS_PYTHON = HERE / ".envs" / "kpms" / "bin" / "python"
DATA_DIR = REPO.parent / "shared" / "data" / "dlc_golden_mouse"
DLC_FILE = "golden_mouseDLC_dlcrnetms5_golden_mouseOct19shuffle1_2000.h5"
#: The 16 keypoints of the data README (keypoint-MoSeq's advice: drop the tail).
BODYPARTS = (
    "nose",
    "left_ear",
    "right_ear",
    "neck",
    "mid_back",
    "mouse_center",
    "mid_backend",
    "mid_backend2",
    "mid_backend3",
    "tail_base",
    "left_shoulder",
    "left_midside",
    "left_hip",
    "right_shoulder",
    "right_midside",
    "right_hip",
)
ANTERIOR, POSTERIOR = "nose", "tail_base"
PCUTOFF = 0.3  # the DLC project's pcutoff (dlc_config.yaml): points below it count as missing
N_PCS = 10
N_STATES = 100
NLAGS = 3
EM_STATES = (100, 10)
SEED = 0
GOAL_SPEEDUP = 5.0
GOAL_COMPILE_S = 15.0
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
BACKEND_COMPILE = COMPILE_EVENTS[2]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------


def prepare_data(path: Path, data_dir: Path = DATA_DIR) -> dict:
    """Load, clean, align and project the golden-mouse keypoints; save the PCs to ``path``."""
    from behavhmm.io import load_keypoints
    from behavhmm.preprocessing import egocentric_align, fit_pca, interpolate_nans, whiten

    sessions = load_keypoints(data_dir / DLC_FILE, "deeplabcut", bodyparts=list(BODYPARTS))
    coords = np.array(sessions.coordinates, dtype=float)
    low = sessions.confidence < PCUTOFF
    coords[low] = np.nan
    coords = interpolate_nans(coords, sessions.session_starts)
    aligned = egocentric_align(
        coords, ANTERIOR, POSTERIOR, bodyparts=list(sessions.bodyparts)
    ).coordinates
    scores, pca = fit_pca(aligned, N_PCS)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise SystemExit("the PC scores hold non-finite values")
    # EM runs on whitened PCs (as moseq2-model does by default): behavhmm's float32 k-means
    # initialisation with K = 100 gives non-positive-definite covariances on the raw
    # pixel-scale PCs (see README), which EM cannot start from.
    white = np.asarray(whiten(scores), dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, pcs=scores, pcs_white=white)
    return dict(
        file=str(data_dir / DLC_FILE),
        n_frames=int(scores.shape[0]),
        n_keypoints=len(BODYPARTS),
        bodyparts=list(BODYPARTS),
        low_confidence_fraction=float(low.mean()),
        pcutoff=PCUTOFF,
        n_pcs=N_PCS,
        explained_variance=float(np.sum(pca.explained_variance_ratio_)),
        pc_std=[float(s) for s in scores.std(axis=0)],
        npz=str(path),
    )


def load_pcs(path, key: str = "pcs") -> np.ndarray:
    with np.load(path) as f:
        return np.asarray(f[key], dtype=np.float64)


# ----------------------------------------------------------------------------
# timing helpers (used inside the workers)
# ----------------------------------------------------------------------------


class CompileLog:
    """Compile events reported by ``jax.monitoring`` (tracing, lowering, XLA compilation)."""

    def __init__(self):
        import jax.monitoring

        self.events: list[tuple[str, float]] = []
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event, duration, **kwargs):
        if event in COMPILE_EVENTS:
            self.events.append((event, float(duration)))

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int, end: int | None = None) -> dict:
        new = self.events[mark:end]
        return dict(
            n_backend_compiles=sum(1 for e, _ in new if e == BACKEND_COMPILE),
            backend_compile_s=sum(d for e, d in new if e == BACKEND_COMPILE),
            trace_lower_compile_s=sum(d for _, d in new),
        )


class CallTimer:
    """Wraps a function: wall and CPU seconds and compile events of every call."""

    def __init__(self, fn, clog: CompileLog, block):
        self.fn, self.clog, self.block = fn, clog, block
        self.calls: list[dict] = []
        self.first_start: float | None = None
        self.first_mark = 0
        self.last_args = self.last_out = None

    def __call__(self, *args, **kwargs):
        mark = self.clog.mark()
        t0, c0 = time.perf_counter(), time.process_time()
        if self.first_start is None:
            self.first_start, self.first_mark = t0, mark
        out = self.block(self.fn(*args, **kwargs))
        self.calls.append(
            dict(
                wall_s=time.perf_counter() - t0,
                cpu_s=time.process_time() - c0,
                **self.clog.since(mark),
            )
        )
        self.last_args, self.last_out = (args, kwargs), out
        return out


def summarise_calls(calls: list[dict]) -> dict:
    """First call, steady state (median over the following calls) and recompilations."""
    if not calls:
        return {}
    wall = np.array([c["wall_s"] for c in calls])
    cpu = np.array([c["cpu_s"] for c in calls])
    rest = slice(1, None) if len(calls) > 1 else slice(0, None)
    steady = float(np.median(wall[rest]))
    return dict(
        n_calls=len(calls),
        first_s=float(wall[0]),
        steady_median_s=steady,
        steady_min_s=float(np.min(wall[rest])),
        steady_q25_s=float(np.percentile(wall[rest], 25)),
        steady_q75_s=float(np.percentile(wall[rest], 75)),
        steady_cpu_median_s=float(np.median(cpu[rest])),
        compile_s=float(wall[0] - steady),
        first_call_jax_compile_s=calls[0]["trace_lower_compile_s"],
        first_call_backend_compiles=calls[0]["n_backend_compiles"],
        first_call_cpu_s=float(cpu[0]),
        backend_compiles_after_first=int(sum(c["n_backend_compiles"] for c in calls[1:])),
        wall_s=[float(w) for w in wall],
        cpu_s=[float(c) for c in cpu],
    )


def median_run_length(z: np.ndarray) -> float:
    z = np.asarray(z).ravel()
    change = np.flatnonzero(np.diff(z) != 0) + 1
    bounds = np.r_[0, change, len(z)]
    return float(np.median(np.diff(bounds)))


def chain_summary(z) -> dict:
    z = np.asarray(z).ravel()
    return dict(used_states=int(len(np.unique(z))), median_duration_frames=median_run_length(z))


# ----------------------------------------------------------------------------
# workers
# ----------------------------------------------------------------------------


def _jax_setup(dtype: str):
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    return jax


def worker_behavhmm_gibbs(args) -> dict:
    jax = _jax_setup(args.dtype)
    clog = CompileLog()
    import behavhmm
    from behavhmm import ARHMM
    from behavhmm.models import _ar_programs as programs
    from behavhmm.models.arhmm import estimator as ar_hmm  # the estimator looks programs up here

    X = load_pcs(args.data).astype(args.dtype)
    timer = CallTimer(programs.gibbs_sweep, clog, jax.block_until_ready)
    ar_hmm.gibbs_sweep = timer  # the estimator looks the program up in its module
    model = ARHMM(
        n_states=N_STATES,
        nlags=NLAGS,
        algorithm="gibbs",
        n_iter=args.sweeps,
        check_every=args.sweeps,
        progress_bar=False,
        random_state=SEED,
    )
    mark = clog.mark()
    t0 = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - t0
    fit_compiles = clog.since(mark)
    init_compiles = clog.since(mark, timer.first_mark)
    ar_hmm.gibbs_sweep = programs.gibbs_sweep
    sweeps = summarise_calls(timer.calls)
    init_s = timer.first_start - t0
    # The compiled program alone, called in a loop (no Python bookkeeping of the fit).
    (state, key, data, hyper), kwargs = timer.last_args
    n_emitted = int(data.weights.sum())
    final_states = np.asarray(timer.last_out[0].states)[:n_emitted]  # the chain's last sample
    direct = CallTimer(programs.gibbs_sweep, clog, jax.block_until_ready)
    for i in range(args.sweeps):
        state, _ = direct(state, jax.random.fold_in(key, 10_000 + i), data, hyper, **kwargs)
    # A second fit with the same shapes must compile nothing at all.
    mark = clog.mark()
    t0 = time.perf_counter()
    model.set_params(n_iter=3, check_every=3).fit(X)
    refit_s = time.perf_counter() - t0
    refit = clog.since(mark)
    return dict(
        library="behavhmm",
        version=behavhmm.__version__,
        package_dir=str(Path(behavhmm.__file__).resolve().parent),
        dtype=args.dtype,
        n_states=N_STATES,
        nlags=NLAGS,
        n_emitted_frames=n_emitted,
        padded_frames=int(data.y.shape[0]),
        inference_method=kwargs.get("method"),
        fit_s=fit_s,
        init_s=init_s,
        time_to_first_sample_s=init_s + sweeps["first_s"],
        init_compiles=init_compiles,
        fit_compiles=fit_compiles,
        sweeps=sweeps,
        direct_sweeps=summarise_calls(direct.calls),
        refit_s=refit_s,
        refit_compiles=refit,
        chain=chain_summary(final_states),
    )


def worker_kpms(args) -> dict:
    """keypoint-moseq's AR-HMM stage (``fit_model(..., ar_only=True)``) on the same PCs."""
    import jax

    clog = CompileLog()
    t_import = time.perf_counter()
    import jax_moseq.models.keypoint_slds as kslds
    import keypoint_moseq as kpms
    import keypoint_moseq.fitting as kfit
    from jax_moseq.models import arhmm

    import_s = time.perf_counter() - t_import
    # keypoint-moseq turns on float64 when imported; "float32" switches it back off.
    if args.dtype == "float32":
        jax.config.update("jax_enable_x64", False)
    x64 = bool(jax.config.jax_enable_x64)
    dtype = np.float64 if x64 else np.float32
    pcs = load_pcs(args.data)
    n_frames = pcs.shape[0]
    # The AR-HMM hyperparameters of a fresh keypoint-moseq project (its defaults).
    with tempfile.TemporaryDirectory(prefix="kpms_project_") as tmp:
        project = Path(tmp) / "project"
        kpms.setup_project(str(project), bodyparts=list(BODYPARTS), skeleton=[], video_dir=tmp)
        config = kpms.load_config(str(project), check_if_valid=False)
    trans_hyp = dict(config["trans_hypparams"], num_states=N_STATES)
    ar_hyp = dict(config["ar_hypparams"], latent_dim=pcs.shape[1], nlags=NLAGS)
    data = {
        "x": jax.numpy.asarray(pcs[None].astype(dtype)),
        "mask": jax.numpy.ones((1, n_frames), dtype),
    }
    metadata = (["golden_mouse"], np.array([[0, n_frames]]))
    mark = clog.mark()
    t0 = time.perf_counter()
    model = arhmm.init_model(
        data, trans_hypparams=trans_hyp, ar_hypparams=ar_hyp, seed=jax.random.PRNGKey(SEED)
    )
    model = jax.block_until_ready(model)
    model["noise_prior"] = None  # unused by the AR-HMM stage; fit_model passes it along
    init_s = time.perf_counter() - t0
    init_compiles = clog.since(mark)
    # One iteration of fit_model = resample_model(ar_only=True) + its NaN check; time
    # both the iteration and the sampler inside it.
    iteration = CallTimer(kfit._wrapped_resample, clog, jax.block_until_ready)
    sampler = CallTimer(kslds.resample_model, clog, jax.block_until_ready)
    kfit._wrapped_resample = iteration
    kslds.resample_model = sampler
    mark = clog.mark()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # fit_model runs iterations start_iter..num_iters inclusive
        model, _ = kpms.fit_model(
            model,
            data,
            metadata,
            num_iters=args.sweeps - 1,
            ar_only=True,
            save_every_n_iters=None,
            generate_progress_plots=False,
            verbose=False,
        )
    fit_s = time.perf_counter() - t0
    fit_compiles = clog.since(mark)
    from importlib import metadata as md

    versions = {}
    for pkg in ("keypoint-moseq", "jax-moseq", "jax", "jaxlib", "numpy", "dynamax"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    it = summarise_calls(iteration.calls)
    messages = sorted({" ".join(str(w.message).split())[:300] for w in caught})
    # fit_model stops early (with a warning) when the chain produces NaN
    nan_stop = len(iteration.calls) < args.sweeps or not all(
        np.all(np.isfinite(np.asarray(v))) for v in model["params"].values()
    )
    if nan_stop or not it:
        return dict(
            library="keypoint-moseq",
            version=versions["keypoint-moseq"],
            versions=versions,
            python=sys.version.split()[0],
            dtype="float64" if x64 else "float32",
            failed=True,
            completed_sweeps=len(iteration.calls),
            fit_s=fit_s,
            init_s=init_s,
            warnings=messages,
        )
    return dict(
        library="keypoint-moseq",
        version=versions["keypoint-moseq"],
        versions=versions,
        python=sys.version.split()[0],
        dtype="float64" if x64 else "float32",
        n_states=N_STATES,
        nlags=NLAGS,
        n_emitted_frames=int(n_frames - NLAGS),
        hypparams=dict(trans_hypparams=trans_hyp, ar_hypparams=ar_hyp),
        import_s=import_s,
        init_s=init_s,
        init_compiles=init_compiles,
        time_to_first_sample_s=init_s + it["first_s"],
        fit_s=fit_s,
        fit_compiles=fit_compiles,
        sweeps=it,
        sampler_calls=summarise_calls(sampler.calls),
        chain=chain_summary(np.asarray(model["states"]["z"])),
        warnings=messages,
    )


def worker_behavhmm_em(args) -> dict:
    jax = _jax_setup(args.dtype)
    clog = CompileLog()
    import behavhmm
    from behavhmm import ARHMM
    from behavhmm.models import _ar_programs as programs
    from behavhmm.models.arhmm import estimator as ar_hmm  # the estimator looks programs up here

    X = load_pcs(args.data, "pcs_white").astype(args.dtype)
    out = []
    for n_states in args.em_states:
        timer = CallTimer(programs.em_step, clog, jax.block_until_ready)
        ar_hmm.em_step = timer
        model = ARHMM(
            n_states=n_states,
            nlags=NLAGS,
            algorithm="em",
            n_iter=args.em_iters,
            tol=0.0,
            check_every=args.em_iters,
            progress_bar=False,
            random_state=SEED,
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        fit_s = time.perf_counter() - t0
        ar_hmm.em_step = programs.em_step
        out.append(
            dict(
                n_states=n_states,
                fit_s=fit_s,
                init_s=timer.first_start - t0,
                n_iter=int(model.n_iter_),
                iterations=summarise_calls(timer.calls),
                log_likelihood_history=[float(v) for v in model.log_likelihood_history_],
                finite=bool(np.all(np.isfinite(model.log_likelihood_history_))),
            )
        )
    return dict(
        library="behavhmm",
        version=behavhmm.__version__,
        package_dir=str(Path(behavhmm.__file__).resolve().parent),
        dtype=args.dtype,
        nlags=NLAGS,
        runs=out,
    )


def worker_dynamax_em(args) -> dict:
    jax = _jax_setup(args.dtype)
    clog = CompileLog()
    import dynamax
    from dynamax.hidden_markov_model import LinearAutoregressiveHMM

    emissions = jax.numpy.asarray(load_pcs(args.data, "pcs_white").astype(args.dtype))
    out = []
    for n_states in args.em_states:
        hmm = LinearAutoregressiveHMM(n_states, emissions.shape[1], num_lags=NLAGS)
        inputs = hmm.compute_inputs(emissions)
        t0 = time.perf_counter()
        params, props = hmm.initialize(
            jax.random.PRNGKey(SEED), method="kmeans", emissions=emissions
        )
        init_s = time.perf_counter() - t0

        # one iteration of dynamax's fit_em (E-step, log prior, M-step) as one program
        @jax.jit
        def em_iteration(params, m_state, hmm=hmm, props=props, inputs=inputs):
            stats, ll = hmm.e_step(params, emissions, inputs)
            batch_stats = jax.tree_util.tree_map(lambda a: a[None], stats)
            lp = hmm.log_prior(params) + ll
            params, m_state = hmm.m_step(params, props, batch_stats, m_state)
            return params, m_state, lp

        timer = CallTimer(em_iteration, clog, jax.block_until_ready)
        m_state = hmm.initialize_m_step_state(params, props)
        p, lps = params, []
        for _ in range(args.em_iters):
            p, m_state, lp = timer(p, m_state)
            lps.append(float(lp))
        # dynamax's own loop, for reference: fit_em(num_iters) compiles its scan anew per call
        t0 = time.perf_counter()
        _, fit_em_lps = hmm.fit_em(
            params, props, emissions, inputs, num_iters=args.em_iters, verbose=False
        )
        jax.block_until_ready(fit_em_lps)
        fit_em_s = time.perf_counter() - t0
        out.append(
            dict(
                n_states=n_states,
                init_s=init_s,
                iterations=summarise_calls(timer.calls),
                log_prob_history=lps,
                finite=bool(np.all(np.isfinite(lps))),
                fit_em_total_s=fit_em_s,
                fit_em_iters=args.em_iters,
            )
        )
    return dict(
        library="dynamax", version=dynamax.__version__, dtype=args.dtype, nlags=NLAGS, runs=out
    )


WORKERS = {
    "behavhmm-gibbs": worker_behavhmm_gibbs,
    "kpms": worker_kpms,
    "behavhmm-em": worker_behavhmm_em,
    "dynamax-em": worker_dynamax_em,
}


# ----------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------


def run_worker_process(kind, args, data_path, tmp, python, env, dtype):
    json_out = Path(tmp) / f"{kind}_{dtype}.json"
    argv = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--data",
        str(data_path),
        "--dtype",
        dtype,
        "--sweeps",
        str(args.sweeps),
        "--em-iters",
        str(args.em_iters),
        "--em-states",
        *map(str, args.em_states),
        "--json-out",
        str(json_out),
    ]
    return launch_worker(argv, env, tmp, json_out, f"{kind} {dtype}")


def launch_worker(argv, env, tmp, json_out, label):
    """Run one worker process; return its JSON result with wall time and load averages added.

    Also used by bench_keypoint_slds.py.
    """
    log(f"[driver] {shlex.join(argv)}")
    before = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, check=False, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"worker {label} failed with exit code {proc.returncode}")
    res = json.loads(json_out.read_text())
    if (
        "package_dir" in res
        and Path(res["package_dir"]) != (Path(tmp) / "snapshot" / "behavhmm").resolve()
    ):
        raise SystemExit(
            f"worker {label} did not import the snapshot of behavhmm: {res['package_dir']}"
        )
    res.update(process_wall_s=wall, loadavg_before=before, loadavg_after=loadavg())
    log(f"[driver] {label}: {wall:.1f} s, load {before[0]} -> {res['loadavg_after'][0]}")
    return res


def run_driver(args, command):
    t_start = time.perf_counter()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_arhmm_") as tmp:
        env, snapshot_utc = hk.snapshot_behavhmm(Path(tmp))
        sys.path.insert(0, str(Path(tmp) / "snapshot"))  # the driver's preprocessing uses it too
        data_path = Path(args.keep_data) if args.keep_data else Path(tmp) / "golden_mouse_pcs.npz"
        log("[driver] preprocessing the golden-mouse keypoints")
        data = prepare_data(data_path)
        results = {"gibbs": [], "em": []}
        for dtype in args.gibbs_dtypes:
            results["gibbs"].append(
                run_worker_process(
                    "behavhmm-gibbs", args, data_path, tmp, sys.executable, env, dtype
                )
            )
        if not args.skip_kpms:
            for dtype in args.kpms_dtypes:
                results["gibbs"].append(
                    run_worker_process("kpms", args, data_path, tmp, args.kpms_python, env, dtype)
                )
        if not args.skip_em:
            for kind in ("behavhmm-em", "dynamax-em"):
                results["em"].append(
                    run_worker_process(kind, args, data_path, tmp, sys.executable, env, "float32")
                )
        source = hk.behavhmm_source()
        if Path(source["package_dir"]) != (Path(tmp) / "snapshot" / "behavhmm").resolve():
            raise SystemExit(f"the driver did not import the snapshot of behavhmm: {source}")
        sys.path.remove(str(Path(tmp) / "snapshot"))
    source["snapshot_utc"] = snapshot_utc
    machine = hk.machine_description(source)
    kp = next((r for r in results["gibbs"] if r["library"] == "keypoint-moseq"), None)
    if kp is not None:
        machine["versions"].update({f"{k} (kpms env)": v for k, v in kp["versions"].items()})
        machine["kpms_python"] = kp["python"]
    result = dict(
        command=command,
        machine=machine,
        config=dict(
            quick=args.quick,
            sweeps=args.sweeps,
            em_iters=args.em_iters,
            em_states=list(args.em_states),
            n_states=N_STATES,
            nlags=NLAGS,
            seed=SEED,
            gibbs_dtypes=list(args.gibbs_dtypes),
            kpms_dtypes=[] if args.skip_kpms else list(args.kpms_dtypes),
        ),
        data=data,
        loadavg_start=load_start,
        loadavg_end=loadavg(),
        total_s=time.perf_counter() - t_start,
        **results,
    )
    result["summary"] = summarise(result)
    return result


def _steady(r):
    return r["sweeps"]["steady_median_s"]


def summarise(result) -> dict:
    """Ratios peer / behavhmm and the issue's goals."""
    gibbs = {(r["library"], r["dtype"]): r for r in result["gibbs"] if not r.get("failed")}
    ratios = []
    for (lib, dt), r in gibbs.items():
        if lib != "keypoint-moseq":
            continue
        for bdt in ("float32", "float64"):
            b = gibbs.get(("behavhmm", bdt))
            if b is None:
                continue
            ratios.append(
                dict(
                    peer=f"keypoint-moseq {dt}",
                    behavhmm=f"behavhmm {bdt}",
                    sweep_ratio=_steady(r) / _steady(b),
                    sweep_cpu_ratio=r["sweeps"]["steady_cpu_median_s"]
                    / b["sweeps"]["steady_cpu_median_s"],
                    direct_sweep_ratio=_steady(r) / b["direct_sweeps"]["steady_median_s"],
                    first_sample_ratio=r["time_to_first_sample_s"] / b["time_to_first_sample_s"],
                )
            )
    em_ratios = []
    em = {r["library"]: r for r in result["em"]}
    if "behavhmm" in em and "dynamax" in em:
        for b in em["behavhmm"]["runs"]:
            d = next((d for d in em["dynamax"]["runs"] if d["n_states"] == b["n_states"]), None)
            if d is not None:
                em_ratios.append(
                    dict(
                        n_states=b["n_states"],
                        iteration_ratio=d["iterations"]["steady_median_s"]
                        / b["iterations"]["steady_median_s"],
                        cpu_ratio=d["iterations"]["steady_cpu_median_s"]
                        / b["iterations"]["steady_cpu_median_s"],
                    )
                )
    default_b = gibbs.get(("behavhmm", "float32"))
    default_k = gibbs.get(("keypoint-moseq", "float64"))
    goals = {}
    if default_b is not None:
        goals["compile_s"] = default_b["sweeps"]["compile_s"]
        goals["compile_ok"] = goals["compile_s"] < GOAL_COMPILE_S
        recompiles = (
            default_b["sweeps"]["backend_compiles_after_first"]
            + default_b["direct_sweeps"]["backend_compiles_after_first"]
        )
        goals["recompiles_after_first_sweep"] = recompiles
        goals["refit_backend_compiles"] = default_b["refit_compiles"]["n_backend_compiles"]
        goals["no_recompile_ok"] = recompiles == 0
        if default_k is not None:
            goals["speedup"] = _steady(default_k) / _steady(default_b)
            goals["speedup_ok"] = goals["speedup"] >= GOAL_SPEEDUP
    return dict(gibbs_ratios=ratios, em_ratios=em_ratios, goals=goals)


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------


def _f(x, digits=3):
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def _ms(x):
    return "—" if x is None else f"{1e3 * x:.1f}"


GIBBS_COLUMNS = (
    "library",
    "dtype",
    "s/sweep (IQR)",
    "CPU s/sweep",
    "compile s",
    "JAX compile s (init / sweep 1)",
    "first sample s",
    "XLA compiles after sweep 1",
    "states used / median duration (frames)",
    "load before → after",
)
RATIO_COLUMNS = (
    "keypoint-moseq",
    "behavhmm",
    "s/sweep",
    "CPU s/sweep",
    "vs behavhmm's compiled sweep alone",
    "time to first sample",
)
EM_COLUMNS = (
    "library",
    "K",
    "s/iteration (IQR)",
    "CPU s/iteration",
    "compile s",
    "iterations",
    "fit_em total s",
    "log-likelihood finite",
    "load before → after",
)


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _load(r) -> str:
    return f"{r['loadavg_before'][0]} → {r['loadavg_after'][0]}"


def _gibbs_row(r) -> str:
    """One row of the Gibbs table (or the failure of a run)."""
    if r.get("failed"):
        why = "; ".join(r["warnings"]) or "no sweep completed"
        failed = f"failed after {r['completed_sweeps']} sweep(s): {why}"
        blank = [""] * (len(GIBBS_COLUMNS) - 4)
        return _row(f"{r['library']} {r['version']}", r["dtype"], failed, *blank, _load(r))
    sw = r["sweeps"]
    init_c = r["init_compiles"]["trace_lower_compile_s"]
    after = sw["backend_compiles_after_first"]
    if r["library"] == "behavhmm":
        direct = r["direct_sweeps"]["backend_compiles_after_first"]
        refit = r["refit_compiles"]["n_backend_compiles"]
        after = f"{after} (+{direct} in the direct loop, {refit} in a refit)"
    chain = r["chain"]
    return _row(
        f"{r['library']} {r['version']}",
        r["dtype"],
        f"{_f(_steady(r))} ({_f(sw['steady_q25_s'])}–{_f(sw['steady_q75_s'])})",
        _f(sw["steady_cpu_median_s"]),
        _f(sw["compile_s"], 1),
        f"{_f(init_c, 1)} / {_f(sw['first_call_jax_compile_s'], 1)}",
        _f(r["time_to_first_sample_s"], 1),
        str(after),
        f"{chain['used_states']} / {chain['median_duration_frames']:g}",
        _load(r),
    )


def render_markdown(result) -> str:
    m, d, s = result["machine"], result["data"], result["summary"]
    cfg = result["config"]
    md = [
        "# ARHMM benchmark: behavhmm vs keypoint-moseq (Gibbs) and dynamax (EM)",
        "",
        f"Command: `{result['command']}` (total {result['total_s']:.0f} s).",
        "",
        "## Machine",
        "",
        hk.machine_markdown(m),
        f"- keypoint-moseq environment: Python {m.get('kpms_python', '—')}; "
        + ", ".join(
            f"{k.replace(' (kpms env)', '')} {v}"
            for k, v in m["versions"].items()
            if k.endswith("(kpms env)")
        ),
        f"- 1-minute load average (1, 5, 15 min): {result['loadavg_start']} at the start, "
        f"{result['loadavg_end']} at the end; per process below. The benchmark itself accounts "
        "for about 1 on these 2 cores; more means other work shared the machine.",
        "",
        "## Data",
        "",
        f"DeepLabCut golden mouse (`{Path(d['file']).name}`), {d['n_frames']:,} frames at 30 fps, "
        f"{d['n_keypoints']} keypoints ({', '.join(d['bodyparts'])}). Points with likelihood below "
        f"the project's pcutoff {d['pcutoff']} "
        f"({100 * d['low_confidence_fraction']:.1f} % of them) "
        "were set missing and filled by `behavhmm.preprocessing.interpolate_nans`; "
        f"`egocentric_align` (anterior `{ANTERIOR}`, posterior `{POSTERIOR}`); "
        "`fit_pca` (scikit-learn) "
        f"to {d['n_pcs']} PCs ({100 * d['explained_variance']:.1f} % of the variance), in pixels. "
        "One `.npz` of these PCs is the input of every library.",
        "",
        f"## Gibbs sampling: K = {N_STATES}, nlags = {NLAGS}",
        "",
        "Seconds per sweep: median over the sweeps after the first "
        f"({cfg['sweeps'] - 1} of {cfg['sweeps']}), wall clock, with the interquartile range; "
        "CPU = process CPU seconds per sweep (less sensitive to other load). "
        "compile = first sweep − median sweep. "
        "JAX compile = tracing + lowering + XLA compilation reported by `jax.monitoring` "
        "(init: before the first sweep, e.g. keypoint-moseq compiles its state sampler while "
        "initialising; sweep 1: inside the first sweep). First sample = everything from the "
        "start of the fit to the end of the first sweep (initialisation included).",
        "",
        _row(*GIBBS_COLUMNS),
        _row(*["---"] * len(GIBBS_COLUMNS)),
    ]
    md += [_gibbs_row(r) for r in result["gibbs"]]
    b_rows = [r for r in result["gibbs"] if r["library"] == "behavhmm"]
    if b_rows:
        md += [
            "",
            "behavhmm's compiled sweep alone (`_ar_programs.gibbs_sweep` called in a loop, "
            "no Python "
            "bookkeeping of `fit`): "
            + "; ".join(
                f"{r['dtype']} {_f(r['direct_sweeps']['steady_median_s'])} s/sweep "
                f"(CPU {_f(r['direct_sweeps']['steady_cpu_median_s'])})"
                for r in b_rows
            )
            + ". The initialisation of `fit` (k-means on 100 clusters, MNIW fits) took "
            + "; ".join(f"{r['dtype']} {_f(r['init_s'], 1)} s" for r in b_rows)
            + ".",
        ]
    if s["gibbs_ratios"]:
        md += [
            "",
            "Ratios peer / behavhmm (above 1: behavhmm is faster):",
            "",
            _row(*RATIO_COLUMNS),
            _row(*["---"] * len(RATIO_COLUMNS)),
        ]
        for q in s["gibbs_ratios"]:
            ratios = (
                q[k]
                for k in (
                    "sweep_ratio",
                    "sweep_cpu_ratio",
                    "direct_sweep_ratio",
                    "first_sample_ratio",
                )
            )
            md.append(_row(q["peer"], q["behavhmm"], *(f"{x:.1f}×" for x in ratios)))
    if result["em"]:
        md += [
            "",
            f"## EM: seconds per iteration, nlags = {NLAGS}, float32",
            "",
            "One iteration = E-step (forward-backward) + M-step. "
            'behavhmm: `ARHMM(algorithm="em")`, '
            "each `em_step` of `fit` timed; dynamax: `LinearAutoregressiveHMM` (k-means "
            "initialisation), its `e_step`, `log_prior` and `m_step` as one jitted program per "
            "iteration (what its `fit_em` scans). Median over the iterations after the first; "
            "compile = first − median. `fit_em` total = dynamax's own `fit_em(num_iters)` call, "
            "compilation included.",
            "",
            _row(*EM_COLUMNS),
            _row(*["---"] * len(EM_COLUMNS)),
        ]
        for r in result["em"]:
            for run in r["runs"]:
                it = run["iterations"]
                md.append(
                    _row(
                        f"{r['library']} {r['version']}",
                        str(run["n_states"]),
                        f"{_f(it['steady_median_s'], 4)} "
                        f"({_f(it['steady_q25_s'], 4)}–{_f(it['steady_q75_s'], 4)})",
                        _f(it["steady_cpu_median_s"], 4),
                        _f(it["compile_s"], 1),
                        str(it["n_calls"]),
                        _f(run.get("fit_em_total_s"), 1),
                        "yes" if run["finite"] else "**no (NaN)**",
                        _load(r),
                    )
                )
        for r in result["em"]:
            for run in r["runs"]:
                hist = run.get("log_prob_history", run.get("log_likelihood_history", []))
                bad = [i for i, v in enumerate(hist) if not np.isfinite(v)]
                if bad:
                    md += [
                        "",
                        f"{r['library']} at K = {run['n_states']}: the log-likelihood is "
                        f"non-finite from iteration {bad[0] + 1} on; its later iterations "
                        "compute on NaN "
                        "parameters (their timing is kept, but may not be representative).",
                    ]
        if s["em_ratios"]:
            md += [
                "",
                "Ratio dynamax / behavhmm per EM iteration: "
                + "; ".join(
                    f"K = {q['n_states']}: {q['iteration_ratio']:.1f}× (CPU {q['cpu_ratio']:.1f}×)"
                    for q in s["em_ratios"]
                )
                + ".",
            ]
    g = s["goals"]
    if g:
        md += ["", "## Goals of issue 3", ""]
        if "speedup" in g:
            md.append(
                f"- ≥ {GOAL_SPEEDUP:g}× faster per sweep than keypoint-moseq "
                "(both at their defaults: "
                f"behavhmm float32, keypoint-moseq float64): **{g['speedup']:.1f}×** — "
                + ("met" if g["speedup_ok"] else "**not met**")
            )
        md.append(
            f"- compile < {GOAL_COMPILE_S:g} s (behavhmm float32, first sweep − median): "
            f"**{g['compile_s']:.1f} s** — " + ("met" if g["compile_ok"] else "**not met**")
        )
        md.append(
            "- no recompilation after the first sweep: "
            f"**{g['recompiles_after_first_sweep']}** XLA compilations in later sweeps, "
            f"{g['refit_backend_compiles']} in a second fit with the same "
            "shapes — " + ("met" if g["no_recompile_ok"] else "**not met**")
        )
    md += ["", METHOD_NOTES, ""]
    return "\n".join(md)


METHOD_NOTES = """\
## How it was measured

- Every library runs in its own process, started by the driver in one run; behavhmm from a
  snapshot of `src/behavhmm` copied at the start (hash above), keypoint-moseq with the Python
  of `benchmarks/.envs/kpms` (installed from PyPI there; it turns on `jax_enable_x64` when
  imported, so its default is float64; its float32 row switches that off again after import).
- behavhmm Gibbs: `ARHMM(n_states=100, nlags=3, algorithm="gibbs", random_state=0)` with its
  defaults (alpha 5.7, gamma 1000, kappa 1e6, S_0 = 0.01 I, K_0 = 10 I, nu_0 = D + 2,
  k-means initialisation). `fit(X)` runs all sweeps with diagnostics only after the last one;
  each call of the compiled sweep (`_ar_programs.gibbs_sweep`) inside `fit` is timed (up to
  `jax.block_until_ready`), with the `jax.monitoring` compile events it triggered. Then the
  same compiled program is called again in a loop from the final state, and a second
  `fit` with the same shapes counts every XLA compilation (there must be none).
- keypoint-moseq: the AR-HMM hyperparameters of a fresh project (`setup_project`,
  `load_config`: the same alpha, gamma, kappa, S_0, K_0 as behavhmm) with num_states = 100,
  latent_dim = 10, nlags = 3; `jax_moseq.models.arhmm.init_model` on the PCs
  (`x` of shape (1, T, 10), all-ones mask), then
  `keypoint_moseq.fit_model(model, data, metadata, ar_only=True, save_every_n_iters=None,
  generate_progress_plots=False)`. A sweep is one iteration of `fit_model`
  (`resample_model(ar_only=True)` and keypoint-moseq's NaN check), timed like behavhmm's.
- States used / median duration: from the chain's final sample of the states.
- The two samplers use different random streams and initialisations, so their chains
  differ; the column shows they do comparable work (no library is stuck in a few states).
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="8 sweeps, 4 EM iterations, K=10 EM only; writes nothing unless --out-prefix",
    )
    p.add_argument("--sweeps", type=int, default=None, help="Gibbs sweeps per library (default 25)")
    p.add_argument(
        "--em-iters", type=int, default=None, help="EM iterations per library and K (default 15)"
    )
    p.add_argument(
        "--em-states",
        type=int,
        nargs="+",
        default=None,
        help=f"K of the EM comparison (default {EM_STATES})",
    )
    p.add_argument(
        "--gibbs-dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"]
    )
    p.add_argument(
        "--kpms-dtypes",
        nargs="+",
        default=["float64"],
        choices=["float32", "float64"],
        help="keypoint-moseq runs in float64 by default; float32 stops with NaN on these data",
    )
    p.add_argument(
        "--kpms-python",
        default=str(DEFAULT_KPMS_PYTHON),
        help="Python of the keypoint-moseq environment",
    )
    p.add_argument("--skip-kpms", action="store_true")
    p.add_argument("--skip-em", action="store_true")
    p.add_argument(
        "--keep-data",
        default=None,
        help="write the preprocessed PCs (.npz) here instead of a temporary file",
    )
    p.add_argument("--out-prefix", default=None, help="write PREFIX.md and PREFIX.json")
    p.add_argument(
        "--render", default=None, help="rewrite the markdown report from this JSON and exit"
    )
    # internal: one worker in this process
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sweeps is None:
        args.sweeps = 8 if args.quick else 25
    if args.em_iters is None:
        args.em_iters = 4 if args.quick else 15
    if args.em_states is None:
        args.em_states = (10,) if args.quick else EM_STATES
    if args.sweeps < 3 or args.em_iters < 3:
        p.error("--sweeps and --em-iters must be at least 3 (a first call and a steady state)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        result = json.loads(Path(args.render).read_text())
        out = Path(args.render).with_suffix(".md")
        out.write_text(render_markdown(result))
        log(f"wrote {out}")
        return
    if args.worker:
        res = WORKERS[args.worker](args)
        Path(args.json_out).write_text(json.dumps(res, default=hk._json_default))
        return
    command = shlex.join(
        ["python", "benchmarks/bench_arhmm.py", *(argv if argv is not None else sys.argv[1:])]
    )
    result = run_driver(args, command)
    print(render_markdown(result))
    out_prefix = args.out_prefix or (None if args.quick else DEFAULT_OUT_PREFIX)
    if out_prefix:
        md_path, json_path = hk.write_outputs(result, Path(out_prefix), render=render_markdown)
        log(f"wrote {md_path} and {json_path}")


if __name__ == "__main__":
    main()
