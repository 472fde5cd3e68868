"""ReVOS per-expression J, F, A, R and the category table, as cilinyan/VISA ``tools/eval_revos.py``.

Reference: cilinyan/VISA commit ec158fde9cdf87f702399c73618aa0f1127062e9, ``tools/eval_revos.py`` and
``tools/metrics.py`` (``get_r2vos_accuracy``, ``get_r2vos_robustness``, and the davis2017 J and F that
:func:`refbench.metrics.frame.jaccard_and_boundary` equals bit for bit). Checked exactly on
``shared/data/revos_golden`` (``expected.json`` and ``expected_binary.json``).

Facts of the official protocol reproduced here (quirks marked *):

* Per expression, GT and frames as MeViS (:func:`refbench.metrics.mevis.expression_gt`: the uint8 sum of
  the expression's objects, every listed frame, no void); J and F are ``np.mean`` over frames.
* A = ``np.mean`` over frames of the pixel accuracy ``mean(gt == pred)``; R = ``np.mean`` over frames of
  ``max(1 - neg / (pos + 1e-6), 0)`` with ``neg = sum((1 - gt) * pred)`` and ``pos = sum(fg)``, fg = the
  video's foreground (``mask_dict_foreground.json``: the OR of all its objects).
* *A and R use the raw uint8 values, with uint8 wrap-around: ``1 - gt`` is 255 where overlapping objects
  make gt = 2, and ``(1 - gt) * pred`` is a uint8 product (255 * 255 = 1 mod 256). With the official 0/255
  prediction PNGs each true-positive pixel is an A-mismatch and each false positive counts 255 in ``neg``.
  ``values="official"`` (the default) takes the prediction values as given (read PNGs as is);
  ``values="binary"`` first maps any non-zero prediction to 1, which is what the official script gives on
  0/1 PNGs (e.g. Sa2VA-style RLE outputs). In both the GT and foreground keep their raw values, so the
  overlap wrap stays (as officially).
* *Each expression's J, F, A, R (and JF = (J + F) / 2) is ``round(100 * x, 2)`` before any averaging.
* Means per ``type_id`` (0 referring, 1 reasoning), over expressions in the stored order; category
  JF = (mean J + mean F) / 2; ``overall`` = plain mean of the two categories. *``type_id`` 2 (no target)
  is scored but left out of every reported number.
* *An expression whose video folder is missing, or whose scoring raised, scores [0, 0, 0, 0] and is
  counted (:meth:`RevosMeter.add_failure`), unlike MeViS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Literal, Mapping, Sequence, Union

import numpy as np
import torch

from refbench.metrics.frame import jaccard_and_boundary
from refbench.metrics.mevis import _ordered_keys, _to_tensor, decode_rle, expression_gt

MaskLike = Union[torch.Tensor, np.ndarray]
ValueSemantics = Literal["official", "binary"]
VALUE_SEMANTICS: tuple[str, ...] = ("official", "binary")
CATEGORIES: Mapping[str, int] = {"referring": 0, "reason": 1}
SUMMARY_KEYS: tuple[str, ...] = ("J", "F", "A", "R", "JF")

__all__ = [
    "CATEGORIES",
    "VALUE_SEMANTICS",
    "ExpressionJFAR",
    "RevosMeter",
    "RevosScores",
    "accuracy_per_frame",
    "decode_foreground",
    "expression_gt",
    "expression_jfar",
    "revos_scores",
    "robustness_per_frame",
    "round_expression",
]


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def decode_foreground(entry: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
    """One frame of ``mask_dict_foreground[video]["masks_rle"]`` as an (H, W) uint8 array.

    A single RLE decodes to its 0/1 mask; a list of RLEs to the uint8 (wrapping) sum of its masks, as
    VISA ``eval_revos.py`` does with a 3-D decode.
    """
    if isinstance(entry, Mapping):
        return decode_rle(entry)
    masks = [decode_rle(e) for e in entry]
    if not masks:
        raise ValueError("decode_foreground: empty list of RLEs")
    return np.sum(np.stack(masks, axis=2), axis=2).astype(np.uint8)


def _as_uint8(x: MaskLike, what: str, name: str, device: torch.device | str | None) -> torch.Tensor:
    """A (T, H, W) uint8 tensor holding the raw values (bool -> 0/1; other ints must lie in 0..255)."""
    x = _to_tensor(x, what, name, device)
    if x.dtype != torch.uint8:
        if x.dtype != torch.bool and x.numel() and (int(x.min()) < 0 or int(x.max()) > 255):
            raise ValueError(f"{name}: {what} values must lie in 0..255 (uint8 semantics), got {x.dtype}")
        x = x.to(torch.uint8)
    return x


# ----------------------------------------------------------------------------------------------
# Per frame and per expression
# ----------------------------------------------------------------------------------------------


def accuracy_per_frame(gt: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
    """(T,) float64 ``mean(gt == pred)`` per frame on raw values (VISA ``get_r2vos_accuracy``).

    gt, pred: (T, H, W) uint8 tensors. numpy's mean of a bool array is the exact count divided by H * W.
    """
    n_pix = gt.shape[1] * gt.shape[2]
    equal = (gt == pred).flatten(1).sum(1, dtype=torch.int64).cpu().numpy()
    return equal.astype(np.float64) / float(n_pix)


def robustness_per_frame(gt: torch.Tensor, pred: torch.Tensor, foreground: torch.Tensor) -> np.ndarray:
    """(T,) float64 ``max(1 - neg / (pos + 1e-6), 0)`` per frame (VISA ``get_r2vos_robustness``).

    gt, pred, foreground: (T, H, W) uint8 tensors. ``neg = sum((1 - gt) * pred)`` with both the subtraction
    and the product in uint8 (wrapping); ``pos = sum(foreground)``; the sums are exact integers, then the
    division is done in float64 as officially (uint64 counts converted to float64).
    """
    one_minus = 1 - gt  # stays uint8: 1 - 2 wraps to 255
    neg = (one_minus * pred).flatten(1).sum(1, dtype=torch.int64).cpu().numpy()
    pos = foreground.flatten(1).sum(1, dtype=torch.int64).cpu().numpy()
    ratio = neg.astype(np.float64) / (pos.astype(np.float64) + 1e-6)
    return np.maximum(1 - ratio, 0.0)


@dataclass(frozen=True)
class ExpressionJFAR:
    """J, F, A, R of one expression (fractions; means over frames) and their (T,) per-frame values."""

    J: float
    F: float
    A: float
    R: float
    frames: Mapping[str, np.ndarray]

    def as_list(self) -> list[float]:
        return [self.J, self.F, self.A, self.R]


def expression_jfar(
    pred: MaskLike,
    gt: MaskLike,
    foreground: MaskLike,
    *,
    values: ValueSemantics = "official",
    device: torch.device | str | None = None,
    name: str = "expression",
) -> ExpressionJFAR:
    """Score one expression.

    pred: (T, H, W) prediction values (e.g. a grey PNG read as is: 0/255 officially).
    gt: (T, H, W) raw uint8 GT (:func:`expression_gt`: values > 1 where objects overlap).
    foreground: (T, H, W) raw uint8 video foreground (:func:`decode_foreground` per frame).
    values: ``"official"`` uses the prediction values as given; ``"binary"`` maps non-zero to 1 first.
    J and F treat any non-zero value as foreground; A and R use raw uint8 values (module docstring).
    """
    if values not in VALUE_SEMANTICS:
        raise ValueError(f"unknown value semantics {values!r}; expected one of {', '.join(VALUE_SEMANTICS)}")
    g = _as_uint8(gt, "gt", name, device)
    p = _as_uint8(pred, "pred", name, g.device)
    fg = _as_uint8(foreground, "foreground", name, g.device)
    if p.shape != g.shape or fg.shape != g.shape:
        raise ValueError(
            f"{name}: shapes differ: pred {tuple(p.shape)}, gt {tuple(g.shape)}, foreground {tuple(fg.shape)}"
        )
    if g.shape[0] == 0:
        raise ValueError(f"{name}: no frames to score")
    if values == "binary":
        p = (p != 0).to(torch.uint8)
    j, f = jaccard_and_boundary(p, g)
    per_frame = {
        "J": j.cpu().numpy(),
        "F": f.cpu().numpy(),
        "A": accuracy_per_frame(g, p),
        "R": robustness_per_frame(g, p, fg),
    }
    means = {k: float(np.mean(v)) for k, v in per_frame.items()}
    return ExpressionJFAR(J=means["J"], F=means["F"], A=means["A"], R=means["R"], frames=per_frame)


def round_expression(j: float, f: float, a: float, r: float) -> dict[str, float]:
    """The official per-expression CSV values: ``round(100 * x, 2)`` of J, F, JF = (J + F) / 2, A, R.

    Uses numpy float64 scalars and Python's ``round`` on them, as ``eval_revos.py`` does with the float64
    values of its ``output_dict``.
    """
    j64, f64, a64, r64 = (np.float64(v) for v in (j, f, a, r))
    return {
        "J": float(round(100 * j64, 2)),
        "F": float(round(100 * f64, 2)),
        "JF": float(round(100 * (j64 + f64) / 2, 2)),
        "A": float(round(100 * a64, 2)),
        "R": float(round(100 * r64, 2)),
    }


# ----------------------------------------------------------------------------------------------
# Dataset table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevosScores:
    """The official ReVOS table (percent).

    summary: ``{"referring" | "reason" | "overall": {"J", "F", "A", "R", "JF"}}`` (``eval_revos.py``'s JSON).
    per_expression_rounded: ``{key: {"J", "F", "JF", "A", "R", "type_id"}}`` (its CSV values).
    per_expression_raw: ``{key: [j, f, a, r]}`` unrounded fractions. failures: keys scored all-zero.
    """

    summary: Mapping[str, Mapping[str, float]]
    per_expression_rounded: Mapping[Hashable, Mapping[str, float]]
    per_expression_raw: Mapping[Hashable, list[float]]
    failures: tuple[Hashable, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": {c: dict(v) for c, v in self.summary.items()},
            "per_expression_rounded": {str(k): dict(v) for k, v in self.per_expression_rounded.items()},
            "per_expression_raw": {str(k): list(v) for k, v in self.per_expression_raw.items()},
            "failures": [str(k) for k in self.failures],
        }


def _category_mean(values: list[float]) -> float:
    return float(np.array(values, dtype=np.float64).mean()) if values else float("nan")


def revos_scores(
    per_expression: Mapping[Hashable, tuple[Sequence[float], int]], failures: Iterable[Hashable] = ()
) -> RevosScores:
    """Reduce ``{key: ([j, f, a, r], type_id)}`` in the mapping's order into the official table.

    Each expression is rounded (:func:`round_expression`); per category (type_id 0 referring, 1 reason)
    J, F, A, R are means of the rounded values and JF = (J + F) / 2; overall = mean of the two categories.
    Other type ids (2: no target) are left out. An empty category gives NaN.
    """
    if not per_expression:
        raise ValueError("revos_scores: no expressions to score")
    rounded: dict[Hashable, dict[str, float]] = {}
    raw: dict[Hashable, list[float]] = {}
    for key, (jfar, type_id) in per_expression.items():
        if len(jfar) != 4:
            raise ValueError(f"expression {key!r}: expected [j, f, a, r], got {list(jfar)}")
        raw[key] = [float(v) for v in jfar]
        rounded[key] = {**round_expression(*raw[key]), "type_id": int(type_id)}
    summary: dict[str, dict[str, float]] = {}
    for cat, type_id in CATEGORIES.items():
        rows = [r for r in rounded.values() if r["type_id"] == type_id]
        means = {m: _category_mean([r[m] for r in rows]) for m in ("J", "F", "A", "R")}
        means["JF"] = (means["J"] + means["F"]) / 2
        summary[cat] = {m: means[m] for m in SUMMARY_KEYS}
    ref, rea = summary["referring"], summary["reason"]
    summary["overall"] = {m: (ref[m] + rea[m]) / 2 for m in SUMMARY_KEYS}
    return RevosScores(summary, rounded, raw, tuple(failures))


@dataclass(frozen=True)
class _Record:
    jfar: tuple[float, float, float, float]
    type_id: int
    failed: bool


class RevosMeter:
    """Accumulates per-expression (j, f, a, r, type_id) keyed by expression id (``"<video>_<exp_id>"``).

    ``values`` fixes the value semantics of :meth:`update` (see :func:`expression_jfar`). Shards merge
    exactly (:meth:`merge`); :meth:`compute` rounds and averages once, in the order given (meta order).
    """

    def __init__(self, values: ValueSemantics = "official") -> None:
        if values not in VALUE_SEMANTICS:
            raise ValueError(f"unknown value semantics {values!r}; expected one of {', '.join(VALUE_SEMANTICS)}")
        self.values = values
        self._records: dict[Hashable, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> dict[Hashable, tuple[list[float], int, bool]]:
        """``{key: ([j, f, a, r], type_id, failed)}`` in insertion order (a copy)."""
        return {k: (list(r.jfar), r.type_id, r.failed) for k, r in self._records.items()}

    def _put(self, key: Hashable, record: _Record) -> None:
        old = self._records.get(key)
        if old is not None and old != record:
            raise ValueError(f"expression {key!r} was already scored with different values or type_id")
        self._records[key] = record

    def add(self, key: Hashable, j: float, f: float, a: float, r: float, *, type_id: int) -> None:
        """Record a precomputed expression score (fractions)."""
        self._put(key, _Record((float(j), float(f), float(a), float(r)), int(type_id), False))

    def add_failure(self, key: Hashable, *, type_id: int) -> None:
        """The official rule for a missing video folder or any scoring error: [0, 0, 0, 0], counted."""
        self._put(key, _Record((0.0, 0.0, 0.0, 0.0), int(type_id), True))

    def update(
        self,
        key: Hashable,
        pred: MaskLike,
        gt: MaskLike,
        foreground: MaskLike,
        *,
        type_id: int,
        device: torch.device | str | None = None,
    ) -> ExpressionJFAR:
        """Score one expression from (T, H, W) arrays (:func:`expression_jfar`) and record it."""
        res = expression_jfar(pred, gt, foreground, values=self.values, device=device, name=f"expression {key!r}")
        self._put(key, _Record((res.J, res.F, res.A, res.R), int(type_id), False))
        return res

    def merge(self, other: "RevosMeter") -> "RevosMeter":
        """Add another shard's records (same value semantics); a key seen twice must match exactly."""
        if other.values != self.values:
            raise ValueError(f"cannot merge RevosMeters with value semantics {self.values!r} and {other.values!r}")
        for key, rec in other._records.items():
            self._put(key, rec)
        return self

    def compute(self, order: Iterable[Hashable] | None = None) -> RevosScores:
        """The official table. ``order``: every expression key in the canonical (meta) order; default
        insertion order. A key of the order without a record, or a record left out, is an error."""
        keys = _ordered_keys(self._records, order, "expression")
        recs = {k: self._records[k] for k in keys}
        return revos_scores({k: (r.jfar, r.type_id) for k, r in recs.items()}, [k for k, r in recs.items() if r.failed])

    def reset(self) -> None:
        self._records.clear()
