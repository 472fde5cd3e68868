"""Scorers that reproduce the official evaluators exactly, batched on torch (CPU or CUDA).

``from refbench.metrics import jaccard, boundary_f`` gives the per-frame J and F; the protocol modules are
loaded on first use:

- :mod:`refbench.metrics.frame`: J and F per frame (davis2017-evaluation ``db_eval_iou`` / ``db_eval_boundary``)
- :mod:`refbench.metrics.davis`: DAVIS semi-supervised and unsupervised protocols
- :mod:`refbench.metrics.mevis`: MeViS per-expression J&F
- :mod:`refbench.metrics.revos`: ReVOS J, F, A, R with both value semantics
- :mod:`refbench.metrics.res`: RES cIoU / gIoU (LISA, Sa2VA)
- :mod:`refbench.metrics.tsg`, :mod:`refbench.metrics.span_parse`: temporal grounding R@m, mIoU, answer parsing
"""

from __future__ import annotations

import importlib

from refbench.metrics.frame import boundary_f, boundary_radius, jaccard, jaccard_and_boundary

_LAZY = {
    "evaluate_semi_supervised": "davis",
    "evaluate_unsupervised": "davis",
    "object_statistics": "davis",
    "DavisResult": "davis",
    "MevisMeter": "mevis",
    "mevis_scores": "mevis",
    "RevosMeter": "revos",
    "revos_scores": "revos",
    "RESMeter": "res",
    "res_scores": "res",
    "intersection_union": "res",
    "temporal_iou": "tsg",
    "score_grounding": "tsg",
    "GroundingMeter": "tsg",
    "parse_span": "span_parse",
}

__all__ = ["jaccard", "boundary_f", "jaccard_and_boundary", "boundary_radius", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"refbench.metrics.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'refbench.metrics' has no attribute {name!r}")
