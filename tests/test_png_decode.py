"""The fast PNG reader equals the official readers on every file of a corpus written by PIL, OpenCV and by hand.

grey: ``cv2.imread(p, cv2.IMREAD_GRAYSCALE)`` (MeViS, ReVOS); index: ``np.array(Image.open(p))`` (DAVIS). The
corpus covers 'L', palette (with and without tRNS, short palettes, 1/2/4-bit), RGB, RGBA, LA, 1/2/4-bit and 16-bit
files, OpenCV's compression strategies and bilevel output, and hand-made files with every filter type, several
IDAT chunks, interlacing, EXIF orientation, bad CRCs and trailing data. Each file is compared with the official
reader; the mask files must also take the fast path (else the comparison would only test the fallback). A file
that :func:`refbench.png.walk_png` refuses (a bad CRC, truncated) is refused by ours too, on purpose: refbench
never decodes a corrupt PNG, where the official readers may return pixels.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from refbench import png_decode as P
from refbench.errors import RefbenchInputError
from refbench.png import SIGNATURE, png_header, walk_png

H, W = 90, 133  # odd sizes: rows that are not a multiple of 8 bytes, words that straddle rows


def _ellipses(h: int = H, w: int = W, t: int = 0) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    a = ((yy - h * 0.4 - t) / (h * 0.25)) ** 2 + ((xx - w * 0.5 + t) / (w * 0.3)) ** 2 <= 1
    b = ((yy - h * 0.7) / (h * 0.12)) ** 2 + ((xx - w * 0.25) / (w * 0.1)) ** 2 <= 1
    return a.astype(np.uint8) + 2 * b.astype(np.uint8)


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _filter_rows(img: np.ndarray, filters: list[int], bpp: int = 1) -> bytes:
    """PNG filtering of (h, rowbytes) uint8 scanlines, one filter type per row (the PNG spec, 6.6)."""
    h, rb = img.shape
    out = bytearray()
    prev = np.zeros(rb, dtype=np.int64)
    for y in range(h):
        cur = img[y].astype(np.int64)
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        f = filters[y]
        if f == 0:
            row = cur
        elif f == 1:
            row = cur - left
        elif f == 2:
            row = cur - prev
        elif f == 3:
            row = cur - (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            row = cur - pred
        out.append(f)
        out += (row % 256).astype(np.uint8).tobytes()
        prev = cur
    return bytes(out)


def _png(img: np.ndarray, filters: list[int], *, color: int = 0, depth: int = 8, palette: bytes | None = None,
         extra: list[tuple[bytes, bytes]] = (), idat_parts: int = 1, trns: bytes | None = None,
         zlib_tail: bytes = b"", after_iend: bytes = b"", width: int | None = None) -> bytes:
    """A PNG of scanlines ``img`` (already packed for depth < 8) with the given per-row filters."""
    h = img.shape[0]
    w = width if width is not None else img.shape[1]
    body = zlib.compress(_filter_rows(img, filters)) + zlib_tail
    out = SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    for ctype, data in extra:
        out += _chunk(ctype, data)
    if palette is not None:
        out += _chunk(b"PLTE", palette)
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    step = max(1, -(-len(body) // idat_parts))
    for i in range(0, len(body), step):
        out += _chunk(b"IDAT", body[i : i + step])
    return out + _chunk(b"IEND", b"") + after_iend


def _adam7(img: np.ndarray) -> bytes:
    """An interlaced 8-bit grey PNG (Adam7, every pass filtered with none)."""
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]
    raw = bytearray()
    for y0, x0, dy, dx in passes:
        sub = img[y0::dy, x0::dx]
        if sub.size:
            for row in sub:
                raw += b"\x00" + row.tobytes()
    h, w = img.shape
    return (SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1))
            + _chunk(b"IDAT", zlib.compress(bytes(raw))) + _chunk(b"IEND", b""))


def _davis_palette() -> list[int]:
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _corpus(d: Path) -> dict[str, bool]:
    """Write the corpus into ``d``; ``{file name: True if it must take the fast path}``."""
    rng = np.random.default_rng(0)
    files: dict[str, bool] = {}
    lab = _ellipses()
    mask = (lab > 0).astype(np.uint8) * 255
    noise = rng.integers(0, 256, (H, W), dtype=np.uint8)

    def pil(name: str, im: Image.Image, fast: bool, **kw) -> None:
        im.save(d / name, **kw)
        files[name] = fast

    def cv(name: str, arr: np.ndarray, fast: bool, params: list[int] = ()) -> None:
        assert cv2.imwrite(str(d / name), arr, list(params))
        files[name] = fast

    def raw(name: str, data: bytes, fast: bool) -> None:
        (d / name).write_bytes(data)
        files[name] = fast

    # PIL: what the official inference scripts write
    pil("pil_L_0_255.png", Image.fromarray(mask), True)
    pil("pil_L_0_1.png", Image.fromarray(mask // 255), True)
    pil("pil_L_labels.png", Image.fromarray(lab * 40), True)  # PIL picks a Paeth row here
    for t in range(1, 4):
        pil(f"pil_L_moved{t}.png", Image.fromarray(((_ellipses(t=3 * t) > 0) * 255).astype(np.uint8)), True)
    pil("pil_L_empty.png", Image.fromarray(np.zeros((H, W), np.uint8)), True)
    pil("pil_L_full.png", Image.fromarray(np.full((H, W), 255, np.uint8)), True)
    pil("pil_L_1xN.png", Image.fromarray(mask[:1]), True)
    pil("pil_L_Nx1.png", Image.fromarray(mask[:, 60:61].copy()), True)
    pil("pil_L_optimize.png", Image.fromarray(mask), True, optimize=True)
    for lvl in (0, 1, 9):
        pil(f"pil_L_level{lvl}.png", Image.fromarray(mask), True, compress_level=lvl)
    pil("pil_L_noise.png", Image.fromarray(noise), False)
    pil("pil_L_trns.png", Image.fromarray(mask), False, transparency=0)
    pal_im = Image.fromarray(lab, mode="P")
    pal_im.putpalette(_davis_palette())
    pil("pil_P_davis.png", pal_im, True)
    short = Image.fromarray(lab, mode="P")
    short.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10, 7, 7, 240])
    pil("pil_P_short.png", short, True)
    pil("pil_P_trns.png", short, True, transparency=0)
    pil("pil_P_trns_bytes.png", short, True, transparency=b"\x00\x80\xff\x10")
    pil("pil_P_bits1_palette_short.png", Image.fromarray((lab > 0).astype(np.uint8), mode="P"), False, bits=1)
    two = Image.fromarray((lab > 0).astype(np.uint8), mode="P")
    two.putpalette([0, 0, 0, 255, 255, 255])
    pil("pil_P_bits1.png", two, True, bits=1)
    pil("pil_P_bits2.png", short, True, bits=2)
    pil("pil_P_bits4.png", short, True, bits=4)
    yy, xx = np.mgrid[:H, :W]
    ramp = Image.fromarray(((xx // 8 + yy // 6 * 17) % 256).astype(np.uint8), mode="P")
    ramp.putpalette(rng.integers(0, 256, 768).tolist())
    pil("pil_P_ramp_random_palette.png", ramp, True)
    big_noise = rng.integers(0, 256, (480, 854), dtype=np.uint8)
    pil("pil_L_noise_480p.png", Image.fromarray(big_noise), False)
    cv("cv2_gray_noise_480p.png", big_noise, False)
    dense = Image.fromarray(noise, mode="P")
    dense.putpalette(rng.integers(0, 256, 768).tolist())
    pil("pil_P_dense.png", dense, False)
    pil("pil_1.png", Image.fromarray(mask > 0).convert("1"), True)
    pil("pil_LA.png", Image.fromarray(np.dstack([mask, mask]), mode="LA"), False)
    rgb = np.dstack([mask, mask // 2, mask // 3])
    pil("pil_RGB.png", Image.fromarray(rgb), False)
    pil("pil_RGB_dark.png", Image.fromarray(np.dstack([mask // 255, mask // 255 * 2, mask * 0])), False)
    pil("pil_RGBA.png", Image.fromarray(np.dstack([rgb, mask])), False)
    pil("pil_I16.png", Image.fromarray((lab.astype(np.uint16) * 20000)), False)
    # OpenCV: what cv2.imwrite writes
    cv("cv2_gray.png", mask, True)
    cv("cv2_gray_labels.png", lab * 50, True)
    cv("cv2_gray_noise.png", noise, False)
    for lvl in (0, 1, 9):
        cv(f"cv2_gray_level{lvl}.png", mask, True, [cv2.IMWRITE_PNG_COMPRESSION, lvl])
    for name in ("DEFAULT", "FILTERED", "HUFFMAN_ONLY", "RLE", "FIXED"):
        cv(f"cv2_gray_strategy_{name}.png", mask, True,
           [cv2.IMWRITE_PNG_STRATEGY, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{name}")])
    cv("cv2_bilevel.png", mask, True, [cv2.IMWRITE_PNG_BILEVEL, 1])
    cv("cv2_gray16.png", lab.astype(np.uint16) * 30000, False)
    cv("cv2_bgr.png", rgb, False)
    cv("cv2_bgra.png", np.dstack([rgb, mask]), False)
    # by hand: every filter, chunk layouts, and files the fast path must hand over
    sparse_filters = rng.choice([0, 1, 2], size=H).tolist()
    raw("hand_mixed.png", _png(mask, sparse_filters), True)
    raw("hand_mixed_labels.png", _png(lab * 77, sparse_filters), True)
    raw("hand_up_first.png", _png(mask, [2] * H), True)
    raw("hand_none.png", _png(mask, [0] * H), True)
    raw("hand_sub.png", _png(lab * 100, [1] * H), True)
    raw("hand_avg.png", _png(mask, [3 if y == 40 else 1 for y in range(H)]), False)
    raw("hand_paeth.png", _png(mask, [4 if y % 5 == 0 else 2 for y in range(H)]), True)
    raw("hand_paeth_all.png", _png(lab * 60, [4] * H), True)
    raw("hand_paeth_noise.png", _png(noise &  0xC0, [4] * H), False)
    raw("hand_bad_filter.png", _png(mask, [5 if y == 7 else 1 for y in range(H)]), False)
    raw("hand_idat_parts.png", _png(mask, sparse_filters, idat_parts=7), True)
    raw("hand_text_gama.png", _png(mask, sparse_filters, extra=[(b"gAMA", struct.pack(">I", 45455)),
                                                                  (b"sRGB", b"\x00"), (b"tEXt", b"k\x00v")]), True)
    raw("hand_after_iend.png", _png(mask, sparse_filters, after_iend=b"garbage"), True)
    raw("hand_zlib_tail.png", _png(mask, sparse_filters, zlib_tail=b"\x00\x01"), True)
    packed = np.packbits(mask > 0, axis=1)
    raw("hand_gray1_mixed.png", _png(packed, sparse_filters, depth=1, width=W), True)
    for depth in (2, 4):
        levels = (lab % (1 << depth)).astype(np.uint8)
        per = 8 // depth
        padded = np.zeros((H, -(-W // per) * per), np.uint8)
        padded[:, :W] = levels
        packed_d = np.zeros((H, padded.shape[1] // per), np.uint8)
        for i in range(per):
            packed_d |= padded[:, i::per] << (8 - depth * (i + 1))
        raw(f"hand_gray{depth}.png", _png(packed_d, sparse_filters, depth=depth, width=W), True)
        raw(f"hand_pal{depth}.png", _png(packed_d, [1] * H, color=3, depth=depth, width=W,
                                          palette=bytes(_davis_palette()[: 3 * (1 << depth)])), True)
    raw("hand_pal1.png", _png(packed, [1] * H, color=3, depth=1, width=W, palette=b"\x00\x00\x00\xc8\x20\x40"),
        True)
    raw("hand_pal_gama.png", _png(lab, sparse_filters, color=3, palette=bytes(_davis_palette()[:9]),
                                  extra=[(b"gAMA", struct.pack(">I", 100000))]), True)
    raw("hand_pal_index_beyond.png", _png(lab, [1] * H, color=3, palette=b"\x00\x00\x00\xff\xff\xff"), False)
    raw("hand_interlaced.png", _adam7(mask), False)
    good = _png(mask, sparse_filters)
    i = good.index(b"IDAT")
    raw("hand_bad_crc.png", good[: i + 6] + bytes([good[i + 6] ^ 1]) + good[i + 7 :], False)
    raw("hand_truncated.png", good[: len(good) // 2], False)
    ex = Image.Exif()
    ex[0x0112] = 6  # rotate 90 degrees
    pil("pil_L_exif_rotated.png", Image.fromarray(mask), False, exif=ex.tobytes())
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, bool]]:
    d = tmp_path_factory.mktemp("png_corpus")
    return d, _corpus(d)


def _official_grey(path: Path) -> np.ndarray | None:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def _official_index(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            return np.array(im)
    except Exception:  # noqa: BLE001 - PIL raises assorted errors on broken files
        return None


def _ours(path: Path, values: str) -> np.ndarray | None:
    try:
        return P.read_png(path, values)
    except Exception:  # noqa: BLE001 - compared with the official reader failing
        return None


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if b.dtype == bool:  # PIL's mode '1'
        b = b.astype(np.uint8)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def _refused(data: bytes) -> bool:
    try:
        walk_png(data, "x")
    except RefbenchInputError:
        return True
    return False


def test_corpus_equals_official_readers(corpus):
    d, files = corpus
    fast_taken = 0
    refused = []
    for name, must_be_fast in sorted(files.items()):
        path = d / name
        data = path.read_bytes()
        if _refused(data):
            refused.append(name)
            for values in ("grey", "index"):
                with pytest.raises(RefbenchInputError, match="corrupt PNG"):
                    P.read_png(path, values)
            continue
        for values, official in (("grey", _official_grey), ("index", _official_index)):
            ref = official(path)
            assert _same(_ours(path, values), ref), f"{name} ({values})"
            fast = P.decode_fast(data, values)
            if fast is not None:
                fast_taken += 1
                assert _same(fast, ref), f"{name} ({values}): the fast path differs"
            if must_be_fast:
                assert fast is not None, f"{name} ({values}) should take the fast path"
    assert fast_taken >= 2 * sum(files.values())
    assert sorted(refused) == ["hand_bad_crc.png", "hand_truncated.png"]


def test_fast_path_refuses_what_it_does_not_handle(corpus):
    d, files = corpus
    for name in ("hand_avg.png", "hand_paeth_noise.png", "hand_bad_filter.png", "hand_interlaced.png",
                 "hand_bad_crc.png", "hand_truncated.png", "hand_pal_index_beyond.png", "pil_I16.png",
                 "pil_RGB.png", "pil_L_exif_rotated.png", "pil_L_trns.png", "pil_L_noise_480p.png",
                 "cv2_gray_noise_480p.png"):
        assert P.decode_fast((d / name).read_bytes(), "grey") is None, name


def test_exif_orientation_and_palette_grey_are_opencv_s(corpus):
    """Two places where a plain decode differs from cv2: EXIF rotation, and palette -> grey weights."""
    d, _ = corpus
    rot = _official_grey(d / "pil_L_exif_rotated.png")
    assert rot.shape == (W, H)  # OpenCV applies the orientation; the fallback keeps it
    assert _same(_ours(d / "pil_L_exif_rotated.png", "grey"), rot)
    name = "pil_P_ramp_random_palette.png"
    with Image.open(d / name) as im:
        pil_grey = np.array(im.convert("L"))
    cv_grey = _official_grey(d / name)
    assert not np.array_equal(pil_grey, cv_grey)  # PIL's weights are not OpenCV's ...
    assert _same(P.decode_fast((d / name).read_bytes(), "grey"), cv_grey)  # ... and ours are OpenCV's


def test_expected_size_is_checked_from_the_header(corpus):
    d, _ = corpus
    data = (d / "pil_L_0_255.png").read_bytes()
    assert png_header(data).size == (H, W)
    with pytest.raises(RefbenchInputError, match=rf"PNG: PNG is {H}x{W} \(HxW\), the frame is {H}x{W + 1}"):
        P.read_png(data, "grey", size=(H, W + 1))
    assert P.read_png(data, "grey", size=(H, W)).shape == (H, W)
    with pytest.raises(RefbenchInputError, match="not a PNG"):
        P.read_png(b"GIF89a" + bytes(40), "grey")
    with pytest.raises(ValueError, match="value semantics"):
        P.read_png(data, "colour")


def _golden_pngs(shared: Path, every: int) -> list[Path]:
    files = sorted(shared.rglob("*.png"))
    return files[::every]


def _check_golden(files: list[Path]) -> int:
    fast = 0
    for path in files:
        data = path.read_bytes()
        for values, official in (("grey", _official_grey), ("index", _official_index)):
            ref = official(path)
            assert _same(_ours(path, values), ref), f"{path} ({values})"
            fast += P.decode_fast(data, values) is not None
    return fast


def test_golden_pngs_sample(shared_data):
    files = _golden_pngs(shared_data, 25)
    assert len(files) > 150
    assert _check_golden(files) >= len(files)  # the DAVIS masks take the fast path


@pytest.mark.slow
def test_golden_pngs_all(shared_data):
    files = _golden_pngs(shared_data, 1)
    _check_golden(files)
