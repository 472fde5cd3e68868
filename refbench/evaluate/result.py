"""What every task evaluator returns, and the one scale it is in.

One scale (issue 13): every :class:`EvalResult` metric, every per-sample score, every summary ``metrics`` entry,
leaderboard row and regress baseline is in **percent** (0-100), the scale papers report. The official script's
own printout is kept beside it, bit for bit, under ``details["official"]`` (:func:`official_block`): its names
(``J&F-Mean``, ``JF``, ``giou``, ``IOU@3``, ...), its values and its scale (``"fraction"`` or ``"percent"``).

Where the official script prints a fraction (MeViS, DAVIS, RES), the percent value is the official float64 value
times 100 computed in float64 (:func:`to_percent`), nothing else: no rounding, no float32 step. Where it already
prints percent (ReVOS, the grounding scripts), the percent value *is* the official value, unchanged. So
``metrics[name] == to_percent(official value, official scale)`` for every metric the printout holds; the block's
``metrics`` map names, for each refbench metric, where in the printout its value comes from, and
:func:`check_official` verifies the relation (every :class:`EvalResult` runs it when built).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

MISSING_MODES = ("error", "empty", "official")
"""How a missing prediction (video, expression, frame, query, sentence) is handled:
- ``error`` (default): a PredictionError listing what is missing;
- ``empty``: scored as an empty mask / a failed span, counted in ``EvalResult.counts['missing']``;
- ``official``: what the official script does where it defines it (MeViS: a missing video folder scores
  J = F = 0; ReVOS: a failed expression scores zeros), counted and reported; elsewhere as ``empty``.
Never silently dropped."""

#: The scales an official script can print in.
SCALES: tuple[str, ...] = ("fraction", "percent")

#: The one scale of refbench's own numbers.
PERCENT = "percent"


def to_percent(value: Any, scale: str) -> Any:
    """``value`` of an official script printing in ``scale``, in percent.

    ``"fraction"``: ``float(value) * 100.0`` in float64 (a float32 value such as LISA's cIoU is widened to
    float64 exactly first, then multiplied once). ``"percent"``: the value unchanged. ``None`` and NaN pass
    through (NaN * 100 is NaN); a non-number raises TypeError."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"score {value!r} is not a number")
    return float(value) * 100.0 if scale == "fraction" else value


def percent_metrics(values: Mapping[str, Any], scale: str) -> dict[str, Any]:
    """Every value of ``values`` (an official-scale mapping) in percent, same keys and order."""
    return {k: to_percent(v, scale) for k, v in values.items()}


def percent_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str], scale: str) -> list[dict[str, Any]]:
    """Per-sample rows with the score ``columns`` in percent (other columns, counts and ids untouched)."""
    out = []
    for row in rows:
        row = dict(row)
        for c in columns:
            if c in row and row[c] is not None:
                row[c] = to_percent(row[c], scale)
        out.append(row)
    return out


def official_block(values: Mapping[str, Any], scale: str, metrics: Mapping[str, str] | None = None,
                   digits: int | None = None, note: str | None = None) -> dict[str, Any]:
    """The ``details["official"]`` record of one evaluation.

    values: the official script's printout, under its own names and in its own scale (nested mappings allowed,
        e.g. ReVOS's ``{"referring": {"J": ..., "JF": ...}, ...}``).
    scale: ``"fraction"`` or ``"percent"``: the scale of ``values``.
    metrics: refbench metric name -> ``"/"``-separated path in ``values`` it is derived from
        (``{"J&F": "J&F-Mean"}``, ``{"J&F (referring)": "referring/JF"}``); metrics computed by refbench only
        (e.g. the mean over Ref-DAVIS17's four annotator sets) are left out.
    digits: the printout rounds to this many decimals after scaling (VISA ``eval_davis17.py`` prints
        ``round(100 * x, 2)``): then ``round(metric, digits) == printed`` instead of equality.
    note: anything a reader needs to read the printout (e.g. "no official script").
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    block: dict[str, Any] = {"scale": scale, "values": dict(values)}
    if metrics:
        block["metrics"] = dict(metrics)
    if digits is not None:
        block["digits"] = int(digits)
    if note:
        block["note"] = note
    return block


def official_value(official: Mapping[str, Any], path: str) -> Any:
    """The printout value at ``path`` (``"referring/JF"``) of an :func:`official_block`; KeyError if absent."""
    node: Any = official["values"]
    for part in path.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"official printout has no {path!r}")
        node = node[part]
    return node


def check_official(metrics: Mapping[str, Any], official: Mapping[str, Any]) -> list[str]:
    """Problems with the relation between percent ``metrics`` and their :func:`official_block` (empty: fine).

    For each ``official["metrics"]`` entry: the metric exists and equals ``to_percent(printed, scale)``
    exactly (NaN equals NaN), or, with ``digits``, rounds to the printed value."""
    problems: list[str] = []
    scale = official.get("scale")
    if scale not in SCALES:
        return [f"official scale {scale!r} is not one of {', '.join(SCALES)}"]
    if not isinstance(official.get("values"), Mapping):
        return ["official printout has no 'values' mapping"]
    digits = official.get("digits")
    for name, path in (official.get("metrics") or {}).items():
        if name not in metrics:
            problems.append(f"metric {name!r} (official {path!r}) is missing")
            continue
        try:
            printed = official_value(official, path)
        except KeyError as exc:
            problems.append(str(exc.args[0]))
            continue
        got = metrics[name]
        if digits is not None:
            ok = round(float(got), int(digits)) == float(printed)
        else:
            want = to_percent(printed, scale)
            ok = got == want or (got != got and want != want)
        if not ok:
            problems.append(f"metric {name!r} = {got!r} but the official {path!r} = {printed!r} ({scale})")
    return problems


@dataclass
class EvalResult:
    """Scores of one evaluation.

    metrics: headline metrics under their usual names ('J', 'F', 'J&F', 'A', 'R', 'R@0.5', 'mIoU', 'cIoU',
        'gIoU', ...), in **percent** (the official fraction x 100 in float64 where the official script prints
        fractions; the official value itself where it prints percent).
    per_sample: one row per expression / object / query / sentence (the per-sample CSV); scores in percent.
        Every row starts with ``sample_id``, the id the sample has in ``predictions.json``, ``diagnostics.jsonl``
        and the run store: ``<video>/<exp_id>`` for an expression, ``<video>/<object id>`` for a VOS object,
        the query id (TSG), the sentence's sample id (RES). ``key``, where present, is the official
        evaluator's own name of the row (MeViS ``<video>_<exp_id>``, DAVIS ``<sequence>_<object>``).
    counts: how many samples were scored, missing, filled as empty, scored by the official missing rule.
    protocol: the protocol name; reference: repository, file and commit of the evaluator it reproduces.
    details: protocol-specific tables; ``details["official"]`` is the official printout
        (:func:`official_block`): names, values and scale of the official script, bit for bit.
    scale: always ``"percent"`` (kept so that a summary read on its own says so); anything else is an error.
    per_frame: with ``per_frame=True`` (video tasks), one row per (sample, scored frame) with the scorer's own
        per-frame values (:mod:`refbench.evaluate.per_frame`); None otherwise.
    """

    protocol: str
    metrics: dict[str, float]
    per_sample: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    scale: str = PERCENT
    reference: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    per_frame: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.scale != PERCENT:
            raise ValueError(
                f"protocol {self.protocol!r}: EvalResult metrics are always percent (scale 'percent'), got scale "
                f"{self.scale!r}; convert with to_percent() and keep the official printout in "
                "details['official'] (refbench.evaluate.result.official_block)"
            )
        bad = next((r for r in self.per_sample if next(iter(r), None) != "sample_id"), None)
        if bad is not None:
            raise ValueError(f"protocol {self.protocol!r}: every per-sample row starts with sample_id; got "
                             f"{list(bad)[:3]}")
        official = self.details.get("official")
        if official is not None:
            problems = check_official(self.metrics, official)
            if problems:
                raise ValueError(f"protocol {self.protocol!r}: metrics disagree with the official printout: "
                                 + "; ".join(problems))
