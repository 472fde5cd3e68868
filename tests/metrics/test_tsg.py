"""refbench.metrics.tsg: golden lmms-eval / TimeChat numbers, protocol variants, meter.

Golden data (shared/data/charades_sta, PROVENANCE.md section 5):
* expected_lmms.json: lmms-eval @ 75571cfe on the 500 rendered texts + TimeChat GT.
* expected_timechat.json: TimeChat eval_tvg.py --sample on its example files.
Protocol variants are checked on hand-computed cases.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from refbench.metrics.span_parse import parse_span
from refbench.metrics.tsg import (
    MOMENT_DETR_THRESHOLDS,
    PROTOCOLS,
    GroundingMeter,
    _numpy_pairwise_sum,
    grounding_scores,
    per_query_iou,
    score_grounding,
    temporal_iou,
)


def _load(shared_data: Path, name: str):
    return json.loads((shared_data / "charades_sta" / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def lmms_inputs(shared_data: Path):
    """(qids in official order, parsed spans, GT spans) of the 500 rendered texts."""
    texts = _load(shared_data, "timechat_example_pred_texts.json")
    qids = list(texts)
    return qids, [parse_span(texts[q]["text"]) for q in qids], [texts[q]["gt"] for q in qids]


def _python_iou(a: list[float], b: list[float]) -> float:
    """The documented formula in Python floats (oracle for bit-identity)."""
    denom = max(a[1], b[1]) - min(a[0], b[0])
    return 0.0 if denom <= 0 else max(min(a[1], b[1]) - max(a[0], b[0]), 0) / denom


# -------------------------------------------------------------------- golden


def test_lmms_eval_golden(shared_data: Path, lmms_inputs, device: str) -> None:
    expected = _load(shared_data, "expected_lmms.json")
    qids, preds, gts = lmms_inputs
    assert qids == list(expected["per_qid"])
    got = score_grounding(preds, gts, "lmms-eval", device=device)
    assert got == {
        "R@0.3": 9.0,
        "R@0.5": 3.4,
        "R@0.7": 1.4,
        "mIoU": 6.299805866916596,
        "count": 500,
        "n_unparsed": 280,
    }
    assert got["mIoU"] == expected["mIoU"] and expected["n_queries"] == 500
    assert score_grounding(preds, gts, "default", device=device) == got


def test_lmms_eval_golden_per_query_iou(shared_data: Path, lmms_inputs, device: str) -> None:
    per_qid = _load(shared_data, "expected_lmms.json")["per_qid"]
    qids, preds, gts = lmms_inputs
    ious = per_query_iou(preds, gts, "lmms-eval", device=device)
    assert ious.dtype == torch.float64 and ious.shape == (500,) and ious.device.type == device
    assert ious.tolist() == [per_qid[q]["iou"] for q in qids]  # bit-identical


def test_timechat_golden(shared_data: Path, device: str) -> None:
    expected = _load(shared_data, "expected_timechat.json")
    preds = _load(shared_data, "timechat_example_pred.json")
    gt_by_id = {a["id"]: a["timestamp"] for a in _load(shared_data, "timechat_example_gt.json")["annotations"]}
    assert len(gt_by_id) == 3720
    qids = list(preds)  # --sample: the GT of the predicted qids only
    pred_spans = [preds[q]["timestamp"] for q in qids]
    got = score_grounding(pred_spans, [gt_by_id[int(q)] for q in qids], "timechat", device=device)
    assert got == {"R@0.3": 9.0, "R@0.5": 3.4, "R@0.7": 1.4, "count": 500, "n_unparsed": 280}
    assert [got[k] for k in ("R@0.3", "R@0.5", "R@0.7")] == [expected["R@0.3"], expected["R@0.5"], expected["R@0.7"]]
    assert got["count"] == expected["n_queries"]


def test_timechat_golden_from_texts(shared_data: Path) -> None:
    """Text -> TimeChat parse -> TimeChat protocol gives the published numbers too."""
    texts = _load(shared_data, "timechat_example_pred_texts.json")
    preds = [parse_span(v["text"], "timechat") for v in texts.values()]
    got = score_grounding(preds, [v["gt"] for v in texts.values()], "timechat")
    assert (got["R@0.3"], got["R@0.5"], got["R@0.7"], got["count"]) == (9.0, 3.4, 1.4, 500)


# ----------------------------------------------------------------------- IoU


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ([0.0, 10.0], [5.0, 15.0], 5.0 / 15.0),
        ([5.0, 15.0], [0.0, 10.0], 5.0 / 15.0),
        ([0.0, 10.0], [0.0, 10.0], 1.0),
        ([0.0, 5.0], [5.0, 10.0], 0.0),  # touching
        ([0.0, 1.0], [5.0, 10.0], 0.0),  # disjoint
        ([2.0, 4.0], [0.0, 10.0], 0.2),  # contained
        ([5.0, 5.0], [5.0, 5.0], 0.0),  # zero-length hull -> 0, not NaN
        ([3.0, 3.0], [0.0, 10.0], 0.0),  # zero-length prediction
        ([10.0, 0.0], [0.0, 10.0], 0.0),  # reversed prediction: no intersection
        ([8.0, 2.0], [9.0, 1.0], 0.0),  # both reversed: hull <= 0 -> 0
    ],
)
def test_temporal_iou_hand_cases(pred, gt, expected, device: str) -> None:
    f64 = {"dtype": torch.float64, "device": device}
    got = temporal_iou(torch.tensor([pred], **f64), torch.tensor([gt], **f64))
    assert got.dtype == torch.float64 and got.shape == (1,) and got.device.type == device
    assert got.item() == expected == _python_iou(pred, gt)


def test_temporal_iou_bit_identical_to_python(device: str) -> None:
    rng = random.Random(0)
    pairs = []
    for _ in range(2000):
        a = sorted(round(rng.uniform(0, 60), rng.choice([1, 2, 6])) for _ in range(2))
        b = sorted(round(rng.uniform(0, 60), 1) for _ in range(2))
        pairs.append((a, b))
    got = temporal_iou(torch.tensor([p for p, _ in pairs], dtype=torch.float64, device=device), [g for _, g in pairs])
    assert got.cpu().tolist() == [_python_iou(p, g) for p, g in pairs]


def test_temporal_iou_broadcasts_and_validates() -> None:
    ious = temporal_iou(torch.tensor([[[0.0, 2.0], [0.0, 4.0]]]), torch.tensor([0.0, 4.0]))
    assert ious.tolist() == [[0.5, 1.0]]
    with pytest.raises(ValueError):
        temporal_iou(torch.zeros(3, 3), torch.zeros(3, 3))


# ---------------------------------------------------------- grounding_scores


def test_grounding_scores_ge_vs_strict() -> None:
    ious = [0.5, 0.3, 0.7, 0.2]
    ge = grounding_scores(ious)
    assert ge == {"R@0.3": 75.0, "R@0.5": 50.0, "R@0.7": 25.0, "mIoU": (0.5 + 0.3 + 0.7 + 0.2) * 100 / 4, "count": 4}
    strict = grounding_scores(ious, strict=True)
    assert (strict["R@0.3"], strict["R@0.5"], strict["R@0.7"]) == (50.0, 25.0, 0.0)


def test_grounding_scores_arithmetic_order() -> None:
    ious = [0.9, 0.0, 0.0]
    # lmms-eval / TimeChat: count * 100 / N; VTimeLLM, 2D-TAN, moment_detr: count / N * 100.
    assert grounding_scores(ious)["R@0.5"] == 100 / 3 == 33.333333333333336
    assert grounding_scores(ious, scale_first=False)["R@0.5"] == 1 / 3 * 100 == 33.33333333333333
    assert grounding_scores(ious, scale_first=False, round_result=2)["R@0.5"] == 33.33


def test_grounding_scores_rounding_and_valid() -> None:
    assert grounding_scores([0.2996, 0.6951], round_iou=2)["R@0.3"] == 100.0  # 0.30, 0.70
    assert grounding_scores([0.2996, 0.6951])["R@0.3"] == 50.0
    got = grounding_scores([0.0, 1.0], thresholds=(0.0,), valid=torch.tensor([False, True]))
    assert got["R@0.0"] == 50.0 and got["mIoU"] == 50.0


def test_grounding_scores_empty_and_errors() -> None:
    assert grounding_scores([]) == {"R@0.3": 0.0, "R@0.5": 0.0, "R@0.7": 0.0, "mIoU": 0.0, "count": 0}
    with pytest.raises(ValueError):
        grounding_scores([0.5], summation="kahan")
    with pytest.raises(ValueError):
        grounding_scores([0.5, 0.5], valid=torch.tensor([True]))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 1000, 3720])
def test_numpy_pairwise_sum_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    values = (rng.random(n) ** 3).tolist()
    assert _numpy_pairwise_sum(values) == float(np.add.reduce(np.array(values, dtype=np.float64)))


# ------------------------------------------------------------------ protocols


def test_unparseable_counts_as_zero_but_timechat_skips() -> None:
    preds = [None, [], [0.0, 1.0]]
    gts = [[0.0, 1.0]] * 3
    lmms = score_grounding(preds, gts, "lmms-eval", thresholds=(0.0, 0.5))
    assert lmms == {"R@0.0": 100.0, "R@0.5": 100 / 3, "mIoU": 100 / 3, "count": 3, "n_unparsed": 2}
    tc = score_grounding(preds, gts, "timechat", thresholds=(0.0, 0.5))
    assert tc == {"R@0.0": 100 / 3, "R@0.5": 100 / 3, "count": 3, "n_unparsed": 2}


def test_vtimellm_rounds_iou_to_two_decimals() -> None:
    # IoUs 0.2996 and 0.6951 round to 0.30 and 0.70: hits for VTimeLLM, misses for lmms-eval.
    preds = [[0.0, 0.2996], [0.0, 0.6951]]
    gts = [[0.0, 1.0], [0.0, 1.0]]
    vt = score_grounding(preds, gts, "vtimellm")
    assert vt == {"R@0.3": 100.0, "R@0.5": 50.0, "R@0.7": 50.0, "mIoU": (0.3 + 0.7) / 2 * 100,
                  "count": 2, "n_unparsed": 0}
    lm = score_grounding(preds, gts, "lmms-eval")
    assert (lm["R@0.3"], lm["R@0.7"]) == (50.0, 0.0)
    assert per_query_iou(preds, gts, "vtimellm").tolist() == [0.3, 0.7]


def test_moment_detr_best_of_several_gt() -> None:
    preds = [[[0.0, 10.0], [50.0, 60.0]], [0.0, 10.0], [0.0, 10.0]]  # ranked: only the top-1 counts
    gts = [[[20.0, 30.0], [0.0, 9.0]], [[0.0, 5.0]], [[40.0, 50.0]]]
    got = score_grounding(preds, gts, "moment_detr")
    assert set(got) == {f"R@{m}" for m in MOMENT_DETR_THRESHOLDS} | {"count", "n_unparsed"}
    assert got["R@0.5"] == 66.67  # IoUs 0.9 (best GT), 0.5, 0 -> 2/3 -> rounded to 2 decimals
    assert got["R@0.55"] == 33.33 and got["R@0.9"] == 33.33 and got["R@0.95"] == 0.0
    assert per_query_iou(preds, gts, "moment_detr").tolist() == [0.9, 0.5, 0.0]
    # Without best-of-GT the first query would miss.
    first_gt = score_grounding(preds, [g[0] for g in gts], "lmms-eval", thresholds=(0.5,))
    assert first_gt["R@0.5"] == 100 / 3


def test_only_moment_detr_takes_several_gt() -> None:
    with pytest.raises(ValueError, match="moment_detr"):
        score_grounding([[0.0, 1.0]], [[[0.0, 1.0], [2.0, 3.0]]], "lmms-eval")


def test_2dtan_strict_threshold_and_clipping() -> None:
    preds = [[0.0, 5.0], [2.0, 10.0], [0.0, 1.0]]
    gts = [[0.0, 10.0], [2.0, 12.0], [12.0, 15.0]]  # 3rd: start beyond the video -> dropped
    durations = [30.0, 10.0, 10.0]
    got = score_grounding(preds, gts, "2d-tan", durations, ranks=(1,))
    # IoU 0.5 is no hit at 0.5 (strict); GT [2, 12] is clipped to [2, 10] -> IoU 1.
    assert got == {"R@0.3": 100.0, "R@0.5": 50.0, "R@0.7": 50.0, "mIoU": (0.5 + 1.0) / 2 * 100,
                   "count": 2, "n_excluded": 1, "n_unparsed": 0}
    default = score_grounding(preds[:2], gts[:2], "default")
    assert (default["R@0.5"], default["R@0.7"]) == (100.0, 50.0)  # >= and no clipping: 0.5, 0.8
    ious = per_query_iou(preds, gts, "2d-tan", durations).tolist()
    assert ious[:2] == [0.5, 1.0] and np.isnan(ious[2])


def test_2dtan_activitynet_gt_preparation() -> None:
    # ActivityNet loader: keep start < end on raw times, then clip to [0, duration].
    got = score_grounding([[0.0, 4.0], [0.0, 1.0]], [[-1.0, 5.0], [3.0, 2.0]], "2d-tan", [4.0, 9.0],
                          gt_clip="activitynet", ranks=(1,))
    assert (got["count"], got["n_excluded"], got["R@0.7"]) == (1, 1, 100.0)
    with pytest.raises(ValueError, match="gt_clip"):
        score_grounding([[0.0, 1.0]], [[0.0, 1.0]], "2d-tan", [1.0], gt_clip="tacos")


def test_2dtan_nms_and_recall_at_5() -> None:
    proposals = [[0.0, 4.0], [0.0, 4.1], [0.1, 4.0], [6.0, 10.0], [5.5, 10.0], [5.0, 10.0]]
    # NMS at 0.45 keeps [0, 4] and [6, 10] only (the others overlap a kept one by > 0.45).
    got = score_grounding([proposals], [[5.0, 10.0]], "2d-tan", [10.0], thresholds=(0.5, 0.7, 0.8, 0.85))
    assert (got["R@0.5"], got["R5@0.5"], got["R5@0.7"]) == (0.0, 100.0, 100.0)
    assert got["R5@0.8"] == 0.0  # IoU of [6, 10] is exactly 0.8: strict miss
    assert got["R5@0.85"] == 0.0  # [5.5, 10] (IoU 0.9) was suppressed
    no_nms = score_grounding([proposals], [[5.0, 10.0]], "2d-tan", [10.0], thresholds=(0.85,), nms_thresh=1.0)
    assert no_nms["R5@0.85"] == 100.0
    assert got["mIoU"] == 0.0


def _reference_2dtan_nms(props: list[list[float]], thresh: float, top_k: int) -> list[int]:
    """Plain greedy NMS in Python floats, written from the 2D-TAN description."""
    keep: list[int] = []
    remaining = list(range(len(props)))
    while remaining and len(keep) < top_k:
        i = remaining.pop(0)
        keep.append(i)
        survivors = []
        for j in remaining:
            inter = max(0.0, min(props[i][1], props[j][1]) - max(props[i][0], props[j][0]))
            len_i, len_j = props[i][1] - props[i][0], props[j][1] - props[j][0]
            union = len_i + len_j - inter
            ovr = inter / union if union != 0 else float("nan")
            if ovr <= thresh:
                survivors.append(j)
        remaining = survivors
    return keep


def test_2dtan_matches_reference_on_random_proposals(device: str) -> None:
    rng = random.Random(7)
    preds, gts, durations = [], [], []
    for _ in range(60):
        duration = rng.uniform(10, 40)
        k = rng.randint(1, 12)
        props = [sorted([round(rng.uniform(0, duration), 2), round(rng.uniform(0, duration), 2)]) for _ in range(k)]
        preds.append(props)
        gts.append(sorted([round(rng.uniform(0, duration), 1), round(rng.uniform(0, duration + 5), 1)]))
        durations.append(duration)
    got = score_grounding(preds, gts, "2d-tan", durations, device=device)

    top1, hits = [], {(r, m): 0 for r in (1, 5) for m in (0.3, 0.5, 0.7)}
    n = 0
    for props, gt, duration in zip(preds, gts, durations):
        gt = [gt[0], min(gt[1], duration)]
        if not gt[0] < gt[1]:
            continue
        n += 1
        kept = [props[i] for i in _reference_2dtan_nms(props, 0.45, 5)]
        ious = [_python_iou(p, gt) for p in kept]
        top1.append(ious[0])
        for r, m in hits:
            hits[(r, m)] += any(v > m for v in ious[:r])
    assert got["count"] == n and got["n_excluded"] == 60 - n
    for (r, m), count in hits.items():
        key = f"R@{m}" if r == 1 else f"R{r}@{m}"
        assert got[key] == count / n * 100
    assert got["mIoU"] == float(np.mean(top1)) * 100


def test_2dtan_needs_durations() -> None:
    with pytest.raises(ValueError, match="durations"):
        score_grounding([[0.0, 1.0]], [[0.0, 1.0]], "2d-tan")


def test_tensor_inputs_on_device(device: str) -> None:
    preds = torch.tensor([[0.0, 5.0], [30.0, 10.0]], dtype=torch.float64, device=device)  # second reversed
    gts = torch.tensor([[0.0, 10.0], [10.0, 30.0]], dtype=torch.float64, device=device)
    got = score_grounding(preds, gts)
    assert got == {"R@0.3": 50.0, "R@0.5": 50.0, "R@0.7": 0.0, "mIoU": 0.5 * 100 / 2, "count": 2, "n_unparsed": 0}


def test_numpy_and_nested_inputs() -> None:
    preds = [np.array([0.0, 5.0]), np.array([[0.0, 10.0], [1.0, 2.0]]), None]
    gts = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])
    got = score_grounding(preds, list(gts))
    assert got == {"R@0.3": 200 / 3, "R@0.5": 200 / 3, "R@0.7": 100 / 3, "mIoU": (0.5 + 1.0 + 0.0) * 100 / 3,
                   "count": 3, "n_unparsed": 1}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_runs_on_empty_input(protocol: str) -> None:
    got = score_grounding([], [], protocol, [] if protocol == "2d-tan" else None)
    assert got["count"] == 0 and all(v == 0.0 for k, v in got.items() if k.startswith("R"))


def test_input_errors() -> None:
    with pytest.raises(ValueError) as err:
        score_grounding([[0.0, 1.0]], [[0.0, 1.0]], "charades")
    assert all(p in str(err.value) for p in PROTOCOLS)
    with pytest.raises(ValueError, match="ground-truth"):
        score_grounding([[0.0, 1.0]], [[0.0, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="at least one ground-truth"):
        score_grounding([[0.0, 1.0]], [None])
    with pytest.raises(ValueError, match="span"):
        score_grounding([[0.0, 1.0, 2.0]], [[0.0, 1.0]])
    with pytest.raises(TypeError):
        score_grounding(["0 - 1"], [[0.0, 1.0]])


# ---------------------------------------------------------------------- meter


def test_meter_reproduces_golden_in_official_order(shared_data: Path, lmms_inputs) -> None:
    qids, preds, gts = lmms_inputs
    meter = GroundingMeter("lmms-eval")
    meter.update_many(qids, preds, gts)
    assert len(meter) == 500
    exact = meter.compute(order=qids)
    assert exact == score_grounding(preds, gts, "lmms-eval")
    assert exact["mIoU"] == _load(shared_data, "expected_lmms.json")["mIoU"]
    # The canonical (sorted-id) order sums in another order: equal up to the last bits only.
    canonical = meter.compute()
    assert canonical["mIoU"] == pytest.approx(exact["mIoU"], rel=1e-14, abs=0)
    assert {k: v for k, v in canonical.items() if k != "mIoU"} == {k: v for k, v in exact.items() if k != "mIoU"}
    per_query = meter.per_query_iou(order=qids)
    assert list(per_query) == qids and per_query[qids[2]] == 0.4285714285714286


@pytest.mark.parametrize("protocol", ["lmms-eval", "timechat", "vtimellm", "2d-tan"])
def test_sharded_merge_equals_unsharded(lmms_inputs, protocol: str) -> None:
    qids, preds, gts = lmms_inputs
    durations = [gt[1] + 1.0 if i % 3 else gt[1] - 0.5 for i, gt in enumerate(gts)]  # some clipping
    whole = GroundingMeter(protocol)
    whole.update_many(qids, preds, gts, durations)

    rng = random.Random(3)
    order = list(range(len(qids)))
    rng.shuffle(order)
    shards = [GroundingMeter(protocol) for _ in range(4)]
    for rank, i in enumerate(order):
        shards[rank % 4].update(qids[i], preds[i], gts[i], durations[i])
    merged = GroundingMeter(protocol)
    for shard in reversed(shards):
        merged.merge(shard)
    assert merged.records == whole.records
    assert merged.compute() == whole.compute()
    assert merged.compute(order=qids) == whole.compute(order=qids)


def test_meter_conflicts_and_validation() -> None:
    a, b = GroundingMeter(), GroundingMeter()
    a.update(1, [0.0, 1.0], [0.0, 2.0])
    b.update(1, [0.0, 1.0], [0.0, 2.0])
    a.merge(b)  # identical record: idempotent
    assert len(a) == 1
    b2 = GroundingMeter()
    b2.update(1, [0.0, 1.5], [0.0, 2.0])
    with pytest.raises(ValueError, match="already recorded"):
        a.merge(b2)
    with pytest.raises(ValueError, match="already recorded"):
        a.update(1, None, [0.0, 2.0])
    with pytest.raises(ValueError, match="different protocols"):
        a.merge(GroundingMeter("vtimellm"))
    with pytest.raises(ValueError, match="every recorded query id"):
        a.compute(order=[1, 2])
    with pytest.raises(ValueError, match="no ground-truth"):
        a.update(2, [0.0, 1.0], [])
    with pytest.raises(ValueError, match="unknown meter options"):
        GroundingMeter("default", durations=[1.0])
    with pytest.raises(ValueError, match="unknown protocol"):
        GroundingMeter("nope")


def test_meter_canonical_order_sorts_ints_numerically() -> None:
    meter = GroundingMeter()
    for qid in [10, 9, "b", "a", 100]:
        meter.update(qid, None, [0.0, 1.0])
    assert meter.order() == [9, 10, 100, "a", "b"]
    assert meter.compute()["n_unparsed"] == 5
