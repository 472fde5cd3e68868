"""`refbench datasets check` requires the media (frames, videos, images) a card lists, unless --annotations-only."""

from __future__ import annotations

from click.testing import CliRunner

from refbench.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_datasets_check_requires_media_the_card_lists(demo_env, shared_data, tmp_path):
    """Frames, videos and images the card lists are checked unless --annotations-only; present media pass."""
    # RES: the golden RefCOCO root has annotations but no image folder; the demo has its images
    r = _invoke("datasets", "check", "refcoco_testA", "--root", str(shared_data / "refcoco_golden"))
    assert r.exit_code == 1 and "train2014: image folder missing (3 images of refcoco_testA)" in r.output
    r = _invoke("datasets", "check", "refcoco_testA", "--root", str(shared_data / "refcoco_golden"),
                "--annotations-only")
    assert "image folder missing" not in r.output
    assert _invoke("datasets", "check", "demo_refcoco_val").exit_code == 0
    # ReasonSeg: the images sit beside the JSONs
    reason = shared_data / "refcoco_golden" / "reason_seg" / "ReasonSeg"
    r = _invoke("datasets", "check", "reasonseg_val", "--root", str(reason))
    assert "4 of 4 images missing (first rs_0001.jpg)" in r.output
    assert "images missing" not in _invoke("datasets", "check", "reasonseg_val", "--root", str(reason),
                                            "--annotations-only").output
    # grounding: one video present, the rest missing; the demo's card lists no videos, so none is required
    root = tmp_path / "charades"
    root.mkdir()
    for name in ("charades_sta_test.txt", "Charades_v1_test.csv"):
        (root / name).symlink_to(shared_data / "charades_sta" / name)
    (root / "videos").mkdir()
    (root / "videos" / "3MSZA.mp4").write_bytes(b"")
    r = _invoke("datasets", "check", "charades_sta_test", "--root", str(root))
    assert "1,333 of 1,334 videos missing" in r.output
    assert _invoke("datasets", "check", "demo_charades_test").exit_code == 0
    # video frames: the loaders' own check, skipped by --annotations-only (as before)
    mevis = tmp_path / "mevis" / "valid_u"
    mevis.mkdir(parents=True)
    for name in ("meta_expressions.json", "mask_dict.json"):
        (mevis / name).symlink_to(shared_data / "mevis_golden" / "valid_u" / name)
    r = _invoke("datasets", "check", "mevis_val_u", "--root", str(tmp_path / "mevis"))
    assert "JPEGImages" in r.output and "missing" in r.output
    assert "JPEGImages" not in _invoke("datasets", "check", "mevis_val_u", "--root", str(tmp_path / "mevis"),
                                       "--annotations-only").output

