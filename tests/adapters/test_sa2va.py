"""Sa2VA adapter against stub remote-code checkpoints (InternVL and Qwen families, told apart by auto_map only):
prompts, the '?' rule, processor, key frames (first5 and uniform), RES several-[SEG] union; in this process
(transformers 4.57.0, the sa2va-latest pin) and in the sa2va-legacy environment (4.49.0) through the worker."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from refbench.adapters.base import Frames, ImageRequest, RunContext, VideoRequest
from refbench.adapters.keyframes import uniform
from refbench.adapters.registry import load_adapter
from refbench.adapters.sa2va import IMAGE_PROMPT, video_prompt
from refbench.cards import dataset_card
from refbench.runs.runner import RunConfig, run
from refbench.runs.store import decode_masks
from tests.adapters.conftest import ci_env, needs_transformers
from tests.adapters.stubs import frame_hash, read_log

pytestmark = needs_transformers


def _needs_latest_pin():
    from refbench.adapters.registry import adapter_card
    from refbench.envs import unmet_pins

    unmet = unmet_pins(adapter_card("sa2va-qwen2.5-vl-3b").environment)
    if unmet:
        pytest.skip(f"this Python does not have the sa2va-latest pins ({', '.join(unmet)}); pip install -e '.[test]'")


def _bright(img) -> np.ndarray:
    a = np.asarray(img.convert("L"), dtype=np.float64)
    return a > a.mean()


def test_prompts_of_the_official_eval():
    assert video_prompt("the red car") == "<image>\nPlease segment the red car."
    assert video_prompt("which car is moving?") == (
        "<image>\n which car is moving? Please respond with a segmentation mask.")
    assert video_prompt("which car is moving?", "v1") == "which car is moving?"
    assert IMAGE_PROMPT.format("the dog") == "<image>\n Please segment the dog in this image."


@pytest.mark.parametrize("variant,card", [("qwen", "sa2va-qwen2.5-vl-3b"), ("internvl", "sa2va-internvl3-2b")])
def test_refvos_on_the_demo_in_process(demo_env, stubs, stub_log, tmp_path, no_network, variant, card):
    _needs_latest_pin()
    res = run(RunConfig(model=card, dataset="demo_mevis_val_u", out=str(tmp_path / "r"),
                        model_args={"checkpoint": str(stubs[variant])}))
    assert res.predicted == 15 and not no_network
    loader = dataset_card("demo_mevis_val_u").open()
    calls = read_log(stub_log)
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    for s, c in zip(loader.samples(), calls):
        images = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
        hashes = [frame_hash(im) for im in images]
        assert c["variant"] == variant  # read from auto_map: the Qwen stub's folder is "checkpoint-7"
        assert c["frames"]["hashes"] == hashes and c["frames"]["sizes"] == [[240, 160]]
        assert c["frames"]["modes"] == ["RGB"]
        assert c["text"] == video_prompt(s.text)
        assert c["mllm"] == hashes[:5] and c["prompted"] == [[0, 1, 2, 3, 4]]  # first5: the official call
        assert (c["device"], c["dtype"]) == ("cpu", "torch.bfloat16")
        if variant == "qwen":
            assert c["processor"] == "PreTrainedTokenizerFast"  # AutoProcessor of the checkpoint
        got = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in preds[s.video][s.exp_id]]})
        np.testing.assert_array_equal(got, np.stack([_bright(im) for im in images]))
    state = json.loads((tmp_path / "r" / "run.json").read_text())["adapter"]["fingerprint_state"]
    assert state["variant"] == variant and state["transformers"] == "4.57.0"


@pytest.mark.parametrize("variant,card", [("qwen", "sa2va-qwen2.5-vl-3b"), ("internvl", "sa2va-internvl3-2b")])
def test_uniform_key_frames(demo_env, stubs, stub_log, variant, card):
    """mllm_frames=uniform: the MLLM sees 5 frames spread over the video and SAM 2 is prompted on those frames;
    the remote code's pieces are restored after each call."""
    _needs_latest_pin()
    adapter, _ = load_adapter(card, {"checkpoint": str(stubs[variant]), "mllm_frames": "uniform"})
    adapter.setup(RunContext())
    enc = adapter.model.grounding_encoder
    before = (enc.language_embd_inference, getattr(adapter.model, "transformer", None))
    loader = dataset_card("demo_mevis_val_u").open()
    s = loader.samples()[0]
    paths = loader.frame_paths(s)
    req = VideoRequest("x", s.video, s.exp_id, s.text, Frames(s.frames, paths), (160, 240))
    pred = adapter.predict_video([req])[0]
    c = read_log(stub_log)[-1]
    images = [Image.open(p).convert("RGB") for p in paths]
    keys = uniform(len(images), 5)
    assert keys[0] == 0 and keys[-1] == len(images) - 1 and len(keys) == 5
    assert c["mllm"] == [frame_hash(images[k]) for k in keys]
    assert c["prompted"] == [keys]
    assert c["frames"]["n"] == len(images)  # SAM 2 still gets every frame
    assert pred.diagnostics["key_frames"] == keys
    assert (enc.language_embd_inference, getattr(adapter.model, "transformer", None)) == before
    # and first5 from the same class restores the official behaviour
    a2, _ = load_adapter(card, {"checkpoint": str(stubs[variant])})
    a2.setup(RunContext())
    assert a2.predict_video([req])[0].diagnostics["key_frames"] == [0, 1, 2, 3, 4]
    assert read_log(stub_log)[-1]["prompted"] == [[0, 1, 2, 3, 4]]
    assert a2.fingerprint() != adapter.fingerprint()


def test_uniform_needs_the_remote_codes_pieces(tmp_path):
    from refbench.adapters.base import AdapterError
    from refbench.adapters.sa2va import _check_uniform_hooks

    class Bare:
        transformer = None

    with pytest.raises(AdapterError, match="mllm_frames=uniform needs the remote code's grounding_encoder"):
        _check_uniform_hooks(Bare(), "internvl", "sa2va-4b")


@pytest.mark.parametrize("multi,expect_union", [("union", True), ("first", False)])
def test_res_several_seg(demo_env, stubs, stub_log, multi, expect_union):
    _needs_latest_pin()
    adapter, _ = load_adapter("sa2va-internvl3-2b", {"checkpoint": str(stubs["internvl"]), "res_multi_seg": multi})
    adapter.setup(RunContext())
    loader = dataset_card("demo_refcoco_val").open()
    s = loader.samples()[0]
    img_path = loader.image_path(s)
    im = Image.open(img_path).convert("RGB")
    h, w = im.size[1], im.size[0]
    two = adapter.predict_image([ImageRequest("a", s.image_id, "twice over", img_path, (h, w))])[0]
    left = np.zeros((h, w), bool)
    left[:, : w // 2] = True
    want = (_bright(im) | left) if expect_union else _bright(im)
    np.testing.assert_array_equal(two.mask, want)
    assert two.diagnostics["seg_count"] == 2
    none = adapter.predict_image([ImageRequest("b", s.image_id, "nothing here", img_path, (h, w))])[0]
    assert none.mask is None and none.diagnostics["flags"] == ["no_seg"]
    assert read_log(stub_log)[-1]["text"] == IMAGE_PROMPT.format("nothing here")


def test_res_null_is_skipped_under_the_sa2va_protocol(demo_env, stubs, stub_log, tmp_path, monkeypatch):
    _needs_latest_pin()
    monkeypatch.setenv("REFBENCH_STUB_NOSEG", "circle")
    res = run(RunConfig(model="sa2va-qwen2.5-vl-3b", dataset="demo_refcoco_val", out=str(tmp_path / "r"),
                        protocol="sa2va", model_args={"checkpoint": str(stubs["qwen"])}))
    n = sum("circle" in s.text for s in dataset_card("demo_refcoco_val").open().samples())
    assert res.summary["counts"]["null_skipped"] == n > 0 and res.summary["run"]["flags"] == {"no_seg": n}


def test_variant_comes_from_auto_map_not_the_folder_name(tmp_path):
    from refbench.adapters.sa2va import variant_of
    from tests.adapters.stubs import write_sa2va

    q = write_sa2va(tmp_path / "plain-folder", "qwen")
    i = write_sa2va(tmp_path / "Sa2VA-Qwen-lookalike", "internvl")
    assert variant_of(json.loads((q / "config.json").read_text())) == "qwen"
    assert variant_of(json.loads((i / "config.json").read_text())) == "internvl"


def test_sa2va_4b_in_the_legacy_environment(demo_env, stubs, stub_log, tmp_path, sealed_subprocess):
    """The bare name sa2va = sa2va-4b (InternVL2.5, transformers 4.49.0): this Python has 4.57.0, so the run goes
    to the sa2va-legacy environment by itself; same predictions as the same stub in process."""
    ci_env("sa2va-legacy")
    w = run(RunConfig(model="sa2va", dataset="demo_mevis_val_u", out=str(tmp_path / "w"),
                      model_args={"checkpoint": str(stubs["internvl"]), "mllm_frames": "uniform"}))
    i = run(RunConfig(model="sa2va", dataset="demo_mevis_val_u", out=str(tmp_path / "i"),
                      model_args={"checkpoint": str(stubs["internvl"]), "mllm_frames": "uniform",
                                  "ignore_pins": True}))
    assert (w.run_dir / "predictions.json").read_bytes() == (i.run_dir / "predictions.json").read_bytes()
    ws = json.loads((w.run_dir / "run.json").read_text())["adapter"]
    assert ws["fingerprint_state"]["transformers"] == "4.49.0" and ws["card"]["name"] == "sa2va-4b"
    calls = read_log(stub_log)
    assert len(calls) == 30 and calls[0]["prompted"] == calls[15]["prompted"] != [[0, 1, 2, 3, 4]]
    assert not sealed_subprocess.exists()
    r = run(RunConfig(model="sa2va", dataset="demo_refcoco_val", out=str(tmp_path / "res"),
                      model_args={"checkpoint": str(stubs["internvl"])}))
    assert r.predicted == 15
