"""Per-frame region similarity J and boundary measure F, batched over frames.

Both reproduce davis2017-evaluation ``davis2017/metrics.py`` (commit ac7c43f) exactly:
``db_eval_iou`` for J and ``db_eval_boundary`` / ``f_measure`` / ``_seg2bmap`` for F. The official code
dilates each boundary map with ``cv2.dilate`` and a ``skimage.morphology.disk`` footprint; here the same
pixel sets are computed on bit-packed masks (see :mod:`refbench.metrics._bits`), so every count is the same
integer on every device and every float is produced by the same IEEE operations in the same order.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Union

import numpy as np
import torch

from refbench.metrics import _bits

MaskLike = Union[torch.Tensor, np.ndarray]

# Frames are processed in chunks of about this many packed words per map, which keeps the working set
# of the dilation in cache without paying the per-op overhead too often. CPU work runs on numpy uint64
# words (see refbench.metrics._bits), whose per-call overhead is small enough for L2-sized chunks.
_CHUNK_WORDS = 1 << 15
_CHUNK_WORDS_GPU = 1 << 23
_LOCAL = threading.local()


def _workspace(device: torch.device | str) -> _bits.Workspace:
    """This thread's scratch memory for ``device`` (a torch device, or "numpy"; reused across calls; see
    _bits.Workspace)."""
    spaces = getattr(_LOCAL, "spaces", None)
    if spaces is None:
        spaces = _LOCAL.spaces = {}
    key = str(device)
    if key not in spaces:
        spaces[key] = _bits.Workspace(device)
    return spaces[key]


def boundary_radius(height: int, width: int, bound_th: float = 0.008) -> int:
    """Dilation radius of F: ``bound_th`` pixels if >= 1, else ceil(bound_th * ||(H, W)||).

    Same float arithmetic as the official ``np.ceil(bound_th * np.linalg.norm(shape))``: the norm of two
    integers is sqrt of their exact sum of squares, correctly rounded.
    """
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"bound_th >= 1 is a radius in pixels and must be an integer, got {bound_th}")
        return int(bound_th)
    return int(math.ceil(bound_th * math.sqrt(float(height * height + width * width))))


def _as_mask(x: MaskLike, device: torch.device | str | None, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        raise TypeError(f"{name} must be an integer or bool mask (non-zero = foreground), got {x.dtype}")
    if device is not None:
        x = x.to(device)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"{name} must have shape (T, H, W) or (H, W), got {tuple(x.shape)}")
    return x


def _prepare(pred: MaskLike, gt: MaskLike, void: MaskLike | None):
    dev = pred.device if isinstance(pred, torch.Tensor) else (gt.device if isinstance(gt, torch.Tensor) else None)
    p = _as_mask(pred, dev, "pred")
    g = _as_mask(gt, p.device, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    if void is not None:
        v = _as_mask(void, p.device, "void")
        if v.shape != p.shape:
            raise ValueError(f"void shape {tuple(v.shape)} differs from the masks' {tuple(p.shape)}")
        keep = ~v.bool()
        p = p.bool() & keep
        g = g.bool() & keep
    return p, g


def _chunk_frames(height: int, width: int, chunk_words: int) -> int:
    """Frames per chunk so that one packed map holds about ``chunk_words`` words."""
    return max(1, chunk_words // max(height * _bits.n_words(width), 1))


def _j_from_counts(inter: torch.Tensor, union: torch.Tensor) -> torch.Tensor:
    """J = inter / union in float64; union 0 gives 1 (``db_eval_iou``)."""
    union_f = union.to(torch.float64)
    j = inter.to(torch.float64) / torch.where(union == 0, torch.ones_like(union_f), union_f)
    return torch.where(union == 0, torch.ones_like(j), j)


def _f_from_counts(n_fg, n_gt, fg_match, gt_match) -> torch.Tensor:
    """F from boundary counts with the empty-boundary rules of ``f_measure``.

    precision = fg_match / n_fg, recall = gt_match / n_gt; n_fg = 0 < n_gt: (1, 0); n_gt = 0 < n_fg: (0, 1);
    both 0: (1, 1). F = 2 * P * R / (P + R), 0 when P + R = 0.
    """
    f64 = torch.float64
    one = torch.ones_like(n_fg, dtype=f64)
    zero = torch.zeros_like(one)
    prec = fg_match.to(f64) / torch.where(n_fg == 0, one, n_fg.to(f64))
    rec = gt_match.to(f64) / torch.where(n_gt == 0, one, n_gt.to(f64))
    fg0, gt0 = n_fg == 0, n_gt == 0
    prec = torch.where(fg0, one, torch.where(gt0, zero, prec))
    rec = torch.where(gt0, one, torch.where(fg0, zero, rec))
    denom = prec + rec
    f = 2 * prec * rec / torch.where(denom == 0, one, denom)
    return torch.where(denom == 0, zero, f)


def _content_crop(words: torch.Tensor):
    """Rows and word columns of packed (M, T, H, K) masks that can hold a pixel or a boundary pixel of any
    mask, or None if all are empty. A boundary pixel lies on a mask or one pixel above / left of it
    (``_seg2bmap`` looks east and south), so the crop takes one extra row above and one extra word on the
    left."""
    if isinstance(words, np.ndarray):
        occ = np.bitwise_or.reduce(words.reshape(-1, *words.shape[-2:]), axis=0) != 0
        rows = np.flatnonzero(occ.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(occ.any(axis=0))
    else:
        union = words[0]
        for m in words[1:]:
            union = union | m
        occ = union.any(dim=0)
        rows = occ.any(dim=1).nonzero()
        if rows.numel() == 0:
            return None
        cols = occ.any(dim=0).nonzero()
    height, k = occ.shape
    r0, r1 = max(int(rows[0]) - 1, 0), int(rows[-1]) + 1
    c0, c1 = max(int(cols[0]) - 1, 0), int(cols[-1]) + 1
    return slice(r0, r1), slice(c0, c1), r1 == height, c1 == k


def _jf_counts(
    words: Any, width: int, radius: int, want_j: bool, want_f: bool, ws: _bits.Workspace | None = None
) -> Any:
    """Integer counts for one chunk of packed masks ``words`` = (2, T, H, K) (prediction, ground truth;
    numpy uint64 or torch int64): (T, 6) int64 columns [inter, union, n_fg, n_gt, fg_match, gt_match]
    (unrequested columns stay 0), of the same array type."""
    ops = _bits._ops(words)
    n = words.shape[1]
    crop = _content_crop(words)
    if crop is None:
        if isinstance(words, np.ndarray):
            return np.zeros((n, 6), dtype=np.int64)
        return torch.zeros((n, 6), dtype=torch.int64, device=words.device)
    rs, cs, last_row, last_word = crop
    # The crop is copied with one zero guard word after each row, so the dilation can treat rows as one
    # contiguous bit line (see _bits.dilate_disk). maps holds the six bit maps whose set bits are counted;
    # every one is overwritten below, so only the guard words of the cropped masks need zeroing.
    h, k = rs.stop - rs.start, cs.stop - cs.start
    ws = ws or ops.workspace(words)
    maps = ws.get("maps", (6, n, h, k + 1))
    w = maps[4:6]  # the cropped masks are needed until the boundary maps exist; then these slots take matches
    w[..., k] = 0
    w[..., :k] = words[:, :, rs, cs]
    if want_j:
        ops.band(w[0], w[1], maps[0])
        ops.bor(w[0], w[1], maps[1])
    else:
        maps[0:2] = 0
    if want_f:
        bnd = _bits.boundary(w, width, last_row, k - 1 if last_word else None, out=maps[2:4], ws=ws)
        dil = _bits.dilate_disk(bnd, radius, guarded=True, ws=ws)
        ops.band(bnd[0], dil[1], maps[4])  # predicted boundary pixels near the gt boundary
        ops.band(bnd[1], dil[0], maps[5])  # gt boundary pixels near the predicted boundary
    else:
        maps[2:6] = 0
    counts = ops.count(maps, 6 * n).reshape(6, n)
    return counts.T if isinstance(counts, np.ndarray) else counts.t()


def _np_mask(x: torch.Tensor, name: str) -> np.ndarray:
    """A CPU mask tensor as a numpy array (no copy where the dtype allows)."""
    if x.dtype == torch.bool or x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        return x.numpy()
    return (x != 0).numpy()


def _packed_counts(p: np.ndarray, g: np.ndarray, v: np.ndarray | None, width: int, radius: int,
                   want_j: bool, want_f: bool) -> np.ndarray:
    """(T, 6) int64 counts of (T, H, W) numpy masks, packed chunk by chunk into one reused buffer."""
    n_frames, height = p.shape[0], p.shape[1]
    step = _chunk_frames(height, width, _CHUNK_WORDS)
    ws = _workspace("numpy")
    words = ws.get("words", (2, min(step, n_frames), height, _bits.n_words(width)))
    vbuf = ws.get("void_words", (min(step, n_frames), height, _bits.n_words(width))) if v is not None else None
    out = np.empty((n_frames, 6), dtype=np.int64)
    for start in range(0, n_frames, step):
        stop = min(n_frames, start + step)
        chunk = words[:, : stop - start]
        _bits.pack_numpy(p[start:stop], out=chunk[0])
        _bits.pack_numpy(g[start:stop], out=chunk[1])
        if vbuf is not None:
            keep = _bits.pack_numpy(v[start:stop], out=vbuf[: stop - start])
            np.invert(keep, out=keep)
            chunk &= keep
        out[start:stop] = _jf_counts(chunk, width, radius, want_j, want_f, ws)
    return out


def _words_counts(pred_words: Any, gt_words: Any, width: int, radius: int, want_j: bool, want_f: bool) -> Any:
    """(T, 6) int64 counts of already packed (T, H, K) masks, in frame chunks."""
    n_frames, height = pred_words.shape[0], pred_words.shape[1]
    if isinstance(pred_words, np.ndarray):
        step, ws = _chunk_frames(height, width, _CHUNK_WORDS), _workspace("numpy")
        stage = ws.get("words", (2, min(step, n_frames), height, pred_words.shape[2]))
        out = np.empty((n_frames, 6), dtype=np.int64)
        for start in range(0, n_frames, step):
            stop = min(n_frames, start + step)
            chunk = stage[:, : stop - start]
            chunk[0] = pred_words[start:stop]
            chunk[1] = gt_words[start:stop]
            out[start:stop] = _jf_counts(chunk, width, radius, want_j, want_f, ws)
        return out
    chunk_words = _CHUNK_WORDS if pred_words.device.type == "cpu" else _CHUNK_WORDS_GPU
    step, ws = _chunk_frames(height, width, chunk_words), _workspace(pred_words.device)
    parts = []
    for start in range(0, n_frames, step):
        stop = min(n_frames, start + step)
        chunk = torch.stack([pred_words[start:stop], gt_words[start:stop]])
        parts.append(_jf_counts(chunk, width, radius, want_j, want_f, ws))
    return torch.cat(parts)


def _from_counts(counts: Any, want_j: bool, want_f: bool, device: torch.device | str):
    if isinstance(counts, np.ndarray):
        counts = torch.from_numpy(counts)
    counts = counts.to(device)
    j_out = _j_from_counts(counts[:, 0], counts[:, 1]) if want_j else None
    f_out = _f_from_counts(*counts[:, 2:].unbind(1)) if want_f else None
    return j_out, f_out


def jaccard_and_boundary(
    pred: MaskLike,
    gt: MaskLike,
    void: MaskLike | None = None,
    bound_th: float = 0.008,
    *,
    want_j: bool = True,
    want_f: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """J and F per frame for (T, H, W) masks, sharing one packing of each mask.

    pred, gt: (T, H, W) or (H, W), any integer or bool dtype, non-zero = foreground; numpy arrays or torch
    tensors (CPU work runs on numpy words, other devices on torch).
    void: optional mask of the same shape; void pixels are removed from both masks.
    Returns (J, F), each (T,) float64 on the masks' device (None where not requested).
    """
    dev = pred.device if isinstance(pred, torch.Tensor) else (gt.device if isinstance(gt, torch.Tensor) else None)
    if dev is None or dev.type == "cpu":
        p = _as_np(pred, "pred")
        g = _as_np(gt, "gt")
        if p.shape != g.shape:
            raise ValueError(f"pred and gt shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
        v = None
        if void is not None:
            v = _as_np(void, "void")
            if v.shape != p.shape:
                raise ValueError(f"void shape {tuple(v.shape)} differs from the masks' {tuple(p.shape)}")
        n_frames, height, width = p.shape
        radius = boundary_radius(height, width, bound_th)
        if n_frames == 0:
            empty = torch.zeros(0, dtype=torch.float64)
            return (empty if want_j else None), (empty.clone() if want_f else None)
        return _from_counts(_packed_counts(p, g, v, width, radius, want_j, want_f), want_j, want_f, "cpu")
    return _jaccard_and_boundary_torch(pred, gt, void, bound_th, want_j, want_f)


def _jaccard_and_boundary_torch(pred: MaskLike, gt: MaskLike, void: MaskLike | None, bound_th: float,
                                want_j: bool, want_f: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The torch-word path of :func:`jaccard_and_boundary` (every non-CPU device; the tests also run it on
    CPU tensors, so the GPU code is checked where no GPU is present)."""
    p, g = _prepare(pred, gt, void)
    n_frames, height, width = p.shape
    radius = boundary_radius(height, width, bound_th)
    if n_frames == 0:
        empty = torch.zeros(0, dtype=torch.float64, device=p.device)
        return (empty if want_j else None), (empty.clone() if want_f else None)
    step = _chunk_frames(height, width, _CHUNK_WORDS if p.device.type == "cpu" else _CHUNK_WORDS_GPU)
    ws = _workspace(p.device)
    packer = _bits.Packer(min(step, n_frames), height, width, p.device, ws)
    words = ws.get("words", (2, min(step, n_frames), height, _bits.n_words(width)))
    parts = []
    for start in range(0, n_frames, step):
        stop = min(n_frames, start + step)
        chunk = words[:, : stop - start]
        packer.pack(p[start:stop], out=chunk[0])
        packer.pack(g[start:stop], out=chunk[1])
        parts.append(_jf_counts(chunk, width, radius, want_j, want_f, ws))
    return _from_counts(torch.cat(parts), want_j, want_f, p.device)


def jaccard_and_boundary_packed(
    pred_words: Any,
    gt_words: Any,
    width: int,
    bound_th: float = 0.008,
    *,
    want_j: bool = True,
    want_f: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """:func:`jaccard_and_boundary` of masks already packed into words (no void).

    pred_words, gt_words: (T, H, ceil(width / 64)) words of one type -- numpy uint64 (CPU; e.g. from
    :func:`refbench.metrics._bits.pack_numpy` or a decoder that writes words) or torch int64 on any device
    (:func:`refbench.metrics._bits.pack`) -- with zero padding bits. Returns (J, F) as float64 tensors on the
    words' device (CPU for numpy).
    """
    if type(pred_words) is not type(gt_words):
        raise TypeError("pred_words and gt_words must both be numpy arrays or both torch tensors")
    if pred_words.ndim != 3 or tuple(pred_words.shape) != tuple(gt_words.shape):
        raise ValueError(f"expected two (T, H, K) word arrays of one shape, got {tuple(pred_words.shape)} and "
                         f"{tuple(gt_words.shape)}")
    if pred_words.shape[2] != _bits.n_words(width):
        raise ValueError(f"{pred_words.shape[2]} words per row do not hold width {width}")
    if isinstance(pred_words, np.ndarray):
        if pred_words.dtype != np.uint64 or gt_words.dtype != np.uint64:
            raise TypeError("packed numpy masks must be uint64 words")
        device: Any = "cpu"
    else:
        if pred_words.dtype != torch.int64 or gt_words.dtype != torch.int64:
            raise TypeError("packed torch masks must be int64 words")
        device = pred_words.device
        gt_words = gt_words.to(device)
    n_frames, height = pred_words.shape[0], pred_words.shape[1]
    radius = boundary_radius(height, width, bound_th)
    if n_frames == 0:
        empty = torch.zeros(0, dtype=torch.float64, device=device)
        return (empty if want_j else None), (empty.clone() if want_f else None)
    return _from_counts(_words_counts(pred_words, gt_words, width, radius, want_j, want_f), want_j, want_f, device)


def _as_np(x: MaskLike, name: str) -> np.ndarray:
    """A (T, H, W) integer or bool numpy mask from a numpy array or a CPU tensor."""
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex():
            raise TypeError(f"{name} must be an integer or bool mask (non-zero = foreground), got {x.dtype}")
        x = _np_mask(x.detach().cpu(), name)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.dtype.kind not in "biu":
        raise TypeError(f"{name} must be an integer or bool mask (non-zero = foreground), got {x.dtype}")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (T, H, W) or (H, W), got {tuple(x.shape)}")
    return x


def pairwise_jaccard_and_boundary(
    preds: torch.Tensor,
    gts: torch.Tensor,
    void: torch.Tensor | None = None,
    bound_th: float = 0.008,
) -> tuple[torch.Tensor, torch.Tensor]:
    """J and F per frame of every (prediction, ground truth) pair, computing each mask's boundary and
    dilation once instead of once per pair (DAVIS unsupervised scores every proposal against every object).

    preds: (P, T, H, W), gts: (G, T, H, W) masks on one device (non-zero = foreground); void: (T, H, W) or None,
    removed from every mask. Returns (J, F), each (P, G, T) float64, equal to
    ``jaccard_and_boundary(preds[p], gts[g], void, bound_th)`` for every pair.
    """
    if preds.dim() != 4 or gts.dim() != 4 or preds.shape[1:] != gts.shape[1:]:
        raise ValueError(f"expected (P, T, H, W) and (G, T, H, W) masks of one size, got {tuple(preds.shape)} and "
                         f"{tuple(gts.shape)}")
    n_p, n_frames, height, width = preds.shape
    n_g = gts.shape[0]
    device = preds.device
    gts = gts.to(device)
    keep = None
    if void is not None:
        keep = ~void.to(device).bool()
        if keep.shape != preds.shape[1:]:
            raise ValueError(f"void shape {tuple(keep.shape)} differs from the masks' {tuple(preds.shape[1:])}")
    radius = boundary_radius(height, width, bound_th)
    n_masks, k_words = n_p + n_g, _bits.n_words(width)
    counts = torch.zeros((6, n_p, n_g, n_frames), dtype=torch.int64, device=device)
    if n_frames and n_p and n_g:
        chunk_words = _CHUNK_WORDS if device.type == "cpu" else _CHUNK_WORDS_GPU
        step = max(1, _chunk_frames(height, width, chunk_words) // max(1, n_masks // 2))
        ws = _bits.Workspace(device)
        packer = _bits.Packer(min(step, n_frames), height, width, device, ws)
        for start in range(0, n_frames, step):
            stop = min(n_frames, start + step)
            words = torch.empty((n_masks, stop - start, height, k_words), dtype=torch.int64, device=device)
            for i in range(n_masks):
                m = preds[i, start:stop] if i < n_p else gts[i - n_p, start:stop]
                packer.pack(m if keep is None else m.bool() & keep[start:stop], out=words[i])
            counts[:, :, :, start:stop] = _pairwise_counts(words, n_p, width, radius, ws)
    j = _j_from_counts(counts[0], counts[1])
    f = _f_from_counts(counts[2], counts[3], counts[4], counts[5])
    return j, f


def _count_last2(x: Any) -> Any:
    """Set bits of (A, n, h, k) words per (A, n): int64."""
    if isinstance(x, np.ndarray):
        bits = np.bitwise_count(x) if _bits._HAS_BITWISE_COUNT else _bits.popcount_np(x)
        return bits.sum(axis=(2, 3), dtype=np.int64)
    return _bits.popcount(x).sum(dim=(2, 3))


def _pairwise_counts(words: Any, n_p: int, width: int, radius: int, ws: _bits.Workspace) -> Any:
    """(6, P, G, n) counts [inter, union, n_fg, n_gt, fg_match, gt_match] for packed masks ``words`` =
    (P + G, n, H, K) (numpy uint64 or torch int64): predictions first, then ground truths. The crop
    (:func:`_content_crop`) is the content of all masks together (a superset of each pair's), with one zero
    guard word per row for the dilation, as in :func:`_jf_counts`."""
    n_masks, n = words.shape[0], words.shape[1]
    n_g = n_masks - n_p
    is_np = isinstance(words, np.ndarray)
    if is_np:
        out = np.zeros((6, n_p, n_g, n), dtype=np.int64)
    else:
        out = torch.zeros((6, n_p, n_g, n), dtype=torch.int64, device=words.device)
    crop = _content_crop(words)
    if crop is None:
        return out
    rs, cs, last_row, last_word = crop
    h, k = rs.stop - rs.start, cs.stop - cs.start
    if is_np:
        w = np.zeros((n_masks, n, h, k + 1), dtype=np.uint64)
    else:
        w = torch.zeros((n_masks, n, h, k + 1), dtype=torch.int64, device=words.device)
    w[..., :k] = words[:, :, rs, cs]
    bnd = _bits.boundary(w, width, last_row, k - 1 if last_word else None, out=_bits._ops(w).empty_like(w), ws=ws)
    dil = _bits.dilate_disk(bnd, radius, guarded=True, ws=ws)
    dil = dil.copy() if is_np else dil.clone()
    n_bnd = _count_last2(bnd)  # (P + G, n)
    for g in range(n_g):
        gw, gb, gd = w[n_p + g], bnd[n_p + g], dil[n_p + g]
        out[0, :, g] = _count_last2(w[:n_p] & gw)
        out[1, :, g] = _count_last2(w[:n_p] | gw)
        out[2, :, g] = n_bnd[:n_p]
        out[3, :, g] = n_bnd[n_p + g]
        out[4, :, g] = _count_last2(bnd[:n_p] & gd)  # predicted boundary near the gt's
        out[5, :, g] = _count_last2(dil[:n_p] & gb)  # gt boundary near the prediction's
    return out


def pairwise_jaccard_and_boundary_packed(
    pred_words: Any, gt_words: Any, width: int, bound_th: float = 0.008
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pairwise_jaccard_and_boundary` of masks already packed into words: (P, T, H, K) and
    (G, T, H, K), numpy uint64 (CPU) or torch int64 on one device (void already removed). Returns (J, F),
    each (P, G, T) float64 (a CPU tensor for numpy words)."""
    n_p, n_frames, height, _k = pred_words.shape
    n_g = gt_words.shape[0]
    radius = boundary_radius(height, width, bound_th)
    is_np = isinstance(pred_words, np.ndarray)
    device: Any = "cpu" if is_np else pred_words.device
    if is_np:
        counts: Any = np.zeros((6, n_p, n_g, n_frames), dtype=np.int64)
    else:
        counts = torch.zeros((6, n_p, n_g, n_frames), dtype=torch.int64, device=device)
    if n_frames and n_p and n_g:
        chunk_words = _CHUNK_WORDS if device == "cpu" or getattr(device, "type", "") == "cpu" else _CHUNK_WORDS_GPU
        step = max(1, _chunk_frames(height, width, chunk_words) // max(1, (n_p + n_g) // 2))
        ws = _workspace("numpy") if is_np else _bits.Workspace(device)
        for start in range(0, n_frames, step):
            stop = min(n_frames, start + step)
            if is_np:
                words = np.concatenate([pred_words[:, start:stop], gt_words[:, start:stop]])
            else:
                words = torch.cat([pred_words[:, start:stop], gt_words[:, start:stop]])
            counts[:, :, :, start:stop] = _pairwise_counts(words, n_p, width, radius, ws)
    if is_np:
        counts = torch.from_numpy(counts)
    return _j_from_counts(counts[0], counts[1]), _f_from_counts(counts[2], counts[3], counts[4], counts[5])


def jaccard(pred: MaskLike, gt: MaskLike, void: MaskLike | None = None) -> torch.Tensor:
    """Region similarity J per frame (davis2017 ``db_eval_iou``).

    pred, gt: (T, H, W) masks, any integer or bool dtype, non-zero = foreground. Returns (T,) float64:
    |P & G & ~V| / |(P | G) & ~V|, and 1 where that union is empty.
    """
    j, _ = jaccard_and_boundary(pred, gt, void, want_f=False)
    return j


def boundary_f(pred: MaskLike, gt: MaskLike, void: MaskLike | None = None, bound_th: float = 0.008) -> torch.Tensor:
    """Boundary F-measure per frame (davis2017 ``db_eval_boundary``).

    pred, gt: (T, H, W) masks, any integer or bool dtype, non-zero = foreground. Returns (T,) float64.
    Boundaries follow ``_seg2bmap``; matches count boundary pixels within the disk of radius
    ceil(bound_th * ||(H, W)||) of the other boundary.
    """
    _, f = jaccard_and_boundary(pred, gt, void, bound_th, want_j=False)
    return f
