"""RES scores (cIoU / gIoU) against the LISA and Sa2VA golden values and independent references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from refbench.metrics.res import RESMeter, RESScores, intersection_union, res_scores

GOLDEN = "refcoco_golden"
# pycocotools' Cython RLE objects predate numpy 2's copy keyword; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _decode(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})


@pytest.fixture(scope="module")
def golden(shared_data: Path) -> dict:
    root = shared_data / GOLDEN
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    from refbench.data.refer import ReferData, load_reason_seg

    return {
        "root": root,
        "expected": json.loads((root / "expected.json").read_text()),
        "preds": json.loads((root / "predictions_refcoco_unc.json").read_text()),
        "rs_preds": json.loads((root / "predictions_reasonseg_val.json").read_text()),
        "refer": ReferData.load(root, "refcoco"),
        "reason_seg": load_reason_seg(root / "reason_seg" / "ReasonSeg" / "val"),
    }


def _counts(golden: dict, split: str, gt_style: str, device: str = "cpu"):
    """Per-sentence (I, U) of a RefCOCO split, in the official order, plus the sentences."""
    refer = golden["refer"]
    sents = refer.sentences(split)
    inter, union = [], []
    for s in sents:
        pred = torch.from_numpy(_decode(golden["preds"][str(s.sent_id)]))
        gt = torch.from_numpy(refer.gt_mask(s, gt_style))
        i, u = intersection_union(pred.to(device), gt.to(device))
        assert i.device.type == torch.device(device).type and i.dtype == torch.int64
        inter.append(int(i))
        union.append(int(u))
    return sents, inter, union


def _np_reference_counts(pred: np.ndarray, gt: np.ndarray, ignore_index: int = 255) -> tuple[int, int]:
    """Independent reading of the official counting: the ignore step, then 2-bin histograms on [0, 1]."""
    out = (pred > 0).astype(np.int64).ravel()
    tgt = gt.astype(np.int64).ravel()
    out[tgt == ignore_index] = ignore_index
    hits = out[out == tgt]
    bins = dict(bins=2, range=(0.0, 1.0))
    area_i = np.histogram(hits, **bins)[0][1]
    area_o = np.histogram(out, **bins)[0][1]
    area_t = np.histogram(tgt, **bins)[0][1]
    return int(area_i), int(area_o + area_t - area_i)


def _official_style_reduce(images: list[list[tuple[int, int] | None]], protocol: str) -> tuple[float, float]:
    """The official meter flow with real torch float32 tensors and numpy arrays (no emulation).

    Each inner list is one image (one batch); a None entry is a prediction Sa2VA skips.
    Per-class tensors hold [background, foreground]; only the foreground matters.
    """
    meter_i = meter_u = meter_g = 0
    count = 0
    for sentences in images:
        inter, union, acc = 0.0, 0.0, 0.0
        for pair in sentences:
            if pair is None:
                continue
            i, u = pair
            ti = torch.tensor([7, i], dtype=torch.int32)
            tu = torch.tensor([11, u], dtype=torch.int32)
            inter = inter + ti
            union = union + tu
            acc = acc + ti / (tu + 1e-5)
            acc[tu == 0] += 1.0
        k = len(sentences)
        inter, union = inter.numpy(), union.numpy()
        acc = acc.numpy() / k
        meter_i = meter_i + inter * 1
        meter_u = meter_u + union * 1
        meter_g = meter_g + acc * k
        count += k
    if protocol == "lisa":
        total = torch.tensor(meter_g.tolist() + [count], dtype=torch.float32)
        meter_g, count_f = total[:-1].numpy(), total[-1].item()
        giou = (meter_g / (count_f + 1e-5))[1]
    else:
        giou = (meter_g / count)[1]
    ciou = (meter_i / (meter_u + 1e-10))[1]
    assert meter_i.dtype == np.float32 and np.asarray(giou).dtype == np.float32
    return float(ciou), float(giou)


# ----------------------------------------------------------------------------------------------
# golden: RefCOCO (LISA validate)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["val", "testA", "testB"])
def test_refcoco_lisa_golden(golden: dict, split: str, device: str) -> None:
    exp = golden["expected"]["refcoco_unc"][split]
    sents, inter, union = _counts(golden, split, "lisa", device)
    assert len(sents) == exp["n_sentences"]
    assert golden["refer"].image_order(split) == exp["image_order"]
    for s, i, u in zip(sents, inter, union):
        ref = exp["per_sentence"][str(s.sent_id)]
        assert (i, u) == (ref["I"], ref["U"]), (s.sent_id, ref["kind"])
    scores = res_scores(inter, union, "lisa", groups=[s.image_id for s in sents])
    assert scores.ciou == exp["cIoU"]
    assert scores.giou == exp["gIoU"]
    assert repr(np.float32(scores.ciou)) == exp["cIoU_float32_repr"]
    assert repr(np.float32(scores.giou)) == exp["gIoU_float32_repr"]
    assert "giou: {:.4f}, ciou: {:.4f}".format(scores.giou, scores.ciou) == exp["printed"]
    assert scores.n == len(sents) and scores.sum_i == sum(inter) and scores.sum_u == sum(union)


def test_refcoco_value_two_quirk(golden: dict) -> None:
    """Sentences of ann 102 (two overlapping parts): GT value 2 leaves the target but not the prediction."""
    refer = golden["refer"]
    for s in refer.sentences("val"):
        if s.ann_id != 102:
            continue
        gt = refer.gt_mask(s, "lisa")
        pred = _decode(golden["preds"][str(s.sent_id)])
        assert (gt == 2).any()
        i, u = intersection_union(pred, gt)
        ib, ub = intersection_union(pred, (gt > 0).astype(np.uint8))
        two = gt == 2
        assert int(ib) - int(i) == int((pred.astype(bool) & two).sum())
        assert int(ub) - int(u) == int((~pred.astype(bool) & two).sum())


# ----------------------------------------------------------------------------------------------
# golden: Sa2VA RESDataset.evaluate
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["val", "testA", "testB"])
def test_refcoco_sa2va_golden(golden: dict, split: str) -> None:
    exp = golden["expected"]["sa2va"][split]
    sents, inter, union = _counts(golden, split, "sa2va")
    scores = res_scores(inter, union, "sa2va", groups=[s.image_id for s in sents])
    assert (scores.ciou, scores.giou) == (exp["cIoU"], exp["gIoU"])
    assert "CIoU: {}, GIoU: {}".format(scores.ciou, scores.giou) == exp["printed"]


def test_sa2va_val_differs_from_lisa_only_through_ann_102(golden: dict) -> None:
    _, i_lisa, u_lisa = _counts(golden, "val", "lisa")
    sents, i_sa, u_sa = _counts(golden, "val", "sa2va")
    for s, a, b, c, d in zip(sents, i_lisa, u_lisa, i_sa, u_sa):
        assert ((a, b) == (c, d)) == (s.ann_id != 102), s.sent_id


def test_sa2va_testA_with_none_golden(golden: dict) -> None:
    exp = golden["expected"]["sa2va"]["testA_with_none"]
    refer = golden["refer"]
    meter = RESMeter("sa2va", missing="sa2va_skip")
    for s in refer.sentences("testA"):
        pred = None if s.sent_id == exp["none_prediction_sent_id"] else _decode(golden["preds"][str(s.sent_id)])
        meter.update(s.sent_id, pred, refer.gt_mask(s, "sa2va"), group=s.image_id)
    scores = meter.compute()
    assert (scores.ciou, scores.giou) == (exp["cIoU"], exp["gIoU"])
    assert scores.n == 5 and scores.n_skipped == 1


def test_sa2va_val_gt_binarized_reference(golden: dict) -> None:
    exp = golden["expected"]["sa2va"]["val_gt_binarized_reference"]
    sents, inter, union = _counts(golden, "val", "binary")
    scores = res_scores(inter, union, "sa2va", groups=[s.image_id for s in sents])
    assert (scores.ciou, scores.giou) == (exp["cIoU"], exp["gIoU"])


def test_missing_prediction_defaults_to_empty(golden: dict) -> None:
    """Default rule: a None prediction is an empty mask (I = 0, U = |GT|), never skipped."""
    refer = golden["refer"]
    sents = refer.sentences("testA")
    meter = RESMeter("sa2va")
    explicit = RESMeter("sa2va")
    for s in sents:
        gt = refer.gt_mask(s, "sa2va")
        pred = None if s.sent_id == 1314 else _decode(golden["preds"][str(s.sent_id)])
        meter.update(s.sent_id, pred, gt, group=s.image_id)
        explicit.update(s.sent_id, np.zeros_like(gt) if pred is None else pred, gt, group=s.image_id)
    assert meter.records[1314][:2] == (0, int((refer.gt_mask(sents[2], "sa2va") == 1).sum()))
    assert meter.compute() == explicit.compute()
    assert meter.compute().n_skipped == 0


# ----------------------------------------------------------------------------------------------
# golden: ReasonSeg (LISA validate)
# ----------------------------------------------------------------------------------------------


def test_reason_seg_golden(golden: dict, device: str) -> None:
    from refbench.data.refer import reason_seg_mask

    exp = golden["expected"]["reason_seg_val"]
    samples = golden["reason_seg"]
    assert [s.name for s in samples] == exp["image_order"]
    meter = RESMeter("lisa")
    for s in samples:
        pred = torch.from_numpy(_decode(golden["rs_preds"][s.name])).to(device)
        gt = torch.from_numpy(reason_seg_mask(s)).to(device)
        meter.update(s.name, pred, gt)
        ref = exp["per_image"][s.name]
        assert meter.records[s.name][:2] == (ref["I"], ref["U"])
    scores = meter.compute(exp["image_order"])
    assert (scores.ciou, scores.giou) == (exp["cIoU"], exp["gIoU"])
    assert repr(np.float32(scores.ciou)) == exp["cIoU_float32_repr"]
    assert repr(np.float32(scores.giou)) == exp["gIoU_float32_repr"]
    assert "giou: {:.4f}, ciou: {:.4f}".format(scores.giou, scores.ciou) == exp["printed"]


# ----------------------------------------------------------------------------------------------
# counting against an independent numpy reference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(97, 131), (481, 855), (1, 1), (2, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_counts_random_vs_numpy(shape: tuple[int, int], seed: int, device: str) -> None:
    rng = np.random.default_rng(seed * 1000 + shape[0])
    n = 6
    preds = rng.random((n, *shape)) < rng.random((n, 1, 1))
    gts = rng.choice(np.array([0, 1, 2, 255], dtype=np.uint8), size=(n, *shape), p=[0.4, 0.4, 0.1, 0.1])
    preds[0] = False  # empty prediction
    gts[1] = 0  # empty GT
    preds[2] = False
    gts[2] = 0  # both empty: U = 0
    gts[3] = 255  # everything ignored
    preds[4] = True  # full prediction
    inter, union = intersection_union(torch.from_numpy(preds).to(device), torch.from_numpy(gts).to(device))
    assert inter.shape == union.shape == (n,)
    assert inter.dtype == union.dtype == torch.int64
    assert inter.device.type == torch.device(device).type
    for k in range(n):
        assert (int(inter[k]), int(union[k])) == _np_reference_counts(preds[k], gts[k]), k
    assert int(union[2]) == 0 and int(union[3]) == 0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
@pytest.mark.parametrize("ignore_index", [255, None, 0, 1, 2, -1, 300])
def test_counts_ignore_index_vs_numpy(ignore_index: int | None, dtype: type) -> None:
    rng = np.random.default_rng(7)
    preds = rng.random((3, 37, 53)) < 0.5
    gts = rng.choice(np.array([0, 1, 2, 255], dtype=dtype), size=(3, 37, 53))
    inter, union = intersection_union(preds, gts, ignore_index=ignore_index)
    ref_ignore = -12345 if ignore_index is None else ignore_index
    for k in range(3):
        assert (int(inter[k]), int(union[k])) == _np_reference_counts(preds[k], gts[k], ref_ignore)


def test_counts_input_kinds() -> None:
    rng = np.random.default_rng(3)
    logits = torch.from_numpy(rng.normal(size=(40, 30)).astype(np.float32))
    gt = torch.from_numpy((rng.random((40, 30)) < 0.5).astype(np.uint8))
    i_logit, u_logit = intersection_union(logits, gt)
    i_bool, u_bool = intersection_union(logits > 0, gt.bool())
    i_int, u_int = intersection_union((logits > 0).to(torch.int32).numpy(), gt.numpy().astype(np.int64))
    assert (int(i_logit), int(u_logit)) == (int(i_bool), int(u_bool)) == (int(i_int), int(u_int))
    assert i_logit.shape == ()
    i_bool_gt, u_bool_gt = intersection_union(logits > 0, gt.bool())  # bool GT: 255 cannot occur
    assert (int(i_bool_gt), int(u_bool_gt)) == _np_reference_counts((logits > 0).numpy(), gt.numpy())


def test_counts_errors() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        intersection_union(np.zeros((3, 4), bool), np.zeros((4, 3), np.uint8))
    with pytest.raises(TypeError, match="gt must be a bool or integer"):
        intersection_union(np.zeros((3, 4), bool), np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="pred must be"):
        intersection_union([[1]], np.zeros((1, 1), np.uint8))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        intersection_union(np.zeros(4, bool), np.zeros(4, np.uint8))


# ----------------------------------------------------------------------------------------------
# reduction against the official flow run with real float32 tensors
# ----------------------------------------------------------------------------------------------


def _random_images(seed: int, n_images: int, with_none: bool) -> list[list[tuple[int, int] | None]]:
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        k = int(rng.integers(1, 7))
        sentences: list[tuple[int, int] | None] = []
        for _ in range(k):
            kind = rng.random()
            if kind < 0.1:
                u = 0
            elif kind < 0.2:
                u = int(rng.integers(1, 20))
            else:
                u = int(rng.integers(1, 2_000_000))  # sums pass 2**24: float32 rounding matters
            i = int(rng.integers(0, u + 1)) if u else 0
            sentences.append((i, u))
        if with_none and k > 1 and rng.random() < 0.3:
            sentences[int(rng.integers(0, k))] = None
        images.append(sentences)
    return images


@pytest.mark.parametrize("protocol", ["lisa", "sa2va"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_reduction_matches_official_flow(protocol: str, seed: int) -> None:
    images = _random_images(seed, 300, with_none=protocol == "sa2va")
    inter, union, groups, skipped = [], [], [], []
    for g, sentences in enumerate(images):
        for pair in sentences:
            inter.append(0 if pair is None else pair[0])
            union.append(0 if pair is None else pair[1])
            groups.append(f"img{g}")
            skipped.append(pair is None)
    got = res_scores(inter, union, protocol, groups=groups, skipped=skipped)
    assert (got.ciou, got.giou) == _official_style_reduce(images, protocol)
    assert sum(skipped) == got.n_skipped
    # Without groups every sentence is its own image (one batch each), as in ReasonSeg.
    if protocol == "lisa":
        flat = res_scores(inter, union, protocol)
        assert (flat.ciou, flat.giou) == _official_style_reduce([[p] for s in images for p in s], protocol)


def test_exact_protocol() -> None:
    from fractions import Fraction

    inter, union = [3, 0, 0, 10], [4, 0, 5, 10]
    got = res_scores(inter, union, "exact")
    assert got.ciou == pytest.approx(float(Fraction(13, 19)), abs=1e-9)
    assert got.giou == pytest.approx((3 / 4 + 1 + 0 + 1) / 4, abs=1e-6)


def test_res_scores_errors() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        res_scores([1], [1], "glamm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no samples"):
        res_scores([], [])
    with pytest.raises(ValueError, match="exceeds"):
        res_scores([2], [1])
    with pytest.raises(ValueError, match="Sa2VA's rule"):
        res_scores([1], [1], "lisa", skipped=[True])
    with pytest.raises(ValueError, match="groups has"):
        res_scores([1, 1], [1, 1], groups=["a"])
    with pytest.raises(TypeError, match="integer pixel counts"):
        res_scores([0.5], [1.0])


# ----------------------------------------------------------------------------------------------
# RESMeter
# ----------------------------------------------------------------------------------------------


def _meter_inputs(seed: int):
    rng = np.random.default_rng(seed)
    items = []
    for k in range(40):
        h, w = (97, 131) if k % 2 else (61, 45)
        if k % 7 == 0:
            h, w = 5, 3
        if k == 10:
            h, w = 481, 855
        pred = rng.random((h, w)) < 0.3
        gt = rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=(h, w), p=[0.6, 0.3, 0.1])
        if k % 5 == 0:
            gt[:] = 0
        items.append((f"s{k}", pred, gt, f"img{k // 3}"))
    return items


def test_meter_sharded_merge_is_exact(device: str) -> None:
    items = _meter_inputs(11)
    whole = RESMeter()
    for sid, p, g, grp in items:
        whole.update(sid, torch.from_numpy(p).to(device), torch.from_numpy(g).to(device), group=grp)
    shards = [RESMeter() for _ in range(3)]
    for n, (sid, p, g, grp) in enumerate(reversed(items)):
        shards[n % 3].update(sid, p, g, group=grp)
    merged = shards[0].merge(shards[1]).merge(shards[2])
    order = [sid for sid, *_ in items]
    assert merged.compute(order) == whole.compute() == whole.compute(order)
    inter, union = intersection_union(np.stack([p for _, p, _, _ in items[:1]]), np.stack([g for *_, g, _ in items[:1]]))
    assert whole.records["s0"][:2] == (int(inter[0]), int(union[0]))
    expect = res_scores(
        [whole.records[s][0] for s in order], [whole.records[s][1] for s in order], groups=[it[3] for it in items]
    )
    assert whole.compute() == expect
    assert isinstance(expect, RESScores) and expect.as_dict()["n"] == 40


def test_meter_update_batch_matches_update() -> None:
    rng = np.random.default_rng(5)
    preds = rng.random((4, 33, 21)) < 0.5
    gts = rng.choice(np.array([0, 1, 2, 255], dtype=np.uint8), size=(4, 33, 21))
    one, batch = RESMeter("sa2va"), RESMeter("sa2va")
    for k in range(4):
        one.update(k, preds[k], gts[k], group=k // 2)
    batch.update_batch(list(range(4)), preds, gts, groups=[0, 0, 1, 1])
    assert one.records == batch.records
    assert one.compute() == batch.compute()


def test_meter_duplicates_and_order_errors() -> None:
    m = RESMeter()
    m.add_counts("a", 1, 2)
    m.add_counts("a", 1, 2)  # an identical repeat (padded shard) is harmless
    assert len(m) == 1
    with pytest.raises(ValueError, match="already scored"):
        m.add_counts("a", 1, 3)
    other = RESMeter()
    other.add_counts("a", 0, 2)
    with pytest.raises(ValueError, match="already scored"):
        m.merge(other)
    with pytest.raises(ValueError, match="never scored"):
        m.compute(["a", "b"])
    m.add_counts("b", 0, 0)
    with pytest.raises(ValueError, match="not in the order"):
        m.compute(["a"])
    with pytest.raises(ValueError, match="more than once"):
        m.compute(["a", "a", "b"])
    with pytest.raises(ValueError, match="different protocol"):
        m.merge(RESMeter("sa2va"))
    with pytest.raises(ValueError, match="Sa2VA's rule"):
        RESMeter("lisa", missing="sa2va_skip")
    with pytest.raises(ValueError, match="sa2va_skip"):
        m.add_counts("c", 0, 0, skipped=True)
    with pytest.raises(ValueError, match="no samples"):
        RESMeter().compute()
    m.reset()
    assert len(m) == 0
