"""``refbench compare RUN_A RUN_B``: is B's difference from A real? Per metric, B - A with a paired bootstrap 95%
interval and p-value over the samples (:mod:`refbench.analysis.bootstrap`), each resample scored with the protocol's
own aggregation (:mod:`refbench.analysis.aggregate`), and the samples that moved most.

Two runs are comparable only on the same dataset, protocol, annotation files and sample set; anything else is
refused in one line (:class:`CompareError`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbench.analysis.aggregate import Aggregation, aggregation
from refbench.analysis.bootstrap import Interval, paired_bootstrap
from refbench.analysis.rundir import RunDir, RunDirError, number

P_VALUE = ("two-sided bootstrap p-value of the shifted null: (1 + #{|d* - d| >= |d|}) / (R + 1), d* the resampled "
           "differences B - A, d the observed one")
INTERVAL = "percentile interval of the paired resampled differences (2.5th, 97.5th percentiles)"


class CompareError(RunDirError):
    """Two runs that cannot be compared (different dataset, protocol, annotations or samples)."""


@dataclass
class MetricDiff:
    name: str
    a: float
    b: float
    interval: Interval | None  # None: not resampled (``why``)
    why: str = ""


@dataclass
class CompareResult:
    a: RunDir
    b: RunDir
    dataset: str
    protocol: str
    unit: str
    units: int
    samples: int
    resamples: int
    seed: int
    seconds: float
    metrics: list[MetricDiff]
    moved: list[dict[str, Any]]
    score_column: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": str(self.a.path), "b": str(self.b.path), "dataset": self.dataset, "protocol": self.protocol,
            "unit": self.unit, "units": self.units, "samples": self.samples, "resamples": self.resamples,
            "seed": self.seed, "seconds": self.seconds, "scale": "percent", "p_value": P_VALUE, "interval": INTERVAL,
            "metrics": {m.name: {"a": m.a, "b": m.b, "difference": m.b - m.a,
                                 **({"bootstrap": m.interval.as_dict()} if m.interval else {"not_resampled": m.why})}
                        for m in self.metrics},
            "moved_most": {"score": self.score_column, "samples": self.moved},
            "notes": self.notes,
        }

    def table(self) -> str:
        from refbench.evaluate.run import _protocol_label

        lines = [f"A: {self.a.label} ({self.a.model})", f"B: {self.b.label} ({self.b.model})",
                 f"{self.dataset}, protocol {_protocol_label(self.protocol)}: {self.samples} samples, resampled by "
                 f"{self.unit} ({self.units} units), {self.resamples} paired bootstrap resamples, seed {self.seed}"]
        w = max(6, *(len(m.name) for m in self.metrics))
        lines.append(f"  {'metric':<{w}} {'A':>8} {'B':>8} {'B - A':>8}   {'95% interval':<18} {'p':>7}")
        for m in self.metrics:
            head = f"  {m.name:<{w}} {m.a:>8.2f} {m.b:>8.2f} {m.b - m.a:>+8.2f}"
            if m.interval is None or not math.isfinite(m.interval.p):
                lines.append(f"{head}   not resampled: {m.why or 'undefined in every resample'}")
            else:
                iv = m.interval
                lines.append(f"{head}   [{iv.low:+7.2f}, {iv.high:+7.2f}] {_p(iv.p, self.resamples):>7}"
                             + (f"  ({iv.undefined} undefined resamples left out)" if iv.undefined else ""))
        lines.append(f"(percent; p: {P_VALUE}; interval: {INTERVAL})")
        if self.moved:
            lines.append(f"samples that moved most ({self.score_column} per sample, B - A):")
            kw = max(len(str(r["sample"])) for r in self.moved)
            for r in self.moved:
                lines.append(f"  {str(r['sample']):<{kw}} {r['a']:>8.2f} -> {r['b']:>8.2f}  {r['difference']:>+8.2f}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _p(p: float, resamples: int) -> str:
    floor = 1 / (resamples + 1)
    return f"<{floor:.1g}" if p <= floor else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _same(a: RunDir, b: RunDir) -> None:
    sa, sb = a.summary, b.summary
    if sa["dataset"] != sb["dataset"]:
        raise CompareError(f"{a.label} is on {sa['dataset']}, {b.label} on {sb['dataset']}: different datasets "
                           "cannot be compared")
    if sa["protocol"] != sb["protocol"]:
        raise CompareError(f"{a.label} is scored with protocol {sa['protocol']}, {b.label} with {sb['protocol']}; "
                           f"rescore one with refbench eval --run DIR --protocol {sa['protocol']}")
    ha, hb = a.annotation_sha256, b.annotation_sha256
    if ha and hb and ha != hb:
        raise CompareError(f"{a.label} and {b.label} were scored on different annotation files (sha256 "
                           f"{ha[:12]} vs {hb[:12]}): not the same ground truth")
    ka, kb = a.keys(), b.keys()
    if a.key_column != b.key_column or set(ka) != set(kb) or len(ka) != len(kb):
        only_a = sorted(set(ka) - set(kb))
        only_b = sorted(set(kb) - set(ka))
        first = (f"e.g. {only_a[0]!r} only in A" if only_a else f"e.g. {only_b[0]!r} only in B" if only_b
                 else "duplicated ids")
        raise CompareError(f"{a.label} and {b.label} scored different sample sets ({len(ka)} vs {len(kb)} samples, "
                           f"{len(only_a) + len(only_b)} differ, {first}); compare runs of the same samples")


def _score_column(rows: list[dict[str, str]]) -> str:
    for col in ("J&F", "IoU", "iou", "J"):
        if col in rows[0]:
            return col
    return ""


def _moved(a: RunDir, b: RunDir, col: str, top: int) -> list[dict[str, Any]]:
    if not col or top <= 0:
        return []
    key = a.key_column
    vb = {r[key]: number(r, col) for r in b.rows}
    out = []
    for r in a.rows:
        x, y = number(r, col), vb[r[key]]
        if math.isfinite(x) and math.isfinite(y):
            out.append({"sample": r[key], "a": x, "b": y, "difference": y - x})
    out.sort(key=lambda d: (-abs(d["difference"]), str(d["sample"])))
    return out[:top]


def _aligned(agg: Aggregation, units: list[str], columns: list[str]) -> Aggregation:
    """``agg`` with its matrix rows in ``units`` order and columns ``columns`` (absent ones zero)."""
    ui = {u: i for i, u in enumerate(agg.units)}
    ci = {c: i for i, c in enumerate(agg.columns)}
    m = np.zeros((len(units), len(columns)), dtype=np.float64)
    rows = [ui[u] for u in units]
    for j, c in enumerate(columns):
        if c in ci:
            m[:, j] = agg.matrix[rows, ci[c]]
    return Aggregation(agg.protocol, agg.unit, list(units), list(columns), m, agg.metrics, agg.rounding,
                       agg.tolerance, agg.absolute, dict(agg.skipped))


def compare_runs(a: RunDir, b: RunDir, resamples: int = 1000, seed: int = 0, top: int = 10) -> CompareResult:
    """Compare run B against run A (module doc)."""
    if resamples < 1:
        raise CompareError(f"--resamples {resamples}: must be at least 1")
    for r in (a, b):
        r.need("summary.json", "per_sample.csv", why="compare reads summary.json and per_sample.csv")
    _same(a, b)
    sa, sb = a.summary, b.summary
    task = a.task
    aggs = [aggregation(sa["protocol"], r.rows, r.key_column, r.summary["metrics"], task) for r in (a, b)]
    units = aggs[0].units
    if set(units) != set(aggs[1].units):
        raise CompareError(f"{a.label} and {b.label} group their samples into different {aggs[0].unit}s")
    columns = list(dict.fromkeys(aggs[0].columns + aggs[1].columns))
    aggs = [_aligned(g, units, columns) for g in aggs]
    bad: dict[str, str] = {}
    for r, g in zip((a, b), aggs):
        for name, why in g.check(r.summary["metrics"]).items():
            bad.setdefault(name, f"{r.label}: {why}")
    skipped = {**aggs[0].skipped, **bad}
    use = [m for m in aggs[0].metrics if m not in skipped]
    for g in aggs:
        g.metrics = {m: g.metrics[m] for m in use}
    t0 = time.perf_counter()
    boot = paired_bootstrap(aggs[0].values, aggs[1].values, len(units), resamples, seed) if use else {}
    seconds = time.perf_counter() - t0
    metrics = []
    for name, va in sa["metrics"].items():
        vb = sb["metrics"].get(name)
        if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)) or isinstance(va, bool):
            continue
        if name in boot:
            metrics.append(MetricDiff(name, float(va), float(vb), boot[name][0]))
        else:
            metrics.append(MetricDiff(name, float(va), float(vb), None, skipped.get(name, "not resampled")))
    col = _score_column(a.rows)
    notes = []
    if sa.get("partial") or sb.get("partial"):
        notes.append("a partial run (not the official split): the interval is over the samples scored")
    return CompareResult(a=a, b=b, dataset=str(sa["dataset"]), protocol=str(sa["protocol"]), unit=aggs[0].unit,
                         units=len(units), samples=len(a.rows), resamples=resamples, seed=seed, seconds=seconds,
                         metrics=metrics, moved=_moved(a, b, col, top), score_column=col, notes=notes)


__all__ = ["INTERVAL", "P_VALUE", "CompareError", "CompareResult", "MetricDiff", "compare_runs"]
