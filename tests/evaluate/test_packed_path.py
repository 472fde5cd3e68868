"""The word path of the MeViS-style scorer: GT words and prediction words equal packing the dense masks."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from refbench.data.mevis import MevisLoader
from refbench.metrics._bits import pack_numpy
from refbench.preds.masks import open_mask_source


@pytest.fixture(scope="module")
def golden(shared_data: Path, tmp_path_factory) -> dict:
    gold = shared_data / "mevis_golden"
    root = tmp_path_factory.mktemp("mevis_words")
    (root / "valid_u").symlink_to(gold / "valid_u", target_is_directory=True)
    return {"loader": MevisLoader(root, "valid_u"), "pred": gold / "predictions"}


def test_gt_words_are_the_packed_gt_masks(golden):
    loader = golden["loader"]
    for s in loader.samples():
        words, size = loader.gt_words(s)
        dense = loader.gt_masks(s)
        assert size == dense.shape[1:]
        assert not words.flags.writeable
        assert np.array_equal(words, pack_numpy(dense)), s.key


def test_gt_words_cache_is_bounded_and_gives_the_same_words(golden, monkeypatch):
    loader = MevisLoader(golden["loader"].root, "valid_u")
    first = {s.key: loader.gt_words(s)[0].copy() for s in loader.samples()}
    assert loader._words_bytes <= loader.word_cache_bytes
    small = MevisLoader(golden["loader"].root, "valid_u")
    monkeypatch.setattr(small, "word_cache_bytes", 1)  # keep one object at a time
    for s in small.samples():
        assert np.array_equal(small.gt_words(s)[0], first[s.key])
        assert len(small._words) <= 1


def test_overlapping_objects_and_null_frames(tmp_path):
    """Two overlapping objects (the uint8 sum gives 2 there), null frames, an expression with no object."""
    h, w, t = 40, 70, 4
    split = tmp_path / "valid_u"
    split.mkdir()
    a = np.zeros((t, h, w), np.uint8)
    b = np.zeros((t, h, w), np.uint8)
    a[:, 5:25, 10:50] = 1
    b[:, 15:35, 30:65] = 1
    a[2] = 0

    def enc(m):
        if not m.any():
            return None
        r = mask_utils.encode(np.asfortranarray(m))
        return {"size": r["size"], "counts": r["counts"].decode()}

    (split / "mask_dict.json").write_text(json.dumps({"0": [enc(m) for m in a], "1": [enc(m) for m in b]}))
    frames = [f"{i:05d}" for i in range(t)]
    exps = {"0": {"exp": "a", "obj_id": [0], "anno_id": [0]}, "1": {"exp": "a b", "obj_id": [0, 1], "anno_id": [0, 1]},
            "2": {"exp": "b a b", "obj_id": [1, 0, 1], "anno_id": [1, 0, 1]}}
    meta = {"videos": {"v": {"expressions": exps, "frames": frames, "vid_id": 0}}}
    (split / "meta_expressions.json").write_text(json.dumps(meta))
    loader = MevisLoader(tmp_path, "valid_u")
    for s in loader.samples():
        words, size = loader.gt_words(s)
        dense = loader.gt_masks(s)
        assert size == (h, w) and np.array_equal(words, pack_numpy(dense)), s.key
    assert int(loader.gt_masks(loader.samples()[1]).max()) == 2


def test_read_packed_equals_packed_read(golden, tmp_path):
    loader = golden["loader"]
    pred = tmp_path / "pred"
    shutil.copytree(golden["pred"], pred)
    first = next(p for p in sorted(pred.rglob("*.png")))
    first.unlink()  # one missing frame: filled with zeros
    zpath = tmp_path / "pred.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(pred.rglob("*.png")):
            zf.write(p, p.relative_to(pred).as_posix())
    for path in (pred, zpath):
        with open_mask_source(path, "expression", "grey") as src:
            for s in loader.samples():
                st = src.status(s.video, s.exp_id, s.frames)
                if not st.video_present:
                    continue
                size = loader.gt_words(s)[1]
                dense = src.read(s.video, s.exp_id, s.frames, size, fill_missing=True)
                words = src.read_packed(s.video, s.exp_id, s.frames, size, fill_missing=True)
                assert np.array_equal(words, pack_numpy(dense)), (path, s.key)
