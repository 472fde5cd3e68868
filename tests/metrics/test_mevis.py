"""MeViS per-expression J/F and dataset score against the official golden values (``shared/data/mevis_golden``)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from refbench.metrics.frame import jaccard_and_boundary
from refbench.metrics.mevis import (
    MevisMeter,
    decode_rle,
    expression_gt,
    expression_jf,
    frame_jf,
    mevis_scores,
)

GOLDEN = "mevis_golden"

# pycocotools 2.0.x warns about numpy 2's copy keyword on every decode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _rle(mask: np.ndarray) -> dict:
    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(enc["size"]), "counts": enc["counts"].decode("ascii")}


# ----------------------------------------------------------------------------------------------
# Golden data
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden(shared_data: Path) -> dict:
    """Meta, mask_dict, expected values and every expression's (pred, gt) arrays, read once.

    Predictions: 'L' PNGs read as grey (any non-zero is foreground); a missing video folder is recorded
    as ``None`` (the official [0, 0] rule).
    """
    root = shared_data / GOLDEN
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    meta = json.loads((root / "valid_u" / "meta_expressions.json").read_text())["videos"]
    mask_dict = json.loads((root / "valid_u" / "mask_dict.json").read_text())
    items = {}
    for vid, video in meta.items():
        for exp_id, expr in video["expressions"].items():
            key = f"{vid}_{exp_id}"
            folder = root / "predictions" / vid
            if not folder.is_dir():
                items[key] = None
                continue
            pred = np.stack([np.array(Image.open(folder / exp_id / f"{fr}.png")) for fr in video["frames"]])
            gt = expression_gt(
                mask_dict, expr["anno_id"], len(video["frames"]), height=pred.shape[1], width=pred.shape[2], name=key
            )
            items[key] = (pred, gt)
    return {
        "meta": meta,
        "mask_dict": mask_dict,
        "items": items,
        "order": list(items),
        "expected": json.loads((root / "expected.json").read_text()),
    }


def _score_all(golden: dict, keys, device: str = "cpu") -> MevisMeter:
    meter = MevisMeter()
    for key in keys:
        item = golden["items"][key]
        if item is None:
            meter.add_missing_video(key)
        else:
            meter.update(key, item[0], item[1], device=device)
    return meter


def test_golden_per_expression_and_global(golden: dict, device: str) -> None:
    exp = golden["expected"]
    scores = _score_all(golden, golden["order"], device).compute(golden["order"])
    assert list(scores.per_expression) == list(exp["per_expression"])
    for key, (j, f) in scores.per_expression.items():
        assert [j, f] == exp["per_expression"][key], key
    # summed in meta order (the official in-process run): exact
    assert (scores.J, scores.F, scores.JF) == (exp["global"]["J"], exp["global"]["F"], exp["global"]["J&F"])
    assert scores.n == exp["n_expressions"] == 15
    assert scores.missing_videos == ("cows_0", "cows_1")
    d = scores.as_dict()
    assert d["per_expression"] == exp["per_expression"] and d["J&F"] == exp["global"]["J&F"]


def test_golden_global_in_any_completion_order(golden: dict) -> None:
    """The official 64-process run fills its dict in completion order: globals agree to ~1e-12 relative."""
    exp = golden["expected"]
    meter = _score_all(golden, golden["order"])
    rng = random.Random(0)
    for _ in range(5):
        order = golden["order"][:]
        rng.shuffle(order)
        s = meter.compute(order)
        for name, val in (("J", s.J), ("F", s.F), ("J&F", s.JF)):
            assert math.isclose(val, exp["global"][name], rel_tol=1e-12, abs_tol=0), name


def test_golden_gt_value_two_and_value_one_predictions(golden: dict) -> None:
    pred, gt = golden["items"]["blackswan_1"]
    assert gt.dtype == np.uint8 and gt.max() == 2  # overlapping objects sum to 2, still foreground
    pred, _ = golden["items"]["libby_2"]
    assert pred.max() == 1  # 0/1 PNG: any non-zero is foreground


def test_golden_sharded_meters_merge_exactly(golden: dict) -> None:
    order = golden["order"]
    single = _score_all(golden, order).compute(order)
    shard_a = _score_all(golden, order[1::2][::-1])
    shard_b = _score_all(golden, order[0::2])
    merged = MevisMeter().merge(shard_b).merge(shard_a)
    assert merged.compute(order).as_dict() == single.as_dict()
    assert len(merged) == len(order)


# ----------------------------------------------------------------------------------------------
# GT from RLE
# ----------------------------------------------------------------------------------------------


def test_expression_gt_union_nulls_and_sizes() -> None:
    a = np.zeros((6, 9), dtype=np.uint8)
    a[1:4, 1:5] = 1
    b = np.zeros((6, 9), dtype=np.uint8)
    b[2:5, 3:8] = 1
    mask_dict = {"7": [_rle(a), None, _rle(a)], "8": [_rle(b), _rle(b), None]}
    gt = expression_gt(mask_dict, [7, "8"])
    assert gt.shape == (3, 6, 9) and gt.dtype == np.uint8
    np.testing.assert_array_equal(gt[0], a + b)
    np.testing.assert_array_equal(gt[1], b)
    np.testing.assert_array_equal(gt[2], a)
    np.testing.assert_array_equal(decode_rle(_rle(a)), a)
    # every entry null: the size must be given (officially it comes from the prediction)
    with pytest.raises(ValueError, match="every GT entry is null"):
        expression_gt({"9": [None, None]}, [9], name="v_0")
    np.testing.assert_array_equal(expression_gt({"9": [None, None]}, [9], height=4, width=5), np.zeros((2, 4, 5)))
    np.testing.assert_array_equal(expression_gt({}, [], 2, height=4, width=5), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="v_0.*size"):
        expression_gt(mask_dict, [7], height=6, width=10, name="v_0")
    with pytest.raises(KeyError, match="v_0.*'3'"):
        expression_gt(mask_dict, [3], name="v_0")
    with pytest.raises(ValueError, match="2 entries for 3 frames"):
        expression_gt({"1": [_rle(a), None]}, [1], 3)


def test_expression_gt_sum_wraps_like_uint8() -> None:
    full = np.ones((2, 3), dtype=np.uint8)
    mask_dict = {str(i): [_rle(full)] for i in range(256)}
    gt = expression_gt(mask_dict, list(range(256)))
    np.testing.assert_array_equal(gt[0], np.zeros((2, 3)))  # 256 overlapping objects wrap to 0, officially


# ----------------------------------------------------------------------------------------------
# Per-expression scores and the meter
# ----------------------------------------------------------------------------------------------


def test_expression_jf_is_numpy_mean_of_frames(device: str) -> None:
    rng = np.random.default_rng(1)
    gt = (rng.random((7, 30, 40)) > 0.6).astype(np.uint8) * 2
    pred = (rng.random((7, 30, 40)) > 0.5).astype(np.uint8) * 255
    res = expression_jf(pred, gt, device=device)
    j, f = jaccard_and_boundary(pred, gt)
    np.testing.assert_array_equal(res.J_frames, j.numpy())
    np.testing.assert_array_equal(res.F_frames, f.numpy())
    assert res.J == np.mean(j.numpy()) and res.F == np.mean(f.numpy())
    jt, ft = frame_jf(torch.from_numpy(pred), torch.from_numpy(gt))
    np.testing.assert_array_equal(jt, j.numpy())


def test_empty_gt_and_empty_prediction_score_one() -> None:
    z = np.zeros((3, 10, 12), dtype=np.uint8)
    res = expression_jf(z, z)
    assert (res.J, res.F) == (1.0, 1.0)
    p = z.copy()
    p[1, 2:4, 2:4] = 255
    res = expression_jf(p, z)
    np.testing.assert_array_equal(res.J_frames, [1.0, 0.0, 1.0])


def test_expression_input_errors() -> None:
    z = np.zeros((3, 10, 12), dtype=np.uint8)
    with pytest.raises(ValueError, match="vid_3.*shape"):
        expression_jf(z[:2], z, name="vid_3")
    with pytest.raises(TypeError, match="vid_3"):
        expression_jf(z.astype(np.float64), z, name="vid_3")
    with pytest.raises(ValueError, match="no frames"):
        expression_jf(z[:0], z[:0])


def test_meter_missing_video_order_and_conflicts() -> None:
    m = MevisMeter()
    m.add("a_0", 0.5, 0.25)
    m.add_missing_video("b_0")
    m.add("c_0", 1.0, 0.75)
    s = m.compute(["a_0", "b_0", "c_0"])
    assert s.J == np.mean([0.5, 0.0, 1.0]) and s.F == np.mean([0.25, 0.0, 0.75])
    assert s.JF == (s.J + s.F) / 2 and s.missing_videos == ("b_0",)
    assert m.records["b_0"] == (0.0, 0.0, True)
    with pytest.raises(ValueError, match="never scored.*'d_0'"):
        m.compute(["a_0", "b_0", "c_0", "d_0"])
    with pytest.raises(ValueError, match="not in the order"):
        m.compute(["a_0", "c_0"])
    with pytest.raises(ValueError, match="more than once"):
        m.compute(["a_0", "a_0", "b_0", "c_0"])
    m.add("a_0", 0.5, 0.25)  # identical re-add is fine
    with pytest.raises(ValueError, match="already scored"):
        m.add("a_0", 0.5, 0.3)
    with pytest.raises(ValueError, match="no expressions"):
        mevis_scores({})
    m.reset()
    assert len(m) == 0


def test_meter_sharded_merge_equals_single_meter() -> None:
    rng = np.random.default_rng(7)
    keys = [f"v{i}_{k}" for i in range(6) for k in range(3)]
    data = {}
    for key in keys:
        gt = (rng.random((4, 20, 24)) > 0.7).astype(np.uint8)
        pred = (rng.random((4, 20, 24)) > 0.6).astype(np.uint8) * 255
        data[key] = (pred, gt)
    single = MevisMeter()
    for key in keys:
        single.update(key, *data[key])
    shards = [MevisMeter() for _ in range(3)]
    for i, key in enumerate(reversed(keys)):
        shards[i % 3].update(key, *data[key])
    merged = shards[2].merge(shards[0]).merge(shards[1])
    assert merged.compute(keys) == single.compute(keys)
