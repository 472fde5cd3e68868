"""PNG masks at the speed of inflate, bit-identical to each protocol's official reader.

Two official readers, two value semantics (``values``):

* ``"grey"`` -- ``cv2.imread(p, cv2.IMREAD_GRAYSCALE)`` (henghuiding/MeViS ``tools/eval_mevis.py``, cilinyan/VISA
  ``tools/eval_revos.py``): an 8-bit grey PNG as stored, a 1-bit grey PNG scaled to 0/255, a palette PNG
  through OpenCV's own palette -> RGB -> grey conversion, anything else as OpenCV converts it.
* ``"index"`` -- ``np.array(PIL.Image.open(p))`` (davis2017-evaluation ``Results._read_mask``): palette
  **indices** (or grey values), never colours; a 1-bit grey PNG reads as 0/1.

The fast path handles what mask writers produce: non-interlaced grey and palette PNGs of 1, 2, 4 or 8 bits whose
rows use the filters none, sub, up and Paeth (PIL picks among all five per row: mostly none / sub / up, with
a few Paeth rows on slanted edges; OpenCV writes sub only). It inflates the image data with libdeflate
(``deflate`` on PyPI; about 10x faster than zlib) and undoes the filters with vectorised numpy. A sub row
holds the differences of its pixels, so its pixels are their prefix sum; for all sub (and Paeth) rows at
once that is one run fill (``numpy.repeat``) over the few non-zero bytes a mask has. A none row is its data.
Up rows then add the row above, in order (runs of unchanged rows at once); a Paeth row is a prefix sum between
the columns where the row above changes, where its predictor is the left pixel, and where the left pixel
equals the pixel above or above-left (always so in a two-valued mask) the predictor is the pixel above, so
the row needs no sequential step; otherwise the predictor is evaluated at those few columns in order.
Palette PNGs read as grey go through a 256-entry lookup table that OpenCV itself computes, from a one-row
probe PNG carrying the same palette and colour chunks, so the conversion is OpenCV's by construction.

Everything else falls back to the official reader on the same bytes: average rows, interlacing,
16-bit, RGB(A), grey + alpha, a grey PNG with tRNS, EXIF orientation, animation chunks,
unknown critical chunks, a bad Adler-32, short image data, and images whose row differences are
too dense for the run fill to pay (photographs). The fast path returns exactly what the fallback would.

Nothing here decodes an unchecked PNG: :func:`read_png` and the prediction / annotation readers first run
:func:`refbench.png.walk_png` (signature, every chunk's CRC, the declared size against the frame's, before
anything is inflated) and hand its chunk list to :func:`decode_fast`; libdeflate never writes more than
``height * (1 + row bytes)`` bytes, so a PNG can cost no more memory than its declared (and checked) size.
:mod:`refbench.png` checks, this module decodes.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import Union

import numpy as np

from refbench.errors import RefbenchInputError
from refbench.png import SIGNATURE, Chunk, png_header, walk_png

VALUES = ("grey", "index")
Source = Union[bytes, bytearray, memoryview, str, os.PathLike]

# The run fill costs about as much as the stock decoder once more than this share of the 8-byte words of the
# row differences is non-zero (and more than _DENSE_MIN of them: small images are cheap either way); denser
# images (photographs, noise) go to the stock reader.
_DENSE_WORDS = 0.25
_DENSE_MIN = 4096
# Ancillary chunks after which the fast path gives up (they change what a reader returns or what it reads).
_FALLBACK_CHUNKS = {b"eXIf", b"acTL", b"fcTL", b"fdAT"}


# ----------------------------------------------------------------------------------------------
# Chunks, inflate, filters
# ----------------------------------------------------------------------------------------------


def _chunks(data: bytes) -> list[Chunk] | None:
    """The chunks of :func:`refbench.png.walk_png`, or None when it refuses the PNG."""
    try:
        return walk_png(data, "PNG", None, ValueError, max_pixels=1 << 62)[2]
    except ValueError:
        return None


def _inflate(idat: bytes, size: int) -> bytes | None:
    """Exactly ``size`` bytes from the zlib stream ``idat`` (Adler-32 checked), else None."""
    try:
        import deflate
    except ImportError:  # pragma: no cover - a declared dependency; zlib gives the same bytes, slower
        try:
            d = zlib.decompressobj()
            raw = d.decompress(idat, size + 1)
            return raw if len(raw) == size and d.eof else None
        except zlib.error:
            return None
    try:
        raw = deflate.zlib_decompress(idat, size)
    except deflate.DeflateError:
        return None
    return raw if len(raw) == size else None


def _unfilter(raw: bytes, height: int, rowbytes: int) -> np.ndarray | None:
    """The (height, rowbytes) uint8 scanlines of filtered PNG data with one byte per pixel step (bpp 1), or
    None when a row uses the average filter (or an invalid one) or the data is too dense to fill cheaply."""
    stride = rowbytes + 1
    n = height * stride
    buf = np.frombuffer(raw, dtype=np.uint8)
    rows = buf.reshape(height, stride)
    ftype = rows[:, 0]
    if int(ftype.max(initial=0)) > 4 or bool((ftype == 3).any()):
        return None
    is_sub = (ftype == 1) | (ftype == 4)  # a Paeth row gets the prefix sum of its raw bytes here (see _paeth_row)
    n_sub = int(np.count_nonzero(is_sub))
    if n_sub == 0:
        img = np.ascontiguousarray(rows[:, 1:])  # none rows are the data; up / Paeth rows are redone below
    else:
        img = _sub_rows(buf if n_sub == height else _only_sub_rows(buf, rows, is_sub), height, rowbytes)
        if img is None:
            return None
        if n_sub < height:
            none_rows = np.flatnonzero(ftype == 0)
            if none_rows.size:
                img[none_rows] = rows[none_rows, 1:]
    dep_rows = np.flatnonzero(ftype >= 2)
    if dep_rows.size and not _dependent_rows(img, rows, dep_rows, ftype):
        return None
    return img


def _only_sub_rows(buf: np.ndarray, rows: np.ndarray, is_sub: np.ndarray) -> np.ndarray:
    """A copy of the filtered data with every row that is not a sub row zeroed."""
    out = buf.copy()
    out.reshape(rows.shape)[~is_sub] = 0
    return out


def _sub_rows(src: np.ndarray, height: int, rowbytes: int) -> np.ndarray | None:
    """(height, rowbytes) prefix sums of the rows of filtered data ``src`` (a sub row is the differences of
    its pixels, so its pixels are their prefix sum), as a run fill (``numpy.repeat``) over the non-zero bytes
    with a level-0 run inserted at every row start. Rows that are all zero in ``src`` come out zero; filter
    bytes are skipped. None when the data is too dense for the fill to pay."""
    stride = rowbytes + 1
    n = height * stride
    n8 = n // 8 * 8
    nzw = np.flatnonzero(src[:n8].view(np.uint64) != 0)
    if nzw.size > max(_DENSE_MIN, _DENSE_WORDS * (n8 // 8)):
        return None
    nzb = np.flatnonzero(src[:n8].reshape(-1, 8)[nzw])
    pos = nzw[nzb >> 3] * 8 + (nzb & 7)
    if n8 < n:
        pos = np.concatenate([pos, np.flatnonzero(src[n8:]) + n8])
    row = pos // stride
    col = pos - row * stride
    keep = col > 0
    if not keep.all():
        pos, row, col = pos[keep], row[keep], col[keep]
    vals = src[pos]
    g = np.cumsum(vals, dtype=np.uint8)
    before = np.zeros(g.size + 1, dtype=np.uint8)
    before[1:] = g
    level = g - before[np.searchsorted(row, row, side="left")]  # uint8 arithmetic wraps, as PNG does
    fpos = row * rowbytes + (col - 1)
    starts = np.arange(height, dtype=np.int64) * rowbytes
    at = np.searchsorted(fpos, starts, side="left")
    runs = np.insert(fpos, at, starts)
    levels = np.insert(level, at, 0)
    lengths = np.empty_like(runs)
    np.subtract(runs[1:], runs[:-1], out=lengths[:-1])
    lengths[-1] = height * rowbytes - runs[-1]
    return np.repeat(levels, lengths).reshape(height, rowbytes)


def _dependent_rows(img: np.ndarray, rows: np.ndarray, dep_rows: np.ndarray, ftype: np.ndarray) -> bool:
    """Undo the up and Paeth filters in row order (the row above is final when a row is reached; above the
    first row is zero). Runs of all-zero up rows are one broadcast copy of the row above. False when the
    Paeth rows have too many segments to be cheap (a dense image: the caller hands it to the stock reader)."""
    raw = rows[:, 1:]
    budget = [_DENSE_MIN + raw.size // 64]  # Paeth segments left
    ys = dep_rows.tolist()
    is_up = (ftype[dep_rows] == 2).tolist()
    zero = (~raw[dep_rows].any(axis=1)).tolist()
    i, n_dep = 0, len(ys)
    add = np.add
    while i < n_dep:
        y = ys[i]
        if is_up[i]:
            if zero[i]:
                j = i + 1
                while j < n_dep and zero[j] and is_up[j] and ys[j] == ys[j - 1] + 1:
                    j += 1
                img[y : ys[j - 1] + 1] = img[y - 1] if y > 0 else 0
                i = j
                continue
            if y == 0:
                img[0] = raw[0]
            else:
                add(img[y - 1], raw[y], out=img[y])
        elif not _paeth_row(img, raw, y, budget):
            return False
        i += 1
    return True


def _paeth_row(img: np.ndarray, raw: np.ndarray, y: int, budget: list[int]) -> bool:
    """Undo the Paeth filter of row y (bpp 1), whose prefix sum of raw bytes is in ``img[y]`` on entry. Where
    the row above is flat (b == c) the predictor is the left pixel, so between the columns where the row
    above changes the row is a prefix sum; the predictor is evaluated only at the first column of each such
    segment. False when ``budget`` (segments left for the image) runs out."""
    r, cur = raw[y], img[y]
    if y == 0:  # b = c = 0: the predictor is the left pixel everywhere: the prefix sum is the row
        return True
    cs = cur.copy()  # _unfilter left the prefix sum of the raw bytes in the row
    prev = img[y - 1]
    starts = np.flatnonzero(prev[1:] != prev[:-1])  # columns s - 1 before each segment start s >= 1
    budget[0] -= starts.size + 1
    if budget[0] < 0:
        return False
    width = r.shape[0]
    # Where the left pixel a equals b or c (always so in a two-valued mask), the predictor is b = prev[s]:
    # a == c gives p = b; a == b gives pa = pb. Assume it at every segment start, then
    # cur[x] = prev[x] + cs[x] - cs[s(x) - 1] (prev is flat on a segment); keep the row if the assumption
    # holds at every start, else redo it exactly below.
    lengths = np.empty(starts.size + 1, dtype=np.int64)
    lengths[0] = starts[0] + 1 if starts.size else width
    if starts.size:
        np.subtract(starts[1:], starts[:-1], out=lengths[1:-1])
        lengths[-1] = width - 1 - starts[-1]
    before = np.zeros(starts.size + 1, dtype=np.uint8)
    before[1:] = cs[starts]
    np.subtract(cs, np.repeat(before, lengths), out=cur)
    cur += prev
    if not starts.size:
        return True
    a = cur[starts]
    if bool(((a == prev[starts + 1]) | (a == prev[starts])).all()):
        return True
    left = starts.tolist()
    at = np.empty(2 * starts.size + 1, dtype=np.int64)
    at[0] = 0
    at[1::2] = starts + 1
    at[2::2] = starts
    # per segment start s: b = prev[s], c = prev[s - 1], r[s], cs[s]; and cs[s - 1] (column 0: c = cs = 0)
    b = prev[at].tolist()
    rr = r[at].tolist()
    cc = cs[at].tolist()
    v = v0 = base = 0
    offs = bytearray(starts.size + 1)
    for i in range(starts.size + 1):
        if i:
            a = (v0 + cc[2 * i] - base) & 0xFF  # the pixel left of the segment
            bi, ci = b[2 * i - 1], b[2 * i]
            r0, base = rr[2 * i - 1], cc[2 * i - 1]
        else:
            a = ci = 0
            bi, r0, base = b[0], rr[0], cc[0]
        p = a + bi - ci
        pa, pb, pc = abs(p - a), abs(p - bi), abs(p - ci)
        v0 = (r0 + (a if pa <= pb and pa <= pc else (bi if pb <= pc else ci))) & 0xFF
        v = (v0 - base) & 0xFF
        offs[i] = v
    bounds = [0, *[s + 1 for s in left], width]
    lengths = np.diff(np.array(bounds, dtype=np.int64))
    np.add(cs, np.repeat(np.frombuffer(bytes(offs), dtype=np.uint8), lengths), out=cur)
    return True


# ----------------------------------------------------------------------------------------------
# Palette -> grey as OpenCV converts it
# ----------------------------------------------------------------------------------------------

_LUT_LOCK = threading.Lock()
_LUTS: dict[bytes, np.ndarray | None] = {}


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _palette_grey_lut(data: bytes, chunks: list[tuple[bytes, int, int]], n_palette: int) -> np.ndarray | None:
    """(n_palette,) uint8: what ``cv2.imdecode(..., IMREAD_GRAYSCALE)`` makes of each palette index, computed
    by OpenCV on a one-row 8-bit probe PNG with the file's palette and colour chunks (cached per palette)."""
    keep = [(t, s, e) for t, s, e in chunks if t not in (b"IHDR", b"IDAT", b"IEND")]
    key = b"".join(t + struct.pack(">I", e - s) + data[s:e] for t, s, e in keep)
    with _LUT_LOCK:
        if key in _LUTS:
            return _LUTS[key]
    import cv2

    ihdr = struct.pack(">IIBBBBB", n_palette, 1, 8, 3, 0, 0, 0)
    body = zlib.compress(b"\x00" + bytes(range(n_palette)))
    probe = SIGNATURE + _chunk(b"IHDR", ihdr)
    probe += b"".join(data[s - 8 : e + 4] for _t, s, e in keep) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    out = cv2.imdecode(np.frombuffer(probe, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    lut = None if out is None or out.shape != (1, n_palette) else out[0].copy()
    with _LUT_LOCK:
        if len(_LUTS) > 64:
            _LUTS.clear()
        _LUTS[key] = lut
    return lut


# ----------------------------------------------------------------------------------------------
# The fast path and the official readers
# ----------------------------------------------------------------------------------------------


def _unpack(img: np.ndarray, depth: int, width: int) -> np.ndarray:
    """(H, W) uint8 samples of (H, rowbytes) scanlines of ``depth``-bit samples (most significant first)."""
    if depth == 8:
        return np.ascontiguousarray(img)
    if depth == 1:
        return np.unpackbits(img, axis=1, count=width)
    shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)
    samples = (img[:, :, None] >> shifts) & np.uint8((1 << depth) - 1)
    return np.ascontiguousarray(samples.reshape(img.shape[0], -1)[:, :width])


def decode_fast(data: bytes, values: str = "grey", chunks: list[Chunk] | None = None) -> np.ndarray | None:
    """(H, W) uint8 as the official reader of ``values`` gives, for the PNGs the fast path handles (module
    doc); None for every other PNG (then use :func:`decode_official`). ``chunks``: what
    :func:`refbench.png.walk_png` returned for ``data`` (walked here when not given)."""
    try:
        hdr = png_header(data, "PNG", ValueError)
    except ValueError:
        return None
    if hdr.interlace != 0 or hdr.color_type not in (0, 3) or hdr.bit_depth not in (1, 2, 4, 8):
        return None
    if hdr.width == 0 or hdr.height == 0:
        return None
    if chunks is None:
        chunks = _chunks(data)
    if chunks is None or chunks[0][0] != b"IHDR":
        return None
    idat: list[bytes] = []
    palette: bytes | None = None
    seen_idat_end = False
    for ctype, s, e in chunks[1:]:
        if ctype == b"IDAT":
            if seen_idat_end:
                return None  # IDAT chunks must be consecutive
            idat.append(data[s:e])
            continue
        if idat:
            seen_idat_end = True
        if ctype in _FALLBACK_CHUNKS:
            return None
        if ctype == b"PLTE":
            if idat or palette is not None:
                return None
            palette = data[s:e]
        elif ctype == b"tRNS" and hdr.color_type == 0:
            return None
        elif ctype == b"IEND":
            break
        elif ctype[0] < 97:  # an unknown critical chunk (upper-case first letter)
            return None
    if not idat:
        return None
    rowbytes = (hdr.width * hdr.bit_depth + 7) // 8
    raw = _inflate(b"".join(idat), hdr.height * (rowbytes + 1))
    if raw is None:
        return None
    img = _unfilter(raw, hdr.height, rowbytes)
    if img is None:
        return None
    img = _unpack(img, hdr.bit_depth, hdr.width)
    if hdr.color_type == 0:
        if hdr.bit_depth < 8 and (values == "grey" or hdr.bit_depth > 1):
            # OpenCV expands 1/2/4-bit grey to 8 bits (x255, x85, x17), and so does PIL for 2 and 4 bits;
            # PIL reads 1-bit grey as mode '1' (0/1)
            img *= np.uint8(255 // ((1 << hdr.bit_depth) - 1))
        return img
    # palette
    if palette is None or len(palette) % 3 or not palette:
        return None
    n_palette = len(palette) // 3
    if n_palette > 256 or (n_palette < (1 << hdr.bit_depth) and int(img.max()) >= n_palette):
        return None  # an index beyond the palette (a full palette needs no check)
    if values == "index":
        return img
    lut = _palette_grey_lut(data, chunks, n_palette)
    return None if lut is None else lut[img]


def decode_official(data: bytes, values: str = "grey") -> np.ndarray | None:
    """The official reader on PNG bytes: ``cv2.imdecode(..., IMREAD_GRAYSCALE)`` for ``"grey"``,
    ``np.array(Image.open(...))`` for ``"index"`` (any mode, any dtype; the caller decides what it accepts).
    None when the reader fails."""
    if values == "grey":
        import cv2

        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.array(im)


def read_png(src: Source, values: str = "grey", size: tuple[int, int] | None = None, where: str | None = None,
             error: type[Exception] = RefbenchInputError) -> np.ndarray:
    """(H, W) array of a PNG (path or bytes) as the official reader of ``values`` gives it (module doc).

    The PNG is checked first (:func:`refbench.png.walk_png`; ``size``: the expected (H, W), another declared
    size is refused before anything is inflated). Every failure raises ``error`` naming ``where`` (default:
    the path, or ``"PNG"``)."""
    if values not in VALUES:
        raise ValueError(f"unknown PNG value semantics {values!r}; expected one of {', '.join(VALUES)}")
    if isinstance(src, (bytes, bytearray, memoryview)):
        data, where = bytes(src), where or "PNG"
    else:
        from refbench.files import read_regular

        data, where = read_regular(src, error, "PNG"), where or str(src)
    chunks = walk_png(data, where, size, error)[2]
    fast = decode_fast(data, values, chunks)
    if fast is not None:
        return fast
    try:
        out = decode_official(data, values)
    except Exception as exc:  # noqa: BLE001 - cv2.error, PIL's OSError / ValueError: the reader refused it
        raise error(f"{where}: cannot read PNG ({exc})") from None
    if out is None:
        raise error(f"{where}: cannot read PNG (the official reader failed)")
    return out


__all__ = ["VALUES", "decode_fast", "decode_official", "read_png"]
