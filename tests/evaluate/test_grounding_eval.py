"""evaluate_grounding against the golden Charades-STA files (shared/data/PROVENANCE.md section 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refbench.cards import dataset_card
from refbench.data.base import PredictionError
from refbench.evaluate.grounding import evaluate_grounding
from refbench.preds.spans import read_span_predictions

CARD = "charades_sta_test"


@pytest.fixture(scope="module")
def charades_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/charades_sta`` laid out as the card expects, symlinked to the golden files."""
    root = tmp_path_factory.mktemp("data") / "charades_sta"
    root.mkdir()
    for name in ("charades_sta_test.txt", "Charades_v1_test.csv"):
        (root / name).symlink_to(shared_data / "charades_sta" / name)
    return root


@pytest.fixture(scope="module")
def loader(charades_root: Path):
    return dataset_card(CARD).open(charades_root)


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> dict:
    return json.loads((shared_data / "charades_sta" / "timechat_example_pred_texts.json").read_text())


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_lmms_eval_golden(shared_data: Path, loader, texts: dict, tmp_path: Path) -> None:
    """expected_lmms.json: the 500 rendered answers, lmms-eval parse and metrics, bit-exact."""
    expected = json.loads((shared_data / "charades_sta" / "expected_lmms.json").read_text())
    pred = _write(tmp_path / "texts.json", {qid: v["text"] for qid, v in texts.items()})
    res = evaluate_grounding(CARD, loader, pred, subset="predicted")
    assert res.protocol == "lmms-eval" and res.scale == "percent"
    assert res.metrics == {k: expected[k] for k in ("R@0.3", "R@0.5", "R@0.7", "mIoU")}  # percent, unchanged
    assert res.details["official"]["values"] == expected["raw_metrics"]  # lmms-eval's own names and values
    assert res.counts["scored"] == expected["n_queries"] == 500
    assert res.counts["unparsed"] == 280 and res.counts["missing"] == 0
    assert res.counts["not_in_subset"] == 3720 - 500
    rows = {r["qid"]: r for r in res.per_sample}
    for qid, want in expected["per_qid"].items():
        assert rows[qid]["iou"] == want["iou"] * 100  # percent (the raw IoUs: tests/metrics/test_tsg.py)
        parsed = [rows[qid]["pred_start"], rows[qid]["pred_end"]] if rows[qid]["parsed"] else None
        assert parsed == (want["parsed"][0] if want["parsed"] else None)
        assert rows[qid]["video"] + ".mp4" == texts[qid]["vid"] and rows[qid]["query"] == texts[qid]["query"]


def test_timechat_golden(shared_data: Path, loader) -> None:
    """expected_timechat.json: TimeChat's own prediction file under its protocol."""
    expected = json.loads((shared_data / "charades_sta" / "expected_timechat.json").read_text())
    pred = shared_data / "charades_sta" / "timechat_example_pred.json"
    res = evaluate_grounding(CARD, loader, pred, protocol="timechat", subset="predicted")
    assert res.metrics == {k: expected[k] for k in ("R@0.3", "R@0.5", "R@0.7")}
    assert res.details["official"]["values"] == {"IOU 0.3": 9.0, "IOU 0.5": 3.4, "IOU 0.7": 1.4}
    assert [f"{k}: {v}" for k, v in res.details["official"]["values"].items()] == expected["stdout"][1:]
    assert res.counts["scored"] == expected["n_queries"]
    assert res.reference["repo"] == "RenShuhuai-Andy/TimeChat"


def test_sample_is_never_silent(shared_data: Path, loader) -> None:
    """Without subset='predicted' the 3,220 unpredicted queries are an error, not dropped."""
    pred = shared_data / "charades_sta" / "timechat_example_pred.json"
    with pytest.raises(PredictionError, match="3220 of 3720 queries have no prediction"):
        evaluate_grounding(CARD, loader, pred, protocol="timechat")


def test_missing_qid(loader, tmp_path: Path) -> None:
    spans = {s.qid: [s.span[0], s.span[1]] for s in loader.samples() if s.qid != "17"}
    pred = _write(tmp_path / "p.json", spans)
    with pytest.raises(PredictionError, match=r"p\.json.*1 of 3720 .*'17'"):
        evaluate_grounding(CARD, loader, pred)
    for mode in ("empty", "official"):
        res = evaluate_grounding(CARD, loader, pred, missing=mode)
        assert res.counts == {"scored": 3720, "unparsed": 1, "missing": 1, "not_in_subset": 0, "not_sampled": 0}
        assert res.metrics["R@0.7"] == 3719 * 100 / 3720
        row = next(r for r in res.per_sample if r["qid"] == "17")
        assert row["missing"] and not row["parsed"] and row["iou"] == 0.0


def test_unknown_qid(loader, tmp_path: Path) -> None:
    pred = _write(tmp_path / "p.json", {"0": [1.0, 2.0], "99999": [1.0, 2.0], "abc": [0, 1]})
    with pytest.raises(PredictionError, match=r"p\.json: 2 prediction id\(s\).*'99999', 'abc'"):
        evaluate_grounding(CARD, loader, pred, subset="predicted")


def test_malformed(loader, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"0": [1.0, 2.0],')
    with pytest.raises(PredictionError, match=r"bad\.json:1: invalid JSON"):
        evaluate_grounding(CARD, loader, bad)
    with pytest.raises(PredictionError, match="a span is"):
        evaluate_grounding(CARD, loader, _write(tmp_path / "b2.json", {"0": [1.0, "x"]}), subset="predicted")
    with pytest.raises(PredictionError, match="mixes"):
        evaluate_grounding(CARD, loader, _write(tmp_path / "b3.json", {"0": [1.0, 2.0], "1": "2 - 3"}))
    with pytest.raises(PredictionError, match="expected a JSON object"):
        evaluate_grounding(CARD, loader, _write(tmp_path / "b4.json", [[1.0, 2.0]]))


def test_timechat_entry_must_match_query(shared_data: Path, loader, tmp_path: Path) -> None:
    data = json.loads((shared_data / "charades_sta" / "timechat_example_pred.json").read_text())
    qid = next(iter(data))
    data[qid]["vid"] = "XXXXX.mp4"
    with pytest.raises(PredictionError, match=f"'{qid}'"):
        read_span_predictions(_write(tmp_path / "tc.json", data), loader.samples())


def test_ranked_spans_and_sample(loader, tmp_path: Path) -> None:
    """Ranked lists use the top-1; GT spans score 100; ``sample`` keeps the first N and says so."""
    queries = loader.samples()[:10]
    data = {s.qid: [[s.span[0], s.span[1]], [0.0, 1.0]] for s in queries}
    data[queries[0].qid] = []  # no span
    pred = _write(tmp_path / "r.json", data)
    res = evaluate_grounding(CARD, loader, pred, subset="predicted", sample=4)
    assert [r["qid"] for r in res.per_sample] == [s.qid for s in queries[:4]]
    assert res.counts["not_sampled"] == 6 and res.counts["unparsed"] == 1
    assert res.metrics == {"R@0.3": 75.0, "R@0.5": 75.0, "R@0.7": 75.0, "mIoU": 75.0}


def test_bad_options(loader, tmp_path: Path) -> None:
    pred = _write(tmp_path / "p.json", {"0": [1.0, 2.0]})
    with pytest.raises(ValueError, match="protocol"):
        evaluate_grounding(CARD, loader, pred, protocol="nope", subset="predicted")
    with pytest.raises(ValueError, match="missing"):
        evaluate_grounding(CARD, loader, pred, missing="skip")
    with pytest.raises(ValueError, match="subset"):
        evaluate_grounding(CARD, loader, pred, subset="some")
    with pytest.raises(ValueError, match="not temporal grounding"):
        evaluate_grounding("refcoco_val", loader, pred)
