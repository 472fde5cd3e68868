"""Shared fixtures: where the golden data lives, and which torch devices to test on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The golden data folder: $REFBENCH_SHARED_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("REFBENCH_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip(
            "golden data not found: set REFBENCH_SHARED_DATA or place shared/data beside the checkout"
        )
    return path


def _devices() -> list:
    devs: list = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available():
            devs.append(pytest.param("cuda", marks=pytest.mark.cuda))  # pytest -m cuda: the GPU tests only
    except ImportError:  # pragma: no cover
        pass
    return devs


@pytest.fixture(params=_devices())
def device(request) -> str:
    """Every torch device present: CPU always, CUDA when a GPU is visible."""
    return request.param


@pytest.fixture(autouse=True)
def _isolated_from_the_user(tmp_path_factory, monkeypatch):
    """No test sees what a user's earlier commands left in the working directory (``runs/``,
    ``runs/leaderboards`` from ``refbench run``) or their refbench settings: each test starts in an empty folder
    of its own, without ``REFBENCH_LEADERBOARD`` / ``REFBENCH_DATA`` / ``REFBENCH_MODEL`` / ``REFBENCH_DEBUG``.
    (The README's first command, ``refbench run``, writes ``runs/`` into the checkout; the tests run after it.)"""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    for var in ("REFBENCH_LEADERBOARD", "REFBENCH_DATA", "REFBENCH_MODEL", "REFBENCH_DEBUG"):
        monkeypatch.delenv(var, raising=False)
