"""ReasonVOS loader, in the layout MomentSeg scores (``meta_expressions_format.json`` + ``mask_dict.json``).

Layout (Dmmm1997/MomentSeg @ a118d151 ``tools/utils/convert_reasonvos_format.py`` and ``tools/eval/eval_reasonvos.py``;
``docs/protocols.md#reasonvos``)::

    <root>/meta_expressions_format.json  {"videos": {vid: {"source", "vid_id", "frames",
                                           "expressions": {exp_id: {"exp", "obj_id": [int], "anno_id": int}}}}}
    <root>/mask_dict.json                str(anno_id) -> one COCO RLE per listed frame (the converter writes one for
                                         every frame, empty ones included)
    <root>/JPEGImages/<vid>/<frame>.jpg

``convert_reasonvos_format.py`` builds this from VideoLISA's ``ReasonVOS/meta_expressions.json`` and
``Annotations/<source>_<video>_<obj_id>/`` PNGs. ``anno_id`` is a single integer (the evaluator wraps it in a list;
a list there breaks its lookup, so refbench refuses it). The official script also accepts a pickled mask dict;
refbench reads JSON only (unpickling runs arbitrary code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Union

import numpy as np

from refbench.data.base import DatasetError, VideoExpression
from refbench.data.mevis import _RleVideoLoader, check_expected, decode_rle, expressions_of
from refbench.rle import rle_size

PathLike = Union[str, Path]


class ReasonVosLoader(_RleVideoLoader):
    """ReasonVOS below ``root`` (module doc)."""

    has_gt = True

    def __init__(self, root: PathLike, split: str = "test") -> None:
        super().__init__()
        self.root = Path(root)
        self.split = split
        self.meta_path = self.root / "meta_expressions_format.json"
        self.mask_dict_path = self.root / "mask_dict.json"
        self.frames_dir = self.root / "JPEGImages"

    def samples(self) -> list[VideoExpression]:
        """Every expression in meta order; ``anno_id`` must be one integer (module doc)."""
        if self._samples is None:
            for video, data in self._meta_videos().items():
                for exp_id, exp in expressions_of(video, data, self.meta_path).items():
                    aid = exp.get("anno_id") if isinstance(exp, dict) else None
                    if isinstance(aid, bool) or not isinstance(aid, (int, str)) or not str(aid).isdigit():
                        raise DatasetError(f"{self.meta_path}: expression {video}/{exp_id} has anno_id {aid!r}; "
                                           "the MomentSeg layout has one integer (convert_reasonvos_format.py)")
        return super().samples()

    def source_of(self, video: str) -> str:
        """The video's ``source`` dataset (mevis, mose, burst, vipseg), as the official except line prints it."""
        data = self._meta_videos().get(video)
        return str(data.get("source", "")) if isinstance(data, dict) else ""

    def gt_masks_official(self, sample: VideoExpression, size: tuple[int, int]) -> tuple[np.ndarray, list[int]]:
        """The official GT at frame size ``size`` (the first predicted RLE's): ``(T, H, W)`` uint8, and the frames
        whose RLE could not be added (wrong size or undecodable), which the official bare ``except`` leaves empty."""
        masks = self._masks()
        out = np.zeros((len(sample.frames), *size), dtype=np.uint8)
        failed: list[int] = []
        for aid in sample.anno_ids:
            rles = masks.get(aid)
            if not isinstance(rles, list) or len(rles) < len(sample.frames):
                raise DatasetError(f"{self.mask_dict_path}: anno_id {aid!r} of {sample.key} has no RLE per frame")
            for t in range(len(sample.frames)):
                rle = rles[t]
                if not rle:
                    continue
                where = f"{self.mask_dict_path}: anno_id {aid!r} frame {t}"
                try:  # a malformed RLE is refused here (never decoded from garbage) and, as below, left empty
                    m = decode_rle(rle, where)
                    if m.shape != tuple(size):
                        raise ValueError("size")
                except Exception:  # the official bare except: leave the frame as it is
                    failed.append(t)
                    continue
                out[t] += m
        return out, failed

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each naming its path (meta, mask dict, RLE sizes within an object, frames, counts)."""
        problems: list[str] = []
        counts = self._check_meta_and_masks(problems, require_frames)
        if counts:
            masks = self._masks()
            for aid in sorted({a for s in self.samples() for a in s.anno_ids}, key=lambda a: (len(a), a)):
                sizes = []
                for t, r in enumerate(masks.get(aid) or []):
                    if r:
                        try:
                            sizes.append((t, rle_size(r, f"{self.mask_dict_path}: anno_id {aid!r} frame {t}",
                                                      DatasetError)))
                        except DatasetError as exc:
                            problems.append(str(exc))
                if sizes:
                    t0, ref = sizes[0]
                    problems += [f"{self.mask_dict_path}: anno_id {aid!r} frame {t} has size {list(sz)}, frame {t0} "
                                 f"{list(ref)}" for t, sz in sizes[1:] if sz != ref]
            problems.extend(check_expected(counts, expected, self.meta_path))
        return problems


__all__ = ["ReasonVosLoader"]
