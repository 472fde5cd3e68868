"""Score stored referring-expression-segmentation masks (RefCOCO/+/g, ReasonSeg) as LISA and Sa2VA do.

Counting and float32 reduction are :mod:`refbench.metrics.res` (``intersection_union``, ``RESMeter``,
``res_scores``); predictions are read lazily by :class:`refbench.preds.res.RESPredictions`.

Protocols:

* ``"lisa"`` (default; dvlab-research/LISA ``train_ds.py::validate`` @ 3cb2d4301f1af4691bd4f3938335ef06e76f155a):
  RefCOCO GT built as LISA ``ValDataset`` does (polygon parts summed into uint8, ``gt_style="lisa"``); a ``null``
  prediction (no mask) is scored as an empty mask, counted in ``counts["null_as_empty"]``.
* ``"sa2va"`` (magic-research/Sa2VA ``projects/llava_sam2/evaluation/dataset/RES.py`` ``RESDataset.evaluate`` and
  ``refcoco_eval.py`` @ d01bf3fa8ee239325a007e7b64ee2fd22578b045): RefCOCO GT RLE round-tripped as Sa2VA does
  (``gt_style="sa2va"``, which reproduces its corruption of overlapping polygon parts); a ``null`` prediction is
  skipped in sum(I) and sum(U) but counted in the gIoU denominator (Sa2VA's ``None`` rule), counted in
  ``counts["null_skipped"]``.
* ``"exact"``: no official code (integer sums, float64 division) on the LISA GT; for comparison only.

ReasonSeg GT is always LISA's ``get_mask_from_json`` (ignore = 255), whatever the protocol: Sa2VA's RLE step is
specific to its RefCOCO script.

A sample absent from the file is handled by ``missing`` (:data:`refbench.evaluate.result.MISSING_MODES`):
``"error"`` raises :class:`PredictionError` listing the first few; ``"empty"`` and ``"official"`` (neither official
script defines a rule for an absent sample, so it is ``"empty"``) score an empty mask, counted in
``counts["missing"]``. The Sa2VA skip applies to explicit ``null`` entries only.

Ids in the file that are not samples of the split raise :class:`PredictionError`, unless ``unknown="ignore"``
(a RefCOCO file covering val, testA and testB scored split by split); they are then counted in
``counts["ignored_unknown"]``, never silently dropped.

Metrics ``cIoU`` and ``gIoU`` are in percent: the official float32 value, widened to a Python float, x 100 in
float64 (:func:`refbench.evaluate.result.to_percent`). Both scripts print fractions; ``details["official"]``
keeps them as printed and named: LISA ``giou`` / ``ciou``, Sa2VA ``CIoU`` / ``GIoU``. The per-sample ``IoU``
column is percent too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from refbench.data.base import ImageExpression, PredictionError
from refbench.data.res import ReasonSegLoader, RefCOCOLoader
from refbench.evaluate.result import MISSING_MODES, EvalResult, official_block, to_percent
from refbench.metrics.res import PROTOCOLS, RESMeter, intersection_union
from refbench.preds.res import RESPredictions

PathLike = Union[str, Path]

#: ``unknown=`` values of :func:`evaluate_res`.
UNKNOWN_MODES: tuple[str, ...] = ("error", "ignore")

#: GT style of RefCOCO per protocol (:mod:`refbench.data.refer`).
GT_STYLE: dict[str, str] = {"lisa": "lisa", "sa2va": "sa2va", "exact": "lisa"}

REFERENCES: dict[str, dict[str, str]] = {
    "lisa": {
        "repo": "dvlab-research/LISA",
        "file": "train_ds.py::validate",
        "commit": "3cb2d4301f1af4691bd4f3938335ef06e76f155a",
    },
    "sa2va": {
        "repo": "magic-research/Sa2VA",
        "file": "projects/llava_sam2/evaluation/dataset/RES.py::RESDataset.evaluate",
        "commit": "d01bf3fa8ee239325a007e7b64ee2fd22578b045",
    },
    "exact": {},
}

#: The official names of cIoU and gIoU per protocol (LISA ``validate`` returns giou, ciou; Sa2VA's evaluate
#: returns {'CIoU': ..., 'GIoU': ...}); "exact" has no official script.
OFFICIAL_NAMES: dict[str, dict[str, str]] = {
    "lisa": {"cIoU": "ciou", "gIoU": "giou"},
    "sa2va": {"cIoU": "CIoU", "gIoU": "GIoU"},
    "exact": {"cIoU": "cIoU", "gIoU": "gIoU"},
}

_SHOW = 5


def _first(ids: list[str]) -> str:
    more = f" ... ({len(ids)} in all)" if len(ids) > _SHOW else ""
    return ", ".join(repr(i) for i in ids[:_SHOW]) + more


def _resolve_card(card: Any) -> Any:
    if isinstance(card, str):
        from refbench.cards import dataset_card

        return dataset_card(card)
    return card


def _gt(loader: Any, sample: ImageExpression, protocol: str) -> np.ndarray:
    if isinstance(loader, RefCOCOLoader):
        return loader.gt_mask(sample, GT_STYLE[protocol])  # type: ignore[arg-type]
    return loader.gt_mask(sample)


def evaluate_res(
    card: Any,
    loader: Any,
    pred_path: PathLike,
    protocol: str | None = None,
    missing: str = "error",
    device: str = "cpu",
    *,
    unknown: str = "error",
) -> EvalResult:
    """Score a ``{sample_id: COCO RLE or null}`` file against a RES split.

    Args:
        card: the dataset card (:class:`refbench.cards.DatasetCard` or its name); gives the default protocol.
        loader: :class:`RefCOCOLoader` or :class:`ReasonSegLoader` (None opens ``card`` on its default root).
        pred_path: the prediction JSON (:mod:`refbench.preds.res`).
        protocol: "lisa", "sa2va" or "exact"; default the card's ("lisa").
        missing: "error", "empty" or "official" for samples absent from the file (module docstring).
        device: torch device for the pixel counting.
        unknown: "error" (default) or "ignore" for ids in the file that are not samples of the split.

    Returns:
        :class:`EvalResult` (percent) with ``cIoU``/``gIoU``, one row per sample (``sample_id``,
        ``image_id``, ``file_name``, ``prediction`` = "mask" / "null" / "missing", ``I``, ``U``, ``IoU``
        (percent); a row skipped by the Sa2VA rule has ``skipped=True`` and I = U = 0) and counts ``scored``
        (samples in the gIoU denominator), ``missing``, ``null_as_empty``, ``null_skipped``, ``ignored_unknown``.

    Raises:
        PredictionError: unreadable predictions, a mask size different from the GT's, absent samples under
            ``missing="error"``, unknown ids under ``unknown="error"``.
        ValueError: unknown protocol, missing or unknown mode, a card of another task.
    """
    card = _resolve_card(card)
    if getattr(card, "task", "res") != "res":
        raise ValueError(f"dataset {getattr(card, 'name', card)!r} is a {card.task!r} task, not RES")
    protocol = protocol or getattr(card, "protocol", None) or "lisa"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown RES protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if missing not in MISSING_MODES:
        raise ValueError(f"unknown missing mode {missing!r}; valid: {', '.join(MISSING_MODES)}")
    if unknown not in UNKNOWN_MODES:
        raise ValueError(f"unknown value for unknown= {unknown!r}; valid: {', '.join(UNKNOWN_MODES)}")
    if loader is None:
        loader = card.open()
    # a run's --limit hands a SubsetLoader (refbench.runs.runner) that delegates to the real one
    if not isinstance(getattr(loader, "_loader", loader), (RefCOCOLoader, ReasonSegLoader)):
        raise ValueError(f"evaluate_res needs a RefCOCOLoader or ReasonSegLoader, got {type(loader).__name__}")
    pred_path = Path(pred_path)

    samples: list[ImageExpression] = loader.samples()
    preds = RESPredictions(pred_path)
    ids = {s.sample_id for s in samples}
    extra = [sid for sid in preds.ids() if sid not in ids]
    if extra and unknown == "error":
        raise PredictionError(
            f"{pred_path}: {len(extra)} prediction id(s) are not samples of this split: {_first(extra)} "
            "(--unknown ignore scores a file that covers several splits)"
        )
    absent = [s.sample_id for s in samples if s.sample_id not in preds]
    if absent and missing == "error":
        raise PredictionError(
            f"{pred_path}: {len(absent)} of {len(samples)} samples have no prediction: {_first(absent)} "
            "(--missing empty scores them as empty masks)"
        )

    skip_nulls = protocol == "sa2va"
    meter = RESMeter(protocol, missing="sa2va_skip" if skip_nulls else "empty")  # type: ignore[arg-type]
    dev = torch.device(device)
    rows: list[dict[str, Any]] = []
    null_as_empty = null_skipped = 0
    for s in samples:
        group = s.extra.get("image_group", s.image_id)
        row: dict[str, Any] = {"sample_id": s.sample_id, "image_id": s.image_id, "file_name": s.file_name}
        if s.sample_id not in preds:
            status, pred = "missing", None
        elif preds.is_null(s.sample_id):
            status, pred = "null", None
        else:
            status = "mask"
            pred = preds.mask(s.sample_id, s.height, s.width)
        if status == "null" and skip_nulls:
            meter.update(s.sample_id, None, None, group=group)
            null_skipped += 1
            rows.append({**row, "prediction": status, "skipped": True, "I": 0, "U": 0, "IoU": None})
            continue
        gt = _gt(loader, s, protocol)
        if gt.shape != (s.height, s.width):
            raise PredictionError(f"{pred_path}: sample {s.sample_id!r}: GT shape {gt.shape} != its image size")
        if pred is None:
            pred = np.zeros(gt.shape, dtype=np.uint8)
            if status == "null":
                null_as_empty += 1
        p_t = torch.from_numpy(pred).to(dev)
        g_t = torch.from_numpy(np.ascontiguousarray(gt)).to(dev)
        inter, union = intersection_union(p_t, g_t, meter.ignore_index)
        i, u = int(inter), int(union)
        meter.add_counts(s.sample_id, i, u, group=group)
        rows.append(
            {**row, "prediction": status, "skipped": False, "I": i, "U": u,
             "IoU": to_percent(1.0 if u == 0 else i / u, "fraction")}
        )
    scores = meter.compute([s.sample_id for s in samples])
    counts = {
        "scored": scores.n,
        "missing": len(absent),
        "null_as_empty": null_as_empty,
        "null_skipped": null_skipped,
        "ignored_unknown": len(extra),
    }
    printed = {"cIoU": float(scores.ciou), "gIoU": float(scores.giou)}  # fractions, as both scripts print them
    names = OFFICIAL_NAMES[protocol]
    official = official_block({names[k]: v for k, v in printed.items()}, "fraction", names,
                              note="no official script: refbench's exact variant" if protocol == "exact" else None)
    return EvalResult(
        protocol=protocol,
        metrics={k: to_percent(v, "fraction") for k, v in printed.items()},
        per_sample=rows,
        counts=counts,
        reference=dict(REFERENCES.get(protocol, {})),
        details={
            "official": official,
            "dataset": getattr(card, "name", None),
            "predictions": str(pred_path),
            "gt_style": GT_STYLE[protocol] if isinstance(loader, RefCOCOLoader) else "reason_seg",
            "missing_mode": missing,
            "sum_I": scores.sum_i,
            "sum_U": scores.sum_u,
        },
    )


__all__ = ["GT_STYLE", "OFFICIAL_NAMES", "REFERENCES", "UNKNOWN_MODES", "evaluate_res"]
