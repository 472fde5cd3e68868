"""ReasonVOS's dataset score, as MomentSeg ``tools/eval/eval_reasonvos.py``.

Reference: Dmmm1997/MomentSeg commit a118d151618cdfc0607aadaa63267a68e887ff73, ``tools/eval/eval_reasonvos.py`` with
the Sa2VA metrics module (magic-research/Sa2VA d01bf3fa ``third_parts/revos/utils/metrics.py``). Described in
``docs/protocols.md#reasonvos``; checked exactly on ``shared/data/reasonvos_golden``.

Per expression J and F are DAVIS's means over every listed frame (:func:`refbench.metrics.mevis.expression_jf`).
The dataset score is expression-weighted: ``J = round(100 * float(mean J), 2)``, ``F`` likewise and
``J&F = round(100 * float((mean J + mean F) / 2), 2)`` (Python's rounding of a float, unlike the numpy rounding of
the other MomentSeg / VISA scripts).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def reasonvos_scores(j: Sequence[float], f: Sequence[float]) -> dict[str, float]:
    """``{"J", "F", "J&F"}`` (percent, 2 decimals) from the per-expression means in the official order."""
    if len(j) == 0 or len(j) != len(f):
        raise ValueError("reasonvos: need the same non-zero number of J and F values")
    mj, mf = np.mean(np.asarray(j, dtype=np.float64)), np.mean(np.asarray(f, dtype=np.float64))
    return {"J": round(100 * float(mj), 2), "F": round(100 * float(mf), 2),
            "J&F": round(100 * float((mj + mf) / 2), 2)}


__all__ = ["reasonvos_scores"]
