"""MeViS and ReVOS loaders: expressions from ``meta_expressions*.json``, ground truth from RLE ``mask_dict``.

Layout facts (with their sources):

* MeViS (henghuiding/MeViS README and ``lmpm/data/datasets/mevis.py``; ``tools/eval_mevis.py``, commit
  7c0620b9dc0ab7802747957f221674f175c8a47b): ``<root>/<split>/meta_expressions.json`` with
  ``{"videos": {vid: {"expressions": {exp_id: {"exp", "obj_id", "anno_id"}}, "vid_id", "frames"}}}``,
  ``<root>/<split>/mask_dict.json`` (``str(anno_id)`` -> one COCO RLE or ``null`` per frame, aligned with
  ``frames``) and ``<root>/<split>/JPEGImages/<video>/<frame>.jpg``. Splits: ``train``, ``valid_u`` and
  ``valid``; ``valid`` ships no ``mask_dict.json`` (its GT is held by the evaluation server).
* ReVOS (cilinyan/VISA ``tools/eval_revos.py`` and ``tools/generate_foreground_mask.py``, commit
  ec158fde9cdf87f702399c73618aa0f1127062e9): ``<root>/meta_expressions_valid_.json`` (MeViS layout plus
  per-video ``height``/``width`` and per-expression ``type_id``), ``<root>/mask_dict.json``,
  ``<root>/mask_dict_foreground.json`` (``video -> {"masks_rle": [RLE per frame], "foreground_ratio": [...]}``)
  and ``<root>/JPEGImages/<video>/<frame>.jpg``. ReVOS video names contain ``/`` (e.g. ``UVO/all/<id>``),
  so they are nested folders below ``JPEGImages``.

Ground truth (``gt_masks``) follows the official scorers: a ``(T, H, W)`` zero array to which the decoded RLE
of every ``anno_id`` is **added** frame by frame (``gt[t] += decode(rle)``; ``null`` adds nothing). Objects that
overlap therefore give the value 2 there. MeViS's J/F binarise later; ReVOS's A and R use the raw values
(``docs/protocols.md#revos``), which is why the sum is kept. The sum is taken in uint8, as VISA does.

The JSON files are read when first needed and cached; ``samples()`` reads only the meta file, and the mask
dictionaries are read only when a mask is requested (or by ``check``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from refbench import rle as _rle
from refbench.data.base import DatasetError, VideoExpression
from refbench.files import load_json, open_regular

PathLike = Union[str, Path]

MEVIS_SPLITS = ("train", "valid_u", "valid")
#: MeViS splits whose ``mask_dict.json`` is public.
MEVIS_SPLITS_WITH_GT = ("train", "valid_u")


# ----------------------------------------------------------------------------------------------
# Helpers shared by the video loaders (also used by refbench.data.refytvos and refbench.data.davis)
# ----------------------------------------------------------------------------------------------


def read_json_file(path: PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file; a missing, non-regular or unparsable file, or one naming a key twice in an object,
    raises :class:`DatasetError` naming it (:func:`refbench.files.load_json`)."""
    return load_json(Path(path), DatasetError, what)


def checked_relpath(name: Any, what: str, source: PathLike, allow_slash: bool = False) -> str:
    """Validate an id that becomes (part of) a path below the dataset root.

    ``allow_slash`` admits nested names such as ReVOS's ``UVO/all/<id>``; ``..``, empty, absolute and
    backslash components are always refused, so no id can escape the root.
    """
    if not isinstance(name, str):
        raise DatasetError(f"{source}: {what} {name!r} is not a string")
    parts = name.split("/") if allow_slash else [name]
    bad = (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or (not allow_slash and "/" in name)
        or any(p in ("", ".", "..") for p in parts)
    )
    if bad:
        raise DatasetError(f"{source}: {what} {name!r} is not a valid relative name")
    return name


def videos_of(meta: Any, path: PathLike) -> dict[str, Any]:
    """The ``videos`` mapping of a ``meta_expressions.json`` document, validated shallowly."""
    if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
        raise DatasetError(f"{path}: expected an object with a 'videos' mapping")
    return meta["videos"]


def expressions_of(video: str, data: Any, path: PathLike) -> dict[str, Any]:
    """The ``expressions`` mapping of one video entry."""
    if not isinstance(data, dict) or not isinstance(data.get("expressions"), dict):
        raise DatasetError(f"{path}: video {video!r} has no 'expressions' mapping")
    return data["expressions"]


def frames_of(video: str, data: Any, path: PathLike) -> tuple[str, ...]:
    """The ``frames`` list of one video entry (frame names without extension), in file order."""
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
        raise DatasetError(f"{path}: video {video!r} has no list of frame names under 'frames'")
    for f in frames:
        checked_relpath(f, f"frame name of video {video!r}", path)
    return tuple(frames)


def _id_list(value: Any, video: str, exp_id: str, key: str, path: PathLike) -> list:
    """An id or a list of ids (ints or strings; never floats, booleans or nested values)."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise DatasetError(f"{path}: expression {video}/{exp_id} has a malformed {key!r}: {_short(value)}")
    return values


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _optional_int(value: Any) -> int | None:
    """``int(value)`` for an int or a digit string (ReVOS ``type_id``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def decode_rle(rle: Any, where: str = "RLE", size: Sequence[int] | None = None) -> np.ndarray:
    """Check and decode one COCO RLE (``{"size": [H, W], "counts": str | bytes | [int, ...]}``) to an ``(H, W)``
    uint8 0/1 array; a list of RLEs gives their per-pixel sum (VISA sums such stacks). Malformed RLEs
    (:func:`refbench.rle.check_rle`) raise :class:`DatasetError` naming ``where``."""
    if isinstance(rle, list):
        if not rle:
            raise DatasetError(f"{where}: an empty list of RLEs")
        masks = [_decode_checked(r, f"{where} part {i}", size) for i, r in enumerate(rle)]
        return np.sum(masks, axis=0).astype(np.uint8)
    return _decode_checked(rle, where, size)


def _decode_checked(rle: Any, where: str, size: Sequence[int] | None) -> np.ndarray:
    return _rle.decode_rle(rle, where, size, DatasetError)


def _rle_problem(rle: Any, where: str = "RLE", size: Sequence[int] | None = None) -> str | None:
    """Why a mask_dict entry is not ``null`` or a well-formed RLE of ``size`` (None when it is fine)."""
    if rle is None:
        return None
    try:
        _rle.check_rle(rle, where, size, DatasetError)
    except DatasetError as exc:
        return str(exc)
    return None


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header only."""
    from PIL import Image

    from refbench.png import MAX_FRAME_PIXELS

    try:
        with open_regular(path, DatasetError, "image") as fh, Image.open(fh) as im:
            w, h = im.size
    except DatasetError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot read image ({exc})") from exc
    if h * w > MAX_FRAME_PIXELS:
        raise DatasetError(f"{path}: image declares {h}x{w} pixels, more than the {MAX_FRAME_PIXELS:,} refbench reads")
    return h, w


def check_expected(counts: Mapping[str, int], expected: Mapping[str, int] | None, source: PathLike) -> list[str]:
    """Compare measured counts with ``expected`` (e.g. ``{"videos": 140, "expressions": 2236}``)."""
    problems: list[str] = []
    for key, want in (expected or {}).items():
        if key not in counts:
            problems.append(f"{source}: unknown expected count {key!r} (known: {sorted(counts)})")
        elif counts[key] != want:
            problems.append(f"{source}: {counts[key]} {key}, expected {want}")
    return problems


def check_frame_files(folder: Path, frames: Sequence[str], ext: str = ".jpg", what: str = "frame") -> list[str]:
    """Problems with one video's folder of per-frame files: the folder missing, else each missing file."""
    if not folder.is_dir():
        return [f"{folder}: {what} folder missing"]
    return [f"{folder / (f + ext)}: {what} missing" for f in frames if not (folder / (f + ext)).is_file()]


# ----------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------


class _RleVideoLoader:
    """Common part of MeViS and ReVOS: a meta file, an RLE mask dict and a JPEG folder."""

    meta_path: Path
    mask_dict_path: Path | None
    frames_dir: Path
    nested_video_names = False

    #: bytes of per-object GT words kept for :meth:`gt_words` (objects are shared by a video's expressions)
    word_cache_bytes = 256 << 20

    def __init__(self) -> None:
        self._videos: dict[str, Any] | None = None
        self._mask_dict: dict[str, Any] | None = None
        self._samples: list[VideoExpression] | None = None
        self._words: OrderedDict[tuple[str, int, tuple[int, int]], np.ndarray] = OrderedDict()
        self._words_bytes = 0
        self._words_lock = threading.Lock()

    # -- meta -----------------------------------------------------------------------------------
    def _meta_videos(self) -> dict[str, Any]:
        if self._videos is None:
            self._videos = videos_of(read_json_file(self.meta_path, "meta expressions file"), self.meta_path)
        return self._videos

    def samples(self) -> list[VideoExpression]:
        """Every expression, in the order of the meta file (videos, then expressions)."""
        if self._samples is None:
            out: list[VideoExpression] = []
            src = self.meta_path
            for video, data in self._meta_videos().items():
                checked_relpath(video, "video name", src, allow_slash=self.nested_video_names)
                frames = frames_of(video, data, src)
                height = data.get("height")
                width = data.get("width")
                for exp_id, exp in expressions_of(video, data, src).items():
                    if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str):
                        raise DatasetError(f"{src}: expression {video}/{exp_id} has no 'exp' text")
                    anno = _id_list(exp.get("anno_id"), video, exp_id, "anno_id", src)
                    objs = _id_list(exp.get("obj_id"), video, exp_id, "obj_id", src)
                    try:
                        obj_ids = tuple(int(o) for o in objs)
                    except (TypeError, ValueError, OverflowError) as exc:
                        raise DatasetError(f"{src}: expression {video}/{exp_id} has a non-integer obj_id") from exc
                    type_id = exp.get("type_id")
                    out.append(
                        VideoExpression(
                            video=video,
                            exp_id=str(exp_id),
                            text=exp["exp"],
                            frames=frames,
                            anno_ids=tuple(str(a) for a in anno),
                            obj_ids=obj_ids,
                            type_id=_optional_int(type_id),
                            height=int(height) if isinstance(height, int) else None,
                            width=int(width) if isinstance(width, int) else None,
                        )
                    )
            self._samples = out
        return list(self._samples)

    def videos(self) -> list[str]:
        """Video names in meta order."""
        return list(self._meta_videos())

    def frame_paths(self, sample: VideoExpression) -> list[Path]:
        """``JPEGImages/<video>/<frame>.jpg`` for every frame of the sample, in scoring order."""
        folder = self.frames_dir / sample.video
        return [folder / f"{f}.jpg" for f in sample.frames]

    # -- masks ----------------------------------------------------------------------------------
    def _masks(self) -> dict[str, Any]:
        if self.mask_dict_path is None:
            raise DatasetError(f"{self.meta_path.parent}: no mask_dict.json for this split (GT not public)")
        if self._mask_dict is None:
            d = read_json_file(self.mask_dict_path, "mask dict")
            if not isinstance(d, dict):
                raise DatasetError(f"{self.mask_dict_path}: expected an object anno_id -> list of RLE")
            self._mask_dict = d
        return self._mask_dict

    def _frame_size(self, sample: VideoExpression) -> tuple[int, int]:
        """(H, W) when none of the sample's own RLEs says it: meta, another object of the video, the JPEG."""
        if sample.height and sample.width:
            return sample.height, sample.width
        masks = self._masks()
        for other in self.samples():
            if other.video != sample.video:
                continue
            for aid in other.anno_ids:
                rles = masks.get(aid)
                for t, rle in enumerate(rles if isinstance(rles, list) else ()):
                    if rle is not None:
                        return _rle.rle_size(rle, f"{self.mask_dict_path}: anno_id {aid!r} frame {t}", DatasetError)
        paths = self.frame_paths(sample)
        if paths and paths[0].is_file():
            return image_size(paths[0])
        raise DatasetError(
            f"{self.mask_dict_path}: cannot tell the frame size of {sample.key} ({self.meta_path}): every RLE is "
            "null and "
            f"{paths[0] if paths else self.frames_dir / sample.video} is missing"
        )

    def _anno_lists(self, sample: VideoExpression) -> tuple[list[list], tuple[int, int]]:
        """The sample's per-anno_id RLE lists (checked against its frames) and its frame size (the meta's size,
        else the first RLE's, else :meth:`_frame_size`); :meth:`gt_masks` and :meth:`gt_words` both read through
        it."""
        masks = self._masks()
        src = self.mask_dict_path
        per_anno = []
        for aid in sample.anno_ids:
            if aid not in masks:
                raise DatasetError(f"{src}: anno_id {aid!r} of {sample.key} (listed in {self.meta_path}) is missing")
            rles = masks[aid]
            if not isinstance(rles, list) or len(rles) != len(sample.frames):
                n = len(rles) if isinstance(rles, list) else "no"
                raise DatasetError(
                    f"{src}: anno_id {aid!r} has {n} RLE entries but {sample.key} has {len(sample.frames)} frames"
                )
            per_anno.append(rles)
        size: tuple[int, int] | None = (sample.height, sample.width) if sample.height and sample.width else None
        if size is None:
            first = next(((aid, t, rle) for aid, rles in zip(sample.anno_ids, per_anno)
                          for t, rle in enumerate(rles) if rle is not None), None)
            size = (_rle.rle_size(first[2], f"{src}: anno_id {first[0]!r} frame {first[1]}", DatasetError)
                    if first else self._frame_size(sample))
        return per_anno, size

    def gt_words(self, sample: VideoExpression) -> tuple[np.ndarray, tuple[int, int]]:
        """The ground truth as the scorers' words: ``((T, H, ceil(W / 64)) uint64, (H, W))``, bit set where
        :meth:`gt_masks` is non-zero (MeViS's J and F binarise the sum). Each object's RLEs are checked and
        decoded straight into words (:func:`refbench.data.rle_words.rle_list_words`), once per video: the
        words are kept for the video's other expressions (up to :attr:`word_cache_bytes`); the union is an OR
        of words. Read-only."""
        from refbench.data.rle_words import rle_list_words
        from refbench.metrics._bits import n_words, pack_numpy

        per_anno, size = self._anno_lists(sample)
        if len(per_anno) >= 256:  # the uint8 sum can wrap to 0 where 256 objects overlap: take it literally
            return pack_numpy(self.gt_masks(sample)), size
        n = len(sample.frames)
        src = self.mask_dict_path
        union: np.ndarray | None = None
        for aid, rles in zip(sample.anno_ids, per_anno):
            key = (aid, n, size)
            with self._words_lock:
                words = self._words.get(key)
                if words is not None:
                    self._words.move_to_end(key)
            if words is None:
                words = rle_list_words(rles, size, lambda t, aid=aid: f"{src}: anno_id {aid!r} frame {t}",
                                       DatasetError)
                words.flags.writeable = False
                with self._words_lock:
                    if key not in self._words:
                        self._words[key] = words
                        self._words_bytes += words.nbytes
                        while self._words_bytes > self.word_cache_bytes and len(self._words) > 1:
                            _k, old = self._words.popitem(last=False)
                            self._words_bytes -= old.nbytes
            if union is None:
                union = words
            elif union is not words:
                union = np.bitwise_or(union, words, out=union if union.flags.writeable else None)
        if union is None:
            union = np.zeros((n, size[0], n_words(size[1])), dtype=np.uint64)
        union.flags.writeable = False
        return union, size

    def gt_masks(self, sample: VideoExpression) -> np.ndarray:
        """``(T, H, W)`` uint8: per frame the **sum** of the sample's decoded anno_id RLEs (see module doc)."""
        per_anno, size = self._anno_lists(sample)
        src = self.mask_dict_path
        out = np.zeros((len(sample.frames), *size), dtype=np.uint8)
        for aid, rles in zip(sample.anno_ids, per_anno):
            for t, rle in enumerate(rles):
                if rle is None:
                    continue
                # every RLE is checked (well-formed, runs adding up to H x W, the frame's size) before decoding
                out[t] += _decode_checked(rle, f"{src}: anno_id {aid!r} frame {t}", size)
        return out

    # -- checks ---------------------------------------------------------------------------------
    def _check_meta_and_masks(self, problems: list[str], require_frames: bool) -> dict[str, int]:
        try:
            samples = self.samples()
        except DatasetError as exc:
            problems.append(str(exc))
            return {}
        counts = {
            "videos": len({s.video for s in samples}),
            "expressions": len(samples),
            "frames": sum(len(self._meta_videos()[v]["frames"]) for v in {s.video for s in samples}),
        }
        if self.mask_dict_path is not None:
            try:
                masks = self._masks()
            except DatasetError as exc:
                problems.append(str(exc))
                masks = None
            if masks is not None:
                seen: set[tuple[str, int]] = set()
                sizes: dict[str, tuple[int, int]] = {}  # each video's frame size, from its first RLE
                for s in samples:
                    for aid in s.anno_ids:
                        if (aid, len(s.frames)) in seen:
                            continue
                        seen.add((aid, len(s.frames)))
                        if aid not in masks:
                            problems.append(f"{self.mask_dict_path}: anno_id {aid!r} of {s.key} (listed in "
                                            f"{self.meta_path}) is missing")
                            continue
                        rles = masks[aid]
                        if not isinstance(rles, list):
                            problems.append(f"{self.mask_dict_path}: anno_id {aid!r} is not a list of RLEs")
                            continue
                        if len(rles) != len(s.frames):
                            problems.append(
                                f"{self.mask_dict_path}: anno_id {aid!r} has {len(rles)} RLE entries but video "
                                f"{s.video!r} has {len(s.frames)} frames"
                            )
                        for t, rle in enumerate(rles):
                            where = f"{self.mask_dict_path}: anno_id {aid!r} frame {t}"
                            size = (s.height, s.width) if s.height and s.width else sizes.get(s.video)
                            why = _rle_problem(rle, where, size)
                            if why:
                                problems.append(why)
                            elif rle is not None:
                                sizes.setdefault(s.video, (rle["size"][0], rle["size"][1]))
        if require_frames:
            done: set[str] = set()
            for s in samples:
                if s.video not in done:
                    done.add(s.video)
                    problems.extend(check_frame_files(self.frames_dir / s.video, s.frames))
        return counts


class MevisLoader(_RleVideoLoader):
    """MeViS ``train`` / ``valid_u`` / ``valid`` below ``root`` (see the module doc for the layout)."""

    def __init__(self, root: PathLike, split: str = "valid_u") -> None:
        super().__init__()
        if split not in MEVIS_SPLITS:
            raise ValueError(f"unknown MeViS split {split!r}; expected one of {MEVIS_SPLITS}")
        self.root = Path(root)
        self.split = split
        base = self.root / split
        self.meta_path = base / "meta_expressions.json"
        self.mask_dict_path = base / "mask_dict.json" if split in MEVIS_SPLITS_WITH_GT else None
        self.frames_dir = base / "JPEGImages"

    @property
    def has_gt(self) -> bool:
        """Whether this split's ground truth is public (``mask_dict.json`` shipped)."""
        return self.mask_dict_path is not None

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, each naming its path; empty when the split is usable.

        ``require_frames=False`` accepts an annotation-only root (no ``JPEGImages``). ``expected`` compares
        counts: keys ``videos``, ``expressions``, ``frames``.
        """
        problems: list[str] = []
        counts = self._check_meta_and_masks(problems, require_frames)
        if counts:
            problems.extend(check_expected(counts, expected, self.meta_path))
        return problems


class RevosLoader(_RleVideoLoader):
    """ReVOS (``split="valid"``; VISA's file names) below ``root``; see the module doc for the layout.

    ``samples()`` fill ``type_id`` (0 referring, 1 reasoning, 2 no target) and the per-video ``height``/``width``.
    """

    nested_video_names = True  # ReVOS names such as UVO/all/<id> are nested folders

    def __init__(self, root: PathLike, split: str = "valid") -> None:
        super().__init__()
        if split != "valid":
            raise ValueError(f"unknown ReVOS split {split!r}; only 'valid' (meta_expressions_valid_.json) is supported")
        self.root = Path(root)
        self.split = split
        self.meta_path = self.root / "meta_expressions_valid_.json"
        self.mask_dict_path = self.root / "mask_dict.json"
        self.foreground_path = self.root / "mask_dict_foreground.json"
        self.frames_dir = self.root / "JPEGImages"
        self._foreground: dict[str, Any] | None = None

    def _fg(self) -> dict[str, Any]:
        if self._foreground is None:
            d = read_json_file(self.foreground_path, "foreground mask dict")
            if not isinstance(d, dict):
                raise DatasetError(f"{self.foreground_path}: expected an object video -> {{'masks_rle': [...]}}")
            self._foreground = d
        return self._foreground

    def foreground_masks(self, video: str) -> np.ndarray:
        """``(T, H, W)`` uint8 foreground (union of every object of the video), one RLE per frame.

        ``mask_dict_foreground.json`` is produced by VISA ``tools/generate_foreground_mask.py``; the scorer
        decodes each frame's RLE and sums a stacked result over its last axis, as done here.
        """
        fg = self._fg()
        entry = fg.get(video)
        if not isinstance(entry, dict) or not isinstance(entry.get("masks_rle"), list):
            raise DatasetError(f"{self.foreground_path}: video {video!r} has no 'masks_rle' list")
        rles = entry["masks_rle"]
        n = len(frames_of(video, self._meta_videos().get(video), self.meta_path))
        if len(rles) != n:
            raise DatasetError(f"{self.foreground_path}: video {video!r} has {len(rles)} RLEs for {n} frames")
        frames = []
        size = None
        for t, rle in enumerate(rles):
            where = f"{self.foreground_path}: video {video!r} frame {t}"
            if rle is None:
                raise DatasetError(f"{where}: is null, not an RLE")
            frames.append(decode_rle(rle, where, size))
            size = frames[-1].shape
        if not frames:
            raise DatasetError(f"{self.foreground_path}: video {video!r} has no frames")
        if len({f.shape for f in frames}) != 1:
            raise DatasetError(f"{self.foreground_path}: video {video!r} has RLEs of different sizes")
        return np.stack(frames).astype(np.uint8, copy=False)

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """As :meth:`MevisLoader.check`, plus the foreground file: one entry per video, one RLE per frame."""
        problems: list[str] = []
        counts = self._check_meta_and_masks(problems, require_frames)
        if counts:
            try:
                fg = self._fg()
            except DatasetError as exc:
                problems.append(str(exc))
                fg = None
            if fg is not None:
                for video, data in self._meta_videos().items():
                    entry = fg.get(video)
                    if not isinstance(entry, dict) or not isinstance(entry.get("masks_rle"), list):
                        problems.append(f"{self.foreground_path}: video {video!r} is missing or has no 'masks_rle'")
                    elif len(entry["masks_rle"]) != len(data["frames"]):
                        problems.append(
                            f"{self.foreground_path}: video {video!r} has {len(entry['masks_rle'])} RLE entries "
                            f"but {len(data['frames'])} frames"
                        )
                    else:
                        for t, rle in enumerate(entry["masks_rle"]):
                            where = f"{self.foreground_path}: video {video!r} frame {t}"
                            why = _rle_problem(rle, where) if rle is not None else f"{where}: is null, not an RLE"
                            if why:
                                problems.append(why)
            for s in self.samples():
                if s.type_id not in (0, 1, 2):
                    problems.append(f"{self.meta_path}: expression {s.key} has type_id {s.type_id!r}, not 0/1/2")
            problems.extend(check_expected(counts, expected, self.meta_path))
        return problems


__all__ = [
    "MevisLoader",
    "RevosLoader",
    "MEVIS_SPLITS",
    "read_json_file",
    "decode_rle",
    "checked_relpath",
]
