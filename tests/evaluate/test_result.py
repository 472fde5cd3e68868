"""The one-scale contract of every EvalResult: percent metrics, the official printout beside them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbench.evaluate.result import (EvalResult, check_official, official_block, official_value, percent_rows,
                                      to_percent)


def test_to_percent_is_one_float64_multiplication():
    assert to_percent(0.6015690761098271, "fraction") == 0.6015690761098271 * 100 == 60.156907610982714
    f32 = np.float32(0.30535709857940674)  # LISA's float32 cIoU: widened exactly, then x 100 once
    assert to_percent(f32, "fraction") == float(f32) * 100.0
    assert type(to_percent(f32, "fraction")) is float
    assert to_percent(57.08, "percent") == 57.08  # already percent: unchanged
    assert to_percent(None, "fraction") is None and math.isnan(to_percent(float("nan"), "fraction"))
    with pytest.raises(ValueError, match="scale"):
        to_percent(0.5, "ratio")
    with pytest.raises(TypeError):
        to_percent("0.5", "fraction")


def test_percent_rows_converts_only_the_named_score_columns():
    rows = [{"key": "a_0", "J": 0.5, "F": None, "I": 12, "status": "scored"}]
    assert percent_rows(rows, ("J", "F"), "fraction") == [{"key": "a_0", "J": 50.0, "F": None, "I": 12,
                                                           "status": "scored"}]
    assert rows[0]["J"] == 0.5  # the input is not modified


def test_official_block_and_check():
    block = official_block({"global": {"J&F-Mean": 0.25, "J-Mean": 0.5}}, "fraction",
                           {"J&F": "global/J&F-Mean", "J": "global/J-Mean"})
    assert official_value(block, "global/J-Mean") == 0.5
    assert check_official({"J&F": 25.0, "J": 50.0}, block) == []
    assert check_official({"J&F": 25.0, "J": 50.000000000001}, block) == [
        "metric 'J' = 50.000000000001 but the official 'global/J-Mean' = 0.5 (fraction)"]
    assert check_official({"J&F": 25.0}, block) == ["metric 'J' (official 'global/J-Mean') is missing"]
    # a rounded printout (VISA eval_davis17.py: round(100 * x, 2)) is checked after rounding
    rounded = official_block({"J": 61.23}, "percent", {"J": "J"}, digits=2)
    assert check_official({"J": 61.2345}, rounded) == [] and check_official({"J": 61.24}, rounded)
    nan = official_block({"J": float("nan")}, "fraction", {"J": "J"})
    assert check_official({"J": float("nan")}, nan) == []


def test_eval_result_refuses_another_scale_and_a_disagreeing_printout():
    official = official_block({"J": 0.5}, "fraction", {"J": "J"})
    EvalResult("mevis", {"J": 50.0}, [], details={"official": official})
    with pytest.raises(ValueError, match=r"always percent.*to_percent\(\)"):
        EvalResult("mevis", {"J": 0.5}, [], scale="fraction")
    with pytest.raises(ValueError, match="disagree with the official printout"):
        EvalResult("mevis", {"J": 0.5}, [], details={"official": official})


def test_refdavis_b_keeps_visas_rounded_printout(tmp_path):
    """Convention B: VISA prints round(100 * x, 2); the metrics are the unrounded values x 100."""
    from refbench.data.davis import RefDavisLoader
    from refbench.evaluate.video import evaluate_video
    from tests.evaluate.test_refdavis_a import make_refdavis_root, perturbed_predictions, write_predictions

    gts = make_refdavis_root(tmp_path / "d")
    loader = RefDavisLoader(tmp_path / "d")
    pred = write_predictions(tmp_path / "p", perturbed_predictions(loader, gts), list(loader.samples()[0].frames))
    a = evaluate_video(None, loader, pred, protocol="refdavis_b")
    b = evaluate_video(None, loader, pred, protocol="mevis")  # the same arithmetic, MeViS's unrounded printout
    official = a.details["official"]
    assert official["scale"] == "percent" and official["digits"] == 2
    assert a.metrics == b.metrics and 0 < a.metrics["J&F"] < 100
    fractions = b.details["official"]["values"]
    assert b.details["official"]["scale"] == "fraction"
    assert a.metrics == {k: v * 100 for k, v in fractions.items()}
    assert official["values"] == {k: round(100 * float(v), 2) for k, v in fractions.items()}
