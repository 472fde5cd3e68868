"""Submission zips: round trip through the evaluator on the MeViS golden data, exact frame sets, determinism
across prediction formats, missing and unsafe predictions."""

from __future__ import annotations

import io
import json
import shutil
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refbench.cards import dataset_card
from refbench.data.base import DatasetError, PredictionError
from refbench.data.refytvos import valid_video_ids
from refbench.evaluate.run import evaluate
from refbench.export import FORMATS, ExportReport, export_submission
from refbench.export.zips import ZIP_DATE_TIME, safe_entry_name, write_zip
from refbench.preds.masks import open_mask_source

# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _read_zip_png(zf: zipfile.ZipFile, name: str) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(zf.read(name))) as im:
        im.load()
        return im.mode, np.array(im)


def _golden(shared_data: Path) -> Path:
    root = shared_data / "mevis_golden"
    if not (root / "valid_u" / "meta_expressions.json").is_file() or not (root / "predictions").is_dir():
        pytest.skip(f"{root}: MeViS golden data (valid_u meta, predictions) not found")
    return root


def _golden_frames(root: Path) -> dict[tuple[str, str], list[str]]:
    meta = json.loads((root / "valid_u" / "meta_expressions.json").read_text())["videos"]
    return {(v, e): list(d["frames"]) for v, d in meta.items() for e in d["expressions"]}


def _rle_json_of_folder(pred: Path, frames: dict[tuple[str, str], list[str]], out: Path) -> Path:
    """The same masks as a Sa2VA-style RLE JSON ({video: {exp_id: [RLE or null]}}), binarised."""
    from pycocotools import mask as mask_utils

    doc: dict[str, dict[str, list]] = {}
    for (video, exp_id), names in frames.items():
        folder = pred / video / exp_id
        if not folder.is_dir():
            continue
        rles = []
        for i, f in enumerate(names):
            m = (np.array(Image.open(folder / f"{f}.png").convert("L")) != 0).astype(np.uint8)
            if i == 1 and not m.any():
                rles.append(None)  # null = empty mask
                continue
            rle = mask_utils.encode(np.asfortranarray(m))
            rles.append({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")})
        doc.setdefault(video, {})[exp_id] = rles
    out.write_text(json.dumps(doc))
    return out


# ----------------------------------------------------------------------------------------------
# MeViS golden data: export, then score the zip
# ----------------------------------------------------------------------------------------------


def test_mevis_golden_round_trip(shared_data, tmp_path):
    root = _golden(shared_data)
    pred = root / "predictions"
    frames = _golden_frames(root)
    expected = json.loads((root / "expected.json").read_text())
    out = tmp_path / "mevis.zip"

    # the golden predictions lack the cows video: an error naming it, and nothing written
    with pytest.raises(PredictionError, match="cows"):
        export_submission("mevis_val_u", pred, out, fmt="mevis", root=root)
    assert not out.exists() and list(tmp_path.iterdir()) == []

    rep = export_submission("mevis_val_u", pred, out, fmt="mevis", root=root, missing="empty")
    n_cows = sum(len(f) for (v, _e), f in frames.items() if v == "cows")
    assert rep == ExportReport(path=out, format="mevis", videos=6, expressions=15,
                               frames=sum(len(f) for f in frames.values()), server=None, filled=n_cows)
    assert rep.frames == 153 and rep.filled == 12

    direct, _ = evaluate("mevis_val_u", pred, root=root, missing="empty")
    zipped, _ = evaluate("mevis_val_u", out, root=root)  # nothing is missing in the zip
    assert zipped.counts["scored"] == 15 and zipped.counts["missing"] == 0
    d_rows = {r["key"]: (r["J"], r["F"]) for r in direct.per_sample}
    z_rows = {r["key"]: (r["J"], r["F"]) for r in zipped.per_sample}
    assert len(z_rows) == 15 and z_rows == d_rows
    assert zipped.metrics["J&F"] == direct.metrics["J&F"]
    assert zipped.metrics == direct.metrics
    # and the official values: cows has a target in every frame, so empty masks score the official [0, 0]
    assert {k: list(v) for k, v in z_rows.items()} == {k: [j * 100, f * 100]
                                                       for k, (j, f) in expected["per_expression"].items()}
    assert zipped.details["official"]["values"] == expected["global"]
    assert zipped.metrics == {k: v * 100 for k, v in expected["global"].items()}

    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        want = [f"{v}/{e}/{f}.png" for (v, e), fs in frames.items() for f in fs]
        assert len(names) == len(want) == rep.frames and set(names) == set(want)
        assert names == sorted(names)
        assert all(i.date_time == ZIP_DATE_TIME and i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
        for name in names:
            mode, arr = _read_zip_png(zf, name)
            assert mode == "L" and set(np.unique(arr).tolist()) <= {0, 255}, name
        # libby_2's golden PNGs hold 1 for the object: written as 255, same pixels
        src = np.array(Image.open(pred / "libby" / "2" / "00000.png"))
        assert set(np.unique(src).tolist()) == {0, 1}
        assert np.array_equal(_read_zip_png(zf, "libby/2/00000.png")[1], np.where(src != 0, 255, 0))
        # the filled cows frames are empty, at the ground truth's size
        mode, arr = _read_zip_png(zf, "cows/0/00000.png")
        assert arr.shape == (480, 854) and not arr.any()


def test_zip_bytes_identical_across_sources_and_runs(shared_data, tmp_path):
    root = _golden(shared_data)
    pred = root / "predictions"
    frames = _golden_frames(root)
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    export_submission("mevis_val_u", pred, a, fmt="mevis", root=root, missing="empty")
    export_submission("mevis_val_u", pred, b, fmt="mevis", root=root, missing="empty", workers=1)
    assert a.read_bytes() == b.read_bytes()

    rle = _rle_json_of_folder(pred, frames, tmp_path / "pred_rle.json")
    c = tmp_path / "c.zip"
    rep = export_submission("mevis_val_u", rle, c, fmt="mevis", root=root, missing="empty")
    assert rep.filled == 12 and c.read_bytes() == a.read_bytes()

    # a zip input (our own export: nothing missing any more) and an already-open source give the same bytes
    d = tmp_path / "d.zip"
    assert export_submission("mevis_val_u", a, d, fmt="mevis", root=root).filled == 0
    assert d.read_bytes() == a.read_bytes()
    e = tmp_path / "e.zip"
    with open_mask_source(a, "expression", "grey") as source:
        export_submission("mevis_val_u", source, e, fmt="mevis", root=root)
        assert source.read("dog", "0", ["00000"], (480, 854)).shape == (1, 480, 854)  # left open
    assert e.read_bytes() == a.read_bytes()

    # an existing zip is kept unless overwrite=True
    with pytest.raises(FileExistsError, match="overwrite"):
        export_submission("mevis_val_u", a, e, fmt="mevis", root=root)
    export_submission("mevis_val_u", rle, e, fmt="mevis", root=root, missing="empty", overwrite=True)
    assert e.read_bytes() == a.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip", "c.zip", "d.zip", "e.zip",
                                                          "pred_rle.json"]


# ----------------------------------------------------------------------------------------------
# Ref-YouTube-VOS: a small synthetic valid root
# ----------------------------------------------------------------------------------------------

YT_FRAMES = ["00000", "00005", "00010"]


def _refytvos_root(tmp_path: Path) -> tuple[Path, dict[str, list[str]], str]:
    """Two validation videos (one with JPEGs, one without) and one test video the valid meta also lists."""
    v1, v2 = valid_video_ids()[:2]
    test_video = "ffffffffff"
    assert test_video not in valid_video_ids()
    exps = {v1: ["0", "1"], v2: ["0"], test_video: ["0"]}
    meta = {"videos": {v: {"expressions": {e: {"exp": f"thing {e}", "obj_id": "1"} for e in es},
                           "frames": YT_FRAMES} for v, es in exps.items()}}
    root = tmp_path / "refytvos"
    (root / "meta_expressions" / "valid").mkdir(parents=True)
    (root / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    jpegs = root / "valid" / "JPEGImages" / v1
    jpegs.mkdir(parents=True)
    for f in YT_FRAMES:
        Image.new("RGB", (40, 24), (90, 90, 90)).save(jpegs / f"{f}.jpg")  # 24x40 (HxW)
    return root, {v1: exps[v1], v2: exps[v2]}, test_video


def _write_preds(folder: Path, videos: dict[str, list[str]], sizes: dict[str, tuple[int, int]]) -> Path:
    for i, (video, es) in enumerate(videos.items()):
        for e in es:
            d = folder / video / e
            d.mkdir(parents=True)
            for t, f in enumerate(YT_FRAMES):
                m = np.zeros(sizes[video], np.uint8)
                m[t : t + 5, i + 1 : i + 9] = 255
                (d / f"{f}.png").write_bytes(_png(m))
    return folder


def test_refytvos_layout_and_frame_set(tmp_path):
    root, videos, test_video = _refytvos_root(tmp_path)
    v1, v2 = videos
    pred = _write_preds(tmp_path / "pred", videos, {v1: (24, 40), v2: (30, 50)})
    out = tmp_path / "sub.zip"
    ticks: list[tuple[int, int]] = []
    rep = export_submission("refytvos_val", pred, out, root=root, progress=lambda d, n: ticks.append((d, n)))
    assert ticks == [(1, 3), (2, 3), (3, 3)]  # one tick per expression; the format came from the card
    card = dataset_card("refytvos_val")
    assert rep.format == "refytvos" == card.submission["format"]
    assert rep.server == card.submission["server"] and rep.server.startswith("https://")
    assert (rep.videos, rep.expressions, rep.frames, rep.filled) == (2, 3, 9, 0)
    want = sorted(f"Annotations/{v}/{e}/{f}.png" for v, es in videos.items() for e in es for f in YT_FRAMES)
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == want  # the test video listed in the valid meta is not exported
        assert not any(test_video in n for n in zf.namelist())
        mode, a1 = _read_zip_png(zf, f"Annotations/{v1}/1/00005.png")
        assert mode == "L" and a1.shape == (24, 40)  # the JPEG size
        assert np.array_equal(a1 != 0, np.array(Image.open(pred / v1 / "1" / "00005.png")) != 0)
        assert _read_zip_png(zf, f"Annotations/{v2}/0/00010.png")[1].shape == (30, 50)  # no JPEG: prediction size

    # the zip is itself a valid prediction (Annotations/ is stepped into) and re-exports byte for byte
    again = tmp_path / "again.zip"
    export_submission("refytvos_val", out, again, root=root)
    assert again.read_bytes() == out.read_bytes()
    # the same masks in MeViS layout: no Annotations/ folder
    mevis_rep = export_submission("refytvos_val", pred, tmp_path / "m.zip", fmt="mevis", root=root)
    with zipfile.ZipFile(mevis_rep.path) as zf:
        assert zf.namelist() == [n[len("Annotations/"):] for n in want]


def test_prediction_size_must_match_the_frames(tmp_path):
    root, videos, _ = _refytvos_root(tmp_path)
    v1, v2 = videos
    pred = _write_preds(tmp_path / "pred", videos, {v1: (48, 80), v2: (30, 50)})
    with pytest.raises(PredictionError, match="48x80"):
        export_submission("refytvos_val", pred, tmp_path / "sub.zip", root=root)
    assert not (tmp_path / "sub.zip").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sub.zip")]


# ----------------------------------------------------------------------------------------------
# Missing and refused predictions
# ----------------------------------------------------------------------------------------------


def test_missing_frame_and_expression(tmp_path):
    root, videos, _ = _refytvos_root(tmp_path)
    v1, v2 = videos
    pred = _write_preds(tmp_path / "pred", videos, {v1: (24, 40), v2: (30, 50)})
    (pred / v1 / "1" / "00005.png").unlink()
    out = tmp_path / "sub.zip"
    with pytest.raises(PredictionError) as err:
        export_submission("refytvos_val", pred, out, root=root)
    msg = str(err.value)
    assert "1 frame(s) missing" in msg and f"{v1}_1/00005" in msg and str(pred / v1 / "1" / "00005.png") in msg
    assert not out.exists()

    rep = export_submission("refytvos_val", pred, out, root=root, missing="empty")
    assert rep.filled == 1 and rep.frames == 9
    with zipfile.ZipFile(out) as zf:
        assert not _read_zip_png(zf, f"Annotations/{v1}/1/00005.png")[1].any()
        assert _read_zip_png(zf, f"Annotations/{v1}/1/00010.png")[1].any()
        assert len(zf.namelist()) == 9

    shutil.rmtree(pred / v2)  # a whole video: every frame of its expression
    with pytest.raises(PredictionError, match=f"1 video\\(s\\) missing: {v2}"):
        export_submission("refytvos_val", pred, tmp_path / "b.zip", root=root)
    # no JPEG, no prediction and no public GT: the size of v2's empty masks is unknown
    with pytest.raises(DatasetError, match=f"frame size of video '{v2}'"):
        export_submission("refytvos_val", pred, tmp_path / "b.zip", root=root, missing="empty")
    jpegs = root / "valid" / "JPEGImages" / v2
    jpegs.mkdir(parents=True)
    for f in YT_FRAMES:
        Image.new("RGB", (50, 30)).save(jpegs / f"{f}.jpg")
    rep = export_submission("refytvos_val", pred, tmp_path / "b.zip", root=root, missing="empty")
    assert rep.filled == 1 + len(YT_FRAMES) and rep.frames == 9
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert zf.namelist() == sorted(f"Annotations/{v}/{e}/{f}.png" for v, es in videos.items() for e in es
                                       for f in YT_FRAMES)
        for f in YT_FRAMES:
            arr = _read_zip_png(zf, f"Annotations/{v2}/0/{f}.png")[1]
            assert arr.shape == (30, 50) and not arr.any()


def test_unknown_and_unsafe_ids_are_refused(tmp_path):
    root, videos, test_video = _refytvos_root(tmp_path)
    v1, v2 = videos
    pred = _write_preds(tmp_path / "pred", videos, {v1: (24, 40), v2: (30, 50)})
    out = tmp_path / "sub.zip"

    extra = _write_preds(tmp_path / "extra", {test_video: ["0"]}, {test_video: (24, 40)})
    shutil.copytree(extra / test_video, pred / test_video)  # a video that is not in the valid set
    with pytest.raises(PredictionError, match=f"{test_video}.*not under a <video>/<exp_id> folder"):
        export_submission("refytvos_val", pred, out, root=root)
    shutil.rmtree(pred / test_video)

    rle = {v1: {"0": [None] * 3, "1": [None] * 3}, "..": {"0": [None] * 3}}
    (tmp_path / "p.json").write_text(json.dumps(rle))
    with pytest.raises(PredictionError, match=r"'\.\.' is not a valid name"):
        export_submission("refytvos_val", tmp_path / "p.json", out, root=root, missing="empty")
    (tmp_path / "q.json").write_text(json.dumps({v1: {"../0": [None] * 3}}))
    with pytest.raises(PredictionError, match="not a valid name"):
        export_submission("refytvos_val", tmp_path / "q.json", out, root=root, missing="empty")

    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr(f"{v1}/0/00000.png", _png(np.zeros((24, 40), np.uint8)))
        zf.writestr("../evil.png", b"x")
    with pytest.raises(PredictionError, match="unsafe zip member"):
        export_submission("refytvos_val", tmp_path / "evil.zip", out, root=root, missing="empty")
    assert not out.exists() and not (tmp_path.parent / "evil.png").exists()

    for bad in ("../x.png", "/abs.png", "a/./b.png", "a\\b.png", "a//b.png", ""):
        with pytest.raises(ValueError):
            safe_entry_name(bad)
    with pytest.raises(ValueError, match="unsafe"):
        write_zip(tmp_path / "w.zip", [("ok.png", b"1"), ("../x.png", b"2")])
    with pytest.raises(ValueError, match="duplicate"):
        write_zip(tmp_path / "w.zip", [("ok.png", b"1"), ("ok.png", b"2")])
    assert not (tmp_path / "w.zip").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".w.zip")]


def test_argument_checks(tmp_path):
    root, videos, _ = _refytvos_root(tmp_path)
    pred = _write_preds(tmp_path / "pred", videos, {v: (24, 40) if i == 0 else (30, 50)
                                                    for i, v in enumerate(videos)})
    assert FORMATS == ("mevis", "refytvos", "davis", "ytvos")
    with pytest.raises(ValueError, match="no submission format"):
        export_submission("mevis_val_u", pred, tmp_path / "a.zip", root=root)
    with pytest.raises(ValueError, match="unknown submission format"):
        export_submission("refytvos_val", pred, tmp_path / "a.zip", fmt="codalab", root=root)
    with pytest.raises(ValueError, match="missing must be"):
        export_submission("refytvos_val", pred, tmp_path / "a.zip", root=root, missing="official")
    with pytest.raises(PredictionError, match="not found"):
        export_submission("refytvos_val", tmp_path / "nope", tmp_path / "a.zip", root=root)
    with pytest.raises(FileNotFoundError, match="output folder"):
        export_submission("refytvos_val", pred, tmp_path / "no" / "a.zip", root=root)
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "no").exists()


def test_davis_is_delegated(tmp_path, monkeypatch):
    """fmt='davis' hands card, loader, an open expression source, out and missing to export_davis."""
    root, videos, _ = _refytvos_root(tmp_path)
    ref = tmp_path / "refdavis"
    shutil.copytree(root / "meta_expressions", ref / "meta_expressions")
    pred = _write_preds(tmp_path / "pred", videos, {v: (24, 40) for v in videos})
    calls = []

    def export_davis(card, loader, source, out, missing):
        calls.append((card.name, type(loader).__name__, source.layout, Path(out), missing,
                      source.status(next(iter(videos)), "0", YT_FRAMES).complete))
        return ExportReport(path=Path(out), format="davis", videos=0, expressions=0, frames=0, server=None)

    fake = types.ModuleType("refbench.export.davis")
    fake.export_davis = export_davis  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "refbench.export.davis", fake)
    rep = export_submission("refdavis17_val", pred, tmp_path / "d.zip", fmt="davis", root=ref, missing="empty")
    assert rep.format == "davis"
    assert calls == [("refdavis17_val", "RefDavisLoader", "expression", tmp_path / "d.zip", "empty", True)]
