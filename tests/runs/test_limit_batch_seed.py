"""refbench run --limit (a count or a fraction), --batch-size and --seed."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.adapters import registry
from refbench.cli import main
from refbench.runs.runner import RunConfig, RunError, limit_count, run

REPO = Path(__file__).resolve().parents[2]


def test_limit_count_whole_numbers_and_fractions():
    assert [limit_count(n, 793) for n in (1, 10, 793, 5000)] == [1, 10, 793, 793]
    assert limit_count(0.1, 793) == 80  # ceil(79.3), the first 80: lmms-eval's rule
    assert limit_count(0.5, 12) == 6 and limit_count(0.001, 12) == 1 and limit_count(5.0, 12) == 5
    for bad in (0, -3, 1.5, 0.0, -0.5, True, "3"):
        with pytest.raises(RunError):
            limit_count(bad, 10)


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_fractional_limit_is_the_first_share_and_partial(demo_env, tmp_path):
    r = _cli("run", "--model", "prior", "--dataset", "demo_charades_test", "--limit", "0.25", "--out", tmp_path / "a",
             "--no-leaderboard", "--json", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "a.json").read_text())
    assert summary["run"]["samples"] == 3 and summary["partial"] is True  # ceil(0.25 * 12)
    assert "PARTIAL" in r.output and "--limit 0.25: scored 3 of 12 samples" in r.output
    full = [json.loads(x)["sample_id"] for x in (tmp_path / "a" / "diagnostics.jsonl").read_text().splitlines()]
    r = _cli("run", "--model", "prior", "--dataset", "demo_charades_test", "--limit", "3", "--out", tmp_path / "b",
             "--no-leaderboard")
    same = [json.loads(x)["sample_id"] for x in (tmp_path / "b" / "diagnostics.jsonl").read_text().splitlines()]
    assert full == same  # a fraction and a count that mean the same take the same samples
    cfg = json.loads((tmp_path / "a" / "run.json").read_text())["config"]
    assert cfg["limit"] == 0.25 and cfg["seed"] == 0 and cfg["batch_size"] is None


@pytest.mark.parametrize("dataset", ["demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val"])
def test_limit_works_on_every_task(demo_env, tmp_path, dataset):
    # RES used to refuse the run's subset loader ("evaluate_res needs a RefCOCOLoader ..., got SubsetLoader")
    r = _cli("run", "--model", "prior", "--dataset", dataset, "--limit", "3", "--out", tmp_path / "x",
             "--no-leaderboard", "--json", "-")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["run"]["samples"] == 3 and summary["partial"] is True
    assert len((tmp_path / "x" / "per_sample.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.parametrize("value, message", [("0", "must be >= 1"), ("1.5", "a fraction must lie between 0 and 1"),
                                            ("ten", "expected a number of samples or a fraction")])
def test_bad_limit_is_bad_usage(demo_env, value, message):
    r = _cli("run", "--limit", value, "--no-leaderboard")
    assert r.exit_code == 2 and message in r.output


def test_batch_size_changes_neither_predictions_nor_fingerprint(demo_env, tmp_path):
    calls = []
    from refbench.adapters.baselines import PriorAdapter

    real = PriorAdapter.predict_grounding

    def counting(self, requests):
        calls.append(len(requests))
        return real(self, requests)

    PriorAdapter.predict_grounding = counting
    try:
        run(RunConfig(model="prior", dataset="demo_charades_test", out=str(tmp_path / "one")))
        one = list(calls)
        calls.clear()
        run(RunConfig(model="prior", dataset="demo_charades_test", out=str(tmp_path / "five"), batch_size=5))
    finally:
        PriorAdapter.predict_grounding = real
    assert one == [1] * 12 and calls == [5, 5, 2]
    assert (tmp_path / "one" / "predictions.json").read_bytes() == (tmp_path / "five" / "predictions.json").read_bytes()
    head = [json.loads((tmp_path / d / "run.json").read_text())["header"]["fingerprint"] for d in ("one", "five")]
    assert head[0] == head[1]
    assert _cli("run", "--batch-size", "0").exit_code == 2


SEED_PLUGIN = '''
import random

import numpy as np

from refbench.adapters.base import Adapter, GroundingPrediction


class SeedAdapter(Adapter):
    """Test plugin: draws from random, NumPy and torch in setup and reports them (and the context's seed)."""

    name = "seedplug"
    tasks = frozenset({"tsg"})
    needs_pixels = False
    CARD = {"title": "test plugin: seeds", "tasks": ["tsg"], "needs_pixels": False, "options": {}}

    def setup(self, context):
        import torch

        self.drawn = {"seed": context.seed, "random": random.random(), "numpy": float(np.random.random()),
                      "torch": float(torch.rand(1))}

    def predict_grounding(self, requests):
        return [GroundingPrediction([(0.0, 1.0)], diagnostics=dict(self.drawn)) for _ in requests]
'''


@pytest.fixture
def seed_plugin(demo_env, tmp_path, monkeypatch):
    base = tmp_path / "seedplugin"
    (base / "refbench_seedplugin").mkdir(parents=True)
    (base / "refbench_seedplugin" / "__init__.py").write_text(textwrap.dedent(SEED_PLUGIN))
    dist = base / "refbench_seedplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: refbench-seedplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[refbench.adapters]\nseedplug = refbench_seedplugin:SeedAdapter\n")
    monkeypatch.syspath_prepend(str(base))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(base), str(REPO)]))
    registry.adapter_cards.cache_clear()
    yield base
    registry.adapter_cards.cache_clear()
    sys.modules.pop("refbench_seedplugin", None)


def _drawn(run_dir: Path) -> dict:
    return json.loads((run_dir / "diagnostics.jsonl").read_text().splitlines()[0])["diagnostics"]


def test_seed_reaches_the_adapter_in_process_and_in_a_worker(seed_plugin, tmp_path):
    import random

    import numpy as np
    import torch

    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    want = {"seed": 7, "random": random.random(), "numpy": float(np.random.random()), "torch": float(torch.rand(1))}
    r = _cli("run", "--model", "seedplug", "--dataset", "demo_charades_test", "--seed", "7", "--out", tmp_path / "in",
             "--no-leaderboard")
    assert r.exit_code == 0, r.output
    assert _drawn(tmp_path / "in") == want
    r = _cli("run", "--model", "seedplug", "--dataset", "demo_charades_test", "--seed", "7", "--out", tmp_path / "w",
             "--no-leaderboard", "--model-arg", f"python={sys.executable}")
    assert r.exit_code == 0, r.output
    assert _drawn(tmp_path / "w") == want  # the worker process is seeded the same way
    assert json.loads((tmp_path / "w" / "run.json").read_text())["config"]["seed"] == 7
    r = _cli("run", "--model", "seedplug", "--dataset", "demo_charades_test", "--seed", "8", "--out", tmp_path / "8",
             "--no-leaderboard")
    assert _drawn(tmp_path / "8")["random"] != want["random"]
