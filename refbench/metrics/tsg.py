"""Temporal sentence grounding (TSG) scores: R@m and mIoU under named official protocols.

All arithmetic is float64 torch on any device. Per-query IoUs and threshold counts are
computed on the device; the final reductions (sums of IoUs, percentages, rounding) run
on the host in Python floats, in the official order of operations, so that every
number is bit-identical to the official Python/numpy code (a device reduction would
change the summation order and hence the last bits).

Protocols (``score_grounding(..., protocol=...)``)
--------------------------------------------------
``"default"`` / ``"lmms-eval"``
    EvolvingLMMs-Lab/lmms-eval ``lmms_eval/tasks/charades_sta/utils.py`` @ 75571cfe
    (``iou``, ``_temporal_grounding_compute_metrics``): top-1 span, IoU
    ``max(min(e1,e2)-max(s1,s2), 0) / (max(e1,e2)-min(s1,s2))`` or 0 when that
    denominator is <= 0; ``R@m = count(IoU >= m) * 100 / N``; ``mIoU = sum(IoU) * 100 / N``
    (sequential sum in query order); an unparseable answer scores IoU 0 and still counts.
``"timechat"``
    RenShuhuai-Andy/TimeChat ``metrics/tvg/eval_tvg.py`` @ c60b332: same IoU and ``>=``;
    an empty prediction is skipped (a miss even at threshold 0); ``R@m = hits * 100 / N``
    over the (sampled) GT queries; no mIoU. (The official IoU has no zero-denominator
    guard and would raise ``ZeroDivisionError``; it scores 0 here.)
``"vtimellm"``
    huangb23/VTimeLLM ``vtimellm/eval/eval.py::iou`` + ``metric.py::grounding_metrics``
    @ 673312a: IoU rounded with Python ``round(iou, 2)`` before thresholding and
    averaging; ``R@m = count / N * 100``; ``mIoU = sum(IoU) / N * 100``. VTimeLLM scores
    spans as fractions of the video (answer "NN to MM" / 100 against GT / duration); the
    caller supplies spans in whichever unit it wants reproduced.
``"moment_detr"``
    jayleicn/moment_detr ``standalone_eval/eval.py::compute_mr_r1`` @ 2fa9e32 (the "full"
    length range): top-1 window; among several GT windows the one with the highest
    IoU (true-union IoU, first maximum, NaN counts as maximal like ``np.argmax``) is kept;
    the paired IoU uses the hull denominator; ``R1@m = float(f"{count/N*100:.2f}")`` for
    m in 0.5, 0.55, ..., 0.95; no mIoU. MR-mAP is not reproduced.
``"2d-tan"``
    microsoft/VideoX (2D-TAN) ``lib/core/eval.py`` @ 99f6c99 (``nms``, ``iou``, ``eval``)
    with the GT preparation of its dataset loaders: Charades (``lib/datasets/charades.py``,
    seen in the fork SeolMuah/2D-TAN @ 97ded10) clips the GT end to the video duration and
    drops queries with ``start >= clipped end``; ActivityNet (VideoX
    ``lib/datasets/activitynet.py``) drops ``start >= end`` first, then clips start to
    >= 0 and end to <= duration. Predictions are ranked proposals (best first); greedy
    NMS keeps a proposal unless its IoU (true union) with a kept one is not ``<= nms_thresh``
    (0.45 in ``experiments/charades/2D-TAN-16x16-K5L8-pool.yaml``), stopping at
    ``max(ranks)`` kept; ``R{k}@m`` = share of queries with any of the first k kept
    proposals at IoU **>** m, ``count / N * 100``; mIoU = numpy-pairwise mean of the
    top-1 IoU * 100. The official table prints these with 2 decimals; the values here
    are unrounded.

Behaviour outside the official code paths (documented, not reproducible): an empty or
missing prediction scores IoU 0 under "2d-tan" and "moment_detr" (the official code
would raise); a GT span with a zero-length hull scores IoU 0 under "timechat".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MOMENT_DETR_THRESHOLDS",
    "PROTOCOLS",
    "GroundingMeter",
    "grounding_scores",
    "per_query_iou",
    "score_grounding",
    "temporal_iou",
]

#: Thresholds m of R@m used by lmms-eval, TimeChat and VTimeLLM (and our default).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
#: moment_detr's R1 thresholds: ``np.linspace(0.5, 0.95, 10)`` formatted with 2 decimals.
MOMENT_DETR_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
#: The accepted ``protocol`` names.
PROTOCOLS: tuple[str, ...] = ("default", "lmms-eval", "timechat", "vtimellm", "moment_detr", "2d-tan")

_F64 = torch.float64
_GT_CLIPS = ("charades", "activitynet")

SpanInput = Union[None, Tensor, Sequence[float], Sequence[Sequence[float]]]


# ------------------------------------------------------------------------------ IoU


def temporal_iou(pred: Tensor | Sequence, gt: Tensor | Sequence) -> Tensor:
    """Paired temporal IoU of spans ``[start, end]``.

    ``max(min(e1,e2) - max(s1,s2), 0) / (max(e1,e2) - min(s1,s2))``, and 0 where that
    denominator is ``<= 0`` (lmms-eval ``iou``; TimeChat/VTimeLLM/moment_detr/2D-TAN use
    the same numerator and denominator). Each element is computed with the same IEEE
    operations in the same order as the official Python-float code, so values are
    bit-identical to it.

    Args:
        pred: ``(..., 2)`` spans (any device; lists are accepted). Inputs are cast to
            float64; pass float64 tensors or Python floats, since a float32 tensor has
            already lost the bits the official float64 code sees.
        gt: ``(..., 2)`` spans, broadcastable against ``pred``.

    Returns:
        ``(...)`` float64 IoUs on ``pred``'s device.
    """
    pred_t = _as_f64(pred)
    gt_t = _as_f64(gt, device=pred_t.device)
    if pred_t.shape[-1:] != (2,) or gt_t.shape[-1:] != (2,):
        shapes = f"{tuple(pred_t.shape)} and {tuple(gt_t.shape)}"
        raise ValueError(f"spans must have a last dimension of 2, got {shapes}")
    s1, e1 = pred_t[..., 0], pred_t[..., 1]
    s2, e2 = gt_t[..., 0], gt_t[..., 1]
    inter = torch.clamp(torch.minimum(e1, e2) - torch.maximum(s1, s2), min=0.0)
    hull = torch.maximum(e1, e2) - torch.minimum(s1, s2)
    # "denominator <= 0 -> 0" (a NaN denominator stays NaN, as in Python).
    return torch.where(hull <= 0, torch.zeros_like(hull), inter / hull)


def _true_union_iou(pred: Tensor, gt: Tensor) -> Tensor:
    """IoU with the true union ``len1 + len2 - inter``, no zero guard (0/0 -> NaN).

    moment_detr ``standalone_eval/utils.py::compute_temporal_iou_batch_cross`` (used to
    pick the best GT window) and 2D-TAN ``nms`` (``ovr``) use this form.
    Shapes: ``(..., 2)`` broadcastable -> ``(...)``.
    """
    inter = torch.clamp(
        torch.minimum(pred[..., 1], gt[..., 1]) - torch.maximum(pred[..., 0], gt[..., 0]), min=0.0
    )
    union = (pred[..., 1] - pred[..., 0]) + (gt[..., 1] - gt[..., 0]) - inter
    return inter / union


# ------------------------------------------------------------------- reductions


def _numpy_pairwise_sum(values: Sequence[float]) -> float:
    """Sum in numpy's pairwise order (``np.add.reduce`` on a contiguous float64 array).

    numpy sums blocks of <= 128 elements with 8 interleaved accumulators and splits
    larger ranges in two halves (half rounded down to a multiple of 8). Needed for the
    bit-exact 2D-TAN mIoU (``np.mean``).
    """

    def block(lo: int, n: int) -> float:
        if n < 8:
            total = 0.0
            for i in range(lo, lo + n):
                total += values[i]
            return total
        if n <= 128:
            acc = [values[lo + j] for j in range(8)]
            i = 8
            stop = n - n % 8
            while i < stop:
                for j in range(8):
                    acc[j] += values[lo + i + j]
                i += 8
            total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
            for k in range(lo + i, lo + n):
                total += values[k]
            return total
        half = n // 2
        half -= half % 8
        return block(lo, half) + block(lo + half, n - half)

    return block(0, len(values))


def _sequential_sum(values: Iterable[float]) -> float:
    """Left-to-right float sum, like Python 3.11's built-in ``sum`` over floats."""
    total = 0.0
    for v in values:
        total += v
    return total


def _percent(amount: float, n: int, scale_first: bool) -> float:
    """``amount * 100 / n`` (``scale_first``) or ``amount / n * 100``; 0.0 when ``n == 0``."""
    if n == 0:
        return 0.0
    return amount * 100 / n if scale_first else amount / n * 100


def _threshold_key(m: float, rank: int = 1) -> str:
    """``"R@0.5"`` for rank 1, ``"R5@0.5"`` for rank 5."""
    return f"R@{float(m)}" if rank == 1 else f"R{rank}@{float(m)}"


def grounding_scores(
    ious: Tensor | Sequence[float],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    strict: bool = False,
    round_iou: Optional[int] = None,
    *,
    valid: Optional[Tensor] = None,
    scale_first: bool = True,
    summation: str = "sequential",
    round_result: Optional[int] = None,
    with_miou: bool = True,
) -> dict[str, float | int]:
    """R@m and mIoU (percent) from per-query IoUs.

    Args:
        ious: ``(N,)`` per-query IoU, in the order the official code iterates.
        thresholds: the m of R@m.
        strict: count ``IoU > m`` (2D-TAN) instead of ``IoU >= m`` (everyone else).
        round_iou: round each IoU with Python ``round(iou, round_iou)`` first (VTimeLLM: 2).
        valid: ``(N,)`` bool; a query with ``False`` is never a hit (TimeChat skips empty
            predictions) but still counts in N and in the mIoU.
        scale_first: ``count * 100 / N`` (lmms-eval, TimeChat) or ``count / N * 100``
            (VTimeLLM, moment_detr, 2D-TAN); the same for mIoU.
        summation: ``"sequential"`` (Python ``sum``) or ``"pairwise"`` (``np.mean``).
        round_result: format each R@m with ``f"{x:.{round_result}f}"`` (moment_detr: 2).
        with_miou: include ``"mIoU"``.

    Returns:
        ``{"R@m": percent, ..., "mIoU": percent, "count": N}``.
    """
    if summation not in ("sequential", "pairwise"):
        raise ValueError(f"summation must be 'sequential' or 'pairwise', got {summation!r}")
    iou_t = _as_f64(ious).reshape(-1)
    n = int(iou_t.numel())
    values = iou_t.tolist()
    if round_iou is not None:
        values = [round(v, round_iou) for v in values]
        iou_t = torch.tensor(values, dtype=_F64, device=iou_t.device)
    hit_mask = None if valid is None else valid.to(device=iou_t.device, dtype=torch.bool).reshape(-1)
    if hit_mask is not None and hit_mask.numel() != n:
        raise ValueError(f"valid has {hit_mask.numel()} entries for {n} IoUs")

    out: dict[str, float | int] = {}
    for m in thresholds:
        hits = iou_t > m if strict else iou_t >= m
        if hit_mask is not None:
            hits = hits & hit_mask
        pct = _percent(int(hits.sum().item()), n, scale_first)
        out[_threshold_key(m)] = float(f"{pct:.{round_result}f}") if round_result is not None else pct
    if with_miou:
        total = _sequential_sum(values) if summation == "sequential" else _numpy_pairwise_sum(values)
        out["mIoU"] = _percent(total, n, scale_first)
    out["count"] = n
    return out


# ---------------------------------------------------------------- input batching


@dataclass
class _Batch:
    """Padded spans of N queries.

    pred: ``(N, K, 2)`` ranked predictions (best first), pred_mask: ``(N, K)``;
    gt: ``(N, G, 2)`` GT windows, gt_mask: ``(N, G)``. Padding is zeros / ``False``.
    """

    pred: Tensor
    pred_mask: Tensor
    gt: Tensor
    gt_mask: Tensor

    @property
    def has_pred(self) -> Tensor:
        """``(N,)`` bool: the query has at least one predicted span."""
        return self.pred_mask[:, 0]


def _as_f64(x: Any, device: Optional[torch.device | str] = None) -> Tensor:
    """A float64 tensor (moved to ``device`` when given)."""
    if isinstance(x, Tensor):
        return x.to(device=device if device is not None else x.device, dtype=_F64)
    return torch.as_tensor(x, dtype=_F64, device=device)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _span_list(item: SpanInput, what: str) -> list[tuple[float, float]]:
    """One query's spans: ``None``/``[]`` -> ``[]``; ``[s, e]`` -> one; ``[[s, e], ...]`` -> ranked."""
    if item is None:
        return []
    if type(item).__module__ == "numpy":  # ndarray / numpy scalar rows
        item = item.tolist()
    if isinstance(item, Tensor):
        t = item.detach().to("cpu", _F64)
        if t.numel() == 0:
            return []
        if t.dim() == 1 and t.shape[0] == 2:
            return [(float(t[0]), float(t[1]))]
        if t.dim() == 2 and t.shape[1] == 2:
            return [(float(a), float(b)) for a, b in t.tolist()]
        raise ValueError(f"{what}: a span tensor must have shape (2,) or (K, 2), got {tuple(t.shape)}")
    if isinstance(item, (str, bytes)) or not isinstance(item, Sequence):
        raise TypeError(f"{what}: expected None, [start, end] or a list of spans, got {type(item).__name__}")
    if len(item) == 0:
        return []
    if _is_number(item[0]):
        if len(item) != 2 or not _is_number(item[1]):
            raise ValueError(f"{what}: a span is [start, end], got {list(item)!r}")
        return [(float(item[0]), float(item[1]))]
    spans = []
    for span in item:
        if isinstance(span, Tensor) or type(span).__module__ == "numpy":
            span = span.tolist()
        if not isinstance(span, Sequence) or len(span) != 2 or not all(_is_number(v) for v in span):
            raise ValueError(f"{what}: each span is [start, end], got {span!r}")
        spans.append((float(span[0]), float(span[1])))
    return spans


def _pad(rows: list[list[tuple[float, float]]], device: torch.device) -> tuple[Tensor, Tensor]:
    """Lists of spans -> ``(N, K, 2)`` zero-padded float64 and ``(N, K)`` mask, ``K >= 1``."""
    width = max([len(r) for r in rows] + [1])
    flat = [list(r) + [(0.0, 0.0)] * (width - len(r)) for r in rows]
    mask = [[True] * len(r) + [False] * (width - len(r)) for r in rows]
    spans = torch.tensor(flat, dtype=_F64, device=device).reshape(len(rows), width, 2)
    return spans, torch.tensor(mask, dtype=torch.bool, device=device).reshape(len(rows), width)


def _batch_from_tensor(x: Tensor, device: torch.device, what: str) -> tuple[Tensor, Tensor]:
    """``(N, 2)`` or ``(N, K, 2)`` tensor -> padded form with an all-true mask."""
    t = x.to(device=device, dtype=_F64)
    if t.dim() == 2 and t.shape[1] == 2:
        t = t[:, None, :]
    if t.dim() != 3 or t.shape[2] != 2:
        raise ValueError(f"{what}: a tensor must have shape (N, 2) or (N, K, 2), got {tuple(x.shape)}")
    return t, torch.ones(t.shape[:2], dtype=torch.bool, device=device)


def _make_batch(preds: Any, gts: Any, device: Optional[torch.device | str]) -> _Batch:
    """Normalise predictions and GT of N queries into a :class:`_Batch`."""
    if device is None:
        device = next((x.device for x in (preds, gts) if isinstance(x, Tensor)), torch.device("cpu"))
    device = torch.device(device)
    if isinstance(preds, Tensor):
        pred, pred_mask = _batch_from_tensor(preds, device, "preds")
    else:
        pred, pred_mask = _pad([_span_list(p, f"preds[{i}]") for i, p in enumerate(preds)], device)
    if isinstance(gts, Tensor):
        gt, gt_mask = _batch_from_tensor(gts, device, "gts")
    else:
        gt, gt_mask = _pad([_span_list(g, f"gts[{i}]") for i, g in enumerate(gts)], device)
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f"{pred.shape[0]} predictions for {gt.shape[0]} ground-truth queries")
    if gt.shape[0] and not bool(gt_mask[:, 0].all()):
        raise ValueError("every query needs at least one ground-truth span")
    return _Batch(pred, pred_mask, gt, gt_mask)


def _single_gt(batch: _Batch, protocol: str) -> Tensor:
    """``(N, 2)`` GT spans; only moment_detr accepts several GT windows per query."""
    if batch.gt_mask.shape[1] > 1 and bool(batch.gt_mask[:, 1].any()):
        raise ValueError(
            f"protocol {protocol!r} takes one ground-truth span per query; use 'moment_detr' for several"
        )
    return batch.gt[:, 0]


# ------------------------------------------------------------ protocol kernels


def _top1_iou(batch: _Batch, gt: Tensor) -> Tensor:
    """``(N,)`` IoU of the top-1 prediction, 0 where there is none."""
    iou = temporal_iou(batch.pred[:, 0], gt)
    return torch.where(batch.has_pred, iou, torch.zeros_like(iou))


def _best_gt(batch: _Batch) -> Tensor:
    """``(N, 2)``: per query the GT window with the highest true-union IoU to the top-1.

    moment_detr ``compute_mr_r1``: ``np.argmax`` over ``compute_temporal_iou_batch_cross``,
    i.e. the first maximum, a NaN IoU counting as the maximum.
    """
    ious = _true_union_iou(batch.pred[:, :1], batch.gt)  # (N, G)
    ious = torch.where(torch.isnan(ious), torch.full_like(ious, math.inf), ious)
    ious = torch.where(batch.gt_mask, ious, torch.full_like(ious, -math.inf))
    best = ious.amax(dim=1, keepdim=True)
    index = torch.arange(ious.shape[1], device=ious.device).expand_as(ious)
    first = torch.where(ious == best, index, torch.full_like(index, ious.shape[1])).amin(dim=1)
    return batch.gt[torch.arange(batch.gt.shape[0], device=ious.device), first]


def _clip_gt_2dtan(gt: Tensor, durations: Tensor, gt_clip: str) -> tuple[Tensor, Tensor]:
    """2D-TAN GT preparation -> ``((N, 2) spans, (N,) kept)``.

    Charades loader: end = min(end, duration), keep ``start < end``. ActivityNet loader:
    keep ``start < end`` (raw), then start = max(start, 0), end = min(end, duration).
    """
    start, end = gt[:, 0], gt[:, 1]
    if gt_clip == "charades":
        end = torch.minimum(end, durations)
        return torch.stack([start, end], dim=1), start < end
    kept = start < end
    start = torch.maximum(start, torch.zeros_like(start))
    return torch.stack([start, torch.minimum(end, durations)], dim=1), kept


def _greedy_nms(spans: Tensor, mask: Tensor, thresh: float, top_k: int) -> Tensor:
    """2D-TAN ``nms`` on ranked proposals, batched over queries.

    Candidates are visited best first; one is kept unless a kept earlier proposal has
    true-union overlap that is not ``<= thresh`` (NaN suppresses); at most ``top_k`` kept.

    Args:
        spans: ``(N, K, 2)`` proposals, best first. mask: ``(N, K)`` real entries.
    Returns:
        ``(N, K)`` bool, the kept proposals.
    """
    alive = mask.clone()
    kept = torch.zeros_like(mask)
    n_kept = torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
    for i in range(spans.shape[1]):
        take = alive[:, i] & (n_kept < top_k)
        kept[:, i] = take
        n_kept = n_kept + take.long()
        if i + 1 == spans.shape[1]:
            break
        overlap = _true_union_iou(spans[:, i : i + 1], spans[:, i + 1 :])  # (N, K-i-1)
        alive[:, i + 1 :] &= ~(take[:, None] & ~(overlap <= thresh))
        if not bool((alive[:, i + 1 :].any(dim=1) & (n_kept < top_k)).any()):
            break
    return kept


def _ranked_hits(iou: Tensor, kept: Tensor, m: float, rank: int) -> Tensor:
    """``(N,)`` bool: one of the first ``rank`` kept proposals has IoU > m."""
    position = torch.cumsum(kept.long(), dim=1)  # 1-based rank among the kept
    return (kept & (position <= rank) & (iou > m)).any(dim=1)


def _score_2dtan(
    batch: _Batch,
    durations: Optional[Sequence[float] | Tensor],
    thresholds: Sequence[float],
    ranks: Sequence[int],
    nms_thresh: float,
    gt_clip: str,
) -> dict[str, float | int]:
    """The "2d-tan" protocol (see the module docstring)."""
    if durations is None:
        raise ValueError("protocol '2d-tan' needs durations (the GT end is clipped to the video length)")
    if not ranks or any(int(r) < 1 for r in ranks):
        raise ValueError(f"ranks must be positive integers, got {ranks!r}")
    dur = _as_f64(durations, device=batch.gt.device).reshape(-1)
    if dur.numel() != batch.gt.shape[0]:
        raise ValueError(f"{dur.numel()} durations for {batch.gt.shape[0]} queries")
    gt, kept_query = _clip_gt_2dtan(_single_gt(batch, "2d-tan"), dur, gt_clip)
    pred, pred_mask = batch.pred[kept_query], batch.pred_mask[kept_query]
    gt = gt[kept_query]
    kept = _greedy_nms(pred, pred_mask, nms_thresh, max(int(r) for r in ranks))
    iou = temporal_iou(pred, gt[:, None, :])  # (n, K)
    n = int(gt.shape[0])
    out: dict[str, float | int] = {}
    for rank in ranks:
        for m in thresholds:
            count = int(_ranked_hits(iou, kept, m, int(rank)).sum().item())
            out[_threshold_key(m, int(rank))] = _percent(count, n, scale_first=False)
    top1 = torch.where(pred_mask[:, 0], iou[:, 0], torch.zeros_like(iou[:, 0]))
    out["mIoU"] = _percent(_numpy_pairwise_sum(top1.tolist()), n, scale_first=False)
    out["count"] = n
    out["n_excluded"] = int(batch.gt.shape[0]) - n
    out["n_unparsed"] = int((~pred_mask[:, 0]).sum().item())
    return out


def _check_protocol(protocol: str, gt_clip: str = "charades") -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    if gt_clip not in _GT_CLIPS:
        raise ValueError(f"gt_clip must be one of {', '.join(_GT_CLIPS)}, got {gt_clip!r}")


# -------------------------------------------------------------------- public API


def per_query_iou(
    preds: Any,
    gts: Any,
    protocol: str = "default",
    durations: Optional[Sequence[float] | Tensor] = None,
    *,
    gt_clip: str = "charades",
    device: Optional[torch.device | str] = None,
) -> Tensor:
    """``(N,)`` float64: the top-1 IoU each protocol thresholds, per query.

    Unparseable predictions give 0; "vtimellm" rounds to 2 decimals; "moment_detr" uses
    the best GT window; "2d-tan" uses the clipped GT and gives NaN for queries its loader
    drops. Arguments as in :func:`score_grounding`.
    """
    _check_protocol(protocol, gt_clip)
    batch = _make_batch(preds, gts, device)
    if protocol == "moment_detr":
        return _top1_iou(batch, _best_gt(batch))
    gt = _single_gt(batch, protocol)
    if protocol == "2d-tan":
        if durations is None:
            raise ValueError("protocol '2d-tan' needs durations")
        gt, kept = _clip_gt_2dtan(gt, _as_f64(durations, device=gt.device).reshape(-1), gt_clip)
        iou = _top1_iou(batch, gt)
        return torch.where(kept, iou, torch.full_like(iou, math.nan))
    iou = _top1_iou(batch, gt)
    if protocol == "vtimellm":
        return torch.tensor([round(v, 2) for v in iou.tolist()], dtype=_F64, device=iou.device)
    return iou


def score_grounding(
    preds: Any,
    gts: Any,
    protocol: str = "default",
    durations: Optional[Sequence[float] | Tensor] = None,
    *,
    thresholds: Optional[Sequence[float]] = None,
    ranks: Sequence[int] = (1, 5),
    nms_thresh: float = 0.45,
    gt_clip: str = "charades",
    device: Optional[torch.device | str] = None,
) -> dict[str, float | int]:
    """Score N grounding queries under a named official protocol.

    Args:
        preds: N predictions, each ``None``/``[]`` (unparseable), ``[start, end]``, or a
            ranked list ``[[s, e], ...]`` (best first; only "2d-tan" looks past the first);
            or a ``(N, 2)`` / ``(N, K, 2)`` tensor.
        gts: N GT spans ``[start, end]`` (a list of windows per query for
            "moment_detr"), or a ``(N, 2)`` tensor.
        protocol: one of :data:`PROTOCOLS` (see the module docstring).
        durations: ``(N,)`` video lengths; required by "2d-tan", ignored otherwise.
        thresholds: the m of R@m; default (0.3, 0.5, 0.7), moment_detr's ten thresholds
            for "moment_detr".
        ranks: "2d-tan" only: the k of R{k}@m (``"R@m"`` is rank 1).
        nms_thresh: "2d-tan" only: NMS overlap threshold (Charades config: 0.45).
        gt_clip: "2d-tan" only: ``"charades"`` or ``"activitynet"`` GT preparation.
        device: torch device for the per-query work (default: the inputs' device or CPU).

    Returns:
        A plain dict in percent: ``"R@m"`` per threshold, ``"mIoU"`` (not for
        "timechat"/"moment_detr"), ``"count"`` (queries scored), ``"n_unparsed"``
        (queries without a prediction); "2d-tan" adds ``"R{k}@m"`` and ``"n_excluded"``.

    Raises:
        ValueError: unknown protocol, mismatched lengths, malformed spans, a query
            without GT, several GT spans outside "moment_detr", "2d-tan" without durations.
    """
    _check_protocol(protocol, gt_clip)
    batch = _make_batch(preds, gts, device)
    n_unparsed = int((~batch.has_pred).sum().item())
    if thresholds is None:
        thresholds = MOMENT_DETR_THRESHOLDS if protocol == "moment_detr" else DEFAULT_THRESHOLDS
    if protocol == "2d-tan":
        return _score_2dtan(batch, durations, thresholds, ranks, nms_thresh, gt_clip)
    if protocol == "moment_detr":
        iou = _top1_iou(batch, _best_gt(batch))
        out = grounding_scores(iou, thresholds, scale_first=False, round_result=2, with_miou=False)
    else:
        iou = _top1_iou(batch, _single_gt(batch, protocol))
        if protocol == "timechat":
            out = grounding_scores(iou, thresholds, valid=batch.has_pred, with_miou=False)
        elif protocol == "vtimellm":
            out = grounding_scores(iou, thresholds, round_iou=2, scale_first=False)
        else:  # "default" / "lmms-eval"
            out = grounding_scores(iou, thresholds)
    out["n_unparsed"] = n_unparsed
    return out


# ---------------------------------------------------------------------- meter


class _Record(NamedTuple):
    """One query: ranked predicted spans, GT spans, optional video duration."""

    pred: tuple[tuple[float, float], ...]
    gt: tuple[tuple[float, float], ...]
    duration: Optional[float]


def _canonical_key(qid: Hashable) -> tuple:
    """Sort key: integers numerically first, then everything else by ``str``."""
    if isinstance(qid, numbers.Integral) and not isinstance(qid, bool):
        return (0, int(qid), "")
    return (1, 0, str(qid))


_METER_OPTIONS = ("thresholds", "ranks", "nms_thresh", "gt_clip")


class GroundingMeter:
    """Accumulates per-query grounding records and scores them under one protocol.

    State is a mapping ``query id -> (predicted spans, GT spans, duration)``, so shards
    merge exactly: ``a.merge(b).compute() == unsharded.compute()`` bit for bit, whatever
    the sharding, because :meth:`compute` always reduces in one canonical order (sorted
    ids, or the order given).

    Example::

        meter = GroundingMeter("lmms-eval")
        meter.update("q1", parse_span(answer), [2.0, 7.5])
        meter.compute()["R@0.5"]
    """

    def __init__(self, protocol: str = "default", **score_kwargs: Any) -> None:
        """``protocol`` and keyword options of :func:`score_grounding` (thresholds, ...)."""
        _check_protocol(protocol, score_kwargs.get("gt_clip", "charades"))
        unknown = set(score_kwargs) - set(_METER_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown meter options {sorted(unknown)}; valid: {', '.join(_METER_OPTIONS)} "
                "(durations go to update(), device to compute())"
            )
        self.protocol = protocol
        self.score_kwargs = dict(score_kwargs)
        self._records: dict[Hashable, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, qid: Hashable) -> bool:
        return qid in self._records

    @property
    def records(self) -> Mapping[Hashable, _Record]:
        """A read-only copy of the per-query records."""
        return dict(self._records)

    def update(self, qid: Hashable, pred: SpanInput, gt: SpanInput, duration: Optional[float] = None) -> None:
        """Add one query. ``pred`` may be ``None``/``[]`` (unparseable).

        Raises:
            ValueError: ``qid`` already present with a different record, or malformed spans.
        """
        record = _Record(
            tuple(_span_list(pred, f"pred of {qid!r}")),
            tuple(_span_list(gt, f"gt of {qid!r}")),
            None if duration is None else float(duration),
        )
        if not record.gt:
            raise ValueError(f"query {qid!r} has no ground-truth span")
        self._add(qid, record)

    def update_many(
        self,
        qids: Sequence[Hashable],
        preds: Sequence[SpanInput],
        gts: Sequence[SpanInput],
        durations: Optional[Sequence[float]] = None,
    ) -> None:
        """Add several queries (equal-length sequences)."""
        lengths = {len(qids), len(preds), len(gts)} | ({len(durations)} if durations is not None else set())
        if len(lengths) != 1:
            raise ValueError("qids, preds, gts (and durations) must have the same length")
        for i, qid in enumerate(qids):
            self.update(qid, preds[i], gts[i], None if durations is None else durations[i])

    def merge(self, other: GroundingMeter) -> GroundingMeter:
        """Add another meter's records in place and return ``self``.

        Raises:
            ValueError: different protocol/options, or a shared id with a different record.
        """
        if not isinstance(other, GroundingMeter):
            raise TypeError(f"can only merge a GroundingMeter, got {type(other).__name__}")
        if (other.protocol, other.score_kwargs) != (self.protocol, self.score_kwargs):
            raise ValueError("cannot merge meters with different protocols or options")
        for qid, record in other._records.items():
            self._add(qid, record)
        return self

    def order(self) -> list[Hashable]:
        """The canonical reduction order: ids sorted (integers numerically, then strings)."""
        return sorted(self._records, key=_canonical_key)

    def compute(
        self, order: Optional[Sequence[Hashable]] = None, device: Optional[torch.device | str] = None
    ) -> dict[str, float | int]:
        """Score all records with :func:`score_grounding`.

        Args:
            order: reduce in this order (a permutation of the stored ids), e.g. the
                official iteration order for bit-exact mIoU; default :meth:`order`.
            device: torch device for the per-query work.
        """
        preds, gts, durations = self._columns(order)
        return score_grounding(preds, gts, self.protocol, durations, device=device, **self.score_kwargs)

    def per_query_iou(
        self, order: Optional[Sequence[Hashable]] = None, device: Optional[torch.device | str] = None
    ) -> dict[Hashable, float]:
        """``{qid: IoU}`` as :func:`per_query_iou` computes it for this protocol."""
        ids = self._ordered_ids(order)
        preds, gts, durations = self._columns(ids)
        ious = per_query_iou(
            preds, gts, self.protocol, durations,
            gt_clip=self.score_kwargs.get("gt_clip", "charades"), device=device,
        )
        return dict(zip(ids, ious.tolist()))

    # -- internals

    def _add(self, qid: Hashable, record: _Record) -> None:
        existing = self._records.get(qid)
        if existing is not None and existing != record:
            raise ValueError(f"query id {qid!r} is already recorded with a different prediction or GT")
        self._records[qid] = record

    def _ordered_ids(self, order: Optional[Sequence[Hashable]]) -> list[Hashable]:
        if order is None:
            return self.order()
        ids = list(order)
        if len(ids) != len(self._records) or set(ids) != set(self._records):
            raise ValueError("order must list every recorded query id exactly once")
        return ids

    def _columns(
        self, order: Optional[Sequence[Hashable]]
    ) -> tuple[list[list[tuple[float, float]]], list[list[tuple[float, float]]], Optional[list[float]]]:
        ids = self._ordered_ids(order)
        rows = [self._records[q] for q in ids]
        durations = [r.duration for r in rows]
        if any(d is None for d in durations):
            durations_out = None
        else:
            durations_out = [float(d) for d in durations]  # type: ignore[arg-type]
        return [list(r.pred) for r in rows], [list(r.gt) for r in rows], durations_out
