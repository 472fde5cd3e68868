"""Per-frame J and F against an independent reference built from the definition in docs/protocols.md#per-frame-j-and-f.

The reference is written from the definition with numpy and OpenCV (cv2.dilate with an explicit disk
footprint, the operation the official davis2017-evaluation code performs); refbench computes the same sets on
bit-packed words, so every value must be identical, not merely close.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from refbench.metrics import _bits, boundary_f, boundary_radius, jaccard, jaccard_and_boundary
from refbench.metrics import frame as frame_mod


def _disk(r: int) -> np.ndarray:
    ax = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(ax, ax)
    return (xx**2 + yy**2 <= r**2).astype(np.uint8)


def _ref_bmap(seg: np.ndarray) -> np.ndarray:
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _ref_j(p: np.ndarray, g: np.ndarray, v: np.ndarray | None = None) -> float:
    p, g = p != 0, g != 0
    if v is not None:
        p, g = p & ~(v != 0), g & ~(v != 0)
    inter, union = np.sum(p & g), np.sum(p | g)
    return 1.0 if union == 0 else inter / union


def _ref_f(p: np.ndarray, g: np.ndarray, v: np.ndarray | None = None, th: float = 0.008) -> float:
    p, g = p != 0, g != 0
    if v is not None:
        p, g = p & ~(v != 0), g & ~(v != 0)
    r = th if th >= 1 else np.ceil(th * np.linalg.norm(p.shape))
    bp, bg = _ref_bmap(p), _ref_bmap(g)
    dp = cv2.dilate(bp.astype(np.uint8), _disk(int(r)))
    dg = cv2.dilate(bg.astype(np.uint8), _disk(int(r)))
    n_fg, n_gt = int(bp.sum()), int(bg.sum())
    if n_fg == 0 and n_gt > 0:
        prec, rec = 1, 0
    elif n_fg > 0 and n_gt == 0:
        prec, rec = 0, 1
    elif n_fg == 0 and n_gt == 0:
        prec, rec = 1, 1
    else:
        prec = np.sum(bp & (dg > 0)) / float(n_fg)
        rec = np.sum(bg & (dp > 0)) / float(n_gt)
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def _random_masks(rng: np.random.Generator, t: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixed structures: blobs, noise, 1-pixel lines and dots, empty frames, border-touching masks."""
    p = np.zeros((t, h, w), np.uint8)
    g = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        kind = i % 7
        if kind == 0:
            continue  # both empty
        if kind == 1:
            g[i] = rng.random((h, w)) < 0.3  # pred empty, gt noise
            continue
        if kind == 2:  # 1-pixel structures
            g[i, rng.integers(h), :] = 1
            g[i, :, rng.integers(w)] = 1
            p[i, rng.integers(h), rng.integers(w)] = 1
            p[i, -1, -1] = 1
            continue
        if kind == 3:  # full frame vs border-touching box
            p[i] = 1
            g[i, : max(1, h // 2), w // 3 :] = 1
            continue
        base = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), max(1.0, min(h, w) / 12))
        g[i] = base > np.quantile(base, 0.6)
        shift = rng.integers(-3, 4, size=2)
        p[i] = np.roll(g[i], tuple(shift), axis=(0, 1))
        if kind == 5:
            p[i] |= rng.random((h, w)) < 0.02
        if kind == 6:
            p[i], g[i] = g[i], np.zeros_like(g[i])
    return p * 255, g


SIZES = [(1, 1), (1, 7), (7, 1), (2, 3), (64, 64), (65, 129), (97, 131), (128, 192), (481, 855)]


@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_j_and_f_equal_reference_bit_for_bit(hw, device):
    h, w = hw
    rng = np.random.default_rng(h * 1000 + w)
    p, g = _random_masks(rng, 14, h, w)
    j, f = jaccard_and_boundary(torch.from_numpy(p).to(device), torch.from_numpy(g).to(device))
    assert j.dtype == torch.float64 and f.dtype == torch.float64 and j.device.type == device
    ref_j = np.array([_ref_j(p[i], g[i]) for i in range(len(p))])
    ref_f = np.array([_ref_f(p[i], g[i]) for i in range(len(p))])
    np.testing.assert_array_equal(j.cpu().numpy(), ref_j)
    np.testing.assert_array_equal(f.cpu().numpy(), ref_f)


def test_known_values():
    g = np.zeros((1, 40, 50), np.uint8)
    g[0, 10:20, 10:30] = 1
    p = np.zeros_like(g)
    p[0, 10:20, 20:40] = 1
    assert jaccard(p, g).tolist() == [100 / 300]
    assert jaccard(g, g).tolist() == [1.0]
    assert boundary_f(g, g).tolist() == [1.0]
    empty = np.zeros_like(g)
    assert jaccard(empty, empty).tolist() == [1.0]
    assert boundary_f(empty, empty).tolist() == [1.0]
    assert jaccard(empty, g).tolist() == [0.0]
    assert boundary_f(empty, g).tolist() == [0.0]
    assert boundary_f(g, empty).tolist() == [0.0]


def test_void_and_dtypes():
    rng = np.random.default_rng(5)
    p, g = _random_masks(rng, 7, 60, 90)
    v = (rng.random(p.shape) < 0.1).astype(np.uint8) * 255
    j, f = jaccard_and_boundary(p, g, void=v)
    assert j.tolist() == [_ref_j(p[i], g[i], v[i]) for i in range(7)]
    assert f.tolist() == [_ref_f(p[i], g[i], v[i]) for i in range(7)]
    base_j, base_f = jaccard_and_boundary(p, g)
    for dtype in (np.bool_, np.int32, np.int64, np.uint16, np.int8):
        jj, ff = jaccard_and_boundary((p != 0).astype(dtype), g.astype(dtype))
        assert torch.equal(jj, base_j) and torch.equal(ff, base_f), dtype
    # a 2-D pair is one frame
    assert jaccard(p[3], g[3]).shape == (1,)


def test_bound_th_in_pixels():
    rng = np.random.default_rng(9)
    p, g = _random_masks(rng, 7, 50, 70)
    f = boundary_f(p, g, bound_th=3)
    assert f.tolist() == [_ref_f(p[i], g[i], th=3) for i in range(7)]
    with pytest.raises(ValueError, match="integer"):
        boundary_f(p, g, bound_th=2.5)


@pytest.mark.parametrize(
    "hw,r", [((480, 854), 8), ((720, 1280), 12), ((1080, 1920), 18), ((360, 640), 6), ((1, 1), 1)]
)
def test_boundary_radius(hw, r):
    assert boundary_radius(*hw) == r
    assert boundary_radius(*hw) == int(np.ceil(0.008 * np.linalg.norm(hw)))


def test_radius_beyond_one_word():
    """A radius of 64 or more shifts whole words; check it against the reference."""
    rng = np.random.default_rng(3)
    p, g = _random_masks(rng, 7, 30, 200)
    f = boundary_f(p, g, bound_th=70)
    assert f.tolist() == [_ref_f(p[i], g[i], th=70) for i in range(7)]


def test_chunking_and_crop_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(11)
    p, g = _random_masks(rng, 21, 70, 150)
    # small objects far from the border exercise the content crop
    p[5:9] = 0
    g[5:9] = 0
    p[5:9, 30:40, 70:90] = 255
    g[5:9, 31:42, 66:88] = 1
    whole = jaccard_and_boundary(p, g)
    monkeypatch.setattr(frame_mod, "_CHUNK_WORDS", 1)  # one frame per chunk
    one = jaccard_and_boundary(p, g)
    assert torch.equal(whole[0], one[0]) and torch.equal(whole[1], one[1])
    assert one[0].tolist() == [_ref_j(p[i], g[i]) for i in range(21)]
    assert one[1].tolist() == [_ref_f(p[i], g[i]) for i in range(21)]


def test_pack_roundtrip_and_shift_semantics():
    rng = np.random.default_rng(1)
    m = torch.from_numpy(rng.random((3, 5, 131)) < 0.5)
    words = _bits.pack(m)
    assert words.shape == (3, 5, 3)
    assert torch.equal(_bits.unpack(words, 131), m)
    # the packing relies on torch's wrap-around for int64 products and left shifts
    assert int(torch.tensor([1 << 62]) << 1) == -(1 << 63)
    for s in (1, 5, 63, 64, 70, 130):
        east = _bits.unpack(_bits.take_east(words, s), 131)
        west = _bits.unpack(_bits.take_west(words, s), 131)
        exp_e = torch.zeros_like(m)
        exp_w = torch.zeros_like(m)
        if s < 131:
            exp_e[..., : 131 - s] = m[..., s:]
            exp_w[..., s:] = m[..., : 131 - s]
        assert torch.equal(east, exp_e) and torch.equal(west, exp_w), s
    counts = _bits.count(words)
    assert counts.tolist() == m.flatten(1).sum(1).tolist()


def test_boundary_map_equals_seg2bmap():
    rng = np.random.default_rng(2)
    for h, w in [(1, 1), (3, 64), (9, 65), (33, 200)]:
        m = rng.random((4, h, w)) < 0.4
        got = _bits.unpack(_bits.boundary(_bits.pack(torch.from_numpy(m)), w), w).numpy()
        for i in range(4):
            np.testing.assert_array_equal(got[i], _ref_bmap(m[i]))


def test_bad_input():
    with pytest.raises(ValueError, match="shapes differ"):
        jaccard(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="integer or bool"):
        jaccard(np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        jaccard(np.zeros((4,), np.uint8), np.zeros((4,), np.uint8))
    assert jaccard(np.zeros((0, 4, 4), np.uint8), np.zeros((0, 4, 4), np.uint8)).shape == (0,)


def test_disk_half_widths_match_skimage_definition():
    for r in (1, 6, 8, 12, 18, 40):
        d = _disk(r)
        assert _bits.disk_half_widths(r) == [int(d[r + dy].sum() // 2) for dy in range(r + 1)]
        assert math.isqrt(r * r) == r


@pytest.mark.parametrize("shape", [(3, 2, 4, 37, 129), (5, 3, 6, 64, 64), (2, 1, 3, 1, 7), (4, 2, 5, 97, 131)])
def test_pairwise_equals_per_pair(shape, device):
    """Shared boundaries and dilations give the per-pair J and F bit for bit (with and without void)."""
    from refbench.metrics.frame import pairwise_jaccard_and_boundary

    n_p, n_g, t, h, w = shape
    rng = np.random.default_rng(sum(shape))
    preds = torch.from_numpy(rng.random((n_p, t, h, w)) > 0.7).to(device)
    preds[0] = False  # an empty proposal
    gts = torch.from_numpy(rng.random((n_g, t, h, w)) > 0.8).to(device)
    void = torch.from_numpy(rng.random((t, h, w)) > 0.95).to(device)
    for v in (None, void):
        jj, ff = pairwise_jaccard_and_boundary(preds, gts, v)
        assert jj.shape == ff.shape == (n_p, n_g, t)
        for p in range(n_p):
            for g in range(n_g):
                j, f = jaccard_and_boundary(preds[p], gts[g], v)
                assert torch.equal(jj[p, g], j) and torch.equal(ff[p, g], f)
                assert np.array_equal(j.cpu().numpy(), [_ref_j(preds[p, i].cpu().numpy(), gts[g, i].cpu().numpy(),
                                                                None if v is None else v[i].cpu().numpy())
                                                        for i in range(t)])


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (65, 129), (97, 131), (481, 855)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_torch_word_path_equals_numpy_path(hw):
    """CPU scoring runs on numpy words; every other device on torch words. Run the torch path on CPU tensors
    so that the GPU code is checked where no GPU is present."""
    h, w = hw
    rng = np.random.default_rng(h + 7 * w)
    p, g = _random_masks(rng, 14, h, w)
    v = (rng.random(p.shape) < 0.05).astype(np.uint8)
    for void in (None, v):
        a = jaccard_and_boundary(p, g, void)
        b = frame_mod._jaccard_and_boundary_torch(torch.from_numpy(p), torch.from_numpy(g),
                                                 None if void is None else torch.from_numpy(void), 0.008, True, True)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert a[0].tolist() == [_ref_j(p[i], g[i], None if void is None else void[i]) for i in range(14)]
        assert a[1].tolist() == [_ref_f(p[i], g[i], None if void is None else void[i]) for i in range(14)]


def test_packed_entry_point_equals_unpacked(device):
    rng = np.random.default_rng(21)
    p, g = _random_masks(rng, 14, 97, 131)
    j, f = jaccard_and_boundary(p, g)
    pw, gw = _bits.pack_numpy(p), _bits.pack_numpy(g)
    assert pw.dtype == np.uint64 and pw.shape == (14, 97, 3)
    assert torch.equal(_bits.pack(torch.from_numpy(p)), torch.from_numpy(pw.view(np.int64)))
    jj, ff = frame_mod.jaccard_and_boundary_packed(pw, gw, 131)
    assert torch.equal(jj, j) and torch.equal(ff, f)
    tj, tf = frame_mod.jaccard_and_boundary_packed(torch.from_numpy(pw.view(np.int64)).to(device),
                                                   torch.from_numpy(gw.view(np.int64)).to(device), 131)
    assert torch.equal(tj.cpu(), j) and torch.equal(tf.cpu(), f)
    with pytest.raises(ValueError, match="words per row"):
        frame_mod.jaccard_and_boundary_packed(pw, gw, 200)
    with pytest.raises(TypeError, match="both"):
        frame_mod.jaccard_and_boundary_packed(pw, torch.from_numpy(gw.view(np.int64)), 131)


def test_numpy_boundary_and_shifts_equal_torch():
    rng = np.random.default_rng(4)
    m = rng.random((3, 17, 131)) > 0.6
    tw = _bits.pack(torch.from_numpy(m))
    nw = _bits.pack_numpy(m)
    assert np.array_equal(_bits.unpack(nw, 131), m)
    for s in (0, 1, 5, 63, 64, 65, 130, 200):
        assert np.array_equal(_bits.take_east(nw, s).view(np.int64), _bits.take_east(tw, s).numpy()), s
        assert np.array_equal(_bits.take_west(nw, s).view(np.int64), _bits.take_west(tw, s).numpy()), s
    assert np.array_equal(_bits.boundary(nw, 131).view(np.int64), _bits.boundary(tw, 131).numpy())
    for r in (1, 8, 12, 70):
        assert np.array_equal(_bits.dilate_disk(nw, r).view(np.int64), _bits.dilate_disk(tw, r).numpy()), r
    assert _bits.count(nw).tolist() == _bits.count(tw).tolist()
    assert np.array_equal(_bits.popcount_np(nw), _bits.popcount(tw).numpy())
