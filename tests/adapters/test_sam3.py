"""SAM 3 zero-shot adapter: the instance-merging policies (pure functions, here), and in the ``sam`` environment
(torch 2.14.1 + torchvision 0.29.1 + transformers 5.24.0, built by .ci/run with ``refbench env create sam3
--minimal``) a tiny random ``Sam3VideoModel`` checkpoint, saved by a fixture and loaded through the adapter's own
``from_pretrained`` path: forward then reverse coverage of every frame, the merged masks against the raw
instances, the kernel state, float32, end-to-end runs on the RefVOS and RES demos through the worker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from refbench.adapters.sam3 import merge_image, merge_video
from refbench.runs.store import decode_masks
from tests.adapters.conftest import REPO, ci_env


def _frame(ids, scores, masks):
    return {"object_ids": ids, "scores": scores, "masks": np.asarray(masks, dtype=bool).reshape(len(ids), 1, 3)}


def test_merge_video_best_and_union():
    a, b, c = [1, 0, 0], [0, 1, 0], [0, 0, 1]
    frames = [_frame([3, 5], [0.6, 0.9], [a, b]), _frame([3], [0.7], [c]), _frame([], [], np.zeros((0, 3)))]
    best, info = merge_video(frames, (1, 3), "best", 0.5)
    # object 3: (0.6 + 0.7 + 0) / 3 beats object 5: 0.9 / 3; its mask on every frame where it exists
    assert info == {"object": 3, "mean_score": round(1.3 / 3, 6)}
    np.testing.assert_array_equal(best[:, 0], [a, c, [0, 0, 0]])
    union, info = merge_video(frames, (1, 3), "union", 0.65)
    assert info == {"objects": [3, 5]}
    np.testing.assert_array_equal(union[:, 0], [b, c, [0, 0, 0]])  # frame 0: object 3 (0.6) is below 0.65
    tie, info = merge_video([_frame([7, 2], [0.5, 0.5], [a, b])], (1, 3), "best", 0.5)
    assert info["object"] == 2 and tie[0, 0].tolist() == [False, True, False]  # the lower id on a tie
    empty, info = merge_video([_frame([], [], np.zeros((0, 3)))] * 2, (1, 3), "best", 0.5)
    assert not empty.any() and info["object"] is None


def test_merge_image_best_and_union():
    masks = np.array([[[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]]], dtype=bool)
    m, info = merge_image([0.6, 0.9, 0.4], masks, (1, 3), "best", 0.5)
    assert info == {"chosen": [1]} and m[0].tolist() == [False, True, False]
    m, info = merge_image([0.6, 0.9, 0.4], masks, (1, 3), "union", 0.5)
    assert info == {"chosen": [0, 1]} and m[0].tolist() == [True, True, False]
    m, info = merge_image([0.1], masks[:1], (1, 3), "best", 0.5)
    assert info == {"chosen": []} and not m.any()


@pytest.fixture(scope="session")
def sam_env():
    return ci_env("sam")


@pytest.fixture(scope="session")
def tiny_sam3(sam_env, tmp_path_factory):
    """A tiny random Sam3VideoModel checkpoint folder, written by the sam environment's Python."""
    out = tmp_path_factory.mktemp("sam3-tiny")
    proc = subprocess.run([str(sam_env), str(REPO / "tests" / "adapters" / "sam3_tiny.py"), str(out)],
                          capture_output=True, text=True, timeout=600, env=_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"video_params": 4475079}
    return out


def _env():
    import os

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_propagation_directions_policies_and_preprocessing(sam_env, tiny_sam3, demo_base):
    from refbench.cards import dataset_card

    import os

    os.environ["REFBENCH_DEMO_DIR"] = str(demo_base)
    loader = dataset_card("demo_mevis_val_u").open()
    paths = [str(p) for p in loader.frame_paths(loader.samples()[0])[:4]]
    proc = subprocess.run([str(sam_env), str(REPO / "tests" / "adapters" / "sam3_probe.py"), str(tiny_sam3), *paths],
                          capture_output=True, text=True, timeout=900, env=_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torchvision_equal"] == {"360": True, "[1024, 1024]": True, "[224, 224]": True}
    t = len(paths)
    both = out["both"]
    # forward from frame 0 over every frame, then reverse from the last frame back to frame 0, on one session
    assert both["calls"] == [[i, False] for i in range(t)] + [[i, True] for i in range(t - 2, -1, -1)]
    assert both["visited"] == {"forward": list(range(t)), "reverse": list(range(t - 2, -1, -1))}
    assert both["diagnostics"]["frames_forward"] == list(range(t))
    assert out["forward_best"]["calls"] == [[i, False] for i in range(t)]
    assert both["state"]["cv_utils_kernel"] == "not installed" and both["state"]["transformers"] == "5.24.0"
    assert both["fingerprint"] != out["forward_best"]["fingerprint"]
    for label, policy, thr in (("forward_best", "best", 0.5), ("forward_union", "union", 0.0)):
        rec = out[label]
        raw = [{"object_ids": f["object_ids"], "scores": f["scores"],
                "masks": decode_masks(f["masks"]) if f["masks"] else np.zeros((0, 160, 240), bool)} for f in rec["raw"]]
        want, _info = merge_video(raw, (160, 240), policy, thr)
        np.testing.assert_array_equal(decode_masks(rec["masks"]), want)
    first = out["forward_union"]["raw"][0]
    assert len(first["object_ids"]) >= 2  # the random detector finds several instances on frame 0
    best = decode_masks(out["forward_best"]["masks"])[0]
    union = decode_masks(out["forward_union"]["masks"])[0]
    assert (union >= best).all() and union.sum() > best.sum() > 0


def test_demo_runs_through_the_worker(sam_env, tiny_sam3, demo_env, tmp_path, monkeypatch):
    from refbench.runs.runner import RunConfig, run

    r = run(RunConfig(model="sam3", dataset="demo_mevis_val_u", out=str(tmp_path / "v"), limit=1,
                      model_args={"checkpoint": str(tiny_sam3)}))
    assert r.predicted == 1
    meta = json.loads((tmp_path / "v" / "run.json").read_text())["adapter"]
    assert meta["fingerprint_state"]["cv_utils_kernel"] == "not installed"
    diag = json.loads((tmp_path / "v" / "diagnostics.jsonl").read_text().splitlines()[0])["diagnostics"]
    n = len(diag["frames_forward"])
    assert diag["frames_forward"] == list(range(n)) and diag["frames_reverse"] == list(range(n - 2, -1, -1))
    res = {}
    for policy in ("best", "union"):
        run(RunConfig(model="sam3", dataset="demo_refcoco_val", out=str(tmp_path / policy), limit=3,
                      model_args={"checkpoint": str(tiny_sam3), "instances": policy, "score_threshold": 0.0}))
        res[policy] = json.loads((tmp_path / policy / "predictions.json").read_text())
    assert res["best"].keys() == res["union"].keys() and len(res["best"]) == 3
    for k in res["best"]:
        b = decode_masks({"size": res["best"][k]["size"], "rles": [res["best"][k]["counts"]]})[0]
        u = decode_masks({"size": res["union"][k]["size"], "rles": [res["union"][k]["counts"]]})[0]
        assert (u >= b).all() and b.any()


def test_sam_environment_built_by_env_create(sam_env):
    from click.testing import CliRunner

    from refbench.cli import main

    meta = json.loads((Path(sam_env).parents[1] / "refbench-env.json").read_text())
    assert meta["requirements"][:3] == ["torch==2.14.1", "torchvision==0.29.1", "transformers==5.24.0"]
    r = CliRunner().invoke(main, ["env", "check", "sam3"])
    assert r.exit_code == 0, r.output
    assert "torch 2.14.1, torchvision 0.29.1, transformers 5.24.0" in r.output
