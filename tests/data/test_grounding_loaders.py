"""Charades-STA and ActivityNet Captions loaders (refbench.data.grounding) on the real files in shared/data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from refbench.data.base import DatasetError, GroundingQuery
from refbench.data.grounding import OFFICIAL_COUNTS, ActivityNetLoader, CharadesSTALoader


def _damage(problems: list[str]) -> list[str]:
    return [p for p in problems if not p.startswith("note:")]


@pytest.fixture(scope="module")
def charades_root(shared_data: Path) -> Path:
    path = shared_data / "charades_sta"
    if not (path / "charades_sta_test.txt").is_file():
        pytest.skip(f"{path}/charades_sta_test.txt not found")
    return path


@pytest.fixture(scope="module")
def anet_root(shared_data: Path) -> Path:
    path = shared_data / "activitynet"
    if not (path / "val_1.json").is_file():
        pytest.skip(f"{path}/val_1.json not found")
    return path


@pytest.fixture(scope="module")
def charades_test(charades_root: Path) -> list[GroundingQuery]:
    return CharadesSTALoader(charades_root, "test").samples()


@pytest.fixture()
def charades_copy(charades_root: Path, tmp_path: Path) -> Path:
    for name in ("charades_sta_test.txt", "Charades_v1_test.csv"):
        shutil.copyfile(charades_root / name, tmp_path / name)
    return tmp_path


# ----------------------------------------------------------------------------------------------
# Charades-STA, real files
# ----------------------------------------------------------------------------------------------


def test_charades_test_counts_and_order(charades_test: list[GroundingQuery], charades_root: Path) -> None:
    assert len(charades_test) == 3720
    assert len({q.video for q in charades_test}) == 1334
    assert [q.qid for q in charades_test] == [str(i) for i in range(3720)]
    first = charades_test[0]
    assert first == GroundingQuery("0", "3MSZA", "person turn a light on.", (24.3, 30.4), 30.96)
    assert all(q.duration is not None and q.duration > 0 for q in charades_test)
    # sentences verbatim (the file has double spaces on lines 1317, 1386, 1672)
    assert charades_test[1316].query == "a person puts a cup into a  cupboard."


def test_charades_matches_timechat_gt(charades_test: list[GroundingQuery], charades_root: Path) -> None:
    """TimeChat's example_gt_file numbers the test queries by 0-based line index, captions verbatim."""
    path = charades_root / "timechat_example_gt.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    anns = json.loads(path.read_text())["annotations"]
    assert len(anns) == len(charades_test)
    by_qid = {q.qid: q for q in charades_test}
    for ann in anns:
        q = by_qid[str(ann["id"])]
        assert (q.video + ".mp4", q.query, list(q.span)) == (ann["image_id"], ann["caption"], ann["timestamp"])


def test_charades_test_check_clipped_ends(charades_root: Path, charades_test: list[GroundingQuery]) -> None:
    beyond = [q for q in charades_test if q.span[1] > q.duration]
    assert len(beyond) == 562
    problems = CharadesSTALoader(charades_root, "test").check(OFFICIAL_COUNTS[("charades_sta", "test")])
    assert _damage(problems) == []
    assert len(problems) == 1 and "562 of 3720 queries end after the video duration" in problems[0]


def test_charades_train(charades_root: Path) -> None:
    loader = CharadesSTALoader(charades_root, "train")
    samples = loader.samples()
    assert len(samples) == 12408
    assert len({q.video for q in samples}) == 5338
    problems = loader.check(OFFICIAL_COUNTS[("charades_sta", "train")])
    assert _damage(problems) == []  # the official train file is usable as it is
    reversed_spans = [p for p in problems if p.startswith("note:") and "> end" in p]
    assert [p.split(":")[2] for p in reversed_spans] == ["8252", "8440", "9623", "9624"]
    assert any("1805 of 12408" in p for p in problems if p.startswith("note:"))



def test_reversed_span_is_damage_outside_train(tmp_path: Path) -> None:
    for split, damaged in (("test", True), ("train", False)):
        (tmp_path / f"charades_sta_{split}.txt").write_text("AAAAA 5.0 2.0##a person sits.\n")
        (tmp_path / f"Charades_v1_{split}.csv").write_text("id,length\nAAAAA,10.0\n")
        problems = CharadesSTALoader(tmp_path, split).check()
        assert any("start 5.0 > end 2.0" in p for p in _damage(problems)) is damaged, (split, problems)


def test_charades_video_path(charades_root: Path, charades_test: list[GroundingQuery]) -> None:
    loader = CharadesSTALoader(charades_root)
    assert loader.video_path(charades_test[0]) == charades_root / "videos" / "3MSZA.mp4"
    assert loader.video_path("ABCDE") == charades_root / "videos" / "ABCDE.mp4"


# ----------------------------------------------------------------------------------------------
# Charades-STA, seeded faults
# ----------------------------------------------------------------------------------------------


def _rewrite_line(path: Path, index: int, new: str) -> None:
    lines = path.read_text().split("\n")
    lines[index] = new
    path.write_text("\n".join(lines))


@pytest.mark.parametrize(
    "bad",
    ["3MSZA 24.3 30.4 person turn a light on.", "3MSZA 24.3##no end", "3MSZA x 30.4##text", "3MSZA 1 nan##t", ""],
)
def test_charades_malformed_line(charades_copy: Path, bad: str) -> None:
    path = charades_copy / "charades_sta_test.txt"
    _rewrite_line(path, 6, bad)
    loader = CharadesSTALoader(charades_copy, "test")
    with pytest.raises(DatasetError, match=rf"charades_sta_test.txt:7: malformed line"):
        loader.samples()
    damage = _damage(loader.check())
    assert len(damage) == 1 and f"{path}:7: malformed line" in damage[0]


def test_charades_missing_csv_row(charades_copy: Path) -> None:
    csv_path = charades_copy / "Charades_v1_test.csv"
    rows = csv_path.read_text().splitlines(keepends=True)
    dropped = [r for r in rows if r.startswith("3MSZA,")]
    assert len(dropped) == 1
    csv_path.write_text("".join(r for r in rows if not r.startswith("3MSZA,")))
    loader = CharadesSTALoader(charades_copy, "test")
    samples = loader.samples()
    n = sum(1 for q in samples if q.video == "3MSZA")
    assert n == 4 and [q.duration for q in samples if q.video == "3MSZA"] == [None] * n
    assert all(q.duration is not None for q in samples if q.video != "3MSZA")
    damage = _damage(loader.check())
    assert len(damage) == 1
    assert "4 queries over 1 videos have no duration" in damage[0] and "3MSZA" in damage[0]
    assert "charades_sta_test.txt:1" in damage[0]


def test_charades_csv_faults(charades_copy: Path) -> None:
    csv_path = charades_copy / "Charades_v1_test.csv"
    with csv_path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("length")
    rows[2][col] = "abc"
    with csv_path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    loader = CharadesSTALoader(charades_copy, "test")
    assert any(f"{csv_path}:3: length 'abc' is not a number" in p for p in loader.check())
    with pytest.raises(DatasetError, match="Charades_v1_test.csv:3"):
        loader.samples()
    csv_path.write_text("id,duration\nX,1\n")
    with pytest.raises(DatasetError, match="expected columns 'id' and 'length'"):
        CharadesSTALoader(charades_copy, "test").check()


def test_charades_no_csv_and_spans(charades_copy: Path) -> None:
    (charades_copy / "Charades_v1_test.csv").unlink()
    path = charades_copy / "charades_sta_test.txt"
    _rewrite_line(path, 0, "3MSZA 31.0 30.4##reversed")
    _rewrite_line(path, 1, "3MSZA -1 30.4##   ")
    loader = CharadesSTALoader(charades_copy, "test")
    assert all(q.duration is None for q in loader.samples())
    problems = loader.check()
    assert any(p.endswith("Charades_v1_test.csv: duration csv not found") for p in problems)
    assert any(f"{path}:1: start 31.0 > end 30.4" in p for p in problems)
    assert any(f"{path}:2: negative start" in p for p in problems)
    assert any(f"{path}:2: empty sentence" in p for p in problems)


def test_charades_counts_and_missing_split(charades_copy: Path) -> None:
    path = charades_copy / "charades_sta_test.txt"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))
    problems = CharadesSTALoader(charades_copy, "test").check(OFFICIAL_COUNTS[("charades_sta", "test")])
    assert any("queries count 3717 != expected 3720" in p for p in problems)
    with pytest.raises(DatasetError, match=r"charades_sta_val.txt: Charades-STA annotation file not found"):
        CharadesSTALoader(charades_copy, "val").samples()
    with pytest.raises(DatasetError, match="invalid Charades-STA split"):
        CharadesSTALoader(charades_copy, "../test")


def test_charades_crlf_is_tolerated(charades_copy: Path, charades_test: list[GroundingQuery]) -> None:
    path = charades_copy / "charades_sta_test.txt"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert CharadesSTALoader(charades_copy, "test").samples() == charades_test


# ----------------------------------------------------------------------------------------------
# ActivityNet Captions
# ----------------------------------------------------------------------------------------------


def test_activitynet_val_1(anet_root: Path) -> None:
    loader = ActivityNetLoader(anet_root)
    samples = loader.samples()
    assert len(samples) == 17505
    assert len({q.video for q in samples}) == 4917
    data = json.loads((anet_root / "val_1.json").read_text())
    expected_ids = [f"{vid}_{i}" for vid, e in data.items() for i in range(len(e["sentences"]))]
    assert [q.qid for q in samples] == expected_ids
    assert samples[0] == GroundingQuery(
        "v_uqiMw7tQ1Cc_0", "v_uqiMw7tQ1Cc", "A weight lifting tutorial is given.", (0.28, 55.15), 55.15
    )
    assert samples[1].query.startswith("  The coach")  # verbatim
    problems = loader.check(OFFICIAL_COUNTS[("activitynet", "val_1")])
    assert _damage(problems) == []
    assert len(problems) == 1 and "134 of 17505 queries end after the video duration" in problems[0]
    assert loader.note is None


def _small_anet() -> dict:
    return {
        "v_a": {"duration": 10.0, "timestamps": [[0, 4.5], [3, 12]], "sentences": ["one", "two"]},
        "v_b": {"duration": 5.0, "timestamps": [[1, 2]], "sentences": ["three"]},
    }


def test_activitynet_renamed_files(tmp_path: Path) -> None:
    (tmp_path / "val.json").write_text(json.dumps(_small_anet()))
    loader = ActivityNetLoader(tmp_path, "val_1")
    assert loader.path == tmp_path / "val.json"
    assert loader.note is not None and "2D-TAN" in loader.note
    assert [q.qid for q in loader.samples()] == ["v_a_0", "v_a_1", "v_b_0"]
    problems = loader.check({"queries": 3, "videos": 2})
    assert _damage(problems) == []
    assert any("1 of 3 queries end after" in p for p in problems)
    assert any("2D-TAN renames" in p for p in problems)
    (tmp_path / "test.json").write_text(json.dumps(_small_anet()))
    assert ActivityNetLoader(tmp_path, "val_2").path == tmp_path / "test.json"
    with pytest.raises(DatasetError, match=r"val_2.json: ActivityNet Captions file not found"):
        ActivityNetLoader(tmp_path / "nothing", "val_2").samples()


def test_activitynet_bad_json(tmp_path: Path) -> None:
    (tmp_path / "val_1.json").write_text('{"v_a": {"duration": 1.0,\n "timestamps": [[0, 1]], }')
    loader = ActivityNetLoader(tmp_path)
    with pytest.raises(DatasetError, match=r"val_1.json:2: invalid JSON"):
        loader.samples()
    with pytest.raises(DatasetError, match="invalid JSON"):
        loader.check()
    (tmp_path / "val_1.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="expected an object"):
        ActivityNetLoader(tmp_path).samples()


def test_activitynet_entry_faults(tmp_path: Path) -> None:
    data = _small_anet()
    data["v_c"] = {"duration": 3.0, "timestamps": [[0, 1], [1, 2]], "sentences": ["only one"]}
    data["v_d"] = {"duration": 3.0, "timestamps": [[2, 1], [0, "x"]], "sentences": ["reversed", "bad"]}
    data["v_e"] = {"timestamps": [[0, 1]], "sentences": [""]}
    data["v_f"] = {"duration": 3.0, "sentences": ["no stamps"]}
    path = tmp_path / "val_1.json"
    path.write_text(json.dumps(data))
    loader = ActivityNetLoader(tmp_path)
    with pytest.raises(DatasetError, match=r"video v_c: 2 timestamps but 1 sentences \(and 2 more\)"):
        loader.samples()
    problems = loader.check({"queries": 99})
    damage = _damage(problems)
    assert any("video v_c: 2 timestamps but 1 sentences" in p for p in damage)
    assert any("video v_d: sentence 1: timestamp" in p for p in damage)
    assert any("video v_d sentence 0: start 2.0 > end 1.0" in p for p in damage)
    assert any("video v_e sentence 0: empty sentence" in p for p in damage)
    assert any("1 queries over 1 videos have no duration" in p and "v_e" in p for p in damage)
    assert any("video v_f: missing timestamps" in p for p in damage)
    assert any("queries count 5 != expected 99" in p for p in damage)
    assert all(p.startswith(str(path)) or p.startswith("note:") for p in problems)
