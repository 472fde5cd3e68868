"""`refbench run` on the vos task: the first-frame baseline end to end (run, store, score, resume, export) on the
golden layouts, each checked against the same predictions written independently as the official PNG tree and
scored by `refbench eval`."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refbench.cli import main
from refbench.data.refytvos import read_palette_png
from refbench.evaluate.run import evaluate
from refbench.export.davis import davis_palette


def _cli(*args: str) -> str:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def _run_dir(tmp_path: Path, dataset: str) -> Path:
    (d,) = list((tmp_path / "runs" / dataset).glob("first-frame-*"))
    return d


def _png(path: Path, arr: np.ndarray, palette: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P" if palette else "L")
    if palette:
        im.putpalette(davis_palette())
    im.save(path)


# ----------------------------------------------------------------------------------------------
# DAVIS (golden davis_osvos13): run, store, score, resume
# ----------------------------------------------------------------------------------------------


def test_first_frame_on_davis_end_to_end(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = shared_data / "davis_osvos13"
    out = _cli("run", "--model", "first-frame", "--dataset", "davis17_val", "--root", str(root), "--no-leaderboard")
    assert "13 predicted, 0 reused, 13 samples" in out
    run_dir = _run_dir(tmp_path, "davis17_val")
    summary = json.loads((run_dir / "summary.json").read_text())
    # the store holds one payload per video: RLE per object and frame, the frame names
    con = sqlite3.connect(run_dir / "part-00000.sqlite")
    rows = con.execute("SELECT sample_id, payload FROM predictions").fetchall()
    con.close()
    assert len(rows) == 13
    payload = json.loads(dict(rows)["blackswan"])
    assert payload["size"] == [480, 854] and list(payload["objects"]) == ["1"]
    assert len(payload["frames"]) == len(payload["objects"]["1"]) == 50
    # the same predictions as the official PNG tree, written here: frame 0's annotation on every frame
    tree = tmp_path / "tree"
    ann = root / "Annotations" / "480p"
    for seq in (root / "ImageSets" / "2017" / "val.txt").read_text().split():
        frames = sorted(ann.glob(f"{seq}/*.png"))
        first = read_palette_png(frames[0])
        for f in frames:
            _png(tree / seq / f.name, first)
    _res, ref = evaluate("davis17_val", tree, root=root)
    assert summary["metrics"] == ref["metrics"]
    assert round(summary["metrics"]["J&F"], 2) == 28.99  # the floor on these 13 sequences
    assert summary["run"]["model"] == "first-frame" and summary["run"]["samples"] == 13
    # predictions.json (what the run scored, and refbench eval reads): frame-keyed RLE, every frame of every object
    pred = json.loads((run_dir / "predictions.json").read_text())
    assert set(pred["blackswan"]["1"]) == {f.stem for f in (ann / "blackswan").glob("*.png")}
    assert Path(summary["details"]["predictions"]).resolve() == (run_dir / "predictions.json").resolve()


# ----------------------------------------------------------------------------------------------
# SA-V, SeCVOS, LVOS, MOSE v2 golden layouts
# ----------------------------------------------------------------------------------------------


def _first_nonempty(pngs: list[Path], value=None) -> tuple[int, np.ndarray] | None:
    for i, p in enumerate(pngs):
        a = read_palette_png(p)
        m = (a > 0) if value is None else (a == value)
        if m.any():
            return i, m
    return None


def _sav_tree(ann: Path, out: Path) -> None:
    """SA-V / SeCVOS first-frame by hand: each object's first non-empty PNG copied to its later annotated frames."""
    for vdir in sorted(p for p in ann.iterdir() if p.is_dir()):
        for odir in sorted(p for p in vdir.iterdir() if p.is_dir()):
            pngs = sorted(odir.glob("*.png"))
            start, m = _first_nonempty(pngs)
            for i, p in enumerate(pngs):
                _png(out / vdir.name / odir.name / p.name, (m if i >= start else np.zeros_like(m)).astype(np.uint8))


@pytest.mark.parametrize("dataset,golden,jf", [("sav_val", "sav_golden", 66.96), ("secvos", "secvos_golden", 49.20)])
def test_first_frame_on_per_object_layouts(shared_data, tmp_path, monkeypatch, dataset, golden, jf):
    monkeypatch.chdir(tmp_path)
    root = shared_data / golden
    out = _cli("run", "--model", "first-frame", "--dataset", dataset, "--root", str(root), "--no-leaderboard")
    n = len([p for p in (root / ("Annotations_6fps" if dataset == "sav_val" else "Annotations")).iterdir()])
    assert f"{n} predicted, 0 reused" in out
    summary = json.loads((_run_dir(tmp_path, dataset) / "summary.json").read_text())
    # resume: nothing predicted twice, the same numbers
    out = _cli("run", "--model", "first-frame", "--dataset", dataset, "--root", str(root), "--no-leaderboard")
    assert f"0 predicted, {n} reused" in out
    assert json.loads((_run_dir(tmp_path, dataset) / "summary.json").read_text())["metrics"] == summary["metrics"]
    ann = root / ("Annotations_6fps" if dataset == "sav_val" else "Annotations")
    _sav_tree(ann, tmp_path / "tree")
    _res, ref = evaluate(dataset, tmp_path / "tree", root=root)
    assert summary["metrics"] == ref["metrics"]
    assert round(summary["metrics"]["J&F"], 2) == jf
    # SA-V keeps overlapping objects (one PNG each): sav_syn_002's objects 000 and 001 overlap in the GT
    if dataset == "sav_val":
        pred = json.loads((_run_dir(tmp_path, dataset) / "predictions.json").read_text())
        from refbench.rle import decode_rle

        f = sorted(pred["sav_syn_002"]["000"])[0]
        a = decode_rle(pred["sav_syn_002"]["000"][f], "a")
        b = decode_rle(pred["sav_syn_002"]["001"][f], "b")
        assert (a & b).any()


def test_first_frame_on_lvos(shared_data, tmp_path, monkeypatch):
    """LVOS: each object prompted at its own frame_range start (objects start later); one id per pixel."""
    monkeypatch.chdir(tmp_path)
    root = shared_data / "lvos_golden"
    _cli("run", "--model", "first-frame", "--dataset", "lvos_v2_val", "--root", str(root), "--no-leaderboard")
    run_dir = _run_dir(tmp_path, "lvos_v2_val")
    summary = json.loads((run_dir / "summary.json").read_text())
    meta = json.loads((root / "valid_meta.json").read_text())["videos"]
    tree = tmp_path / "tree"
    starts = {}
    for seq, v in meta.items():
        objs = v["objects"]
        names = sorted({f"{i:08d}" for o in objs.values()
                        for i in range(int(o["frame_range"]["start"]), int(o["frame_range"]["end"]), 5)})
        first = {}
        for oid, o in objs.items():
            rng = [f"{i:08d}" for i in range(int(o["frame_range"]["start"]), int(o["frame_range"]["end"]), 5)]
            pngs = [root / "Annotations" / seq / f"{n}.png" for n in rng if (root / "Annotations" / seq / f"{n}.png").is_file()]
            i, m = _first_nonempty(pngs, int(oid))
            first[oid] = (pngs[i].stem, m)
            starts[(seq, oid)] = pngs[i].stem
        h, w = next(iter(first.values()))[1].shape
        # paint: the most recently prompted object wins an overlap (merge=latest), meta order breaking ties
        order = sorted(objs, key=lambda o: (first[o][0], -list(objs).index(o)))
        for n in names:
            arr = np.zeros((h, w), np.uint8)
            for oid in order:
                start, m = first[oid]
                if n >= start:
                    arr[m] = int(oid)
            _png(tree / seq / f"{n}.png", arr)
    _res, ref = evaluate("lvos_v2_val", tree, root=root)
    assert summary["metrics"] == ref["metrics"]
    assert round(summary["metrics"]["J&F"], 2) == 50.52
    # objects of one video start on different frames (lvs_seen_a_2's range starts at 25)
    assert len({starts[k] for k in starts if k[0] == "lvs_seen_a"}) > 1
    diag = [json.loads(x) for x in (run_dir / "diagnostics.jsonl").read_text().splitlines()]
    assert {d["sample_id"]: d["diagnostics"]["prompt_frames"] for d in diag}["lvs_seen_a"] == \
        {o: starts[("lvs_seen_a", o)] for o in meta["lvs_seen_a"]["objects"]}


def test_first_frame_on_mosev2_with_a_protocol_arg(shared_data, tmp_path, monkeypatch):
    """MOSE v2 golden: its two-frame video needs --protocol-arg short_videos=official, which run passes on to the
    scorer (and keeps the run off the leaderboard)."""
    monkeypatch.chdir(tmp_path)
    root = shared_data / "mosev2_golden"
    r = CliRunner().invoke(main, ["run", "--model", "first-frame", "--dataset", "mosev2_local", "--root", str(root),
                                  "--no-leaderboard"])
    assert r.exit_code == 2 and "short_videos=official" in r.output
    out = _cli("run", "--model", "first-frame", "--dataset", "mosev2_local", "--root", str(root), "--leaderboard",
               str(tmp_path / "lb"), "--protocol-arg", "short_videos=official")
    assert "not added to the leaderboard" in out and not (tmp_path / "lb" / "vos.csv").exists()
    summary = json.loads((_run_dir(tmp_path, "mosev2_local") / "summary.json").read_text())
    assert summary["details"]["protocol_args"]["short_videos"] == "official"
    meta = json.loads((root / "meta.json").read_text())["videos"]
    tree = tmp_path / "tree"
    for vid, v in meta.items():
        pngs = sorted((root / "Annotations" / vid).glob("*.png"), key=lambda p: int(p.stem))
        first = read_palette_png(pngs[0])
        keep = np.isin(first, [int(o) for o in v["objects"]])
        for p in pngs:
            _png(tree / vid / p.name, np.where(keep, first, 0))
    _res, ref = evaluate("mosev2_local", tree, root=root, protocol_args={"short_videos": "official"})
    assert summary["metrics"] == ref["metrics"]
    assert summary["metrics"]["J&F"] == 63.82


# ----------------------------------------------------------------------------------------------
# Server-scored splits: the submission zips
# ----------------------------------------------------------------------------------------------


def _jpegs(folder: Path, names: list[str], size=(48, 64)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.new("RGB", (size[1], size[0]), (90, 90, 90)).save(folder / f"{n}.jpg")


def test_first_frame_on_mose_val_ends_in_its_submission_zip(shared_data, tmp_path, monkeypatch):
    """MOSE v1 valid (DAVIS layout, first-frame annotations only): the run writes the server zip, with one palette
    PNG per JPEG frame holding the first frame's ids."""
    monkeypatch.chdir(tmp_path)
    src = shared_data / "davis_osvos13" / "Annotations" / "480p"
    root = tmp_path / "MOSE"
    for seq in ("camel", "dog"):
        names = [p.stem for p in sorted((src / seq).glob("*.png"))][:5]
        _jpegs(root / "JPEGImages" / seq, names, (480, 854))
        (root / "Annotations" / seq).mkdir(parents=True)
        shutil.copy(src / seq / f"{names[0]}.png", root / "Annotations" / seq / f"{names[0]}.png")
    out = _cli("run", "--model", "first-frame", "--dataset", "mose_val", "--root", str(root))
    assert "submission zip" in out and "10 frames of 2 videos" in out
    zpath = _run_dir(tmp_path, "mose_val") / "submission.zip"
    with zipfile.ZipFile(zpath) as z:
        names = sorted(z.namelist())
        assert names == sorted(f"{s}/{p.stem}.png" for s in ("camel", "dog")
                               for p in sorted((root / "JPEGImages" / s).glob("*.jpg")))
        first = read_palette_png(root / "Annotations" / "dog" / "00000.png")
        import io

        for n in names:
            if n.startswith("dog/"):
                with Image.open(io.BytesIO(z.read(n))) as im:
                    assert im.mode == "P" and np.array_equal(np.array(im), first)
    assert not (_run_dir(tmp_path, "mose_val") / "summary.json").exists()


def test_first_frame_on_ytvos19_objects_that_start_later(tmp_path, monkeypatch):
    """YouTube-VOS 2019 valid: each object is prompted where it first appears; the zip has it from there on only,
    below Annotations/."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "ytvos"
    names = [f"{i:05d}" for i in range(0, 30, 5)]
    _jpegs(root / "JPEGImages" / "vid1", names)
    a = np.zeros((48, 64), np.uint8)
    a[5:20, 5:20] = 1
    _png(root / "Annotations" / "vid1" / "00000.png", a)
    b = np.zeros((48, 64), np.uint8)
    b[10:30, 10:40] = 2  # overlaps object 1's copy: the later prompt wins (merge=latest)
    _png(root / "Annotations" / "vid1" / "00010.png", b)
    out = _cli("run", "--model", "first-frame", "--dataset", "ytvos19_val", "--root", str(root))
    assert "6 frames of 1 videos" in out
    import io

    with zipfile.ZipFile(_run_dir(tmp_path, "ytvos19_val") / "submission.zip") as z:
        assert sorted(z.namelist()) == [f"Annotations/vid1/{n}.png" for n in names]
        got = {n: np.array(Image.open(io.BytesIO(z.read(f"Annotations/vid1/{n}.png")))) for n in names}
    assert np.array_equal(got["00000"], a) and np.array_equal(got["00005"], a)
    want = a.copy()
    want[b == 2] = 2
    for n in ("00010", "00015", "00025"):
        assert np.array_equal(got[n], want)
    # lowest_id: object 1 keeps the overlap instead
    _cli("run", "--model", "first-frame", "--dataset", "ytvos19_val", "--root", str(root), "--model-arg",
         "merge=lowest_id", "--out", str(tmp_path / "low"))
    with zipfile.ZipFile(tmp_path / "low" / "submission.zip") as z:
        low = np.array(Image.open(io.BytesIO(z.read("Annotations/vid1/00020.png"))))
    want = b.copy()
    want[a == 1] = 1
    assert np.array_equal(low, want)


# ----------------------------------------------------------------------------------------------
# Through the worker, and torchrun
# ----------------------------------------------------------------------------------------------


def test_first_frame_in_a_worker_equals_in_process(shared_data, tmp_path):
    """The prompts cross the worker protocol as RLE with their frame indices; same predictions, same fingerprint;
    an adapter that uses prompts is not refused as an oracle."""
    import sys

    from refbench.runs.runner import RunConfig, run

    root = shared_data / "sav_golden"
    a = run(RunConfig(model="first-frame", dataset="sav_val", root=str(root), out=str(tmp_path / "in")))
    b = run(RunConfig(model="first-frame", dataset="sav_val", root=str(root), out=str(tmp_path / "worker"),
                      model_args={"python": sys.executable}))
    assert (tmp_path / "in" / "predictions.json").read_bytes() == (tmp_path / "worker" / "predictions.json").read_bytes()
    assert a.summary["metrics"] == b.summary["metrics"]
    fa = json.loads((tmp_path / "in" / "run.json").read_text())["header"]["fingerprint"]
    fb = json.loads((tmp_path / "worker" / "run.json").read_text())["header"]["fingerprint"]
    assert fa == fb


def test_torchrun_two_processes_equal_one_on_vos(shared_data, tmp_path):
    import os
    import subprocess
    import sys

    from tests.runs.test_resume_dist import _env, _torchrun

    env = _env(tmp_path)
    common = ["--model", "first-frame", "--dataset", "sav_val", "--root", str(shared_data / "sav_golden"),
              "--no-leaderboard"]
    two = _torchrun(2, common + ["--out", str(tmp_path / "two")], env, tmp_path)
    assert two.returncode == 0, two.stdout + two.stderr
    one = subprocess.run([sys.executable, "-m", "refbench", "run", *common, "--out", str(tmp_path / "one")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "one" / "predictions.json").read_bytes() == (tmp_path / "two" / "predictions.json").read_bytes()
    assert len(list((tmp_path / "two").glob("part-*.sqlite"))) == 2
    assert os.path.exists(tmp_path / "two" / "summary.json")
