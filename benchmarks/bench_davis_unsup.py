"""DAVIS unsupervised scoring: refbench against the official per-pair loop, on the same masks, in one process.

    pip install -e ".[bench]"
    python benchmarks/bench_davis_unsup.py [--sequences 13] [--processes 1]

Data: the DAVIS-2017 ``Annotations_unsupervised`` ground truth and RVOS predictions of
../shared/data/davis_osvos13 (or $REFBENCH_SHARED_DATA). Official: a faithful copy of davis2017-evaluation
``evaluation.py::_evaluate_unsupervised`` -- every (proposal, object) pair scored with ``db_eval_iou`` and
``db_eval_boundary`` (per-frame ``_seg2bmap`` from vos-benchmark and ``cv2.dilate`` with a skimage disk), void
pixels removed, then the mean affinity and the Hungarian assignment, each sequence's GT and proposals read
from their PNGs first as davis2017 reads them (``np.array(Image.open)``). refbench: ``refbench eval``'s
path (``evaluate_video`` with protocol ``davis_unsup`` on the loader and the PNG folder: reading included),
and, on masks already in memory, ``refbench.metrics.davis.evaluate_unsupervised`` (scoring only). Both on
one CPU thread in one process (``--processes`` sets refbench's scoring processes); the script checks that
every per-frame J and F of the matched pairs and every per-object value is identical, then prints the
times and the ratios.
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
    ap.add_argument("--sequences", type=int, default=13, help="how many of the 13 golden sequences")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    import cv2
    import torch
    from official_davis import object_row, predictions_of, read_masks

    from refbench.data.davis import DavisLoader
    from refbench.evaluate.video import evaluate_video
    from refbench.metrics.davis import evaluate_unsupervised
    from refbench.preds.masks import open_mask_source

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data = Path(os.environ.get("REFBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    root = data / "davis_osvos13"
    loader = DavisLoader(root, annotations="Annotations_unsupervised")
    seqs = loader.samples()[: args.sequences]
    pred_root = root / "predictions" / "rvos"

    class Subset(DavisLoader):
        def samples(self):  # the first --sequences of val.txt
            return seqs

    sub = Subset(root, annotations="Annotations_unsupervised")
    t0 = time.perf_counter()
    official = []
    for s in seqs:
        gt = read_masks(root / "Annotations_unsupervised" / "480p" / s.video, s.frames)
        pred = read_masks(pred_root / s.video, s.frames)
        official.append(official_sequence(gt, pred, int(pred.max())))
    t_off = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = evaluate_video(None, sub, predictions_of(pred_root, seqs), protocol="davis_unsup", workers=args.processes)
    t_eval = time.perf_counter() - t0
    src = open_mask_source(pred_root, "sequence", "index")
    masks = []
    for s in seqs:
        gt = loader.gt_masks(s)
        masks.append((s.video, gt, src.read(s.video, None, s.frames, gt.shape[1:])))
    n_pairs = 0
    for _name, gt, pred in masks:
        n_obj = int(gt[gt != 255].max(initial=0))
        n_pairs += max(int(pred.max()), n_obj) * n_obj * gt.shape[0]
    t0 = time.perf_counter()
    ours = [evaluate_unsupervised(gt, pred, sequence=n) for n, gt, pred in masks]
    t_ref = time.perf_counter() - t0
    print(f"data: {len(masks)} DAVIS-2017 sequences, RVOS proposals, {n_pairs} pair-frames at "
          f"{masks[0][1].shape[1]}x{masks[0][1].shape[2]}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; torch "
          f"{torch.__version__}; one thread; refbench processes {args.processes}")

    rows = {r["key"]: r for r in res.per_sample}
    for (j, f, p_rows, p_cols), seq_res, s in zip(official, ours, seqs):
        assert len(seq_res.objects) == len(p_rows)
        for o in seq_res.objects:
            p, g = o.proposal - 1, o.gt_object - 1
            assert np.array_equal(o.J, j[p, g]) and np.array_equal(o.F, f[p, g]), "per-frame values differ"
        assert sorted(zip(p_rows.tolist(), p_cols.tolist())) == sorted((o.proposal - 1, o.gt_object - 1)
                                                                       for o in seq_res.objects)
        for i, (p, g) in enumerate(zip(p_rows, p_cols)):
            want = {k: float(v) * 100.0 for k, v in object_row(j[p, g], f[p, g]).items()}  # rows are percent
            got = rows[f"{s.video}_{i + 1}"]
            assert all(got[k] == v or (v != v and got[k] != got[k]) for k, v in want.items()), "object values differ"
    print("per-frame J and F of every matched pair, and every per-object value: identical")
    print(f"official loop, PNGs read:        {t_off:6.1f} s ({n_pairs / t_off:7.0f} pair-frames/s)")
    print(f"refbench eval path, PNGs read:   {t_eval:6.1f} s ({n_pairs / t_eval:7.0f} pair-frames/s)  "
          f"ratio {t_off / t_eval:.1f}x")
    print(f"refbench scoring only (in RAM):  {t_ref:6.1f} s ({n_pairs / t_ref:7.0f} pair-frames/s)  "
          f"ratio {t_off / t_ref:.1f}x")


if __name__ == "__main__":
    main()
