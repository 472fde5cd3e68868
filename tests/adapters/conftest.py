"""Fixtures of the model-adapter tests: stub checkpoints, the stub call log, a sealed Hugging Face home, the demo,
and the model environments CI builds with ``refbench env create`` (tests using one skip when it is absent)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

# Before anything imports huggingface_hub / transformers: a private, empty HF home for the whole session, so no
# test sees (or writes) the user's cache, and the dynamic-module cache of the stub checkpoints is throwaway.
HF_HOME = Path(tempfile.mkdtemp(prefix="refbench-test-hf-"))
os.environ["HF_HOME"] = str(HF_HOME)
os.environ.pop("HF_HUB_CACHE", None)
os.environ.pop("TRANSFORMERS_CACHE", None)

REPO = Path(__file__).resolve().parents[2]


def has_transformers() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


needs_transformers = pytest.mark.skipif(not has_transformers(), reason="transformers is not installed (the test "
                                        "extra pins transformers==4.57.0)")


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """Stub checkpoints: momentseg, sa2va InternVL, sa2va Qwen (in a folder whose name lacks 'qwen')."""
    from tests.adapters.stubs import write_momentseg, write_sa2va

    base = tmp_path_factory.mktemp("stubs")
    return {"momentseg": write_momentseg(base / "MomentSeg-3B"),
            "internvl": write_sa2va(base / "Sa2VA-InternVL3-2B", "internvl"),
            "qwen": write_sa2va(base / "checkpoint-7", "qwen")}


@pytest.fixture
def stub_log(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "stub-calls.jsonl"
    monkeypatch.setenv("REFBENCH_STUB_LOG", str(path))
    return path


@pytest.fixture(scope="session")
def demo_base(tmp_path_factory):
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
    return demo_base


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection in this process fails loudly; the test proves nothing tried one."""
    attempts: list[object] = []

    def refuse(self, address, *a, **kw):
        attempts.append(address)
        raise OSError(f"test: network access attempted to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def sealed_subprocess(tmp_path, monkeypatch):
    """A sitecustomize on PYTHONPATH that makes every socket connection in child processes (workers) fail and
    records it in a file; returns that file."""
    d = tmp_path / "sealed"
    d.mkdir()
    log = tmp_path / "network-attempts.txt"
    (d / "sitecustomize.py").write_text(
        "import socket\n"
        f"_LOG = {str(log)!r}\n"
        "def _refuse(self, address, *a, **kw):\n"
        "    with open(_LOG, 'a') as fh:\n"
        "        fh.write(repr(address) + '\\n')\n"
        "    raise OSError('test: network access attempted')\n"
        "socket.socket.connect = _refuse\n"
        "socket.socket.connect_ex = _refuse\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(d), str(REPO)]))
    return log


def ci_env(name: str) -> Path:
    """The interpreter of model environment ``name`` (built by .ci/run with refbench env create), or skip."""
    from refbench.envs import env_python

    py = env_python(name)
    if not py.exists():
        pytest.skip(f"model environment {name} not built at {py} (CI builds it: REFBENCH_ENVS=.ci-envs refbench env "
                    f"create {name} --minimal --find-links /opt/wheels)")
    return py
