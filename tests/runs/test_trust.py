"""Issue 8: no bad input changes a score or ends in a traceback. One test per class, each built from an input
that failed before the fix (silently wrong scores, tracebacks, vague errors, unbounded reads)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.data.base import DatasetError, PredictionError
from refbench.rle import check_rle, decode_rle, parse_counts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _no_progress_bar(monkeypatch):
    """No tqdm bar in the captured output (in a terminal it is cleared before the error line)."""
    import refbench.clikit

    monkeypatch.setattr(refbench.clikit.Progress, "__call__", lambda self, done, total: None)


def one_line_error(r, code: int = 2, *needles: str) -> str:
    """Exactly one error line, the last one (``run`` may log 'run dir ...' before it), naming ``needles``."""
    lines = r.output.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert r.exit_code == code, r.output
    assert len(errors) == 1 and lines[-1] == errors[0], r.output
    assert all(ln.startswith("run dir ") for ln in lines[:-1]), r.output
    assert "Traceback" not in r.output and "Error: ValueError" not in r.output and "internal error" not in r.output
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    e = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode()}


@pytest.fixture
def mevis(shared_data, tmp_path) -> Path:
    root = tmp_path / "mevis"
    (root / "valid_u").mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        shutil.copy(shared_data / "mevis_golden" / "valid_u" / name, root / "valid_u" / name)
    return root


# ---------------------------------------------------------------------------------------------------------
# RLE: one validating reader, bit-identical decoding
# ---------------------------------------------------------------------------------------------------------


def test_rle_parser_matches_pycocotools_and_refuses_malformed_counts():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(3)
    for t in range(200):
        h, w = (int(v) for v in rng.integers(1, 70, size=2))
        m = rng.random((h, w)) < rng.random()
        r = _rle(m)
        got = decode_rle(r, "x")
        assert got.flags.c_contiguous and np.array_equal(got, mask_utils.decode({**r, "counts": r["counts"].encode()}))
        runs = parse_counts(r["counts"])
        assert runs.dtype == np.int64 and int(runs.sum()) == h * w
        assert np.array_equal(decode_rle({"size": [h, w], "counts": runs.tolist()}, "x"), got)
    good = _rle(np.eye(20, dtype=bool))
    bad = {"short": good["counts"][:-2], "garbage": good["counts"][:2] + "~" + good["counts"][2:],
           "truncated value": good["counts"] + "`", "space": good["counts"] + " "}
    for why, counts in bad.items():
        with pytest.raises(PredictionError, match="f.json: key 'v' frame 3: RLE"):
            check_rle({"size": [20, 20], "counts": counts}, "f.json: key 'v' frame 3", None, PredictionError)
    for rle, msg in [({"size": [20, 20], "counts": [-1, 401]}, "run -1"),
                     ({"size": [20, 20], "counts": [1.5, 398.5]}, "not a run length"),
                     ({"size": ["20", 20], "counts": good["counts"]}, "two integers"),
                     ({"size": [21, 20], "counts": good["counts"]}, "add up to 400 pixels"),
                     (5, "got int 5")]:
        with pytest.raises(PredictionError, match=msg):
            check_rle(rle, "f", None, PredictionError)
    with pytest.raises(PredictionError, match="differs from the frame size 20x21"):
        check_rle(good, "f", (20, 21), PredictionError)


def test_short_rle_ground_truth_is_refused_by_run_and_reported_by_check(mevis, tmp_path, demo_env):
    # before: pycocotools decoded the missing pixels from uninitialised memory; the oracle scored J&F 0.9977
    # (and a different value on another run) and `datasets check` said nothing about it
    path = mevis / "valid_u" / "mask_dict.json"
    d = json.loads(path.read_text())
    d["0"][3]["counts"] = d["0"][3]["counts"][: len(d["0"][3]["counts"]) // 2]
    path.write_text(json.dumps(d))
    r = cli("run", "--model", "oracle", "--dataset", "mevis_val_u", "--root", mevis, "--out", tmp_path / "o",
            "--no-leaderboard")
    one_line_error(r, 2, str(path), "anno_id '0' frame 3", "not H x W")
    r = cli("datasets", "check", "mevis_val_u", "--root", mevis, "--annotations-only")
    assert r.exit_code == 1 and f"problem: {path}: anno_id '0' frame 3: RLE runs add up to" in r.output


def test_short_rle_predictions_are_refused(mevis, tmp_path):
    meta = json.loads((mevis / "valid_u" / "meta_expressions.json").read_text())["videos"]
    preds = {v: {e: [_rle(np.ones((480, 854), bool))] * len(d["frames"]) for e in d["expressions"]}
             for v, d in meta.items()}
    preds["dog"]["1"][2] = {"size": [480, 854], "counts": "0P"}
    p = tmp_path / "p.json"
    p.write_text(json.dumps(preds))
    one_line_error(cli("eval", "--dataset", "mevis_val_u", "--root", mevis, "--pred", p), 2, str(p), "dog/1 frame 2")


def test_mask_dict_frame_that_is_a_number_names_file_and_frame(mevis):
    path = mevis / "valid_u" / "mask_dict.json"
    d = json.loads(path.read_text())
    d["2"][1] = 5
    path.write_text(json.dumps(d))
    r = cli("datasets", "check", "mevis_val_u", "--root", mevis, "--annotations-only")
    assert r.exit_code == 1 and f"{path}: anno_id '2' frame 1: expected a COCO RLE" in r.output


# ---------------------------------------------------------------------------------------------------------
# Duplicate keys, deep nesting
# ---------------------------------------------------------------------------------------------------------


def test_duplicate_keys_in_predictions_are_refused(shared_data, tmp_path):
    src = shared_data / "charades_sta"
    doc = json.loads((src / "timechat_example_pred.json").read_text())
    first = next(iter(doc))
    text = json.dumps(doc)[:-1] + f', "{first}": {{"timestamp": [[0.0, 1.0]]}}}}'  # the last one used to win
    p = tmp_path / "dup.json"
    p.write_text(text)
    r = cli("eval", "--dataset", "charades_sta_test", "--root", src, "--pred", p, "--subset", "predicted",
            "--protocol", "timechat")
    one_line_error(r, 2, str(p), f"key '{first}' appears twice")
    res = tmp_path / "res.json"
    res.write_text('{"1301": null, "1302": null, "1301": null}')
    one_line_error(cli("eval", "--dataset", "refcoco_val", "--root", shared_data / "refcoco_golden", "--pred", res),
                   2, str(res), "'1301' appears twice")


def test_deeply_nested_json_is_one_line(shared_data, tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 200_000 + "]" * 200_000)
    one_line_error(cli("eval", "--dataset", "charades_sta_test", "--root", shared_data / "charades_sta", "--pred", p),
                   2, str(p), "nested too deeply")


# ---------------------------------------------------------------------------------------------------------
# Grounding spans
# ---------------------------------------------------------------------------------------------------------


def test_reversed_and_negative_spans_refused_unless_asked(shared_data, tmp_path):
    src = shared_data / "charades_sta"
    doc = {q: (v["timestamp"][0] if v["timestamp"] else []) for q, v in
           json.loads((src / "timechat_example_pred.json").read_text()).items()}
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc))
    base = ["eval", "--dataset", "charades_sta_test", "--root", str(src), "--subset", "predicted"]
    r = CliRunner().invoke(main, base + ["--pred", str(good), "--json", str(tmp_path / "g.json")])
    assert r.exit_code == 0, r.output
    q = next(k for k, v in doc.items() if v)
    for bad_span in ([doc[q][1], doc[q][0]], [-2.0, doc[q][1]]):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**doc, q: bad_span}))
        one_line_error(CliRunner().invoke(main, base + ["--pred", str(bad)]), 2, str(bad), f"query '{q}'",
                       "--bad-spans official")
        r = CliRunner().invoke(main, base + ["--pred", str(bad), "--bad-spans", "official", "--json",
                                             str(tmp_path / "b.json")])
        assert r.exit_code == 0, r.output
        s = json.loads((tmp_path / "b.json").read_text())
        assert s["details"]["bad_spans"] == "official" and s["details"]["bad_span_queries"] == 1
    assert json.loads((tmp_path / "g.json").read_text())["details"]["bad_spans"] == "error"
    one_line_error(cli("eval", "--dataset", "mevis_val_u", "--pred", good, "--bad-spans", "official"), 2,
                   "--bad-spans applies to temporal grounding")


# ---------------------------------------------------------------------------------------------------------
# Options: one line for every bad value, before torch
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arg, needle", [
    ("threshold=7", "--model-arg threshold=7 is out of range"), ("bins=-1", "bins=-1 is out of range"),
    ("grid=-4", "grid=-4 is out of range"), ("batch_size=1.0e+400", "batch_size=inf must be int"),
    ("grid=" + "9" * 5000, "(5002 characters) must be int"), ("grid=1e999", "grid='1e999' must be int"),
    ("nosuch=1", "unknown option 'nosuch'"),
])
def test_bad_model_args_are_one_line_before_torch(arg, needle, tmp_path):
    code = ("import sys; from click.testing import CliRunner; from refbench.cli import main; "
            f"r = CliRunner().invoke(main, ['run', '--model', 'prior', '--model-arg', {arg!r}]); "
            "print(r.exit_code); print(r.output.strip()); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    exit_code, line, torch_loaded = out.stdout.strip().splitlines()
    assert exit_code == "2" and line.startswith("Error: model prior:") and needle in line, out.stdout
    assert torch_loaded == "False"


def test_cuda_without_cuda_and_bad_device_are_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for cmd in (["run", "--model", "prior"], ["eval", "--dataset", "mevis_val_u", "--pred", str(tmp_path)],
                ["demo"]):
        one_line_error(cli(*cmd, "--device", "cuda"), 2, "--device cuda", "no CUDA device", "--device cpu")
    one_line_error(cli("run", "--device", "gpu0"), 2, "--device 'gpu0'")


# ---------------------------------------------------------------------------------------------------------
# A refused run changes nothing in an existing run directory
# ---------------------------------------------------------------------------------------------------------


def _tree(d: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(d.rglob("*"))
            if p.is_file()}


def test_refused_run_leaves_the_run_dir_and_regress_untouched(demo_env, tmp_path):
    out = tmp_path / "r"
    assert cli("run", "--model", "prior", "--out", out, "--no-leaderboard").exit_code == 0
    base = tmp_path / "base.json"
    assert cli("regress", "--baseline", base, "--run", out, "--write").exit_code == 0
    before = _tree(out)
    # another model, other options, into the same --out: before, run.json was rewritten before the refusal
    one_line_error(cli("run", "--model", "empty", "--out", out, "--no-leaderboard"), 2, "holds predictions made",
                   "--overwrite")
    one_line_error(cli("run", "--model", "prior", "--model-arg", "grid=16", "--out", out, "--no-leaderboard"), 2,
                   "fingerprint: stored")
    assert _tree(out) == before  # no -wal / -shm either
    r = cli("regress", "--baseline", base, "--run", out)
    assert r.exit_code == 0 and "ok:" in r.output
    # a corrupt part file: refused before anything is written
    (out / "part-00001.sqlite").write_bytes(b"garbage, not a database")
    before = _tree(out)
    one_line_error(cli("run", "--model", "prior", "--out", out, "--no-leaderboard"), 2, "part-00001.sqlite",
                   "not a refbench prediction store")
    assert _tree(out) == before


def test_regress_refuses_run_json_and_summary_of_different_models(demo_env, tmp_path):
    out = tmp_path / "r"
    assert cli("run", "--model", "prior", "--out", out, "--no-leaderboard").exit_code == 0
    meta = json.loads((out / "run.json").read_text())
    meta["header"]["adapter"] = "empty"  # what the old runner left after a refused run
    (out / "run.json").write_text(json.dumps(meta))
    one_line_error(cli("regress", "--baseline", tmp_path / "b.json", "--run", out, "--write"), 2,
                   "summary.json: scores model 'prior'")
    assert not (tmp_path / "b.json").exists()


def test_string_metric_in_a_baseline_names_file_and_metric(demo_env, tmp_path):
    out = tmp_path / "r"
    assert cli("run", "--model", "prior", "--out", out, "--no-leaderboard").exit_code == 0
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"tolerance": 0, "entries": {"prior/demo_mevis_val_u": {"metrics": {"J": "0.5"}}}}))
    one_line_error(cli("regress", "--baseline", base, "--run", out), 2, str(base), "metric 'J' is '0.5'")


# ---------------------------------------------------------------------------------------------------------
# PNG bombs, FIFOs, zip inflation: bounded before decoding
# ---------------------------------------------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 30000) -> bytes:
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(b"\0" * (side + 1)) for _ in range(32)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


@pytest.fixture
def mevis_preds(shared_data, tmp_path) -> Path:
    pred = tmp_path / "pred"
    shutil.copytree(shared_data / "mevis_golden" / "predictions", pred)
    return pred


def test_png_bomb_in_folder_zip_and_export(mevis, mevis_preds, tmp_path):
    target = mevis_preds / "dog" / "1" / "00005.png"
    target.write_bytes(bomb_png())
    args = ["--dataset", "mevis_val_u", "--root", mevis, "--missing", "official"]
    one_line_error(cli("eval", *args, "--pred", mevis_preds), 2, str(target), "30000x30000", "480x854")
    z = tmp_path / "p.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(mevis_preds.rglob("*.png")):
            zf.write(p, p.relative_to(mevis_preds).as_posix())
    one_line_error(cli("eval", *args, "--pred", z), 2, f"{z}:dog/1/00005.png")
    r = cli("export", "--dataset", "mevis_val_u", "--format", "mevis", "--root", mevis, "--pred", mevis_preds, "--out",
            tmp_path / "s.zip",
            "--missing", "empty")
    one_line_error(r, 2, "dog/1/00005.png", "30000x30000")
    assert not (tmp_path / "s.zip").exists() and not list(tmp_path.glob(".s.zip*"))


def test_flipped_png_byte_is_refused_not_scored(mevis, mevis_preds):
    # Pillow stops reading once it has the pixels; a flipped IDAT byte used to change the mask silently
    target = mevis_preds / "blackswan" / "1" / "00005.png"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))
    one_line_error(cli("eval", "--dataset", "mevis_val_u", "--root", mevis, "--pred", mevis_preds, "--missing",
                       "official"), 2, str(target), "checksum mismatch")


def test_fifo_named_png_does_not_block(mevis, mevis_preds):
    target = mevis_preds / "libby" / "2" / "00008.png"
    target.unlink()
    os.mkfifo(target)
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(r=cli("eval", "--dataset", "mevis_val_u", "--root", mevis,
                                                              "--pred", mevis_preds, "--missing", "official")))
    t.daemon = True
    t.start()
    t.join(60)
    assert not t.is_alive(), "eval blocked on a FIFO"
    one_line_error(result["r"], 2, str(target), "is a FIFO, not a regular file")


def test_zip_member_inflating_600mb_is_refused_with_bounded_memory(mevis, mevis_preds, tmp_path):
    z = tmp_path / "p.zip"
    member = "dog/1/00005.png"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(mevis_preds.rglob("*.png")):
            name = p.relative_to(mevis_preds).as_posix()
            if name == member:
                with zf.open(name, "w", force_zip64=True) as fh:
                    block = b"\0" * (1 << 20)
                    for _ in range(600):
                        fh.write(block)
            else:
                zf.write(p, name)
    assert z.stat().st_size < 2 << 20
    code = ("import sys; from click.testing import CliRunner; from refbench.cli import main; "
            f"r = CliRunner().invoke(main, ['eval', '--dataset', 'mevis_val_u', '--root', {str(mevis)!r}, '--pred', "
            f"{str(z)!r}, '--missing', 'official']); print(r.exit_code); print(r.output.strip()); "
            # VmHWM: this process's own peak (ru_maxrss would include the forking parent's, kept across exec)
            "print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    exit_code, line, peak_mib = lines[0], lines[-2], lines[-1]
    assert exit_code == "2" and f"{z}:{member}" in line and "inflates to" in line, out.stdout
    assert int(peak_mib) < 700, f"peak RSS {peak_mib} MiB (the member alone would be 600 MiB)"


# ---------------------------------------------------------------------------------------------------------
# Outputs: atomic, and one line when they cannot be written
# ---------------------------------------------------------------------------------------------------------


def test_out_below_a_regular_file_and_export_onto_a_zip(demo_env, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(cli("run", "--out", f / "run", "--no-leaderboard"), 2, "--out", "which is a file")
    one_line_error(cli("eval", "--dataset", "demo_mevis_val_u", "--pred", tmp_path, "--json", f / "s.json"), 2,
                   "--json", "is a file, not a folder")
    out = tmp_path / "r"
    assert cli("run", "--out", out, "--no-leaderboard").exit_code == 0
    z = tmp_path / "sub.zip"
    z.write_bytes(b"old")
    one_line_error(cli("export", "--run", out, "--out", z, "--format", "mevis"), 2, str(z), "--overwrite")
    assert z.read_bytes() == b"old"
    assert cli("export", "--run", out, "--out", z, "--format", "mevis", "--overwrite").exit_code == 0
    assert zipfile.is_zipfile(z)


def test_full_disk_leaves_no_partial_output_and_prints_no_table(demo_env, tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert cli("run", "--out", out, "--no-leaderboard").exit_code == 0
    import errno

    import refbench.files

    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(refbench.files.os, "fsync", full)
    js = tmp_path / "s.json"
    r = cli("eval", "--run", out, "--json", js)
    line = one_line_error(r, 2, str(js), "the disk is full", "--json")
    assert "J&F" not in r.output and not js.exists() and not list(tmp_path.glob(".s.json*")), line
    monkeypatch.setattr(refbench.files.os, "fsync", real)


def test_sqlite_disk_full_is_one_line(demo_env, tmp_path, monkeypatch):
    import refbench.runs.store as store

    real = store._connect

    def small(path, readonly=False, immutable=False):
        con = real(path, readonly, immutable)
        if not readonly:
            con.execute("PRAGMA max_page_count = 8")  # the file cannot grow: SQLite says "database or disk is full"
        return con

    monkeypatch.setattr(store, "_connect", small)
    r = cli("run", "--model", "oracle", "--out", tmp_path / "r", "--no-leaderboard")
    one_line_error(r, 2, "part-00000.sqlite", "disk is full", "--out")


def test_ctrl_c_in_any_command_is_one_line_exit_130(demo_env, tmp_path, monkeypatch):
    import refbench.regress

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(refbench.regress, "read_run", interrupted)
    (tmp_path / "r").mkdir()
    one_line_error(cli("regress", "--baseline", tmp_path / "b.json", "--run", tmp_path / "r"), 130, "interrupted")


def test_unexpected_exception_is_a_bug_line_unless_debugging(demo_env, tmp_path, monkeypatch):
    import refbench.regress

    def bug(*a, **k):
        raise AttributeError("'NoneType' object has no attribute 'x'")

    monkeypatch.setattr(refbench.regress, "read_run", bug)
    (tmp_path / "r").mkdir()
    r = cli("regress", "--baseline", tmp_path / "b.json", "--run", tmp_path / "r")
    line = r.output.strip()
    assert r.exit_code == 70 and "internal error AttributeError" in line and "bug in refbench" in line
    monkeypatch.setenv("REFBENCH_DEBUG", "1")
    r = cli("regress", "--baseline", tmp_path / "b.json", "--run", tmp_path / "r")
    assert isinstance(r.exception, AttributeError)


# ---------------------------------------------------------------------------------------------------------
# Vague errors
# ---------------------------------------------------------------------------------------------------------


def test_broken_instances_json_names_instances_json(shared_data, tmp_path):
    root = tmp_path / "refer"
    shutil.copytree(shared_data / "refcoco_golden" / "refcoco", root / "refcoco")
    inst = root / "refcoco" / "instances.json"
    doc = json.loads(inst.read_text())
    del doc["annotations"][0]["id"]
    inst.write_text(json.dumps(doc))
    pred = shared_data / "refcoco_golden" / "predictions_refcoco_unc.json"
    line = one_line_error(cli("eval", "--dataset", "refcoco_val", "--root", root, "--pred", pred, "--unknown",
                              "ignore"), 2, str(inst), "annotations[0] has no integer 'id'")
    assert "refs(unc).p" not in line


def test_hints_name_cli_flags(shared_data, tmp_path):
    root = tmp_path / "mevis" / "valid_u"
    root.mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        (root / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    line = one_line_error(cli("eval", "--dataset", "mevis_val_u", "--root", tmp_path / "mevis", "--pred",
                              shared_data / "mevis_golden" / "predictions"), 2, "--missing empty")
    assert "missing='" not in line


def test_real_entry_point_smoke(demo_base, tmp_path):
    """One subprocess through the installed entry point: a bad input is one line on stderr, exit 2."""
    env = {**os.environ, "REFBENCH_DEMO_DIR": str(demo_base)}
    p = tmp_path / "p.json"
    p.write_text('{"a": 1, "a": 2}')
    out = subprocess.run([sys.executable, "-m", "refbench", "eval", "--dataset", "demo_charades_test", "--pred",
                          str(p)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [f"Error: {p}: key 'a' appears twice in one object; prediction file "
                                               "must name each key once"] or (
        len(out.stderr.strip().splitlines()) == 1 and "appears twice" in out.stderr), out.stderr
