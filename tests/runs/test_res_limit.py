"""`refbench run --limit N` on a RES split: the run scores the first N sentences (it raised on the SubsetLoader)."""

from __future__ import annotations

from refbench.runs.runner import RunConfig, run


def test_res_run_with_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(tmp_path / "demo"))
    res = run(RunConfig(model="prior", dataset="demo_refcoco_val", out=str(tmp_path / "r"), limit=3))
    assert res.predicted == 3 and res.summary["counts"]["scored"] == 3
