"""Temporal-grounding predictions read from JSON, keyed by the dataset's query ids.

Accepted file shapes (one JSON object; the format is recognised per file, never mixed):

* ``{qid: [s, e]}``: one span in seconds (``[]`` or ``null``: the model gave no span, "unparsed");
* ``{qid: [[s, e], ...]}``: ranked spans, best first (only the "2d-tan" protocol looks past the first);
* ``{qid: "free text"}``: the model's answer, parsed with :func:`refbench.metrics.span_parse.parse_span`
  in the chosen ``parse_style`` (default ``"lmms-eval"``); an answer that does not parse is "unparsed";
* TimeChat's prediction file (RenShuhuai-Andy/TimeChat ``metrics/tvg/example_pred_file.json``, the output of
  ``utils/format_tvg.py``, commit c60b332b38a6327b976ebcee363c938ca95b610d):
  ``{id: {"timestamp": [[s, e], ...] or [], "query": sentence, "vid": "<video>.mp4"}}``.

TimeChat ids and Charades-STA qids: TimeChat's ground truth ``metrics/tvg/example_gt_file.json`` numbers the
3,720 Charades-STA test queries ``0..3719`` in the line order of ``charades_sta_test.txt`` (its ``image_id`` is
``<vid>.mp4``, its ``caption`` the sentence verbatim, its ``timestamp`` the span); this was checked entry by entry
against ``shared/data/charades_sta/timechat_example_gt.json``, and :class:`refbench.data.grounding.CharadesSTALoader`
uses the same 0-based line index as its qid. A TimeChat id is therefore the Charades qid as is. When the dataset's
samples are given, every TimeChat entry's ``vid`` (without ``.mp4``) and ``query`` must match the query it names,
else :class:`PredictionError` (a file made for another split or order).

Ids that are not in the dataset, malformed JSON and malformed values raise
:class:`~refbench.data.base.PredictionError` naming the file and the first few bad ids.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

from refbench.data.base import GroundingQuery, PredictionError, read_json_object
from refbench.metrics.span_parse import SPAN_STYLES, parse_span

PathLike = Union[str, Path]
Span = tuple[float, float]

#: The recognised file formats (``format=`` of :func:`read_span_predictions`; "auto" picks one per file).
SPAN_FORMATS: tuple[str, ...] = ("auto", "spans", "text", "timechat")
#: What a span with start > end or start < 0 means (``bad_spans=``, ``refbench eval --bad-spans``): "error"
#: (default: refused naming the query), or "official": kept as given, so the official IoU formula scores it
#: (a span with start > end never overlaps anything: IoU 0).
BAD_SPAN_MODES: tuple[str, ...] = ("error", "official")

_SHOW = 5


@dataclass(frozen=True)
class SpanPrediction:
    """One query's prediction.

    spans: ranked spans in seconds, best first; empty when the model gave no usable span.
    text: the free-text answer when the file held text (None otherwise).
    """

    qid: str
    spans: tuple[Span, ...]
    text: str | None = None

    @property
    def parsed(self) -> bool:
        """True when there is at least one span (a text that parsed, or a stored span)."""
        return bool(self.spans)

    @property
    def top1(self) -> Span | None:
        return self.spans[0] if self.spans else None


def bad_span_queries(preds: Mapping[str, SpanPrediction]) -> list[str]:
    """Query ids with a span whose start is after its end or below 0, in file order."""
    return [q for q, p in preds.items() if any(s > e or s < 0 for s, e in p.spans)]


def _first(ids: Iterable[str], n: int = _SHOW) -> str:
    ids = list(ids)
    more = f" ... ({len(ids)} in all)" if len(ids) > n else ""
    return ", ".join(repr(i) for i in ids[:n]) + more


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _span_value(value: Any, path: Path, qid: str) -> tuple[Span, ...]:
    """``None`` / ``[]`` / ``[s, e]`` / ``[[s, e], ...]`` -> ranked spans; PredictionError otherwise."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PredictionError(f"{path}: query {qid!r}: expected [start, end], a list of spans, a text or null, "
                              f"got {type(value).__name__}")
    if not value:
        return ()
    rows = [value] if _is_number(value[0]) else value
    out: list[Span] = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 2 and all(_is_number(v) for v in row)):
            raise PredictionError(f"{path}: query {qid!r}: a span is [start, end] (two numbers), got {row!r}")
        try:
            s, e = float(row[0]), float(row[1])
        except OverflowError:  # an integer beyond float range
            s = e = math.inf
        if not (math.isfinite(s) and math.isfinite(e)):
            raise PredictionError(f"{path}: query {qid!r}: span {row!r} is not finite")
        out.append((s, e))
    return tuple(out)


def _load_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, PredictionError, "prediction file not found", "expected a JSON object {qid: prediction}")


def _detect(data: Mapping[str, Any], path: Path) -> str:
    kinds = set()
    for v in data.values():
        if isinstance(v, dict):
            kinds.add("timechat")
        elif isinstance(v, str):
            kinds.add("text")
        else:
            kinds.add("spans")  # list or null; validated later
    if len(kinds) > 1:
        raise PredictionError(f"{path}: mixes prediction kinds {sorted(kinds)}; one file holds one kind")
    return kinds.pop() if kinds else "spans"


def read_span_predictions(
    path: PathLike,
    samples: Sequence[GroundingQuery] | None = None,
    *,
    parse_style: str = "lmms-eval",
    format: str = "auto",
    bad_spans: str = "error",
    dataset: str | None = None,
) -> dict[str, SpanPrediction]:
    """Read a span prediction file into ``{qid: SpanPrediction}`` (file order).

    Args:
        path: the JSON file (shapes in the module docstring).
        samples: the dataset's queries; when given, ids not among them raise :class:`PredictionError`
            (naming the first few), and TimeChat entries must match their query's video and sentence.
        parse_style: :func:`parse_span` style for free-text answers ("lmms-eval", "timechat", "vtimellm").
        format: "auto" (recognised from the values) or one of "spans", "text", "timechat".
        bad_spans: "error" (a span with start > end or start < 0 raises :class:`PredictionError` naming the
            query) or "official" (kept as given; see :data:`BAD_SPAN_MODES`).
        dataset: the dataset's annotation file, named in messages about ids that do not match it.

    Raises:
        PredictionError: unreadable / malformed JSON, malformed values, unknown ids, mismatching TimeChat entries.
        ValueError: unknown ``parse_style`` or ``format``.
    """
    if parse_style not in SPAN_STYLES:
        raise ValueError(f"unknown parse_style {parse_style!r}; valid: {', '.join(SPAN_STYLES)}")
    if format not in SPAN_FORMATS:
        raise ValueError(f"unknown prediction format {format!r}; valid: {', '.join(SPAN_FORMATS)}")
    if bad_spans not in BAD_SPAN_MODES:
        raise ValueError(f"unknown bad-spans mode {bad_spans!r}; valid: {', '.join(BAD_SPAN_MODES)}")
    path = Path(path)
    data = _load_json(path)
    kind = _detect(data, path) if format == "auto" else format

    by_qid = {s.qid: s for s in samples} if samples is not None else None
    if by_qid is not None:
        unknown = [q for q in data if q not in by_qid]
        if unknown:
            raise PredictionError(
                f"{path}: {len(unknown)} prediction id(s) are not queries of the dataset"
                + (f" ({dataset})" if dataset else "") + f": {_first(unknown)}"
            )

    out: dict[str, SpanPrediction] = {}
    mismatched: list[str] = []
    for qid, value in data.items():
        if kind == "text":
            if not isinstance(value, str):
                raise PredictionError(f"{path}: query {qid!r}: expected a text answer, got {type(value).__name__}")
            out[qid] = SpanPrediction(qid, _span_value(parse_span(value, parse_style), path, qid), value)
        elif kind == "timechat":
            if not isinstance(value, dict) or "timestamp" not in value:
                raise PredictionError(
                    f"{path}: query {qid!r}: a TimeChat entry is {{'timestamp': [[s, e], ...], 'query', 'vid'}}"
                )
            spans = _span_value(value["timestamp"], path, qid)
            if by_qid is not None:
                ref = by_qid[qid]
                vid = value.get("vid")
                video = vid[:-4] if isinstance(vid, str) and vid.endswith(".mp4") else vid
                if (vid is not None and video != ref.video) or (
                    "query" in value and value["query"] != ref.query
                ):
                    mismatched.append(qid)
            out[qid] = SpanPrediction(qid, spans)
        elif kind == "spans":
            if isinstance(value, str) or isinstance(value, dict):
                raise PredictionError(f"{path}: query {qid!r}: expected [start, end], got {type(value).__name__}")
            out[qid] = SpanPrediction(qid, _span_value(value, path, qid))
    if mismatched:
        raise PredictionError(
            f"{path}: {len(mismatched)} TimeChat entries name another video or sentence than the dataset's query "
            f"of the same id (TimeChat ids are 0-based lines of charades_sta_test.txt): {_first(mismatched)}"
        )
    bad = bad_span_queries(out) if bad_spans == "error" else []
    if bad:
        span = next(sp for sp in out[bad[0]].spans if sp[0] > sp[1] or sp[0] < 0)
        raise PredictionError(
            f"{path}: query {bad[0]!r} has the span [{span[0]:g}, {span[1]:g}] (start after end, or below 0); "
            f"{len(bad)} such query(ies): {_first(bad)}; --bad-spans official scores them as the official script "
            "does"
        )
    return out


__all__ = ["BAD_SPAN_MODES", "SPAN_FORMATS", "SpanPrediction", "bad_span_queries", "read_span_predictions"]
