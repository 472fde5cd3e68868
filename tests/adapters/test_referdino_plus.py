"""ReferDINO-Plus: the official rules of refine_from_refdino.py (iSEE-Laboratory/ReferDINO-Plus @ 04b1a18) on
constructed cases (kept queries, best frames, box areas, the several-objects vote, the fusion), the ReferDINO stage on
the stub clone (tests/adapters/repo_stubs.py), and ``refbench run`` end to end on the demo: the SAM stage in the
``sam`` environment (a worker, tiny random Sam2VideoModel saved by a fixture and loaded through the adapter's
``from_pretrained`` path) with the ReferDINO stage in a nested worker under this interpreter (the other stack, torch
2.13 CPU: the two-environment path users run). The run's masks are compared with transformers called directly as the
official script calls its predictor, and with the fusion rule written out here from the script."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refbench.adapters.base import Frames, RunContext, VideoRequest
from refbench.adapters.referdino_plus import (ReferDINOStage, best_frames, box_area, fraction, fuse, keep_queries,
                                             several_objects)
from refbench.adapters.registry import load_adapter
from refbench.cards import dataset_card
from refbench.errors import RefbenchInputError
from refbench.runs.store import decode_masks
from tests.adapters.conftest import ci_env
from tests.adapters.repo_stubs import write_referdino
from tests.adapters.test_referdino import expected_masks
from tests.adapters.test_sam2 import MAKE_TINY

# ----------------------------------------------------------------------------------------------
# The rules, on constructed cases
# ----------------------------------------------------------------------------------------------


def test_kept_queries_average_only_the_frames_above_the_threshold():
    scores = np.array([[0.9, 0.1, 0.28, 0.275],
                       [0.1, 0.1, 0.1, 0.275],
                       [0.1, 0.3, 0.1, 0.275],
                       [0.1, 0.1, 0.1, 0.275]], np.float32)
    kept, avg = keep_queries(scores, 0.275)
    # q0: plain mean 0.3, but only frame 0 is above: 0.9; q1: one frame at 0.3; q2: 0.28 on one frame (kept, just);
    # q3: never strictly above: no valid frame, average 0
    assert kept == [0, 1, 2]
    assert avg[0] == pytest.approx(0.9, abs=1e-5) and avg[1] == pytest.approx(0.3, abs=1e-5)
    assert avg[2] == pytest.approx(0.28, abs=1e-5) and avg[3] == 0.0
    assert keep_queries(np.full((3, 2), 0.2, np.float32), 0.275) == ([], [0.0, 0.0])
    # best frame: the first frame of the highest score
    s = np.array([[0.5, 0.2], [0.9, 0.7], [0.9, 0.7], [0.1, 0.8]], np.float32)
    assert best_frames(s, [0, 1]) == [1, 3] and best_frames(s, [1]) == [3] and best_frames(s, []) == []


def test_box_area_is_the_scripts_without_plus_one():
    m = np.zeros((10, 12), bool)
    assert box_area(m) == 0
    m[2, 3:9] = True
    assert box_area(m) == 0  # one row: (2 - 2) * (8 - 3)
    m[5, 3] = True
    assert box_area(m) == 3 * 5
    m[:] = False
    m[4, 4] = m[9, 11] = True  # two pixels: the box spans both
    assert box_area(m) == 5 * 7


def _rect(t, h, w, boxes):
    a = np.zeros((t, h, w), bool)
    for r0, r1, c0, c1 in boxes:
        a[:, r0:r1, c0:c1] = True
    return a


def test_several_objects_vote_and_its_edges():
    # one object: SAM 2's box as large as ReferDINO's -> not several; the output is SAM 2's alone
    ori = _rect(4, 40, 60, [(5, 15, 5, 20)])
    sam = _rect(4, 40, 60, [(6, 15, 5, 20)])
    several, counted, valid = several_objects(ori, sam)
    assert (several, counted, valid) == (False, 0, 4)
    np.testing.assert_array_equal(fuse(ori, sam, "conditional", several), sam)
    # two objects in ReferDINO, SAM 2 followed one: its box is far smaller on every frame -> several; union
    ori2 = _rect(4, 40, 60, [(5, 15, 5, 20), (25, 35, 40, 55)])
    several, counted, valid = several_objects(ori2, sam)
    assert (several, counted, valid) == (True, 4, 4)
    np.testing.assert_array_equal(fuse(ori2, sam, "conditional", several), ori2 | sam)
    # the ratio is strict: area_sam * 3 == area_ori * 2 does not count (box areas 6*4=24 vs 6*6=36)
    o = _rect(1, 20, 20, [(0, 7, 0, 7)])
    s = _rect(1, 20, 20, [(0, 7, 0, 5)])
    assert box_area(o[0]) == 36 and box_area(s[0]) == 24 and several_objects(o, s)[1] == 0
    s2 = _rect(1, 20, 20, [(0, 7, 0, 4)])  # 18 < 24
    assert several_objects(o, s2)[:2] == (True, 1)
    # the vote is strict too: 2 of 4 valid frames counted is not more than half; empty frames are not valid
    mixed_sam = np.concatenate([sam[:2], _rect(2, 40, 60, [(5, 35, 5, 55)])])
    assert several_objects(ori2, mixed_sam) == (False, 2, 4)
    holes = mixed_sam.copy()
    holes[3] = False
    assert several_objects(ori2, holes) == (True, 2, 3)
    # other ratios and votes are exact fractions
    assert several_objects(ori2, mixed_sam, vote=Fraction(1, 3)) == (True, 2, 4)
    assert several_objects(o, s, ratio=Fraction(3, 4))[1] == 1
    for rule, want in (("sam", sam), ("union", ori2 | sam), ("referdino", ori2)):
        np.testing.assert_array_equal(fuse(ori2, sam, rule, False), want)
    assert fraction("2/3", "fusion_area_ratio", "m") == Fraction(2, 3) and fraction(0.5, "x", "m") == Fraction(1, 2)
    for bad in ("two thirds", "0", "1/0"):
        with pytest.raises(RefbenchInputError, match=r"--model-arg fusion_area_ratio="):
            fraction(bad, "fusion_area_ratio", "m")


# ----------------------------------------------------------------------------------------------
# The ReferDINO stage on the stub clone
# ----------------------------------------------------------------------------------------------

#: query 0 peaks on frame 2 (0.8, else 0.7), so the seeds are on frames 2 (query 0) and 1 (query 1, 0.7 on odd
#: frames), the earliest seed is not frame 0, and the reverse pass has a frame to fill
_PEAK = ("p = [0.7, 0.1 if i % 2 == 0 else 0.7, 0.05]", "p = [0.8 if i == 2 else 0.7, 0.1 if i % 2 == 0 else 0.7, 0.05]")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    root = write_referdino(tmp_path_factory.mktemp("ReferDINO"))
    f = root / "models" / "__init__.py"
    text = f.read_text()
    assert _PEAK[0] in text
    f.write_text(text.replace(*_PEAK))
    return root


def _requests(n=2):
    loader = dataset_card("demo_mevis_val_u").open()
    out = []
    for s in loader.samples()[:n]:
        paths = loader.frame_paths(s)
        out.append((VideoRequest(f"{s.video}/{s.exp_id}", s.video, s.exp_id, s.text,
                                 Frames([p.stem for p in paths], paths), (160, 240)),
                    [Image.open(p).convert("RGB") for p in paths]))
    return out


def test_referdino_stage_keeps_seeds_and_unites(demo_env, clone, stub_log):
    stage = ReferDINOStage(repo=str(clone))
    stage.card_name = "referdino-plus"
    stage.setup(RunContext(device="cpu", dataset="demo_mevis_val_u"))
    (r, frames), = _requests(1)
    (payload, diag), = stage.predict_payloads("refvos", [r])
    # q0 (0.7, 0.8 on frame 2) and q1 (0.7 on the odd frames, 0.1 on the even: valid-frame mean 0.7) kept, q2 not
    assert diag["kept"] == [0, 1] and diag["seed_frames"] == [2, 1] and diag["fallback"] is False
    assert diag["avg_scores"][0] == pytest.approx((0.8 + 15 * 0.7) / 16, abs=1e-5)
    assert diag["avg_scores"][1] == pytest.approx(0.7, abs=1e-5) and diag["seed_scores"] == pytest.approx([0.8, 0.7])
    np.testing.assert_array_equal(decode_masks(payload), expected_masks(frames, [0, 1], "threshold"))
    for q, f, counts in zip(diag["kept"], diag["seed_frames"], diag["seed_rles"]):
        seed = decode_masks({"size": [160, 240], "rles": [counts]})[0]
        np.testing.assert_array_equal(seed, expected_masks(frames, [q], "threshold")[f])
    state = stage.fingerprint_state()
    assert state["queries"] == {"rule": "referdino-plus", "keep_threshold": 0.275, "fallback": "empty"}
    assert state["family"] == "mevis" and state["tracking_alpha"] == 0.1 and "query_select" not in state
    # nothing above 0.275 ("nothing" in the expression: 0.1, 0.15, 0.05): every frame empty, as the script
    nothing = VideoRequest("x/9", r.video, "9", "nothing at all", r.frames, r.size)
    (p2, d2), = stage.predict_payloads("refvos", [nothing])
    assert d2["kept"] == [] and d2["seed_rles"] == [] and not decode_masks(p2).any()
    stage.close()
    top1 = ReferDINOStage(repo=str(clone), fallback="top1")
    top1.setup(RunContext(device="cpu", dataset="demo_mevis_val_u"))
    (p3, d3), = top1.predict_payloads("refvos", [nothing])
    assert d3["kept"] == [1] and d3["fallback"] is True
    np.testing.assert_array_equal(decode_masks(p3), expected_masks(frames, [1], "threshold"))
    calls = [c for c in json.loads("[" + ",".join(stub_log.read_text().splitlines()) + "]") if c["call"] == "infer"]
    assert calls[0]["shape"] == [1, 16, 3, 360, 540] and calls[0]["crop_len"] == 36  # the whole video, one call


def test_without_the_referdino_environment_says_how_to_build_it(demo_env, clone, tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_ENVS", str(tmp_path / "no-envs"))
    a, _card = load_adapter("referdino-plus", {"repo": str(clone), "ignore_pins": True})
    with pytest.raises(RefbenchInputError, match=r"refbench env create referdino-swinb") as err:
        a.setup(RunContext(device="cpu", dataset="demo_mevis_val_u"))
    assert "--model-arg referdino_python=PATH" in str(err.value) and str(err.value).startswith("model referdino-plus:")


# ----------------------------------------------------------------------------------------------
# End to end: refbench run, the SAM stage in the sam environment, the ReferDINO stage in a nested worker
# ----------------------------------------------------------------------------------------------

# What refine_from_refdino.py does with its predictor, on transformers directly: one session, each object's mask on
# its seed frame (frames in ascending order, each run as transformers' docs do after adding inputs), propagate with
# no start frame (the earliest prompt frame) forward, then reverse; a frame already seen keeps its first output;
# logits upsampled per object, > 0.
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
    seeds = v["seeds"]
    for f in sorted({x["frame"] for x in seeds}):
        ids = [k for k, x in enumerate(seeds) if x["frame"] == f]
        proc.add_inputs_to_inference_session(s, frame_idx=f, obj_ids=ids,
                                             input_masks=[np.load(seeds[k]["mask"]) for k in ids])
        with torch.inference_mode():
            model(inference_session=s, frame_idx=f)
    low = {k: {} for k in range(len(seeds))}
    for rev in ([False, True] if spec["both"] else [False]):
        with torch.inference_mode():
            for o in model.propagate_in_video_iterator(s, reverse=rev):
                for j, oid in enumerate(o.object_ids):
                    low[oid].setdefault(o.frame_idx, o.pred_masks[j:j + 1])
    got = np.zeros((len(seeds), len(frames), H, W), bool)
    for k in low:
        for t, l in low[k].items():
            got[k, t] = (proc.post_process_masks([l], original_sizes=[[H, W]], binarize=False)[0][0, 0] > 0).numpy()
    res[v["key"]] = got
np.savez_compressed(out, **res)
'''


def _script_fusion(ori, sam_objects, seeds, empty_other_seeds=True):
    """refine_from_refdino.py's tail, written out from the script (not refbench's functions)."""
    sam_objects = sam_objects.copy()
    if empty_other_seeds:
        for k, f in enumerate(seeds):
            for j, g in enumerate(seeds):
                if g != f:
                    sam_objects[k, g] = False

    def area(m):
        rows, cols = np.any(m, axis=1), np.any(m, axis=0)
        if not np.any(rows) or not np.any(cols):
            return 0
        r, c = np.where(rows)[0], np.where(cols)[0]
        return (r[-1] - r[0]) * (c[-1] - c[0])

    sam = sam_objects.any(0)
    cnt = valid = 0
    for t in range(len(ori)):
        a_o, a_s = area(ori[t]), area(sam[t])
        if a_o > 0 and a_s > 0:
            valid += 1
            if a_s * 3 < a_o * 2:
                cnt += 1
    multi = cnt * 2 > valid
    return (sam | ori) if multi else sam, multi


@pytest.fixture(scope="module")
def sam_env():
    return ci_env("sam")


@pytest.fixture(scope="module")
def tiny_checkpoint(sam_env, tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-sam2-plus")
    r = subprocess.run([str(sam_env), "-c", MAKE_TINY, str(d)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return d


def _cli_run(*args):
    from click.testing import CliRunner

    from refbench.cli import main

    r = CliRunner().invoke(main, ["run", *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_referdino_plus_demo_end_to_end_two_environments(demo_env, clone, sam_env, tiny_checkpoint, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("REFBENCH_ENVS", str(Path(sam_env).parents[2]))
    base = ["--model", "referdino-plus", "--dataset", "demo_mevis_val_u", "--limit", "2", "--no-leaderboard",
            "--model-arg", f"repo={clone}", "--model-arg", f"sam_checkpoint={tiny_checkpoint}",
            "--model-arg", f"referdino_python={sys.executable}"]
    _cli_run(*base, "--out", str(tmp_path / "run"))
    run_dir = tmp_path / "run"
    meta = json.loads((run_dir / "run.json").read_text())
    state = meta["adapter"]["fingerprint_state"]
    assert state["sam"]["transformers"] == "5.24.0" and state["sam"]["torch"].startswith("2.14.1")
    rd = state["referdino"]["state"]
    assert rd["torch"] == __import__("torch").__version__ and rd["torch"] != state["sam"]["torch"]  # two stacks
    assert rd["queries"]["keep_threshold"] == 0.275 and rd["family"] == "mevis"
    assert state["fusion_area_ratio"] == "2/3" and state["fusion_vote"] == "1/2"
    diags = [json.loads(x)["diagnostics"] for x in (run_dir / "diagnostics.jsonl").read_text().splitlines()]
    preds = json.loads((run_dir / "predictions.json").read_text())
    reqs = _requests(2)
    spec = {"both": True, "videos": []}
    oris = {}
    for (r, frames), d in zip(reqs, diags):
        # the seeds: kept queries 0 and 1 on their best frames 2 and 1; both objects on every frame (forward from
        # frame 1 to 15, backward from 1 to 0)
        assert d["kept"] == [0, 1] and d["seed_frames"] == [2, 1] and d["seed_frame_names"] == ["00002", "00001"]
        assert d["frames_tracked"] == [16, 16] and d["objects"] == 2
        assert "seed_rles" not in d["referdino"] and d["referdino"]["deform_attn"] == "pytorch"
        seeds = []
        for k, (q, f) in enumerate(zip(d["kept"], d["seed_frames"])):
            p = tmp_path / f"{r.exp_id}-{k}.npy"
            np.save(p, expected_masks(frames, [q], "threshold")[f])
            seeds.append({"frame": f, "mask": str(p)})
        spec["videos"].append({"key": r.exp_id, "frames": [str(x) for x in r.frames.paths], "seeds": seeds})
        oris[r.exp_id] = expected_masks(frames, [0, 1], "threshold")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    ref = subprocess.run([str(sam_env), "-c", REFERENCE, str(tiny_checkpoint), str(tmp_path / "spec.json"),
                          str(tmp_path / "ref.npz")], capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    with np.load(tmp_path / "ref.npz") as z:
        sam_ref = {k: z[k] for k in z.files}
    for (r, _frames), d in zip(reqs, diags):
        got = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in preds[r.video][r.exp_id]]})
        assert sam_ref[r.exp_id][:, 0].any() and sam_ref[r.exp_id][:, 3:].any()  # the reverse and forward passes
        want, multi = _script_fusion(oris[r.exp_id], sam_ref[r.exp_id], d["seed_frames"])
        assert d["several"] == multi
        np.testing.assert_array_equal(got, want)
    # one run with three options changed (limit 1: each run starts two workers): union fusion, tracked masks on the
    # other seed frames, forward only (frame 0, before the earliest seed, has no SAM 2 mask); another fingerprint
    _cli_run(*base[:5], "1", *base[6:], "--model-arg", "fusion=union", "--model-arg", "other_seed_frames=track",
             "--model-arg", "direction=forward", "--out", str(tmp_path / "opts"))
    meta_o = json.loads((tmp_path / "opts" / "run.json").read_text())
    assert meta_o["header"]["fingerprint"] != meta["header"]["fingerprint"]
    d_o = json.loads((tmp_path / "opts" / "diagnostics.jsonl").read_text().splitlines()[0])["diagnostics"]
    assert d_o["frames_tracked"] == [15, 15] and d_o["fusion"]["rule"] == "union"
    r0 = reqs[0][0]
    po = json.loads((tmp_path / "opts" / "predictions.json").read_text())
    got = decode_masks({"size": [160, 240], "rles": [x["counts"] for x in po[r0.video][r0.exp_id]]})
    sam_fwd = sam_ref[r0.exp_id].any(0)
    sam_fwd[0] = False
    np.testing.assert_array_equal(got, sam_fwd | oris[r0.exp_id])


def test_options_that_change_outputs_change_the_fingerprint():
    """Before setup the fingerprint is the code, version and output options: every rule option moves it, the paths
    and interpreters (whose content is hashed after setup) do not."""
    def fp(**o):
        a, _card = load_adapter("referdino-plus", {"ignore_pins": True, **o})
        return a.fingerprint()

    base = fp()
    changed = [fp(keep_threshold=0.3), fp(fallback="top1"), fp(direction="forward"), fp(other_seed_frames="track"),
               fp(sam_threshold=0.5), fp(fusion="sam"), fp(fusion_area_ratio="3/4"), fp(fusion_vote="2/3"),
               fp(dtype="bfloat16"), fp(short_side=480), fp(crop_len=24), fp(tracking_alpha=0.2), fp(weights="ryt_swinb.pth")]
    assert len({base, *changed}) == len(changed) + 1
    assert fp(referdino_python="/x/python", sam_checkpoint="/x", repo="/y", offload_video=True,
              referdino_ignore_pins=True) == base
