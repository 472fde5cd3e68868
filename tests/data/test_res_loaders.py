"""RefCOCO and ReasonSeg loaders (refbench.data.res) on shared/data/refcoco_golden."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from refbench.data.base import DatasetError, ImageExpression
from refbench.data.refer import ReferData, load_reason_seg, reason_seg_mask
from refbench.data.res import EVAL_SPLITS, ReasonSegLoader, RefCOCOLoader

GOLDEN = "refcoco_golden"
# pycocotools' Cython RLE objects predate numpy 2's copy keyword; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _damage(problems: list[str]) -> list[str]:
    return [p for p in problems if not p.startswith("note:")]


@pytest.fixture(scope="module")
def root(shared_data: Path) -> Path:
    path = shared_data / GOLDEN
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def expected(root: Path) -> dict:
    return json.loads((root / "expected.json").read_text())


@pytest.fixture()
def golden_copy(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / GOLDEN
    shutil.copytree(root / "refcoco", dst / "refcoco")
    shutil.copytree(root / "reason_seg", dst / "reason_seg")
    return dst


# ----------------------------------------------------------------------------------------------
# RefCOCO, golden data
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split,n_sent,n_img", [("val", 11, 4), ("testA", 5, 3), ("testB", 5, 3)])
def test_refcoco_splits(root: Path, expected: dict, split: str, n_sent: int, n_img: int) -> None:
    loader = RefCOCOLoader(root, "refcoco", split)
    samples = loader.samples()
    assert len(samples) == n_sent
    assert len({s.image_id for s in samples}) == n_img
    exp = expected["refcoco_unc"][split]
    # official scoring order: images in list(set(...)) order, sentences within
    sents = ReferData.load(root, "refcoco").sentences(split)
    assert [s.sample_id for s in samples] == [str(s.sent_id) for s in sents]
    assert sorted(s.sample_id for s in samples) == sorted(exp["per_sentence"])
    order = [int(s.image_id) for s in samples]
    assert sorted(set(order), key=order.index) == exp["image_order"]
    groups = [s.extra["image_group"] for s in samples]
    assert groups == sorted(groups) and groups[0] == 0 and groups[-1] == n_img - 1
    assert [exp["image_order"][g] for g in groups] == order
    for s, ref in zip(samples, sents):
        assert (s.extra["ann_id"], s.extra["ref_id"], s.extra["sent_id"]) == (ref.ann_id, ref.ref_id, ref.sent_id)
        assert (s.text, s.extra["lisa_text"], s.file_name) == (ref.sentence, ref.lisa_text, ref.file_name)
        assert (s.height, s.width) == (ref.height, ref.width)
    assert _damage(loader.check({"sentences": n_sent, "images": n_img}, decode_masks=True)) == []


@pytest.mark.parametrize("split", ["val", "testA", "testB"])
@pytest.mark.parametrize("style", ["lisa", "sa2va", "binary"])
def test_refcoco_gt_equals_refer(root: Path, split: str, style: str) -> None:
    loader = RefCOCOLoader(root, "refcoco", split)
    refer = ReferData.load(root, "refcoco")
    for sample, sent in zip(loader.samples(), refer.sentences(split)):
        mask = loader.gt_mask(sample, style)
        assert mask.dtype == np.uint8 and mask.shape == (sample.height, sample.width)
        np.testing.assert_array_equal(mask, refer.gt_mask(sent, style))
    assert loader.gt_mask(loader.samples()[0].sample_id).dtype == np.uint8


def test_refcoco_gt_quirks_survive(root: Path) -> None:
    """Ann 102's overlapping parts keep the value 2 in LISA style; ann 104's GT is empty."""
    loader = RefCOCOLoader(root, "refcoco", "val")
    by_ann = {s.extra["ann_id"]: s for s in loader.samples()}
    assert loader.gt_mask(by_ann[102]).max() == 2
    assert loader.gt_mask(by_ann[102], "binary").max() == 1
    assert loader.gt_mask(by_ann[104]).sum() == 0
    problems = loader.check()
    assert len(problems) == 1 and problems[0].startswith("note:") and "[104]" in problems[0]


def test_refcoco_split_validation(root: Path) -> None:
    msg = r"refs\(unc\).p: unknown split 'test' for refcoco \(unc\); valid: val, testA, testB, train"
    with pytest.raises(DatasetError, match=msg):
        RefCOCOLoader(root, "refcoco", "test")
    with pytest.raises(DatasetError, match=r"unknown split 'testA' for refcocog \(umd\); valid: val, test, train"):
        RefCOCOLoader(root, "refcocog", "testA")
    with pytest.raises(DatasetError, match=r"refcoco\+/refs\(unc\).p: unknown split 'testC'"):
        RefCOCOLoader(root, "refcoco+", "testC")
    assert RefCOCOLoader(root, "refcoco", "train").split == "train"  # read by the blind prior
    with pytest.raises(DatasetError, match="unknown dataset 'refclef'; valid: refcoco, refcoco\\+, refcocog"):
        RefCOCOLoader(root, "refclef", "val")
    with pytest.raises(DatasetError, match="split_by 'google' is not scored for refcocog; valid: umd"):
        RefCOCOLoader(root, "refcocog", "val", split_by="google")
    assert EVAL_SPLITS[("refcocog", "umd")] == ("val", "test", "train")
    assert RefCOCOLoader(root, "refcocog", "test").refs_path == root / "refcocog" / "refs(umd).p"


def test_refcoco_missing_and_bad_files(golden_copy: Path, root: Path) -> None:
    with pytest.raises(DatasetError, match=r"refcoco\+/refs\(unc\).p: refs file not found"):
        RefCOCOLoader(golden_copy, "refcoco+", "val").samples()
    refs_path = golden_copy / "refcoco" / "refs(unc).p"
    refs_path.write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"refs\(unc\).p: not a readable refs pickle"):
        RefCOCOLoader(golden_copy, "refcoco", "val").samples()
    with pytest.raises(DatasetError, match=r"refs\(unc\).p"):
        RefCOCOLoader(golden_copy, "refcoco", "val").check()
    shutil.copyfile(root / "refcoco" / "refs(unc).p", refs_path)
    inst = golden_copy / "refcoco" / "instances.json"
    inst.write_text("{bad json")
    with pytest.raises(DatasetError, match="instances.json"):
        RefCOCOLoader(golden_copy, "refcoco", "val").samples()


def test_refcoco_empty_split(golden_copy: Path) -> None:
    refs_path = golden_copy / "refcoco" / "refs(unc).p"
    refs = pickle.loads(refs_path.read_bytes(), encoding="latin1")
    refs_path.write_bytes(pickle.dumps([r for r in refs if r["split"] != "testB"], protocol=2))
    with pytest.raises(DatasetError, match=r"refs\(unc\).p: split 'testB' selects no refs"):
        RefCOCOLoader(golden_copy, "refcoco", "testB").samples()


def test_refcoco_check_seeded_faults(golden_copy: Path) -> None:
    refs_path = golden_copy / "refcoco" / "refs(unc).p"
    inst_path = golden_copy / "refcoco" / "instances.json"
    refs = pickle.loads(refs_path.read_bytes(), encoding="latin1")
    inst = json.loads(inst_path.read_text())
    val = [r for r in refs if r["split"] == "val"]
    val[0]["sent_ids"] = [9999]
    val[1]["sentences"][0]["sent"] = "  "
    val[2]["sentences"][0]["sent_id"] = val[1]["sentences"][-1]["sent_id"]
    ann = next(a for a in inst["annotations"] if a["id"] == val[0]["ann_id"])
    ann["image_id"] = 1
    ann2 = next(a for a in inst["annotations"] if a["id"] == val[1]["ann_id"])
    ann2["segmentation"] = [[1, 2, 3]]  # not a polygon pycocotools accepts
    refs_path.write_bytes(pickle.dumps(refs, protocol=2))
    inst_path.write_text(json.dumps(inst))
    problems = RefCOCOLoader(golden_copy, "refcoco", "val").check({"sentences": 12}, decode_masks=True)
    damage = _damage(problems)
    assert any(f"ref {val[0]['ref_id']} sent_ids [9999]" in p for p in damage)
    assert any(f"sentence {val[1]['sentences'][0]['sent_id']} (ref {val[1]['ref_id']}) is empty" in p for p in damage)
    assert any("appears twice in val" in p for p in damage)
    assert any(f"annotation {val[0]['ann_id']} is on image 1" in p for p in damage)
    assert any("GT mask does not decode" in p for p in damage)
    loader = RefCOCOLoader(golden_copy, "refcoco", "val")
    with pytest.raises(DatasetError, match=rf"instances.json: sentence \d+ \(ann {val[1]['ann_id']}\)"):
        [loader.gt_mask(s) for s in loader.samples()]
    assert any("sentences count 11 != expected 12" in p for p in damage)
    assert all(str(golden_copy) in p for p in damage)


def test_refcoco_images_optional(golden_copy: Path) -> None:
    loader = RefCOCOLoader(golden_copy, "refcoco", "testA")
    samples = loader.samples()
    lisa_root = golden_copy / "images" / "mscoco" / "images" / "train2014"  # LISA's layout, the default
    assert loader.image_path(samples[0]) == lisa_root / samples[0].file_name
    assert loader.check() == []  # no image folder: images not required
    image_root = golden_copy / "images" / "train2014"
    image_root.mkdir(parents=True)
    loader = RefCOCOLoader(golden_copy, "refcoco", "testA")  # only the flat folder exists: it is used
    assert loader.image_path(samples[0]) == image_root / samples[0].file_name
    (image_root / samples[0].file_name).write_bytes(b"")
    problems = loader.check()
    assert len(problems) == 1 and "2 images of testA missing" in problems[0]


def test_refcoco_foreign_sample(root: Path) -> None:
    loader = RefCOCOLoader(root, "refcoco", "testA")
    other = RefCOCOLoader(root, "refcoco", "val").samples()[0]
    with pytest.raises(DatasetError, match="sentence '1301' is not in refcoco testA"):
        loader.gt_mask(other)
    with pytest.raises(ValueError, match="gt_style"):
        loader.gt_mask(loader.samples()[0], "nope")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# ReasonSeg
# ----------------------------------------------------------------------------------------------


def test_reason_seg_val(root: Path, expected: dict) -> None:
    rs_root = root / "reason_seg" / "ReasonSeg"
    loader = ReasonSegLoader(rs_root, "val")
    samples = loader.samples()
    assert len(samples) == 4
    assert [s.sample_id for s in samples] == expected["reason_seg_val"]["image_order"]
    raw = load_reason_seg(rs_root / "val")
    for k, (s, r) in enumerate(zip(samples, raw)):
        assert isinstance(s, ImageExpression)
        assert (s.text, s.file_name, s.height, s.width) == (r.texts[0], r.name + ".jpg", r.height, r.width)
        assert s.extra["is_sentence"] == r.is_sentence and s.extra["image_group"] == k
        mask = loader.gt_mask(s)
        np.testing.assert_array_equal(mask, reason_seg_mask(r))
        assert mask.shape == (s.height, s.width) and mask.dtype == np.uint8
    assert {int(v) for v in np.unique(loader.gt_mask("rs_0004"))} <= {1, 255}
    assert loader.check({"samples": 4}) == []
    assert loader.image_path(samples[0]) == rs_root / "val" / "rs_0001.jpg"


def test_reason_seg_split_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown ReasonSeg split 'testA'; valid: train, val, test"):
        ReasonSegLoader(root / "reason_seg" / "ReasonSeg", "testA")
    with pytest.raises(DatasetError, match=r"test: ReasonSeg split folder not found"):
        ReasonSegLoader(root / "reason_seg" / "ReasonSeg", "test").samples()
    (tmp_path / "val").mkdir()
    with pytest.raises(DatasetError, match="no ReasonSeg"):
        ReasonSegLoader(tmp_path, "val").check()
    with pytest.raises(DatasetError, match="'rs_9' is not in ReasonSeg val"):
        ReasonSegLoader(root / "reason_seg" / "ReasonSeg", "val").gt_mask("rs_9")


def test_reason_seg_seeded_faults(golden_copy: Path) -> None:
    folder = golden_copy / "reason_seg" / "ReasonSeg" / "val"
    bad = folder / "rs_0002.json"
    bad.write_text('{"text": ["x"], "shapes": [')
    loader = ReasonSegLoader(golden_copy / "reason_seg" / "ReasonSeg", "val")
    with pytest.raises(DatasetError, match=r"rs_0002.json:1: invalid JSON"):
        loader.samples()
    data = json.loads((folder / "rs_0003.json").read_text())
    del data["imageHeight"]
    (folder / "rs_0003.json").write_text(json.dumps(data))
    data = json.loads((folder / "rs_0001.json").read_text())
    data["text"] = []
    (folder / "rs_0001.json").write_text(json.dumps(data))
    data = json.loads((folder / "rs_0004.json").read_text())
    for shape in data["shapes"]:
        shape["label"] = "flag"
    (folder / "rs_0004.json").write_text(json.dumps(data))
    (folder / "rs_0005.json").write_text(json.dumps({"text": ["t"], "is_sentence": False, "imageHeight": 5,
                                                     "imageWidth": 5, "shapes": [{"label": "target", "points": [1]}]}))
    problems = loader.check({"samples": 4})
    damage = _damage(problems)
    assert any(str(bad) in p and "invalid JSON" in p for p in damage)
    assert any("rs_0001.json" in p and "'text' is empty" in p for p in damage)
    assert any("rs_0003.json: no imageHeight/imageWidth and no image rs_0003.jpg" in p for p in damage)
    assert any("rs_0005.json: GT mask does not rasterise" in p for p in damage)
    assert any("samples count 5 != expected 4" in p for p in damage)
    assert any(p.startswith("note:") and "rs_0004.json" in p for p in problems)


def test_reason_seg_size_from_image(golden_copy: Path) -> None:
    from PIL import Image

    folder = golden_copy / "reason_seg" / "ReasonSeg" / "val"
    data = json.loads((folder / "rs_0003.json").read_text())
    h, w = data.pop("imageHeight"), data.pop("imageWidth")
    (folder / "rs_0003.json").write_text(json.dumps(data))
    Image.new("RGB", (w, h)).save(folder / "rs_0003.jpg")
    loader = ReasonSegLoader(golden_copy / "reason_seg" / "ReasonSeg", "val")
    sample = loader.samples()[2]
    assert (sample.sample_id, sample.height, sample.width) == ("rs_0003", h, w)
    np.testing.assert_array_equal(loader.gt_mask(sample), reason_seg_mask(folder / "rs_0003.json"))
    # EXIF orientation 6 (rotate 90): cv2.imread returns the rotated shape
    img = Image.new("RGB", (h, w))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(folder / "rs_0003.jpg", exif=exif)
    sample = ReasonSegLoader(golden_copy / "reason_seg" / "ReasonSeg", "val").samples()[2]
    assert (sample.height, sample.width) == (h, w)
