"""The analysis layer at MeViS valid_u scale: time and size of ``refbench report``, time of ``refbench compare``'s
bootstrap, on synthetic data of the real split's shape.

    python benchmarks/bench_analysis.py [--videos 50] [--expressions 793] [--frames 80] [--size 360x640]
                                        [--work DIR] [--resamples 1000]

Data (what was scaled): MeViS valid_u has 50 videos and 793 expressions with ~80 frames each; this builds 50 videos
of ``--frames`` frames, 4 moving objects each, and 793 expressions of one or two objects, in the real MeViS layout
(``valid_u/meta_expressions.json``, ``mask_dict.json`` with one COCO RLE per object and frame, ``JPEGImages``),
read by the real ``mevis_val_u`` card. Frames are ``--size`` JPEGs (default 360x640, smaller than MeViS's typical
720p, to keep the build and the scoring of 2 x 63k frames short on a 2-core machine; the report downscales its
overlays to 320 px wide either way). Two synthetic models predict the GT moved by a few pixels per expression
(model B less), stored as run directories exactly as ``refbench run`` writes them (predictions.json, summary.json,
per_sample.csv, run.json; model B with per_frame.csv).

Measured: building the data and scoring (once, not part of the figures), then ``build_report`` of both runs
(time, page size, images), ``compare_runs`` (its bootstrap time alone, and the whole command), and the bootstrap
engine on 800 samples x 1,000 resamples. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rle(mask: np.ndarray) -> dict | None:
    from pycocotools import mask as mu

    if not mask.any():
        return None
    e = mu.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode("ascii")}


def build(root: Path, videos: int, expressions: int, frames: int, h: int, w: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    split = root / "valid_u"
    (split / "JPEGImages").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    meta: dict = {"videos": {}}
    mask_dict: dict = {}
    anno = 0
    per_video = [expressions // videos + (1 if v < expressions % videos else 0) for v in range(videos)]
    for v in range(videos):
        name = f"vid_{v:03d}"
        names = [f"{t:05d}" for t in range(frames)]
        objs = []
        for _o in range(4):
            cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            vy, vx = rng.uniform(-1, 1, 2) * 2
            ry, rx = rng.uniform(0.06, 0.15) * h, rng.uniform(0.05, 0.12) * w
            objs.append((cy, cx, vy, vx, ry, rx, rng.integers(60, 250, 3)))
        bg = rng.integers(40, 120, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w].astype(np.uint8)
        ids = list(range(anno, anno + 4))
        anno += 4
        masks = np.zeros((4, frames, h, w), bool)
        (split / "JPEGImages" / name).mkdir(exist_ok=True)
        for t in range(frames):
            img = bg.copy()
            for o, (cy, cx, vy, vx, ry, rx, col) in enumerate(objs):
                m = ((yy - (cy + vy * t)) / ry) ** 2 + ((xx - (cx + vx * t)) / rx) ** 2 <= 1
                masks[o, t] = m
                img[m] = col
            Image.fromarray(img).save(split / "JPEGImages" / name / f"{names[t]}.jpg", quality=85)
        for o, aid in enumerate(ids):
            mask_dict[str(aid)] = [_rle(masks[o, t]) for t in range(frames)]
        exps = {}
        for e in range(per_video[v]):
            chosen = sorted(rng.choice(4, size=1 + int(rng.random() < 0.3), replace=False).tolist())
            exps[str(e)] = {"exp": f"object {' and '.join(map(str, chosen))} of {name}", "obj_id": chosen,
                            "anno_id": [ids[o] for o in chosen]}
        meta["videos"][name] = {"expressions": exps, "vid_id": v, "frames": names}
    (split / "meta_expressions.json").write_text(json.dumps(meta))
    (split / "mask_dict.json").write_text(json.dumps(mask_dict))


def predictions(root: Path, out: Path, max_shift: int, seed: int) -> Path:
    """The GT of every expression moved by a random (dy, dx) within ``max_shift`` pixels, as predictions.json."""
    from refbench.data.mevis import MevisLoader

    rng = np.random.default_rng(seed)
    loader = MevisLoader(root, "valid_u")
    doc: dict = {}
    for s in loader.samples():
        gt = loader.gt_masks(s) > 0
        dy, dx = rng.integers(-max_shift, max_shift + 1, 2)
        p = np.roll(gt, (int(dy), int(dx)), axis=(1, 2))
        if rng.random() < 0.05:  # a few expressions lose their second half
            p[len(p) // 2:] = False
        doc.setdefault(s.video, {})[s.exp_id] = [_rle(m) for m in p]
    out.mkdir(parents=True, exist_ok=True)
    (out / "predictions.json").write_text(json.dumps(doc, separators=(",", ":")))
    return out / "predictions.json"


def score(root: Path, run: Path, model: str, per_frame: bool) -> None:
    from refbench.evaluate.per_frame import write_per_frame
    from refbench.evaluate.run import evaluate, write_csv, write_json

    res, summary = evaluate("mevis_val_u", run / "predictions.json", root=root, per_frame=per_frame)
    summary["run"] = {"model": model, "fingerprint": model * 8, "run_dir": str(run)}
    write_json(summary, run / "summary.json")
    write_csv(res.per_sample, run / "per_sample.csv")
    if per_frame:
        write_per_frame(res.per_frame, run / "per_frame.csv")
    (run / "run.json").write_text(json.dumps({
        "status": "done", "config": {"model": model, "dataset": "mevis_val_u", "root": str(root)},
        "header": {"adapter": model, "fingerprint": model * 8, "dataset": "mevis_val_u", "task": "refvos",
                   "annotation_sha256": summary["provenance"]["annotation_sha256"]},
        "provenance": {"refbench_version": summary["provenance"]["refbench_version"], "device": "cpu"}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=50)
    ap.add_argument("--expressions", type=int, default=793)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--size", default="360x640")
    ap.add_argument("--work", default=None, help="Folder for the data and runs (kept; reused when complete).")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    h, w = (int(x) for x in args.size.split("x"))
    work = Path(args.work or tempfile.mkdtemp(prefix="refbench-bench-analysis-"))
    root = work / "mevis"
    runs = [work / "runs" / "model_a", work / "runs" / "model_b"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; work folder {work}")
    t = time.perf_counter()
    if not (root / "valid_u" / "mask_dict.json").is_file():
        build(root, args.videos, args.expressions, args.frames, h, w)
    for run, shift, seed in ((runs[0], 6, 1), (runs[1], 3, 2)):
        if not (run / "summary.json").is_file():
            predictions(root, run, shift, seed)
            score(root, run, run.name, per_frame=run is runs[1])
    print(f"data and scoring (once, not measured below): {time.perf_counter() - t:.1f} s; {args.videos} videos, "
          f"{args.expressions} expressions, {args.frames} frames of {h}x{w}")

    from refbench.analysis.bootstrap import paired_bootstrap
    from refbench.analysis.compare import compare_runs
    from refbench.analysis.report import ReportOptions, build_report
    from refbench.analysis.rundir import open_run

    out = work / "report.html"
    t = time.perf_counter()
    res = build_report([open_run(r) for r in runs], out, ReportOptions())
    secs = time.perf_counter() - t
    print(f"report of 2 runs x {args.expressions} expressions: {secs:.2f} s, {res.bytes / 2**20:.2f} MiB "
          f"({res.bytes:,} bytes), {res.images} overlay images")
    t = time.perf_counter()
    cmp = compare_runs(open_run(runs[0]), open_run(runs[1]), resamples=args.resamples)
    total = time.perf_counter() - t
    print(f"compare {args.expressions} expressions x {args.resamples} resamples: bootstrap {cmp.seconds * 1000:.1f} ms "
          f"(whole command {total:.2f} s, reading both runs included); J&F difference "
          f"{cmp.metrics[-1].b - cmp.metrics[-1].a:+.2f}")
    from refbench.analysis.aggregate import aggregation

    rng = np.random.default_rng(0)
    rows_a = [{"key": str(i), "J": repr(float(x)), "F": repr(float(x))} for i, x in enumerate(rng.uniform(0, 100, 800))]
    rows_b = [{"key": str(i), "J": repr(float(x)), "F": repr(float(x))} for i, x in enumerate(rng.uniform(0, 100, 800))]
    m = {"J": 0.0, "F": 0.0, "J&F": 0.0}
    a, b = (aggregation("mevis", rows, "key", m, "refvos") for rows in (rows_a, rows_b))
    best = []
    for _ in range(5):
        t = time.perf_counter()
        paired_bootstrap(a.values, b.values, 800, resamples=1000, seed=0)
        best.append(time.perf_counter() - t)
    print(f"bootstrap engine, 800 samples x 1000 resamples, 3 metrics: median {np.median(best) * 1000:.1f} ms "
          f"of 5")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
