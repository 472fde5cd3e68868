"""``refbench fuse RUN ... --out DIR``: pixel-wise majority vote of several runs' masks (the aggregation of the
PVUW 2025 MeViS winner), written as a run directory that ``refbench eval``, ``export`` and ``report`` accept.

The vote, for k runs:

* **Masks** (RefVOS, RES): a pixel is foreground when *more than half* of the runs say so, ``votes > k / 2``
  (``2 * votes > k`` in integers). With an even k, a pixel with exactly k / 2 votes is **background**: a tie is not
  a majority (two runs: the intersection; four runs: at least three). RES: a run that returned no mask (``null``)
  votes background everywhere; the fused prediction is ``null`` only when every run's is.
* **Id maps** (VOS, one object id per pixel): per pixel and object id, the votes are the runs that give the pixel
  that id; the pixel takes the id with *more than half* of the votes, else background 0. At most one id can hold
  more than half, so there is no tie to break, and an id present in fewer than half of the runs never survives
  on a pixel (a pixel where runs disagree between two objects 2 : 2 of four runs is background).

Inputs must be runs of one dataset, on the same annotation files, with predictions for the same samples, frames
and frame sizes; anything else is refused in one line. The fused run's ``run.json`` records the rule, the input
runs (directory, model, fingerprint) and a fingerprint derived from theirs (sha256 over the rule and the sorted
input fingerprints: the vote does not depend on their order). With public ground truth it is scored
(``summary.json``, ``per_sample.csv``); it is not added to a leaderboard (no adapter card stands behind it).

The vote runs per task (:data:`FUSERS`): adding a task is adding one function ``(runs, samples) -> predictions``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from refbench.analysis.rundir import RunDir, RunDirError

RULE = "pixel-wise majority: foreground (an object id) where more than half of the runs say so; a tie is background"
FUSE_VERSION = 1


class FuseError(RunDirError):
    """Runs that cannot be fused (another dataset, other frames or sizes), or an output that cannot be written."""


def vote_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Majority of k binary masks of one shape (non-zero = foreground): ``2 * votes > k`` (a tie is background)."""
    k = len(masks)
    if k == 0:
        raise ValueError("no masks to vote")
    votes = np.zeros(masks[0].shape, dtype=np.uint16)
    for m in masks:
        votes += m != 0
    return 2 * votes > k


def vote_ids(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Majority of k id maps of one shape: each pixel takes the id that more than half of the maps give it, else 0."""
    k = len(maps)
    if k == 0:
        raise ValueError("no id maps to vote")
    out = np.zeros(maps[0].shape, dtype=maps[0].dtype)
    ids = np.unique(np.concatenate([np.unique(m) for m in maps]))
    for oid in ids[ids != 0]:
        votes = np.zeros(maps[0].shape, dtype=np.uint16)
        for m in maps:
            votes += m == oid
        out[2 * votes > k] = oid  # at most one id has more than half of the votes on a pixel
    return out


# ------------------------------------------------------------------------------------------------ reading


def _load(run: RunDir) -> Any:
    from refbench.files import load_json

    path = run.predictions()
    if path.is_dir() or path.suffix.lower() == ".zip":
        return path
    return load_json(path, FuseError, "prediction file")


def _encode(mask: np.ndarray) -> dict[str, Any]:
    from refbench.runs.store import encode_mask

    return encode_mask(mask)


def _decode(rle: Any, where: str, size: tuple[int, int] | None = None) -> np.ndarray:
    from refbench.data.base import PredictionError
    from refbench.rle import decode_rle

    return decode_rle(rle, where, size, PredictionError)


def _frames_of(run: RunDir, doc: Any, video: str, exp: str) -> list:
    try:
        rles = doc[video][exp]
    except (KeyError, TypeError):
        raise FuseError(f"{run.predictions()}: no prediction for {video}/{exp}; fuse runs of the same samples") from None
    if not isinstance(rles, list):
        raise FuseError(f"{run.predictions()}: {video}/{exp} is not a list of per-frame RLEs")
    return rles


def _rle_size(rles: list, where: str) -> tuple[int, int] | None:
    from refbench.data.base import PredictionError
    from refbench.rle import rle_size

    for t, r in enumerate(rles):
        if r is not None:
            return rle_size(r, f"{where} frame {t}", PredictionError)
    return None


def _fuse_refvos(runs: Sequence[RunDir], docs: Sequence[Any]) -> tuple[Any, dict[str, int]]:
    """``{video: {exp_id: [RLE per frame]}}`` of every run -> the voted document."""
    for run, doc in zip(runs, docs):
        if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
            raise FuseError(f"{run.predictions()}: expected {{video: {{exp_id: [RLE per frame]}}}}")
    first = docs[0]
    keys = [(v, e) for v, exps in first.items() for e in exps]
    for run, doc in zip(runs[1:], docs[1:]):
        other = {(v, e) for v, exps in doc.items() for e in exps}
        if other != set(keys):
            diff = sorted(other ^ set(keys))[0]
            raise FuseError(f"{runs[0].label} and {run.label} predict different samples (e.g. {diff[0]}/{diff[1]}); "
                            "fuse runs of the same samples")
    out: dict[str, dict[str, list]] = {}
    frames = 0
    for video, exp in keys:
        lists = [_frames_of(r, d, video, exp) for r, d in zip(runs, docs)]
        n = len(lists[0])
        size = None
        for r, rl in zip(runs, lists):
            if len(rl) != n:
                raise FuseError(f"{runs[0].label} has {n} frames for {video}/{exp}, {r.label} {len(rl)}: other frame "
                                "sets cannot be fused")
            s = _rle_size(rl, f"{r.predictions()}: {video}/{exp}")
            if s is not None and size is not None and s != size:
                raise FuseError(f"{r.predictions()}: {video}/{exp} frames are {s[0]}x{s[1]}, {size[0]}x{size[1]} in "
                                "another run: other frame sizes cannot be fused")
            size = size or s
        fused = []
        for t in range(n):
            if size is None:  # every run left every frame empty (null): stays null
                fused.append(None)
                continue
            masks = [np.zeros(size, dtype=np.uint8) if rl[t] is None else
                     _decode(rl[t], f"{r.predictions()}: {video}/{exp} frame {t}", size) for r, rl in zip(runs, lists)]
            fused.append(_encode(vote_masks(masks)))
        frames += n
        out.setdefault(video, {})[exp] = fused
    return out, {"samples": len(keys), "frames": frames}


def _fuse_res(runs: Sequence[RunDir], docs: Sequence[Any]) -> tuple[Any, dict[str, int]]:
    """``{sample_id: RLE or null}`` of every run -> the voted document (null votes background)."""
    for run, doc in zip(runs, docs):
        if not isinstance(doc, dict):
            raise FuseError(f"{run.predictions()}: expected {{sample_id: COCO RLE or null}}")
    ids = list(docs[0])
    for run, doc in zip(runs[1:], docs[1:]):
        if set(doc) != set(ids):
            diff = sorted(set(doc) ^ set(ids))[0]
            raise FuseError(f"{runs[0].label} and {run.label} predict different samples (e.g. {diff}); fuse runs of "
                            "the same samples")
    out: dict[str, Any] = {}
    nulls = 0
    from refbench.data.base import PredictionError
    from refbench.rle import rle_size

    for sid in ids:
        entries = [d[sid] for d in docs]
        sizes = {rle_size(e, f"{r.predictions()}: sample {sid!r}", PredictionError)
                 for r, e in zip(runs, entries) if e is not None}
        if not sizes:
            out[sid] = None
            nulls += 1
            continue
        if len(sizes) > 1:
            raise FuseError(f"sample {sid!r}: the runs' masks have different sizes {sorted(sizes)}; other frame sizes "
                            "cannot be fused")
        (size,) = sizes
        masks = [np.zeros(size, dtype=np.uint8) if e is None else _decode(e, f"{r.predictions()}: sample {sid!r}", size)
                 for r, e in zip(runs, entries)]
        out[sid] = _encode(vote_masks(masks))
    return out, {"samples": len(ids), "all_null": nulls}


def _fuse_vos(runs: Sequence[RunDir], docs: Sequence[Any]) -> tuple[Any, dict[str, int]]:
    """Id maps per sequence (RLE JSON ``{seq: {obj_id: [RLE per frame]}}`` or PNG folders / zips, read through the
    dataset's frames) -> ``{seq: {obj_id: [RLE per frame]}}`` of the voted id maps."""
    from refbench.cards import dataset_card
    from refbench.preds.masks import open_mask_source

    card = dataset_card(runs[0].dataset)
    loader = card.open(card.resolve_root(runs[0].root))
    seqs = loader.samples()
    sources = [open_mask_source(r.predictions(), "sequence", "index") for r in runs]
    out: dict[str, dict[str, list]] = {}
    frames = 0
    try:
        for src, run in zip(sources, runs):
            src.check_known({s.video: None for s in seqs})
        for s in seqs:
            sizes = {src.frame_size(s.video, None, s.frames) for src in sources} - {None}
            if len(sizes) > 1:
                raise FuseError(f"{s.video}: the runs' id maps have different sizes {sorted(sizes)}; other frame sizes "
                                "cannot be fused")
            if sizes:
                size = next(iter(sizes))
            elif callable(getattr(loader, "gt_masks", None)):
                size = tuple(loader.gt_masks(s).shape[1:])
            else:
                raise FuseError(f"{s.video}: no run predicts a frame and the frame size is unknown")
            for src, run in zip(sources, runs):
                st = src.status(s.video, None, s.frames)
                if not st.video_present or st.missing_frames:
                    raise FuseError(f"{run.label}: {s.video} lacks predictions for "
                                    f"{len(st.missing_frames) or len(s.frames)} frame(s); other frame sets cannot be "
                                    "fused")
            maps = [src.read(s.video, None, s.frames, size) for src in sources]
            fused = vote_ids(maps)
            objs: dict[str, list] = {}
            for oid in [int(v) for v in np.unique(fused) if v != 0]:
                objs[str(oid)] = [_encode(fused[t] == oid) if (fused[t] == oid).any() else None
                                  for t in range(fused.shape[0])]
            out[s.video] = objs
            frames += len(s.frames)
    finally:
        for src in sources:
            src.close()
    return out, {"samples": len(seqs), "frames": frames}


#: task -> the vote over the runs' prediction documents. The ``vos`` entry reads id maps through
#: :func:`refbench.preds.masks.open_mask_source`, whatever the store's vos payload becomes.
FUSERS: dict[str, Callable[[Sequence[RunDir], Sequence[Any]], tuple[Any, dict[str, int]]]] = {
    "refvos": _fuse_refvos,
    "res": _fuse_res,
    "vos": _fuse_vos,
}


# ------------------------------------------------------------------------------------------------ the run


@dataclass
class FuseResult:
    out: Path
    dataset: str
    task: str
    runs: int
    fingerprint: str
    counts: dict[str, int]
    summary: dict[str, Any] | None
    table: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def fused_fingerprint(fingerprints: Sequence[str]) -> str:
    """sha256 over the fuse version, the rule and the sorted input fingerprints."""
    h = hashlib.sha256(f"refbench-fuse-v{FUSE_VERSION}\0{RULE}\0".encode())
    for fp in sorted(fingerprints):
        h.update(fp.encode() + b"\0")
    return h.hexdigest()


def _check_inputs(runs: Sequence[RunDir], out: Path) -> tuple[str, str]:
    if len(runs) < 2:
        raise FuseError("fuse needs at least two runs (a majority of one run is the run itself)")
    for r in runs:
        if r.meta is None:
            raise FuseError(f"{r.file('run.json')}: not found; {r.label} is not a refbench run")
        if r.path.resolve() == out.resolve():
            raise FuseError(f"--out {out}: is one of the input runs; choose another --out")
    datasets = {r.dataset for r in runs}
    if len(datasets) > 1:
        raise FuseError(f"runs of different datasets cannot be fused: {', '.join(sorted(datasets))}")
    dataset = datasets.pop()
    hashes = {r.annotation_sha256 for r in runs} - {None}
    if len(hashes) > 1:
        raise FuseError(f"the runs of {dataset} were made on different annotation files (sha256 "
                        f"{', '.join(sorted(h[:12] for h in hashes))}); fuse runs of one copy of the dataset")
    task = runs[0].task
    if task not in FUSERS:
        raise FuseError(f"{dataset} is a {task} dataset: fuse votes masks (refvos, vos, res), not spans")
    seen: dict[str, str] = {}
    for r in runs:
        key = str(r.path.resolve())
        if key in seen:
            raise FuseError(f"{r.label} is given twice; each run votes once")
        seen[key] = r.label
    return dataset, task


def fuse_runs(runs: Sequence[RunDir], out: str | Path, overwrite: bool = False, device: str = "cpu",
              root: str | None = None) -> FuseResult:
    """Fuse ``runs`` into the run directory ``out`` (module doc)."""
    from refbench import __version__
    from refbench.cards import dataset_card
    from refbench.runs.runner import _git_commit, _package_versions

    t0 = time.time()
    out = Path(out)
    dataset, task = _check_inputs(runs, out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FuseError(f"--out {out}: exists and is not empty; pass --overwrite to replace its files")
    card = dataset_card(dataset)
    root = root or runs[0].root
    docs = [_load(r) for r in runs]
    prediction, counts = FUSERS[task](runs, docs)
    fps = [r.fingerprint or hashlib.sha256(str(r.path.resolve()).encode()).hexdigest() for r in runs]
    fingerprint = fused_fingerprint(fps)
    out.mkdir(parents=True, exist_ok=True)
    from refbench.files import atomic_write

    pred_path = out / "predictions.json"
    atomic_write(pred_path, json.dumps(prediction, separators=(",", ":")), "--out")
    for stale in ("summary.json", "per_sample.csv", "per_frame.csv"):
        (out / stale).unlink(missing_ok=True)
    header = {"adapter": "fuse", "fingerprint": fingerprint, "dataset": dataset, "task": task,
              "annotation_sha256": next(iter({r.annotation_sha256 for r in runs} - {None}), None)}
    summary = table = None
    notes: list[str] = []
    if card.has_public_gt:
        from refbench.evaluate.run import evaluate, format_table, write_csv, write_json

        protocol = runs[0].protocol if runs[0].file("summary.json").is_file() else None  # else the card's
        res, summary = evaluate(dataset, pred_path, root=root, protocol=protocol, device=device)
        summary["run"] = {"model": "fuse", "fingerprint": fingerprint, "run_dir": str(out), "samples":
                          len(res.per_sample), "partial": bool(summary.get("partial")), "flags": {}}
        write_json(summary, out / "summary.json", "--out")
        write_csv(res.per_sample, out / "per_sample.csv", "--out")
        table = format_table(res, dataset, summary["partial_reasons"])
    else:
        notes.append(f"{dataset} has no public ground truth: export a submission with refbench export --run {out}")
    notes.append("not added to a leaderboard: a fused run has no adapter card")
    doc = {
        "status": "done",
        "config": {"model": "fuse", "dataset": dataset, "root": str(root) if root else None, "out": str(out),
                   "device": device, "runs": [str(r.path) for r in runs]},
        "header": header,
        "fuse": {"rule": RULE, "version": FUSE_VERSION,
                 "inputs": [{"run_dir": str(r.path), "model": r.model, "fingerprint": fp}
                            for r, fp in zip(runs, fps)], "counts": counts},
        "adapter": {"card": {"name": "fuse"}, "options": {"runs": len(runs)}, "fingerprint": fingerprint},
        "provenance": {
            "refbench_version": __version__, "git": _git_commit(), "packages": _package_versions(),
            "python": platform.python_version(), "platform": platform.platform(), "device": device,
            "started": _dt.datetime.fromtimestamp(t0, _dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(time.time() - t0, 3),
        },
        "metrics": summary["metrics"] if summary else None,
    }
    atomic_write(out / "run.json", json.dumps(doc, indent=2, default=str) + "\n", "--out")
    return FuseResult(out=out, dataset=dataset, task=task, runs=len(runs), fingerprint=fingerprint, counts=counts,
                      summary=summary, table=table, seconds=time.time() - t0, notes=notes)


__all__ = ["FUSERS", "RULE", "FuseError", "FuseResult", "fuse_runs", "fused_fingerprint", "vote_ids", "vote_masks"]
