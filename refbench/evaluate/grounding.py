"""Score stored temporal-grounding predictions (Charades-STA, ActivityNet Captions) as the official scripts do.

The arithmetic is :func:`refbench.metrics.tsg.score_grounding` (protocols in :data:`refbench.metrics.tsg.PROTOCOLS`,
each citing its official code); predictions are read by :func:`refbench.preds.spans.read_span_predictions`.

Order of reduction (the mIoU is a sequential float sum, so the order decides its last bits): lmms-eval sums the
per-document IoUs in the order it was fed the documents (``lmms_eval/tasks/charades_sta/utils.py`` @ 75571cfe,
``_temporal_grounding_compute_metrics``). With ``subset="all"`` that is the dataset's order (the loader's file
order); with ``subset="predicted"`` the sample is defined by the prediction file, so its queries are reduced in
the file's order: ``shared/data/charades_sta/expected_lmms.json`` (mIoU 6.299805866916596) was made in that
order and is reproduced to the last bit, while the dataset order gives 6.299805866916595.

Which queries are scored:

* ``subset="all"`` (default): every query of the dataset. A query without a prediction is handled by ``missing``
  (:data:`refbench.evaluate.result.MISSING_MODES`): ``"error"`` raises :class:`PredictionError` listing the first
  few; ``"empty"`` and ``"official"`` (no official grounding script defines a missing rule, so it is ``"empty"``)
  score it as a failed span (IoU 0, still in N), counted in ``counts["missing"]``.
* ``subset="predicted"``: only the queries present in the prediction file. TimeChat's ``eval_tvg.py --sample`` scores
  a 500-query sample this way (``expected_timechat.json``: "# gt video timestamps 500"). Never applied silently:
  ``counts["not_in_subset"]`` says how many dataset queries were left out.
* ``sample=N``: then keep only the first N queries (in the order above) of that subset, for a quick partial run;
  ``counts["not_sampled"]`` says how many were left out.

Metrics are in percent as the official scripts print them, so they are the official values unchanged: ``R@0.3``,
``R@0.5``, ``R@0.7`` and ``mIoU`` (no mIoU under "timechat" and "moment_detr", whose scripts compute none;
"moment_detr" reports its ten R@m, "2d-tan" adds ``R5@m``). ``details["official"]`` holds them under each
script's own names (:data:`OFFICIAL_NAMES`): lmms-eval ``IOU@3`` ... ``mIOU``, TimeChat ``IOU 0.3``, VTimeLLM
``R1@0.3``, moment_detr ``full/MR-R1/0.5``, 2D-TAN ``R1@0.3`` / ``R5@0.3``. The per-sample ``iou`` column is
percent too (the IoU x 100).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from refbench.data.base import GroundingQuery, PredictionError
from refbench.evaluate.result import MISSING_MODES, EvalResult, official_block, to_percent
from refbench.metrics.tsg import PROTOCOLS, per_query_iou, score_grounding
from refbench.preds.spans import SpanPrediction, bad_span_queries, read_span_predictions

PathLike = Union[str, Path]

#: ``subset=`` values of :func:`evaluate_grounding`.
SUBSETS: tuple[str, ...] = ("all", "predicted")

#: Official code of each protocol (see :mod:`refbench.metrics.tsg`).
REFERENCES: dict[str, dict[str, str]] = {
    "lmms-eval": {
        "repo": "EvolvingLMMs-Lab/lmms-eval",
        "file": "lmms_eval/tasks/charades_sta/utils.py",
        "commit": "75571cfe0fa36ca5ec2e6aa2bb268f9d38295af3",
    },
    "timechat": {
        "repo": "RenShuhuai-Andy/TimeChat",
        "file": "metrics/tvg/eval_tvg.py",
        "commit": "c60b332b38a6327b976ebcee363c938ca95b610d",
    },
    "vtimellm": {"repo": "huangb23/VTimeLLM", "file": "vtimellm/eval/metric.py", "commit": "673312a"},
    "moment_detr": {"repo": "jayleicn/moment_detr", "file": "standalone_eval/eval.py", "commit": "2fa9e32"},
    "2d-tan": {"repo": "microsoft/VideoX", "file": "2D-TAN/lib/core/eval.py", "commit": "99f6c99"},
}

_SHOW = 5


def _lmms_name(metric: str) -> str:
    # lmms-eval _temporal_grounding_compute_metrics: "IOU@3" for 0.3 (tenths), "mIOU"
    return "mIOU" if metric == "mIoU" else f"IOU@{round(float(metric[2:]) * 10)}"


#: refbench metric name -> the official script's name for it (a "/"-path into its result where it is nested).
OFFICIAL_NAMES: dict[str, Any] = {
    "lmms-eval": _lmms_name,
    "default": _lmms_name,  # the shared convention; lmms-eval is its reference code
    "timechat": lambda m: f"IOU {m[2:]}",  # eval_tvg.py prints "IOU 0.3: 9.0"
    "vtimellm": lambda m: "mIoU" if m == "mIoU" else f"R1@{m[2:]}",  # metric.py grounding_metrics
    "moment_detr": lambda m: f"full/MR-R1/{m[2:]}",  # eval_moment_retrieval()["full"]["MR-R1"]["0.5"]
    "2d-tan": lambda m: m if m == "mIoU" else ("R1" + m[1:] if m.startswith("R@") else m),  # display_results
}


def _official(protocol: str, metrics: dict[str, float]) -> dict[str, Any]:
    """The official printout of ``metrics`` (already percent, as every grounding script prints them)."""
    name_of = OFFICIAL_NAMES[protocol]
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for metric, value in metrics.items():
        path = name_of(metric)
        node = values
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        names[metric] = path
    note = ("2D-TAN's display_results prints these with 2 decimals; the unrounded values are kept"
            if protocol == "2d-tan" else None)
    return official_block(values, "percent", names, note=note)


def _resolve_card(card: Any) -> Any:
    if isinstance(card, str):
        from refbench.cards import dataset_card

        return dataset_card(card)
    return card


def _first(ids: list[str]) -> str:
    more = f" ... ({len(ids)} in all)" if len(ids) > _SHOW else ""
    return ", ".join(repr(i) for i in ids[:_SHOW]) + more


def evaluate_grounding(
    card: Any,
    loader: Any,
    pred_path: PathLike,
    protocol: str | None = None,
    missing: str = "error",
    parse_style: str = "lmms-eval",
    sample: int | None = None,
    device: str = "cpu",
    *,
    subset: str = "all",
    format: str = "auto",
    bad_spans: str = "error",
) -> EvalResult:
    """Score a span prediction file against a grounding dataset.

    Args:
        card: the dataset card (:class:`refbench.cards.DatasetCard` or its name); gives the default protocol.
        loader: the card's loader (``CharadesSTALoader`` / ``ActivityNetLoader``); None opens ``card`` on the
            default root.
        pred_path: JSON predictions (shapes in :mod:`refbench.preds.spans`).
        protocol: one of :data:`refbench.metrics.tsg.PROTOCOLS`; default the card's (``lmms-eval``).
        missing: ``"error"``, ``"empty"`` or ``"official"`` (see the module docstring).
        parse_style: parser for free-text answers (:func:`refbench.metrics.span_parse.parse_span`).
            With ``"vtimellm"`` the answers are fractions of the video, so the GT is divided by the duration
            (``[s / d, e / d]``) as VTimeLLM compares them; not checked against a golden file.
        sample: score only the first ``sample`` queries (reduction order) of the chosen subset.
        device: torch device for the per-query IoUs.
        subset: ``"all"`` or ``"predicted"`` (only the predicted queries; TimeChat's 500-query sample).
        format: prediction file format (``"auto"``, ``"spans"``, ``"text"``, ``"timechat"``).
        bad_spans: a span with start > end or start < 0 is an error naming the query (``"error"``, default) or
            scored as the official scripts score it (``"official"``); recorded in ``details``.

    Returns:
        :class:`EvalResult` with metrics in percent, one row per scored query (``iou`` in percent) and counts
        ``scored``, ``unparsed`` (scored queries without a span, missing ones included), ``missing``,
        ``not_in_subset``, ``not_sampled`` (and ``excluded`` for "2d-tan": queries its loader drops).

    Raises:
        PredictionError: unreadable predictions, unknown ids, missing queries under ``missing="error"``.
        ValueError: unknown protocol, missing mode, subset or parse style; a card of another task.
    """
    card = _resolve_card(card)
    if getattr(card, "task", "tsg") != "tsg":
        raise ValueError(f"dataset {getattr(card, 'name', card)!r} is a {card.task!r} task, not temporal grounding")
    protocol = protocol or getattr(card, "protocol", None) or "lmms-eval"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown grounding protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if missing not in MISSING_MODES:
        raise ValueError(f"unknown missing mode {missing!r}; valid: {', '.join(MISSING_MODES)}")
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; valid: {', '.join(SUBSETS)}")
    if sample is not None and (isinstance(sample, bool) or int(sample) < 1):
        raise ValueError(f"sample must be a positive number of queries, got {sample!r}")
    if loader is None:
        loader = card.open()
    pred_path = Path(pred_path)

    all_samples: list[GroundingQuery] = loader.samples()
    preds = read_span_predictions(pred_path, all_samples, parse_style=parse_style, format=format,
                                  bad_spans=bad_spans, dataset=loader_path(loader))

    if subset == "all":
        chosen = all_samples
    else:  # the sample in the order its file lists it (see the module docstring)
        by_qid = {s.qid: s for s in all_samples}
        chosen = [by_qid[q] for q in preds]
    not_in_subset = len(all_samples) - len(chosen)
    not_sampled = 0
    if sample is not None and len(chosen) > int(sample):
        not_sampled = len(chosen) - int(sample)
        chosen = chosen[: int(sample)]
    if not chosen:
        raise PredictionError(f"{pred_path}: no query to score (--subset {subset}, sample {sample})")

    absent = [s.qid for s in chosen if s.qid not in preds]
    if absent and missing == "error":
        raise PredictionError(
            f"{pred_path}: {len(absent)} of {len(chosen)} queries have no prediction: {_first(absent)} "
            "(--missing empty scores them as failed spans; --subset predicted scores only the predicted queries)"
        )
    no_span = [s.qid for s in chosen if s.span is None]
    if no_span:
        raise PredictionError(f"{loader_path(loader)}: queries without a ground-truth span: {_first(no_span)}")

    vtime = parse_style == "vtimellm"
    gts: list[list[float]] = []
    for s in chosen:
        assert s.span is not None
        if vtime:
            if not s.duration:
                raise PredictionError(
                    f"{pred_path}: parse_style 'vtimellm' gives fractions of the video, but query {s.qid!r} "
                    f"(video {s.video}) has no duration"
                )
            gts.append([s.span[0] / s.duration, s.span[1] / s.duration])
        else:
            gts.append([s.span[0], s.span[1]])
    rows_pred: list[list[list[float]]] = []
    for s in chosen:
        given = preds.get(s.qid)
        rows_pred.append([] if given is None else [list(sp) for sp in given.spans])
    durations = [s.duration for s in chosen]
    if protocol == "2d-tan":
        if any(d is None for d in durations):
            raise PredictionError(f"{loader_path(loader)}: protocol '2d-tan' needs every video duration")
        dur_arg: list[float] | None = [float(d) for d in durations]  # type: ignore[arg-type]
    else:
        dur_arg = None
    gt_clip = "activitynet" if getattr(loader, "name", "") == "activitynet" else "charades"
    kwargs: dict[str, Any] = {"gt_clip": gt_clip} if protocol == "2d-tan" else {}

    scores = score_grounding(rows_pred, gts, protocol, dur_arg, device=device, **kwargs)
    ious = per_query_iou(rows_pred, gts, protocol, dur_arg, device=device, **kwargs).tolist()

    metrics = {k: float(v) for k, v in scores.items() if k.startswith("R") or k == "mIoU"}
    per_sample: list[dict[str, Any]] = []
    for s, gt, iou in zip(chosen, gts, ious):
        p: SpanPrediction | None = preds.get(s.qid)
        top = p.top1 if p is not None else None
        per_sample.append(
            {
                "sample_id": str(s.qid),
                "qid": s.qid,
                "video": s.video,
                "query": s.query,
                "gt_start": gt[0],
                "gt_end": gt[1],
                "pred_start": None if top is None else top[0],
                "pred_end": None if top is None else top[1],
                "parsed": bool(p is not None and p.parsed),
                "missing": p is None,
                "iou": to_percent(float(iou), "fraction"),
            }
        )
    counts = {
        "scored": int(scores.get("count", len(chosen))),
        "unparsed": sum(1 for r in per_sample if not r["parsed"]),
        "missing": len(absent),
        "not_in_subset": not_in_subset,
        "not_sampled": not_sampled,
    }
    if protocol == "2d-tan":
        counts["excluded"] = int(scores.get("n_excluded", 0))
    return EvalResult(
        protocol=protocol,
        metrics=metrics,
        per_sample=per_sample,
        counts=counts,
        reference=dict(REFERENCES.get(protocol, REFERENCES["lmms-eval"])),
        details={
            "official": _official(protocol, metrics),
            "dataset": getattr(card, "name", None),
            "predictions": str(pred_path),
            "subset": subset,
            "sample": sample,
            "parse_style": parse_style,
            "missing_mode": missing,
            "bad_spans": bad_spans,  # what a span with start > end or start < 0 meant (--bad-spans)
            "bad_span_queries": len(set(bad_span_queries(preds)) & {s.qid for s in chosen}),
        },
    )


def loader_path(loader: Any) -> str:
    """The annotation file of a grounding loader, for messages."""
    return str(getattr(loader, "path", getattr(loader, "root", loader)))


__all__ = ["OFFICIAL_NAMES", "REFERENCES", "SUBSETS", "evaluate_grounding"]
