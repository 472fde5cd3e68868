"""Seeded, bounded fuzzing of ``refbench eval`` on mutants of the real files in shared/data.

Each scenario builds a small workspace from real golden files (MeViS ground truth and PNG / RLE / zip
predictions, ReVOS, RefCOCO, Charades-STA, DAVIS), scores it once unmutated, then scores mutants of one file
at a time in-process (click's CliRunner: a subprocess per mutant would be too slow on 2 cores). For every
mutant:

* a non-zero exit must be exactly one line naming the mutated file, with a bad-input exit code (never the
  "internal error" line, never a traceback);
* a mutation known to be harmless (re-encoding, whitespace) must give exactly the unmutated metrics;
* a mutation that must be refused (a corrupt RLE, a bomb PNG, a duplicate key, ...) must be refused;
* a random mutation that is accepted must score deterministically (the same metrics twice);
* nothing is written outside the output paths (the whole workspace and the working folder are snapshot).

Scores are compared with the unmutated run computed in the same test, never with a literal.
``REFBENCH_FUZZ_SEED`` and ``REFBENCH_FUZZ_MUTANTS`` change the seed and the number of mutants per file
(the ``slow`` test runs many more).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from refbench.cli import main

SEED = int(os.environ.get("REFBENCH_FUZZ_SEED", "8"))
PER_FILE = int(os.environ.get("REFBENCH_FUZZ_MUTANTS", "10"))

ERROR, SAME, ANY = "error", "same", "any"


# ---------------------------------------------------------------------------------------------------------
# Workspaces made from real files
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    args: list[str]
    files: dict[str, tuple[Path, str]]  # label -> (file to mutate, kind: json-pred, json-gt, png, zip, text, pickle)
    work: Path
    outputs: list[Path] = field(default_factory=list)


def _subset_mevis(src: Path, dst: Path, videos: list[str]) -> None:
    meta = json.loads((src / "meta_expressions.json").read_text())
    masks = json.loads((src / "mask_dict.json").read_text())
    keep = {v: meta["videos"][v] for v in videos}
    annos = {str(a) for v in keep.values() for e in v["expressions"].values() for a in e["anno_id"]}
    dst.mkdir(parents=True)
    (dst / "meta_expressions.json").write_text(json.dumps({"videos": keep}))
    (dst / "mask_dict.json").write_text(json.dumps({a: masks[a] for a in masks if a in annos}))


def _png_to_rle_json(preds: Path, meta: dict) -> dict:
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    out: dict = {}
    for video, data in meta["videos"].items():
        for exp_id in data["expressions"]:
            rles = []
            for frame in data["frames"]:
                m = np.asfortranarray((np.array(Image.open(preds / video / exp_id / f"{frame}.png")) > 0).astype(np.uint8))
                e = mask_utils.encode(m)
                rles.append({"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode()})
            out.setdefault(video, {})[exp_id] = rles
    return out


def _mevis(shared: Path, work: Path, form: str) -> Scenario:
    videos = ["blackswan", "car-shadow"]
    root = work / "mevis"
    _subset_mevis(shared / "mevis_golden" / "valid_u", root / "valid_u", videos)
    preds = work / "pred"
    for v in videos:
        shutil.copytree(shared / "mevis_golden" / "predictions" / v, preds / v)
    files = {"mask_dict": (root / "valid_u" / "mask_dict.json", "json-gt"),
             "meta": (root / "valid_u" / "meta_expressions.json", "json-gt")}
    if form == "png":
        pred = preds
        files["png"] = (preds / "blackswan" / "1" / "00005.png", "png")
        files["png2"] = (preds / "car-shadow" / "0" / "00000.png", "png")
    elif form == "rle":
        meta = json.loads((root / "valid_u" / "meta_expressions.json").read_text())
        pred = work / "pred.json"
        pred.write_text(json.dumps(_png_to_rle_json(preds, meta)))
        shutil.rmtree(preds)
        files = {"pred_rle": (pred, "json-pred")}
    else:
        pred = work / "pred.zip"
        with zipfile.ZipFile(pred, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(preds.rglob("*.png")):
                zf.write(p, p.relative_to(preds).as_posix())
        shutil.rmtree(preds)
        files = {"zip": (pred, "zip")}
    return Scenario(f"mevis-{form}", ["--dataset", "mevis_val_u", "--root", str(root), "--pred", str(pred)],
                    files, work)


def _revos(shared: Path, work: Path) -> Scenario:
    src = shared / "revos_golden"
    meta = json.loads((src / "meta_expressions_valid_.json").read_text())
    video = "dog"
    keep = {video: meta["videos"][video]}
    annos = {str(a) for e in keep[video]["expressions"].values() for a in e["anno_id"]}
    root = work / "revos"
    root.mkdir()
    (root / "meta_expressions_valid_.json").write_text(json.dumps({"videos": keep}))
    masks = json.loads((src / "mask_dict.json").read_text())
    (root / "mask_dict.json").write_text(json.dumps({a: masks[a] for a in masks if a in annos}))
    fg = json.loads((src / "mask_dict_foreground.json").read_text())
    (root / "mask_dict_foreground.json").write_text(json.dumps({video: fg[video]}))
    pred = work / "pred"
    shutil.copytree(src / "predictions" / video, pred / video)
    return Scenario("revos", ["--dataset", "revos_val", "--root", str(root), "--pred", str(pred)],
                    {"foreground": (root / "mask_dict_foreground.json", "json-gt"),
                     "png": (pred / video / "0" / sorted(os.listdir(pred / video / "0"))[1], "png")}, work)


def _refcoco(shared: Path, work: Path) -> Scenario:
    src = shared / "refcoco_golden"
    root = work / "refer"
    shutil.copytree(src / "refcoco", root / "refcoco")
    pred = work / "pred.json"
    shutil.copy(src / "predictions_refcoco_unc.json", pred)
    return Scenario("refcoco", ["--dataset", "refcoco_val", "--root", str(root), "--pred", str(pred),
                                "--unknown", "ignore"],
                    {"pred": (pred, "json-pred"), "instances": (root / "refcoco" / "instances.json", "json-gt"),
                     "refs": (root / "refcoco" / "refs(unc).p", "pickle")}, work)


def _charades(shared: Path, work: Path) -> Scenario:
    src = shared / "charades_sta"
    root = work / "charades"
    root.mkdir()
    for name in ("charades_sta_test.txt", "Charades_v1_test.csv"):
        shutil.copy(src / name, root / name)
    tc = json.loads((src / "timechat_example_pred.json").read_text())
    pred = work / "spans.json"
    pred.write_text(json.dumps({q: (v["timestamp"][0] if v["timestamp"] else []) for q, v in tc.items()}))
    return Scenario("charades", ["--dataset", "charades_sta_test", "--root", str(root), "--pred", str(pred),
                                 "--subset", "predicted"],
                    {"spans": (pred, "json-spans"), "gt": (root / "charades_sta_test.txt", "text")}, work)


def _davis(shared: Path, work: Path) -> Scenario:
    src = shared / "davis_osvos13"
    seq = "car-shadow"
    root = work / "davis"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text(seq + "\n")
    shutil.copytree(src / "Annotations" / "480p" / seq, root / "Annotations" / "480p" / seq)
    pred = work / "pred"
    shutil.copytree(src / "predictions" / "osvos" / seq, pred / seq)
    return Scenario("davis", ["--dataset", "davis17_val", "--root", str(root), "--pred", str(pred),
                              "--protocol", "davis_semi"],
                    {"gt_png": (root / "Annotations" / "480p" / seq / "00007.png", "png"),
                     "pred_png": (pred / seq / "00011.png", "png")}, work)


SCENARIOS: dict[str, Callable[[Path, Path], Scenario]] = {
    "mevis-png": lambda s, w: _mevis(s, w, "png"),
    "mevis-rle": lambda s, w: _mevis(s, w, "rle"),
    "mevis-zip": lambda s, w: _mevis(s, w, "zip"),
    "revos": _revos,
    "refcoco": _refcoco,
    "charades": _charades,
    "davis": _davis,
}


# ---------------------------------------------------------------------------------------------------------
# Mutators: each returns (new bytes, expectation) or None when it does not apply to the file
# ---------------------------------------------------------------------------------------------------------


def _json_verdict(old: bytes, new: bytes) -> str:
    try:
        a, b = json.loads(old), json.loads(new)
    except (ValueError, RecursionError):
        return ERROR
    return SAME if a == b else ANY


def m_truncate(data: bytes, rng: random.Random, kind: str):
    cut = rng.randrange(1, max(2, len(data) - 1))
    new = data[:cut]
    return new, (_json_verdict(data, new) if kind.startswith("json") else ERROR if kind in ("png", "pickle") else ANY)


def m_flip(data: bytes, rng: random.Random, kind: str):
    i = rng.randrange(len(data))
    new = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if kind.startswith("json"):
        return new, _json_verdict(data, new)
    return new, ERROR if kind == "png" else ANY  # every PNG byte is under a CRC


def m_reformat(data: bytes, rng: random.Random, kind: str):
    if not kind.startswith("json"):
        return None
    return json.dumps(json.loads(data), indent=rng.choice([1, 2, "\t"])).encode() + b"\n  \n", SAME


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _leaves(v, path + (i,))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(obj, path[:-1])[path[-1]] = value
    return obj


def _rles(obj: Any) -> list[tuple]:
    return [p for p in _leaves(obj) if isinstance(_get(obj, p), dict) and "counts" in _get(obj, p)]


def _rle_mutator(change: Callable[[dict, random.Random], Any]):
    def mutate(data: bytes, rng: random.Random, kind: str):
        if not kind.startswith("json"):
            return None
        doc = json.loads(data)
        paths = [p for p in _rles(doc) if isinstance(_get(doc, p).get("counts"), str)]
        if not paths:
            return None
        p = rng.choice(paths)
        rle = dict(_get(doc, p))
        replaced = change(rle, rng)
        return json.dumps(_set(doc, p, replaced)).encode(), ERROR
    return mutate


m_rle_short = _rle_mutator(lambda r, g: {**r, "counts": r["counts"][: max(1, len(r["counts"]) // 2)]})
m_rle_garbage = _rle_mutator(lambda r, g: {**r, "counts": r["counts"][:3] + g.choice(" ~{\u00e9") + r["counts"][3:]})
m_rle_size = _rle_mutator(lambda r, g: {**r, "size": [r["size"][0] + g.choice([-1, 1]), r["size"][1]]})
m_rle_size_text = _rle_mutator(lambda r, g: {**r, "size": [str(r["size"][0]), r["size"][1]]})
m_rle_number = _rle_mutator(lambda r, g: g.choice([5, 0, True, "abc", [1, 2]]))
m_rle_negative = _rle_mutator(lambda r, g: {**r, "counts": [-5, r["size"][0] * r["size"][1] + 5]})
m_rle_long_runs = _rle_mutator(lambda r, g: {**r, "counts": r["counts"] + "P5"})


def _dumps_with_duplicate(doc: Any, target: tuple) -> str:
    """JSON text of ``doc`` where the object at ``target`` names its first key twice."""
    def enc(obj: Any, path: tuple) -> str:
        if isinstance(obj, dict):
            items = [f"{json.dumps(k)}: {enc(v, path + (k,))}" for k, v in obj.items()]
            if path == target and obj:
                k, v = next(iter(obj.items()))
                items.append(f"{json.dumps(k)}: {json.dumps(v)}")
            return "{" + ", ".join(items) + "}"
        if isinstance(obj, list):
            return "[" + ", ".join(enc(v, path + (i,)) for i, v in enumerate(obj)) + "]"
        return json.dumps(obj)
    return enc(doc, ())


def m_duplicate_key(data: bytes, rng: random.Random, kind: str):
    if not kind.startswith("json"):
        return None
    doc = json.loads(data)
    dicts = [p for p in _leaves(doc) if isinstance(_get(doc, p), dict) and _get(doc, p)]
    if not dicts:
        return None
    return _dumps_with_duplicate(doc, rng.choice(dicts[:50])).encode(), ERROR


def m_deep(data: bytes, rng: random.Random, kind: str):
    if not kind.startswith("json"):
        return None
    doc = json.loads(data)
    p = rng.choice(_leaves(doc)[1:] or [()])
    marker = "__DEEP__"
    text = json.dumps(_set(doc, p, marker)).replace(json.dumps(marker), "[" * 100_000 + "]" * 100_000, 1)
    return text.encode(), ERROR


def m_unknown_id(data: bytes, rng: random.Random, kind: str):
    if kind != "json-pred" and kind != "json-spans":
        return None
    doc = json.loads(data)
    if not isinstance(doc, dict) or not doc:
        return None
    k = rng.choice(list(doc))
    doc["zz-not-an-id-" + k] = doc.pop(k)
    return json.dumps(doc).encode(), ERROR


def m_retype(data: bytes, rng: random.Random, kind: str):
    if not kind.startswith("json"):
        return None
    doc = json.loads(data)
    p = rng.choice(_leaves(doc)[1:60] or [()])
    return json.dumps(_set(doc, p, rng.choice([None, 7, -1, "x", [], {}, 1e308, True]))).encode(), ANY


def m_huge_number(data: bytes, rng: random.Random, kind: str):
    if not kind.startswith("json"):
        return None
    doc = json.loads(data)
    nums = [p for p in _leaves(doc) if isinstance(_get(doc, p), (int, float)) and not isinstance(_get(doc, p), bool)]
    if not nums:
        return None
    p = rng.choice(nums)
    marker = "__NUM__"
    literal = rng.choice(["1e400", "-1e400", "9" * 5000, "1" + "0" * 30])
    return json.dumps(_set(doc, p, marker)).replace(json.dumps(marker), literal, 1).encode(), ANY


def m_span_reversed(data: bytes, rng: random.Random, kind: str):
    if kind != "json-spans":
        return None
    doc = json.loads(data)
    qs = [q for q, v in doc.items() if isinstance(v, list) and len(v) == 2 and v[0] < v[1]]
    q = rng.choice(qs)
    s, e = doc[q]
    doc[q] = rng.choice([[e, s], [-1.0, e]])
    return json.dumps(doc).encode(), ERROR


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def m_png_ihdr(data: bytes, rng: random.Random, kind: str):
    if kind != "png":
        return None
    w, h = struct.unpack(">II", data[16:24])
    w, h = (w + rng.choice([-1, 1]), h) if rng.random() < 0.5 else (w, h + rng.choice([-1, 1]))
    body = struct.pack(">II", w, h) + data[24:29]
    return data[:8] + _png_chunk(b"IHDR", body) + data[33:], ERROR


def m_png_bomb(data: bytes, rng: random.Random, kind: str):
    if kind not in ("png", "zip"):
        return None
    side = 30000
    raw = zlib.compressobj(9)
    idat = b"".join(raw.compress(b"\0" * (side + 1)) for _ in range(64)) + raw.flush()
    bomb = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    if kind == "png":
        return bomb, ERROR
    return _zip_replace_first(data, bomb), ERROR


def _zip_replace_first(data: bytes, member: bytes) -> bytes:
    import io

    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for i, info in enumerate(src.infolist()):
            out.writestr(info.filename, member if i == 3 else src.read(info))
    return buf.getvalue()


def m_zip_inflate(data: bytes, rng: random.Random, kind: str):
    if kind != "zip":
        return None
    return _zip_replace_first(data, b"\x89PNG\r\n\x1a\n" + b"\0" * (60 << 20)), ERROR  # 60 MB from ~60 kB


def m_png_recode(data: bytes, rng: random.Random, kind: str):
    if kind != "png":
        return None
    import io

    from PIL import Image, PngImagePlugin

    im = Image.open(io.BytesIO(data))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-encoded by the fuzz test")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=rng.choice([0, 1, 9]), pnginfo=info)
    return buf.getvalue() + (b"trailing bytes after IEND" if rng.random() < 0.5 else b""), SAME


MUTATORS: dict[str, Callable] = {
    "truncate": m_truncate, "flip_byte": m_flip, "reformat": m_reformat, "duplicate_key": m_duplicate_key,
    "deep_nesting": m_deep, "unknown_id": m_unknown_id, "retype": m_retype, "huge_number": m_huge_number,
    "rle_short_runs": m_rle_short, "rle_garbage_char": m_rle_garbage, "rle_size_off_by_one": m_rle_size,
    "rle_size_text": m_rle_size_text, "rle_frame_not_rle": m_rle_number, "rle_negative_run": m_rle_negative,
    "rle_runs_too_long": m_rle_long_runs, "span_reversed_or_negative": m_span_reversed,
    "png_ihdr_size": m_png_ihdr, "png_bomb": m_png_bomb, "png_recode": m_png_recode, "zip_inflate": m_zip_inflate,
}


# ---------------------------------------------------------------------------------------------------------
# Running one mutant
# ---------------------------------------------------------------------------------------------------------


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for folder in folders:
        for dirpath, _dirs, files in os.walk(folder):
            for f in files:
                p = Path(dirpath) / f
                st = p.lstat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _invoke(sc: Scenario, out: Path) -> tuple[int, str, dict | None]:
    for p in out.iterdir():
        p.unlink()
    r = CliRunner().invoke(main, ["eval", *sc.args, "--json", str(out / "s.json"), "--csv", str(out / "s.csv")])
    summary = json.loads((out / "s.json").read_text()) if r.exit_code == 0 else None
    return r.exit_code, r.output, summary


def _judge(sc, path, kind, new, original, expect, code, output, summary, base, before, after, out, what, tally,
           mname) -> None:
    assert "Traceback" not in output and "internal error" not in output, what
    assert after == before, f"{what}: files changed outside the outputs: " \
                            f"{sorted(set(after.items()) ^ set(before.items()))[:4]}"
    if mname == "unknown_id" and "ignore" in sc.args:  # --unknown ignore: an id outside the split is ignored
        expect = ANY
    if code == 0:
        assert expect != ERROR, what
        if expect == SAME:
            assert summary["metrics"] == base["metrics"], what
        elif summary["metrics"] != base["metrics"]:  # accepted and different: must be deterministic
            path.write_bytes(new)
            try:
                again = _invoke(sc, out)[2]
            finally:
                path.write_bytes(original)
            assert again is not None and again["metrics"] == summary["metrics"], what
        tally[(mname, "scored, same" if summary["metrics"] == base["metrics"] else "scored, changed")] += 1
    else:
        lines = output.strip().splitlines()
        assert code in (1, 2), what
        assert len(lines) == 1, what
        named = str(path) in lines[0] or (kind == "png" and path.name in lines[0] and path.parent.name in lines[0])
        # a changed dataset file (ids, frame names) can make valid predictions no longer fit it: then the line
        # names the predictions that do not fit (and, where the loader knows it, the dataset file)
        pred = sc.args[sc.args.index("--pred") + 1]
        named = named or (expect == ANY and kind in ("json-gt", "text", "pickle") and pred in lines[0])
        assert named, f"{what}: the line does not name {path}"
        assert not list(out.iterdir()), f"{what}: a refused run left outputs"
        tally[(mname, "refused, one line naming the file")] += 1


def run_fuzz(shared: Path, tmp: Path, per_file: int, seed: int) -> Counter:
    rng = random.Random(seed)
    tally: Counter = Counter()
    failures: list[str] = []
    cwd = Path.cwd()
    for name, build in SCENARIOS.items():
        work = tmp / name
        work.mkdir()
        sc = build(shared, work)
        out = tmp / f"{name}-out"
        out.mkdir()
        code, output, base = _invoke(sc, out)
        assert code == 0 and base is not None, f"{name}: the unmutated run fails: {output}"
        for label, (path, kind) in sc.files.items():
            original = path.read_bytes()
            names = list(MUTATORS)
            rng.shuffle(names)
            tried = 0
            for mname in names + names:
                if tried >= per_file:
                    break
                made = MUTATORS[mname](original, rng, kind)
                if made is None:
                    continue
                tried += 1
                new, expect = made
                path.write_bytes(new)
                if os.environ.get("REFBENCH_FUZZ_LOG"):
                    with open(os.environ["REFBENCH_FUZZ_LOG"], "a") as log:
                        log.write(f"{name}/{label} {mname} {expect}\n")
                before = _snapshot(work, cwd)
                try:
                    code, output, summary = _invoke(sc, out)
                finally:
                    path.write_bytes(original)
                after = _snapshot(work, cwd)
                after.pop(str(path), None), before.pop(str(path), None)
                what = f"{name}/{label} {mname} (expected {expect}): exit {code}: {output[-600:]}"
                try:
                    _judge(sc, path, kind, new, original, expect, code, output, summary, base, before, after, out,
                           what, tally, mname)
                except AssertionError as exc:
                    failures.append(str(exc).split("\nassert")[0])
        shutil.rmtree(work)
    if os.environ.get("REFBENCH_FUZZ_REPORT"):  # the outcome of every kind of mutant, for the closing note
        Path(os.environ["REFBENCH_FUZZ_REPORT"]).write_text(
            "\n".join(f"{m}\t{o}\t{n}" for (m, o), n in sorted(tally.items())) + "\n")
    assert not failures, f"{len(failures)} mutant(s) failed:\n" + "\n".join(failures)
    return tally


@pytest.fixture
def quiet(monkeypatch):
    """No progress bar in the captured output (in a terminal tqdm clears it before the error line)."""
    import refbench.clikit

    monkeypatch.setattr(refbench.clikit.Progress, "__call__", lambda self, done, total: None)


def test_fuzz_real_files(shared_data, tmp_path, quiet):
    tally = run_fuzz(shared_data, tmp_path, PER_FILE, SEED)
    assert sum(tally.values()) >= 40
    kinds = {m for m, _ in tally}
    assert {"truncate", "flip_byte", "duplicate_key", "rle_short_runs", "png_bomb"} & kinds


@pytest.mark.slow
def test_fuzz_real_files_many(shared_data, tmp_path, quiet):
    tally = run_fuzz(shared_data, tmp_path, 25, SEED + 1)
    for (mutator, outcome), n in sorted(tally.items()):
        print(f"{mutator:<28} {outcome:<36} {n}")
