"""What `refbench run` itself costs: a null adapter (fixed masks, no work) through the whole run, stage by stage.

    python benchmarks/bench_harness.py [--expressions 800] [--videos 50] [--frames 80 | --frames 4 36]
                                       [--size 720x1280] [--workdir DIR] [--model null|oracle] [--processes 1]
                                       [--model-ms 10] [--no-overlap]

Builds a synthetic MeViS-layout set (``--expressions`` over ``--videos`` videos, default 16 per video as in
MeViS valid_u; ``--frames N`` per video, or ``--frames A B`` drawn per video as in Ref-YouTube-VOS valid; 3
moving objects per video, RLE ground truth in ``mask_dict.json``; no JPEGs: the null adapter needs no
pixels), then runs ``refbench.runs.runner.run`` with
the benchmark-only adapter ``null`` (defined here and registered for this process only; no card ships with
it): it returns the same precomputed (T, H, W) masks for every expression. Everything the runner does per
frame is then harness: the mask check, COCO RLE encoding, the SQLite store, then the merge into
predictions.json and the scoring of it. The run happens in a child process so that its peak RSS (and that
of its scoring workers) is measured alone. Printed: seconds per stage, ms per frame of the predict stage
(the harness cost next to a model), a per-frame breakdown of that stage measured in isolation, and peak
RSS. ``--model oracle`` runs the ground-truth adapter instead (it decodes the dense GT per expression).
``--model-ms 10`` makes the null adapter sleep 10 ms per frame, a stand-in for a GPU model (a sleep frees the
GIL as a CUDA wait does): the predict stage's time beyond it is what the harness adds next to such a model,
with the mask check and RLE encoding of each batch running beside the next prediction (default) or in line
(``--no-overlap``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _ellipses(n: int, h: int, w: int, cy: float, cx: float, ry: float, rx: float, vy: float, vx: float) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return np.stack([((yy - cy - vy * t) / ry) ** 2 + ((xx - cx - vx * t) / rx) ** 2 <= 1.0 for t in range(n)])


def build(root: Path, n_expr: int, n_videos: int, frames_range: tuple[int, int], h: int, w: int,
          seed: int = 0) -> int:
    """A MeViS valid_u layout below ``root`` (RLE GT only); returns the number of frames over expressions."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    split = root / "valid_u"
    split.mkdir(parents=True)
    meta: dict = {"videos": {}}
    mask_dict: dict = {}
    anno = 0
    total = 0
    per_video = [n_expr // n_videos + (1 if v < n_expr % n_videos else 0) for v in range(n_videos)]
    for v in range(n_videos):
        n_frames = int(rng.integers(frames_range[0], frames_range[1] + 1))
        frames = [f"{i:05d}" for i in range(n_frames)]
        objs = []
        for _ in range(3):
            m = _ellipses(n_frames, h, w, rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w,
                          rng.uniform(0.05, 0.2) * h, rng.uniform(0.05, 0.2) * w, *rng.uniform(-2, 2, size=2))
            enc = mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8)))
            mask_dict[str(anno)] = [{"size": e["size"], "counts": e["counts"].decode()} if fr.any() else None
                                    for e, fr in zip(enc, m)]
            objs.append(str(anno))
            anno += 1
        exps = {}
        total += per_video[v] * n_frames
        for e in range(per_video[v]):
            chosen = sorted(rng.choice(3, size=int(rng.integers(1, 3)), replace=False).tolist())
            exps[str(e)] = {"exp": f"object {chosen}", "obj_id": chosen, "anno_id": [objs[c] for c in chosen]}
        meta["videos"][f"vid{v:05d}"] = {"expressions": exps, "vid_id": v, "frames": frames, "height": h, "width": w}
    (split / "meta_expressions.json").write_text(json.dumps(meta))
    (split / "mask_dict.json").write_text(json.dumps(mask_dict))
    return total


class NullAdapter:  # the real base class is imported lazily in _adapter_class (keeps --help instant)
    pass


def _adapter_class():
    from refbench.adapters.base import Adapter, VideoPrediction

    class Null(Adapter):
        """Benchmark-only: the same precomputed masks for every request (a fixed moving ellipse), no work."""

        name = "null"
        tasks = frozenset({"refvos"})
        needs_pixels = False
        _cache: dict = {}

        model_ms = 0.0  # --model-ms: a stand-in model's time per frame (a sleep, which frees the GIL as CUDA waits do)

        def predict_video(self, requests):
            if self.model_ms:
                time.sleep(self.model_ms * 1e-3 * sum(len(r.frames) for r in requests))
            out = []
            for r in requests:
                stack = self._cache.get(r.size)
                if stack is None or len(stack) < len(r.frames):
                    h, w = r.size
                    stack = self._cache[r.size] = _ellipses(max(len(r.frames), 80), h, w, h * 0.5, w * 0.5, h * 0.2,
                                                            w * 0.15, 1, 1)
                out.append(VideoPrediction(stack[: len(r.frames)]))  # a view: no work, no new memory
            return out

    return Null


def _register_null() -> None:
    from refbench.adapters import registry

    cards = registry.adapter_cards()
    cards["null"] = registry.AdapterCard(name="null", title="benchmark-only null adapter",
                                         code="bench_harness:NullAdapter", tasks=("refvos",), needs_pixels=False,
                                         origin="benchmark")


def child(args: argparse.Namespace) -> None:
    """Run once and print one JSON line with the stage times and peak RSS."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import bench_harness

    bench_harness.NullAdapter = _adapter_class()  # what the card's code reference resolves to
    bench_harness.NullAdapter.model_ms = args.model_ms
    _register_null()
    from refbench.evaluate import run as eval_run
    from refbench.runs import runner

    times: dict[str, float] = {}

    def timed(name, fn):
        def wrap(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        return wrap

    if args.no_overlap:  # encode in line, as an adapter with its own predict_payloads is run
        runner._BASE_PREDICT_PAYLOADS = None
    runner._predict = timed("predict", runner._predict)
    runner.merge_parts = timed("merge (index the parts)", runner.merge_parts)
    runner.write_predictions = timed("write predictions.json", runner.write_predictions)
    runner.write_diagnostics = timed("write diagnostics.jsonl", runner.write_diagnostics)
    eval_run.evaluate = timed("score predictions.json", eval_run.evaluate)
    if args.processes:
        orig = eval_run.evaluate

        def with_workers(*a, **k):
            k.setdefault("workers", args.processes)
            return orig(*a, **k)

        eval_run.evaluate = with_workers
    t0 = time.perf_counter()
    res = runner.run(runner.RunConfig(model=args.model, dataset="mevis_val_u", root=str(args.workdir / "mevis"),
                                      out=str(args.workdir / f"run_{args.model}"), overwrite=True))
    times["total run"] = time.perf_counter() - t0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"times": times, "rss_mib": rss_self, "rss_children_mib": rss_children,
                      "metrics": res.summary["metrics"] if res.summary else None, "predicted": res.predicted}))


def breakdown(n_frames: int, h: int, w: int, repeats: int = 3) -> dict[str, float]:
    """ms per frame of each per-frame step of the predict stage, on one expression of null masks."""
    import tempfile

    from refbench.adapters.base import Frames, VideoPrediction, VideoRequest, check_video_prediction
    from refbench.runs.store import RunStore, Stored, encode_masks

    masks = _ellipses(n_frames, h, w, h * 0.5, w * 0.5, h * 0.2, w * 0.15, 1, 1)
    req = VideoRequest("v/0", "v", "0", "x", Frames([str(i) for i in range(n_frames)], ["x"] * n_frames), (h, w))
    out: dict[str, float] = {}

    def best(fn) -> float:
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts) / n_frames * 1e3

    out["mask check"] = best(lambda: check_video_prediction(req, VideoPrediction(masks), "null"))
    out["COCO RLE encoding"] = best(lambda: encode_masks(masks))
    payload = encode_masks(masks)
    with tempfile.TemporaryDirectory() as d:
        store = RunStore(Path(d) / "part-00000.sqlite", {"adapter": "null", "fingerprint": "x", "dataset": "d",
                                                         "task": "refvos", "annotation_sha256": "y"})
        i = iter(range(10**6))
        out["store (one transaction per expression)"] = best(
            lambda: store.put_many([Stored(f"v/{next(i)}", "v", payload, {}, 0.0)]))
        store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expressions", type=int, default=800)
    ap.add_argument("--videos", type=int, default=None, help="default: expressions / 16")
    ap.add_argument("--frames", type=int, nargs="+", default=[80], help="N, or A B (drawn per video)")
    ap.add_argument("--size", default="720x1280", help="HxW")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/refbench_bench_harness"))
    ap.add_argument("--model", default="null")
    ap.add_argument("--processes", type=int, default=None, help="scoring processes (default: refbench's)")
    ap.add_argument("--model-ms", type=float, default=0.0,
                    help="null adapter: sleep this many ms per frame (a model's time; the harness is the rest)")
    ap.add_argument("--no-overlap", action="store_true",
                    help="check and encode each batch in line instead of beside the next prediction")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--reuse", action="store_true", help="reuse a set already built in --workdir")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    import platform
    import shutil

    h, w = (int(v) for v in args.size.split("x"))
    root = args.workdir / "mevis"
    videos = args.videos or -(-args.expressions // 16)
    lo, hi = args.frames[0], args.frames[-1]
    t0 = time.perf_counter()
    count = args.workdir / "frames.txt"
    if not (args.reuse and count.is_file()):
        shutil.rmtree(args.workdir, ignore_errors=True)
        count.parent.mkdir(parents=True)
        frames = build(root, args.expressions, videos, (lo, hi), h, w)
        count.write_text(str(frames))
    frames = int(count.read_text())
    print(f"set: {args.expressions} expressions over {videos} videos, {lo}-{hi} frames per video ({frames} "
          f"expression-frames) at {h}x{w}, RLE GT; ready in {time.perf_counter() - t0:.0f} s")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; "
          f"model {args.model}; scoring processes {args.processes or 'default'}")
    cmd = [sys.executable, __file__, "--child", "--workdir", str(args.workdir), "--model", args.model,
           "--model-ms", str(args.model_ms)] + (["--no-overlap"] if args.no_overlap else [])
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"the run failed:\n{proc.stderr[-4000:]}")
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'stage':<40} {'seconds':>9} {'ms/frame':>9}")
    for name, secs in doc["times"].items():
        print(f"{name:<40} {secs:>9.1f} {secs / frames * 1e3:>9.3f}")
    print(f"peak RSS: run process {doc['rss_mib']:.0f} MiB, largest scoring worker {doc['rss_children_mib']:.0f} MiB")
    if doc["metrics"]:
        print("metrics:", {k: round(v, 6) for k, v in doc["metrics"].items()})
    if args.model == "null":
        print("predict stage, per frame, each step alone (best of 3):")
        for name, ms in breakdown(hi, h, w).items():
            print(f"  {name:<40} {ms:>7.3f} ms")
        per = doc["times"]["predict"] / frames * 1e3
        if args.model_ms:
            extra = per - args.model_ms
            print(f"predict stage per {h}p frame: {per:.3f} ms beside a {args.model_ms:g} ms/frame model: harness "
                  f"{extra:.3f} ms ({extra / args.model_ms * 100:.1f}%; encoding "
                  f"{'in line' if args.no_overlap else 'beside the next batch'})")
        else:
            print(f"harness cost per {h}p frame on one core: {per:.3f} ms ({per / 10 * 100:.1f}% of a 10 ms/frame "
                  "model)")
    print(f"peak RSS under 2 GiB: {max(doc['rss_mib'], doc['rss_children_mib']) < 2048}")


if __name__ == "__main__":
    main()
