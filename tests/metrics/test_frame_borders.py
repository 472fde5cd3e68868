"""The disk dilation under J and F at the image borders, for radii >= 9 (frames of about 720p and up).

Regression: the widening chain of ``_bits.dilate_disk`` took steps d up to 2a + 1; a step d > a + 1 loses, in the
first row of its bit line, the pixels within d of the left edge (their shifted copy falls before the start of the
buffer). DAVIS F at 720x1280 (radius 12) then missed a match between a boundary pixel at (0, 0) and one at (11, 2).
Steps d <= a + 1 are exact at every border."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from refbench.metrics import _bits, jaccard_and_boundary
from tests.metrics.test_frame import _disk, _ref_f


@pytest.mark.parametrize("guarded", [False, True])
def test_dilate_disk_equals_cv2_at_every_border(guarded):
    for r in range(1, 40):
        src = np.zeros((80, 200), np.uint8)
        for x0 in (0, 1, 2, 3, 5, 63, 64, 127):
            src[0, x0] = src[40, x0] = src[79, 199 - x0] = 1
        words = _bits.pack(torch.from_numpy(src[None]).bool())
        if guarded:
            g = torch.zeros((1, 80, words.shape[-1] + 1), dtype=words.dtype)
            g[..., :-1] = words
            out = _bits.dilate_disk(g, r, guarded=True)[..., :-1]
        else:
            out = _bits.dilate_disk(words, r)
        ref = cv2.dilate(src, _disk(r)) != 0
        assert np.array_equal(_bits.unpack(out, 200).numpy()[0], ref), r


def test_boundary_f_top_left_corner_at_720p(device):
    p = np.zeros((720, 1280), np.uint8)
    g = np.zeros((720, 1280), np.uint8)
    p[0, 0] = 1
    g[11, 2] = 1  # 11.2 px away: within the 12 px tolerance
    _j, f = jaccard_and_boundary(torch.from_numpy(p[None]).to(device), torch.from_numpy(g[None]).to(device))
    assert float(f[0]) == _ref_f(p, g) == 1.0
