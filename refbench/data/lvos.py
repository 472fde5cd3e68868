"""LVOS (v1 / v2) ``valid`` loader: per-object frame ranges from ``valid_meta.json``, indexed PNG ground truth.

Layout (LingyiHongfd/lvos-evaluation @ 25cb02d1, ``lvos/lvos_seperate.py`` and ``evaluation_method.py``;
``docs/protocols.md#lvos``)::

    <root>/valid_meta.json       {"videos": {seq: {"objects": {obj_id: {"frame_range":
                                                                     {"start", "end", "frame_nums"}}}}}}
    <root>/Annotations/<seq>/<frame:08d>.png    indexed PNG (annotated every 5th frame)
    <root>/JPEGImages/<seq>/<frame:08d>.jpg
    <root>/unseen_videos.txt     the unseen-category sequences (the evaluation repository ships it; the official CLI
                                 reads it from the working directory, refbench from the data root)

Sequences are scored in sorted order, objects in meta order. An object's frames are ``start, start + 5, ...`` below
``end`` (``range(start, end, 5)``, 8-digit names); the evaluator skips the first of them and the one at position
``frame_nums - 1``, which for a consistent meta (``end`` the last annotated frame or one step past it) scores
``start + 5 ... start + 5 * (frame_nums - 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from refbench.data.base import DatasetError
from refbench.data.mevis import check_expected, check_frame_files, checked_relpath, read_json_file
from refbench.data.refytvos import read_palette_png

PathLike = Union[str, Path]
STEP = 5


@dataclass(frozen=True)
class LvosObject:
    """One object: its id (the meta key), its 1-based position ``k`` in the video (``<seq>_<k>``), the frames of
    its range (every one, before skipping) and ``frame_nums``."""

    obj_id: str
    position: int
    range_frames: tuple[str, ...]
    frame_nums: int

    @property
    def scored_frames(self) -> tuple[str, ...]:
        """The frames the evaluator scores: positions 1 .. frame_nums - 2 of the range (fewer if it is short)."""
        return tuple(f for i, f in enumerate(self.range_frames) if 0 < i < self.frame_nums - 1)

    @property
    def slots(self) -> int:
        """The number of per-frame slots (``frame_nums - 2``); unfilled slots count as 0 officially."""
        return max(self.frame_nums - 2, 0)


@dataclass(frozen=True)
class LvosSequence:
    """One sequence: its objects in meta order and whether it is an unseen-category sequence; ``frames`` is the
    sorted union of the objects' scored frames."""

    video: str
    frames: tuple[str, ...]
    objects: tuple[LvosObject, ...]
    unseen: bool


def _int(value: Any, what: str, path: Path) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: {what} {value!r} is not an integer") from exc


class LvosLoader:
    """LVOS ``valid`` below ``root`` (module doc)."""

    def __init__(self, root: PathLike, split: str = "valid", unseen_list: str = "unseen_videos.txt") -> None:
        self.root = Path(root)
        self.split = split
        self.meta_path = self.root / f"{split}_meta.json"
        self.annotations_dir = self.root / "Annotations"
        self.frames_dir = self.root / "JPEGImages"
        self.unseen_path = self.root / unseen_list
        self._samples: list[LvosSequence] | None = None

    def unseen_videos(self) -> set[str]:
        if not self.unseen_path.is_file():
            raise DatasetError(f"{self.unseen_path}: list of unseen videos not found (lvos-evaluation ships "
                               "unseen_videos.txt; put it in the data root)")
        try:
            text = self.unseen_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{self.unseen_path}: cannot read ({exc})") from exc
        return {line.strip() for line in text.splitlines() if line.strip()}

    def samples(self) -> list[LvosSequence]:
        """Every sequence, sorted by name, objects in meta order (nothing is decoded)."""
        if self._samples is None:
            meta = read_json_file(self.meta_path, "LVOS meta file")
            videos = meta.get("videos") if isinstance(meta, dict) else None
            if not isinstance(videos, dict):
                raise DatasetError(f"{self.meta_path}: expected an object with a 'videos' mapping")
            unseen = self.unseen_videos()
            out = []
            for seq in sorted(videos):
                checked_relpath(seq, "sequence name", self.meta_path)
                objs = videos[seq].get("objects") if isinstance(videos[seq], dict) else None
                if not isinstance(objs, dict) or not objs:
                    raise DatasetError(f"{self.meta_path}: sequence {seq!r} has no 'objects' mapping")
                objects = []
                for k, (obj_id, data) in enumerate(objs.items(), start=1):
                    fr = data.get("frame_range") if isinstance(data, dict) else None
                    if not isinstance(fr, dict):
                        raise DatasetError(f"{self.meta_path}: {seq}/{obj_id} has no 'frame_range'")
                    where = f"{seq}/{obj_id} frame_range"
                    start = _int(fr.get("start"), f"{where} start", self.meta_path)
                    end = _int(fr.get("end"), f"{where} end", self.meta_path)
                    nums = _int(fr.get("frame_nums"), f"{where} frame_nums", self.meta_path)
                    _int(obj_id, f"{seq} object id", self.meta_path)
                    frames = tuple(f"{i:08d}" for i in range(start, end, STEP))
                    objects.append(LvosObject(obj_id=str(obj_id), position=k, range_frames=frames, frame_nums=nums))
                union = tuple(sorted({f for o in objects for f in o.scored_frames}))
                out.append(LvosSequence(video=seq, frames=union, objects=tuple(objects), unseen=seq in unseen))
            self._samples = out
        return list(self._samples)

    def range_problem(self, seq: str, obj: LvosObject) -> str | None:
        """Why an object's frame_range does not fill its frame_nums - 2 slots (None when it does)."""
        n = len(obj.range_frames)
        if obj.frame_nums < 3:
            return (f"{self.meta_path}: {seq}/{obj.obj_id}: frame_nums {obj.frame_nums} leaves no frame to score "
                    "(the first and last are skipped)")
        if n > obj.frame_nums:
            return (f"{self.meta_path}: {seq}/{obj.obj_id}: frame_range yields {n} frames, more than frame_nums "
                    f"{obj.frame_nums} (the official evaluator fails with an index error)")
        if n < obj.frame_nums - 1:
            return (f"{self.meta_path}: {seq}/{obj.obj_id}: frame_range yields {n} frames for frame_nums "
                    f"{obj.frame_nums}: {obj.frame_nums - 1 - n} of its slots would stay empty and count as 0")
        return None

    def gt_frames(self, seq: str, frames: tuple[str, ...] | list[str]) -> np.ndarray:
        """``(T, H, W)`` uint8 palette indices of ``Annotations/<seq>/<frame>.png``."""
        arrays = [read_palette_png(self.annotations_dir / seq / f"{f}.png") for f in frames]
        if not arrays:
            return np.zeros((0, 0, 0), dtype=np.uint8)
        if len({a.shape for a in arrays}) != 1:
            raise DatasetError(f"{self.annotations_dir / seq}: annotation PNGs differ in size")
        return np.stack(arrays)

    def frame_paths(self, sample: LvosSequence) -> list[Path]:
        folder = self.frames_dir / sample.video
        return sorted(folder.glob("*.jpg")) if folder.is_dir() else [folder / f"{f}.jpg" for f in sample.frames]

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each with its path: meta, frame ranges, annotation PNGs, frames, unseen list, counts.

        ``expected`` keys: ``videos``, ``objects``, ``frames`` (scored annotation frames, union per sequence)."""
        try:
            samples = self.samples()
        except DatasetError as exc:
            return [str(exc)]
        problems: list[str] = []
        for s in samples:
            for o in s.objects:
                why = self.range_problem(s.video, o)
                if why:
                    problems.append(why)
            problems += check_frame_files(self.annotations_dir / s.video, s.frames, ext=".png", what="annotation")
            if require_frames:
                problems += check_frame_files(self.frames_dir / s.video, s.frames)
        unseen = self.unseen_videos()
        for v in sorted(unseen - {s.video for s in samples}):
            problems.append(f"note: {self.unseen_path}: {v!r} is not a sequence of {self.meta_path.name}")
        counts = {"videos": len(samples), "objects": sum(len(s.objects) for s in samples),
                  "frames": sum(len(s.frames) for s in samples)}
        problems += check_expected(counts, expected, self.meta_path)
        return problems


__all__ = ["LvosLoader", "LvosObject", "LvosSequence"]
