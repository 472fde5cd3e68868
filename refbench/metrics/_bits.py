"""Bit-packed binary masks: the engine under J and F, on torch tensors (any device) or numpy arrays (CPU).

A (T, H, W) boolean mask is packed along W into (T, H, ceil(W/64)) 64-bit words; pixel x of a row is bit
x % 64 (least significant first) of word x // 64. Every set operation the official evaluators do per pixel
(xor/or of neighbours, dilation by a disk, counting) then runs on 64 pixels per machine operation, with
integer results that are exact everywhere. Padding bits beyond W are always zero in packed masks; dilation
may set them, which is harmless because they are only ever AND-ed with zero padding.

Two word types, one algorithm: torch int64 tensors (GPU, and CPU tensors where asked) and numpy uint64
arrays (the CPU path: numpy's unsigned shifts are logical, its per-call overhead is lower than torch's, and
``numpy.bitwise_count`` counts bits with the CPU's popcount instruction). :func:`boundary` and
:func:`dilate_disk` take either and compute the same bits; the small :class:`_Ops` classes hold the only
differences. torch has no unsigned 64-bit shifts on every device, so there logical right shifts are
arithmetic shifts followed by a mask, and left shifts rely on torch's wrap-around for signed integers
(checked by the tests).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

WORD = 64
_PACK_MAGIC = 0x0102040810204080  # gathers the low bit of each of 8 bytes into the top byte
_M1 = 0x5555555555555555
_M2 = 0x3333333333333333
_M4 = 0x0F0F0F0F0F0F0F0F
_H01 = 0x0101010101010101
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0


def n_words(width: int) -> int:
    return (width + WORD - 1) // WORD


class Workspace:
    """Reusable scratch memory: named buffers that grow on demand and are handed out as views.

    ``device``: a torch device, or ``"numpy"`` for numpy buffers (default dtype uint64 there, int64 for
    torch). Fresh large allocations cost page faults on every call; scoring many short expressions one after
    the other reuses the same few megabytes instead. One workspace must not be shared between threads.
    """

    def __init__(self, device: torch.device | str):
        self.numpy = str(device) == "numpy"
        self.device = None if self.numpy else torch.device(device)
        self._bufs: dict[str, Any] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any = None, zero: bool = False) -> Any:
        numel = math.prod(shape)
        buf = self._bufs.get(name)
        if self.numpy:
            dtype = np.dtype(np.uint64 if dtype is None else dtype)
            if buf is None or buf.dtype != dtype or buf.size < numel:
                buf = np.empty(numel, dtype=dtype)
                self._bufs[name] = buf
            view = buf[:numel].reshape(shape)
            if zero:
                view.fill(0)
            return view
        dtype = torch.int64 if dtype is None else dtype
        if buf is None or buf.dtype != dtype or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=self.device)
            self._bufs[name] = buf
        view = buf[:numel].view(shape)
        if zero:
            view.zero_()
        return view


# ----------------------------------------------------------------------------------------------
# The two word types
# ----------------------------------------------------------------------------------------------


class _TorchOps:
    """int64 tensors: logical right shift = arithmetic shift + mask; constants as signed int64."""

    @staticmethod
    def rshift(x: Any, b: int, out: Any) -> Any:
        torch.bitwise_right_shift(x, b, out=out)
        out &= (1 << (WORD - b)) - 1
        return out

    @staticmethod
    def lshift(x: Any, b: int, out: Any) -> Any:
        return torch.bitwise_left_shift(x, b, out=out)

    @staticmethod
    def bor(a: Any, b: Any, out: Any) -> Any:
        return torch.bitwise_or(a, b, out=out)

    @staticmethod
    def band(a: Any, b: Any, out: Any) -> Any:
        return torch.bitwise_and(a, b, out=out)

    @staticmethod
    def bxor(a: Any, b: Any, out: Any) -> Any:
        return torch.bitwise_xor(a, b, out=out)

    @staticmethod
    def const(v: int) -> int:
        v &= (1 << WORD) - 1
        return v - (1 << WORD) if v >= 1 << (WORD - 1) else v

    @staticmethod
    def zeros_like(x: Any) -> Any:
        return torch.zeros_like(x)

    @staticmethod
    def empty_like(x: Any) -> Any:
        return torch.empty_like(x)

    @staticmethod
    def workspace(x: Any) -> Workspace:
        return Workspace(x.device)

    @staticmethod
    def count(maps: Any, lead: int) -> Any:
        """Set bits of each of the ``lead`` leading rows of ``maps`` (destroys ``maps``): (lead,) int64."""
        return popcount_(maps).view(lead, -1).sum(1)


class _NumpyOps:
    """uint64 arrays: shifts are logical; constants as numpy uint64 scalars."""

    @staticmethod
    def rshift(x: Any, b: int, out: Any) -> Any:
        return np.right_shift(x, np.uint64(b), out=out)

    @staticmethod
    def lshift(x: Any, b: int, out: Any) -> Any:
        return np.left_shift(x, np.uint64(b), out=out)

    @staticmethod
    def bor(a: Any, b: Any, out: Any) -> Any:
        return np.bitwise_or(a, b, out=out)

    @staticmethod
    def band(a: Any, b: Any, out: Any) -> Any:
        return np.bitwise_and(a, b, out=out)

    @staticmethod
    def bxor(a: Any, b: Any, out: Any) -> Any:
        return np.bitwise_xor(a, b, out=out)

    @staticmethod
    def const(v: int) -> Any:
        return np.uint64(v & ((1 << WORD) - 1))

    @staticmethod
    def zeros_like(x: Any) -> Any:
        return np.zeros_like(x)

    @staticmethod
    def empty_like(x: Any) -> Any:
        return np.empty_like(x)

    @staticmethod
    def workspace(x: Any) -> Workspace:
        return Workspace("numpy")

    @staticmethod
    def count(maps: Any, lead: int) -> Any:
        flat = maps.reshape(lead, -1)
        if _HAS_BITWISE_COUNT:
            return np.bitwise_count(flat).sum(1, dtype=np.int64)
        return popcount_np(flat).sum(1, dtype=np.int64)  # pragma: no cover - numpy < 2


def _ops(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint64:
            raise TypeError(f"packed numpy masks must be uint64 words, got {x.dtype}")
        return _NumpyOps
    return _TorchOps


# ----------------------------------------------------------------------------------------------
# Packing
# ----------------------------------------------------------------------------------------------


class Packer:
    """Packs torch masks of one (H, W) geometry along W, reusing its staging buffers across calls.

    ``pack(mask, out)``: mask (T, H, W) bool or integer (non-zero = foreground) -> out (T, H, ceil(W/64))
    int64, bit x % 64 of word x // 64 set where mask[..., x] != 0. T may vary up to ``max_frames``.
    """

    def __init__(self, max_frames: int, height: int, width: int, device: torch.device | str, ws: Workspace | None = None):
        self.width = width
        padded = n_words(width) * WORD
        ws = ws or Workspace(device)
        # Padding columns are zeroed once here and never written again while this packer lives.
        self._flat = ws.get("pack_flat", (max_frames, height, padded), torch.bool, zero=True)
        self._prod = ws.get("pack_prod", (max_frames, height, padded // 8))

    def pack(self, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if mask.is_floating_point() or mask.is_complex():
            raise TypeError(f"pack expects a bool or integer tensor, got {mask.dtype}")
        n = mask.shape[0]
        flat = self._flat[:n]
        flat[..., : self.width].copy_(mask)  # the copy kernel maps non-zero to True
        # 8 bytes of 0/1 per int64; one multiply moves their low bits into the top byte, which is byte 7
        # in little-endian order (the order torch uses on every supported device).
        prod = torch.mul(flat.view(torch.uint8).view(torch.int64), _PACK_MAGIC, out=self._prod[:n])
        out.view(torch.uint8).copy_(prod.view(torch.uint8)[..., 7::8])
        return out


def pack(mask: torch.Tensor) -> torch.Tensor:
    """Pack (..., H, W) masks along W into (..., H, ceil(W/64)) int64 words (see :class:`Packer`)."""
    *lead, height, width = mask.shape
    flat_mask = mask.reshape(-1, height, width)
    out = torch.empty((flat_mask.shape[0], height, n_words(width)), dtype=torch.int64, device=mask.device)
    Packer(flat_mask.shape[0], height, width, mask.device).pack(flat_mask, out)
    return out.view(*lead, height, n_words(width))


def pack_numpy(mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Pack (..., H, W) numpy masks (bool or integer, non-zero = foreground) into (..., H, ceil(W/64)) uint64
    words, the same bits as :func:`pack` (``numpy.packbits`` sets a bit for every non-zero element).

    ``out``: an optional C-contiguous uint64 array of the result's shape to write into."""
    if mask.dtype.kind not in "biu":
        raise TypeError(f"pack_numpy expects a bool or integer array, got {mask.dtype}")
    *lead, height, width = mask.shape
    k = n_words(width)
    if out is not None and (out.shape != (*lead, height, k) or out.dtype != np.uint64 or not out.flags.c_contiguous):
        raise ValueError(f"pack_numpy: out must be C-contiguous uint64 of shape {(*lead, height, k)}")
    if mask.ndim == 2 and mask.itemsize == 1 and mask.flags.f_contiguous and not mask.flags.c_contiguous:
        # a column-major frame (what COCO RLE decoders give): numpy.packbits reads it 80x slower across the
        # grain, and numpy's own transpose copy is slow too; OpenCV's transpose is one fast pass
        import cv2

        mask = cv2.transpose(np.ascontiguousarray(mask.T).view(np.uint8))
    nbytes = (width + 7) // 8
    if out is None and nbytes == k * 8:
        return np.packbits(mask, axis=-1, bitorder="little").view(np.uint64)
    if out is None:
        out = np.empty((*lead, height, k), dtype=np.uint64)
    dst = out.view(np.uint8)
    dst[..., :nbytes] = np.packbits(mask, axis=-1, bitorder="little")
    dst[..., nbytes:] = 0
    return out


def pack_equal(ids: np.ndarray, value: int, chunk: int = 8) -> np.ndarray:
    """:func:`pack_numpy` of ``ids == value`` for (T, H, W) id maps, a few frames at a time so that the
    one-hot temporaries stay in cache (a whole-sequence one-hot costs more in page faults than to pack)."""
    t, h, w = ids.shape
    out = np.empty((t, h, n_words(w)), dtype=np.uint64)
    for start in range(0, t, chunk):
        stop = min(t, start + chunk)
        pack_numpy(ids[start:stop] == value, out=out[start:stop])
    return out


def unpack(words: Any, width: int) -> Any:
    """Inverse of :func:`pack` / :func:`pack_numpy`: (..., H, K) words -> (..., H, width) bool."""
    if isinstance(words, np.ndarray):
        bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little")
        return bits[..., :width].astype(bool)
    shifts = torch.arange(WORD, device=words.device, dtype=torch.int64)
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.flatten(-2)[..., :width].bool()


# ----------------------------------------------------------------------------------------------
# Shifts and counts
# ----------------------------------------------------------------------------------------------


def _logical_rshift(x: torch.Tensor, b: int) -> torch.Tensor:
    """x >>> b for 0 < b < 64 on int64 (torch's >> is arithmetic)."""
    return (x >> b) & ((1 << (WORD - b)) - 1)


def take_east(x: Any, s: int) -> Any:
    """out[..., p] = x[..., p + s] along the packed pixel axis, zero beyond the end (s >= 0)."""
    ops = _ops(x)
    if s == 0:
        return x.copy() if isinstance(x, np.ndarray) else x.clone()
    q, b = divmod(s, WORD)
    k = x.shape[-1]
    out = ops.zeros_like(x)
    if q >= k:
        return out
    if b == 0:
        out[..., : k - q] = x[..., q:]
        return out
    ops.rshift(x[..., q:], b, out[..., : k - q])
    if k - q - 1 > 0:
        tmp = ops.empty_like(x[..., q + 1 :])
        out[..., : k - q - 1] |= ops.lshift(x[..., q + 1 :], WORD - b, tmp)
    return out


def take_west(x: Any, s: int) -> Any:
    """out[..., p] = x[..., p - s] along the packed pixel axis, zero before the start (s >= 0)."""
    ops = _ops(x)
    if s == 0:
        return x.copy() if isinstance(x, np.ndarray) else x.clone()
    q, b = divmod(s, WORD)
    k = x.shape[-1]
    out = ops.zeros_like(x)
    if q >= k:
        return out
    if b == 0:
        out[..., q:] = x[..., : k - q]
        return out
    ops.lshift(x[..., : k - q], b, out[..., q:])
    if k - q - 1 > 0:
        tmp = ops.empty_like(x[..., : k - q - 1])
        out[..., q + 1 :] |= ops.rshift(x[..., : k - q - 1], WORD - b, tmp)
    return out


def popcount(x: torch.Tensor) -> torch.Tensor:
    """Per-word number of set bits (int64, same shape), SWAR on int64."""
    x = x - ((x >> 1) & _M1)
    x = (x & _M2) + ((x >> 2) & _M2)
    x = (x + (x >> 4)) & _M4
    return (x * _H01) >> 56


def popcount_(x: torch.Tensor) -> torch.Tensor:
    """In-place :func:`popcount` (one temporary of x's size)."""
    tmp = x >> 1
    tmp &= _M1
    x -= tmp
    torch.bitwise_right_shift(x, 2, out=tmp)
    tmp &= _M2
    x &= _M2
    x += tmp
    torch.bitwise_right_shift(x, 4, out=tmp)
    x += tmp
    x &= _M4
    x *= _H01
    x >>= 56
    return x


def popcount_np(x: np.ndarray) -> np.ndarray:
    """Per-word number of set bits of uint64 words (numpy < 2 has no ``bitwise_count``), SWAR."""
    u = np.uint64
    x = x - ((x >> u(1)) & u(_M1))
    x = (x & u(_M2)) + ((x >> u(2)) & u(_M2))
    x = (x + (x >> u(4))) & u(_M4)
    return (x * u(_H01)) >> u(56)


def count(x: Any) -> Any:
    """Set bits per leading index: (T, ...) words -> (T,) int64."""
    if isinstance(x, np.ndarray):
        return _NumpyOps.count(np.ascontiguousarray(x), x.shape[0])
    return popcount(x).flatten(1).sum(1)


def _lowmask(bits: int) -> int:
    """int64 literal with the low ``bits`` bits set (0 < bits < 64)."""
    return (1 << bits) - 1


# ----------------------------------------------------------------------------------------------
# Boundary and dilation
# ----------------------------------------------------------------------------------------------


def boundary(
    words: Any,
    width: int,
    last_row: bool = True,
    last_word: int | None = -1,
    out: Any = None,
    ws: Workspace | None = None,
) -> Any:
    """Boundary map of packed masks, exactly davis2017-evaluation ``_seg2bmap`` (no resizing).

    words: (..., H, K) packed masks (torch int64 or numpy uint64) of true width ``width``. With E, S, SE the
    east, south and south-east neighbours (zero outside the image): b = (m^E) | (m^S) | (m^SE); the last row
    is m^E, the last column m^S, and the bottom-right pixel 0 (davis2017/metrics.py::_seg2bmap).

    ``words`` may be a crop of the image: ``last_row`` says whether its last row is the image's own, and
    ``last_word`` is the index of the word column holding the image's last pixel column (None when the crop
    does not reach it), so the border rules apply there; pixels beyond a crop must be zero.
    """
    ops = _ops(words)
    ws = ws or ops.workspace(words)
    b = ops.empty_like(words) if out is None else out
    east = ops.rshift(words, 1, ws.get("bnd_east", words.shape))
    tmp = ws.get("bnd_tmp", words.shape)
    if words.shape[-1] > 1:
        ops.lshift(words[..., 1:], WORD - 1, tmp[..., :-1])
        east[..., :-1] |= tmp[..., :-1]
    ops.bxor(words, east, b)  # m ^ E
    xor_s = ws.get("bnd_xor_s", words.shape)  # m ^ S, with S = 0 below the last row
    xor_s[...] = words
    xor_s[..., :-1, :] ^= words[..., 1:, :]
    b |= xor_s
    ops.bxor(words[..., :-1, :], east[..., 1:, :], tmp[..., :-1, :])  # m ^ SE
    b[..., :-1, :] |= tmp[..., :-1, :]
    b[..., -1, :] |= words[..., -1, :]  # SE = 0 below the last row
    if last_row:
        ops.bxor(words[..., -1, :], east[..., -1, :], b[..., -1, :])
    if last_word is not None:
        bit = 1 << ((width - 1) % WORD)
        col, keep = ops.const(bit), ops.const(~bit)
        b[..., last_word] &= keep
        b[..., last_word] |= xor_s[..., last_word] & col
        if last_row:
            b[..., -1, last_word] &= keep
    return b


def disk_half_widths(radius: int) -> list[int]:
    """Half-width of each row dy = 0..radius of the disk {dx^2 + dy^2 <= radius^2} (skimage ``disk``)."""
    return [math.isqrt(radius * radius - dy * dy) for dy in range(radius + 1)]


def _widen_into(ops: Any, cur: Any, d: int, out: Any, tmp: Any) -> None:
    """out = cur | east_d(cur) | west_d(cur) along the last axis, for 0 < d < 64, in the given buffers."""
    ops.rshift(cur, d, tmp)
    ops.bor(cur, tmp, out)
    ops.lshift(cur, d, tmp)
    out |= tmp
    if cur.shape[-1] > 1:
        ops.lshift(cur[..., 1:], WORD - d, tmp[..., :-1])
        out[..., :-1] |= tmp[..., :-1]
        ops.rshift(cur[..., :-1], WORD - d, tmp[..., 1:])
        out[..., 1:] |= tmp[..., 1:]


def dilate_disk(words: Any, radius: int, guarded: bool = False, ws: Workspace | None = None) -> Any:
    """Dilate packed (..., H, K) maps by the disk of integer ``radius`` (skimage ``disk`` footprint,
    cv2.dilate semantics: pixels outside the image never count).

    The disk is the union over rows dy of horizontal segments [-w(dy), w(dy)]. Horizontal dilations are
    built by the chain D(a + d) = D(a) | east_d(D(a)) | west_d(D(a)) (d <= a + 1: exact at borders), and each is
    OR-ed into the result at the row offsets +-dy that use its width as soon as it exists.

    ``guarded``: the last word of every row is a zero guard word, and ``words`` is contiguous. Then, for
    radius < 64, all rows of all maps are dilated horizontally as one contiguous bit line (bits that cross
    a row end stay in the guard word, more than ``radius`` pixels from the next row's pixels), which saves
    per-slice overhead; guard words of the result may be non-zero and must be ignored.
    """
    ops = _ops(words)
    widths = disk_half_widths(radius)
    *lead, height, k = words.shape
    as_line = guarded and radius < WORD
    rows_of: dict[int, list[int]] = {}
    for dy, w in enumerate(widths):
        if dy < height:
            rows_of.setdefault(w, []).append(dy)
    ws = ws or ops.workspace(words)
    out = ws.get("dil_out", words.shape, zero=True)
    bufs = [ws.get("dil_a", words.shape), ws.get("dil_b", words.shape)]
    tmp = ws.get("dil_tmp", words.shape)
    cur, cur_w = words, 0
    for target in sorted(rows_of):
        while cur_w < target:
            # d <= cur_w + 1 keeps each step exact at the image borders: a window moved out of the image can only
            # have held pixels that the unmoved window already covers (with d up to 2 * cur_w + 1 a pixel within
            # d of the left edge of the first row of the line is lost; radius >= 9 takes such steps)
            d = min(target - cur_w, cur_w + 1)
            nxt = bufs[0] if cur is not bufs[0] else bufs[1]
            if as_line:
                _widen_into(ops, cur.reshape(-1), d, nxt.reshape(-1), tmp.reshape(-1))
            elif d < WORD:
                _widen_into(ops, cur, d, nxt, tmp)
            else:
                ops.bor(cur, take_east(cur, d), nxt)
                nxt |= take_west(cur, d)
            cur, cur_w = nxt, cur_w + d
        for dy in rows_of[target]:
            if dy == 0:
                out |= cur
            else:
                out[..., dy:, :] |= cur[..., :-dy, :]
                out[..., :-dy, :] |= cur[..., dy:, :]
    return out
