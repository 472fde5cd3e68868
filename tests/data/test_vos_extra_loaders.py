"""Loaders and ``refbench datasets check`` for SA-V, SeCVOS, LVOS, MOSE v2, Ref-SAV and ReasonVOS on the golden layouts
of shared/data, and on copies with seeded faults (a missing frame, a wrong count, a stray file)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from refbench.cli import main
from refbench.data.base import DatasetError
from refbench.data.lvos import LvosLoader
from refbench.data.mosev2 import MoseV2Loader
from refbench.data.reasonvos import ReasonVosLoader
from refbench.data.refsav import RefSavLoader
from refbench.data.sav import SavLoader, SecVosLoader


def _check(name: str, root: Path, *extra: str):
    return CliRunner().invoke(main, ["datasets", "check", name, "--root", str(root), "--annotations-only", *extra])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("predictions*", "expected.json"))
    return dst


# -- SA-V / SeCVOS --------------------------------------------------------------------------------------


def test_sav_loader_on_golden(shared_data):
    exp = json.loads((shared_data / "sav_golden" / "expected.json").read_text())
    videos = SavLoader(shared_data / "sav_golden").samples()
    assert [v.video for v in videos] == ["sav_syn_001", "sav_syn_002", "sav_syn_003", "sav_syn_004", "sav_syn_005"]
    assert {v.layout for v in videos} == {"sav"}
    objs = {f"{v.video}/{o.name}": o for v in videos for o in v.objects}
    for key, obj in exp["runs"]["no_skip"]["per_object"].items():
        assert [f + ".png" for f in objs[key].frames] == obj["frames_fed"], key
    davis = SavLoader(shared_data / "sav_golden" / "davis_format", annotations="Annotations",
                      video_list="none.txt").samples()
    assert [(v.video, v.layout, v.objects) for v in davis] == [("davis_syn_a", "davis", ())]


def test_sav_check_reports_official_counts_and_seeded_faults(shared_data, tmp_path):
    r = _check("sav_val", shared_data / "sav_golden")
    # the golden set is 5 synthetic videos, not the official 155 (sam2 sav_dataset/README.md)
    assert r.exit_code != 0 and "5 videos found, the official sav_val has 155" in r.output
    assert "10 objects" not in r.output and "11 objects found, the official sav_val has 293" in r.output
    root = _copy(shared_data / "sav_golden", tmp_path / "sav")
    (root / "Annotations_6fps" / "sav_syn_002" / "notes.txt").write_text("stray")
    (root / "sav_val.txt").write_text("sav_syn_001\nsav_syn_002\nsav_syn_003\nsav_syn_005\nsav_syn_009\n")
    r = _check("sav_val", root)
    assert "sav_syn_002/notes.txt: not an object folder" in r.output
    assert "sav_syn_004: annotation folder of a video not in sav_val.txt" in r.output
    assert "sav_syn_009: video of sav_val.txt has no annotation folder" in r.output
    with pytest.raises(DatasetError, match="not an object folder"):
        SavLoader(root).samples()


def test_secvos_loader_and_check(shared_data, tmp_path):
    loader = SecVosLoader(shared_data / "secvos_golden")
    scenes = loader.scenes()
    assert scenes["sec_syn_01"]["second_segment"] == (8, 15) and scenes["sec_syn_02"]["remain_segments"] is None
    r = _check("secvos", shared_data / "secvos_golden")
    assert r.exit_code == 0, r.output
    assert "video 'sec_syn_03' is not listed" in r.output  # a note, not a problem
    root = _copy(shared_data / "secvos_golden", tmp_path / "sec")
    info = json.loads((root / "scene_info.json").read_text())
    info["sec_syn_01"]["remain_segments"] = [[16, 20], [21, 23]]
    (root / "scene_info.json").write_text(json.dumps(info))
    r = _check("secvos", root)
    assert r.exit_code != 0 and "sec_syn_01/remain_segments must be [start, end]" in r.output


# -- LVOS ------------------------------------------------------------------------------------------------


def test_lvos_loader_on_golden(shared_data):
    exp = json.loads((shared_data / "lvos_golden" / "expected.json").read_text())
    seqs = LvosLoader(shared_data / "lvos_golden").samples()
    got = {f"{s.video}_{o.position}": (o.obj_id, list(o.scored_frames), "unseen" if s.unseen else "seen")
           for s in seqs for o in s.objects}
    want = {k: (v["obj_id"], v["frames"], v["split"]) for k, v in exp["per_object"].items()}
    assert got == want


def test_lvos_check_finds_seeded_faults(shared_data, tmp_path):
    r = _check("lvos_v2_val", shared_data / "lvos_golden")
    assert r.exit_code == 0, r.output
    root = _copy(shared_data / "lvos_golden", tmp_path / "lvos")
    (root / "Annotations" / "lvs_seen_b" / "00000025.png").unlink()
    meta = json.loads((root / "valid_meta.json").read_text())
    meta["videos"]["lvs_unseen_c"]["objects"]["2"]["frame_range"]["frame_nums"] = 30
    (root / "valid_meta.json").write_text(json.dumps(meta))
    r = _check("lvos_v2_val", root)
    assert r.exit_code != 0
    assert "lvs_seen_b/00000025.png: annotation missing" in r.output
    assert "lvs_unseen_c/2: frame_range yields 11 frames for frame_nums 30" in r.output
    (root / "unseen_videos.txt").unlink()
    r = _check("lvos_v2_val", root)
    assert r.exit_code != 0 and "unseen_videos.txt" in r.output


# -- MOSE v2 ---------------------------------------------------------------------------------------------


def test_mosev2_loader_and_check(shared_data, tmp_path):
    videos = {v.video: v for v in MoseV2Loader(shared_data / "mosev2_golden").samples()}
    assert videos["mv2_hd"].scored_frames == ("00001", "00002") and videos["mv2_disappear"].objects == (1, 2, 3)
    r = _check("mosev2_local", shared_data / "mosev2_golden")
    assert r.exit_code != 0 and "mv2_two_frames: length 2: no frame is scored" in r.output  # a deliberate quirk
    root = _copy(shared_data / "mosev2_golden", tmp_path / "m2")
    (root / "Annotations" / "mv2_large" / "00003.png").unlink()
    r = _check("mosev2_local", root)
    assert r.exit_code != 0 and "mv2_large: 5 files for length 6" in r.output


# -- Ref-SAV / ReasonVOS ---------------------------------------------------------------------------------


def test_refsav_loader_and_check(shared_data, tmp_path):
    samples = RefSavLoader(shared_data / "refsav_golden").samples()
    assert len(samples) == 9 and {s.type_id for s in samples} == {0, 1}
    assert samples[1].anno_ids == ("0", "1") and (samples[0].height, samples[0].width) == (241, 321)
    r = _check("refsav_val", shared_data / "refsav_golden")
    assert r.exit_code == 0 and "refsav_val: ok (videos 3, expressions 9" in r.output
    root = _copy(shared_data / "refsav_golden", tmp_path / "rs")
    masks = json.loads((root / "mask_dict.json").read_text())
    masks["2"] = masks["2"][:-1]
    (root / "mask_dict.json").write_text(json.dumps(masks))
    r = _check("refsav_val", root)
    assert r.exit_code != 0 and "anno_id '2' has 3 RLE entries but video 'sav_ref_02' has 4 frames" in r.output


def test_reasonvos_loader_and_check(shared_data, tmp_path):
    loader = ReasonVosLoader(shared_data / "reasonvos_golden")
    assert [s.anno_ids for s in loader.samples()][:3] == [("0",), ("0",), ("1",)]
    assert loader.source_of("rv_vid_c") == "mose"
    # the golden set's deliberate fault: a GT RLE of the wrong size
    r = _check("reasonvos", shared_data / "reasonvos_golden")
    assert r.exit_code != 0 and "anno_id '4' frame 1 has size [480, 480]" in r.output
    root = _copy(shared_data / "reasonvos_golden", tmp_path / "rv")
    meta = json.loads((root / "meta_expressions_format.json").read_text())
    meta["videos"]["rv_vid_a"]["expressions"]["0"]["anno_id"] = [0]
    (root / "meta_expressions_format.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="anno_id \\[0\\]; the MomentSeg layout has one integer"):
        ReasonVosLoader(root).samples()
