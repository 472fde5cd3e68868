from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def demo_base(tmp_path_factory):
    """One generated demo for the session, shared with subprocesses through REFBENCH_DEMO_DIR."""
    from refbench.demo import ensure_demo

    base = tmp_path_factory.mktemp("demo")
    ensure_demo(base)
    return base


@pytest.fixture
def demo_env(demo_base, monkeypatch, tmp_path):
    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(demo_base))
    monkeypatch.chdir(tmp_path)
    return dict(os.environ)


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory, demo_base):
    """prior, empty and oracle runs of the three demo tasks: {(dataset, model): run dir}."""
    from refbench.runs.runner import RunConfig, run

    old = os.environ.get("REFBENCH_DEMO_DIR")
    os.environ["REFBENCH_DEMO_DIR"] = str(demo_base)
    try:
        out = tmp_path_factory.mktemp("runs")
        dirs = {}
        for ds in ("demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val"):
            for model in ("prior", "empty", "oracle"):
                d = out / ds / model
                run(RunConfig(model=model, dataset=ds, out=str(d), per_frame=ds == "demo_mevis_val_u"))
                dirs[ds, model] = d
        return dirs
    finally:
        if old is None:
            os.environ.pop("REFBENCH_DEMO_DIR", None)
        else:
            os.environ["REFBENCH_DEMO_DIR"] = old
