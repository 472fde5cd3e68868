"""Referring expression segmentation (RES) scores: cIoU and gIoU, as LISA and Sa2VA compute them.

Definitions (per sentence, foreground class only):

* ``I`` = pixels predicted 1 where the GT is 1; ``U`` = |pred = 1, GT != ignore| + |GT = 1| - I.
* cIoU = sum(I) / (sum(U) + 1e-10); gIoU = mean over sentences of I / (U + 1e-5), with 1 when U = 0.

The counting reproduces LISA's ``intersectionAndUnionGPU(output, target, K=2, ignore_index=255)``
(dvlab-research/LISA ``utils/utils.py``, commit 3cb2d4301f1af4691bd4f3938335ef06e76f155a), which Sa2VA
uses unchanged (magic-research/Sa2VA ``projects/llava_sam2/evaluation/dataset/RES.py``, commit
d01bf3fa8ee239325a007e7b64ee2fd22578b045). Its quirks, all kept:

* Prediction pixels under GT ``ignore_index`` are set to ``ignore_index`` and so leave both areas.
* Areas are ``torch.histc(x, bins=2, min=0, max=1)``: any GT value other than 0 and 1 (the 2 of
  overlapping polygon parts, see :mod:`refbench.data.refer`) counts in no bin. Such a pixel leaves the
  target area and the intersection, but a prediction of 1 there still counts in the prediction area, so
  it still adds to U.

The reduction reproduces the official float32 arithmetic, operation by operation, in the official
order (named ``protocol``):

* ``"lisa"``: LISA ``train_ds.py::validate`` with ``utils.AverageMeter``. Per image (one batch holds all
  sentences of an image), I, U and the IoU sum are accumulated in float32 (the IoU is
  ``f32(I) / (f32(U) + f32(1e-5))``, plus 1 when U = 0); the image's IoU sum is divided by its number of
  sentences k and multiplied back by k when the meter is updated; the meters add images in float32;
  after ``all_reduce`` the gIoU is ``sum / f32(count + 1e-5)`` and the cIoU ``sum_I / (sum_U + f32(1e-10))``.
* ``"sa2va"``: Sa2VA ``RESDataset.evaluate``: the same, except gIoU = ``sum / f32(count)`` (no
  ``all_reduce``, so no ``+ 1e-5``). With ``skipped`` samples (a ``None`` prediction) the Sa2VA rule
  applies: skipped in I, U and the IoU sum, but still counted in k and in the count.
* ``"exact"``: no official code; integer sums, float64 division without the official epsilons,
  cIoU = sum(I) / sum(U), gIoU = fsum(I / U) / n (an empty union counts 1.0).

The float32 results depend on how sentences are grouped into images and on the image order; pass
``groups`` (e.g. the image id of each sentence) and the samples in the official order
(:meth:`refbench.data.refer.ReferData.sentences` gives it). Python floats returned for float32
protocols hold the float32 value exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Hashable, Iterable, Literal, Mapping, Sequence, Union

import numpy as np
import torch

MaskLike = Union[torch.Tensor, np.ndarray]
Protocol = Literal["lisa", "sa2va", "exact"]
Missing = Literal["empty", "sa2va_skip"]

PROTOCOLS: tuple[str, ...] = ("lisa", "sa2va", "exact")
MISSING_RULES: tuple[str, ...] = ("empty", "sa2va_skip")


# ----------------------------------------------------------------------------------------------
# Counting
# ----------------------------------------------------------------------------------------------


def _as_tensor(x: MaskLike, name: str, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.is_complex():
        raise TypeError(f"{name} must be a real-valued mask, got {x.dtype}")
    if device is not None and x.device != device:
        x = x.to(device)
    return x


def intersection_union(
    pred: MaskLike, gt: MaskLike, ignore_index: int | None = 255
) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground intersection and union per sample, counted as LISA's ``intersectionAndUnionGPU``.

    pred: ``(..., H, W)`` bool, integer or float; binarised as ``pred > 0`` (LISA: ``pred_masks > 0``;
    for a 0/1 mask this is the mask itself).
    gt: ``(..., H, W)`` bool or integer; 1 = target, ``ignore_index`` = ignored, any other value (0, or
    the 2 of overlapping polygon parts) = neither (``torch.histc(min=0, max=1)`` drops it). Cast to
    int32 first as the official ``.int()`` does.
    ignore_index: GT value whose pixels are removed from the prediction; None ignores nothing.

    Returns ``(I, U)``: int64 tensors of shape ``(...)`` on ``pred``'s device.
    """
    p = _as_tensor(pred, "pred")
    g = _as_tensor(gt, "gt", p.device)
    if g.is_floating_point():
        raise TypeError(f"gt must be a bool or integer mask (1 = target, {ignore_index} = ignore), got {g.dtype}")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    if p.dim() < 2:
        raise ValueError(f"masks must have shape (..., H, W), got {tuple(p.shape)}")
    pb = p if p.dtype == torch.bool else p > 0
    if g.dtype == torch.int64:
        g = g.to(torch.int32)  # the official .int(); narrower integer types keep their values
    if ignore_index is not None and not _representable(g.dtype, ignore_index):
        ignore_index = None  # no pixel can hold it
    dims = (-2, -1)
    target = g == 1
    n_target = target.sum(dim=dims)
    if ignore_index == 1:
        # Every GT-1 pixel is overwritten with 1 in the output: I = |G = 1|, output = |G = 1 or P|.
        inter = n_target
        n_out = (target | pb).sum(dim=dims)
    else:
        inter = (pb & target).sum(dim=dims)
        kept = pb if ignore_index is None else pb & (g != ignore_index)
        n_out = kept.sum(dim=dims)
    return inter, n_out + n_target - inter


def _representable(dtype: torch.dtype, value: int) -> bool:
    if dtype == torch.bool:
        return value in (0, 1)
    info = torch.iinfo(dtype)
    return info.min <= value <= info.max


# ----------------------------------------------------------------------------------------------
# Reduction
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RESScores:
    """Result of :func:`res_scores`.

    ``ciou``/``giou`` are the headline numbers (fractions, not percent); ``n`` counts every sample in the
    gIoU denominator, ``n_skipped`` those skipped by the Sa2VA rule; ``sum_i``/``sum_u`` are the exact
    integer sums over the samples not skipped.
    """

    protocol: str
    ciou: float
    giou: float
    n: int
    n_skipped: int
    sum_i: int
    sum_u: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int_list(x: Any, name: str) -> list[int]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one count per sample), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.floor(arr) == arr):
            raise TypeError(f"{name} must hold integer pixel counts, got {arr.dtype}")
    out = [int(v) for v in arr.tolist()]
    if any(v < 0 for v in out):
        raise ValueError(f"{name} holds negative counts")
    return out


def _group_order(groups: Sequence[Hashable] | None, n: int) -> list[list[int]]:
    """Sample indices per group: groups by first appearance, members in sample order."""
    if groups is None:
        return [[i] for i in range(n)]
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} labels for {n} samples")
    members: dict[Hashable, list[int]] = {}
    for i, label in enumerate(groups):
        members.setdefault(label, []).append(i)
    return list(members.values())


def _float32_reduce(
    inter: list[int], union: list[int], skipped: list[bool], groups: list[list[int]], protocol: str
) -> tuple[float, float]:
    """LISA ``validate`` / Sa2VA ``evaluate`` meters, float32 operation by operation (see module doc)."""
    f32 = np.float32
    eps_iou, eps_ciou, one = f32(1e-5), f32(1e-10), f32(1.0)
    sum_i = sum_u = sum_g = f32(0.0)
    count = 0
    for members in groups:
        img_i = img_u = img_g = f32(0.0)  # the official 0.0 start is exact: 0.0 + x == x
        for j in members:
            if skipped[j]:
                continue
            fi, fu = f32(inter[j]), f32(union[j])
            img_i = img_i + fi
            img_u = img_u + fu
            img_g = img_g + fi / (fu + eps_iou)
            if union[j] == 0:  # "no-object target": IoU 1
                img_g = img_g + one
        k = f32(len(members))
        sum_i = sum_i + img_i  # AverageMeter.update(val, n=1): sum += val * 1
        sum_u = sum_u + img_u
        sum_g = sum_g + (img_g / k) * k  # validate divides by k, update(val, n=k) multiplies back
        count += len(members)
    ciou = sum_i / (sum_u + eps_ciou)
    if protocol == "lisa":
        # all_reduce: count goes through float32, then avg = sum / (count + 1e-5) with a float32 divisor.
        giou = sum_g / f32(float(f32(count)) + 1e-5)
    else:
        giou = sum_g / f32(count)
    return float(ciou), float(giou)


def _exact_reduce(inter: list[int], union: list[int]) -> tuple[float, float]:
    """The definitions without the official epsilons: cIoU = sum(I) / sum(U) (1.0 when every union is empty),
    gIoU = mean of I / U with an empty union counting 1.0 (as LISA does)."""
    ious = [1.0 if u == 0 else i / u for i, u in zip(inter, union)]
    total_u = sum(union)
    return (sum(inter) / total_u if total_u else 1.0), math.fsum(ious) / len(ious)


def res_scores(
    intersection: Any,
    union: Any,
    protocol: Protocol = "lisa",
    *,
    groups: Sequence[Hashable] | None = None,
    skipped: Sequence[bool] | None = None,
) -> RESScores:
    """cIoU and gIoU from per-sample integer counts, reduced as the named ``protocol`` does.

    intersection, union: ``(N,)`` integer counts (tensor, array or sequence), samples in the official
    order (images in the order the official loader visits them, sentences within an image in order).
    groups: ``(N,)`` labels of the image each sample belongs to (LISA and Sa2VA reduce one image per
    batch); groups are reduced in order of first appearance. None: every sample is its own image
    (ReasonSeg).
    skipped: ``(N,)`` bool, samples whose prediction is missing under the Sa2VA rule (``protocol="sa2va"``
    only): left out of I, U and the IoU sum, still counted in the gIoU denominator. Unlike Sa2VA, which
    crashes when every sentence of an image is missing, such an image simply contributes nothing.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    inter = _int_list(intersection, "intersection")
    uni = _int_list(union, "union")
    if len(inter) != len(uni):
        raise ValueError(f"intersection has {len(inter)} samples but union has {len(uni)}")
    if not inter:
        raise ValueError("no samples to score")
    if any(i > u for i, u in zip(inter, uni)):
        raise ValueError("an intersection exceeds its union; counts are not from intersection_union")
    if skipped is None:
        skip = [False] * len(inter)
    else:
        skip = [bool(s) for s in (skipped.tolist() if isinstance(skipped, torch.Tensor) else skipped)]
        if len(skip) != len(inter):
            raise ValueError(f"skipped has {len(skip)} flags for {len(inter)} samples")
        if any(skip) and protocol != "sa2va":
            raise ValueError("skipping missing predictions is Sa2VA's rule; use protocol='sa2va'")
    order = _group_order(groups, len(inter))
    if protocol == "exact":
        ciou, giou = _exact_reduce(inter, uni)
    else:
        ciou, giou = _float32_reduce(inter, uni, skip, order, protocol)
    return RESScores(
        protocol=protocol,
        ciou=ciou,
        giou=giou,
        n=len(inter),
        n_skipped=sum(skip),
        sum_i=sum(i for i, s in zip(inter, skip) if not s),
        sum_u=sum(u for u, s in zip(uni, skip) if not s),
    )


# ----------------------------------------------------------------------------------------------
# Stateful accumulator
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    inter: int
    union: int
    group: Hashable | None
    skipped: bool


class RESMeter:
    """Accumulates per-sample integer I/U keyed by sample id; :meth:`compute` reduces in official order.

    Shards merge exactly (:meth:`merge`): the state is integers, and the float arithmetic happens once,
    in :meth:`compute`. A missing prediction (``pred=None``) is scored as an empty mask by default
    (``missing="empty"``); ``missing="sa2va_skip"`` applies Sa2VA's rule (``protocol="sa2va"`` only).
    """

    def __init__(self, protocol: Protocol = "lisa", *, missing: Missing = "empty", ignore_index: int | None = 255):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        if missing not in MISSING_RULES:
            raise ValueError(f"unknown missing rule {missing!r}; expected one of {', '.join(MISSING_RULES)}")
        if missing == "sa2va_skip" and protocol != "sa2va":
            raise ValueError("missing='sa2va_skip' is Sa2VA's rule; use protocol='sa2va'")
        self.protocol = protocol
        self.missing = missing
        self.ignore_index = ignore_index
        self._records: dict[Hashable, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> Mapping[Hashable, tuple[int, int, Hashable | None, bool]]:
        """``{sample_id: (I, U, group, skipped)}`` in insertion order (a copy)."""
        return {k: (r.inter, r.union, r.group, r.skipped) for k, r in self._records.items()}

    def _put(self, sample_id: Hashable, record: _Record) -> None:
        old = self._records.get(sample_id)
        if old is not None and old != record:
            raise ValueError(f"sample {sample_id!r} was already scored with different counts or group")
        self._records[sample_id] = record

    def add_counts(
        self, sample_id: Hashable, inter: int, union: int, *, group: Hashable | None = None, skipped: bool = False
    ) -> None:
        """Record precomputed counts of one sample (``skipped`` needs ``missing='sa2va_skip'``)."""
        if skipped and self.missing != "sa2va_skip":
            raise ValueError("skipped samples need RESMeter(protocol='sa2va', missing='sa2va_skip')")
        inter, union = int(inter), int(union)
        if inter < 0 or union < inter:
            raise ValueError(f"sample {sample_id!r}: invalid counts I={inter}, U={union}")
        self._put(sample_id, _Record(inter, union, group, bool(skipped)))

    def update(
        self, sample_id: Hashable, pred: MaskLike | None, gt: MaskLike | None, *, group: Hashable | None = None
    ) -> None:
        """Score one sample. pred: ``(H, W)`` mask or logits, or None when the model gave no mask;
        gt: ``(H, W)`` integer GT (may be None only for a skipped missing prediction)."""
        if pred is None and self.missing == "sa2va_skip":
            self._put(sample_id, _Record(0, 0, group, True))
            return
        if gt is None:
            raise ValueError(f"sample {sample_id!r}: gt is required")
        g = _as_tensor(gt, "gt")
        if g.dim() != 2:
            raise ValueError(f"sample {sample_id!r}: gt must be (H, W), got {tuple(g.shape)}")
        p = torch.zeros(g.shape, dtype=torch.bool, device=g.device) if pred is None else pred
        inter, union = intersection_union(p, g, self.ignore_index)
        self._put(sample_id, _Record(int(inter), int(union), group, False))

    def update_batch(
        self,
        sample_ids: Sequence[Hashable],
        preds: MaskLike,
        gts: MaskLike,
        *,
        groups: Sequence[Hashable] | None = None,
    ) -> None:
        """Score N samples at once. preds, gts: ``(N, H, W)``; one device sync for the batch."""
        inter, union = intersection_union(preds, gts, self.ignore_index)
        if inter.dim() != 1 or inter.shape[0] != len(sample_ids):
            raise ValueError(f"{len(sample_ids)} sample ids for masks of batch shape {tuple(inter.shape)}")
        if groups is not None and len(groups) != len(sample_ids):
            raise ValueError(f"{len(groups)} groups for {len(sample_ids)} sample ids")
        pairs = torch.stack([inter, union], dim=1).cpu().tolist()
        for k, (sid, (i, u)) in enumerate(zip(sample_ids, pairs)):
            self._put(sid, _Record(int(i), int(u), None if groups is None else groups[k], False))

    def merge(self, other: "RESMeter") -> "RESMeter":
        """Add another shard's records (same settings); a sample seen twice must have identical counts."""
        if (other.protocol, other.missing, other.ignore_index) != (self.protocol, self.missing, self.ignore_index):
            raise ValueError("cannot merge RESMeters with different protocol, missing rule or ignore_index")
        for sid, rec in other._records.items():
            self._put(sid, rec)
        return self

    def compute(self, order: Iterable[Hashable] | None = None) -> RESScores:
        """Reduce all records. ``order``: every sample id in the official order (default: insertion
        order); an id without a record, or a record left out of ``order``, is an error."""
        if order is None:
            ids = list(self._records)
        else:
            ids = list(order)
            missing_ids = [sid for sid in ids if sid not in self._records]
            if missing_ids:
                raise ValueError(
                    f"{len(missing_ids)} sample(s) of the order were never scored, e.g. {missing_ids[0]!r}; "
                    "call update(sample_id, None, gt) for a missing prediction"
                )
            if len(set(ids)) != len(ids):
                raise ValueError("order lists a sample id more than once")
            if len(ids) != len(self._records):
                raise ValueError(f"{len(self._records) - len(ids)} scored sample(s) are not in the order")
        if not ids:
            raise ValueError("no samples to score")
        recs = [self._records[sid] for sid in ids]
        groups = [(1, r.group) if r.group is not None else (0, sid) for sid, r in zip(ids, recs)]
        return res_scores(
            [r.inter for r in recs],
            [r.union for r in recs],
            self.protocol,
            groups=groups,
            skipped=[r.skipped for r in recs],
        )

    def reset(self) -> None:
        self._records.clear()


__all__ = [
    "MISSING_RULES",
    "PROTOCOLS",
    "RESMeter",
    "RESScores",
    "intersection_union",
    "res_scores",
]
