"""Each protocol's headline aggregation, written as a function of per-unit sums, for resampling.

``refbench compare`` resamples *units* (expressions, sequences, sentences, queries) with replacement and recomputes
every metric from the resampled per-sample values with the protocol's own aggregation, not with a plain mean of a
per-sample column. Every aggregation used by the protocols is a function of sums over units, so a resample is
``W @ M``: ``W`` the (resamples, units) matrix of how often each unit was drawn, ``M`` the (units, columns) matrix of
per-unit statistics below, and the metric a function of the column sums. Per protocol:

* ``mevis`` / ``refdavis_b`` / ``reasonvos`` (unit: expression): J = sum(J) / n, F likewise, J&F = (J + F) / 2
  (expression-weighted; MeViS's official zeros of a missing video are units with J = F = 0, ReasonVOS's dropped
  expressions are units that add nothing).
* ``revos`` (expression): per category (type_id 0 referring, 1 reasoning) the mean of the per-expression values as
  ``eval_revos.py`` rounds them, category J&F = (J + F) / 2, overall = the mean of the two categories; ``type_id`` 2
  is in no number. ``refsav``: the same with 0 long, 1 short and J, F, A.
* ``davis_semi`` / ``davis_unsup`` (unit: sequence, all its objects together): every column is the plain mean over
  all objects of the drawn sequences (sum over objects / number of objects); J&F = (J + F) / 2. ``refdavis_a``
  (video): the same per annotator set, then the plain mean of the four sets.
* ``sav`` (video): J and F are means over the objects of the drawn videos; ``secvos`` per scene-segment run.
  ``lvos`` (video): the seen and unseen means, J&F = ((J_s + F_s) + (J_u + F_u)) / 4. ``mosev2`` (video): means of
  the objects' unrounded values (disappearance / reappearance over the objects that have such a segment).
* ``lisa`` / ``sa2va`` / ``exact`` RES (unit: sentence): cIoU = sum(I) / sum(U) over the drawn sentences' pixel
  counts (a ratio of sums: intersections and unions are resampled, never per-sample IoUs), gIoU = sum of the
  protocol's per-sentence IoU (LISA / Sa2VA: I / (U + 1e-5), + 1 for an empty union; a Sa2VA-skipped sentence adds 0
  and counts) / n.
* grounding (unit: query): mIoU = sum(IoU) / n, R@m (R1@m) = hits / n x 100 with the protocol's comparison
  (2D-TAN: IoU > m, the others IoU >= m; 2D-TAN's dropped queries are in no number). Top-5 recalls (2D-TAN
  R5@m) need the ranked proposals, which the per-sample CSV does not hold: not resampled.

The aggregation on every unit drawn once must reproduce the summary's metric (:meth:`Aggregation.check`): to
``1e-9`` relative (summation order), or its 2-decimal rounding where the official script prints rounded values
(ReasonVOS, MOSE v2, moment_detr), or ``1e-3`` points for LISA / Sa2VA, whose official arithmetic is float32. A
metric that does not is reported as not resampled, never with an interval from another formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from refbench.analysis.rundir import number, value

Sums = Mapping[str, np.ndarray]
MetricFn = Callable[[Sums], np.ndarray]


@dataclass
class Aggregation:
    """The per-unit statistics of one run and the metric functions of its protocol."""

    protocol: str
    unit: str  # what one resampling unit is: "expression", "sequence", "video", "sentence", "query"
    units: list[str]
    columns: list[str]
    matrix: np.ndarray  # (units, columns) float64
    metrics: dict[str, MetricFn]
    rounding: int | None = None  # decimals the official printout rounds the metrics to
    tolerance: float = 1e-9  # relative, for the identity check
    absolute: float = 0.0  # absolute points, for the identity check (float32 official arithmetic)
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it is not resampled

    def values(self, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every metric for each row of ``weights`` ((R, units) counts); None: each unit once (shape (1,))."""
        w = np.ones((1, len(self.units))) if weights is None else weights
        sums = w @ self.matrix
        cols = {c: sums[:, i] for i, c in enumerate(self.columns)}
        with np.errstate(divide="ignore", invalid="ignore"):
            return {name: np.asarray(fn(cols), dtype=np.float64) for name, fn in self.metrics.items()}

    def check(self, summary_metrics: Mapping[str, Any]) -> dict[str, str]:
        """Metrics whose aggregation on the original samples does not give the summary's value: name -> why."""
        got = self.values()
        bad: dict[str, str] = {}
        for name in list(self.metrics):
            want = summary_metrics.get(name)
            if not isinstance(want, (int, float)) or isinstance(want, bool) or not math.isfinite(float(want)):
                bad[name] = "no finite value in the summary"
                continue
            x = float(got[name][0])
            want = float(want)
            ok = math.isfinite(x) and (abs(x - want) <= max(self.tolerance * max(1.0, abs(want)), self.absolute)
                                       or (self.rounding is not None and round(x, self.rounding) == want))
            if not ok:
                bad[name] = f"the aggregation gives {x!r}, the summary {want!r}"
        return bad


class _Builder:
    """Accumulates per-unit column sums in first-seen unit order."""

    def __init__(self) -> None:
        self.units: dict[str, int] = {}
        self.cols: dict[str, int] = {}
        self.cells: dict[tuple[int, int], float] = {}

    def unit(self, unit: str) -> None:
        self.units.setdefault(unit, len(self.units))

    def add(self, unit: str, col: str, v: float) -> None:
        self.unit(unit)
        self.cols.setdefault(col, len(self.cols))
        k = (self.units[unit], self.cols[col])
        self.cells[k] = self.cells.get(k, 0.0) + float(v)

    def build(self, columns: Sequence[str] = ()) -> tuple[list[str], list[str], np.ndarray]:
        for c in columns:
            self.cols.setdefault(c, len(self.cols))
        m = np.zeros((len(self.units), len(self.cols)), dtype=np.float64)
        for (i, j), v in self.cells.items():
            m[i, j] = v
        return list(self.units), list(self.cols), m


def _ratio(num: str, den: str) -> MetricFn:
    return lambda s: s[num] / s[den]


def _mean2(a: MetricFn, b: MetricFn) -> MetricFn:
    return lambda s: (a(s) + b(s)) / 2


# ------------------------------------------------------------------------------------------------ per protocol


def _expression_means(rows, key, protocol, rounding=None) -> Aggregation:
    b = _Builder()
    for r in rows:
        b.unit(r[key])
        j, f = number(r, "J"), number(r, "F")
        if math.isnan(j) or math.isnan(f):  # dropped by the official rule: in no mean
            continue
        b.add(r[key], "J", j)
        b.add(r[key], "F", f)
        b.add(r[key], "n", 1.0)
    units, cols, m = b.build(("J", "F", "n"))
    jm, fm = _ratio("J", "n"), _ratio("F", "n")
    return Aggregation(protocol, "expression", units, cols, m, {"J": jm, "F": fm, "J&F": _mean2(jm, fm)},
                       rounding=rounding)


def _categories(rows, key, protocol, cats: Sequence[tuple[int, str]], names: Sequence[str]) -> Aggregation:
    b = _Builder()
    for r in rows:
        b.unit(r[key])
        t = value(r, "type_id")
        if t is None or any(math.isnan(number(r, m)) for m in names):
            continue
        for tid, label in cats:
            if int(t) == tid:
                for m in names:
                    b.add(r[key], f"{m}|{label}", number(r, m))
                b.add(r[key], f"n|{label}", 1.0)
    want = [f"{m}|{label}" for _t, label in cats for m in (*names, "n")]
    units, cols, mat = b.build(want)
    metrics: dict[str, MetricFn] = {}
    (_t0, l0), (_t1, l1) = cats
    for m in names:
        metrics[f"{m}"] = (lambda m: lambda s: (s[f"{m}|{l0}"] / s[f"n|{l0}"] + s[f"{m}|{l1}"] / s[f"n|{l1}"]) / 2)(m)
    metrics["J&F"] = _mean2(metrics["J"], metrics["F"])
    for _tid, label in cats:
        shown = "reasoning" if label == "reason" else label
        for m in names:
            metrics[f"{m} ({shown})"] = _ratio(f"{m}|{label}", f"n|{label}")
        metrics[f"J&F ({shown})"] = _mean2(metrics[f"J ({shown})"], metrics[f"F ({shown})"])
    for m in (*names, "J&F"):  # ReVOS repeats the headline as its "overall" category
        metrics[f"{m} (overall)"] = metrics[m]
    return Aggregation(protocol, "expression", units, cols, mat, metrics)


_DAVIS_COLUMNS = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def _davis(rows, protocol) -> Aggregation:
    b = _Builder()
    nan_cols: set[str] = set()
    for r in rows:
        u = r["video"]
        for c in _DAVIS_COLUMNS:
            v = number(r, c)
            if math.isnan(v):
                nan_cols.add(c)
                v = 0.0
            b.add(u, c, v)
        b.add(u, "n", 1.0)
    units, cols, m = b.build((*_DAVIS_COLUMNS, "n"))
    jm, fm = _ratio("J-Mean", "n"), _ratio("F-Mean", "n")
    metrics: dict[str, MetricFn] = {"J": jm, "F": fm, "J&F": _mean2(jm, fm)}
    skipped = {}
    for c in ("J-Recall", "J-Decay", "F-Recall", "F-Decay"):
        if c in nan_cols:
            skipped[c] = "NaN for some object (davis2017's uint8 decay bins), so NaN for the dataset"
        else:
            metrics[c] = _ratio(c, "n")
    return Aggregation(protocol, "sequence", units, cols, m, metrics, skipped=skipped)


def _refdavis_a(rows) -> Aggregation:
    b = _Builder()
    sets = sorted({r["set"] for r in rows})
    for r in rows:
        u, k = r["video"], r["set"]
        b.add(u, f"J|{k}", number(r, "J-Mean"))
        b.add(u, f"F|{k}", number(r, "F-Mean"))
        b.add(u, f"n|{k}", 1.0)
    units, cols, m = b.build([f"{c}|{k}" for k in sets for c in "JFn"])
    metrics: dict[str, MetricFn] = {}
    for k in sets:
        j, f = _ratio(f"J|{k}", f"n|{k}"), _ratio(f"F|{k}", f"n|{k}")
        metrics[f"J&F ({k})"], metrics[f"J ({k})"], metrics[f"F ({k})"] = _mean2(j, f), j, f
    metrics["J"] = lambda s: sum(metrics[f"J ({k})"](s) for k in sets) / len(sets)
    metrics["F"] = lambda s: sum(metrics[f"F ({k})"](s) for k in sets) / len(sets)
    metrics["J&F"] = lambda s: sum(metrics[f"J&F ({k})"](s) for k in sets) / len(sets)
    return Aggregation("refdavis_a", "video", units, cols, m, metrics)


def _sav(rows, protocol) -> Aggregation:
    b = _Builder()
    runs = list(dict.fromkeys(r.get("run") or "default" for r in rows))
    for r in rows:
        u, run = r["video"], r.get("run") or "default"
        b.add(u, f"J|{run}", number(r, "J"))
        b.add(u, f"F|{run}", number(r, "F"))
        b.add(u, f"n|{run}", 1.0)
    units, cols, m = b.build([f"{c}|{run}" for run in runs for c in "JFn"])
    metrics: dict[str, MetricFn] = {}
    head = "overall" if "overall" in runs else "default"
    for run in runs:
        j, f = _ratio(f"J|{run}", f"n|{run}"), _ratio(f"F|{run}", f"n|{run}")
        suffix = "" if run == head else f" ({run})"
        metrics[f"J&F{suffix}"], metrics[f"J{suffix}"], metrics[f"F{suffix}"] = _mean2(j, f), j, f
    return Aggregation(protocol, "video", units, cols, m, metrics)


def _lvos(rows) -> Aggregation:
    b = _Builder()
    for r in rows:
        u, s = r["video"], r["split"]
        for c in ("J", "F", "V"):
            b.add(u, f"{c}|{s}", number(r, c))
        b.add(u, f"n|{s}", 1.0)
    units, cols, m = b.build([f"{c}|{s}" for s in ("seen", "unseen") for c in ("J", "F", "V", "n")])
    mean = {f"{c}|{s}": _ratio(f"{c}|{s}", f"n|{s}") for s in ("seen", "unseen") for c in "JFV"}
    metrics: dict[str, MetricFn] = {
        "J&F": lambda s: ((mean["J|seen"](s) + mean["F|seen"](s)) + (mean["J|unseen"](s) + mean["F|unseen"](s))) / 4.0,
    }
    for c in "JFV":
        metrics[c] = (lambda c: lambda s: (mean[f"{c}|seen"](s) + mean[f"{c}|unseen"](s)) / 2)(c)
        metrics[f"{c} (seen)"] = mean[f"{c}|seen"]
        metrics[f"{c} (unseen)"] = mean[f"{c}|unseen"]
    return Aggregation("lvos", "video", units, cols, m, metrics)


def _mosev2(rows) -> Aggregation:
    b = _Builder()
    for r in rows:
        u = r["video"]
        raw = value(r, "raw") or {}
        b.add(u, "J", 100 * float(raw.get("J") or 0.0))
        b.add(u, "Fn", 100 * float(raw.get("F_new") or 0.0))
        b.add(u, "F", 100 * float(raw.get("F") or 0.0))
        b.add(u, "n", 1.0)
        for seg in ("disappear", "reappear"):
            dj, df = raw.get(f"{seg}_J"), raw.get(f"{seg}_F_new")
            if dj is not None and df is not None:
                b.add(u, f"J|{seg}", 100 * float(dj))
                b.add(u, f"F|{seg}", 100 * float(df))
                b.add(u, f"n|{seg}", 1.0)
    units, cols, m = b.build(("J", "Fn", "F", "n", "J|disappear", "F|disappear", "n|disappear", "J|reappear",
                              "F|reappear", "n|reappear"))
    j, fn, f = _ratio("J", "n"), _ratio("Fn", "n"), _ratio("F", "n")
    metrics: dict[str, MetricFn] = {"J&F": _mean2(j, fn), "J": j, "F": fn, "F (standard)": f,
                                    "J&F (standard)": _mean2(j, f)}
    for seg in ("disappear", "reappear"):
        metrics[f"J&F ({seg})"] = _mean2(_ratio(f"J|{seg}", f"n|{seg}"), _ratio(f"F|{seg}", f"n|{seg}"))
    return Aggregation("mosev2", "video", units, cols, m, metrics, rounding=2)


def _res(rows, key, protocol) -> Aggregation:
    b = _Builder()
    for r in rows:
        u = r[key]
        b.unit(u)
        i, un = number(r, "I"), number(r, "U")
        skipped = value(r, "skipped") is True
        b.add(u, "n", 1.0)
        if skipped:
            continue
        b.add(u, "I", i)
        b.add(u, "U", un)
        if protocol == "exact":
            g = 1.0 if un == 0 else i / un
        else:  # LISA / Sa2VA: I / (U + 1e-5), plus 1 for an empty union (float32 officially)
            g = i / (un + 1e-5) + (1.0 if un == 0 else 0.0)
        b.add(u, "g", g)
    units, cols, m = b.build(("I", "U", "g", "n"))
    if protocol == "exact":
        ciou = lambda s: np.where(s["U"] == 0, 100.0, 100.0 * s["I"] / s["U"])  # noqa: E731
    else:
        ciou = lambda s: 100.0 * s["I"] / (s["U"] + 1e-10)  # noqa: E731
    giou = lambda s: 100.0 * s["g"] / s["n"]  # noqa: E731
    agg = Aggregation(protocol, "sentence", units, cols, m, {"cIoU": ciou, "gIoU": giou})
    if protocol != "exact":
        agg.absolute = 1e-3  # the official reduction is float32, this one float64
    return agg


def _tsg(rows, key, protocol, metric_names: Sequence[str]) -> Aggregation:
    b = _Builder()
    thresholds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name in metric_names:
        if name == "mIoU":
            continue
        head, _, m = name.partition("@")
        if head in ("R", "R1") and m:
            thresholds[name] = float(m)
        else:
            skipped[name] = "needs the ranked proposals, which the per-sample CSV does not hold"
    strict = protocol == "2d-tan"
    for r in rows:
        u = r[key]
        b.unit(u)
        iou = number(r, "iou")
        if math.isnan(iou):  # 2D-TAN's loader drops the query: in no number
            continue
        b.add(u, "iou", iou)
        b.add(u, "n", 1.0)
        for name, t in thresholds.items():
            cut = t * 100.0  # the percent IoU is the fraction x 100, and x -> 100 x keeps the order
            b.add(u, name, 1.0 if (iou > cut if strict else iou >= cut) else 0.0)
    units, cols, m = b.build(("iou", "n", *thresholds))
    metrics: dict[str, MetricFn] = {}
    for name in metric_names:
        if name == "mIoU":
            metrics[name] = _ratio("iou", "n")
        elif name in thresholds:
            metrics[name] = (lambda name: lambda s: 100.0 * s[name] / s["n"])(name)
    return Aggregation(protocol, "query", units, cols, m, metrics,
                       rounding=2 if protocol in ("moment_detr", "2d-tan") else None, skipped=skipped)


def aggregation(protocol: str, rows: list[dict[str, str]], key: str, summary_metrics: Mapping[str, Any],
                task: str) -> Aggregation:
    """The :class:`Aggregation` of ``protocol`` over per-sample ``rows`` (text cells; ``key`` the id column)."""
    if task == "tsg":
        agg = _tsg(rows, key, protocol, list(summary_metrics))
    elif task == "res":
        agg = _res(rows, key, protocol)
    elif protocol in ("mevis", "refdavis_b"):
        agg = _expression_means(rows, key, protocol)
    elif protocol == "reasonvos":
        agg = _expression_means(rows, key, protocol, rounding=2)
    elif protocol == "revos":
        agg = _categories(rows, key, protocol, ((0, "referring"), (1, "reason")), ("J", "F", "A", "R"))
    elif protocol == "refsav":
        agg = _categories(rows, key, protocol, ((0, "long"), (1, "short")), ("J", "F", "A"))
    elif protocol in ("davis_semi", "davis_unsup"):
        agg = _davis(rows, protocol)
    elif protocol == "refdavis_a":
        agg = _refdavis_a(rows)
    elif protocol in ("sav", "secvos"):
        agg = _sav(rows, protocol)
    elif protocol == "lvos":
        agg = _lvos(rows)
    elif protocol == "mosev2":
        agg = _mosev2(rows)
    else:
        raise ValueError(f"protocol {protocol!r}: no resampling aggregation defined")
    agg.metrics = {k: v for k, v in agg.metrics.items() if k in summary_metrics}
    for name in summary_metrics:
        if name not in agg.metrics and name not in agg.skipped:
            agg.skipped[name] = "no per-sample values to recompute it from"
    return agg


__all__ = ["Aggregation", "aggregation"]
