"""Protocol cards, their documentation and the CLI that shows them (``--protocol`` in --help, ``datasets show``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import pytest
from click.testing import CliRunner

from refbench.cards import CardError, dataset_cards
from refbench.cli import main
from refbench.protocols import (DOC, check_protocol_for, docs_file, protocol_card, protocol_cards, protocol_label,
                                protocols_for)
from tests.conftest import ROOT

DOC_TEXT = (ROOT / DOC).read_text()


def _code_protocols() -> dict[str, dict]:
    """Every protocol an evaluator accepts, with the reference it writes into summaries."""
    from refbench.evaluate import grounding, res, video
    from refbench.metrics.tsg import PROTOCOLS as TSG

    out = {p: video.REFERENCES[p] for p in video.PROTOCOLS}
    out.update({p: grounding.REFERENCES.get(p, grounding.REFERENCES["lmms-eval"]) for p in TSG})
    out.update({p: res.REFERENCES[p] for p in res.PROTOCOLS})
    return out


def test_every_evaluator_protocol_has_a_card_with_its_reference():
    cards = protocol_cards()
    code = _code_protocols()
    assert set(code) <= set(cards)
    for name, ref in code.items():
        card = cards[name]
        if ref:
            assert card.references and card.references[0] == ref, name
        else:
            assert not card.references, name
    # only server-scored protocols have no evaluator
    assert {n for n, c in cards.items() if n not in code} == {n for n, c in cards.items() if c.server}


def test_every_card_is_documented_under_a_stable_anchor():
    anchors = re.findall(r'<a id="([^"]+)"></a>', DOC_TEXT)
    assert len(anchors) == len(set(anchors))
    for name, card in protocol_cards().items():
        assert name in anchors, f"docs/protocols.md has no <a id=\"{name}\"></a>"
        assert card.doc == f"docs/protocols.md#{name}"
        section = DOC_TEXT.split(f'<a id="{name}"></a>', 1)[1].split("<a id=", 1)[0]
        for ref in card.references:  # the section cites the card's sources, commit included
            assert ref["repo"] in section, (name, ref["repo"])
            assert str(ref["commit"]) in section, (name, ref["commit"])
        assert card.metrics and card.quirks and card.official_scale in ("fraction", "percent")


def test_every_dataset_card_default_protocol_has_a_card_and_applies():
    for ds in dataset_cards().values():
        usable = protocols_for(ds)
        assert usable and usable[0].name == ds.protocol, ds.name
        assert all(p.task == ds.task for p in usable), ds.name
        if not ds.has_public_gt:
            assert len(usable) == 1, ds.name  # the server computes one protocol
        else:
            assert not any(p.server for p in usable[1:]), ds.name


def test_refdavis_conventions_are_labelled():
    names = [p.label for p in protocols_for(dataset_cards()["refdavis17_val"])]
    assert names == ["refdavis_a (convention A)", "refdavis_b (convention B)"]
    assert protocol_label("mevis") == "mevis" and protocol_label("server") == "server"
    with pytest.raises(CardError, match="does not apply to dataset mevis_val_u.*its protocols: mevis"):
        check_protocol_for(dataset_cards()["mevis_val_u"], "revos")
    with pytest.raises(CardError, match="did you mean mevis"):
        protocol_card("mevsi")


def test_code_and_docs_cite_the_repository_doc_not_a_missing_file():
    offenders = []
    for path in list((ROOT / "refbench").rglob("*.py")) + list((ROOT / "datasets").glob("*.yaml")):
        text = path.read_text()
        if "PROTOCOLS.md" in text or "PROTOCOLS section" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders
    for ref in set(re.findall(r"docs/protocols\.md#([\w-]+)", "".join(
            p.read_text() for p in (ROOT / "refbench").rglob("*.py")))):
        assert f'<a id="{ref}"></a>' in DOC_TEXT, ref


def test_wheel_ships_the_protocol_cards_and_the_doc():
    """hatch force-includes protocols/ and docs/protocols.md where refbench.protocols looks for them."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["protocols"] == "refbench/_cards/protocols"
    assert include["docs/protocols.md"] == "refbench/_docs/protocols.md"
    assert docs_file() == (ROOT / "docs" / "protocols.md").resolve()
    assert not list((ROOT / "protocols").rglob("*.py"))


def test_protocol_choices_in_help_without_torch():
    code = (
        "import sys, json; from click.testing import CliRunner; from refbench.cli import main; "
        "out = [CliRunner().invoke(main, [c, '--help']).output for c in ('eval', 'run')]; "
        "print(json.dumps([out, 'torch' in sys.modules]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    outs, torch_loaded = json.loads(proc.stdout)
    assert not torch_loaded
    for out in outs:
        flat = " ".join(out.split())
        assert "--protocol NAME" in flat
        assert "refvos: mevis, reasonvos, refdavis_a, refdavis_b, refsav, refytvos, revos;" in flat
        assert "vos: davis_semi, davis_unsup, lvos, mosev2, sav, secvos, ytvos19;" in flat
        assert "tsg: 2d-tan, default, lmms-eval, moment_detr, timechat, vtimellm; res: exact, lisa, sa2va" in flat


def test_bad_protocol_is_a_usage_error():
    r = CliRunner().invoke(main, ["eval", "--dataset", "mevis_val_u", "--pred", str(ROOT / "README.md"),
                                  "--protocol", "mevsi"])
    assert r.exit_code == 2 and "did you mean mevis" in r.output
    r = CliRunner().invoke(main, ["eval", "--dataset", "refdavis17_val", "--pred", str(ROOT / "README.md"),
                                  "--protocol", "mevis"])
    assert r.exit_code == 2
    assert ("protocol 'mevis' does not apply to dataset refdavis17_val (its protocols: refdavis_a, refdavis_b"
            in r.output)
    r = CliRunner().invoke(main, ["run", "--dataset", "demo_charades_test", "--protocol", "lisa"])
    assert r.exit_code == 2 and "does not apply to dataset demo_charades_test" in r.output


def test_datasets_show_prints_card_protocols_sources_and_quirks():
    r = CliRunner().invoke(main, ["datasets", "show", "refdavis17_val"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert out.startswith("refdavis17_val: Ref-DAVIS17 valid")
    assert "official counts videos 30" in " ".join(out.split())
    a, b = out.index("refdavis_a (convention A, default)"), out.index("refdavis_b (convention B)")
    assert a < b
    assert "wjn922/ReferFormer inference_davis.py, eval_davis.py @ 9a2d4f65e7da887b5699166be11cb5dbf865957c" in out
    assert "cilinyan/VISA tools/eval_davis17.py @ ec158fde9cdf87f702399c73618aa0f1127062e9" in out
    assert "- every bundled Sa2VA and MomentSeg Ref-DAVIS17 number uses this convention" in out
    assert "docs/protocols.md#refdavis_b" in out and str(docs_file()) in out
    r = CliRunner().invoke(main, ["datasets", "show", "charades_sta_test"])
    assert r.exit_code == 0 and "lmms-eval (default)" in r.output
    assert "IOU@3, IOU@5, IOU@7, mIOU (percent) -> shown unchanged, in percent" in r.output
    assert "timechat" in r.output and "2d-tan" in r.output
    r = CliRunner().invoke(main, ["datasets", "show", "mevis_val"])
    assert "server https://codalab" in r.output and "mevis (default)" in r.output
    assert "shown x 100" in r.output
    r = CliRunner().invoke(main, ["datasets", "show", "mevis_vall"])
    assert r.exit_code == 2 and "did you mean" in r.output and len(r.output.strip().splitlines()) == 1


def test_datasets_show_is_light():
    code = (
        "import sys, json; from click.testing import CliRunner; from refbench.cli import main; "
        "r = CliRunner().invoke(main, ['datasets', 'show', 'revos_val']); assert r.exit_code == 0, r.output; "
        "print(json.dumps('torch' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout) is False
