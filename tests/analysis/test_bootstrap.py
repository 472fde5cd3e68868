"""The paired bootstrap: interval coverage and p-value calibration on synthetic data whose truth is known, through
the real aggregations (MeViS's mean over expressions, RES's ratio of sums), seeding and speed."""

from __future__ import annotations

import time

import numpy as np

from refbench.analysis.aggregate import aggregation
from refbench.analysis.bootstrap import count_chunks, draw_counts, interval, paired_bootstrap


def _mevis_rows(j: np.ndarray, f: np.ndarray) -> list[dict[str, str]]:
    return [{"key": f"v{i // 8}/{i % 8}", "J": repr(float(a)), "F": repr(float(b)), "status": "scored"}
            for i, (a, b) in enumerate(zip(j, f))]


def _res_rows(inter: np.ndarray, union: np.ndarray) -> list[dict[str, str]]:
    return [{"sample_id": str(i), "I": str(int(a)), "U": str(int(b)), "skipped": "False"}
            for i, (a, b) in enumerate(zip(inter, union))]


def _mevis_pair(rng, n: int, delta: float):
    """Per-expression J, F of run A, and run B = A + a per-sample change of mean ``delta`` (noise 8 points): the true
    J&F difference of the population is ``delta``."""
    base = rng.beta(2, 2, size=n) * 100
    ja = np.clip(base + rng.normal(0, 5, n), 0, 100)
    fa = np.clip(base + rng.normal(0, 5, n), 0, 100)
    change = rng.normal(delta, 8, n)
    jb, fb = ja + change, fa + change  # no clipping: keeps the population difference exactly delta
    metrics = {"J": 0.0, "F": 0.0, "J&F": 0.0}
    return (aggregation("mevis", _mevis_rows(ja, fa), "key", metrics, "refvos"),
            aggregation("mevis", _mevis_rows(jb, fb), "key", metrics, "refvos"))


def _res_pair(rng, n: int, delta: float):
    """Per-sentence pixel counts: unions U (50..20000, independent of the sentence's difficulty q), intersections
    Binomial(U, q) for A and Binomial(U, q + delta) for B: the true cIoU difference (ratio of expectations) is
    100 * delta."""
    union = rng.integers(50, 20000, size=n)
    q = rng.uniform(0.2, 0.7, n)
    ia = rng.binomial(union, q)
    ib = rng.binomial(union, q + delta)
    metrics = {"cIoU": 0.0, "gIoU": 0.0}
    return (aggregation("exact", _res_rows(ia, union), "sample_id", metrics, "res"),
            aggregation("exact", _res_rows(ib, union), "sample_id", metrics, "res"))


def _experiments(make, metric: str, delta: float, truth: float, m: int = 300, n: int = 200, r: int = 500):
    rng = np.random.default_rng(12345)
    covered, pvalues = 0, []
    for e in range(m):
        a, b = make(rng, n, delta)
        iv, _d = paired_bootstrap(a.values, b.values, n, resamples=r, seed=e)[metric]
        covered += iv.low <= truth <= iv.high
        pvalues.append(iv.p)
    return covered / m, np.array(pvalues)


def _uniform_distance(p: np.ndarray) -> float:
    p = np.sort(p)
    grid = np.arange(1, len(p) + 1) / len(p)
    return float(np.max(np.abs(p - grid)))


def test_interval_covers_a_known_mean_difference():
    coverage, p = _experiments(_mevis_pair, "J&F", delta=1.5, truth=1.5)
    # 300 experiments: binomial sd of a 95% coverage is 1.3 points
    assert 0.91 <= coverage <= 0.985, coverage
    assert np.mean(p <= 0.05) > 0.5  # a real +1.5 on 200 expressions is usually detected


def test_p_value_is_calibrated_under_no_difference():
    coverage, p = _experiments(_mevis_pair, "J&F", delta=0.0, truth=0.0)
    assert 0.91 <= coverage <= 0.985, coverage
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09, np.mean(p <= 0.05)
    assert 0.14 <= np.mean(p <= 0.2) <= 0.26, np.mean(p <= 0.2)
    assert _uniform_distance(p) < 0.1  # p ~ Uniform(0, 1) under the null (KS distance; 5% critical ~0.08)


def test_ratio_of_sums_interval_and_p_value():
    coverage, _p = _experiments(_res_pair, "cIoU", delta=0.02, truth=2.0)
    assert 0.91 <= coverage <= 0.985, coverage
    coverage, p = _experiments(_res_pair, "cIoU", delta=0.0, truth=0.0)
    assert 0.91 <= coverage <= 0.985, coverage
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09, np.mean(p <= 0.05)
    assert _uniform_distance(p) < 0.1


def test_res_resamples_pixel_counts_not_per_sample_ious():
    # two sentences: a tiny one (I 1, U 2) and a big one (I 900, U 1000); cIoU of a resample is a ratio of sums
    a = aggregation("exact", _res_rows(np.array([1, 900]), np.array([2, 1000])), "sample_id",
                    {"cIoU": 0.0, "gIoU": 0.0}, "res")
    w = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert np.allclose(a.values(w)["cIoU"], [50.0, 90.0, 100 * 901 / 1002])
    assert np.allclose(a.values(w)["gIoU"], [50.0, 90.0, 70.0])  # gIoU: mean of per-sentence IoUs


def test_counts_are_multinomial_and_seeded():
    rng = np.random.default_rng(0)
    w = draw_counts(rng, 50, 200)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all() and w.min() >= 0
    one = np.concatenate(list(count_chunks(37, 1000, seed=3)))
    small = np.concatenate(list(count_chunks(37, 1000, seed=3, chunk_cells=37 * 7)))
    assert np.array_equal(one, small)  # the same draws whatever the chunk size
    assert not np.array_equal(one, np.concatenate(list(count_chunks(37, 1000, seed=4))))


def test_p_value_definition():
    d = np.array([0.5, 1.5, 2.5, 3.0, -0.2])  # observed 1.0: |d* - 1| >= 1 for 2.5, 3.0, -0.2
    iv = interval(1.0, d)
    assert iv.p == (1 + 3) / (5 + 1) and iv.resamples == 5
    iv = interval(1.0, np.array([np.nan, 1.0, 1.2]))
    assert iv.undefined == 1 and iv.resamples == 2 and iv.p == 1 / 3


def test_speed_800_samples_1000_resamples():
    rng = np.random.default_rng(1)
    a, b = _mevis_pair(rng, 800, 0.4)
    t0 = time.perf_counter()
    out = paired_bootstrap(a.values, b.values, 800, resamples=1000, seed=0)
    seconds = time.perf_counter() - t0
    assert set(out) == {"J", "F", "J&F"} and out["J&F"][1].shape == (1000,)
    print(f"bootstrap 800 samples x 1000 resamples, 3 metrics: {seconds * 1000:.1f} ms")
    assert seconds < 1.0, seconds
