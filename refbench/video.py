"""Decode a video at exactly one frame per second, as MomentSeg's grounding eval sees it.

MomentSeg's ``tvg_eval.py`` reads Charades-STA / ActivityNet videos that were converted to 1 fps beforehand
(``data/VTG/NumPro_FT/videos_1FPS``) with decord, every frame (``dataset/TVG.py::_read_video_decord``), so a frame
index *is* a second and its predicted ``(start, end)`` frame indices are seconds, end inclusive
(Dmmm1997/MomentSeg @ a118d15). refbench reads the original videos and does that conversion itself:

* second ``k`` is represented by the decoded frame whose timestamp (relative to the first frame's) is nearest to
  ``k`` s, ties to the earlier frame; a second with no frame within half a second (a gap in the stream) repeats the
  previous second's frame;
* the seconds are ``0, 1, ..., floor(t_last)`` with ``t_last`` the last frame's timestamp, so a 1-fps video comes
  back frame for frame and a 10 s video at 25 fps gives 10 frames;
* frames come back as PIL RGB images at the video's own size.

This is ffmpeg's ``fps=1`` filter with ``round=near`` up to how the last partial second is counted; to match the
official pre-conversion bit for bit, convert with ffmpeg to 1 fps first (then decoding is the identity).

Decoder: PyAV (the FFmpeg bindings; maintained, wheels for current Pythons, frame-exact timestamps while decoding
sequentially). decord, which the official code uses, has had no release since 0.6.0 (2021) and no wheels for
Python >= 3.12.
"""

from __future__ import annotations

from refbench.errors import RefbenchInputError

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class VideoError(RefbenchInputError, RuntimeError):
    """A video cannot be opened or decoded (the message names the file)."""


@dataclass
class Decoded:
    frames: list[Any]  # PIL.Image RGB, one per second
    seconds: list[float] = field(default_factory=list)  # timestamp of the frame chosen for each second
    fps: float | None = None  # the stream's average frame rate
    n_decoded: int = 0  # frames decoded in all


def decode_1fps(path: str | Path) -> Decoded:
    """The frames of ``path`` at one per second (module doc)."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a refbench dependency
        raise VideoError("decoding videos needs PyAV: pip install av") from exc
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: video not found")
    best: dict[int, tuple[float, float, Any]] = {}  # second -> (distance, time, frame)
    t0: float | None = None
    t_last = 0.0
    n = 0
    fps = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            for i, frame in enumerate(container.decode(stream)):
                if frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                elif fps:
                    t = i / fps
                else:
                    raise VideoError(f"{path}: frames carry no timestamps and the stream no frame rate")
                if t0 is None:
                    t0 = t
                t -= t0
                t_last = max(t_last, t)
                n += 1
                for k in {math.floor(t), math.ceil(t)}:  # the seconds this frame may represent
                    d = abs(t - k)
                    # frames arrive in time order: strictly nearer wins, so a tie keeps the earlier frame
                    if d <= 0.5 and (k not in best or d < best[k][0]):
                        best[k] = (d, t, frame)
    except VideoError:
        raise
    except Exception as exc:  # noqa: BLE001 - av raises its own error types per failure
        raise VideoError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from exc
    if n == 0:
        raise VideoError(f"{path}: no frames")
    frames, seconds = [], []
    for k in range(math.floor(t_last) + 1):
        if k in best:
            _d, t, frame = best[k]
            img = frame.to_image()  # RGB24 PIL image at the stream's size
        else:  # a gap: the previous second's frame
            t, img = seconds[-1], frames[-1]
        frames.append(img)
        seconds.append(t)
    return Decoded(frames=frames, seconds=seconds, fps=fps, n_decoded=n)


__all__ = ["Decoded", "VideoError", "decode_1fps"]
