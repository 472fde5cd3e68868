"""DAVIS / MOSE predictions as RLE JSON ({seq: {obj_id: [RLE per frame]}}) score as their palette PNGs do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mu

from refbench.data.base import PredictionError
from refbench.evaluate.run import evaluate


def _rle(m: np.ndarray) -> dict:
    e = mu.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": list(e["size"]), "counts": e["counts"].decode()}


def _png_tree_to_rle(folder: Path) -> dict:
    doc: dict = {}
    for seq in sorted(p for p in folder.iterdir() if p.is_dir()):
        frames = sorted(seq.glob("*.png"))
        maps = [np.array(Image.open(f)) for f in frames]
        ids = sorted({int(i) for m in maps for i in np.unique(m)} - {0})
        doc[seq.name] = {str(k): [(_rle(m == k) if (m == k).any() else None) for m in maps] for k in ids}
    return doc


def test_golden_osvos_as_rle_json(shared_data, tmp_path):
    root = shared_data / "davis_osvos13"
    pngs = root / "predictions" / "osvos"
    rle = tmp_path / "osvos.json"
    rle.write_text(json.dumps(_png_tree_to_rle(pngs)))
    a, _ = evaluate("davis17_val", pngs, root=root)
    b, _ = evaluate("davis17_val", rle, root=root)
    assert a.metrics == b.metrics
    assert [r["J-Mean"] for r in a.per_sample] == [r["J-Mean"] for r in b.per_sample]
    g = json.loads((root / "expected_semi.json").read_text())["global"]  # davis2017-evaluation's own numbers
    assert b.details["official"]["values"]["global"] == g
    assert (b.metrics["J&F"], b.metrics["J"], b.metrics["F"]) == (g["J&F-Mean"] * 100, g["J-Mean"] * 100,
                                                                  g["F-Mean"] * 100)


def test_sequence_rle_errors(shared_data, tmp_path):
    root = shared_data / "davis_osvos13"
    doc = _png_tree_to_rle(root / "predictions" / "osvos")
    seq = next(iter(doc))
    first = next(iter(doc[seq]))

    def bad(change, match):
        d = json.loads(json.dumps(doc))
        change(d)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(d))
        with pytest.raises(PredictionError, match=match):
            evaluate("davis17_val", p, root=root)

    def overlap(d):
        rles = d[seq][first]
        d[seq]["200"] = rles  # the same mask under another id
    bad(overlap, rf"{seq}/200 frame .*overlaps object {first}")
    bad(lambda d: d[seq].__setitem__("0", d[seq][first]), "object id '0' is not an integer 1-254")
    bad(lambda d: d[seq].__setitem__(first, d[seq][first][:-1]), "RLE entries, the dataset")
    bad(lambda d: d.__setitem__("../x", {}), "not a valid name")
    bad(lambda d: d.__setitem__("nosuchseq", {}), "sequence 'nosuchseq' is not in the dataset")
    missing = dict(doc)
    del missing[seq]
    p = tmp_path / "missing.json"
    p.write_text(json.dumps(missing))
    with pytest.raises(PredictionError, match=rf"1 video\(s\) missing: {seq}"):
        evaluate("davis17_val", p, root=root)
    res, _ = evaluate("davis17_val", p, root=root, missing="empty")
    assert res.counts["filled"] == 1
