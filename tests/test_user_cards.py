"""Suites, and cards users add: $REFBENCH_CARDS folders and the refbench.datasets entry point."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml
from click.testing import CliRunner

from refbench.cards import CardError, dataset_card, dataset_cards, reload_cards
from refbench.cli import main
from refbench.suites import expand_datasets, is_multi, suite_cards
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _fresh_cards(monkeypatch, tmp_path):
    monkeypatch.delenv("REFBENCH_CARDS", raising=False)
    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(tmp_path / "demo"))
    reload_cards()
    yield
    reload_cards()


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _user_folder(tmp_path, monkeypatch, datasets=None, suites=None, adapters=None, name="mine"):
    base = tmp_path / name
    for kind, cards in (("datasets", datasets), ("suites", suites), ("adapters", adapters)):
        for card in cards or ():
            (base / kind).mkdir(parents=True, exist_ok=True)
            (base / kind / f"{card['name']}.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    monkeypatch.setenv("REFBENCH_CARDS", str(base))
    return base


def _demo_card(name: str, **changes) -> dict:
    card = yaml.safe_load((ROOT / "datasets" / "demo_charades_test.yaml").read_text())
    card.update(name=name, title=f"my copy of the demo Charades-STA test ({name})", **changes)
    return card


# ------------------------------------------------------------------------------------------------------
# Suites
# ------------------------------------------------------------------------------------------------------


def test_builtin_suites_expand_in_order_each_dataset_once():
    assert expand_datasets("refcoco_all") == ["refcoco_val", "refcoco_testA", "refcoco_testB", "refcoco+_val",
                                              "refcoco+_testA", "refcoco+_testB", "refcocog_val", "refcocog_test"]
    assert expand_datasets("res_all")[-2:] == ["reasonseg_val", "reasonseg_test"] and len(expand_datasets("res_all")) == 10
    # a list mixing a dataset and suites: suites expanded in place, a dataset already there is not repeated
    assert expand_datasets("refcocog_val, demo_all,refcoco_all") == [
        "refcocog_val", "demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val", "refcoco_val", "refcoco_testA",
        "refcoco_testB", "refcoco+_val", "refcoco+_testA", "refcoco+_testB", "refcocog_test"]
    assert expand_datasets(["mevis_val_u", "tsg_all"]) == ["mevis_val_u", "charades_sta_test", "anet_grounding_val1"]
    assert not is_multi("refcoco_val") and is_multi("refcoco_val,refcocog_val") and is_multi("tsg_all")
    assert set(suite_cards()) >= {"refcoco_all", "reasonseg_all", "res_all", "mevis_all", "tsg_all", "demo_all"}


def test_names_that_a_comma_list_cannot_hold_are_refused(tmp_path, plugin_path):
    card = _demo_card("x")
    card["name"] = "my copy"
    plugin_path(_dataset_plugin(tmp_path / "p", "my copy = refbench_dsplugin:CARD", f"CARD = {card!r}\n"))
    with pytest.raises(CardError, match="must be text without commas, spaces or slashes"):
        dataset_cards()


def test_unknown_names_and_empty_items_are_refused():
    with pytest.raises(CardError, match="unknown dataset or suite 'refcoco_al'; did you mean .*refcoco_all"):
        expand_datasets("refcoco_al")
    with pytest.raises(CardError, match="without empty ones"):
        expand_datasets("refcoco_val,,refcocog_val")
    r = _cli("run", "--dataset", "demo_al", "--no-leaderboard")
    assert r.exit_code == 2 and "did you mean demo_all" in r.output and len(r.output.strip().splitlines()) == 1


def test_datasets_show_a_suite_and_json():
    r = _cli("datasets", "show", "refcoco_all")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].startswith("refcoco_all: ") and "    refcocog_test        res " in r.output
    r = _cli("datasets", "show", "--dataset", "tsg_all", "--json", "-")
    doc = json.loads(r.stdout)
    assert doc["expanded"] == ["charades_sta_test", "anet_grounding_val1"] and doc["origin"] == "built-in"


def test_suite_cards_are_checked(tmp_path, monkeypatch):
    _user_folder(tmp_path, monkeypatch, suites=[{"name": "loop", "title": "t", "datasets": ["refcoco_val", "loop"]}])
    with pytest.raises(CardError, match=r"suite loop contains itself \(loop -> loop\)"):
        suite_cards()
    _user_folder(tmp_path, monkeypatch, name="b", suites=[{"name": "refcoco_val", "title": "t",
                                                          "datasets": ["refcocog_val"]}])
    with pytest.raises(CardError, match="has the name of a dataset card"):
        suite_cards()
    _user_folder(tmp_path, monkeypatch, name="c", suites=[{"name": "typo", "title": "t", "datasets": ["refcoco_vall"]}])
    with pytest.raises(CardError, match="'refcoco_vall' is neither a dataset card nor a suite; did you mean refcoco_val"):
        suite_cards()
    _user_folder(tmp_path, monkeypatch, name="d", suites=[{"name": "x", "title": "t", "datasets": ["refcoco_val"],
                                                          "extra": 1}])
    with pytest.raises(CardError, match=r"unknown suite card fields \['extra'\]"):
        suite_cards()
    _user_folder(tmp_path, monkeypatch, name="e", suites=[{"name": "refcoco_all", "title": "t",
                                                          "datasets": ["refcoco_val"]}])
    with pytest.raises(CardError, match="suite 'refcoco_all' is already defined by .*suites/refcoco_all.yaml"):
        suite_cards()


# ------------------------------------------------------------------------------------------------------
# $REFBENCH_CARDS
# ------------------------------------------------------------------------------------------------------


def test_a_user_dataset_card_is_listed_run_and_scored(tmp_path, monkeypatch):
    base = _user_folder(tmp_path, monkeypatch, datasets=[_demo_card("my_charades")],
                        suites=[{"name": "my_suite", "title": "mine", "datasets": ["my_charades", "demo_refcoco_val"]}])
    card = dataset_card("my_charades")
    assert card.origin == f"user folder {base}" and card.path == base / "datasets" / "my_charades.yaml"
    r = _cli("datasets", "list", "--task", "tsg")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("my_charades "))
    assert line.endswith(f"(user folder {base})")
    assert any(ln.startswith("my_suite ") and "my_charades, demo_refcoco_val" in ln for ln in r.output.splitlines())
    doc = json.loads(_cli("datasets", "list", "--json", "-").stdout)
    assert {d["name"]: d["origin"] for d in doc["datasets"]}["my_charades"] == f"user folder {base}"
    # the user's card runs end to end like a built-in one, and its suite too
    r = _cli("run", "--model", "oracle", "--dataset", "my_suite", "--no-leaderboard", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "s.json").read_text())
    assert [x["dataset"] for x in got["results"]] == ["my_charades", "demo_refcoco_val"]
    assert got["results"][0]["metrics"]["R@0.5"] == 100.0
    # the same split and model under another name: the same scores as the built-in card
    r1 = _cli("run", "--model", "prior", "--dataset", "my_charades", "--model-arg", "train=demo_charades_train",
              "--no-leaderboard", "--json", "-")
    r2 = _cli("run", "--model", "prior", "--dataset", "demo_charades_test", "--no-leaderboard", "--json", "-")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert json.loads(r1.stdout)["metrics"] == json.loads(r2.stdout)["metrics"]


def test_a_user_card_may_not_shadow_a_builtin_one(tmp_path, monkeypatch):
    base = _user_folder(tmp_path, monkeypatch, datasets=[_demo_card("refcoco_val")])
    with pytest.raises(CardError, match=r"mine/datasets/refcoco_val.yaml: dataset 'refcoco_val' is already defined "
                                        r"by .*datasets/refcoco_val.yaml; a card from REFBENCH_CARDS"):
        dataset_cards()
    r = _cli("datasets", "list")
    assert r.exit_code == 2 and str(base / "datasets" / "refcoco_val.yaml") in r.output
    assert len(r.output.strip().splitlines()) == 1
    # two user folders defining one name: refused the same way
    a = _user_folder(tmp_path, monkeypatch, datasets=[_demo_card("twice")], name="a")
    b = _user_folder(tmp_path, monkeypatch, datasets=[_demo_card("twice")], name="b")
    monkeypatch.setenv("REFBENCH_CARDS", f"{a}:{b}")
    with pytest.raises(CardError, match=r"b/datasets/twice.yaml: dataset 'twice' is already defined by .*a/datasets"):
        dataset_cards()


@pytest.mark.parametrize("change, message", [
    ({"task": "video"}, "task 'video' is not one of refvos, vos, tsg, res"),
    ({"protocol": "lmms_eval"}, "protocol 'lmms_eval' has no protocol card; did you mean lmms-eval"),
    ({"protocol": "mevis"}, "protocol mevis scores task refvos, not tsg"),
    ({"ground_truth": "private"}, "ground_truth 'private' is not one of public, server"),
    ({"ground_truth": "server"}, "needs submission.format"),
    ({"loader": "refbench.data.grounding.CharadesSTALoader"}, "is not a 'package.module:Class' reference"),
    ({"counts": {"queries": "12"}}, "counts must map names to whole numbers"),
    ({"layout": []}, "layout must be a non-empty list"),
    ({"colour": "blue"}, r"unknown card fields \['colour'\]"),
])
def test_user_cards_are_checked_like_builtin_ones(tmp_path, monkeypatch, change, message):
    card = {**_demo_card("bad_card"), **change}
    base = tmp_path / "mine"
    (base / "datasets").mkdir(parents=True)
    (base / "datasets" / "bad_card.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("REFBENCH_CARDS", str(base))
    with pytest.raises(CardError, match=message):
        dataset_cards()


def test_every_builtin_card_passes_the_user_checks():
    from refbench.cards import SUBMISSION_FORMATS, check_dataset_card
    from refbench.export import FORMATS

    assert SUBMISSION_FORMATS == FORMATS
    for card in dataset_cards().values():
        check_dataset_card(card, str(card.path))


def test_cards_folder_setting_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_CARDS", str(tmp_path / "nowhere"))
    with pytest.raises(CardError, match="REFBENCH_CARDS: .*nowhere is not a folder"):
        dataset_cards()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("REFBENCH_CARDS", str(tmp_path / "empty"))
    with pytest.raises(CardError, match="holds no datasets/, adapters/, suites/ folder"):
        dataset_cards()
    (tmp_path / "protos" / "protocols").mkdir(parents=True)
    monkeypatch.setenv("REFBENCH_CARDS", str(tmp_path / "protos"))
    with pytest.raises(CardError, match="protocol cards cannot be added"):
        dataset_cards()


def test_a_user_adapter_card(tmp_path, monkeypatch):
    from refbench.adapters.registry import adapter_card, adapter_cards

    prior = yaml.safe_load((ROOT / "adapters" / "prior.yaml").read_text())
    mine = {**prior, "name": "my_prior", "title": "the prior, under my name"}
    base = _user_folder(tmp_path, monkeypatch, adapters=[mine])
    assert adapter_card("my_prior").origin == f"user folder {base}"
    r = _cli("models", "list", "--json", "-")
    assert "my_prior" in [c["name"] for c in json.loads(r.stdout)]
    _user_folder(tmp_path, monkeypatch, adapters=[{**prior, "title": "shadow"}], name="other")
    with pytest.raises(CardError, match="adapter 'prior' is already defined by .*adapters/prior.yaml"):
        adapter_cards()


# ------------------------------------------------------------------------------------------------------
# The refbench.datasets entry point
# ------------------------------------------------------------------------------------------------------


def _dataset_plugin(base, value: str, body: str):
    pkg = base / "refbench_dsplugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    dist = base / "refbench_dsplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: refbench-dsplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[refbench.datasets]\n{value}\n")
    return base


@pytest.fixture
def plugin_path(monkeypatch):
    added = []

    def add(path):
        monkeypatch.syspath_prepend(str(path))
        added.append(path)
        reload_cards()

    yield add
    sys.modules.pop("refbench_dsplugin", None)


def test_entry_point_dataset_card_as_a_mapping_and_as_a_file(tmp_path, plugin_path):
    card = _demo_card("plug_charades")
    card.pop("name")
    (tmp_path / "plug_file.yaml").write_text(yaml.safe_dump({**card, "name": "plug_file"}))
    body = f"CARD = {card!r}\nPATH = {str(tmp_path / 'plug_file.yaml')!r}\n"
    plugin_path(_dataset_plugin(tmp_path / "p", "plug_charades = refbench_dsplugin:CARD\n"
                                                 "plug_file = refbench_dsplugin:PATH", body))
    got = dataset_card("plug_charades")
    assert got.origin == "entry point (refbench-dsplugin)" and got.task == "tsg" and got.path is None
    assert dataset_card("plug_file").path == tmp_path / "plug_file.yaml"
    r = _cli("run", "--model", "oracle", "--dataset", "plug_charades", "--no-leaderboard", "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["dataset"] == "plug_charades"


def test_entry_point_may_not_shadow_and_a_broken_one_is_named(tmp_path, plugin_path):
    card = _demo_card("x")
    card.pop("name")
    plugin_path(_dataset_plugin(tmp_path / "p", "refcoco_val = refbench_dsplugin:CARD", f"CARD = {card!r}\n"))
    with pytest.raises(CardError, match=r"entry point refcoco_val = refbench_dsplugin:CARD: dataset 'refcoco_val' "
                                        r"is already defined by .*datasets/refcoco_val.yaml"):
        dataset_cards()
    sys.modules.pop("refbench_dsplugin", None)
    plugin_path(_dataset_plugin(tmp_path / "q", "broken = refbench_dsplugin:NOPE", "X = 1\n"))
    with pytest.raises(CardError, match=r"entry point broken = refbench_dsplugin:NOPE \(refbench-dsplugin\): cannot "
                                        r"load it \(AttributeError"):
        dataset_cards()
