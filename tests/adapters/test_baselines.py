"""The blind prior's fitting rules, checked on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from refbench.adapters.baselines import fit_span_prior, threshold_prior, training_card_name


def test_training_card_name():
    assert training_card_name("charades_sta_test") == "charades_sta_train"
    assert training_card_name("mevis_val_u") == "mevis_train"
    assert training_card_name("refcoco+_testA") == "refcoco+_train"
    assert training_card_name("demo_mevis_val") == "demo_mevis_train"
    with pytest.raises(ValueError, match="--model-arg train=CARD"):
        training_card_name("mevis_train")


def test_span_prior_mode():
    spans = [(0.0, 0.21), (0.01, 0.19), (0.5, 0.9), (0.0, 0.2), (0.52, 0.88)]
    # on a 10-bin grid: (0, 2), (0, 2), (5, 9), (0, 2), (5, 9) -> (0, 2) three times
    assert fit_span_prior(spans, 10, "mode") == (0.0, 0.2)
    # a degenerate span is widened to one bin, never zero length
    assert fit_span_prior([(0.5, 0.5)], 10, "mode") == (0.5, 0.6)


def test_span_prior_miou_is_the_best_grid_span():
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 0.6, 50)
    spans = list(zip(s, s + rng.uniform(0.05, 0.4, 50)))
    best = fit_span_prior(spans, 10, "miou")

    def miou(a, b):
        tot = 0.0
        for gs, ge in spans:
            inter = max(min(b, ge) - max(a, gs), 0.0)
            tot += inter / (max(b, ge) - min(a, gs))
        return tot / len(spans)

    grid = [i / 10 for i in range(11)]
    scores = {(a, b): miou(a, b) for a in grid for b in grid if b > a}
    assert miou(*best) == pytest.approx(max(scores.values()), abs=1e-12)
    with pytest.raises(ValueError, match="objective"):
        fit_span_prior(spans, 10, "median")


def test_threshold_prior_auto_matches_area():
    mean = np.arange(16, dtype=float).reshape(4, 4) / 16
    m = threshold_prior(mean, 0.25, "auto")
    assert m.sum() == 4 and m[3].all()  # the four largest cells
    assert threshold_prior(mean, 0.0, "auto").sum() == 0
    assert threshold_prior(mean, 0.0, 0.5).sum() == 8
