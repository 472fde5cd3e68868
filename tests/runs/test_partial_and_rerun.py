"""Partial data is flagged; a failed rerun never replaces a finished run's record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.leaderboard import read_rows
from refbench.runs.runner import RunConfig, run

RECORD = ("predictions.json", "summary.json", "per_sample.csv", "diagnostics.jsonl")


def test_eval_labels_and_warns_on_partial_data(demo_env, tmp_path):
    res = run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(tmp_path / "o")))
    assert res.summary["partial"] is False and res.summary["partial_reasons"] == []
    pred = tmp_path / "o" / "predictions.json"
    r = CliRunner().invoke(main, ["eval", "--dataset", "demo_mevis_val_u", "--pred", str(pred), "--json", "s.json"])
    assert r.exit_code == 0 and "warning" not in r.stderr and "PARTIAL" not in r.output, r.output
    assert json.loads(Path("s.json").read_text())["partial"] is False

    # predictions for part of the split, scored with --missing empty: labelled, and warned about on stderr
    doc = json.loads(pred.read_text())
    video = next(iter(doc))
    n_dropped = len(doc.pop(video))
    part = tmp_path / "part.json"
    part.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["eval", "--dataset", "demo_mevis_val_u", "--pred", str(part), "--missing", "empty",
                                  "--json", "p.json"])
    assert r.exit_code == 0, r.output
    why = f"{n_dropped} of 15 samples have no prediction and were scored by --missing empty"
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning")]  # (the rest: the progress bar)
    assert warnings == [f"warning: partial evaluation, not the official demo_mevis_val_u score: {why}"]
    assert f"PARTIAL: not the official split's score: {why}" in r.stdout
    summary = json.loads(Path("p.json").read_text())
    assert summary["partial"] is True and summary["partial_reasons"] == [why]
    assert summary["metrics"]["J&F"] < 100.0

    # a run over part of the split (--limit) is labelled the same way, and kept off the leaderboard
    lim = run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(tmp_path / "l"), limit=4,
                        leaderboard=str(tmp_path / "lb")))
    assert lim.summary["partial"] is True and lim.leaderboard_rows == 0
    assert "has 1 videos, 4 expressions; the official split has 4 videos, 15 expressions" in \
        lim.summary["partial_reasons"][0]
    assert "PARTIAL" in lim.table


@pytest.mark.parametrize("stage", ["predict", "score"])
def test_a_failed_rerun_keeps_the_finished_record(demo_env, tmp_path, monkeypatch, stage):
    """A finished run, then `--overwrite` that fails while predicting or while scoring: the finished run's
    predictions, summary, per-sample CSV and leaderboard rows are exactly as they were."""
    out, board = tmp_path / "run", tmp_path / "lb"
    first = run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(out), leaderboard=str(board)))
    assert first.leaderboard_rows == 3
    before = {name: (out / name).read_bytes() for name in RECORD}
    rows = read_rows(board)

    def boom(*_args, **_kwargs):
        raise RuntimeError(f"injected failure while {stage}")

    if stage == "predict":
        from refbench.adapters.base import Adapter

        monkeypatch.setattr(Adapter, "predict_payloads", boom)
    else:
        import refbench.evaluate.run as ev

        monkeypatch.setattr(ev, "evaluate", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(out), leaderboard=str(board),
                      overwrite=True))
    assert {name: (out / name).read_bytes() for name in RECORD} == before
    assert read_rows(board) == rows
    assert not list(out.glob(".staged-*"))
    monkeypatch.undo()
    again = run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(out), leaderboard=str(board)))
    assert again.summary["metrics"] == first.summary["metrics"] and again.leaderboard_rows == 0
    assert json.loads((out / "summary.json").read_text())["provenance"]["predictions"] == str(out / "predictions.json")
