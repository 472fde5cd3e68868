"""The validating RLE reader (``refbench.rle.decode_rle``) against ``pycocotools.mask.decode``, in one process.

    python benchmarks/bench_rle.py [--frames 80] [--repeats 7]

Inputs: moving ellipses at 720x1280 (the shape of the MeViS-style set of ``bench_eval.py``), encoded with
pycocotools. Peer: ``pycocotools.mask.decode`` plus the C-order copy every refbench caller needs (what the
RLE readers did before issue 8; no validation). refbench: ``refbench.rle.decode_rle`` -- parse the counts,
check them (alphabet, truncation, negative runs, total = H x W, size) and decode. Both outputs are checked
equal bit for bit before the times (best of ``--repeats``) and their ratio are printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    from pycocotools import mask as mask_utils

    from refbench.rle import check_rle, decode_rle

    h, w = 720, 1280
    yy, xx = np.ogrid[:h, :w]
    masks = [((yy - 300 - t) / 100.0) ** 2 + ((xx - 600 + 2 * t) / 150.0) ** 2 <= 1 for t in range(args.frames)]
    rles = []
    for m in masks:
        e = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rles.append({"size": [h, w], "counts": e["counts"].decode("ascii")})

    def peer() -> list[np.ndarray]:
        return [np.ascontiguousarray(mask_utils.decode({"size": r["size"], "counts": r["counts"].encode("ascii")}))
                for r in rles]

    def ours() -> list[np.ndarray]:
        return [decode_rle(r, "bench") for r in rles]

    def check_only() -> None:
        for r in rles:
            check_rle(r, "bench")

    assert all(np.array_equal(a, b) for a, b in zip(peer(), ours())), "decoded masks differ"
    times = {}
    for name, fn in (("pycocotools decode (no checks)", peer), ("refbench check + decode", ours),
                     ("refbench check only", check_only)):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    base = times["pycocotools decode (no checks)"]
    print(f"{args.frames} RLE frames at {h}x{w}; best of {args.repeats}; decoded masks identical: True")
    for name, t in times.items():
        print(f"{name:<32} {t * 1000 / args.frames:8.3f} ms/frame  {base / t:6.2f}x")


if __name__ == "__main__":
    main()
