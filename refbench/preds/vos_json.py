"""Semi-supervised VOS predictions as frame-keyed RLE JSON: ``{video: {obj_id: {frame: RLE or null}}}``.

The file ``refbench run`` writes for the ``vos`` task (:mod:`refbench.runs.vos`), readable by every VOS protocol
(``refbench eval``) and exporter. Each RLE is COCO ``{"size": [H, W], "counts": str}`` (checked by
:func:`refbench.rle.check_rle` before decoding); ``null`` is an empty mask on that frame. Keying by frame name gives
the alignment a positional list cannot: SA-V objects have frame lists of their own, and a prediction may cover more
frames than are scored (SA-V's 24 fps frames, LVOS's full frame rate), exactly as a PNG tree does.

It is read in either layout of :mod:`refbench.preds.masks`:

* ``"sequence"`` (DAVIS, MOSE, YouTube-VOS, LVOS: ``<seq>/<frame>.png`` indexed): object ids must be integers
  1-254; a frame's index map paints every object's mask with its id; two objects on one pixel are refused (a palette
  PNG cannot hold both). A frame is missing when no object has an entry for it; a video with no objects at all is
  predicted, and empty, on every frame.
* ``"expression"`` (SA-V, SeCVOS: ``<video>/<obj>/<frame>.png``): the object id is the expression id (the object
  folder, ``"000"``); masks are 0/1.

A list of RLEs per object (the positional ``{seq: {obj: [...]}}`` form) is :class:`refbench.preds.masks.
RleSequenceSource`'s; :func:`is_frame_keyed` tells the two apart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

from refbench.data.base import PredictionError, safe_component
from refbench.preds.masks import MaskSource, SampleStatus, _check_video_name, _of

PathLike = Union[str, Path]

_LAST: dict[str, Any] = {}


def _load(path: Path) -> Any:
    """The parsed JSON of ``path`` (the last one read is kept, keyed by its size and mtime: a file is typically
    probed, then opened)."""
    from refbench.files import load_json

    try:
        st = os.stat(path)
        key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        key = None
    if key is not None and _LAST.get("key") == key:
        return _LAST["doc"]
    doc = load_json(path, PredictionError, "prediction file")
    _LAST.clear()
    if key is not None:
        _LAST.update(key=key, doc=doc)
    return doc


def is_frame_keyed(path: PathLike) -> bool:
    """Whether a ``.json`` prediction file is in this module's form (object values keyed by frame name)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        doc = _load(path)
    except PredictionError:
        return False
    if not isinstance(doc, dict) or not doc or not all(isinstance(v, dict) for v in doc.values()):
        return False
    inner = [x for v in doc.values() for x in v.values()]
    return all(isinstance(x, dict) for x in inner)


class RleFrameSource(MaskSource):
    """Frame-keyed RLE JSON (module doc) in ``layout`` ``"sequence"`` or ``"expression"``."""

    def __init__(self, path: PathLike, layout: str = "sequence", doc: Any = None) -> None:
        if layout not in ("sequence", "expression"):
            raise ValueError(f"unknown layout {layout!r}")
        self.path = Path(path)
        self.layout = layout
        doc = _load(self.path) if doc is None else doc
        if not isinstance(doc, dict) or not doc:
            raise PredictionError(f"{self.path}: expected a non-empty object {{video: {{obj_id: {{frame: RLE|null}}}}}}")
        self._videos: dict[str, dict[str, dict[str, Any]]] = {}
        for video, objs in doc.items():
            _check_video_name(video, self.path)
            if not isinstance(objs, dict):
                raise PredictionError(f"{self.path}: {video}: expected {{obj_id: {{frame: RLE or null}}}}")
            parsed: dict[str, dict[str, Any]] = {}
            for oid, frames in objs.items():
                safe_component(str(oid), "object id", self.path)
                if layout == "sequence":
                    try:
                        k = int(oid)
                    except (TypeError, ValueError):
                        k = -1
                    if not 1 <= k <= 254 or str(k) != str(oid):
                        raise PredictionError(f"{self.path}: {video}: object id {oid!r} is not an integer 1-254 "
                                              "(an indexed PNG's ids)")
                if not isinstance(frames, dict):
                    raise PredictionError(f"{self.path}: {video}/{oid} is not an object {{frame: RLE or null}}")
                for f in frames:
                    safe_component(str(f), "frame name", self.path)
                parsed[str(oid)] = frames
            self._videos[video] = parsed

    # -- listing --------------------------------------------------------------------------------
    def _frames_of(self, video: str, exp_id: str | None) -> set[str] | None:
        objs = self._videos.get(video)
        if objs is None:
            return None
        if self.layout == "expression":
            got = objs.get(str(exp_id))
            return None if got is None else set(got)
        return {f for frames in objs.values() for f in frames}

    def status(self, video: str, exp_id: str | None, frames: Sequence[str]) -> SampleStatus:
        objs = self._videos.get(video)
        if objs is None:
            return SampleStatus(False, False, tuple(frames))
        if self.layout == "expression" and str(exp_id) not in objs:
            return SampleStatus(True, False, tuple(frames))
        if self.layout == "sequence" and not objs:
            return SampleStatus(True, True, ())
        have = self._frames_of(video, exp_id) or set()
        return SampleStatus(True, True, tuple(f for f in frames if f not in have))

    def listed_frames(self, video: str, exp_id: str | None = None) -> list[str]:
        """The frame names stored for one video (sequence layout) or object (expression layout)."""
        return sorted(self._frames_of(video, exp_id) or ())

    # -- reading --------------------------------------------------------------------------------
    def _mask(self, rle: Any, where: str, size: tuple[int, int]) -> np.ndarray:
        from refbench.rle import decode_rle

        return decode_rle(rle, where, size, PredictionError)

    def read(self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int],
             fill_missing: bool = False) -> np.ndarray:
        out = np.zeros((len(frames), *size), dtype=np.uint8)
        st = self.status(video, exp_id, frames)
        if not st.complete and not fill_missing:
            what = f"{video}/{exp_id}" if self.layout == "expression" else video
            first = st.missing_frames[0] if st.missing_frames else "-"
            raise PredictionError(f"{self.path}: no prediction for {what}" +
                                  (f" frame {first}" if st.video_present else ""))
        objs = self._videos.get(video) or {}
        if self.layout == "expression":
            entries = objs.get(str(exp_id)) or {}
            for t, f in enumerate(frames):
                rle = entries.get(f)
                if rle is not None:
                    out[t] = self._mask(rle, f"{self.path}: {video}/{exp_id} frame {f}", size)
            return out
        for oid in sorted(objs, key=int):
            entries = objs[oid]
            k = int(oid)
            for t, f in enumerate(frames):
                rle = entries.get(f)
                if rle is None:
                    continue
                where = f"{self.path}: {video}/{oid} frame {f}"
                fg = self._mask(rle, where, size) != 0
                clash = fg & (out[t] != 0)
                if clash.any():
                    raise PredictionError(f"{where}: object {oid} overlaps object {int(out[t][clash][0])} on "
                                          f"{int(clash.sum())} pixel(s); this layout holds one id per pixel")
                out[t][fg] = k
        return out

    def frame_size(self, video: str, exp_id: str | None, frames: Sequence[str]) -> tuple[int, int] | None:
        from refbench.rle import rle_size

        objs = self._videos.get(video) or {}
        lists = [objs.get(str(exp_id)) or {}] if self.layout == "expression" else list(objs.values())
        for entries in lists:
            for f in frames:
                rle = entries.get(f)
                if rle is not None:
                    return rle_size(rle, f"{self.path}: {video} frame {f}", PredictionError)
        return None

    def describe(self, video: str, exp_id: str | None, frame: str) -> str:
        return f"{self.path}: {video}/{exp_id}/{frame}" if self.layout == "expression" else \
            f"{self.path}: {video} frame {frame}"

    def check_known(self, known: Mapping[str, Iterable[str] | None], dataset: Any = None) -> None:
        for video, objs in self._videos.items():
            if video not in known:
                raise PredictionError(f"{self.path}: video {video!r} is not in the dataset{_of(dataset)}")
            if self.layout == "expression":
                allowed = set(known[video] or ())
                for oid in objs:
                    if oid not in allowed:
                        raise PredictionError(f"{self.path}: object {video}/{oid} is not in the dataset{_of(dataset)}")


def open_frame_keyed(path: PathLike, layout: str) -> RleFrameSource | None:
    """An :class:`RleFrameSource` of ``path`` when it is a frame-keyed ``.json``, else None."""
    return RleFrameSource(path, layout) if is_frame_keyed(path) else None


__all__ = ["RleFrameSource", "is_frame_keyed", "open_frame_keyed"]
