"""Build the figures of docs/guide/from-syllables-to-results.md, and run `behavhmm report` on three
real data sets.

Run from the repository root:  python docs/scripts/analysis_report.py [OUT_DIR]

1. Small keypoint fits (and a second B-SOiD fit with another seed, compared with
   `compare_labelings`) (few sweeps, latent_dim 4: the point is the analysis, not the model) of
   - the B-SOiD open-field clips (2 sessions, 60 fps; GPL-3.0),
   - the DeepOF mice (1 single-mouse table + 1 two-mouse table = 3 sessions; fps not stated, 25
     assumed; MIT),
   - the DeepLabCut golden mouse (1 session, 30 fps; LGPL-3.0).
2. `behavhmm report` on each, with MADE-UP group indices (the recordings have no real groups).
3. With the Python API on the B-SOiD fit: each clip cut into 30-s pieces treated as sessions (group
   = clip), so that the group tests have several sessions per group. This only exercises the
   statistics: pieces of one recording are not independent animals.

Only derived figures (plots) are copied into docs/guide/img; no recording or table is.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

root = Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data"
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/behavhmm-analysis-docs")
img = root / "docs" / "guide" / "img"
out.mkdir(parents=True, exist_ok=True)
timings = {}


def run(*args):
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-m", "behavhmm.cli", *map(str, args)], check=True)
    return round(time.perf_counter() - tic, 1)


bsoid = sorted((data / "pose-bsoid-openfield-mouse").glob("raw_clip*_1030000.h5"))
deepof = [
    data / "pose-deepof-mice" / "testDLC_square_arena.h5",
    data / "pose-deepof-mice" / "testDLC_h5_table_madlc.h5",
]
golden = sorted((data / "dlc_golden_mouse").glob("*.h5"))
fits = {
    "bsoid": (
        bsoid,
        [
            "--fps",
            "60",
            "--anterior",
            "Snout",
            "--posterior",
            "Butt/Proximal Tail",
            "--n-states",
            "25",
            "--kappa",
            "1e10",
            "--ar-iters",
            "20",
            "--iters",
            "20",
        ],
    ),
    "deepof": (
        deepof,
        [
            "--fps",
            "25",
            "--anterior",
            "Nose",
            "--posterior",
            "Tail_base",
            "--n-states",
            "10",
            "--kappa",
            "1e6",
            "--ar-iters",
            "10",
            "--iters",
            "10",
        ],
    ),
    "golden": (
        golden,
        [
            "--fps",
            "30",
            "--anterior",
            "nose",
            "--posterior",
            "tail_base",
            "--n-states",
            "20",
            "--kappa",
            "1e8",
            "--ar-iters",
            "15",
            "--iters",
            "15",
        ],
    ),
}
indices = {  # made up: these recordings come with no experimental groups
    "bsoid": {p.stem: ("A" if "clip1" in p.stem else "B") for p in bsoid},
    "deepof": {
        "testDLC_square_arena": "A",
        "testDLC_h5_table_madlc_mouse_black_tail": "B",
        "testDLC_h5_table_madlc_mouse_white_tail": "B",
    },
    "golden": {p.stem: "A" for p in golden},
}
for name, (files, options) in fits.items():
    timings[f"fit {name}"] = run(
        "fit-keypoints",
        *files,
        "--out",
        out / name,
        "--latent-dim",
        "4",
        *options,
        "--no-progress",
        "--no-plots",
    )
    index = out / f"{name}_index.csv"
    pd.DataFrame({"session": list(indices[name]), "group": list(indices[name].values())}).to_csv(
        index, index=False
    )
    timings[f"report {name}"] = run(
        "report", out / name, "--groups", index, "--out", out / f"{name}_report"
    )

# ---- a second B-SOiD fit with another seed, to compare the two labelings
timings["fit bsoid seed 1"] = run(
    "fit-keypoints",
    *bsoid,
    "--out",
    out / "bsoid_seed1",
    "--latent-dim",
    "4",
    *fits["bsoid"][1],
    "--seed",
    "1",
    "--no-progress",
    "--no-plots",
)

# ---- the docs figures, from the B-SOiD fit
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from behavhmm import analysis as an  # noqa: E402
from behavhmm import plotting as pl  # noqa: E402
from behavhmm.workflows import read_keypoint_results  # noqa: E402

results = read_keypoint_results(out / "bsoid" / "results.h5")
piece = 30 * 60  # 30 s at 60 fps
z = np.concatenate([r.syllables for r in results])
starts = np.unique(
    np.concatenate(
        [
            np.arange(0, len(r.syllables), piece) + sum(len(q.syllables) for q in results[:i])
            for i, r in enumerate(results)
        ]
    )
)
clip = np.repeat(["A", "B"], [len(results[0].syllables), len(results[1].syllables)])
centroid = np.concatenate([r.centroid for r in results])
heading = np.concatenate([r.heading for r in results])
# the decoded centroid and heading, as KeypointResults pieces, one per 30 s
pieces = []
for k, a in enumerate(starts):
    b = starts[k + 1] if k + 1 < len(starts) else len(z)
    src = results[0]
    pieces.append(
        type(src)(
            name=f"{clip[a]}{k}",
            source=None,
            fps=60.0,
            timestamps=np.arange(b - a) / 60.0,
            syllables=z[a:b],
            latents=np.zeros((b - a, 1)),
            centroid=centroid[a:b],
            heading=heading[a:b],
            probabilities=np.zeros((b - a, 1)),
        )
    )
table = an.frame_table(pieces, groups=[clip[a] for a in starts])
stats = an.syllable_stats(table, n_states=25)
tests = an.compare_groups(stats, "frequency")
figures = {}
ax = pl.plot_syllable_stats(stats, "frequency", tests, max_syllables=15)
ax.set_ylabel("frequency (onsets/s)")
figures["analysis-frequency.png"] = ax.figure
report = out / "bsoid_report"
for src, dst in (
    ("transition_graph_A.png", "analysis-transition-graph.png"),
    ("transition_difference_A_B.png", "analysis-transition-difference.png"),
    ("typical_trajectories.png", "analysis-trajectories.png"),
    ("syllable_dendrogram.png", "analysis-dendrogram.png"),
):
    shutil.copy(report / src, img / dst)
for name, fig in figures.items():
    fig.savefig(img / name, dpi=100)
plt.close("all")
other = read_keypoint_results(out / "bsoid_seed1" / "results.h5")
comparison = an.compare_labelings(z, np.concatenate([r.syllables for r in other]))
omnibus = tests[tests["comparison"] == "omnibus"]
summary = {
    "timings_s": timings,
    "bsoid_pieces": len(pieces),
    "bsoid_omnibus_significant": omnibus.loc[omnibus["significant"], "syllable"].tolist(),
    "bsoid_omnibus_tested": int(omnibus["p_value"].notna().sum()),
    "seed0_vs_seed1": {k: comparison[k] for k in ("accuracy", "adjusted_rand", "nmi", "n_frames")},
    "reports": {
        name: json.loads((out / f"{name}_report" / "report.json").read_text()) for name in fits
    },
}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
