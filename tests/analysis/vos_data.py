"""A small synthetic DAVIS-2017 tree (the real layout, read by the davis17_val card) and VOS run directories as the
vos run task writes them (run.json naming the dataset and its predictions), for the fuse and report tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SEQS = {"bear": 2, "swan": 3}  # sequence -> objects
T, H, W = 8, 48, 64


def _palette_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    pal = [0, 0, 0, 200, 40, 40, 40, 200, 40, 40, 40, 200] + [128] * (256 * 3 - 12)
    im.putpalette(pal)
    im.save(path)


def gt_maps(seq: str) -> np.ndarray:
    n = SEQS[seq]
    out = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        for k in range(1, n + 1):
            y0, x0 = 6 + 12 * (k - 1), 4 + 2 * t + 10 * (k - 1)
            out[t, y0:y0 + 10, x0:x0 + 14] = k
    return out


def make_davis(root: Path) -> Path:
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(SEQS) + "\n")
    for seq in SEQS:
        g = gt_maps(seq)
        for t in range(T):
            _palette_png(root / "Annotations" / "480p" / seq / f"{t:05d}.png", g[t])
            rgb = np.full((H, W, 3), 90, np.uint8)
            rgb[g[t] > 0] = (220, 180, 60)
            (root / "JPEGImages" / "480p" / seq).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg")
    return root


def predictions(folder: Path, shift: int, drop: int | None = None) -> Path:
    """Palette PNG id maps: the GT shifted right by ``shift`` pixels; object ``drop`` left out."""
    for seq in SEQS:
        g = np.roll(gt_maps(seq), shift, axis=2)
        if drop is not None:
            g[g == drop] = 0
        for t in range(T):
            _palette_png(folder / seq / f"{t:05d}.png", g[t])
    return folder


def vos_run(folder: Path, root: Path, shift: int, drop: int | None = None, name: str | None = None) -> Path:
    """A VOS run directory: run.json (dataset davis17_val, its root, predictions folder ``pred``) and the PNGs."""
    folder.mkdir(parents=True)
    predictions(folder / "pred", shift, drop)
    fp = name or folder.name
    (folder / "run.json").write_text(json.dumps({
        "status": "done", "config": {"root": str(root), "model": fp}, "predictions": "pred",
        "header": {"adapter": fp, "fingerprint": fp * 4, "dataset": "davis17_val", "task": "vos"}}))
    return folder
