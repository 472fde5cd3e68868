"""DAVIS semi-supervised / unsupervised aggregation against the official golden values and references.

Golden data: ``shared/data/davis_osvos13`` (see its PROVENANCE section 1). The full unsupervised golden run
scores 20 proposals x 934 frames (about 40 s on 2 cores); a faster test scores the 4 shortest sequences and
checks the global row from the official per-frame arrays.
"""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from refbench.metrics.davis import (
    GLOBAL_COLUMNS,
    OBJECT_COLUMNS,
    DavisObjectResult,
    DavisResult,
    decay_bins,
    evaluate_semi_supervised,
    evaluate_semi_supervised_frames,
    evaluate_sequence,
    evaluate_unsupervised,
    global_table,
    object_statistics,
)
from refbench.metrics.frame import jaccard_and_boundary

GOLDEN = "davis_osvos13"
UNSUP_SUBSET = ("car-shadow", "libby", "drift-chicane", "blackswan")


# ----------------------------------------------------------------------------------------------
# Golden data (read once per module)
# ----------------------------------------------------------------------------------------------


class _Golden:
    def __init__(self, root: Path):
        self.root = root
        self.sequences = (root / "ImageSets" / "2017" / "val.txt").read_text().split()
        self.expected = {
            "semi": json.loads((root / "expected_semi.json").read_text()),
            "unsup": json.loads((root / "expected_unsup.json").read_text()),
        }
        self._pool = ThreadPoolExecutor(4)
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def frame_names(self, seq: str) -> list[str]:
        return sorted(p.stem for p in (self.root / "Annotations" / "480p" / seq).glob("*.png"))

    def masks(self, folder: str, seq: str) -> np.ndarray:
        """(T, H, W) palette indices, read as ``np.array(Image.open(png))``."""
        key = (folder, seq)
        if key not in self._cache:
            paths = sorted((self.root / folder / seq).glob("*.png"))
            self._cache[key] = np.stack(list(self._pool.map(lambda p: np.array(Image.open(p)), paths)))
        return self._cache[key]

    def gt(self, seq: str, task: str = "semi") -> np.ndarray:
        folder = "Annotations/480p" if task == "semi" else "Annotations_unsupervised/480p"
        return self.masks(folder, seq)


@pytest.fixture(scope="module")
def golden(shared_data: Path) -> _Golden:
    root = shared_data / GOLDEN
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return _Golden(root)


def _check_object(obj: DavisObjectResult, exp: dict, frame_names: list[str]) -> None:
    assert [frame_names[i] for i in obj.frames] == exp["frames"], obj.name
    assert obj.J.dtype == np.float64 and obj.F.dtype == np.float64
    np.testing.assert_array_equal(obj.J, np.array(exp["J"]), err_msg=f"{obj.name} J")
    np.testing.assert_array_equal(obj.F, np.array(exp["F"]), err_msg=f"{obj.name} F")
    assert obj.row() == {c: exp[c] for c in OBJECT_COLUMNS}, obj.name


# ----------------------------------------------------------------------------------------------
# Golden: semi-supervised (all 13 sequences)
# ----------------------------------------------------------------------------------------------


def test_semi_supervised_golden(golden: _Golden, device: str) -> None:
    exp = golden.expected["semi"]
    result = DavisResult()
    for seq in golden.sequences:
        res = evaluate_semi_supervised(
            golden.gt(seq), golden.masks("predictions/osvos", seq), sequence=seq, device=device
        )
        assert res.task == "semi-supervised" and res.affinity is None
        result.add(res)
    objects = result.objects()
    assert [o.name for o in objects] == exp["object_order"]
    for obj in objects:
        assert obj.gt_object == obj.proposal == 1
        _check_object(obj, exp["per_object"][obj.name], golden.frame_names(obj.sequence))
    table = result.global_table(golden.sequences)
    assert list(table) == list(GLOBAL_COLUMNS)
    assert table == exp["global"]


def test_semi_supervised_golden_pred_without_first_and_last(golden: _Golden) -> None:
    seq = "car-shadow"
    gt, pred = golden.gt(seq), golden.masks("predictions/osvos", seq)
    full = evaluate_semi_supervised(gt, pred, sequence=seq)
    inner = evaluate_semi_supervised(gt, pred[1:-1], sequence=seq)
    np.testing.assert_array_equal(full.objects[0].J, inner.objects[0].J)
    np.testing.assert_array_equal(full.objects[0].F, inner.objects[0].F)


def test_semi_supervised_frames_golden(golden: _Golden) -> None:
    """The frame-by-frame path (what ``refbench eval`` runs on CPU) gives the official values bit for bit,
    with all prediction frames and with frames 1..T-2 only."""
    exp = golden.expected["semi"]
    result = DavisResult()
    for seq in golden.sequences:
        gt, pred = golden.gt(seq), golden.masks("predictions/osvos", seq)
        res = evaluate_semi_supervised_frames(iter(gt), iter(pred), len(gt), sequence=seq)
        inner = evaluate_semi_supervised_frames(iter(gt), iter(pred[1:-1]), len(gt), pred_all=False, sequence=seq)
        for a, b in zip(res.objects, inner.objects):
            assert a.row() == b.row()
            np.testing.assert_array_equal(a.J, b.J)
        result.add(res)
    objects = result.objects()
    assert [o.name for o in objects] == exp["object_order"]
    for obj in objects:
        _check_object(obj, exp["per_object"][obj.name], golden.frame_names(obj.sequence))
    assert result.global_table(golden.sequences) == exp["global"]


# ----------------------------------------------------------------------------------------------
# Golden: unsupervised
# ----------------------------------------------------------------------------------------------


def _check_unsup_sequence(golden: _Golden, seq: str, device: str):
    exp = golden.expected["unsup"]
    res = evaluate_unsupervised(golden.gt(seq, "unsup"), golden.masks("predictions/rvos", seq), sequence=seq, device=device)
    assert res.task == "unsupervised"
    assert res.affinity is not None and res.affinity.shape == (20, 1)
    for obj in res.objects:
        _check_object(obj, exp["per_object"][obj.name], golden.frame_names(seq))
        match = exp["hungarian_match"][obj.name]
        assert (obj.proposal, obj.gt_object) == (match["proposal_id"], match["gt_object_id"])
        assert res.affinity[obj.proposal - 1, obj.gt_object - 1] == match["mean_JF_of_pair"]
    return res


@pytest.mark.parametrize("seq", UNSUP_SUBSET)
def test_unsupervised_golden_subset(golden: _Golden, seq: str, device: str) -> None:
    _check_unsup_sequence(golden, seq, device)


def test_unsupervised_golden_global_from_official_arrays(golden: _Golden) -> None:
    """The aggregation alone: official per-frame arrays -> per-object statistics -> global row, exactly."""
    for task in ("semi", "unsup"):
        exp = golden.expected[task]
        objects = []
        for name in exp["object_order"]:
            e = exp["per_object"][name]
            j, f = np.array(e["J"]), np.array(e["F"])
            obj = DavisObjectResult(name, name.rsplit("_", 1)[0], 1, 1, tuple(range(len(j))), j, f,
                                    object_statistics(j), object_statistics(f))
            assert obj.row() == {c: e[c] for c in OBJECT_COLUMNS}, name
            objects.append(obj)
        assert global_table(objects) == exp["global"], task


def test_unsupervised_golden_full(golden: _Golden, device: str) -> None:
    exp = golden.expected["unsup"]
    result = DavisResult()
    for seq in golden.sequences:
        result.add(_check_unsup_sequence(golden, seq, device))
    assert [o.name for o in result.objects()] == exp["object_order"]
    assert result.global_table(golden.sequences) == exp["global"]


# ----------------------------------------------------------------------------------------------
# Synthetic: statistics
# ----------------------------------------------------------------------------------------------


def _official_decay_reference(v: np.ndarray) -> float:
    """The db_statistics decay formula evaluated with numpy directly (uint8 edges, uint8 ``+ 1``)."""
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.uint8)
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
        return float(np.nanmean(bins[0]) - np.nanmean(bins[3]))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 50, 100, 255, 256, 257, 300, 511, 512, 513, 700, 1000, 1025, 4000])
def test_decay_matches_official_formula_with_uint8_wrap(n: int) -> None:
    rng = np.random.default_rng(n)
    v = rng.random(n)
    ref = _official_decay_reference(v)
    got = object_statistics(v)["D"]
    assert (np.isnan(ref) and np.isnan(got)) or got == ref, (n, got, ref)


def test_decay_wrap_cases() -> None:
    v = np.linspace(1.0, 0.0, 1025)
    # n = 256: the last edge is 255 and 255 + 1 wraps to 0 -> empty last bin -> NaN (official).
    assert np.isnan(object_statistics(np.ones(256))["D"])
    # n = 1025: every uint8 edge is 0, both bins are v[0:1] -> decay 0 instead of about 0.75.
    assert object_statistics(v)["D"] == 0.0
    exact = object_statistics(v, decay_index="exact")["D"]
    assert exact == np.mean(v[0:257]) - np.mean(v[768:1025])
    assert exact > 0.7
    # below 256 frames both modes agree
    w = np.random.default_rng(0).random(255)
    assert object_statistics(w)["D"] == object_statistics(w, decay_index="exact")["D"]
    assert decay_bins(100) == decay_bins(100, "exact") == [(0, 26), (25, 51), (50, 75), (74, 100)]
    with pytest.raises(ValueError, match="decay_index"):
        decay_bins(10, "int16")  # type: ignore[arg-type]


def test_recall_is_strict_and_mean_is_numpy() -> None:
    v = np.array([0.5, 0.5, 0.5000000001, 0.4, 0.9])
    stats = object_statistics(v)
    assert stats["R"] == 2 / 5
    assert stats["M"] == np.mean(v)
    assert object_statistics(torch.tensor(v))["R"] == 2 / 5
    assert object_statistics([0.5])["R"] == 0.0
    assert all(np.isnan(x) for x in object_statistics(np.zeros(0)).values())


# ----------------------------------------------------------------------------------------------
# Synthetic: semi-supervised
# ----------------------------------------------------------------------------------------------


def _rect(t: int, h: int, w: int, box: tuple[int, int, int, int], value: int = 1) -> np.ndarray:
    m = np.zeros((t, h, w), dtype=np.uint8)
    y0, y1, x0, x1 = box
    m[:, y0:y1, x0:x1] = value
    return m


def _ref_jf(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    j, f = jaccard_and_boundary(pred, gt, void)
    return j.numpy(), f.numpy()


def test_semi_id_gap_object_is_scored_and_empty() -> None:
    t, h, w = 5, 24, 40
    gt = _rect(t, h, w, (2, 10, 2, 12), 1) + _rect(t, h, w, (12, 20, 20, 30), 3)
    pred = gt.copy()
    res = evaluate_semi_supervised(gt, pred, sequence="gap")
    assert [o.name for o in res.objects] == ["gap_1", "gap_2", "gap_3"]
    assert res.objects[0].frames == (1, 2, 3)
    for o in res.objects:  # object 2: empty GT and empty prediction -> J = F = 1 per frame
        np.testing.assert_array_equal(o.J, np.ones(3))
        np.testing.assert_array_equal(o.F, np.ones(3))
    # predicting id 2 somewhere makes the empty object score 0 there
    pred2 = pred.copy()
    pred2[2, 0:2, 0:2] = 2
    o2 = evaluate_semi_supervised(gt, pred2, sequence="gap").objects[1]
    np.testing.assert_array_equal(o2.J, [1.0, 0.0, 1.0])


def test_semi_objects_from_first_frame_only_and_too_many_ids() -> None:
    t, h, w = 6, 20, 30
    gt = _rect(t, h, w, (2, 8, 2, 8), 1)
    gt[2:, 10:15, 10:15] = 2  # appears after frame 0: not an object
    gt[0, 0, 0] = 255  # void in frame 0 does not count as an object id
    res = evaluate_semi_supervised(gt, (gt == 1).astype(np.uint8), sequence="late")
    assert [o.gt_object for o in res.objects] == [1]
    with pytest.raises(ValueError, match="late.*id 2.*1 object"):
        evaluate_semi_supervised(gt, gt.copy() * (gt != 255), sequence="late")
    # ids in the unscored first / last frames are never read
    pred = _rect(t, h, w, (2, 8, 2, 8), 1)
    pred[0] = 7
    pred[-1] = 9
    assert len(evaluate_semi_supervised(gt, pred, sequence="late").objects) == 1


def test_semi_fewer_predicted_ids_are_zero_padded() -> None:
    t, h, w = 4, 20, 30
    gt = _rect(t, h, w, (2, 8, 2, 8), 1) + _rect(t, h, w, (10, 16, 10, 20), 2)
    pred = _rect(t, h, w, (2, 8, 2, 8), 1)
    res = evaluate_semi_supervised(gt, pred, sequence="pad")
    np.testing.assert_array_equal(res.objects[1].J, np.zeros(2))
    np.testing.assert_array_equal(res.objects[1].F, np.zeros(2))
    assert res.objects[1].row()["J-Recall"] == 0.0


def test_semi_void_is_background() -> None:
    t, h, w = 3, 20, 30
    gt = _rect(t, h, w, (2, 8, 2, 8), 1)
    gt[:, 10:14, 10:14] = 255
    pred = gt.copy()
    pred[pred == 255] = 1  # predicting the void region is a false positive in semi-supervised
    obj = evaluate_semi_supervised(gt, pred, sequence="void").objects[0]
    assert obj.J[0] == 36 / (36 + 16)
    j, f = _ref_jf(pred[1:2] == 1, gt[1:2] == 1)
    assert obj.J[0] == j[0] and obj.F[0] == f[0]


def test_input_errors() -> None:
    gt = np.zeros((3, 8, 8), dtype=np.uint8)
    with pytest.raises(TypeError, match="seqA"):
        evaluate_semi_supervised(gt, gt.astype(np.float32), sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*predicted frames"):
        evaluate_semi_supervised(gt, gt[:2], sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*at least 3"):
        evaluate_semi_supervised(gt[:2], gt[:2], sequence="seqA")
    with pytest.raises(ValueError, match="seqA"):
        evaluate_unsupervised(gt, gt[:2], sequence="seqA")
    with pytest.raises(ValueError, match="unknown DAVIS task"):
        evaluate_sequence("interactive", gt, gt)  # type: ignore[arg-type]


def _same_result(a, b) -> None:
    assert [o.name for o in a.objects] == [o.name for o in b.objects]
    for x, y in zip(a.objects, b.objects):
        assert x.frames == y.frames and (x.gt_object, x.proposal) == (y.gt_object, y.proposal)
        np.testing.assert_array_equal(x.J, y.J)
        np.testing.assert_array_equal(x.F, y.F)
        assert x.row() == pytest.approx(y.row(), nan_ok=True, abs=0, rel=0)


@pytest.mark.parametrize("seed", range(6))
def test_semi_frames_equal_stacked_path(seed: int) -> None:
    """Random id maps (several objects, id gaps, void, ids only in the unscored end frames, int16 and bool
    maps, a width that is not a multiple of 64): the frame path equals the stacked one exactly."""
    rng = np.random.default_rng(seed)
    t, h, w = int(rng.integers(3, 9)), int(rng.integers(20, 60)), int(rng.integers(30, 150))
    n_obj = int(rng.integers(1, 5))
    gt = np.zeros((t, h, w), dtype=np.uint8)
    pred = np.zeros((t, h, w), dtype=np.uint8)
    for k in range(1, n_obj + 1):
        if k == 2 and seed % 2:  # an id gap: object 2 never appears
            continue
        for arr, jitter in ((gt, 0), (pred, 3)):
            for i in range(t):
                y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
                arr[i, y : y + int(rng.integers(3, 12)), x : x + int(rng.integers(3, 20))] = k
            arr[rng.random((t, h, w)) < 0.01 * jitter] = k
    gt[0, 0, : n_obj + 1] = np.arange(n_obj + 1)  # every object id in frame 0 (the gap too: it counts)
    gt[:, -3:, -3:] = 255
    pred[0] = n_obj + 3  # unscored frames may hold anything
    pred[-1, 0, 0] = 200
    want = evaluate_semi_supervised(gt, pred, sequence="r")
    _same_result(evaluate_semi_supervised_frames(iter(gt), iter(pred), t, sequence="r"), want)
    _same_result(evaluate_semi_supervised_frames(list(gt), list(pred[1:-1]), t, pred_all=False, sequence="r"), want)
    _same_result(evaluate_semi_supervised_frames(iter(gt.astype(np.int16)), iter(pred.astype(np.int16)), t,
                                                 sequence="r"), want)
    one = (pred == 1) & (np.arange(t) != 0)[:, None, None]
    _same_result(evaluate_semi_supervised_frames(iter(gt), iter(one), t, sequence="r"),
                 evaluate_semi_supervised(gt, one, sequence="r"))
    signed = pred.astype(np.int16)
    signed[1:-1][pred[1:-1] == 0] = -1  # a signed map of -1 and 1: only the 1s are object 1
    signed[1:-1] = np.minimum(signed[1:-1], 1)
    _same_result(evaluate_semi_supervised_frames(iter(gt), iter(signed), t, sequence="r"),
                 evaluate_semi_supervised(gt, signed, sequence="r"))
    # None is an all-zero frame (a missing prediction filled with zeros)
    holes = pred.copy()
    holes[2] = 0
    frames = [None if i == 2 else f for i, f in enumerate(pred)]
    _same_result(evaluate_semi_supervised_frames(iter(gt), iter(frames), t, sequence="r"),
                 evaluate_semi_supervised(gt, holes, sequence="r"))


def test_semi_frames_input_errors() -> None:
    gt = np.zeros((4, 8, 8), dtype=np.uint8)
    gt[0, 0, 0] = 1
    with pytest.raises(ValueError, match="seqA.*at least 3"):
        evaluate_semi_supervised_frames(iter(gt[:2]), iter(gt[:2]), 2, sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*3 predicted frames; expected 4"):
        evaluate_semi_supervised_frames(iter(gt), iter(gt[:3]), 4, sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*4 predicted frames; expected 2"):
        evaluate_semi_supervised_frames(iter(gt), iter(gt), 4, pred_all=False, sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*3 GT frames given, 4"):
        evaluate_semi_supervised_frames(iter(gt[:3]), iter(gt), 4, sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*prediction frames are \\(8, 9\\), GT \\(8, 8\\)"):
        evaluate_semi_supervised_frames(iter(gt), iter(np.zeros((4, 8, 9), np.uint8)), 4, sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*GT frame 2 is \\(8, 9\\)"):
        evaluate_semi_supervised_frames(iter([gt[0], gt[1], np.zeros((8, 9), np.uint8), gt[3]]), iter(gt), 4,
                                        sequence="seqA")
    with pytest.raises(TypeError, match="seqA.*pred frame 1"):
        evaluate_semi_supervised_frames(iter(gt), iter([gt[0], gt[1].astype(np.float32), gt[2], gt[3]]), 4,
                                        sequence="seqA")
    bad = gt.copy()
    bad[2, 5, 5] = 3  # the maximum over the scored frames is named, as on the stacked path
    bad[1, 4, 4] = 2
    with pytest.raises(ValueError, match="seqA.*id 3 but the first GT frame has only 1 object"):
        evaluate_semi_supervised_frames(iter(gt), iter(bad), 4, sequence="seqA")
    with pytest.raises(ValueError, match="seqA.*id 3 but the first GT frame has only 1 object"):
        evaluate_semi_supervised(gt, bad, sequence="seqA")


# ----------------------------------------------------------------------------------------------
# Synthetic: unsupervised
# ----------------------------------------------------------------------------------------------


def test_unsupervised_too_many_proposals() -> None:
    gt = _rect(2, 10, 10, (1, 5, 1, 5), 1)
    pred = gt.copy()
    pred[0, 8, 8] = 21
    with pytest.raises(ValueError, match="many.*id 21.*20 proposals"):
        evaluate_unsupervised(gt, pred, sequence="many")
    pred[0, 8, 8] = 20
    assert len(evaluate_unsupervised(gt, pred, sequence="many").objects) == 1
    pred[0, 8, 8] = 5
    with pytest.raises(ValueError, match="above the maximum of 4"):
        evaluate_unsupervised(gt, pred, sequence="many", max_proposals=4)


def test_unsupervised_assignment_and_official_label_order() -> None:
    """Proposal 1 fits GT object 2 and proposal 3 fits GT object 1: the official labels follow proposals."""
    t, h, w = 4, 30, 40
    g1, g2 = (2, 10, 2, 12), (15, 25, 20, 35)
    gt = _rect(t, h, w, g1, 1) + _rect(t, h, w, g2, 2)
    pred = _rect(t, h, w, (15, 25, 21, 35), 1) + _rect(t, h, w, (0, 2, 0, 2), 2) + _rect(t, h, w, (2, 10, 3, 12), 3)
    res = evaluate_unsupervised(gt, pred, sequence="order")
    assert [(o.name, o.proposal, o.gt_object) for o in res.objects] == [("order_1", 1, 2), ("order_2", 3, 1)]
    assert res.affinity.shape == (3, 2)
    # independent reference of the affinity matrix and of the chosen arrays
    from scipy.optimize import linear_sum_assignment

    ref = np.zeros((3, 2))
    for p in range(3):
        for g in range(2):
            j, f = _ref_jf(pred == p + 1, gt == g + 1, gt == 255)
            ref[p, g] = (j.mean() + f.mean()) / 2
            if (p + 1, g + 1) in {(1, 2), (3, 1)}:
                o = next(o for o in res.objects if o.proposal == p + 1)
                np.testing.assert_array_equal(o.J, j)
                np.testing.assert_array_equal(o.F, f)
    np.testing.assert_array_equal(res.affinity, ref)
    rows, cols = linear_sum_assignment(-ref)
    assert list(zip(rows + 1, cols + 1)) == [(1, 2), (3, 1)]
    assert res.objects[0].frames == tuple(range(t))


def test_unsupervised_void_used_and_padding() -> None:
    t, h, w = 3, 20, 30
    gt = _rect(t, h, w, (2, 8, 2, 8), 1) + _rect(t, h, w, (10, 16, 10, 20), 2)
    gt[:, 0:2, 20:30] = 255
    pred = _rect(t, h, w, (2, 8, 2, 8), 1)
    pred[:, 0:2, 20:30] = 1  # inside void: ignored by J and F
    res = evaluate_unsupervised(gt, pred, sequence="void")
    assert res.affinity.shape == (2, 2)  # one proposal padded to the two GT objects
    by_gt = {o.gt_object: o for o in res.objects}
    np.testing.assert_array_equal(by_gt[1].J, np.ones(t))
    np.testing.assert_array_equal(by_gt[2].J, np.zeros(t))
    assert by_gt[2].proposal == 2


def test_davis_result_order_merge_and_errors() -> None:
    gt = _rect(5, 16, 16, (2, 8, 2, 8), 1)
    seqs = {f"s{i}": (gt, np.roll(gt, i, axis=2)) for i in range(4)}
    full = DavisResult()
    for name, (g, p) in seqs.items():
        full.add(evaluate_semi_supervised(g, p, sequence=name))
    a, b = DavisResult(), DavisResult()
    for name in ["s3", "s1"]:
        a.add(evaluate_semi_supervised(*seqs[name], sequence=name))
    for name in ["s2", "s0"]:
        b.add(evaluate_semi_supervised(*seqs[name], sequence=name))
    merged = a.merge(b)
    order = list(seqs)
    assert merged.global_table(order) == full.global_table(order)
    assert merged.per_object(order) == full.per_object()
    with pytest.raises(ValueError, match="already added"):
        merged.add(evaluate_semi_supervised(*seqs["s0"], sequence="s0"))
    with pytest.raises(ValueError, match="never scored"):
        merged.global_table(order + ["s9"])
    with pytest.raises(ValueError, match="not in the order"):
        merged.global_table(order[:3])
    with pytest.raises(ValueError, match="task"):
        merged.add(evaluate_unsupervised(gt, gt, sequence="u"))
    with pytest.raises(ValueError, match="no objects"):
        global_table([])


def test_torch_word_path_on_cpu_equals_numpy_path(monkeypatch) -> None:
    """CPU scoring packs each object on numpy words; GPUs take the torch path. Run that path on CPU tensors
    and compare, so the GPU code is checked where no GPU is present (the golden tests run the numpy path)."""
    from refbench.metrics import davis as davis_mod

    rng = np.random.default_rng(8)
    gt = np.zeros((6, 61, 97), np.uint8)
    gt[:, 5:30, 10:50] = 1
    gt[:, 25:55, 40:90] = 2
    gt[:, 0:4, :] = 255  # void
    gt[3, 30:40, 60:70] = 3
    pred = np.roll(np.where(gt == 255, 0, gt), (2, 3), axis=(1, 2))
    pred[rng.random(pred.shape) < 0.02] = 4
    numpy_semi = evaluate_semi_supervised(gt, np.minimum(pred, 2), sequence="s")
    numpy_unsup = evaluate_unsupervised(gt, pred, sequence="s")
    monkeypatch.setattr(davis_mod, "_NUMPY_ON_CPU", False)
    torch_semi = evaluate_semi_supervised(gt, np.minimum(pred, 2), sequence="s")
    torch_unsup = evaluate_unsupervised(gt, pred, sequence="s")
    for a, b in ((numpy_semi, torch_semi), (numpy_unsup, torch_unsup)):
        assert [(o.name, o.gt_object, o.proposal) for o in a.objects] == [(o.name, o.gt_object, o.proposal)
                                                                          for o in b.objects]
        for oa, ob in zip(a.objects, b.objects):
            assert np.array_equal(oa.J, ob.J) and np.array_equal(oa.F, ob.F)
    assert np.array_equal(numpy_unsup.affinity, torch_unsup.affinity)
