"""MOSE v2's per-frame measures and its per-object / global table, as MOSE-api ``MOSEv2/sam2_rcms/tools/score.py``.

Reference: henghuiding/MOSE-api commit 241977ae2ceceee054fa2a2c8a2690838c451369, ``MOSEv2/sam2_rcms/tools/score.py``
and ``metricsv2.py`` (``db_eval_iou``, ``db_eval_boundary(..., bound_th=0.1, bound_mode='area')``,
``f_measure_adaptive``, ``f_measure_func``, ``merge_chunk_results``). Described in ``docs/protocols.md#mosev2``;
checked exactly on ``shared/data/mosev2_golden``.

Per frame, for one object with prediction P and ground truth G (binary):

* **smoothed J** = (|P and G| + 1) / (|P or G| + 1), and 1 when the union is empty;
* d = 0.008 * ||(H, W)|| (unrounded). Adaptive radius a = ceil(0.1 * sqrt(|G|)) when G is non-empty, else
  ceil(0.1 * ||(H, W)||); then ``min(d, a)``. If a < d: **F** (standard) dilates with radius ceil(d) and **F_new**
  with radius a; otherwise both dilate with the unrounded radius d. The footprint is skimage's ``disk(radius)``:
  for a non-integer radius its grid is ``arange(-r, r + 1)``, so the disk is off-centre (``cv2.dilate`` anchors it
  at index ``size // 2``). Boundaries, matches and the empty cases as DAVIS ``f_measure``.

Everything is computed on bit-packed masks (:mod:`refbench.metrics._bits`); every disk, centred or not, is
dilated by :func:`dilate_footprint`, exact at the image borders by construction; counts are exact integers on
every device and the floats follow the official IEEE operations, so the values are bit-identical to the official
ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
import torch

from refbench.metrics import _bits
from refbench.metrics.frame import _as_mask, _content_crop, _f_from_counts

MaskLike = Union[torch.Tensor, np.ndarray]

#: ``score.py`` passes ``bound_th=0.1`` with ``bound_mode='area'``; the standard radius keeps DAVIS's 0.008.
AREA_FACTOR = 0.1
DIAGONAL_FACTOR = 0.008


# ----------------------------------------------------------------------------------------------
# Footprints and dilation
# ----------------------------------------------------------------------------------------------


def disk_footprint(radius: float) -> np.ndarray:
    """skimage ``disk(radius)`` (strict radius, no decomposition): ``X**2 + Y**2 <= radius**2`` on the grid
    ``arange(-radius, radius + 1)``, as a bool array. For an integer radius it is the usual centred disk."""
    r = np.float64(radius)
    grid = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(grid, grid)
    return (xx**2 + yy**2) <= r**2


def footprint_rows(footprint: np.ndarray) -> list[tuple[int, int, int]]:
    """``[(dy, dx_lo, dx_hi), ...]`` of a row-convex footprint placed as ``cv2.dilate`` places it (anchor at
    ``(rows // 2, cols // 2)``): the dilation of ``src`` is ``out[y, x] = OR src[y + dy, x + dx]`` over the set
    offsets (OpenCV does not reflect the kernel)."""
    fp = np.asarray(footprint, dtype=bool)
    if fp.ndim != 2:
        raise ValueError(f"footprint must be 2-D, got shape {fp.shape}")
    ay, ax = fp.shape[0] // 2, fp.shape[1] // 2
    rows = []
    for j in range(fp.shape[0]):
        ks = np.flatnonzero(fp[j])
        if ks.size == 0:
            continue
        if ks[-1] - ks[0] + 1 != ks.size:
            raise ValueError("footprint rows must be contiguous runs")
        rows.append((j - ay, int(ks[0]) - ax, int(ks[-1]) - ax))
    return rows


def dilate_footprint(words: torch.Tensor, rows: Sequence[tuple[int, int, int]]) -> torch.Tensor:
    """Dilate packed ``(..., H, K)`` maps by a footprint given as :func:`footprint_rows` (cv2.dilate semantics:
    pixels outside the image never count).

    Every image row is laid out between ``g`` zero guard words on each side and all rows of a map form one bit line
    (``64 g`` > the footprint's reach). A horizontal displacement within the reach then never carries a bit into
    another row, and the guard words keep the bits that a partial result moves outside the image, so a window partly
    outside it is exact. The row segments ``[lo, hi]`` are built narrowest first: each starts as the map shifted by
    ``lo`` (or continues the previous segment when that one nests in it) and is widened in place by ``cur |= east_b
    (cur)`` / ``west_a(cur)`` with b, a <= its width, so every intermediate displacement stays within ``[lo, hi]``;
    a finished segment is OR-ed into the result at the vertical offsets of its footprint rows right away."""
    *lead, height, k = words.shape
    out = torch.zeros_like(words)
    if not rows:
        return out
    reach = max(max(abs(lo), abs(hi)) for _dy, lo, hi in rows)
    g = reach // _bits.WORD + 1
    stride = g + k
    line = torch.zeros((*lead, height * stride + g), dtype=words.dtype, device=words.device)
    line[..., : height * stride].view(*lead, height, stride)[..., g:] = words
    offsets: dict[tuple[int, int], list[int]] = {}
    for dy, lo, hi in rows:
        if abs(dy) < height:
            offsets.setdefault((lo, hi), []).append(dy)
    cur: torch.Tensor | None = None
    c_lo = c_hi = 0
    for lo, hi in sorted(offsets, key=lambda s: (s[1] - s[0], s[0])):
        if cur is None or not (c_lo >= lo and c_hi <= hi):
            if lo > 0:
                cur = _bits.take_east(line, lo)
            elif lo < 0:
                cur = _bits.take_west(line, -lo)
            else:
                cur = line.clone()
            c_lo = c_hi = lo
        while c_lo > lo or c_hi < hi:
            if c_hi < hi:
                b = min(hi - c_hi, c_hi - c_lo + 1)
                cur |= _bits.take_east(cur, b)
                c_hi += b
            if c_lo > lo:
                a = min(c_lo - lo, c_hi - c_lo + 1)
                cur |= _bits.take_west(cur, a)
                c_lo -= a
        seg = cur[..., : height * stride].view(*lead, height, stride)[..., g:]
        for dy in offsets[(lo, hi)]:
            if dy == 0:
                out |= seg
            elif dy > 0:
                out[..., : height - dy, :] |= seg[..., dy:, :]
            else:
                out[..., -dy:, :] |= seg[..., : height + dy, :]
    return out


def dilate(words: torch.Tensor, radius: float) -> torch.Tensor:
    """Dilate packed ``(..., H, K)`` maps by skimage ``disk(radius)`` as cv2.dilate applies it, for any radius >= 0
    (integer radii give the usual centred disk, fractional ones score.py's off-centre one)."""
    return dilate_footprint(words, footprint_rows(disk_footprint(float(radius))))


def _content(maps: torch.Tensor) -> tuple[slice, slice] | None:
    """Rows and word columns of packed ``(2, n, H, K)`` maps that hold any set bit, or None. Dilating only that box
    is exact for the matches: every source pixel and every pixel the result is AND-ed with lie inside it."""
    occ = (maps[0] | maps[1]).ne(0).any(dim=0)
    rows = occ.any(dim=1).nonzero()
    if rows.numel() == 0:
        return None
    cols = occ.any(dim=0).nonzero()
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


# ----------------------------------------------------------------------------------------------
# Per frame
# ----------------------------------------------------------------------------------------------


def diagonal_radius(height: int, width: int) -> float:
    """d = 0.008 * ||(H, W)|| as ``0.008 * np.linalg.norm(shape)`` computes it (unrounded)."""
    return float(DIAGONAL_FACTOR * np.linalg.norm((height, width)))


def radii(area: int, height: int, width: int) -> tuple[float, float]:
    """(radius of F, radius of F_new) of one frame whose ground truth has ``area`` pixels (``f_measure_adaptive``)."""
    d = DIAGONAL_FACTOR * np.linalg.norm((height, width))
    if area > 0:
        a = np.ceil(AREA_FACTOR * np.sqrt(np.int64(area)))
    else:
        a = np.ceil(AREA_FACTOR * np.linalg.norm((height, width)))
    bound = min(d, a)
    if bound < d:
        return float(np.ceil(d)), float(bound)
    return float(d), float(d)


@dataclass(frozen=True)
class FrameScores:
    """Per-frame MOSE v2 values of one object: each (T,) numpy array (float64; ``empty_gt`` bool)."""

    J: np.ndarray
    F_new: np.ndarray
    F: np.ndarray
    empty_gt: np.ndarray


def frame_scores(pred: MaskLike, gt: MaskLike, device: torch.device | str | None = None) -> FrameScores:
    """Smoothed J, F_new, F and the empty-GT flag per frame (module doc).

    pred, gt: (T, H, W) or (H, W) masks of one object, any integer or bool dtype, non-zero = foreground.
    """
    p = _as_mask(pred, device, "pred")
    g = _as_mask(gt, p.device, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    n, height, width = p.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.float64)
        return FrameScores(empty, empty.copy(), empty.copy(), np.zeros(0, dtype=bool))
    words = _bits.pack(torch.stack([p.bool(), g.bool()]))  # (2, T, H, K)
    crop = _content_crop(words)  # every pixel and boundary pixel of both masks, one row above / word left spare
    if crop is None:  # both empty everywhere: J = F = 1
        ones = np.ones(n, dtype=np.float64)
        return FrameScores(J=ones, F_new=ones.copy(), F=ones.copy(), empty_gt=np.ones(n, dtype=bool))
    rs, cs, last_row, last_word = crop
    words = words[:, :, rs, cs].contiguous()
    inter = _bits.count(words[0] & words[1])
    union = _bits.count(words[0] | words[1])
    area = _bits.count(words[1]).cpu().numpy()
    j = (inter + 1).to(torch.float64) / (union + 1).to(torch.float64)
    j = torch.where(union == 0, torch.ones_like(j), j.clamp(0.0, 1.0))

    bnd = _bits.boundary(words, width, last_row=last_row, last_word=words.shape[-1] - 1 if last_word else None)
    n_fg = _bits.count(bnd[0])
    n_gt = _bits.count(bnd[1])
    per_frame = [radii(int(a), height, width) for a in area]
    matches = {name: (torch.zeros(n, dtype=torch.int64, device=p.device),
                      torch.zeros(n, dtype=torch.int64, device=p.device)) for name in ("F", "F_new")}
    by_radius: dict[float, list[int]] = {}
    for t, (r_std, r_new) in enumerate(per_frame):
        by_radius.setdefault(r_std, []).append(t)
        by_radius.setdefault(r_new, []).append(t)
    for r, frames in by_radius.items():
        idx = torch.tensor(sorted(set(frames)), dtype=torch.long, device=p.device)
        sub = bnd[:, idx]
        box = _content(sub)
        if box is None:  # no boundary pixel in any of these frames: no match to count
            continue
        sub = sub[:, :, box[0], box[1]]
        dil = dilate(sub, r)
        fg_match = _bits.count(sub[0] & dil[1])
        gt_match = _bits.count(sub[1] & dil[0])
        for name, k in (("F", 0), ("F_new", 1)):
            use = [i for i, t in enumerate(idx.tolist()) if per_frame[t][k] == r]
            if use:
                sel = torch.tensor(use, dtype=torch.long, device=p.device)
                matches[name][0][idx[sel]] = fg_match[sel]
                matches[name][1][idx[sel]] = gt_match[sel]
    f = _f_from_counts(n_fg, n_gt, *matches["F"])
    f_new = _f_from_counts(n_fg, n_gt, *matches["F_new"])
    return FrameScores(J=j.cpu().numpy(), F_new=f_new.cpu().numpy(), F=f.cpu().numpy(), empty_gt=area == 0)


# ----------------------------------------------------------------------------------------------
# Per object and global
# ----------------------------------------------------------------------------------------------

#: The order of ``merge_chunk_results``'s list.
OBJECT_KEYS = ("J", "F_new", "F", "disappear_J", "disappear_F_new", "reappear_J", "reappear_F_new")


def object_scores(j: Sequence[float], f_new: Sequence[float], f: Sequence[float],
                  empty_gt: Sequence[bool]) -> dict[str, Any]:
    """One object's values from its scored frames, as ``merge_chunk_results`` computes them (fractions; None where
    the object has no disappearance / reappearance segment). No scored frame gives J = F = 0 (``[0, 0, 0, None
    ...]``, ints, as the official list)."""
    if len(j) == 0:
        return {"J": 0, "F_new": 0, "F": 0, "disappear_J": None, "disappear_F_new": None, "reappear_J": None,
                "reappear_F_new": None}
    j_arr = np.asarray(j, dtype=np.float64)
    fn_arr = np.asarray(f_new, dtype=np.float64)
    f_arr = np.asarray(f, dtype=np.float64)
    empty = np.asarray(empty_gt, dtype=bool)
    out: dict[str, Any] = {"J": j_arr.mean(), "F_new": fn_arr.mean(), "F": f_arr.mean()}
    disappear = np.where(~empty[:-1] & empty[1:])[0] + 1
    if empty[0]:
        disappear = np.insert(disappear, 0, 0)
    reappear = np.where(empty[:-1] & ~empty[1:])[0] + 1
    segs = []
    for i, start in enumerate(disappear):
        end = reappear[i] if i < len(reappear) else len(empty)
        if start > 0:  # a segment from the first scored frame is not a disappearance
            segs.append((j_arr[start:end].mean(), fn_arr[start:end].mean()))
    out["disappear_J"] = np.mean([s[0] for s in segs]) if segs else None
    out["disappear_F_new"] = np.mean([s[1] for s in segs]) if segs else None
    segs = []
    for i, start in enumerate(reappear):
        end = disappear[i + 1] if i + 1 < len(disappear) else len(empty)
        segs.append((j_arr[start:end].mean(), fn_arr[start:end].mean()))
    out["reappear_J"] = np.mean([s[0] for s in segs]) if segs else None
    out["reappear_F_new"] = np.mean([s[1] for s in segs]) if segs else None
    return out


def _r2(value: Any) -> Any:
    return None if value is None else round(value * 100, 2)


def object_row(scores: dict[str, Any]) -> dict[str, Any]:
    """The object's ``metrics.json`` entry (values rounded to 2 decimals in percent, official names)."""
    j, fn, f = scores["J"], scores["F_new"], scores["F"]
    dj, df, rj, rf = (scores[k] for k in ("disappear_J", "disappear_F_new", "reappear_J", "reappear_F_new"))
    return {
        "J&F_new": round((j + fn) / 2 * 100, 2),
        "J": _r2(j),
        "F_new": _r2(fn),
        "disappear_J&F_new": round((dj + df) / 2 * 100, 2) if dj is not None and df is not None else None,
        "reappear_J&F_new": round((rj + rf) / 2 * 100, 2) if rj is not None and rf is not None else None,
        "F": _r2(f),
        "J&F": round((j + f) / 2 * 100, 2),
    }


def _mean(values: list[Any]) -> Any:
    if not values:
        return np.float64("nan")
    return np.mean(values)


def global_scores(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The printed table of ``score.py`` from the per-object values in order (percent, rounded to 2 decimals),
    plus its ``Copy-Paste`` line. An empty list of disappearances gives NaN, as ``np.mean([])``."""
    if not objects:
        raise ValueError("mosev2: no objects to score")
    j = [o["J"] for o in objects]
    fn = [o["F_new"] for o in objects]
    f = [o["F"] for o in objects]
    dj = [o["disappear_J"] for o in objects if o["disappear_J"] is not None]
    df = [o["disappear_F_new"] for o in objects if o["disappear_F_new"] is not None]
    rj = [o["reappear_J"] for o in objects if o["reappear_J"] is not None]
    rf = [o["reappear_F_new"] for o in objects if o["reappear_F_new"] is not None]
    mj, mfn, mf = np.mean(j), np.mean(fn), np.mean(f)
    table = {
        "J&F_new": round((mj + mfn) / 2 * 100, 2),
        "J": round(mj * 100, 2),
        "F_new": round(mfn * 100, 2),
        "disappear_J&F_new": round((_mean(dj) + _mean(df)) / 2 * 100, 2),
        "reappear_J&F_new": round((_mean(rj) + _mean(rf)) / 2 * 100, 2),
        "F": round(mf * 100, 2),
        "J&F": round((mj + mf) / 2 * 100, 2),
    }
    table = {k: float(v) for k, v in table.items()}
    table["Copy-Paste"] = ",".join(f"{table[k]:.1f}" for k in ("J&F_new", "J", "F_new", "disappear_J&F_new",
                                                              "reappear_J&F_new", "F", "J&F"))
    return table


__all__ = ["FrameScores", "OBJECT_KEYS", "diagonal_radius", "dilate", "dilate_footprint", "disk_footprint",
           "footprint_rows", "frame_scores", "global_scores", "object_row", "object_scores", "radii"]
