"""``refbench demo``: the whole path (runner, stores, scorers, export, leaderboard) on the embedded demo."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from click.testing import CliRunner

from refbench.cli import main
from refbench.demo import DEMO_RUNS


def _demo(*args: str):
    t0 = time.perf_counter()
    result = CliRunner().invoke(main, ["demo", *args])
    return result, time.perf_counter() - t0


def _by_run(doc: dict) -> dict[tuple[str, str], dict]:
    return {(r["dataset"], r["model"]): r for r in doc["runs"]}


def test_demo_command_whole_path_then_resume(demo_env):
    from refbench.cards import dataset_card
    from refbench.leaderboard import read_rows

    first, seconds = _demo("--json", "first.json")
    assert first.exit_code == 0, first.output
    print(f"refbench demo (first run): {seconds:.2f} s")
    assert seconds < 20, f"refbench demo took {seconds:.1f} s"

    doc = json.loads(Path("first.json").read_text())
    runs = _by_run(doc)
    assert list(runs) == list(DEMO_RUNS)
    for (dataset, model), r in runs.items():
        run_dir = Path(r["run_dir"])  # named as `refbench run` names it: runs/<dataset>/<model>-<fingerprint>
        assert run_dir.parent == Path("runs") / dataset and run_dir.name.startswith(f"{model}-")
        assert (r["predicted"], r["reused"]) == (r["total"], 0)
        if r["metrics"] is not None:  # --json carries exactly what the run directory's summary says
            summary = json.loads((run_dir / "summary.json").read_text())
            assert r["metrics"] == summary["metrics"]
            assert (r["scale"], r["protocol"]) == (summary["scale"], summary["protocol"])

    # the oracle is the sanity row: perfect under every protocol, all in percent
    assert runs["demo_mevis_val_u", "oracle"]["metrics"]["J&F"] == 100.0
    assert runs["demo_charades_test", "oracle"]["metrics"]["mIoU"] == 100.0
    assert runs["demo_refcoco_val", "oracle"]["metrics"]["cIoU"] == 100.0
    assert runs["demo_mevis_val_u", "prior"]["metrics"]["J&F"] < 100.0  # the blind prior is not
    assert {r["scale"] for r in doc["runs"] if r["metrics"]} == {"percent"}
    # one screen, one scale: every metric line says percent, printed with two decimals
    lines = [ln for ln in first.output.splitlines() if ln.startswith(("prior ", "oracle "))]
    assert len(lines) == len(DEMO_RUNS) and all("(percent)" in ln for ln in lines[:-1])
    assert "J&F 0.99" in first.output and "R@0.3 58.33" in first.output and "cIoU 5.82" in first.output

    # no public ground truth: no scores, a submission zip with one PNG per frame of every expression
    sub = runs["demo_mevis_val", "prior"]
    assert sub["metrics"] is None and sub["submission"]
    zip_path = Path(sub["submission"])
    assert zip_path.parent == Path(sub["run_dir"])
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    samples = dataset_card("demo_mevis_val").open().samples()
    assert len(names) == sum(len(s.frames) for s in samples)
    assert str(zip_path) in first.output

    # reproduced rows in the default leaderboard folder, and the table of the demo datasets
    board = Path("runs") / "leaderboards"
    rows = read_rows(board)
    scored = [r for r in doc["runs"] if r["metrics"] is not None]
    assert len(rows) == sum(len(r["metrics"]) for r in scored)
    assert {r.value for r in rows if r.model == "oracle" and r.metric in ("J&F", "mIoU", "cIoU")} == {100.0}
    for dataset in ("demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val"):
        assert f"{dataset}, protocol " in first.output

    # a second invocation resumes: every sample reused, identical metrics, no duplicate leaderboard rows
    second, seconds2 = _demo("--json", "second.json")
    assert second.exit_code == 0, second.output
    print(f"refbench demo (resumed): {seconds2:.2f} s")
    again = _by_run(json.loads(Path("second.json").read_text()))
    for key, r in runs.items():
        r2 = again[key]
        assert (r2["predicted"], r2["reused"]) == (0, r["total"])
        assert r2["metrics"] == r["metrics"] and r2["run_dir"] == r["run_dir"]
    assert second.output.count("samples reused from the store") == len(DEMO_RUNS)
    assert "already stored" in second.output
    assert len(read_rows(board)) == len(rows)
    assert "not appended again" in second.output

    # `refbench run` of a demo model names the same run alike: the demo's run directory, no second set of rows
    r = CliRunner().invoke(main, ["run", "--model", "prior", "--dataset", "demo_mevis_val_u"])
    assert r.exit_code == 0, r.output
    assert f"run dir {runs['demo_mevis_val_u', 'prior']['run_dir']}" in r.output and "0 predicted" in r.output
    assert "rows are already in" in r.output
    assert len(read_rows(board)) == len(rows)
    # even from another directory: the same model, fingerprint and result is listed once
    r = CliRunner().invoke(main, ["run", "--model", "oracle", "--dataset", "demo_refcoco_val", "--out", "elsewhere"])
    assert r.exit_code == 0 and "rows are already in" in r.output, r.output
    assert len(read_rows(board)) == len(rows)


def test_demo_command_rejects_old_seed_option(demo_env):
    result = CliRunner().invoke(main, ["demo", "--seed", "1"])
    assert result.exit_code != 0 and "--seed" in result.output
