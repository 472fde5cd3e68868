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
    monkeypatch.delenv("REFBENCH_DATA", raising=False)
    monkeypatch.delenv("REFBENCH_LEADERBOARD", raising=False)
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    return env
