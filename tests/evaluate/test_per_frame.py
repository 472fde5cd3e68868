"""``--per-frame``: every video protocol writes the scorer's own per-frame values, so the protocol's own per-sample
reduction of them reproduces the per-sample CSV bit for bit (golden sets of shared/data, through the CLI)."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.evaluate.per_frame import read_per_frame


def _eval(tmp_path: Path, *args: str) -> tuple[dict, dict[str, dict], dict[str, list[dict]], list[str]]:
    pf = tmp_path / "frames.csv"
    r = CliRunner().invoke(main, ["eval", *args, "--json", str(tmp_path / "s.json"), "--csv",
                                  str(tmp_path / "rows.csv"), "--per-frame", str(pf)])
    assert r.exit_code == 0, r.output
    assert f"per-frame: {pf}" in r.output
    with open(tmp_path / "rows.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        first = reader.fieldnames[0]
        rows = {rec[first]: rec for rec in reader}
    header = pf.read_text().splitlines()[0].split(",")
    assert header[0] == first  # the per-sample CSV's first column, same name
    frames: dict[str, list[dict]] = {}
    for row in read_per_frame(pf):
        frames.setdefault(row[first], []).append(row)
    for key, series in frames.items():
        assert key in rows, key  # same values as the per-sample CSV's first column
        assert [r["t"] for r in series] == list(range(len(series)))
        for r in series:  # percent is the fraction x 100 in float64
            assert r["J"] == r["J_frac"] * 100.0 and r["F"] == r["F_frac"] * 100.0
    return json.loads((tmp_path / "s.json").read_text()), rows, frames, header


def _col(series: list[dict], name: str) -> np.ndarray:
    return np.array([r[name] for r in series], dtype=np.float64)


def test_mevis_per_frame_is_what_eval_mevis_averages(shared_data, tmp_path):
    root = tmp_path / "mevis" / "valid_u"
    root.mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        (root / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    _s, rows, frames, header = _eval(tmp_path, "--dataset", "mevis_val_u", "--root", str(tmp_path / "mevis"),
                                     "--pred", str(shared_data / "mevis_golden" / "predictions"),
                                     "--missing", "official")
    assert header == ["sample_id", "frame", "t", "J", "F", "J_frac", "F_frac"]
    meta = json.loads((root / "meta_expressions.json").read_text())["videos"]
    scored = [k for k, r in rows.items() if r["status"] == "scored"]
    assert set(frames) == set(scored) and len(scored) == 13  # the 2 official zeros of a missing video: no frames
    for key in scored:
        video = rows[key]["video"]
        assert [r["frame"] for r in frames[key]] == meta[video]["frames"]
        assert float(np.mean(_col(frames[key], "J_frac"))) * 100 == float(rows[key]["J"])
        assert float(np.mean(_col(frames[key], "F_frac"))) * 100 == float(rows[key]["F"])


def test_revos_per_frame_carries_a_and_r(shared_data, tmp_path):
    root = shared_data / "revos_golden"
    _s, rows, frames, header = _eval(tmp_path, "--dataset", "revos_val", "--root", str(root), "--pred",
                                     str(root / "predictions"), "--missing", "official")
    assert header == ["sample_id", "frame", "t", "J", "F", "A", "R", "J_frac", "F_frac", "A_frac", "R_frac"]
    assert frames
    for key, series in frames.items():
        raw = json.loads(rows[key]["raw_jfar"])  # the unrounded J, F, A, R x 100
        got = [float(np.mean(_col(series, f"{m}_frac"))) * 100 for m in "JFAR"]
        assert got == raw, key


def test_davis_per_frame_gives_the_official_statistics(shared_data, tmp_path):
    from refbench.metrics.davis import object_statistics

    root = shared_data / "davis_osvos13"
    _s, rows, frames, _h = _eval(tmp_path, "--dataset", "davis17_val", "--root", str(root), "--pred",
                                 str(root / "predictions" / "osvos"), "--protocol", "davis_semi")
    assert set(frames) == set(rows)
    for key, series in frames.items():
        seq = rows[key]["video"]
        frame_names = sorted(p.stem for p in (root / "Annotations" / "480p" / seq).glob("*.png"))
        assert [r["frame"] for r in series] == frame_names[1:-1]  # semi-supervised: first and last not scored
        for m in ("J", "F"):
            st = object_statistics(_col(series, f"{m}_frac"))
            for stat, col in (("M", "Mean"), ("R", "Recall"), ("D", "Decay")):
                want = float(rows[key][f"{m}-{col}"])
                assert st[stat] * 100 == want or (np.isnan(want) and np.isnan(st[stat])), (key, m, col)


def test_sav_and_secvos_per_frame_are_the_counted_lists(shared_data, tmp_path):
    for name, extra in (("sav_val", ("--missing", "official")), ("secvos", ())):
        root = shared_data / ("sav_golden" if name == "sav_val" else "secvos_golden")
        out = tmp_path / name
        out.mkdir()
        _s, rows, frames, _h = _eval(out, "--dataset", name, "--root", str(root), "--pred",
                                     str(root / "predictions"), *extra)
        assert set(frames) == set(rows)
        for key, series in frames.items():
            assert len(series) == int(rows[key]["frames_counted"]) and series[0]["frame"] == rows[key]["first_counted"]
            assert float(np.mean(_col(series, "J_frac")) * 100) == float(rows[key]["J"]), key
            assert float(np.mean(_col(series, "F_frac")) * 100) == float(rows[key]["F"]), key


def test_lvos_per_frame_are_the_slots(shared_data, tmp_path):
    from refbench.metrics.lvos import object_statistics

    root = shared_data / "lvos_golden"
    _s, rows, frames, _h = _eval(tmp_path, "--dataset", "lvos_v2_val", "--root", str(root), "--pred",
                                 str(root / "predictions"))
    assert set(frames) == set(rows)
    for key, series in frames.items():
        assert len(series) == int(rows[key]["slots"])
        assert sum(1 for r in series if r["frame"]) == int(rows[key]["frames"])
        st = object_statistics(_col(series, "J_frac"), _col(series, "F_frac"))
        assert st == ast.literal_eval(rows[key]["raw"]), key


def test_mosev2_per_frame_keeps_both_boundary_measures(shared_data, tmp_path):
    root = shared_data / "mosev2_golden"
    _s, rows, frames, header = _eval(tmp_path, "--dataset", "mosev2_local", "--root", str(root), "--pred",
                                     str(root / "predictions"), "--missing", "official", "--protocol-arg",
                                     "short_videos=official")
    assert "F_standard" in header and "F_standard_frac" in header
    assert frames
    for key, series in frames.items():
        raw = ast.literal_eval(rows[key]["raw"])
        assert len(series) == int(rows[key]["frames"])
        assert float(np.mean(_col(series, "J_frac"))) == raw["J"], key
        assert float(np.mean(_col(series, "F_frac"))) == raw["F_new"], key
        assert float(np.mean(_col(series, "F_standard_frac"))) == raw["F"], key


def test_refsav_and_reasonvos_per_frame(shared_data, tmp_path):
    root = shared_data / "refsav_golden"
    (tmp_path / "a").mkdir()
    _s, rows, frames, _h = _eval(tmp_path / "a", "--dataset", "refsav_val", "--root", str(root), "--pred",
                                 str(root / "predictions.json"))
    assert set(frames) == set(rows)
    for key, series in frames.items():
        raw = json.loads(rows[key]["raw_jfa"])
        assert [float(np.mean(_col(series, "J_frac"))), float(np.mean(_col(series, "F_frac")))] == raw[:2], key
    root = shared_data / "reasonvos_golden"
    (tmp_path / "b").mkdir()
    _s, rows, frames, _h = _eval(tmp_path / "b", "--dataset", "reasonvos", "--root", str(root), "--pred",
                                 str(root / "predictions.json"), "--protocol-arg", "gt_size=official")
    assert frames and set(frames) <= set(rows)
    for key, series in frames.items():
        assert float(np.mean(_col(series, "J_frac"))) * 100 == float(rows[key]["J"]), key


def test_refdavis_a_per_frame_per_annotator_set(tmp_path):
    from refbench.data.davis import RefDavisLoader
    from refbench.metrics.davis import object_statistics
    from tests.evaluate.test_refdavis_a import (make_refdavis_root, perturbed_predictions, write_predictions, T)

    root = tmp_path / "refdavis"
    gts = make_refdavis_root(root)
    loader = RefDavisLoader(root)
    frames_list = [f"{t:05d}" for t in range(T)]
    pred = write_predictions(tmp_path / "pred", perturbed_predictions(loader, gts), frames_list)
    _s, rows, frames, _h = _eval(tmp_path, "--dataset", "refdavis17_val", "--protocol", "refdavis_a", "--root",
                                 str(root), "--pred", str(pred))
    assert set(frames) == set(rows) and any(rows[k]["set"] == "anno_3" for k in frames)
    with open(tmp_path / "rows.csv", newline="") as fh:  # one sample_id per row, across the annotator sets
        assert sum(1 for _ in csv.DictReader(fh)) == len(rows)
    for key, series in frames.items():
        assert [r["frame"] for r in series] == frames_list
        assert object_statistics(_col(series, "J_frac"))["M"] * 100 == float(rows[key]["J-Mean"]), key


def test_per_frame_is_refused_without_frames(tmp_path):
    r = CliRunner().invoke(main, ["eval", "--dataset", "charades_sta_test", "--pred", str(tmp_path),
                                  "--per-frame", str(tmp_path / "f.csv")])
    assert r.exit_code == 2 and "--per-frame applies to video datasets" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "f.csv").exists()
