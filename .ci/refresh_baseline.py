"""Rewrite a CI drift baseline from real runs: every run tests/runs/test_ci_baseline.py checks, then the project's own
``refbench regress --write --tolerance 0``.

    python .ci/refresh_baseline.py OUT.json [--work DIR]

The demo is generated afresh under the work folder (so two invocations share nothing) and the golden runs read
``$REFBENCH_SHARED_DATA`` (default ``../shared/data``). Run it twice into two files and compare them byte for byte
before replacing ``.ci/baseline.json``; say why the scores changed in the commit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="baseline JSON to write (replaced)")
    parser.add_argument("--work", type=Path, help="folder for the demo and the run directories (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="refbench-baseline-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["REFBENCH_DEMO_DIR"] = str(work / "demo")
    os.environ.pop("REFBENCH_DATA", None)
    sys.path.insert(0, str(ROOT))

    from refbench.demo import ensure_demo
    from tests.conftest import shared_data_dir
    from tests.runs.test_ci_baseline import DEMO, GOLDEN, GOLDEN_ROOTS, _golden_root, _run_all

    ensure_demo(work / "demo")
    shared = shared_data_dir()
    if shared is None:
        print("golden data not found: set REFBENCH_SHARED_DATA", file=sys.stderr)
        return 2
    runs = _run_all(DEMO, work / "demo-runs")
    roots = {ds: _golden_root(shared, ds, work) for ds in GOLDEN_ROOTS}
    runs += _run_all(GOLDEN, work / "golden-runs", roots)
    if args.out.exists():
        args.out.unlink()
    cmd = [sys.executable, "-m", "refbench", "regress", "--write", "--tolerance", "0", "--baseline", str(args.out)]
    for r in runs:
        cmd += ["--run", str(r.run_dir)]
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
