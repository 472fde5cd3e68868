"""The prediction JSON of MomentSeg / Sa2VA's referring-VOS inference, read as a mask source.

``ref_vos_eval.py`` (Dmmm1997/MomentSeg @ a118d151, ``projects/qwenvl_sam2/evaluation/ref_vos_eval.py``; Sa2VA's
``sa2va_eval_ref_vos.py`` the same) writes one JSON file ``{video: {exp_id: {"video_id", "exp_id", "frames", "exp",
"prediction_masks": [RLE per frame], ...}}}``; ``eval_ref_sav.py`` and ``eval_reasonvos.py`` read only
``prediction_masks``. This source accepts that form and refbench's own ``{video: {exp_id: [RLE or null per frame]}}``
(what ``refbench run`` writes), mixed freely, and otherwise behaves as :class:`refbench.preds.masks.RleJsonSource`
(null = an empty frame, sizes checked against the ground truth, ids checked against the dataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from refbench.data.base import PredictionError, safe_component
from refbench.files import load_json
from refbench.preds.masks import RleJsonSource, _check_video_name
from refbench.rle import decode_rle

PathLike = Union[str, Path]


class MomentSegJsonSource(RleJsonSource):
    """MomentSeg / Sa2VA referring-VOS prediction JSON (module doc)."""

    def __init__(self, path: PathLike, keys: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.path = Path(path)
        doc = load_json(self.path, PredictionError, "prediction file")
        if not isinstance(doc, dict) or not doc or not all(isinstance(v, dict) for v in doc.values()):
            raise PredictionError(f"{self.path}: expected {{video: {{exp_id: {{'prediction_masks': [RLE per frame]}} "
                                  "or [RLE or null per frame]}}}}")
        self._entries: dict[tuple[str, str], list] = {}
        for video, exps in doc.items():
            _check_video_name(video, self.path)
            for exp_id, entry in exps.items():
                safe_component(str(exp_id), "expression id", self.path)
                if isinstance(entry, dict):
                    if "prediction_masks" not in entry:
                        raise PredictionError(f"{self.path}: {video}/{exp_id} has no 'prediction_masks'")
                    entry = entry["prediction_masks"]
                self._put((video, str(exp_id)), entry)
        self._videos = {v for v, _ in self._entries}

    def rles(self, video: str, exp_id: str) -> list | None:
        """The stored per-frame list of one expression (None when absent)."""
        return self._entries.get((video, exp_id))

    def first_size(self, video: str, exp_id: str) -> tuple[int, int] | None:
        """``prediction_masks[0]['size']`` as ``eval_reasonvos.py`` takes H, W (None when absent or not an RLE)."""
        rles = self._entries.get((video, exp_id)) or []
        first = rles[0] if rles else None
        if not isinstance(first, dict) or not isinstance(first.get("size"), (list, tuple)) or len(first["size"]) != 2:
            return None
        try:
            return int(first["size"][0]), int(first["size"][1])
        except (TypeError, ValueError):
            return None

    def read_official(self, video: str, exp_id: str, frames: Sequence[str], size: tuple[int, int]) -> np.ndarray:
        """The official reading: one decoded RLE per listed frame, extra entries ignored. Raises
        :class:`PredictionError` where the official worker dies (too few entries, a null entry, a wrong size)."""
        rles = self._entries.get((video, exp_id))
        if rles is None:
            raise PredictionError(f"{self.path}: no prediction for {video}/{exp_id}")
        if len(rles) < len(frames):
            raise PredictionError(f"{self.path}: {video}/{exp_id} has {len(rles)} RLE entries for {len(frames)} frames")
        out = np.zeros((len(frames), *size), dtype=np.uint8)
        for t in range(len(frames)):
            where = f"{self.path}: {video}/{exp_id} frame {t} ({frames[t]})"
            if rles[t] is None:
                raise PredictionError(f"{where}: null entry (the official decoder fails on it)")
            m = decode_rle(rles[t], where, None, PredictionError)
            if m.shape != tuple(size):
                raise PredictionError(f"{where}: RLE is {m.shape[0]}x{m.shape[1]}, expected {size[0]}x{size[1]}")
            out[t] = m
        return out


def open_referring_source(path: PathLike, keys: Mapping[str, tuple[str, str]]) -> Any:
    """A ``.json`` file as :class:`MomentSegJsonSource`; a PNG folder or zip (``<video>/<exp_id>/<frame>.png``) as
    :func:`refbench.preds.masks.open_mask_source` reads it (grey values)."""
    from refbench.preds.masks import open_mask_source

    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        return MomentSegJsonSource(path, keys)
    return open_mask_source(path, "expression", "grey", keys)


__all__ = ["MomentSegJsonSource", "open_referring_source"]
