"""``refbench run --per-frame``: per_frame.csv beside the summary, the scorer's own per-frame values."""

from __future__ import annotations

import csv

import numpy as np
from click.testing import CliRunner

from refbench.cli import main
from refbench.evaluate.per_frame import read_per_frame


def test_run_per_frame_writes_the_file_beside_the_summary(demo_env, tmp_path):
    r = CliRunner().invoke(main, ["run", "--model", "prior", "--out", str(tmp_path / "r"), "--no-leaderboard",
                                  "--per-frame"])
    assert r.exit_code == 0, r.output
    frames = read_per_frame(tmp_path / "r" / "per_frame.csv")
    with open(tmp_path / "r" / "per_sample.csv", newline="") as fh:
        rows = {rec["sample_id"]: rec for rec in csv.DictReader(fh)}
    by_key: dict[str, list[float]] = {}
    for row in frames:
        by_key.setdefault(row["sample_id"], []).append(row["J_frac"])
    assert set(by_key) == set(rows) and len(rows) == 15
    for key, js in by_key.items():
        assert float(np.mean(np.array(js))) * 100 == float(rows[key]["J"])
    r = CliRunner().invoke(main, ["run", "--dataset", "demo_charades_test", "--per-frame", "--no-leaderboard"])
    assert r.exit_code == 2 and "--per-frame applies to video datasets" in r.output
