"""One sample id across a run's predictions.json, diagnostics.jsonl and per_sample.csv, and every per-sample CSV
starting with a sample_id column."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from refbench.cli import main


def test_one_sample_id_per_task_in_every_run_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(tmp_path / "demo"))
    r = CliRunner().invoke(main, ["run", "--model", "prior", "--dataset", "demo_all", "--no-leaderboard",
                                  "--json", str(tmp_path / "all.json")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "all.json").read_text())
    seen = {}
    for res in doc["results"]:
        from pathlib import Path

        run = Path(res["run_dir"])
        preds = json.loads((run / "predictions.json").read_text())
        if res["dataset"] == "demo_mevis_val_u":  # {video: {exp_id: [RLE per frame]}}: the id is the path
            pred_ids = [f"{video}/{exp}" for video, exps in preds.items() for exp in exps]
        else:  # {qid: spans} / {sample_id: RLE}
            pred_ids = list(preds)
        diag_ids = [json.loads(line)["sample_id"] for line in (run / "diagnostics.jsonl").read_text().splitlines()]
        with open(run / "per_sample.csv", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            csv_ids = [row[0] for row in reader]
        assert header[0] == "sample_id", (res["dataset"], header)
        assert pred_ids == diag_ids == csv_ids, res["dataset"]
        seen[res["dataset"]] = csv_ids[0]
    video, exp = seen["demo_mevis_val_u"].split("/")
    assert video and exp.isdigit()  # <video>/<exp_id>
    assert "/" not in seen["demo_charades_test"] and "/" not in seen["demo_refcoco_val"]
