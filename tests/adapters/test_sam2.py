"""SAM 2.1 on a tiny random ``Sam2VideoModel`` (ADAPTERS.md 5.1) saved by a fixture inside the ``sam`` environment
(torch 2.14.1 + torchvision 0.29.1 + transformers 5.24.0, built by .ci/run) and loaded through the adapter's own
``from_pretrained`` path by ``refbench run`` (a worker in that environment). Each run's predictions are compared with
transformers called directly, as SAM 2's ``tools/vos_inference.py`` calls its predictor (written here, independently of
refbench's SAM 2 module)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refbench.cli import main
from refbench.export.davis import davis_palette
from tests.adapters.conftest import ci_env

MAKE_TINY = r'''
import sys, torch
from transformers import (Sam2HieraDetConfig, Sam2VisionConfig, Sam2VideoConfig, Sam2VideoModel, Sam2VideoProcessor,
                          Sam2ImageProcessor, Sam2VideoVideoProcessor)
torch.manual_seed(0)
hiera = Sam2HieraDetConfig(hidden_size=12, num_attention_heads=1, image_size=[128, 128], blocks_per_stage=[1, 1, 2, 1],
                           embed_dim_per_stage=[12, 24, 48, 96], num_attention_heads_per_stage=[1, 1, 1, 1],
                           window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
                           window_positional_embedding_background_size=[4, 4])
vision = Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[96, 48, 24, 12],
                          backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]], fpn_hidden_size=128)
cfg = Sam2VideoConfig(vision_config=vision,
                      prompt_encoder_config=dict(hidden_size=128, image_size=128, patch_size=16, mask_input_channels=4),
                      mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
                      image_size=128, num_maskmem=3, memory_attention_hidden_size=128, memory_attention_num_layers=1,
                      memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[8, 8],
                      memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
                      memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64)
model = Sam2VideoModel(cfg).eval()
with torch.no_grad():  # "object present" on every frame, so a random model still gives masks to compare
    model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
proc = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size={"height": 128, "width": 128},
                                                             mask_size={"height": 32, "width": 32}),
                          video_processor=Sam2VideoVideoProcessor(size={"height": 128, "width": 128}), target_size=128)
model.save_pretrained(sys.argv[1])
proc.save_pretrained(sys.argv[1])
'''

# vos_inference.py's two paths on transformers directly: all objects on their (one) frame in one session, or each
# object alone (reset, its mask, propagate from its frame); optional reverse pass; logits upsampled per object; SAM 2's
# non-overlapping constraint (transformers' own) where asked; > 0.
REFERENCE = r'''
import json, sys
import numpy as np, torch
from PIL import Image
from transformers import Sam2VideoModel, Sam2VideoProcessor
ck, spec_path, out = sys.argv[1:4]
spec = json.load(open(spec_path))
model = Sam2VideoModel.from_pretrained(ck).eval()
proc = Sam2VideoProcessor.from_pretrained(ck)
res = {}
for v in spec["videos"]:
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in v["frames"]]
    s = proc.init_video_session(video=frames, inference_device="cpu", dtype=torch.float32)
    H, W = s.video_height, s.video_width
    objs = sorted(v["prompts"], key=lambda p: p["id"])
    low = {p["id"]: {} for p in objs}
    def run(start, only=None):
        for rev in ([False, True] if spec["both"] else [False]):
            with torch.inference_mode():
                for o in model.propagate_in_video_iterator(s, start_frame_idx=start, reverse=rev):
                    for k, oid in enumerate(o.object_ids):
                        if (only is None or oid == only) and not (rev and o.frame_idx in low[oid]):
                            low[oid][o.frame_idx] = o.pred_masks[k:k + 1]
    mask = lambda p: np.asarray(Image.open(p["mask"])) > 0
    if spec["per_object"]:
        for p in objs:
            s.reset_tracking_data()
            proc.add_inputs_to_inference_session(s, frame_idx=p["frame"], obj_ids=p["id"], input_masks=mask(p))
            run(p["frame"], p["id"])
    else:
        proc.add_inputs_to_inference_session(s, frame_idx=objs[0]["frame"], obj_ids=[p["id"] for p in objs],
                                             input_masks=[mask(p) for p in objs])
        run(objs[0]["frame"])
    got = np.zeros((len(objs), len(frames), H, W), bool)
    for t in range(len(frames)):
        scores = torch.full((len(objs), 1, H, W), -1024.0)
        for i, p in enumerate(objs):
            if t in low[p["id"]]:
                scores[i] = proc.post_process_masks([low[p["id"]][t]], original_sizes=[[H, W]], binarize=False)[0][0]
        if spec["non_overlap"]:
            scores = proc.image_processor._apply_non_overlapping_constraints(scores)
        got[:, t] = (scores > 0.0)[:, 0].numpy()
    for i, p in enumerate(objs):
        res[f"{v['video']}/{p['name']}"] = got[i]
np.savez_compressed(out, **res)
'''


@pytest.fixture(scope="module")
def sam_env():
    return ci_env("sam")


@pytest.fixture(scope="module")
def tiny_checkpoint(sam_env, tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-sam2")
    r = subprocess.run([str(sam_env), "-c", MAKE_TINY, str(d)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (d / "model.safetensors").is_file() and (d / "processor_config.json").is_file()
    return d


def _frames(folder: Path, n: int, size=(60, 80), seed=0) -> list[Path]:
    """Moving bright blobs on noise (so a propagated mask has something to follow)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for t in range(n):
        img = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
        img[10 + t:30 + t, 10 + 2 * t:35 + 2 * t] = (230, 40, 40)
        img[25:45, 40 + t:65 + t] = (40, 220, 60)
        p = folder / f"{t:05d}.jpg"
        Image.fromarray(img).save(p, quality=95)
        out.append(p)
    return out


def _index_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette(davis_palette())
    im.save(path)


def _reference(sam_env: Path, ck: Path, spec: dict, tmp: Path) -> dict[str, np.ndarray]:
    (tmp / "spec.json").write_text(json.dumps(spec))
    r = subprocess.run([str(sam_env), "-c", REFERENCE, str(ck), str(tmp / "spec.json"), str(tmp / "ref.npz")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp / "ref.npz") as z:
        return {k: z[k] for k in z.files}


def _decoded(pred_json: Path) -> dict[str, np.ndarray]:
    from refbench.rle import decode_rle

    doc = json.loads(pred_json.read_text())
    return {f"{v}/{o}": np.stack([decode_rle(frames[f], "x") != 0 for f in sorted(frames)])
            for v, objs in doc.items() for o, frames in objs.items()}


def _run(*args: str) -> str:
    r = CliRunner().invoke(main, ["run", *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_sam2_on_davis_through_its_environment(sam_env, tiny_checkpoint, tmp_path, monkeypatch):
    """DAVIS: both objects on frame 0, one session (vos_inference), forward, SAM 2's non-overlap constraint."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REFBENCH_ENVS", str(Path(sam_env).parents[2]))
    root = tmp_path / "DAVIS"
    spec = {"videos": [], "per_object": False, "both": False, "non_overlap": True}
    for k, seq in enumerate(("aaa", "bbb")):
        paths = _frames(root / "JPEGImages" / "480p" / seq, 6, seed=k)
        ann = np.zeros((60, 80), np.uint8)
        ann[10:30, 10:35] = 1
        ann[25:45, 40:65] = 2
        ann[25:30, 10:35] = 2  # adjacent objects: their propagated masks compete for pixels
        for t in range(6):
            _index_png(root / "Annotations" / "480p" / seq / f"{t:05d}.png", ann if t == 0 else np.zeros_like(ann))
        m1, m2 = tmp_path / f"{seq}-1.png", tmp_path / f"{seq}-2.png"
        _index_png(m1, ann == 1)
        _index_png(m2, ann == 2)
        spec["videos"].append({"video": seq, "frames": [str(p) for p in paths],
                               "prompts": [{"id": 1, "name": "1", "frame": 0, "mask": str(m1)},
                                           {"id": 2, "name": "2", "frame": 0, "mask": str(m2)}]})
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("aaa\nbbb\n")
    out = _run("--model", "sam2.1-hiera-tiny", "--dataset", "davis17_val", "--root", str(root), "--model-arg",
               f"checkpoint={tiny_checkpoint}", "--no-leaderboard", "--out", str(tmp_path / "run"))
    assert "2 predicted" in out
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["adapter"]["fingerprint_state"]["transformers"] == "5.24.0"
    assert meta["adapter"]["fingerprint_state"]["torch"].startswith("2.14.1")
    got = _decoded(tmp_path / "run" / "predictions.json")
    want = _reference(sam_env, tiny_checkpoint, spec, tmp_path)
    assert sorted(got) == sorted(want) == ["aaa/1", "aaa/2", "bbb/1", "bbb/2"]
    for k in want:
        assert np.array_equal(got[k], want[k]), k
    assert all(got[k][1:].any() for k in got)  # propagated masks on the later frames
    assert not (got["aaa/1"] & got["aaa/2"]).any()
    diag = [json.loads(x)["diagnostics"] for x in (tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines()]
    assert diag[0]["mode"] == "joint" and diag[0]["non_overlap"] is True and diag[0]["frames_tracked"] == {"1": 6, "2": 6}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["protocol"] == "davis_semi" and 0 <= summary["metrics"]["J&F"] <= 100


def test_sam2_on_sav_objects_that_start_later_both_directions(sam_env, tiny_checkpoint, tmp_path, monkeypatch):
    """SA-V: the second object's masklet starts at 00004, so each object runs alone from its own frame
    (vos_separate_inference_per_object); direction=both also fills the frames before it; overlaps are kept."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REFBENCH_ENVS", str(Path(sam_env).parents[2]))
    root = tmp_path / "sav_val"
    paths = _frames(root / "JPEGImages_24fps" / "vid", 14)
    a = np.zeros((60, 80), np.uint8)
    a[10:30, 10:35] = 1
    b = np.zeros((60, 80), np.uint8)
    b[20:45, 30:60] = 1  # overlaps a: SA-V keeps both
    for f in (0, 4, 8, 12):
        _index_png(root / "Annotations_6fps" / "vid" / "000" / f"{f:05d}.png", a)
    for f in (4, 8, 12):
        _index_png(root / "Annotations_6fps" / "vid" / "001" / f"{f:05d}.png", b)
    (root / "sav_val.txt").write_text("vid\n")
    ma, mb = tmp_path / "a.png", tmp_path / "b.png"
    _index_png(ma, a)
    _index_png(mb, b)
    spec = {"videos": [{"video": "vid", "frames": [str(p) for p in paths],
                        "prompts": [{"id": 0, "name": "000", "frame": 0, "mask": str(ma)},
                                    {"id": 1, "name": "001", "frame": 4, "mask": str(mb)}]}],
            "per_object": True, "both": True, "non_overlap": False}
    _run("--model", "sam2.1-hiera-tiny", "--dataset", "sav_val", "--root", str(root), "--model-arg",
         f"checkpoint={tiny_checkpoint}", "--model-arg", "direction=both", "--no-leaderboard", "--out",
         str(tmp_path / "run"))
    got = _decoded(tmp_path / "run" / "predictions.json")
    want = _reference(sam_env, tiny_checkpoint, spec, tmp_path)
    for k in want:
        assert np.array_equal(got[k], want[k]), k
    assert got["vid/001"].shape[0] == 14 and got["vid/001"][:4].any()  # the reverse pass reached frames 0-3
    assert (got["vid/000"] & got["vid/001"]).any()  # overlap allowed
    diag = json.loads((tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines()[0])["diagnostics"]
    assert diag["mode"] == "per_object" and diag["direction"] == "both" and diag["non_overlap"] is False
    assert diag["prompt_frames"] == {"000": "00000", "001": "00004"}
    # forward only (the default): nothing for 001 before its prompt frame, and another fingerprint
    _run("--model", "sam2.1-hiera-tiny", "--dataset", "sav_val", "--root", str(root), "--model-arg",
         f"checkpoint={tiny_checkpoint}", "--no-leaderboard", "--out", str(tmp_path / "fwd"))
    fwd = _decoded(tmp_path / "fwd" / "predictions.json")
    assert not fwd["vid/001"][:4].any() and np.array_equal(fwd["vid/001"][4:], got["vid/001"][4:])
    fa = json.loads((tmp_path / "run" / "run.json").read_text())["header"]["fingerprint"]
    fb = json.loads((tmp_path / "fwd" / "run.json").read_text())["header"]["fingerprint"]
    assert fa != fb


def test_sam2_without_its_environment_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REFBENCH_ENVS", str(tmp_path / "no-envs"))
    r = CliRunner().invoke(main, ["run", "--model", "sam2.1-hiera-tiny", "--dataset", "davis17_val", "--root",
                                  str(tmp_path)])
    assert r.exit_code == 2
    assert "refbench env create sam2.1-hiera-tiny" in r.output and "transformers==5.24.0" in r.output
