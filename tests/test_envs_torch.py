"""refbench env: a card that pins torch (SAM 3's torch 2.14.1 + torchvision 0.29.1) installs its own build, --torch
replaces those pins; PEP 440 local labels meet a pin; an interpreter matching a card's Python is found."""

from __future__ import annotations

import sys

from refbench.adapters.registry import adapter_card
from refbench.envs import EnvSpec, find_python, pin_met, requirements, unmet_pins


def test_torch_from_the_cards_pins():
    spec = adapter_card("sam3").environment
    reqs = requirements(spec, minimal=True)
    assert reqs[:3] == ["torch==2.14.1", "torchvision==0.29.1", "transformers==5.24.0"]
    assert not any(r.startswith("torch==2.13") for r in reqs)  # never this interpreter's CPU torch beside torchvision
    given = requirements(spec, torch="torch==2.14.1+cu126 torchvision==0.29.1+cu126", minimal=True)
    assert given[:3] == ["torch==2.14.1+cu126", "torchvision==0.29.1+cu126", "transformers==5.24.0"]
    plain = requirements(EnvSpec("e", pins=("transformers==4.57.0",)), torch="torch==2.6.0")
    assert plain[:2] == ["torch==2.6.0", "transformers==4.57.0"]


def test_local_labels_meet_a_pin():
    assert pin_met("2.0.1", "2.0.1+cu118") and pin_met("2.0.1", "2.0.1")
    assert not pin_met("2.0.1", "2.0.10") and not pin_met("2.0.1+cu118", "2.0.1") and not pin_met("2.0.1", None)
    spec = EnvSpec("e", pins=("torch==2.14.1", "torchvision==0.29.1"))
    assert unmet_pins(spec, {"torch": "2.14.1+cu130", "torchvision": "0.29.1"}.get) == []
    assert unmet_pins(spec, {"torch": "2.13.0+cpu"}.get) == ["torch==2.14.1 (found 2.13.0+cpu)",
                                                              "torchvision==0.29.1 (found none)"]


def test_find_python_for_a_card():
    here = ".".join(map(str, sys.version_info[:2]))
    found = find_python(EnvSpec("e", python=f"=={here}"))
    assert found is None or tuple(found[1][:2]) == sys.version_info[:2]
    assert find_python(EnvSpec("e", python=">=9.0")) is None
