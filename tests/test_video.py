"""1-fps decoding for temporal grounding: on synthetic videos whose frames encode their own timestamp."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refbench.video import VideoError, decode_1fps


def _write(path, fps: Fraction, n: int, start_pts: int = 0):
    """An MPEG-4 video whose frame i shows i in binary as 8 black / white bars (its timestamp is i / fps)."""
    import av

    c = av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"})
    s = c.add_stream("mpeg4", rate=fps)
    s.width, s.height, s.pix_fmt = 64, 16, "yuv420p"
    s.codec_context.options = {"flags": "+bitexact", "qscale": "1"}
    for i in range(n):
        bars = np.repeat([255 if (i >> b) & 1 else 0 for b in range(8)], 8).astype(np.uint8)
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.broadcast_to(bars[None, :, None], (16, 64, 3))),
                                       format="rgb24")
        f.pts = start_pts + i
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()


def _index_of(img) -> int:
    a = np.asarray(img.convert("L"), dtype=np.float64)
    return sum(1 << b for b in range(8) if a[:, 8 * b:8 * b + 8].mean() > 128)


def _expected(fps: float, n: int) -> list[int]:
    """The documented rule: second k -> the frame nearest to k s, ties to the earlier; seconds 0..floor(t_last)."""
    times = [i / fps for i in range(n)]
    out = []
    for k in range(math.floor(times[-1]) + 1):
        out.append(min(range(n), key=lambda i: (abs(times[i] - k), i)))
    return out


@pytest.mark.parametrize("fps,n", [(Fraction(1), 12), (Fraction(5, 2), 26), (Fraction(4), 41), (Fraction(7), 50),
                                   (Fraction(30000, 1001), 95)])
def test_one_frame_per_second(tmp_path, fps, n):
    path = tmp_path / "v.mp4"
    _write(path, fps, n)
    dec = decode_1fps(path)
    want = _expected(float(fps), n)
    assert [_index_of(f) for f in dec.frames] == want
    assert dec.n_decoded == n and dec.fps == pytest.approx(float(fps))
    assert all(f.mode == "RGB" and f.size == (64, 16) for f in dec.frames)
    if fps == 1:
        assert want == list(range(n))  # a 1-fps video comes back frame for frame, as the official eval reads it
    assert dec.seconds == pytest.approx([i / float(fps) for i in want])


def test_ties_go_to_the_earlier_frame(tmp_path):
    _write(tmp_path / "v.mp4", Fraction(5, 2), 6)  # frames at 0, .4, .8, 1.2, 1.6, 2.0: second 1 ties .8 / 1.2
    assert [_index_of(f) for f in decode_1fps(tmp_path / "v.mp4").frames] == [0, 2, 5]


def test_timestamps_are_relative_to_the_first_frame(tmp_path):
    _write(tmp_path / "v.mp4", Fraction(2), 9, start_pts=7)
    assert [_index_of(f) for f in decode_1fps(tmp_path / "v.mp4").frames] == [0, 2, 4, 6, 8]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match=r"missing.mp4: video not found"):
        decode_1fps(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match=r"bad.mp4: cannot decode"):
        decode_1fps(bad)


def test_demo_videos(tmp_path):
    from refbench.demo import TSG_VIDEO_FPS, ensure_demo

    base = ensure_demo(tmp_path / "demo")
    from refbench.data.grounding import CharadesSTALoader

    loader = CharadesSTALoader(base / "charades_sta", split="test")
    durations = loader.durations()
    for vid in sorted({s.video for s in loader.samples()}):
        dec = decode_1fps(loader.video_path(vid))
        n = int(durations[vid] * TSG_VIDEO_FPS)
        assert dec.n_decoded == n and len(dec.frames) == (n - 1) // TSG_VIDEO_FPS + 1
