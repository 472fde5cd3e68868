"""The CI drift gate: the baselines, run on every CI run, must reproduce `.ci/baseline.json` exactly.

The scorers are exact and the demo is generated deterministically, so the file's tolerance is 0 (two independent
runs, each generating its own demo, gave bit-identical metrics on every entry). Values are percent, as every
summary ("scale": "percent"; the one-scale rewrite multiplied the MeViS and RES entries by 100 exactly and left the
others unchanged). The demo part needs no data; the golden part runs on the files in shared/data and skips where
they are absent. After an intended change in scores, refresh the file with ``python .ci/refresh_baseline.py OUT``
(these runs, then ``refbench regress --write --tolerance 0``), twice, compare the two, and say why in the commit.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.regress import RunScores, compare, read_baseline, read_run
from refbench.runs.runner import RunConfig, run

BASELINE = Path(__file__).resolve().parents[2] / ".ci" / "baseline.json"

DEMO = [(model, ds, {}) for model in ("oracle", "empty", "prior")
        for ds in ("demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val")]
GOLDEN_ROOTS = {  # dataset -> root under shared/data (None: built in tmp, see _golden_root)
    "mevis_val_u": None,
    "revos_val": "revos_golden",
    "reasonseg_val": "refcoco_golden/reason_seg/ReasonSeg",
    "refcoco_val": "refcoco_golden",  # the golden refs(unc).p also has testA/testB; refcoco+/g have no files
    "charades_sta_test": "charades_sta",
}
GOLDEN = ([(model, ds, {}) for ds in GOLDEN_ROOTS for model in ("oracle", "empty")]
          + [("prior", "charades_sta_test", {}),  # fits on charades_sta_train in the same root
             ("prior", "charades_sta_test", {"objective": "miou"})])
DEMO_KEYS = {f"{m}/{d}" for m, d, _ in DEMO}
GOLDEN_KEYS = {f"{m}/{d}" for m, d, _ in GOLDEN if m != "prior"} | {
    "prior/charades_sta_test", "prior[objective=miou]/charades_sta_test"}


def _run_all(cases, tmp: Path, roots: dict[str, Path] | None = None) -> list[RunScores]:
    out = []
    for model, ds, args in cases:
        tag = "-".join(f"{k}={v}" for k, v in args.items())
        res = run(RunConfig(model=model, dataset=ds, root=str(roots[ds]) if roots else None, model_args=dict(args),
                            out=str(tmp / f"{model}{tag}" / ds)))
        out.append(read_run(res.run_dir))
    return out


def _golden_root(shared_data: Path, ds: str, tmp: Path) -> Path:
    if ds != "mevis_val_u":
        return shared_data / GOLDEN_ROOTS[ds]
    mevis = tmp / "mevis" / "valid_u"  # annotations only: the MeViS layout around the golden files
    mevis.mkdir(parents=True, exist_ok=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        if not (mevis / name).exists():
            (mevis / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    return tmp / "mevis"


def _part(baseline: dict, keys: set[str]) -> dict:
    return {**baseline, "entries": {k: v for k, v in baseline["entries"].items() if k in keys}}


def _assert_no_drift(baseline: dict, runs: list[RunScores]) -> None:
    report = compare(baseline, runs, strict=True)
    assert report.ok, ("drift from .ci/baseline.json (refresh it with refbench regress --write only if the change "
                       "is intended):\n" + "\n".join([d.line() for d in report.drifts] + report.notes))
    assert report.checked == sum(len(e["metrics"]) for e in baseline["entries"].values())


@pytest.fixture(scope="module")
def baseline() -> dict:
    return read_baseline(BASELINE)


@pytest.fixture(scope="module")
def demo_runs(demo_base, tmp_path_factory) -> list[RunScores]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFBENCH_DEMO_DIR", str(demo_base))
        mp.delenv("REFBENCH_DATA", raising=False)
        return _run_all(DEMO, tmp_path_factory.mktemp("ci-demo"))


def test_baseline_file_lists_exactly_the_ci_runs(baseline):
    assert set(baseline["entries"]) == DEMO_KEYS | GOLDEN_KEYS
    assert baseline["tolerance"] == 0.0 and baseline["scale"] == "percent"
    assert all(not e.get("tolerance") for e in baseline["entries"].values())  # every metric is bit-stable


def test_demo_baselines_match(baseline, demo_runs):
    assert {r.key for r in demo_runs} == DEMO_KEYS
    _assert_no_drift(_part(baseline, DEMO_KEYS), demo_runs)


def test_golden_baselines_match(baseline, shared_data, tmp_path):
    roots = {ds: _golden_root(shared_data, ds, tmp_path) for ds in GOLDEN_ROOTS}
    runs = _run_all(GOLDEN, tmp_path, roots)
    assert {r.key for r in runs} == GOLDEN_KEYS
    _assert_no_drift(_part(baseline, GOLDEN_KEYS), runs)


def test_a_perturbed_baseline_fails_on_exactly_that_metric(baseline, demo_runs):
    """The gate can fail: nudge one value in a copy of the baseline by one ulp-sized step."""
    doc = copy.deepcopy(_part(baseline, DEMO_KEYS))
    key, metric = "prior/demo_mevis_val_u", "J&F"
    value = doc["entries"][key]["metrics"][metric]
    doc["entries"][key]["metrics"][metric] = value + 1e-12
    report = compare(doc, demo_runs, strict=True)
    assert [(d.key, d.metric, d.baseline, d.value) for d in report.drifts] == [(key, metric, value + 1e-12, value)]
    # and a dropped run is caught under strict
    report = compare(_part(baseline, DEMO_KEYS), [r for r in demo_runs if r.key != key], strict=True)
    assert [(d.key, d.metric) for d in report.drifts] == [(key, "(run)")]


def test_cli_regress_on_real_demo_runs(demo_env, baseline, tmp_path):
    """`refbench regress` on run directories the runner wrote: the committed file passes, a perturbed copy fails."""
    a = run(RunConfig(model="prior", dataset="demo_charades_test", out=str(tmp_path / "a"))).run_dir
    b = run(RunConfig(model="oracle", dataset="demo_refcoco_val", out=str(tmp_path / "b"))).run_dir
    r = CliRunner().invoke(main, ["regress", "--baseline", str(BASELINE), "--run", str(a), "--run", str(b)])
    assert r.exit_code == 0 and "ok: 6 metric(s) of 2 run(s)" in r.output, r.output
    doc = json.loads(BASELINE.read_text())
    doc["entries"]["prior/demo_charades_test"]["metrics"]["R@0.5"] += 0.01
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["regress", "--baseline", str(bad), "--run", str(a), "--run", str(b)])
    assert r.exit_code == 1
    drifts = [ln for ln in r.output.splitlines() if ln.startswith("drift:")]
    assert len(drifts) == 1 and drifts[0].startswith("drift: prior/demo_charades_test: R@0.5 moved"), r.output
    # --write from the real runs reproduces the committed entries
    fresh = tmp_path / "fresh.json"
    r = CliRunner().invoke(main, ["regress", "--write", "--tolerance", "0", "--baseline", str(fresh),
                                  "--run", str(a), "--run", str(b)])
    assert r.exit_code == 0, r.output
    got = json.loads(fresh.read_text())["entries"]
    assert got == {k: baseline["entries"][k] for k in ("prior/demo_charades_test", "oracle/demo_refcoco_val")}
