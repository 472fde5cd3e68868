"""refbench's COCO RLE encoder writes pycocotools' strings byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from refbench.runs import store
from refbench.runs.rle_encode import encode_frame, rle_counts


def _ref(m: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode("ascii")


def _masks(rng: np.random.Generator, h: int, w: int):
    yield np.zeros((h, w), bool)
    yield np.ones((h, w), bool)
    yield rng.random((h, w)) > 0.5
    yield rng.random((h, w)) > 0.995
    m = np.zeros((h, w), bool)
    m[h // 3 :, w // 4 :] = True  # touches the bottom and right borders
    yield m
    m = rng.random((h, w)) > 0.5
    m[0, 0] = True  # the first run is ones: counts start with 0
    yield m
    yy, xx = np.ogrid[:h, :w]
    yield ((yy - h / 2) / max(h / 3, 1)) ** 2 + ((xx - w / 3) / max(w / 4, 1)) ** 2 <= 1
    m = np.zeros((h, w), bool)
    m[:, ::2] = True  # every column a run: long counts next to short ones
    yield m


@pytest.mark.parametrize("hw", [(1, 1), (1, 9), (9, 1), (2, 3), (7, 8), (64, 64), (97, 131), (480, 854),
                                (720, 1280)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_strings_equal_pycocotools(hw):
    rng = np.random.default_rng(hw[0] * 7 + hw[1])
    for i, m in enumerate(_masks(rng, *hw)):
        assert encode_frame(m) == _ref(m), (hw, i)
        assert encode_frame(m.astype(np.uint8) * 255) == _ref(m), (hw, i)
        assert int(rle_counts(m).sum()) == m.size


def test_large_counts_take_many_groups():
    m = np.zeros((3000, 2000), bool)
    m[-1, -1] = True  # a run of 5,999,999 zeros, then one
    assert encode_frame(m) == _ref(m)
    m = ~m
    assert encode_frame(m) == _ref(m)


def test_store_encoders_equal_pycocotools_on_stacks():
    rng = np.random.default_rng(1)
    stack = np.stack(list(_masks(rng, 45, 77)))
    ref = mask_utils.encode(np.asfortranarray(stack.transpose(1, 2, 0).astype(np.uint8)))
    got = store.encode_masks(stack)
    assert got["size"] == [45, 77] and got["rles"] == [e["counts"].decode() for e in ref]
    assert store.encode_masks(stack.astype(np.uint8))["rles"] == got["rles"]
    for m, e in zip(stack, ref):
        assert store.encode_mask(m) == {"size": [45, 77], "counts": e["counts"].decode()}
    assert store.encode_masks(np.zeros((0, 4, 5), bool)) == {"size": [4, 5], "rles": []}
    back = store.decode_masks(got)
    assert np.array_equal(back, stack)
