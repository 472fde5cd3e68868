"""ReVOS J/F/A/R and the category table against VISA's official golden values (``shared/data/revos_golden``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from refbench.metrics.revos import (
    RevosMeter,
    accuracy_per_frame,
    decode_foreground,
    expression_gt,
    expression_jfar,
    revos_scores,
    robustness_per_frame,
    round_expression,
)

GOLDEN = "revos_golden"

# pycocotools 2.0.x warns about numpy 2's copy keyword on every decode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


# ----------------------------------------------------------------------------------------------
# Golden data
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden(shared_data: Path) -> dict:
    """Every expression's (pred, gt, foreground, type_id), read once; ``pred`` None = missing video folder.

    Predictions: 'L' PNGs read as is (0/255); frames in the meta's ``frames`` order (VISA reads frames[0]
    first, so a video need not start at 00000).
    """
    root = shared_data / GOLDEN
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    meta = json.loads((root / "meta_expressions_valid_.json").read_text())["videos"]
    mask_dict = json.loads((root / "mask_dict.json").read_text())
    fg_dict = json.loads((root / "mask_dict_foreground.json").read_text())
    items = {}
    for vid, video in meta.items():
        frames = video["frames"]
        fg = np.stack([decode_foreground(e) for e in fg_dict[vid]["masks_rle"][: len(frames)]])
        for exp_id, expr in video["expressions"].items():
            key = f"{vid}_{exp_id}"
            folder = root / "predictions" / vid
            if not folder.is_dir():
                items[key] = (None, None, None, expr["type_id"])
                continue
            pred = np.stack([np.array(Image.open(folder / exp_id / f"{fr}.png")) for fr in frames])
            gt = expression_gt(mask_dict, expr["anno_id"], len(frames), height=pred.shape[1], width=pred.shape[2], name=key)
            items[key] = (pred, gt, fg, expr["type_id"])
    return {
        "items": items,
        "order": list(items),
        "expected": {
            "official": json.loads((root / "expected.json").read_text()),
            "binary": json.loads((root / "expected_binary.json").read_text()),
        },
    }


def _score_all(golden: dict, keys, values: str, device: str = "cpu") -> RevosMeter:
    meter = RevosMeter(values)  # type: ignore[arg-type]
    for key in keys:
        pred, gt, fg, type_id = golden["items"][key]
        if pred is None:
            meter.add_failure(key, type_id=type_id)
        else:
            meter.update(key, pred, gt, fg, type_id=type_id, device=device)
    return meter


def _assert_nested_equal(got: dict, exp: dict) -> None:
    assert list(got) == list(exp)
    for k in exp:
        assert got[k] == exp[k], k


@pytest.mark.parametrize("values", ["official", "binary"])
def test_golden(golden: dict, values: str, device: str) -> None:
    exp = golden["expected"][values]
    scores = _score_all(golden, golden["order"], values, device).compute(golden["order"])
    _assert_nested_equal(dict(scores.per_expression_raw), exp["per_expression_raw_jfar"])
    _assert_nested_equal(dict(scores.per_expression_rounded), exp["per_expression_rounded"])
    for cat in ("referring", "reason", "overall"):
        assert list(scores.summary[cat]) == list(exp["summary"][cat])
        assert dict(scores.summary[cat]) == exp["summary"][cat], cat
    assert scores.failures == ("goat_0", "goat_1")
    d = scores.as_dict()
    assert d["summary"] == exp["summary"] and d["per_expression_raw"] == exp["per_expression_raw_jfar"]


def test_golden_quirk_cases(golden: dict) -> None:
    _, gt, _, _ = golden["items"]["blackswan_1"]
    assert gt.max() == 2  # overlapping objects
    raw = golden["expected"]["official"]["per_expression_raw_jfar"]
    raw_bin = golden["expected"]["binary"]["per_expression_raw_jfar"]
    assert raw["blackswan_1"][3] == raw_bin["blackswan_1"][3] == 0.0  # R: overlap wrap in both modes
    rounded = golden["expected"]["official"]["per_expression_rounded"]
    assert {k for k, v in rounded.items() if v["type_id"] == 2} == {"blackswan_2", "dog_2"}


def test_golden_sharded_merge_exactly(golden: dict) -> None:
    order = golden["order"]
    single = _score_all(golden, order, "official").compute(order)
    a = _score_all(golden, order[::3][::-1], "official")
    b = _score_all(golden, [k for i, k in enumerate(order) if i % 3], "official")
    merged = b.merge(a)
    assert merged.compute(order).as_dict() == single.as_dict()
    with pytest.raises(ValueError, match="value semantics"):
        merged.merge(RevosMeter("binary"))


# ----------------------------------------------------------------------------------------------
# Synthetic: A and R against the official formulas evaluated with numpy directly
# ----------------------------------------------------------------------------------------------


def _np_accuracy(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.array([np.mean(g == p) for g, p in zip(gt, pred)])


def _np_robustness(gt: np.ndarray, pred: np.ndarray, fg: np.ndarray) -> np.ndarray:
    out = []
    for g, p, f in zip(gt, pred, fg):
        neg = ((1 - g) * p).sum()  # uint8 arithmetic (numpy >= 2: the Python 1 stays weak)
        pos = f.sum()
        out.append(max(1 - neg / (pos + 1e-6), 0.0))
    return np.array(out)


def _synthetic(seed: int, t: int = 5, h: int = 24, w: int = 32):
    rng = np.random.default_rng(seed)
    gt = (rng.random((t, h, w)) > 0.7).astype(np.uint8) + (rng.random((t, h, w)) > 0.85).astype(np.uint8)
    fg = np.maximum(gt > 0, rng.random((t, h, w)) > 0.8).astype(np.uint8)
    pred = (rng.random((t, h, w)) > 0.6).astype(np.uint8)
    pred[0] = 0  # one frame without any prediction
    return gt, pred, fg


@pytest.mark.parametrize("scale", [1, 255])
def test_accuracy_and_robustness_match_official_formula(scale: int, device: str) -> None:
    gt, pred01, fg = _synthetic(scale)
    pred = pred01 * np.uint8(scale)
    assert gt.max() == 2 and pred.dtype == np.uint8
    t_gt, t_pred, t_fg = (torch.from_numpy(x).to(device) for x in (gt, pred, fg))
    np.testing.assert_array_equal(accuracy_per_frame(t_gt, t_pred), _np_accuracy(gt, pred))
    np.testing.assert_array_equal(robustness_per_frame(t_gt, t_pred, t_fg), _np_robustness(gt, pred, fg))
    res = expression_jfar(pred, gt, fg, device=device)
    assert res.A == np.mean(_np_accuracy(gt, pred)) and res.R == np.mean(_np_robustness(gt, pred, fg))
    assert [res.J, res.F, res.A, res.R] == res.as_list()


def test_binary_semantics_equals_official_on_01_predictions() -> None:
    gt, pred01, fg = _synthetic(3)
    official_255 = expression_jfar(pred01 * np.uint8(255), gt, fg, values="official")
    binary_255 = expression_jfar(pred01 * np.uint8(255), gt, fg, values="binary")
    official_01 = expression_jfar(pred01, gt, fg, values="official")
    assert binary_255.as_list() == official_01.as_list()
    assert (official_255.J, official_255.F) == (binary_255.J, binary_255.F)
    assert official_255.A != binary_255.A


def test_robustness_uint8_wrap_cases() -> None:
    gt = np.array([[[0, 1, 2, 2]]], dtype=np.uint8)
    fg = np.array([[[0, 1, 1, 1]]], dtype=np.uint8)
    # 0/255 prediction: false positive at gt 0 counts 255; at gt 2, 255 * 255 = 1 (mod 256)
    r = robustness_per_frame(*(torch.from_numpy(x) for x in (gt, np.array([[[255, 0, 255, 0]]], np.uint8), fg)))
    assert r[0] == max(1 - 256 / (3 + 1e-6), 0.0) == 0.0
    r = robustness_per_frame(*(torch.from_numpy(x) for x in (gt, np.array([[[0, 0, 255, 0]]], np.uint8), fg)))
    assert r[0] == 1 - 1 / (3 + 1e-6)
    # 0/1 prediction on gt 2: (1 - 2) wraps to 255
    r = robustness_per_frame(*(torch.from_numpy(x) for x in (gt, np.array([[[0, 0, 1, 0]]], np.uint8), fg)))
    assert r[0] == 0.0


def test_input_checks() -> None:
    gt, pred, fg = _synthetic(4)
    with pytest.raises(ValueError, match="v_1.*shapes differ"):
        expression_jfar(pred, gt, fg[:, :, :-1], name="v_1")
    with pytest.raises(ValueError, match="0..255"):
        expression_jfar(pred.astype(np.int64) * 256, gt, fg)
    with pytest.raises(ValueError, match="value semantics"):
        expression_jfar(pred, gt, fg, values="raw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="value semantics"):
        RevosMeter("raw")  # type: ignore[arg-type]
    res = expression_jfar(pred.astype(bool), gt.astype(np.int32), fg)  # bool -> 0/1, ints in range kept
    assert res.as_list() == expression_jfar(pred, gt, fg).as_list()


def test_decode_foreground_list_sums_in_uint8() -> None:
    from pycocotools import mask as mask_utils

    m = np.zeros((4, 5), dtype=np.uint8)
    m[1:3, 1:4] = 1
    enc = mask_utils.encode(np.asfortranarray(m))
    rle = {"size": list(enc["size"]), "counts": enc["counts"].decode("ascii")}
    np.testing.assert_array_equal(decode_foreground(rle), m)
    np.testing.assert_array_equal(decode_foreground([rle, rle]), 2 * m)


# ----------------------------------------------------------------------------------------------
# Synthetic: rounding and the table
# ----------------------------------------------------------------------------------------------


def test_round_expression_uses_official_rounding() -> None:
    j, f, a, r = 0.123456789, 0.98765, 0.5, 0.00499999
    got = round_expression(j, f, a, r)
    assert got == {
        "J": round(100 * np.float64(j), 2),
        "F": round(100 * np.float64(f), 2),
        "JF": round(100 * (np.float64(j) + np.float64(f)) / 2, 2),
        "A": 50.0,
        "R": 0.5,
    }


def test_table_type_ids_failures_and_rounding_before_mean() -> None:
    per_expr = {
        "a_0": ([0.111149, 0.5, 0.25, 0.0], 0),
        "a_1": ([0.9, 0.8, 0.7, 0.6], 1),
        "a_2": ([1.0, 1.0, 1.0, 1.0], 2),  # no-target: scored, excluded
        "b_0": ([0.0, 0.0, 0.0, 0.0], 0),  # failure: counted
        "b_1": ([0.333333, 0.666666, 0.5, 0.25], 1),
    }
    s = revos_scores(per_expr, failures=["b_0"])
    assert s.per_expression_rounded["a_0"]["J"] == 11.11
    ref_j = np.array([11.11, 0.0]).mean()
    assert s.summary["referring"]["J"] == ref_j
    assert s.summary["referring"]["JF"] == (ref_j + np.array([50.0, 0.0]).mean()) / 2
    assert s.summary["reason"]["A"] == np.array([70.0, 50.0]).mean()
    for m in ("J", "F", "A", "R", "JF"):
        assert s.summary["overall"][m] == (s.summary["referring"][m] + s.summary["reason"][m]) / 2
    assert s.per_expression_rounded["a_2"]["type_id"] == 2 and s.failures == ("b_0",)
    # an empty category gives NaN rather than a warning
    only_ref = revos_scores({"a_0": ([0.5, 0.5, 0.5, 0.5], 0)})
    assert math.isnan(only_ref.summary["reason"]["J"]) and math.isnan(only_ref.summary["overall"]["J"])
    with pytest.raises(ValueError, match="no expressions"):
        revos_scores({})


def test_meter_synthetic_sharded_merge_and_errors() -> None:
    keys, data = [], {}
    for i in range(8):
        gt, pred, fg = _synthetic(10 + i)
        key = f"v{i // 2}_{i % 2}"
        keys.append(key)
        data[key] = (pred * np.uint8(255), gt, fg, i % 3)
    single = RevosMeter()
    for k in keys:
        p, g, f, ty = data[k]
        single.update(k, p, g, f, type_id=ty)
    shards = [RevosMeter(), RevosMeter()]
    for i, k in enumerate(reversed(keys)):
        p, g, f, ty = data[k]
        shards[i % 2].update(k, p, g, f, type_id=ty)
    merged = shards[1].merge(shards[0])
    assert merged.compute(keys) == single.compute(keys)
    with pytest.raises(ValueError, match="already scored"):
        merged.add(keys[0], 0.1, 0.2, 0.3, 0.4, type_id=0)
    merged.add_failure("v9_0", type_id=1)
    with pytest.raises(ValueError, match="not in the order"):
        merged.compute(keys)
    assert merged.records["v9_0"] == ([0.0, 0.0, 0.0, 0.0], 1, True)
