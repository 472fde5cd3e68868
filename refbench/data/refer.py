"""Readers and ground-truth builders for RefCOCO / RefCOCO+ / RefCOCOg and ReasonSeg.

Two families of referring-expression-segmentation (RES) data are read here:

* RefCOCO-style: ``<root>/<dataset>/refs(<split_by>).p`` (a pickle of ref dicts) and
  ``<root>/<dataset>/instances.json`` (COCO style), the layout read by the REFER API
  (dvlab-research/LISA ``utils/refer.py``, commit 3cb2d4301f1af4691bd4f3938335ef06e76f155a).
  The unit of evaluation is one sentence; its ground truth is the mask of its ref's ``ann_id``.
* ReasonSeg: one labelme-style ``<image>.json`` per image (LISA ``utils/data_processing.py``
  ``get_mask_from_json``); only ``text[0]`` of each image is scored (LISA ``utils/dataset.py``
  ``ValDataset.__getitem__``).

Everything returned by the loaders is a cheap frozen dataclass (ids, sentence, file name, size);
masks are decoded only on request, and cv2 / pycocotools are imported inside the functions that
need them.

Ground-truth styles for RefCOCO (``gt_style``):

* ``"lisa"`` (default): polygons -> ``pycocotools.mask.frPyObjects`` -> ``decode`` -> sum over
  parts -> uint8, an empty segmentation gives zeros (LISA ``ValDataset.__getitem__``; Sa2VA's
  ``RESDataset.decode_mask`` builds the same array). Overlapping polygon parts therefore hold the
  value 2, which LISA's ``torch.histc``-based counting ignores (see :mod:`refbench.metrics.res`).
* ``"sa2va"``: the ``"lisa"`` array RLE-encoded as uint8 and decoded again, as Sa2VA's
  ``projects/llava_sam2/evaluation/refcoco_eval.py`` (``mask_to_rle``) and ``RES.py``
  (``rle_to_mask``) do (magic-research/Sa2VA, commit d01bf3fa8ee239325a007e7b64ee2fd22578b045).
  pycocotools' encoder starts a new run at every change of value, so a 1 -> 2 -> 0 sequence adds
  runs and flips the 0/1 parity of all later runs on decoding: the official Sa2VA GT is corrupted
  wherever polygon parts overlap. Reproduced on purpose.
* ``"binary"``: the ``"lisa"`` array binarised (> 0). No official evaluator does this; it is the
  clean definition ("union of the parts").
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, Union

import numpy as np

PathLike = Union[str, Path]
GTStyle = Literal["lisa", "sa2va", "binary"]

#: Default ``splitBy`` of each dataset as used by LISA ``train_ds.py`` and Sa2VA ``RES.py``.
DEFAULT_SPLIT_BY: dict[str, str] = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd", "refclef": "unc"}

_GT_STYLES = ("lisa", "sa2va", "binary")
#: the largest image side an instances file may declare, and the largest polygon coordinate (pycocotools
#: rasterises polygons in C integers: beyond this its arithmetic overflows)
_MAX_SIDE = 1 << 15
_MAX_COORD = 1 << 20


# ----------------------------------------------------------------------------------------------
# Raw readers
# ----------------------------------------------------------------------------------------------


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler that refuses every class: ``refs(*).p`` holds only lists, dicts, str and numbers."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        raise pickle.UnpicklingError(
            f"{self._path}: refuses to load object {module}.{name}; a refs(*).p file should hold only "
            "lists, dicts, strings and numbers"
        )


def load_refs(path: PathLike) -> list[dict[str, Any]]:
    """Read a ``refs(unc|umd|google).p`` pickle: a list of ref dicts.

    Each ref has ``ref_id, ann_id, image_id, category_id, split, sent_ids, sentences`` (each sentence a
    dict with ``sent_id, sent, raw, tokens``). Only plain Python objects are accepted.
    """
    import io

    from refbench.files import read_regular

    path = Path(path)
    data = read_regular(path, FileNotFoundError if not path.exists() else ValueError, "refs file")
    try:
        refs = _PlainUnpickler(io.BytesIO(data), path).load()
    except RecursionError:
        raise ValueError(f"{path}: refs pickle is nested too deeply to be read") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, MemoryError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable refs pickle ({exc})") from exc
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise ValueError(f"{path}: expected a list of ref dicts, got {type(refs).__name__}")
    for ref in refs:
        for key in ("ref_id", "ann_id", "image_id", "split", "sentences"):
            if key not in ref:
                raise ValueError(f"{path}: ref {ref.get('ref_id', '?')!r} has no '{key}' field")
        for key in ("ref_id", "ann_id", "image_id"):
            if type(ref[key]) is not int:
                raise ValueError(f"{path}: ref {ref['ref_id']!r}: '{key}' is {ref[key]!r}, not an integer id")
        if not isinstance(ref["split"], str):
            raise ValueError(f"{path}: ref {ref['ref_id']}: 'split' is {ref['split']!r}, not a name")
        sents = ref["sentences"]
        if not isinstance(sents, list) or not all(
                isinstance(x, dict) and type(x.get("sent_id")) is int and isinstance(x.get("sent"), str) for x in sents):
            raise ValueError(f"{path}: ref {ref['ref_id']}: 'sentences' must be a list of {{'sent_id': int, "
                             "'sent': str, ...}}")
    return refs


def load_instances(path: PathLike) -> dict[str, Any]:
    """Read a COCO-style ``instances.json`` (needs ``images`` and ``annotations``)."""
    from refbench.files import load_json

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: instances file not found")
    data = load_json(path, ValueError, "instances file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a COCO instances file is an object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: COCO instances file has no '{key}' list")
    for i, im in enumerate(data["images"]):
        ok = (isinstance(im, dict) and type(im.get("id")) is int and isinstance(im.get("file_name"), str)
              and all(type(im.get(k)) is int and 0 < im[k] <= _MAX_SIDE for k in ("height", "width")))
        if not ok:
            raise ValueError(f"{path}: images[{i}] is not {{'id': int, 'file_name': str, 'height': int in [1, "
                             f"{_MAX_SIDE}], 'width': int in [1, {_MAX_SIDE}]}}")
    for i, ann in enumerate(data["annotations"]):
        if not (isinstance(ann, dict) and type(ann.get("id")) is int):
            raise ValueError(f"{path}: annotations[{i}] has no integer 'id'")
    for key, what in (("images", "image"), ("annotations", "annotation")):
        ids = [x["id"] for x in data[key]]
        if len(set(ids)) != len(ids):
            seen: set[int] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise ValueError(f"{path}: {what} id {dup} appears twice in '{key}'")
    return data


def select_refs(refs: Sequence[Mapping[str, Any]], split: str) -> list[Mapping[str, Any]]:
    """Refs of one split, in file order, with the official REFER ``getRefIds(split=...)`` rules.

    LISA ``utils/refer.py`` ``REFER.getRefIds``: ``testA``/``testB``/``testC`` keep refs whose split
    *contains* the last letter (so a ``testAB`` ref is in both testA and testB); ``testAB``/``testBC``/
    ``testAC`` need equality; ``test`` keeps every split containing "test" (refcocog umd: ``test``);
    ``train``/``val`` need equality. Any other name is an error (the official code exits).
    """
    if split in ("testA", "testB", "testC"):
        return [r for r in refs if split[-1] in r["split"]]
    if split in ("testAB", "testBC", "testAC"):
        return [r for r in refs if r["split"] == split]
    if split == "test":
        return [r for r in refs if "test" in r["split"]]
    if split in ("train", "val"):
        return [r for r in refs if r["split"] == split]
    raise ValueError(
        f"unknown split {split!r}: the REFER API accepts train, val, test, testA, testB, testC, testAB, "
        "testBC, testAC"
    )


def official_image_order(refs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Image ids in the order the official loaders visit them.

    REFER ``getImgIds(ref_ids)`` returns ``list(set(image ids of the refs))`` and both LISA's
    ``ValDataset`` and Sa2VA's ``RESDataset`` iterate images in that order. The same set is built here,
    with the same insertions, so CPython yields the same order. The order matters: LISA and Sa2VA
    accumulate their meters in float32.
    """
    return list(set([r["image_id"] for r in refs]))


# ----------------------------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------------------------


def _rle_list(segmentation: Any, height: int, width: int, where: str) -> list[dict[str, Any]]:
    """COCO RLE dicts for a segmentation given as polygons, a list of RLEs or one RLE."""
    from pycocotools import mask as mask_utils

    from refbench.rle import check_rle

    if isinstance(segmentation, dict):
        segmentation = [segmentation]
    if not isinstance(segmentation, list):
        raise ValueError(f"{where}: segmentation must be a list or an RLE dict, got {type(segmentation).__name__}")
    if all(isinstance(part, list) for part in segmentation):
        # Polygons (a part of exactly 4 numbers is read as a box by frPyObjects: same as the official code).
        for k, part in enumerate(segmentation):
            if len(part) < 4 or len(part) % 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and abs(v) <= _MAX_COORD for v in part):
                raise ValueError(f"{where}: polygon {k} is not an even list of at least 4 coordinates within "
                                 f"+-{_MAX_COORD}")
        return mask_utils.frPyObjects(segmentation, height, width)
    rles = []
    for k, rle in enumerate(segmentation):
        if not isinstance(rle, dict):
            raise ValueError(f"{where}: segmentation part {k} is neither a polygon nor an RLE dict")
        # checked (well-formed counts adding up to H x W, the image's size) before pycocotools sees it
        (h, w), runs = check_rle(rle, f"{where} part {k}", (height, width), ValueError)
        rles.append(mask_utils.frPyObjects({"size": [h, w], "counts": runs.tolist()}, h, w))
    return rles


def segmentation_to_mask(segmentation: Any, height: int, width: int, *, where: str = "annotation") -> np.ndarray:
    """Rasterise a COCO segmentation the way LISA's ``ValDataset.__getitem__`` does.

    Returns ``(H, W) uint8``: the *sum* of the decoded parts (overlapping polygon parts give 2), zeros for
    an empty segmentation. Polygons go through ``pycocotools.mask.frPyObjects``; compressed RLEs (str or
    bytes counts), uncompressed RLEs and a single RLE dict are accepted too.
    """
    from pycocotools import mask as mask_utils

    if segmentation is None or len(segmentation) == 0:
        return np.zeros((height, width), dtype=np.uint8)
    decoded = mask_utils.decode(_rle_list(segmentation, height, width, where))
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    if decoded.shape[:2] != (height, width):
        raise ValueError(
            f"{where}: segmentation decodes to {decoded.shape[:2]}, but the image is {(height, width)}"
        )
    return np.sum(decoded, axis=2).astype(np.uint8)


def sa2va_rle_roundtrip(mask: np.ndarray) -> np.ndarray:
    """Encode a ``(H, W)`` uint8 mask to COCO RLE and decode it, as Sa2VA's ``refcoco_eval.py`` does.

    Values other than 0/1 corrupt the result (see the module docstring); that is the point.
    Returns ``(H, W) uint8``.
    """
    from pycocotools import mask as mask_utils

    arr = np.asfortranarray(np.asarray(mask).astype(np.uint8))
    if arr.ndim != 2:
        raise ValueError(f"sa2va_rle_roundtrip expects an (H, W) mask, got shape {arr.shape}")
    return np.asarray(mask_utils.decode(mask_utils.encode(arr)), dtype=np.uint8)


def _apply_style(mask: np.ndarray, style: str) -> np.ndarray:
    if style == "lisa":
        return mask
    if style == "sa2va":
        return sa2va_rle_roundtrip(mask)
    if style == "binary":
        return (mask > 0).astype(np.uint8)
    raise ValueError(f"unknown gt_style {style!r}; expected one of {', '.join(_GT_STYLES)}")


# ----------------------------------------------------------------------------------------------
# RefCOCO / RefCOCO+ / RefCOCOg
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefSentence:
    """One evaluated sentence of a RefCOCO-style split.

    ``sentence`` is the stored ``sent`` field (Sa2VA prompts with it as is; LISA uses
    ``sent.strip().lower()``, see :attr:`lisa_text`). ``file_name`` is the COCO image file name;
    ``height``/``width`` are the image size from ``instances.json``.
    """

    sent_id: int
    ref_id: int
    ann_id: int
    image_id: int
    sentence: str
    file_name: str
    height: int
    width: int

    @property
    def lisa_text(self) -> str:
        """The text LISA's ``ValDataset`` puts in the prompt: ``sent.strip().lower()``."""
        return self.sentence.strip().lower()


class ReferData:
    """A RefCOCO-style dataset: refs, annotations and images, indexed by id.

    Build with :meth:`load`; ask for a split's sentences with :meth:`sentences` and for ground-truth
    masks with :meth:`gt_mask`.
    """

    def __init__(
        self,
        refs: Sequence[Mapping[str, Any]],
        instances: Mapping[str, Any],
        *,
        name: str = "refcoco",
        split_by: str = "unc",
        source: str = "<memory>",
        instances_source: str | None = None,
    ) -> None:
        self.name = name
        self.split_by = split_by
        self.source = source
        self.instances_source = instances_source or source
        self.refs = list(refs)
        self.anns: dict[int, Mapping[str, Any]] = {a["id"]: a for a in instances["annotations"]}
        self.imgs: dict[int, Mapping[str, Any]] = {im["id"]: im for im in instances["images"]}
        for ref in self.refs:
            if ref["ann_id"] not in self.anns:
                raise ValueError(f"{source}: ref {ref['ref_id']} points to unknown annotation {ref['ann_id']}")
            if ref["image_id"] not in self.imgs:
                raise ValueError(f"{source}: ref {ref['ref_id']} points to unknown image {ref['image_id']}")

    @classmethod
    def load(cls, root: PathLike, dataset: str = "refcoco", split_by: str | None = None) -> "ReferData":
        """Read ``<root>/<dataset>/refs(<split_by>).p`` and ``<root>/<dataset>/instances.json``.

        ``split_by`` defaults to ``unc`` for refcoco/refcoco+ and ``umd`` for refcocog (the
        partitions LISA and Sa2VA evaluate).
        """
        if split_by is None:
            if dataset not in DEFAULT_SPLIT_BY:
                raise ValueError(f"no default split_by for dataset {dataset!r}; pass split_by explicitly")
            split_by = DEFAULT_SPLIT_BY[dataset]
        folder = Path(root) / dataset
        refs_path = folder / f"refs({split_by}).p"
        refs = load_refs(refs_path)
        instances = load_instances(folder / "instances.json")
        return cls(refs, instances, name=dataset, split_by=split_by, source=str(refs_path),
                   instances_source=str(folder / "instances.json"))

    def split_refs(self, split: str) -> list[Mapping[str, Any]]:
        """Refs of ``split`` in file order (official ``getRefIds`` rules); an empty split is an error."""
        refs = select_refs(self.refs, split)
        if not refs:
            present = sorted({str(r["split"]) for r in self.refs})
            raise ValueError(f"{self.source}: split {split!r} selects no refs (splits present: {', '.join(present)})")
        return refs

    def image_order(self, split: str) -> list[int]:
        """Image ids of ``split`` in the official visiting order (see :func:`official_image_order`)."""
        return official_image_order(self.split_refs(split))

    def sentences(self, split: str) -> list[RefSentence]:
        """Every sentence of ``split`` in the order LISA ``validate`` and Sa2VA ``evaluate`` score them.

        Images in :meth:`image_order`; within an image, its refs in file order and each ref's sentences
        in stored order (LISA ``ValDataset`` / Sa2VA ``RESDataset.json_file_preprocess``).
        """
        refs = self.split_refs(split)
        by_image: dict[Any, list[Mapping[str, Any]]] = {}
        for ref in refs:
            by_image.setdefault(ref["image_id"], []).append(ref)
        out: list[RefSentence] = []
        for image_id in official_image_order(refs):
            img = self.imgs[image_id]
            for ref in by_image[image_id]:
                for sent in ref["sentences"]:
                    out.append(
                        RefSentence(
                            sent_id=int(sent["sent_id"]),
                            ref_id=int(ref["ref_id"]),
                            ann_id=int(ref["ann_id"]),
                            image_id=int(image_id),
                            sentence=str(sent["sent"]),
                            file_name=str(img["file_name"]),
                            height=int(img["height"]),
                            width=int(img["width"]),
                        )
                    )
        return out

    def ann_mask(self, ann_id: int, height: int, width: int) -> np.ndarray:
        """LISA-style (summed, uint8) mask of one annotation: ``(H, W) uint8``."""
        if ann_id not in self.anns:
            raise KeyError(f"{self.source}: unknown annotation id {ann_id}")
        seg = self.anns[ann_id].get("segmentation", [])
        return segmentation_to_mask(seg, height, width, where=f"{self.instances_source}: annotation {ann_id}")

    def gt_mask(self, sentence: RefSentence, gt_style: GTStyle = "lisa") -> np.ndarray:
        """Ground truth of one sentence: ``(H, W) uint8``, in the named style (see the module docstring)."""
        if gt_style not in _GT_STYLES:
            raise ValueError(f"unknown gt_style {gt_style!r}; expected one of {', '.join(_GT_STYLES)}")
        mask = self.ann_mask(sentence.ann_id, sentence.height, sentence.width)
        return _apply_style(mask, gt_style)


# ----------------------------------------------------------------------------------------------
# ReasonSeg
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonSegSample:
    """One ReasonSeg image: its JSON, the image file beside it, and the scored query ``text[0]``.

    ``height``/``width`` come from ``imageHeight``/``imageWidth`` when the JSON has them (else None:
    pass ``image_size`` to :func:`reason_seg_mask`, or keep the image beside the JSON).
    ``is_sentence`` separates long (reasoning) from short queries.
    """

    name: str
    json_path: Path
    image_file: str
    text: str
    texts: tuple[str, ...]
    is_sentence: bool
    height: int | None
    width: int | None


def _read_labelme_json(path: Path) -> dict[str, Any]:
    """JSON text as UTF-8, else cp1252 (LISA ``get_mask_from_json`` falls back the same way)."""
    from refbench.files import parse_json, read_regular

    raw = read_regular(path, ValueError, "ReasonSeg JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: ReasonSeg JSON is neither UTF-8 nor cp1252 text ({exc.reason})") from None
    data = parse_json(text, str(path), ValueError, "ReasonSeg JSON")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a ReasonSeg JSON is an object with 'shapes', 'text' and 'is_sentence'")
    for key in ("shapes", "text", "is_sentence"):
        if key not in data:
            raise ValueError(f"{path}: ReasonSeg JSON has no '{key}' field")
    if not isinstance(data["shapes"], list) or not all(isinstance(x, dict) for x in data["shapes"]):
        raise ValueError(f"{path}: 'shapes' must be a list of {{'label', 'points'}} objects")
    texts = data["text"]
    if not (isinstance(texts, str) or (isinstance(texts, list) and all(isinstance(t, str) for t in texts))):
        raise ValueError(f"{path}: 'text' must be a string or a list of strings")
    for key in ("imageHeight", "imageWidth"):
        v = data.get(key)
        if v is not None and not (type(v) is int and 0 < v <= 1 << 16):
            raise ValueError(f"{path}: '{key}' is {v!r}, not a positive image size")
    return data


def read_reason_seg_json(path: PathLike) -> ReasonSegSample:
    """Describe one ReasonSeg ``<image>.json`` without drawing its mask."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ReasonSeg JSON not found")
    data = _read_labelme_json(path)
    texts = data["text"]
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise ValueError(f"{path}: 'text' is empty; the official loader scores text[0]")
    h, w = data.get("imageHeight"), data.get("imageWidth")
    return ReasonSegSample(
        name=path.stem,
        json_path=path,
        image_file=path.stem + ".jpg",
        text=str(texts[0]),
        texts=tuple(str(t) for t in texts),
        is_sentence=bool(data["is_sentence"]),
        height=int(h) if h is not None else None,
        width=int(w) if w is not None else None,
    )


def load_reason_seg(directory: PathLike) -> list[ReasonSegSample]:
    """All ``*.json`` of a ReasonSeg split folder (e.g. ``<root>/reason_seg/ReasonSeg/val``), sorted by name.

    LISA's ``ValDataset`` takes the images from an unsorted ``glob``; the order only matters for the
    float32 accumulation of the meters, and the golden values were made in sorted-name order.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: ReasonSeg folder not found")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"{directory}: no ReasonSeg *.json files")
    return [read_reason_seg_json(p) for p in paths]


def _image_size_from_file(path: Path) -> tuple[int, int] | None:
    """``(H, W)`` of the image as LISA sees it: ``cv2.imread`` (which applies EXIF orientation)."""
    if not path.is_file():
        return None
    import cv2

    img = cv2.imread(str(path))
    if img is None:
        raise ValueError(f"{path}: cannot read the image to get its size")
    return int(img.shape[0]), int(img.shape[1])


def _draw_polygon(canvas: np.ndarray, points: Any, value: int, where: str) -> None:
    """Outline (thickness 1) then fill one polygon, as ``get_mask_from_json`` does (int32 truncation)."""
    import cv2

    try:
        pts = np.array([points], dtype=np.int32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{where}: polygon points are not an (N, 2) list of numbers") from exc
    if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[1] == 0:
        raise ValueError(f"{where}: polygon points are not an (N, 2) list of numbers")
    try:
        cv2.polylines(canvas, pts, True, value, 1)
        cv2.fillPoly(canvas, pts, value)
    except cv2.error as exc:
        raise ValueError(f"{where}: polygon cannot be drawn ({str(exc).strip().splitlines()[-1]})") from exc


def reason_seg_mask(
    sample: ReasonSegSample | PathLike, image_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Ground truth of a ReasonSeg image exactly as LISA ``utils/data_processing.get_mask_from_json``.

    Returns ``(H, W) uint8`` with 1 = target, 255 = ignore, 0 = background:

    * shapes labelled ``flag`` (any case) are dropped;
    * each remaining polygon's area is its pixel count when drawn alone (outline + fill);
    * polygons are drawn largest first (``np.argsort(areas)[::-1]``, numpy's default sort, ties as
      numpy orders them), labels containing ``ignore`` with 255, all others with 1, so a smaller target
      drawn later overwrites a larger ignore region.

    The canvas size is ``image_size`` ``(H, W)`` if given, else ``imageHeight``/``imageWidth`` from the
    JSON, else the shape of ``<name>.jpg`` beside the JSON read with ``cv2.imread``. The official code
    uses the shape of the loaded image, so a caller that has the image should pass its size.
    """
    if not isinstance(sample, ReasonSegSample):
        sample = read_reason_seg_json(sample)
    path = sample.json_path
    if image_size is None:
        if sample.height is not None and sample.width is not None:
            image_size = (sample.height, sample.width)
        else:
            image_size = _image_size_from_file(path.with_name(sample.image_file))
        if image_size is None:
            raise ValueError(
                f"{path}: no imageHeight/imageWidth and no image {sample.image_file} beside it; pass image_size"
            )
    height, width = int(image_size[0]), int(image_size[1])
    shapes = _read_labelme_json(path)["shapes"]

    kept: list[Mapping[str, Any]] = []
    areas: list[Any] = []  # numpy uint64 pixel counts, the dtype the official argsort sees
    for k, shape in enumerate(shapes):
        label = str(shape.get("label", ""))
        if label.lower() == "flag":
            continue
        scratch = np.zeros((height, width), dtype=np.uint8)
        _draw_polygon(scratch, shape.get("points"), 1, f"{path}: shape {k}")
        areas.append(scratch.sum())
        kept.append(shape)

    mask = np.zeros((height, width), dtype=np.uint8)
    if not kept:
        return mask
    for idx in list(np.argsort(areas)[::-1]):
        shape = kept[int(idx)]
        value = 255 if "ignore" in str(shape.get("label", "")).lower() else 1
        _draw_polygon(mask, shape["points"], value, f"{path}: shape {shape.get('label')}")
    return mask


__all__ = [
    "DEFAULT_SPLIT_BY",
    "GTStyle",
    "ReasonSegSample",
    "RefSentence",
    "ReferData",
    "load_instances",
    "load_reason_seg",
    "load_refs",
    "official_image_order",
    "read_reason_seg_json",
    "reason_seg_mask",
    "sa2va_rle_roundtrip",
    "segmentation_to_mask",
    "select_refs",
]
