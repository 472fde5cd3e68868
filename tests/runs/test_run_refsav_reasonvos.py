"""``refbench run --model oracle`` on the Ref-SAV and ReasonVOS golden layouts: the loaders follow the runner's
referring-VOS interface, the run's predictions.json is read back by the protocols, and the oracle scores 100 where
the official arithmetic allows it (documented reasons where it does not)."""

from __future__ import annotations

import json
import shutil

import numpy as np

from click.testing import CliRunner

from refbench.cli import main
from refbench.runs.runner import RunConfig, run


def test_oracle_on_refsav_golden(shared_data, tmp_path):
    exp = json.loads((shared_data / "refsav_golden" / "expected.json").read_text())
    res = run(RunConfig(model="oracle", dataset="refsav_val", root=str(shared_data / "refsav_golden"),
                        out=str(tmp_path / "run"), leaderboard=None))
    m = res.summary["metrics"]
    assert m["J"] == m["F"] == m["J&F"] == 100.0
    # A compares raw values: where two GT objects overlap the GT is 2 and the oracle's 1 is a mismatch
    # (sav_ref_01_1, exactly the official golden value of a perfect binary prediction); everything else is 100
    short = [r for r in exp["per_expression_rounded"] if r["type_id"] == 1]
    a_short = [r["A"] if r["videxp"] == "sav_ref_01_1" else 100.0 for r in short]
    assert m["A (long)"] == 100.0 and m["A (short)"] == float(np.mean(a_short)) and min(a_short) < 100.0
    # rescoring the run directory gives the same numbers
    r = CliRunner().invoke(main, ["eval", "--run", str(tmp_path / "run"), "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "s.json").read_text())["metrics"] == m


def test_oracle_on_reasonvos_golden(shared_data, tmp_path):
    root = shared_data / "reasonvos_golden"
    # the golden mask dict carries a deliberately corrupt RLE (anno 4, frame 1): the loader refuses it, so the
    # oracle cannot be built from it; the command says which file and RLE
    r = CliRunner().invoke(main, ["run", "--model", "oracle", "--dataset", "reasonvos", "--root", str(root),
                                  "--out", str(tmp_path / "bad"), "--no-leaderboard"])
    assert r.exit_code == 2 and "mask_dict.json: anno_id '4' frame 1: RLE size 480x480 (HxW) differs" in r.output
    # with that RLE repaired (the frame of the right size, empty) the oracle scores 100
    fixed = tmp_path / "fixed"
    shutil.copytree(root, fixed, ignore=shutil.ignore_patterns("predictions.json", "expected.json"))
    masks = json.loads((fixed / "mask_dict.json").read_text())
    masks["4"][1] = {"size": masks["4"][0]["size"], "counts": masks["4"][0]["counts"]}
    (fixed / "mask_dict.json").write_text(json.dumps(masks))
    res = run(RunConfig(model="oracle", dataset="reasonvos", root=str(fixed), out=str(tmp_path / "run"),
                        leaderboard=None))
    assert res.summary["metrics"] == {"J&F": 100.0, "J": 100.0, "F": 100.0}
