"""MOSE v2's smoothed J and adaptive boundary measure against an independent numpy / OpenCV reference, and the
golden per-frame values of shared/data/mosev2_golden (MOSE-api score.py).

The reference is written from the definition in docs/protocols.md#mosev2: skimage's disk of a (possibly
non-integer) radius built from its grid definition, ``cv2.dilate`` with it (the operation score.py performs),
DAVIS boundaries; refbench computes the same sets on bit-packed words, so every value must be identical.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from refbench.metrics import _bits
from refbench.metrics.mosev2 import (
    dilate, dilate_footprint, disk_footprint, footprint_rows, frame_scores, global_scores, object_row, object_scores,
    radii,
)
from tests.metrics.test_frame import _ref_bmap


def _ref_disk(r: float) -> np.ndarray:
    grid = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(grid, grid)
    return ((xx**2 + yy**2) <= r**2).astype(np.uint8)


def _ref_f(p: np.ndarray, g: np.ndarray, radius: float) -> float:
    bp, bg = _ref_bmap(p), _ref_bmap(g)
    dp = cv2.dilate(bp.astype(np.uint8), _ref_disk(radius))
    dg = cv2.dilate(bg.astype(np.uint8), _ref_disk(radius))
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


def _ref_frame(p: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    """(J, F_new, F) of one frame from the definition."""
    p, g = p != 0, g != 0
    inter, union = int(np.sum(p & g)), int(np.sum(p | g))
    j = 1.0 if union == 0 else (inter + 1) / (union + 1)
    h, w = p.shape
    d = 0.008 * np.linalg.norm((h, w))
    a = np.ceil(0.1 * np.sqrt(g.sum())) if g.any() else np.ceil(0.1 * np.linalg.norm((h, w)))
    bound = min(d, a)
    if bound < d:
        return j, _ref_f(p, g, bound), _ref_f(p, g, np.ceil(d))
    f = _ref_f(p, g, d)
    return j, f, f


def _random_masks(rng: np.random.Generator, t: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    p = np.zeros((t, h, w), np.uint8)
    g = np.zeros((t, h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for i in range(t):
        kind = i % 6
        if kind == 0:
            continue  # both empty
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1, h / 1.5), rng.uniform(1, w / 1.5)  # small to frame-filling: both radius branches
        g[i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        if kind == 1:
            continue  # empty prediction
        if kind == 2:
            p[i] = rng.random((h, w)) < 0.02  # noise
            continue
        dy, dx = rng.integers(-6, 7, size=2)
        p[i] = np.roll(g[i], (dy, dx), axis=(0, 1))
        if kind == 4:
            g[i] = 0  # false positive on an absent object
        if kind == 5:
            p[i, rng.integers(0, h), :] = 1  # a line across
    return p, g


def test_disk_footprint_is_skimage_disk():
    # the golden note: disk(7.837...) at 480x854 is 17x17 with 191 pixels (DAVIS's disk(8) has 197)
    d = 0.008 * np.linalg.norm((480, 854))
    fp = disk_footprint(d)
    assert fp.shape == (17, 17) and int(fp.sum()) == 191
    assert int(disk_footprint(8).sum()) == 197
    assert np.array_equal(disk_footprint(3), _ref_disk(3).astype(bool))


@pytest.mark.parametrize("seed", range(4))
def test_dilate_footprint_equals_cv2_on_asymmetric_kernels(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 90)), int(rng.integers(60, 200))
    kh, kw = int(rng.integers(1, 12)), int(rng.integers(1, 80))
    kernel = np.zeros((kh, kw), np.uint8)
    for j in range(kh):
        if rng.random() < 0.8:
            lo = int(rng.integers(0, kw))
            kernel[j, lo:int(rng.integers(lo, kw)) + 1] = 1
    src = (rng.random((3, h, w)) < 0.01).astype(np.uint8)
    ref = np.stack([cv2.dilate(s, kernel) for s in src])
    got = _bits.unpack(dilate_footprint(_bits.pack(torch.from_numpy(src).bool()), footprint_rows(kernel)), w)
    assert np.array_equal(got.numpy(), ref != 0)


@pytest.mark.parametrize("radius", [1.0, 4.0, 9.0, 12.0, 18.0, 7.837207665999416, 2.5, 11.749, 17.62])
def test_dilate_equals_cv2_for_integer_and_fractional_radii(radius):
    rng = np.random.default_rng(int(radius * 1000))
    src = (rng.random((2, 70, 150)) < 0.01).astype(np.uint8)
    src[:, ::7, 0] = 1  # pixels on every border: the windows that leave the image must not lose them
    src[:, ::5, -1] = 1
    src[:, 0, ::3] = 1
    ref = np.stack([cv2.dilate(s, _ref_disk(radius)) for s in src])
    got = _bits.unpack(dilate(_bits.pack(torch.from_numpy(src).bool()), radius), 150)
    assert np.array_equal(got.numpy(), ref != 0)


def test_radii_follow_the_area_rule():
    d = 0.008 * np.linalg.norm((480, 854))
    assert radii(100, 480, 854) == (8.0, 1.0)  # small object: F at ceil(d), F_new at ceil(0.1 * 10)
    assert radii(0, 480, 854) == (d, d)  # empty GT: both at the unrounded d
    assert radii(100_000, 480, 854) == (d, d)  # large object: both at d


@pytest.mark.parametrize("seed,shape", [(0, (12, 61, 83)), (1, (6, 241, 321)), (2, (6, 120, 700)), (3, (5, 480, 854))])
def test_frame_scores_equal_the_reference_on_random_masks(seed, shape, device):
    rng = np.random.default_rng(seed)
    p, g = _random_masks(rng, *shape)
    fs = frame_scores(torch.from_numpy(p).to(device), torch.from_numpy(g).to(device))
    ref = np.array([_ref_frame(p[t], g[t]) for t in range(shape[0])])
    assert fs.J.tolist() == ref[:, 0].tolist()
    assert fs.F_new.tolist() == ref[:, 1].tolist()
    assert fs.F.tolist() == ref[:, 2].tolist()
    assert fs.empty_gt.tolist() == [not g[t].any() for t in range(shape[0])]


def _golden(shared_data):
    root = shared_data / "mosev2_golden"
    return root, json.loads((root / "expected.json").read_text())


def _read(path):
    return np.asarray(Image.open(path).convert("P"))


def test_frame_scores_equal_golden_per_frame_values(shared_data):
    root, exp = _golden(shared_data)
    for key, obj in exp["per_object"].items():
        if not obj["frames_scored"]:
            continue
        video, oid = key.rsplit("_", 1)
        gt = np.stack([_read(root / "Annotations" / video / f"{f}.png") for f in obj["frames_scored"]])
        pred = np.stack([_read(root / "predictions" / video / f"{f}.png") for f in obj["frames_scored"]])
        fs = frame_scores(pred == int(oid), gt == int(oid))
        assert fs.J.tolist() == obj["J_per_frame"], key
        assert fs.F_new.tolist() == obj["F_new_per_frame"], key
        assert fs.F.tolist() == obj["F_per_frame"], key
        assert fs.empty_gt.tolist() == obj["empty_gt_per_frame"], key
        got = object_scores(fs.J, fs.F_new, fs.F, fs.empty_gt)
        for k in ("J", "F_new", "F", "disappear_J", "disappear_F_new", "reappear_J", "reappear_F_new"):
            assert got[k] == obj[k], (key, k)
        assert object_row(got) == obj["metrics_json"], key


def test_global_scores_from_golden_objects(shared_data):
    _root, exp = _golden(shared_data)
    objs = [{k: exp["per_object"][key][k] for k in ("J", "F_new", "F", "disappear_J", "disappear_F_new",
                                                      "reappear_J", "reappear_F_new")}
            for key in exp["object_order_in_this_run"]]
    assert global_scores(objs) == exp["global"]


def test_object_without_frames_scores_zero_and_disappearance_rules():
    assert object_scores([], [], [], [])["J"] == 0
    # absent in the first scored frames: not a disappearance; reappearance from frame 2
    got = object_scores([1.0, 1.0, 0.5, 0.5], [1.0, 1.0, 0.5, 0.5], [1.0] * 4, [True, True, False, False])
    assert got["disappear_J"] is None and got["reappear_J"] == 0.5
    # present, absent, present: one disappearance segment (frame 1) and one reappearance (frames 2-3)
    got = object_scores([0.9, 0.2, 0.7, 0.5], [0.9, 0.4, 0.7, 0.5], [0.0] * 4, [False, True, False, False])
    assert got["disappear_J"] == 0.2 and got["disappear_F_new"] == 0.4 and got["reappear_J"] == 0.6
