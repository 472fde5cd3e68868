"""Crash safety and torchrun: kill a run at random points and resume; 2 gloo processes equal 1 process."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from refbench.runs.runner import RunConfig, run
from tests.plugin_fixture import make_plugin

REPO = Path(__file__).resolve().parents[2]


def _env(demo_base: Path, extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["REFBENCH_DEMO_DIR"] = str(demo_base)
    env.pop("REFBENCH_DATA", None)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    paths = [str(REPO)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _stored(run_dir: Path) -> int:
    n = 0
    for p in sorted(run_dir.glob("part-*.sqlite")):
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            n += con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        except sqlite3.OperationalError:  # killed before the table was created
            pass
        finally:
            con.close()
    return n


def test_kill_at_random_points_then_resume(demo_base, tmp_path):
    """SIGKILL a slow run several times at random moments; the resumed run equals an uninterrupted one."""
    env = _env(demo_base)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "refbench", "run", "--model", "oracle", "--dataset", "demo_mevis_val_u",
           "--out", str(out), "--no-leaderboard", "--model-arg", "sleep=0.15"]
    rng = np.random.default_rng(1234)
    seen: list[int] = []
    partial_kills = 0
    for _attempt in range(12):
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until the run dir exists (startup: imports, adapter setup), then kill at a random moment
        t0 = time.time()
        while not out.exists() and proc.poll() is None and time.time() - t0 < 60:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.1, 1.5)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        n = _stored(out)
        seen.append(n)
        if 0 < n < 15 and proc.returncode == -signal.SIGKILL:
            partial_kills += 1
        if partial_kills >= 3 or n == 15:
            break
    assert partial_kills >= 2, f"the kills never landed mid-run: stored counts {seen}"
    assert seen == sorted(seen), f"a resumed run lost stored samples: {seen}"
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # (the exact counts: "10 reused" holds the substring "0 reused", which an earlier check tripped on)
    assert seen[-1] > 0 and f"{15 - seen[-1]} predicted, {seen[-1]} reused" in done.stdout, done.stdout
    # an uninterrupted run in another directory
    ref = run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(tmp_path / "clean")))
    assert (out / "predictions.json").read_bytes() == (tmp_path / "clean" / "predictions.json").read_bytes()
    assert json.loads((out / "summary.json").read_text())["metrics"] == ref.summary["metrics"]
    con = sqlite3.connect(out / "part-00000.sqlite")
    ids = [r[0] for r in con.execute("SELECT sample_id FROM predictions")]
    con.close()
    assert len(ids) == len(set(ids)) == 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(n: int, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240):
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={n}", "--master-addr=127.0.0.1",
           f"--master-port={_free_port()}", "-m", "refbench", "run", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_torchrun_two_gloo_processes_equal_one(demo_base, tmp_path):
    plugin = make_plugin(tmp_path / "plugin")  # a pixel-reading adapter from an entry point, in every rank
    env = _env(demo_base, plugin)
    common = ["--model", "halfplug", "--dataset", "demo_mevis_val_u", "--no-leaderboard"]
    two = _torchrun(2, common + ["--out", str(tmp_path / "two")], env, tmp_path)
    assert two.returncode == 0, two.stdout + two.stderr
    one = subprocess.run([sys.executable, "-m", "refbench", "run", *common, "--out", str(tmp_path / "one")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stderr
    a, b = tmp_path / "one", tmp_path / "two"
    assert (a / "predictions.json").read_bytes() == (b / "predictions.json").read_bytes()
    assert json.loads((a / "summary.json").read_text())["metrics"] == json.loads((b / "summary.json").read_text())["metrics"]
    # each rank wrote its own part: whole videos, disjoint, together every sample exactly once
    videos = []
    for p in sorted(b.glob("part-*.sqlite")):
        con = sqlite3.connect(p)
        rows = con.execute("SELECT sample_id, video FROM predictions").fetchall()
        con.close()
        assert rows, f"{p.name} is empty: the shard got no videos"
        videos.append({v for _s, v in rows})
    assert len(videos) == 2 and not (videos[0] & videos[1])
    assert _stored(b) == 15
    assert json.loads((b / "run.json").read_text())["provenance"]["world_size"] == 2


def test_torchrun_failure_on_one_rank_stops_all(demo_base, tmp_path):
    from refbench.cards import dataset_card

    os.environ["REFBENCH_DEMO_DIR"] = str(demo_base)
    try:
        first_video = dataset_card("demo_mevis_val_u").open().videos()[0]
    finally:
        del os.environ["REFBENCH_DEMO_DIR"]
    plugin = make_plugin(tmp_path / "plugin")
    env = _env(demo_base, plugin)
    t0 = time.time()
    res = _torchrun(2, ["--model", "halfplug", "--dataset", "demo_mevis_val_u", "--no-leaderboard", "--out",
                        str(tmp_path / "fail"), "--model-arg", f"fail_video={first_video}", "--model-arg",
                        "sleep=0.5"], env, tmp_path, timeout=180)
    elapsed = time.time() - t0
    assert res.returncode != 0
    assert f"boom on {first_video}" in res.stdout + res.stderr
    # the healthy rank stopped early instead of finishing its ~7 samples x 0.5 s and then waiting forever
    assert elapsed < 120
    assert not (tmp_path / "fail" / "summary.json").exists()


def test_shard_by_video_is_balanced_and_complete():
    from refbench.runs.dist import shard_by_video

    items = [("a", 5), ("a", 5), ("b", 1), ("c", 9), ("d", 2), ("d", 2), ("e", 3)]
    shards = shard_by_video(items, lambda x: x[0], lambda x: x[1], 2)
    assert sorted(i for s in shards for i in s) == list(range(len(items)))
    # largest video first to the least-loaded rank (ties: lowest rank): a(10)->0, c(9)->1, d(4)->1, e(3)->0,
    # b(1)->0 (13 vs 13)
    assert shards == [[0, 1, 2, 6], [3, 4, 5]]
    for s in shards:
        assert s == sorted(s)
    videos = [{items[i][0] for i in s} for s in shards]
    assert not (videos[0] & videos[1])
    assert shard_by_video(items, lambda x: x[0], lambda x: x[1], 1) == [list(range(len(items)))]
    assert shard_by_video(items[:1], lambda x: x[0], lambda x: x[1], 3) == [[0], [], []]


def test_ctrl_c_says_how_to_resume(demo_base, tmp_path):
    env = _env(demo_base)
    out = tmp_path / "int"
    cmd = [sys.executable, "-m", "refbench", "run", "--model", "oracle", "--out", str(out), "--no-leaderboard",
           "--model-arg", "sleep=0.2"]
    # a shell starting background jobs hands them SIGINT ignored, and Python then never raises KeyboardInterrupt:
    # give the child the default disposition, as a terminal would
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while _stored(out) < 2 and time.time() - t0 < 60:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    n = _stored(out)
    assert 2 <= n < 15
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"{15 - n} predicted, {n} reused" in done.stdout
