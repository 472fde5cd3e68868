"""Every golden value of the SA-V, SeCVOS, LVOS, MOSE v2, Ref-SAV and ReasonVOS sets in shared/data, reproduced
through the ``refbench eval`` command (exact equality), with the official quirks behind their named options and
refbench's defaults (an error or an honest score) where the official code drops or mis-scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from refbench.cli import main


def _eval(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "summary.json"
    csv_out = tmp_path / "samples.csv"
    r = CliRunner().invoke(main, ["eval", *args, "--json", str(out), "--csv", str(csv_out)])
    assert r.exit_code == 0, r.output
    assert csv_out.read_text().count("\n") >= 2
    summary = json.loads(out.read_text())
    assert summary["scale"] == "percent" and len(summary["provenance"]["annotation_sha256"]) == 64
    return summary


def _fails(*args: str) -> str:
    r = CliRunner().invoke(main, ["eval", *args])
    assert r.exit_code != 0, r.output
    # one error line (a progress bar may precede it on stderr when the error comes mid-way)
    errors = [line for line in r.output.replace("\r", "\n").splitlines() if "Error" in line]
    assert len(errors) == 1, r.output
    return errors[0]


def _exp(shared_data: Path, name: str) -> dict:
    return json.loads((shared_data / name / "expected.json").read_text())


# ----------------------------------------------------------------------------------------------
# SA-V
# ----------------------------------------------------------------------------------------------


def _sav_rows(tmp_path: Path) -> dict:
    import csv

    with open(tmp_path / "samples.csv") as fh:
        return {r["key"]: r for r in csv.DictReader(fh)}


def test_sav_golden_default_cli(shared_data, tmp_path):
    root = shared_data / "sav_golden"
    exp = _exp(shared_data, "sav_golden")["runs"]["default"]
    s = _eval(tmp_path, "--dataset", "sav_val", "--root", str(root), "--pred", str(root / "predictions"),
              "--missing", "official")
    assert s["metrics"] == exp["global"]
    off = s["details"]["official"]["values"]
    assert off["results_csv"] == exp["results_csv"] and off["printed"] == exp["printed_summary"]
    assert s["details"]["videos_evaluated"] == exp["videos_evaluated"]
    assert s["details"]["videos_left_out"] == ["sav_syn_004"] and s["counts"]["official"] == 1
    assert s["details"]["missing_mode"] == "official" and s["details"]["protocol_args"] == {"skip_first_last": "true"}
    rows = _sav_rows(tmp_path)
    assert list(rows) == exp["object_order"]
    for key, obj in exp["per_object"].items():
        assert float(rows[key]["J"]) == obj["J"] and float(rows[key]["F"]) == obj["F"], key
        assert int(rows[key]["frames_counted"]) == len(obj["frames_counted"]), key
        assert int(rows[key]["frames_fed"]) == len(obj["frames_fed"]), key


def test_sav_missing_video_is_an_error_by_default(shared_data):
    root = shared_data / "sav_golden"
    out = _fails("--dataset", "sav_val", "--root", str(root), "--pred", str(root / "predictions"))
    assert "sav_syn_004" in out and "--missing" in out


def test_sav_golden_without_skipping(shared_data, tmp_path):
    root = shared_data / "sav_golden"
    exp = _exp(shared_data, "sav_golden")["runs"]["no_skip"]
    s = _eval(tmp_path, "--dataset", "sav_val", "--root", str(root), "--pred", str(root / "predictions"),
              "--missing", "official", "--protocol-arg", "skip_first_last=false")
    assert s["metrics"] == exp["global"]
    assert s["details"]["official"]["values"]["results_csv"] == exp["results_csv"]


def test_sav_golden_davis_like_layout(shared_data, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "Annotations_6fps").symlink_to(shared_data / "sav_golden" / "davis_format" / "Annotations")
    exp = _exp(shared_data, "sav_golden")["runs"]["davis_format"]
    s = _eval(tmp_path, "--dataset", "sav_val", "--root", str(root),
              "--pred", str(shared_data / "sav_golden" / "davis_format" / "predictions"))
    assert s["metrics"] == exp["global"]
    assert s["details"]["labels_dropped"] == []  # label 4 is only predicted: never a GT label
    rows = _sav_rows(tmp_path)
    assert list(rows) == exp["object_order"]
    for key, obj in exp["per_object"].items():
        assert float(rows[key]["J"]) == obj["J"] and float(rows[key]["F"]) == obj["F"], key


def test_sav_bad_protocol_arg_is_one_line(shared_data):
    root = shared_data / "sav_golden"
    out = _fails("--dataset", "sav_val", "--root", str(root), "--pred", str(root / "predictions"),
                 "--protocol-arg", "skip_first_last=maybe")
    assert "skip_first_last" in out and "true, false" in out
    out = _fails("--dataset", "sav_val", "--root", str(root), "--pred", str(root / "predictions"),
                 "--protocol-arg", "nonsense=1")
    assert "nonsense" in out


# ----------------------------------------------------------------------------------------------
# SeCVOS
# ----------------------------------------------------------------------------------------------


def test_secvos_golden_all_four_runs(shared_data, tmp_path):
    root = shared_data / "secvos_golden"
    exp = _exp(shared_data, "secvos_golden")
    s = _eval(tmp_path, "--dataset", "secvos", "--root", str(root), "--pred", str(root / "predictions"))
    assert {k: s["metrics"][k] for k in ("J&F", "J", "F")} == exp["runs"]["overall"]["global"]
    for run in ("first_segment", "second_segment", "remain_segments"):
        assert {k: s["metrics"][f"{k} ({run})"] for k in ("J&F", "J", "F")} == exp["runs"][run]["global"]
    values = s["details"]["official"]["values"]
    for run, data in exp["runs"].items():
        assert values[run]["results_csv"] == exp["results_csv"][f"results_{run}.csv"], run
        assert s["details"]["videos_evaluated"][run] == data["videos_evaluated"], run
    rows = _sav_rows(tmp_path)
    for run, data in exp["runs"].items():
        for key, obj in data["per_object"].items():
            row = rows[f"{run}/{key}"]
            assert float(row["J"]) == obj["J"] and float(row["F"]) == obj["F"], (run, key)
            assert row["first_counted"] + ".png" == obj["frames_counted"][0], (run, key)
    # the numeric and the official string comparison of segment bounds agree on 5-digit names
    s2 = _eval(tmp_path, "--dataset", "secvos", "--root", str(root), "--pred", str(root / "predictions"),
               "--protocol-arg", "segment_order=official")
    assert s2["metrics"] == s["metrics"]


def test_secvos_missing_video_is_an_error_even_officially(shared_data, tmp_path):
    root = shared_data / "secvos_golden"
    pred = tmp_path / "pred"
    shutil.copytree(root / "predictions", pred)
    shutil.rmtree(pred / "sec_syn_02")
    out = _fails("--dataset", "secvos", "--root", str(root), "--pred", str(pred), "--missing", "official")
    assert "sec_syn_02" in out and "--strict" in out


# ----------------------------------------------------------------------------------------------
# LVOS
# ----------------------------------------------------------------------------------------------


def test_lvos_golden(shared_data, tmp_path):
    root = shared_data / "lvos_golden"
    exp = _exp(shared_data, "lvos_golden")
    s = _eval(tmp_path, "--dataset", "lvos_v2_val", "--root", str(root), "--pred", str(root / "predictions"))
    off = s["details"]["official"]
    assert off["scale"] == "fraction" and off["values"] == exp["global"]
    for name, col in off["metrics"].items():
        assert s["metrics"][name] == exp["global"][col] * 100.0, name
    assert s["metrics"]["J&F"] == exp["global"]["J&F-Mean"] * 100.0
    import csv

    with open(tmp_path / "samples.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["key"] for r in rows] == exp["object_order"]
    for r in rows:
        obj = exp["per_object"][r["key"]]
        assert r["split"] == obj["split"]
        assert (float(r["J"]), float(r["F"]), float(r["V"])) == \
            (obj["J-Mean"] * 100, obj["F-Mean"] * 100, obj["V-Mean"] * 100), r["key"]
    assert s["counts"]["seen_objects"] == len(exp["seen_objects"])


def test_lvos_missing_frame_and_short_range(shared_data, tmp_path):
    root = shared_data / "lvos_golden"
    pred = tmp_path / "pred"
    shutil.copytree(root / "predictions", pred)
    (pred / "lvs_seen_b" / "00000025.png").unlink()
    out = _fails("--dataset", "lvos_v2_val", "--root", str(root), "--pred", str(pred))
    assert "lvs_seen_b" in out and "00000025" in out
    s = _eval(tmp_path, "--dataset", "lvos_v2_val", "--root", str(root), "--pred", str(pred), "--missing", "official")
    assert s["counts"]["filled"] == 2  # lvs_seen_b's two objects both score frame 25
    # a frame range that leaves slots empty: an error, or the official zeros
    data = tmp_path / "data"
    shutil.copytree(root, data, ignore=shutil.ignore_patterns("predictions"))
    meta = json.loads((data / "valid_meta.json").read_text())
    meta["videos"]["lvs_seen_b"]["objects"]["1"]["frame_range"]["frame_nums"] = 10
    (data / "valid_meta.json").write_text(json.dumps(meta))
    out = _fails("--dataset", "lvos_v2_val", "--root", str(data), "--pred", str(root / "predictions"))
    assert "frame_nums 10" in out and "frame_ranges=official" in out
    s = _eval(tmp_path, "--dataset", "lvos_v2_val", "--root", str(data), "--pred", str(root / "predictions"),
              "--protocol-arg", "frame_ranges=official")
    exp = _exp(shared_data, "lvos_golden")["per_object"]["lvs_seen_b_1"]
    import csv

    with open(tmp_path / "samples.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["key"] == "lvs_seen_b_1")
    assert float(row["J"]) == float(np.mean(exp["J"] + [0.0, 0.0])) * 100  # two empty slots count as 0


# ----------------------------------------------------------------------------------------------
# MOSE v2
# ----------------------------------------------------------------------------------------------


MOSE_OFFICIAL = ("--missing", "official", "--protocol-arg", "short_videos=official")


def test_mosev2_golden(shared_data, tmp_path):
    root = shared_data / "mosev2_golden"
    exp = _exp(shared_data, "mosev2_golden")
    s = _eval(tmp_path, "--dataset", "mosev2_local", "--root", str(root), "--pred", str(root / "predictions"),
              *MOSE_OFFICIAL)
    off = s["details"]["official"]
    assert off["values"] == exp["global"]
    assert s["metrics"]["J&F"] == exp["global"]["J&F_new"] != exp["global"]["J&F"]  # the headline is J&F_new
    assert s["metrics"]["J&F (standard)"] == exp["global"]["J&F"]
    for name, col in off["metrics"].items():
        assert s["metrics"][name] == exp["global"][col], name
    assert s["counts"]["official"] == 1  # mv2_missing's one object scores 0, counted
    import csv

    with open(tmp_path / "samples.csv") as fh:
        rows = {r["key"]: r for r in csv.DictReader(fh)}
    cols = {"J&F": "J&F_new", "J": "J", "F": "F_new", "J&F (disappear)": "disappear_J&F_new",
            "J&F (reappear)": "reappear_J&F_new", "F (standard)": "F", "J&F (standard)": "J&F"}
    for key, obj in exp["per_object"].items():
        for col, name in cols.items():
            want = obj["metrics_json"][name]
            assert (rows[key][col] == "") if want is None else float(rows[key][col]) == want, (key, col)


def test_mosev2_defaults_are_errors(shared_data):
    root = shared_data / "mosev2_golden"
    out = _fails("--dataset", "mosev2_local", "--root", str(root), "--pred", str(root / "predictions"))
    assert "mv2_two_frames" in out and "short_videos=official" in out
    out = _fails("--dataset", "mosev2_local", "--root", str(root), "--pred", str(root / "predictions"),
                 "--protocol-arg", "short_videos=official")
    assert "mv2_missing" in out


def test_mosev2_one_missing_frame_shifts_names_officially(shared_data, tmp_path):
    from refbench.metrics.mosev2 import frame_scores

    root = shared_data / "mosev2_golden"
    pred = tmp_path / "pred"
    shutil.copytree(root / "predictions", pred)
    (pred / "mv2_hd" / "00001.png").unlink()
    s = _eval(tmp_path, "--dataset", "mosev2_local", "--root", str(root), "--pred", str(pred), *MOSE_OFFICIAL)
    import csv

    with open(tmp_path / "samples.csv") as fh:
        rows = {r["key"]: r for r in csv.DictReader(fh)}
    # score.py takes positions 1, 2 of the listing 00000, 00002, 00003: frames 00002 and 00003, GT read under them
    names = ["00002", "00003"]
    gt = np.stack([np.asarray(Image.open(root / "Annotations" / "mv2_hd" / f"{n}.png").convert("P")) for n in names])
    pr = np.stack([np.asarray(Image.open(pred / "mv2_hd" / f"{n}.png").convert("P")) for n in names])
    for oid in (1, 2):
        fs = frame_scores(pr == oid, gt == oid)
        assert rows[f"mv2_hd_{oid}"]["status"] == "official"
        assert float(rows[f"mv2_hd_{oid}"]["J"]) == round(np.mean(fs.J) * 100, 2)
    assert s["counts"]["official"] == 3
    # the default names the missing frame
    out = _fails("--dataset", "mosev2_local", "--root", str(root), "--pred", str(pred), "--missing", "error",
                 "--protocol-arg", "short_videos=official")
    assert "mv2_hd" in out


# ----------------------------------------------------------------------------------------------
# Ref-SAV and ReasonVOS
# ----------------------------------------------------------------------------------------------


def test_refsav_golden(shared_data, tmp_path):
    root = shared_data / "refsav_golden"
    exp = _exp(shared_data, "refsav_golden")
    s = _eval(tmp_path, "--dataset", "refsav_val", "--root", str(root), "--pred", str(root / "predictions.json"))
    assert s["details"]["official"]["values"] == exp["summary"]
    assert (s["metrics"]["J"], s["metrics"]["F"], s["metrics"]["J&F"], s["metrics"]["A"]) == \
        (exp["summary"]["overall"]["J"], exp["summary"]["overall"]["F"], exp["summary"]["overall"]["JF"],
         exp["summary"]["overall"]["A"])
    assert s["metrics"]["J (short)"] == exp["summary"]["short"]["J"]
    import csv

    with open(tmp_path / "samples.csv") as fh:
        rows = {r["key"]: r for r in csv.DictReader(fh)}
    for r in exp["per_expression_rounded"]:
        row = rows[r["videxp"]]
        got = (float(row["J"]), float(row["F"]), float(row["J&F"]), float(row["A"]))
        assert got == (r["J"], r["F"], r["JF"], r["A"]), r["videxp"]


def test_refsav_missing_expression(shared_data, tmp_path):
    root = shared_data / "refsav_golden"
    quirk = _exp(shared_data, "refsav_golden")["quirk_missing_expression"]
    doc = json.loads((root / "predictions.json").read_text())
    del doc["sav_ref_02"]["1"]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(doc))
    out = _fails("--dataset", "refsav_val", "--root", str(root), "--pred", str(pred))
    assert "sav_ref_02" in out
    s = _eval(tmp_path, "--dataset", "refsav_val", "--root", str(root), "--pred", str(pred), "--missing", "official")
    got = s["details"]["official"]["values"]
    for cat, vals in quirk["summary_128_processes_rounded_1e-10"].items():
        for k, v in vals.items():
            assert round(got[cat][k], 10) == v, (cat, k)
    assert s["counts"]["official"] == 1 and list(s["details"]["dropped"]) == ["sav_ref_02_1"]
    # --missing empty scores it instead (J = F = 0 against a present object)
    s = _eval(tmp_path, "--dataset", "refsav_val", "--root", str(root), "--pred", str(pred), "--missing", "empty")
    assert s["counts"]["filled"] == 1 and s["metrics"]["J (short)"] < got["short"]["J"]


def test_reasonvos_golden(shared_data, tmp_path):
    root = shared_data / "reasonvos_golden"
    exp = _exp(shared_data, "reasonvos_golden")
    out = _fails("--dataset", "reasonvos", "--root", str(root), "--pred", str(root / "predictions.json"))
    assert "mask_dict.json" in out and "anno_id '4' frame 1" in out and "gt_size=official" in out
    s = _eval(tmp_path, "--dataset", "reasonvos", "--root", str(root), "--pred", str(root / "predictions.json"),
              "--protocol-arg", "gt_size=official")
    assert s["details"]["official"]["values"] == exp["results"]
    assert {k: s["metrics"][k] for k in ("J", "F", "J&F")} == exp["results"]
    assert s["details"]["except_lines"] == exp["stdout_except_lines"]
    assert s["details"]["protocol_args"] == {"gt_size": "official"}


def test_sav_missing_empty_scores_the_absent_video(shared_data, tmp_path):
    root = shared_data / "sav_golden"
    s = _eval(tmp_path, "--dataset", "sav_val", "--root", str(root), "--pred", str(root / "predictions"),
              "--missing", "empty")
    assert s["counts"]["filled"] == 1 and "sav_syn_004" in s["details"]["videos_evaluated"]
    rows = _sav_rows(tmp_path)
    assert float(rows["sav_syn_004/000"]["J"]) == 0.0 and int(rows["sav_syn_004/000"]["filled"]) > 0


def test_png_protocols_refuse_rle_json(shared_data, tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text("{}")
    out = _fails("--dataset", "lvos_v2_val", "--root", str(shared_data / "lvos_golden"), "--pred", str(pred))
    assert "PNG layout" in out
