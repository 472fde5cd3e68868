"""DAVIS semi-supervised scoring: refbench against the official per-object loop, PNG reading included.

    pip install -e ".[bench]"
    python benchmarks/bench_davis_semi.py [--sequences 13] [--processes 1]

Data: DAVIS-2017 ``Annotations`` and the OSVOS results of ../shared/data/davis_osvos13 (or
$REFBENCH_SHARED_DATA), 480p. Official: a faithful copy of davis2017-evaluation ``DAVISEvaluation.evaluate``
for ``task='semi-supervised'``: every GT and result PNG read with ``np.array(Image.open)``, frames 1..T-2,
objects 1..max(first GT frame), each object's ``db_eval_iou`` and per-frame ``db_eval_boundary``
(vos-benchmark's ``_seg2bmap`` and ``cv2.dilate`` with a skimage disk, no void), then ``db_statistics``.
refbench: ``evaluate_video`` with protocol ``davis_semi`` on the loader and the PNG folder (what
``refbench eval`` runs; reading included). One CPU thread, one process each (``--processes`` sets refbench's
scoring processes). The script checks that every per-object value is identical, then prints the times.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def official_sequence(root: Path, pred_root: Path, seq: str, frames: list[str]) -> dict[str, dict[str, float]]:
    from official_davis import db_eval_iou, f_measure, object_row, read_masks

    gt_ids = read_masks(root / "Annotations" / "480p" / seq, frames)
    first = np.where(gt_ids[0] == 255, 0, gt_ids[0])
    n_obj = int(first.max())
    gt = np.stack([gt_ids == k for k in range(1, n_obj + 1)])[:, 1:-1]
    res_ids = read_masks(pred_root / seq, frames)[1:-1]
    res = np.stack([res_ids == k for k in range(1, n_obj + 1)])
    out = {}
    for k in range(n_obj):
        j = db_eval_iou(gt[k], res[k])
        f = np.array([f_measure(res[k][t], gt[k][t]) for t in range(gt.shape[1])])
        out[f"{seq}_{k + 1}"] = object_row(j, f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", type=int, default=13)
    ap.add_argument("--processes", type=int, default=1)
    args = ap.parse_args()

    import cv2
    import torch
    from official_davis import predictions_of

    from refbench.cards import dataset_card
    from refbench.data.davis import DavisLoader
    from refbench.evaluate.video import evaluate_video

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data = Path(os.environ.get("REFBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    root = data / "davis_osvos13"
    pred_root = root / "predictions" / "osvos"
    seqs = DavisLoader(root).samples()[: args.sequences]

    class Subset(DavisLoader):
        def samples(self):
            return seqs

    t0 = time.perf_counter()
    official: dict[str, dict[str, float]] = {}
    for s in seqs:
        official.update(official_sequence(root, pred_root, s.video, list(s.frames)))
    t_off = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = evaluate_video(dataset_card("davis17_val"), Subset(root), predictions_of(pred_root, seqs), workers=args.processes)
    t_ref = time.perf_counter() - t0
    n_obj_frames = sum(len(s.frames) - 2 for s in seqs)  # one object per golden sequence
    print(f"data: {len(seqs)} DAVIS sequences, OSVOS results, {len(official)} objects, {n_obj_frames} object-frames "
          "scored, 480p")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; torch "
          f"{torch.__version__}; one thread; refbench processes {args.processes}")
    rows = {r["key"]: r for r in res.per_sample}
    assert list(rows) == list(official), "object order differs"
    for name, want in official.items():
        want = {k: float(v) * 100.0 for k, v in want.items()}  # refbench rows are percent: the fractions x 100
        assert all(rows[name][k] == v or (v != v and rows[name][k] != rows[name][k]) for k, v in want.items()), name
    print("every per-object value (J/F mean, recall, decay; percent = the official fractions x 100): identical")
    print(f"official loop, PNGs read:       {t_off:6.1f} s ({n_obj_frames / t_off:6.0f} object-frames/s)")
    print(f"refbench eval path, PNGs read:  {t_ref:6.1f} s ({n_obj_frames / t_ref:6.0f} object-frames/s)  "
          f"ratio {t_off / t_ref:.1f}x")


if __name__ == "__main__":
    main()
