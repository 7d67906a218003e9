"""Motifs of two animals from real pose files: the numbers and figures of docs/guide/motifs.md.

Run from the repository root:  python docs/scripts/motifs_multi_animal.py [OUT_DIR]

There are no LISBET embeddings here (no LISBET model is trained in this repository), so pose-derived
features stand in for them: for each animal its egocentric keypoints, plus social features
(inter-animal distance, facing angles, relative heading, each animal's position in the other's body
frame). Both files are loaded with ``individual_layout="stack"``: one feature vector per frame
holding both animals. Identity swaps of the trackers are not corrected.

1. SLEAP courtship flies (``courtship_3000f.predictions.slp``: 3,000 frames x 2 flies x 13 nodes, 25
   fps; BSD-3-Clause-Clear), cut into 4 sequences of 750 frames.
2. DeepOF two-mouse table (``testDLC_h5_table_madlc.h5``: 100 frames x 2 mice x 14 bodyparts; fps
   not stated, 25 assumed; MIT), one sequence.

Each: ``scan_n_states`` (GaussianHMM, 10 EM iterations, LISBET's setting) then
``select_prototypes``. Only derived figures go to docs/guide/img; no recording is copied.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from behavhmm import GaussianHMM
from behavhmm.io import load_keypoints, save_states, states_to_dataset
from behavhmm.model_selection import scan_n_states, select_prototypes
from behavhmm.preprocessing import egocentric_align, interpolate_nans, social_features

root = Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data"
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/behavhmm-motifs-docs")
img = root / "docs" / "guide" / "img"


def features(path, nodes, anterior, posterior, fps):
    kp = load_keypoints(path, bodyparts=nodes, individual_layout="stack", fps=fps)
    n_ind = len(kp[0].individual.split("+"))
    coords = kp.coordinates
    flat = interpolate_nans(coords.reshape(coords.shape[0], -1), kp.session_starts).reshape(
        coords.shape
    )
    per_animal = flat.reshape(flat.shape[0], n_ind, len(nodes), 2)
    ego = [
        np.asarray(
            egocentric_align(per_animal[:, i], anterior, posterior, bodyparts=nodes).coordinates
        )
        for i in range(n_ind)
    ]
    social = social_features(
        per_animal, anterior, posterior, bodyparts=nodes, individuals=kp[0].individual.split("+")
    )
    angles = [c for c in social.columns if "heading" in c or "facing" in c]
    social_cols = [social.drop(columns=angles).to_numpy()] + [
        np.cos(social[angles]),
        np.sin(social[angles]),
    ]
    X = np.column_stack([e.reshape(e.shape[0], -1) for e in ego] + social_cols)
    X = X[:, X.std(0) > 0]
    return (X - X.mean(0)) / X.std(0), kp


def run(name, X, starts, names, ks, cov, fps):
    est = GaussianHMM(covariance_type=cov, n_iter=10, tol=1e-3, random_state=0, progress_bar=False)
    tic = time.perf_counter()
    scan = scan_n_states(est, X, starts, n_states=ks, n_jobs=2, sequence_names=names)
    seconds = time.perf_counter() - tic
    scan.save(out / name)
    protos = select_prototypes(scan, fps=fps, min_bout_s=0.2)
    protos.save(out / name, scan)
    return scan, protos, seconds


results = {}
# 1. flies
nodes = ["head", "thorax", "abdomen", "wingL", "wingR"]
X, kp = features(
    data / "pose-sleap-courtship-flies" / "courtship_3000f.predictions.slp",
    nodes,
    "head",
    "abdomen",
    25,
)
starts = np.zeros(X.shape[0], bool)
starts[::750] = True
scan, protos, seconds = run(
    "flies", X, starts, [f"part{i}" for i in range(4)], range(2, 13), "full", 25.0
)
results["flies"] = {
    "frames": int(X.shape[0]),
    "features": int(X.shape[1]),
    "individuals": kp[0].individual,
    "scan_seconds": round(seconds, 1),
    "best_bic": scan.best_n_states("bic"),
    "prototypes": protos.names_,
    "n_columns_kept": len(protos.columns_),
    "metrics": scan.metrics_[["n_states", "log_likelihood", "bic"]].round(1).to_dict("list"),
}
ds = states_to_dataset(
    protos.labels_,
    time=np.arange(X.shape[0]) / 25.0,
    individuals=[kp[0].individual],
    fps=25.0,
    source="courtship_3000f.predictions.slp",
)
save_states(out / "flies" / "prototype_states.nc", ds)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
from behavhmm.cli import _dendrogram_figure, _ethogram_figure, _metrics_figure  # noqa: E402

_metrics_figure(scan.metrics_).savefig(
    img / "motifs-flies-metrics.png", dpi=100, bbox_inches="tight"
)
_dendrogram_figure(protos).savefig(
    img / "motifs-flies-dendrogram.png", dpi=100, bbox_inches="tight"
)
_ethogram_figure(protos, slice(0, 750), 25.0, "flies, first 30 s").savefig(
    img / "motifs-flies-ethogram.png", dpi=100, bbox_inches="tight"
)

# 2. DeepOF two mice
nodes = ["Nose", "Left_ear", "Right_ear", "Center", "Tail_base"]
X, kp = features(
    data / "pose-deepof-mice" / "testDLC_h5_table_madlc.h5", nodes, "Nose", "Tail_base", 25
)
scan, protos, seconds = run("deepof", X, None, ["madlc"], range(2, 7), "diag", 25.0)
results["deepof"] = {
    "frames": int(X.shape[0]),
    "features": int(X.shape[1]),
    "individuals": kp[0].individual,
    "scan_seconds": round(seconds, 1),
    "best_bic": scan.best_n_states("bic"),
    "prototypes": protos.names_,
    "n_columns_kept": len(protos.columns_),
    "metrics": scan.metrics_[["n_states", "log_likelihood", "bic"]].round(1).to_dict("list"),
}
print(json.dumps(results, indent=1))
(out / "results.json").write_text(json.dumps(results, indent=1))
