"""DAVIS 2017 video object segmentation protocols: semi-supervised and unsupervised.

Reproduces the aggregation of davisvideochallenge/davis2017-evaluation at commit
ac7c43fca936f9722837b7fbd337d284ba37004b (``davis2017/evaluation.py`` ``DAVISEvaluation``,
``davis2017/davis.py`` ``DAVIS.get_all_masks``, ``davis2017/results.py`` ``Results.read_masks``,
``davis2017/utils.py`` ``db_statistics`` and the global formula of ``evaluation_method.py``). The per-frame
J and F come from :func:`refbench.metrics.frame.jaccard_and_boundary`, which equals the official
``db_eval_iou`` / ``db_eval_boundary`` bit for bit. Every reduction below is done with numpy on the same
float64 values in the same order as the official code (numpy's pairwise summation), so the results are the
official numbers exactly (checked on ``shared/data/davis_osvos13``).

Facts of the official protocol reproduced here (quirks marked *):

* Objects are the ids 1..max of the first GT frame, after its void value 255 is set to 0. An id absent
  from frame 0 is not scored; an id below the maximum that never appears (an id gap) is still an object,
  with an empty GT mask.
* Semi-supervised: the first and the last frame are not scored; no void map is passed (255 simply counts
  as background of every object). More predicted ids (max over the scored frames) than GT objects is an
  error (the official code writes a message and calls ``sys.exit``; here: ``ValueError``); fewer are padded
  with empty masks.
* Unsupervised: every frame is scored and ``gt == 255`` is the void map of J and F. At most 20 proposal ids
  (more is an error); fewer proposals than GT objects are padded with empty masks. The proposal scored
  against each GT object is chosen by ``scipy.optimize.linear_sum_assignment`` maximising the per-pair mean
  over frames of (J + F) / 2. *The official code then names the matched pairs ``<seq>_1, <seq>_2, ...`` in
  the order of the assignment's rows (proposal order), not of the GT objects: label ``<seq>_k`` is the k-th
  matched proposal, whatever GT object it was matched to. :class:`DavisObjectResult` keeps the official
  label in ``name`` and the real ids in ``gt_object`` and ``proposal``.
* Per object (``db_statistics``): M = mean over frames (``np.nanmean``); Recall = fraction of frames with
  value > 0.5 (strict); Decay = mean of bin 0 minus mean of bin 3, the 4 bins spanning edges
  ``round(linspace(1, n, 5) + 1e-10) - 1``. *The edges are cast to ``np.uint8``, and each bin is the slice
  ``values[e[i] : e[i+1] + 1]`` with that ``+ 1`` also done in uint8 (numpy >= 2 keeps the uint8 type of a
  scalar plus a Python int). Both wrap modulo 256, so for n >= 256 bins go wrong or empty and the decay is
  often NaN. ``decay_index="uint8"`` (default) reproduces it; ``decay_index="exact"`` uses unwrapped
  integer edges (not an official number).
* Global (``evaluation_method.py``): every column is the plain mean over all objects of all sequences, in
  sequence order then object order; J&F-Mean = (mean J-Mean + mean F-Mean) / 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import numpy as np
import torch

from refbench.metrics import _bits
from refbench.metrics.frame import (
    jaccard_and_boundary,
    jaccard_and_boundary_packed,
    pairwise_jaccard_and_boundary,
    pairwise_jaccard_and_boundary_packed,
)

MaskLike = Union[torch.Tensor, np.ndarray]
DecayIndex = Literal["uint8", "exact"]
Task = Literal["semi-supervised", "unsupervised"]

VOID_LABEL = 255
MAX_PROPOSALS = 20
DECAY_INDEX_MODES: tuple[str, ...] = ("uint8", "exact")
GLOBAL_COLUMNS: tuple[str, ...] = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
OBJECT_COLUMNS: tuple[str, ...] = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")

# Pixels per call of jaccard_and_boundary when several (prediction, GT) object pairs are batched.
_PIXEL_BUDGET = 1 << 27
# CPU tensors are scored on numpy words (each object's mask packed straight from the id map); the torch
# path below serves every other device (the tests switch this off to check it on CPU).
_NUMPY_ON_CPU = True


# ----------------------------------------------------------------------------------------------
# Per-object statistics (db_statistics)
# ----------------------------------------------------------------------------------------------


def _nanmean(x: np.ndarray) -> float:
    """``np.nanmean`` without its warning: NaN for an empty or all-NaN input."""
    if x.size == 0 or bool(np.isnan(x).all()):
        return float("nan")
    return float(np.nanmean(x))


def decay_bins(n: int, decay_index: DecayIndex = "uint8") -> list[tuple[int, int]]:
    """The 4 decay bins of an n-frame series as Python slice bounds ``(start, stop)``.

    Edges e = round(linspace(1, n, 5) + 1e-10) - 1 (davis2017 ``utils.db_statistics``); bin i is
    ``values[e[i] : e[i+1] + 1]``. ``"uint8"``: the official ``astype(np.uint8)`` of the edges and the uint8
    ``+ 1``, both modulo 256 (the value numpy gives on x86-64 for these integral floats, and under NEP 50
    for the scalar sum); ``"exact"``: plain integers, no wrap.
    """
    if decay_index not in DECAY_INDEX_MODES:
        raise ValueError(f"unknown decay_index {decay_index!r}; expected one of {', '.join(DECAY_INDEX_MODES)}")
    edges = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(np.int64)
    if decay_index == "uint8":
        edges = edges % 256
        return [(int(edges[i]), int((edges[i + 1] + 1) % 256)) for i in range(4)]
    return [(int(edges[i]), int(edges[i + 1] + 1)) for i in range(4)]


def object_statistics(values: MaskLike | Sequence[float], *, decay_index: DecayIndex = "uint8") -> dict[str, float]:
    """Mean, recall and decay of one object's per-frame values (davis2017 ``utils.db_statistics``).

    values: (n,) per-frame J or F (numpy, torch or a sequence), read as float64.
    Returns ``{"M": mean, "R": fraction of frames > 0.5 (strict), "D": decay}``; see :func:`decay_bins`
    for the decay bins and the uint8 quirk. NaN values are skipped by M and D (``np.nanmean``) and count as
    failures in R, as officially; n = 0 gives NaN everywhere.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    v = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if v.ndim != 1:
        raise ValueError(f"object_statistics expects a 1-D series of per-frame values, got shape {v.shape}")
    n = v.shape[0]
    if n == 0:
        nan = float("nan")
        return {"M": nan, "R": nan, "D": nan}
    bins = decay_bins(n, decay_index)
    first, last = bins[0], bins[3]
    decay = _nanmean(v[first[0] : first[1]]) - _nanmean(v[last[0] : last[1]])
    return {"M": _nanmean(v), "R": float(np.mean(v > 0.5)), "D": float(decay)}


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DavisObjectResult:
    """One scored object.

    name: the official label ``<sequence>_<k>`` (unsupervised: k counts matched pairs in proposal order).
    gt_object / proposal: the GT object id and the predicted id that were compared (1-based; semi-supervised:
    equal). frames: indices of the scored frames in the sequence. J, F: (n,) float64 per-frame values.
    J_stats, F_stats: :func:`object_statistics` of J and F.
    """

    name: str
    sequence: str
    gt_object: int
    proposal: int
    frames: tuple[int, ...]
    J: np.ndarray
    F: np.ndarray
    J_stats: Mapping[str, float]
    F_stats: Mapping[str, float]

    def row(self) -> dict[str, float]:
        """The official per-object statistics: J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay."""
        out: dict[str, float] = {}
        for metric, stats in (("J", self.J_stats), ("F", self.F_stats)):
            out[f"{metric}-Mean"] = stats["M"]
            out[f"{metric}-Recall"] = stats["R"]
            out[f"{metric}-Decay"] = stats["D"]
        return out


@dataclass(frozen=True)
class DavisSequenceResult:
    """All objects of one sequence, in the official order.

    affinity (unsupervised only): (n_proposals_padded, n_gt_objects) per-pair mean over frames of
    (J + F) / 2, the matrix the assignment maximised.
    """

    sequence: str
    task: Task
    objects: tuple[DavisObjectResult, ...]
    affinity: np.ndarray | None = None


def global_table(objects: Iterable[DavisObjectResult]) -> dict[str, float]:
    """The global row (``evaluation_method.py``): plain means over the objects in the given order.

    Returns J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay; J&F-Mean =
    (mean J-Mean + mean F-Mean) / 2. NaN per-object values (e.g. a wrapped decay) propagate (``np.mean``).
    """
    rows = [o.row() for o in objects]
    if not rows:
        raise ValueError("global_table: no objects were scored")
    col = {c: float(np.mean(np.array([r[c] for r in rows], dtype=np.float64))) for c in OBJECT_COLUMNS}
    out = {"J&F-Mean": (col["J-Mean"] + col["F-Mean"]) / 2}
    out.update(col)
    return {c: out[c] for c in GLOBAL_COLUMNS}


@dataclass
class DavisResult:
    """Accumulates sequence results (keyed by sequence name) and gives the official tables.

    Sequences are reduced in ``order`` (the official order is the ImageSets list order) or, by default,
    in insertion order. Shards from several workers merge exactly with :meth:`merge`.
    """

    task: Task | None = None
    sequences: dict[str, DavisSequenceResult] = field(default_factory=dict)

    def add(self, result: DavisSequenceResult) -> None:
        if self.task is None:
            self.task = result.task
        elif result.task != self.task:
            raise ValueError(f"sequence {result.sequence!r}: task {result.task!r} differs from {self.task!r}")
        if result.sequence in self.sequences:
            raise ValueError(f"sequence {result.sequence!r} was already added")
        self.sequences[result.sequence] = result

    def merge(self, other: "DavisResult") -> "DavisResult":
        for res in other.sequences.values():
            self.add(res)
        return self

    def _ordered(self, order: Sequence[str] | None) -> list[DavisSequenceResult]:
        if order is None:
            return list(self.sequences.values())
        names = list(order)
        absent = [s for s in names if s not in self.sequences]
        if absent:
            raise ValueError(f"{len(absent)} sequence(s) of the order were never scored, e.g. {absent[0]!r}")
        if len(set(names)) != len(names):
            raise ValueError("order lists a sequence more than once")
        if len(names) != len(self.sequences):
            extra = [s for s in self.sequences if s not in set(names)]
            raise ValueError(f"{len(extra)} scored sequence(s) are not in the order, e.g. {extra[0]!r}")
        return [self.sequences[s] for s in names]

    def objects(self, order: Sequence[str] | None = None) -> list[DavisObjectResult]:
        return [o for seq in self._ordered(order) for o in seq.objects]

    def per_object(self, order: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """``{official label: row}`` for every object."""
        return {o.name: o.row() for o in self.objects(order)}

    def global_table(self, order: Sequence[str] | None = None) -> dict[str, float]:
        return global_table(self.objects(order))


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------


def _as_index_tensor(x: MaskLike, name: str, sequence: str, device: torch.device | str | None) -> torch.Tensor:
    """A (T, H, W) integer tensor of palette indices on ``device``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"sequence {sequence!r}: {name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        raise TypeError(f"sequence {sequence!r}: {name} must hold integer palette indices, got dtype {x.dtype}")
    if x.dim() != 3:
        raise ValueError(f"sequence {sequence!r}: {name} must have shape (T, H, W), got {tuple(x.shape)}")
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    return x.to(device) if device is not None else x


def _max_id(x: torch.Tensor) -> int:
    return int(x.max()) if x.numel() else 0


def _n_gt_objects(gt: torch.Tensor) -> int:
    """max id of the first GT frame with void (255) set to 0 (``DAVIS.get_all_masks``)."""
    first = gt[0]
    return _max_id(torch.where(first == VOID_LABEL, torch.zeros_like(first), first))


def _pair_scores(
    pred: torch.Tensor,
    gt: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    void: torch.Tensor | None,
    bound_th: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of each (predicted id, GT id) pair: two (len(pairs), T) float64 arrays.

    pred, gt: (T, H, W) index tensors on one device; void: (T, H, W) bool or None. Pairs are batched into
    calls of about ``_PIXEL_BUDGET`` pixels.
    """
    n_frames, height, width = gt.shape
    j_out = np.zeros((len(pairs), n_frames), dtype=np.float64)
    f_out = np.zeros((len(pairs), n_frames), dtype=np.float64)
    if not pairs or n_frames == 0:
        return j_out, f_out
    if pred.device.type == "cpu" and _NUMPY_ON_CPU:  # numpy words, each id's mask packed from the index map
        p_np, g_np = pred.numpy(), gt.numpy()
        keep = None if void is None else np.invert(_bits.pack_numpy(void.numpy()))
        for i, (pid, gid) in enumerate(pairs):
            pw = _bits.pack_equal(p_np, pid)
            gw = _bits.pack_equal(g_np, gid)
            if keep is not None:
                pw &= keep
                gw &= keep
            j, f = jaccard_and_boundary_packed(pw, gw, width, bound_th)
            j_out[i], f_out[i] = j.numpy(), f.numpy()
        return j_out, f_out
    per_call = max(1, _PIXEL_BUDGET // max(1, n_frames * height * width))
    for start in range(0, len(pairs), per_call):
        batch = pairs[start : start + per_call]
        pid = torch.tensor([p for p, _ in batch], dtype=pred.dtype, device=pred.device).view(-1, 1, 1, 1)
        gid = torch.tensor([g for _, g in batch], dtype=gt.dtype, device=gt.device).view(-1, 1, 1, 1)
        # x == id as "not (x ^ id != 0)": torch's integer-to-bool cast is vectorised, its == is not (3x).
        p = torch.logical_not(pred.unsqueeze(0) ^ pid).reshape(-1, height, width)
        g = torch.logical_not(gt.unsqueeze(0) ^ gid).reshape(-1, height, width)
        v = None if void is None else void.unsqueeze(0).expand(len(batch), -1, -1, -1).reshape(-1, height, width)
        j, f = jaccard_and_boundary(p, g, v, bound_th)
        j_out[start : start + len(batch)] = j.view(len(batch), n_frames).cpu().numpy()
        f_out[start : start + len(batch)] = f.view(len(batch), n_frames).cpu().numpy()
    return j_out, f_out


def _all_pair_scores(
    pred: torch.Tensor, gt: torch.Tensor, n_rows: int, n_obj: int, void: torch.Tensor | None, bound_th: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of every (proposal 1..n_rows, GT object 1..n_obj) pair: two (n_rows, n_obj, T)
    float64 arrays. Each id's mask gets its boundary and dilation once (pairwise_jaccard_and_boundary), in
    frame chunks of about ``_PIXEL_BUDGET`` one-hot pixels."""
    n_frames, height, width = gt.shape
    j_out = np.zeros((n_rows, n_obj, n_frames), dtype=np.float64)
    f_out = np.zeros((n_rows, n_obj, n_frames), dtype=np.float64)
    if n_rows == 0 or n_obj == 0 or n_frames == 0:
        return j_out, f_out
    if pred.device.type == "cpu" and _NUMPY_ON_CPU:  # numpy words, each id's mask packed from the index map
        p_ids = pred.numpy()
        if void is not None:  # void removed once from the id map (GT ids never equal the void label)
            p_ids = np.where(void.numpy(), 0, p_ids)
        g_ids = gt.numpy()
        step = max(1, (_PIXEL_BUDGET * 8) // max(1, (n_rows + n_obj) * height * width))
        for start in range(0, n_frames, step):
            stop = min(n_frames, start + step)
            pw = np.stack([_bits.pack_equal(p_ids[start:stop], i) for i in range(1, n_rows + 1)])
            gw = np.stack([_bits.pack_equal(g_ids[start:stop], i) for i in range(1, n_obj + 1)])
            j, f = pairwise_jaccard_and_boundary_packed(pw, gw, width, bound_th)
            j_out[:, :, start:stop] = j.numpy()
            f_out[:, :, start:stop] = f.numpy()
        return j_out, f_out
    step = max(1, _PIXEL_BUDGET // max(1, (n_rows + n_obj) * height * width))
    pids = torch.arange(1, n_rows + 1, dtype=pred.dtype, device=pred.device).view(-1, 1, 1, 1)
    gids = torch.arange(1, n_obj + 1, dtype=gt.dtype, device=gt.device).view(-1, 1, 1, 1)
    for start in range(0, n_frames, step):
        stop = min(n_frames, start + step)
        # Void is removed once from the id map instead of from every one-hot mask; GT object ids never
        # equal the void label, so the GT masks exclude void already.
        p_ids = pred[start:stop]
        if void is not None:
            p_ids = p_ids.masked_fill(void[start:stop], 0)
        # x == id as "not (x ^ id != 0)" (see _pair_scores)
        p = torch.logical_not(p_ids.unsqueeze(0) ^ pids)
        g = torch.logical_not(gt[start:stop].unsqueeze(0) ^ gids)
        j, f = pairwise_jaccard_and_boundary(p, g, None, bound_th)
        j_out[:, :, start:stop] = j.cpu().numpy()
        f_out[:, :, start:stop] = f.cpu().numpy()
    return j_out, f_out


def _object_result(
    name: str,
    sequence: str,
    gt_object: int,
    proposal: int,
    frames: Sequence[int],
    j: np.ndarray,
    f: np.ndarray,
    decay_index: DecayIndex,
) -> DavisObjectResult:
    j = np.ascontiguousarray(j, dtype=np.float64)
    f = np.ascontiguousarray(f, dtype=np.float64)
    return DavisObjectResult(
        name=name,
        sequence=sequence,
        gt_object=gt_object,
        proposal=proposal,
        frames=tuple(int(i) for i in frames),
        J=j,
        F=f,
        J_stats=object_statistics(j, decay_index=decay_index),
        F_stats=object_statistics(f, decay_index=decay_index),
    )


def evaluate_semi_supervised(
    gt_seq_masks: MaskLike,
    pred_seq_masks: MaskLike,
    *,
    sequence: str = "sequence",
    device: torch.device | str | None = None,
    decay_index: DecayIndex = "uint8",
    bound_th: float = 0.008,
) -> DavisSequenceResult:
    """Score one sequence with the DAVIS semi-supervised protocol.

    gt_seq_masks: (T, H, W) palette indices of every frame of the sequence (255 = void).
    pred_seq_masks: (T, H, W) palette indices of the same frames, or (T - 2, H, W) for frames 1..T-2 only.
    Frames 1..T-2 are scored (davis2017 ``evaluate``: ``[:, 1:-1]``); objects are 1..max(first GT frame);
    no void map. Raises ``ValueError`` when the prediction uses an id above the number of GT objects.
    device: where J and F are computed (default: where the inputs are; numpy inputs: CPU).
    """
    gt = _as_index_tensor(gt_seq_masks, "gt", sequence, device)
    pred = _as_index_tensor(pred_seq_masks, "pred", sequence, gt.device)
    n_frames = gt.shape[0]
    if n_frames < 3:
        raise ValueError(
            f"sequence {sequence!r}: {n_frames} GT frame(s); semi-supervised needs at least 3 "
            "(the first and the last frame are not scored)"
        )
    if pred.shape[1:] != gt.shape[1:]:
        raise ValueError(f"sequence {sequence!r}: prediction frames are {tuple(pred.shape[1:])}, GT {tuple(gt.shape[1:])}")
    n_obj = _n_gt_objects(gt)
    frames = list(range(1, n_frames - 1))
    gt_s = gt[1:-1]
    if pred.shape[0] == n_frames:
        pred_s = pred[1:-1]
    elif pred.shape[0] == len(frames):
        pred_s = pred
    else:
        raise ValueError(
            f"sequence {sequence!r}: {pred.shape[0]} predicted frames; expected {n_frames} (all) "
            f"or {len(frames)} (without the first and last)"
        )
    n_pred = _max_id(pred_s)
    if n_pred > n_obj:
        raise ValueError(
            f"sequence {sequence!r}: the prediction holds id {n_pred} but the first GT frame has only "
            f"{n_obj} object(s) (davis2017 semi-supervised rejects ids above the number of objects)"
        )
    pairs = [(k, k) for k in range(1, n_obj + 1)]
    j, f = _pair_scores(pred_s, gt_s, pairs, None, bound_th)
    objects = tuple(
        _object_result(f"{sequence}_{k}", sequence, k, k, frames, j[k - 1], f[k - 1], decay_index)
        for k in range(1, n_obj + 1)
    )
    return DavisSequenceResult(sequence, "semi-supervised", objects)


def _pack_objects(ids: np.ndarray, n_obj: int, out: np.ndarray, t: int, top: int, buf: np.ndarray) -> None:
    """Pack object k's mask (``ids == k``, k = 1..n_obj) of one (H, W) id map into ``out[k - 1, t]``.

    top: ``ids.max()``. An unsigned map holding only 0 and 1 packs object 1 straight from the ids (non-zero =
    set); objects above ``top`` are empty and keep the zeros ``out`` was made with."""
    if n_obj >= 1 and top == 1 and ids.dtype.kind in "ub":
        _bits.pack_numpy(ids, out=out[0, t])
        return
    for k in range(1, min(n_obj, top) + 1):
        _bits.pack_numpy(np.equal(ids, k, out=buf), out=out[k - 1, t])


def _frame_map(ids: Any, name: str, sequence: str, t: int, size: tuple[int, int] | None) -> np.ndarray:
    if not isinstance(ids, np.ndarray) or ids.ndim != 2 or ids.dtype.kind not in "biu":
        raise TypeError(f"sequence {sequence!r}: {name} frame {t} must be a 2-D integer numpy array")
    if size is not None and ids.shape != size:
        raise ValueError(f"sequence {sequence!r}: prediction frames are {tuple(ids.shape)}, GT {size}")
    return ids


def evaluate_semi_supervised_frames(
    gt_frames: Iterable[np.ndarray],
    pred_frames: Iterable[np.ndarray | None],
    n_frames: int,
    *,
    pred_all: bool = True,
    sequence: str = "sequence",
    decay_index: DecayIndex = "uint8",
    bound_th: float = 0.008,
) -> DavisSequenceResult:
    """:func:`evaluate_semi_supervised` on CPU from frames read one at a time, the same values bit for bit.

    gt_frames: the ``n_frames`` (H, W) palette-index maps of the sequence, in order (255 = void); pred_frames:
    (H, W) maps of all ``n_frames`` frames (``pred_all``) or of frames 1..T-2 only, None for an all-zero
    frame (the first and last of all frames are read but not scored). Each object's
    mask is packed into words straight from each decoded map: no (T, H, W) array is built. Every GT frame is
    consumed before the first prediction frame (so the errors of a bad input are the ones the stacked path
    raises, in the same order).
    """
    n_frames = int(n_frames)
    if n_frames < 3:
        raise ValueError(
            f"sequence {sequence!r}: {n_frames} GT frame(s); semi-supervised needs at least 3 "
            "(the first and the last frame are not scored)"
        )
    n_scored = n_frames - 2
    gt_words = None
    n_obj = 0
    size: tuple[int, int] | None = None
    buf = None
    t = -1
    for t, ids in enumerate(gt_frames):
        ids = _frame_map(ids, "gt", sequence, t, None)
        if t == 0:
            size = (int(ids.shape[0]), int(ids.shape[1]))
            first = np.where(ids == VOID_LABEL, 0, ids)
            n_obj = int(first.max()) if first.size else 0
            gt_words = np.zeros((n_obj, n_scored, size[0], _bits.n_words(size[1])), dtype=np.uint64)
            buf = np.empty(size, dtype=bool)
        elif ids.shape != size:
            raise ValueError(f"sequence {sequence!r}: GT frame {t} is {tuple(ids.shape)}, frame 0 {size}")
        if 0 < t <= n_scored and n_obj:
            _pack_objects(ids, n_obj, gt_words, t - 1, int(ids.max()) if ids.size else 0, buf)
    if t + 1 != n_frames:
        raise ValueError(f"sequence {sequence!r}: {t + 1} GT frames given, {n_frames} announced")
    assert gt_words is not None and size is not None and buf is not None
    pred_words = np.zeros_like(gt_words)
    offset = 1 if pred_all else 0  # index of the first scored frame among the prediction frames
    n_pred = 0
    t = -1
    for t, ids in enumerate(pred_frames):
        if ids is None:
            continue
        ids = _frame_map(ids, "pred", sequence, t, size)
        tt = t - offset
        if not 0 <= tt < n_scored:  # the first and last frame: read, not scored
            continue
        top = int(ids.max()) if ids.size else 0
        n_pred = max(n_pred, top)
        if top <= n_obj:  # else refused below, once every frame is read
            _pack_objects(ids, n_obj, pred_words, tt, top, buf)
    if t + 1 != n_scored + 2 * offset:
        raise ValueError(
            f"sequence {sequence!r}: {t + 1} predicted frames; expected {n_scored + 2 * offset} "
            f"({'all' if pred_all else 'without the first and last'})"
        )
    if n_pred > n_obj:
        raise ValueError(
            f"sequence {sequence!r}: the prediction holds id {n_pred} but the first GT frame has only "
            f"{n_obj} object(s) (davis2017 semi-supervised rejects ids above the number of objects)"
        )
    frames = list(range(1, n_frames - 1))
    objects = []
    for k in range(1, n_obj + 1):
        j, f = jaccard_and_boundary_packed(pred_words[k - 1], gt_words[k - 1], size[1], bound_th)
        objects.append(_object_result(f"{sequence}_{k}", sequence, k, k, frames, j.numpy(), f.numpy(), decay_index))
    return DavisSequenceResult(sequence, "semi-supervised", tuple(objects))


def hungarian_match(affinity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (proposals) and columns (GT objects) of the assignment maximising ``affinity``.

    ``scipy.optimize.linear_sum_assignment(-affinity)``, as davis2017 ``_evaluate_unsupervised``; the rows
    come back sorted, which fixes the official label order.
    """
    from scipy.optimize import linear_sum_assignment  # 0.5-0.9 s to import; only the unsupervised task needs it

    rows, cols = linear_sum_assignment(-np.asarray(affinity, dtype=np.float64))
    return rows, cols


def evaluate_unsupervised(
    gt_seq_masks: MaskLike,
    pred_seq_masks: MaskLike,
    *,
    sequence: str = "sequence",
    device: torch.device | str | None = None,
    max_proposals: int = MAX_PROPOSALS,
    decay_index: DecayIndex = "uint8",
    bound_th: float = 0.008,
) -> DavisSequenceResult:
    """Score one sequence with the DAVIS unsupervised protocol.

    gt_seq_masks, pred_seq_masks: (T, H, W) palette indices of every frame (GT 255 = void, used by J and F).
    Every (proposal, GT object) pair is scored; proposals are padded with empty masks up to the number of
    GT objects; the assignment maximises the per-pair mean over frames of (J + F) / 2. Objects come back in
    the official label order (see the module docstring). Raises ``ValueError`` when the prediction holds an
    id above ``max_proposals``.
    """
    gt = _as_index_tensor(gt_seq_masks, "gt", sequence, device)
    pred = _as_index_tensor(pred_seq_masks, "pred", sequence, gt.device)
    n_frames = gt.shape[0]
    if n_frames == 0:
        raise ValueError(f"sequence {sequence!r}: the GT has no frames")
    if pred.shape != gt.shape:
        raise ValueError(f"sequence {sequence!r}: prediction shape {tuple(pred.shape)} differs from GT {tuple(gt.shape)}")
    n_pred = _max_id(pred)
    if n_pred > max_proposals:
        raise ValueError(
            f"sequence {sequence!r}: the prediction holds id {n_pred}, above the maximum of {max_proposals} "
            "proposals (davis2017 unsupervised)"
        )
    n_obj = _n_gt_objects(gt)
    n_rows = max(n_pred, n_obj)
    void = gt == VOID_LABEL
    j3, f3 = _all_pair_scores(pred, gt, n_rows, n_obj, void, bound_th)
    affinity = (np.mean(j3, axis=2) + np.mean(f3, axis=2)) / 2
    rows, cols = hungarian_match(affinity)
    frames = list(range(n_frames))
    objects = tuple(
        _object_result(f"{sequence}_{i + 1}", sequence, int(g) + 1, int(p) + 1, frames, j3[p, g], f3[p, g], decay_index)
        for i, (p, g) in enumerate(zip(rows, cols))
    )
    return DavisSequenceResult(sequence, "unsupervised", objects, affinity)


def evaluate_sequence(
    task: Task,
    gt_seq_masks: MaskLike,
    pred_seq_masks: MaskLike,
    **kwargs,
) -> DavisSequenceResult:
    """Dispatch to :func:`evaluate_semi_supervised` or :func:`evaluate_unsupervised` by task name."""
    if task == "semi-supervised":
        return evaluate_semi_supervised(gt_seq_masks, pred_seq_masks, **kwargs)
    if task == "unsupervised":
        return evaluate_unsupervised(gt_seq_masks, pred_seq_masks, **kwargs)
    raise ValueError(f"unknown DAVIS task {task!r}; expected 'semi-supervised' or 'unsupervised'")


__all__ = [
    "DECAY_INDEX_MODES",
    "GLOBAL_COLUMNS",
    "MAX_PROPOSALS",
    "OBJECT_COLUMNS",
    "DavisObjectResult",
    "DavisResult",
    "DavisSequenceResult",
    "decay_bins",
    "evaluate_semi_supervised",
    "evaluate_semi_supervised_frames",
    "evaluate_sequence",
    "evaluate_unsupervised",
    "global_table",
    "hungarian_match",
    "object_statistics",
]
