"""SA-V / SeCVOS per-object bookkeeping, LVOS statistics, Ref-SAV and ReasonVOS tables: unit cases and the golden
per-frame values of shared/data (sam2 sav_benchmark.py, lvos-evaluation, MomentSeg eval scripts)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from refbench.metrics.lvos import global_table, object_statistics, variance_score
from refbench.metrics.mevis import frame_jf
from refbench.metrics.reasonvos import reasonvos_scores
from refbench.metrics.refsav import refsav_table
from refbench.metrics.sav import global_scores, label_order, object_score, results_csv


def test_object_list_starts_at_first_presence_in_gt_or_prediction():
    j = [1.0, 1.0, 0.0, 0.5, 1.0]
    f = [1.0, 1.0, 0.0, 1.0, 1.0]
    # GT first present at 3, a false positive at 2: the list starts at 2 (frames 0, 1 are not counted)
    s = object_score(j, f, [False, False, False, True, True], [False, False, True, True, False])
    assert s.start == 2 and s.J == float(np.mean([0.0, 0.5, 1.0]) * 100) and s.F == float(np.mean([0, 1, 1]) * 100)
    # never in the GT: not reported
    assert object_score(j, f, [False] * 5, [True] * 5) is None


def test_label_order_is_the_python_set_order_the_evaluator_fills():
    assert label_order([[7], [8]]) == [8, 7]  # 8 hashes to slot 0 of an 8-slot table
    assert label_order([[1, 2], [3]]) == [1, 2, 3]
    assert label_order([[], [255, 1]]) == list({1, 255})


def test_global_and_results_csv_format():
    a = object_score([0.5, 1.0], [1.0, 1.0], [True, True], [True, True])
    b = object_score([0.0, 0.0], [0.0, 0.0], [True, True], [False, False])
    g = global_scores([a, b])
    assert g == {"J&F": (g["J"] + g["F"]) / 2, "J": 37.5, "F": 50.0}
    text = results_csv([("vid", [("000", a.J, a.F), ("001", b.J, b.F)])], g)
    assert text.splitlines() == ["sequence    ,obj,  J&F,    J,    F", "Global score,   , 43.8, 37.5, 50.0",
                                 "vid         ,000, 87.5, 75.0, 100.0", "vid         ,001,  0.0,  0.0,  0.0"]


def _sav_golden(shared_data):
    root = shared_data / "sav_golden"
    return root, json.loads((root / "expected.json").read_text())


def _png(path):
    return np.array(Image.open(path))


def test_sav_per_frame_values_equal_golden(shared_data):
    root, exp = _sav_golden(shared_data)
    for key, obj in exp["runs"]["default"]["per_object"].items():
        video, o = key.split("/")
        names = obj["frames_counted"]
        gt = np.stack([_png(root / "Annotations_6fps" / video / o / n) for n in names]) > 0
        pred = np.stack([_png(root / "predictions" / video / o / n) for n in names]) > 0
        j, f = frame_jf(pred, gt)
        assert j.tolist() == obj["J_per_frame"] and f.tolist() == obj["F_per_frame"], key
        # the object's value is 100 x the mean of the counted frames' list
        assert float(np.mean(j) * 100) == obj["J"] and float(np.mean(f) * 100) == obj["F"], key


def test_lvos_statistics_equal_golden(shared_data):
    exp = json.loads((shared_data / "lvos_golden" / "expected.json").read_text())
    seen, unseen = [], []
    for key in exp["object_order"]:
        obj = exp["per_object"][key]
        stats = object_statistics(obj["J"], obj["F"])
        for k in ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "V-Mean"):
            assert stats[k] == obj[k], (key, k)
        (seen if obj["split"] == "seen" else unseen).append(stats)
    assert global_table(seen, unseen) == exp["global"]


def test_lvos_variance_is_rounded_before_the_root():
    # lvs_seen_a_1 of the golden set: the variance 0.0007960141818517905 rounds to 0.0008
    j = np.array([[0.8, 1.0]])
    f = np.array([[1.0, 1.0]])
    assert variance_score(j, f) == math.sqrt(round(np.float64(0.0025), 4))
    assert math.isnan(global_table([object_statistics([1.0], [1.0])], [])["J&F-Mean"])  # an empty split: NaN


def test_refsav_table_equals_golden(shared_data):
    exp = json.loads((shared_data / "refsav_golden" / "expected.json").read_text())
    types = {r["videxp"]: r["type_id"] for r in exp["per_expression_rounded"]}
    table = refsav_table({k: (v, types[k]) for k, v in exp["per_expression_raw_jfa"].items()})
    assert table["summary"] == exp["summary"]
    for r in exp["per_expression_rounded"]:
        assert table["rows"][r["videxp"]] == {"J": r["J"], "F": r["F"], "JF": r["JF"], "A": r["A"],
                                              "type_id": r["type_id"]}


def test_reasonvos_scores_equal_golden(shared_data):
    exp = json.loads((shared_data / "reasonvos_golden" / "expected.json").read_text())
    raw = exp["per_expression_raw_jf"]
    assert reasonvos_scores([v[0] for v in raw.values()], [v[1] for v in raw.values()]) == exp["results"]
    with pytest.raises(ValueError):
        reasonvos_scores([], [])
