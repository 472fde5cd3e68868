"""The vos task's contract: requests with prompts (and their trip across the worker protocol), the prediction
check, the merge rules, the frame-keyed RLE JSON every VOS protocol reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refbench.adapters.base import (AdapterError, Frames, VosPrediction, VosPrompt, VosRequest,
                                    check_vos_prediction)
from refbench.adapters.vos_merge import merge_binary, non_overlap, scores_to_masks
from refbench.data.base import PredictionError
from refbench.runs.store import encode_mask


def _req(overlap="exclusive", n=4, size=(6, 8)) -> VosRequest:
    a = np.zeros(size, bool)
    a[1:3, 1:4] = True
    b = np.zeros(size, bool)
    b[2:5, 3:7] = True
    names = [f"{i:05d}" for i in range(n)]
    return VosRequest("v", "v", Frames(names, [Path(f"/nowhere/{x}.jpg") for x in names]), size,
                      (VosPrompt("1", 0, encode_mask(a)), VosPrompt("2", 2, encode_mask(b))), overlap)


def test_prompt_masks_decode_through_refbench_rle():
    r = _req()
    assert r.objects == ("1", "2")
    assert r.prompts[1].mask().sum() == 12 and r.prompts[1].mask().dtype == bool
    bad = VosPrompt("3", 0, {"size": [6, 8], "counts": "!!"})
    with pytest.raises(Exception, match="prompt of object 3"):
        bad.mask()


def test_check_vos_prediction_refuses_what_is_off():
    r = _req()
    ok = {"1": np.zeros((4, 6, 8), bool), "2": np.zeros((4, 6, 8), bool)}
    assert set(check_vos_prediction(r, VosPrediction(ok), "x")) == {"1", "2"}
    with pytest.raises(AdapterError, match=r"masks for objects \['1'\], expected one per prompted object"):
        check_vos_prediction(r, VosPrediction({"1": ok["1"]}), "x")
    with pytest.raises(AdapterError, match="object 2: masks have shape"):
        check_vos_prediction(r, VosPrediction({"1": ok["1"], "2": np.zeros((3, 6, 8))}), "x")
    both = {"1": np.ones((4, 6, 8), bool), "2": np.zeros((4, 6, 8), bool)}
    both["2"][3, 0, 0] = True
    with pytest.raises(AdapterError, match=r"objects 1 and 2 overlap on frame 3 \(00003\)"):
        check_vos_prediction(r, VosPrediction(both), "x")
    # SA-V / SeCVOS keep overlaps
    assert check_vos_prediction(_req("allowed"), VosPrediction(both), "x")["2"].sum() == 1
    with pytest.raises(AdapterError, match="expected a VosPrediction"):
        check_vos_prediction(r, {"1": 1}, "x")


def test_non_overlap_is_sam2s_constraint():
    s = np.array([[[0.5, 3.0, -1.0, 2.0]], [[1.5, 3.0, -2.0, -20.0]]], np.float32)  # (K=2, 1, 4)
    got = non_overlap(s)
    # the winner keeps its score, the other is clamped to at most -10; ties go to the first object
    assert got.tolist() == [[[-10.0, 3.0, -1.0, 2.0]], [[1.5, -10.0, -10.0, -20.0]]]
    assert scores_to_masks(s).tolist() == [[[False, True, False, True]], [[True, False, False, False]]]
    assert scores_to_masks(s, constrain=False)[1].tolist() == [[True, True, False, False]]
    assert non_overlap(s[:1]) is not None and np.array_equal(non_overlap(s[:1]), s[:1])


def test_merge_binary_rules():
    a = np.array([[1, 1, 0]], bool)[None].repeat(3, 0)
    b = np.array([[0, 1, 1]], bool)[None].repeat(3, 0)
    latest = merge_binary({"1": a, "2": b}, ["1", "2"], {"1": 0, "2": 1}, "latest")
    assert latest["1"][0].tolist() == [[True, False, False]] and latest["2"][0].tolist() == [[False, True, True]]
    low = merge_binary({"1": a, "2": b}, ["1", "2"], {"1": 0, "2": 1}, "lowest_id")
    assert low["1"][0].tolist() == [[True, True, False]] and low["2"][0].tolist() == [[False, False, True]]
    with pytest.raises(ValueError, match="merge rule"):
        merge_binary({"1": a}, ["1"], {"1": 0}, "biggest")


def test_vos_requests_cross_the_worker_protocol():
    """Prompts go out as RLE with their frame index and come back equal; out-of-range frames are refused."""
    from refbench.adapters.worker import _request_doc, _request_from_doc

    r = _req()
    doc = json.loads(json.dumps(_request_doc("vos", r)))
    assert doc["prompts"][1] == {"obj_id": "2", "frame": 2, "rle": r.prompts[1].rle}
    back = _request_from_doc("vos", doc)
    assert back.objects == r.objects and back.overlap == "exclusive" and back.size == r.size
    assert back.frames.names == r.frames.names and back.frames.paths == r.frames.paths
    for p, q in zip(back.prompts, r.prompts):
        assert p.frame == q.frame and np.array_equal(p.mask(), q.mask())
    doc["prompts"][1]["frame"] = 9
    with pytest.raises(AdapterError, match="prompt of object 2 on frame 9, outside the 4 frames"):
        _request_from_doc("vos", doc)
    doc["overlap"] = "sometimes"
    with pytest.raises(AdapterError, match="overlap must be one of"):
        _request_from_doc("vos", doc)


def test_worker_refuses_the_oracle_but_not_prompt_users(tmp_path):
    """uses_ground_truth (the oracle) stays refused in a worker; a vos adapter reading prompts is set up and runs."""
    import sys

    from refbench.adapters.worker import WorkerAdapter
    from refbench.adapters.base import RunContext

    w = WorkerAdapter("refbench.adapters.baselines:OracleAdapter", sys.executable, "oracle")
    with pytest.raises(ValueError, match="reads the ground truth and cannot run in a worker"):
        w.setup(RunContext())
    w = WorkerAdapter("refbench.adapters.vos_baselines:FirstFrameAdapter", sys.executable, "first-frame",
                      merge="latest")
    try:
        w.setup(RunContext())
        assert w.tasks == frozenset({"vos"})
        (pred,) = w.predict_vos([_req()])
    finally:
        w.close()
    r = _req()
    assert pred.masks["1"][0].tolist() == r.prompts[0].mask().tolist()
    assert not pred.masks["2"][:2].any() and pred.masks["2"][2].tolist() == r.prompts[1].mask().tolist()
    assert not (pred.masks["1"] & pred.masks["2"]).any()  # merged: one object per pixel


# ----------------------------------------------------------------------------------------------
# The frame-keyed RLE JSON
# ----------------------------------------------------------------------------------------------


def _rle(m):
    return encode_mask(np.asarray(m, bool))


def test_frame_keyed_json_source(tmp_path):
    from refbench.preds.masks import open_mask_source
    from refbench.preds.vos_json import RleFrameSource, is_frame_keyed

    a = np.zeros((4, 5), bool)
    a[0, :2] = True
    b = np.zeros((4, 5), bool)
    b[3, 3:] = True
    doc = {"v": {"1": {"00000": _rle(a), "00001": None}, "2": {"00001": _rle(b)}}, "w": {}}
    p = tmp_path / "pred.json"
    p.write_text(json.dumps(doc))
    assert is_frame_keyed(p)
    src = open_mask_source(p, "sequence", "index")
    assert isinstance(src, RleFrameSource)
    m = src.read("v", None, ["00000", "00001"], (4, 5))
    assert m[0][a].tolist() == [1, 1] and m[1][b].tolist() == [2, 2] and m.sum() == 2 + 4
    assert src.status("v", None, ["00000", "00002"]).missing_frames == ("00002",)
    assert src.status("w", None, ["00000"]).complete  # a video without objects: predicted, empty
    assert src.listed_frames("v") == ["00000", "00001"]
    with pytest.raises(PredictionError, match="no prediction for v frame 00002"):
        src.read("v", None, ["00002"], (4, 5))
    with pytest.raises(PredictionError, match="video 'w' is not in the dataset"):
        src.check_known({"v": None})
    # expression layout (SA-V): the object is the expression, overlaps allowed
    doc = {"v": {"000": {"00000": _rle(a)}, "001": {"00000": _rle(a)}}}
    p.write_text(json.dumps(doc))
    src = open_mask_source(p, "expression", "index")
    assert src.read("v", "001", ["00000"], (4, 5))[0].sum() == 2
    assert not src.status("v", "002", ["00000"]).expression_present
    # sequence layout: overlapping objects and ids that are no palette index are refused
    doc = {"v": {"1": {"00000": _rle(a)}, "2": {"00000": _rle(a)}}}
    p.write_text(json.dumps(doc))
    with pytest.raises(PredictionError, match="object 2 overlaps object 1 on 2 pixel"):
        open_mask_source(p, "sequence", "index").read("v", None, ["00000"], (4, 5))
    p.write_text(json.dumps({"v": {"000": {"00000": _rle(a)}}}))
    with pytest.raises(PredictionError, match="object id '000' is not an integer 1-254"):
        open_mask_source(p, "sequence", "index")
    # the positional list form is still RleSequenceSource's, and not frame-keyed
    p.write_text(json.dumps({"v": {"1": [_rle(a)]}}))
    assert not is_frame_keyed(p)


def test_png_protocols_still_refuse_a_positional_rle_json(shared_data, tmp_path):
    from refbench.evaluate.run import evaluate

    p = tmp_path / "pred.json"
    p.write_text(json.dumps({"sav_syn_001": {"000": [None]}}))
    with pytest.raises(PredictionError, match="per-frame RLE list has no defined frame alignment"):
        evaluate("sav_val", p, root=shared_data / "sav_golden")
