"""The prediction store: RLE round trip, header binding, transactions."""

from __future__ import annotations

import numpy as np
import pytest

from refbench.runs.store import RunStore, Stored, StoreMismatch, decode_masks, encode_mask, encode_masks

HEADER = {"adapter": "oracle", "fingerprint": "abc", "dataset": "demo_mevis_val_u", "task": "refvos",
          "annotation_sha256": "00"}


def test_mask_round_trip():
    rng = np.random.default_rng(0)
    for shape in [(3, 7, 5), (1, 1, 1), (0, 4, 4), (5, 64, 33)]:
        m = rng.random(shape) > 0.6
        p = encode_masks(m)
        assert p["size"] == list(shape[1:]) and len(p["rles"]) == shape[0]
        back = decode_masks(p)
        assert back.shape == shape and np.array_equal(back, m)
    m = rng.random((9, 11)) > 0.5
    from pycocotools import mask as mu

    e = encode_mask(m)
    assert np.array_equal(mu.decode({"size": e["size"], "counts": e["counts"].encode()}) != 0, m)


def test_store_put_get_resume_and_mismatch(tmp_path):
    path = tmp_path / "part-00000.sqlite"
    with RunStore(path, HEADER) as s:
        s.put_many([Stored("v/0", "v", {"x": 1}, {"t": np.float32(0.5)}, 0.1),
                    Stored("v/1", "v", {"x": 2}, {}, 0.2)])
        assert len(s) == 2
    with RunStore(path, HEADER) as s:  # reopen: same header resumes
        assert s.done() == {"v/0", "v/1"}
        got = s.get("v/0")
        assert got.payload == {"x": 1} and got.diagnostics == {"t": 0.5} and got.seconds == pytest.approx(0.1)
        assert s.get("nope") is None
    for key, value in [("fingerprint", "abd"), ("dataset", "mevis_val_u"), ("annotation_sha256", "01")]:
        with pytest.raises(StoreMismatch, match=rf"{key}: stored .*--overwrite"):
            RunStore(path, {**HEADER, key: value})
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreMismatch, match="not a refbench prediction store"):
        RunStore(bad, HEADER)
    with pytest.raises(FileNotFoundError):
        RunStore(tmp_path / "none.sqlite", HEADER, readonly=True)


def test_batch_is_one_transaction(tmp_path):
    path = tmp_path / "part-00000.sqlite"
    s = RunStore(path, HEADER)

    class Boom:
        def __iter__(self):
            yield Stored("a/0", "a", {}, {}, 0.0)
            raise RuntimeError("killed while building the batch")

    with pytest.raises(RuntimeError):
        s.put_many(Boom())
    assert len(s) == 0
    s.close()


def test_part_without_tables_reads_as_empty(tmp_path):
    """A part created by a process killed before its first commit holds no tables: readers see it empty, and
    reopening it for writing creates them."""
    import sqlite3

    path = tmp_path / "part-00001.sqlite"
    sqlite3.connect(path).close()
    ro = RunStore(path, HEADER, readonly=True)
    assert ro.done() == set() and len(ro) == 0 and list(ro.items()) == [] and ro.get("x") is None
    ro.close()
    with RunStore(path, HEADER) as s:
        s.put_many([Stored("v/0", "v", {}, {}, 0.0)])
    with RunStore(path, HEADER, readonly=True) as s:
        assert s.done() == {"v/0"}


def test_streamed_merge_writes_the_bytes_of_one_json_dump(tmp_path):
    """merge_parts reads predictions from the parts on demand; write_predictions streams them, giving the
    same file as json.dump of the whole document; a sample stored twice differently is refused."""
    import json
    from types import SimpleNamespace

    from refbench.runs.runner import RunError, merge_parts, write_predictions
    from refbench.runs.store import RunStore, Stored, part_path

    header = {"adapter": "a", "fingerprint": "f", "dataset": "d", "task": "refvos", "annotation_sha256": "x"}
    samples = [SimpleNamespace(video=v, exp_id=e) for v in ("v1", "v/2", "v1x") for e in ("0", "10", "2")]
    payloads = {f"{s.video}/{s.exp_id}": {"size": [3, 4], "rles": [f"c{i}\"]" for i in range(3)]}
                for s in samples}
    for rank in range(2):
        with RunStore(part_path(tmp_path, rank), header) as st:
            st.put_many([Stored(k, k.split("/")[0], p, {}, 0.1) for i, (k, p) in enumerate(payloads.items())
                         if i % 2 == rank or i == 0])  # sample 0 in both parts, identical
    stored = merge_parts(tmp_path, header, list(payloads))
    assert len(stored) == len(samples) and stored["v/2/10"].payload == payloads["v/2/10"]
    out = tmp_path / "predictions.json"
    write_predictions("refvos", samples, stored, out)
    doc: dict = {}
    for s in samples:
        p = payloads[f"{s.video}/{s.exp_id}"]
        doc.setdefault(s.video, {})[s.exp_id] = [{"size": p["size"], "counts": c} for c in p["rles"]]
    assert out.read_text() == json.dumps(doc, separators=(",", ":"))
    tsg = [SimpleNamespace(qid=q) for q in ("q1", "q0")]
    spans = {"q1": {"spans": [[1.0, 2.5]], "text": None}, "q0": {"spans": [], "text": "x"}}
    write_predictions("tsg", tsg, {k: Stored(k, "v", p, {}, 0.0) for k, p in spans.items()}, out)
    assert out.read_text() == json.dumps({"q1": [[1.0, 2.5]], "q0": []}, separators=(",", ":"))
    with RunStore(part_path(tmp_path, 1), header) as st:
        st.put_many([Stored("v1/0", "v1", {"size": [3, 4], "rles": ["other"]}, {}, 0.1)])
    with pytest.raises(RunError, match="stored twice with different predictions"):
        merge_parts(tmp_path, header, list(payloads))
    with pytest.raises(RunError, match="no stored prediction"):
        merge_parts(tmp_path / "empty", header, ["v1/0"])
