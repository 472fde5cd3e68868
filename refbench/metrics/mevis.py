"""MeViS per-expression J and F and the dataset score, as henghuiding/MeViS ``tools/eval_mevis.py``.

Reference: henghuiding/MeViS commit 7c0620b9dc0ab7802747957f221674f175c8a47b, ``tools/eval_mevis.py`` with
``tools/metrics.py`` (the davis2017 ``db_eval_iou`` / ``db_eval_boundary``, which
:func:`refbench.metrics.frame.jaccard_and_boundary` equals bit for bit). VISA and Sa2VA ship copies.
Checked exactly on ``shared/data/mevis_golden``.

Facts of the official protocol reproduced here:

* The unit is one expression. Its GT in frame t is the sum, in uint8, of the decoded RLE masks of all its
  ``anno_id`` entries for that frame (``mask_dict[str(anno_id)][t]``, aligned with the video's ``frames``);
  a null (falsy) entry adds nothing. Non-zero = foreground, so the sum acts as the union (overlaps give 2).
* Every listed frame is scored, without void. J_expr and F_expr are ``np.mean`` of the per-frame values;
  the dataset J and F are ``np.mean`` over expressions in the order they were stored (meta order when run
  in one process), and J&F = (J + F) / 2. Expression-weighted, no per-video averaging.
* A missing video folder scores ``[0, 0]`` for each of its expressions, counted in the means
  (:meth:`MevisMeter.add_missing_video`).
* Not reproduced on purpose: a missing or unreadable frame PNG kills the official worker and the
  expression silently vanishes from the means. Here every expression of the order must be scored, or
  :meth:`MevisMeter.compute` raises. Loaders decide what a missing frame means (error or empty mask).
* The official global means depend on the order in which its 64 worker processes finish (last-ulp
  differences); :meth:`MevisMeter.compute` reduces in the canonical order given (meta order), which is what
  the single-process run gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping, Sequence, Union

import numpy as np
import torch

from refbench.data.mevis import decode_rle  # the one COCO RLE decoder, shared with the loaders
from refbench.metrics.frame import jaccard_and_boundary, jaccard_and_boundary_packed

MaskLike = Union[torch.Tensor, np.ndarray]
RLE = Mapping[str, Any]


# ----------------------------------------------------------------------------------------------
# Ground truth from mask_dict RLEs
# ----------------------------------------------------------------------------------------------


def _rle_size(entry: RLE, where: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in entry["size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a COCO RLE with a 'size' [H, W]") from exc
    return h, w


def expression_gt(
    mask_dict: Mapping[str, Sequence[RLE | None]],
    anno_ids: Sequence[int | str],
    n_frames: int | None = None,
    *,
    height: int | None = None,
    width: int | None = None,
    name: str = "expression",
) -> np.ndarray:
    """The official GT of one expression: (T, H, W) uint8 per-pixel sum of its objects' masks.

    mask_dict: ``{str(anno_id): [RLE or null per frame]}`` (MeViS / ReVOS ``mask_dict.json``).
    anno_ids: the expression's ``anno_id`` list (may be empty: no target, all-zero GT).
    n_frames: number of frames T (the video's ``frames`` list); default: the length of the first anno's list.
    height, width: frame size; default: the ``size`` of the first non-null RLE. Needed when every entry is
    null (the official code takes the size from the prediction).
    The sum wraps modulo 256 like the official ``uint8 +=``; any non-zero value is foreground. Values above
    1 where objects overlap matter to ReVOS's A and R (:mod:`refbench.metrics.revos`).
    """
    lists = []
    for a in anno_ids:
        key = str(a)
        if key not in mask_dict:
            raise KeyError(f"{name}: anno_id {key!r} is not in mask_dict")
        lists.append((key, mask_dict[key]))
    if n_frames is None:
        if not lists:
            raise ValueError(f"{name}: no anno_id, so n_frames must be given")
        n_frames = len(lists[0][1])
    for key, entries in lists:
        if len(entries) < n_frames:
            raise ValueError(f"{name}: mask_dict[{key!r}] has {len(entries)} entries for {n_frames} frames")
    if height is None or width is None:
        first = next((e for _, entries in lists for e in entries[:n_frames] if e), None)
        if first is None:
            raise ValueError(f"{name}: every GT entry is null; pass height and width (the prediction's size)")
        h, w = _rle_size(first, name)
        height = h if height is None else height
        width = w if width is None else width
    gt = np.zeros((n_frames, height, width), dtype=np.uint8)
    for key, entries in lists:
        for t in range(n_frames):
            entry = entries[t]
            if not entry:
                continue
            if _rle_size(entry, f"{name} anno {key} frame {t}") != (height, width):
                raise ValueError(
                    f"{name}: mask_dict[{key!r}][{t}] has size {list(entry['size'])}, expected [{height}, {width}]"
                )
            np.add(gt[t], decode_rle(entry), out=gt[t])
    return gt


# ----------------------------------------------------------------------------------------------
# Per expression
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpressionJF:
    """J and F of one expression: means over frames, plus the (T,) float64 per-frame values."""

    J: float
    F: float
    J_frames: np.ndarray
    F_frames: np.ndarray


def _to_tensor(x: MaskLike, what: str, name: str, device: torch.device | str | None) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: {what} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        raise TypeError(f"{name}: {what} must be an integer or bool mask, got dtype {x.dtype}")
    if x.dim() != 3:
        raise ValueError(f"{name}: {what} must have shape (T, H, W), got {tuple(x.shape)}")
    return x.to(device) if device is not None else x


def frame_jf(
    pred: MaskLike, gt: MaskLike, *, device: torch.device | str | None = None, name: str = "expression"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F, each (T,) float64, of a (T, H, W) prediction against a (T, H, W) GT.

    Any non-zero value is foreground in both; no void; F tolerance 0.008 of the diagonal.
    """
    g = _to_tensor(gt, "gt", name, device)
    p = _to_tensor(pred, "pred", name, g.device)
    if p.shape != g.shape:
        raise ValueError(f"{name}: prediction shape {tuple(p.shape)} differs from GT shape {tuple(g.shape)}")
    if g.shape[0] == 0:
        raise ValueError(f"{name}: no frames to score")
    j, f = jaccard_and_boundary(p, g)
    return j.cpu().numpy(), f.cpu().numpy()


def expression_jf_packed(
    pred_words: np.ndarray, gt_words: np.ndarray, width: int, *, device: torch.device | str | None = None,
    name: str = "expression",
) -> ExpressionJF:
    """:func:`expression_jf` of masks already packed into words: (T, H, ceil(width / 64)) uint64 each
    (:func:`refbench.metrics._bits.pack_numpy`, :meth:`refbench.data.mevis.MevisLoader.gt_words`); J and F on
    ``device`` (numpy words on CPU, torch words elsewhere). The same values as on the unpacked masks."""
    if pred_words.shape != gt_words.shape:
        raise ValueError(f"{name}: prediction words {tuple(pred_words.shape)} differ from GT words "
                         f"{tuple(gt_words.shape)}")
    if pred_words.shape[0] == 0:
        raise ValueError(f"{name}: no frames to score")
    if device is not None and torch.device(device).type != "cpu":
        pred_words = torch.from_numpy(np.ascontiguousarray(pred_words).view(np.int64)).to(device)
        gt_words = torch.from_numpy(np.ascontiguousarray(gt_words).view(np.int64)).to(device)
    j, f = jaccard_and_boundary_packed(pred_words, gt_words, width)
    j_np, f_np = j.cpu().numpy(), f.cpu().numpy()
    return ExpressionJF(J=float(np.mean(j_np)), F=float(np.mean(f_np)), J_frames=j_np, F_frames=f_np)


def expression_jf(
    pred: MaskLike, gt: MaskLike, *, device: torch.device | str | None = None, name: str = "expression"
) -> ExpressionJF:
    """J and F of one expression: ``np.mean`` over all frames of the per-frame values (official order).

    pred: (T, H, W) prediction (any non-zero = foreground, e.g. a grey PNG read as is).
    gt: (T, H, W) GT, e.g. :func:`expression_gt`.
    """
    j, f = frame_jf(pred, gt, device=device, name=name)
    return ExpressionJF(J=float(np.mean(j)), F=float(np.mean(f)), J_frames=j, F_frames=f)


# ----------------------------------------------------------------------------------------------
# Dataset score
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MevisScores:
    """Dataset score: J, F and J&F (fractions in [0, 1]) over ``n`` expressions.

    per_expression: ``{key: (J, F)}`` in the reduction order; missing_videos: keys scored 0 because their
    video folder was missing (the official rule).
    """

    J: float
    F: float
    JF: float
    per_expression: Mapping[Hashable, tuple[float, float]]
    missing_videos: tuple[Hashable, ...] = ()

    @property
    def n(self) -> int:
        return len(self.per_expression)

    def as_dict(self) -> dict[str, Any]:
        """``{"J", "F", "J&F", "n_expressions", "per_expression": {key: [J, F]}, "missing_videos"}``."""
        return {
            "J": self.J,
            "F": self.F,
            "J&F": self.JF,
            "n_expressions": self.n,
            "per_expression": {str(k): [j, f] for k, (j, f) in self.per_expression.items()},
            "missing_videos": [str(k) for k in self.missing_videos],
        }


def mevis_scores(
    per_expression: Mapping[Hashable, tuple[float, float]], missing_videos: Iterable[Hashable] = ()
) -> MevisScores:
    """Reduce ``{key: (J, F)}`` in the mapping's order: J = np.mean(J's), F = np.mean(F's), J&F = (J + F) / 2."""
    if not per_expression:
        raise ValueError("mevis_scores: no expressions to score")
    js = np.array([float(v[0]) for v in per_expression.values()], dtype=np.float64)
    fs = np.array([float(v[1]) for v in per_expression.values()], dtype=np.float64)
    j, f = float(np.mean(js)), float(np.mean(fs))
    return MevisScores(
        J=j,
        F=f,
        JF=(j + f) / 2,
        per_expression={k: (float(v[0]), float(v[1])) for k, v in per_expression.items()},
        missing_videos=tuple(missing_videos),
    )


@dataclass(frozen=True)
class _Record:
    j: float
    f: float
    missing_video: bool


def _ordered_keys(records: Mapping[Hashable, Any], order: Iterable[Hashable] | None, what: str) -> list[Hashable]:
    """Check that ``order`` lists every recorded key exactly once; None: insertion order."""
    if order is None:
        return list(records)
    keys = list(order)
    absent = [k for k in keys if k not in records]
    if absent:
        raise ValueError(
            f"{len(absent)} {what}(s) of the order were never scored, e.g. {absent[0]!r}; score them, or "
            "record a missing video explicitly"
        )
    if len(set(keys)) != len(keys):
        raise ValueError(f"order lists a {what} more than once")
    if len(keys) != len(records):
        listed = set(keys)
        extra = [k for k in records if k not in listed]
        raise ValueError(f"{len(extra)} scored {what}(s) are not in the order, e.g. {extra[0]!r}")
    return keys


class MevisMeter:
    """Accumulates per-expression (J, F) keyed by expression id (e.g. ``"<video>_<exp_id>"``).

    Shards merge exactly (:meth:`merge`): the state is the per-expression floats, and the dataset means
    are taken once, in :meth:`compute`, in the order given (pass the meta order for the official numbers).
    """

    def __init__(self) -> None:
        self._records: dict[Hashable, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> dict[Hashable, tuple[float, float, bool]]:
        """``{key: (J, F, missing_video)}`` in insertion order (a copy)."""
        return {k: (r.j, r.f, r.missing_video) for k, r in self._records.items()}

    def _put(self, key: Hashable, record: _Record) -> None:
        old = self._records.get(key)
        if old is not None and old != record:
            raise ValueError(f"expression {key!r} was already scored with different values")
        self._records[key] = record

    def add(self, key: Hashable, j: float, f: float) -> None:
        """Record a precomputed expression score."""
        self._put(key, _Record(float(j), float(f), False))

    def add_missing_video(self, key: Hashable) -> None:
        """The official rule for an expression whose whole video folder is missing: J = F = 0, counted."""
        self._put(key, _Record(0.0, 0.0, True))

    def update(
        self, key: Hashable, pred: MaskLike, gt: MaskLike, *, device: torch.device | str | None = None
    ) -> ExpressionJF:
        """Score one expression from (T, H, W) masks (see :func:`expression_jf`) and record it."""
        res = expression_jf(pred, gt, device=device, name=f"expression {key!r}")
        self._put(key, _Record(res.J, res.F, False))
        return res

    def merge(self, other: "MevisMeter") -> "MevisMeter":
        """Add another shard's records; an expression seen twice must have identical values."""
        for key, rec in other._records.items():
            self._put(key, rec)
        return self

    def compute(self, order: Iterable[Hashable] | None = None) -> MevisScores:
        """Dataset J, F, J&F. ``order``: every expression key in the canonical (meta) order; default
        insertion order. A key of the order without a record, or a record left out, is an error."""
        keys = _ordered_keys(self._records, order, "expression")
        recs = {k: self._records[k] for k in keys}
        return mevis_scores(
            {k: (r.j, r.f) for k, r in recs.items()}, [k for k, r in recs.items() if r.missing_video]
        )

    def reset(self) -> None:
        self._records.clear()


__all__ = [
    "ExpressionJF",
    "MevisMeter",
    "MevisScores",
    "decode_rle",
    "expression_gt",
    "expression_jf",
    "expression_jf_packed",
    "frame_jf",
    "mevis_scores",
]
