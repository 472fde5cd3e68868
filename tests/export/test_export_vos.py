"""Server submission zips for the server-scored VOS splits: YouTube-VOS 2019 valid (``Annotations/`` palette PNGs)
and MOSE v2 valid (the DAVIS palette zip, video folders at the root), one PNG per JPEG frame."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from refbench.cli import main
from refbench.export.davis import davis_palette

VIDEOS = {"vid_a": (["00000", "00005", "00010"], (24, 40)), "vid_b": (["00000", "00005"], (30, 20))}


def _layout(root: Path, with_pred: Path | None = None, drop: tuple[str, str] | None = None) -> dict:
    """A first-frame-prompt layout: JPEGs, one prompt PNG per video, and (optionally) indexed predictions."""
    rng = np.random.default_rng(0)
    preds = {}
    for v, (frames, (h, w)) in VIDEOS.items():
        (root / "JPEGImages" / v).mkdir(parents=True)
        (root / "Annotations" / v).mkdir(parents=True)
        for f in frames:
            Image.new("RGB", (w, h)).save(root / "JPEGImages" / v / f"{f}.jpg")
        prompt = Image.fromarray(rng.integers(0, 3, (h, w), dtype=np.uint8), mode="P")
        prompt.putpalette(davis_palette())
        prompt.save(root / "Annotations" / v / "00000.png")
        for f in frames:
            idx = rng.integers(0, 3, (h, w), dtype=np.uint8)
            preds[(v, f)] = idx
            if with_pred is not None and (v, f) != drop:
                (with_pred / v).mkdir(parents=True, exist_ok=True)
                Image.fromarray(idx, mode="L").save(with_pred / v / f"{f}.png")
    return preds


def _export(*args: str):
    return CliRunner().invoke(main, ["export", *args])


@pytest.mark.parametrize("dataset,top", [("ytvos19_val", "Annotations/"), ("mosev2_val", "")])
def test_every_jpeg_frame_written_with_its_indices(tmp_path, dataset, top):
    root, pred = tmp_path / "valid", tmp_path / "pred"
    preds = _layout(root, pred)
    out = tmp_path / "sub.zip"
    r = _export("--dataset", dataset, "--root", str(root), "--pred", str(pred), "--out", str(out))
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert names == sorted(f"{top}{v}/{f}.png" for v, (frames, _s) in VIDEOS.items() for f in frames)
        for (v, f), idx in preds.items():
            with Image.open(io.BytesIO(z.read(f"{top}{v}/{f}.png"))) as im:
                assert im.mode == "P" and im.getpalette() == davis_palette()
                assert np.array_equal(np.array(im), idx)
    again = tmp_path / "again.zip"
    assert _export("--dataset", dataset, "--root", str(root), "--pred", str(pred), "--out", str(again)).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic bytes


def test_missing_frame_is_an_error_or_written_empty(tmp_path):
    root, pred = tmp_path / "valid", tmp_path / "pred"
    _layout(root, pred, drop=("vid_a", "00005"))
    out = tmp_path / "sub.zip"
    r = _export("--dataset", "ytvos19_val", "--root", str(root), "--pred", str(pred), "--out", str(out))
    assert r.exit_code != 0 and "vid_a" in r.output and not out.exists()
    r = _export("--dataset", "ytvos19_val", "--root", str(root), "--pred", str(pred), "--out", str(out),
                "--missing", "empty")
    assert r.exit_code == 0 and "1 filled empty" in r.output
    with zipfile.ZipFile(out) as z, Image.open(io.BytesIO(z.read("Annotations/vid_a/00005.png"))) as im:
        assert not np.array(im).any()


def test_server_cards_refuse_local_scoring(tmp_path):
    root, pred = tmp_path / "valid", tmp_path / "pred"
    _layout(root, pred)
    for dataset in ("ytvos19_val", "mosev2_val"):
        r = CliRunner().invoke(main, ["eval", "--dataset", dataset, "--root", str(root), "--pred", str(pred)])
        assert r.exit_code != 0 and "not public" in r.output


def test_first_frame_layout_check(tmp_path):
    root = tmp_path / "valid"
    _layout(root)
    r = CliRunner().invoke(main, ["datasets", "check", "mosev2_val", "--root", str(root)])
    assert r.exit_code == 0, r.output
    (root / "Annotations" / "vid_b" / "00000.png").unlink()
    r = CliRunner().invoke(main, ["datasets", "check", "mosev2_val", "--root", str(root)])
    assert r.exit_code != 0 and "vid_b: no prompt annotation PNG" in r.output
    # ytvos19_val states the official 507 videos: a 2-video root is reported
    r = CliRunner().invoke(main, ["datasets", "check", "ytvos19_val", "--root", str(root)])
    assert r.exit_code != 0 and "2 videos found, the official ytvos19_val has 507" in r.output
