"""The reported VOS rows: every cell of SeC's table and MomentSeg's Ref-SAV rows (shared/REPORTED.md), each in its
family's CSV with its source, read from REPORTED.md at test time."""

from __future__ import annotations


import pytest

from refbench.leaderboard import family_of_dataset, read_rows, select
from tests.conftest import ROOT, shared_data_dir

LB = ROOT / "leaderboards"
#: SeC's column headers -> dataset cards
SEC_COLUMNS = {"SA-V val": "sav_val", "SA-V test": "sav_test", "LVOS v2 val": "lvos_v2_val", "MOSE v1": "mose_val",
               "MOSE v2": "mosev2_val", "DAVIS 2017 val": "davis17_val", "YTVOS 2019 val": "ytvos19_val",
               "SeCVOS": "secvos"}


def _reported() -> str:
    data = shared_data_dir()
    path = data.parent / "REPORTED.md" if data is not None else None
    if path is None or not path.is_file():
        pytest.skip("shared/REPORTED.md not found beside the checkout")
    return path.read_text()


def _table(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|") and not set(line) <= set("|-: ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_every_cell_of_the_sec_table_is_a_row():
    rows = read_rows(LB / "vos.csv")
    table = _table(_reported(), "## SeC README")
    header, body = table[0], table[1:]
    assert header[0] == "model" and set(header[1:]) == set(SEC_COLUMNS)
    n = 0
    for cells in body:
        for col, value in zip(header[1:], cells[1:]):
            found = select(rows, dataset=SEC_COLUMNS[col], model=cells[0], metric="J&F")
            assert len(found) == 1, (cells[0], col)
            row = found[0]
            assert row.value == float(value) and row.kind == "reported" and "OpenIXCLab/SeC" in row.source
            n += 1
    assert n == len(body) * (len(header) - 1) == len([r for r in rows if "OpenIXCLab/SeC" in r.source])
    assert all(family_of_dataset(r.dataset) == "vos" for r in rows)


def test_momentseg_refsav_rows():
    rows = read_rows(LB / "refvos.csv")
    table = _table(_reported(), "## MomentSeg README: Ref-SAV")
    header, body = table[0], table[1:]
    for cells in body:
        for metric, value in zip(header[1:], cells[1:]):
            found = select(rows, dataset="refsav_val", model=cells[0], metric=metric)
            assert len(found) == 1 and found[0].value == float(value) and found[0].protocol == "refsav", cells
