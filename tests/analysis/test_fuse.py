"""``refbench fuse``: the majority rule (ties with an even number of runs), fused runs of every mask task that
``eval``, ``export`` and ``report`` accept, and the refusals."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refbench.analysis.fuse import fused_fingerprint, vote_ids, vote_masks
from refbench.cli import main
from refbench.rle import decode_rle


def _cli(*args) -> tuple[int, str]:
    r = CliRunner().invoke(main, [*map(str, args)])
    return r.exit_code, r.output


def test_vote_masks_more_than_half_and_ties_are_background():
    a = np.array([[1, 1, 0, 0]], dtype=np.uint8)
    b = np.array([[1, 0, 1, 0]], dtype=np.uint8)
    c = np.array([[1, 0, 0, 255]], dtype=np.uint8)  # any non-zero is foreground
    assert vote_masks([a, b, c]).tolist() == [[True, False, False, False]]
    assert vote_masks([a, b]).tolist() == [[True, False, False, False]]  # 1 of 2 is a tie: background
    d = np.array([[1, 1, 1, 0]], dtype=np.uint8)
    assert vote_masks([a, b, c, d]).tolist() == [[True, False, False, False]]  # 2 of 4: tie, 3 of 4: foreground
    assert vote_masks([a, b, d]).tolist() == [[True, True, True, False]]


def test_vote_ids_per_object_id():
    m1 = np.array([[1, 1, 2, 0, 3]], dtype=np.uint8)
    m2 = np.array([[1, 2, 2, 0, 3]], dtype=np.uint8)
    m3 = np.array([[1, 2, 1, 3, 0]], dtype=np.uint8)
    assert vote_ids([m1, m2, m3]).tolist() == [[1, 2, 2, 0, 3]]
    m4 = np.array([[2, 1, 1, 3, 3]], dtype=np.uint8)
    # four runs: pixel 0 has id 1 three times (wins), pixel 1 and 2 are 2 : 2 ties (background), pixel 4 has 3 of 4
    assert vote_ids([m1, m2, m3, m4]).tolist() == [[1, 0, 0, 0, 3]]


def test_fingerprint_derives_from_the_inputs_not_their_order():
    assert fused_fingerprint(["a", "b"]) == fused_fingerprint(["b", "a"]) != fused_fingerprint(["a", "c"])


def _frames(rles: list, size) -> np.ndarray:
    return np.stack([np.zeros(size, np.uint8) if r is None else decode_rle(r, "test") for r in rles])


def test_fuse_refvos_demo_runs(demo_runs, tmp_path):
    runs = [demo_runs["demo_mevis_val_u", m] for m in ("prior", "empty", "oracle")]
    out = tmp_path / "fused"
    code, text = _cli("fuse", *runs, "--out", out)
    assert code == 0, text
    assert "fused 3 runs of demo_mevis_val_u (refvos; samples 15, frames" in text
    docs = [json.loads((r / "predictions.json").read_text()) for r in runs]
    fused = json.loads((out / "predictions.json").read_text())
    for video, exps in docs[0].items():
        for exp, rl in exps.items():
            size = (160, 240)
            inputs = [_frames(d[video][exp], size) for d in docs]
            want = (inputs[0].astype(int) + inputs[1] + inputs[2]) >= 2  # independent: 2 of 3
            assert np.array_equal(_frames(fused[video][exp], size).astype(bool), want), (video, exp)
    meta = json.loads((out / "run.json").read_text())
    assert meta["header"]["adapter"] == "fuse" and meta["fuse"]["rule"].startswith("pixel-wise majority")
    fps = [json.loads((r / "run.json").read_text())["header"]["fingerprint"] for r in runs]
    assert [i["fingerprint"] for i in meta["fuse"]["inputs"]] == fps
    assert meta["header"]["fingerprint"] == fused_fingerprint(fps)
    summary = json.loads((out / "summary.json").read_text())
    # eval accepts the fused run and gives the same numbers
    code, text = _cli("eval", "--run", out, "--json", tmp_path / "again.json")
    assert code == 0, text
    assert json.loads((tmp_path / "again.json").read_text())["metrics"] == summary["metrics"]
    # export accepts it
    code, text = _cli("export", "--run", out, "--format", "mevis", "--out", tmp_path / "sub.zip")
    assert code == 0, text
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        assert sum(1 for n in zf.namelist() if n.endswith(".png")) == sum(len(rl) for e in fused.values()
                                                                           for rl in e.values())
    # two runs: the intersection (a 1 : 1 tie is background)
    code, text = _cli("fuse", runs[0], runs[2], "--out", tmp_path / "two")
    assert code == 0, text
    two = json.loads((tmp_path / "two" / "predictions.json").read_text())
    v, e = next((v, e) for v, exps in docs[0].items() for e in exps)
    want = _frames(docs[0][v][e], (160, 240)).astype(bool) & _frames(docs[2][v][e], (160, 240)).astype(bool)
    assert np.array_equal(_frames(two[v][e], (160, 240)).astype(bool), want)


def test_fuse_res_demo_runs_and_nulls(demo_runs, tmp_path):
    runs = [demo_runs["demo_refcoco_val", m] for m in ("prior", "empty", "oracle")]
    docs = [json.loads((r / "predictions.json").read_text()) for r in runs]
    # a copy of the oracle whose first sample has no mask (null votes background)
    sid = next(iter(docs[2]))
    nulled = tmp_path / "nulled"
    shutil.copytree(runs[2], nulled)
    d = json.loads(json.dumps(docs[2]))
    d[sid] = None
    (nulled / "predictions.json").write_text(json.dumps(d))
    code, text = _cli("fuse", runs[0], runs[2], nulled, "--out", tmp_path / "f")
    assert code == 0, text
    fused = json.loads((tmp_path / "f" / "predictions.json").read_text())
    assert set(fused) == set(docs[0])
    for k in fused:
        masks = [decode_rle(x[k], "t") if x[k] is not None else None for x in (docs[0], docs[2], d)]
        size = next(m.shape for m in masks if m is not None)
        votes = sum(np.zeros(size, int) if m is None else m.astype(int) for m in masks)
        assert np.array_equal(decode_rle(fused[k], "t").astype(bool), votes >= 2), k
    s = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert set(s["metrics"]) == {"cIoU", "gIoU"} and s["run"]["model"] == "fuse"


def test_fuse_refusals(demo_runs, tmp_path):
    a, b = demo_runs["demo_mevis_val_u", "prior"], demo_runs["demo_mevis_val_u", "oracle"]
    code, out = _cli("fuse", a, demo_runs["demo_refcoco_val", "prior"], "--out", tmp_path / "x")
    assert code == 2 and "runs of different datasets cannot be fused" in out and len(out.strip().splitlines()) == 1
    code, out = _cli("fuse", demo_runs["demo_charades_test", "prior"], demo_runs["demo_charades_test", "oracle"],
                     "--out", tmp_path / "x")
    assert code == 2 and "not spans" in out
    cut = tmp_path / "cut"
    shutil.copytree(b, cut)
    doc = json.loads((cut / "predictions.json").read_text())
    v = next(iter(doc))
    e = next(iter(doc[v]))
    doc[v][e] = doc[v][e][:-1]
    (cut / "predictions.json").write_text(json.dumps(doc))
    code, out = _cli("fuse", a, cut, "--out", tmp_path / "x")
    assert code == 2 and "other frame sets cannot be fused" in out and len(out.strip().splitlines()) == 1
    code, out = _cli("fuse", a, b, "--out", a)
    assert code == 2 and "is one of the input runs" in out
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    code, out = _cli("fuse", a, b, "--out", tmp_path / "busy")
    assert code == 2 and "--overwrite" in out
    assert not (tmp_path / "x").exists()


def test_fuse_vos_id_maps(tmp_path):
    from tests.analysis.vos_data import SEQS, gt_maps, make_davis, vos_run

    root = make_davis(tmp_path / "DAVIS")
    runs = [vos_run(tmp_path / "a", root, 0), vos_run(tmp_path / "b", root, 2, drop=1),
            vos_run(tmp_path / "c", root, 4)]
    out = tmp_path / "fused"
    code, text = _cli("fuse", *runs, "--out", out)
    assert code == 0, text
    fused = json.loads((out / "predictions.json").read_text())
    for seq in SEQS:
        maps = np.stack([np.roll(gt_maps(seq), s, axis=2) for s in (0, 2, 4)])
        maps[1][maps[1] == 1] = 0
        want = np.zeros(maps.shape[1:], np.uint8)  # independent: the id more than half of the maps give
        for oid in range(1, 4):
            want[(maps == oid).sum(axis=0) >= 2] = oid
        got = np.zeros_like(want)
        for oid, rles in fused[seq].items():
            for t, r in enumerate(rles):
                if r is not None:
                    got[t][decode_rle(r, "t").astype(bool)] = int(oid)
        assert np.array_equal(got, want), seq
        assert (want == 1).any() and ((maps == 1).sum(axis=0) == 1).any()  # object 1 lost where only one run has it
    s = json.loads((out / "summary.json").read_text())
    assert s["protocol"] == "davis_semi" and s["run"]["model"] == "fuse"
    code, text = _cli("eval", "--run", out, "--json", tmp_path / "e.json")
    assert code == 0, text
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == s["metrics"]
