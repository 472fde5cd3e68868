"""COCO run-length encoding: one validating reader for every RLE refbench decodes.

pycocotools decodes whatever it is given: a ``counts`` string whose runs add up to less than H x W leaves the
rest of its output buffer uninitialised (the same command then scores differently from run to run), and a
string that ends inside a value or holds characters outside the alphabet is read past its end. So every RLE --
predictions, ground truth (``mask_dict.json``, ``instances.json``), the run store's payloads -- goes through
:func:`check_rle` first, and only a well-formed RLE reaches the decoder.

The compressed ``counts`` format (pycocotools ``maskApi.c``, ``rleToString`` / ``rleFrString``): each value is
written in 6-bit characters offset by 48 (``'0'`` .. ``'o'``), least significant 5 bits first; bit 0x20 of a
character says another character of the same value follows, and bit 0x10 of a value's last character is its
sign. From the fourth value on (index > 2) each value is stored as the difference to the value two places
back, so the runs are a cumulative sum over each parity class of indices. Uncompressed RLEs carry ``counts``
as a list of non-negative ints. Runs alternate 0 and 1, starting with 0, in column-major (Fortran) order.

:func:`parse_counts` turns either form into the run lengths (an ``int64`` array, vectorised with numpy);
:func:`check_rle` adds the checks on ``size`` and the total; :func:`decode_rle` decodes a checked RLE to an
``(H, W)`` uint8 0/1 array, bit-identical to ``pycocotools.mask.decode``; :func:`decode_rle_words` decodes it
straight into the scorers' bit-packed words (:func:`runs_to_words`: no dense mask, no transposed copy). Errors are
:class:`~refbench.errors.RefbenchInputError` (or the class the caller passes, e.g. ``DatasetError`` for ground
truth) with the caller's ``where`` (file, key, frame) in front of the reason.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from refbench.errors import RefbenchInputError

#: the largest frame an RLE may describe (pixels): 2^29 keeps every run inside pycocotools' 32-bit arithmetic
MAX_RLE_PIXELS = 1 << 29
#: a value of a compressed string has at most this many characters (6 x 5 bits: runs below 2^29)
_MAX_CHUNKS = 6


def _fail(error: type[Exception], where: str, why: str) -> Exception:
    return error(f"{where}: {why}")


def parse_counts(counts: Any, where: str = "RLE", error: type[Exception] = RefbenchInputError) -> np.ndarray:
    """The run lengths of a COCO RLE ``counts`` (a compressed ``str`` / ``bytes``, or a list of ints), as an
    ``int64`` array. Raises ``error`` naming ``where`` on a malformed string (a character outside ``'0'``..``'o'``,
    a value cut off at the end, a value too long), a non-integer entry, or a negative run. The total is not
    checked here (:func:`check_rle` does)."""
    if isinstance(counts, list):
        if not all(type(v) is int for v in counts):  # bool, float, str, None are not run lengths
            bad = next(v for v in counts if type(v) is not int)
            raise _fail(error, where, f"RLE counts list holds {bad!r}, not a run length (a non-negative integer)")
        if any(v < 0 or v > MAX_RLE_PIXELS for v in counts):
            bad = next(v for v in counts if v < 0 or v > MAX_RLE_PIXELS)
            raise _fail(error, where, f"RLE counts list holds the run {bad}, outside [0, {MAX_RLE_PIXELS}]")
        return np.asarray(counts, dtype=np.int64)
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise _fail(error, where, "RLE counts string holds non-ASCII characters") from None
    if not isinstance(counts, (bytes, bytearray)):
        raise _fail(error, where, f"RLE counts must be a string or a list of run lengths, got {type(counts).__name__}")
    if not counts:
        return np.zeros(0, dtype=np.int64)
    c = np.frombuffer(bytes(counts), dtype=np.uint8).astype(np.int64) - 48
    bad = (c < 0) | (c > 63)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(error, where, f"RLE counts string holds {chr(c[i] + 48)!r} at offset {i}, outside the "
                                  "COCO alphabet '0'..'o'")
    more = (c & 0x20) != 0
    if more[-1]:
        raise _fail(error, where, "RLE counts string ends inside a value (truncated)")
    ends = np.flatnonzero(~more)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    nchunks = ends - starts + 1
    if int(nchunks.max()) > _MAX_CHUNKS:
        i = int(np.argmax(nchunks > _MAX_CHUNKS))
        raise _fail(error, where, f"RLE counts string: value {i} has {int(nchunks[i])} characters, more than a "
                                  f"run below 2^29 needs")
    k = np.arange(c.size, dtype=np.int64) - np.repeat(starts, nchunks)
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    neg = (c[ends] & 0x10) != 0
    x[neg] -= np.left_shift(1, 5 * nchunks[neg])
    # index > 2 adds the value two places back: a cumulative sum over each parity class (0 stands alone)
    if x.size > 3:
        np.cumsum(x[1::2], out=x[1::2])
        np.cumsum(x[2::2], out=x[2::2])
    if x.size and int(x.min()) < 0:
        i = int(np.argmax(x < 0))
        raise _fail(error, where, f"RLE counts string decodes to a negative run ({int(x[i])} at run {i})")
    return x


def rle_size(rle: Any, where: str, error: type[Exception] = RefbenchInputError) -> tuple[int, int]:
    """``(H, W)`` of an RLE's ``size``: two positive integers, at most :data:`MAX_RLE_PIXELS` pixels."""
    size = rle.get("size") if isinstance(rle, dict) else None
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise _fail(error, where, f"RLE 'size' must be [H, W], got {size!r}")
    if not all(type(v) is int for v in size):
        raise _fail(error, where, f"RLE 'size' must be two integers [H, W], got {list(size)!r}")
    h, w = size
    if h < 1 or w < 1 or h * w > MAX_RLE_PIXELS:
        raise _fail(error, where, f"RLE 'size' {[h, w]} is not a frame size (each >= 1, at most "
                                  f"{MAX_RLE_PIXELS} pixels)")
    return h, w


def check_rle(rle: Any, where: str, size: Sequence[int] | None = None,
              error: type[Exception] = RefbenchInputError) -> tuple[tuple[int, int], np.ndarray]:
    """Validate one COCO RLE ``{"size": [H, W], "counts": str | [int, ...]}``; returns ``((H, W), runs)``.

    ``size``: the frame size the dataset expects, ``(H, W)``; a different ``size`` in the RLE is an error.
    Every failure raises ``error`` (default :class:`~refbench.errors.RefbenchInputError`) as
    ``"<where>: <reason>"``: not a dict, ``size`` not two positive integers or not the expected size,
    malformed ``counts`` (:func:`parse_counts`), runs that do not add up to exactly H x W."""
    if not isinstance(rle, dict):
        raise _fail(error, where, f"expected a COCO RLE {{'size': [H, W], 'counts': ...}}, got "
                                  f"{type(rle).__name__} {_short(rle)}")
    if "counts" not in rle or "size" not in rle:
        raise _fail(error, where, f"COCO RLE needs 'size' and 'counts', got keys {sorted(map(str, rle))}")
    h, w = rle_size(rle, where, error)
    if size is not None and (h, w) != (int(size[0]), int(size[1])):
        raise _fail(error, where, f"RLE size {h}x{w} (HxW) differs from the frame size {int(size[0])}x"
                                  f"{int(size[1])}")
    runs = parse_counts(rle["counts"], where, error)
    total = int(runs.sum())
    if total != h * w:
        raise _fail(error, where, f"RLE runs add up to {total} pixels, not H x W = {h} x {w} = {h * w}"
                                  + (" (counts truncated?)" if total < h * w else ""))
    return (h, w), runs


def runs_to_mask(runs: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(H, W)`` uint8 0/1 mask (C order) of checked run lengths (column-major, starting with 0)."""
    values = np.zeros(runs.size, dtype=np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, runs)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def runs_to_words(runs: np.ndarray, h: int, w: int, out: np.ndarray | None = None) -> np.ndarray:
    """``(H, ceil(W / 64))`` uint64 words of checked run lengths: bit ``x % 64`` of word ``x // 64`` of row y
    is pixel (y, x) (:func:`refbench.metrics._bits.pack_numpy`'s layout), the same bits as packing
    :func:`runs_to_mask`.

    COCO runs are column-major, so a foreground run covers a vertical segment of each column it crosses. A
    segment of column x from row y0 to row y1 (exclusive) toggles bit x % 64 of word x // 64 at rows y0 and
    y1 of a difference array; an XOR prefix over the rows turns the toggles into the mask. Toggles that meet
    at one word (adjacent runs, segments of neighbouring columns) combine by XOR, which is what the prefix
    needs. Work is proportional to the number of column segments, not to H x W. ``out``: a C-contiguous
    uint64 array of the result's shape to write into (it is overwritten)."""
    nw = (w + 63) // 64
    if out is None:
        out = np.empty((h, nw), dtype=np.uint64)
    elif out.shape != (h, nw) or out.dtype != np.uint64 or not out.flags.c_contiguous:
        raise ValueError(f"runs_to_words: out must be C-contiguous uint64 of shape {(h, nw)}")
    ends = np.cumsum(runs)
    starts = ends[1::2] - runs[1::2]  # foreground runs: odd indices
    ends = ends[1::2]
    keep = ends > starts
    if not keep.all():
        starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        out.fill(0)
        return out
    first = starts // h
    last = (ends - 1) // h
    n = last - first + 1
    if int(n.max()) == 1:  # every run within one column (thin or short objects): one segment per run
        col, y0, y1 = first, starts - first * h, ends - first * h
    else:
        total = int(n.sum())
        offs = np.cumsum(n) - n
        col = np.repeat(first - offs, n) + np.arange(total, dtype=np.int64)
        base = col * h
        y0 = np.maximum(np.repeat(starts, n) - base, 0)
        y1 = np.minimum(np.repeat(ends, n) - base, h)
    bit = np.left_shift(np.uint64(1), (col & 63).astype(np.uint64))
    word = col >> 6
    diff = np.zeros((h + 1) * nw, dtype=np.uint64)
    np.bitwise_xor.at(diff, y0 * nw + word, bit)
    np.bitwise_xor.at(diff, y1 * nw + word, bit)
    np.bitwise_xor.accumulate(diff[: h * nw].reshape(h, nw), axis=0, out=out)
    return out


def decode_rle_words(rle: Any, where: str, size: Sequence[int] | None = None,
                     error: type[Exception] = RefbenchInputError, out: np.ndarray | None = None) -> np.ndarray:
    """Check (:func:`check_rle`) and decode one COCO RLE to ``(H, ceil(W / 64))`` uint64 words
    (:func:`runs_to_words`); the bits of ``pycocotools.mask.decode`` packed along W."""
    (h, w), runs = check_rle(rle, where, size, error)
    return runs_to_words(runs, h, w, out)


def decode_rle(rle: Any, where: str, size: Sequence[int] | None = None,
               error: type[Exception] = RefbenchInputError) -> np.ndarray:
    """Check (:func:`check_rle`) and decode one COCO RLE to an ``(H, W)`` uint8 0/1 array, C order; the same
    bits as ``pycocotools.mask.decode``."""
    (h, w), runs = check_rle(rle, where, size, error)
    return runs_to_mask(runs, h, w)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["MAX_RLE_PIXELS", "check_rle", "decode_rle", "decode_rle_words", "parse_counts", "rle_size", "runs_to_mask",
           "runs_to_words"]
