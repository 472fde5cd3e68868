"""DAVIS-2017 / MOSE sequence loader and the Ref-DAVIS17 expression loader.

DAVIS-2017 layout (davisvideochallenge/davis2017-evaluation ``davis2017/davis.py``, commit
ac7c43fca936f9722837b7fbd337d284ba37004b)::

    <root>/JPEGImages/<res>/<seq>/<frame>.jpg
    <root>/Annotations/<res>/<seq>/<frame>.png          (palette PNG; index = object id, 255 = void)
    <root>/Annotations_unsupervised/<res>/<seq>/...     (the folder the unsupervised task reads)
    <root>/ImageSets/<year>/<split>.txt                 (one sequence name per line)

The official reader lists a sequence's frames as the sorted ``*.jpg`` of its image folder and reads masks as
palette *indices* (``np.array(Image.open(p))``). When the image folder is absent (an annotation-only root, as
in the golden data), the frames are the sorted ``*.png`` names of the annotation folder instead.
MOSE uses the same palette PNGs without the resolution level (``JPEGImages/<seq>``, ``Annotations/<seq>``):
pass ``resolution=None``; without an ``ImageSets`` file the sequences are the sorted sub-folders.

Ref-DAVIS17 in ReferFormer's converted layout (wjn922/ReferFormer ``tools/data/convert_davis_to_ytvos.py``)::

    <root>/meta_expressions/<split>/meta_expressions.json   (videos -> expressions {exp, obj_id}, frames)
    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/Annotations/<video>/<frame>.png            (moved from DAVIS Annotations_unsupervised/480p)

The converter writes, per object (objects sorted by their ``obj_id`` string), four consecutive expressions:
annotator 1 first-frame, annotator 1 full-video, annotator 2 first-frame, annotator 2 full-video; so the
expression at position ``p`` of a video belongs to annotator set ``anno_{p % 4}`` and object ``p // 4``.
:class:`RefDavisLoader` stores that set index in ``VideoExpression.type_id``.

Two scoring conventions (``docs/protocols.md`` #refdavis_a, #refdavis_b) need different views, both provided here:

* **Convention A** (wjn922/ReferFormer ``inference_davis.py`` + ``eval_davis.py`` +
  ``scripts/dist_test_davis.sh``, commit 9a2d4f65e7da887b5699166be11cb5dbf865957c; OnlineRefer
  ``inference_davis_online.py`` at b53dcd6c is the same code). Per video, ``num_obj = n_expressions // 4`` and,
  for annotator set ``anno_k`` (k = 0..3), the objects are the expressions at meta positions ``i * 4 + k``
  (i < num_obj). Their per-frame scores (sigmoid probabilities) are stacked behind a constant background
  plane of 0.1, scores below 0.5 are set to 0, and ``torch.argmax`` over that stack gives the indexed map:
  label ``i + 1`` for the ``i``-th object (its position, not its ``obj_id`` string), 0 for background. The
  maps are saved as palette PNGs ``<out>/valid/anno_<k>/<video>/<t:05d>.png`` with the palette of
  ``valid/Annotations/blackswan/00000.png`` (the DAVIS palette). For binary masks (what every stored
  prediction format holds: foreground = score 1.0 >= 0.5, background = 0 < 0.1) the argmax ties between
  overlapping objects, and ``torch.argmax`` returns the *first* maximal index (documented since torch 1.7;
  ReferFormer pins torch 1.8.1): **on overlap the earlier object (lower position i) wins**. That is
  :func:`merge_annotator_masks`. ``eval_davis.py`` then runs davis2017-evaluation ``DAVISEvaluation`` with
  ``task='unsupervised'``, ``gt_set='val'`` on each ``anno_<k>`` folder: the GT is DAVIS-2017
  ``Annotations_unsupervised/480p`` of the ``ImageSets/2017/val.txt`` sequences, which is exactly what the
  converter moved into ``valid/Annotations`` (so :meth:`RefDavisLoader.gt_indexed` is that GT, and the meta
  video order is the val.txt order). One global table per set; the reported number is the mean of the
  four sets (the author, wjn922/ReferFormer issue #30: "we average the results of four annotators").
  Use :meth:`RefDavisLoader.annotator_objects` / :meth:`RefDavisLoader.annotator_sets` /
  :meth:`RefDavisLoader.merged_sets`.
* **Convention B** (VISA ``tools/eval_davis17.py``, Sa2VA): MeViS-style per-expression scoring of every
  expression pooled; anno ids are numbered by sorting video names, then exp ids **as strings** ("10" before "2"),
  and the GT of an expression is ``Annotations PNG == obj_id`` (VISA ``refytvos_utils.encode_anno_mask``).
  Use :meth:`RefDavisLoader.pooled_samples` with :meth:`RefDavisLoader.gt_masks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import numpy as np

from refbench.data.base import DatasetError, VideoExpression, VideoSequence
from refbench.data.mevis import (
    check_expected,
    check_frame_files,
    checked_relpath,
    expressions_of,
    frames_of,
    image_size,
    read_json_file,
    videos_of,
)
from refbench.data.refytvos import read_palette_png

PathLike = Union[str, Path]

#: Annotator sets of Ref-DAVIS17, in ReferFormer's ``anno_0..anno_3`` order.
REF_DAVIS_ANNOTATOR_SETS = (0, 1, 2, 3)
REF_DAVIS_SET_NAMES = (
    "annotator1_first_frame",
    "annotator1_full_video",
    "annotator2_first_frame",
    "annotator2_full_video",
)


def _stack_same_size(arrays: list[np.ndarray], where: Path) -> np.ndarray:
    if not arrays:
        raise DatasetError(f"{where}: no frames")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DatasetError(f"{where}: annotation PNGs differ in size {sorted(shapes)}")
    return np.stack(arrays)


def merge_annotator_masks(masks: Sequence[np.ndarray], shape: Sequence[int] | None = None) -> np.ndarray:
    """Convention A merge of one annotator set: ``(T, H, W)`` uint8 map, label ``i + 1`` for ``masks[i]``.

    masks: the per-expression masks of the set's objects in object order, each ``(T, H, W)`` of any integer
    or bool dtype (non-zero = foreground). ReferFormer's rule (module doc) on binary masks: a pixel gets the
    label of the *first* object whose mask covers it, 0 where none does. shape: ``(T, H, W)`` of the result,
    needed only when ``masks`` is empty (a video with no objects gives all zeros).
    """
    if not masks:
        if shape is None:
            raise ValueError("merge_annotator_masks: no masks and no shape")
        return np.zeros(tuple(shape), dtype=np.uint8)
    if len(masks) > 255:
        raise ValueError(f"merge_annotator_masks: {len(masks)} objects do not fit uint8 labels")
    out = np.zeros(np.asarray(masks[0]).shape, dtype=np.uint8)
    for i, m in enumerate(masks):
        _paste_first_wins(out, m, i + 1, f"merge_annotator_masks: mask {i}")
    return out


def _paste_first_wins(out: np.ndarray, mask: Any, label: int, what: str) -> None:
    """``out[mask != 0 and out == 0] = label`` in place: the pasting step of :func:`merge_annotator_masks`."""
    m = np.asarray(mask)
    if m.shape != out.shape:
        raise ValueError(f"{what} has shape {m.shape}, expected {out.shape}")
    out[(m != 0) & (out == 0)] = label


class DavisLoader:
    """DAVIS-2017 (``resolution="480p"`` or ``"Full-Resolution"``) or MOSE (``resolution=None``) sequences.

    ``annotations`` names the mask folder: ``"Annotations"`` (semi-supervised) or ``"Annotations_unsupervised"``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "val",
        resolution: str | None = "480p",
        year: str = "2017",
        annotations: str = "Annotations",
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.resolution = resolution
        self.year = year
        level = (resolution,) if resolution else ()
        self.frames_dir = self.root.joinpath("JPEGImages", *level)
        self.annotations_dir = self.root.joinpath(annotations, *level)
        self.imageset_path = self.root / "ImageSets" / str(year) / f"{split}.txt"
        self._samples: list[VideoSequence] | None = None

    def sequence_names(self) -> list[str]:
        """Sequence names from ``ImageSets/<year>/<split>.txt``; for MOSE (no ImageSets) the sorted folders."""
        if self.imageset_path.is_file():
            try:
                text = self.imageset_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DatasetError(f"{self.imageset_path}: cannot read the sequence list ({exc})") from exc
            names = [line.strip() for line in text.splitlines() if line.strip()]
            for n in names:
                checked_relpath(n, "sequence name", self.imageset_path)
            return names
        if self.resolution is None:
            for folder in (self.frames_dir, self.annotations_dir):
                if folder.is_dir():
                    return sorted(p.name for p in folder.iterdir() if p.is_dir())
            raise DatasetError(f"{self.root}: neither {self.frames_dir} nor {self.annotations_dir} exists")
        raise DatasetError(f"{self.imageset_path}: sequence list not found")

    def _frames(self, seq: str) -> tuple[str, ...]:
        img = self.frames_dir / seq
        if img.is_dir():
            return tuple(sorted(p.stem for p in img.glob("*.jpg")))
        ann = self.annotations_dir / seq
        if ann.is_dir():
            return tuple(sorted(p.stem for p in ann.glob("*.png")))
        raise DatasetError(f"{self.root}: sequence {seq!r} has neither {img} nor {ann}")

    def samples(self) -> list[VideoSequence]:
        """One :class:`VideoSequence` per sequence in list order (listing folders only; nothing decoded)."""
        if self._samples is None:
            self._samples = [VideoSequence(video=s, frames=self._frames(s)) for s in self.sequence_names()]
        return list(self._samples)

    def frame_paths(self, seq: VideoSequence) -> list[Path]:
        """``JPEGImages[/<res>]/<seq>/<frame>.jpg`` per frame."""
        return [self.frames_dir / seq.video / f"{f}.jpg" for f in seq.frames]

    def annotation_paths(self, seq: VideoSequence) -> list[Path]:
        """``<annotations>[/<res>]/<seq>/<frame>.png`` per frame."""
        return [self.annotations_dir / seq.video / f"{f}.png" for f in seq.frames]

    def gt_masks(self, seq: VideoSequence) -> np.ndarray:
        """``(T, H, W)`` uint8 palette indices (0 background, k object k, 255 void), every frame required."""
        paths = self.annotation_paths(seq)
        frames = [read_palette_png(p) for p in paths[:1]]
        frames += [read_palette_png(p, frames[0].shape) for p in paths[1:]]  # the first frame's size, checked first
        return _stack_same_size(frames, self.annotations_dir / seq.video)

    def gt_frames(self, seq: VideoSequence) -> Iterator[np.ndarray]:
        """The frames of :meth:`gt_masks` one at a time, each ``(H, W)`` uint8 (every frame's size checked
        against the first's before it is inflated); for scorers that pack each frame as it is decoded."""
        paths = self.annotation_paths(seq)
        if not paths:
            raise DatasetError(f"{self.annotations_dir / seq.video}: no frames")
        first = read_palette_png(paths[0])
        yield first
        for p in paths[1:]:
            yield read_palette_png(p, first.shape)

    def first_frame_mask(self, seq: VideoSequence) -> np.ndarray:
        """Palette indices of the first frame (all that DAVIS test-dev and MOSE valid publish)."""
        return read_palette_png(self.annotation_paths(seq)[0])

    def check(
        self,
        require_frames: bool = True,
        expected: Mapping[str, int] | None = None,
        all_frames_annotated: bool = True,
    ) -> list[str]:
        """Every problem found, with its path: sequence list, image and annotation folders and files, counts.

        ``all_frames_annotated=False`` accepts first-frame-only annotations (MOSE valid, DAVIS test-dev).
        ``expected`` keys: ``videos`` (sequences) and ``frames``.
        """
        try:
            names = self.sequence_names()
        except DatasetError as exc:
            return [str(exc)]
        problems: list[str] = []
        if not names:
            problems.append(f"{self.imageset_path}: no sequences listed")
        if require_frames and not self.frames_dir.is_dir():
            problems.append(f"{self.frames_dir}: image folder missing")
        if not self.annotations_dir.is_dir():
            problems.append(f"{self.annotations_dir}: annotation folder missing")
        n_frames = 0
        for name in names:
            img, ann = self.frames_dir / name, self.annotations_dir / name
            if not img.is_dir() and not ann.is_dir():
                problems.append(f"{ann}: sequence folder missing (and {img})")
                continue
            frames = self._frames(name)
            n_frames += len(frames)
            if not frames:
                problems.append(f"{img if img.is_dir() else ann}: no frames")
                continue
            if require_frames:
                problems += check_frame_files(img, frames)
            if all_frames_annotated:
                problems += check_frame_files(ann, frames, ext=".png", what="annotation")
            else:
                problems += check_frame_files(ann, frames[:1], ext=".png", what="annotation")
        problems += check_expected({"videos": len(names), "frames": n_frames}, expected, self.root)
        return problems


class RefDavisLoader:
    """Ref-DAVIS17 in ReferFormer's converted layout (see the module doc for both scoring conventions)."""

    def __init__(self, root: PathLike, split: str = "valid") -> None:
        if split not in ("train", "valid"):
            raise ValueError(f"unknown Ref-DAVIS17 split {split!r}; expected 'train' or 'valid'")
        self.root = Path(root)
        self.split = split
        self.meta_path = self.root / "meta_expressions" / split / "meta_expressions.json"
        self.frames_dir = self.root / split / "JPEGImages"
        self.annotations_dir = self.root / split / "Annotations"
        self._videos: dict[str, Any] | None = None
        self._samples: list[VideoExpression] | None = None

    def _meta_videos(self) -> dict[str, Any]:
        if self._videos is None:
            self._videos = videos_of(read_json_file(self.meta_path, "meta expressions file"), self.meta_path)
        return self._videos

    def videos(self) -> list[str]:
        """Video names in meta order."""
        return list(self._meta_videos())

    def samples(self) -> list[VideoExpression]:
        """Every expression in meta order; ``type_id`` = annotator set (position in the video modulo 4)."""
        if self._samples is None:
            src = self.meta_path
            out: list[VideoExpression] = []
            for video, data in self._meta_videos().items():
                checked_relpath(video, "video name", src)
                frames = frames_of(video, data, src)
                for pos, (exp_id, exp) in enumerate(expressions_of(video, data, src).items()):
                    if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str):
                        raise DatasetError(f"{src}: expression {video}/{exp_id} has no 'exp' text")
                    try:
                        obj = int(exp["obj_id"])
                    except (KeyError, TypeError, ValueError) as exc:
                        raise DatasetError(f"{src}: expression {video}/{exp_id} has no integer obj_id") from exc
                    out.append(VideoExpression(video=video, exp_id=str(exp_id), text=exp["exp"], frames=frames,
                                               obj_ids=(obj,), type_id=pos % 4))
            self._samples = out
        return list(self._samples)

    # -- convention A ---------------------------------------------------------------------------
    def annotator_objects(self, video: str, k: int) -> list[VideoExpression]:
        """Convention A: the expressions of annotator set ``anno_k`` of ``video``, one per object.

        The ``i``-th entry is the object written with label ``i + 1`` in the merged indexed PNG (ReferFormer
        ``inference_davis.py`` takes positions ``i * 4 + k`` for ``i < n_expressions // 4``).
        """
        if k not in REF_DAVIS_ANNOTATOR_SETS:
            raise ValueError(f"annotator set must be one of {REF_DAVIS_ANNOTATOR_SETS}, got {k!r}")
        exps = [s for s in self.samples() if s.video == video]
        if not exps and video not in self._meta_videos():
            raise DatasetError(f"{self.meta_path}: unknown video {video!r}")
        return [exps[i * 4 + k] for i in range(len(exps) // 4)]

    def annotator_sets(self) -> dict[int, dict[str, list[VideoExpression]]]:
        """Convention A for every set: ``{k: {video: [object expressions, label i + 1 for entry i]}}``."""
        return {k: {v: self.annotator_objects(v, k) for v in self.videos()} for k in REF_DAVIS_ANNOTATOR_SETS}

    def gt_indexed(self, video: str) -> np.ndarray:
        """Convention A ground truth: ``(T, H, W)`` palette indices of ``<split>/Annotations/<video>``."""
        data = self._meta_videos().get(video)
        if data is None:
            raise DatasetError(f"{self.meta_path}: unknown video {video!r}")
        frames = frames_of(video, data, self.meta_path)
        folder = self.annotations_dir / video
        return _stack_same_size([read_palette_png(folder / f"{f}.png") for f in frames], folder)

    def merged_sets(
        self, video: str, read: Callable[[VideoExpression], np.ndarray], shape: Sequence[int]
    ) -> dict[int, np.ndarray]:
        """Convention A prediction maps of ``video``: ``{k: (T, H, W) uint8}`` for k = 0..3.

        read: returns the ``(T, H, W)`` predicted mask of one expression (non-zero = foreground); it is called
        once per expression of the video. shape: ``(T, H, W)`` of the maps (used when a set has no object).
        Labels and overlaps follow :func:`merge_annotator_masks` (ReferFormer ``inference_davis.py``).
        """
        exps = [s for s in self.samples() if s.video == video]
        if not exps and video not in self._meta_videos():
            raise DatasetError(f"{self.meta_path}: unknown video {video!r}")
        if len(exps) // 4 > 255:
            raise DatasetError(f"{self.meta_path}: video {video!r} has {len(exps) // 4} objects; uint8 maps hold 255")
        maps = {k: np.zeros(tuple(shape), dtype=np.uint8) for k in REF_DAVIS_ANNOTATOR_SETS}
        # expressions in meta order: position p = i * 4 + k; pasting in increasing i keeps "first wins",
        # and only one expression's masks are held at a time
        for p, s in enumerate(exps[: (len(exps) // 4) * 4]):
            _paste_first_wins(maps[p % 4], read(s), p // 4 + 1, f"{video}/{s.exp_id}: predicted masks")
        return maps

    def frame_size(self, video: str) -> tuple[int, int]:
        """``(H, W)`` of ``video``: from its first annotation PNG, else its first JPEG (header only)."""
        data = self._meta_videos().get(video)
        if data is None:
            raise DatasetError(f"{self.meta_path}: unknown video {video!r}")
        frames = frames_of(video, data, self.meta_path)
        if not frames:
            raise DatasetError(f"{self.meta_path}: video {video!r} lists no frames")
        for path in (self.annotations_dir / video / f"{frames[0]}.png", self.frames_dir / video / f"{frames[0]}.jpg"):
            if path.is_file():
                return image_size(path)
        raise DatasetError(f"{self.root}: video {video!r} has neither an annotation PNG nor a JPEG for frame "
                           f"{frames[0]!r}")

    # -- convention B ---------------------------------------------------------------------------
    def pooled_samples(self) -> list[VideoExpression]:
        """Convention B: every expression, videos sorted, then exp ids sorted **as strings**, with
        ``anno_ids = (str(n),)`` numbered in that order from 0 (VISA ``tools/eval_davis17.py``)."""
        by_video: dict[str, dict[str, VideoExpression]] = {}
        for s in self.samples():
            by_video.setdefault(s.video, {})[s.exp_id] = s
        out: list[VideoExpression] = []
        for video in sorted(by_video):
            for exp_id in sorted(by_video[video]):
                s = by_video[video][exp_id]
                out.append(VideoExpression(video=s.video, exp_id=s.exp_id, text=s.text, frames=s.frames,
                                           anno_ids=(str(len(out)),), obj_ids=s.obj_ids, type_id=s.type_id))
        return out

    def gt_masks(self, sample: VideoExpression) -> np.ndarray:
        """Convention B ground truth: ``(T, H, W)`` uint8, 1 where the palette index equals the ``obj_id``."""
        if len(sample.obj_ids) != 1:
            raise DatasetError(f"{self.meta_path}: {sample.key} has no single obj_id")
        folder = self.annotations_dir / sample.video
        idx = _stack_same_size([read_palette_png(folder / f"{f}.png") for f in sample.frames], folder)
        return (idx == sample.obj_ids[0]).astype(np.uint8)

    def frame_paths(self, sample: VideoExpression) -> list[Path]:
        """``<split>/JPEGImages/<video>/<frame>.jpg`` per frame."""
        return [self.frames_dir / sample.video / f"{f}.jpg" for f in sample.frames]

    def check(self, require_frames: bool = True, expected: Mapping[str, int] | None = None) -> list[str]:
        """Every problem found, with its path: meta, 4 expressions per object, frames, annotation PNGs, counts.

        ``expected`` keys: ``videos``, ``expressions``, ``frames``.
        """
        try:
            samples = self.samples()
        except DatasetError as exc:
            return [str(exc)]
        problems: list[str] = []
        counts = {"videos": 0, "expressions": len(samples), "frames": 0}
        for video in self.videos():
            exps = [s for s in samples if s.video == video]
            counts["videos"] += 1
            frames = frames_of(video, self._meta_videos()[video], self.meta_path)
            counts["frames"] += len(frames)
            if len(exps) % 4:
                problems.append(f"{self.meta_path}: video {video!r} has {len(exps)} expressions, not a multiple of "
                                "4 (one per annotator set and object)")
            if require_frames:
                problems += check_frame_files(self.frames_dir / video, frames)
            problems += check_frame_files(self.annotations_dir / video, frames, ext=".png", what="annotation")
        problems += check_expected(counts, expected, self.meta_path)
        return problems


__all__ = ["DavisLoader", "RefDavisLoader", "REF_DAVIS_ANNOTATOR_SETS", "REF_DAVIS_SET_NAMES", "merge_annotator_masks"]
