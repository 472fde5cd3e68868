"""MOSE v2 loader for a root with the full ground truth, in the layout of MOSE-api ``score.py``.

Layout (henghuiding/MOSE-api @ 241977ae, ``MOSEv2/sam2_rcms/tools/score.py``; ``docs/protocols.md#mosev2``)::

    <root>/meta.json                       {"videos": {vid: {"length", "height", "width", "objects": {id: ...}}}}
    <root>/Annotations/<vid>/<frame:05d>.png   indexed GT for every frame
    <root>/JPEGImages/<vid>/<frame:05d>.jpg

The public MOSE v2 ``valid`` download holds only the first frame's annotation; the evaluation server holds the rest
(card ``mosev2_val``, a submission zip). This loader is for a root that has them all (card ``mosev2_local``).
Videos are taken in meta order (the official script follows ``os.listdir`` of ``Annotations``); a video's frames are
its annotation PNGs sorted by their integer stem, and the scored frames are positions 1 .. length-2.
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


@dataclass(frozen=True)
class MoseV2Video:
    """One video: the meta's length / size, its object ids (meta order) and its annotation frames (sorted)."""

    video: str
    frames: tuple[str, ...]
    length: int
    height: int
    width: int
    objects: tuple[int, ...]

    @property
    def scored_frames(self) -> tuple[str, ...]:
        """Positions 1 .. length-2 of the frames (first and last dropped)."""
        return tuple(self.frames[1:self.length - 1])


def _int(value: Any, what: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DatasetError(f"{path}: {what} {value!r} is not an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise DatasetError(f"{path}: {what} {value!r} is not an integer") from exc


def sorted_by_int(stems: list[str], where: Path) -> list[str]:
    """Frame names sorted by their integer value (``score.py``'s ``key=lambda x: int(x.split('.')[0])``)."""
    try:
        return sorted(stems, key=lambda s: int(s))
    except ValueError as exc:
        raise DatasetError(f"{where}: frame names must be integers ({exc})") from exc


class MoseV2Loader:
    """A MOSE v2 root with full ground truth (module doc)."""

    def __init__(self, root: PathLike, meta: str = "meta.json") -> None:
        self.root = Path(root)
        self.meta_path = self.root / meta
        self.annotations_dir = self.root / "Annotations"
        self.frames_dir = self.root / "JPEGImages"
        self._samples: list[MoseV2Video] | None = None

    def _meta(self) -> dict[str, Any]:
        doc = read_json_file(self.meta_path, "MOSE v2 meta file")
        videos = doc.get("videos") if isinstance(doc, dict) else None
        if not isinstance(videos, dict):
            raise DatasetError(f"{self.meta_path}: expected an object with a 'videos' mapping")
        return videos

    def _frames(self, video: str) -> tuple[str, ...]:
        folder = self.annotations_dir / video
        if not folder.is_dir():
            raise DatasetError(f"{folder}: annotation folder of video {video!r} missing")
        stems = [p.name[:-4] for p in folder.iterdir() if p.name.endswith(".png") and not p.name.startswith(".")]
        return tuple(sorted_by_int(stems, folder))

    def samples(self) -> list[MoseV2Video]:
        """Every video of the meta, in meta order, with its annotation frames (folders listed, nothing decoded).

        Raises :class:`DatasetError` when an annotation folder is not in the meta (the official ``KeyError``), a meta
        video has no annotation folder, or a folder does not hold exactly ``length`` files (the official
        "Server-side error")."""
        if self._samples is None:
            meta = self._meta()
            if not self.annotations_dir.is_dir():
                raise DatasetError(f"{self.annotations_dir}: annotation folder not found")
            for name in sorted(p.name for p in self.annotations_dir.iterdir() if p.is_dir()):
                if name not in meta:
                    raise DatasetError(f"{self.annotations_dir / name}: video {name!r} is not in {self.meta_path.name}")
            out = []
            for video, data in meta.items():
                checked_relpath(video, "video name", self.meta_path)
                if not isinstance(data, dict):
                    raise DatasetError(f"{self.meta_path}: video {video!r} is not an object")
                length = _int(data.get("length"), f"{video} length", self.meta_path)
                height = _int(data.get("height"), f"{video} height", self.meta_path)
                width = _int(data.get("width"), f"{video} width", self.meta_path)
                objs = data.get("objects")
                if not isinstance(objs, (dict, list)):
                    raise DatasetError(f"{self.meta_path}: video {video!r} has no 'objects'")
                ids = tuple(_int(o, f"{video} object id", self.meta_path) for o in objs)
                frames = self._frames(video)
                n_files = sum(1 for _ in (self.annotations_dir / video).iterdir())
                if n_files != length:
                    raise DatasetError(f"{self.annotations_dir / video}: {n_files} files for length {length} in "
                                       f"{self.meta_path.name}")
                out.append(MoseV2Video(video=video, frames=frames, length=length, height=height, width=width,
                                       objects=ids))
            self._samples = out
        return list(self._samples)

    def gt_frames(self, video: str, frames: tuple[str, ...] | list[str]) -> np.ndarray:
        """``(T, H, W)`` uint8 palette indices of ``Annotations/<vid>/<frame>.png``."""
        arrays = [read_palette_png(self.annotations_dir / video / f"{f}.png") for f in frames]
        if not arrays:
            return np.zeros((0, 0, 0), dtype=np.uint8)
        if len({a.shape for a in arrays}) != 1:
            raise DatasetError(f"{self.annotations_dir / video}: annotation PNGs differ in size")
        return np.stack(arrays)

    def frame_paths(self, sample: MoseV2Video) -> list[Path]:
        return [self.frames_dir / sample.video / f"{f}.jpg" for f in sample.frames]

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each with its path; ``expected`` keys ``videos``, ``objects``, ``frames``."""
        try:
            samples = self.samples()
        except DatasetError as exc:
            return [str(exc)]
        problems: list[str] = []
        for s in samples:
            if s.length <= 2:
                problems.append(f"{self.annotations_dir / s.video}: length {s.length}: no frame is scored (the first "
                                "and last are dropped)")
            if require_frames:
                problems += check_frame_files(self.frames_dir / s.video, s.frames)
        counts = {"videos": len(samples), "objects": sum(len(s.objects) for s in samples),
                  "frames": sum(len(s.frames) for s in samples)}
        problems += check_expected(counts, expected, self.meta_path)
        return problems


__all__ = ["MoseV2Loader", "MoseV2Video", "sorted_by_int"]
