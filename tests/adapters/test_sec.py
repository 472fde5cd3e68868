"""SeC-4B against a stub source tree written here with the official entry points (OpenIXCLab/SeC @ 1981ac42:
``inference.configuration_sec.SeCConfig``, ``inference.modeling_sec.SeCModel.from_pretrained``,
``grounding_encoder.init_state / reset_state / add_new_mask``, ``propagate_in_video`` yielding ``(frame_idx, obj_ids,
logits)``). The stub records every call and predicts deterministically (each object's prompt shifted one pixel right
per frame, logit 1 + id inside), so the test asserts what SeC received and the merged masks, through a worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refbench.cli import main
from refbench.export.davis import davis_palette
from tests.adapters.stubs import _tokenizer

CONFIG = r'''
import json, os


def _log(kind, **rec):
    with open(os.environ["REFBENCH_STUB_LOG"], "a") as fh:
        fh.write(json.dumps({"call": kind, **rec}, default=str) + "\n")


class SeCConfig:
    def __init__(self, **kw):
        self.apply_postprocessing = True
        self.hydra_overrides_extra = []
        self.__dict__.update(kw)

    @classmethod
    def from_pretrained(cls, path, **kw):
        with open(os.path.join(path, "config.json")) as fh:
            cfg = cls(**json.load(fh))
        _log("SeCConfig.from_pretrained", path=str(path))
        return cfg
'''

MODELING = r'''
import hashlib, os
import numpy as np
import torch
from PIL import Image
from .configuration_sec import _log


def _md5(m):
    return hashlib.md5(np.ascontiguousarray(np.asarray(m, bool)).tobytes()).hexdigest()[:12]


class _GroundingEncoder:
    def init_state(self, video_path, offload_video_to_cpu=False, offload_state_to_cpu=False,
                   async_loading_frames=False):
        names = [p for p in os.listdir(video_path) if os.path.splitext(p)[-1] in (".jpg", ".jpeg", ".JPG", ".JPEG")]
        names.sort(key=lambda p: int(os.path.splitext(p)[0]))
        w, h = Image.open(os.path.join(video_path, names[0])).size
        _log("init_state", video_path=os.path.basename(video_path.rstrip("/")), frames=[n[:-4] for n in names],
             async_loading_frames=async_loading_frames)
        return {"num_frames": len(names), "h": h, "w": w, "inputs": {}}

    def reset_state(self, inference_state):
        inference_state["inputs"] = {}
        _log("reset_state")

    def add_new_mask(self, inference_state, frame_idx, obj_id, mask):
        m = np.asarray(mask, bool)
        assert m.shape == (inference_state["h"], inference_state["w"]), m.shape
        inference_state["inputs"][obj_id] = (frame_idx, m)
        _log("add_new_mask", frame_idx=frame_idx, obj_id=obj_id, mask=_md5(m), pixels=int(m.sum()))
        return frame_idx, [obj_id], torch.zeros(1, 1, *m.shape)


class SeCModel:
    def __init__(self, config):
        self.config = config
        self.grounding_encoder = _GroundingEncoder()

    @classmethod
    def from_pretrained(cls, path, config=None, torch_dtype=None, use_flash_attn=True, **kw):
        _log("SeCModel.from_pretrained", torch_dtype=str(torch_dtype), use_flash_attn=use_flash_attn,
             apply_postprocessing=config.apply_postprocessing, hydra_overrides_extra=config.hydra_overrides_extra,
             extra=sorted(kw))
        return cls(config)

    def eval(self):
        return self

    def to(self, device):
        _log("to", device=str(device))
        return self

    def propagate_in_video(self, inference_state, start_frame_idx=None, max_frame_num_to_track=None, reverse=False,
                           init_mask=None, tokenizer=None, mllm_memory_size=7):
        assert tokenizer is not None
        (obj, (f0, m)), = inference_state["inputs"].items()
        _log("propagate_in_video", start_frame_idx=start_frame_idx, reverse=reverse, init_mask=_md5(init_mask),
             tokenizer=type(tokenizer).__name__, mllm_memory_size=mllm_memory_size,
             inference_mode=torch.is_inference_mode_enabled())
        for t in range(start_frame_idx, inference_state["num_frames"]):
            shifted = np.roll(m, t - start_frame_idx, axis=1)
            logits = torch.where(torch.from_numpy(shifted), torch.tensor(1.0 + obj), torch.tensor(-5.0))
            yield t, [obj], logits[None, None].float()
'''


def _repo(d: Path) -> Path:
    (d / "inference").mkdir(parents=True)
    (d / "inference" / "__init__.py").write_text("")
    (d / "inference" / "configuration_sec.py").write_text(CONFIG)
    (d / "inference" / "modeling_sec.py").write_text(MODELING)
    return d


def _checkpoint(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "sec", "template": "phi3_chat"}))
    _tokenizer(d)
    return d


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette(davis_palette())
    im.save(path)


def _jpegs(folder: Path, n: int, size=(24, 32)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        Image.new("RGB", (size[1], size[0]), (t * 10, 50, 90)).save(folder / f"{t:05d}.jpg")


def _log(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _pred(run_dir: Path) -> dict[str, np.ndarray]:
    from refbench.rle import decode_rle

    doc = json.loads((run_dir / "predictions.json").read_text())
    return {f"{v}/{o}": np.stack([decode_rle(fr[f], "x") != 0 for f in sorted(fr)]) for v, objs in doc.items()
            for o, fr in objs.items()}


def _expected(prompts: dict[int, tuple[int, np.ndarray]], n: int, exclusive: bool) -> dict[int, np.ndarray]:
    """The stub's logits merged as vos_inference.py does: -1024 where untracked, SAM 2's constraint, > 0."""
    ids = sorted(prompts)
    h, w = prompts[ids[0]][1].shape
    s = np.full((len(ids), n, h, w), -1024.0, np.float32)
    for k, o in enumerate(ids):
        f0, m = prompts[o]
        for t in range(f0, n):
            s[k, t] = np.where(np.roll(m, t - f0, axis=1), 1.0 + o, -5.0)
    if exclusive:
        win = s.argmax(0)
        s = np.where(win[None] == np.arange(len(ids))[:, None, None, None], s, np.minimum(s, -10.0))
    return {o: s[k] > 0 for k, o in enumerate(ids)}


@pytest.fixture
def sec_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REFBENCH_STUB_LOG", str(tmp_path / "stub-log.jsonl"))
    return _repo(tmp_path / "SeC"), _checkpoint(tmp_path / "SeC-4B")


def _run(repo: Path, ckpt: Path, *args: str) -> str:
    r = CliRunner().invoke(main, ["run", "--model", "sec-4b", "--model-arg", f"repo={repo}", "--model-arg",
                                  f"checkpoint={ckpt}", "--model-arg", f"python={sys.executable}", "--no-leaderboard",
                                  *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_sec_on_davis_is_called_as_vos_inference_calls_it(sec_setup, tmp_path):
    repo, ckpt = sec_setup
    root = tmp_path / "DAVIS"
    _jpegs(root / "JPEGImages" / "480p" / "seq", 6)
    ann = np.zeros((24, 32), np.uint8)
    ann[4:12, 2:10] = 3
    ann[4:12, 10:16] = 1  # object 3's shifted copy runs into object 1: the constraint decides
    for t in range(6):
        _png(root / "Annotations" / "480p" / "seq" / f"{t:05d}.png", ann if t == 0 else np.zeros_like(ann))
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq\n")
    out = _run(repo, ckpt, "--dataset", "davis17_val", "--root", str(root), "--out", str(tmp_path / "run"))
    assert "1 predicted" in out
    calls = _log(tmp_path / "stub-log.jsonl")
    (load,) = [c for c in calls if c["call"] == "SeCModel.from_pretrained"]
    assert load["torch_dtype"] == "torch.bfloat16" and load["use_flash_attn"] is True
    assert load["apply_postprocessing"] is False and load["hydra_overrides_extra"] == ["++model.non_overlap_masks=true"]
    assert [c["device"] for c in calls if c["call"] == "to"] == ["cpu"]
    (init,) = [c for c in calls if c["call"] == "init_state"]
    assert init["video_path"] == "seq" and init["frames"] == [f"{t:05d}" for t in range(6)]
    assert init["async_loading_frames"] is False  # SeC reads the video's own JPEG folder
    adds = [c for c in calls if c["call"] == "add_new_mask"]
    props = [c for c in calls if c["call"] == "propagate_in_video"]
    # one object at a time, ascending ids, each reset first, prompted on its first frame, forward only
    assert [c["call"] for c in calls[-6:]] == ["reset_state", "add_new_mask", "propagate_in_video"] * 2
    assert [(c["obj_id"], c["frame_idx"], c["pixels"]) for c in adds] == [(1, 0, 48), (3, 0, 64)]
    assert [(p["start_frame_idx"], p["reverse"], p["init_mask"]) for p in props] == \
        [(0, False, adds[0]["mask"]), (0, False, adds[1]["mask"])]
    assert all(p["tokenizer"] == "PreTrainedTokenizerFast" and p["mllm_memory_size"] == 7 and p["inference_mode"]
               for p in props)
    got = _pred(tmp_path / "run")
    want = _expected({1: (0, ann == 1), 3: (0, ann == 3)}, 6, exclusive=True)
    assert np.array_equal(got["seq/1"], want[1]) and np.array_equal(got["seq/3"], want[3])
    assert not (got["seq/1"] & got["seq/3"]).any() and (np.roll(ann == 3, 5, axis=1) & (ann == 1)).any()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    st = meta["adapter"]["fingerprint_state"]
    assert st["hydra_overrides_extra"] == ["++model.non_overlap_masks=true"] and len(st["repo_code"]) == 64
    # changed repository code is another fingerprint: stored predictions are not reused across it
    (repo / "inference" / "modeling_sec.py").write_text(MODELING + "\n# changed\n")
    out = _run(repo, ckpt, "--dataset", "davis17_val", "--root", str(root))
    assert "1 predicted" in out
    assert json.loads(next((tmp_path / "runs" / "davis17_val").glob("sec-4b-*/run.json")).read_text())[
        "header"]["fingerprint"] != meta["header"]["fingerprint"]


def test_sec_on_sav_prompts_each_object_where_it_starts(sec_setup, tmp_path):
    repo, ckpt = sec_setup
    root = tmp_path / "sav"
    _jpegs(root / "JPEGImages_24fps" / "vid", 14)
    a = np.zeros((24, 32), np.uint8)
    a[2:8, 2:8] = 1
    b = np.zeros((24, 32), np.uint8)
    b[5:12, 4:12] = 1  # overlaps a: SA-V keeps both (per-object PNGs)
    for f in (0, 4, 8, 12):
        _png(root / "Annotations_6fps" / "vid" / "000" / f"{f:05d}.png", a)
    _png(root / "Annotations_6fps" / "vid" / "001" / "00004.png", np.zeros_like(b))  # annotated but empty here
    for f in (8, 12):
        _png(root / "Annotations_6fps" / "vid" / "001" / f"{f:05d}.png", b)
    (root / "sav_val.txt").write_text("vid\n")
    _run(repo, ckpt, "--dataset", "sav_val", "--root", str(root), "--out", str(tmp_path / "run"))
    calls = _log(tmp_path / "stub-log.jsonl")
    (load,) = [c for c in calls if c["call"] == "SeCModel.from_pretrained"]
    assert load["hydra_overrides_extra"] == ["++model.non_overlap_masks=false"]  # --per_obj_png_file
    adds = [(c["obj_id"], c["frame_idx"]) for c in calls if c["call"] == "add_new_mask"]
    assert adds == [(0, 0), (1, 8)]  # 001's first non-empty annotated frame
    assert [c["start_frame_idx"] for c in calls if c["call"] == "propagate_in_video"] == [0, 8]
    got = _pred(tmp_path / "run")
    want = _expected({0: (0, a == 1), 1: (8, b == 1)}, 14, exclusive=False)
    assert np.array_equal(got["vid/000"], want[0]) and np.array_equal(got["vid/001"], want[1])
    assert not got["vid/001"][:8].any() and (got["vid/000"] & got["vid/001"]).any()
    diag = json.loads((tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines()[0])["diagnostics"]
    assert diag["prompt_frames"] == {"000": "00000", "001": "00008"} and diag["frames_tracked"] == {"000": 14, "001": 6}


def test_sec_needs_its_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "DAVIS"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq\n")
    _jpegs(root / "JPEGImages" / "480p" / "seq", 2)
    for t in range(2):
        _png(root / "Annotations" / "480p" / "seq" / f"{t:05d}.png", np.ones((24, 32), np.uint8))
    for extra, msg in (([], "pass --model-arg repo=DIR"),
                       (["--model-arg", f"repo={tmp_path}"], "inference/configuration_sec.py not found")):
        r = CliRunner().invoke(main, ["run", "--model", "sec-4b", "--model-arg", f"python={sys.executable}",
                                      "--dataset", "davis17_val", "--root", str(root), *extra])
        assert r.exit_code == 2 and msg in r.output, r.output


def test_video_folder_links_exactly_the_request_frames(tmp_path):
    from refbench.adapters.base import Frames, VosRequest
    from refbench.adapters.sec import video_folder

    _jpegs(tmp_path / "v", 5)
    paths = [tmp_path / "v" / f"{t:05d}.jpg" for t in range(5)]
    whole = VosRequest("v", "v", Frames([p.stem for p in paths], paths), (24, 32), ())
    with video_folder(whole) as (folder, linked):
        assert folder == tmp_path / "v" and not linked
    part = VosRequest("v", "v", Frames([p.stem for p in paths[::2]], paths[::2]), (24, 32), ())
    with video_folder(part) as (folder, linked):
        assert linked and sorted(p.name for p in folder.iterdir()) == ["00000.jpg", "00002.jpg", "00004.jpg"]
        kept = folder
    assert not kept.exists()
