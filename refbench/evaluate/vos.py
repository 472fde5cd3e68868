"""Score SA-V, SeCVOS, LVOS, MOSE v2, Ref-SAV and ReasonVOS predictions exactly as their official evaluators do.

One function per protocol, dispatched by :func:`evaluate_vos_protocol` (registered in
:mod:`refbench.evaluate.video`). Each protocol's source, quirks, ``--missing`` meaning and ``--protocol-arg``
options are in :data:`refbench.evaluate.vos_facts.VOS_PROTOCOL_FACTS` and described in ``docs/protocols.md``.

Every result follows the one-scale convention: ``EvalResult.metrics`` and the per-sample rows are in percent (an
official fraction times 100 in float64; unchanged where the official script prints percent), and
``details["official"]`` keeps the official printout (its names, scale and values) bit for bit, as
``{"scale", "values", "metrics": {refbench name: path in values}, "note"}``. ``details["protocol_args"]`` holds the
option values used and ``details["missing_mode"]`` the ``--missing`` mode, so the summary says which behaviour
(refbench's default or the official one) produced the numbers.

Where an official evaluator silently drops or mis-scores something, the default here is an error naming the file
or an honest score, and the official behaviour is ``--missing official`` or a ``--protocol-arg`` (the facts table
says which reproduces the documented command).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from refbench.data.base import DatasetError, PredictionError
from refbench.evaluate.per_frame import add_series
from refbench.evaluate.result import EvalResult
from refbench.evaluate.vos_facts import VOS_PROTOCOL_FACTS, ProtocolFacts

PathLike = Union[str, Path]
Progress = Callable[[int, int], None]

#: Frames decoded at a time per video / object (bounds memory on long 1080p videos).
CHUNK = 32
_HINT = "(pass --missing empty to score them as empty masks, or --missing official for the official rule)"


def official_block(values: Mapping[str, Any], scale: str, metrics: Mapping[str, str] | None = None,
                   note: str | None = None) -> dict[str, Any]:
    """The ``details["official"]`` record: the official printout ``values`` in its ``scale``, and for each refbench
    metric the ``/``-path of the printed value it equals (times 100 when the scale is ``"fraction"``)."""
    block: dict[str, Any] = {"scale": scale, "values": dict(values)}
    if metrics:
        block["metrics"] = dict(metrics)
    if note:
        block["note"] = note
    return block


def _pct(x: Any) -> float:
    return float(x) * 100.0


def _chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


@dataclass(frozen=True)
class _Sample:
    """What the missing-prediction report needs: a video, an expression / object id (or None) and frames."""

    video: str
    exp_id: str | None
    frames: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.video if self.exp_id is None else f"{self.video}/{self.exp_id}"


def _gate(source: Any, samples: Sequence[_Sample], pred_path: PathLike, missing: str) -> dict[str, Any]:
    """Raise on anything missing with ``missing="error"``; return the report either way."""
    from refbench.preds.masks import missing_error

    report = source.missing_report(samples)
    if missing == "error":
        err = missing_error(source, samples, pred_path, _HINT, report)
        if err is not None:
            raise err
    return {"videos": report.videos, "expressions": report.expressions, "frames": report.frames}


def _result(facts: ProtocolFacts, card: Any, metrics: dict[str, float], rows: list[dict[str, Any]],
            counts: dict[str, int], details: dict[str, Any], args: dict[str, str], missing: str,
            pred_path: PathLike) -> EvalResult:
    reference = dict(card.reference) if card is not None and getattr(card, "protocol", None) == facts.name and \
        getattr(card, "reference", None) else dict(facts.reference)
    details.setdefault("protocol_args", args)
    details["protocol_doc"] = facts.doc
    details["missing_mode"] = missing
    details["predictions"] = str(pred_path)
    return EvalResult(protocol=facts.name, metrics=metrics, per_sample=rows, counts=counts, scale="percent",
                      reference=reference, details=details)


# ==============================================================================================
# SA-V and SeCVOS
# ==============================================================================================


@dataclass
class _Track:
    """Per-frame values of one SA-V object (label 1) or one DAVIS-like video (its GT labels), over all its frames."""

    video: str
    obj: str | None
    frames: tuple[str, ...]
    values: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    gt_labels: list[list[int]] = field(default_factory=list)
    filled: int = 0

    @property
    def name(self) -> str:
        return f"{self.video}/{self.obj}" if self.obj is not None else self.video


def _distinct_values(arr: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(arr.ravel(), minlength=256)))


def _sav_track(loader: Any, source: Any, video: Any, obj: Any, needed: set[str], fill: bool,
               device: str, pred_path: PathLike) -> _Track:
    """Per-frame J, F and presence of one SA-V object over the frames in ``needed`` (others keep NaN)."""
    from refbench.metrics.mevis import frame_jf

    frames = obj.frames
    n = len(frames)
    j = np.full(n, np.nan)
    f = np.full(n, np.nan)
    gt_p = np.zeros(n, dtype=bool)
    pr_p = np.zeros(n, dtype=bool)
    track = _Track(video=video.video, obj=obj.name, frames=frames)
    idx = [i for i, fr in enumerate(frames) if fr in needed]
    if fill:
        st = source.status(video.video, obj.name, [frames[i] for i in idx])
        track.filled = len(idx) if not (st.video_present and st.expression_present) else len(st.missing_frames)
    for part in _chunks(idx):
        names = [frames[i] for i in part]
        gt = loader.gt_frames(video.video, obj.name, names)
        pred = source.read(video.video, obj.name, names, gt.shape[1:], fill_missing=fill)
        for t, name in enumerate(names):
            if _distinct_values(gt[t]) > 2:
                where = loader.annotation_path(video.video, obj.name, name)
                raise DatasetError(f"{where}: more than 2 distinct values (an SA-V PNG holds one object)")
            if _distinct_values(pred[t]) > 2:
                raise PredictionError(f"{source.describe(video.video, obj.name, name)}: more than 2 distinct values "
                                      "(an SA-V prediction PNG holds one object)")
        g, p = gt > 0, pred > 0
        jj, ff = frame_jf(p, g, device=device, name=f"{pred_path}: {video.video}/{obj.name}")
        sel = np.asarray(part)
        j[sel], f[sel] = jj, ff
        gt_p[sel] = g.any(axis=(1, 2))
        pr_p[sel] = p.any(axis=(1, 2))
    track.values[1] = (j, f, gt_p, pr_p)
    track.gt_labels = [[1] if x else [] for x in gt_p]
    return track


def _davis_track(loader: Any, source: Any, video: Any, needed: set[str], fill: bool, device: str,
                 pred_path: PathLike) -> _Track:
    """Per-frame J, F and presence of every GT label of a DAVIS-like video (the evaluator's fallback layout)."""
    from refbench.metrics.mevis import frame_jf

    frames = video.frames
    idx = [i for i, fr in enumerate(frames) if fr in needed]
    names = [frames[i] for i in idx]
    gt = loader.gt_frames(video.video, None, names)
    track = _Track(video=video.video, obj=None, frames=frames)
    if fill:
        st = source.status(video.video, None, names)
        track.filled = len(names) if not st.video_present else len(st.missing_frames)
    pred = source.read(video.video, None, names, gt.shape[1:], fill_missing=fill) if names else gt
    n = len(frames)
    track.gt_labels = [[] for _ in range(n)]
    for k, i in enumerate(idx):
        track.gt_labels[i] = [int(v) for v in np.unique(gt[k]) if v != 0]
    labels = sorted({lab for labs in track.gt_labels for lab in labs})
    sel = np.asarray(idx, dtype=np.int64)
    for lab in labels:
        j = np.full(n, np.nan)
        f = np.full(n, np.nan)
        gt_p = np.zeros(n, dtype=bool)
        pr_p = np.zeros(n, dtype=bool)
        g, p = gt == lab, pred == lab
        jj, ff = frame_jf(p, g, device=device, name=f"{pred_path}: {video.video} label {lab}")
        j[sel], f[sel] = jj, ff
        gt_p[sel] = g.any(axis=(1, 2))
        pr_p[sel] = p.any(axis=(1, 2))
        track.values[lab] = (j, f, gt_p, pr_p)
    return track


@dataclass(frozen=True)
class _Run:
    """One evaluator run: its name and, per track, the indices of the frames it feeds (None: the video is left
    out of this run)."""

    name: str
    select: Callable[[Any, Any], list[int] | None]


def _sav_run(run: _Run, videos: Sequence[Any], tracks: Mapping[tuple[str, str | None], _Track],
             left_out: set[str], per_frame: list[dict[str, Any]] | None = None,
             ) -> tuple[dict[str, float], list[dict[str, Any]], list[str], list[str]]:
    """(global J&F/J/F in percent, per-object rows, videos evaluated, dropped labels) of one run."""
    from refbench.metrics.sav import global_scores, label_order, object_score, results_csv

    objects = []
    rows: list[dict[str, Any]] = []
    evaluated: list[str] = []
    dropped: list[str] = []
    table: list[tuple[str, list[tuple[str | int, float, float]]]] = []
    for video in videos:
        if video.video in left_out:
            continue
        units = [(o, tracks[(video.video, o.name)]) for o in video.objects] if video.layout == "sav" \
            else [(None, tracks[(video.video, None)])]
        sels = [run.select(video, o) for o, _t in units]
        if any(s is None for s in sels):
            continue
        evaluated.append(video.video)
        table.append((video.video, []))
        for (o, track), sel in zip(units, sels):
            order = [1] if o is not None else label_order(track.gt_labels[i] for i in sel)
            if o is None:
                present = {lab for labs in track.gt_labels for lab in labs}
                dropped += [f"{video.video}/{lab}" for lab in sorted(present - set(order))]
            for lab in order:
                j, f, gt_p, pr_p = track.values[lab]
                score = object_score(j[sel], f[sel], gt_p[sel], pr_p[sel])
                if score is None:
                    raise DatasetError(f"{video.video}/{o.name if o is not None else lab}: the ground truth is empty "
                                       f"in every frame scored by the {run.name} run (the official evaluator stops "
                                       "with an AssertionError)")
                name = o.name if o is not None else str(lab)
                objects.append(score)
                table[-1][1].append((o.name if o is not None else lab, score.J, score.F))
                fed = [track.frames[i] for i in sel]
                key = f"{run.name}/{video.video}/{name}" if run.name != "default" else f"{video.video}/{name}"
                # the lists the evaluator averages: the fed frames from the first one where the label is present
                add_series(per_frame, key, fed[score.start:], {"J": j[sel][score.start:], "F": f[sel][score.start:]})
                rows.append({"sample_id": key, "key": key, "run": run.name, "video": video.video, "object": name,
                             "J": score.J, "F": score.F, "J&F": score.JF, "frames_fed": len(fed),
                             "frames_counted": len(fed) - score.start, "first_counted": fed[score.start],
                             "filled": track.filled})
    if not objects:
        raise DatasetError(f"{run.name}: no object to score")
    scores = global_scores(objects)
    return {**scores, "results_csv": results_csv(table, scores)}, rows, evaluated, dropped


def _open_sav_sources(videos: Sequence[Any], pred_path: PathLike):
    from refbench.preds.masks import open_mask_source

    layouts = {v.layout for v in videos}
    src_sav = open_mask_source(pred_path, "expression", "index") if "sav" in layouts else None
    src_davis = open_mask_source(pred_path, "sequence", "index") if "davis" in layouts else None
    if src_sav is not None and src_davis is None:
        src_sav.check_known({v.video: [o.name for o in v.objects] for v in videos})
    elif src_davis is not None and src_sav is None:
        src_davis.check_known({v.video: None for v in videos})
    return src_sav, src_davis


def _sav_tracks(loader: Any, videos: Sequence[Any], needed: Mapping[tuple[str, str | None], set[str]],
                pred_path: PathLike, missing: str, device: str, progress: Progress | None,
                absent_rule: str) -> tuple[dict, dict[str, Any], set[str], dict[str, int]]:
    """Open the predictions, apply the missing-prediction gate and compute every track.

    ``absent_rule`` (with ``missing="official"``): ``"drop"`` leaves videos without a prediction folder out (SA-V's
    non-strict CLI), ``"strict"`` refuses them (SeC's documented --strict command). Returns (tracks, missing report,
    videos left out, counts)."""
    official_drop = missing == "official"
    src_sav, src_davis = _open_sav_sources(videos, pred_path)
    try:
        samples_sav = [_Sample(v.video, o.name, tuple(sorted(needed[(v.video, o.name)])))
                       for v in videos if v.layout == "sav" for o in v.objects]
        samples_davis = [_Sample(v.video, None, tuple(sorted(needed[(v.video, None)])))
                         for v in videos if v.layout == "davis"]
        report = {"videos": [], "expressions": [], "frames": {}}
        absent: set[str] = set()
        for src, samples in ((src_sav, samples_sav), (src_davis, samples_davis)):
            if src is None:
                continue
            rep = _gate(src, samples, pred_path, missing)
            report["videos"] += rep["videos"]
            report["expressions"] += rep["expressions"]
            report["frames"].update(rep["frames"])
            absent.update(rep["videos"])
        if official_drop and absent and absent_rule == "strict":
            raise PredictionError(f"{pred_path}: no prediction folder for {len(absent)} video(s): "
                                  f"{', '.join(sorted(absent)[:5])}; SeC's documented command scores the overall run "
                                  "with --strict, which exits on a missing video (pass --missing empty to score them "
                                  "as empty masks)")
        tracks: dict[tuple[str, str | None], _Track] = {}
        counts = {"scored": 0, "missing": 0, "filled": 0, "official": 0}
        total = len(samples_sav) + len(samples_davis)
        done = 0
        for v in videos:
            if official_drop and v.video in absent:
                n = len(v.objects) if v.layout == "sav" else 1
                counts["official"] += n
                counts["missing"] += n
                done += n
                _tick(progress, done, total)
                continue
            fill = missing != "error"
            if v.layout == "sav":
                for o in v.objects:
                    t = _sav_track(loader, src_sav, v, o, needed[(v.video, o.name)], fill, device, pred_path)
                    tracks[(v.video, o.name)] = t
                    key = "filled" if t.filled else "scored"
                    counts[key] += 1
                    counts["missing"] += int(bool(t.filled))
                    done += 1
                    _tick(progress, done, total)
            else:
                t = _davis_track(loader, src_davis, v, needed[(v.video, None)], fill, device, pred_path)
                tracks[(v.video, None)] = t
                counts["filled" if t.filled else "scored"] += 1
                counts["missing"] += int(bool(t.filled))
                done += 1
                _tick(progress, done, total)
    finally:
        for src in (src_sav, src_davis):
            if src is not None:
                src.close()
    return tracks, report, (absent if official_drop else set()), counts


def _skip_select(skip: bool) -> Callable[[Any, Any], list[int]]:
    def select(video: Any, obj: Any) -> list[int]:
        n = len(obj.frames if obj is not None else video.frames)
        idx = list(range(n))
        return idx[1:-1] if skip else idx

    return select


def _sav_official(global_: Mapping[str, Any]) -> dict:
    """One run's printout: the full-precision globals ``benchmark()`` returns, the console summary line and the text of
    the ``results.csv`` it writes into the prediction root."""
    from refbench.metrics.sav import printed_summary

    return {"J&F": global_["J&F"], "J": global_["J"], "F": global_["F"], "printed": printed_summary(global_),
            "results_csv": global_["results_csv"]}


def evaluate_sav(card: Any, loader: Any, pred_path: PathLike, missing: str, device: str, args: dict[str, str],
                 progress: Progress | None = None, per_frame: list[dict[str, Any]] | None = None) -> EvalResult:
    """SA-V val / test (``docs/protocols.md#sav``)."""
    facts = VOS_PROTOCOL_FACTS["sav"]
    videos = loader.samples()
    if not videos:
        raise DatasetError(f"{loader.annotations_dir}: no videos")
    skip = args["skip_first_last"] == "true"
    select = _skip_select(skip)
    needed: dict[tuple[str, str | None], set[str]] = {}
    for v in videos:
        for o in (v.objects if v.layout == "sav" else [None]):
            frames = o.frames if o is not None else v.frames
            needed[(v.video, o.name if o is not None else None)] = {frames[i] for i in select(v, o)}
    tracks, report, absent, counts = _sav_tracks(loader, videos, needed, pred_path, missing, device, progress,
                                                 absent_rule="drop")
    run = _Run("default", lambda v, o: select(v, o))
    global_, rows, evaluated, dropped = _sav_run(run, videos, tracks, absent, per_frame)
    counts = {"samples": len(needed), **counts, "objects": len(rows), "videos": len(evaluated)}
    metrics = {"J&F": global_["J&F"], "J": global_["J"], "F": global_["F"]}
    details = {
        "official": official_block(_sav_official(global_), "percent", {"J&F": "J&F", "J": "J", "F": "F"}),
        "missing": report,
        "videos_evaluated": evaluated,
        "videos_left_out": sorted(absent),
        "labels_dropped": dropped,
        "skip_first_last": skip,
    }
    return _result(facts, card, metrics, rows, counts, details, args, missing, pred_path)


def _segment_indices(frames: Sequence[str], seg: tuple[int, int], order: str) -> list[int]:
    """SeC's segment selection (module doc of :mod:`refbench.data.sav`): frames in [start, end], the first frame
    prepended when it is not among them."""
    start, end = seg
    if order == "official":
        lo, hi = "%05d.png" % start, "%05d.png" % (end + 1)
        idx = [i for i, f in enumerate(frames) if lo <= f + ".png" < hi]
    else:
        try:
            nums = [int(f) for f in frames]
        except ValueError as exc:
            raise DatasetError(f"frame names must be numbers to select scene segments ({exc}); pass "
                               "--protocol-arg segment_order=official to compare them as strings") from exc
        idx = [i for i, x in enumerate(nums) if start <= x <= end]
    if 0 not in idx:
        idx = [0] + idx
    return idx


def evaluate_secvos(card: Any, loader: Any, pred_path: PathLike, missing: str, device: str, args: dict[str, str],
                    progress: Progress | None = None, per_frame: list[dict[str, Any]] | None = None) -> EvalResult:
    """SeCVOS: three scene-segment runs and the overall run (``docs/protocols.md#secvos``)."""
    from refbench.data.sav import SEGMENTS

    facts = VOS_PROTOCOL_FACTS["secvos"]
    videos = loader.samples()
    if not videos:
        raise DatasetError(f"{loader.annotations_dir}: no videos")
    scenes = loader.scenes()
    skip = args["skip_first_last"] == "true"
    order = args["segment_order"]
    overall = _skip_select(skip)

    def segment_select(name: str) -> Callable[[Any, Any], list[int] | None]:
        def select(video: Any, obj: Any) -> list[int] | None:
            frames = obj.frames if obj is not None else video.frames
            seg = scenes.get(video.video, {}).get(name) if video.video in scenes else None
            if seg is None:
                return list(range(len(frames))) if name == "first_segment" else None
            return _segment_indices(frames, seg, order)

        return select

    runs = [_Run(name, segment_select(name)) for name in SEGMENTS] + [_Run("overall", overall)]
    needed: dict[tuple[str, str | None], set[str]] = {}
    for v in videos:
        for o in (v.objects if v.layout == "sav" else [None]):
            frames = o.frames if o is not None else v.frames
            want: set[str] = set()
            for r in runs:
                sel = r.select(v, o)
                if sel is not None:
                    want.update(frames[i] for i in sel)
            needed[(v.video, o.name if o is not None else None)] = want
    tracks, report, absent, counts = _sav_tracks(loader, videos, needed, pred_path, missing, device, progress,
                                                 absent_rule="strict")
    results: dict[str, tuple[dict[str, float], list[dict[str, Any]], list[str]]] = {}
    all_rows: list[dict[str, Any]] = []
    dropped: list[str] = []
    for r in runs:
        g, rows, evaluated, d = _sav_run(r, videos, tracks, set(), per_frame)
        results[r.name] = (g, rows, evaluated)
        all_rows += rows
        dropped += d
    head = results["overall"][0]
    metrics = {"J&F": head["J&F"], "J": head["J"], "F": head["F"]}
    for name in SEGMENTS:
        g = results[name][0]
        for k in ("J&F", "J", "F"):
            metrics[f"{k} ({name})"] = g[k]
    values = {r.name: _sav_official(results[r.name][0]) for r in runs}
    paths = {"J&F": "overall/J&F", "J": "overall/J", "F": "overall/F"}
    for name in SEGMENTS:
        for k in ("J&F", "J", "F"):
            paths[f"{k} ({name})"] = f"{name}/{k}"
    counts = {"samples": len(needed), **counts, "objects": len(results["overall"][1]),
              "videos": len(results["overall"][2])}
    details = {
        "official": official_block(values, "percent", paths,
                                   note="the headline is the overall run; the SeC paper does not say which run its "
                                        "SeCVOS J&F is"),
        "missing": report,
        "videos_evaluated": {r.name: results[r.name][2] for r in runs},
        "labels_dropped": sorted(set(dropped)),
        "skip_first_last": skip,
    }
    return _result(facts, card, metrics, all_rows, counts, details, args, missing, pred_path)


# ==============================================================================================
# LVOS
# ==============================================================================================


def evaluate_lvos(card: Any, loader: Any, pred_path: PathLike, missing: str, device: str, args: dict[str, str],
                  progress: Progress | None = None, per_frame: list[dict[str, Any]] | None = None) -> EvalResult:
    """LVOS v2 val (``docs/protocols.md#lvos``)."""
    from refbench.metrics.lvos import GLOBAL_COLUMNS, global_table, object_statistics
    from refbench.metrics.mevis import frame_jf
    from refbench.preds.masks import open_mask_source

    facts = VOS_PROTOCOL_FACTS["lvos"]
    seqs = loader.samples()
    if not seqs:
        raise DatasetError(f"{loader.meta_path}: no sequences")
    official_ranges = args["frame_ranges"] == "official"
    for s in seqs:
        for o in s.objects:
            why = loader.range_problem(s.video, o)
            if why and (not official_ranges or "more than frame_nums" in why):
                hint = "" if "more than" in why else \
                    " (pass --protocol-arg frame_ranges=official for the official zeros)"
                raise DatasetError(why + hint)
    rows: list[dict[str, Any]] = []
    seen: list[dict[str, float]] = []
    unseen: list[dict[str, float]] = []
    counts = {"samples": sum(len(s.objects) for s in seqs), "scored": 0, "missing": 0, "filled": 0, "official": 0}
    with open_mask_source(pred_path, "sequence", "index") as source:
        source.check_known({s.video: None for s in seqs})
        report = _gate(source, [_Sample(s.video, None, s.frames) for s in seqs], pred_path, missing)
        fill = missing != "error"
        done = 0
        for s in seqs:
            st = source.status(s.video, None, s.frames)
            missing_frames = set(s.frames) if not st.video_present else set(st.missing_frames)
            j = {o.obj_id: np.zeros(o.slots) for o in s.objects}
            f = {o.obj_id: np.zeros(o.slots) for o in s.objects}
            pos = {o.obj_id: {fr: i for i, fr in enumerate(o.scored_frames)} for o in s.objects}
            for part in _chunks(list(s.frames)):
                gt = loader.gt_frames(s.video, part)
                pred = source.read(s.video, None, part, gt.shape[1:], fill_missing=fill)
                for o in s.objects:
                    idx = [t for t, fr in enumerate(part) if fr in pos[o.obj_id]]
                    if not idx:
                        continue
                    oid = int(o.obj_id)
                    jj, ff = frame_jf(pred[idx] == oid, gt[idx] == oid, device=device,
                                      name=f"{pred_path}: {s.video} object {o.obj_id}")
                    slots = [pos[o.obj_id][part[t]] for t in idx]
                    j[o.obj_id][slots] = jj
                    f[o.obj_id][slots] = ff
            for o in s.objects:
                stats = object_statistics(j[o.obj_id], f[o.obj_id])
                names = [""] * o.slots  # a slot no frame of the range fills counts 0 officially
                for fr, i in pos[o.obj_id].items():
                    names[i] = fr
                add_series(per_frame, f"{s.video}/{o.obj_id}", names, {"J": j[o.obj_id], "F": f[o.obj_id]})
                (unseen if s.unseen else seen).append(stats)
                n_miss = len(missing_frames & set(o.scored_frames))
                status = "filled" if n_miss else "scored"
                counts[status] += 1
                counts["missing"] += int(bool(n_miss))
                rows.append({"sample_id": f"{s.video}/{o.obj_id}",
                             "key": f"{s.video}_{o.position}", "video": s.video, "object": o.obj_id,
                             "split": "unseen" if s.unseen else "seen", "J": _pct(stats["J-Mean"]),
                             "F": _pct(stats["F-Mean"]), "J&F": _pct((stats["J-Mean"] + stats["F-Mean"]) / 2),
                             "V": _pct(stats["V-Mean"]), "J-Recall": _pct(stats["J-Recall"]),
                             "F-Recall": _pct(stats["F-Recall"]), "frames": len(o.scored_frames), "slots": o.slots,
                             "status": status, "raw": stats})
                done += 1
                _tick(progress, done, counts["samples"])
    table = global_table(seen, unseen)
    names = {"J&F": "J&F-Mean", "J": "J-Mean", "F": "F-Mean", "V": "V-Mean", "J (seen)": "J-seen-Mean",
             "J (unseen)": "J-unseen-Mean", "F (seen)": "F-seen-Mean", "F (unseen)": "F-unseen-Mean",
             "V (seen)": "V-seen-Mean", "V (unseen)": "V-unseen-Mean"}
    metrics = {k: _pct(table[v]) for k, v in names.items()}
    counts.update({"objects": len(rows), "seen_objects": len(seen), "unseen_objects": len(unseen)})
    details = {
        "official": official_block({c: table[c] for c in GLOBAL_COLUMNS}, "fraction", names,
                                   note="global_results-valid.csv columns, full precision (the CSV prints 3 decimals)"),
        "missing": report,
    }
    return _result(facts, card, metrics, rows, counts, details, args, missing, pred_path)


# ==============================================================================================
# MOSE v2
# ==============================================================================================


def evaluate_mosev2(card: Any, loader: Any, pred_path: PathLike, missing: str, device: str, args: dict[str, str],
                    progress: Progress | None = None, per_frame: list[dict[str, Any]] | None = None) -> EvalResult:
    """MOSE v2 (``docs/protocols.md#mosev2``)."""
    from refbench.data.mosev2 import sorted_by_int
    from refbench.metrics.mosev2 import frame_scores, global_scores, object_row, object_scores
    from refbench.preds.masks import open_mask_source

    facts = VOS_PROTOCOL_FACTS["mosev2"]
    videos = loader.samples()
    if not videos:
        raise DatasetError(f"{loader.meta_path}: no videos")
    short_official = args["short_videos"] == "official"
    for v in videos:
        if v.length <= 2 and v.objects and not short_official:
            raise DatasetError(f"{loader.annotations_dir / v.video}: length {v.length} leaves no frame to score (MOSE "
                               "v2 drops the first and last); pass --protocol-arg short_videos=official to score its "
                               "objects J = F = 0 as score.py does")
    per_object: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    counts = {"samples": sum(len(v.objects) for v in videos), "scored": 0, "missing": 0, "filled": 0, "official": 0}
    with open_mask_source(pred_path, "sequence", "index") as source:
        source.check_known({v.video: None for v in videos})
        report = _gate(source, [_Sample(v.video, None, v.scored_frames) for v in videos], pred_path, missing)
        done = 0
        for v in videos:
            st = source.status(v.video, None, v.scored_frames)
            names = list(v.scored_frames)
            status = "scored"
            if not st.video_present and missing == "official":
                names, status = [], "official"
            elif missing == "official" and v.length > 2:
                listed = getattr(source, "listed_frames", None)
                stems = listed(v.video) if callable(listed) else None
                if stems is not None:
                    stems = sorted_by_int(stems, Path(str(pred_path)) / v.video)
                    if len(stems) <= v.length - 2:
                        raise PredictionError(f"{pred_path}: {v.video} has {len(stems)} prediction PNGs for length "
                                              f"{v.length}; score.py takes frame names by position and stops here")
                    names = stems[1:v.length - 1]
                    if names != list(v.scored_frames):
                        status = "official"
                    missing_gt = [n for n in names if n not in set(v.frames)]
                    if missing_gt:
                        raise PredictionError(f"{pred_path}: {v.video}/{missing_gt[0]}.png is not a frame of the "
                                              "ground truth; score.py reads the GT under the prediction's frame names")
            elif st.missing_frames or not st.video_present:
                status = "filled"
            fill = status == "filled"
            lists = {o: ([], [], [], []) for o in v.objects}
            for part in _chunks(names):
                gt = loader.gt_frames(v.video, part)
                if gt.shape[1:] != (v.height, v.width):
                    raise DatasetError(f"{loader.annotations_dir / v.video}: annotation PNGs are "
                                       f"{gt.shape[1]}x{gt.shape[2]}, the meta says {v.height}x{v.width}")
                pred = source.read(v.video, None, part, (v.height, v.width), fill_missing=fill)
                for o in v.objects:
                    fs = frame_scores(pred == o, gt == o, device=device)
                    for acc, vals in zip(lists[o], (fs.J, fs.F_new, fs.F, fs.empty_gt)):
                        acc.extend(vals.tolist())
            for o in v.objects:
                scores = object_scores(*lists[o])
                add_series(per_frame, f"{v.video}/{o}", names,
                           {"J": lists[o][0], "F": lists[o][1], "F_standard": lists[o][2]})
                per_object.append(scores)
                printed = object_row(scores)
                counts[status] += 1
                counts["missing"] += int(status != "scored")
                rows.append({"sample_id": f"{v.video}/{o}", "key": f"{v.video}_{o}", "video": v.video, "object": o,
                             "J&F": printed["J&F_new"], "J": printed["J"], "F": printed["F_new"],
                             "J&F (disappear)": printed["disappear_J&F_new"],
                             "J&F (reappear)": printed["reappear_J&F_new"], "F (standard)": printed["F"],
                             "J&F (standard)": printed["J&F"], "frames": len(lists[o][0]), "status": status,
                             "raw": {k: (None if scores[k] is None else float(scores[k])) for k in scores}})
                done += 1
                _tick(progress, done, counts["samples"])
    if not per_object:
        raise DatasetError(f"{loader.meta_path}: no objects")
    table = global_scores(per_object)
    names = {"J&F": "J&F_new", "J": "J", "F": "F_new", "J&F (disappear)": "disappear_J&F_new",
             "J&F (reappear)": "reappear_J&F_new", "F (standard)": "F", "J&F (standard)": "J&F"}
    metrics = {k: table[v] for k, v in names.items()}
    counts["objects"] = len(rows)
    unrounded = {k: _pct(np.mean([o[k] for o in per_object])) for k in ("J", "F_new", "F")}
    details = {
        "official": official_block(table, "percent", names,
                                   note="score.py's scores.txt (2 decimals); the headline J&F is J&F_new (smoothed J "
                                        "and the adaptive boundary measure), not DAVIS's J&F ('J&F (standard)')"),
        "unrounded": {"note": "not printed by score.py: means over objects in meta order, percent", **unrounded},
        "missing": report,
    }
    return _result(facts, card, metrics, rows, counts, details, args, missing, pred_path)


# ==============================================================================================
# Ref-SAV and ReasonVOS
# ==============================================================================================


def _referring_source(loader: Any, pred_path: PathLike, missing: str):
    from refbench.preds.momentseg import open_referring_source

    samples = loader.samples()
    if not samples:
        raise DatasetError(f"{loader.meta_path}: the dataset lists no expressions")
    keys = {s.key: (s.video, s.exp_id) for s in samples}
    known: dict[str, set[str]] = {}
    for s in samples:
        known.setdefault(s.video, set()).add(s.exp_id)
    source = open_referring_source(pred_path, keys)
    try:
        source.check_known(known)
        report = _gate(source, [_Sample(s.video, s.exp_id, s.frames) for s in samples], pred_path, missing)
    except BaseException:
        source.close()
        raise
    return samples, source, report


def _read_referring(source: Any, s: Any, size: tuple[int, int], missing: str) -> np.ndarray:
    """The prediction of one expression as 0/1 uint8: official reading (extra entries ignored) with
    ``--missing official`` on the JSON form, else the source's checked reading (missing frames filled when allowed)."""
    st = source.status(s.video, s.exp_id, s.frames)
    if missing == "official" and callable(getattr(source, "read_official", None)):
        pred = source.read_official(s.video, s.exp_id, s.frames, size)
    else:
        pred = source.read(s.video, s.exp_id, s.frames, size, fill_missing=not st.complete and missing != "error")
    return (pred != 0).astype(np.uint8)


def evaluate_refsav(card: Any, loader: Any, pred_path: PathLike, missing: str, device: str, args: dict[str, str],
                    progress: Progress | None = None, per_frame: list[dict[str, Any]] | None = None) -> EvalResult:
    """Ref-SAV (``docs/protocols.md#refsav``)."""
    from refbench.metrics.refsav import expression_jfa, refsav_table

    facts = VOS_PROTOCOL_FACTS["refsav"]
    samples, source, report = _referring_source(loader, pred_path, missing)
    kept: dict[str, tuple[list[float], int]] = {}
    status: dict[str, str] = {}
    dropped: dict[str, str] = {}
    try:
        for n, s in enumerate(samples, start=1):
            st = source.status(s.video, s.exp_id, s.frames)
            if not st.complete and missing == "official":
                dropped[s.key] = "prediction missing"
            else:
                gt = loader.gt_masks(s)
                try:
                    pred = _read_referring(source, s, gt.shape[1:], missing)
                except PredictionError as exc:
                    if missing != "official":
                        raise
                    dropped[s.key] = str(exc)
                else:
                    res = expression_jfa(pred, gt, device=device, name=f"{pred_path}: {s.key}")
                    add_series(per_frame, f"{s.video}/{s.exp_id}", s.frames, {"J": res.J_frames, "F": res.F_frames})
                    kept[s.key] = (res.as_list(), s.type_id if s.type_id is not None else -1)
                    status[s.key] = "scored" if st.complete else "filled"
            _tick(progress, n, len(samples))
    finally:
        source.close()
    if not kept:
        raise PredictionError(f"{pred_path}: no expression could be scored")
    table = refsav_table(kept)
    summary, rounded = table["summary"], table["rows"]
    rows = []
    for s in samples:
        if s.key in dropped:
            rows.append({"sample_id": f"{s.video}/{s.exp_id}",
                         "key": s.key, "video": s.video, "exp_id": s.exp_id, "type_id": s.type_id,
                         "status": "official", "note": dropped[s.key]})
            continue
        r = rounded[s.key]
        j, f, a = kept[s.key][0]
        rows.append({"sample_id": f"{s.video}/{s.exp_id}",
                     "key": s.key, "video": s.video, "exp_id": s.exp_id, "J": r["J"], "F": r["F"], "J&F": r["JF"],
                     "A": r["A"], "type_id": s.type_id, "status": status[s.key], "raw_jfa": [float(j), float(f),
                                                                                              float(a)]})
    metrics: dict[str, float] = {}
    paths: dict[str, str] = {}
    for cat, label in (("overall", None), ("long", "long"), ("short", "short")):
        for name, src in (("J&F", "JF"), ("J", "J"), ("F", "F"), ("A", "A")):
            key = name if label is None else f"{name} ({label})"
            metrics[key] = summary[cat][src]
            paths[key] = f"{cat}/{src}"
    counts = {"samples": len(samples), "scored": sum(1 for v in status.values() if v == "scored"),
              "filled": sum(1 for v in status.values() if v == "filled"), "official": len(dropped)}
    counts["missing"] = counts["filled"] + counts["official"]
    details = {
        "official": official_block({c: dict(v) for c, v in summary.items()}, "percent", paths,
                                   note="ref_sav_valid.json: type_id 0 is 'long', 1 'short'; each expression's values "
                                        "are rounded to 2 decimals before averaging"),
        "missing": report,
        "dropped": dropped,
    }
    return _result(facts, card, metrics, rows, counts, details, args, missing, pred_path)


def evaluate_reasonvos(card: Any, loader: Any, pred_path: PathLike, missing: str, device: str, args: dict[str, str],
                       progress: Progress | None = None, per_frame: list[dict[str, Any]] | None = None) -> EvalResult:
    """ReasonVOS (``docs/protocols.md#reasonvos``)."""
    from refbench.metrics.mevis import expression_jf
    from refbench.metrics.reasonvos import reasonvos_scores

    facts = VOS_PROTOCOL_FACTS["reasonvos"]
    official_size = args["gt_size"] == "official"
    samples, source, report = _referring_source(loader, pred_path, missing)
    kept: dict[str, tuple[float, float]] = {}
    status: dict[str, str] = {}
    dropped: dict[str, str] = {}
    except_lines: list[str] = []
    try:
        for n, s in enumerate(samples, start=1):
            st = source.status(s.video, s.exp_id, s.frames)
            if not st.complete and missing == "official":
                dropped[s.key] = "prediction missing"
                _tick(progress, n, len(samples))
                continue
            try:
                if official_size:
                    first = getattr(source, "first_size", None)
                    size = first(s.video, s.exp_id) if callable(first) else source.frame_size(s.video, s.exp_id,
                                                                                            s.frames)
                    if size is None:
                        raise PredictionError(f"{pred_path}: {s.key}: the first predicted frame has no RLE size (the "
                                              "official script takes H, W from it)")
                    gt, failed = loader.gt_masks_official(s, size)
                    src_name = loader.source_of(s.video)
                    vid_id = loader._meta_videos()[s.video].get("vid_id")
                    except_lines += [f"{src_name} {vid_id}" for _ in failed]
                else:
                    try:
                        gt = loader.gt_masks(s)
                    except DatasetError as exc:
                        if "size" not in str(exc):
                            raise
                        raise DatasetError(f"{exc} (eval_reasonvos.py leaves such GT frames empty: pass "
                                           "--protocol-arg gt_size=official for its numbers)") from exc
                pred = _read_referring(source, s, gt.shape[1:], missing)
            except PredictionError as exc:
                if missing != "official":
                    raise
                dropped[s.key] = str(exc)
                _tick(progress, n, len(samples))
                continue
            res = expression_jf(pred, gt, device=device, name=f"{pred_path}: {s.key}")
            add_series(per_frame, f"{s.video}/{s.exp_id}", s.frames, {"J": res.J_frames, "F": res.F_frames})
            kept[s.key] = (res.J, res.F)
            status[s.key] = "scored" if st.complete else "filled"
            _tick(progress, n, len(samples))
    finally:
        source.close()
    if not kept:
        raise PredictionError(f"{pred_path}: no expression could be scored")
    table = reasonvos_scores([v[0] for v in kept.values()], [v[1] for v in kept.values()])
    rows = []
    for s in samples:
        if s.key in dropped:
            rows.append({"sample_id": f"{s.video}/{s.exp_id}",
                         "key": s.key, "video": s.video, "exp_id": s.exp_id, "status": "official",
                         "note": dropped[s.key]})
            continue
        j, f = kept[s.key]
        rows.append({"sample_id": f"{s.video}/{s.exp_id}",
                     "key": s.key, "video": s.video, "exp_id": s.exp_id, "J": _pct(j), "F": _pct(f),
                     "J&F": _pct((j + f) / 2), "status": status[s.key]})
    metrics = {"J&F": table["J&F"], "J": table["J"], "F": table["F"]}
    counts = {"samples": len(samples), "scored": sum(1 for v in status.values() if v == "scored"),
              "filled": sum(1 for v in status.values() if v == "filled"), "official": len(dropped)}
    counts["missing"] = counts["filled"] + counts["official"]
    mj = float(np.mean([v[0] for v in kept.values()]))
    mf = float(np.mean([v[1] for v in kept.values()]))
    details = {
        "official": official_block(table, "percent", {"J&F": "J&F", "J": "J", "F": "F"},
                                   note="reasonvos_val.json (2 decimals)"),
        "unrounded": {"note": "not printed by eval_reasonvos.py: means over the scored expressions, percent",
                      "J": _pct(mj), "F": _pct(mf), "J&F": _pct((mj + mf) / 2)},
        "except_lines": except_lines,
        "missing": report,
        "dropped": dropped,
    }
    return _result(facts, card, metrics, rows, counts, details, args, missing, pred_path)


# ==============================================================================================
# Dispatch
# ==============================================================================================

EVALUATORS: dict[str, Callable[..., EvalResult]] = {
    "sav": evaluate_sav,
    "secvos": evaluate_secvos,
    "lvos": evaluate_lvos,
    "mosev2": evaluate_mosev2,
    "refsav": evaluate_refsav,
    "reasonvos": evaluate_reasonvos,
}

#: Protocols whose official input is a PNG tree, and its layout.
_PNG_ONLY = {"sav": "<video>/<obj>/<frame>.png", "secvos": "<video>/<obj>/<frame>.png",
             "lvos": "<seq>/<frame>.png, indexed", "mosev2": "<vid>/<frame>.png, indexed"}

#: The loader interface each protocol needs (a method it calls), for a clear error on a wrong card.
_NEEDS = {"sav": "annotation_path", "secvos": "scenes", "lvos": "range_problem", "mosev2": "gt_frames",
          "refsav": "gt_masks", "reasonvos": "gt_masks_official"}


def evaluate_vos_protocol(protocol: str, card: Any, loader: Any, pred_path: PathLike, missing: str = "error",
                          device: str = "cpu", protocol_args: Mapping[str, Any] | None = None,
                          progress: Progress | None = None, per_frame: bool = False) -> EvalResult:
    """Score ``pred_path`` with one of this module's protocols (see :data:`EVALUATORS`)."""
    if protocol not in EVALUATORS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(EVALUATORS)}")
    facts = VOS_PROTOCOL_FACTS[protocol]
    args = facts.resolve(protocol_args)
    if not callable(getattr(loader, _NEEDS[protocol], None)):
        raise DatasetError(f"protocol {protocol!r} cannot score dataset {getattr(card, 'name', type(loader).__name__)}"
                           f" (its loader is {type(loader).__name__}); use a card whose protocol is {protocol!r}")
    pred_path = Path(pred_path)
    if not pred_path.exists():
        raise PredictionError(f"{pred_path}: predictions not found")
    if protocol in _PNG_ONLY and pred_path.is_file() and pred_path.suffix.lower() == ".json":
        from refbench.preds.vos_json import is_frame_keyed

        if not is_frame_keyed(pred_path):
            raise PredictionError(f"{pred_path}: protocol {protocol!r} reads the official PNG layout "
                                  f"({_PNG_ONLY[protocol]}), as a folder or a zip, or refbench run's frame-keyed RLE "
                                  "JSON ({video: {obj: {frame: RLE}}}); a per-frame RLE list has no defined frame "
                                  "alignment here")
    frames: list[dict[str, Any]] | None = [] if per_frame else None
    result = EVALUATORS[protocol](card, loader, pred_path, missing, device, args, progress, per_frame=frames)
    result.per_frame = frames
    for k, v in result.metrics.items():
        if v is not None and not isinstance(v, float):
            result.metrics[k] = float(v)
    return result


__all__ = ["CHUNK", "EVALUATORS", "evaluate_lvos", "evaluate_mosev2", "evaluate_reasonvos", "evaluate_refsav",
           "evaluate_sav", "evaluate_secvos", "evaluate_vos_protocol", "official_block"]
