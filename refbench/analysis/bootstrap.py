"""The paired bootstrap behind ``refbench compare``: a 95% interval and a p-value for a metric difference.

Both runs are resampled with the *same* draws of units (paired), and each metric is recomputed per resample with the
protocol's own aggregation (:mod:`refbench.analysis.aggregate`): ``W @ M`` for a (resamples, units) matrix of draw
counts, vectorised in chunks that bound the memory (about 32 MiB of counts at a time).

* Draws: ``numpy.random.default_rng(seed)`` (PCG64), ``integers(0, n)`` per resample and unit, in resample order;
  the counts of a resample are the bincount of its n draws (a multinomial(n, 1/n) vector). The same seed gives the
  same draws whatever the chunk size.
* Interval: the percentile interval, the 2.5th and 97.5th percentiles of the resampled differences d*
  (``numpy.percentile``, linear interpolation).
* p-value: two-sided, of the shifted null (Efron & Tibshirani, *An Introduction to the Bootstrap*, 16.4; Hall &
  Wilson 1991): centre the resampled differences on the observed one, d* - d, which mimics the difference's
  distribution under "no difference", and count how often it is at least as far from 0 as the observation:
  ``p = (1 + #{|d* - d| >= |d|}) / (R + 1)``. (The +1 counts the observation itself, so p is never 0 and a test
  at level a rejects with probability at most about a under the null.) Resamples whose metric is undefined (a
  category drawn empty) are left out of both, and counted.

``tests/analysis/test_bootstrap.py`` checks the interval's coverage and the p-value's calibration on synthetic
data where the truth is known, and the speed (800 samples x 1,000 resamples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

#: Float64 cells of draw counts per chunk (4 Mi cells = 32 MiB).
CHUNK_CELLS = 1 << 22


def draw_counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """(resamples, n) float64 counts: how often each of n units is drawn in each resample of size n."""
    idx = rng.integers(0, n, size=(resamples, n))
    idx += (np.arange(resamples, dtype=idx.dtype) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def count_chunks(n: int, resamples: int, seed: int, chunk_cells: int = CHUNK_CELLS) -> Iterator[np.ndarray]:
    """The draw counts of ``resamples`` resamples in chunks of at most ``chunk_cells`` cells (same draws for any
    chunk size)."""
    rng = np.random.default_rng(seed)
    step = max(1, chunk_cells // max(n, 1))
    for start in range(0, resamples, step):
        yield draw_counts(rng, n, min(step, resamples - start))


@dataclass(frozen=True)
class Interval:
    """The bootstrap of one difference: observed value, percentile interval, p-value, resamples used."""

    observed: float
    low: float
    high: float
    p: float
    resamples: int
    undefined: int  # resamples where the metric was undefined in a run (left out)

    def as_dict(self) -> dict[str, float | int]:
        return {"observed": self.observed, "low": self.low, "high": self.high, "p": self.p,
                "resamples": self.resamples, "undefined": self.undefined}


def interval(observed: float, diffs: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval and shifted-null two-sided p-value of ``diffs`` (the resampled differences)."""
    d = np.asarray(diffs, dtype=np.float64)
    ok = np.isfinite(d)
    undefined = int((~ok).sum())
    d = d[ok]
    if d.size == 0 or not np.isfinite(observed):
        nan = float("nan")
        return Interval(float(observed), nan, nan, nan, 0, undefined)
    a = (1.0 - level) / 2
    low, high = np.percentile(d, [100 * a, 100 * (1 - a)])
    extreme = int(np.count_nonzero(np.abs(d - observed) >= abs(observed)))
    p = (1 + extreme) / (d.size + 1)
    return Interval(float(observed), float(low), float(high), float(p), int(d.size), undefined)


def paired_bootstrap(stat_a: Callable[[np.ndarray | None], dict[str, np.ndarray]],
                     stat_b: Callable[[np.ndarray | None], dict[str, np.ndarray]], n: int, resamples: int = 1000,
                     seed: int = 0, chunk_cells: int = CHUNK_CELLS) -> dict[str, tuple[Interval, np.ndarray]]:
    """``{metric: (Interval of B - A, resampled differences)}``.

    stat_a / stat_b: ``weights -> {metric: (R,) values}`` for (R, n) draw counts, ``None`` meaning every unit once
    (:meth:`refbench.analysis.aggregate.Aggregation.values`); the n units are the same, in the same order, in both.
    """
    if n < 1:
        raise ValueError("no samples to resample")
    if resamples < 1:
        raise ValueError("at least one resample")
    base_a, base_b = stat_a(None), stat_b(None)
    names = [m for m in base_a if m in base_b]
    parts: dict[str, list[np.ndarray]] = {m: [] for m in names}
    for w in count_chunks(n, resamples, seed, chunk_cells):
        va, vb = stat_a(w), stat_b(w)
        for m in names:
            parts[m].append(vb[m] - va[m])
    out = {}
    for m in names:
        diffs = np.concatenate(parts[m])
        out[m] = (interval(float(base_b[m][0] - base_a[m][0]), diffs), diffs)
    return out


__all__ = ["CHUNK_CELLS", "Interval", "count_chunks", "draw_counts", "interval", "paired_bootstrap"]
