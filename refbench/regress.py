"""``refbench regress``: fail when a run's metrics drift from a committed baseline.

A baseline file is JSON::

    {"scale": "percent", "tolerance": 1e-9,
     "entries": {"<model>/<dataset>": {"metrics": {"J&F": 62.08, ...}, "tolerance": {"J&F": 0.1},
                                        "fingerprint": "..."}}}

Every value is percent (0-100), as in every refbench summary, and ``tolerance`` is absolute, in percentage
points; a per-entry ``tolerance`` mapping overrides it per metric. A baseline without ``"scale": "percent"``
was written before refbench used one scale (MeViS, DAVIS and RES in fractions): :func:`read_baseline` refuses it
with one line saying how to rewrite it, rather than report every metric as drifted. A run whose
``summary.json`` is on the old scale is refused the same way. A run is identified by its ``run.json`` as
``<model>/<dataset>``, where ``<model>`` is the adapter name plus the options that differ from its card's
defaults, labelled as leaderboards label them (``prior[objective=miou]/charades_sta_test``; plain
``prior/charades_sta_test`` without such options). Every baseline metric must be present in the run and within
tolerance; metrics the baseline does not list are reported but never fail. ``write_baseline`` creates or
updates entries from runs (keeping other entries, and the per-metric tolerances of the metrics still present).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from refbench.errors import RefbenchInputError
from refbench.files import atomic_write, load_json

#: The scale of baselines and summaries this version writes and reads.
SCALE = "percent"


class RegressError(RefbenchInputError):
    """A baseline or run directory cannot be read."""


@dataclass
class RunScores:
    key: str
    run_dir: Path
    metrics: dict[str, float]
    fingerprint: str | None


@dataclass
class Drift:
    key: str
    metric: str
    baseline: float | None
    value: float | None
    tolerance: float

    def line(self) -> str:
        if self.metric == "(entry)":
            return f"{self.key}: no baseline entry for this run"
        if self.metric == "(run)":
            return f"{self.key}: baseline entry without a run"
        if self.value is None:
            return f"{self.key}: {self.metric} missing from the run (baseline {self.baseline!r})"
        delta = self.value - (self.baseline or 0.0)
        return (f"{self.key}: {self.metric} moved {self.baseline!r} -> {self.value!r} (delta {delta:+.6g}, "
                f"tolerance {self.tolerance:g})")


@dataclass
class RegressReport:
    drifts: list[Drift] = field(default_factory=list)
    checked: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts


def read_run(run_dir: str | os.PathLike) -> RunScores:
    """The key and headline metrics of a finished run directory."""
    run_dir = Path(run_dir)
    meta_path, summary_path = run_dir / "run.json", run_dir / "summary.json"
    for p in (meta_path, summary_path):
        if not p.is_file():
            raise RegressError(f"{p}: not found (is {run_dir} a finished refbench run with public ground truth?)")
    meta = load_json(meta_path, RegressError, "run.json")
    summary = load_json(summary_path, RegressError, "summary.json")
    if not isinstance(meta, dict):
        raise RegressError(f"{meta_path}: expected a JSON object")
    header = meta.get("header")
    if not isinstance(header, dict) or not isinstance(header.get("adapter"), str) or not isinstance(
            header.get("dataset"), str) or not header["adapter"] or not header["dataset"]:
        raise RegressError(f"{meta_path}: no adapter/dataset header")
    if meta.get("status") not in (None, "done"):
        raise RegressError(f"{meta_path}: the run is {meta.get('status')!r}, not done (finish it first: run the same "
                           "refbench run command again)")
    metrics = summary.get("metrics") if isinstance(summary, dict) else None
    if not isinstance(metrics, dict):
        raise RegressError(f"{summary_path}: no metrics")
    if summary.get("scale", SCALE) != SCALE:
        raise RegressError(f"{summary_path}: written on the old {summary.get('scale')} scale; rescore the run with "
                           f"refbench eval --run {run_dir} --json {summary_path}")
    ran = summary.get("run") if isinstance(summary.get("run"), dict) else None
    if ran is not None and (ran.get("model") != header["adapter"] or ran.get("fingerprint") != header.get("fingerprint")):
        raise RegressError(f"{summary_path}: scores model {ran.get('model')!r} (fingerprint {ran.get('fingerprint')}), "
                           f"but {meta_path} names {header['adapter']!r} ({header.get('fingerprint')}); rerun the "
                           "run before recording or checking it")
    bad = [k for k, v in metrics.items() if not _number(v)]
    if bad:
        raise RegressError(f"{summary_path}: metric {bad[0]!r} is {metrics[bad[0]]!r}, not a number")
    return RunScores(f"{run_label(meta)}/{header['dataset']}", run_dir, {k: float(v) for k, v in metrics.items()},
                     header.get("fingerprint"))


def run_label(meta: Mapping[str, Any]) -> str:
    """The model part of a run's key: :func:`refbench.runs.runner.model_label` of the adapter's options against
    its card's defaults, both as recorded in ``run.json`` (``adapter.options``, ``adapter.card.options``). A
    run.json without that block falls back to ``config.model_args`` against the installed card's defaults."""
    from types import SimpleNamespace

    from refbench.runs.runner import model_label

    name = str(meta["header"]["adapter"])
    adapter = meta.get("adapter") if isinstance(meta.get("adapter"), dict) else {}
    card = adapter.get("card") if isinstance(adapter.get("card"), dict) else {}
    options, defaults = adapter.get("options"), card.get("options")
    if not isinstance(options, dict):
        config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        options = config.get("model_args") if isinstance(config.get("model_args"), dict) else {}
    if not isinstance(defaults, dict):
        defaults = _card_defaults(name)
    return model_label(SimpleNamespace(name=name, options=defaults), options)


def _card_defaults(name: str) -> dict[str, Any]:
    try:
        from refbench.adapters.registry import adapter_cards

        card = adapter_cards().get(name)
    except Exception:  # noqa: BLE001 - a broken card directory only costs the defaults
        return {}
    return dict(card.options) if card is not None else {}


def read_baseline(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    doc = load_json(path, RegressError, "baseline")
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
        raise RegressError(f"{path}: expected {{\"tolerance\": x, \"entries\": {{\"model/dataset\": {{...}}}}}}")
    if not _number(doc.get("tolerance", 0.0)):
        raise RegressError(f"{path}: tolerance must be a number, got {doc.get('tolerance')!r}")
    for key, entry in doc["entries"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
            raise RegressError(f"{path}: entry {key!r} has no metrics mapping")
        bad = [m for m, v in entry["metrics"].items() if not _number(v)]
        if bad:
            raise RegressError(f"{path}: entry {key!r}: metric {bad[0]!r} is {entry['metrics'][bad[0]]!r}, not a "
                               "number")
        tol = entry.get("tolerance")
        if tol is not None and not (isinstance(tol, dict) and all(_number(v) for v in tol.values())):
            raise RegressError(f"{path}: entry {key!r}: tolerance must map metric names to numbers, got {tol!r}")
    if doc.get("scale") != SCALE:
        raise RegressError(f"{path}: baseline written on the old scale (fractions for MeViS, DAVIS and RES), not "
                           f"comparable with percent summaries; rewrite it: refbench regress --write --tolerance 0 "
                           f"--baseline {path} --run RUN_DIR ...")
    return doc


def _old_scale(path: Path) -> bool:
    """Whether ``path`` is a readable baseline object written before the one-scale change (no ``"scale"``)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("entries"), dict) and doc.get("scale") != SCALE


def _number(v: Any) -> bool:
    """A metric value: an int or float (NaN included: DAVIS decay can be NaN), never a bool or a string."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (not isinstance(v, int) or abs(v) < 2**53)


def compare(baseline: Mapping[str, Any], runs: Iterable[RunScores], tolerance: float | None = None,
            strict: bool = False) -> RegressReport:
    """Check ``runs`` against ``baseline`` (see the module doc). ``tolerance`` overrides the file's default;
    ``strict``: every baseline entry must be among the runs."""
    report = RegressReport()
    default_tol = float(tolerance if tolerance is not None else baseline.get("tolerance", 0.0))
    entries = baseline["entries"]
    seen = set()
    for run in runs:
        seen.add(run.key)
        entry = entries.get(run.key)
        if entry is None:
            report.drifts.append(Drift(run.key, "(entry)", None, None, default_tol))
            report.notes.append(f"{run.key}: no baseline entry (run refbench regress --write to add it)")
            continue
        if entry.get("fingerprint") and run.fingerprint and entry["fingerprint"] != run.fingerprint:
            report.notes.append(f"{run.key}: adapter fingerprint {run.fingerprint} differs from the baseline's "
                                f"{entry['fingerprint']}")
        per_metric = entry.get("tolerance") or {}
        for metric, base in entry["metrics"].items():
            tol = float(per_metric.get(metric, default_tol))
            report.checked += 1
            value = run.metrics.get(metric)
            if value is None:
                report.drifts.append(Drift(run.key, metric, base, None, tol))
            elif not _close(value, base, tol):
                report.drifts.append(Drift(run.key, metric, base, value, tol))
        extra = sorted(set(run.metrics) - set(entry["metrics"]))
        if extra:
            report.notes.append(f"{run.key}: not in the baseline (not checked): {', '.join(extra)}")
    if strict:
        for key in sorted(set(entries) - seen):
            report.drifts.append(Drift(key, "(run)", None, None, default_tol))
            report.notes.append(f"{key}: baseline entry without a run (--strict)")
    return report


def _close(value: float, base: Any, tol: float) -> bool:
    if base is None:
        return False
    b = float(base)
    if math.isnan(b) or math.isnan(value):
        return math.isnan(b) and math.isnan(value)
    return abs(value - b) <= tol


def write_baseline(path: str | os.PathLike, runs: Iterable[RunScores], tolerance: float = 1e-9) -> dict[str, Any]:
    """Create or update ``path`` with the runs' metrics (other entries are kept). A baseline on the old scale is
    replaced as a whole: its entries cannot be compared with percent values, so none is kept."""
    path = Path(path)
    doc = {"scale": SCALE, "tolerance": tolerance, "entries": {}}
    if path.exists() and not _old_scale(path):
        doc = read_baseline(path)
    for run in runs:
        entry: dict[str, Any] = {"metrics": dict(sorted(run.metrics.items())), "fingerprint": run.fingerprint}
        kept = {m: t for m, t in ((doc["entries"].get(run.key) or {}).get("tolerance") or {}).items()
                if m in run.metrics}
        if kept:  # per-metric tolerances someone set by hand survive a refresh
            entry["tolerance"] = kept
        doc["entries"][run.key] = entry
    doc["entries"] = dict(sorted(doc["entries"].items()))
    doc = {"scale": SCALE, **{k: v for k, v in doc.items() if k != "scale"}}
    atomic_write(path, json.dumps(doc, indent=2) + "\n", "--baseline")
    return doc


__all__ = ["SCALE", "Drift", "RegressError", "RegressReport", "RunScores", "compare", "read_baseline", "read_run",
           "run_label", "write_baseline"]
