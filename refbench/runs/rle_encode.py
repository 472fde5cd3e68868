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


_U64 = np.uint64


def _changes_below(a: np.ndarray, w: int) -> np.ndarray:
    """Flat positions p of the row-major 0/1 bytes ``a`` (rows of ``w``) where a[p] != a[p + w], found eight
    bytes at a time (XOR of the frame with itself one row down, as 64-bit words; masks change in few places)."""
    n = a.size - w
    n8 = n // 8 * 8
    x = np.bitwise_xor(a[w : w + n8].view(_U64), a[:n8].view(_U64))
    words = np.flatnonzero(x != 0)
    sub = np.flatnonzero(x.view(np.uint8).reshape(-1, 8)[words])
    pos = words[sub >> 3] * 8 + (sub & 7)
    if n8 < n:
        pos = np.concatenate([pos, np.flatnonzero(a[w + n8 :] != a[n8:n]) + n8])
    return pos


def rle_counts(frame: np.ndarray) -> np.ndarray:
    """Column-major run lengths of an (H, W) mask (non-zero = 1), starting with a run of zeros (possibly 0),
    as pycocotools' ``rleEncode``: int64 array summing to H * W."""
    h, w = frame.shape
    n = h * w
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    m = frame if frame.dtype == np.bool_ else frame != 0
    a = np.ascontiguousarray(m).reshape(-1).view(np.uint8)
    ys, xs = np.divmod(_changes_below(a, w), w)  # the value changes inside a column, at row ys + 1
    row0, row_last = a[:w], a[n - w :]
    tops = np.flatnonzero(row0[1:] != row_last[:-1]) + 1  # a column starts with another value than the last ended
    changes = np.concatenate([xs * h + ys + 1, tops * h])
    changes.sort()
    first_one = bool(a[0])
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
    m = counts.size
    if m == 0:
        return ""
    x = counts.astype(np.int64, copy=True)
    if m > 3:
        x[3:] -= counts[1:-2]
    chars = np.empty((m, 8), dtype=np.int64)  # up to 8 groups of 5 bits: enough for any 32-bit count
    keep = np.zeros((m, 8), dtype=bool)
    active = np.ones(m, dtype=bool)
    for g in range(8):
        c = x & 0x1F
        x >>= 5  # arithmetic, as on the C long
        more = np.where((c & 0x10) != 0, x != -1, x != 0)
        np.add(np.where(more, c | 0x20, c), 48, out=chars[:, g])
        keep[:, g] = active
        active &= more
        if not active.any():
            return chars[:, : g + 1][keep[:, : g + 1]].astype(np.uint8).tobytes().decode("ascii")
    raise ValueError("rle_string: a count does not fit in 40 bits")  # pragma: no cover - H * W < 2**40


def encode_frame(frame: np.ndarray) -> str:
    """The COCO compressed RLE string of one (H, W) row-major mask (pycocotools' ``counts``, decoded)."""
    return rle_string(rle_counts(frame))


__all__ = ["encode_frame", "rle_counts", "rle_string"]
