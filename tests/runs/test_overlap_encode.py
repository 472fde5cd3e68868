"""The run checks and RLE-encodes one batch on a thread while the adapter predicts the next (issue 12)."""

from __future__ import annotations

import threading

import pytest

from refbench.adapters.base import Adapter
from refbench.adapters.baselines import OracleAdapter
from refbench.runs import runner
from refbench.runs.runner import RunConfig, run


def test_encoding_on_a_thread_gives_the_same_run(demo_env, tmp_path, monkeypatch):
    threads: list[str] = []
    encode = Adapter.encode_payloads

    def spy(self, task, requests, preds):
        threads.append(threading.current_thread().name)
        return encode(self, task, requests, preds)

    monkeypatch.setattr(Adapter, "encode_payloads", spy)
    overlapped = run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(tmp_path / "a")))
    assert len(threads) == overlapped.predicted == 15
    assert threading.main_thread().name not in threads
    threads.clear()
    monkeypatch.setattr(runner, "_BASE_PREDICT_PAYLOADS", None)  # as for an adapter with its own predict_payloads
    plain = run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(tmp_path / "b")))
    assert threads == [threading.main_thread().name] * 15
    assert overlapped.summary["metrics"] == plain.summary["metrics"]
    assert (tmp_path / "a" / "predictions.json").read_bytes() == (tmp_path / "b" / "predictions.json").read_bytes()


@pytest.mark.parametrize("where", ["model", "encoder"])
def test_a_failure_keeps_every_batch_before_it(demo_env, tmp_path, monkeypatch, where):
    """The model failing on the 6th batch: the 5 before it are stored (the 5th was still encoding); the
    encoder failing on the 6th: the 5 before it are stored and the error is the encoder's. A rerun reuses them."""
    calls = {"n": 0}
    target = (OracleAdapter, "predict_video") if where == "model" else (Adapter, "encode_payloads")
    orig = getattr(*target)

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError(f"injected {where} failure")
        return orig(self, *a, **k)

    monkeypatch.setattr(*target, failing)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match=f"injected {where} failure"):
        run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(out)))
    monkeypatch.undo()
    again = run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(out)))
    assert (again.reused, again.predicted) == (5, 10)
    assert again.summary["metrics"]["J&F"] == 100.0
