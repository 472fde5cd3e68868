"""Ref-DAVIS17 convention A (ReferFormer): merge per annotator set, DAVIS unsupervised per set, mean of 4.

The reference below is written independently of refbench: ReferFormer's merge as its own torch code
(``argmax`` over [0.1 background, scores >= 0.5]) and davis2017-evaluation's unsupervised scoring with
a numpy boundary map (``tests/metrics/test_frame.py``), cv2 disk dilation and scipy's assignment.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refbench.data.base import DatasetError, PredictionError
from refbench.data.davis import DavisLoader, RefDavisLoader, merge_annotator_masks
from refbench.evaluate.video import evaluate_video

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

#: objects per video, in meta order (deliberately not sorted: the global means follow the meta order)
VIDEOS = {"bike": 2, "acrobat": 3, "zoo": 1}
T, H, W = 6, 24, 40
SETS = (0, 1, 2, 3)


# ---------------------------------------------------------------------------------------------- fixtures


def gt_video(video: str, n_obj: int) -> np.ndarray:
    """(T, H, W) palette indices: object o is a box in row band o, moving right; 'zoo' has a void patch."""
    gt = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        for o in range(1, n_obj + 1):
            r0 = 2 + 6 * (o - 1)
            c0 = 2 + t + 3 * o
            gt[t, r0 : r0 + 5, c0 : c0 + 10 + o] = o
    if video == "zoo":
        gt[:, 19:23, 28:36] = 255
    return gt


def save_palette(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [255] * (256 * 3 - 12))
    im.save(path)


def make_refdavis_root(root: Path) -> dict[str, np.ndarray]:
    """ReferFormer's converted layout: meta (4 expressions per object, obj_id strings), JPEGs, palette GT."""
    meta: dict = {"videos": {}}
    gts = {}
    frames = [f"{t:05d}" for t in range(T)]
    for video, n_obj in VIDEOS.items():
        exps = {}
        for obj in range(1, n_obj + 1):
            for k in SETS:
                exps[str(len(exps))] = {"exp": f"{video} object {obj} annotator set {k}", "obj_id": str(obj)}
        meta["videos"][video] = {"expressions": exps, "frames": frames}
        gts[video] = gt_video(video, n_obj)
        for t, f in enumerate(frames):
            save_palette(root / "valid" / "Annotations" / video / f"{f}.png", gts[video][t])
            (root / "valid" / "JPEGImages" / video).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (W, H)).save(root / "valid" / "JPEGImages" / video / f"{f}.jpg")
    (root / "meta_expressions" / "valid").mkdir(parents=True)
    (root / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    return gts


def oracle_predictions(loader: RefDavisLoader, gts: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Every expression predicts exactly its object's GT mask."""
    return {(s.video, s.exp_id): (gts[s.video] == s.obj_ids[0]).astype(np.uint8) for s in loader.samples()}


def perturbed_predictions(loader: RefDavisLoader, gts: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Imperfect masks that differ per annotator set: shifts, noise, overlaps, swaps, empty frames."""
    rng = np.random.default_rng(7)
    out = {}
    for s in loader.samples():
        k = s.type_id
        obj = s.obj_ids[0]
        gt = gts[s.video]
        m = (gt == obj).astype(np.uint8)
        if k == 0:
            m = np.roll(m, 1, axis=2)
        elif k == 1:  # object 2 and later also cover the right part of the previous object: overlaps
            m = m.copy()
            if obj >= 2:
                m[:, :, 15:] |= (gt == obj - 1)[:, :, 15:].astype(np.uint8)
        elif k == 2:  # first frame missed, some noise
            m = m.copy()
            m[0] = 0
            m[rng.random(m.shape) < 0.03] = 1
        else:  # the first two objects' expressions swapped (the assignment must undo it)
            other = 2 if obj == 1 else 1 if obj == 2 else obj
            if other <= VIDEOS[s.video]:
                m = (gt == other).astype(np.uint8)
            m = np.roll(m, -1, axis=1)
        out[(s.video, s.exp_id)] = m
    return out


def write_predictions(folder: Path, preds: dict[tuple[str, str], np.ndarray], frames: list[str]) -> Path:
    """``<video>/<exp_id>/<frame>.png`` 'L' PNGs; 0/255, except 0/1 for exp id '1' (both are accepted)."""
    for (video, exp_id), m in preds.items():
        d = folder / video / exp_id
        d.mkdir(parents=True, exist_ok=True)
        scale = 1 if exp_id == "1" else 255
        for t, f in enumerate(frames):
            Image.fromarray((m[t] != 0).astype(np.uint8) * scale, mode="L").save(d / f"{f}.png")
    return folder


@pytest.fixture(scope="module")
def refdavis(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("refdavis")
    gts = make_refdavis_root(root)
    loader = RefDavisLoader(root)
    frames = list(loader.samples()[0].frames)
    oracle = oracle_predictions(loader, gts)
    perturbed = perturbed_predictions(loader, gts)
    return {
        "root": root,
        "loader": loader,
        "gts": gts,
        "frames": frames,
        "oracle": oracle,
        "perturbed": perturbed,
        "oracle_dir": write_predictions(root / "pred_oracle", oracle, frames),
        "perturbed_dir": write_predictions(root / "pred_perturbed", perturbed, frames),
    }


@pytest.fixture(scope="module")
def perturbed_result(refdavis):
    return evaluate_video(None, refdavis["loader"], refdavis["perturbed_dir"], protocol="refdavis_a")


# ---------------------------------------------------------------------------------------------- reference


def referformer_merge(masks: list[np.ndarray]) -> np.ndarray:
    """ReferFormer ``inference_davis.py`` on binary masks: scores < 0.5 -> 0, 0.1 background, argmax."""
    import torch

    scores = torch.stack([torch.from_numpy((m != 0).astype(np.float32)) for m in masks])
    scores[scores < 0.5] = 0.0
    background = 0.1 * torch.ones(1, *scores.shape[1:])
    return torch.argmax(torch.cat([background, scores], dim=0), dim=0).numpy().astype(np.uint8)


def _ref_j(p: np.ndarray, g: np.ndarray, void: np.ndarray) -> float:
    inter = int(np.sum(p & g & ~void))
    union = int(np.sum((p | g) & ~void))
    return 1.0 if union == 0 else inter / union


def _ref_f(p: np.ndarray, g: np.ndarray, void: np.ndarray) -> float:
    from tests.metrics.test_frame import _ref_f as frame_ref_f  # numpy _seg2bmap + cv2 disk dilation, for tests

    return frame_ref_f(p, g, void)


def _ref_stats(v: np.ndarray) -> tuple[float, float, float]:
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
    return float(np.nanmean(v)), float(np.nanmean(v > 0.5)), float(np.nanmean(bins[0]) - np.nanmean(bins[3]))


def reference_unsupervised(
    gts: dict[str, np.ndarray], maps: dict[str, np.ndarray], order: list[str]
) -> tuple[dict, dict]:
    """davis2017 ``DAVISEvaluation(task='unsupervised')`` + ``eval_davis.py`` global row, independently."""
    from scipy.optimize import linear_sum_assignment

    cols = {c: [] for c in ("JM", "JR", "JD", "FM", "FR", "FD")}
    per_object = {}
    for seq in order:
        gt = gts[seq].astype(np.int64)
        void = gt == 255
        gt = np.where(void, 0, gt)
        n_gt = int(gt[0].max())
        res = maps[seq].astype(np.int64)
        n_res = max(int(res.max()), n_gt)
        j = np.zeros((n_res, n_gt, T))
        f = np.zeros((n_res, n_gt, T))
        for ii in range(n_gt):
            for jj in range(n_res):
                for t in range(T):
                    p, g = res[t] == jj + 1, gt[t] == ii + 1
                    j[jj, ii, t] = _ref_j(p, g, void[t])
                    f[jj, ii, t] = _ref_f(p, g, void[t])
        rows, colsel = linear_sum_assignment(-((np.mean(j, axis=2) + np.mean(f, axis=2)) / 2))
        for n, (r, c) in enumerate(zip(rows, colsel)):
            jm, jr, jd = _ref_stats(j[r, c])
            fm, fr, fd = _ref_stats(f[r, c])
            for name, val in zip(cols, (jm, jr, jd, fm, fr, fd)):
                cols[name].append(val)
            per_object[f"{seq}_{n + 1}"] = {"J-Mean": jm, "J-Recall": jr, "J-Decay": jd, "F-Mean": fm,
                                            "F-Recall": fr, "F-Decay": fd, "proposal": int(r) + 1, "gt": int(c) + 1}
    g = {k: float(np.mean(v)) for k, v in cols.items()}
    table = {"J&F-Mean": (g["JM"] + g["FM"]) / 2, "J-Mean": g["JM"], "J-Recall": g["JR"], "J-Decay": g["JD"],
             "F-Mean": g["FM"], "F-Recall": g["FR"], "F-Decay": g["FD"]}
    return table, per_object


def reference_sets(loader: RefDavisLoader, gts: dict, preds: dict) -> dict[int, tuple[dict, dict, dict]]:
    out = {}
    for k in SETS:
        maps = {}
        for video in loader.videos():
            objs = [s for s in loader.samples() if s.video == video][k::4]
            maps[video] = referformer_merge([preds[(s.video, s.exp_id)] for s in objs])
        table, per_object = reference_unsupervised(gts, maps, loader.videos())
        out[k] = (table, per_object, maps)
    return out


# ---------------------------------------------------------------------------------------------- tests


def test_merge_rule_overlap_earlier_object_wins():
    a = np.zeros((1, 4, 6), np.uint8)
    b = np.zeros((1, 4, 6), np.uint8)
    c = np.zeros((1, 4, 6), np.uint8)
    a[0, :2, :4] = 255
    b[0, 1:3, 2:6] = 1
    c[0, :, 3] = 1  # overlaps both
    merged = merge_annotator_masks([a, b, c])
    assert merged[0, 1, 2] == 1 and merged[0, 1, 3] == 1  # a and b (and c) overlap: the first object wins
    assert merged[0, 2, 2] == 2 and merged[0, 2, 3] == 2  # b over c
    assert merged[0, 3, 3] == 3 and merged[0, 3, 0] == 0
    np.testing.assert_array_equal(merged, referformer_merge([a, b, c]))
    # pasting order: the reverse order gives the other labels on the overlap
    assert merge_annotator_masks([c, b, a])[0, 1, 3] == 1 and merge_annotator_masks([b, a])[0, 1, 2] == 1
    assert merge_annotator_masks([], shape=(2, 3, 4)).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="shape"):
        merge_annotator_masks([a, np.zeros((1, 4, 5), np.uint8)])


def test_merged_sets_follow_referformer(refdavis):
    loader, preds = refdavis["loader"], refdavis["perturbed"]
    for video in loader.videos():
        calls = []

        def read(s):
            calls.append(s.exp_id)
            return preds[(s.video, s.exp_id)]

        maps = loader.merged_sets(video, read, (T, H, W))
        assert sorted(calls, key=int) == [str(i) for i in range(4 * VIDEOS[video])]  # each expression read once
        for k in SETS:
            objs = loader.annotator_objects(video, k)
            assert [s.exp_id for s in objs] == [str(i * 4 + k) for i in range(VIDEOS[video])]
            np.testing.assert_array_equal(maps[k], referformer_merge([preds[(video, s.exp_id)] for s in objs]))
    # the perturbed set 1 really has overlaps resolved to the earlier object
    bike = loader.merged_sets("bike", lambda s: preds[(s.video, s.exp_id)], (T, H, W))[1]
    both = (preds[("bike", "1")] != 0) & (preds[("bike", "5")] != 0)
    assert both.any() and (bike[both] == 1).all()


def test_oracle_scores_one_per_set(refdavis):
    res = evaluate_video(None, refdavis["loader"], refdavis["oracle_dir"], protocol="refdavis_a")
    assert res.protocol == "refdavis_a" and res.scale == "percent"
    assert res.reference["repo"] == "wjn922/ReferFormer"
    for k in SETS:
        assert res.metrics[f"J&F (anno_{k})"] == 100.0
        assert res.metrics[f"J (anno_{k})"] == 100.0 and res.metrics[f"F (anno_{k})"] == 100.0
        assert res.details["official"]["values"][f"anno_{k}"]["global"]["J-Recall"] == 1.0  # as printed
    assert (res.metrics["J"], res.metrics["F"], res.metrics["J&F"]) == (100.0, 100.0, 100.0)
    n_obj = sum(VIDEOS.values())
    assert res.counts == {"samples": 4 * n_obj, "scored": 4 * n_obj, "missing": 0, "filled": 0, "official": 0,
                          "objects": 4 * n_obj, "sets": 4}
    assert [r["key"] for r in res.per_sample[:3]] == ["anno_0/bike_1", "anno_0/bike_2", "anno_0/acrobat_1"]
    row = next(r for r in res.per_sample if r["key"] == "anno_2/acrobat_3")
    assert (row["set"], row["video"], row["gt_object"], row["proposal"]) == ("anno_2", "acrobat", 3, 3)
    assert (row["exp_id"], row["obj_id"], row["status"]) == ("10", 3, "scored")


def test_matches_independent_reference(refdavis, perturbed_result):
    res = perturbed_result
    ref = reference_sets(refdavis["loader"], refdavis["gts"], refdavis["perturbed"])
    rows = {r["key"]: r for r in res.per_sample}
    official = res.details["official"]
    assert official["scale"] == "fraction" and list(official["values"]) == [f"anno_{k}" for k in SETS]
    for k in SETS:
        table, per_object, _maps = ref[k]
        printed = official["values"][f"anno_{k}"]
        assert printed["global"] == table  # eval_davis.py's global table of this set, exactly
        assert printed["per_sequence"] == {n: {"J-Mean": w["J-Mean"], "F-Mean": w["F-Mean"]}
                                           for n, w in per_object.items()}
        assert res.metrics[f"J&F (anno_{k})"] == table["J&F-Mean"] * 100
        assert res.metrics[f"J (anno_{k})"] == table["J-Mean"] * 100
        assert res.metrics[f"F (anno_{k})"] == table["F-Mean"] * 100
        assert [key for key in rows if key.startswith(f"anno_{k}/")] == [f"anno_{k}/{n}" for n in per_object]
        for name, want in per_object.items():
            row = rows[f"anno_{k}/{name}"]
            assert (row["proposal"], row["gt_object"]) == (want["proposal"], want["gt"])
            for col in ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"):
                assert row[col] == want[col] * 100, (k, name, col)
    for metric, col in (("J", "J-Mean"), ("F", "F-Mean"), ("J&F", "J&F-Mean")):  # refbench's mean of the 4 sets
        assert res.metrics[metric] == float(np.mean([ref[k][0][col] for k in SETS])) * 100
        assert metric not in official["metrics"]  # not in the printout
    # set 1's overlaps lie on the earlier object, so the first-object-wins merge restores the GT exactly
    # (a later-object-wins merge would not)
    assert res.metrics["J&F (anno_1)"] == 100.0
    masks = [refdavis["perturbed"][("bike", s.exp_id)] for s in refdavis["loader"].annotator_objects("bike", 1)]
    later_wins = np.zeros((T, H, W), np.uint8)
    for i, m in enumerate(masks):
        later_wins[m != 0] = i + 1
    assert (later_wins != refdavis["gts"]["bike"]).any()
    np.testing.assert_array_equal(merge_annotator_masks(masks), refdavis["gts"]["bike"])
    # the sets really differ, and set 3's swapped expressions were matched back by the assignment
    assert len({ref[k][0]["J&F-Mean"] for k in SETS}) == 4
    # official labels follow the proposals: bike_1 is proposal 1 (expression "3", about object 1) matched to GT 2
    assert (rows["anno_3/bike_1"]["proposal"], rows["anno_3/bike_1"]["gt_object"]) == (1, 2)
    assert (rows["anno_3/bike_2"]["proposal"], rows["anno_3/bike_2"]["gt_object"]) == (2, 1)
    assert (rows["anno_3/bike_1"]["exp_id"], rows["anno_3/bike_2"]["exp_id"]) == ("3", "7")


def test_zip_and_rle_give_identical_results(refdavis, perturbed_result, tmp_path):
    from pycocotools import mask as mask_utils

    z = tmp_path / "pred.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(refdavis["perturbed_dir"].rglob("*.png")):
            zf.write(p, p.relative_to(refdavis["perturbed_dir"]).as_posix())
    res = evaluate_video(None, refdavis["loader"], z, protocol="refdavis_a")
    assert res.metrics == perturbed_result.metrics and res.per_sample == perturbed_result.per_sample
    doc: dict = {}
    for (video, exp_id), m in refdavis["perturbed"].items():
        rles = []
        for t in range(T):
            r = mask_utils.encode(np.asfortranarray((m[t] != 0).astype(np.uint8)))
            rles.append({"size": [int(x) for x in r["size"]], "counts": r["counts"].decode("ascii")} if m[t].any()
                        else None)
        doc.setdefault(video, {})[exp_id] = rles
    (tmp_path / "pred.json").write_text(json.dumps(doc))
    res = evaluate_video(None, refdavis["loader"], tmp_path / "pred.json", protocol="refdavis_a")
    assert res.metrics == perturbed_result.metrics and res.per_sample == perturbed_result.per_sample


def test_card_default_protocol(refdavis):
    from refbench.cards import dataset_card

    card = dataset_card("refdavis17_val")
    res = evaluate_video(card, refdavis["loader"], refdavis["oracle_dir"], workers=1)
    assert res.protocol == "refdavis_a" and res.metrics["J&F"] == 100.0
    assert res.details["convention"]["repo"] == "wjn922/ReferFormer"
    assert res.details["scorer"]["file"] == "davis2017/evaluation.py"


def test_missing_modes(refdavis, tmp_path):
    pred = tmp_path / "p"
    shutil.copytree(refdavis["perturbed_dir"], pred)
    shutil.rmtree(pred / "acrobat" / "6")
    (pred / "bike" / "3" / "00004.png").unlink()
    with pytest.raises(PredictionError, match=r"acrobat_6|bike/3/00004"):
        evaluate_video(None, refdavis["loader"], pred, protocol="refdavis_a")
    res = evaluate_video(None, refdavis["loader"], pred, protocol="refdavis_a", missing="empty")
    assert res.counts["filled"] == 2 and res.counts["missing"] == 2 and res.counts["scored"] == 22
    # the same as writing those masks empty
    preds = dict(refdavis["perturbed"])
    preds[("acrobat", "6")] = np.zeros((T, H, W), np.uint8)
    m = preds[("bike", "3")].copy()
    m[4] = 0
    preds[("bike", "3")] = m
    full = write_predictions(tmp_path / "q", preds, refdavis["frames"])
    want = evaluate_video(None, refdavis["loader"], full, protocol="refdavis_a")
    assert res.metrics == want.metrics
    assert [{k: v for k, v in r.items() if k != "status"} for r in res.per_sample] == \
        [{k: v for k, v in r.items() if k != "status"} for r in want.per_sample]
    filled = {(r["set"], r["video"], r["exp_id"]) for r in res.per_sample if r["status"] == "filled"}
    assert filled == {("anno_3", "bike", "3"), ("anno_2", "acrobat", "6")}
    official = evaluate_video(None, refdavis["loader"], pred, protocol="refdavis_a", missing="official")
    assert official.metrics == res.metrics


def test_errors(refdavis, tmp_path):
    with pytest.raises(DatasetError, match="RefDavisLoader"):
        evaluate_video(None, DavisLoader(tmp_path), refdavis["oracle_dir"], protocol="refdavis_a")
    pred = tmp_path / "p"
    shutil.copytree(refdavis["oracle_dir"], pred)
    Image.fromarray(np.zeros((H, W + 1), np.uint8), mode="L").save(pred / "zoo" / "0" / "00002.png")
    with pytest.raises(PredictionError, match=r"zoo/0/00002\.png"):
        evaluate_video(None, refdavis["loader"], pred, protocol="refdavis_a")
    shutil.copytree(refdavis["oracle_dir"] / "zoo", pred / "not-a-video")
    with pytest.raises(PredictionError, match="not-a-video"):
        evaluate_video(None, refdavis["loader"], pred, protocol="refdavis_a")
