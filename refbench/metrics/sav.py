"""SA-V (and SeCVOS) per-object J and F, as sam2 ``sav_dataset/utils/sav_benchmark.py`` (vos-benchmark's Evaluator).

Reference: facebookresearch/sam2 commit 2b90b9f5ceec907a1c18123530e92e794ad901a4, ``sav_dataset/utils/sav_benchmark.py``
(``Evaluator.feed_frame`` / ``conclude``, ``VideoEvaluator``, ``benchmark``); SeC's copy (OpenIXCLab/SeC 1981ac42)
is the same. Described in ``docs/protocols.md#sav``; checked on ``shared/data/sav_golden`` and ``secvos_golden``.

The per-frame J and F are DAVIS's (no void): :func:`refbench.metrics.mevis.frame_jf` gives them bit for bit. What
this module adds is the evaluator's bookkeeping:

* a label's per-frame list starts at the first fed frame where the label is present in the GT **or** in the
  prediction (frames before are not counted at all), and from then on every fed frame counts, empty-empty frames
  included (J = F = 1 there);
* only labels present in the GT in some fed frame are reported (:func:`object_score` returns None otherwise);
* per object J = ``np.mean(list) * 100`` (F likewise); the global J and F are plain means of the per-object
  percentages over all objects of all videos in order, J&F = (J + F) / 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class ObjectScore:
    """One object's result: J and F in percent, and which of its fed frames its lists cover (``start:``)."""

    J: float
    F: float
    start: int
    n_fed: int

    @property
    def JF(self) -> float:
        return (self.J + self.F) / 2


def object_score(j: Sequence[float], f: Sequence[float], gt_present: Sequence[bool],
                 pred_present: Sequence[bool]) -> ObjectScore | None:
    """Score one label from its per-frame values over the fed frames (in order).

    j, f: (T,) per-frame J and F (fractions); gt_present, pred_present: (T,) whether the label is non-empty in the
    GT / the prediction in each frame. None when the label is never present in the GT (the official evaluator does
    not report it: an SA-V object then stops the run, a DAVIS-like label is dropped)."""
    gt_p = np.asarray(gt_present, dtype=bool)
    if not gt_p.any():
        return None
    seen = gt_p | np.asarray(pred_present, dtype=bool)
    start = int(np.argmax(seen))
    j_arr = np.asarray(j, dtype=np.float64)[start:]
    f_arr = np.asarray(f, dtype=np.float64)[start:]
    return ObjectScore(J=float(np.mean(j_arr) * 100), F=float(np.mean(f_arr) * 100), start=start, n_fed=len(gt_p))


def global_scores(objects: Iterable[ObjectScore]) -> dict[str, float]:
    """``{"J&F", "J", "F"}`` in percent: plain means over the objects in the given order (``benchmark``)."""
    objs = list(objects)
    if not objs:
        raise ValueError("sav: no objects to score")
    j = float(np.array([o.J for o in objs]).mean())
    f = float(np.array([o.F for o in objs]).mean())
    return {"J&F": (j + f) / 2, "J": j, "F": f}


def label_order(gt_labels_per_frame: Iterable[Iterable[int]]) -> list[int]:
    """The order in which the evaluator reports the labels of a DAVIS-like video: the iteration order of the Python
    set it fills frame by frame with each fed frame's sorted GT labels (``objects_in_gt.update(set(...))``)."""
    seen: set[int] = set()
    for labels in gt_labels_per_frame:
        seen.update(set(int(v) for v in labels))
    return list(seen)


def results_csv(per_video: Sequence[tuple[str, Sequence[tuple[str | int, float, float]]]],
                scores: dict[str, float]) -> str:
    """The text of the ``results.csv`` the evaluator writes into the prediction root: a header, the global row and
    one row per object (one decimal). ``per_video``: ``[(video, [(object id, J, F), ...]), ...]`` in order; the
    object id is the folder name (a string, formatted with ``:03`` as the official f-string does) or a DAVIS-like
    label (an int)."""
    width = max(*[len(v) for v, _objs in per_video], len("Global score"))
    out = f'{"sequence":<{width}},{"obj":>3}, {"J&F":>4}, {"J":>4}, {"F":>4}\n'
    out += f'{"Global score":<{width}},{"":>3}, {scores["J&F"]:.1f}, {scores["J"]:.1f}, {scores["F"]:.1f}\n'
    for video, objs in per_video:
        for obj, j, f in objs:
            jf = (j + f) / 2
            out += f"{video:<{width}},{obj:03}, {jf:>4.1f}, {j:>4.1f}, {f:>4.1f}\n"
    return out


def printed_summary(scores: dict[str, float]) -> str:
    """The console line ``Global score: J&F: x J: x F: x`` (one decimal)."""
    return f"Global score: J&F: {scores['J&F']:.1f} J: {scores['J']:.1f} F: {scores['F']:.1f}"


__all__ = ["ObjectScore", "global_scores", "label_order", "object_score", "printed_summary", "results_csv"]
