"""COCO RLE decoded straight into the scorers' words equals pycocotools' decode, packed."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco

from refbench.data.base import DatasetError
from refbench.data.rle_words import rle_list_words
from refbench.errors import RefbenchInputError
from refbench.metrics._bits import pack_numpy
from refbench.rle import decode_rle_words, runs_to_words

SIZES = [(1, 1), (1, 64), (1, 65), (2, 63), (7, 3), (17, 200), (31, 129), (64, 64), (90, 133), (240, 427)]


def _masks(rng: np.random.Generator, h: int, w: int) -> list[np.ndarray]:
    yy, xx = np.ogrid[:h, :w]
    blob = ((yy - h * 0.45) / max(h * 0.3, 1)) ** 2 + ((xx - w * 0.55) / max(w * 0.35, 1)) ** 2 <= 1
    full_cols = np.zeros((h, w), bool)
    full_cols[:, w // 3: w // 3 + max(1, w // 4)] = True  # runs spanning many whole columns
    return [rng.random((h, w)) < p for p in (0.03, 0.5, 0.97)] + [
        np.zeros((h, w), bool), np.ones((h, w), bool), blob, full_cols, blob ^ full_cols]


def _encode(m: np.ndarray) -> dict:
    rle = coco.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


@pytest.mark.parametrize("h,w", SIZES)
def test_words_equal_pycocotools_decode(h, w):
    rng = np.random.default_rng(h * 1000 + w)
    for m in _masks(rng, h, w):
        rle = _encode(m)
        want = pack_numpy(coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}))
        got = decode_rle_words(rle, "x")
        assert got.dtype == np.uint64 and got.shape == want.shape and np.array_equal(got, want), (h, w)
        out = np.full_like(want, 0xFFFF)  # out= is overwritten, not OR-ed into
        assert np.array_equal(decode_rle_words(rle, "x", (h, w), out=out), want) and np.array_equal(out, want)


def test_uncompressed_counts_with_zero_runs():
    """Zero-length runs (adjacent foreground runs) and a leading zero background run."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        n = h * w
        cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 12))))
        runs = np.diff(np.concatenate([[0], cuts, [n]])).tolist()
        rle = {"size": [h, w], "counts": runs}
        want = pack_numpy(coco.decode(coco.frPyObjects(rle, h, w)))
        assert np.array_equal(decode_rle_words(rle, "x"), want), (h, w, runs)
        assert np.array_equal(runs_to_words(np.asarray(runs, dtype=np.int64), h, w), want)


def test_list_words_check_every_rle():
    good = _encode(np.eye(5, 7, dtype=bool))
    words = rle_list_words([good, None, good], (5, 7), lambda t: f"m.json: anno 3 frame {t}", DatasetError)
    assert words.shape == (3, 5, 1) and not words[1].any() and np.array_equal(words[0], words[2])
    with pytest.raises(DatasetError, match=r"^m.json: anno 3 frame 1: RLE size 7x5 \(HxW\) differs"):
        rle_list_words([good, _encode(np.zeros((7, 5), bool))], (5, 7), lambda t: f"m.json: anno 3 frame {t}",
                       DatasetError)
    with pytest.raises(RefbenchInputError, match="runs add up to 34 pixels"):
        rle_list_words([{"size": [5, 7], "counts": [30, 4]}], (5, 7))
    with pytest.raises(RefbenchInputError, match="outside the COCO alphabet"):
        decode_rle_words({"size": [5, 7], "counts": "~~"}, "x")
