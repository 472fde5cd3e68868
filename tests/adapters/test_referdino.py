"""ReferDINO adapter against a stub clone with the official entry points (tests/adapters/repo_stubs.py): what
build_model and infer received (config, script arguments, frames at short side 360 with ImageNet normalisation,
raw captions, targets, crop_len), the official unpadding and query choice (top-1, threshold union, top-1 fallback),
MeViS subsets, export through the run, errors. These run in refbench's own test environment (torch CPU, no
torchvision, no easydict / ruamel: the adapter's fallbacks), in process and through the worker; the real model
needs the referdino environment and its weights."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from refbench.adapters.base import AdapterError, Frames, RunContext, VideoRequest
from refbench.adapters.referdino import ReferDINOAdapter, family_of, subsets
from refbench.adapters.registry import load_adapter
from refbench.cards import dataset_card
from refbench.runs.runner import RunConfig, run
from refbench.runs.store import decode_masks
from tests.adapters.repo_stubs import write_referdino
from tests.adapters.stubs import read_log

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return write_referdino(tmp_path_factory.mktemp("ReferDINO"))


def expected_tensor(img: Image.Image, h: int, w: int) -> np.ndarray:
    """T.Resize + ToTensor + Normalize written out with PIL and numpy float32 (an independent reference)."""
    r = img if (img.height, img.width) == (h, w) else img.resize((w, h), Image.BILINEAR)
    a = np.asarray(r, dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(((a - MEAN) / STD).transpose(2, 0, 1))


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(a.astype(np.float32).tobytes()).hexdigest()[:16]


def stub_logits(x: np.ndarray) -> np.ndarray:
    """The stub's mask logits (T, 3, H+8, W+8) for normalised frames ``x: (T, 3, H, W)`` (repo_stubs doc)."""
    t, _, h, w = x.shape
    gray = (x * STD[None, :, None, None] + MEAN[None, :, None, None]).mean(1)
    bright = gray > gray.mean(axis=(1, 2), keepdims=True)
    m = np.full((t, 3, h + 8, w + 8), 10.0, np.float32)
    m[:, 0, :h, :w] = np.where(bright, 6.0, -6.0)
    m[:, 1, :h, :w] = -6.0
    m[:, 1, :h, : w // 3] = 6.0
    m[:, 2, :h, :w] = -6.0
    return m


def expected_masks(frames: list[Image.Image], queries: list[int], mode: str) -> np.ndarray:
    h0, w0 = frames[0].height, frames[0].width
    h, w = (360, 540) if h0 <= w0 else (540, 360)
    x = np.stack([expected_tensor(f, h, w) for f in frames])
    m = torch.from_numpy(stub_logits(x)[:, queries, :h, :w])  # the official unpad: [:img_h, :img_w]
    up = F.interpolate(m, size=(h0, w0), mode="bilinear", align_corners=False)
    if mode == "top1":
        return (up.sigmoid() > 0.5).squeeze(1).numpy()
    return (up > 0).sum(1).clamp(max=1).numpy().astype(bool)


def _run(clone, out, dataset="demo_mevis_val_u", limit=None, **args):
    return run(RunConfig(model="referdino-swinb", dataset=dataset, out=str(out), limit=limit,
                         model_args={"repo": str(clone), "ignore_pins": True, **args}))


def test_mevis_demo_matches_the_official_call(demo_env, clone, stub_log, tmp_path, no_network):
    res = _run(clone, tmp_path / "r")
    assert res.predicted == 15 and not no_network
    loader = dataset_card("demo_mevis_val_u").open()
    samples = loader.samples()
    calls = read_log(stub_log)
    build, infers = calls[0], calls[1:]
    assert build["call"] == "build" and [c["call"] for c in infers] == ["infer"] * 15
    # inference_mevis.py: its argparse values under the config, tracking_alpha overridden to 0.1 (config: 0.3)
    assert build["tracking_alpha"] == 0.1 and build["device"] == "cpu"
    assert build["pretrained_path"] == str(clone / "pretrained" / "groundingdino_swinb_cogcoor.pth")
    assert build["text_encoder_type"] == "bert-base-uncased" and build["num_queries"] == 900
    assert build["script"] == {"obj_threshold": 0.2, "top1": False, "subset_size": 0, "split": "valid",
                               "checkpoint_path": str(clone / "ckpt" / "mevis_swinb.pth"),
                               "config_path": str(clone / "configs" / "mevis_swinb.yaml")}
    assert {"GroundingDINO", "enable_amp", "lr", "seed", "dataset_name", "version", "num_gpus"} <= set(build["keys"])
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    for s, c in zip(samples, infers):
        frames = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
        t = len(frames)
        assert c["shape"] == [1, t, 3, 360, 540] and c["pad_mask_any"] is False  # short side 360, no padding
        assert c["frame_sha"] == [sha(expected_tensor(f, 360, 540)) for f in frames]  # ImageNet normalisation
        assert c["captions"] == [s.text] and c["target_size"] == [360, 540] and c["target_keys"] == ["size"]
        assert (c["crop_len"], c["dtype"], c["device"], c["training"], c["autocast"]) == (
            36, "torch.float32", "cpu", False, False)
        assert c["tracking_alpha"] == 0.1
        got = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in preds[s.video][s.exp_id]]})
        # threshold: queries 0 (0.7) and 1 (0.4) are above 0.2 and united; query 2 (0.05) is not
        np.testing.assert_array_equal(got, expected_masks(frames, [0, 1], "threshold"))
        # without the unpadding the stub's positive band would bleed into the bottom and right edges
        padded = torch.from_numpy(stub_logits(np.stack([expected_tensor(f, 360, 540) for f in frames]))[:, [0, 1]])
        leaky = (F.interpolate(padded, size=(160, 240), mode="bilinear", align_corners=False) > 0).any(1).numpy()
        assert (leaky != got).any() and leaky[:, -1, :].all()
    diag = json.loads((tmp_path / "r" / "diagnostics.jsonl").read_text().splitlines()[0])["diagnostics"]
    assert diag["query_select"] == "threshold" and diag["subsets"][0]["chosen"] == [0, 1]
    assert diag["subsets"][0]["scores"][0] == pytest.approx(0.7) and diag["deform_attn"] == "pytorch"
    state = json.loads((tmp_path / "r" / "run.json").read_text())["adapter"]["fingerprint_state"]
    assert state["query_select"] == "threshold" and "the MeViS script" in state["query_select_from"]
    assert state["family"] == "mevis" and state["tracking_alpha"] == 0.1 and state["config"]["tracking_alpha"] == 0.3
    assert state["checkpoint"]["name"] == "mevis_swinb.pth" and state["checkpoint"]["load"] == "weights_only"
    assert state["repo"]["py_files"] == 2 and len(state["repo"]["code_sha256"]) == 64
    assert res.summary["metrics"]["J&F"] > 0


def _request(loader, sample, text=None, n=None):
    paths = loader.frame_paths(sample)[:n]
    return VideoRequest(f"{sample.video}/{sample.exp_id}", sample.video, sample.exp_id, text or sample.text,
                        Frames([p.stem for p in paths], paths), (160, 240))


def _adapter(clone, dataset, **opts):
    a, _card = load_adapter("referdino-swinb", {"repo": str(clone), "ignore_pins": True, **opts})
    a.setup(RunContext(device="cpu", dataset=dataset))
    return a


def test_ref_youtube_vos_family_top1_and_config(demo_env, clone, stub_log):
    """On a Ref-YouTube-VOS card: ytvos_swinb.yaml (tracking_alpha kept), ryt_swinb.pth, top-1, frames_idx."""
    loader = dataset_card("demo_mevis_val_u").open()
    s = loader.samples()[0]
    a = _adapter(clone, "refytvos_val")
    pred = a.predict_video([_request(loader, s)])[0]
    build, call = read_log(stub_log)
    assert build["tracking_alpha"] == 0.25 and build["script"]["checkpoint_path"].endswith("ryt_swinb.pth")
    assert build["script"]["config_path"].endswith("ytvos_swinb.yaml") and build["script"]["obj_threshold"] is None
    assert call["target_keys"] == ["frames_idx", "size"]
    frames = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
    np.testing.assert_array_equal(pred.masks, expected_masks(frames, [0], "top1"))
    assert pred.diagnostics["subsets"][0]["chosen"] == [0]
    assert a.fingerprint_state()["query_select"] == "top1"


def test_top1_fallback_and_options_change_the_fingerprint(demo_env, clone, stub_log):
    loader = dataset_card("demo_mevis_val_u").open()
    s = loader.samples()[1]
    a = _adapter(clone, "demo_mevis_val_u")
    pred = a.predict_video([_request(loader, s, text="nothing at all")])[0]
    frames = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
    # no query above 0.2: the top-1 query (1, the left third), united like the threshold rule
    assert pred.diagnostics["subsets"][0]["chosen"] == [1]
    np.testing.assert_array_equal(pred.masks, expected_masks(frames, [1], "threshold"))
    top1 = _adapter(clone, "demo_mevis_val_u", query_select="top1", crop_len=4)
    pred = top1.predict_video([_request(loader, s)])[0]
    np.testing.assert_array_equal(pred.masks, expected_masks(frames, [0], "top1"))
    assert read_log(stub_log)[-1]["crop_len"] == 4 and pred.diagnostics["subsets"][0]["chunks"] == -(-len(frames) // 4)
    assert len({a.fingerprint(), top1.fingerprint(), _adapter(clone, "demo_mevis_val_u").fingerprint()}) == 2


def test_subsets_interleave_frames_like_the_mevis_script(demo_env, clone, stub_log):
    assert subsets(10, 4) == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]] and subsets(5, 0) == [[0, 1, 2, 3, 4]]
    loader = dataset_card("demo_mevis_val_u").open()
    s = loader.samples()[0]
    frames = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
    a = _adapter(clone, "demo_mevis_val_u", subset_size=5)
    pred = a.predict_video([_request(loader, s)])[0]
    calls = [c for c in read_log(stub_log) if c["call"] == "infer"]
    parts = subsets(len(frames), 5)
    assert [c["shape"][1] for c in calls] == [len(p) for p in parts]
    for c, part in zip(calls, parts):
        assert c["frame_sha"] == [sha(expected_tensor(frames[i], 360, 540)) for i in part]
    np.testing.assert_array_equal(pred.masks, expected_masks(frames, [0, 1], "threshold"))


def test_family_of_dataset_cards():
    assert family_of("mevis_val_u")[0] == family_of("mevis_val")[0] == family_of("demo_mevis_val_u")[0] == "mevis"
    assert family_of("refytvos_val")[0] == "ytvos" and family_of("refdavis17_val")[0] == "davis"
    fam, why = family_of("revos_val")
    assert fam == "ytvos" and "no official ReferDINO script" in why


def test_errors_name_the_option_and_the_file(demo_env, clone, tmp_path):
    from click.testing import CliRunner

    from refbench.cli import main

    def err(**opts):
        with pytest.raises(AdapterError) as e:
            _adapter(opts.pop("repo", clone), "demo_mevis_val_u", **opts)
        return str(e.value)

    assert "pass --model-arg repo=DIR (git clone https://github.com/iSEE-Laboratory/ReferDINO)" in err(repo="")
    broken = tmp_path / "broken"
    (broken / "configs").mkdir(parents=True)
    assert "models/__init__.py is missing (models.build_model(args) builds the model)" in err(repo=broken)
    assert "huggingface-cli download liangtm/referdino coco_swinb.pth" in err(weights="coco_swinb.pth")
    assert "--model-arg checkpoint=nope.pth: no such file" in err(checkpoint="nope.pth")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 0.1\n")
    assert "not an official ReferDINO config" in err(config=str(bad))
    r = CliRunner().invoke(main, ["run", "--model", "referdino-swinb", "--dataset", "demo_mevis_val_u",
                                  "--no-leaderboard", "--model-arg", "ignore_pins=true", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert r.output.startswith("Error: model referdino-swinb runs from a clone of its official repository")


def test_through_the_worker_gives_the_same_masks(demo_env, clone, tmp_path):
    """The worker protocol with this interpreter (the referdino environment is not built here)."""
    a = _run(clone, tmp_path / "a", limit=2)
    b = _run(clone, tmp_path / "b", limit=2, python=sys.executable)
    pa = json.loads(Path(a.run_dir, "predictions.json").read_text())
    pb = json.loads(Path(b.run_dir, "predictions.json").read_text())
    assert pa == pb and len(pa) == 1
    ra, rb = (json.loads(Path(x.run_dir, "run.json").read_text())["adapter"] for x in (a, b))
    assert ra["fingerprint"] == rb["fingerprint"]
