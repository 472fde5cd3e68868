"""DAVIS unsupervised scoring: refbench against the official per-pair loop, on the same masks, in one process.

    pip install -e ".[bench]"
    python benchmarks/bench_davis_unsup.py [--sequences 3] [--threads 1]

Data: the DAVIS-2017 ``Annotations_unsupervised`` ground truth and RVOS predictions of
../shared/data/davis_osvos13 (or $REFBENCH_SHARED_DATA). Official: a faithful copy of davis2017-evaluation
``evaluation.py::_evaluate_unsupervised`` -- every (proposal, object) pair scored with ``db_eval_iou`` and
``db_eval_boundary`` (per-frame ``_seg2bmap`` from vos-benchmark and ``cv2.dilate`` with a skimage disk), void
pixels removed, then the mean affinity and the Hungarian assignment. refbench:
``refbench.metrics.davis.evaluate_unsupervised``. Both use one CPU thread (default); the script checks that
every per-frame J and F of the matched pairs is identical, then prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def official_sequence(gt: np.ndarray, pred: np.ndarray, n_proposals: int):
    """(J, F) arrays (n_rows, n_obj, T) and the assignment, as davis2017's unsupervised evaluation makes them."""
    from official_davis import db_eval_iou, f_measure
    from scipy.optimize import linear_sum_assignment

    void = gt == 255
    n_obj = int(max(int(gt[gt != 255].max(initial=0)), 0))
    n_rows = max(n_proposals, n_obj)
    gts = [(gt == k) for k in range(1, n_obj + 1)]
    preds = [(pred == k) for k in range(1, n_rows + 1)]

    n_frames = gt.shape[0]
    j = np.zeros((n_rows, n_obj, n_frames))
    f = np.zeros((n_rows, n_obj, n_frames))
    for ii in range(n_rows):
        for jj in range(n_obj):
            j[ii, jj] = db_eval_iou(gts[jj], preds[ii], void)
            f[ii, jj] = [f_measure(preds[ii][t], gts[jj][t], void[t]) for t in range(n_frames)]
    affinity = (j.mean(axis=2) + f.mean(axis=2)) / 2
    rows, cols = linear_sum_assignment(-affinity)
    return j, f, rows, cols


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", type=int, default=3, help="how many of the 13 golden sequences")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import cv2
    import torch

    from refbench.data.davis import DavisLoader
    from refbench.metrics.davis import evaluate_unsupervised
    from refbench.preds.masks import open_mask_source

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    data = Path(os.environ.get("REFBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    root = data / "davis_osvos13"
    loader = DavisLoader(root, annotations="Annotations_unsupervised")
    src = open_mask_source(root / "predictions" / "rvos", "sequence", "index")
    seqs = loader.samples()[: args.sequences]
    masks = []
    for s in seqs:
        gt = loader.gt_masks(s)
        masks.append((s.video, gt, src.read(s.video, None, s.frames, gt.shape[1:])))
    n_pairs = 0
    for _name, gt, pred in masks:
        n_obj = int(gt[gt != 255].max(initial=0))
        n_pairs += max(int(pred.max()), n_obj) * n_obj * gt.shape[0]
    print(f"data: {len(masks)} DAVIS-2017 sequences, RVOS proposals, {n_pairs} pair-frames at "
          f"{masks[0][1].shape[1]}x{masks[0][1].shape[2]}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; torch {torch.__version__}; threads {args.threads}")

    t0 = time.perf_counter()
    official = [official_sequence(gt, pred, int(pred.max())) for _n, gt, pred in masks]
    t_off = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = [evaluate_unsupervised(gt, pred, sequence=n) for n, gt, pred in masks]
    t_ref = time.perf_counter() - t0

    for (j, f, rows, cols), res in zip(official, ours):
        assert len(res.objects) == len(rows)
        for o in res.objects:
            p, g = o.proposal - 1, o.gt_object - 1
            assert np.array_equal(o.J, j[p, g]) and np.array_equal(o.F, f[p, g]), "values differ"
        assert sorted(zip(rows.tolist(), cols.tolist())) == sorted((o.proposal - 1, o.gt_object - 1)
                                                                   for o in res.objects)
    print("per-frame J and F of every matched pair: identical")
    print(f"official loop: {t_off:.1f} s ({n_pairs / t_off:.0f} pair-frames/s)")
    print(f"refbench:      {t_ref:.1f} s ({n_pairs / t_ref:.0f} pair-frames/s)")
    print(f"ratio: {t_off / t_ref:.1f}x")


if __name__ == "__main__":
    main()
