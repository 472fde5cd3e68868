"""Per-frame J and F: refbench against vos-benchmark on the same in-memory masks, in one process.

    pip install -e ".[bench]"
    python benchmarks/bench_jf.py [--frames 120] [--repeats 3] [--threads 1] [--device cpu|cuda]

Masks: the real DAVIS ground truth and OSVOS predictions of ../shared/data/davis_osvos13 (or
$REFBENCH_SHARED_DATA), resized with nearest neighbour to each size; procedurally generated blobs when that
data is absent. vos-benchmark (PyPI 0.1.0, hkchengrex) runs the official davis2017 per-frame code, one
frame at a time (``Evaluator.feed_frame``); refbench scores the whole stack with ``jaccard_and_boundary``.
Both run on the same number of CPU threads (default 1: torch.set_num_threads and cv2.setNumThreads). The
script checks that both give identical values, then prints frames per second for each and the ratio; the
median of ``--repeats`` timings is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

SIZES = [(480, 854), (720, 1280), (1080, 1920)]


def load_masks(n_frames: int) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    root = Path(os.environ.get("REFBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    davis = root / "davis_osvos13"
    if davis.is_dir():
        from PIL import Image

        gts, preds = [], []
        for seq in sorted(p.name for p in (davis / "Annotations" / "480p").iterdir()):
            for f in sorted((davis / "Annotations" / "480p" / seq).glob("*.png")):
                gts.append((np.array(Image.open(f)) > 0).astype(np.uint8))
                preds.append((np.array(Image.open(davis / "predictions" / "osvos" / seq / f.name)) > 0).astype(np.uint8))
                if len(gts) == n_frames:
                    return gts, preds, "DAVIS-2016 val GT and OSVOS predictions (davis_osvos13)"
        return gts, preds, "DAVIS-2016 val GT and OSVOS predictions (davis_osvos13)"
    import cv2

    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(n_frames):
        base = cv2.GaussianBlur(rng.random((480, 854)).astype(np.float32), (0, 0), 40)
        g = (base > np.quantile(base, 0.7)).astype(np.uint8)
        gts.append(g)
        preds.append(np.roll(g, tuple(rng.integers(-6, 7, size=2)), axis=(0, 1)))
    return gts, preds, "synthetic blobs (golden data absent)"


def resize(masks: list[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = hw
    return np.stack([m if m.shape == hw else cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in masks])


def time_vos_benchmark(pred: np.ndarray, gt: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    from vos_benchmark.evaluator import Evaluator

    ev = Evaluator()
    t0 = time.perf_counter()
    for p, g in zip(pred, gt):
        ev.feed_frame(p, g)
    elapsed = time.perf_counter() - t0
    return elapsed, np.array(ev.object_iou[1]), np.array(ev.boundary_f[1])


def time_refbench(pred: np.ndarray, gt: np.ndarray, device: str) -> tuple[float, np.ndarray, np.ndarray]:
    import torch

    from refbench.metrics import jaccard_and_boundary

    p = torch.from_numpy(pred).to(device)
    g = torch.from_numpy(gt).to(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    j, f = jaccard_and_boundary(p, g)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    return elapsed, j.cpu().numpy(), f.cpu().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    gts, preds, source = load_masks(args.frames)
    print(f"masks: {len(gts)} frames of {source}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; threads: {args.threads}; "
          f"torch {torch.__version__}; refbench device: {args.device}")
    if args.device.startswith("cuda"):
        print(f"gpu: {torch.cuda.get_device_name(0)}")
    print(f"{'size':>10} {'frames':>6} {'vos-benchmark fps':>18} {'refbench fps':>13} {'ratio':>7}  identical")
    for hw in SIZES:
        gt, pred = resize(gts, hw), resize(preds, hw)
        time_refbench(pred[:4], gt[:4], args.device)  # warm-up
        t_ref, t_vb = [], []
        for _ in range(args.repeats):
            dt, j_ref, f_ref = time_refbench(pred, gt, args.device)
            t_ref.append(dt)
            dt, j_vb, f_vb = time_vos_benchmark(pred, gt)
            t_vb.append(dt)
        same = bool(np.array_equal(j_ref, j_vb) and np.array_equal(f_ref, f_vb))
        fps_ref = len(gt) / statistics.median(t_ref)
        fps_vb = len(gt) / statistics.median(t_vb)
        print(f"{hw[0]:>4}x{hw[1]:<5} {len(gt):>6} {fps_vb:>18.1f} {fps_ref:>13.1f} {fps_ref / fps_vb:>6.1f}x  {same}")
        if not same:
            raise SystemExit(f"values differ at {hw}: max |dJ| {np.abs(j_ref - j_vb).max()}, max |dF| {np.abs(f_ref - f_vb).max()}")


if __name__ == "__main__":
    main()
