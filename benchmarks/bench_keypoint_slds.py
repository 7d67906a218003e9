"""Side-by-side KeypointSLDS benchmark: behavhmm vs keypoint-moseq's full model.

On the real DeepLabCut golden-mouse recording (4,860 frames, the 16 keypoints
of ``bench_arhmm.py``; points below the project's pcutoff interpolated, the
DLC likelihoods kept as confidences), saved once as an ``.npz`` that every
process reads:

- behavhmm ``KeypointSLDS(n_states=100, latent_dim=10, nlags=3)`` in float32
  (its default) and float64: an AR-only stage, then full-model Gibbs sweeps
  (each call of the compiled ``slds_sweep`` timed), then ``decode`` twice;
- keypoint-moseq (its own virtual environment, float64 as it sets when
  imported): ``format_data``, ``fit_pca``, ``init_model``, ``fit_model(...,
  ar_only=True)``, then ``fit_model(..., ar_only=False)`` from there (its
  documented workflow), each iteration timed, then ``apply_model`` on the
  same recording;
- behavhmm's memory at 1x, 4x and 16x the recording (tiled as separate
  sessions), with and without ``block_size``.

Every configuration runs in its own process, so compile times start from
nothing and peak RSS (``ru_maxrss``) is per library. See
``benchmarks/README.md`` for what is measured.

Usage
-----
Full run (writes ``benchmarks/results/keypoint_slds.{md,json}``; about 4 minutes
on 2 cores)::

    /work/venv/bin/python benchmarks/bench_keypoint_slds.py

Quick self-test (few sweeps, no 16x tiling; writes nothing unless
``--out-prefix`` is given)::

    /work/venv/bin/python benchmarks/bench_keypoint_slds.py --quick
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_arhmm as ba  # noqa: E402  (data, bodyparts, timers, compile log)
import bench_hmm_kernels as hk  # noqa: E402  (machine description, snapshot, JSON helpers)

DEFAULT_OUT_PREFIX = HERE / "results" / "keypoint_slds"
N_STATES, LATENT_DIM, NLAGS, SEED = 100, 10, 3, 0
BLOCK_SIZE = 1024
GOAL_SPEEDUP = 3.0
GOAL_MEMORY_FRACTION = 0.5
GOAL_COMPILE_S = 20.0
log, loadavg = ba.log, ba.loadavg


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------


def prepare_data(path: Path) -> dict:
    """Golden-mouse keypoints (16 bodyparts), points below pcutoff interpolated; confidences."""
    from behavhmm.io import load_keypoints
    from behavhmm.preprocessing import interpolate_nans

    sessions = load_keypoints(ba.DATA_DIR / ba.DLC_FILE, "deeplabcut", bodyparts=list(ba.BODYPARTS))
    coords = np.array(sessions.coordinates, dtype=float)
    conf = np.asarray(sessions.confidence, dtype=float)
    low = conf < ba.PCUTOFF
    coords[low] = np.nan
    coords = interpolate_nans(coords, sessions.session_starts)
    if not np.all(np.isfinite(coords)):
        raise SystemExit("the interpolated keypoints hold non-finite values")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, coords=coords, conf=conf)
    return dict(
        file=str(ba.DATA_DIR / ba.DLC_FILE),
        n_frames=int(coords.shape[0]),
        n_keypoints=len(ba.BODYPARTS),
        bodyparts=list(ba.BODYPARTS),
        low_confidence_fraction=float(low.mean()),
        pcutoff=ba.PCUTOFF,
        npz=str(path),
    )


def load_keypoints_npz(path, tile: int = 1):
    with np.load(path) as f:
        coords, conf = np.asarray(f["coords"]), np.asarray(f["conf"])
    n = coords.shape[0]
    return np.tile(coords, (tile, 1, 1)), np.tile(conf, (tile, 1)), np.arange(tile) * n


# ----------------------------------------------------------------------------
# workers
# ----------------------------------------------------------------------------


def worker_behavhmm(args) -> dict:
    """behavhmm KeypointSLDS: AR-only stage, full sweeps (each timed), decode twice."""
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    clog = ba.CompileLog()
    import behavhmm
    import behavhmm.models.keypoint_slds.estimator as kpslds

    X, conf, starts = load_keypoints_npz(args.data, args.tile)
    sweep = ba.CallTimer(kpslds.slds_sweep, clog, jax.block_until_ready)
    ar_sweep = ba.CallTimer(kpslds.gibbs_sweep, clog, jax.block_until_ready)
    kpslds.slds_sweep, kpslds.gibbs_sweep = (
        sweep,
        ar_sweep,
    )  # the estimator looks them up in its module
    model = behavhmm.KeypointSLDS(
        n_states=N_STATES,
        latent_dim=LATENT_DIM,
        nlags=NLAGS,
        n_iter_ar=args.ar_iters,
        n_iter=args.sweeps,
        check_every=args.sweeps,
        block_size=args.block_size,
        anterior_bodyparts=ba.BODYPARTS.index(ba.ANTERIOR),
        posterior_bodyparts=ba.BODYPARTS.index(ba.POSTERIOR),
        progress_bar=False,
        random_state=SEED,
    )
    rss_start = peak_rss_mib()
    mark = clog.mark()
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, confidence=conf, session_starts=starts)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    fit_compiles = clog.since(mark)
    rss_fit = peak_rss_mib()
    out = dict(
        library="behavhmm",
        version=behavhmm.__version__,
        package_dir=str(Path(behavhmm.__file__).resolve().parent),
        dtype=args.dtype,
        tile=args.tile,
        n_frames=int(X.shape[0]),
        block_size=args.block_size,
        fit_s=fit_s,
        fit_cpu_s=fit_cpu_s,
        init_s=ar_sweep.first_start - t0 if ar_sweep.calls else None,
        ar_stage_s=(sweep.first_start - ar_sweep.first_start) if ar_sweep.calls else None,
        time_to_first_full_sample_s=sweep.first_start - t0 + sweep.calls[0]["wall_s"],
        fit_compiles=fit_compiles,
        ar_sweeps=ba.summarise_calls(ar_sweep.calls),
        sweeps=ba.summarise_calls(sweep.calls),
        per_call_compiles=[c["n_backend_compiles"] for c in sweep.calls],
        finite=bool(np.all(np.isfinite(model.log_likelihood_history_))),
        chain=ba.chain_summary(model.states_[model.states_ >= 0]),
        peak_rss_start_mib=rss_start,
        peak_rss_fit_mib=rss_fit,
    )
    kpslds.slds_sweep, kpslds.gibbs_sweep = sweep.fn, ar_sweep.fn
    if args.decode:
        decodes = []
        for _ in range(2):
            mark = clog.mark()
            t0, c0 = time.perf_counter(), time.process_time()
            dec = model.decode(X, confidence=conf, session_starts=starts)
            decodes.append(
                dict(
                    wall_s=time.perf_counter() - t0,
                    cpu_s=time.process_time() - c0,
                    **clog.since(mark),
                )
            )
        out.update(decode=decodes, decode_finite=bool(np.isfinite(dec.log_likelihood)))
    if args.decode:  # a second fit with the same shapes must compile nothing
        mark = clog.mark()
        t0 = time.perf_counter()
        model.set_params(n_iter_ar=1, n_iter=2).fit(X, confidence=conf, session_starts=starts)
        out.update(refit_s=time.perf_counter() - t0, refit_compiles=clog.since(mark))
    out["peak_rss_end_mib"] = peak_rss_mib()
    return out


def _kpms_versions() -> dict:
    from importlib import metadata as md

    versions = {}
    for pkg in ("keypoint-moseq", "jax-moseq", "jax", "jaxlib", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return versions


def worker_kpms(args) -> dict:
    """keypoint-moseq: AR-only stage, full model (its documented workflow), apply_model."""
    import jax

    clog = ba.CompileLog()
    t_import = time.perf_counter()
    import keypoint_moseq as kpms
    import keypoint_moseq.fitting as kfit

    import_s = time.perf_counter() - t_import
    x64 = bool(jax.config.jax_enable_x64)
    X, conf, _ = load_keypoints_npz(args.data)
    rss_start = peak_rss_mib()
    caught_all = []
    with tempfile.TemporaryDirectory(prefix="kpms_project_") as tmp:
        project = str(Path(tmp) / "project")
        kpms.setup_project(project, bodyparts=list(ba.BODYPARTS), skeleton=[], video_dir=tmp)
        kpms.update_config(
            project,
            use_bodyparts=list(ba.BODYPARTS),
            anterior_bodyparts=[ba.ANTERIOR],
            posterior_bodyparts=[ba.POSTERIOR],
            latent_dim=LATENT_DIM,
        )
        config = kpms.load_config(project)
        config["trans_hypparams"]["num_states"] = N_STATES
        config["ar_hypparams"]["nlags"] = NLAGS
        config["ar_hypparams"]["latent_dim"] = LATENT_DIM
        mark = clog.mark()
        t0, c0 = time.perf_counter(), time.process_time()
        data, metadata = kpms.format_data({"golden_mouse": X}, {"golden_mouse": conf}, **config)
        pca = kpms.fit_pca(**data, **config)
        model = kpms.init_model(data, pca=pca, **config)
        model = jax.block_until_ready(model)
        init_s, init_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        init_compiles = clog.since(mark)
        fit_kw = dict(save_every_n_iters=None, generate_progress_plots=False, verbose=False)
        stages = {}
        # fit_model runs iterations start_iter..num_iters inclusive
        for stage, ar_only, start, stop in (
            ("ar", True, 0, args.ar_iters - 1),
            ("full", False, args.ar_iters, args.ar_iters + args.sweeps - 1),
        ):
            timer = ba.CallTimer(kfit._wrapped_resample, clog, jax.block_until_ready)
            kfit._wrapped_resample = timer
            mark = clog.mark()
            t0, c0 = time.perf_counter(), time.process_time()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model, _ = kpms.fit_model(
                    model,
                    data,
                    metadata,
                    ar_only=ar_only,
                    start_iter=start,
                    num_iters=stop,
                    **fit_kw,
                )
            stages[stage] = dict(
                fit_s=time.perf_counter() - t0,
                fit_cpu_s=time.process_time() - c0,
                fit_compiles=clog.since(mark),
                iterations=ba.summarise_calls(timer.calls),
                per_call_compiles=[c["n_backend_compiles"] for c in timer.calls],
                first_start_offset_s=timer.first_start - t0 if timer.calls else None,
                peak_rss_mib=peak_rss_mib(),
            )
            caught_all += caught
            kfit._wrapped_resample = timer.fn
        rss_fit = peak_rss_mib()
        finite = all(np.all(np.isfinite(np.asarray(v))) for v in model["params"].values())
        # apply_model: keypoint-moseq's way of labelling (new) data with a fitted model
        apply = []
        # its documented call passes the project's config along (noise model, alignment)
        apply_kw = dict(config, num_iters=args.apply_iters, save_results=False, overwrite=True)
        for _ in range(args.apply_runs):
            mark = clog.mark()
            t0, c0 = time.perf_counter(), time.process_time()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                kpms.apply_model(model, data, metadata, project, **apply_kw)
            caught_all += caught
            apply.append(
                dict(
                    wall_s=time.perf_counter() - t0,
                    cpu_s=time.process_time() - c0,
                    **clog.since(mark),
                )
            )
    full = stages["full"]["iterations"]
    messages = sorted({" ".join(str(w.message).split())[:300] for w in caught_all})
    return dict(
        library="keypoint-moseq",
        version=_kpms_versions()["keypoint-moseq"],
        versions=_kpms_versions(),
        python=sys.version.split()[0],
        dtype="float64" if x64 else "float32",
        tile=1,
        n_frames=int(X.shape[0]),
        hypparams=dict(
            trans_hypparams=config["trans_hypparams"],
            ar_hypparams=config["ar_hypparams"],
            obs_hypparams=config.get("obs_hypparams"),
            cen_hypparams=config.get("cen_hypparams"),
        ),
        import_s=import_s,
        init_s=init_s,
        init_cpu_s=init_cpu_s,
        init_compiles=init_compiles,
        ar_stage=stages["ar"],
        full_stage=stages["full"],
        sweeps=full,
        per_call_compiles=stages["full"]["per_call_compiles"],
        time_to_first_full_sample_s=init_s
        + stages["ar"]["fit_s"]
        + stages["full"]["first_start_offset_s"]
        + full["wall_s"][0],
        finite=bool(finite),
        chain=ba.chain_summary(np.asarray(model["states"]["z"])),
        apply=apply,
        apply_iters=args.apply_iters,
        peak_rss_start_mib=rss_start,
        peak_rss_fit_mib=rss_fit,
        peak_rss_end_mib=peak_rss_mib(),
        warnings=messages,
    )


WORKERS = {"behavhmm": worker_behavhmm, "kpms": worker_kpms}


# ----------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------


def run_worker_process(
    kind,
    args,
    data_path,
    tmp,
    python,
    env,
    *,
    dtype="float32",
    tile=1,
    block_size=None,
    sweeps=None,
    ar_iters=None,
    decode=True,
):
    name = f"{kind}_{dtype}_x{tile}_b{block_size}"
    json_out = Path(tmp) / f"{name}.json"
    argv = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--data",
        str(data_path),
        "--dtype",
        dtype,
        "--tile",
        str(tile),
        "--sweeps",
        str(sweeps or args.sweeps),
        "--ar-iters",
        str(ar_iters or args.ar_iters),
        "--apply-iters",
        str(args.apply_iters),
        "--apply-runs",
        str(args.apply_runs),
        "--json-out",
        str(json_out),
    ]
    if block_size:
        argv += ["--block-size", str(block_size)]
    if decode:
        argv += ["--decode"]
    return ba.launch_worker(argv, env, tmp, json_out, name)


def run_driver(args, command):
    t_start = time.perf_counter()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_kpslds_") as tmp:
        env, snapshot_utc = hk.snapshot_behavhmm(Path(tmp))
        sys.path.insert(0, str(Path(tmp) / "snapshot"))
        data_path = (
            Path(args.keep_data) if args.keep_data else Path(tmp) / "golden_mouse_keypoints.npz"
        )
        log("[driver] preparing the golden-mouse keypoints")
        data = prepare_data(data_path)
        runs = {"main": [], "memory": []}
        for dtype in args.dtypes:
            runs["main"].append(
                run_worker_process(
                    "behavhmm", args, data_path, tmp, sys.executable, env, dtype=dtype
                )
            )
        if not args.skip_kpms:
            runs["main"].append(
                run_worker_process(
                    "kpms", args, data_path, tmp, args.kpms_python, env, dtype="float64"
                )
            )
        for tile in args.tiles:
            for block in (None, BLOCK_SIZE):
                if tile == 1 and block is None and "float32" in args.dtypes:
                    continue  # the float32 row of the main table
                runs["memory"].append(
                    run_worker_process(
                        "behavhmm",
                        args,
                        data_path,
                        tmp,
                        sys.executable,
                        env,
                        tile=tile,
                        block_size=block,
                        sweeps=args.memory_sweeps,
                        ar_iters=1,
                        decode=False,
                    )
                )
        source = hk.behavhmm_source()
        sys.path.remove(str(Path(tmp) / "snapshot"))
    source["snapshot_utc"] = snapshot_utc
    machine = hk.machine_description(source)
    kp = next((r for r in runs["main"] if r["library"] == "keypoint-moseq"), None)
    if kp is not None:
        machine["versions"].update({f"{k} (kpms env)": v for k, v in kp["versions"].items()})
        machine["kpms_python"] = kp["python"]
    result = dict(
        command=command,
        machine=machine,
        config=dict(
            quick=args.quick,
            sweeps=args.sweeps,
            ar_iters=args.ar_iters,
            memory_sweeps=args.memory_sweeps,
            apply_iters=args.apply_iters,
            apply_runs=args.apply_runs,
            n_states=N_STATES,
            latent_dim=LATENT_DIM,
            nlags=NLAGS,
            seed=SEED,
            dtypes=list(args.dtypes),
            tiles=list(args.tiles),
            block_size=BLOCK_SIZE,
        ),
        data=data,
        loadavg_start=load_start,
        loadavg_end=loadavg(),
        total_s=time.perf_counter() - t_start,
        **runs,
    )
    result["summary"] = summarise(result)
    return result


def _steady(r, cpu=False):
    return r["sweeps"]["steady_cpu_median_s" if cpu else "steady_median_s"]


def compile_free_median(r) -> float | None:
    """Median wall seconds of the sweeps after the first that compiled nothing."""
    clean = [
        w
        for w, c in zip(r["sweeps"]["wall_s"][1:], r["per_call_compiles"][1:], strict=True)
        if c == 0
    ]
    return float(np.median(clean)) if clean else None


def total_compile_s(r) -> float:
    """First sweep minus the compile-free median, plus :func:`later_compile_s`."""
    ref = compile_free_median(r) or _steady(r)
    return r["sweeps"]["wall_s"][0] - ref + later_compile_s(r)


def later_compile_s(r) -> float:
    """Seconds above the compile-free median spent in later sweeps that compiled something."""
    ref = compile_free_median(r) or _steady(r)
    walls, counts = r["sweeps"]["wall_s"][1:], r["per_call_compiles"][1:]
    return float(sum(w - ref for w, c in zip(walls, counts, strict=True) if c > 0))


def memory_rows(result) -> list[dict]:
    """Peak RSS after the fit for every (tile, block_size), float32."""
    rows = [r for r in result["main"] if r["library"] == "behavhmm" and r["dtype"] == "float32"]
    rows += result["memory"]
    return sorted(
        (
            {
                "tile": r["tile"],
                "n_frames": r["n_frames"],
                "block_size": r["block_size"],
                "peak_rss_fit_mib": r["peak_rss_fit_mib"],
                "sweep_s": _steady(r),
                "sweep_cpu_s": _steady(r, True),
                "first_sweep_s": r["sweeps"]["first_s"],
                "loadavg": [r["loadavg_before"][0], r["loadavg_after"][0]],
            }
            for r in rows
        ),
        key=lambda q: (q["block_size"] is not None, q["tile"]),
    )


def memory_growth(rows) -> list[dict]:
    """Least-squares line of peak RSS against frames per block_size (MiB per 100 frames)."""
    out = []
    for block in sorted({q["block_size"] or 0 for q in rows}):
        sel = [q for q in rows if (q["block_size"] or 0) == block]
        if len(sel) < 2:
            continue
        t = np.array([q["n_frames"] for q in sel], float)
        m = np.array([q["peak_rss_fit_mib"] for q in sel], float)
        slope, intercept = np.polyfit(t, m, 1)
        out.append(
            dict(
                block_size=block or None,
                mib_per_100_frames=100 * slope,
                intercept_mib=intercept,
                max_abs_residual_mib=float(np.max(np.abs(m - (slope * t + intercept)))),
            )
        )
    return out


def summarise(result) -> dict:
    main = {(r["library"], r["dtype"]): r for r in result["main"]}
    kp = main.get(("keypoint-moseq", "float64"))
    ratios = []
    for dt in ("float32", "float64"):
        b = main.get(("behavhmm", dt))
        if b is None or kp is None:
            continue
        ratios.append(
            dict(
                behavhmm=f"behavhmm {dt}",
                sweep_ratio=_steady(kp) / _steady(b),
                sweep_cpu_ratio=_steady(kp, True) / _steady(b, True),
                compile_ratio=total_compile_s(kp) / max(total_compile_s(b), 1e-9),
                memory_ratio_fit=kp["peak_rss_fit_mib"] / b["peak_rss_fit_mib"],
                memory_ratio_end=kp["peak_rss_end_mib"] / b["peak_rss_end_mib"],
                first_sample_ratio=kp["time_to_first_full_sample_s"]
                / b["time_to_first_full_sample_s"],
                compile_free_sweep_ratio=(compile_free_median(kp) or np.nan)
                / (compile_free_median(b) or np.nan),
            )
        )
    goals = {}
    b = main.get(("behavhmm", "float32"))
    if b is not None:
        goals["compile_s"] = b["sweeps"]["compile_s"]
        goals["compile_ok"] = goals["compile_s"] < GOAL_COMPILE_S
        goals["recompiles_after_first_sweep"] = b["sweeps"]["backend_compiles_after_first"]
        goals["decode_recompiles"] = b["decode"][1]["n_backend_compiles"] if "decode" in b else None
        goals["refit_compiles"] = (
            b["refit_compiles"]["n_backend_compiles"] if "refit_compiles" in b else None
        )
        goals["no_recompile_ok"] = (
            goals["recompiles_after_first_sweep"] == 0
            and not goals["decode_recompiles"]
            and not goals["refit_compiles"]
        )
        if kp is not None:
            goals["speedup"] = _steady(kp) / _steady(b)
            goals["speedup_cpu"] = _steady(kp, True) / _steady(b, True)
            goals["speedup_ok"] = goals["speedup"] >= GOAL_SPEEDUP
            goals["memory_fraction"] = b["peak_rss_end_mib"] / kp["peak_rss_end_mib"]
            goals["memory_ok"] = goals["memory_fraction"] <= GOAL_MEMORY_FRACTION
    rows = memory_rows(result)
    return dict(ratios=ratios, goals=goals, memory=rows, memory_growth=memory_growth(rows))


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------

_f = ba._f


_load, _row = ba._load, ba._row


MAIN_COLUMNS = (
    "library",
    "dtype",
    "s/sweep (IQR)",
    "CPU s/sweep",
    "s/sweep, sweeps that compiled nothing",
    "first sweep s",
    "compile s: first − median (+ later sweeps)",
    "XLA compiles per sweep",
    "peak RSS MiB (fit / end)",
    "first full sample s",
    "labelling s (XLA compiles)",
    "states used / median duration",
    "load before → after",
)


def _compiles_per_sweep(counts) -> str:
    shown = [str(c) for c in counts[:4]]
    rest = counts[4:]
    if rest:
        shown.append(f"{sum(rest)} in the other {len(rest)}")
    return ", ".join(shown)


def render_markdown(result) -> str:
    m, d, s, cfg = result["machine"], result["data"], result["summary"], result["config"]
    md = [
        "# KeypointSLDS benchmark: behavhmm vs keypoint-moseq (full model)",
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
        f"{result['loadavg_end']} at the end; per process below. The benchmark itself accounts for "
        "about 1 "
        "on these cores; more means other work shared the machine (the CPU columns are less "
        "sensitive to it).",
        "",
        "## Data",
        "",
        f"DeepLabCut golden mouse (`{Path(d['file']).name}`), {d['n_frames']:,} frames at 30 fps, "
        f"{d['n_keypoints']} keypoints ({', '.join(d['bodyparts'])}). Points with likelihood below "
        "the "
        f"project's pcutoff {d['pcutoff']} ({100 * d['low_confidence_fraction']:.1f} %) were "
        "interpolated "
        "(`behavhmm.preprocessing.interpolate_nans`); both libraries get these coordinates in "
        "pixels and the "
        "DLC likelihoods as confidences, and do their own alignment (anterior `nose`, posterior "
        "`tail_base`) "
        f"and PCA to latent_dim = {cfg['latent_dim']}.",
        "",
        f"## Full-model Gibbs sweeps: K = {cfg['n_states']}, latent_dim = {cfg['latent_dim']}, "
        f"nlags = {cfg['nlags']}",
        "",
        f"{cfg['ar_iters']} AR-only sweeps, then {cfg['sweeps']} full-model sweeps; s/sweep = "
        "median over the "
        f"{cfg['sweeps'] - 1} full sweeps after the first (wall clock, interquartile range); CPU = "
        "process CPU "
        "seconds. compile = first full sweep − median. XLA compiles counted by `jax.monitoring`. "
        "Peak RSS = "
        "`ru_maxrss` of the library's own process after the fit and at the end (after labelling). "
        "First full "
        "sample = from the start of the fit (preprocessing, initialisation and AR-only stage "
        "included) to the "
        "end of the first full sweep. Labelling again: behavhmm `decode` (deterministic) run "
        "twice, "
        f"keypoint-moseq `apply_model(num_iters={cfg['apply_iters']})` run {cfg['apply_runs']} "
        "time(s); "
        "first call s / later call s.",
        "",
        _row(*MAIN_COLUMNS),
        _row(*["---"] * len(MAIN_COLUMNS)),
    ]
    for r in result["main"]:
        sw = r["sweeps"]
        if r["library"] == "behavhmm":
            relabel = r.get("decode", [])
        else:
            relabel = r.get("apply", [])
        relabel_s = (
            " / ".join(f"{_f(c['wall_s'], 1)} ({c['n_backend_compiles']})" for c in relabel) or "—"
        )
        md.append(
            _row(
                f"{r['library']} {r['version']}",
                r["dtype"],
                f"{_f(sw['steady_median_s'])} ({_f(sw['steady_q25_s'])}–{_f(sw['steady_q75_s'])})",
                _f(sw["steady_cpu_median_s"]),
                _f(compile_free_median(r)),
                _f(sw["first_s"], 1),
                f"{_f(sw['compile_s'], 1)} (+{_f(later_compile_s(r), 1)})",
                _compiles_per_sweep(r["per_call_compiles"]),
                f"{r['peak_rss_fit_mib']:.0f} / {r['peak_rss_end_mib']:.0f}",
                _f(r["time_to_first_full_sample_s"], 1),
                relabel_s,
                f"{r['chain']['used_states']} / {r['chain']['median_duration_frames']:g}",
                _load(r),
            )
        )
    kp = next((r for r in result["main"] if r["library"] == "keypoint-moseq"), None)
    if kp is not None:
        per = kp["sweeps"]["wall_s"]
        md += [
            "",
            "keypoint-moseq's full sweeps one by one (s): "
            + ", ".join(_f(x, 1) for x in per[:5])
            + (" …" if len(per) > 5 else "")
            + "; XLA compilations per sweep: "
            + ", ".join(str(c) for c in kp["per_call_compiles"])
            + ". Its initialisation (format_data, fit_pca, "
            f"init_model) took {_f(kp['init_s'], 1)} s "
            f"({kp['init_compiles']['n_backend_compiles']} XLA "
            f"compilations), its AR-only stage {_f(kp['ar_stage']['fit_s'], 1)} s.",
        ]
    b_rows = [r for r in result["main"] if r["library"] == "behavhmm"]
    if b_rows:
        md += [
            "",
            "behavhmm's fit before the first full sweep (scaling, alignment, PCA, k-means, AR-only "
            "stage): "
            + "; ".join(
                f"{r['dtype']} {_f(r['time_to_first_full_sample_s'] - r['sweeps']['first_s'], 1)} s"
                for r in b_rows
            )
            + ". Its log-likelihoods were finite in every sweep: "
            + ", ".join(f"{r['dtype']} {'yes' if r['finite'] else '**no**'}" for r in b_rows)
            + ".",
        ]
    if s["ratios"]:
        cols = (
            "keypoint-moseq float64 / …",
            "s/sweep",
            "CPU s/sweep",
            "s/sweep (compile-free sweeps)",
            "compile (all sweeps)",
            "peak RSS (fit)",
            "peak RSS (end)",
            "first full sample",
        )
        md += [
            "",
            "Ratios keypoint-moseq / behavhmm (above 1: behavhmm is faster or smaller):",
            "",
            _row(*cols),
            _row(*["---"] * len(cols)),
        ]
        for q in s["ratios"]:
            md.append(
                _row(
                    q["behavhmm"],
                    *(
                        f"{q[k]:.1f}×" if np.isfinite(q[k]) else "—"
                        for k in (
                            "sweep_ratio",
                            "sweep_cpu_ratio",
                            "compile_free_sweep_ratio",
                            "compile_ratio",
                            "memory_ratio_fit",
                            "memory_ratio_end",
                            "first_sample_ratio",
                        )
                    ),
                )
            )
    if s["memory"]:
        cols = (
            "copies",
            "frames",
            "block_size",
            "peak RSS MiB (fit)",
            "MiB per 100 frames (all)",
            "MiB per 100 frames above the 1x run",
            "s/sweep (CPU)",
            "first sweep s",
            "load",
        )
        md += [
            "",
            "## behavhmm memory against frames (float32)",
            "",
            f"The recording tiled 1x, 4x and 16x as separate sessions; {cfg['memory_sweeps']} full "
            "sweeps after "
            "1 AR-only sweep (the 1x row without block_size is the float32 run above). Peak RSS of "
            "each process "
            "after `fit`.",
            "",
            _row(*cols),
            _row(*["---"] * len(cols)),
        ]
        base = {q["block_size"]: q for q in s["memory"] if q["tile"] == 1}
        for q in s["memory"]:
            b1 = base.get(q["block_size"])
            extra = "—"
            if b1 is not None and q["n_frames"] > b1["n_frames"]:
                grown = q["peak_rss_fit_mib"] - b1["peak_rss_fit_mib"]
                extra = f"{100 * grown / (q['n_frames'] - b1['n_frames']):.2f}"
            md.append(
                _row(
                    f"{q['tile']}x",
                    f"{q['n_frames']:,}",
                    q["block_size"] or "— (all frames)",
                    f"{q['peak_rss_fit_mib']:.0f}",
                    f"{100 * q['peak_rss_fit_mib'] / q['n_frames']:.2f}",
                    extra,
                    f"{_f(q['sweep_s'])} ({_f(q['sweep_cpu_s'])})",
                    _f(q["first_sweep_s"], 1),
                    f"{q['loadavg'][0]} → {q['loadavg'][1]}",
                )
            )
        if s["memory_growth"]:
            md += [
                "",
                "Linear fit of peak RSS against frames: "
                + "; ".join(
                    f"block_size {g['block_size'] or '— (all frames)'}: "
                    f"{g['mib_per_100_frames']:.2f} MiB per 100 "
                    f"frames above {g['intercept_mib']:.0f} MiB (largest residual "
                    f"{g['max_abs_residual_mib']:.0f} MiB)"
                    for g in s["memory_growth"]
                )
                + ".",
            ]
    g = s["goals"]
    if g:
        md += ["", "## Goals of issue 4", ""]
        if "speedup" in g:
            md.append(
                f"- ≥ {GOAL_SPEEDUP:g}× faster per full sweep than keypoint-moseq (behavhmm "
                "float32, keypoint-moseq "
                f"float64, their defaults): **{g['speedup']:.1f}×** wall, {g['speedup_cpu']:.1f}× "
                "CPU — " + ("met" if g["speedup_ok"] else "**not met**")
            )
            md.append(
                f"- peak memory ≤ {GOAL_MEMORY_FRACTION:g} of keypoint-moseq's (whole process, "
                "end): "
                f"**{g['memory_fraction']:.2f}** — " + ("met" if g["memory_ok"] else "**not met**")
            )
        md.append(
            f"- compile < {GOAL_COMPILE_S:g} s (behavhmm float32, first full sweep − median): "
            f"**{g['compile_s']:.1f} s** — " + ("met" if g["compile_ok"] else "**not met**")
        )
        md.append(
            f"- no recompilation after the first sweep: **{g['recompiles_after_first_sweep']}** "
            "XLA "
            f"compilations in later sweeps, {g['decode_recompiles']} in a second `decode`, "
            f"{g['refit_compiles']} in a second `fit` with the same shapes — "
            + ("met" if g["no_recompile_ok"] else "**not met**")
        )
    if kp is not None and kp["warnings"]:
        md += ["", "keypoint-moseq's warnings: " + "; ".join(f"`{w}`" for w in kp["warnings"][:6])]
    md += ["", METHOD_NOTES, ""]
    return "\n".join(md)


METHOD_NOTES = """\
## How it was measured

- Every configuration runs in its own process started by the driver in one run; behavhmm from a
  snapshot of `src/behavhmm` copied at the start (hash above), keypoint-moseq with the Python of
  `benchmarks/.envs/kpms` (installed from PyPI there; it turns on `jax_enable_x64` when imported,
  so it runs in float64).
- behavhmm: `KeypointSLDS(n_states=100, latent_dim=10, nlags=3, anterior_bodyparts=nose,
  posterior_bodyparts=tail_base, random_state=0)` at its other defaults, `fit(X, confidence=...)`;
  each call of the compiled full sweep (`_slds_programs.slds_sweep`: the ARHMM sweep, then the
  continuous sweep) and of the AR-only sweep inside `fit` is timed up to `jax.block_until_ready`,
  with the `jax.monitoring` compile events it triggered. Then `decode` twice, then a second `fit`
  with the same shapes (1 AR-only and 2 full sweeps) whose XLA compilations are counted.
- keypoint-moseq: a fresh project (`setup_project`, `update_config` with the 16 bodyparts,
  anterior `nose`, posterior `tail_base`, latent_dim 10; num_states 100, nlags 3; its default
  hyperparameters otherwise), `format_data` → `fit_pca` → `init_model(data, pca=pca, **config)` →
  `fit_model(ar_only=True)` → `fit_model(ar_only=False, start_iter=...)` (no checkpoints, no
  plots) → `apply_model(..., **config, save_results=False)`. A sweep is one iteration of
  `fit_model` (its resampling step and NaN check), timed like behavhmm's.
- States used / median duration (frames): from the final sample of the states of the full model.
- The two samplers use different random streams, initialisations and noise priors, so their chains
  differ; both do the same kind of work per sweep (states, AR parameters, transitions, latent pose
  by Kalman sampling, heading, centroid, noise).
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="few sweeps, tiles 1 and 4; writes nothing unless --out-prefix",
    )
    p.add_argument(
        "--sweeps", type=int, default=None, help="full-model sweeps per library (default 20)"
    )
    p.add_argument(
        "--ar-iters", type=int, default=None, help="AR-only sweeps before them (default 3)"
    )
    p.add_argument(
        "--memory-sweeps", type=int, default=None, help="full sweeps of the tiling runs (default 3)"
    )
    p.add_argument(
        "--apply-iters", type=int, default=3, help="num_iters of keypoint-moseq's apply_model"
    )
    p.add_argument(
        "--apply-runs", type=int, default=2, help="apply_model calls (each compiles anew)"
    )
    p.add_argument(
        "--tiles",
        type=int,
        nargs="+",
        default=None,
        help="copies of the recording (default 1 4 16)",
    )
    p.add_argument(
        "--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"]
    )
    p.add_argument("--kpms-python", default=str(ba.DEFAULT_KPMS_PYTHON))
    p.add_argument("--skip-kpms", action="store_true")
    p.add_argument("--keep-data", default=None, help="write the prepared keypoints (.npz) here")
    p.add_argument("--out-prefix", default=None, help="write PREFIX.md and PREFIX.json")
    p.add_argument(
        "--render", default=None, help="rewrite the markdown report from this JSON and exit"
    )
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--block-size", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sweeps is None:
        args.sweeps = 4 if args.quick else 20
    if args.ar_iters is None:
        args.ar_iters = 2 if args.quick else 3
    if args.memory_sweeps is None:
        args.memory_sweeps = 3
    if args.tiles is None:
        args.tiles = [1, 4] if args.quick else [1, 4, 16]
    if args.sweeps < 3 or args.memory_sweeps < 2 or args.ar_iters < 1:
        p.error("--sweeps must be >= 3, --memory-sweeps >= 2 and --ar-iters >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        result = json.loads(Path(args.render).read_text())
        result["summary"] = summarise(result)
        out = Path(args.render).with_suffix(".md")
        out.write_text(render_markdown(result))
        log(f"wrote {out}")
        return
    if args.worker:
        res = WORKERS[args.worker](args)
        Path(args.json_out).write_text(json.dumps(res, default=hk._json_default))
        return
    command = shlex.join(
        [
            "python",
            "benchmarks/bench_keypoint_slds.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    result = run_driver(args, command)
    print(render_markdown(result))
    out_prefix = args.out_prefix or (None if args.quick else DEFAULT_OUT_PREFIX)
    if out_prefix:
        md_path, json_path = hk.write_outputs(result, Path(out_prefix), render=render_markdown)
        log(f"wrote {md_path} and {json_path}")


if __name__ == "__main__":
    main()
