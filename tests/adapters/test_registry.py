"""Adapter cards, entry points, options and fingerprints."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from refbench.adapters import registry
from refbench.adapters.registry import adapter_card, load_adapter, parse_model_args, resolve_options
from refbench.cards import CardError
from refbench.cli import main
from tests.plugin_fixture import make_plugin


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    path = make_plugin(tmp_path / "plugin")
    monkeypatch.syspath_prepend(str(path))
    registry.adapter_cards.cache_clear()
    yield path
    registry.adapter_cards.cache_clear()
    sys.modules.pop("refbench_testplugin", None)


def test_baseline_cards_and_list_command():
    cards = registry.adapter_cards()
    for name in ("oracle", "empty", "prior"):
        c = cards[name]
        assert c.tasks == ("refvos", "tsg", "res") and c.needs_pixels is False and c.origin == "card"
        assert c.code.startswith("refbench.adapters.baselines:")
    assert cards["prior"].options["objective"] == "mode" and cards["prior"].options["bins"] == 20
    out = CliRunner().invoke(main, ["models", "list"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["name", "tasks", "pixels"]
    assert any(line.split()[:3] == ["prior", "refvos,tsg,res", "no"] for line in lines)


def test_models_list_is_instant():
    code = ("import sys; from refbench.adapters.registry import list_models; names = [c.name for c in list_models()];"
            "assert 'oracle' in names; assert 'torch' not in sys.modules and 'numpy' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_model_did_you_mean():
    with pytest.raises(CardError, match=r"unknown model 'priorr'; did you mean prior"):
        adapter_card("priorr")


def test_model_args_parsing_and_types():
    assert parse_model_args(["threshold=0.3", "objective=miou", "max_train=null", "grid=32", "train=x_y"]) == {
        "threshold": 0.3, "objective": "miou", "max_train": None, "grid": 32, "train": "x_y"}
    card = adapter_card("prior")
    opts = resolve_options(card, {"grid": 32, "sleep": 1})
    assert opts["grid"] == 32 and opts["sleep"] == 1.0 and isinstance(opts["sleep"], float)
    with pytest.raises(ValueError, match=r"unknown option 'objectiv'; did you mean objective"):
        resolve_options(card, {"objectiv": "miou"})
    with pytest.raises(ValueError, match=r"model prior: --model-arg grid='big' must be int in \[1, 4096\]"):
        resolve_options(card, {"grid": "big"})
    with pytest.raises(ValueError, match="expected key=value"):
        parse_model_args(["grid"])


def test_fingerprint_tracks_output_options_only():
    a, _ = load_adapter("prior")
    b, _ = load_adapter("prior", {"sleep": 0.5, "batch_size": 4})
    c, _ = load_adapter("prior", {"objective": "miou"})
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    assert b.batch_size == 4
    e, _ = load_adapter("empty")
    assert e.fingerprint() != a.fingerprint()


def test_entry_point_adapter(plugin):
    cards = registry.adapter_cards()
    assert cards["halfplug"].origin.startswith("entry point")
    card = adapter_card("halfplug")  # imports the class to read its CARD
    assert card.tasks == ("refvos",) and card.options == {"fail_video": None, "sleep": 0.0, "rows": 0.5}
    adapter, card = load_adapter("halfplug", {"rows": 0.25})
    assert adapter.options["rows"] == 0.25 and type(adapter).__name__ == "HalfAdapter"
    out = CliRunner().invoke(main, ["models", "list"])
    assert "halfplug" in out.output and "test plugin" not in out.output  # listing does not import it


@pytest.mark.parametrize("key, value, message", [
    ("threshold", 7, r"--model-arg threshold=7 is out of range; it takes float in \[0, 1\], or auto"),
    ("threshold", "high", r"--model-arg threshold='high' must be float in \[0, 1\], or auto"),
    ("bins", -1, r"--model-arg bins=-1 is out of range; it takes int in \[1, 10000\]"),
    ("grid", -4, r"--model-arg grid=-4 is out of range"),
    ("grid", 2.5, r"--model-arg grid=2.5 must be int"),
    ("grid", True, r"--model-arg grid=True must be int"),
    ("batch_size", float("inf"), r"--model-arg batch_size=inf must be int in \[1, 1000000\]"),
    ("batch_size", 0, r"--model-arg batch_size=0 is out of range"),
    ("sleep", float("nan"), r"--model-arg sleep=nan must be float"),
    ("objective", "best", r"--model-arg objective='best' is not one of mode \| miou"),
    ("objective", None, r"--model-arg objective: null is not allowed"),
    ("max_train", 10**30, r"--model-arg max_train=1000000000000000000000000000000 must be int"),
])
def test_option_values_outside_their_spec_are_refused(key, value, message):
    with pytest.raises(ValueError, match=message):
        resolve_options(adapter_card("prior"), {key: value})


def test_option_values_inside_their_spec():
    opts = resolve_options(adapter_card("prior"), {"threshold": 1, "max_train": None, "objective": "miou",
                                                   "batch_size": 8.0, "grid": 4096})
    assert opts["threshold"] == 1.0 and isinstance(opts["threshold"], float)
    assert opts["max_train"] is None and opts["objective"] == "miou" and opts["grid"] == 4096
    assert opts["batch_size"] == 8 and isinstance(opts["batch_size"], int)
    assert resolve_options(adapter_card("prior"), {"threshold": "auto"})["threshold"] == "auto"


def test_cli_option_overflow_is_one_line(tmp_path):
    out = CliRunner().invoke(main, ["run", "--model-arg", "batch_size=1.0e+400", "--out", str(tmp_path / "r"),
                                    "--no-leaderboard"])
    assert out.exit_code != 0
    assert "--model-arg batch_size=inf must be int" in out.output and "Traceback" not in out.output
    assert not (tmp_path / "r").exists()


def test_card_default_must_satisfy_its_spec():
    from refbench.adapters.registry import _card_from_mapping

    with pytest.raises(CardError, match=r"option grid: the default 0 breaks its own spec \(int in \[1, inf\]\)"):
        _card_from_mapping({"name": "x", "title": "x", "code": "m:C", "tasks": ["refvos"],
                            "options": {"grid": {"default": 0, "type": "int", "min": 1}}}, "card x")
    with pytest.raises(CardError, match="unknown spec keys"):
        _card_from_mapping({"name": "x", "title": "x", "code": "m:C", "tasks": ["refvos"],
                            "options": {"grid": {"default": 1, "range": [0, 1]}}}, "card x")


def test_output_false_options_stay_out_of_the_fingerprint():
    a, card = load_adapter("prior")
    assert "sleep" in a.not_output_options and "grid" not in a.not_output_options
    assert card.specs["sleep"].output is False and card.specs["grid"].output is True
