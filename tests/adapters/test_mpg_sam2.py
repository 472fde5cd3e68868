"""MPG-SAM 2 adapter against a stub clone with the official entry points (tests/adapters/repo_stubs.py): the
official flags parsed by the clone's own opts.py (fp32, not opts' bf16 default), frames at 1024x1024 plus 224x224
with ImageNet normalisation, raw captions, query 0, threshold rules, MeViS 24-frame clips, errors. In refbench's own
test environment (torch CPU); the real model needs the mpg-sam2 environment and its weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from refbench.adapters.base import AdapterError, RunContext
from refbench.adapters.mpg_sam2 import clips
from refbench.adapters.registry import load_adapter
from refbench.cards import dataset_card
from refbench.runs.runner import RunConfig, run
from refbench.runs.store import decode_masks
from tests.adapters.repo_stubs import write_mpg_sam2
from tests.adapters.stubs import read_log
from tests.adapters.test_referdino import MEAN, STD, _request, expected_tensor, sha


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return write_mpg_sam2(tmp_path_factory.mktemp("MPG-SAM2"))


def expected(frames: list[Image.Image], rule: str) -> np.ndarray:
    """The stub's query 0 (pixels of the 4x4-pooled 1024 frame brighter than its mean: logit +-4), bilinear to
    the original size, sigmoid, compared with 0.5 by ``rule``."""
    x = torch.from_numpy(np.stack([expected_tensor(f, 1024, 1024) for f in frames]))
    gray = (x * torch.from_numpy(STD).view(1, 3, 1, 1) + torch.from_numpy(MEAN).view(1, 3, 1, 1)).mean(1, keepdim=True)
    small = F.avg_pool2d(gray, 4)[:, 0]
    q0 = torch.where(small > small.mean(dim=(1, 2), keepdim=True), torch.tensor(4.0), torch.tensor(-4.0))
    p = F.interpolate(q0[None], size=(160, 240), mode="bilinear", align_corners=False).sigmoid()[0]
    return (p >= 0.5 if rule == ">=" else p > 0.5).numpy()


def test_mevis_demo_matches_the_official_call(demo_env, clone, stub_log, tmp_path, no_network):
    repo, weights = clone
    res = run(RunConfig(model="mpg-sam2", dataset="demo_mevis_val_u", out=str(tmp_path / "r"), limit=6,
                        model_args={"repo": str(repo), "version": str(weights), "ignore_pins": True}))
    assert res.predicted == 6 and not no_network  # 6 of 15 samples: 1024x1024 frames are slow on 2 cores
    loader = dataset_card("demo_mevis_val_u").open()
    samples = loader.samples()[:6]
    calls = read_log(stub_log)
    args = calls[0]["args"]
    assert calls[0]["call"] == "build"
    # the shell scripts' flags, parsed by the clone's opts.py: fp32 although opts.py defaults to bf16
    assert (args["with_box_refine"], args["binary"], args["freeze_text_encoder"], args["inference"], args["masks"]) == (
        True, True, True, True, True)
    assert args["precision"] == "fp32" and args["version"] == str(weights) and args["threshold"] == 0.5
    assert args["device"] == "cpu"
    forwards = calls[1:]
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    i = 0
    for s in samples:
        frames = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
        parts = clips(len(frames), 24)  # inference_mevis.py: non-overlapping 24-frame clips
        mine = forwards[i:i + len(parts)]
        i += len(parts)
        for c, part in zip(mine, parts):
            assert c["shape"] == [len(part), 3, 1024, 1024] and c["beit_shape"] == [len(part), 3, 224, 224]
            assert c["frame_sha"] == [sha(expected_tensor(frames[j], 1024, 1024)) for j in part]
            assert c["beit_sha"] == [sha(expected_tensor(frames[j], 224, 224)) for j in part]
            assert c["captions"] == [s.text] and c["target_size"] == [1024, 1024]
            assert (c["dtype"], c["training"]) == ("torch.float32", False)
        got = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in preds[s.video][s.exp_id]]})
        np.testing.assert_array_equal(got, expected(frames, ">="))  # query 0; MeViS keeps p >= 0.5
    assert i == len(forwards)
    state = json.loads((tmp_path / "r" / "run.json").read_text())["adapter"]["fingerprint_state"]
    assert (state["clip_len"], state["threshold_rule"], state["precision"], state["family"]) == (24, ">=", "fp32",
                                                                                                "mevis")
    assert state["version"]["name"] == "ytvos" and len(state["version"]["config_sha256"]) == 64


def test_clips_threshold_rule_and_precision(demo_env, clone, stub_log):
    repo, weights = clone
    loader = dataset_card("demo_mevis_val_u").open()
    s = loader.samples()[0]
    frames = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
    assert clips(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and clips(3, 0) == [[0, 1, 2]]

    def adapter(dataset, **o):
        a, _ = load_adapter("mpg-sam2", {"repo": str(repo), "version": str(weights), "ignore_pins": True, **o})
        a.setup(RunContext(device="cpu", dataset=dataset))
        return a

    a = adapter("demo_mevis_val_u", clip_len=5)
    pred = a.predict_video([_request(loader, s)])[0]
    sizes = [c["shape"][0] for c in read_log(stub_log) if c["call"] == "forward"]
    assert sizes == [len(c) for c in clips(len(frames), 5)] and pred.diagnostics["calls"] == len(sizes)
    np.testing.assert_array_equal(pred.masks, expected(frames, ">="))
    y = adapter("refytvos_val")  # inference_ytvos.py: the whole video in one call, sigmoid > threshold
    pred = y.predict_video([_request(loader, s)])[0]
    assert [c["shape"][0] for c in read_log(stub_log) if c["call"] == "forward"][-1] == len(frames)
    np.testing.assert_array_equal(pred.masks, expected(frames, ">"))
    assert y.fingerprint_state()["clip_len"] == 0 and y.fingerprint_state()["threshold_rule"] == ">"
    b = adapter("refytvos_val", precision="bf16")
    b.predict_video([_request(loader, s, n=2)])
    assert read_log(stub_log)[-1]["dtype"] == "torch.bfloat16"
    assert len({a.fingerprint(), y.fingerprint(), b.fingerprint()}) == 3


def test_errors(demo_env, clone, tmp_path):
    repo, weights = clone

    def err(**o):
        a, _ = load_adapter("mpg-sam2", {"ignore_pins": True, **o})
        with pytest.raises(AdapterError) as e:
            a.setup(RunContext(device="cpu", dataset="demo_mevis_val_u"))
        return str(e.value)

    assert "git clone https://github.com/rongfu-dsb/MPG-SAM2" in err(version=str(weights))
    assert "pass --model-arg version=DIR" in err(repo=str(repo))
    assert "no config.json in" in err(repo=str(repo), version=str(tmp_path))
    (tmp_path / "clone" / "models").mkdir(parents=True)
    (tmp_path / "clone" / "models" / "__init__.py").write_text("")
    assert "opts.py is missing" in err(repo=str(tmp_path / "clone"), version=str(weights))
