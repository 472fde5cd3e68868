"""COCO compressed RLE of row-major masks, vectorised: the strings pycocotools writes, without its transpose.

pycocotools encodes column-major (Fortran) masks; a model's (T, H, W) C-order masks would need a transposing
copy per frame first, which costs more than the encoding. Here the runs are read off the row-major frame
directly: a value changes along the column-major order where a pixel differs from the one above it
(``m[1:] != m[:-1]``) or, at the top of a column, from the bottom of the previous column. Sorting those
positions (a few thousand for a mask) gives the run lengths; the COCO string of the run lengths
(``maskApi.c::rleToString``: each count minus the count two before it, from the fourth on, in 5-bit groups with
a continuation bit, offset by 48) is computed for all counts at once. The tests compare every string with
pycocotools' byte for byte.
"""

from __future__ import annotations

import numpy as np


def _sparse_flatnonzero(a: np.ndarray) -> np.ndarray:
    """``numpy.flatnonzero`` of a 1-D bool array, eight bytes at a time (masks change in few places)."""
    n8 = a.size // 8 * 8
    words = np.flatnonzero(a[:n8].view(np.uint64) != 0)
    sub = np.flatnonzero(a[:n8].view(np.uint8).reshape(-1, 8)[words])
    pos = words[sub >> 3] * 8 + (sub & 7)
    if n8 < a.size:
        pos = np.concatenate([pos, np.flatnonzero(a[n8:]) + n8])
    return pos


def rle_counts(frame: np.ndarray) -> np.ndarray:
    """Column-major run lengths of an (H, W) mask (non-zero = 1), starting with a run of zeros (possibly 0),
    as pycocotools' ``rleEncode``: int64 array summing to H * W."""
    h, w = frame.shape
    n = h * w
    m = frame if frame.dtype == np.bool_ else frame != 0
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    flat = _sparse_flatnonzero((m[1:] != m[:-1]).reshape(-1))  # value changes inside a column, at row y + 1
    ys, xs = np.divmod(flat, w)
    inside = xs * h + ys + 1
    tops = np.flatnonzero(m[0, 1:] != m[-1, :-1]) + 1  # a column starts with another value than the last ended
    changes = np.concatenate([inside, tops * h])
    changes.sort()
    first_one = bool(m[0, 0])
    counts = np.empty(changes.size + 1 + first_one, dtype=np.int64)
    if first_one:
        counts[0] = 0
    bounds = np.empty(changes.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n
    bounds[1:-1] = changes
    np.subtract(bounds[1:], bounds[:-1], out=counts[int(first_one):])
    return counts


def rle_string(counts: np.ndarray) -> str:
    """The COCO compressed string of run lengths (``rleToString``), for all counts at once."""
    if counts.size == 0:
        return ""
    x = counts.astype(np.int64, copy=True)
    if x.size > 3:
        x[3:] -= counts[1:-2].astype(np.int64)
    groups = []
    active = np.ones(x.size, dtype=bool)
    while active.any():
        c = x & 0x1F
        x >>= 5  # arithmetic, as on the C long
        more = np.where((c & 0x10) != 0, x != -1, x != 0)
        groups.append((np.where(more, c | 0x20, c) + 48, active.copy()))
        active &= more
    chars = np.stack([g for g, _ in groups], axis=1)
    keep = np.stack([a for _, a in groups], axis=1)
    return chars[keep].astype(np.uint8).tobytes().decode("ascii")


def encode_frame(frame: np.ndarray) -> str:
    """The COCO compressed RLE string of one (H, W) row-major mask (pycocotools' ``counts``, decoded)."""
    return rle_string(rle_counts(frame))


__all__ = ["encode_frame", "rle_counts", "rle_string"]
