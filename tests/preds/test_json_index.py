"""The member index of prediction JSON files: same values as json.load, bounded memory, same errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from refbench.data.base import PredictionError
from refbench.preds import json_index
from refbench.preds.masks import RleJsonSource


def _doc(rng: np.random.Generator) -> dict:
    doc = {}
    for v in range(30):
        doc[f"vid_{v}"] = {str(e): [None if rng.random() < 0.2 else
                                    {"size": [4, 5], "counts": "".join(chr(48 + int(c)) for c in rng.integers(0, 64, 9))}
                                    for _ in range(5)] for e in range(int(rng.integers(0, 4)))}
    doc["vid_x"] = {"0": [{"size": [4, 5], "counts": "q]\\[\"{}"}]}  # brackets, quotes and escapes in a string
    return doc


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("block", [7, 64, 1 << 22])
def test_index_equals_json_load(tmp_path, monkeypatch, indent, block):
    monkeypatch.setattr(json_index, "_BLOCK", block)
    doc = _doc(np.random.default_rng(block))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc, indent=indent))
    members = json_index.index_members(path)
    got: dict = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        for m in members:
            if len(m.keys) == 1:
                assert m.kind == "object"
                got[m.keys[0]] = json_index.read_value(fd, m)
            else:
                assert got[m.keys[0]][m.keys[1]] == json_index.read_value(fd, m)
    finally:
        os.close(fd)
    assert got == doc


def test_non_ascii_files_are_not_indexed(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"vidéo": {"0": []}}, ensure_ascii=False), encoding="utf-8")
    assert json_index.index_members(path) is None


@pytest.mark.parametrize("text,match", [("[1, 2]", "not a JSON object"), ('{"a": [1, 2}', "invalid JSON"),
                                        ('{"a": [1]} x', "extra data"), ('{"a" [1]}', "expected ':'")])
def test_shape_errors(tmp_path, text, match):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(json_index.JsonShapeError, match=match):
        json_index.index_members(path)


def test_rle_source_reads_indexed_and_whole_files_alike(tmp_path):
    doc = _doc(np.random.default_rng(3))
    keys = {f"{v}_{e}": (v, e) for v, exps in doc.items() for e in exps}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(doc))
    flat = {f"{v}_{e}": rles for v, exps in doc.items() for e, rles in exps.items()}
    b.write_text(json.dumps(flat))
    for path in (a, b):
        src = RleJsonSource(path, keys)
        assert src._fd is not None  # indexed, not parsed whole
        for (v, e) in keys.values():
            assert src._rles((v, e)) == doc[v][e]
        src.close()
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"vidé": {"0": [None]}}, ensure_ascii=False), encoding="utf-8")
    src = RleJsonSource(c, {})
    assert src._fd is None and src._rles(("vidé", "0")) == [None]


@pytest.mark.parametrize("text,match", [
    ("[]", "expected a non-empty object"), ("{}", "expected a non-empty object"), ('{"a": 1}', "mixes"),
    ('{"a": {"0": 1}}', "is not a list"), ('{"a": {"0": []}, "b": []}', "mixes"), ("{", "bad.json:1: invalid JSON"),
    ('{"zz_0": []}', "is not a <video>_<exp_id>"), ('{"../x": {"0": []}}', "not a valid"),
])
def test_rle_source_errors_name_the_file(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(PredictionError, match=match) as info:
        RleJsonSource(path, {"a_0": ("a", "0")})
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text,key", [
    ('{"a": {"0": []}, "a": {"1": []}}', "a"),                      # an indexed video twice
    ('{"a": {"0": [], "0": [null]}}', "0"),                         # an indexed expression twice
    ('{"a": {"0": [{"size": [1, 1], "counts": "1", "size": [1, 1]}]}}', "size"),  # inside a value
])
def test_indexed_files_refuse_duplicate_keys_as_load_json_does(tmp_path, text, key):
    """The index is as strict as refbench.files.load_json: the same one-line message, whatever level."""
    path = tmp_path / "dup.json"
    path.write_text(text)
    with pytest.raises(PredictionError) as info:
        RleJsonSource(path, {})
    assert str(info.value) == (f"{path}: key {key!r} appears twice in one object; prediction file must name each "
                               "key once")


def test_indexed_files_deep_nesting_and_fifo(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": {"0": ' + "[" * 200_000 + "]" * 200_000 + "}}")
    with pytest.raises(PredictionError, match="nested too deeply"):
        RleJsonSource(deep, {})
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    with pytest.raises(PredictionError, match="is a FIFO, not a regular file"):
        RleJsonSource(fifo, {})
