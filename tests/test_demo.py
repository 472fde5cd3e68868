"""The generated demo datasets: deterministic, built once and atomically, read unchanged by the real loaders."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from refbench.cards import dataset_card, dataset_cards, demo_dir
from refbench.demo import MARKER, DemoError, build_demo, demo_digest, ensure_demo, is_complete, read_marker
from tests.conftest import ROOT

DEMO_CARDS = (
    "demo_mevis_train", "demo_mevis_val_u", "demo_mevis_val", "demo_charades_train", "demo_charades_test",
    "demo_refcoco_train", "demo_refcoco_val",
)


def _usable(name: str) -> None:
    """Skip a card whose loader refuses its split (RefCOCOLoader scores only val/testA/testB so far)."""
    if name == "demo_refcoco_train":
        from refbench.data.res import EVAL_SPLITS

        if "train" not in EVAL_SPLITS[("refcoco", "unc")]:
            pytest.skip("RefCOCOLoader does not accept split 'train' yet (refbench.data.res.EVAL_SPLITS)")


@pytest.fixture(scope="module")
def demo_base(tmp_path_factory):
    """One demo build for the module, found through $REFBENCH_DEMO_DIR (no REFBENCH_DATA needed)."""
    base = tmp_path_factory.mktemp("demo") / "v1"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFBENCH_DEMO_DIR", str(base))
        mp.delenv("REFBENCH_DATA", raising=False)
        yield base


@pytest.fixture(scope="module")
def reference_digest(tmp_path_factory) -> str:
    target = tmp_path_factory.mktemp("reference") / "demo"
    return build_demo(target)


def test_cards_are_the_generated_demo():
    cards = dataset_cards()
    for name in DEMO_CARDS:
        card = cards[name]
        assert card.generate == "refbench.demo:ensure_demo", name
        assert card.counts and "generated demo" in (card.notes or ""), name
    assert dataset_card("demo_mevis_val").ground_truth == "server"
    assert dataset_card("demo_mevis_val").submission["format"] == "mevis"
    assert dataset_card("demo_mevis_val_u").protocol == "mevis"
    assert dataset_card("demo_charades_test").protocol == "lmms-eval"
    assert dataset_card("demo_refcoco_val").protocol == "lisa"
    assert dataset_card("mevis_val_u").generate is None


def test_nothing_is_generated_on_import_or_listing(tmp_path):
    where = tmp_path / "demo"
    code = (
        "import refbench.demo, refbench.cards; from click.testing import CliRunner; from refbench.cli import main; "
        "assert CliRunner().invoke(main, ['datasets', 'list']).exit_code == 0"
    )
    env = {**os.environ, "REFBENCH_DEMO_DIR": str(where)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    assert not where.exists() and not list(tmp_path.iterdir())


def test_demo_dir_default_and_explicit_root(monkeypatch, tmp_path):
    monkeypatch.delenv("REFBENCH_DEMO_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert demo_dir() == tmp_path / "cache" / "refbench" / "demo" / "v1"
    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(tmp_path / "mine"))
    assert demo_dir() == tmp_path / "mine"
    # an explicit --root wins and builds nothing
    assert dataset_card("demo_mevis_val_u").resolve_root(tmp_path / "x") == tmp_path / "x"
    assert not (tmp_path / "mine").exists() and not (tmp_path / "cache").exists()


def test_generation_is_deterministic(demo_base, reference_digest):
    root = dataset_card("demo_mevis_val_u").resolve_root()
    assert root == demo_base / "mevis" and is_complete(demo_base)
    marker = read_marker(demo_base)
    assert demo_digest(demo_base) == reference_digest == marker["sha256"]
    assert marker["files"] == sum(1 for p in demo_base.rglob("*") if p.is_file() and p.name != MARKER)
    # JSON is written with sorted keys and fixed separators
    meta = (demo_base / "mevis" / "valid_u" / "meta_expressions.json").read_bytes()
    assert meta == json.dumps(json.loads(meta), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("name", DEMO_CARDS)
def test_loaders_read_every_split_with_the_card_counts(demo_base, name):
    from refbench.data.check import found_counts

    _usable(name)
    card = dataset_card(name)
    samples = card.open().samples()
    found = found_counts(card, samples)
    assert {k: found[k] for k in card.counts} == card.counts


@pytest.mark.parametrize("name", DEMO_CARDS)
def test_check_dataset_finds_no_problem(demo_base, name):
    from refbench.data.check import check_dataset

    _usable(name)
    problems, notes, found = check_dataset(dataset_card(name))
    assert problems == [] and notes == []
    assert found == dataset_card(name).counts


def test_datasets_check_command_needs_no_data_root(demo_base):
    from click.testing import CliRunner

    from refbench.cli import main

    r = CliRunner().invoke(main, ["datasets", "check", "demo_mevis_val_u"])
    assert r.exit_code == 0, r.output
    assert "demo_mevis_val_u: ok (videos 4, expressions 15)" in r.output


def test_mevis_gt_masks_shapes_union_and_frames(demo_base):
    from refbench.cards import dataset_card
    from refbench.data.mevis import image_size

    loader = dataset_card("demo_mevis_val_u").open()
    samples = loader.samples()
    multi = [s for s in samples if len(s.anno_ids) > 1]
    assert multi and all(s.anno_ids and len(s.anno_ids) == len(s.obj_ids) for s in samples)
    partly_empty = 0
    for s in samples:
        gt = loader.gt_masks(s)
        assert gt.dtype == np.uint8 and gt.shape == (len(s.frames), 160, 240)
        assert image_size(loader.frame_paths(s)[0]) == (160, 240)
        assert gt.max() == 1  # visible masks: objects never overlap, so the sum is the union
        present = gt.reshape(len(s.frames), -1).any(axis=1)
        partly_empty += bool(present.any() and not present.all())
    assert partly_empty >= 1  # some target leaves or enters the frame
    for s in multi:
        parts = [loader.gt_masks(dataclasses.replace(s, anno_ids=(a,))) for a in s.anno_ids]
        union = np.logical_or.reduce([p > 0 for p in parts])
        np.testing.assert_array_equal(loader.gt_masks(s) > 0, union)
        assert all(union.sum() > p.sum() for p in parts)
    # the masks are where the shapes are drawn: their pixels have the object's flat colour, not the background
    from PIL import Image

    from refbench.demo import COLOURS

    palette = np.array(list(COLOURS.values()), dtype=np.int64)
    s = next(s for s in samples if len(s.anno_ids) == 1)
    gt = loader.gt_masks(s)
    t = int(np.argmax(gt.reshape(len(s.frames), -1).sum(axis=1)))
    rgb = np.asarray(Image.open(loader.frame_paths(s)[t]).convert("RGB"), dtype=np.int64)
    inside = np.median(rgb[gt[t] > 0], axis=0)
    assert np.abs(palette - inside).sum(axis=1).min() < 30


def test_mevis_valid_has_no_public_gt(demo_base):
    loader = dataset_card("demo_mevis_val").open()
    assert not loader.has_gt and not (loader.root / "valid" / "mask_dict.json").exists()
    assert all(not s.anno_ids for s in loader.samples())
    assert all(p.is_file() for s in loader.samples() for p in loader.frame_paths(s))


def test_charades_spans_are_skewed_and_valid(demo_base):
    for name in ("demo_charades_train", "demo_charades_test"):
        queries = dataset_card(name).open().samples()
        assert all(0 <= q.span[0] < q.span[1] <= q.duration for q in queries)
        starts = np.array([q.span[0] / q.duration for q in queries])
        assert starts.mean() < 0.3 and np.median(starts) < 0.25  # a blind prior has something to learn


def test_refcoco_masks_and_images(demo_base):
    loader = dataset_card("demo_refcoco_val").open()
    for s in loader.samples():
        gt = loader.gt_mask(s)
        assert gt.shape == (s.height, s.width) and 0 < gt.sum() and gt.max() == 1
        assert loader.image_path(s).is_file()
    refs = loader.data().refs
    assert {r["split"] for r in refs} == {"train", "val"}


def test_interrupted_build_is_rebuilt(tmp_path, reference_digest):
    base = tmp_path / "demo"
    # a build killed half-way: a partial folder without marker and a temporary folder beside it
    (base / "mevis" / "train").mkdir(parents=True)
    (base / "mevis" / "train" / "meta_expressions.json").write_text('{"videos": {')
    left = tmp_path / ".demo.tmp-12345"
    (left / "mevis").mkdir(parents=True)
    assert not is_complete(base)
    assert ensure_demo(base) == base and is_complete(base)
    assert demo_digest(base) == reference_digest and not left.exists()
    # a marker of another format is a stale build: rebuilt too
    marker = json.loads((base / MARKER).read_text())
    (base / MARKER).write_text(json.dumps({**marker, "format": 0}))
    (base / "charades_sta" / "charades_sta_test.txt").write_text("damaged\n")
    ensure_demo(base)
    assert is_complete(base) and demo_digest(base) == reference_digest
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo.lock", "demo"]


def test_incomplete_folder_with_other_files_is_left_alone(tmp_path):
    base = tmp_path / "demo"
    base.mkdir()
    (base / "thesis.tex").write_text("keep me")
    with pytest.raises(DemoError, match="thesis.tex"):
        ensure_demo(base)
    assert (base / "thesis.tex").read_text() == "keep me"


def test_existing_empty_folder_is_used(tmp_path, reference_digest):
    base = tmp_path / "demo"
    base.mkdir()
    assert ensure_demo(base) == base and demo_digest(base) == reference_digest


def test_concurrent_builds_give_one_complete_dataset(tmp_path, reference_digest):
    base = tmp_path / "demo"
    code = textwrap.dedent(
        f"""
        import sys
        from refbench.demo import ensure_demo
        sys.stdin.readline()  # start together
        print(ensure_demo({str(base)!r}))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [str(base), str(base)]
    assert is_complete(base) and demo_digest(base) == reference_digest
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def _write_png_predictions(loader, out: Path, empty: bool) -> list[float]:
    """Write ``<video>/<exp_id>/<frame>.png`` ('L', 0/255): the GT, or all-empty masks. Returns per expression
    the fraction of frames whose GT is empty (the J and F of an empty prediction: empty/empty scores 1)."""
    from PIL import Image

    fractions = []
    for s in loader.samples():
        gt = loader.gt_masks(s)
        folder = out / s.video / s.exp_id
        folder.mkdir(parents=True)
        for frame, m in zip(s.frames, gt):
            png = np.zeros(m.shape, np.uint8) if empty else np.where(m > 0, 255, 0).astype(np.uint8)
            Image.fromarray(png, "L").save(folder / f"{frame}.png")
        fractions.append(float(np.mean(~gt.reshape(len(gt), -1).any(axis=1))))
    return fractions


def test_ground_truth_as_prediction_scores_one(demo_base, tmp_path):
    from refbench.evaluate.run import evaluate

    loader = dataset_card("demo_mevis_val_u").open()
    _write_png_predictions(loader, tmp_path / "pred", empty=False)
    result, summary = evaluate("demo_mevis_val_u", pred=tmp_path / "pred")
    assert result.metrics["J"] == 100.0 and result.metrics["F"] == 100.0 and result.metrics["J&F"] == 100.0
    assert summary["provenance"]["data_root"] == str(demo_base / "mevis")


def test_empty_prediction_scores_the_empty_gt_fraction(demo_base, tmp_path):
    from refbench.evaluate.run import evaluate

    loader = dataset_card("demo_mevis_val_u").open()
    fractions = _write_png_predictions(loader, tmp_path / "pred", empty=True)
    expected = float(np.mean(fractions))
    assert 0.0 < expected < 1.0
    result, _ = evaluate("demo_mevis_val_u", pred=tmp_path / "pred")
    assert result.metrics["J"] == pytest.approx(100 * expected, abs=1e-10)
    assert result.metrics["F"] == pytest.approx(100 * expected, abs=1e-10)
    assert result.metrics["J&F"] == pytest.approx(100 * expected, abs=1e-10)
