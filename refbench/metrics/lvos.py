"""LVOS per-object statistics and the seen / unseen table, as LingyiHongfd/lvos-evaluation.

Reference: LingyiHongfd/lvos-evaluation commit 25cb02d1455b5d0c964a9836ff5242fb51df55ee, ``lvos/utils.py``
(``db_statistics``, ``db_statistics_var``), ``lvos/evaluation.py`` (seen / unseen containers) and
``evaluation_method.py`` (the global columns). Described in ``docs/protocols.md#lvos``; checked exactly on
``shared/data/lvos_golden``.

* Per object the per-frame J and F are DAVIS's (no void), stored as ``1 x n`` arrays; M = nanmean, Recall =
  nanmean(x > 0.5), and the decay bins of a 1 x n array all span the whole array, so Decay is 0.
* V = sqrt(round(nansum((m - JF_t)^2) / n, 4)) with JF_t = (J_t + F_t) / 2 and m = nanmean(JF_t): the population
  variance is **rounded to 4 decimals** (numpy's rounding of a float64) before the square root.
* Global (fractions): per split the plain mean over its objects; J-Mean = (J_seen + J_unseen) / 2, F and V
  likewise, and J&F-Mean = ((J_seen + F_seen) + (J_unseen + F_unseen)) / 4. An empty split gives NaN.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np

#: The columns of ``global_results-valid.csv``, in order.
GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-seen-Mean", "J-unseen-Mean", "F-Mean", "F-seen-Mean", "F-unseen-Mean",
                  "V-Mean", "V-seen-Mean", "V-unseen-Mean")


def _statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(M, Recall, Decay) of a 1 x n array (``db_statistics``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        m = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return m, recall, decay


def variance_score(j: np.ndarray, f: np.ndarray) -> float:
    """V of one object (``db_statistics_var``) from its 1 x n J and F arrays."""
    jf = (j + f) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(jf)
        var = np.nansum((mean - jf) ** 2) / jf.shape[1]
    return math.sqrt(round(var, 4))


def object_statistics(j: Sequence[float], f: Sequence[float]) -> dict[str, float]:
    """``J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay, V-Mean`` (fractions) of one object's per-frame slots."""
    j_arr = np.asarray(j, dtype=np.float64).reshape(1, -1)
    f_arr = np.asarray(f, dtype=np.float64).reshape(1, -1)
    jm, jr, jd = _statistics(j_arr)
    fm, fr, fd = _statistics(f_arr)
    return {"J-Mean": float(jm), "J-Recall": float(jr), "J-Decay": float(jd), "F-Mean": float(fm),
            "F-Recall": float(fr), "F-Decay": float(fd), "V-Mean": variance_score(j_arr, f_arr)}


def _split_mean(values: list[float]) -> np.float64:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.mean(values) if values else np.float64("nan")


def global_table(seen: Sequence[Mapping[str, float]], unseen: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The 10 global columns (fractions) from the per-object statistics of each split, in order."""
    js, ju = _split_mean([o["J-Mean"] for o in seen]), _split_mean([o["J-Mean"] for o in unseen])
    fs, fu = _split_mean([o["F-Mean"] for o in seen]), _split_mean([o["F-Mean"] for o in unseen])
    vs, vu = _split_mean([o["V-Mean"] for o in seen]), _split_mean([o["V-Mean"] for o in unseen])
    values = [((js + fs) + (ju + fu)) / 4.0, (js + ju) / 2, js, ju, (fs + fu) / 2, fs, fu, (vs + vu) / 2, vs, vu]
    return {name: float(v) for name, v in zip(GLOBAL_COLUMNS, values)}


__all__ = ["GLOBAL_COLUMNS", "global_table", "object_statistics", "variance_score"]
