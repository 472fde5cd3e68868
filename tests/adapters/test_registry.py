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
    with pytest.raises(ValueError, match=r"option grid='big' must be a int"):
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
