"""What every task evaluator returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MISSING_MODES = ("error", "empty", "official")
"""How a missing prediction (video, expression, frame, query, sentence) is handled:
- ``error`` (default): a PredictionError listing what is missing;
- ``empty``: scored as an empty mask / a failed span, counted in ``EvalResult.counts['missing']``;
- ``official``: what the official script does where it defines it (MeViS: a missing video folder scores
  J = F = 0; ReVOS: a failed expression scores zeros), counted and reported; elsewhere as ``empty``.
Never silently dropped."""


@dataclass
class EvalResult:
    """Scores of one evaluation.

    metrics: headline metrics under their usual names ('J', 'F', 'J&F', 'A', 'R', 'R@0.5', 'mIoU', 'cIoU',
        'gIoU', ...) in the official scale (MeViS/DAVIS 0-1 as printed by their scripts are kept as the
        official code prints them; the ``scale`` field says which).
    per_sample: one row per expression / object / query / sentence (the per-sample CSV).
    counts: how many samples were scored, missing, filled as empty, scored by the official missing rule.
    protocol: the protocol name; reference: repository, file and commit of the evaluator it reproduces.
    details: protocol-specific tables (e.g. ReVOS per category, DAVIS global row).
    """

    protocol: str
    metrics: dict[str, float]
    per_sample: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    scale: str = "percent"
    reference: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
