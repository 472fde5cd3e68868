"""Ref-SAV per-expression J, F, A and the long / short table, as MomentSeg (and Sa2VA v2) ``eval_ref_sav.py``.

Reference: Dmmm1997/MomentSeg commit a118d151618cdfc0607aadaa63267a68e887ff73, ``tools/eval/eval_ref_sav.py``, with
the metrics module ``third_parts/revos/utils/metrics.py`` of magic-research/Sa2VA d01bf3fa (``db_eval_iou``,
``db_eval_boundary``, ``get_r2vos_accuracy``); bytedance/Sa2VA 9832e1a8 ships the same file under another import
path. Described in ``docs/protocols.md#refsav``; checked exactly on ``shared/data/refsav_golden``.

* Per expression: GT = the uint8 **sum** of its objects' decoded masks per frame (overlaps give 2), prediction =
  the decoded RLE; J and F are DAVIS's over every listed frame (any non-zero is foreground); A = mean over frames of
  ``mean(G == P)`` on the raw values (so a correct prediction where two GT objects overlap is a mismatch).
* The CSV values are ``round(100 * x, 2)`` of J, F, (J + F) / 2 and A (numpy rounding of float64), and the table
  averages those rounded values: per ``type_id`` (0 = ``long``, 1 = ``short``) J, F, A are plain means and
  JF = (J + F) / 2; ``overall`` = the mean of the two categories' J, F, A, JF. Other type ids are left out; an empty
  category gives NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence, Union

import numpy as np
import torch

from refbench.metrics.mevis import frame_jf
from refbench.metrics.revos import _as_uint8, accuracy_per_frame, round_expression

MaskLike = Union[torch.Tensor, np.ndarray]

#: type_id -> category name in the official JSON.
CATEGORIES: Mapping[str, int] = {"long": 0, "short": 1}
SUMMARY_KEYS = ("J", "F", "A", "JF")


@dataclass(frozen=True)
class ExpressionJFA:
    """J, F, A of one expression (fractions: means over frames)."""

    J: float
    F: float
    A: float
    J_frames: np.ndarray | None = None  # the (T,) per-frame values J and F average (refbench --per-frame)
    F_frames: np.ndarray | None = None

    def as_list(self) -> list[float]:
        return [self.J, self.F, self.A]


def expression_jfa(pred: MaskLike, gt: MaskLike, *, device: torch.device | str | None = None,
                   name: str = "expression") -> ExpressionJFA:
    """Score one expression: pred (T, H, W) decoded prediction (0/1), gt (T, H, W) raw uint8 GT sum."""
    g = _as_uint8(gt, "gt", name, device)
    p = _as_uint8(pred, "pred", name, g.device)
    j, f = frame_jf(p, g, device=g.device, name=name)
    a = accuracy_per_frame(g, p)
    return ExpressionJFA(J=np.mean(j), F=np.mean(f), A=np.mean(a), J_frames=j, F_frames=f)


def rounded_row(jfa: Sequence[float]) -> dict[str, float]:
    """The CSV values of one expression: ``round(100 * x, 2)`` of J, F, JF = (J + F) / 2, A."""
    r = round_expression(jfa[0], jfa[1], jfa[2], 0.0)
    return {"J": r["J"], "F": r["F"], "JF": r["JF"], "A": r["A"]}


def _mean(values: list[float]) -> float:
    return float(np.array(values, dtype=np.float64).mean()) if values else float("nan")


def refsav_table(per_expression: Mapping[Hashable, tuple[Sequence[float], int]]) -> dict[str, Any]:
    """``{"summary": {"long" | "short" | "overall": {J, F, A, JF}}, "rows": {key: rounded values + type_id}}`` from
    ``{key: ([j, f, a], type_id)}`` in the mapping's order (the official output order)."""
    rows: dict[Hashable, dict[str, Any]] = {}
    for key, (jfa, type_id) in per_expression.items():
        if len(jfa) != 3:
            raise ValueError(f"expression {key!r}: expected [j, f, a], got {list(jfa)}")
        rows[key] = {**rounded_row([float(v) for v in jfa]), "type_id": int(type_id)}
    summary: dict[str, dict[str, float]] = {}
    for cat, type_id in CATEGORIES.items():
        sel = [r for r in rows.values() if r["type_id"] == type_id]
        means = {m: _mean([r[m] for r in sel]) for m in ("J", "F", "A")}
        means["JF"] = (means["J"] + means["F"]) / 2
        summary[cat] = {m: means[m] for m in SUMMARY_KEYS}
    long, short = summary["long"], summary["short"]
    summary["overall"] = {m: (long[m] + short[m]) / 2 for m in SUMMARY_KEYS}
    return {"summary": summary, "rows": rows}


__all__ = ["CATEGORIES", "ExpressionJFA", "expression_jfa", "refsav_table", "rounded_row"]
