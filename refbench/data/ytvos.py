"""Server-scored semi-supervised VOS splits whose download holds only the prompts: YouTube-VOS 2019 valid and
MOSE v2 valid.

Layouts (``docs/protocols.md#ytvos19`` and ``#mosev2``)::

    <root>/JPEGImages/<video>/<frame>.jpg      the frames the server scores (YouTube-VOS: every 5th, 6 fps)
    <root>/Annotations/<video>/<frame>.png     indexed prompts: YouTube-VOS at each object's first appearance,
                                               MOSE v2 the first frame
    <root>/meta.json                           (YouTube-VOS: {"videos": {vid: {"objects": {id: {"category",
                                               "frames"}}}}}; optional here)

A sample is a :class:`refbench.data.base.VideoSequence` whose frames are the sorted JPEG names, i.e. exactly the
frames a submission must hold (:mod:`refbench.export.vos`, :mod:`refbench.export.davis`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Union

from refbench.data.davis import DavisLoader
from refbench.data.mevis import check_expected, check_frame_files

PathLike = Union[str, Path]


class FirstFrameVosLoader(DavisLoader):
    """Sequences of ``JPEGImages/`` with sparse prompt annotations in ``Annotations/`` (module doc)."""

    def __init__(self, root: PathLike, split: str = "valid") -> None:
        super().__init__(root, split=split, resolution=None)

    def prompt_frames(self, video: str) -> list[str]:
        """Names of the annotated (prompt) frames of ``video``, sorted."""
        folder = self.annotations_dir / video
        return sorted(p.stem for p in folder.glob("*.png")) if folder.is_dir() else []

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each with its path: the frame folders (a submission covers every JPEG), at least one
        prompt PNG per video, each named after one of its frames; counts (``videos``, ``frames``)."""
        try:
            names = self.sequence_names()
        except Exception as exc:  # DatasetError from the listing
            return [str(exc)]
        problems: list[str] = []
        if not names:
            problems.append(f"{self.frames_dir}: no videos")
        if not self.frames_dir.is_dir():
            problems.append(f"{self.frames_dir}: frame folder missing (the submission holds one PNG per JPEG)")
        n_frames = 0
        for name in names:
            img = self.frames_dir / name
            frames = sorted(p.stem for p in img.glob("*.jpg")) if img.is_dir() else []
            n_frames += len(frames)
            if require_frames and not frames:
                problems += check_frame_files(img, frames) or [f"{img}: no frames"]
            prompts = self.prompt_frames(name)
            if not prompts:
                problems.append(f"{self.annotations_dir / name}: no prompt annotation PNG")
            elif frames:
                problems += [f"{self.annotations_dir / name / (p + '.png')}: not a frame of {img}" for p in prompts
                             if p not in set(frames)]
        problems += check_expected({"videos": len(names), "frames": n_frames}, expected, self.root)
        return problems


__all__ = ["FirstFrameVosLoader"]
