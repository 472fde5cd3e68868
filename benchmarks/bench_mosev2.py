"""MOSE v2 per-frame measures: refbench against the official numpy / OpenCV arithmetic, same masks, one process.

    pip install -e ".[bench]"
    python benchmarks/bench_mosev2.py [--frames 15] [--repeats 3] [--threads 1]

Peer: MOSE-api ``MOSEv2/sam2_rcms/tools/metricsv2.py`` (commit 241977ae) as ``score.py`` calls it per object and
frame -- smoothed J, and ``f_measure_adaptive(..., bound_th=0.1, mode='area')``: DAVIS ``_seg2bmap`` boundaries,
``cv2.dilate`` with skimage's ``disk`` of the adaptive or the unrounded diagonal radius -- written here from that
definition (not copied). refbench: ``refbench.metrics.mosev2.frame_scores`` on the whole stack. Inputs: synthetic
moving ellipses, a small object (both radius branches: F at ceil(d), F_new at ceil(0.1 sqrt|G|)) and a large one
(both at the unrounded, off-centre d). The script checks that every J, F_new and F value is identical, then prints
both times and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def _bmap(seg: np.ndarray) -> np.ndarray:
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _f(fg: np.ndarray, gt: np.ndarray, radius: float) -> float:
    import cv2
    from skimage.morphology import disk

    fb, gb = _bmap(fg), _bmap(gt)
    fd = cv2.dilate(fb.astype(np.uint8), disk(radius))
    gd = cv2.dilate(gb.astype(np.uint8), disk(radius))
    n_fg, n_gt = np.sum(fb), np.sum(gb)
    if n_fg == 0 and n_gt > 0:
        p, r = 1, 0
    elif n_fg > 0 and n_gt == 0:
        p, r = 0, 1
    elif n_fg == 0 and n_gt == 0:
        p, r = 1, 1
    else:
        p, r = np.sum(fb * gd) / float(n_fg), np.sum(gb * fd) / float(n_gt)
    return 0 if p + r == 0 else 2 * p * r / (p + r)


def official_frames(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, 3) [J, F_new, F] per frame, the official way."""
    out = []
    for p, g in zip(pred, gt):
        inter, union = np.sum(p & g), np.sum(p | g)
        j = 1.0 if union == 0 else (inter + 1) / (union + 1)
        d = 0.008 * np.linalg.norm(p.shape)
        a = np.ceil(0.1 * np.sqrt(np.sum(g))) if g.any() else np.ceil(0.1 * np.linalg.norm(p.shape))
        a = min(d, a)
        if a < d:
            out.append((j, _f(p, g, a), _f(p, g, np.ceil(d))))
        else:
            f = _f(p, g, d)
            out.append((j, f, f))
    return np.array(out, dtype=np.float64)


def masks(frames: int, h: int, w: int, large: bool) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    ry, rx = (h / 3.5, w / 4) if large else (h / 25, w / 40)
    gt = np.stack([((yy - h / 2) / ry) ** 2 + ((xx - w / 2 - 3 * t) / rx) ** 2 <= 1 for t in range(frames)])
    pred = np.roll(gt, (2, 3), axis=(1, 2))
    return pred, gt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import cv2
    import torch

    from refbench.metrics.mosev2 import frame_scores

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}, torch "
          f"{torch.__version__}, numpy {np.__version__}, opencv {cv2.__version__}, {args.threads} thread(s)")
    print(f"{'size':>10} {'object':>6} {'official s':>10} {'refbench s':>10} {'ratio':>6}")
    for h, w in ((480, 854), (720, 1280), (1080, 1920)):
        for large in (False, True):
            pred, gt = masks(args.frames, h, w, large)
            ref = official_frames(pred, gt)
            fs = frame_scores(pred, gt)
            got = np.stack([fs.J, fs.F_new, fs.F], axis=1)
            assert got.tolist() == ref.tolist(), "values differ"
            t_off, t_rb = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                official_frames(pred, gt)
                t_off.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                frame_scores(pred, gt)
                t_rb.append(time.perf_counter() - t0)
            a, b = float(np.median(t_off)), float(np.median(t_rb))
            print(f"{f'{h}x{w}':>10} {'large' if large else 'small':>6} {a:>10.3f} {b:>10.3f} {a / b:>5.1f}x")


if __name__ == "__main__":
    main()
