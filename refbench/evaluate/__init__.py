"""Scoring existing predictions against a dataset card: the engine behind ``refbench eval``.

``evaluate(card_name, pred, root=None, protocol=None, missing="error", device="cpu")`` dispatches on the
card's task to the task evaluators (``video``, ``grounding``, ``res``), each returning an :class:`EvalResult`.
"""

from refbench.evaluate.result import MISSING_MODES, EvalResult

__all__ = ["EvalResult", "MISSING_MODES"]
