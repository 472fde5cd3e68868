"""Whole-set MeViS-style evaluation: ``refbench eval`` against the official per-expression loop, in one process.

    pip install -e ".[bench]"
    python benchmarks/bench_eval.py [--fraction 0.05] [--workdir /tmp/bench_eval] [--processes 1 2]
                                    [--png-writer cv2|pil] [--device cpu|cuda] [--skip-official]

Builds a synthetic set shaped like MeViS valid_u (793 expressions over 50 videos, 80 frames each, 720x1280;
``--fraction`` scales the number of videos), with ground truth as RLE in ``mask_dict.json`` and predictions
as 'L' 0/255 PNGs (``<video>/<exp>/<frame>.png``; written by OpenCV, or by PIL as the official inference
scripts do, with ``--png-writer pil``) and as RLE JSON. Then, on the same files:

- official: a faithful copy of the per-expression work of MeViS ``tools/eval_mevis.py`` (commit 7c0620b):
  union the RLE ground truth with ``+=``, read each prediction with ``cv2.imread(..., IMREAD_GRAYSCALE)``, and
  score with davis2017 ``db_eval_iou`` / ``db_eval_boundary`` (per-frame ``_seg2bmap`` and ``cv2.dilate`` with a
  ``skimage.morphology.disk``, as vos-benchmark runs them), one expression after the other in one process;
- refbench: ``refbench.evaluate.run.evaluate`` (what ``refbench eval`` runs) on the PNG folder and on the RLE JSON,
  once per ``--processes`` value (scoring processes; 1 is the same single process as the official loop), so
  the scaling efficiency from 1 to N processes is t1 / (N * tN).

Both read and decode every file; the script checks that all per-expression J and F agree exactly and prints the
times and the ratios. ``--skip-official`` (e.g. on a GPU machine) checks refbench's CPU values against its
``--device`` values instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

N_VIDEOS, N_EXPR, N_FRAMES, H, W = 50, 793, 80, 720, 1280


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def build(workdir: Path, fraction: float, seed: int = 0, writer: str = "cv2") -> tuple[Path, Path, Path]:
    import cv2
    from PIL import Image
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    n_videos = max(1, round(N_VIDEOS * fraction))
    per_video = [N_EXPR // N_VIDEOS + (1 if v < N_EXPR % N_VIDEOS else 0) for v in range(n_videos)]
    root, preds = workdir / "mevis", workdir / "pred_png"
    split = root / "valid_u"
    split.mkdir(parents=True)
    meta: dict = {"videos": {}}
    mask_dict: dict = {}
    rle_preds: dict = {}
    anno = 0
    frames = [f"{i:05d}" for i in range(N_FRAMES)]
    for v in range(n_videos):
        vid = f"vid{v:04d}"
        n_obj = 3
        objs = []
        for _ in range(n_obj):
            cy, cx = rng.uniform(150, H - 150), rng.uniform(150, W - 150)
            vy, vx = rng.uniform(-3, 3, size=2)
            ry, rx = rng.uniform(40, 140, size=2)
            masks = np.stack([_ellipse(H, W, cy + vy * t, cx + vx * t, ry, rx) for t in range(N_FRAMES)])
            masks[rng.integers(0, N_FRAMES, size=5)] = False  # the object is absent in a few frames
            objs.append((str(anno), masks))
            mask_dict[str(anno)] = [
                None if not m.any() else {**mask_utils.encode(np.asfortranarray(m.astype(np.uint8))),
                                          "counts": None} for m in masks
            ]
            for i, m in enumerate(masks):
                if m.any():
                    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                    mask_dict[str(anno)][i] = {"size": rle["size"], "counts": rle["counts"].decode()}
            anno += 1
        exps = {}
        for e in range(per_video[v]):
            chosen = sorted(rng.choice(n_obj, size=int(rng.integers(1, 3)), replace=False).tolist())
            exps[str(e)] = {"exp": f"object {chosen}", "obj_id": chosen, "anno_id": [objs[c][0] for c in chosen]}
            gt = np.any(np.stack([objs[c][1] for c in chosen]), axis=0)
            shift = tuple(int(s) for s in rng.integers(-6, 7, size=2))
            pred = np.roll(gt, shift, axis=(1, 2))
            out = preds / vid / str(e)
            out.mkdir(parents=True)
            rle_frames = []
            for name, m in zip(frames, pred):
                if writer == "pil":
                    Image.fromarray(m.astype(np.uint8) * 255).save(out / f"{name}.png")
                else:
                    cv2.imwrite(str(out / f"{name}.png"), m.astype(np.uint8) * 255)
                r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rle_frames.append({"size": r["size"], "counts": r["counts"].decode()})
            rle_preds.setdefault(vid, {})[str(e)] = rle_frames
        meta["videos"][vid] = {"expressions": exps, "vid_id": v, "frames": frames}
    (split / "meta_expressions.json").write_text(json.dumps(meta))
    (split / "mask_dict.json").write_text(json.dumps(mask_dict))
    rle_path = workdir / "pred_rle.json"
    rle_path.write_text(json.dumps(rle_preds))
    return root, preds, rle_path


def official_loop(root: Path, preds: Path) -> dict[str, tuple[float, float]]:
    """The per-expression work of MeViS eval_mevis.py, one expression after the other."""
    import cv2
    from official_davis import db_eval_iou, f_measure
    from pycocotools import mask as mask_utils

    meta = json.loads((root / "valid_u" / "meta_expressions.json").read_text())["videos"]
    mask_dict = json.loads((root / "valid_u" / "mask_dict.json").read_text())
    out = {}
    for vid, video in meta.items():
        for exp_id, exp in video["expressions"].items():
            frames = video["frames"]
            h, w = cv2.imread(str(preds / vid / exp_id / f"{frames[0]}.png"), cv2.IMREAD_GRAYSCALE).shape
            gt = np.zeros((len(frames), h, w), dtype=np.uint8)
            for a in exp["anno_id"]:
                for i, rle in enumerate(mask_dict[str(a)]):
                    if rle is not None:
                        gt[i] += mask_utils.decode(rle)
            pred = np.zeros_like(gt)
            for i, f in enumerate(frames):
                pred[i] = cv2.imread(str(preds / vid / exp_id / f"{f}.png"), cv2.IMREAD_GRAYSCALE)
            j = db_eval_iou(gt, pred).mean()
            f = np.mean([f_measure(pred[i], gt[i]) for i in range(len(frames))])
            out[f"{vid}_{exp_id}"] = (float(j), float(f))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fraction", type=float, default=0.05, help="share of the 50 videos / 793 expressions")
    ap.add_argument("--workdir", default="/tmp/refbench_bench_eval")
    ap.add_argument("--processes", type=int, nargs="+", default=[1], help="refbench scoring processes to time")
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)  # old name of --processes
    ap.add_argument("--png-writer", choices=("cv2", "pil"), default="cv2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse a set already built in --workdir")
    args = ap.parse_args()
    if args.threads is not None:
        args.processes = [args.threads]

    import cv2
    import torch

    from refbench.evaluate.run import evaluate

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    work = Path(args.workdir)
    t0 = time.perf_counter()
    if args.reuse and (work / "pred_rle.json").is_file():
        root, preds, rle = work / "mevis", work / "pred_png", work / "pred_rle.json"
    else:
        shutil.rmtree(work, ignore_errors=True)
        root, preds, rle = build(work, args.fraction, writer=args.png_writer)
    n_exp = sum(len(v["expressions"]) for v in json.loads((root / "valid_u" / "meta_expressions.json").read_text())["videos"].values())
    print(f"set: {n_exp} expressions x {N_FRAMES} frames at {H}x{W} (fraction {args.fraction} of MeViS valid_u), "
          f"PNGs by {args.png_writer}, ready in {time.perf_counter() - t0:.0f} s")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; torch "
          f"{torch.__version__}; refbench device {args.device}, processes {args.processes}")

    if args.skip_official:
        t0 = time.perf_counter()
        cpu, _ = evaluate("mevis_val_u", rle, root=root, workers=max(args.processes))
        reference = {row["key"]: (row["J"], row["F"]) for row in cpu.per_sample}
        t_off, ref_label = time.perf_counter() - t0, f"refbench CPU (RLE, {max(args.processes)} proc)"
    else:
        t0 = time.perf_counter()
        official = official_loop(root, preds)
        t_off, ref_label = time.perf_counter() - t0, "official loop (PNG)"
        reference = {k: (j * 100, f * 100) for k, (j, f) in official.items()}  # refbench rows are percent
    timings: dict[tuple[str, int], float] = {}
    for label, path in (("png", preds), ("rle", rle)):
        for n_proc in args.processes:
            t0 = time.perf_counter()
            result, _ = evaluate("mevis_val_u", path, root=root, workers=n_proc, device=args.device)
            timings[(label, n_proc)] = time.perf_counter() - t0
            ours = {row["key"]: (row["J"], row["F"]) for row in result.per_sample}
            if ours != reference:
                bad = [k for k in reference if ours.get(k) != reference[k]][:5]
                raise SystemExit(f"{label}, {n_proc} processes: per-expression values differ from the reference: {bad}")
    frames = n_exp * N_FRAMES
    print(f"{'evaluator':<34} {'seconds':>9} {'frames/s':>9} {'ratio':>7}")
    print(f"{ref_label:<34} {t_off:>9.1f} {frames / t_off:>9.1f} {1.0:>6.1f}x")
    for (label, n_proc), t in timings.items():
        name = f"refbench eval ({label.upper()}, {n_proc} proc)"
        print(f"{name:<34} {t:>9.1f} {frames / t:>9.1f} {t_off / t:>6.1f}x")
    for label in ("png", "rle"):
        base = timings.get((label, 1))
        for n_proc in args.processes:
            if base is not None and n_proc > 1:
                eff = base / (n_proc * timings[(label, n_proc)])
                print(f"scaling {label.upper()} 1 -> {n_proc} processes: {base / timings[(label, n_proc)]:.2f}x, "
                      f"efficiency {eff:.0%}")
    print(f"per-expression J and F identical to the {'CPU run' if args.skip_official else 'official loop'} "
          "(percent = the official fractions x 100): True")


if __name__ == "__main__":
    main()
