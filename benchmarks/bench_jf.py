"""Per-frame J and F: refbench against vos-benchmark on the same in-memory masks, in one process.

    pip install -e ".[bench]"
    python benchmarks/bench_jf.py [--frames 120] [--repeats 3] [--threads 1] [--device cpu|cuda] [--tile 1]
                                  [--peer vos-benchmark|cpu]

Masks: the real DAVIS ground truth and OSVOS predictions of ../shared/data/davis_osvos13 (or
$REFBENCH_SHARED_DATA), resized with nearest neighbour to each size; procedurally generated blobs when that
data is absent. vos-benchmark (PyPI 0.1.0, hkchengrex) runs the official davis2017 per-frame code, one
frame at a time (``Evaluator.feed_frame``); refbench scores the whole stack with ``jaccard_and_boundary``.
Both run on the same number of CPU threads (default 1: torch.set_num_threads and cv2.setNumThreads). The
script checks that both give identical values, then prints frames per second for each and the ratio; the
median of ``--repeats`` timings is reported.

On a GPU (``--device cuda``), ``--tile N`` scores the frames N times over in one call (masks resident on the
device: frame-pairs per second at a batch a GPU can fill), and ``--peer cpu`` compares with refbench's own
CPU values instead of timing vos-benchmark (for a machine without the ``bench`` extra).
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
    ap.add_argument("--tile", type=int, default=1, help="score the frames this many times over in one call")
    ap.add_argument("--peer", choices=("vos-benchmark", "cpu"), default="vos-benchmark")
    args = ap.parse_args()

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.peer == "vos-benchmark":
        try:
            import vos_benchmark  # noqa: F401
        except ImportError:
            print("vos-benchmark is not installed (pip install -e '.[bench]'): comparing with refbench on CPU")
            args.peer = "cpu"
    gts, preds, source = load_masks(args.frames)
    print(f"masks: {len(gts)} frames of {source}" + (f", tiled x{args.tile}" if args.tile > 1 else ""))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f}; threads: {args.threads}; torch {torch.__version__}; refbench device: {args.device}")
    if args.device.startswith("cuda"):
        print(f"gpu: {torch.cuda.get_device_name(0)}")
    peer_name = "vos-benchmark fps" if args.peer == "vos-benchmark" else "refbench CPU fps"
    print(f"{'size':>10} {'frames':>6} {peer_name:>18} {'refbench fps':>13} {'ratio':>7}  identical")
    for hw in SIZES:
        gt, pred = resize(gts, hw), resize(preds, hw)
        big_gt = np.concatenate([gt] * args.tile) if args.tile > 1 else gt
        big_pred = np.concatenate([pred] * args.tile) if args.tile > 1 else pred
        time_refbench(pred[:4], gt[:4], args.device)  # warm-up
        t_ref, t_peer = [], []
        j_peer = f_peer = None
        for _ in range(args.repeats):
            dt, j_ref, f_ref = time_refbench(big_pred, big_gt, args.device)
            t_ref.append(dt)
            if args.peer == "vos-benchmark":
                dt, j_peer, f_peer = time_vos_benchmark(pred, gt)
            else:
                dt, j_peer, f_peer = time_refbench(pred, gt, "cpu")
            t_peer.append(dt)
        same = bool(all(np.array_equal(j_ref[i * len(gt):(i + 1) * len(gt)], j_peer)
                        and np.array_equal(f_ref[i * len(gt):(i + 1) * len(gt)], f_peer) for i in range(args.tile)))
        fps_ref = len(big_gt) / statistics.median(t_ref)
        fps_peer = len(gt) / statistics.median(t_peer)
        print(f"{hw[0]:>4}x{hw[1]:<5} {len(big_gt):>6} {fps_peer:>18.1f} {fps_ref:>13.1f} {fps_ref / fps_peer:>6.1f}x  {same}")
        if not same:
            raise SystemExit(f"values differ at {hw}")


if __name__ == "__main__":
    main()
