"""Hand labels guide (docs/guide/labels.md): heuristic labels on B-SOiD's open-field clips.

Run from the repository root:  python docs/scripts/labels_bsoid.py
Reads ../shared/data/pose-bsoid-openfield-mouse (GPL-3.0: only the derived figure and numbers
are committed), fits an ARHMM with and without soft heuristic labels on the first half of each
clip, and scores both on the held-out second halves with segmentation_report.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from behavhmm import ARHMM  # noqa: E402
from behavhmm.analysis import segmentation_report  # noqa: E402

root = Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data" / "pose-bsoid-openfield-mouse"
FPS, SMOOTH = 60, 15  # frames per second; moving-average window (0.25 s)
STILL, LOCOMOTION, ELONGATED = 0.25, 1.5, 0.8  # body lengths/s, body lengths/s, x median length
CLASSES = ["still", "locomotion", "other"]
N_STATES, LABEL_WEIGHT = 3, 0.9  # the 3 labelled classes; soft labels


def smooth(a):
    kernel = np.ones(SMOOTH) / SMOOTH
    return np.stack([np.convolve(col, kernel, "same") for col in a.T], axis=1)


def clip_features(path, body_length):
    """Egocentric pose (12 values), speed in body lengths/s, body length ratio, heuristic labels."""
    xy = pd.read_hdf(path).to_numpy().reshape(-1, 6, 3)[..., :2]
    centroid = smooth(xy.mean(1))
    ahead = np.r_[centroid[SMOOTH:], np.repeat(centroid[-1:], SMOOTH, 0)]
    speed = np.linalg.norm(ahead - centroid, axis=1) * FPS / SMOOTH / body_length  # over 0.25 s
    axis = xy[:, 0] - xy[:, 5]  # tail base -> snout
    length = np.linalg.norm(axis, axis=1) / body_length
    angle = np.arctan2(axis[:, 1], axis[:, 0])
    c, s = np.cos(-angle)[:, None], np.sin(-angle)[:, None]
    rel = xy - xy.mean(1, keepdims=True)
    ego = np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1]], -1)
    labels = np.full(len(xy), 2)  # other
    labels[speed < STILL] = 0
    labels[(speed > LOCOMOTION) & (length > ELONGATED)] = 1
    return ego.reshape(len(xy), -1) / body_length, speed, length, labels


def _summary(report):
    table = report[["precision", "recall", "f1", "iou"]].round(3).to_dict()
    return {
        "accuracy": round(report.attrs["accuracy"], 3),
        "macro_f1": round(float(report["f1"].mean()), 3),
        **table,
    }


def main(out_json: Path, out_png: Path):
    files = sorted(data.glob("raw_clip*_1030000.h5"))
    lengths = []
    for f in files:
        xy = pd.read_hdf(f).to_numpy().reshape(-1, 6, 3)[..., :2]
        lengths.append(np.median(np.linalg.norm(xy[:, 0] - xy[:, 5], axis=1)))
    body_length = float(np.median(lengths))
    per_clip = [clip_features(f, body_length) for f in files]
    ego = np.concatenate([p[0] for p in per_clip])
    pcs = smooth(PCA(2, random_state=0).fit_transform(ego))
    speed = np.concatenate([p[1] for p in per_clip])
    length = np.concatenate([p[2] for p in per_clip])
    heuristic = np.concatenate([p[3] for p in per_clip])
    X = np.c_[pcs, np.log1p(speed), smooth(length[:, None])]
    n_clip = len(per_clip[0][0])
    starts = np.zeros(len(X), bool)
    starts[::n_clip] = True
    heldout = (np.arange(len(X)) % n_clip) >= n_clip // 2
    labels = np.where(heldout, -1, heuristic)
    kw = dict(nlags=1, kappa=1e4, whiten="all", n_iter=100, progress_bar=False, random_state=0)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = ARHMM(N_STATES, **kw).fit(X, session_starts=starts)
        semi = ARHMM(N_STATES, **kw).fit(
            X, session_starts=starts, labels=labels, label_weight=LABEL_WEIGHT
        )
    wall = time.perf_counter() - tic
    truth = np.where(heldout, heuristic, -1)
    z_free = free.predict(X, session_starts=starts)
    z_semi = semi.predict(X, session_starts=starts)
    rep_free = segmentation_report(truth, z_free, match="hungarian", class_names=CLASSES)
    rep_semi = segmentation_report(truth, z_semi, match=None, class_names=CLASSES)
    print("unsupervised + Hungarian\n", rep_free.round(3), rep_free.attrs["accuracy"])
    print("semi-supervised, no matching\n", rep_semi.round(3), rep_semi.attrs["accuracy"])
    summary = {
        "thresholds": {
            "still_bl_per_s": STILL,
            "locomotion_bl_per_s": LOCOMOTION,
            "elongated": ELONGATED,
        },
        "body_length_px": body_length,
        "n_frames": int(len(X)),
        "heldout_frames": int(heldout.sum()),
        "class_fractions_heldout": np.bincount(heuristic[heldout], minlength=3).tolist(),
        "wall_s_two_fits": round(wall, 1),
        "unsupervised_hungarian": _summary(rep_free),
        "semi_supervised": _summary(rep_semi),
    }
    out_json.write_text(json.dumps(summary, indent=1))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 2.2]})
    x = np.arange(3)
    axes[0].bar(x - 0.2, rep_free["f1"], 0.4, label="unsupervised + Hungarian")
    axes[0].bar(x + 0.2, rep_semi["f1"], 0.4, label="soft labels, no matching")
    axes[0].set_xticks(x, CLASSES)
    axes[0].set_ylabel("F1 on held-out halves")
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=7, loc="upper right")
    window = slice(n_clip // 2 + 1200, n_clip // 2 + 1200 + 20 * FPS)
    mapping = rep_free.attrs["mapping"]
    rows = {
        "heuristic": heuristic[window],
        "soft labels": np.where(z_semi[window] < 3, z_semi[window], 3),
        "unsupervised": np.where(mapping[z_free[window]] < 3, mapping[z_free[window]], 3),
    }
    cmap = matplotlib.colors.ListedColormap(["#4477aa", "#ee6677", "#228833", "#bbbbbb"])
    axes[1].imshow(
        np.stack(list(rows.values())),
        aspect="auto",
        cmap=cmap,
        vmin=-0.5,
        vmax=3.5,
        interpolation="nearest",
        extent=(0, 20, 2.5, -0.5),
    )
    axes[1].set_yticks(range(3), list(rows))
    axes[1].set_xlabel("time in the held-out half of clip 1 (s)")
    patches = [
        matplotlib.patches.Patch(color=cmap(i), label=name) for i, name in enumerate(CLASSES)
    ]
    axes[1].legend(handles=patches, ncol=3, fontsize=7, loc="lower right", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    print(f"wall time of the two fits {wall:.0f} s; wrote {out_json} and {out_png}")


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "docs"
    main(out / "figures" / "labels_bsoid.json", out / "guide" / "img" / "labels-bsoid.png")
