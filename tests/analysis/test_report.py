"""``refbench report``: what the page holds for every task, bounded size, frames not on disk, VOS runs, and a real
headless Chromium loading it (no console errors, every image decoded, nothing fetched) with a screenshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.cli import main

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _report(*args) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["report", *map(str, args)])
    return r.exit_code, r.output


def _imgs(page: str) -> int:
    return len(re.findall(r'<img [^>]*src="data:image/jpeg;base64,', page))


@pytest.fixture
def leaderboard(tmp_path, monkeypatch):
    d = tmp_path / "lb"
    d.mkdir()
    (d / "refvos.csv").write_text(
        "dataset,model,metric,value,scale,protocol,kind,source,date,refbench_version,run_id,fingerprint,notes\n"
        "demo_mevis_val_u,PaperNet,J&F,42.5,percent,mevis,reported,https://example.org/paper Table 2,,,,,\n"
        "demo_mevis_val_u,PaperNet,J,40.0,percent,mevis,reported,https://example.org/paper Table 2,,,,,\n"
        "demo_mevis_val_u,OtherNet,J&F,77.0,percent,refdavis_b,reported,https://example.org/other,,,,,\n")
    monkeypatch.setenv("REFBENCH_LEADERBOARD", str(d))
    return d


def test_report_every_task(demo_runs, tmp_path, leaderboard):
    mevis = [demo_runs["demo_mevis_val_u", m] for m in ("prior", "empty", "oracle")]
    tsg = [demo_runs["demo_charades_test", m] for m in ("prior", "oracle")]
    res = [demo_runs["demo_refcoco_val", "prior"]]
    out = tmp_path / "r.html"
    code, text = _report(*mevis, *tsg, *res, "--out", out, "--worst", "3", "--frames", "2")
    assert code == 0, text
    page = out.read_text()
    assert "default-src 'none'" in page  # no fetch is allowed at all
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    # headline: this run's numbers beside the reported row of the same protocol only
    assert "PaperNet" in page and "42.50" in page and "OtherNet" not in page
    assert "1 reported row(s) of other protocols" in page
    # three datasets, runs of one dataset side by side
    assert page.count("<h2 ") == 3 and "demo_mevis_val_u, protocol mevis" in page
    assert "Per-sample distributions" in page and "J against F" in page and "mean J&amp;F per video" in page
    # worst samples: 3 per video dataset x 2 frames x 3 runs, RES 3 x 1 run; the curves from per_frame.csv
    assert _imgs(page) == 3 * 2 * 3 + 3 * 1
    assert "curves: per_frame.csv (the scorer&#x27;s own values)" in page
    # grounding: per-query IoU and span plots
    assert "Per-query IoU" in page and page.count("ground truth</text>") == 3
    # provenance: fingerprint, annotation sha256, official printout
    meta = json.loads((mevis[0] / "run.json").read_text())
    assert meta["header"]["fingerprint"] in page and meta["header"]["annotation_sha256"] in page
    assert "details.official" in page and "wall_seconds" in page
    assert "images" in text


def test_report_size_is_bounded_by_the_options(demo_runs, tmp_path):
    run = demo_runs["demo_mevis_val_u", "prior"]
    code, _ = _report(run, "--out", tmp_path / "big.html", "--worst", "8", "--frames", "4")
    assert code == 0
    code, _ = _report(run, "--out", tmp_path / "small.html", "--worst", "2", "--frames", "1", "--image-width", "96")
    assert code == 0
    big, small = (tmp_path / "big.html").read_text(), (tmp_path / "small.html").read_text()
    assert _imgs(big) == 8 * 4 and _imgs(small) == 2
    assert len(small) < len(big)
    code, out = _report(run, "--out", tmp_path / "x.html", "--frames", "0")
    assert code == 2 and "--frames >= 1" in out


def test_report_says_when_frames_are_not_on_disk(demo_runs, demo_base, tmp_path):
    root = tmp_path / "mevis"
    shutil.copytree(Path(demo_base) / "mevis" / "valid_u", root / "valid_u",
                    ignore=shutil.ignore_patterns("JPEGImages"))
    code, text = _report(demo_runs["demo_mevis_val_u", "prior"], "--out", tmp_path / "r.html", "--root", root,
                         "--worst", "1")
    assert code == 0, text
    assert "not on disk" in (tmp_path / "r.html").read_text() and "not on disk" in text


def test_report_vos_run(tmp_path):
    from tests.analysis.vos_data import make_davis, vos_run

    root = make_davis(tmp_path / "DAVIS")
    runs = [vos_run(tmp_path / "a", root, 1), vos_run(tmp_path / "b", root, 3, drop=2)]
    for r in runs:
        c = CliRunner().invoke(main, ["eval", "--run", str(r), "--pred", str(r / "pred"), "--json",
                                      str(r / "summary.json"), "--csv", str(r / "per_sample.csv"), "--per-frame",
                                      str(r / "per_frame.csv")])
        assert c.exit_code == 0, c.output
    code, text = _report(*runs, "--out", tmp_path / "v.html", "--worst", "2", "--frames", "3")
    assert code == 0, text
    page = (tmp_path / "v.html").read_text()
    assert "davis17_val, protocol davis_semi" in page and _imgs(page) == 2 * 3 * 2
    assert "per-frame J and F of" in page and "mean J&amp;F per video" in page


def test_report_refuses_a_folder_without_a_summary(tmp_path):
    code, out = _report(tmp_path, "--out", tmp_path / "r.html")
    assert code == 2 and "summary.json: not found" in out and len(out.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- headless browser


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH (CI installs it with apt-get install chromium in .ci/run; "
                "locally: apt-get install -y chromium)")


def _browse(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *extra, page.resolve().as_uri()]
    env = {k: v for k, v in os.environ.items() if k not in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)


def _checks(dom: str) -> dict[str, str]:
    head = re.search(r"<html[^>]*>", dom)
    assert head, dom[:300]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', head.group(0)))


def _console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


def test_report_loads_in_headless_chromium(demo_runs, tmp_path):
    page = tmp_path / "report.html"
    runs = [demo_runs["demo_mevis_val_u", m] for m in ("prior", "oracle")] + \
        [demo_runs["demo_charades_test", "prior"], demo_runs["demo_refcoco_val", "prior"]]
    code, text = _report(*runs, "--out", page)
    assert code == 0, text
    n = _imgs(page.read_text())
    assert n > 0
    r = _browse(page, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    c = _checks(r.stdout)
    assert c.get("check") == "done", c
    assert c["images"] == str(n) and c["broken"] == "0", c  # every <img> decoded: naturalWidth > 0
    assert c["errors"] == "0", c["error-text"]  # no script error, no console.error
    assert c["resources"] == "0", c  # nothing fetched
    assert _console_errors(r.stderr) == [], _console_errors(r.stderr)
    shot = tmp_path / "shot.png"
    r = _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 1600)
        import numpy as np

        assert len(np.unique(np.asarray(im.convert("L").resize((64, 80))))) > 8  # drawn, not a blank page


def test_the_browser_check_catches_broken_images_and_errors(tmp_path):
    from refbench.analysis.report import _CHECK

    bad = tmp_path / "bad.html"
    bad.write_text(f"<!DOCTYPE html><html><head><script>{_CHECK}</script></head><body>"
                   '<img src="data:image/jpeg;base64,AAAA"><script>console.error("boom");'
                   "undefinedFunction();</script></body></html>")
    r = _browse(bad, tmp_path, "--dump-dom")
    c = _checks(r.stdout)
    assert c.get("check") == "done" and c["broken"] == "1" and int(c["errors"]) >= 2, c
