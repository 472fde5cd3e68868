"""The ``vos`` task of ``refbench run``: prompts from each benchmark's protocol, the stored payload, the merged
predictions file.

**Prompts** (:func:`vos_inputs`). A semi-supervised VOS request carries, for each object, its ground-truth mask on
the frame the benchmark's protocol gives it -- the only ground truth an adapter sees:

* ``first_frame`` -- DAVIS-2017, MOSE v1 and MOSE v2: every object present in the first frame's annotation, prompted
  there (davis2017-evaluation scores the objects of frame 0; SAM 2's ``tools/vos_inference.py`` without
  ``--track_object_appearing_later_in_video`` reads frame 0 only). MOSE v2 keeps the objects of its ``meta.json``.
* ``first_appearance`` -- YouTube-VOS, LVOS, SA-V and SeCVOS: each object on its own first annotated frame where its
  mask is not empty, so objects may start later (YouTube-VOS annotates each object where it first appears; LVOS
  from its ``frame_range`` start; SA-V / SeCVOS from the first PNG of the object's folder). An annotated but empty
  mask is skipped as SAM 2's ``vos_separate_inference_per_object`` skips it; an object that is empty in every
  annotated frame gets no prompt (and so no prediction).

The frames of a request are every frame of the video the adapter sees (the JPEGs when they are on disk: SA-V's 24
fps frames, LVOS's full frame rate; else the annotated frames, which is all a pixel-blind adapter needs).
``overlap`` is the benchmark's rule for the returned masks: ``"exclusive"`` where the official format holds one id
per pixel (palette PNGs: DAVIS, MOSE, YouTube-VOS, LVOS), ``"allowed"`` where each object has its own PNG (SA-V,
SeCVOS; SAM 2's ``--per_obj_png_file``).

**Payload** (:func:`encode_vos`): ``{"size": [H, W], "frames": [names], "objects": {obj_id: [counts per frame]}}``,
one COCO compressed RLE string per object and frame, in the run store (:mod:`refbench.runs.store`).

**Predictions file** (:func:`write_vos_predictions`): ``predictions.json`` as ``{video: {obj_id: {frame: RLE}}}``
(:mod:`refbench.preds.vos_json`), the frame-keyed RLE JSON every VOS protocol reads (``refbench eval``) and the
DAVIS / YouTube-VOS / MOSE exporters turn into server zips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from refbench.data.base import DatasetError

PROMPT_RULES = ("first_frame", "first_appearance")


@dataclass(frozen=True)
class VosInputs:
    """What a vos request is made of (module doc): frame names and paths, the frame size, the prompts
    ``(obj_id, frame index, (H, W) bool mask)`` in object order, the overlap rule and the prompt rule used."""

    video: str
    frames: tuple[str, ...]
    paths: tuple[Path, ...]
    size: tuple[int, int]
    prompts: tuple[tuple[str, int, np.ndarray], ...]
    overlap: str
    rule: str


def _stems(paths: Sequence[Path]) -> tuple[str, ...]:
    return tuple(Path(p).stem for p in paths)


def _index(frames: Sequence[str], name: str, video: str, where: Path) -> int:
    try:
        return list(frames).index(name)
    except ValueError:
        raise DatasetError(f"{where}: prompt frame {name!r} of video {video!r} is not one of its frames "
                           f"({len(frames)} frames, {frames[0] if frames else '-'} .. {frames[-1] if frames else '-'})"
                           ) from None


def _ids(arr: np.ndarray) -> list[int]:
    """The object ids of an indexed annotation: non-zero, not the void label 255, ascending."""
    return [int(v) for v in np.unique(arr) if v not in (0, 255)]


def _first_frame(loader: Any, sample: Any, frames: tuple[str, ...], paths: Sequence[Path], ann0: np.ndarray,
                 where: Path, keep: set[int] | None = None) -> VosInputs:
    ids = [i for i in _ids(ann0) if keep is None or i in keep]
    if frames and frames[0] != where.stem:
        raise DatasetError(f"{where}: the first frame's annotation is {where.name}, but the video's first frame is "
                           f"{frames[0]!r}")
    prompts = tuple((str(i), 0, ann0 == i) for i in ids)
    return VosInputs(sample.video, frames, tuple(paths), tuple(ann0.shape), prompts, "exclusive", "first_frame")


def _first_appearance_indexed(video: str, frames: tuple[str, ...], pngs: Sequence[Path], read) -> tuple[
        tuple[tuple[str, int, np.ndarray], ...], tuple[int, int] | None]:
    """Each id on the first of ``pngs`` (sorted annotation PNGs) that holds it."""
    seen: dict[int, tuple[int, np.ndarray]] = {}
    size = None
    for p in pngs:
        arr = read(p)
        size = size or tuple(arr.shape)
        for i in _ids(arr):
            if i not in seen:
                seen[i] = (_index(frames, p.stem, video, p), arr == i)
    return tuple((str(i), t, m) for i, (t, m) in sorted(seen.items())), size


def vos_inputs(loader: Any, sample: Any) -> VosInputs:
    """The request material of one video of a semi-supervised VOS loader (module doc). Raises DatasetError naming the
    file when an annotation cannot be read or a prompt frame is not a frame of the video."""
    from refbench.data.refytvos import read_palette_png

    # SA-V / SeCVOS: one PNG per object and annotated frame
    if callable(getattr(loader, "annotation_path", None)) and hasattr(sample, "objects") and \
            hasattr(sample, "layout"):
        paths = loader.frame_paths(sample)
        frames = _stems(paths)
        if sample.layout == "davis":
            pngs = [loader.annotation_path(sample.video, None, f) for f in sample.frames]
            prompts, size = _first_appearance_indexed(sample.video, frames, pngs, read_palette_png)
            return VosInputs(sample.video, frames, tuple(paths), size or (0, 0), prompts, "exclusive",
                             "first_appearance")
        prompts_l = []
        size = None
        for o in sample.objects:
            for name in o.frames:
                p = loader.annotation_path(sample.video, o.name, name)
                arr = read_palette_png(p, size)
                size = size or tuple(arr.shape)
                if arr.any():
                    prompts_l.append((o.name, _index(frames, name, sample.video, p), arr > 0))
                    break
        return VosInputs(sample.video, frames, tuple(paths), size or (0, 0), tuple(prompts_l), "allowed",
                         "first_appearance")
    # LVOS: per-object frame ranges
    if callable(getattr(loader, "range_problem", None)):
        folder = loader.frames_dir / sample.video
        if folder.is_dir():
            paths = sorted(folder.glob("*.jpg"))
        else:
            names = sorted({f for o in sample.objects for f in o.range_frames})
            paths = [folder / f"{f}.jpg" for f in names]
        frames = _stems(paths)
        prompts_l = []
        size = None
        for o in sample.objects:
            for name in o.range_frames:
                p = loader.annotations_dir / sample.video / f"{name}.png"
                if not p.is_file():
                    continue
                arr = read_palette_png(p, size)
                size = size or tuple(arr.shape)
                m = arr == int(o.obj_id)
                if m.any():
                    prompts_l.append((o.obj_id, _index(frames, name, sample.video, p), m))
                    break
        return VosInputs(sample.video, frames, tuple(paths), size or (0, 0), tuple(prompts_l), "exclusive",
                         "first_appearance")
    # MOSE v2 with full GT: the first frame, objects of meta.json
    if hasattr(sample, "scored_frames") and hasattr(sample, "length"):
        paths = loader.frame_paths(sample)
        p0 = loader.annotations_dir / sample.video / f"{sample.frames[0]}.png"
        ann0 = read_palette_png(p0, (sample.height, sample.width))
        return _first_frame(loader, sample, tuple(sample.frames), paths, ann0, p0, set(sample.objects))
    # YouTube-VOS 2019 / MOSE v2 valid: sparse prompt PNGs (each object where it first appears)
    if callable(getattr(loader, "prompt_frames", None)):
        paths = loader.frame_paths(sample)
        frames = tuple(sample.frames)
        pngs = [loader.annotations_dir / sample.video / f"{f}.png" for f in loader.prompt_frames(sample.video)]
        if not pngs:
            raise DatasetError(f"{loader.annotations_dir / sample.video}: no prompt annotation PNG")
        prompts, size = _first_appearance_indexed(sample.video, frames, pngs, read_palette_png)
        rule = "first_appearance"
        if all(t == 0 for _o, t, _m in prompts):
            rule = "first_frame"
        return VosInputs(sample.video, frames, tuple(paths), size or (0, 0), prompts, "exclusive", rule)
    # DAVIS-2017 / MOSE v1: the first frame
    if callable(getattr(loader, "first_frame_mask", None)):
        paths = loader.frame_paths(sample)
        p0 = loader.annotation_paths(sample)[0]
        return _first_frame(loader, sample, tuple(sample.frames), paths, read_palette_png(p0), p0)
    raise DatasetError(f"{type(loader).__name__}: not a semi-supervised VOS loader refbench knows how to prompt")


def vos_request(loader: Any, sample: Any, key: str) -> Any:
    """The :class:`~refbench.adapters.base.VosRequest` of one video (prompts encoded as COCO RLE)."""
    from refbench.adapters.base import Frames, VosPrompt, VosRequest
    from refbench.runs.store import encode_mask

    inp = vos_inputs(loader, sample)
    for oid, _t, m in inp.prompts:
        if tuple(m.shape) != inp.size:
            raise DatasetError(f"{sample.video}: the prompt of object {oid} is {m.shape[0]}x{m.shape[1]}, the video's "
                               f"annotations {inp.size[0]}x{inp.size[1]}")
    prompts = tuple(VosPrompt(oid, t, encode_mask(m)) for oid, t, m in inp.prompts)
    return VosRequest(key, sample.video, Frames(inp.frames, inp.paths), inp.size, prompts, inp.overlap)


# ----------------------------------------------------------------------------------------------
# Payload and predictions file
# ----------------------------------------------------------------------------------------------


def encode_vos(req: Any, masks: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The store payload of one checked vos prediction (module doc)."""
    from refbench.runs.store import encode_masks

    h, w = req.size
    return {"size": [int(h), int(w)], "frames": list(req.frames.names),
            "objects": {o: encode_masks(m)["rles"] for o, m in masks.items()}}


def check_vos_payload(payload: Any, req: Any, where: str) -> None:
    """Refuse a payload that does not fit its request (a worker's answer): size, frames, one list per object."""
    from refbench.adapters.base import AdapterError

    if not isinstance(payload, Mapping) or not isinstance(payload.get("objects"), Mapping):
        raise AdapterError(f"{where}: {req.sample_id}: payload is not {{'size', 'frames', 'objects'}}")
    if list(payload.get("size", ())) != list(req.size):
        raise AdapterError(f"{where}: {req.sample_id}: payload does not match size {req.size}")
    if list(payload.get("frames", ())) != list(req.frames.names):
        raise AdapterError(f"{where}: {req.sample_id}: payload frames differ from the request's")
    if sorted(payload["objects"]) != sorted(req.objects):
        raise AdapterError(f"{where}: {req.sample_id}: payload objects {sorted(payload['objects'])}, expected "
                           f"{sorted(req.objects)}")
    n = len(req.frames)
    for o, rles in payload["objects"].items():
        if not isinstance(rles, list) or len(rles) != n:
            raise AdapterError(f"{where}: {req.sample_id}: object {o}: not one mask per frame")


def decode_vos(payload: Mapping[str, Any], where: str = "stored prediction") -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_vos`: ``{obj_id: (T, H, W) bool}``."""
    from refbench.runs.store import decode_masks

    return {o: decode_masks({"size": payload["size"], "rles": rles}, f"{where} object {o}")
            for o, rles in payload["objects"].items()}


def vos_predictions_doc(samples: Sequence[Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``{video: {obj_id: {frame: {"size": [H, W], "counts": str}}}}`` in dataset order (module doc)."""
    doc: dict[str, Any] = {}
    for s in samples:
        p = stored[s.video].payload
        h, w = p["size"]
        names = p["frames"]
        doc[s.video] = {o: {f: {"size": [h, w], "counts": c} for f, c in zip(names, rles)}
                        for o, rles in p["objects"].items()}
    return doc


__all__ = ["PROMPT_RULES", "VosInputs", "check_vos_payload", "decode_vos", "encode_vos", "vos_inputs",
           "vos_predictions_doc", "vos_request"]
