"""`refbench run` end to end: baselines on the demo and the golden data, resume, export, no-GT path."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.runs.runner import RunConfig, run


def _run(*args: str) -> str:
    r = CliRunner().invoke(main, ["run", *args])
    assert r.exit_code == 0, r.output
    return r.output


def _summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def test_default_run_is_the_demo(demo_env, tmp_path):
    out = _run()
    assert "prior on demo_mevis_val_u: 15 predicted, 0 reused, 15 samples" in out
    (run_dir,) = list((tmp_path / "runs" / "demo_mevis_val_u").glob("prior-*"))
    s = _summary(run_dir)
    assert s["dataset"] == "demo_mevis_val_u" and s["protocol"] == "mevis" and s["counts"]["scored"] == 15
    assert set(s["metrics"]) == {"J", "F", "J&F"}
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "done" and meta["header"]["adapter"] == "prior"
    prov = meta["provenance"]
    for key in ("refbench_version", "git", "packages", "device", "started", "wall_seconds", "peak_rss_mib"):
        assert key in prov
    assert meta["adapter"]["fit"]["train"] == "demo_mevis_train" and meta["adapter"]["fit"]["train_samples"] == 28
    assert run_dir.name == f"prior-{meta['header']['fingerprint'][:8]}"
    from refbench.cards import dataset_card
    from refbench.evaluate.run import annotation_files, annotation_hash

    card = dataset_card("demo_mevis_val_u")
    root = card.resolve_root()
    assert s["provenance"]["annotation_sha256"] == meta["header"]["annotation_sha256"] == annotation_hash(
        annotation_files(card, root), root)
    rows = (tmp_path / "runs" / "leaderboards" / "refvos.csv").read_text().splitlines()
    assert len(rows) == 4 and all(",prior,J" in r or ",prior,F" in r for r in rows[1:])
    # the second run resumes: nothing predicted again, same numbers, no duplicate leaderboard rows
    out = _run()
    assert "0 predicted, 15 reused" in out and "rows are already in runs/leaderboards" in out
    assert _summary(run_dir)["metrics"] == s["metrics"]
    lb = CliRunner().invoke(main, ["leaderboard", "--dataset", "demo_mevis_val_u", "--format", "csv"])
    assert lb.exit_code == 0 and lb.output.count("demo_mevis_val_u,prior,") == 3, lb.output


def _gt_empty_fraction(card_name: str) -> float:
    """MeViS on an all-empty prediction: J = F = share of empty-GT frames, averaged over expressions."""
    from refbench.cards import dataset_card

    loader = dataset_card(card_name).open()
    fr = [float(np.mean([not m.any() for m in loader.gt_masks(s)])) for s in loader.samples()]
    return float(np.mean(fr))


def test_baselines_on_every_demo_task(demo_env, tmp_path):
    o = {}
    for model in ("oracle", "empty", "prior"):
        for ds in ("demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val"):
            res = run(RunConfig(model=model, dataset=ds, out=str(tmp_path / model / ds)))
            o[model, ds] = res.summary["metrics"]
    # one scale: every summary in percent
    assert o["oracle", "demo_mevis_val_u"] == {"J": 100.0, "F": 100.0, "J&F": 100.0}
    assert o["oracle", "demo_charades_test"] == {"R@0.3": 100.0, "R@0.5": 100.0, "R@0.7": 100.0, "mIoU": 100.0}
    # LISA's per-sample IoU is I / (U + 1e-5) (train_ds.py validate), so the GT itself scores gIoU just below 100
    assert o["oracle", "demo_refcoco_val"]["cIoU"] == 100.0
    assert 100 - 1e-3 < o["oracle", "demo_refcoco_val"]["gIoU"] < 100.0
    frac = _gt_empty_fraction("demo_mevis_val_u")
    assert 0 < frac < 1
    assert o["empty", "demo_mevis_val_u"]["J"] == pytest.approx(100 * frac, abs=1e-10)
    assert o["empty", "demo_mevis_val_u"]["F"] == pytest.approx(100 * frac, abs=1e-10)
    assert o["empty", "demo_charades_test"] == {"R@0.3": 0.0, "R@0.5": 0.0, "R@0.7": 0.0, "mIoU": 0.0}
    assert o["empty", "demo_refcoco_val"] == {"cIoU": 0.0, "gIoU": 0.0}
    # the prior learned something on the skewed demo spans
    assert o["prior", "demo_charades_test"]["mIoU"] > 0


def test_oracle_predictions_score_100_under_every_protocol(demo_env, tmp_path):
    from refbench.evaluate.run import evaluate

    d = tmp_path / "tsg"
    run(RunConfig(model="oracle", dataset="demo_charades_test", out=str(d)))
    for protocol in ("default", "lmms-eval", "timechat", "vtimellm", "moment_detr", "2d-tan"):
        res, _ = evaluate("demo_charades_test", d / "predictions.json", protocol=protocol)
        assert all(v == 100.0 for v in res.metrics.values()), (protocol, res.metrics)
    d = tmp_path / "res"
    run(RunConfig(model="oracle", dataset="demo_refcoco_val", out=str(d)))
    for protocol in ("lisa", "sa2va", "exact"):
        res, _ = evaluate("demo_refcoco_val", d / "predictions.json", protocol=protocol)
        assert res.metrics["cIoU"] == 100.0, protocol
        if protocol == "exact":
            assert res.metrics["gIoU"] == 100.0
        else:  # LISA adds 1e-5 to each union (Sa2VA happens to round to 1.0 here)
            assert 100 - 1e-3 < res.metrics["gIoU"] <= 100.0, protocol
    d = tmp_path / "vos"
    run(RunConfig(model="oracle", dataset="demo_mevis_val_u", out=str(d)))
    for protocol in ("mevis", "refdavis_b"):
        res, _ = evaluate("demo_mevis_val_u", d / "predictions.json", protocol=protocol)
        assert res.metrics == {"J": 100.0, "F": 100.0, "J&F": 100.0}, protocol


def test_limit_then_resume_equals_a_fresh_run(demo_env, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(a), limit=5, leaderboard=str(tmp_path / "lb")))
    assert (r1.predicted, r1.reused, r1.total) == (5, 0, 5) and r1.summary["counts"]["samples"] == 5
    assert r1.leaderboard_rows == 0 and "not added to the leaderboard" in r1.notes[0]
    r2 = run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(a)))
    assert (r2.predicted, r2.reused, r2.total) == (10, 5, 15)
    r3 = run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(b)))
    assert (a / "predictions.json").read_bytes() == (b / "predictions.json").read_bytes()
    assert r2.summary["metrics"] == r3.summary["metrics"]


def test_changed_fingerprint_is_refused(demo_env, tmp_path):
    _run("--model", "prior", "--out", "x", "--no-leaderboard")
    r = CliRunner().invoke(main, ["run", "--model", "prior", "--out", "x", "--model-arg", "grid=16"])
    assert r.exit_code == 2
    assert "Mismatch" not in r.output and "fingerprint: stored" in r.output and "--overwrite" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "prior", "--out", "x", "--model-arg", "grid=16", "--overwrite",
                                  "--no-leaderboard"])
    assert r.exit_code == 0 and "15 predicted, 0 reused" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "nope"])
    assert r.exit_code == 2 and "unknown model 'nope'" in r.output
    r = CliRunner().invoke(main, ["run", "--model", "oracle", "--dataset", "demo_mevis_val"])
    assert r.exit_code == 2 and "does not make public" in r.output


def test_no_public_gt_ends_in_a_submission_zip(demo_env, tmp_path):
    out = _run("--model", "prior", "--dataset", "demo_mevis_val", "--out", "val")
    assert "submission zip: val/submission.zip" in out
    from refbench.cards import dataset_card

    samples = dataset_card("demo_mevis_val").open().samples()
    want = sorted(f"{s.video}/{s.exp_id}/{f}.png" for s in samples for f in s.frames)
    with zipfile.ZipFile(tmp_path / "val" / "submission.zip") as z:
        assert sorted(z.namelist()) == want
    assert not (tmp_path / "val" / "summary.json").exists()


def test_export_then_eval_gives_the_run_scores(demo_env, tmp_path, monkeypatch):
    from refbench.adapters import registry
    from tests.plugin_fixture import make_plugin

    monkeypatch.syspath_prepend(str(make_plugin(tmp_path / "plugin")))
    registry.adapter_cards.cache_clear()
    try:
        res = run(RunConfig(model="halfplug", dataset="demo_mevis_val_u", out=str(tmp_path / "h")))
    finally:
        registry.adapter_cards.cache_clear()
    diag = [json.loads(x) for x in (tmp_path / "h" / "diagnostics.jsonl").read_text().splitlines()]
    assert len(diag) == 15 and all(d["diagnostics"]["first_frame_mean"] > 0 for d in diag)  # pixels were read
    r = CliRunner().invoke(main, ["export", "--run", str(tmp_path / "h"), "--format", "mevis", "--out", "sub.zip"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["eval", "--dataset", "demo_mevis_val_u", "--pred", "sub.zip", "--json", "e.json"])
    assert r.exit_code == 0, r.output
    assert json.loads(Path("e.json").read_text())["metrics"] == res.summary["metrics"]
    assert 0 < res.summary["metrics"]["J"] < 100


def test_annotations_only_root(demo_env, demo_base, tmp_path):
    """Blind adapters run where only annotations are on disk; a pixel adapter names the missing frame."""
    src = demo_base / "mevis" / "valid_u"
    root = tmp_path / "annos"
    (root / "valid_u").mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        shutil.copy(src / name, root / "valid_u" / name)
    for model in ("oracle", "empty", "prior"):
        res = run(RunConfig(model=model, dataset="demo_mevis_val_u", root=str(root), out=str(tmp_path / model),
                            model_args={"train_root": str(demo_base / "mevis")} if model == "prior" else {}))
        assert res.summary["counts"]["scored"] == 15
    assert res.summary["metrics"] == _summary_of(demo_env, tmp_path)


def _summary_of(demo_env, tmp_path) -> dict:
    return run(RunConfig(model="prior", dataset="demo_mevis_val_u", out=str(tmp_path / "with-frames"))).summary["metrics"]


def test_golden_baselines(shared_data, tmp_path):
    """Oracle and empty on the real golden annotations, through the store and the official protocols."""
    mevis = tmp_path / "mevis" / "valid_u"
    mevis.mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        (mevis / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    cases = {
        "mevis_val_u": tmp_path / "mevis",
        "revos_val": shared_data / "revos_golden",
        "reasonseg_val": shared_data / "refcoco_golden" / "reason_seg" / "ReasonSeg",
        "charades_sta_test": shared_data / "charades_sta",
    }
    got = {}
    for ds, root in cases.items():
        for model in ("oracle", "empty"):
            got[model, ds] = run(RunConfig(model=model, dataset=ds, root=str(root),
                                           out=str(tmp_path / model / ds))).summary["metrics"]
    assert got["oracle", "mevis_val_u"] == {"J": 100.0, "F": 100.0, "J&F": 100.0}
    assert got["oracle", "charades_sta_test"]["mIoU"] == 100.0
    assert got["oracle", "reasonseg_val"]["cIoU"] == 100.0
    assert got["oracle", "reasonseg_val"]["gIoU"] == pytest.approx(100.0, abs=1e-3)  # LISA's I / (U + 1e-5)
    rv = got["oracle", "revos_val"]
    assert rv["J"] == rv["F"] == rv["J&F"] == 100.0
    # Official ReVOS quirk (docs/protocols.md#revos): A and R use the raw GT values, and overlapping objects sum to 2,
    # so even the ground truth scores below 100 on A and R in eval_revos.py.
    assert rv["A"] < 100.0 and rv["R"] < 100.0
    # MeViS empty: J = F = share of empty-GT frames averaged over expressions (independent count)
    from refbench.data.mevis import MevisLoader

    loader = MevisLoader(tmp_path / "mevis", "valid_u")
    frac = float(np.mean([np.mean([not m.any() for m in loader.gt_masks(s)]) for s in loader.samples()]))
    assert got["empty", "mevis_val_u"]["J"] == pytest.approx(100 * frac, abs=1e-10)


def test_blind_prior_on_charades_sta_test(shared_data, tmp_path):
    """The leaderboard's blind TSG prior, recomputed independently with numpy from the annotation files."""
    root = shared_data / "charades_sta"
    res = run(RunConfig(model="prior", dataset="charades_sta_test", root=str(root), out=str(tmp_path / "p")))

    def read(split):
        dur = {}
        for line in (root / f"Charades_v1_{split}.csv").read_text().splitlines()[1:]:
            pass
        import csv

        with open(root / f"Charades_v1_{split}.csv", newline="") as fh:
            dur = {r["id"]: float(r["length"]) for r in csv.DictReader(fh)}
        out = []
        for line in (root / f"charades_sta_{split}.txt").read_text().splitlines():
            if not line.strip():
                continue
            head = line.split("##")[0].split()
            out.append((float(head[1]), float(head[2]), dur[head[0]]))
        return out

    train = [(s / d, e / d) for s, e, d in read("train") if e >= s]
    bins = 20
    counts: dict[tuple[int, int], int] = {}
    for s, e in train:
        i = int(np.rint(min(max(s, 0), 1) * bins))
        j = int(np.rint(min(max(e, 0), 1) * bins))
        j = min(max(j, i + 1), bins)
        i = min(i, j - 1)
        counts[i, j] = counts.get((i, j), 0) + 1
    best = max(sorted(counts), key=lambda k: counts[k])
    ious = []
    for gs, ge, d in read("test"):
        ps, pe = best[0] / bins * d, best[1] / bins * d
        den = max(pe, ge) - min(ps, gs)
        ious.append(max(min(pe, ge) - max(ps, gs), 0) / den if den > 0 else 0.0)
    ious = np.array(ious)
    m = res.summary["metrics"]
    assert len(ious) == 3720
    for t in (0.3, 0.5, 0.7):
        assert m[f"R@{t}"] == pytest.approx(100 * np.mean(ious >= t), abs=1e-9)
    assert m["mIoU"] == pytest.approx(100 * ious.mean(), abs=1e-9)
    assert best == (0, 4)  # [0, 0.2] of the video: Charades-STA moments start early


def test_committed_prior_row_is_reproduced(shared_data, tmp_path):
    """The reproduced leaderboard rows of the blind TSG prior match a fresh run, to the CSV's 10 decimals."""
    from refbench.leaderboard import format_value, leaderboard_dirs, read_rows, select

    root = shared_data / "charades_sta"
    for label, args in (("prior", {}), ("prior[objective=miou]", {"objective": "miou"})):
        res = run(RunConfig(model="prior", dataset="charades_sta_test", root=str(root), model_args=args,
                            out=str(tmp_path / label)))
        rows = select(read_rows(leaderboard_dirs()[:1]), dataset="charades_sta_test", model=label, kind="reproduced")
        assert {r.metric: r.value for r in rows} == {k: float(format_value(v)) for k, v in res.summary["metrics"].items()}


def test_eval_rescores_a_run_with_another_protocol(demo_env, tmp_path):
    """`refbench eval --run DIR` takes the run's dataset, root and predictions; --protocol changes the rules."""
    res = run(RunConfig(model="prior", dataset="demo_charades_test", out=str(tmp_path / "p")))
    r = CliRunner().invoke(main, ["eval", "--run", str(tmp_path / "p"), "--json", "same.json"])
    assert r.exit_code == 0, r.output
    assert json.loads(Path("same.json").read_text())["metrics"] == res.summary["metrics"]
    r = CliRunner().invoke(main, ["eval", "--run", str(tmp_path / "p"), "--protocol", "2d-tan", "--json", "tan.json"])
    assert r.exit_code == 0, r.output
    assert json.loads(Path("tan.json").read_text())["protocol"] == "2d-tan"
    r = CliRunner().invoke(main, ["eval", "--run", str(tmp_path)])
    assert r.exit_code == 2 and "run.json: not a refbench run" in r.output
    r = CliRunner().invoke(main, ["eval", "--dataset", "demo_charades_test"])
    assert r.exit_code == 2 and "give --dataset and --pred, or --run DIR" in r.output


def test_frames_are_prefetched_while_the_model_works(demo_env, tmp_path, monkeypatch):
    """A pixel adapter finds the next requests' frames already decoded by the prefetch thread."""
    import time

    from refbench.adapters import registry
    from refbench.adapters.base import Adapter, VideoPrediction

    seen: list[tuple[int, int]] = []

    class Slow(Adapter):
        name = "slow"
        tasks = frozenset({"refvos"})
        needs_pixels = True

        def predict_video(self, requests):
            out = []
            for r in requests:
                seen.append((len(r.frames._cache), len(r.frames)))
                time.sleep(0.05)
                r.frames[0]
                out.append(VideoPrediction(np.zeros((len(r.frames), *r.size), bool)))
            return out

    card = registry.AdapterCard(name="slow", title="test", code="x:Slow", tasks=("refvos",))
    monkeypatch.setattr(registry, "load_adapter", lambda name, overrides=None: (Slow(**(overrides or {})), card))
    res = run(RunConfig(model="slow", dataset="demo_mevis_val_u", out=str(tmp_path / "s")))
    assert res.predicted == 15 and len(seen) == 15
    preloaded = [cached == total for cached, total in seen[1:]]
    assert sum(preloaded) >= 12, seen  # all but the first request (and at most two stragglers) waited on no I/O


def test_prior_on_activitynet_learns_from_train_json(tmp_path):
    """anet_grounding_val1 -> anet_grounding_train in the same root; a root smaller than the official split
    is scored but kept out of the leaderboard."""
    train = {f"v_tr{i}": {"duration": 100.0, "timestamps": [[10.0, 30.0], [12.0, 31.0]],
                          "sentences": ["a", "b"]} for i in range(5)}
    val = {"v_va0": {"duration": 50.0, "timestamps": [[5.0, 15.0]], "sentences": ["c"]},
           "v_va1": {"duration": 200.0, "timestamps": [[100.0, 180.0]], "sentences": ["d"]}}
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "val_1.json").write_text(json.dumps(val))
    res = run(RunConfig(model="prior", dataset="anet_grounding_val1", root=str(tmp_path), out=str(tmp_path / "r"),
                        leaderboard=str(tmp_path / "lb")))
    spans = json.loads((tmp_path / "r" / "predictions.json").read_text())
    # mode of the normalised train spans on 20 bins: (0.10, 0.30) -> scaled by each val duration
    assert spans == {"v_va0_0": [[5.0, 15.0]], "v_va1_0": [[20.0, 60.0]]}
    assert res.summary["metrics"]["R@0.5"] == 50.0
    assert res.leaderboard_rows == 0 and "official split 17,505" in res.notes[0]


def test_refdavis17_both_conventions_annotations_only(tmp_path):
    """The oracle on a Ref-DAVIS17 root without JPEGs scores 100 under conventions A and B; the run exports the
    convention A palette tree."""
    from tests.evaluate.test_refdavis_a import make_refdavis_root

    make_refdavis_root(tmp_path / "d")
    for sub in list((tmp_path / "d").rglob("JPEGImages")):
        shutil.rmtree(sub)
    for proto in ("refdavis_a", "refdavis_b"):
        res = run(RunConfig(model="oracle", dataset="refdavis17_val", root=str(tmp_path / "d"), protocol=proto,
                            out=str(tmp_path / proto)))
        assert (res.summary["metrics"]["J"], res.summary["metrics"]["F"], res.summary["metrics"]["J&F"]) == (100.0,) * 3
    r = CliRunner().invoke(main, ["export", "--run", str(tmp_path / "refdavis_a"), "--out", str(tmp_path / "a.zip")])
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        names = z.namelist()
    assert names and all(n.split("/")[0] in ("anno_0", "anno_1", "anno_2", "anno_3") for n in names)
    assert len({n.split("/")[0] for n in names}) == 4
