"""refbench env: where a model runs (pins), the environments CI builds with refbench env create, env list/check."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from refbench.adapters.registry import adapter_card
from refbench.cli import main
from refbench.envs import (EnvError, EnvSpec, env_python, python_ok, requirements, spec_for, unmet_pins,
                           worker_python)


def test_pins_and_python():
    spec = EnvSpec("e", python=">=3.10,<3.12", pins=("transformers==4.51.3", "peft==0.11.1"))
    versions = {"transformers": "4.51.3", "peft": "0.17.1"}
    assert unmet_pins(spec, versions.get) == ["peft==0.11.1 (found 0.17.1)"]
    assert unmet_pins(spec, {"transformers": "4.51.3", "peft": "0.11.1"}.get) == []
    assert unmet_pins(spec, {}.get) == ["transformers==4.51.3 (found none)", "peft==0.11.1 (found none)"]
    assert python_ok(spec, (3, 11, 7)) and python_ok(spec, (3, 10, 0))
    assert not python_ok(spec, (3, 12, 1)) and not python_ok(spec, (3, 9, 18))


def test_requirements_keep_this_torch_and_add_the_worker_runtime():
    from refbench.envs import installed_version

    spec = adapter_card("sa2va-4b").environment
    full = requirements(spec)
    assert full[0] == f"torch=={installed_version('torch')}" and "transformers==4.49.0" in full
    assert "peft==0.11.1" in full and "pycocotools>=2.0.7" in full and "av>=12" in full
    minimal = requirements(spec, torch="torch==2.6.0+cu124", minimal=True)
    assert minimal[:2] == ["torch==2.6.0+cu124", "transformers==4.49.0"] and "peft==0.11.1" not in minimal


def test_a_card_pins_the_torch_build_its_environment_needs():
    """SAM 2.1's processors import torchvision, whose wheels are built against one torch: the card's torch pins
    replace this Python's (never torchvision beside the CPU torch), --torch overrides them, torchvision is not asked
    twice; SAM 2.1 and SAM 3 share the one environment."""
    spec = adapter_card("sam2.1-hiera-tiny").environment
    assert spec.name == "sam" and spec.pinned()["torch"] == "2.14.1" and spec.pinned()["torchvision"] == "0.29.1"
    full = requirements(spec)
    assert full[:3] == ["torch==2.14.1", "torchvision==0.29.1", "transformers==5.24.0"]
    assert [r for r in full if r.startswith("torchvision")] == ["torchvision==0.29.1"]
    assert requirements(spec, torch="torch==2.14.1+cu128 torchvision==0.29.1+cu128", minimal=True)[:3] == \
        ["torch==2.14.1+cu128", "torchvision==0.29.1+cu128", "transformers==5.24.0"]
    assert {adapter_card(f"sam2.1-hiera-{v}").environment for v in ("tiny", "small", "base-plus", "large")} == \
        {spec, adapter_card("sam3").environment}


def test_cards_sharing_an_environment_declare_the_same_one():
    """`refbench env create` builds an environment from the first card naming it: a second card that declared other
    pins or packages under the same name would run against packages it never asked for."""
    from refbench.envs import env_cards

    for name, cards in env_cards().items():
        specs = {c.environment for c in cards}
        assert len(specs) == 1, (name, [c.name for c in cards])


@pytest.mark.parametrize("name", ["sam"])
def test_the_sam_environment_built_by_env_create(name):
    """CI builds it with `refbench env create sam3 --minimal --find-links /opt/pypi-more/files`."""
    from refbench.envs import check

    if not env_python(name).exists():
        pytest.skip(f"environment {name} not built (CI: REFBENCH_ENVS=.ci-envs refbench env create sam3 "
                    "--minimal --find-links /opt/pypi-more/files)")
    rep = check(name)
    assert rep.ok, rep.problems
    assert rep.versions["transformers"] == "5.24.0" and rep.versions["torch"].startswith("2.14.1")
    assert rep.versions["torchvision"].startswith("0.29.1")


def test_missing_environment_names_env_create(tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_ENVS", str(tmp_path / "none"))
    card = adapter_card("momentseg")
    if not unmet_pins(card.environment):
        pytest.skip("this Python has the momentseg pins")
    with pytest.raises(EnvError, match=r"model momentseg-3b needs transformers==4.51.3 \(found .*\) and its "
                                       r"environment momentseg does not exist at .*: create it with "
                                       r"`refbench env create momentseg-3b`"):
        worker_python(card)
    r = CliRunner().invoke(main, ["run", "--model", "momentseg", "--no-leaderboard"])
    assert r.exit_code == 2 and r.output.startswith("Error: model momentseg-3b needs transformers==4.51.3")
    assert "EnvError" not in r.output and len(r.output.strip().splitlines()) == 1
    assert spec_for("momentseg")[0].name == "momentseg"
    assert spec_for("sa2va-latest")[0].pins == ("transformers==4.57.0",)
    with pytest.raises(EnvError, match="unknown model or environment 'momentsegg'"):
        spec_for("momentsegg")
    with pytest.raises(EnvError, match="needs no environment of its own"):
        spec_for("prior")


@pytest.mark.parametrize("env,transformers", [("momentseg", "4.51.3"), ("sa2va-legacy", "4.49.0")])
def test_environments_built_by_env_create(env, transformers):
    """CI builds these with `refbench env create NAME --minimal` (uv); here: what that produced."""
    py = env_python(env)
    if not py.exists():
        pytest.skip(f"environment {env} not built (CI: REFBENCH_ENVS=.ci-envs refbench env create {env} --minimal)")
    meta = json.loads((py.parents[1] / "refbench-env.json").read_text())
    assert meta["name"] == env and meta["minimal"] is True and f"transformers=={transformers}" in meta["requirements"]
    r = CliRunner().invoke(main, ["env", "check", env])
    assert r.exit_code == 0, r.output
    assert f"transformers {transformers}" in r.output and "refbench" not in r.output.split("ok (")[0]
    listing = CliRunner().invoke(main, ["env", "list"]).output
    assert any(line.split()[:2] == [env, "built*"] for line in listing.splitlines())


def test_env_check_of_a_missing_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_ENVS", str(tmp_path))
    r = CliRunner().invoke(main, ["env", "check", "sa2va-4b"])
    assert r.exit_code == 1 and "problem: " in r.output and "refbench env create sa2va-legacy" in r.output
    r = CliRunner().invoke(main, ["env", "create", "sa2va-4b", "--python", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "cannot run it" in r.output
