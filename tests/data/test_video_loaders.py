"""Video dataset loaders (refbench.data.mevis / refytvos / davis) on the golden data and on synthetic roots."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from refbench.data.base import DatasetError, VideoExpression, VideoSequence
from refbench.data.davis import DavisLoader, RefDavisLoader
from refbench.data.mevis import MevisLoader, RevosLoader
from refbench.data.refytvos import RefYTVOSLoader, valid_video_ids

# pycocotools' Cython RLE objects predate numpy 2's copy keyword; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _golden(shared_data: Path, name: str) -> Path:
    path = shared_data / name
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


def _independent_union(meta_path: Path, mask_path: Path, video: str, exp_id: str) -> np.ndarray:
    """The official construction, written independently: zeros, then += decode(rle) per anno id and frame."""
    meta = json.loads(meta_path.read_text())["videos"][video]
    masks = json.loads(mask_path.read_text())
    aids = [str(a) for a in meta["expressions"][exp_id]["anno_id"]]
    sizes = [tuple(r["size"]) for v in meta["expressions"].values() for a in v["anno_id"] for r in masks[str(a)] if r]
    out = np.zeros((len(meta["frames"]), *sizes[0]), dtype=np.uint8)
    for aid in aids:
        for t, rle in enumerate(masks[aid]):
            if rle:
                out[t] += mask_utils.decode(rle)
    return out


def _rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(x) for x in r["size"]], "counts": r["counts"].decode("ascii")}


def _save_palette(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [255] * (256 * 3 - 12))
    im.save(path)


def _save_jpg(path: Path, h: int = 8, w: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h)).save(path)


def _any(problems: list[str], *needles: str) -> bool:
    return any(all(n in p for n in needles) for p in problems)


# ------------------------------------------------------------------------------------------------
# MeViS on the golden valid_u files
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mevis_root(shared_data: Path, tmp_path_factory) -> Path:
    src = _golden(shared_data, "mevis_golden") / "valid_u"
    root = tmp_path_factory.mktemp("mevis")
    (root / "valid_u").mkdir()
    for name in ("meta_expressions.json", "mask_dict.json"):
        os.symlink(src / name, root / "valid_u" / name)
    return root


def test_mevis_golden_samples_in_meta_order(mevis_root: Path) -> None:
    meta = json.loads((mevis_root / "valid_u" / "meta_expressions.json").read_text())["videos"]
    want = [(v, e) for v, d in meta.items() for e in d["expressions"]]
    samples = MevisLoader(mevis_root, "valid_u").samples()
    assert [(s.video, s.exp_id) for s in samples] == want
    assert len(samples) == 15 and len(meta) == 6
    s = samples[1]
    assert s.key == "blackswan_1" and s.anno_ids == ("0", "1") and s.obj_ids == (0, 1)
    assert s.frames == tuple(meta["blackswan"]["frames"]) and s.text == meta["blackswan"]["expressions"]["1"]["exp"]


def test_mevis_golden_gt_equals_independent_decode(mevis_root: Path) -> None:
    loader = MevisLoader(mevis_root, "valid_u")
    base = mevis_root / "valid_u"
    for s in loader.samples():
        gt = loader.gt_masks(s)
        want = _independent_union(base / "meta_expressions.json", base / "mask_dict.json", s.video, s.exp_id)
        assert gt.dtype == np.uint8 and gt.shape == (len(s.frames), 480, 854)
        np.testing.assert_array_equal(gt, want, err_msg=s.key)
    by_key = {s.key: s for s in loader.samples()}
    assert loader.gt_masks(by_key["blackswan_1"]).max() == 2  # overlapping objects sum, as the official +=
    assert loader.gt_masks(by_key["dog_2"]).sum() == 0  # null in every frame: size taken from the video


def test_mevis_golden_check_and_frames(mevis_root: Path) -> None:
    loader = MevisLoader(mevis_root, "valid_u")
    assert loader.check(require_frames=False, expected={"videos": 6, "expressions": 15, "frames": 59}) == []
    problems = loader.check()  # no JPEGImages in the golden data
    assert len(problems) == 6 and all("frame folder missing" in p for p in problems)
    assert _any(loader.check(require_frames=False, expected={"expressions": 16}), "15 expressions, expected 16")
    s = loader.samples()[0]
    assert loader.frame_paths(s)[1] == mevis_root / "valid_u" / "JPEGImages" / "blackswan" / "00005.jpg"


def test_mevis_mask_dict_is_lazy(mevis_root: Path, tmp_path: Path) -> None:
    (tmp_path / "valid_u").mkdir()
    os.symlink(mevis_root / "valid_u" / "meta_expressions.json", tmp_path / "valid_u" / "meta_expressions.json")
    (tmp_path / "valid_u" / "mask_dict.json").write_text("{not json")
    loader = MevisLoader(tmp_path, "valid_u")
    assert len(loader.samples()) == 15  # the broken mask dict is never read here
    with pytest.raises(DatasetError, match="mask_dict.json"):
        loader.gt_masks(loader.samples()[0])


def test_mevis_valid_has_no_gt(mevis_root: Path, tmp_path: Path) -> None:
    (tmp_path / "valid").mkdir()
    os.symlink(mevis_root / "valid_u" / "meta_expressions.json", tmp_path / "valid" / "meta_expressions.json")
    loader = MevisLoader(tmp_path, "valid")
    assert not loader.has_gt and len(loader.samples()) == 15
    assert loader.check(require_frames=False) == []
    with pytest.raises(DatasetError, match="not public"):
        loader.gt_masks(loader.samples()[0])
    with pytest.raises(ValueError):
        MevisLoader(tmp_path, "test")


# ------------------------------------------------------------------------------------------------
# MeViS train: synthetic root, and seeded faults
# ------------------------------------------------------------------------------------------------


def _mevis_train(root: Path) -> Path:
    base = root / "train"
    frames = ["00000", "00001", "00002"]
    m0 = np.zeros((8, 10), np.uint8)
    m0[2:5, 3:7] = 1
    m1 = np.zeros((8, 10), np.uint8)
    m1[4:7, 5:9] = 1
    meta = {"videos": {"vidA": {"vid_id": 0, "frames": frames, "expressions": {
        "0": {"exp": "left thing", "obj_id": [0], "anno_id": [10]},
        "1": {"exp": "both things", "obj_id": [0, 1], "anno_id": [10, 11]}}}}}
    masks = {"10": [_rle(m0), None, _rle(m0)], "11": [_rle(m1), _rle(m1), None]}
    base.mkdir(parents=True)
    (base / "meta_expressions.json").write_text(json.dumps(meta))
    (base / "mask_dict.json").write_text(json.dumps(masks))
    for f in frames:
        _save_jpg(base / "JPEGImages" / "vidA" / f"{f}.jpg")
    return base


def test_mevis_train_synthetic(tmp_path: Path) -> None:
    _mevis_train(tmp_path)
    loader = MevisLoader(tmp_path, "train")
    assert loader.check(expected={"videos": 1, "expressions": 2, "frames": 3}) == []
    both = loader.samples()[1]
    gt = loader.gt_masks(both)
    assert gt.shape == (3, 8, 10) and gt[0].max() == 2  # objects overlap at rows 4, columns 5-6
    assert gt[0].sum() == 24 and (gt[1] == (gt[1] > 0)).all() and gt[1][4:7, 5:9].all() and gt[1].sum() == 12
    assert gt[2][2:5, 3:7].all() and gt[2].sum() == 12  # anno 11 is null in frame 2
    assert all(p.is_file() for p in loader.frame_paths(both))


def test_mevis_check_finds_seeded_faults(tmp_path: Path) -> None:
    base = _mevis_train(tmp_path)
    (base / "JPEGImages" / "vidA" / "00001.jpg").unlink()
    masks = json.loads((base / "mask_dict.json").read_text())
    del masks["11"]
    masks["10"].append(None)
    (base / "mask_dict.json").write_text(json.dumps(masks))
    problems = MevisLoader(tmp_path, "train").check()
    assert _any(problems, str(base / "JPEGImages" / "vidA" / "00001.jpg"), "frame missing")
    assert _any(problems, "mask_dict.json", "anno_id '11'", "missing")
    assert _any(problems, "mask_dict.json", "anno_id '10' has 4 RLE entries", "3 frames")
    with pytest.raises(DatasetError, match="4 RLE entries"):
        MevisLoader(tmp_path, "train").gt_masks(MevisLoader(tmp_path, "train").samples()[0])

    (base / "mask_dict.json").write_text("[1, 2")
    assert _any(MevisLoader(tmp_path, "train").check(), str(base / "mask_dict.json"), "invalid JSON")

    (base / "meta_expressions.json").write_text("{oops")
    problems = MevisLoader(tmp_path, "train").check()
    assert len(problems) == 1 and str(base / "meta_expressions.json") in problems[0]
    with pytest.raises(DatasetError, match="meta_expressions.json:1: invalid JSON"):
        MevisLoader(tmp_path, "train").samples()

    (base / "meta_expressions.json").unlink()
    assert _any(MevisLoader(tmp_path, "train").check(), "meta_expressions.json", "not found")


# ------------------------------------------------------------------------------------------------
# ReVOS
# ------------------------------------------------------------------------------------------------


def test_revos_golden(shared_data: Path) -> None:
    root = _golden(shared_data, "revos_golden")
    meta = json.loads((root / "meta_expressions_valid_.json").read_text())["videos"]
    fg_json = json.loads((root / "mask_dict_foreground.json").read_text())
    loader = RevosLoader(root)
    samples = loader.samples()
    assert [(s.video, s.exp_id) for s in samples] == [(v, e) for v, d in meta.items() for e in d["expressions"]]
    assert len(samples) == 15
    assert [s.type_id for s in samples] == [e["type_id"] for d in meta.values() for e in d["expressions"].values()]
    assert all(s.height == 480 and s.width == 854 for s in samples)
    assert loader.check(require_frames=False, expected={"videos": len(meta), "expressions": 15}) == []
    for s in samples:
        gt = loader.gt_masks(s)
        want = _independent_union(root / "meta_expressions_valid_.json", root / "mask_dict.json", s.video, s.exp_id)
        np.testing.assert_array_equal(gt, want, err_msg=s.key)
    for video in meta:
        fg = loader.foreground_masks(video)
        want = np.stack([mask_utils.decode(r) for r in fg_json[video]["masks_rle"]])
        np.testing.assert_array_equal(fg, want)
        for s in samples:
            if s.video == video:
                assert not np.any((loader.gt_masks(s) > 0) & (fg == 0))  # every target lies in the foreground
    assert loader.frame_paths(samples[6])[0] == root / "JPEGImages" / "car-roundabout" / "00003.jpg"


def test_revos_nested_names_and_faults(tmp_path: Path) -> None:
    m = np.zeros((6, 7), np.uint8)
    m[1:3, 1:4] = 1
    frames = ["00000", "00004"]
    meta = {"videos": {"UVO/all/abc": {"vid_id": 0, "frames": frames, "height": 6, "width": 7, "expressions": {
        "0": {"exp": "the cup", "obj_id": [0], "anno_id": [0], "type_id": 0},
        "1": {"exp": "nothing", "obj_id": [], "anno_id": [], "type_id": 2}}}}}
    (tmp_path / "meta_expressions_valid_.json").write_text(json.dumps(meta))
    (tmp_path / "mask_dict.json").write_text(json.dumps({"0": [_rle(m), None]}))
    (tmp_path / "mask_dict_foreground.json").write_text(json.dumps(
        {"UVO/all/abc": {"masks_rle": [_rle(m), _rle(m * 0)], "foreground_ratio": [0.14, 0.0]}}))
    loader = RevosLoader(tmp_path)
    s0, s1 = loader.samples()
    assert loader.frame_paths(s0)[1] == tmp_path / "JPEGImages" / "UVO" / "all" / "abc" / "00004.jpg"
    assert loader.gt_masks(s1).shape == (2, 6, 7) and loader.gt_masks(s1).sum() == 0  # size from meta
    assert loader.foreground_masks("UVO/all/abc").sum() == 6
    assert loader.check(require_frames=False) == []
    assert _any(loader.check(), str(tmp_path / "JPEGImages" / "UVO" / "all" / "abc"), "folder missing")

    (tmp_path / "mask_dict_foreground.json").write_text(json.dumps({}))
    assert _any(RevosLoader(tmp_path).check(require_frames=False), "mask_dict_foreground.json", "UVO/all/abc")

    meta["videos"]["../evil"] = meta["videos"].pop("UVO/all/abc")
    (tmp_path / "meta_expressions_valid_.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="not a valid relative name"):
        RevosLoader(tmp_path).samples()


# ------------------------------------------------------------------------------------------------
# Ref-YouTube-VOS
# ------------------------------------------------------------------------------------------------


def test_refytvos_valid_list_is_packaged(shared_data: Path) -> None:
    ids = valid_video_ids()
    assert len(ids) == 202 and len(set(ids)) == 202
    src = _golden(shared_data, "refytvos") / "valid_videos.txt"
    assert list(ids) == src.read_text().split()


def test_refytvos_golden_meta(shared_data: Path, tmp_path: Path) -> None:
    src = _golden(shared_data, "refytvos") / "meta_expressions.json"
    meta = json.loads(src.read_text())["videos"]
    flat = RefYTVOSLoader(src.parent)  # <root>/meta_expressions.json
    (tmp_path / "meta_expressions" / "valid").mkdir(parents=True)
    os.symlink(src, tmp_path / "meta_expressions" / "valid" / "meta_expressions.json")
    nested = RefYTVOSLoader(tmp_path)
    for loader in (flat, nested):
        samples = loader.samples()
        assert len({s.video for s in samples}) == 202 and len(samples) == 834
        assert loader.check(require_frames=False, expected={"videos": 202, "expressions": 834, "frames": 5486}) == []
    assert len(meta) == 507
    keep = set(valid_video_ids())
    want = [f"{v}_{e}" for v, d in meta.items() if v in keep for e in d["expressions"]]
    assert [s.key for s in nested.samples()] == want
    s = nested.samples()[0]
    assert s.frames[:2] == ("00000", "00005")
    assert nested.frame_paths(s)[0] == tmp_path / "valid" / "JPEGImages" / s.video / "00000.jpg"
    with pytest.raises(DatasetError, match="not public"):
        nested.gt_masks(s)
    assert len(nested.check()) == 202  # one missing frame folder per video


def test_refytvos_train_synthetic(tmp_path: Path) -> None:
    frames = ["00000", "00005"]
    meta = {"videos": {"v1": {"frames": frames, "expressions": {
        "0": {"exp": "a red car", "obj_id": "1"}, "1": {"exp": "a dog", "obj_id": "2"}}}}}
    (tmp_path / "meta_expressions" / "train").mkdir(parents=True)
    (tmp_path / "meta_expressions" / "train" / "meta_expressions.json").write_text(json.dumps(meta))
    idx = np.zeros((8, 10), np.uint8)
    idx[1:3, :4] = 1
    idx[5:, 6:] = 2
    for f in frames:
        _save_palette(tmp_path / "train" / "Annotations" / "v1" / f"{f}.png", idx)
        _save_jpg(tmp_path / "train" / "JPEGImages" / "v1" / f"{f}.jpg")
    loader = RefYTVOSLoader(tmp_path, "train")
    assert loader.check() == []
    car, dog = loader.samples()
    assert car.obj_ids == (1,) and dog.obj_ids == (2,)
    np.testing.assert_array_equal(loader.gt_masks(dog), np.stack([(idx == 2)] * 2).astype(np.uint8))
    (tmp_path / "train" / "Annotations" / "v1" / "00005.png").unlink()
    assert _any(loader.check(), str(tmp_path / "train" / "Annotations" / "v1" / "00005.png"), "annotation missing")
    with pytest.raises(DatasetError, match="00005.png"):
        loader.gt_masks(car)


# ------------------------------------------------------------------------------------------------
# DAVIS-2017 and MOSE
# ------------------------------------------------------------------------------------------------


def test_davis_golden(shared_data: Path) -> None:
    root = _golden(shared_data, "davis_osvos13")
    loader = DavisLoader(root, "val")
    seqs = loader.samples()
    assert [s.video for s in seqs] == (root / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert len(seqs) == 13 and sum(len(s.frames) for s in seqs) == 934
    assert loader.check(require_frames=False, expected={"videos": 13, "frames": 934}) == []
    assert _any(loader.check(), str(root / "JPEGImages" / "480p"), "image folder missing")
    s = seqs[0]
    gt = loader.gt_masks(s)
    assert gt.shape == (len(s.frames), 480, 854) and gt.dtype == np.uint8 and set(np.unique(gt)) == {0, 1}
    png = root / "Annotations" / "480p" / s.video / f"{s.frames[3]}.png"
    np.testing.assert_array_equal(gt[3], np.array(Image.open(png)))
    unsup = DavisLoader(root, "val", annotations="Annotations_unsupervised")
    np.testing.assert_array_equal(unsup.gt_masks(unsup.samples()[0]), gt)
    assert loader.frame_paths(s)[0] == root / "JPEGImages" / "480p" / s.video / "00000.jpg"


def test_davis_missing_imageset_and_faults(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="val.txt"):
        DavisLoader(tmp_path).samples()
    assert _any(DavisLoader(tmp_path).check(), "val.txt", "not found")
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("s1\ns2\n")
    for f in ("00000", "00001"):
        _save_jpg(tmp_path / "JPEGImages" / "480p" / "s1" / f"{f}.jpg")
        _save_palette(tmp_path / "Annotations" / "480p" / "s1" / f"{f}.png", np.ones((8, 10)))
    (tmp_path / "Annotations" / "480p" / "s1" / "00001.png").unlink()
    problems = DavisLoader(tmp_path).check()
    assert _any(problems, str(tmp_path / "Annotations" / "480p" / "s1" / "00001.png"), "annotation missing")
    assert _any(problems, "s2", "sequence folder missing")


def test_mose_layout_without_resolution(tmp_path: Path) -> None:
    a = np.zeros((8, 10), np.uint8)
    a[:3, :3] = 1
    a[5:, 5:] = 2
    for seq, n in (("zz", 2), ("aa", 3)):
        for t in range(n):
            _save_jpg(tmp_path / "JPEGImages" / seq / f"{t:05d}.jpg")
        _save_palette(tmp_path / "Annotations" / seq / "00000.png", a)  # valid split: first frame only
    loader = DavisLoader(tmp_path, "valid", resolution=None)
    seqs = loader.samples()
    assert [s.video for s in seqs] == ["aa", "zz"] and seqs[0] == VideoSequence("aa", ("00000", "00001", "00002"))
    np.testing.assert_array_equal(loader.first_frame_mask(seqs[0]), a)
    assert loader.check(all_frames_annotated=False, expected={"videos": 2, "frames": 5}) == []
    assert _any(loader.check(), str(tmp_path / "Annotations" / "aa" / "00001.png"))
    with pytest.raises(DatasetError, match="00001.png"):
        loader.gt_masks(seqs[0])
    for t in (1, 2):
        _save_palette(tmp_path / "Annotations" / "aa" / f"{t:05d}.png", a)
    assert loader.gt_masks(seqs[0]).shape == (3, 8, 10) and loader.gt_masks(seqs[0]).max() == 2


# ------------------------------------------------------------------------------------------------
# Ref-DAVIS17 (ReferFormer layout), both conventions
# ------------------------------------------------------------------------------------------------


def _ref_davis(root: Path) -> dict:
    videos = {"bike": 2, "acrobat": 3}  # objects per video; acrobat gets exp ids 0..11 ("10" < "2")
    meta: dict = {"videos": {}}
    for video, n_obj in videos.items():
        frames = ["00000", "00001"]
        exps = {}
        for obj in range(1, n_obj + 1):
            for k in range(4):
                exps[str(len(exps))] = {"exp": f"{video} object {obj} set {k}", "obj_id": str(obj)}
        meta["videos"][video] = {"expressions": exps, "frames": frames}
        idx = np.zeros((8, 10), np.uint8)
        for obj in range(1, n_obj + 1):
            idx[obj, :] = obj
        for f in frames:
            _save_palette(root / "valid" / "Annotations" / video / f"{f}.png", idx)
            _save_jpg(root / "valid" / "JPEGImages" / video / f"{f}.jpg")
    (root / "meta_expressions" / "valid").mkdir(parents=True)
    (root / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    return meta


def test_ref_davis_conventions(tmp_path: Path) -> None:
    _ref_davis(tmp_path)
    loader = RefDavisLoader(tmp_path)
    assert loader.check(expected={"videos": 2, "expressions": 20, "frames": 4}) == []
    samples = loader.samples()
    assert [s.type_id for s in samples[:8]] == [0, 1, 2, 3, 0, 1, 2, 3]

    # convention A: per annotator set, one expression per object, label i + 1 for the i-th
    objs = loader.annotator_objects("acrobat", 2)
    assert [s.exp_id for s in objs] == ["2", "6", "10"] and [s.obj_ids for s in objs] == [(1,), (2,), (3,)]
    sets = loader.annotator_sets()
    assert sorted(sets) == [0, 1, 2, 3] and [len(sets[0][v]) for v in ("bike", "acrobat")] == [2, 3]
    assert loader.gt_indexed("acrobat").shape == (2, 8, 10) and loader.gt_indexed("acrobat").max() == 3

    # convention B: pooled, videos sorted then exp ids sorted as strings, anno ids numbered in that order
    pooled = loader.pooled_samples()
    assert [(s.video, s.exp_id) for s in pooled[:4]] == [("acrobat", "0"), ("acrobat", "1"), ("acrobat", "10"),
                                                         ("acrobat", "11")]
    assert [s.anno_ids for s in pooled] == [(str(i),) for i in range(20)]
    assert pooled[12].video == "bike" and pooled[12].exp_id == "0"
    gt = loader.gt_masks(pooled[2])  # acrobat exp "10" -> object 3
    assert pooled[2].obj_ids == (3,) and gt.sum() == 2 * 10 and gt[:, 3].all()


def test_ref_davis_check_finds_faults(tmp_path: Path) -> None:
    meta = _ref_davis(tmp_path)
    del meta["videos"]["bike"]["expressions"]["7"]
    (tmp_path / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    (tmp_path / "valid" / "Annotations" / "acrobat" / "00001.png").unlink()
    problems = RefDavisLoader(tmp_path).check()
    assert _any(problems, "bike", "7 expressions, not a multiple of 4")
    assert _any(problems, str(tmp_path / "valid" / "Annotations" / "acrobat" / "00001.png"), "annotation missing")
    (tmp_path / "meta_expressions" / "valid" / "meta_expressions.json").write_text("nope")
    with pytest.raises(DatasetError, match="meta_expressions.json"):
        RefDavisLoader(tmp_path).samples()


def test_samples_are_plain_dataclasses(mevis_root: Path) -> None:
    s = MevisLoader(mevis_root, "valid_u").samples()[0]
    assert isinstance(s, VideoExpression) and hash(s) == hash(s)
