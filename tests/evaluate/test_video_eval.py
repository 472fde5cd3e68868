"""evaluate_video against the golden outputs of the official MeViS, ReVOS and DAVIS evaluators.

Results are percent; ``details["official"]`` must equal the official printout exactly, and each metric / per-sample
score must be its official value x 100 (fraction printouts) or the value itself (ReVOS)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refbench.cards import dataset_card
from refbench.data.base import DatasetError, PredictionError
from refbench.data.davis import DavisLoader
from refbench.data.mevis import MevisLoader, RevosLoader
from refbench.evaluate.video import evaluate_video

DAVIS_UNSUP_SUBSET = ["blackswan", "camel", "dog"]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mevis(shared_data: Path, tmp_path_factory) -> dict:
    gold = shared_data / "mevis_golden"
    root = tmp_path_factory.mktemp("mevis_root")
    (root / "valid_u").symlink_to(gold / "valid_u", target_is_directory=True)
    loader = MevisLoader(root, "valid_u")
    return {
        "card": dataset_card("mevis_val_u"),
        "loader": loader,
        "pred": gold / "predictions",
        "expected": json.loads((gold / "expected.json").read_text()),
        "mask_dict": json.loads((gold / "valid_u" / "mask_dict.json").read_text()),
        "meta": json.loads((gold / "valid_u" / "meta_expressions.json").read_text()),
    }


@pytest.fixture(scope="module")
def mevis_official(mevis):
    return evaluate_video(mevis["card"], mevis["loader"], mevis["pred"], missing="official")


def _copy_preds(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------------- MeViS


def test_mevis_official_matches_golden(mevis, mevis_official):
    res, exp = mevis_official, mevis["expected"]
    assert res.protocol == "mevis" and res.scale == "percent"
    assert res.reference["repo"] == "henghuiding/MeViS"
    assert [r["key"] for r in res.per_sample] == list(exp["per_expression"])  # meta order
    for row in res.per_sample:
        j, f = exp["per_expression"][row["key"]]
        assert [row["J"], row["F"]] == [j * 100, f * 100]
    # exact: reduced in meta order; the printout as eval_mevis.py prints it, the metrics x 100
    assert res.details["official"] == {"scale": "fraction", "values": exp["global"],
                                       "metrics": {"J": "J", "F": "F", "J&F": "J&F"}}
    assert res.metrics == {k: v * 100 for k, v in exp["global"].items()}
    assert res.counts == {"samples": 15, "scored": 13, "missing": 2, "filled": 0, "official": 2}
    assert res.details["missing_videos"] == ["cows_0", "cows_1"]


def test_mevis_missing_error_names_video(mevis):
    with pytest.raises(PredictionError, match="cows"):
        evaluate_video(mevis["card"], mevis["loader"], mevis["pred"])


def test_mevis_missing_empty_scores_empty_masks(mevis):
    res = evaluate_video(mevis["card"], mevis["loader"], mevis["pred"], missing="empty")
    assert res.counts["filled"] == 2 and res.counts["missing"] == 2
    # Independently: an empty prediction gives J = F = 1 on frames whose GT is empty and 0 elsewhere
    # (db_eval_iou / f_measure rules), so each is the fraction of frames with an all-null GT.
    cows = mevis["meta"]["videos"]["cows"]
    per = dict(mevis["expected"]["per_expression"])
    for exp_id, exp in cows["expressions"].items():
        anno = exp["anno_id"] if isinstance(exp["anno_id"], list) else [exp["anno_id"]]
        n = len(cows["frames"])
        empty = [all(not mevis["mask_dict"][str(a)][t] for a in anno) for t in range(n)]
        per[f"cows_{exp_id}"] = [float(np.mean(empty))] * 2
    rows = {r["key"]: r for r in res.per_sample}
    for key, (j, f) in per.items():
        assert (rows[key]["J"], rows[key]["F"]) == (j * 100, f * 100)
    j = float(np.mean([v[0] for v in per.values()]))
    f = float(np.mean([v[1] for v in per.values()]))
    assert res.details["official"]["values"] == {"J": j, "F": f, "J&F": (j + f) / 2}
    assert res.metrics == {"J": j * 100, "F": f * 100, "J&F": (j + f) / 2 * 100}


def test_mevis_zip_gives_identical_results(mevis, mevis_official, tmp_path):
    z = tmp_path / "preds.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(mevis["pred"].rglob("*.png")):
            zf.write(p, p.relative_to(mevis["pred"]).as_posix())
    res = evaluate_video(mevis["card"], mevis["loader"], z, missing="official")
    assert res.metrics == mevis_official.metrics
    assert res.per_sample == mevis_official.per_sample
    # the Ref-YouTube-VOS style Annotations/ top folder is accepted too
    z2 = tmp_path / "preds_ann.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        for p in sorted(mevis["pred"].rglob("*.png")):
            zf.write(p, "Annotations/" + p.relative_to(mevis["pred"]).as_posix())
    assert evaluate_video(mevis["card"], mevis["loader"], z2, missing="official").metrics == mevis_official.metrics


@pytest.mark.parametrize("flat", [False, True])
def test_mevis_rle_json_gives_identical_jf(mevis, mevis_official, tmp_path, flat):
    from pycocotools import mask as mask_utils

    doc: dict = {}
    for s in mevis["loader"].samples():
        folder = mevis["pred"] / s.video / s.exp_id
        if not folder.is_dir():
            continue
        rles = []
        for fr in s.frames:
            m = np.asfortranarray((np.array(Image.open(folder / f"{fr}.png")) > 0).astype(np.uint8))
            if not m.any() and fr == s.frames[-1]:
                rles.append(None)  # null = empty mask
                continue
            rle = mask_utils.encode(m)
            rles.append({"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")})
        if flat:
            doc[s.key] = rles
        else:
            doc.setdefault(s.video, {})[s.exp_id] = rles
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(doc))
    res = evaluate_video(mevis["card"], mevis["loader"], path, missing="official")
    assert res.per_sample == mevis_official.per_sample
    assert res.metrics == mevis_official.metrics


def test_mevis_deleted_frame_is_an_error(mevis, tmp_path):
    pred = _copy_preds(mevis["pred"], tmp_path / "p")
    (pred / "parkour" / "1" / "00050.png").unlink()
    with pytest.raises(PredictionError, match=r"parkour/1/00050\.png"):
        evaluate_video(mevis["card"], mevis["loader"], pred, missing="error")
    res = evaluate_video(mevis["card"], mevis["loader"], pred, missing="official")  # filled, never dropped
    assert res.counts["filled"] == 1 and len(res.per_sample) == 15


def test_mevis_zip_with_parent_member_rejected(mevis, tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../evil.png", b"x")
    with pytest.raises(PredictionError, match=r"evil\.zip.*\.\./evil\.png"):
        evaluate_video(mevis["card"], mevis["loader"], z, missing="official")


def test_mevis_wrong_size_png_is_an_error(mevis, tmp_path):
    pred = _copy_preds(mevis["pred"], tmp_path / "p")
    bad = pred / "dog" / "0" / "00020.png"
    Image.fromarray(np.zeros((10, 12), np.uint8), mode="L").save(bad)
    with pytest.raises(PredictionError, match=r"dog/0/00020\.png"):
        evaluate_video(mevis["card"], mevis["loader"], pred, missing="official")


def test_mevis_unreadable_png_and_unknown_ids(mevis, tmp_path):
    pred = _copy_preds(mevis["pred"], tmp_path / "p")
    (pred / "dog" / "0" / "00020.png").write_bytes(b"not a png")
    with pytest.raises(PredictionError, match=r"dog/0/00020\.png"):
        evaluate_video(mevis["card"], mevis["loader"], pred, missing="official")
    pred2 = _copy_preds(mevis["pred"], tmp_path / "p2")
    shutil.copytree(pred2 / "dog", pred2 / "not-a-video")
    with pytest.raises(PredictionError, match="not-a-video"):
        evaluate_video(mevis["card"], mevis["loader"], pred2, missing="official")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(PredictionError, match="bad.json"):
        evaluate_video(mevis["card"], mevis["loader"], bad_json, missing="official")


def test_progress_and_refdavis_a(mevis):
    seen = []
    evaluate_video(mevis["card"], mevis["loader"], mevis["pred"], missing="official",
                   progress=lambda d, n: seen.append((d, n)), workers=1)
    assert seen[-1] == (15, 15) and len(seen) == 15
    # refdavis_a (the Ref-DAVIS17 card's protocol) needs the Ref-DAVIS17 loader; tests/evaluate/test_refdavis_a.py
    with pytest.raises(DatasetError, match="RefDavisLoader"):
        evaluate_video(dataset_card("refdavis17_val"), mevis["loader"], mevis["pred"])


# ---------------------------------------------------------------------------------------------- ReVOS


@pytest.mark.parametrize("values,fname", [("official", "expected.json"), ("binary", "expected_binary.json")])
def test_revos_matches_golden(shared_data, values, fname):
    gold = shared_data / "revos_golden"
    exp = json.loads((gold / fname).read_text())
    res = evaluate_video(dataset_card("revos_val"), RevosLoader(gold), gold / "predictions",
                         missing="official", values=values)
    assert res.scale == "percent" and res.protocol == "revos"
    assert res.details["official"]["values"] == exp["summary"] and res.details["official"]["scale"] == "percent"
    assert res.metrics["J&F"] == exp["summary"]["overall"]["JF"]
    assert res.metrics["J&F (reasoning)"] == exp["summary"]["reason"]["JF"]
    assert res.metrics["A (referring)"] == exp["summary"]["referring"]["A"]
    assert [r["key"] for r in res.per_sample] == list(exp["per_expression_rounded"])
    for row in res.per_sample:
        want = exp["per_expression_rounded"][row["key"]]
        got = {"J": row["J"], "F": row["F"], "JF": row["J&F"], "A": row["A"], "R": row["R"], "type_id": row["type_id"]}
        assert got == want
    assert res.counts["official"] == 2 and set(res.details["failures"]) == {"goat_0", "goat_1"}


# ---------------------------------------------------------------------------------------------- DAVIS


def _check_davis(res, exp, order):
    assert res.scale == "percent" and res.details["official"]["scale"] == "fraction"
    assert [r["key"] for r in res.per_sample] == order
    printed = res.details["official"]["values"]["per_sequence"]  # the per-sequence table, as printed
    assert list(printed) == order
    for row in res.per_sample:
        # refbench's id (as in {seq: {obj_id: ...}} predictions) first; the official name <seq>_<obj> beside it
        assert list(row)[:2] == ["sample_id", "key"] and row["sample_id"] == f"{row['video']}/{row['gt_object']}"
        assert row["key"] == f"{row['video']}_{row['gt_object']}"
        want = exp["per_object"][row["key"]]
        assert printed[row["key"]] == {"J-Mean": want["J-Mean"], "F-Mean": want["F-Mean"]}
        for col in ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"):
            assert row[col] == want[col] * 100, (row["key"], col)


def test_davis_semi_matches_golden(shared_data):
    gold = shared_data / "davis_osvos13"
    exp = json.loads((gold / "expected_semi.json").read_text())
    res = evaluate_video(dataset_card("davis17_val"), DavisLoader(gold), gold / "predictions" / "osvos")
    _check_davis(res, exp, exp["object_order"])
    assert res.details["official"]["values"]["global"] == exp["global"]
    g = exp["global"]
    assert res.metrics["J&F"] == g["J&F-Mean"] * 100 and res.metrics["J-Decay"] == g["J-Decay"] * 100
    assert res.counts["objects"] == 13 and res.counts["scored"] == 13


def test_davis_semi_frame_path_and_stacked_path_agree(shared_data, monkeypatch):
    """On CPU the semi-supervised eval packs each decoded frame (no (T, H, W) stacks); with that path off it
    stacks the frames; both give the same rows. The golden test above checks the first against the official
    values."""
    import refbench.metrics.davis as davis_mod

    gold = shared_data / "davis_osvos13"
    if not gold.is_dir():
        pytest.skip(f"{gold} not found")
    calls: list[str] = []
    for name in ("evaluate_semi_supervised", "evaluate_semi_supervised_frames"):
        fn = getattr(davis_mod, name)
        monkeypatch.setattr(davis_mod, name, lambda *a, _fn=fn, _n=name, **k: calls.append(_n) or _fn(*a, **k))
    fast = evaluate_video(dataset_card("davis17_val"), DavisLoader(gold), gold / "predictions" / "osvos", workers=1)
    assert set(calls) == {"evaluate_semi_supervised_frames"}
    calls.clear()
    monkeypatch.setattr(davis_mod, "_NUMPY_ON_CPU", False)
    slow = evaluate_video(dataset_card("davis17_val"), DavisLoader(gold), gold / "predictions" / "osvos", workers=1)
    assert set(calls) == {"evaluate_semi_supervised"}
    assert fast.per_sample == slow.per_sample and fast.metrics == slow.metrics


def test_davis_unsup_subset_matches_golden(shared_data, tmp_path):
    from refbench.metrics.davis import GLOBAL_COLUMNS

    gold = shared_data / "davis_osvos13"
    exp = json.loads((gold / "expected_unsup.json").read_text())
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("\n".join(DAVIS_UNSUP_SUBSET) + "\n")
    for d in ("Annotations", "Annotations_unsupervised"):
        (tmp_path / d).symlink_to(gold / d, target_is_directory=True)
    pred = tmp_path / "rvos"
    pred.mkdir()
    for s in DAVIS_UNSUP_SUBSET:
        (pred / s).symlink_to(gold / "predictions" / "rvos" / s, target_is_directory=True)
    res = evaluate_video(None, DavisLoader(tmp_path), pred, protocol="davis_unsup")
    order = [k for k in exp["object_order"] if k.rsplit("_", 1)[0] in DAVIS_UNSUP_SUBSET]
    _check_davis(res, exp, order)
    for row in res.per_sample:
        hm = exp["hungarian_match"][row["key"]]
        assert (row["proposal"], row["gt_object"]) == (hm["proposal_id"], hm["gt_object_id"])
    # global over the subset = the official formula on the expected per-object rows
    rows = [exp["per_object"][k] for k in order]
    cols = {c: float(np.mean([r[c] for r in rows])) for c in GLOBAL_COLUMNS if c != "J&F-Mean"}
    assert res.details["official"]["values"]["global"] == {"J&F-Mean": (cols["J-Mean"] + cols["F-Mean"]) / 2, **cols}


def test_mevis_processes_equal_one_process(mevis, tmp_path):
    """Scoring on 2 worker processes (folder and zip: the zip is reopened in each worker) gives the same rows."""
    one = evaluate_video(mevis["card"], mevis["loader"], mevis["pred"], missing="official", workers=1)
    zpath = tmp_path / "pred.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(mevis["pred"].rglob("*.png")):
            zf.write(p, p.relative_to(mevis["pred"]).as_posix())
    for path in (mevis["pred"], zpath):
        two = evaluate_video(mevis["card"], mevis["loader"], path, missing="official", workers=2)
        assert two.per_sample == one.per_sample and two.metrics == one.metrics
