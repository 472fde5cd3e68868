"""Score stored video mask predictions the way the official evaluators do (tasks ``refvos`` and ``vos``).

Protocols (the repository's ``docs/protocols.md``, one section each; the scorers live in :mod:`refbench.metrics`).
Every result is in percent (:mod:`refbench.evaluate.result`); ``details["official"]`` keeps the official printout:

* ``mevis`` -- henghuiding/MeViS ``tools/eval_mevis.py`` (commit 7c0620b9): per-expression J and F, dataset
  means over expressions in meta order; the script prints fractions (``J``, ``F``, ``J&F``), refbench shows
  them x 100. Also Ref-DAVIS17 convention B (VISA ``tools/eval_davis17.py``, alias ``refdavis_b``): the same on
  :meth:`RefDavisLoader.pooled_samples` (videos sorted, exp ids sorted as strings); VISA prints
  ``round(100 * x, 2)``, kept as its printout, while the metrics are the unrounded values x 100.
* ``revos`` -- cilinyan/VISA ``tools/eval_revos.py`` (commit ec158fde): J, F, A, R per expression, rounded
  percent, referring / reasoning / overall table (already percent: the metrics are its values unchanged).
  ``values="official"`` (default) keeps the raw PNG values for A and R, ``"binary"`` maps non-zero to 1 first.
* ``davis_semi`` / ``davis_unsup`` -- davisvideochallenge/davis2017-evaluation ``davis2017/evaluation.py``
  (commit ac7c43f), printed as fractions (global and per-sequence tables). ``davis_unsup`` reads
  ``Annotations_unsupervised`` as the official ``DAVIS(task='unsupervised')`` does.
* ``refdavis_a`` -- Ref-DAVIS17 convention A, wjn922/ReferFormer ``inference_davis.py`` / ``eval_davis.py`` /
  ``scripts/dist_test_davis.sh`` (commit 9a2d4f65; OnlineRefer b53dcd6c is identical). Input: the same
  per-expression masks as ``mevis`` (``<video>/<exp_id>/<frame>.png`` folder or zip, 0/255 or 0/1, or RLE
  JSON). For each annotator set ``anno_k`` (k = 0..3) the masks of the expressions at meta positions
  ``i * 4 + k`` are merged into one indexed map per frame, label ``i + 1`` for the ``i``-th object, and on
  overlap the earlier object wins (ReferFormer's ``argmax`` over [0.1 background, scores >= 0.5] returns the
  first of tied maxima; :func:`refbench.data.davis.merge_annotator_masks`). Each set is scored with the DAVIS
  unsupervised protocol (davis2017-evaluation ``task='unsupervised'``, as ``davis_unsup``) against
  ``valid/Annotations`` of the converted layout, which is DAVIS-2017 ``Annotations_unsupervised/480p``
  (what ``eval_davis.py`` reads), sequences in meta (= ``ImageSets/2017/val.txt``) order. Metrics: ``J``,
  ``F``, ``J&F`` = plain means of the four sets' ``J-Mean``, ``F-Mean``, ``J&F-Mean`` (ReferFormer issue #30:
  the reported number averages the four annotators; refbench's step, not in the printout), and
  ``J&F (anno_k)``, ``J (anno_k)``, ``F (anno_k)`` per set; ``details["official"]`` holds each set's global
  and per-sequence tables as ``eval_davis.py`` prints them. Rows: one per (set, video, matched
  object), keyed ``anno_<k>/<official label>``. Counts: ``samples`` / ``scored`` / ``filled`` count
  expressions, ``objects`` the rows.

Missing predictions (``missing``, see :data:`refbench.evaluate.result.MISSING_MODES`):

* ``"error"`` (default): one :class:`PredictionError` listing the missing videos / expressions / frames,
  raised before anything is scored.
* ``"empty"``: every missing frame (of a missing video or expression: every frame) is an empty mask.
* ``"official"``: MeViS -- a missing video folder scores J = F = 0 (``eval_mevis.py``); a missing expression
  folder or frame has no official rule that keeps the expression (the worker dies and it silently drops out),
  so it is filled empty. ReVOS -- any missing video, expression or frame scores [0, 0, 0, 0] (``eval_revos.py``
  turns every exception into zeros). DAVIS -- the official code stops on a missing file, so: as ``"empty"``.
  ``refdavis_a`` -- ReferFormer writes every map and davis2017 stops on a missing file, so: as ``"empty"``
  (a missing expression is an empty mask before merging; its object can then only match nothing).

Malformed predictions (wrong size, unreadable PNG, unknown ids, ids above the DAVIS limits) always raise.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from refbench.data.base import DatasetError, PredictionError, VideoExpression
from refbench.evaluate.per_frame import add_series
from refbench.evaluate.result import (MISSING_MODES, PERCENT, EvalResult, official_block, percent_metrics,
                                      percent_rows, to_percent)
from refbench.preds.masks import MaskSource, SampleStatus, missing_error, open_mask_source

PathLike = Union[str, Path]
Progress = Callable[[int, int], None]

PROTOCOLS = ("mevis", "refdavis_b", "revos", "davis_semi", "davis_unsup", "refdavis_a")
#: SA-V, SeCVOS, LVOS, MOSE v2, Ref-SAV, ReasonVOS: scored by :mod:`refbench.evaluate.vos` (facts in
#: :mod:`refbench.evaluate.vos_facts`, docs/protocols.md).
VOS_PROTOCOLS = ("sav", "secvos", "lvos", "mosev2", "refsav", "reasonvos")
PROTOCOLS = PROTOCOLS + VOS_PROTOCOLS

REFERENCES: dict[str, dict[str, Any]] = {
    "mevis": {"repo": "henghuiding/MeViS", "file": "tools/eval_mevis.py",
              "commit": "7c0620b9dc0ab7802747957f221674f175c8a47b"},
    "refdavis_b": {"repo": "cilinyan/VISA", "file": "tools/eval_davis17.py",
                   "commit": "ec158fde9cdf87f702399c73618aa0f1127062e9"},
    "revos": {"repo": "cilinyan/VISA", "file": "tools/eval_revos.py",
              "commit": "ec158fde9cdf87f702399c73618aa0f1127062e9"},
    "davis_semi": {"repo": "davisvideochallenge/davis2017-evaluation", "file": "davis2017/evaluation.py",
                   "commit": "ac7c43fca936f9722837b7fbd337d284ba37004b"},
    "davis_unsup": {"repo": "davisvideochallenge/davis2017-evaluation", "file": "davis2017/evaluation.py",
                    "commit": "ac7c43fca936f9722837b7fbd337d284ba37004b"},
    "refdavis_a": {"repo": "wjn922/ReferFormer", "file": "inference_davis.py, eval_davis.py",
                   "commit": "9a2d4f65e7da887b5699166be11cb5dbf865957c"},
}


def _register_vos_references() -> None:
    from refbench.evaluate.vos_facts import VOS_PROTOCOL_FACTS

    for name in VOS_PROTOCOLS:
        REFERENCES[name] = dict(VOS_PROTOCOL_FACTS[name].reference)


_register_vos_references()

_REVOS_CATEGORIES = (("referring", "referring"), ("reason", "reasoning"), ("overall", "overall"))

#: Per-sample score columns of the video protocols (converted to percent with the metrics).
_ROW_SCORES = ("J", "F", "J&F", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
_DAVIS_NAMES = {"J": "J-Mean", "F": "F-Mean", "J&F": "J&F-Mean"}


def _reference(card: Any, protocol: str) -> dict[str, Any]:
    if card is not None and getattr(card, "protocol", None) == protocol and getattr(card, "reference", None):
        return dict(card.reference)
    return dict(REFERENCES.get(protocol, {}))


def _run(items: Sequence[Any], fn: Callable[[Any], Any], progress: Progress | None, workers: int | None,
         device: str = "cpu", source: MaskSource | None = None, group: Callable[[Any], Any] | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` processes (CPU) or threads (other devices), in order; see
    :func:`refbench.evaluate.parallel.map_ordered`. A forked worker reopens ``source``'s files."""
    from refbench.evaluate.parallel import map_ordered

    reopen = getattr(source, "after_fork", None)
    return map_ordered(items, fn, progress, workers, group=group, child_init=reopen if callable(reopen) else None,
                       processes=str(device).startswith("cpu"))


def _missing_gate(source: MaskSource, samples: Sequence[Any], pred_path: PathLike, missing: str) -> dict[str, Any]:
    report = source.missing_report(samples)
    if missing == "error":
        error = missing_error(source, samples, pred_path, "(--missing empty or --missing official scores them)",
                              report)
        if error is not None:
            raise error
    return {"videos": report.videos, "expressions": report.expressions, "frames": report.frames}


# ----------------------------------------------------------------------------------------------
# Per-expression protocols: MeViS (and Ref-DAVIS17 B), ReVOS
# ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _expression_source(samples: Sequence[VideoExpression], pred_path: PathLike, missing: str, dataset: Any = None):
    """Open per-expression predictions, refuse ids outside ``samples`` and apply the missing-prediction gate;
    yields ``(source, missing_info)``."""
    keys = {s.key: (s.video, s.exp_id) for s in samples}
    known: dict[str, set[str]] = {}
    for s in samples:
        known.setdefault(s.video, set()).add(s.exp_id)
    with open_mask_source(pred_path, "expression", "grey", keys) as source:
        source.check_known(known, dataset)
        yield source, _missing_gate(source, samples, pred_path, missing)


def _dataset_file(loader: Any) -> Any:
    """The loader's annotation file (or root), named in messages about ids the predictions do not share."""
    return getattr(loader, "meta_path", None) or getattr(loader, "root", None)


def _expression_samples(loader: Any, protocol: str) -> list[VideoExpression]:
    pooled = getattr(loader, "pooled_samples", None)
    if protocol in ("mevis", "refdavis_b") and callable(pooled):
        return pooled()
    return loader.samples()


def _evaluate_expressions(
    protocol: str, loader: Any, pred_path: PathLike, missing: str, device: str, values: str,
    progress: Progress | None, workers: int | None, per_frame: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]], dict[str, int], dict[str, Any], str]:
    from refbench.metrics._bits import pack_numpy
    from refbench.metrics.mevis import MevisMeter, expression_jf_packed
    from refbench.metrics.revos import RevosMeter, expression_jfar

    is_revos = protocol == "revos"
    if is_revos and not callable(getattr(loader, "foreground_masks", None)):
        raise DatasetError(f"protocol 'revos' needs a loader with foreground masks (RevosLoader), got "
                           f"{type(loader).__name__}")
    samples = _expression_samples(loader, protocol)
    if not samples:
        raise DatasetError(f"{type(loader).__name__}: the dataset lists no expressions")
    gt_words = getattr(loader, "gt_words", None) if callable(getattr(loader, "gt_words", None)) else None
    with _expression_source(samples, pred_path, missing, _dataset_file(loader)) as (source, missing_info):

        def score(s: VideoExpression) -> tuple[str, SampleStatus, Any]:
            st = source.status(s.video, s.exp_id, s.frames)
            if not st.complete and missing == "official":
                if is_revos or not st.video_present:
                    return "official", st, None
            name = f"{pred_path}: {s.key}"
            if is_revos:  # A and R need the raw values
                gt = loader.gt_masks(s)
                pred = source.read(s.video, s.exp_id, s.frames, gt.shape[1:], fill_missing=not st.complete)
                fg = loader.foreground_masks(s.video)
                res = expression_jfar(pred, gt, fg, values=values, device=device, name=name)
            else:  # J and F binarise: both sides go straight to words
                if gt_words is not None:
                    gt_w, size = gt_words(s)
                else:
                    gt = loader.gt_masks(s)
                    gt_w, size = pack_numpy(gt), gt.shape[1:]
                pred_w = source.read_packed(s.video, s.exp_id, s.frames, size, fill_missing=not st.complete)
                res = expression_jf_packed(pred_w, gt_w, size[1], device=device, name=name)
            return ("scored" if st.complete else "filled"), st, res

        results = _run(samples, score, progress, workers, device, source, group=lambda s: s.video)

    counts = {"samples": len(samples), "scored": 0, "missing": 0, "filled": 0, "official": 0}
    meter: Any = RevosMeter(values) if is_revos else MevisMeter()
    for s, (how, st, res) in zip(samples, results):
        counts[how] += 1
        if how != "scored":
            counts["missing"] += 1
        if is_revos:
            if how == "official":
                meter.add_failure(s.key, type_id=s.type_id if s.type_id is not None else -1)
            else:
                meter.add(s.key, res.J, res.F, res.A, res.R, type_id=s.type_id if s.type_id is not None else -1)
        elif how == "official":
            meter.add_missing_video(s.key)
        else:
            meter.add(s.key, res.J, res.F)
    order = [s.key for s in samples]
    scores = meter.compute(order)
    if per_frame is not None:  # the arrays expression_jf / expression_jfar averaged (none for an official 0)
        for s, (_how, _st, res) in zip(samples, results):
            if res is not None:
                add_series(per_frame, f"{s.video}/{s.exp_id}", s.frames, dict(res.frames) if is_revos else
                           {"J": res.J_frames, "F": res.F_frames})
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {"missing": missing_info}
    if is_revos:
        for s, (how, _st, _res) in zip(samples, results):
            r = scores.per_expression_rounded[s.key]
            # raw_jfar: the unrounded J, F, A, R (official fractions) x 100, before eval_revos.py rounds them
            rows.append({"sample_id": f"{s.video}/{s.exp_id}",
                         "key": s.key, "video": s.video, "exp_id": s.exp_id, "J": r["J"], "F": r["F"],
                         "J&F": r["JF"], "A": r["A"], "R": r["R"], "type_id": s.type_id, "status": how,
                         "raw_jfar": [to_percent(v, "fraction") for v in scores.per_expression_raw[s.key]]})
        metrics: dict[str, float] = {}
        names: dict[str, str] = {}
        overall = scores.summary["overall"]
        for name, src in (("J", "J"), ("F", "F"), ("J&F", "JF"), ("A", "A"), ("R", "R")):
            metrics[name] = overall[src]
            names[name] = f"overall/{src}"
        for cat, label in _REVOS_CATEGORIES:
            for name, src in (("J", "J"), ("F", "F"), ("J&F", "JF"), ("A", "A"), ("R", "R")):
                metrics[f"{name} ({label})"] = scores.summary[cat][src]
                names[f"{name} ({label})"] = f"{cat}/{src}"
        # eval_revos.py's own JSON table: already percent, so the metrics above are its values unchanged
        details["official"] = official_block({c: dict(v) for c, v in scores.summary.items()}, "percent", names)
        details["failures"] = [str(k) for k in scores.failures]
        details["values"] = values
        return metrics, rows, counts, details, "percent"
    for s, (how, _st, _res) in zip(samples, results):
        j, f = scores.per_expression[s.key]
        rows.append({"sample_id": f"{s.video}/{s.exp_id}",
                     "key": s.key, "video": s.video, "exp_id": s.exp_id, "J": j, "F": f, "J&F": (j + f) / 2,
                     "status": how})
    details["missing_videos"] = [str(k) for k in scores.missing_videos]
    metrics = {"J": scores.J, "F": scores.F, "J&F": scores.JF}
    if protocol == "refdavis_b":  # VISA eval_davis17.py prints round(100 * x, 2) for each of J, F, J&F
        printed = {k: round(100 * float(v), 2) for k, v in metrics.items()}
        details["official"] = official_block(printed, "percent", {k: k for k in metrics}, digits=2,
                                             note="VISA rounds to 2 decimals when printing; the metrics are the "
                                                  "unrounded values x 100")
    else:  # eval_mevis.py prints np.mean of J and F (fractions) and their mean
        details["official"] = official_block(dict(metrics), "fraction", {k: k for k in metrics})
    return metrics, rows, counts, details, "fraction"


# ----------------------------------------------------------------------------------------------
# DAVIS semi-supervised / unsupervised
# ----------------------------------------------------------------------------------------------


def _unsupervised_loader(loader: Any) -> Any:
    """The official unsupervised task reads ``Annotations_unsupervised``; switch a DavisLoader to it."""
    from refbench.data.davis import DavisLoader

    if not isinstance(loader, DavisLoader) or "Annotations_unsupervised" in loader.annotations_dir.parts:
        return loader
    alt = DavisLoader(loader.root, split=loader.split, resolution=loader.resolution, year=loader.year,
                      annotations="Annotations_unsupervised")
    if not alt.annotations_dir.is_dir():
        raise DatasetError(f"{alt.annotations_dir}: the unsupervised ground truth folder is missing (davis2017 "
                           "reads Annotations_unsupervised for task='unsupervised')")
    return alt


def _evaluate_davis(
    protocol: str, loader: Any, pred_path: PathLike, missing: str, device: str,
    progress: Progress | None, workers: int | None, per_frame: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]], dict[str, int], dict[str, Any], str]:
    import torch

    from refbench.metrics import davis as davis_mod
    from refbench.metrics.davis import (
        DavisResult,
        evaluate_semi_supervised,
        evaluate_semi_supervised_frames,
        evaluate_unsupervised,
    )

    if protocol == "davis_unsup":
        loader = _unsupervised_loader(loader)
    samples = loader.samples()
    if not samples:
        raise DatasetError(f"{type(loader).__name__}: the dataset lists no sequences")
    with open_mask_source(pred_path, "sequence", "index") as source:
        source.check_known({s.video: None for s in samples}, _dataset_file(loader))
        missing_info = _missing_gate(source, samples, pred_path, missing)

        # semi-supervised on CPU: each object packed from each decoded frame, no (T, H, W) stacks (issue 12)
        streamed = (protocol == "davis_semi" and callable(getattr(loader, "gt_frames", None))
                    and (device is None or torch.device(device).type == "cpu") and davis_mod._NUMPY_ON_CPU)

        def score_streamed(seq: Any) -> tuple[str, Any]:
            st = source.status(seq.video, None, seq.frames)
            size: list[tuple[int, int]] = []

            def gt_frames() -> Any:
                for ids in loader.gt_frames(seq):
                    if not size:
                        size.append(tuple(ids.shape))
                    yield ids

            def pred_frames() -> Any:
                yield from source.iter_frames(seq.video, None, seq.frames, size[0], fill_missing=not st.complete)

            try:
                res = evaluate_semi_supervised_frames(gt_frames(), pred_frames(), len(seq.frames),
                                                      sequence=seq.video)
            except ValueError as exc:
                raise PredictionError(f"{pred_path}: {exc}") from exc
            return ("scored" if st.complete else "filled"), res

        def score(seq: Any) -> tuple[str, Any]:
            if streamed:
                return score_streamed(seq)
            st = source.status(seq.video, None, seq.frames)
            gt = loader.gt_masks(seq)
            pred = source.read(seq.video, None, seq.frames, gt.shape[1:], fill_missing=not st.complete)
            try:
                if protocol == "davis_semi":
                    res = evaluate_semi_supervised(gt, pred, sequence=seq.video, device=device)
                else:
                    res = evaluate_unsupervised(gt, pred, sequence=seq.video, device=device)
            except ValueError as exc:
                raise PredictionError(f"{pred_path}: {exc}") from exc
            return ("scored" if st.complete else "filled"), res

        results = _run(samples, score, progress, workers, device, source)

    counts = {"samples": len(samples), "scored": 0, "missing": 0, "filled": 0, "official": 0}
    acc = DavisResult()
    for how, res in results:
        counts[how] += 1
        if how != "scored":
            counts["missing"] += 1
        acc.add(res)
    order = [s.video for s in samples]
    table = acc.global_table(order)
    rows: list[dict[str, Any]] = []
    frames_of = {s.video: s.frames for s in samples}
    for o in acc.objects(order):
        add_series(per_frame, f"{o.sequence}/{o.gt_object}", [frames_of[o.sequence][i] for i in o.frames],
                   {"J": o.J, "F": o.F})
        row = o.row()
        rows.append({"sample_id": f"{o.sequence}/{o.gt_object}",
                     "key": o.name, "video": o.sequence, "object": o.name, "gt_object": o.gt_object,
                     "proposal": o.proposal, "J": row["J-Mean"], "F": row["F-Mean"],
                     "J&F": (row["J-Mean"] + row["F-Mean"]) / 2, **row})
    counts["objects"] = len(rows)
    metrics = {"J": table["J-Mean"], "F": table["F-Mean"], "J&F": table["J&F-Mean"]}
    metrics.update({k: v for k, v in table.items() if k not in ("J-Mean", "F-Mean", "J&F-Mean")})
    names = {m: f"global/{_DAVIS_NAMES.get(m, m)}" for m in metrics}
    details = {"official": official_block(_davis_printout(table, rows), "fraction", names), "missing": missing_info,
               "task": "semi-supervised" if protocol == "davis_semi" else "unsupervised"}
    return metrics, rows, counts, details, "fraction"


def _davis_printout(table: dict[str, float], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What davis2017-evaluation's ``evaluation_method.py`` (and ReferFormer's ``eval_davis.py``) print: the
    global table and the per-sequence table (J-Mean, F-Mean per object), fractions."""
    return {"global": dict(table),
            "per_sequence": {r["object"]: {"J-Mean": r["J-Mean"], "F-Mean": r["F-Mean"]} for r in rows}}


# ----------------------------------------------------------------------------------------------
# Ref-DAVIS17 convention A (ReferFormer): DAVIS unsupervised per annotator set
# ----------------------------------------------------------------------------------------------


def _evaluate_refdavis_a(
    loader: Any, pred_path: PathLike, missing: str, device: str, progress: Progress | None, workers: int | None,
    per_frame: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]], dict[str, int], dict[str, Any], str]:
    import numpy as np

    from refbench.data.davis import REF_DAVIS_ANNOTATOR_SETS
    from refbench.metrics.davis import DavisResult, evaluate_unsupervised

    if not callable(getattr(loader, "merged_sets", None)):
        raise DatasetError(f"protocol 'refdavis_a' needs the Ref-DAVIS17 loader (RefDavisLoader), got "
                           f"{type(loader).__name__}")
    samples = loader.samples()
    if not samples:
        raise DatasetError(f"{type(loader).__name__}: the dataset lists no expressions")
    videos = loader.videos()
    by_video: dict[str, list[VideoExpression]] = {v: [] for v in videos}
    for s in samples:
        by_video[s.video].append(s)
    odd = [v for v, exps in by_video.items() if len(exps) % 4]
    if odd:
        raise DatasetError(f"{loader.meta_path}: video {odd[0]!r} has {len(by_video[odd[0]])} expressions, not a "
                           "multiple of 4 (one per annotator set and object); convention A cannot be scored")
    with _expression_source(samples, pred_path, missing, _dataset_file(loader)) as (source, missing_info):

        def score(video: str) -> tuple[dict[str, str], dict[int, Any]]:
            gt = loader.gt_indexed(video)
            how: dict[str, str] = {}

            def read(s: VideoExpression) -> Any:
                st = source.status(s.video, s.exp_id, s.frames)
                how[s.exp_id] = "scored" if st.complete else "filled"
                return source.read(s.video, s.exp_id, s.frames, gt.shape[1:], fill_missing=not st.complete)

            maps = loader.merged_sets(video, read, gt.shape)
            results = {}
            for k in REF_DAVIS_ANNOTATOR_SETS:
                try:
                    results[k] = evaluate_unsupervised(gt, maps[k], sequence=video, device=device)
                except ValueError as exc:
                    raise PredictionError(f"{pred_path}: anno_{k}: {exc}") from exc
            return how, results

        results = _run(videos, score, progress, workers, device, source)

    counts = {"samples": len(samples), "scored": 0, "missing": 0, "filled": 0, "official": 0}
    status: dict[tuple[str, str], str] = {}
    for video, (how, _res) in zip(videos, results):
        for exp_id, h in how.items():
            status[(video, exp_id)] = h
            counts[h] += 1
            if h != "scored":
                counts["missing"] += 1
    accs = {k: DavisResult() for k in REF_DAVIS_ANNOTATOR_SETS}
    for _how, res in results:
        for k in REF_DAVIS_ANNOTATOR_SETS:
            accs[k].add(res[k])
    tables = {k: accs[k].global_table(videos) for k in REF_DAVIS_ANNOTATOR_SETS}
    rows: list[dict[str, Any]] = []
    for k in REF_DAVIS_ANNOTATOR_SETS:
        for o in accs[k].objects(videos):
            objs = loader.annotator_objects(o.sequence, k)
            exp = objs[o.proposal - 1] if o.proposal <= len(objs) else None
            row = o.row()
            sid = f"{o.sequence}/{exp.exp_id}" if exp is not None else f"{o.sequence}/anno_{k}/{o.gt_object}"
            add_series(per_frame, sid, [by_video[o.sequence][0].frames[i] for i in o.frames], {"J": o.J, "F": o.F})
            rows.append({"sample_id": sid,
                         "key": f"anno_{k}/{o.name}", "set": f"anno_{k}", "video": o.sequence, "object": o.name,
                         "gt_object": o.gt_object, "proposal": o.proposal,
                         "exp_id": exp.exp_id if exp is not None else None,
                         "obj_id": exp.obj_ids[0] if exp is not None else None,
                         "J": row["J-Mean"], "F": row["F-Mean"], "J&F": (row["J-Mean"] + row["F-Mean"]) / 2, **row,
                         "status": status.get((o.sequence, exp.exp_id), "scored") if exp is not None else "scored"})
    counts["objects"] = len(rows)
    counts["sets"] = len(REF_DAVIS_ANNOTATOR_SETS)

    def mean4(col: str) -> float:
        return float(np.mean(np.array([tables[k][col] for k in REF_DAVIS_ANNOTATOR_SETS], dtype=np.float64)))

    metrics = {"J": mean4("J-Mean"), "F": mean4("F-Mean"), "J&F": mean4("J&F-Mean")}
    names: dict[str, str] = {}
    for k in REF_DAVIS_ANNOTATOR_SETS:
        for m in ("J&F", "J", "F"):
            metrics[f"{m} (anno_{k})"] = tables[k][_DAVIS_NAMES[m]]
            names[f"{m} (anno_{k})"] = f"anno_{k}/global/{_DAVIS_NAMES[m]}"
    printout = {f"anno_{k}": _davis_printout(tables[k], [r for r in rows if r["set"] == f"anno_{k}"])
                for k in REF_DAVIS_ANNOTATOR_SETS}
    details = {
        # eval_davis.py run once per annotator set; J, F, J&F (their mean) are refbench's, not in the printout
        "official": official_block(printout, "fraction", names),
        "task": "unsupervised",
        "combination": "mean of the four annotator sets' global J-Mean, F-Mean and J&F-Mean",
        "merge": "label i + 1 for the i-th object of the set; on overlap the earlier object wins",
        "scorer": dict(REFERENCES["davis_unsup"]),
        "convention": dict(REFERENCES["refdavis_a"]),
        "missing": missing_info,
    }
    return metrics, rows, counts, details, "fraction"


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def evaluate_video(
    card: Any,
    loader: Any,
    pred_path: PathLike,
    protocol: str | None = None,
    missing: str = "error",
    device: str = "cpu",
    values: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    protocol_args: Mapping[str, Any] | None = None,
    per_frame: bool = False,
) -> EvalResult:
    """Score the video mask predictions at ``pred_path`` against ``loader``'s ground truth.

    card: the :class:`refbench.cards.DatasetCard` (task ``refvos`` or ``vos``; gives the default protocol and
        the reference), or None when ``protocol`` is given.
    loader: the card's opened loader (``MevisLoader``, ``RevosLoader``, ``RefDavisLoader``, ``DavisLoader``).
    pred_path: a folder, ``.zip`` or (per-expression protocols) RLE ``.json``; see :mod:`refbench.preds.masks`.
    protocol: one of :data:`PROTOCOLS` (default: the card's).
    missing: ``"error"``, ``"empty"`` or ``"official"`` (module doc).
    device: torch device for J and F. values: ReVOS value semantics, ``"official"`` (default) or ``"binary"``.
    progress: optional ``callable(n_done, n_total)``; workers: scoring processes on CPU, threads on other
        devices (default min(8, CPUs); :mod:`refbench.evaluate.parallel`).
    protocol_args: ``--protocol-arg`` options of the :data:`VOS_PROTOCOLS` (``refbench.evaluate.vos_facts``).
    per_frame: also return every sample's per-frame J and F as the scorer computed them (``result.per_frame``,
    rows of :mod:`refbench.evaluate.per_frame`).
    Returns an :class:`EvalResult` in percent; ``details["official"]`` is what the official script prints.
    """
    if card is not None and getattr(card, "task", None) not in ("refvos", "vos"):
        raise ValueError(f"evaluate_video scores tasks 'refvos' and 'vos'; card {getattr(card, 'name', card)!r} "
                         f"has task {getattr(card, 'task', None)!r}")
    if protocol is None:
        if card is None:
            raise ValueError("evaluate_video: give a card or a protocol")
        protocol = card.protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown video protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if missing not in MISSING_MODES:
        raise ValueError(f"unknown missing mode {missing!r}; expected one of {', '.join(MISSING_MODES)}")
    if protocol in VOS_PROTOCOLS:
        if values is not None:
            raise ValueError(f"--values applies to protocol 'revos' only, not {protocol!r}")
        from refbench.evaluate.vos import evaluate_vos_protocol

        return evaluate_vos_protocol(protocol, card, loader, pred_path, missing=missing, device=device,
                                     protocol_args=protocol_args, progress=progress, per_frame=per_frame)
    if protocol_args:
        raise ValueError(f"protocol {protocol!r} takes no --protocol-arg")
    if protocol == "revos":
        values = values or "official"
        if values not in ("official", "binary"):
            raise ValueError(f"unknown ReVOS value semantics {values!r}; expected 'official' or 'binary'")
    elif values is not None:
        raise ValueError(f"values={values!r} applies to protocol 'revos' only")

    frames: list[dict[str, Any]] | None = [] if per_frame else None
    if protocol == "refdavis_a":
        metrics, rows, counts, details, scale = _evaluate_refdavis_a(loader, pred_path, missing, device, progress,
                                                                    workers, frames)
    elif protocol in ("davis_semi", "davis_unsup"):
        metrics, rows, counts, details, scale = _evaluate_davis(protocol, loader, pred_path, missing, device,
                                                               progress, workers, frames)
    else:
        metrics, rows, counts, details, scale = _evaluate_expressions(protocol, loader, pred_path, missing, device,
                                                                     values or "", progress, workers, frames)
    details["missing_mode"] = missing
    details["predictions"] = str(pred_path)
    if "official" not in details:  # a protocol that did not name its printout: its metrics as computed
        details["official"] = official_block(dict(metrics), scale, {k: k for k in metrics})
    if scale != PERCENT:  # scored in the official fraction scale: x 100 in float64 (result.to_percent)
        metrics = percent_metrics(metrics, scale)
        rows = percent_rows(rows, _ROW_SCORES, scale)
    return EvalResult(protocol=protocol, metrics=metrics, per_sample=rows, counts=counts,
                      reference=_reference(card, protocol), details=details, per_frame=frames)


__all__ = ["PROTOCOLS", "REFERENCES", "VOS_PROTOCOLS", "evaluate_video"]
