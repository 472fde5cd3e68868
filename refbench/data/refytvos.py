"""Ref-YouTube-VOS loader.

Layout (the CodaLab release as used by ReferFormer ``datasets/ytvos.py`` / ``inference_ytvos.py`` and VISA
``utils/d2_datasets/refytvos_utils.py``)::

    <root>/meta_expressions/<split>/meta_expressions.json
    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/train/Annotations/<video>/<frame>.png      (palette PNG: pixel value = object id)
    <root>/train/meta.json                            (object categories; not needed here)

``<root>/meta_expressions.json`` is also accepted (e.g. OnlineRefer ships the valid meta on its own).

Facts this module relies on:

* The ``valid`` meta lists the 202 validation videos **and** the 305 test videos (507 in all; VISA's loader
  removes the test videos, ReferFormer's ``inference_ytvos.py`` does the same with the test meta). The 202 ids
  are packaged in ``refytvos_valid_videos.txt`` (VISA ``utils/d2_datasets/refytvos_val_videos.py``,
  ``REFYTVOS_VAL_VIDEOS``, in that list's order): 834 expressions and 5,486 frames with the public meta.
* Scored frames are the meta's ``frames`` (every 5th frame: ``00000``, ``00005``, ...); valid GT is not public
  (CodaLab server), so ``gt_masks`` works for ``train`` only.
* Train expressions name one object by ``obj_id`` (a string such as ``"1"``); its mask in a frame is
  ``Annotations/<video>/<frame>.png == int(obj_id)`` on the palette indices (VISA ``encode_anno_mask``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from refbench.data.base import DatasetError, VideoExpression
from refbench.data.mevis import (
    check_expected,
    check_frame_files,
    checked_relpath,
    expressions_of,
    frames_of,
    read_json_file,
    videos_of,
)

PathLike = Union[str, Path]

REFYTVOS_SPLITS = ("train", "valid")
VALID_VIDEOS_FILE = "refytvos_valid_videos.txt"


@lru_cache(maxsize=1)
def valid_video_ids() -> tuple[str, ...]:
    """The 202 Ref-YouTube-VOS validation video ids, in the order of VISA's ``REFYTVOS_VAL_VIDEOS``."""
    text = resources.files("refbench.data").joinpath(VALID_VIDEOS_FILE).read_text(encoding="utf-8")
    ids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(ids) != 202 or len(set(ids)) != 202:  # pragma: no cover - packaging error
        raise DatasetError(f"refbench/data/{VALID_VIDEOS_FILE}: expected 202 distinct ids, found {len(set(ids))}")
    return ids


def read_palette_png(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Palette indices of an indexed PNG as ``(H, W)`` uint8 (``np.array(Image.open(p))``, as davis2017 does);
    ``size``: the ``(H, W)`` it must have (checked before decoding)."""
    import io

    from PIL import Image

    from refbench.files import read_regular
    from refbench.png import png_header, walk_png
    from refbench.png_decode import decode_fast

    data = read_regular(path, DatasetError, "annotation PNG")
    # corrupt chunks, or a declared size to refuse, before inflating
    chunks = walk_png(data, str(path), size, DatasetError)[2]
    hdr = png_header(data, str(path), DatasetError)
    # PIL opens colour type 3 as 'P' and 2/4/8-bit grey as 'L': then the fast reader gives the same indices
    if hdr.color_type == 3 or (hdr.color_type == 0 and hdr.bit_depth in (2, 4, 8)):
        arr = decode_fast(data, "index", chunks)
        if arr is not None:
            return arr
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("P", "L"):
                raise DatasetError(f"{path}: expected an indexed ('P') or grey ('L') PNG, found mode {im.mode!r}")
            arr = np.array(im)
    except DatasetError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot read annotation PNG ({exc})") from exc
    return arr.astype(np.uint8, copy=False)


class RefYTVOSLoader:
    """Ref-YouTube-VOS ``valid`` (202 videos, no GT) or ``train`` (palette GT) below ``root``."""

    def __init__(self, root: PathLike, split: str = "valid") -> None:
        if split not in REFYTVOS_SPLITS:
            raise ValueError(f"unknown Ref-YouTube-VOS split {split!r}; expected one of {REFYTVOS_SPLITS}")
        self.root = Path(root)
        self.split = split
        nested = self.root / "meta_expressions" / split / "meta_expressions.json"
        flat = self.root / "meta_expressions.json"
        self.meta_path = nested if nested.is_file() or not flat.is_file() else flat
        self.frames_dir = self.root / split / "JPEGImages"
        self.annotations_dir = self.root / split / "Annotations"
        self._videos: dict[str, Any] | None = None
        self._samples: list[VideoExpression] | None = None

    @property
    def has_gt(self) -> bool:
        """Only ``train`` ships masks; the valid GT is held by the CodaLab server."""
        return self.split == "train"

    def _meta_videos(self) -> dict[str, Any]:
        if self._videos is None:
            self._videos = videos_of(read_json_file(self.meta_path, "meta expressions file"), self.meta_path)
        return self._videos

    def videos(self) -> list[str]:
        """Video ids of the split in meta order (for ``valid``: the 202 validation videos present in the meta)."""
        vids = self._meta_videos()
        if self.split == "valid":
            keep = set(valid_video_ids())
            return [v for v in vids if v in keep]
        return list(vids)

    def samples(self) -> list[VideoExpression]:
        """Every expression of the split, in meta order."""
        if self._samples is None:
            src = self.meta_path
            out: list[VideoExpression] = []
            for video in self.videos():
                checked_relpath(video, "video name", src)
                data = self._meta_videos()[video]
                frames = frames_of(video, data, src)
                for exp_id, exp in expressions_of(video, data, src).items():
                    if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str):
                        raise DatasetError(f"{src}: expression {video}/{exp_id} has no 'exp' text")
                    obj_ids: tuple[int, ...] = ()
                    if self.split == "train":
                        try:
                            obj_ids = (int(exp["obj_id"]),)
                        except (KeyError, TypeError, ValueError) as exc:
                            raise DatasetError(
                                f"{src}: train expression {video}/{exp_id} has no integer obj_id"
                            ) from exc
                    out.append(VideoExpression(video=video, exp_id=str(exp_id), text=exp["exp"], frames=frames,
                                               obj_ids=obj_ids))
            self._samples = out
        return list(self._samples)

    def frame_paths(self, sample: VideoExpression) -> list[Path]:
        """``<split>/JPEGImages/<video>/<frame>.jpg`` per listed frame."""
        return [self.frames_dir / sample.video / f"{f}.jpg" for f in sample.frames]

    def annotation_paths(self, sample: VideoExpression) -> list[Path]:
        """``<split>/Annotations/<video>/<frame>.png`` per listed frame (present for ``train`` only)."""
        return [self.annotations_dir / sample.video / f"{f}.png" for f in sample.frames]

    def gt_masks(self, sample: VideoExpression) -> np.ndarray:
        """``(T, H, W)`` uint8 0/1: palette index == the expression's ``obj_id`` (train only)."""
        if not self.has_gt:
            raise DatasetError(f"{self.root}: Ref-YouTube-VOS {self.split} GT is not public (CodaLab server only)")
        if len(sample.obj_ids) != 1:
            raise DatasetError(f"{self.meta_path}: {sample.key} has no single obj_id")
        obj = sample.obj_ids[0]
        frames = [read_palette_png(p) for p in self.annotation_paths(sample)]
        if not frames:
            raise DatasetError(f"{self.meta_path}: {sample.key} lists no frames")
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            folder = self.annotations_dir / sample.video
            raise DatasetError(f"{folder}: annotation PNGs differ in size {sorted(shapes)}")
        return (np.stack(frames) == obj).astype(np.uint8)

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, with its path.

        Reports an unreadable meta, validation videos absent from the meta, missing frame folders / JPEGs
        (unless ``require_frames=False``), missing train annotation PNGs, and ``expected`` counts
        (``videos``, ``expressions``, ``frames``).
        """
        problems: list[str] = []
        try:
            samples = self.samples()
        except DatasetError as exc:
            return [str(exc)]
        vids = self.videos()
        if self.split == "valid":
            present = set(self._meta_videos())
            problems += [f"{self.meta_path}: validation video {v!r} is missing" for v in valid_video_ids()
                         if v not in present]
        by_video = {s.video: s for s in samples}
        for v in vids:
            s = by_video.get(v)
            if s is None:
                continue
            if require_frames:
                problems += check_frame_files(self.frames_dir / v, s.frames)
            if self.split == "train":
                problems += check_frame_files(self.annotations_dir / v, s.frames, ext=".png", what="annotation")
        counts = {
            "videos": len(vids),
            "expressions": len(samples),
            "frames": sum(len(self._meta_videos()[v]["frames"]) for v in vids),
        }
        problems += check_expected(counts, expected, self.meta_path)
        return problems


__all__ = ["RefYTVOSLoader", "valid_video_ids", "read_palette_png", "REFYTVOS_SPLITS"]
