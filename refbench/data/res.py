"""Loaders for referring expression segmentation on images: RefCOCO / RefCOCO+ / RefCOCOg and ReasonSeg.

Thin wrappers over :mod:`refbench.data.refer` (which holds the official reading rules and GT builders) that
return :class:`~refbench.data.base.ImageExpression` samples, validate split names, and check the files.

* RefCOCO-style (``docs/protocols.md#lisa``; LISA ``utils/refer.py`` / ``ValDataset``, Sa2VA ``RESDataset``):
  ``<root>/<dataset>/refs(<split_by>).p`` + ``<root>/<dataset>/instances.json``; images, optional, at
  ``<root>/images/mscoco/images/train2014/<file_name>`` (LISA's layout; ``<root>/images/train2014`` when only that
  exists). refcoco and refcoco+ are scored on the ``unc`` partition (val, testA,
  testB), refcocog on ``umd`` (val, test). One sample per sentence, in the official scoring order
  (:meth:`refbench.data.refer.ReferData.sentences`: images in ``list(set(image_ids))`` order, then refs in file
  order, then sentences); the order matters because LISA and Sa2VA accumulate their meters in float32, one
  update per image, so ``extra["image_group"]`` gives each sample's image position in that order.
* ReasonSeg (LISA ``utils/dataset.py`` ``ValDataset``, ``utils/data_processing.get_mask_from_json``):
  ``<root>/<split>/<name>.json`` (labelme style) with the image ``<name>.jpg`` beside it; one sample per image,
  scored on ``text[0]``, files in sorted-name order (the order the golden values were made in,
  shared/data/PROVENANCE.md section 4).

Masks are built only in :meth:`gt_mask`; listing samples never rasterises anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from refbench.data.base import DatasetError, ImageExpression
from refbench.data.refer import (
    DEFAULT_SPLIT_BY,
    GTStyle,
    ReasonSegSample,
    ReferData,
    RefSentence,
    read_reason_seg_json,
    reason_seg_mask,
)

PathLike = Union[str, Path]

#: Evaluation splits of each (dataset, split_by) pair (``docs/protocols.md#lisa``; LISA ``train_ds.py`` val_dataset
#: names and Sa2VA ``RES.py``): testA/testB select refs whose split contains "A"/"B"; refcocog umd "test"
#: selects every split containing "test".
EVAL_SPLITS: dict[tuple[str, str], tuple[str, ...]] = {
    ("refcoco", "unc"): ("val", "testA", "testB", "train"),
    ("refcoco+", "unc"): ("val", "testA", "testB", "train"),
    ("refcocog", "umd"): ("val", "test", "train"),
}
# ("train" is not an evaluation split; it is read by the blind prior baseline.)

#: ReasonSeg folders (LISA ``dataset/reason_seg/ReasonSeg/{train,val,test}``).
REASON_SEG_SPLITS: tuple[str, ...] = ("train", "val", "test")

NOTE = "note:"


def _count_problems(source: Path, got: Mapping[str, int], expected: Mapping[str, int] | None) -> list[str]:
    if not expected:
        return []
    unknown = set(expected) - set(got)
    if unknown:
        raise ValueError(f"expected counts take the keys {sorted(got)}, got {sorted(unknown)}")
    return [f"{source}: {k} count {got[k]} != expected {int(v)}" for k, v in expected.items() if got[k] != int(v)]


# ----------------------------------------------------------------------------------------------
# RefCOCO / RefCOCO+ / RefCOCOg
# ----------------------------------------------------------------------------------------------


def _segmentation_problem(seg: Any, img: Mapping[str, Any], where: str) -> str | None:
    """Why a COCO segmentation cannot be the GT of an image of ``img``'s size (RLEs checked run by run, without
    decoding; polygons must be lists of numbers); None when it can."""
    from refbench.rle import check_rle

    parts = [seg] if isinstance(seg, dict) else seg
    if not isinstance(parts, list):
        return f"{where}: segmentation is {type(seg).__name__}, not polygons or an RLE"
    for k, part in enumerate(parts):
        if isinstance(part, dict):
            try:
                check_rle(part, f"{where} part {k}", (img["height"], img["width"]), DatasetError)
            except DatasetError as exc:
                return str(exc)
        elif not (isinstance(part, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in part)):
            return f"{where}: segmentation part {k} is neither a polygon (list of numbers) nor an RLE"
    return None


class RefCOCOLoader:
    """One evaluation split of RefCOCO, RefCOCO+ or RefCOCOg (``split_by`` defaults to unc / unc / umd).

    ``image_root`` defaults to ``<root>/images/train2014`` (images are optional: only :meth:`image_path` and
    :meth:`check` look at them). Unknown datasets, partitions or split names raise :class:`DatasetError`
    listing the valid ones.
    """

    def __init__(
        self,
        root: PathLike,
        dataset: str = "refcoco",
        split: str = "val",
        split_by: str | None = None,
        image_root: PathLike | None = None,
    ) -> None:
        self.root = Path(root)
        datasets = sorted({d for d, _ in EVAL_SPLITS})
        if dataset not in datasets:
            raise DatasetError(f"{self.root}: unknown dataset {dataset!r}; valid: {', '.join(datasets)}")
        self.dataset = dataset
        self.split_by = split_by if split_by is not None else DEFAULT_SPLIT_BY[dataset]
        self.refs_path = self.root / dataset / f"refs({self.split_by}).p"
        self.instances_path = self.root / dataset / "instances.json"
        if (dataset, self.split_by) not in EVAL_SPLITS:
            valid = ", ".join(sb for d, sb in EVAL_SPLITS if d == dataset)
            raise DatasetError(
                f"{self.refs_path}: split_by {self.split_by!r} is not scored for {dataset}; valid: {valid}"
            )
        valid_splits = EVAL_SPLITS[(dataset, self.split_by)]
        if split not in valid_splits:
            raise DatasetError(
                f"{self.refs_path}: unknown split {split!r} for {dataset} ({self.split_by}); "
                f"valid: {', '.join(valid_splits)}"
            )
        self.split = split
        if image_root is None:
            # LISA's layout is <refer_seg>/images/mscoco/images/train2014; a flat images/train2014 also works.
            lisa, flat = self.root / "images" / "mscoco" / "images" / "train2014", self.root / "images" / "train2014"
            image_root = flat if flat.is_dir() and not lisa.is_dir() else lisa
        self.image_root = Path(image_root)
        self._data: ReferData | None = None
        self._sentences: list[RefSentence] | None = None
        self._by_id: dict[str, RefSentence] = {}

    def data(self) -> ReferData:
        """The underlying :class:`ReferData` (read once); reading errors become :class:`DatasetError`."""
        if self._data is None:
            try:
                self._data = ReferData.load(self.root, self.dataset, self.split_by)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                msg = str(exc) if str(self.root) in str(exc) else f"{self.refs_path}: {exc}"
                raise DatasetError(msg) from exc
        return self._data

    def sentences(self) -> list[RefSentence]:
        """The split's :class:`RefSentence` list in official scoring order."""
        if self._sentences is None:
            try:
                self._sentences = self.data().sentences(self.split)
            except (ValueError, KeyError) as exc:
                raise DatasetError(str(exc) if str(self.root) in str(exc) else f"{self.refs_path}: {exc}") from exc
            self._by_id = {str(s.sent_id): s for s in self._sentences}
        return list(self._sentences)

    def samples(self) -> list[ImageExpression]:
        """One sample per sentence, in official scoring order.

        ``sample_id`` = sent_id; ``text`` = the stored ``sent`` (Sa2VA's prompt; ``extra["lisa_text"]`` is LISA's
        ``sent.strip().lower()``); ``extra`` holds ``sent_id``, ``ref_id``, ``ann_id`` and ``image_group`` (the
        0-based position of the sample's image in the official image order: one meter update per group).
        """
        sents = self.sentences()
        groups: dict[int, int] = {}
        out = []
        for s in sents:
            group = groups.setdefault(s.image_id, len(groups))
            out.append(
                ImageExpression(
                    sample_id=str(s.sent_id),
                    image_id=str(s.image_id),
                    file_name=s.file_name,
                    text=s.sentence,
                    height=s.height,
                    width=s.width,
                    extra={
                        "sent_id": s.sent_id,
                        "ref_id": s.ref_id,
                        "ann_id": s.ann_id,
                        "image_group": group,
                        "lisa_text": s.lisa_text,
                    },
                )
            )
        return out

    def _sentence(self, sample: ImageExpression | str) -> RefSentence:
        self.sentences()
        key = sample.sample_id if isinstance(sample, ImageExpression) else str(sample)
        if key not in self._by_id:
            raise DatasetError(f"{self.refs_path}: sentence {key!r} is not in {self.dataset} {self.split}")
        return self._by_id[key]

    def gt_mask(self, sample: ImageExpression | str, style: GTStyle = "lisa") -> np.ndarray:
        """Ground truth of one sentence, ``(H, W) uint8``, built by :meth:`ReferData.gt_mask` in ``style``
        (``"lisa"`` summed parts, ``"sa2va"`` RLE round trip, ``"binary"``; see :mod:`refbench.data.refer`)."""
        sent = self._sentence(sample)
        try:
            return self.data().gt_mask(sent, style)
        except Exception as exc:  # pycocotools raises bare Exception on a malformed segmentation
            if isinstance(exc, ValueError) and "gt_style" in str(exc):
                raise
            raise DatasetError(f"{self.instances_path}: sentence {sent.sent_id} (ann {sent.ann_id}): {exc}") from exc

    def image_path(self, sample: ImageExpression) -> Path:
        """``<image_root>/<file_name>`` (may not exist: images are optional)."""
        return self.image_root / sample.file_name

    def check(self, expected: Mapping[str, int] | None = None, decode_masks: bool = False) -> list[str]:
        """Problems of the split, each naming the file; [] when clean.

        Reports duplicate sentence ids, empty sentences, refs whose ``sent_ids`` disagree with their sentences,
        annotations on another image than their ref, non-positive image sizes, masks that do not decode
        (``decode_masks=True``), missing images when ``image_root`` exists, and counts differing from
        ``expected`` (keys ``sentences``, ``images``). Empty segmentations (empty GT, e.g. golden ann 104) are
        a ``note:`` line. Raises :class:`DatasetError` when the files cannot be read or the split is empty.
        """
        data = self.data()
        sents = self.sentences()
        problems: list[str] = []
        seen: set[int] = set()
        for s in sents:
            if s.sent_id in seen:
                problems.append(f"{self.refs_path}: sentence id {s.sent_id} appears twice in {self.split}")
            seen.add(s.sent_id)
            if not s.sentence.strip():
                problems.append(f"{self.refs_path}: sentence {s.sent_id} (ref {s.ref_id}) is empty")
        refs = {s.ref_id for s in sents}
        images: set[int] = set()
        empty_gt: list[int] = []
        for ref in data.refs:
            if ref["ref_id"] not in refs:
                continue
            stored = [int(x) for x in ref.get("sent_ids", [])]
            actual = [int(x["sent_id"]) for x in ref["sentences"]]
            if "sent_ids" in ref and stored != actual:
                problems.append(f"{self.refs_path}: ref {ref['ref_id']} sent_ids {stored} != its sentences {actual}")
            ann = data.anns[ref["ann_id"]]
            if ann.get("image_id", ref["image_id"]) != ref["image_id"]:
                problems.append(
                    f"{self.instances_path}: annotation {ref['ann_id']} is on image {ann.get('image_id')}, "
                    f"its ref {ref['ref_id']} on image {ref['image_id']}"
                )
            seg = ann.get("segmentation")
            if not seg:
                empty_gt.append(int(ref["ann_id"]))
            else:
                why = _segmentation_problem(seg, data.imgs[ref["image_id"]],
                                            f"{self.instances_path}: annotation {ref['ann_id']}")
                if why:
                    problems.append(why)
            images.add(ref["image_id"])
        for image_id in sorted(images):
            img = data.imgs[image_id]
            if not (int(img.get("height", 0)) > 0 and int(img.get("width", 0)) > 0):
                problems.append(f"{self.instances_path}: image {image_id} has no positive height/width")
        if empty_gt:
            problems.append(
                f"{NOTE} {self.instances_path}: annotations {empty_gt} have an empty segmentation (empty GT)"
            )
        if decode_masks:
            for s in sents:
                try:
                    data.gt_mask(s, "lisa")
                except Exception as exc:  # pycocotools raises bare Exception on a malformed segmentation
                    problems.append(f"{self.instances_path}: sentence {s.sent_id}: GT mask does not decode ({exc})")
        if self.image_root.is_dir():
            missing = sorted({s.file_name for s in sents if not (self.image_root / s.file_name).is_file()})
            if missing:
                problems.append(
                    f"{self.image_root}: {len(missing)} images of {self.split} missing (first {missing[0]})"
                )
        got = {"sentences": len(sents), "images": len(images)}
        problems.extend(_count_problems(self.refs_path, got, expected))
        return problems


# ----------------------------------------------------------------------------------------------
# ReasonSeg
# ----------------------------------------------------------------------------------------------


def _image_size(path: Path) -> tuple[int, int] | None:
    """``(H, W)`` of an image as ``cv2.imread`` returns it (EXIF orientation applied, OpenCV ``IMREAD_COLOR``),
    read from the header with Pillow (orientations 5-8 swap the axes); None when the file is absent."""
    if not path.is_file():
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112, 1)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the image header ({exc})") from exc
    if orientation in (5, 6, 7, 8):
        height, width = width, height
    return int(height), int(width)


class ReasonSegLoader:
    """ReasonSeg ``<root>/<split>/*.json`` (``root`` is the ``ReasonSeg`` folder), sorted by file name.

    Image size: ``imageHeight``/``imageWidth`` from the JSON when present, else the header of ``<name>.jpg``
    beside it (LISA draws the GT on the loaded image's shape); a sample with neither raises.
    """

    def __init__(self, root: PathLike, split: str = "val") -> None:
        self.root = Path(root)
        if split not in REASON_SEG_SPLITS:
            raise DatasetError(
                f"{self.root}: unknown ReasonSeg split {split!r}; valid: {', '.join(REASON_SEG_SPLITS)}"
            )
        self.split = split
        self.folder = self.root / split
        self._samples: list[ImageExpression] | None = None
        self._raw: dict[str, ReasonSegSample] = {}

    def paths(self) -> list[Path]:
        """The split's ``*.json`` files in sorted-name order; raises :class:`DatasetError` when there are none."""
        if not self.folder.is_dir():
            raise DatasetError(f"{self.folder}: ReasonSeg split folder not found")
        paths = sorted(self.folder.glob("*.json"))
        if not paths:
            raise DatasetError(f"{self.folder}: no ReasonSeg *.json files")
        return paths

    def _describe(self, path: Path, group: int) -> tuple[ImageExpression, ReasonSegSample]:
        try:
            raw = read_reason_seg_json(path)
        except (OSError, ValueError) as exc:
            msg = str(exc)
            raise DatasetError(msg if str(path) in msg else f"{path}: {msg}") from exc
        if raw.height is not None and raw.width is not None:
            size: tuple[int, int] | None = (raw.height, raw.width)
        else:
            size = _image_size(path.with_name(raw.image_file))
        if size is None:
            raise DatasetError(f"{path}: no imageHeight/imageWidth and no image {raw.image_file} beside it")
        sample = ImageExpression(
            sample_id=raw.name,
            image_id=raw.name,
            file_name=raw.image_file,
            text=raw.text,
            height=size[0],
            width=size[1],
            extra={"is_sentence": raw.is_sentence, "texts": raw.texts, "image_group": group},
        )
        return sample, raw

    def samples(self) -> list[ImageExpression]:
        """One sample per JSON, sorted by name: ``sample_id`` = file stem, ``text`` = ``text[0]``;
        ``extra`` holds ``is_sentence`` (long vs short query), all ``texts`` and ``image_group``."""
        if self._samples is None:
            out: list[ImageExpression] = []
            raw: dict[str, ReasonSegSample] = {}
            for k, path in enumerate(self.paths()):
                sample, rs = self._describe(path, k)
                out.append(sample)
                raw[sample.sample_id] = rs
            self._samples, self._raw = out, raw
        return list(self._samples)

    def gt_mask(self, sample: ImageExpression | str) -> np.ndarray:
        """GT ``(H, W) uint8`` (1 target, 255 ignore, 0 background) by :func:`refbench.data.refer.reason_seg_mask`."""
        self.samples()
        key = sample.sample_id if isinstance(sample, ImageExpression) else str(sample)
        if key not in self._raw:
            raise DatasetError(f"{self.folder}: sample {key!r} is not in ReasonSeg {self.split}")
        mine = next(s for s in self._samples or [] if s.sample_id == key)
        try:
            return reason_seg_mask(self._raw[key], image_size=(mine.height, mine.width))
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc

    def image_path(self, sample: ImageExpression) -> Path:
        """``<root>/<split>/<name>.jpg`` (may not exist)."""
        return self.folder / sample.file_name

    def check(self, expected: Mapping[str, int] | None = None, decode_masks: bool = True) -> list[str]:
        """Problems of each JSON, each naming the file; [] when clean.

        Reports unreadable / invalid JSON, missing fields, empty text, missing size with no image, polygons
        that do not rasterise (``decode_masks``), and a count differing from ``expected`` (key ``samples``).
        Files whose shapes leave no target (only ``flag``/``ignore`` labels) are a ``note:`` line.
        Raises :class:`DatasetError` only when the folder is missing or empty.
        """
        problems: list[str] = []
        no_target: list[str] = []
        good = 0
        for k, path in enumerate(self.paths()):
            try:
                sample, raw = self._describe(path, k)
            except DatasetError as exc:
                problems.append(str(exc))
                continue
            good += 1
            shapes = _shapes(path)
            labels = [str(s.get("label", "")).lower() for s in shapes if isinstance(s, dict)]
            if not any(lab != "flag" and "ignore" not in lab for lab in labels):
                no_target.append(path.name)
            if decode_masks:
                try:
                    reason_seg_mask(raw, image_size=(sample.height, sample.width))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    problems.append(f"{path}: GT mask does not rasterise ({exc})")
        if no_target:
            problems.append(f"{NOTE} {self.folder}: no target polygon (empty GT) in {', '.join(no_target)}")
        problems.extend(_count_problems(self.folder, {"samples": len(self.paths())}, expected))
        return problems


def _shapes(path: Path) -> list[Any]:
    """The ``shapes`` list of a JSON already read successfully by :func:`read_reason_seg_json`."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    shapes = json.loads(text).get("shapes", [])
    return shapes if isinstance(shapes, list) else []


__all__ = ["EVAL_SPLITS", "NOTE", "REASON_SEG_SPLITS", "ReasonSegLoader", "RefCOCOLoader"]
