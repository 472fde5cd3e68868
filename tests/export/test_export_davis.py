"""refbench.export.davis: Ref-DAVIS17 convention A palette zips, DAVIS / MOSE sequence zips."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refbench.data.base import PredictionError
from refbench.data.davis import DavisLoader, RefDavisLoader
from refbench.evaluate.video import evaluate_video
from refbench.export.davis import davis_palette, export_davis
from tests.evaluate.test_refdavis_a import (
    SETS,
    VIDEOS,
    make_refdavis_root,
    perturbed_predictions,
    referformer_merge,
    write_predictions,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def refdavis(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("refdavis_export")
    gts = make_refdavis_root(root)
    loader = RefDavisLoader(root)
    frames = list(loader.samples()[0].frames)
    preds = perturbed_predictions(loader, gts)
    return {"root": root, "loader": loader, "gts": gts, "frames": frames, "preds": preds,
            "pred_dir": write_predictions(root / "pred", preds, frames)}


@pytest.fixture(scope="module")
def exported(refdavis, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("out") / "refdavis_a.zip"
    return out, export_davis(None, refdavis["loader"], refdavis["pred_dir"], out)


def _indices(data: bytes) -> tuple[str, list[int] | None, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        return im.mode, im.getpalette(), np.array(im)


def test_palette_is_the_davis_palette(shared_data):
    pal = davis_palette()
    assert len(pal) == 768 and pal[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    png = next((shared_data / "davis_osvos13" / "Annotations" / "480p" / "blackswan").glob("*.png"))
    with Image.open(png) as im:
        assert im.getpalette() == pal


def test_round_trip_entries_palette_and_indices(refdavis, exported):
    out, report = exported
    frames = refdavis["frames"]
    want = sorted(f"anno_{k}/{v}/{f}.png" for k in SETS for v in VIDEOS for f in frames)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert names == want  # exactly these, sorted, no directory entries
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        loader = refdavis["loader"]
        for k in SETS:
            for video in VIDEOS:
                objs = loader.annotator_objects(video, k)
                merged = referformer_merge([refdavis["preds"][(video, s.exp_id)] for s in objs])
                for t, f in enumerate(frames):
                    mode, pal, idx = _indices(zf.read(f"anno_{k}/{video}/{f}.png"))
                    assert mode == "P" and pal == davis_palette()
                    np.testing.assert_array_equal(idx, merged[t])
    assert (report.path, report.format, report.videos, report.expressions, report.frames, report.server,
            report.filled) == (out, "davis", 3, 24, 4 * 3 * len(frames), None, 0)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_deterministic_bytes_from_any_source(refdavis, exported, tmp_path):
    out, _ = exported
    again = export_davis(None, refdavis["loader"], refdavis["pred_dir"], tmp_path / "again.zip")
    assert again.path.read_bytes() == out.read_bytes()
    z = tmp_path / "pred.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(refdavis["pred_dir"].rglob("*.png"), reverse=True):
            zf.write(p, p.relative_to(refdavis["pred_dir"]).as_posix())
    from refbench.preds.masks import open_mask_source

    keys = {s.key: (s.video, s.exp_id) for s in refdavis["loader"].samples()}
    with open_mask_source(z, "expression", "grey", keys) as source:  # an open MaskSource is used as is
        from_zip = export_davis(None, refdavis["loader"], source, tmp_path / "from_zip.zip")
    assert from_zip.path.read_bytes() == out.read_bytes()
    with pytest.raises(FileExistsError):
        export_davis(None, refdavis["loader"], refdavis["pred_dir"], tmp_path / "again.zip")
    export_davis(None, refdavis["loader"], refdavis["pred_dir"], tmp_path / "again.zip", overwrite=True)


def test_exported_sets_score_like_refdavis_a_with_davis_unsup(refdavis, exported, tmp_path):
    """Each anno_k folder, scored as ReferFormer's eval_davis.py does (DAVIS unsupervised on a DAVIS-2017
    root whose Annotations_unsupervised/480p is the converted valid/Annotations), gives the refdavis_a set."""
    out, _ = exported
    davis = tmp_path / "DAVIS"
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "val.txt").write_text("\n".join(VIDEOS) + "\n")  # meta order = val.txt order
    for d in ("Annotations", "Annotations_unsupervised"):
        (davis / d).mkdir()
        (davis / d / "480p").symlink_to(refdavis["root"] / "valid" / "Annotations", target_is_directory=True)
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "results")
    ref = evaluate_video(None, refdavis["loader"], refdavis["pred_dir"], protocol="refdavis_a")
    for k in SETS:
        res = evaluate_video(None, DavisLoader(davis), tmp_path / "results" / f"anno_{k}", protocol="davis_unsup")
        assert res.details["official"]["values"] == ref.details["official"]["values"][f"anno_{k}"]
        assert res.metrics["J&F"] == ref.metrics[f"J&F (anno_{k})"]
        assert (res.metrics["J"], res.metrics["F"]) == (ref.metrics[f"J (anno_{k})"], ref.metrics[f"F (anno_{k})"])
        rows = [r for r in ref.per_sample if r["set"] == f"anno_{k}"]
        assert [r["key"] for r in res.per_sample] == [r["object"] for r in rows]
        assert [r["J-Decay"] for r in res.per_sample] == [r["J-Decay"] for r in rows]


def test_missing_predictions(refdavis, tmp_path):
    pred = tmp_path / "p"
    shutil.copytree(refdavis["pred_dir"], pred)
    shutil.rmtree(pred / "acrobat" / "6")
    (pred / "bike" / "3" / "00004.png").unlink()
    out = tmp_path / "out" / "x.zip"
    out.parent.mkdir()
    with pytest.raises(PredictionError, match=r"acrobat_6"):
        export_davis(None, refdavis["loader"], pred, out)
    assert not any(out.parent.iterdir())
    report = export_davis(None, refdavis["loader"], pred, out, missing="empty")
    assert report.filled == len(refdavis["frames"]) + 1  # frames written empty
    with zipfile.ZipFile(out) as zf:
        _mode, _pal, idx = _indices(zf.read("anno_2/acrobat/00003.png"))
    merged = referformer_merge([refdavis["preds"][("acrobat", "2")], np.zeros_like(refdavis["preds"][("acrobat", "6")]),
                                refdavis["preds"][("acrobat", "10")]])
    np.testing.assert_array_equal(idx, merged[3])
    with pytest.raises(ValueError, match="missing"):
        export_davis(None, refdavis["loader"], pred, tmp_path / "y.zip", missing="drop")


def test_failed_export_leaves_nothing(refdavis, tmp_path):
    pred = tmp_path / "p"
    shutil.copytree(refdavis["pred_dir"], pred)
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(pred / "zoo" / "3" / "00005.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(PredictionError, match=r"zoo/3/00005\.png"):
        export_davis(None, refdavis["loader"], pred, out_dir / "x.zip")
    assert os.listdir(out_dir) == []


def test_davis_sequence_layout(shared_data, tmp_path):
    """DAVIS / MOSE: <seq>/<frame>.png indices copied unchanged, with the DAVIS palette."""
    gold = shared_data / "davis_osvos13"
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("dog\nblackswan\n")
    (tmp_path / "Annotations").symlink_to(gold / "Annotations", target_is_directory=True)
    pred = tmp_path / "rvos"
    pred.mkdir()
    for seq in ("dog", "blackswan"):
        (pred / seq).symlink_to(gold / "predictions" / "rvos" / seq, target_is_directory=True)
    loader = DavisLoader(tmp_path)
    report = export_davis(None, loader, pred, tmp_path / "rvos.zip")
    seqs = loader.samples()
    with zipfile.ZipFile(report.path) as zf:
        assert zf.namelist() == sorted(f"{s.video}/{f}.png" for s in seqs for f in s.frames)
        for s in seqs:
            for f in s.frames[::20]:
                mode, pal, idx = _indices(zf.read(f"{s.video}/{f}.png"))
                assert mode == "P" and pal == davis_palette()
                src = gold / "predictions" / "rvos" / s.video / f"{f}.png"
                np.testing.assert_array_equal(idx, np.array(Image.open(src)))
    assert (report.videos, report.expressions, report.frames) == (2, 0, sum(len(s.frames) for s in seqs))


def test_export_submission_delegates(refdavis, tmp_path):
    """The generic exporter hands format 'davis' to export_davis."""
    from refbench.export import export_submission

    report = export_submission("refdavis17_val", refdavis["pred_dir"], tmp_path / "s.zip", root=refdavis["root"])
    assert report.format == "davis" and report.frames == 4 * 3 * len(refdavis["frames"]) and report.server is None
    direct = export_davis(None, refdavis["loader"], refdavis["pred_dir"], tmp_path / "d.zip")
    assert report.path.read_bytes() == direct.path.read_bytes()
