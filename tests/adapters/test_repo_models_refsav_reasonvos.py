"""`refbench run` of the repository-based adapters on the Ref-SAV and ReasonVOS layouts: the golden annotation
files (../shared/data, copied to a temporary folder, never into the repository) plus generated JPEG frames of the
annotated size, run through the ReferDINO stub clone; both protocols score the stored predictions, and the
family rule (no official ReferDINO script for either: top-1) is what the run recorded."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from refbench.runs.runner import RunConfig, run
from tests.adapters.test_referdino import clone  # noqa: F401 - the stub clone fixture


def _frames(root, meta, folder, sizes):
    for video, v in meta["videos"].items():
        h, w = sizes[video]
        for i, f in enumerate(v["frames"]):
            p = root / folder / video / f"{f}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            yy, xx = np.mgrid[:h, :w]
            img = np.stack([(xx * 3 + i * 17) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
            Image.fromarray(img).save(p, quality=95)


def _sizes(meta, masks):
    out = {}
    for video, v in meta["videos"].items():
        if "height" in v:
            out[video] = (v["height"], v["width"])
            continue
        for e in v["expressions"].values():
            ids = e["anno_id"] if isinstance(e["anno_id"], list) else [e["anno_id"]]
            rles = [r for a in ids for r in masks.get(str(a), []) if r]
            if rles:
                out[video] = tuple(rles[0]["size"])
                break
    return out


def test_referdino_runs_on_refsav_and_reasonvos(shared_data, clone, tmp_path):  # noqa: F811
    refsav = tmp_path / "refsav"
    shutil.copytree(shared_data / "refsav_golden", refsav, ignore=shutil.ignore_patterns("expected.json"))
    meta = json.loads((refsav / "meta_expressions_valid.json").read_text())
    _frames(refsav, meta, "videos", _sizes(meta, json.loads((refsav / "mask_dict.json").read_text())))
    rv = tmp_path / "reasonvos"
    shutil.copytree(shared_data / "reasonvos_golden", rv, ignore=shutil.ignore_patterns("predictions.json",
                                                                                          "expected.json"))
    masks = json.loads((rv / "mask_dict.json").read_text())
    masks["4"][1] = {"size": masks["4"][0]["size"], "counts": masks["4"][0]["counts"]}  # the golden corrupt RLE
    (rv / "mask_dict.json").write_text(json.dumps(masks))
    meta_rv = json.loads((rv / "meta_expressions_format.json").read_text())
    _frames(rv, meta_rv, "JPEGImages", _sizes(meta_rv, masks))
    for name, root, metric in (("refsav_val", refsav, "J&F"), ("reasonvos", rv, "J&F")):
        res = run(RunConfig(model="referdino-swinb", dataset=name, root=str(root), out=str(tmp_path / name),
                            leaderboard=None, model_args={"repo": str(clone), "ignore_pins": True}))
        n = len((tmp_path / name / "diagnostics.jsonl").read_text().splitlines())
        assert res.predicted == n > 0 and res.summary["counts"]["scored"] == n
        assert 0 <= res.summary["metrics"][metric] <= 100
        state = json.loads((tmp_path / name / "run.json").read_text())["adapter"]["fingerprint_state"]
        assert state["query_select"] == "top1" and "no official ReferDINO script" in state["query_select_from"]
