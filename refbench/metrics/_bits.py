"""Bit-packed binary masks on torch: the engine under J and F.

A (T, H, W) boolean mask is packed along W into (T, H, ceil(W/64)) int64 words; pixel x of a row is bit
x % 64 (least significant first) of word x // 64. Every set operation the official evaluators do per pixel
(xor/or of neighbours, dilation by a disk, counting) then runs on 64 pixels per machine operation, on any
torch device, with integer results that are exact everywhere. Padding bits beyond W are always zero in packed
masks; dilation may set them, which is harmless because they are only ever AND-ed with zero padding.

torch has no unsigned 64-bit shifts on every device, so logical right shifts are arithmetic shifts followed
by a mask, and left shifts rely on torch's wrap-around for signed integers (checked by the tests).
"""

from __future__ import annotations

import math

import torch

WORD = 64
_PACK_MAGIC = 0x0102040810204080  # gathers the low bit of each of 8 bytes into the top byte
_M1 = 0x5555555555555555
_M2 = 0x3333333333333333
_M4 = 0x0F0F0F0F0F0F0F0F
_H01 = 0x0101010101010101


def n_words(width: int) -> int:
    return (width + WORD - 1) // WORD


class Workspace:
    """Reusable scratch memory: named buffers that grow on demand and are handed out as views.

    Fresh large allocations cost page faults on every call; scoring many short expressions one after the
    other reuses the same few megabytes instead. One workspace must not be shared between threads.
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.int64, zero: bool = False) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=self.device)
            self._bufs[name] = buf
        view = buf[:numel].view(shape)
        if zero:
            view.zero_()
        return view


class Packer:
    """Packs masks of one (H, W) geometry along W, reusing its staging buffers across calls.

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


def unpack(words: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`pack`: (..., H, K) int64 -> (..., H, width) bool."""
    shifts = torch.arange(WORD, device=words.device, dtype=torch.int64)
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.flatten(-2)[..., :width].bool()


def _logical_rshift(x: torch.Tensor, b: int) -> torch.Tensor:
    """x >>> b for 0 < b < 64 on int64 (torch's >> is arithmetic)."""
    return (x >> b) & ((1 << (WORD - b)) - 1)


def take_east(x: torch.Tensor, s: int) -> torch.Tensor:
    """out[..., p] = x[..., p + s] along the packed pixel axis, zero beyond the end (s >= 0)."""
    if s == 0:
        return x.clone()
    q, b = divmod(s, WORD)
    k = x.shape[-1]
    out = torch.zeros_like(x)
    if q >= k:
        return out
    if b == 0:
        out[..., : k - q] = x[..., q:]
        return out
    out[..., : k - q] = _logical_rshift(x[..., q:], b)
    if k - q - 1 > 0:
        out[..., : k - q - 1] |= x[..., q + 1 :] << (WORD - b)
    return out


def take_west(x: torch.Tensor, s: int) -> torch.Tensor:
    """out[..., p] = x[..., p - s] along the packed pixel axis, zero before the start (s >= 0)."""
    if s == 0:
        return x.clone()
    q, b = divmod(s, WORD)
    k = x.shape[-1]
    out = torch.zeros_like(x)
    if q >= k:
        return out
    if b == 0:
        out[..., q:] = x[..., : k - q]
        return out
    out[..., q:] = x[..., : k - q] << b
    if k - q - 1 > 0:
        out[..., q + 1 :] |= _logical_rshift(x[..., : k - q - 1], WORD - b)
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


def count(x: torch.Tensor) -> torch.Tensor:
    """Set bits per leading index: (T, ...) int64 -> (T,) int64."""
    return popcount(x).flatten(1).sum(1)


def _lowmask(bits: int) -> int:
    """int64 literal with the low ``bits`` bits set (0 < bits < 64)."""
    return (1 << bits) - 1


def boundary(
    words: torch.Tensor,
    width: int,
    last_row: bool = True,
    last_word: int | None = -1,
    out: torch.Tensor | None = None,
    ws: Workspace | None = None,
) -> torch.Tensor:
    """Boundary map of packed masks, exactly davis2017-evaluation ``_seg2bmap`` (no resizing).

    words: (..., H, K) packed masks of true width ``width``. With E, S, SE the east, south and south-east
    neighbours (zero outside the image): b = (m^E) | (m^S) | (m^SE); the last row is m^E, the last column
    m^S, and the bottom-right pixel 0 (davis2017/metrics.py::_seg2bmap).

    ``words`` may be a crop of the image: ``last_row`` says whether its last row is the image's own, and
    ``last_word`` is the index of the word column holding the image's last pixel column (None when the crop
    does not reach it), so the border rules apply there; pixels beyond a crop must be zero.
    """
    ws = ws or Workspace(words.device)
    b = torch.empty_like(words) if out is None else out
    east = torch.bitwise_right_shift(words, 1, out=ws.get("bnd_east", words.shape))
    east &= _lowmask(WORD - 1)
    tmp = ws.get("bnd_tmp", words.shape)
    if words.shape[-1] > 1:
        torch.bitwise_left_shift(words[..., 1:], WORD - 1, out=tmp[..., :-1])
        east[..., :-1] |= tmp[..., :-1]
    torch.bitwise_xor(words, east, out=b)  # m ^ E
    xor_s = ws.get("bnd_xor_s", words.shape)  # m ^ S, with S = 0 below the last row
    xor_s.copy_(words)
    xor_s[..., :-1, :] ^= words[..., 1:, :]
    b |= xor_s
    torch.bitwise_xor(words[..., :-1, :], east[..., 1:, :], out=tmp[..., :-1, :])  # m ^ SE
    b[..., :-1, :] |= tmp[..., :-1, :]
    b[..., -1, :] |= words[..., -1, :]  # SE = 0 below the last row
    if last_row:
        torch.bitwise_xor(words[..., -1, :], east[..., -1, :], out=b[..., -1, :])
    if last_word is not None:
        last_bit = (width - 1) % WORD
        col = 1 << last_bit if last_bit < WORD - 1 else -(1 << (WORD - 1))
        b[..., last_word] &= ~col
        b[..., last_word] |= xor_s[..., last_word] & col
        if last_row:
            b[..., -1, last_word] &= ~col
    return b


def disk_half_widths(radius: int) -> list[int]:
    """Half-width of each row dy = 0..radius of the disk {dx^2 + dy^2 <= radius^2} (skimage ``disk``)."""
    return [math.isqrt(radius * radius - dy * dy) for dy in range(radius + 1)]


def _widen_into(cur: torch.Tensor, d: int, out: torch.Tensor, tmp: torch.Tensor) -> None:
    """out = cur | east_d(cur) | west_d(cur) along the last axis, for 0 < d < 64, in the given buffers."""
    torch.bitwise_right_shift(cur, d, out=tmp)
    tmp &= _lowmask(WORD - d)
    torch.bitwise_or(cur, tmp, out=out)
    torch.bitwise_left_shift(cur, d, out=tmp)
    out |= tmp
    if cur.shape[-1] > 1:
        torch.bitwise_left_shift(cur[..., 1:], WORD - d, out=tmp[..., :-1])
        out[..., :-1] |= tmp[..., :-1]
        torch.bitwise_right_shift(cur[..., :-1], WORD - d, out=tmp[..., 1:])
        tmp[..., 1:] &= _lowmask(d)
        out[..., 1:] |= tmp[..., 1:]


def dilate_disk(words: torch.Tensor, radius: int, guarded: bool = False, ws: Workspace | None = None) -> torch.Tensor:
    """Dilate packed (..., H, K) maps by the disk of integer ``radius`` (skimage ``disk`` footprint,
    cv2.dilate semantics: pixels outside the image never count).

    The disk is the union over rows dy of horizontal segments [-w(dy), w(dy)]. Horizontal dilations are
    built by the chain D(a + d) = D(a) | east_d(D(a)) | west_d(D(a)) (d <= a + 1: exact at borders), and each is
    OR-ed into the result at the row offsets +-dy that use its width as soon as it exists.

    ``guarded``: the last word of every row is a zero guard word, and ``words`` is contiguous. Then, for
    radius < 64, all rows of all maps are dilated horizontally as one contiguous bit line (bits that cross
    a row end stay in the guard word, more than ``radius`` pixels from the next row's pixels), which saves
    torch's per-slice overhead; guard words of the result may be non-zero and must be ignored.
    """
    widths = disk_half_widths(radius)
    *lead, height, k = words.shape
    as_line = guarded and radius < WORD
    rows_of: dict[int, list[int]] = {}
    for dy, w in enumerate(widths):
        if dy < height:
            rows_of.setdefault(w, []).append(dy)
    ws = ws or Workspace(words.device)
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
                _widen_into(cur.view(-1), d, nxt.view(-1), tmp.view(-1))
            elif d < WORD:
                _widen_into(cur, d, nxt, tmp)
            else:
                torch.bitwise_or(cur, take_east(cur, d), out=nxt)
                nxt |= take_west(cur, d)
            cur, cur_w = nxt, cur_w + d
        for dy in rows_of[target]:
            if dy == 0:
                out |= cur
            else:
                out[..., dy:, :] |= cur[..., :-dy, :]
                out[..., :-dy, :] |= cur[..., dy:, :]
    return out
