"""Adapters in a worker process (another interpreter): same predictions and fingerprint as in process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from refbench.adapters import registry
from refbench.adapters.base import AdapterError
from refbench.runs.runner import RunConfig, run
from tests.plugin_fixture import make_plugin

REPO = Path(__file__).resolve().parents[2]


def _header(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())["header"]


@pytest.mark.parametrize("dataset", ["demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val"])
def test_prior_in_a_worker_equals_in_process(demo_env, tmp_path, dataset):
    a = run(RunConfig(model="prior", dataset=dataset, out=str(tmp_path / "in")))
    b = run(RunConfig(model="prior", dataset=dataset, out=str(tmp_path / "worker"),
                      model_args={"python": sys.executable}))
    assert (tmp_path / "in" / "predictions.json").read_bytes() == (tmp_path / "worker" / "predictions.json").read_bytes()
    assert a.summary["metrics"] == b.summary["metrics"]
    assert _header(tmp_path / "in")["fingerprint"] == _header(tmp_path / "worker")["fingerprint"]
    cfg = json.loads((tmp_path / "worker" / "run.json").read_text())["config"]
    assert cfg["model_args"] == {"python": sys.executable}  # provenance says where it ran


@pytest.fixture
def plugin_env(demo_env, tmp_path, monkeypatch):
    plugin = make_plugin(tmp_path / "plugin")
    monkeypatch.syspath_prepend(str(plugin))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin), str(REPO)]))
    registry.adapter_cards.cache_clear()
    yield plugin
    registry.adapter_cards.cache_clear()


def test_pixel_adapter_in_a_worker(plugin_env, tmp_path):
    run(RunConfig(model="halfplug", dataset="demo_mevis_val_u", out=str(tmp_path / "in")))
    run(RunConfig(model="halfplug", dataset="demo_mevis_val_u", out=str(tmp_path / "worker"),
                  model_args={"python": sys.executable, "batch_size": 4}))
    assert (tmp_path / "in" / "predictions.json").read_bytes() == (tmp_path / "worker" / "predictions.json").read_bytes()
    diag_in = (tmp_path / "in" / "diagnostics.jsonl").read_text().splitlines()
    diag_w = (tmp_path / "worker" / "diagnostics.jsonl").read_text().splitlines()
    # the worker decoded the frames itself: same pixel statistics
    assert [json.loads(x)["diagnostics"] for x in diag_in] == [json.loads(x)["diagnostics"] for x in diag_w]


def test_worker_errors_are_clear(plugin_env, tmp_path):
    from refbench.cards import dataset_card

    video = dataset_card("demo_mevis_val_u").open().videos()[1]
    with pytest.raises(AdapterError, match=rf"model halfplug \(worker\): AdapterError: boom on {video}"):
        run(RunConfig(model="halfplug", dataset="demo_mevis_val_u", out=str(tmp_path / "f"),
                      model_args={"python": sys.executable, "fail_video": video}))
    with pytest.raises(AdapterError, match=r"exited with code 1 during setup"):
        run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(tmp_path / "g"),
                      model_args={"python": "false"}))
    with pytest.raises(AdapterError, match="does not exist"):
        run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(tmp_path / "h"),
                      model_args={"python": str(tmp_path / "no" / "python")}))
    with pytest.raises(ValueError, match="oracle reads the ground truth"):
        run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(tmp_path / "i"),
                      model_args={"python": sys.executable}))


STDIN_PLUGIN = '''
import sys, time
import numpy as np
from refbench.adapters.base import Adapter, ImagePrediction


class StdinReader(Adapter):
    """Reads stdin in setup, as transformers' trust-remote-code prompt does (ADAPTERS.md 6.3)."""

    name = "stdinreader"
    tasks = frozenset({"res"})
    needs_pixels = False

    def setup(self, context):
        t = time.perf_counter()
        self.read = sys.stdin.read()
        self.waited = time.perf_counter() - t

    def predict_image(self, requests):
        return [ImagePrediction(None if i % 2 else np.zeros(r.size, bool),
                                {"stdin": self.read, "waited": self.waited}) for i, r in enumerate(requests)]
'''


def test_worker_keeps_the_protocol_pipe_away_from_stdin(tmp_path, monkeypatch):
    """Code that reads stdin in the worker (transformers' y/N prompt does) gets an empty /dev/null at once, never
    the protocol; a None (no mask) RES prediction crosses the protocol as null."""
    from refbench.adapters.base import ImageRequest, RunContext
    from refbench.adapters.worker import WorkerAdapter

    mod = tmp_path / "stdinplug"
    mod.mkdir()
    (mod / "stdin_plugin.py").write_text(STDIN_PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(mod), str(REPO)]))
    w = WorkerAdapter("stdin_plugin:StdinReader", sys.executable, "stdinreader")
    w.setup(RunContext())
    try:
        reqs = [ImageRequest(f"s{i}", "img", "t", tmp_path / "x.jpg", (4, 6)) for i in range(3)]
        out = w.predict_payloads("res", reqs)
        assert [p is None for p, _ in out] == [False, True, False]
        assert all(d["stdin"] == "" and d["waited"] < 5 for _, d in out)
        assert [x.mask is None for x in w.predict_image(reqs)] == [False, True, False]
    finally:
        w.close()
