"""Every golden expected value in shared/data, reproduced through the ``refbench eval`` command itself.

One scale: ``metrics`` are percent; ``details.official`` must equal the official script's printout exactly (its names,
values and scale), and each metric must be that value x 100 (fraction printouts) or the value itself (percent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.cli import main


def _eval(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "summary.json"
    csv_out = tmp_path / "samples.csv"
    r = CliRunner().invoke(main, ["eval", *args, "--json", str(out), "--csv", str(csv_out)])
    assert r.exit_code == 0, r.output
    assert csv_out.read_text().count("\n") >= 2
    summary = json.loads(out.read_text())
    prov = summary["provenance"]
    assert prov["refbench_version"] and len(prov["annotation_sha256"]) == 64 and prov["annotation_files"]
    assert summary["scale"] == "percent"
    return summary


def _x100(values: dict) -> dict:
    return {k: v * 100 for k, v in values.items()}


def test_mevis_golden(shared_data, tmp_path):
    root = tmp_path / "mevis" / "valid_u"
    root.mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        (root / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    exp = json.loads((shared_data / "mevis_golden" / "expected.json").read_text())
    s = _eval(tmp_path, "--dataset", "mevis_val_u", "--root", str(tmp_path / "mevis"),
              "--pred", str(shared_data / "mevis_golden" / "predictions"), "--missing", "official")
    official = s["details"]["official"]
    assert official["values"] == exp["global"] and official["scale"] == "fraction"  # eval_mevis.py's J, F, J&F
    assert s["metrics"] == _x100(exp["global"])
    assert s["counts"]["official"] == 2
    # 15 expressions of the 793 of the official split: labelled partial, with the reason
    assert s["partial"] is True and "has 6 videos, 15 expressions; the official split has 50 videos, 793 " \
        "expressions" in s["partial_reasons"][0]
    assert s["partial_reasons"][1] == "2 of 15 samples have no prediction and were scored by --missing official"
    # without --missing the absent cows folder is a one-line error naming it
    r = CliRunner().invoke(main, ["eval", "--dataset", "mevis_val_u", "--root", str(tmp_path / "mevis"),
                                 "--pred", str(shared_data / "mevis_golden" / "predictions")])
    assert r.exit_code == 2 and "cows" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("values,expected", [("official", "expected.json"), ("binary", "expected_binary.json")])
def test_revos_golden(shared_data, tmp_path, values, expected):
    root = shared_data / "revos_golden"
    exp = json.loads((root / expected).read_text())["summary"]
    s = _eval(tmp_path, "--dataset", "revos_val", "--root", str(root), "--pred", str(root / "predictions"),
              "--missing", "official", "--values", values)
    m = s["metrics"]
    assert s["details"]["official"]["values"] == exp and s["details"]["official"]["scale"] == "percent"
    for cat, label in (("referring", "referring"), ("reason", "reasoning"), ("overall", "overall")):
        for k in ("J", "F", "A", "R"):
            assert m[f"{k} ({label})"] == exp[cat][k], (cat, k)
        assert m[f"J&F ({label})"] == exp[cat]["JF"]


def test_davis_semi_golden(shared_data, tmp_path):
    root = shared_data / "davis_osvos13"
    exp = json.loads((root / "expected_semi.json").read_text())
    s = _eval(tmp_path, "--dataset", "davis17_val", "--root", str(root), "--pred", str(root / "predictions" / "osvos"),
              "--protocol", "davis_semi")
    g = exp["global"]
    assert s["details"]["official"]["values"]["global"] == g and s["details"]["official"]["scale"] == "fraction"
    m = s["metrics"]
    assert (m["J&F"], m["J"], m["F"]) == (g["J&F-Mean"] * 100, g["J-Mean"] * 100, g["F-Mean"] * 100)
    assert (m["J-Recall"], m["F-Decay"]) == (g["J-Recall"] * 100, g["F-Decay"] * 100)


def test_charades_lmms_and_timechat_golden(shared_data, tmp_path):
    root = shared_data / "charades_sta"
    texts = json.loads((root / "timechat_example_pred_texts.json").read_text())
    pred = tmp_path / "texts.json"
    pred.write_text(json.dumps({qid: v["text"] for qid, v in texts.items()}))
    exp = json.loads((root / "expected_lmms.json").read_text())
    s = _eval(tmp_path, "--dataset", "charades_sta_test", "--root", str(root), "--pred", str(pred), "--subset", "predicted")
    assert s["metrics"] == {k: exp[k] for k in ("R@0.3", "R@0.5", "R@0.7", "mIoU")}  # percent, as printed
    assert s["details"]["official"] == {"scale": "percent", "values": exp["raw_metrics"],  # lmms-eval's names
                                        "metrics": {"R@0.3": "IOU@3", "R@0.5": "IOU@5", "R@0.7": "IOU@7",
                                                    "mIoU": "mIOU"}}
    assert s["counts"]["scored"] == 500 and s["counts"]["unparsed"] == 280
    exp_tc = json.loads((root / "expected_timechat.json").read_text())
    s = _eval(tmp_path, "--dataset", "charades_sta_test", "--root", str(root), "--pred",
              str(root / "timechat_example_pred.json"), "--subset", "predicted", "--protocol", "timechat")
    assert s["metrics"] == {k: exp_tc[k] for k in ("R@0.3", "R@0.5", "R@0.7")}
    printed = dict(line.split(": ") for line in exp_tc["stdout"][1:])  # "IOU 0.3: 9.0"
    assert s["details"]["official"]["values"] == {k: float(v) for k, v in printed.items()}


@pytest.mark.parametrize("split", ["val", "testA", "testB"])
@pytest.mark.parametrize("protocol", ["lisa", "sa2va"])
def test_refcoco_golden(shared_data, tmp_path, split, protocol):
    root = shared_data / "refcoco_golden"
    exp = json.loads((root / "expected.json").read_text())
    want = exp["refcoco_unc"][split] if protocol == "lisa" else exp["sa2va"][split]
    s = _eval(tmp_path, "--dataset", f"refcoco_{split}", "--root", str(root), "--pred",
              str(root / "predictions_refcoco_unc.json"), "--unknown", "ignore", "--protocol", protocol)
    names = {"lisa": ("ciou", "giou"), "sa2va": ("CIoU", "GIoU")}[protocol]
    assert s["details"]["official"]["values"] == {names[0]: want["cIoU"], names[1]: want["gIoU"]}
    assert s["details"]["official"]["scale"] == "fraction"
    assert s["metrics"]["cIoU"] == want["cIoU"] * 100 and s["metrics"]["gIoU"] == want["gIoU"] * 100


def test_reasonseg_golden(shared_data, tmp_path):
    root = shared_data / "refcoco_golden"
    exp = json.loads((root / "expected.json").read_text())["reason_seg_val"]
    s = _eval(tmp_path, "--dataset", "reasonseg_val", "--root", str(root / "reason_seg" / "ReasonSeg"), "--pred",
              str(root / "predictions_reasonseg_val.json"))
    assert s["details"]["official"]["values"] == {"ciou": exp["cIoU"], "giou": exp["gIoU"]}
    assert s["metrics"]["cIoU"] == exp["cIoU"] * 100 and s["metrics"]["gIoU"] == exp["gIoU"] * 100


def test_server_only_dataset_is_refused(tmp_path):
    pred = tmp_path / "p.json"
    pred.write_text("{}")
    r = CliRunner().invoke(main, ["eval", "--dataset", "mevis_val", "--root", str(tmp_path), "--pred", str(pred)])
    assert r.exit_code == 2 and "not public" in r.output
