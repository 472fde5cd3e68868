"""`refbench.regress` and `refbench regress` on hand-built run directories.

Real runs through the runner: tests/runs/test_ci_baseline.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.regress import RegressError, compare, read_baseline, read_run, run_label, write_baseline


def make_run(path: Path, metrics: dict, adapter: str = "prior", dataset: str = "demo_mevis_val_u",
             fingerprint: str = "f" * 16, model_args: dict | None = None, options: dict | None = None,
             card_options: dict | None = None, scale: str = "percent") -> Path:
    """A finished run directory as the runner leaves it, reduced to what regress reads."""
    path.mkdir(parents=True, exist_ok=True)
    meta: dict = {"status": "done", "config": {"model": adapter, "dataset": dataset, "model_args": model_args or {}},
                  "header": {"adapter": adapter, "dataset": dataset, "fingerprint": fingerprint}}
    if options is not None:
        meta["adapter"] = {"card": {"name": adapter, "options": card_options or {}}, "options": options}
    (path / "run.json").write_text(json.dumps(meta))
    (path / "summary.json").write_text(json.dumps({"dataset": dataset, "metrics": metrics, "scale": scale}))
    return path


def make_baseline(path: Path, entries: dict, tolerance: float = 0.0, scale: str | None = "percent") -> Path:
    doc = {"tolerance": tolerance, "entries": entries}
    if scale is not None:
        doc["scale"] = scale
    path.write_text(json.dumps(doc))
    return path


def regress(*args: str):
    return CliRunner().invoke(main, ["regress", *map(str, args)])


M = {"J": 0.5, "F": 0.25, "J&F": 0.375}


@pytest.fixture
def base(tmp_path) -> Path:
    return make_baseline(tmp_path / "baseline.json", {"prior/demo_mevis_val_u": {"metrics": dict(M)}})


def test_identical_run_passes(tmp_path, base):
    r = regress("--baseline", base, "--run", make_run(tmp_path / "r", dict(M)))
    assert r.exit_code == 0, r.output
    assert "ok: 3 metric(s) of 1 run(s)" in r.output


def test_drift_beyond_tolerance_names_key_metric_and_both_values(tmp_path, base):
    r = regress("--baseline", base, "--run", make_run(tmp_path / "r", {**M, "F": 0.3}))
    assert r.exit_code == 1
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("drift:")]
    assert "prior/demo_mevis_val_u" in line and ": F moved" in line and "0.25" in line and "0.3" in line
    assert "1 metric(s) drifted" in r.output
    # the library gives the same answer, as data
    rep = compare(read_baseline(base), [read_run(tmp_path / "r")])
    assert [(d.key, d.metric, d.baseline, d.value) for d in rep.drifts] == [("prior/demo_mevis_val_u", "F", 0.25, 0.3)]


def test_within_tolerance_passes(tmp_path):
    base = make_baseline(tmp_path / "b.json", {"prior/demo_mevis_val_u": {"metrics": dict(M)}}, tolerance=1e-3)
    run = make_run(tmp_path / "r", {"J": 0.5 + 9e-4, "F": 0.25 - 9e-4, "J&F": 0.375})
    assert regress("--baseline", base, "--run", run).exit_code == 0
    run = make_run(tmp_path / "r2", {"J": 0.5 + 2e-3, "F": 0.25, "J&F": 0.375})
    r = regress("--baseline", base, "--run", run)
    assert r.exit_code == 1 and ": J moved" in r.output and "tolerance 0.001" in r.output


def test_per_metric_tolerance_overrides_the_default(tmp_path):
    base = make_baseline(tmp_path / "b.json", {"prior/demo_mevis_val_u": {"metrics": dict(M), "tolerance": {"J": 0.1}}})
    run = make_run(tmp_path / "r", {**M, "J": 0.55})
    assert regress("--baseline", base, "--run", run).exit_code == 0  # J within its own 0.1
    run = make_run(tmp_path / "r2", {**M, "J": 0.55, "F": 0.2500001})
    r = regress("--baseline", base, "--run", run)
    assert r.exit_code == 1 and ": F moved" in r.output and ": J moved" not in r.output  # F has the default 0


def test_cli_tolerance_overrides_the_file(tmp_path, base):
    run = make_run(tmp_path / "r", {**M, "J": 0.51})
    assert regress("--baseline", base, "--run", run).exit_code == 1
    assert regress("--baseline", base, "--run", run, "--tolerance", "0.02").exit_code == 0
    loose = make_baseline(tmp_path / "loose.json", {"prior/demo_mevis_val_u": {"metrics": dict(M)}}, tolerance=0.5)
    r = regress("--baseline", loose, "--run", run, "--tolerance", "0.001")
    assert r.exit_code == 1 and "tolerance 0.001" in r.output


def test_metric_missing_from_the_run_fails(tmp_path, base):
    r = regress("--baseline", base, "--run", make_run(tmp_path / "r", {"J": 0.5, "J&F": 0.375}))
    assert r.exit_code == 1
    assert "prior/demo_mevis_val_u: F missing from the run (baseline 0.25)" in r.output


def test_extra_run_metric_is_noted_not_failed(tmp_path, base):
    r = regress("--baseline", base, "--run", make_run(tmp_path / "r", {**M, "A": 1.0}))
    assert r.exit_code == 0 and "not in the baseline (not checked): A" in r.output


def test_run_without_baseline_entry_fails_with_a_note(tmp_path, base):
    r = regress("--baseline", base, "--run", make_run(tmp_path / "r", dict(M), adapter="oracle"))
    assert r.exit_code == 1
    assert "note: oracle/demo_mevis_val_u: no baseline entry (run refbench regress --write to add it)" in r.output
    assert "drift: oracle/demo_mevis_val_u: no baseline entry" in r.output


def test_strict_fails_on_an_entry_without_a_run(tmp_path):
    base = make_baseline(tmp_path / "b.json", {"prior/demo_mevis_val_u": {"metrics": dict(M)},
                                                "empty/demo_mevis_val_u": {"metrics": {"J": 0.1}}})
    run = make_run(tmp_path / "r", dict(M))
    assert regress("--baseline", base, "--run", run).exit_code == 0
    r = regress("--baseline", base, "--run", run, "--strict")
    assert r.exit_code == 1
    assert "empty/demo_mevis_val_u: baseline entry without a run (--strict)" in r.output
    assert "prior/demo_mevis_val_u" not in r.output.split("drift:", 1)[1]


def test_write_creates_then_updates_keeping_other_entries(tmp_path):
    path = tmp_path / "new" / "baseline.json"
    path.parent.mkdir()
    a = make_run(tmp_path / "a", dict(M), fingerprint="a" * 16)
    b = make_run(tmp_path / "b", {"cIoU": 0.1, "gIoU": 0.2}, adapter="empty", dataset="demo_refcoco_val")
    r = regress("--baseline", path, "--run", a, "--run", b, "--write", "--tolerance", "0")
    assert r.exit_code == 0 and "2 entries written" in r.output, r.output
    doc = json.loads(path.read_text())
    assert doc["tolerance"] == 0.0 and doc["scale"] == "percent" and list(doc)[0] == "scale"
    assert doc["entries"]["prior/demo_mevis_val_u"] == {"metrics": dict(sorted(M.items())), "fingerprint": "a" * 16}
    assert regress("--baseline", path, "--run", a, "--run", b, "--strict").exit_code == 0
    # a hand-set per-metric tolerance survives the refresh; the other entry is kept as it was
    doc["entries"]["prior/demo_mevis_val_u"]["tolerance"] = {"J": 0.01, "gone": 1.0}
    path.write_text(json.dumps(doc))
    a2 = make_run(tmp_path / "a2", {**M, "J": 0.6}, fingerprint="b" * 16)
    r = regress("--baseline", path, "--run", a2, "--write")
    assert r.exit_code == 0 and "1 entry written" in r.output
    doc2 = json.loads(path.read_text())
    assert doc2["tolerance"] == 0.0  # the file's default is not touched by an update
    assert doc2["entries"]["empty/demo_refcoco_val"] == doc["entries"]["empty/demo_refcoco_val"]
    assert doc2["entries"]["prior/demo_mevis_val_u"] == {"metrics": {"F": 0.25, "J": 0.6, "J&F": 0.375},
                                                         "fingerprint": "b" * 16, "tolerance": {"J": 0.01}}
    assert not list(path.parent.glob(".*tmp*"))


def test_nan_equals_nan(tmp_path):
    nan_m = {"J": float("nan"), "F": 0.25}
    base = tmp_path / "b.json"
    write_baseline(base, [read_run(make_run(tmp_path / "a", nan_m))], tolerance=0.0)
    assert math.isnan(read_baseline(base)["entries"]["prior/demo_mevis_val_u"]["metrics"]["J"])
    assert regress("--baseline", base, "--run", make_run(tmp_path / "b", nan_m)).exit_code == 0
    # NaN against a number, either way round, is a drift
    r = regress("--baseline", base, "--run", make_run(tmp_path / "c", {"J": 0.5, "F": 0.25}))
    assert r.exit_code == 1 and ": J moved nan -> 0.5" in r.output
    rep = compare({"tolerance": 1.0, "entries": {"prior/demo_mevis_val_u": {"metrics": {"J": 0.5}}}},
                  [read_run(make_run(tmp_path / "d", {"J": float("nan")}))])
    assert [d.metric for d in rep.drifts] == ["J"]


@pytest.mark.parametrize("text, msg", [
    (None, "baseline not found"),
    ("{not json", "baseline.json:1: invalid JSON"),
    ("[1, 2]", "expected {"),
    ('{"entries": {"prior/x": [1]}}', "entry 'prior/x' has no metrics mapping"),
    ('{"tolerance": "tight", "entries": {}}', "tolerance must be a number"),
    ('{"entries": {"prior/x": {"metrics": {}, "tolerance": 0.1}}}', "tolerance must map metric names to numbers"),
])
def test_malformed_baseline_is_a_one_line_error(tmp_path, text, msg):
    path = tmp_path / "baseline.json"
    if text is not None:
        path.write_text(text)
    r = regress("--baseline", path, "--run", make_run(tmp_path / "r", dict(M)))
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and msg in r.output and "Traceback" not in r.output, r.output
    with pytest.raises(RegressError, match="baseline"):
        read_baseline(path)


@pytest.mark.parametrize("run_json, summary_json, msg", [
    (None, '{"metrics": {}}', "run.json: not found"),
    ('{"header": {}}', None, "summary.json: not found"),
    ("{oops", '{"metrics": {}}', "run.json:1: invalid JSON"),
    ('["a list"]', '{"metrics": {}}', "run.json: expected a JSON object"),
    ('{"header": {"adapter": "prior"}}', '{"metrics": {}}', "run.json: no adapter/dataset header"),
    ('{"header": {"adapter": "prior", "dataset": "d"}}', '{"counts": {}}', "summary.json: no metrics"),
    ('{"header": {"adapter": "prior", "dataset": "d"}}', "[]", "summary.json: no metrics"),
])
def test_malformed_run_dir_is_a_one_line_error(tmp_path, base, run_json, summary_json, msg):
    d = tmp_path / "r"
    d.mkdir()
    if run_json is not None:
        (d / "run.json").write_text(run_json)
    if summary_json is not None:
        (d / "summary.json").write_text(summary_json)
    r = regress("--baseline", base, "--run", d)
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and msg in r.output and "Traceback" not in r.output, r.output


def test_key_labels_non_default_options_like_leaderboards(tmp_path):
    """Two prior runs on one dataset must not collide: the key carries the options that differ from the card."""
    card = {"objective": "mode", "bins": 20, "sleep": 0.0, "batch_size": 1}
    plain = make_run(tmp_path / "p", {"mIoU": 1.0}, dataset="charades_sta_test", options=dict(card), card_options=card)
    miou = make_run(tmp_path / "m", {"mIoU": 2.0}, dataset="charades_sta_test",
                    options={**card, "objective": "miou", "sleep": 0.5, "batch_size": 8}, card_options=card)
    assert read_run(plain).key == "prior/charades_sta_test"
    assert read_run(miou).key == "prior[objective=miou]/charades_sta_test"  # sleep, batch_size change no output
    two = make_run(tmp_path / "t", {"mIoU": 3.0}, dataset="charades_sta_test",
                   options={**card, "objective": "miou", "bins": 10}, card_options=card)
    assert read_run(two).key == "prior[bins=10,objective=miou]/charades_sta_test"
    # a run.json without the adapter block: config.model_args against the installed card's defaults
    assert read_run(make_run(tmp_path / "c", {"mIoU": 2.0}, dataset="charades_sta_test",
                             model_args={"objective": "miou"})).key == "prior[objective=miou]/charades_sta_test"
    assert read_run(make_run(tmp_path / "c2", {"mIoU": 2.0}, dataset="charades_sta_test",
                             model_args={"objective": "mode"})).key == "prior/charades_sta_test"
    assert run_label({"header": {"adapter": "not-a-card"}, "config": {"model_args": {"k": 1}}}) == "not-a-card[k=1]"
    base = tmp_path / "b.json"
    write_baseline(base, [read_run(plain), read_run(miou)], tolerance=0.0)
    assert set(read_baseline(base)["entries"]) == {"prior/charades_sta_test", "prior[objective=miou]/charades_sta_test"}
    r = regress("--baseline", base, "--run", plain, "--run", miou, "--strict")
    assert r.exit_code == 0 and "ok: 2 metric(s) of 2 run(s)" in r.output, r.output


def test_baseline_on_the_old_scale_is_refused_in_one_line_then_rewritten(tmp_path):
    """A baseline written before one scale (no "scale": MeViS/DAVIS/RES in fractions) is never compared: one line
    says how to rewrite it, and --write replaces it whole (none of its old-scale entries survive)."""
    old = make_baseline(tmp_path / "old.json", {"prior/demo_mevis_val_u": {"metrics": {"J&F": 0.00993}},
                                                "empty/demo_mevis_val_u": {"metrics": {"J&F": 0.046}}}, scale=None)
    run = make_run(tmp_path / "r", {"J": 0.24, "F": 1.75, "J&F": 0.99})
    r = regress("--baseline", old, "--run", run)
    assert r.exit_code == 2 and "drift" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert "baseline written on the old scale" in r.output and "refbench regress --write" in r.output
    with pytest.raises(RegressError, match="old scale"):
        read_baseline(old)
    r = regress("--baseline", old, "--run", run, "--write", "--tolerance", "0")
    assert r.exit_code == 0, r.output
    doc = json.loads(old.read_text())
    assert doc == {"scale": "percent", "tolerance": 0.0,
                   "entries": {"prior/demo_mevis_val_u": {"metrics": {"F": 1.75, "J": 0.24, "J&F": 0.99},
                                                          "fingerprint": "f" * 16}}}
    assert regress("--baseline", old, "--run", run, "--strict").exit_code == 0


def test_run_summary_on_the_old_scale_is_refused(tmp_path, base):
    run = make_run(tmp_path / "r", dict(M), scale="fraction")
    r = regress("--baseline", base, "--run", run)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "old fraction scale" in r.output and f"refbench eval --run {run}" in r.output
