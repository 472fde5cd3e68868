"""The notebook API (refbench.api): in-memory masks, spans and RES masks give exactly `refbench eval`'s numbers, as
pandas DataFrames; importing it imports neither torch nor pandas."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refbench.cli import main
from refbench.rle import decode_rle


def _eval(tmp_path: Path, *args: str) -> tuple[dict, list[dict]]:
    r = CliRunner().invoke(main, ["eval", *args, "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "r.csv")])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return json.loads((tmp_path / "s.json").read_text()), rows


def test_import_is_light():
    code = ("import sys, refbench.api; bad = [m for m in ('torch', 'pandas', 'numpy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_score_masks_equals_refbench_eval_on_the_demo(demo_runs, tmp_path):
    import pandas as pd

    from refbench.api import score_masks

    run = demo_runs["demo_mevis_val_u", "prior"]
    doc = json.loads((run / "predictions.json").read_text())
    masks = {}
    for video, exps in doc.items():
        for exp, rles in exps.items():
            size = next(tuple(r["size"]) for r in rles if r is not None) if any(rles) else (160, 240)
            masks[f"{video}/{exp}"] = np.stack([np.zeros(size, bool) if r is None else decode_rle(r, "t").astype(bool)
                                                for r in rles])
    s, rows = _eval(tmp_path, "--dataset", "demo_mevis_val_u", "--pred", str(run / "predictions.json"))
    scores = score_masks("demo_mevis_val_u", masks, per_frame=True)
    assert scores.metrics == s["metrics"]  # identical floats
    assert isinstance(scores.summary, pd.DataFrame) and isinstance(scores.per_sample, pd.DataFrame)
    assert dict(zip(scores.summary["metric"], scores.summary["value"])) == s["metrics"]
    assert list(scores.per_sample.index) == [r["sample_id"] for r in rows]
    assert [float(r["J&F"]) for r in rows] == list(scores.per_sample["J&F"])
    pf = scores.per_frame
    assert isinstance(pf, pd.DataFrame) and set(pf["sample_id"]) == set(scores.per_sample.index)
    means = pf.groupby("sample_id", sort=False)["J_frac"].apply(lambda x: float(np.mean(x.to_numpy())) * 100)
    assert all(means[k] == scores.per_sample.loc[k, "J"] for k in means.index)
    per_sample, summary = scores  # unpacks as (per_sample, summary)
    assert summary is scores.summary
    # the per-sample key form and (video, exp_id) tuples name the same expressions
    alt = {tuple(k.split("/")): v for k, v in masks.items()}
    assert score_masks("demo_mevis_val_u", alt).metrics == s["metrics"]
    with pytest.raises(ValueError, match="not an expression of the dataset"):
        score_masks("demo_mevis_val_u", {"nope/0": next(iter(masks.values()))})


def test_score_masks_vos_id_maps_equal_eval(shared_data, tmp_path):
    from refbench.api import score_masks

    root = shared_data / "davis_osvos13"
    pred = root / "predictions" / "osvos"
    maps = {seq.name: np.stack([np.array(Image.open(f)) for f in sorted(seq.glob("*.png"))])
            for seq in sorted(p for p in pred.iterdir() if p.is_dir())}
    s, rows = _eval(tmp_path, "--dataset", "davis17_val", "--root", str(root), "--pred", str(pred))
    scores = score_masks("davis17_val", maps, root=root)
    assert scores.metrics == s["metrics"]
    assert list(scores.per_sample["J-Mean"]) == [float(r["J-Mean"]) for r in rows]


def test_score_spans_equals_eval(demo_runs, tmp_path):
    from refbench.api import score_spans

    run = demo_runs["demo_charades_test", "prior"]
    doc = json.loads((run / "predictions.json").read_text())
    spans = {q: (tuple(v[0]) if v and isinstance(v[0], list) else (tuple(v) if v else None)) for q, v in doc.items()}
    s, rows = _eval(tmp_path, "--dataset", "demo_charades_test", "--pred", str(run / "predictions.json"))
    scores = score_spans("demo_charades_test", spans)
    assert scores.metrics == s["metrics"]
    assert list(scores.per_sample["iou"]) == [float(r["iou"]) for r in rows]
    with pytest.raises(ValueError, match="score_spans scores temporal grounding"):
        score_spans("demo_mevis_val_u", spans)


def test_score_res_equals_eval(demo_runs, tmp_path):
    from refbench.api import score_res

    run = demo_runs["demo_refcoco_val", "prior"]
    doc = json.loads((run / "predictions.json").read_text())
    masks = {k: (None if v is None else decode_rle(v, "t")) for k, v in doc.items()}
    first = next(iter(masks))
    masks[first] = None  # a sample without a mask
    (tmp_path / "p.json").write_text(json.dumps({k: (None if k == first else v) for k, v in doc.items()}))
    for protocol in ("lisa", "sa2va"):
        sub = tmp_path / protocol
        sub.mkdir()
        s, rows = _eval(sub, "--dataset", "demo_refcoco_val", "--pred", str(tmp_path / "p.json"), "--protocol",
                        protocol)
        scores = score_res("demo_refcoco_val", masks, protocol=protocol)
        assert scores.metrics == s["metrics"], protocol
        assert list(scores.per_sample["I"]) == [int(r["I"]) for r in rows]
