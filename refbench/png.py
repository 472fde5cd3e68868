"""PNG structure checks made before any pixel is decoded.

A prediction or annotation PNG is decoded only after :func:`check_png` has walked its chunks: the signature,
``IHDR`` first, every chunk inside the file with a correct CRC (libpng, which ``cv2.imread`` uses, refuses a
critical chunk with a bad CRC; Pillow stops reading pixels as soon as it has enough and would let a flipped
byte change a mask without a word), and an ``IEND``. The size declared in ``IHDR`` is compared with the frame
size the dataset expects, and bounded by :data:`MAX_FRAME_PIXELS` where it expects none, so a small file that
declares 30000 x 30000 pixels is refused before it is inflated. :func:`max_png_bytes` bounds how large a PNG
of a given frame size can be, which bounds every read of a zip member. :func:`walk_png` is the same check
returning the chunk list, which the decoder (:mod:`refbench.png_decode`) takes so no chunk is walked twice;
:func:`png_header` gives the IHDR fields it needs.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Sequence

from refbench.errors import RefbenchInputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the largest frame refbench decodes when nothing says what size to expect (2^27 = 134M pixels, above 8K video)
MAX_FRAME_PIXELS = 1 << 27
#: room for a PNG's non-pixel chunks (palette, colour profile, text) in :func:`max_png_bytes`
_CHUNK_SLACK = 1 << 20


def max_png_bytes(height: int, width: int) -> int:
    """The most bytes an 8-bit PNG of ``height`` x ``width`` can hold: 4 channels (RGBA) stored uncompressed,
    one filter byte per row, deflate block and chunk overheads, plus 1 MiB for other chunks."""
    raw = int(height) * (1 + 4 * int(width))
    return raw + raw // 1000 + 64 + _CHUNK_SLACK


def png_size(data: bytes, where: str, error: type[Exception] = RefbenchInputError) -> tuple[int, int]:
    """``(H, W)`` declared by the ``IHDR`` chunk (checked: signature, length, CRC)."""
    if len(data) < 33 or not data.startswith(SIGNATURE):
        raise error(f"{where}: not a PNG file" + (" (truncated)" if data.startswith(SIGNATURE[:len(data)]) else ""))
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise error(f"{where}: corrupt PNG (the first chunk is not a 13-byte IHDR)")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise error(f"{where}: corrupt PNG (IHDR checksum mismatch)")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise error(f"{where}: corrupt PNG (declares {width}x{height} pixels)")
    return int(height), int(width)


@dataclass(frozen=True)
class PngHeader:
    """The IHDR fields of a PNG."""

    width: int
    height: int
    bit_depth: int
    color_type: int
    interlace: int

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.height, self.width


def png_header(data: bytes, where: str = "PNG", error: type[Exception] = RefbenchInputError) -> PngHeader:
    """The IHDR fields of PNG bytes (checked as :func:`png_size` checks them; nothing is inflated)."""
    h, w = png_size(data, where, error)
    depth, color, _comp, _filt, interlace = struct.unpack(">BBBBB", bytes(data[24:29]))
    return PngHeader(w, h, depth, color, interlace)


#: one chunk of a walked PNG: (type, first byte of its data, end of its data)
Chunk = tuple[bytes, int, int]


def check_png(data: bytes, where: str, size: Sequence[int] | None = None,
              error: type[Exception] = RefbenchInputError, max_pixels: int = MAX_FRAME_PIXELS) -> tuple[int, int]:
    """Check a PNG's structure and declared size before decoding (module doc); returns ``(H, W)``.

    ``size``: the expected ``(H, W)``; another declared size is an ``error`` (so nothing larger is inflated).
    Without it the declared size must stay within ``max_pixels``. Bytes after ``IEND`` are ignored, as
    libpng and Pillow ignore them."""
    h, w, _chunks = walk_png(data, where, size, error, max_pixels)
    return h, w


def walk_png(data: bytes, where: str, size: Sequence[int] | None = None,
             error: type[Exception] = RefbenchInputError,
             max_pixels: int = MAX_FRAME_PIXELS) -> tuple[int, int, list[Chunk]]:
    """:func:`check_png`, returning ``(H, W, chunks)``: every chunk up to and including ``IEND`` as
    ``(type, start, end)`` (its data is ``data[start:end]``), each with a correct CRC."""
    h, w = png_size(data, where, error)
    if size is not None and (h, w) != (int(size[0]), int(size[1])):
        raise error(f"{where}: PNG is {h}x{w} (HxW), the frame is {int(size[0])}x{int(size[1])}")
    if h * w > max_pixels:
        raise error(f"{where}: PNG declares {h}x{w} pixels, more than the {max_pixels:,} refbench decodes")
    pos, n = 8, len(data)
    seen_idat = False
    chunks: list[Chunk] = []
    while True:
        if pos + 12 > n:
            raise error(f"{where}: corrupt PNG (truncated at byte {pos} of {n}, no IEND)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > n:
            raise error(f"{where}: corrupt PNG (chunk {kind!r} at byte {pos} runs past the end: truncated)")
        if zlib.crc32(data[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            raise error(f"{where}: corrupt PNG (checksum mismatch in chunk {kind.decode('latin-1')!r} at byte {pos})")
        chunks.append((kind, pos + 8, end - 4))
        if kind == b"IDAT":
            seen_idat = True
        elif kind == b"IEND":
            break
        pos = end
    if not seen_idat:
        raise error(f"{where}: corrupt PNG (no image data)")
    return h, w, chunks


__all__ = ["MAX_FRAME_PIXELS", "SIGNATURE", "Chunk", "PngHeader", "check_png", "max_png_bytes", "png_header", "png_size",
           "walk_png"]
