"""RefCOCO / ReasonSeg readers and ground-truth builders (refbench.data.refer)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refbench.data.refer import (
    ReasonSegSample,
    ReferData,
    RefSentence,
    load_instances,
    load_reason_seg,
    load_refs,
    official_image_order,
    read_reason_seg_json,
    reason_seg_mask,
    sa2va_rle_roundtrip,
    segmentation_to_mask,
    select_refs,
)

GOLDEN = "refcoco_golden"
# pycocotools' Cython RLE objects predate numpy 2's copy keyword; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def root(shared_data: Path) -> Path:
    path = shared_data / GOLDEN
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def refer(root: Path) -> ReferData:
    return ReferData.load(root, "refcoco")


@pytest.fixture(scope="module")
def expected(root: Path) -> dict:
    return json.loads((root / "expected.json").read_text())


# ----------------------------------------------------------------------------------------------
# split selection (REFER getRefIds rules)
# ----------------------------------------------------------------------------------------------


def _refs(*splits: str) -> list[dict]:
    return [{"ref_id": k, "split": s} for k, s in enumerate(splits)]


def test_select_refs_rules() -> None:
    refs = _refs("train", "val", "testA", "testB", "testAB", "test", "val")
    ids = lambda split: [r["ref_id"] for r in select_refs(refs, split)]  # noqa: E731
    assert ids("val") == [1, 6]
    assert ids("train") == [0]
    assert ids("testA") == [2, 4]  # contains 'A': testAB counts
    assert ids("testB") == [3, 4]
    assert ids("testAB") == [4]  # equality
    assert ids("test") == [2, 3, 4, 5]  # contains 'test' (refcocog umd: test)
    with pytest.raises(ValueError, match="unknown split"):
        select_refs(refs, "validation")


def test_official_image_order_is_list_of_set() -> None:
    ids = (581857, 3, 9, 3, 200000, 17, 9)
    order = official_image_order([{"image_id": i} for i in ids])
    assert order == list(set(ids))  # REFER getImgIds: list(set(...)), not sorted, not first-seen
    assert sorted(order) == sorted(set(ids))


# ----------------------------------------------------------------------------------------------
# RefCOCO golden files
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split,n_images,n_sentences", [("val", 4, 11), ("testA", 3, 5), ("testB", 3, 5)])
def test_refcoco_splits(refer: ReferData, expected: dict, split: str, n_images: int, n_sentences: int) -> None:
    sents = refer.sentences(split)
    exp = expected["refcoco_unc"][split]
    assert len(sents) == n_sentences == exp["n_sentences"]
    assert refer.image_order(split) == exp["image_order"]
    assert len(refer.image_order(split)) == n_images
    assert sorted(s.sent_id for s in sents) == sorted(int(k) for k in exp["per_sentence"])
    # Images in official order, sentences grouped by image.
    seen = [s.image_id for s in sents]
    assert sorted(set(seen), key=seen.index) == exp["image_order"]
    for s in sents:
        img = refer.imgs[s.image_id]
        assert (s.height, s.width, s.file_name) == (img["height"], img["width"], img["file_name"])


def test_refcoco_sentence_fields(refer: ReferData) -> None:
    first = refer.sentences("val")[:2]
    assert first[0] == RefSentence(1301, 5001, 101, 9000001, "man on left", "COCO_train2014_000009000001.jpg", 480, 640)
    assert first[1].sentence == "guy in red shirt"
    odd = RefSentence(1, 1, 1, 1, "  The Man ", "x.jpg", 1, 1)
    assert odd.lisa_text == "the man"


def test_refcoco_split_errors(refer: ReferData, root: Path) -> None:
    with pytest.raises(ValueError, match="selects no refs"):
        refer.sentences("testC")
    with pytest.raises(ValueError, match="unknown split"):
        refer.sentences("minival")
    with pytest.raises(FileNotFoundError, match=r"refs\(umd\)\.p"):
        ReferData.load(root, "refcoco", "umd")
    with pytest.raises(FileNotFoundError, match="refs file not found"):
        ReferData.load(root, "refcocog")  # default splitBy umd
    with pytest.raises(ValueError, match="no default split_by"):
        ReferData.load(root, "phrasecut")


def test_gt_masks_lisa_style(refer: ReferData) -> None:
    by_ann = {s.ann_id: s for split in ("val", "testA", "testB") for s in refer.sentences(split)}
    empty = refer.gt_mask(by_ann[104])
    assert empty.dtype == np.uint8 and empty.shape == (375, 500) and not empty.any()
    overlap = refer.gt_mask(by_ann[102])
    assert overlap.dtype == np.uint8 and overlap.max() == 2 and set(np.unique(overlap)) == {0, 1, 2}
    disjoint = refer.gt_mask(by_ann[114])
    assert set(np.unique(disjoint)) == {0, 1}
    for ann_id, s in by_ann.items():
        lisa = refer.gt_mask(s, "lisa")
        assert lisa.shape == (s.height, s.width)
        assert np.array_equal(refer.gt_mask(s, "binary"), (lisa > 0).astype(np.uint8))
        same = np.array_equal(refer.gt_mask(s, "sa2va"), lisa)
        assert same == (ann_id != 102), ann_id  # only the overlap of ann 102 corrupts Sa2VA's RLE step
    with pytest.raises(ValueError, match="unknown gt_style"):
        refer.gt_mask(by_ann[101], "glamm")  # type: ignore[arg-type]


def test_gt_mask_matches_pycocotools_directly(refer: ReferData) -> None:
    from pycocotools import mask as mask_utils

    s = next(x for x in refer.sentences("val") if x.ann_id == 102)
    seg = refer.anns[102]["segmentation"]
    parts = mask_utils.decode(mask_utils.frPyObjects(seg, s.height, s.width))
    assert np.array_equal(refer.gt_mask(s), parts.sum(axis=2).astype(np.uint8))


# ----------------------------------------------------------------------------------------------
# masks from segmentations
# ----------------------------------------------------------------------------------------------


def test_segmentation_rle_forms_agree() -> None:
    from pycocotools import mask as mask_utils

    h, w = 97, 131
    polys = [[10, 10, 60, 12, 55, 70, 12, 50], [40, 30, 120, 30, 120, 90, 40, 90]]
    from_poly = segmentation_to_mask(polys, h, w)
    assert from_poly.max() == 2
    rles = mask_utils.frPyObjects(polys, h, w)
    as_str = [{"size": r["size"], "counts": r["counts"].decode()} for r in rles]
    assert np.array_equal(segmentation_to_mask(rles, h, w), from_poly)
    assert np.array_equal(segmentation_to_mask(as_str, h, w), from_poly)
    single = segmentation_to_mask(as_str[0], h, w)  # one RLE dict
    assert np.array_equal(single, segmentation_to_mask([polys[0]], h, w))
    dense = np.asfortranarray(single)
    runs, last, count = [], 0, 0
    for v in dense.ravel(order="F"):
        if v != last:
            runs.append(count)
            last, count = v, 0
        count += 1
    runs.append(count)
    uncompressed = {"size": [h, w], "counts": runs}
    assert np.array_equal(segmentation_to_mask([uncompressed], h, w), single)
    assert not segmentation_to_mask([], h, w).any()
    with pytest.raises(ValueError, match="differs from the frame size"):
        segmentation_to_mask(rles, h + 1, w)
    with pytest.raises(ValueError, match="neither a polygon nor an RLE"):
        segmentation_to_mask([7], h, w)


def test_sa2va_rle_roundtrip_parity_flip() -> None:
    row = np.array([[0, 1, 2, 0, 0, 1]], dtype=np.uint8)
    # Runs 1,1,1,2,1 (a new run at each change of value) decode as 0,1,0,1,0 alternately.
    assert sa2va_rle_roundtrip(row).tolist() == [[0, 1, 0, 1, 1, 0]]
    binary = (np.random.default_rng(0).random((13, 7)) < 0.5).astype(np.uint8)
    assert np.array_equal(sa2va_rle_roundtrip(binary), binary)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        sa2va_rle_roundtrip(np.zeros((2, 2, 2), np.uint8))


# ----------------------------------------------------------------------------------------------
# ReasonSeg
# ----------------------------------------------------------------------------------------------


def test_reason_seg_loading(root: Path, expected: dict) -> None:
    samples = load_reason_seg(root / "reason_seg" / "ReasonSeg" / "val")
    assert [s.name for s in samples] == expected["reason_seg_val"]["image_order"]
    first = samples[0]
    assert isinstance(first, ReasonSegSample)
    assert first.text == first.texts[0] and len(first.texts) == 2 and first.is_sentence
    assert first.image_file == "rs_0001.jpg"
    assert (first.height, first.width) == (480, 640)
    sizes = {s.name: (s.height, s.width) for s in samples}
    assert sizes["rs_0003"] == (855, 481) and sizes["rs_0004"] == (97, 131)
    assert [s.is_sentence for s in samples] == [True, False, True, False]


def test_reason_seg_masks(root: Path) -> None:
    folder = root / "reason_seg" / "ReasonSeg" / "val"
    masks = {p.stem: reason_seg_mask(p) for p in sorted(folder.glob("*.json"))}
    for name, m in masks.items():
        assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1, 255}, name
    # rs_0001: the "flag" triangle at the corner is dropped; the ignore square is drawn over part of the target.
    assert masks["rs_0001"][5, 30] == 0 and masks["rs_0001"].shape == (480, 640)
    assert masks["rs_0001"][300, 300] == 255 and masks["rs_0001"][150, 150] == 1
    # rs_0004: the ignore polygon covers the whole image but is larger, so the target drawn last stays 1.
    m4 = masks["rs_0004"]
    assert m4.shape == (97, 131) and m4[50, 60] == 1 and m4[5, 5] == 255
    assert np.array_equal(reason_seg_mask(folder / "rs_0004.json", image_size=(97, 131)), m4)


def _write_json(path: Path, shapes: list[dict], size: tuple[int, int] | None = (60, 80), **extra) -> Path:
    data = {"text": ["q"], "is_sentence": False, "shapes": shapes, **extra}
    if size is not None:
        data["imageHeight"], data["imageWidth"] = size
    path.write_text(json.dumps(data))
    return path


def _square(label: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "shape_type": "polygon"}


def test_reason_seg_draw_order_and_rules(tmp_path: Path) -> None:
    import cv2

    shapes = [
        _square("Ignore_region", 30, 20, 40, 30),  # small ignore inside the target: drawn last, stays 255
        _square("target", 10.9, 5.9, 70.2, 50.7),  # float points are truncated to int32
        _square("FLAG", 0, 0, 79, 59),  # dropped, whatever the case
    ]
    m = reason_seg_mask(_write_json(tmp_path / "a.json", shapes))
    ref = np.zeros((60, 80), np.uint8)
    for value, (x0, y0, x1, y1) in [(1, (10, 5, 70, 50)), (255, (30, 20, 40, 30))]:
        pts = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], np.int32)
        cv2.polylines(ref, pts, True, value, 1)
        cv2.fillPoly(ref, pts, value)
    assert np.array_equal(m, ref)
    assert m[0, 0] == 0 and m[25, 35] == 255 and m[6, 11] == 1
    assert not reason_seg_mask(_write_json(tmp_path / "b.json", [shapes[2]])).any()


def test_reason_seg_size_sources(tmp_path: Path) -> None:
    import cv2

    shapes = [_square("target", 2, 2, 9, 9)]
    no_size = _write_json(tmp_path / "c.json", shapes, size=None)
    with pytest.raises(ValueError, match="no imageHeight/imageWidth"):
        reason_seg_mask(no_size)
    assert reason_seg_mask(no_size, image_size=(12, 14)).shape == (12, 14)
    cv2.imwrite(str(tmp_path / "c.jpg"), np.zeros((21, 17, 3), np.uint8))
    assert read_reason_seg_json(no_size).height is None
    assert reason_seg_mask(no_size).shape == (21, 17)


def test_reason_seg_encoding_and_errors(tmp_path: Path) -> None:
    body = '{"text": ["caf\xe9 chair"], "is_sentence": true, "imageHeight": 4, "imageWidth": 5, "shapes": []}'
    path = tmp_path / "d.json"
    path.write_bytes(body.encode("cp1252"))
    sample = read_reason_seg_json(path)
    assert sample.text == "caf\xe9 chair" and sample.is_sentence
    assert reason_seg_mask(sample).shape == (4, 5)
    (tmp_path / "e.json").write_text('{"text": [], "is_sentence": false, "shapes": []}')
    with pytest.raises(ValueError, match="'text' is empty"):
        read_reason_seg_json(tmp_path / "e.json")
    (tmp_path / "f.json").write_text('{"text": ["x"], "shapes": []}')
    with pytest.raises(ValueError, match="no 'is_sentence'"):
        read_reason_seg_json(tmp_path / "f.json")
    bad = _write_json(tmp_path / "g.json", [{"label": "target", "points": [1, 2, 3]}])
    with pytest.raises(ValueError, match="g.json: shape 0"):
        reason_seg_mask(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_reason_seg(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no ReasonSeg"):
        load_reason_seg(empty)


# ----------------------------------------------------------------------------------------------
# raw readers
# ----------------------------------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_load_refs_plain_only(tmp_path: Path, root: Path) -> None:
    refs = load_refs(root / "refcoco" / "refs(unc).p")
    assert len(refs) == 14 and refs[0]["ref_id"] == 5001
    evil = tmp_path / "refs(unc).p"
    evil.write_bytes(pickle.dumps([{"ref_id": 1, "x": _Evil()}], protocol=2))
    with pytest.raises(ValueError, match="refuses to load object"):
        load_refs(evil)
    partial = tmp_path / "partial.p"
    partial.write_bytes(pickle.dumps([{"ref_id": 1}], protocol=2))
    with pytest.raises(ValueError, match="has no 'ann_id'"):
        load_refs(partial)


def test_load_instances_errors(tmp_path: Path) -> None:
    (tmp_path / "i.json").write_text('{"images": []}')
    with pytest.raises(ValueError, match="no 'annotations'"):
        load_instances(tmp_path / "i.json")
    (tmp_path / "j.json").write_text("{")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_instances(tmp_path / "j.json")
    with pytest.raises(FileNotFoundError):
        load_instances(tmp_path / "none.json")


def test_refer_data_checks_ids() -> None:
    instances = {"images": [{"id": 1, "height": 2, "width": 2, "file_name": "a.jpg"}], "annotations": []}
    refs = [{"ref_id": 9, "ann_id": 5, "image_id": 1, "split": "val", "sentences": []}]
    with pytest.raises(ValueError, match="unknown annotation 5"):
        ReferData(refs, instances)


def test_import_is_light() -> None:
    code = "import sys, refbench.data.refer; print(any(m in sys.modules for m in ('cv2', 'pycocotools', 'torch')))"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "False"
