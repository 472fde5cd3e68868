"""evaluate_res against the golden RefCOCO / ReasonSeg files (shared/data/PROVENANCE.md section 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refbench.cards import dataset_card
from refbench.data.base import PredictionError
from refbench.evaluate.res import evaluate_res
from refbench.preds.res import RESPredictions

SPLITS = ("val", "testA", "testB")


@pytest.fixture(scope="module")
def golden(shared_data: Path) -> Path:
    return shared_data / "refcoco_golden"


@pytest.fixture(scope="module")
def expected(golden: Path) -> dict:
    return json.loads((golden / "expected.json").read_text())


@pytest.fixture(scope="module")
def roots(golden: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data roots laid out as the cards expect (``refer_seg/refcoco/...``, ``reason_seg/ReasonSeg/val``)."""
    base = tmp_path_factory.mktemp("data")
    refer = base / "refer_seg"
    refer.mkdir()
    (refer / "refcoco").symlink_to(golden / "refcoco", target_is_directory=True)
    reason = base / "reason_seg" / "ReasonSeg"
    reason.mkdir(parents=True)
    (reason / "val").symlink_to(golden / "reason_seg" / "ReasonSeg" / "val", target_is_directory=True)
    return {"refer": refer, "reason": reason}


def _loader(name: str, roots: dict[str, Path]):
    card = dataset_card(name)
    return card, card.open(roots["reason" if card.name.startswith("reasonseg") else "refer"])


def _preds(golden: Path) -> dict:
    return json.loads((golden / "predictions_refcoco_unc.json").read_text())


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("protocol", ["lisa", "sa2va"])
def test_refcoco_golden(split: str, protocol: str, roots, golden: Path, expected: dict, device: str) -> None:
    card, loader = _loader(f"refcoco_{split}", roots)
    res = evaluate_res(card, loader, golden / "predictions_refcoco_unc.json", protocol=protocol,
                       unknown="ignore", device=device)
    want = expected["refcoco_unc" if protocol == "lisa" else "sa2va"][split]
    names = {"lisa": ("ciou", "giou"), "sa2va": ("CIoU", "GIoU")}[protocol]
    # the printout exactly (float32 values as the scripts return them), the metrics x 100 in float64
    assert res.details["official"]["values"] == {names[0]: want["cIoU"], names[1]: want["gIoU"]}
    assert res.details["official"]["scale"] == "fraction"
    assert res.metrics == {"cIoU": want["cIoU"] * 100, "gIoU": want["gIoU"] * 100}
    assert all(type(v) is float for v in res.metrics.values())
    assert res.scale == "percent" and res.protocol == protocol
    per_sentence = expected["refcoco_unc"][split]["per_sentence"]
    assert res.counts["scored"] == len(per_sentence) == len(res.per_sample)
    assert res.counts["ignored_unknown"] == 21 - len(per_sentence)
    if protocol == "lisa":
        for row in res.per_sample:
            assert (row["I"], row["U"]) == (per_sentence[row["sample_id"]]["I"], per_sentence[row["sample_id"]]["U"])


def test_default_protocol_is_card_lisa(roots, golden: Path, expected: dict) -> None:
    card, loader = _loader("refcoco_testA", roots)
    res = evaluate_res(card, loader, golden / "predictions_refcoco_unc.json", unknown="ignore")
    assert res.protocol == "lisa" and res.metrics["gIoU"] == expected["refcoco_unc"]["testA"]["gIoU"] * 100


def test_sa2va_none(roots, golden: Path, expected: dict, tmp_path: Path) -> None:
    """testA with sentence 1314 = null: Sa2VA skips it; LISA scores it as an empty mask and says so."""
    card, loader = _loader("refcoco_testA", roots)
    data = {k: v for k, v in _preds(golden).items() if k in {s.sample_id for s in loader.samples()}}
    data["1314"] = None
    pred = _write(tmp_path / "none.json", data)
    res = evaluate_res(card, loader, pred, protocol="sa2va")
    want = expected["sa2va"]["testA_with_none"]
    assert res.details["official"]["values"] == {"CIoU": want["cIoU"], "GIoU": want["gIoU"]}
    assert res.metrics == {"cIoU": want["cIoU"] * 100, "gIoU": want["gIoU"] * 100}
    assert res.counts["null_skipped"] == 1 and res.counts["null_as_empty"] == 0 and res.counts["scored"] == 5
    assert next(r for r in res.per_sample if r["sample_id"] == "1314")["skipped"] is True
    lisa = evaluate_res(card, loader, pred, protocol="lisa")
    assert lisa.counts["null_as_empty"] == 1 and lisa.counts["null_skipped"] == 0
    row = next(r for r in lisa.per_sample if r["sample_id"] == "1314")
    # 1314's golden prediction is an erosion of its GT, so its golden U is the GT area: an empty mask has U = |GT|.
    assert row["I"] == 0 and row["U"] == expected["refcoco_unc"]["testA"]["per_sentence"]["1314"]["U"]
    assert lisa.metrics["cIoU"] != res.metrics["cIoU"]


def test_reason_seg_golden(roots, golden: Path, expected: dict, device: str) -> None:
    card, loader = _loader("reasonseg_val", roots)
    res = evaluate_res(card, loader, golden / "predictions_reasonseg_val.json", device=device)
    want = expected["reason_seg_val"]
    assert res.details["official"]["values"] == {"ciou": want["cIoU"], "giou": want["gIoU"]}
    assert res.metrics == {"cIoU": want["cIoU"] * 100, "gIoU": want["gIoU"] * 100}
    for row in res.per_sample:
        ref = want["per_image"][row["sample_id"]]
        assert (row["I"], row["U"]) == (ref["I"], ref["U"])


def test_missing_sample(roots, golden: Path, tmp_path: Path) -> None:
    card, loader = _loader("refcoco_testB", roots)
    ids = {s.sample_id for s in loader.samples()}
    data = {k: v for k, v in _preds(golden).items() if k in ids and k != "1318"}
    pred = _write(tmp_path / "m.json", data)
    with pytest.raises(PredictionError, match=r"m\.json: 1 of 5 samples have no prediction: '1318'"):
        evaluate_res(card, loader, pred)
    res = evaluate_res(card, loader, pred, missing="empty")
    assert res.counts["missing"] == 1
    assert next(r for r in res.per_sample if r["sample_id"] == "1318")["prediction"] == "missing"


def test_unknown_id_is_an_error(roots, golden: Path) -> None:
    card, loader = _loader("refcoco_testB", roots)
    with pytest.raises(PredictionError, match=r"16 prediction id\(s\) are not samples.*'1301'"):
        evaluate_res(card, loader, golden / "predictions_refcoco_unc.json")


def test_wrong_rle_size(roots, golden: Path, tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    card, loader = _loader("reasonseg_val", roots)
    data = json.loads((golden / "predictions_reasonseg_val.json").read_text())
    rle = mask_utils.encode(np.asfortranarray(np.ones((7, 9), dtype=np.uint8)))
    data["rs_0002"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    pred = _write(tmp_path / "size.json", data)
    with pytest.raises(PredictionError, match=r"size\.json: sample 'rs_0002': mask size \[7, 9\]"):
        evaluate_res(card, loader, pred)


def test_malformed(roots, tmp_path: Path) -> None:
    card, loader = _loader("reasonseg_val", roots)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PredictionError, match=r"bad\.json:1: invalid JSON"):
        evaluate_res(card, loader, bad)
    with pytest.raises(PredictionError, match=r"b2\.json: sample 'rs_0001': expected a COCO RLE"):
        evaluate_res(card, loader, _write(tmp_path / "b2.json", {"rs_0001": {"size": [2, 2]}}))


def test_uncompressed_rle_decodes(tmp_path: Path) -> None:
    mask = np.zeros((3, 4), dtype=np.uint8)
    mask[1:, 2:] = 1
    # column-major runs: 7 zeros, 2 ones (column 2, rows 1-2), 1 zero, 2 ones (column 3, rows 1-2)
    preds = RESPredictions(_write(tmp_path / "u.json", {"a": {"size": [3, 4], "counts": [7, 2, 1, 2]}, "b": None}))
    got = preds.mask("a", 3, 4)
    assert got is not None and np.array_equal(got, mask)
    assert preds.is_null("b") and preds.mask("b", 3, 4) is None
    with pytest.raises(PredictionError, match="runs add up to 3 pixels"):
        RESPredictions(_write(tmp_path / "v.json", {"a": {"size": [3, 4], "counts": [1, 2]}})).mask("a", 3, 4)


def test_bad_protocol(roots, golden: Path) -> None:
    card, loader = _loader("reasonseg_val", roots)
    with pytest.raises(ValueError, match="unknown RES protocol"):
        evaluate_res(card, loader, golden / "predictions_reasonseg_val.json", protocol="glamm")
