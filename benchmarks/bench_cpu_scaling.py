"""How well this machine itself scales from 1 to 2 processes: the ceiling for refbench's scoring scaling.

Two CPU-bound kernels, each timed as two tasks on one process and then on two forked processes:
``words`` (XOR, shift, AND and popcount over 720p x 80 frames of packed uint64 words, the shape of refbench's
J and F work) and ``python`` (a pure interpreter loop, no memory traffic). Efficiency = t(1 process) / (2 x
t(2 processes)); on two independent cores both are near 100%. On a VM whose vCPUs share a physical core or a
CPU quota they are lower, and refbench's 1 -> 2 process figure in ``bench_eval.py --processes 1 2`` cannot beat
them.

    python benchmarks/bench_cpu_scaling.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np

WORDS = 720 * 1280 // 64 * 80


def words(_: int) -> int:
    a = np.random.default_rng(0).integers(0, 2**63, size=WORDS, dtype=np.uint64)
    total = 0
    for _ in range(60):
        b = a ^ (a >> np.uint64(1))
        total += int(np.bitwise_count(b & a).sum())
    return total


def python(_: int) -> int:
    x = 0
    for i in range(6_000_000):
        x += i * i % 7
    return x


def efficiency(fn, repeat: int) -> tuple[float, float, float]:
    one = two = float("inf")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pool.map(fn, [0, 1])  # warm the workers
        for _ in range(repeat):
            t = time.perf_counter()
            r1 = [fn(0), fn(1)]
            one = min(one, time.perf_counter() - t)
            t = time.perf_counter()
            r2 = pool.map(fn, [0, 1])
            two = min(two, time.perf_counter() - t)
            assert r1 == r2
    return one, two, one / (2 * two)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each timing")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    for fn in (words, python):
        one, two, eff = efficiency(fn, args.repeat)
        print(f"{fn.__name__:<7} 2 tasks on 1 process {one:.2f} s, on 2 processes {two:.2f} s: "
              f"scaling {one / two:.2f}x, efficiency {eff * 100:.0f}%")


if __name__ == "__main__":
    main()
