"""The bundled demo datasets: small, procedurally generated, in the real on-disk layouts.

:func:`ensure_demo` writes, once, under the demo folder (:func:`refbench.cards.demo_dir`:
``$REFBENCH_DEMO_DIR``, else ``~/.cache/refbench/demo/v1``)::

    mevis/{train,valid_u}/{meta_expressions.json, mask_dict.json, JPEGImages/<video>/<frame>.jpg}
    mevis/valid/{meta_expressions.json, JPEGImages/<video>/<frame>.jpg}          (no public GT, like MeViS valid)
    charades_sta/charades_sta_{train,test}.txt, Charades_v1_{train,test}.csv
    charades_sta/videos/<vid>.mp4                                                (test split only, 4 fps, 64x48)
    refer_seg/refcoco/{refs(unc).p, instances.json}, refer_seg/images/train2014/<file_name>
    DEMO_VERSION                                                                 (written last: the build is complete)

so the real loaders (:class:`~refbench.data.mevis.MevisLoader`, :class:`~refbench.data.grounding.CharadesSTALoader`,
:class:`~refbench.data.res.RefCOCOLoader`) read it unchanged through the ``datasets/demo_*.yaml`` cards.

* MeViS: short videos (12-24 frames, 160x240) of a circle, a square and a triangle in distinct colours on a
  textured background, moving on straight lines, stopping, staying still, leaving or entering the frame.
  Expressions describe the motion ("the square moving to the right", "the two shapes moving up", "the circle that
  enters from the left") and refer to one or more objects; an expression's GT is the union of its ``anno_id`` masks.
  Masks are the *visible* pixels (later objects drawn on top), one COCO RLE per frame or ``null`` when the object
  is out of view or hidden. Schema as MeViS ``meta_expressions.json`` / ``mask_dict.json``.
* Charades-STA: ``<vid> <start> <end>##<sentence>`` lines; moments start early in the video far more often than
  late (a skewed prior a blind baseline can learn), durations in the csv's ``length`` column. The test videos
  (MPEG-4 at 4 fps, written with PyAV's bit-exact flags) show a white square while one of their moments is on.
* RefCOCO (unc): images of three shapes each, COCO polygon segmentations, refs with one to three sentences;
  splits ``train`` and ``val``.

Determinism: no numpy random generator (whose streams may change between numpy versions) and no floating-point
library calls in anything written; a SplitMix64 stream seeded by name, integer geometry, JSON with sorted keys and
fixed separators, JPEGs with fixed Pillow settings. Two builds with the same Pillow (libjpeg) give byte-identical
trees (:func:`demo_digest`). Nothing is generated on import.

Safety: a build is written to a temporary folder beside the target and renamed into place in one step, with the
marker written last inside it; an incomplete folder (no or stale marker) is never used but rebuilt, and builders
are serialised by a lock on a file beside the target (:func:`refbench.files.file_lock`).

:func:`run_demo` (behind ``refbench demo``) runs the blind prior and the oracle over the scored demo splits and
the prior over the private-GT split with the real runner (:func:`refbench.runs.runner.run`): stores, scorers,
submission export and leaderboard rows, exactly as ``refbench run`` would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from refbench.errors import RefbenchInputError

#: Bump when anything written changes: a folder built by another version is rebuilt.
DEMO_FORMAT = 2  # 2: Charades-STA test videos
MARKER = "DEMO_VERSION"
#: What a demo folder holds (a folder with anything else is never deleted).
DEMO_ENTRIES = ("mevis", "charades_sta", "refer_seg", MARKER)

MEVIS_SIZE = (160, 240)  # (H, W)
MEVIS_SPLITS = (("train", 8), ("valid_u", 4), ("valid", 3))
CHARADES_SPLITS = (("train", 16, 40), ("test", 5, 12))  # (split, videos, queries)
REFCOCO_SPLITS = (("train", 6), ("val", 4))  # (split, images)

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 89, 220),
    "yellow": (240, 200, 30),
    "purple": (148, 83, 189),
    "orange": (255, 127, 14),
}
_JPEG = {"format": "JPEG", "quality": 90, "subsampling": 0, "optimize": False, "progressive": False}


class DemoError(RefbenchInputError, RuntimeError):
    """The demo folder cannot be built or holds something else."""


# ----------------------------------------------------------------------------------------------
# Building blocks: a portable random stream, a recording writer
# ----------------------------------------------------------------------------------------------


class _Rng:
    """SplitMix64 seeded by a name: the same numbers on every platform and Python/numpy version."""

    _MASK = (1 << 64) - 1

    def __init__(self, *key: Any) -> None:
        self.state = int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self._MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self._MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self._MASK
        return z ^ (z >> 31)

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive)."""
        return lo + self.next() % (hi - lo + 1)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * ((self.next() >> 11) / float(1 << 53))

    def choice(self, seq):
        return seq[self.randint(0, len(seq) - 1)]

    def shuffled(self, seq) -> list:
        out = list(seq)
        for i in range(len(out) - 1, 0, -1):
            j = self.randint(0, i)
            out[i], out[j] = out[j], out[i]
        return out


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, **_JPEG)
    return buf.getvalue()


class _Writer:
    """Writes files below ``root`` and remembers their sha256, for the marker's digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hashes: dict[str, str] = {}

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.hashes[rel] = hashlib.sha256(data).hexdigest()

    def digest(self) -> str:
        return _digest_of(self.hashes)


def _digest_of(hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(hashes):
        h.update(f"{rel}\0{hashes[rel]}\n".encode())
    return h.hexdigest()


def demo_digest(base: str | os.PathLike) -> str:
    """sha256 over (relative path, sha256 of content) of every file of a demo folder but the marker."""
    base = Path(base)
    hashes = {
        p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in base.rglob("*")
        if p.is_file() and p.name != MARKER
    }
    return _digest_of(hashes)


# ----------------------------------------------------------------------------------------------
# MeViS: moving shapes
# ----------------------------------------------------------------------------------------------

#: Motion of each object of a video, cycled over the videos of all splits (global index % 8).
_PATTERNS = (
    ("right", "right", "still"),
    ("leaves", "up"),
    ("stops", "left", "left"),
    ("enters", "down", "still"),
    ("up", "up"),
    ("left", "stops"),
    ("right", "leaves", "down"),
    ("still", "enters"),
)
_STEP = {"right": (0, 1), "left": (0, -1), "up": (-1, 0), "down": (1, 0)}
_LINEAR = tuple(_STEP)
_COUNT = {2: "two", 3: "three"}


@dataclass(frozen=True)
class _Obj:
    shape: str
    colour: str
    r: int
    kind: str  # right / left / up / down / stops / leaves / enters / still
    direction: str  # the direction of the motion (for stops / leaves / enters / linear); "" when still
    centres: tuple[tuple[int, int], ...]  # (cy, cx) per frame


def _shape_mask(shape: str, cy: int, cx: int, r: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """(H, W) bool of one shape centred at (cy, cx) with radius r, on integer geometry."""
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy * dy + dx * dx <= r * r
    if shape == "square":
        s = (r * 4) // 5
        return (np.abs(dy) <= s) & (np.abs(dx) <= s)
    # triangle pointing up: apex at cy - r, base (width 2r) at cy + r
    return (dy <= r) & (2 * np.abs(dx) <= dy + r)


def _linear_track(rng: _Rng, direction: str, n: int, r: int, lane: int, h: int, w: int) -> list[tuple[int, int]]:
    """n centres moving in ``direction`` at constant integer speed, fully inside the frame throughout."""
    sy, sx = _STEP[direction]
    m = r + 2
    room = (w if sx else h) - 2 * m
    v = min(rng.randint(3, 6), room // max(n - 1, 1))
    travel = v * (n - 1)
    start = rng.randint(m, m + room - travel)
    if sx:
        x0 = start if sx > 0 else w - 1 - start
        return [(lane, x0 + sx * v * t) for t in range(n)]
    y0 = start if sy > 0 else h - 1 - start
    return [(y0 + sy * v * t, lane) for t in range(n)]


def _leaving_track(rng: _Rng, direction: str, n: int, r: int, lane: int, w: int) -> list[tuple[int, int]]:
    """Moves horizontally towards ``direction`` and is fully out of view from frame ~2n/3 on."""
    sx = _STEP[direction][1]
    exit_t = max(2, (2 * n) // 3)
    x0 = rng.randint(w // 3, w // 2) if sx > 0 else rng.randint(w // 2, (2 * w) // 3)
    dist = (w + r - x0) if sx > 0 else (x0 + r + 1)
    v = -(-dist // exit_t)  # ceil
    return [(lane, x0 + sx * v * t) for t in range(n)]


def _make_objects(rng: _Rng, kinds: tuple[str, ...], n: int, h: int, w: int) -> list[_Obj]:
    shapes = rng.shuffled(SHAPES)
    colours = rng.shuffled(list(COLOURS))
    used = {k for k in kinds if k in _LINEAR}
    objs = []
    for o, kind in enumerate(kinds):
        r = rng.randint(12, 18)
        # lanes: horizontal movers get distinct rows, vertical movers distinct columns
        band_h, band_w = h // len(kinds), w // len(kinds)
        lane_y = band_h * o + band_h // 2
        lane_x = band_w * o + band_w // 2
        lane_y = min(max(lane_y, r + 2), h - r - 3)
        if kind in _LINEAR:
            direction = kind
            lane = lane_y if _STEP[kind][1] else lane_x
            centres = _linear_track(rng, kind, n, r, lane, h, w)
        elif kind == "stops":
            direction = rng.choice([d for d in _LINEAR if d not in used])
            k = max(2, n // 2)
            lane = lane_y if _STEP[direction][1] else lane_x
            moving = _linear_track(rng, direction, k, r, lane, h, w)
            centres = moving + [moving[-1]] * (n - k)
        elif kind == "leaves":
            direction = rng.choice([d for d in ("left", "right") if d not in used])
            centres = _leaving_track(rng, direction, n, r, lane_y, w)
        elif kind == "enters":
            # entering from the left = leaving to the left, played backwards
            direction = rng.choice([d for d in ("left", "right") if d not in used])
            centres = _leaving_track(rng, direction, n, r, lane_y, w)[::-1]
        elif kind == "still":
            direction = ""
            centres = [(lane_y, rng.randint(r + 2, w - r - 3))] * n
        else:  # pragma: no cover - patterns are fixed
            raise ValueError(kind)
        objs.append(_Obj(shapes[o], colours[o], r, kind, direction, tuple(centres)))
    return objs


def _background(rng: _Rng, h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8 textured background: a muted colour, a checkerboard and an integer hash pattern."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.int64)
    cell = rng.choice((8, 10, 12, 16))
    base = np.array([rng.randint(90, 160) for _ in range(3)], dtype=np.int64)
    salt = rng.randint(0, 1000)
    checker = ((yy // cell + xx // cell) % 2) * 14
    by, bx = yy // 4, xx // 4  # 4x4 blocks of grain: texture that JPEG keeps small
    grain = (bx * 131 + by * 197 + ((bx * by + salt) % 7) * 29 + salt) % 23 - 11
    img = base[None, None, :] + (checker + grain)[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _phrase(obj: _Obj, rng: _Rng) -> str:
    name = f"{obj.colour} {obj.shape}" if rng.randint(0, 2) == 0 else obj.shape
    k, d = obj.kind, obj.direction
    if k in ("right", "left"):
        return f"the {name} moving to the {d}"
    if k in ("up", "down"):
        return f"the {name} moving {d}"
    if k == "stops":
        return f"the {name} that moves {d} and then stops"
    if k == "leaves":
        return f"the {name} leaving the frame to the {d}"
    if k == "enters":
        return f"the {name} that enters from the {d}"
    return f"the {name} that stays still"


def _group_expressions(objs: list[_Obj]) -> list[tuple[str, list[int]]]:
    """Multi-object expressions: shapes sharing a straight motion, else the moving ones, else all."""
    out: list[tuple[str, list[int]]] = []
    for d in _LINEAR:
        ids = [o for o, ob in enumerate(objs) if ob.kind == d]
        if len(ids) >= 2:
            where = f"to the {d}" if d in ("left", "right") else d
            out.append((f"the {_COUNT[len(ids)]} shapes moving {where}", ids))
    if not out:
        moving = [o for o, ob in enumerate(objs) if ob.kind != "still"]
        if len(moving) >= 2:
            out.append((f"the {_COUNT[len(moving)]} moving shapes", moving))
        else:
            a, b = objs[0].shape, objs[1].shape
            out.append((f"the {a} and the {b}", list(range(len(objs)))))
    return out


def _rle(mask: np.ndarray) -> dict[str, Any] | None:
    """COCO compressed RLE of an (H, W) bool mask with ``counts`` as str, or None when empty."""
    if not mask.any():
        return None
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _write_mevis(out: _Writer, prefix: str = "mevis") -> None:
    h, w = MEVIS_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.int64)
    g = 0  # global video index: names and motion patterns run on across splits
    for split, n_videos in MEVIS_SPLITS:
        videos: dict[str, Any] = {}
        mask_dict: dict[str, Any] = {}
        anno = 0
        for i in range(n_videos):
            name = f"shapes_{g:03d}"
            rng = _Rng("mevis", name)
            n = rng.randint(12, 24)
            objs = _make_objects(rng, _PATTERNS[g % len(_PATTERNS)], n, h, w)
            bg = _background(rng, h, w)
            frames = [f"{t:05d}" for t in range(n)]
            visible = np.zeros((len(objs), n, h, w), dtype=bool)
            for t in range(n):
                full = [_shape_mask(ob.shape, *ob.centres[t], ob.r, yy, xx) for ob in objs]
                img = bg.copy()
                covered = np.zeros((h, w), dtype=bool)
                for o in range(len(objs) - 1, -1, -1):  # last drawn is on top
                    visible[o, t] = full[o] & ~covered
                    covered |= full[o]
                for o, ob in enumerate(objs):
                    img[full[o]] = COLOURS[ob.colour]
                out.write(f"{prefix}/{split}/JPEGImages/{name}/{frames[t]}.jpg", _jpeg_bytes(img))
            anno_ids = list(range(anno, anno + len(objs)))
            anno += len(objs)
            if split != "valid":
                for o, aid in enumerate(anno_ids):
                    mask_dict[str(aid)] = [_rle(visible[o, t]) for t in range(n)]
            exprs = [(_phrase(ob, rng), [o]) for o, ob in enumerate(objs)]
            exprs += _group_expressions(objs)
            order = rng.shuffled(range(len(exprs)))
            expressions = {}
            for e, k in enumerate(order):
                text, ids = exprs[k]
                entry: dict[str, Any] = {"exp": text}
                if split != "valid":  # the real valid split hides its GT
                    entry["obj_id"] = ids
                    entry["anno_id"] = [anno_ids[o] for o in ids]
                expressions[str(e)] = entry
            videos[name] = {"expressions": expressions, "vid_id": i, "frames": frames}
            g += 1
        out.write(f"{prefix}/{split}/meta_expressions.json", _json_bytes({"videos": videos}))
        if split != "valid":
            out.write(f"{prefix}/{split}/mask_dict.json", _json_bytes(mask_dict))


# ----------------------------------------------------------------------------------------------
# Charades-STA: sentences and spans, no videos
# ----------------------------------------------------------------------------------------------

_ACTIONS = (
    "opens the door", "turns on the light", "sits down on a chair", "takes a cup from the table",
    "puts a book on the shelf", "closes the laptop", "drinks from a glass", "walks to the window",
    "picks up the phone", "throws a towel on the bed", "eats a sandwich", "washes the dishes",
    "stands up from the sofa", "holds a broom", "looks out the window", "takes off the shoes",
)
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CSV_HEAD = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"
_SCENES = ("Kitchen", "Bedroom", "Living room", "Bathroom", "Hallway")


def _write_charades(out: _Writer, prefix: str = "charades_sta") -> None:
    rng = _Rng("charades")
    seen: set[str] = set()
    for split, n_videos, n_queries in CHARADES_SPLITS:
        per_video = [n_queries // n_videos] * n_videos
        for v in range(n_queries - sum(per_video)):
            per_video[v] += 1
        lines: list[str] = []
        rows: list[str] = []
        for v in range(n_videos):
            vid = ""
            while not vid or vid in seen:
                vid = "".join(rng.choice(_ID_CHARS) for _ in range(5))
            seen.add(vid)
            duration = round(rng.uniform(20.0, 40.0), 2)
            sentences = []
            for _ in range(per_video[v]):
                # the skew: starts cluster early (start ~ duration * 0.5 * u^2), moments last 4-12 s
                u = rng.uniform(0.0, 1.0)
                start = round(duration * 0.5 * u * u, 1)
                end = round(min(start + rng.uniform(4.0, 12.0), duration - 0.1), 1)
                action = rng.choice(_ACTIONS)
                sentence = f"person {action}." if rng.randint(0, 3) else f"a person {action}."
                lines.append(f"{vid} {start:.1f} {end:.1f}##{sentence}")
                sentences.append(f"A person {action}.")
            scene = rng.choice(_SCENES)
            script = " ".join(sentences)
            rows.append(f'{vid},DEMO,{scene},7,7,Yes,"{script}",,,,{duration:.2f}')
        out.write(f"{prefix}/charades_sta_{split}.txt", ("\n".join(lines) + "\n").encode("utf-8"))
        out.write(f"{prefix}/Charades_v1_{split}.csv", ("\n".join([_CSV_HEAD] + rows) + "\n").encode("utf-8"))
        if split == "test":  # videos for the pixel-reading grounding adapters (the train split needs none)
            for row in rows:
                vid, duration = row.split(",")[0], float(row.rsplit(",", 1)[1])
                spans = [(float(ln.split()[1]), float(ln.split()[2].split("##")[0])) for ln in lines
                         if ln.split()[0] == vid]
                out.write(f"{prefix}/videos/{vid}.mp4", _tsg_video(vid, duration, spans))


#: demo TSG videos: small, at a frame rate that is not 1 so that 1-fps sampling is exercised
TSG_VIDEO_SIZE = (48, 64)  # (H, W)
TSG_VIDEO_FPS = 4


def _tsg_video(vid: str, duration: float, spans: list[tuple[float, float]]) -> bytes:
    """An MPEG-4 part 2 video of ``duration`` s at :data:`TSG_VIDEO_FPS` fps: a textured background with a bar whose
    position encodes the time, and a white square while any of the video's annotated moments is on. Encoded
    single-threaded with FFmpeg's bit-exact flags (PyAV), so a rebuild with the same PyAV gives the same bytes."""
    import tempfile
    from fractions import Fraction

    import av

    h, w = TSG_VIDEO_SIZE
    rng = _Rng("charades-video", vid)
    bg = _background(rng, h, w)
    n = max(1, int(duration * TSG_VIDEO_FPS))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "v.mp4")
        container = av.open(path, "w", format="mp4", options={"fflags": "+bitexact"})
        stream = container.add_stream("mpeg4", rate=Fraction(TSG_VIDEO_FPS, 1))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.thread_count = 1
        stream.codec_context.options = {"flags": "+bitexact", "threads": "1", "qscale": "4"}
        for i in range(n):
            t10 = (i * 10) // TSG_VIDEO_FPS  # tenths of a second, integer arithmetic
            img = bg.copy()
            x = (t10 * (w - 4)) // max(1, int(duration * 10))
            img[h - 6:h - 2, x:x + 4] = (20, 20, 20)
            if any(int(s * 10) <= t10 <= int(e * 10) for s, e in spans):
                img[8:24, 24:40] = (255, 255, 255)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        with open(path, "rb") as fh:
            return fh.read()


# ----------------------------------------------------------------------------------------------
# RefCOCO: images of shapes with polygon annotations and refs
# ----------------------------------------------------------------------------------------------

#: cos of k * 22.5 degrees, k = 0..4, to 4 decimals: a 16-gon without calling libm.
_COS16 = (1.0, 0.9239, 0.7071, 0.3827, 0.0)
_CATEGORIES = {"circle": 1, "square": 2, "triangle": 3}


def _unit16() -> list[tuple[float, float]]:
    pts = []
    for k in range(16):
        q, i = divmod(k, 4)
        c, s = _COS16[i], _COS16[4 - i]
        pts.append([(c, s), (-s, c), (-c, -s), (s, -c)][q])
    return pts


def _polygon(shape: str, cy: int, cx: int, r: int) -> list[float]:
    """COCO polygon [x1, y1, x2, y2, ...] (2 decimals, as in COCO) of a shape centred at (cy, cx)."""
    if shape == "circle":
        pts = [(cx + r * c, cy - r * s) for c, s in _unit16()]
    elif shape == "square":
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    else:
        pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    return [round(float(v), 2) for p in pts for v in p]


def _write_refcoco(out: _Writer, prefix: str = "refer_seg") -> None:
    from pycocotools import mask as mask_utils

    images, annotations, refs = [], [], []
    ann_id, ref_id, sent_id, image_id = 1001, 0, 0, 900001
    for split, n_images in REFCOCO_SPLITS:
        for _ in range(n_images):
            rng = _Rng("refcoco", image_id)
            h, w = (192, 256) if image_id % 2 else (224, 224)
            file_name = f"COCO_train2014_{image_id:012d}.jpg"
            bg = _background(rng, h, w)
            shapes = rng.shuffled(SHAPES)
            colours = rng.shuffled(list(COLOURS))
            sizes = rng.shuffled([rng.randint(14, 20), rng.randint(24, 30), rng.randint(34, w // 6)])
            positions = ("left", "middle", "right")
            img = bg.copy()
            objs = []
            for o in range(3):
                r = sizes[o]
                cx = (w * (2 * o + 1)) // 6
                cy = rng.randint(r + 4, h - r - 5)
                poly = _polygon(shapes[o], cy, cx, r)
                m = mask_utils.decode(mask_utils.frPyObjects([poly], h, w))[:, :, 0].astype(bool)
                img[m] = COLOURS[colours[o]]
                ys, xs = np.nonzero(m)
                x0, y0 = int(xs.min()), int(ys.min())
                bbox = [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": _CATEGORIES[shapes[o]],
                    "segmentation": [poly], "area": float(m.sum()), "bbox": bbox, "iscrowd": 0,
                })
                objs.append((ann_id, shapes[o], colours[o], positions[o], r))
                ann_id += 1
            out.write(f"{prefix}/images/train2014/{file_name}", _jpeg_bytes(img))
            images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
            biggest = max(objs, key=lambda ob: ob[4])
            for a, shape, colour, where, r in rng.shuffled(objs)[: rng.randint(2, 3)]:
                texts = [f"the {colour} {shape}", f"{shape} on the {where}"]
                if (a, r) == (biggest[0], biggest[4]):
                    texts.append("the biggest shape")
                texts = texts[: rng.randint(1, len(texts))]
                sentences = []
                for text in texts:
                    sentences.append({"tokens": text.split(), "raw": text, "sent_id": sent_id, "sent": text})
                    sent_id += 1
                refs.append({
                    "ref_id": ref_id, "ann_id": a, "image_id": image_id, "split": split,
                    "category_id": _CATEGORIES[shape], "file_name": f"COCO_train2014_{image_id:012d}_{a}.jpg",
                    "sent_ids": [s["sent_id"] for s in sentences], "sentences": sentences,
                })
                ref_id += 1
            image_id += 1
    categories = [{"id": i, "name": n, "supercategory": "shape"} for n, i in _CATEGORIES.items()]
    instances = {"images": images, "annotations": annotations, "categories": categories}
    out.write(f"{prefix}/refcoco/instances.json", _json_bytes(instances))
    import pickle

    # a JSON round trip gives every run the same object sharing, hence the same pickle bytes
    out.write(f"{prefix}/refcoco/refs(unc).p", pickle.dumps(json.loads(_json_bytes(refs)), protocol=2))


# ----------------------------------------------------------------------------------------------
# Build once, atomically
# ----------------------------------------------------------------------------------------------


def build_demo(target: str | os.PathLike) -> str:
    """Write the whole demo into the (new or empty) folder ``target``, marker last. Returns the digest.

    Not atomic by itself: :func:`ensure_demo` calls it on a temporary folder and renames that into place.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    out = _Writer(target)
    _write_mevis(out)
    _write_charades(out)
    _write_refcoco(out)
    digest = out.digest()
    marker = {"format": DEMO_FORMAT, "generator": "refbench.demo", "files": len(out.hashes), "sha256": digest}
    (target / MARKER).write_bytes(_json_bytes(marker) + b"\n")
    return digest


def read_marker(base: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of a demo folder, or None when it is absent or unreadable."""
    try:
        data = json.loads((Path(base) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(base: str | os.PathLike) -> bool:
    """Whether ``base`` holds a finished demo build of this format (its marker says so)."""
    marker = read_marker(base)
    return bool(marker) and marker.get("format") == DEMO_FORMAT and isinstance(marker.get("sha256"), str)


@contextmanager
def _build_lock(base: Path) -> Iterator[bool]:
    """An exclusive lock on ``.<name>.lock`` beside ``base`` (:func:`refbench.files.file_lock`), released by the
    OS if the process dies; yields True (held)."""
    from refbench.files import file_lock

    with file_lock(base.parent / f".{base.name}.lock"):
        yield True


def _clear_incomplete(base: Path, locked: bool) -> None:
    """Remove an unfinished build at ``base`` (and, under the lock, leftover temporary folders beside it)."""
    if locked:
        for left in base.parent.glob(f".{base.name}.tmp-*"):
            shutil.rmtree(left, ignore_errors=True)
    if not base.exists():
        return
    if not base.is_dir():
        raise DemoError(f"{base}: the demo folder is a file; remove it or set REFBENCH_DEMO_DIR elsewhere")
    foreign = sorted(p.name for p in base.iterdir() if p.name not in DEMO_ENTRIES)
    if foreign:
        raise DemoError(
            f"{base}: holds an unfinished demo build and other files ({', '.join(foreign[:5])}); "
            "point REFBENCH_DEMO_DIR at an empty or new folder"
        )
    trash = base.parent / f".{base.name}.tmp-stale-{os.getpid()}"
    os.rename(base, trash)
    shutil.rmtree(trash, ignore_errors=True)


def ensure_demo(base: str | os.PathLike | None = None) -> Path:
    """Build the demo under ``base`` (default :func:`refbench.cards.demo_dir`) unless already complete; return it.

    Safe when several processes call it at once and after a build that was killed half-way: the build goes to
    a temporary folder beside ``base``, which is renamed to ``base`` in one step once its marker is written.
    """
    if base is None:
        from refbench.cards import demo_dir

        base = demo_dir()
    base = Path(base).expanduser().absolute()
    if is_complete(base):
        return base
    base.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(base) as locked:
        if is_complete(base):  # another process finished while we waited
            return base
        _clear_incomplete(base, locked)
        tmp = Path(tempfile.mkdtemp(prefix=f".{base.name}.tmp-", dir=base.parent))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 would otherwise become the demo folder's mode
            build_demo(tmp)
            try:
                os.rename(tmp, base)
            except OSError:
                if not is_complete(base):  # not a concurrent winner: a real failure
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return base


# ----------------------------------------------------------------------------------------------
# ``refbench demo``: the real runner, scorers, exporter and leaderboard over the demo cards
# ----------------------------------------------------------------------------------------------

#: The demo splits with public ground truth, one per task: RefVOS, temporal grounding, RES.
DEMO_SCORED: tuple[str, ...] = ("demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val")
#: The demo split whose ground truth is private, like MeViS valid: a run of it ends in a submission zip.
DEMO_SUBMISSION = "demo_mevis_val"
#: (dataset card, model) in the order :func:`run_demo` runs them. The oracle is the sanity row: every
#: protocol must score it 100 (J&F, mIoU, cIoU 100.0, all in percent like every summary).
DEMO_RUNS: tuple[tuple[str, str], ...] = tuple(
    (ds, m) for ds in DEMO_SCORED for m in ("prior", "oracle")
) + ((DEMO_SUBMISSION, "prior"),)


@dataclass
class DemoRun:
    """One run of :func:`run_demo`: the runner's result and what became of its leaderboard rows."""

    dataset: str
    model: str
    result: Any  # refbench.runs.runner.RunResult
    leaderboard: str  # "appended", "present" (already there from an earlier demo), "off", "none" (no public GT)

    def line(self) -> str:
        """One compact line: model, dataset, headline metrics in percent (or the zip), reuse."""
        r = self.result
        if r.summary is not None:
            shown = "  ".join(f"{k} {v:.2f}" for k, v in _headline(r.summary["metrics"]))
            what = f"{shown}  (percent)"
        elif r.submission is not None:
            import zipfile

            with zipfile.ZipFile(r.submission) as zf:
                n = sum(1 for name in zf.namelist() if not name.endswith("/"))
            what = f"no public ground truth: submission zip {r.submission} ({n} frames)"
        else:
            what = "not scored"
        if r.predicted == 0 and r.reused:
            how = f"all {r.reused} samples reused from the store"
        elif r.reused:
            how = f"{r.predicted} samples predicted, {r.reused} reused"
        else:
            how = f"{r.predicted} samples predicted"
        return f"{self.model:<7} {self.dataset:<19} {what}  [{how}]"

    def to_dict(self) -> dict[str, Any]:
        r, s = self.result, self.result.summary
        return {
            "dataset": self.dataset, "model": self.model, "run_dir": str(r.run_dir),
            "protocol": s.get("protocol") if s else None, "scale": s.get("scale") if s else None,
            "metrics": dict(s["metrics"]) if s else None,
            "submission": str(r.submission) if r.submission is not None else None,
            "predicted": r.predicted, "reused": r.reused, "total": r.total, "leaderboard": self.leaderboard,
        }


def _headline(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    """The numeric metrics, headline ones first in the leaderboard's display order (J&F, J, F, ...)."""
    from refbench.leaderboard import HEADLINE_METRICS

    nums = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    first = [m for m in HEADLINE_METRICS if m in nums]
    return [(k, float(nums[k])) for k in first + [k for k in nums if k not in first]]


def run_demo(
    out: str | os.PathLike = "runs",
    device: str = "cpu",
    leaderboard: str | os.PathLike | None = None,
    runs: Iterable[tuple[str, str]] = DEMO_RUNS,
    on_run: Callable[[DemoRun], None] | None = None,
) -> list[DemoRun]:
    """Run each (dataset, model) of ``runs`` with :func:`refbench.runs.runner.run` into
    ``<out>/<dataset>/<model>-<fingerprint>``, the run directory ``refbench run`` gives the same run (default
    ``out``: ``runs``, as ``refbench run``), so ``refbench run`` then ``refbench demo`` share one run and its one
    set of leaderboard rows.

    Scored runs append their reproduced rows to ``leaderboard`` (a folder; None = no rows) unless the rows of
    that same finished run are already there. A second call finds every prediction in the run stores (nothing is
    predicted again) and rescores them: the same numbers. ``on_run`` is called after each run.
    """
    from refbench.cards import dataset_card
    from refbench.runs.runner import RunConfig, run
    from refbench.runs.store import StoreMismatch

    done: list[DemoRun] = []
    for dataset, model in runs:
        scored = dataset_card(dataset).has_public_gt
        target = str(leaderboard) if (scored and leaderboard is not None) else None
        config = RunConfig(model=model, dataset=dataset, device=device, leaderboard=target, runs_dir=str(out))
        try:
            result = run(config)
        except StoreMismatch as exc:
            raise DemoError(
                f"{Path(out) / dataset}: holds predictions of {model} made by another refbench or demo version; "
                f"delete it or pass another --out"
            ) from exc
        if not scored:
            status = "none"
        elif target is None:
            status = "off"
        else:  # the runner does not append the rows of a finished run twice
            status = "appended" if result.leaderboard_rows else "present"
        item = DemoRun(dataset, model, result, status)
        done.append(item)
        if on_run is not None:
            on_run(item)
    return done


def demo_leaderboard(directory: str | os.PathLike, datasets: Iterable[str] = DEMO_SCORED) -> str:
    """The leaderboard table of the demo ``datasets`` from the CSVs in ``directory`` only."""
    from refbench.leaderboard import format_rows, leaderboard_file, read_rows, select

    datasets = list(datasets)
    files = list(dict.fromkeys(leaderboard_file(ds, directory) for ds in datasets))
    rows = read_rows([f for f in files if f.is_file()])
    return format_rows([r for ds in datasets for r in select(rows, dataset=ds)])
