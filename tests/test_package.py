"""Packaging promises: a light CLI, no shadowed top-level names, cards without Python."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def _run_py(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.strip()


def test_help_does_not_import_torch():
    code = (
        "import sys; from click.testing import CliRunner; from refbench.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "print(json.dumps(sorted(m for m in ('torch', 'cv2', 'pycocotools', 'pandas') if m in sys.modules)))"
    )
    assert json.loads(_run_py("import json; " + code)) == []


def test_import_refbench_is_light():
    assert _run_py("import sys, refbench; print('torch' in sys.modules)") == "False"


def test_card_folders_never_shadow_real_packages():
    # Run from the repository root, where a folder named like a PyPI package would win if it were a package.
    code = (
        "import importlib.util, json; "
        "print(json.dumps({n: (importlib.util.find_spec(n).origin if importlib.util.find_spec(n) else None) "
        "for n in ('datasets', 'adapters', 'leaderboards')}))"
    )
    specs = json.loads(_run_py(code))
    for name, origin in specs.items():
        assert origin is None or not origin.startswith(str(ROOT / name)), (name, origin)
    for folder in ("datasets", "adapters", "leaderboards", "protocols", "suites"):
        assert not list((ROOT / folder).rglob("*.py")), f"{folder}/ must hold no Python"


def test_every_card_folder_ships_in_the_wheel():
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from refbench.cards import KINDS

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "force-include"]
    for kind in KINDS:
        assert include.get(kind) == f"refbench/_cards/{kind}", kind


def test_cli_entry_point_and_version():
    from click.testing import CliRunner

    from refbench import __version__
    from refbench.cli import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_demo_command_without_leaderboard(tmp_path, monkeypatch):
    """`refbench demo` runs every demo run through the runner into --out; --no-leaderboard writes no rows."""
    from click.testing import CliRunner

    from refbench.cli import main
    from refbench.demo import DEMO_RUNS

    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.delenv("REFBENCH_LEADERBOARD", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--no-leaderboard", "--out", "elsewhere", "--json", "demo.json"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "demo.json").read_text())
    assert [(r["dataset"], r["model"]) for r in doc["runs"]] == list(DEMO_RUNS)
    assert all(r["run_dir"].startswith("elsewhere") and r["leaderboard"] in ("off", "none") for r in doc["runs"])
    assert doc["leaderboard"] is None and not (tmp_path / "runs").exists()
    assert "not written (--no-leaderboard)" in result.output
