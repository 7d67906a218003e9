"""Scale benchmark: ARHMM Gibbs and KeypointSLDS on N tiled copies of one real recording.

The golden-mouse DeepLabCut recording (4,860 frames, the 16 keypoints of
``bench_arhmm.py``) is tiled into N sessions (N = 1, 20, 200: 4,860 to
972,000 frames) and fitted with

- ``ARHMM(n_states=100, nlags=3, algorithm="gibbs")`` on its whitened
  10-dimensional PC scores (as ``bench_arhmm.py`` prepares them), and
- ``KeypointSLDS(n_states=100, latent_dim=10, nlags=3)`` on the keypoints
  with their DLC confidences (as ``bench_keypoint_slds.py`` prepares them),

in float32 (the default) and float64, each configuration in its own process:
seconds per sweep (median after the first), compile (first sweep minus the
median), the log-likelihood of every sweep (finite or not), used states at
the end, peak RSS and, on a GPU, peak device memory. A configuration that
raises is recorded with its error; one that runs out of its time is recorded
with the sweeps it finished (each worker rewrites its JSON after every sweep).

JAX runs with its default settings unless a row says otherwise: rows marked
``precision=highest`` set ``JAX_DEFAULT_MATMUL_PRECISION=highest`` (on recent
NVIDIA GPUs float32 matmuls default to TF32).

Usage
-----
Full CPU run (writes ``benchmarks/results/scale_cpu.{md,json}``)::

    python benchmarks/bench_scale.py

Prepare the inputs once (the recording is LGPL and stays out of the
repository; a device machine gets these files carried in an ignored folder)::

    python benchmarks/bench_scale.py --prepare-only .benchdata

Device run from prepared inputs, within a time budget (rows are run in
priority order; the last may be cut short)::

    python benchmarks/bench_scale.py --data-dir .benchdata --budget-s 420 \\
        --precision-variants --out-prefix benchmarks/results/scale_gpu

Quick self-test (N = 1 and 2, few sweeps; writes nothing unless
``--out-prefix`` is given)::

    python benchmarks/bench_scale.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_arhmm as ba  # noqa: E402  (data, timers, compile log, chain summary)
import bench_hmm_kernels as hk  # noqa: E402  (machine description, snapshot, JSON helpers)
import bench_keypoint_slds as bk  # noqa: E402  (keypoints + confidences)

DEFAULT_OUT_PREFIX = HERE / "results" / "scale_cpu"
PCS_FILE, KP_FILE = "golden_mouse_pcs.npz", "golden_mouse_keypoints.npz"
N_STATES, NLAGS, LATENT_DIM, SEED = 100, 3, 10, 0
log, loadavg = ba.log, ba.loadavg


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_memory() -> dict:
    """Peak and current bytes of the first device (None on backends that do not report them)."""
    import jax

    dev = jax.local_devices()[0]
    try:
        stats = dev.memory_stats() or {}
    except Exception:  # noqa: BLE001  (backends without allocator statistics)
        stats = {}
    mib = 1024**2
    return dict(
        platform=dev.platform,
        device_kind=getattr(dev, "device_kind", None),
        peak_mib=stats.get("peak_bytes_in_use", 0) / mib if stats else None,
        in_use_mib=stats.get("bytes_in_use", 0) / mib if stats else None,
        limit_mib=stats.get("bytes_limit", 0) / mib if stats else None,
    )


# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------


def prepare_inputs(out_dir: Path) -> dict:
    """Write the PC scores and the keypoints of the golden mouse into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pcs = ba.prepare_data(out_dir / PCS_FILE)
    kps = bk.prepare_data(out_dir / KP_FILE)
    return dict(pcs=pcs, keypoints=kps)


# ----------------------------------------------------------------------------
# workers
# ----------------------------------------------------------------------------


class SweepTimer(ba.CallTimer):
    """Times every sweep, keeps its log-likelihood and rewrites the worker's JSON."""

    def __init__(self, fn, clog, block, record: dict, json_out: Path):
        super().__init__(fn, clog, block)
        self.record, self.json_out = record, json_out
        self.log_likelihoods: list[float] = []

    def __call__(self, *args, **kwargs):
        out = super().__call__(*args, **kwargs)
        self.log_likelihoods.append(float(out[1]))
        self.record.update(
            sweeps=ba.summarise_calls(self.calls),
            sweep_log_likelihoods=self.log_likelihoods,
            elapsed_s=time.perf_counter() - self.record["t_start"],
        )
        write_json(self.record, self.json_out)
        return out


def write_json(record: dict, path: Path) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(record, default=hk._json_default))
    os.replace(tmp, path)


def _used(states, mask) -> dict:
    z = np.asarray(states)[np.asarray(mask)]
    return ba.chain_summary(z)


def worker(args) -> None:
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    clog = ba.CompileLog()
    import behavhmm

    json_out = Path(args.json_out)
    record = dict(
        model=args.model,
        dtype=args.dtype,
        n_copies=args.n_copies,
        precision=os.environ.get("JAX_DEFAULT_MATMUL_PRECISION", "default"),
        version=behavhmm.__version__,
        package_dir=str(Path(behavhmm.__file__).resolve().parent),
        backend=jax.default_backend(),
        t_start=time.perf_counter(),
        status="running",
    )
    write_json(record, json_out)
    data_dir = Path(args.data_dir)
    try:
        if args.model == "arhmm":
            from behavhmm.models import _ar_programs as programs
            from behavhmm.models.arhmm import (
                estimator as ar_hmm,
            )  # the estimator looks programs up here

            pcs = ba.load_pcs(data_dir / PCS_FILE, "pcs_white")
            n = pcs.shape[0]
            X = np.tile(pcs, (args.n_copies, 1)).astype(args.dtype)
            starts = np.arange(args.n_copies) * n
            timer = SweepTimer(programs.gibbs_sweep, clog, jax.block_until_ready, record, json_out)
            ar_hmm.gibbs_sweep = timer  # the estimator looks the program up in its module
            model = behavhmm.ARHMM(
                n_states=N_STATES,
                nlags=NLAGS,
                algorithm="gibbs",
                n_iter=args.sweeps,
                check_every=args.sweeps,
                progress_bar=False,
                random_state=SEED,
            )
            record.update(n_frames=int(X.shape[0]))
            t0 = time.perf_counter()
            try:
                model.fit(X, session_starts=starts)
            finally:
                record.update(fit_s=time.perf_counter() - t0, init_s=(timer.first_start or t0) - t0)
                if timer.last_out is not None:
                    (_, _, data, _), _ = timer.last_args
                    record["chain"] = _used(timer.last_out[0].states, np.asarray(data.weights) > 0)
                    record["inference_method"] = timer.last_args[1].get("method")
        else:
            import behavhmm.models.keypoint_slds.estimator as kpslds

            coords, conf, starts = bk.load_keypoints_npz(data_dir / KP_FILE, args.n_copies)
            X = coords.astype(args.dtype)
            timer = SweepTimer(kpslds.slds_sweep, clog, jax.block_until_ready, record, json_out)
            ar_timer = ba.CallTimer(kpslds.gibbs_sweep, clog, jax.block_until_ready)
            kpslds.slds_sweep, kpslds.gibbs_sweep = timer, ar_timer
            model = behavhmm.KeypointSLDS(
                n_states=N_STATES,
                latent_dim=LATENT_DIM,
                nlags=NLAGS,
                n_iter_ar=args.ar_iters,
                n_iter=args.sweeps,
                check_every=args.sweeps,
                anterior_bodyparts=ba.BODYPARTS.index(ba.ANTERIOR),
                posterior_bodyparts=ba.BODYPARTS.index(ba.POSTERIOR),
                progress_bar=False,
                random_state=SEED,
            )
            record.update(n_frames=int(X.shape[0]))
            t0 = time.perf_counter()
            try:
                model.fit(X, confidence=conf, session_starts=starts)
            finally:
                record.update(
                    fit_s=time.perf_counter() - t0,
                    init_s=(ar_timer.first_start or t0) - t0,
                    ar_sweeps=ba.summarise_calls(ar_timer.calls),
                    ar_stage_s=sum(c["wall_s"] for c in ar_timer.calls),
                )
                if timer.last_out is not None:
                    (_, _, data, _, *_), _ = timer.last_args
                    mask = np.asarray(data.valid) > 0
                    mask &= np.asarray(data.position) >= NLAGS
                    record["chain"] = _used(timer.last_out[0].ar.states, mask)
                    record["inference_method"] = timer.last_args[0][4]
        record["status"] = "ok"
    except Exception as exc:  # noqa: BLE001  (a failure is a result here)
        record.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}"[:2000],
            traceback=traceback.format_exc()[-3000:],
        )
    lls = np.asarray(record.get("sweep_log_likelihoods", []), dtype=float)
    record.update(
        all_finite=bool(lls.size and np.all(np.isfinite(lls))),
        peak_rss_mib=peak_rss_mib(),
        device_memory=device_memory(),
        compiles=clog.since(0),
        elapsed_s=time.perf_counter() - record["t_start"],
    )
    write_json(record, json_out)


# ----------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------


def configs(args) -> list[dict]:
    """The rows in the order they run: the float32 default first, small N first."""
    rows = []
    for dtype in args.dtypes:
        for n in args.n_copies:
            for model in args.models:
                rows.append(dict(model=model, dtype=dtype, n_copies=n, precision="default"))
    if args.precision_variants:
        for model in args.models:
            rows.insert(
                len(args.models),  # right after the N=1 float32 rows
                dict(model=model, dtype="float32", n_copies=args.n_copies[0], precision="highest"),
            )
    # the largest KeypointSLDS row of each dtype is the slowest: run it last within its dtype,
    # so every float32 row runs before the float64 rows (a budget cut loses float64 first)
    big = max(args.n_copies)
    ordered = []
    for dtype in args.dtypes:
        mine = [r for r in rows if r["dtype"] == dtype]
        slow = [r for r in mine if r["model"] == "kpslds" and r["n_copies"] == big]
        ordered += [r for r in mine if r not in slow] + slow
    return ordered


def run_row(row, args, env, tmp: Path, deadline: float) -> dict:
    label = f"{row['model']} {row['dtype']} N={row['n_copies']} precision={row['precision']}"
    json_out = tmp / f"{row['model']}_{row['dtype']}_{row['n_copies']}_{row['precision']}.json"
    sweeps = args.sweeps if row["model"] == "arhmm" else args.kp_sweeps
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--model",
        row["model"],
        "--dtype",
        row["dtype"],
        "--n-copies-one",
        str(row["n_copies"]),
        "--sweeps",
        str(sweeps),
        "--ar-iters",
        str(args.kp_ar_iters),
        "--data-dir",
        str(args.data_dir),
        "--json-out",
        str(json_out),
    ]
    wenv = dict(env)
    if row["precision"] != "default":
        wenv["JAX_DEFAULT_MATMUL_PRECISION"] = row["precision"]
    timeout = max(1.0, min(args.row_timeout_s, deadline - time.perf_counter()))
    log(f"[driver] {label} (timeout {timeout:.0f} s): {shlex.join(argv)}")
    before = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=wenv)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    wall = time.perf_counter() - t0
    res = json.loads(json_out.read_text()) if json_out.exists() else dict(row)
    res.update(row, process_wall_s=wall, loadavg_before=before, loadavg_after=loadavg())
    if rc is None:
        res["status"] = f"timeout after {timeout:.0f} s"
    elif rc != 0 and res.get("status") in (None, "running"):
        res["status"] = f"crashed (exit code {rc})"
    res.pop("t_start", None)
    log(f"[driver] {label}: {res['status']} in {wall:.1f} s")
    return res


def run_driver(args, command) -> dict:
    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        tmp = Path(tmp)
        env, snapshot_utc = hk.snapshot_behavhmm(tmp)
        sys.path.insert(0, str(tmp / "snapshot"))
        if args.data_dir is None:
            args.data_dir = tmp / "data"
            log("[driver] preprocessing the golden-mouse recording")
            inputs = prepare_inputs(args.data_dir)
        else:
            inputs = dict(prepared_dir=str(args.data_dir))
        rows = []
        for row in configs(args):
            if time.perf_counter() > deadline - args.min_row_s:
                rows.append(dict(row, status="not run (time budget spent)"))
                continue
            rows.append(run_row(row, args, env, tmp, deadline))
        source = hk.behavhmm_source()
        sys.path.remove(str(tmp / "snapshot"))
    source["snapshot_utc"] = snapshot_utc
    machine = hk.machine_description(source)
    machine["gpu"] = (
        hk._run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        )
        or None
    )
    return dict(
        command=command,
        machine=machine,
        config=dict(
            n_states=N_STATES,
            nlags=NLAGS,
            latent_dim=LATENT_DIM,
            seed=SEED,
            arhmm_sweeps=args.sweeps,
            kp_ar_iters=args.kp_ar_iters,
            kp_sweeps=args.kp_sweeps,
            n_copies=list(args.n_copies),
            dtypes=list(args.dtypes),
            budget_s=args.budget_s,
            row_timeout_s=args.row_timeout_s,
            jax_env={k: v for k, v in os.environ.items() if k.startswith(("JAX_", "XLA_"))},
        ),
        inputs=inputs,
        loadavg_start=load_start,
        loadavg_end=loadavg(),
        total_s=time.perf_counter() - t_start,
        rows=rows,
    )


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------


def _f(x, fmt="{:.3g}"):
    return "–" if x is None else fmt.format(x)


def render_markdown(result) -> str:
    m, c = result["machine"], result["config"]
    lines = [
        "# Scale benchmark: ARHMM Gibbs and KeypointSLDS on N copies of the golden mouse",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('cpus')} CPUs; GPU: {m.get('gpu') or 'none'}; "
        f"jax {m['versions'].get('jax')}; behavhmm {m['versions'].get('behavhmm')} "
        f"(commit {m.get('behavhmm_commit')}, src modified since: "
        f"{m.get('behavhmm_src_modified_since_commit')}); {m.get('date_utc')}.",
        f"Load average at start {result['loadavg_start']}, at end {result['loadavg_end']}; "
        f"total {result['total_s']:.0f} s (budget {c['budget_s']:.0f} s).",
        "",
        f"K = {c['n_states']}, nlags = {c['nlags']}; ARHMM: {c['arhmm_sweeps']} Gibbs sweeps on "
        f"whitened 10-D PCs; KeypointSLDS: latent_dim {c['latent_dim']}, "
        f"{c['kp_ar_iters']} AR-only "
        f"+ {c['kp_sweeps']} full sweeps. One process per row; 'per sweep' is the median after "
        "the first sweep, 'compile' the first sweep minus that median; µs/frame is per frame per "
        "sweep. Peak device memory is XLA's allocator peak (GPU only).",
        "",
        "| model | dtype | precision | N | frames | status | s/sweep | compile s | µs/frame "
        "| finite ll every sweep | used states | median dur (frames) | peak RSS MiB "
        "| peak device MiB | backend |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        sw = r.get("sweeps") or {}
        steady = sw.get("steady_median_s")
        frames = r.get("n_frames")
        per_frame = steady / frames * 1e6 if steady and frames else None
        chain = r.get("chain") or {}
        dev = (r.get("device_memory") or {}).get("peak_mib")
        status = r.get("status", "")
        if r.get("error"):
            status += ": " + r["error"].splitlines()[0][:160].replace("|", "/")
        lls = r.get("sweep_log_likelihoods")
        finite = "–" if not lls else ("yes" if np.all(np.isfinite(lls)) else "**no**")
        lines.append(
            "| "
            + " | ".join(
                [
                    r["model"],
                    r["dtype"],
                    r["precision"],
                    str(r["n_copies"]),
                    _f(frames, "{:,}"),
                    status,
                    _f(steady),
                    _f(sw.get("compile_s"), "{:.1f}"),
                    _f(per_frame, "{:.2f}"),
                    finite + (f" ({len(lls)} sweeps)" if lls else ""),
                    _f(chain.get("used_states"), "{}"),
                    _f(chain.get("median_duration_frames"), "{:g}"),
                    _f(r.get("peak_rss_mib"), "{:.0f}"),
                    _f(dev, "{:.0f}"),
                    str(r.get("backend", "–")),
                ]
            )
            + " |"
        )
    lines += ["", "Log-likelihood per sweep (nats):", ""]
    for r in result["rows"]:
        if r.get("sweep_log_likelihoods"):
            lls = ", ".join(f"{x:.4g}" for x in r["sweep_log_likelihoods"])
            lines.append(f"- {r['model']} {r['dtype']} {r['precision']} N={r['n_copies']}: {lls}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N = 1, 2; few sweeps; writes nothing")
    p.add_argument("--n-copies", type=int, nargs="+", default=[1, 20, 200])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--models", nargs="+", default=["arhmm", "kpslds"], choices=["arhmm", "kpslds"])
    p.add_argument("--sweeps", type=int, default=5, help="ARHMM Gibbs sweeps")
    p.add_argument("--kp-ar-iters", type=int, default=2, help="KeypointSLDS AR-only sweeps")
    p.add_argument("--kp-sweeps", type=int, default=3, help="KeypointSLDS full sweeps")
    p.add_argument("--budget-s", type=float, default=4 * 3600, help="stop starting rows after this")
    p.add_argument("--row-timeout-s", type=float, default=3600)
    p.add_argument("--min-row-s", type=float, default=20, help="skip rows when less is left")
    p.add_argument(
        "--precision-variants",
        action="store_true",
        help="add float32 N=min rows with JAX_DEFAULT_MATMUL_PRECISION=highest",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="inputs from --prepare-only")
    p.add_argument("--prepare-only", type=Path, default=None, metavar="DIR")
    p.add_argument("--out-prefix", type=Path, default=None)
    p.add_argument("--render", type=Path, default=None, help="rewrite the report from a JSON")
    # worker mode
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    p.add_argument("--n-copies-one", type=int, dest="n_copies_one", help=argparse.SUPPRESS)
    p.add_argument("--ar-iters", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.n_copies, args.sweeps, args.kp_ar_iters, args.kp_sweeps = [1, 2], 3, 1, 2
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        args.n_copies = args.n_copies_one
        worker(args)
        return
    if args.prepare_only is not None:
        print(json.dumps(prepare_inputs(args.prepare_only), indent=1))
        return
    if args.render is not None:
        result = json.loads(args.render.read_text())
        hk.write_outputs(
            result, args.render.with_suffix(""), write_json=False, render=render_markdown
        )
        return
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    result = run_driver(args, command)
    out = args.out_prefix or (None if args.quick else DEFAULT_OUT_PREFIX)
    if out is not None:
        md, js = hk.write_outputs(result, Path(out), render=render_markdown)
        log(f"[driver] wrote {md} and {js}")
    print(render_markdown(result))


if __name__ == "__main__":
    main()
