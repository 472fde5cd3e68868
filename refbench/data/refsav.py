"""Ref-SAV loader: the evaluation split of MomentSeg / Sa2VA v2 (``meta_expressions_valid.json`` + ``mask_dict.json``).

Layout (Dmmm1997/MomentSeg @ a118d151 ``tools/eval/eval_ref_sav.py`` and ``projects/qwenvl_sam2/evaluation/
ref_vos_eval.py`` (``REF_SAV``: ``data/video_datas/ref_sav_eval/``); ``docs/protocols.md#refsav``)::

    <root>/meta_expressions_valid.json   {"videos": {vid: {"frames", "height", "width",
                                           "expressions": {exp_id: {"exp", "anno_id": [...], "obj_id", "type_id"}}}}}
    <root>/mask_dict.json                str(anno_id) -> one COCO RLE or null per listed frame
    <root>/videos/<vid>/<frame>.jpg

``type_id`` 0 is the official table's ``long`` category, 1 its ``short`` one. Ground truth (``gt_masks``) is the
uint8 sum of the expression's objects per frame, as :mod:`refbench.data.mevis` builds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Union

from refbench.data.mevis import _RleVideoLoader, check_expected

PathLike = Union[str, Path]


class RefSavLoader(_RleVideoLoader):
    """Ref-SAV ``valid`` below ``root`` (module doc); samples carry ``type_id`` and the meta's ``height``/``width``."""

    has_gt = True

    def __init__(self, root: PathLike, split: str = "valid") -> None:
        super().__init__()
        if split != "valid":
            raise ValueError(f"unknown Ref-SAV split {split!r}; only 'valid' (meta_expressions_valid.json) exists")
        self.root = Path(root)
        self.split = split
        self.meta_path = self.root / "meta_expressions_valid.json"
        self.mask_dict_path = self.root / "mask_dict.json"
        self.frames_dir = self.root / "videos"

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each naming its path (meta, mask dict, frames, counts); a note for each expression
        whose ``type_id`` is neither 0 (long) nor 1 (short), which the official table leaves out."""
        problems: list[str] = []
        counts = self._check_meta_and_masks(problems, require_frames)
        if counts:
            for s in self.samples():
                if s.type_id not in (0, 1):
                    problems.append(f"note: {self.meta_path}: expression {s.key} has type_id {s.type_id!r}; the "
                                    "official table counts only 0 (long) and 1 (short)")
                if not (s.height and s.width):
                    problems.append(f"{self.meta_path}: video {s.video!r} has no integer height / width")
            problems.extend(check_expected(counts, expected, self.meta_path))
        return problems


__all__ = ["RefSavLoader"]
