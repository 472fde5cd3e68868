"""Dataset cards: well-formed, complete, and listed without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from refbench.cards import CardError, _read_card, dataset_card, dataset_cards
from tests.conftest import ROOT

EXPECTED = {
    "mevis_train", "mevis_val", "mevis_val_u", "revos_val", "refytvos_val", "refdavis17_val", "davis17_val",
    "mose_val", "charades_sta_test", "anet_grounding_val1", "refcoco_val", "refcoco_testA", "refcoco_testB",
    "refcoco+_val", "refcoco+_testA", "refcoco+_testB", "refcocog_val", "refcocog_test", "reasonseg_val",
    "reasonseg_test",
}


def test_every_expected_card_exists():
    assert EXPECTED <= set(dataset_cards())


def test_card_fields():
    for card in dataset_cards().values():
        assert card.task in {"refvos", "vos", "tsg", "res"}, card.name
        assert card.ground_truth in {"public", "server"}, card.name
        assert ":" in card.loader and card.loader.startswith("refbench.data."), card.name
        assert card.reference.get("repo"), card.name
        if card.ground_truth == "server":
            assert card.submission and card.submission.get("format"), card.name


def test_official_counts_from_the_brief():
    assert dataset_card("mevis_val_u").counts == {"videos": 50, "expressions": 793}
    assert dataset_card("refytvos_val").counts["expressions"] == 834
    assert dataset_card("charades_sta_test").counts == {"videos": 1334, "queries": 3720}
    assert dataset_card("anet_grounding_val1").counts == {"videos": 4917, "queries": 17505}


def test_unknown_name_suggests_close_ones():
    with pytest.raises(CardError, match="did you mean mevis_val"):
        dataset_card("mevis_vall")


def test_malformed_card_is_named(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\ntitle: x\n")
    with pytest.raises(CardError, match="broken.yaml: card misses"):
        _read_card(bad)
    wrong = tmp_path / "other.yaml"
    wrong.write_text((ROOT / "datasets" / "mevis_val_u.yaml").read_text())
    with pytest.raises(CardError, match="differs from its file name"):
        _read_card(wrong)


def test_datasets_list_is_light():
    code = (
        "import sys, json; from click.testing import CliRunner; from refbench.cli import main; "
        "r = CliRunner().invoke(main, ['datasets', 'list']); assert r.exit_code == 0, r.output; "
        "print(json.dumps(['torch' in sys.modules, r.output.count(chr(10))]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    torch_loaded, lines = json.loads(out.stdout)
    from refbench.suites import suite_cards

    # a header and one line per card, then a blank line, a header and one line per suite
    assert not torch_loaded and lines == len(dataset_cards()) + 1 + 2 + len(suite_cards())


def test_check_without_root_is_one_clear_error(monkeypatch):
    from click.testing import CliRunner

    from refbench.cli import main

    monkeypatch.delenv("REFBENCH_DATA", raising=False)
    r = CliRunner().invoke(main, ["datasets", "check", "mevis_val_u"])
    assert r.exit_code == 2 and "REFBENCH_DATA" in r.output and len(r.output.strip().splitlines()) == 1


def test_every_card_loader_resolves():
    from refbench.cards import import_ref

    for card in dataset_cards().values():
        cls = import_ref(card.loader)
        assert callable(cls), card.name


def _invoke(*args):
    from click.testing import CliRunner

    from refbench.cli import main

    return CliRunner().invoke(main, list(args))


def test_datasets_check_on_real_charades(shared_data):
    root = shared_data / "charades_sta"
    r = _invoke("datasets", "check", "charades_sta_test", "--root", str(root), "--annotations-only")
    assert r.exit_code == 0, r.output
    assert "charades_sta_test: ok (videos 1,334, queries 3,720)" in r.output
    # the card lists videos/<vid>.mp4: without --annotations-only their absence is a problem, in one line
    r = _invoke("datasets", "check", "charades_sta_test", "--root", str(root))
    assert r.exit_code == 1
    want = f"problem: {root / 'videos'}: 1,334 of 1,334 videos missing (first 3MSZA.mp4); --annotations-only"
    assert want in r.output


def test_datasets_check_reports_count_mismatch_and_faults(shared_data, tmp_path):
    # the golden MeViS valid_u is a 15-expression excerpt: check must say it is not the official split
    root = tmp_path / "mevis" / "valid_u"
    root.mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        (root / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    r = _invoke("datasets", "check", "mevis_val_u", "--root", str(tmp_path / "mevis"), "--annotations-only")
    assert r.exit_code == 1
    assert "15 expressions found, the official mevis_val_u has 793" in r.output
    # a truncated Charades file: a malformed line and the count both reported, with the file named
    bad = tmp_path / "charades"
    bad.mkdir()
    lines = (shared_data / "charades_sta" / "charades_sta_test.txt").read_text().splitlines()
    (bad / "charades_sta_test.txt").write_text("\n".join(lines[:100] + ["garbage line"]) + "\n")
    (bad / "Charades_v1_test.csv").symlink_to(shared_data / "charades_sta" / "Charades_v1_test.csv")
    r = _invoke("datasets", "check", "charades_sta_test", "--root", str(bad))
    assert r.exit_code == 1 and "charades_sta_test.txt" in r.output
