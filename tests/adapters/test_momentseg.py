"""MomentSeg adapter against a stub remote-code checkpoint, loaded through AutoModel.from_pretrained(...,
trust_remote_code=True): what the model received (frames, prompts, knobs), how outputs become predictions, the
mllm_path trap, no-[SEG] flags; in this process and in the momentseg environment (transformers 4.51.3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from refbench.adapters.momentseg import FIND_PROMPT, RES_PROMPT, SEG_PROMPT, TSG_PROMPT
from refbench.cards import dataset_card
from refbench.runs.runner import RunConfig, run
from refbench.runs.store import decode_masks
from tests.adapters.conftest import ci_env, needs_transformers
from tests.adapters.stubs import frame_hash, read_log

pytestmark = needs_transformers


def _run(dataset, out, **args):
    return run(RunConfig(model="momentseg", dataset=dataset, out=str(out), model_args=args))


def _bright(img) -> np.ndarray:
    a = np.asarray(img.convert("L"), dtype=np.float64)
    return a > a.mean()


def test_refvos_call_matches_the_official_eval(demo_env, stubs, stub_log, tmp_path, no_network):
    res = _run("demo_mevis_val_u", tmp_path / "r", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    assert res.predicted == 15 and not no_network
    loader = dataset_card("demo_mevis_val_u").open()
    samples = loader.samples()
    calls = read_log(stub_log)
    assert [c["call"] for c in calls] == ["predict_forward_find_seg"] * 15
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    diags = [json.loads(x) for x in (tmp_path / "r" / "diagnostics.jsonl").read_text().splitlines()]
    for s, c, d in zip(samples, calls, diags):
        images = [Image.open(p).convert("RGB") for p in loader.frame_paths(s)]
        # every frame, sorted, PIL RGB, original size, in order
        assert c["frames"]["hashes"] == [frame_hash(im) for im in images]
        assert c["frames"]["sizes"] == [[240, 160]] and c["frames"]["modes"] == ["RGB"]
        assert c["frames"]["types"] == ["Image"]
        assert c["text"] == SEG_PROMPT.format(s.text) == (
            f"<video>\nThis is a low-resoluton video. <image>\nPlease segment {s.text} in this video.")
        assert c["find_text"] == FIND_PROMPT.format(s.text)
        assert c["find_text"].endswith(f"text query '{s.text}' in this video")  # no question mark (sic)
        # test.sh's knobs, and the pixel limits set before the first call
        assert (c["num_frames"], c["video_max_frames"], c["inference_mode"]) == (8, 100, "multi-frame")
        assert (c["video_min_pixels"], c["video_max_pixels"]) == (4 * 4 * 28 * 28, 6 * 6 * 28 * 28)
        assert (c["device"], c["dtype"], c["flash"]) == ("cpu", "torch.bfloat16", True)
        assert c["tokenizer"] == "PreTrainedTokenizerFast"
        # the first [SEG]'s masks are the prediction
        got = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in preds[s.video][s.exp_id]]})
        np.testing.assert_array_equal(got, np.stack([_bright(im) for im in images]))
        diag = d["diagnostics"]
        assert diag["seg_count"] == 1 and diag["text"] == "Sure, [SEG]" and "flags" not in diag
        means = [float(b.mean()) for b in np.stack([_bright(im) for im in images])]
        assert diag["find_logits"] == pytest.approx(means)
        assert diag["sample_center"] == int(np.argmax(means)) and len(diag["sample_index"]) == 8
    run_json = json.loads((tmp_path / "r" / "run.json").read_text())
    state = run_json["adapter"]["fingerprint_state"]
    import transformers

    assert state["transformers"] == transformers.__version__ and len(state["remote_code"]) == 64
    assert run_json["adapter"]["card"]["trust_remote_code"] is True


def test_no_seg_gives_empty_masks_and_is_counted(demo_env, stubs, stub_log, tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_STUB_NOSEG", "square")
    res = _run("demo_mevis_val_u", tmp_path / "r", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    samples = dataset_card("demo_mevis_val_u").open().samples()
    n = sum("square" in s.text for s in samples)
    assert 0 < n < len(samples)
    assert res.summary["run"]["flags"] == {"no_seg": n}
    assert f"no_seg: {n} of {len(samples)} samples" in " ".join(res.notes)
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    for s in samples:
        m = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in preds[s.video][s.exp_id]]})
        assert (m.any() is np.False_) == ("square" in s.text)


def test_tsg_decodes_at_one_fps_and_maps_the_find_span(demo_env, stubs, stub_log, tmp_path):
    from refbench.video import decode_1fps

    res = _run("demo_charades_test", tmp_path / "r", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    loader = dataset_card("demo_charades_test").open()
    samples = loader.samples()
    calls = read_log(stub_log)
    assert [c["call"] for c in calls] == ["predict_keyframe"] * len(samples)
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    for s, c in zip(samples, calls):
        dec = decode_1fps(loader.video_path(s))
        durations = float(loader.durations()[s.video])
        assert c["frames"]["n"] == len(dec.frames) == int(durations * 4 - 1) // 4 + 1  # 4-fps video, 1 frame/s
        assert c["frames"]["hashes"] == [frame_hash(f) for f in dec.frames]
        assert c["frames"]["sizes"] == [[64, 48]] and c["frames"]["modes"] == ["RGB"]
        assert c["find_text"] == TSG_PROMPT.format(s.query) and c["text"] is None and c["query_text"] == s.query
        assert (c["threshold"], c["num_frames"], c["video_max_frames"], c["inference_mode"]) == (
            0.4, 8, 100, "multi-frame")
        assert (c["video_min_pixels"], c["video_max_pixels"]) == (4 * 4 * 28 * 28, 8 * 8 * 28 * 28)
        lit = [i for i, f in enumerate(dec.frames) if np.asarray(f).max() >= 250]
        assert preds[s.qid] == [[float(lit[0]), float(lit[-1])]]  # frame indices = seconds, end inclusive
    assert res.summary["metrics"]["R@0.3"] > 50  # the demo's white square is on during the moments
    text = _run("demo_charades_test", tmp_path / "t", checkpoint=str(stubs["momentseg"]), ignore_pins=True,
                tsg_span="text")
    preds = json.loads((tmp_path / "t" / "predictions.json").read_text())
    n = {s.qid: len(decode_1fps(loader.video_path(s)).frames) for s in samples}
    assert preds == {q: [[0.0, float(n[q] - 1)]] for q in n}
    assert text.run_dir != res.run_dir


def test_res_prompt_knobs_and_first_mask(demo_env, stubs, stub_log, tmp_path):
    _run("demo_refcoco_val", tmp_path / "r", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    loader = dataset_card("demo_refcoco_val").open()
    samples = loader.samples()
    calls = read_log(stub_log)
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    from refbench.runs.store import decode_masks as dm

    for s, c in zip(samples, calls):
        assert c["call"] == "predict_forward" and c["text"] == RES_PROMPT.format(s.text)
        assert c["text"] == f"<image>\n Please segment {s.text} in this image."
        assert (c["min_pixels"], c["max_pixels"]) == (16 * 16 * 28 * 28, 24 * 24 * 28 * 28)
        im = Image.open(loader.image_path(s)).convert("RGB")
        assert c["frames"]["hashes"] == [frame_hash(im)]
        p = preds[s.sample_id]
        np.testing.assert_array_equal(dm({"size": p["size"], "rles": [p["counts"]]})[0], _bright(im))


def test_res_without_seg_is_null(demo_env, stubs, stub_log, tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_STUB_NOSEG", "circle")
    res = _run("demo_refcoco_val", tmp_path / "r", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    samples = dataset_card("demo_refcoco_val").open().samples()
    preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
    nulls = {s.sample_id for s in samples if "circle" in s.text}
    assert nulls and {k for k, v in preds.items() if v is None} == nulls
    assert res.summary["counts"]["null_as_empty"] == len(nulls)  # the LISA protocol's rule for no mask
    assert res.summary["run"]["flags"] == {"no_seg": len(nulls)}


def test_mllm_path_trap(demo_env, tmp_path, stub_log):
    """A config.json whose mllm_path is relative (as the conversion script writes it) fails with a one-line hint;
    --model-arg mllm_path patches it in memory, and the checkpoint is untouched."""
    from refbench.adapters.base import AdapterError
    from tests.adapters.stubs import write_momentseg

    ckpt = write_momentseg(tmp_path / "MomentSeg-3B", mllm_path="./pretrained/Qwen2.5-VL-3B-Instruct")
    before = (ckpt / "config.json").read_bytes()
    with pytest.raises(AdapterError, match=r"mllm_path='./pretrained/Qwen2.5-VL-3B-Instruct', which does not exist "
                                           r"from .*: pass --model-arg mllm_path=DIR"):
        _run("demo_mevis_val_u", tmp_path / "a", checkpoint=str(ckpt), ignore_pins=True)
    base = tmp_path / "Qwen2.5-VL-3B-Instruct"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    res = _run("demo_mevis_val_u", tmp_path / "b", checkpoint=str(ckpt), ignore_pins=True, mllm_path=str(base),
               )
    assert res.predicted == 15
    calls = read_log(stub_log)
    assert calls and all(c["base_model_type"] == "qwen2_5_vl" for c in calls)  # the config read the patched path
    assert (ckpt / "config.json").read_bytes() == before
    # the base model's files are in the fingerprint, its path is not
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl", "x": 1}))
    res2 = _run("demo_mevis_val_u", tmp_path / "c", checkpoint=str(ckpt), ignore_pins=True, mllm_path=str(base))
    assert json.loads((res.run_dir / "run.json").read_text())["header"]["fingerprint"] != \
        json.loads((res2.run_dir / "run.json").read_text())["header"]["fingerprint"]


def test_knobs_of_another_task_are_refused_after_the_first_call(stubs, stub_log, demo_env):
    from refbench.adapters.base import AdapterError, RunContext
    from refbench.adapters.registry import load_adapter
    from refbench.runs.runner import _Requests

    adapter, _ = load_adapter("momentseg", {"checkpoint": str(stubs["momentseg"]), "ignore_pins": True})
    adapter.setup(RunContext())
    loader = dataset_card("demo_mevis_val_u").open()
    req = _Requests("refvos", loader, adapter, "mevis").make(loader.samples()[0])
    adapter.predict_video([req])
    rl = dataset_card("demo_refcoco_val").open()
    ireq = _Requests("res", rl, adapter, "lisa").make(rl.samples()[0])
    with pytest.raises(AdapterError, match="fixed its preprocessor on the first refvos call"):
        adapter.predict_image([ireq])


def test_in_the_momentseg_environment_through_the_worker(demo_env, stubs, stub_log, tmp_path, sealed_subprocess):
    """transformers 4.51.3 in the environment refbench env create built: chosen automatically (this Python's
    transformers is not the pin), same predictions as in process, nothing reaches the network."""
    py = ci_env("momentseg")
    a = _run("demo_mevis_val_u", tmp_path / "in", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    b = _run("demo_mevis_val_u", tmp_path / "worker", checkpoint=str(stubs["momentseg"]))
    assert (a.run_dir / "predictions.json").read_bytes() == (b.run_dir / "predictions.json").read_bytes()
    state = json.loads((b.run_dir / "run.json").read_text())["adapter"]["fingerprint_state"]
    assert state["transformers"] == "4.51.3"
    assert state["remote_code"] == json.loads((a.run_dir / "run.json").read_text())["adapter"]["fingerprint_state"][
        "remote_code"]
    calls = read_log(stub_log)
    assert len(calls) == 30 and calls[0]["frames"] == calls[15]["frames"]
    assert not sealed_subprocess.exists(), sealed_subprocess.read_text()
    diag_in = [json.loads(x)["diagnostics"] for x in (a.run_dir / "diagnostics.jsonl").read_text().splitlines()]
    diag_w = [json.loads(x)["diagnostics"] for x in (b.run_dir / "diagnostics.jsonl").read_text().splitlines()]
    strip = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731
    assert [strip(d) for d in diag_in] == [strip(d) for d in diag_w]
    # TSG through the worker too
    t = _run("demo_charades_test", tmp_path / "tsg", checkpoint=str(stubs["momentseg"]))
    ti = _run("demo_charades_test", tmp_path / "tsg-in", checkpoint=str(stubs["momentseg"]), ignore_pins=True)
    assert (t.run_dir / "predictions.json").read_bytes() == (ti.run_dir / "predictions.json").read_bytes()
    assert str(py).startswith(str(py.parents[2]))
