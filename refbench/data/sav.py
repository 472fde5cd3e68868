"""SA-V val / test and SeCVOS loaders: one PNG per object and annotated frame.

Layouts (the evaluator reads only the annotation folder; ``docs/protocols.md#sav`` and ``#secvos``):

* **SA-V** (facebookresearch/sam2 ``sav_dataset/README.md`` @ 0c5f8c54, ``sav_dataset/utils/sav_benchmark.py`` @
  2b90b9f5)::

      <root>/sav_val.txt (sav_test.txt)                  video ids
      <root>/JPEGImages_24fps/<video>/<frame:05d>.jpg    every frame of the 24 fps video
      <root>/Annotations_6fps/<video>/<obj:03d>/<frame:05d>.png   one binary PNG per object, every 4th frame

* **SeCVOS** (OpenIXCLab/SeC ``vos_evaluation/EVALUATE.md`` @ 1981ac42)::

      <root>/video_id.txt, <root>/scene_info.json, <root>/JPEGImages/<video>/<frame>.jpg,
      <root>/Annotations/<video>/<obj:03d>/<frame:05d>.png

As the official evaluator does, the videos are the sub-folders of the annotation folder (sorted); a video folder
whose entries all end in ``.png`` is a DAVIS-like video (one indexed PNG per frame, several labels), otherwise
every entry must be an object folder. An object's frames are the sorted file names of its folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from refbench.data.base import DatasetError
from refbench.data.mevis import check_expected, checked_relpath, read_json_file
from refbench.data.refytvos import read_palette_png

PathLike = Union[str, Path]

#: ``split`` -> (video list, annotation folder, frame folder) of SA-V.
SAV_SPLITS = {"val": ("sav_val.txt", "Annotations_6fps", "JPEGImages_24fps"),
              "test": ("sav_test.txt", "Annotations_6fps", "JPEGImages_24fps")}
#: The three scene segments of ``scene_info.json``, in the order SeC scores them.
SEGMENTS = ("first_segment", "second_segment", "remain_segments")


@dataclass(frozen=True)
class ObjectTrack:
    """One object of a video: its folder name (SA-V ``000``; the label as a string for DAVIS-like videos) and its
    annotated frame names (sorted, without ``.png``)."""

    name: str
    frames: tuple[str, ...]


@dataclass(frozen=True)
class SavVideo:
    """One video: its objects (SA-V layout) or, for a DAVIS-like video, ``objects == ()`` and ``frames`` its PNGs.

    ``frames`` is the sorted union of the objects' annotated frames; ``layout`` is ``"sav"`` or ``"davis"``."""

    video: str
    frames: tuple[str, ...]
    objects: tuple[ObjectTrack, ...]
    layout: str = "sav"


def _png_stems(folder: Path) -> tuple[list[str], list[str]]:
    """(sorted ``.png`` stems, other entries) of a folder, sorted by file name as the evaluator sorts them."""
    names = sorted(p.name for p in folder.iterdir())
    return [n[:-4] for n in names if n.endswith(".png")], [n for n in names if not n.endswith(".png")]


class SavLoader:
    """SA-V ``val`` / ``test`` below ``root`` (module doc); ``annotations``/``frames``/``video_list`` override the
    folder and file names (SeCVOS uses :class:`SecVosLoader`)."""

    def __init__(self, root: PathLike, split: str = "val", annotations: str | None = None,
                 frames: str | None = None, video_list: str | None = None) -> None:
        if split not in SAV_SPLITS and not (annotations and video_list):
            raise ValueError(f"unknown SA-V split {split!r}; expected one of {', '.join(SAV_SPLITS)}")
        default = SAV_SPLITS.get(split, (None, None, None))
        self.root = Path(root)
        self.split = split
        self.video_list_path = self.root / (video_list or default[0])
        self.annotations_dir = self.root / (annotations or default[1])
        self.frames_dir = self.root / (frames or default[2] or "JPEGImages")
        self._samples: list[SavVideo] | None = None

    # -- listing --------------------------------------------------------------------------------
    def video_names(self) -> list[str]:
        """The sub-folders of the annotation folder, sorted (what the official evaluator scores)."""
        if not self.annotations_dir.is_dir():
            raise DatasetError(f"{self.annotations_dir}: annotation folder not found")
        return sorted(p.name for p in self.annotations_dir.iterdir() if p.is_dir())

    def listed_videos(self) -> list[str] | None:
        """The video ids of the list file (``sav_val.txt``), or None when it is absent."""
        if not self.video_list_path.is_file():
            return None
        try:
            text = self.video_list_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{self.video_list_path}: cannot read the video list ({exc})") from exc
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _video(self, name: str) -> SavVideo:
        checked_relpath(name, "video name", self.annotations_dir)
        folder = self.annotations_dir / name
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
        if entries and all(p.name.endswith(".png") for p in entries):
            return SavVideo(video=name, frames=tuple(p.name[:-4] for p in entries), objects=(), layout="davis")
        objects = []
        for p in entries:
            if not p.is_dir():
                raise DatasetError(f"{p}: not an object folder (an SA-V video folder holds only <obj:03d>/ folders)")
            stems, other = _png_stems(p)
            if other:
                raise DatasetError(f"{p / other[0]}: not a PNG (an object folder holds only <frame>.png files)")
            if not stems:
                raise DatasetError(f"{p}: object folder without annotation PNGs")
            objects.append(ObjectTrack(name=p.name, frames=tuple(stems)))
        if not objects:
            raise DatasetError(f"{folder}: video folder without objects")
        frames = tuple(sorted({f for o in objects for f in o.frames}))
        return SavVideo(video=name, frames=frames, objects=tuple(objects), layout="sav")

    def samples(self) -> list[SavVideo]:
        """One :class:`SavVideo` per annotation sub-folder, sorted (folders are listed; nothing is decoded)."""
        if self._samples is None:
            self._samples = [self._video(v) for v in self.video_names()]
        return list(self._samples)

    # -- reading --------------------------------------------------------------------------------
    def annotation_path(self, video: str, obj: str | None, frame: str) -> Path:
        base = self.annotations_dir / video
        return (base / obj / f"{frame}.png") if obj is not None else (base / f"{frame}.png")

    def gt_frames(self, video: str, obj: str | None, frames: tuple[str, ...] | list[str]) -> np.ndarray:
        """``(T, H, W)`` uint8 raw PNG values (palette indices or grey values) of one object's (or, with
        ``obj=None``, a DAVIS-like video's) annotation PNGs."""
        arrays = [read_palette_png(self.annotation_path(video, obj, f)) for f in frames]
        if not arrays:
            return np.zeros((0, 0, 0), dtype=np.uint8)
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise DatasetError(f"{self.annotations_dir / video}: annotation PNGs differ in size {sorted(shapes)}")
        return np.stack(arrays)

    def frame_paths(self, sample: SavVideo) -> list[Path]:
        """``<frames>/<video>/<frame>.jpg`` of every JPEG of the video (24 fps for SA-V), else of the annotated
        frames when the JPEG folder is absent."""
        folder = self.frames_dir / sample.video
        if folder.is_dir():
            return sorted(folder.glob("*.jpg"))
        return [folder / f"{f}.jpg" for f in sample.frames]

    # -- checks ---------------------------------------------------------------------------------
    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each with its path: annotation layout, the video list, frames, counts.

        ``expected`` keys: ``videos``, ``objects``, ``frames`` (annotated frames, the union over objects)."""
        try:
            names = self.video_names()
        except DatasetError as exc:
            return [str(exc)]
        problems: list[str] = []
        videos: list[SavVideo] = []
        for name in names:
            try:
                videos.append(self._video(name))
            except DatasetError as exc:
                problems.append(str(exc))
        listed = None
        try:
            listed = self.listed_videos()
        except DatasetError as exc:
            problems.append(str(exc))
        if listed is None:
            problems.append(f"{self.video_list_path}: video list not found")
        else:
            for v in sorted(set(listed) - set(names)):
                problems.append(f"{self.annotations_dir / v}: video of {self.video_list_path.name} has no annotation "
                                "folder")
            for v in sorted(set(names) - set(listed)):
                problems.append(f"{self.annotations_dir / v}: annotation folder of a video not in "
                                f"{self.video_list_path.name}")
        for v in videos:
            if v.layout == "sav":
                for o in v.objects:
                    if len(o.frames) < 3:
                        problems.append(f"{self.annotations_dir / v.video / o.name}: {len(o.frames)} annotated "
                                        "frame(s); skipping the first and last leaves none to score")
            if require_frames:
                folder = self.frames_dir / v.video
                if not folder.is_dir():
                    problems.append(f"{folder}: frame folder missing")
                else:
                    problems += [f"{folder / (f + '.jpg')}: frame missing" for f in v.frames
                                 if not (folder / f"{f}.jpg").is_file()]
        counts = {"videos": len(videos), "objects": sum(len(v.objects) for v in videos),
                  "frames": sum(len(v.frames) for v in videos)}
        problems += check_expected(counts, expected, self.annotations_dir)
        return problems


def _segment(value: Any, video: str, key: str, path: Path) -> tuple[int, int] | None:
    """A scene segment ``[start, end]`` (frame numbers), or None for an empty list."""
    if isinstance(value, list) and not value:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise DatasetError(f"{path}: {video}/{key} must be [start, end] frame numbers or [], got {value!r}")
    return int(value[0]), int(value[1])


class SecVosLoader(SavLoader):
    """SeCVOS below ``root`` (module doc): the SA-V layout plus ``scene_info.json``."""

    def __init__(self, root: PathLike, annotations: str = "Annotations", frames: str = "JPEGImages",
                 video_list: str = "video_id.txt", scene_info: str = "scene_info.json") -> None:
        super().__init__(root, split="secvos", annotations=annotations, frames=frames, video_list=video_list)
        self.scene_info_path = self.root / scene_info
        self._scenes: dict[str, dict[str, tuple[int, int] | None]] | None = None

    def scenes(self) -> dict[str, dict[str, tuple[int, int] | None]]:
        """``{video: {segment: (start, end) or None}}`` from ``scene_info.json`` (videos absent there are absent)."""
        if self._scenes is None:
            doc = read_json_file(self.scene_info_path, "scene info file")
            if not isinstance(doc, dict):
                raise DatasetError(f"{self.scene_info_path}: expected an object video -> segments")
            out: dict[str, dict[str, tuple[int, int] | None]] = {}
            for video, segs in doc.items():
                if not isinstance(segs, dict):
                    raise DatasetError(f"{self.scene_info_path}: {video} must map segment names to [start, end]")
                out[str(video)] = {k: _segment(segs.get(k, []), str(video), k, self.scene_info_path) for k in SEGMENTS}
            self._scenes = out
        return self._scenes

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """As :meth:`SavLoader.check`, plus ``scene_info.json``: readable, flat ``[start, end]`` pairs, and a note for
        each video it does not list (scored on all frames in first_segment, left out of the other two)."""
        problems = super().check(require_frames=require_frames, expected=expected)
        try:
            scenes = self.scenes()
        except DatasetError as exc:
            return problems + [str(exc)]
        try:
            names = self.video_names()
        except DatasetError:
            return problems
        for v in names:
            if v not in scenes:
                problems.append(f"note: {self.scene_info_path}: video {v!r} is not listed: first_segment scores all "
                                "its frames, the other two segments leave it out")
        for v in sorted(set(scenes) - set(names)):
            problems.append(f"{self.scene_info_path}: video {v!r} has no annotation folder")
        return problems


__all__ = ["ObjectTrack", "SAV_SPLITS", "SEGMENTS", "SavLoader", "SavVideo", "SecVosLoader"]
