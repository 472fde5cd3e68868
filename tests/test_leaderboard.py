"""Leaderboards: the committed CSVs, reading / appending / formatting, and the ``leaderboard`` command."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys

import pytest
from click.testing import CliRunner

from refbench.cards import dataset_cards
from refbench.leaderboard import (
    CHALLENGE_SPLITS, COLUMNS, FAMILIES, KINDS, METRICS, LeaderboardError, Row, append_rows, family_of,
    family_of_dataset, format_rows, leaderboard_command, leaderboard_dirs, read_rows, rows_from_summary, select,
)
from tests.conftest import ROOT

LB = ROOT / "leaderboards"
HEADER = ",".join(COLUMNS) + "\n"


@pytest.fixture(scope="module")
def committed() -> list[Row]:
    return read_rows(LB)


def _one(rows, **kw) -> Row:
    found = select(rows, **kw)
    assert len(found) == 1, (kw, found)
    return found[0]


def _reproduced(**kw) -> Row:
    base = dict(dataset="mevis_val_u", model="prior", metric="J&F", value=12.5, protocol="mevis",
                kind="reproduced", source="runs/prior-mevis", date="2026-01-02T03:04:05+00:00",
                refbench_version="0.1.0", run_id="r1", fingerprint="abc123")
    base.update(kw)
    return Row(**base)


# ------------------------------------------------------------------------------------------------------
# The committed leaderboards
# ------------------------------------------------------------------------------------------------------


def test_committed_files_exist_and_parse(committed):
    for stem in ("refvos", "tsg", "res", "vos"):
        path = LB / f"{stem}.csv"
        assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
        assert read_rows(path), stem
    assert len(committed) >= 60
    assert LB in leaderboard_dirs() or LB.resolve() in [d.resolve() for d in leaderboard_dirs()]


def test_committed_rows_are_well_formed(committed):
    cards = dataset_cards()
    assert not set(CHALLENGE_SPLITS) & set(cards), "a challenge split got a card: drop it from CHALLENGE_SPLITS"
    for r in committed:
        assert r.kind in KINDS
        assert r.source.strip()
        assert r.scale == "percent"
        assert 0.0 <= r.value <= 100.0
        assert r.dataset in cards or r.dataset in CHALLENGE_SPLITS, r.dataset
        assert r.metric in METRICS, r.metric
    # every row sits in its family's file
    for stem in ("refvos", "tsg", "res", "vos"):
        for r in read_rows(LB / f"{stem}.csv"):
            assert family_of_dataset(r.dataset) == stem, (stem, r.dataset)


def test_committed_rows_have_no_duplicates(committed):
    keys = [(r.dataset, r.model, r.metric, r.protocol, r.kind, r.source) for r in committed]
    dups = {k for k in keys if keys.count(k) > 1}
    assert not dups


def test_committed_spot_checks(committed):
    r = _one(committed, dataset="mevis_val_u", model="Sa2VA-8B", metric="J&F")
    assert (r.value, r.protocol, r.kind) == (58.9, "mevis", "reported")
    assert "huggingface.co/ByteDance/Sa2VA-8B" in r.source
    assert _one(committed, dataset="charades_sta_test", model="MomentSeg-3B", metric="R@0.5").value == 58.2
    assert _one(committed, dataset="charades_sta_test", model="MomentSeg-3B", metric="mIoU").value == 50.2
    davis = _one(committed, dataset="refdavis17_val", model="Sa2VA-26B", metric="J&F")
    assert (davis.value, davis.protocol) == (78.6, "refdavis_b")
    assert _one(committed, dataset="refcoco_val", model="Sa2VA-4B", metric="cIoU").value == 82.4
    assert _one(committed, dataset="refcocog_val", model="Sa2VA-26B", metric="cIoU").value == 81.2
    assert _one(committed, dataset="revos_val", model="MomentSeg-7B", metric="J&F").value == 65.1
    ms_val = _one(committed, dataset="mevis_val", model="MomentSeg-7B", metric="J&F")
    assert (ms_val.value, ms_val.protocol) == (57.1, "server")
    pvuw = {m: _one(committed, dataset="mevis_test", model="ReferDINO-iSEE", metric=m).value for m in ("J", "F", "J&F")}
    assert pvuw == {"J": 56.79, "F": 64.07, "J&F": 60.43}
    second = _one(committed, dataset="mevis_test", model="ReferDINO-iSEE", metric="J&F")
    assert "2504.11326" in second.source and "Table 2" in second.source and "2503.23509" in second.notes
    mose = {m: _one(committed, dataset="mose_test", model="BrainyBots", metric=m).value for m in ("J", "F", "J&F")}
    assert mose == {"J": 83.59, "F": 90.92, "J&F": 87.26}
    assert not [r for r in committed if "not found" in r.notes]
    assert _one(committed, dataset="refytvos_val", model="MPG-SAM2", metric="J&F").value == 73.9
    rd = _one(committed, dataset="mevis_val", model="ReferDINO-SwinB", metric="J&F")
    assert rd.value == 49.3 and "third-party" in rd.notes


def test_pvuw_2025_tables_match_the_report(committed, shared_data):
    """The MeViS and MOSE test tables of the PVUW 2025 report (shared/REPORTED.md): top 20 each, J, F, J&F, with
    the report as source, server protocol, on the challenge splits mevis_test / mose_test."""
    import re

    path = shared_data.parent / "REPORTED.md"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    text = path.read_text()
    for dataset, heading, table in (("mevis_test", "### MeViS track (Table 2)", "Table 2"),
                                    ("mose_test", "### MOSE track (Table 1)", "Table 1")):
        section = text.split(heading, 1)[1].split("###", 1)[0]
        want = {}
        for rank, team, j, f, jf in re.findall(r"^\| (\d+) \| (.+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                                                section, flags=re.M):
            want[team] = {"J": float(j), "F": float(f), "J&F": float(jf)}
        assert len(want) == 20
        rows = select(committed, dataset=dataset)
        got: dict = {}
        for r in rows:
            got.setdefault(r.model, {})[r.metric] = r.value
            assert (r.kind, r.protocol) == ("reported", "server")
            assert r.source.startswith("arXiv 2504.11326") and table in r.source
        assert got == want, dataset
    assert family_of_dataset("mose_test") == "vos" and "mose_test" in CHALLENGE_SPLITS


def test_tables_keep_protocols_apart(committed):
    """A table ranks only rows of one protocol: Ref-DAVIS17 convention B rows sit in their own table, labelled."""
    mine = rows_from_summary(_summary(dataset="refdavis17_val", protocol="refdavis_a",
                                      metrics={"J": 70.0, "F": 80.0, "J&F": 75.0}),
                             model="prior", run_id="run-8", fingerprint="f", source="runs/8")
    rows = select(committed, dataset="refdavis17_val") + mine
    table = format_rows(rows, "table")
    blocks = table.split("\n\n")
    assert len(blocks) == 2
    a, b = (blk for blk in blocks)
    assert a.startswith("refdavis17_val, protocol refdavis_a (convention A)")
    assert b.startswith("refdavis17_val, protocol refdavis_b (convention B)")
    assert "prior" in a and "Sa2VA" not in a and "MomentSeg" not in a
    assert "prior" not in b
    # the convention is beside every number: each body line of either table names it
    for blk, conv in ((a, "convention A"), (b, "convention B")):
        body = [ln for ln in blk.splitlines()[3:] if not ln.strip().startswith("[")]
        assert body and all(conv in ln for ln in body)
    md = format_rows(rows, "markdown")
    assert "| Sa2VA-8B | reported | refdavis_b (convention B) | 75.9 |" in md


# ------------------------------------------------------------------------------------------------------
# Rows and families
# ------------------------------------------------------------------------------------------------------


def test_row_round_trip_and_checks():
    r = _reproduced(value=58.9)
    d = r.to_dict()
    assert list(d) == list(COLUMNS) and d["value"] == "58.9"
    assert Row.from_dict(d) == r
    assert Row.from_dict({**d, "value": "0.1"}).value == 0.1
    with pytest.raises(ValueError, match="percentage"):
        _reproduced(value=101.0)
    with pytest.raises(ValueError, match="run_id"):
        _reproduced(run_id="")
    with pytest.raises(ValueError, match="source"):
        Row(dataset="refcoco_val", model="m", metric="cIoU", value=50.0)
    with pytest.raises(ValueError, match="kind"):
        _reproduced(kind="guessed")
    with pytest.raises(ValueError, match="percent"):
        _reproduced(scale="fraction")


def test_families():
    assert FAMILIES == {"refvos": "refvos", "tsg": "tsg", "res": "res", "vos": "vos"}
    assert family_of("res") == "res"
    assert family_of_dataset("anet_grounding_val1") == "tsg"
    assert family_of_dataset("davis17_val") == "vos"
    with pytest.raises(ValueError):
        family_of("segmentation")
    with pytest.raises(ValueError, match="did you mean"):
        family_of_dataset("mevis_valu")


# ------------------------------------------------------------------------------------------------------
# rows_from_summary
# ------------------------------------------------------------------------------------------------------


def _summary(**kw):
    base = {
        "dataset": "mevis_val_u", "protocol": "mevis", "metrics": {"J": 50.0, "F": 25.0, "J&F": 37.5},
        "scale": "percent", "counts": {"expressions": 3},
        "provenance": {"refbench_version": "0.1.0", "date": "2026-01-02T03:04:05+00:00"},
    }
    base.update(kw)
    return base


def test_rows_from_summary():
    rows = rows_from_summary(_summary(), model="prior", run_id="run-7", fingerprint="f" * 64, source="runs/7")
    assert [(r.metric, r.value) for r in rows] == [("J", 50.0), ("F", 25.0), ("J&F", 37.5)]  # percent, as is
    r = rows[0]
    assert (r.kind, r.scale, r.protocol, r.dataset) == ("reproduced", "percent", "mevis", "mevis_val_u")
    assert (r.refbench_version, r.date, r.run_id, r.source) == ("0.1.0", "2026-01-02T03:04:05+00:00", "run-7", "runs/7")


def test_summary_on_the_old_fraction_scale_is_refused():
    old = _summary(metrics={"J": 0.5, "F": 0.25, "J&F": 0.375}, scale="fraction")
    with pytest.raises(ValueError, match=r"old fraction scale.*refbench eval --run DIR"):
        rows_from_summary(old, model="prior", run_id="run-7", fingerprint="f", source="runs/7")


def test_rows_from_percent_summary_keeps_values_and_revos_categories():
    metrics = {"J": 40.0, "F": 50.0, "J&F": 45.0, "A": 90.0, "R": 10.0,
               "J (referring)": 41.0, "J&F (referring)": 46.0, "J&F (reasoning)": 44.0, "J&F (overall)": 45.0}
    rows = rows_from_summary(_summary(dataset="revos_val", protocol="revos", metrics=metrics, scale="percent"),
                             model="prior", run_id="r", fingerprint="x", source="runs/r")
    got = {r.metric: r.value for r in rows}
    assert got == {"J": 40.0, "F": 50.0, "J&F": 45.0, "A": 90.0, "R": 10.0, "J (referring)": 41.0,
                   "J&F (referring)": 46.0, "J&F (reasoning)": 44.0}


def test_rows_from_summary_headline_only_and_errors():
    davis = _summary(dataset="davis17_val", protocol="davis_semi",
                     metrics={"J": 80.0, "F": 90.0, "J&F": 85.0, "J-Recall": 95.0, "J-Decay": 10.0})
    assert [r.metric for r in rows_from_summary(davis, "m", "r", "x", "s")] == ["J", "F", "J&F"]
    grounding = _summary(dataset="charades_sta_test", protocol="lmms-eval", scale="percent",
                         metrics={"R@0.3": 70.0, "R@0.5": 50.0, "R@0.7": 25.0, "mIoU": 45.0})
    assert {r.metric: r.value for r in rows_from_summary(grounding, "m", "r", "x", "s")}["R@0.5"] == 50.0
    with pytest.raises(ValueError, match="scale"):
        rows_from_summary(_summary(scale="ratio"), "m", "r", "x", "s")
    with pytest.raises(ValueError, match="percentage"):
        rows_from_summary(_summary(scale="percent", metrics={"J": 150.0}), "m", "r", "x", "s")
    with pytest.raises(ValueError, match="no metric"):
        rows_from_summary(_summary(), "m", "r", "x", "s", metrics=["cIoU"])


# ------------------------------------------------------------------------------------------------------
# Reading errors
# ------------------------------------------------------------------------------------------------------


def _expect_error(tmp_path, text: str, line: int, match: str):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(LeaderboardError) as info:
        read_rows(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert match in msg and "\n" not in msg


GOOD = "refcoco_val,m,cIoU,50.0,percent,,reported,arXiv 0000.00000,,,,,\n"


def test_malformed_files_name_file_and_line(tmp_path):
    _expect_error(tmp_path, "dataset,model,value\n" + GOOD, 1, "header")
    _expect_error(tmp_path, HEADER + GOOD + "refcoco_val,m,cIoU,abc,percent,,reported,src,,,,,\n", 3, "not a number")
    _expect_error(tmp_path, HEADER + GOOD + GOOD.replace("50.0", "150.0"), 3, "[0, 100]")
    _expect_error(tmp_path, HEADER + "refcoco_val,m,cIoU,50.0\n", 2, "fields")
    _expect_error(tmp_path, HEADER + GOOD.replace("refcoco_val", "refcoco_vall"), 2, "unknown dataset")
    _expect_error(tmp_path, HEADER + GOOD.replace("cIoU", "AP50"), 2, "metric")
    _expect_error(tmp_path, HEADER + GOOD.replace("arXiv 0000.00000", ""), 2, "source")
    _expect_error(tmp_path, HEADER + "\n" + GOOD.replace("reported", "measured"), 3, "kind")


def test_empty_and_header_only_files_hold_no_rows(tmp_path):
    (tmp_path / "a.csv").write_text("")
    (tmp_path / "b.csv").write_text(HEADER)
    assert read_rows(tmp_path) == []
    with pytest.raises(LeaderboardError, match="no such"):
        read_rows(tmp_path / "missing")


# ------------------------------------------------------------------------------------------------------
# Appending, also concurrently
# ------------------------------------------------------------------------------------------------------


def test_append_creates_file_with_header_and_checks_it(tmp_path):
    path = tmp_path / "sub" / "refvos.csv"
    append_rows(path, [_reproduced(value=1.0)])
    append_rows(path, [_reproduced(value=2.0, notes="a, \"quoted\" note")])
    text = path.read_text()
    assert text.startswith(HEADER) and text.count("dataset,model") == 1
    assert [r.value for r in read_rows(path)] == [1.0, 2.0]
    assert read_rows(path)[1].notes == "a, \"quoted\" note"
    other = tmp_path / "other.csv"
    other.write_text("a,b\n")
    with pytest.raises(LeaderboardError, match=":1: header"):
        append_rows(other, [_reproduced()])
    with pytest.raises(ValueError, match="unknown dataset"):
        append_rows(path, [_reproduced(dataset="nope")])


def _append_worker(path: str, worker: int, batches: int, per_batch: int) -> None:
    for b in range(batches):
        rows = [_reproduced(model=f"w{worker}", run_id=f"w{worker}-b{b}-{i}", value=float(i % 100),
                            notes="x" * 300)  # long rows: each batch is many kB
                for i in range(per_batch)]
        append_rows(path, rows)


def test_concurrent_appends_keep_every_row(tmp_path):
    path = tmp_path / "refvos.csv"
    workers, batches, per_batch = 4, 25, 20
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    procs = [ctx.Process(target=_append_worker, args=(str(path), w, batches, per_batch)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = read_rows(path)
    assert len(rows) == workers * batches * per_batch
    expected = {(f"w{w}", f"w{w}-b{b}-{i}") for w in range(workers) for b in range(batches) for i in range(per_batch)}
    assert {(r.model, r.run_id) for r in rows} == expected
    assert path.read_text().count("dataset,model,metric") == 1


# ------------------------------------------------------------------------------------------------------
# Selecting and formatting
# ------------------------------------------------------------------------------------------------------


def test_select(committed):
    assert {r.model for r in select(committed, dataset="MEVIS_VAL_U", kind="reported")} >= {"Sa2VA-8B", "MomentSeg-3B"}
    assert {r.metric for r in select(committed, model="momentseg-3b", dataset="charades_sta_test")} == {
        "R@0.3", "R@0.5", "R@0.7", "mIoU"}
    reproduced = select(committed, kind="reproduced")
    assert {(r.model, r.dataset) for r in reproduced} == {("prior", "charades_sta_test"),
                                                          ("prior[objective=miou]", "charades_sta_test")}
    # the blind TSG prior on the real Charades-STA test annotations (tests/runs/test_runner.py recomputes it)
    prior = {r.metric: r.value for r in reproduced if r.model == "prior"}
    assert prior == {"R@0.3": 33.1451612903, "R@0.5": 21.6666666667, "R@0.7": 10.4032258065, "mIoU": 21.7499518226}
    with pytest.raises(ValueError):
        select(committed, kind="other")


def test_format_rows(committed):
    rows = select(committed, dataset="mevis_val_u") + rows_from_summary(
        _summary(), model="prior", run_id="run-7", fingerprint="f", source="runs/7")
    table = format_rows(rows, "table")
    assert "mevis_val_u" in table and "58.9" in table and "62.6" in table
    lines = table.splitlines()
    header = next(line for line in lines if line.strip().startswith("model"))
    assert header.split()[:6] == ["model", "kind", "protocol", "J&F", "J", "F"]
    sa2va = next(line for line in lines if line.strip().startswith("Sa2VA-8B"))
    assert sa2va.split()[:4] == ["Sa2VA-8B", "reported", "mevis", "58.9"]
    prior = next(line for line in lines if line.strip().startswith("prior"))
    assert prior.split()[:6] == ["prior", "reproduced", "mevis", "37.5", "50.0", "25.0"]
    assert "run run-7: runs/7" in table
    # sorted by J&F, best first
    order = [line.split()[0] for line in lines if line.strip().split()[:1] in (["MomentSeg-7B"], ["Sa2VA-4B"], ["prior"])]
    assert order == ["MomentSeg-7B", "Sa2VA-4B", "prior"]

    md = format_rows(rows, "markdown")
    assert "### mevis_val_u" in md
    assert "| Sa2VA-8B | reported | mevis | 58.9 |" in md
    assert "| prior | **reproduced** | mevis | 37.5 | 50.0 | 25.0 |" in md

    csv_text = format_rows(rows, "csv")
    assert csv_text.startswith(HEADER)
    assert "mevis_val_u,Sa2VA-8B,J&F,58.9,percent,mevis,reported," in csv_text
    assert "mevis_val_u,prior,J,50.0,percent,mevis,reproduced,runs/7," in csv_text
    assert format_rows([], "table") == "(no leaderboard rows match)"
    with pytest.raises(ValueError):
        format_rows(rows, "html")


def test_csv_output_round_trips(tmp_path, committed):
    path = tmp_path / "all.csv"
    path.write_text(format_rows(committed, "csv"))
    assert read_rows(path) == committed


# ------------------------------------------------------------------------------------------------------
# Folders, command line, imports
# ------------------------------------------------------------------------------------------------------


def test_leaderboard_dirs(tmp_path, monkeypatch):
    user = tmp_path / "mine"
    user.mkdir()
    monkeypatch.setenv("REFBENCH_LEADERBOARD", str(user) + ":" + str(tmp_path / "not-yet"))
    dirs = leaderboard_dirs(extra=[tmp_path / "extra"])
    assert dirs[0].resolve() == LB.resolve()
    assert dirs[1:] == [user, tmp_path / "extra"]
    monkeypatch.delenv("REFBENCH_LEADERBOARD")
    assert [d.resolve() for d in leaderboard_dirs()] == [LB.resolve()]


def test_command(tmp_path):
    from refbench.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["leaderboard", "--dataset", "mevis_val_u", "--model", "Sa2VA-8B", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1].startswith("mevis_val_u,Sa2VA-8B,J&F,58.9,percent,mevis,reported,")
    assert len(res.output.splitlines()) == 2

    mine = tmp_path / "mine"
    append_rows(mine / "refvos.csv", rows_from_summary(_summary(), "prior", "run-7", "f", "runs/7"))
    res = runner.invoke(main, ["leaderboard", "--dir", str(mine), "--kind", "reproduced", "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert "| prior | **reproduced** | mevis | 37.5 | 50.0 | 25.0 |" in res.output
    assert "Sa2VA" not in res.output

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "res.csv").write_text(HEADER + GOOD.replace("50.0", "x"))
    # bad input is exit 2 (refbench.errors), one line, no traceback
    res = runner.invoke(main, ["leaderboard", "--dir", str(bad)])
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: {bad / 'res.csv'}:2: value 'x' is not a number"

    res = runner.invoke(main, ["leaderboard", "--dataset", "mevis_valu"])
    assert res.exit_code == 2 and "did you mean" in res.output and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(main, ["leaderboard", "--dir", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such leaderboard file or folder" in res.output


def test_import_and_formatting_do_not_load_heavy_libraries():
    code = (
        "import sys, refbench.leaderboard as lb; "
        "lb.format_rows(lb.read_rows(lb.leaderboard_dirs()), 'table'); "
        "heavy = [m for m in ('torch', 'numpy', 'pandas') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
