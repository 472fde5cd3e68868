"""SAM 2 video propagation on transformers' ``Sam2VideoModel`` / ``Sam2VideoProcessor``: mask prompts on any frame
for any object, propagation forward and/or backward over every frame, per-object logits at the original size.

Shared by every adapter that drives SAM 2 (the ``sam2.1-hiera-*`` VOS baselines; ReferDINO-Plus, which seeds SAM 2.1
with ReferDINO's masks on their best frames and propagates both ways). transformers is the maintained implementation
of Meta's SAM 2 (facebookresearch/sam2; the PyPI ``sam2`` package is a third-party upload); its processors need
torchvision, hence the ``sam`` environment (torch 2.14.1 + torchvision 0.29.1, ADAPTERS.md 6.2).

* :func:`load_sam2_video` -- ``Sam2VideoModel.from_pretrained(path, dtype=..., local_files_only=True)`` and
  ``Sam2VideoProcessor.from_pretrained(path)`` (the hub checkpoints ``facebook/sam2.1-hiera-{tiny,small,base-plus,
  large}`` carry both), ``.eval()``, on the run's device.
* :class:`Sam2VideoTracker` -- one video: ``processor.init_video_session(video=frames)``; :meth:`~Sam2VideoTracker.
  add_masks` is ``processor.add_inputs_to_inference_session(..., input_masks=masks)`` (the processor resizes the mask to
  the model's input size and binarises it at 0.5, as SAM 2's ``add_new_mask`` does); :meth:`~Sam2VideoTracker.
  propagate` is ``model.propagate_in_video_iterator(session, start_frame_idx, reverse)``, yielding each frame's
  low-resolution mask logits; :meth:`~Sam2VideoTracker.to_original` upsamples them to the video's size with
  ``processor.post_process_masks(..., binarize=False)`` (bilinear, ``align_corners=False``: SAM 2's
  ``_get_orig_video_res_output``). :meth:`~Sam2VideoTracker.reset` drops prompts and outputs but keeps the frames.
* :func:`track_objects` -- SAM 2's ``tools/vos_inference.py`` (facebookresearch/sam2 @ 5994d562): ``joint`` is its
  ``vos_inference`` (every object's mask added to one session, propagated from the earliest prompt frame), ``per_object``
  its ``vos_separate_inference_per_object`` (``--track_object_appearing_later_in_video``: per object, reset, add its
  mask, propagate from its own prompt frame; frames it was not tracked on score ``NO_OBJ_SCORE`` -1024). ``both`` adds
  a reverse pass from the same start frame after the forward one (the original's ``propagation_direction="both"``);
  the reverse pass revisits the start frame, whose conditioning output is kept. The result keeps the low-resolution
  logits per object and frame (a long video's full-size float logits would not fit in memory) and upsamples on
  request.

Nothing here is imported before an adapter's ``setup`` (torch and transformers are imported inside the functions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from refbench.adapters.base import AdapterError

#: the score of an object on a frame it was not tracked on (SAM 2's ``NO_OBJ_SCORE``)
NO_OBJ_SCORE = -1024.0
DIRECTIONS = ("forward", "both")
MODES = ("joint", "per_object")


def load_sam2_video(model_name: str, path: Path, *, dtype: str, device: str) -> tuple[Any, Any]:
    """``(model, processor)`` of a transformers SAM 2 video checkpoint folder (module doc)."""
    from refbench.adapters.hf import dtype_kwargs

    try:
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        processor = Sam2VideoProcessor.from_pretrained(str(path), local_files_only=True)
    except ImportError as exc:
        raise AdapterError(f"model {model_name}: transformers' SAM 2 video processor cannot be imported ({exc}); it "
                           "needs transformers >= 4.56 and torchvision: use the model's environment (refbench env "
                           f"create {model_name})") from exc
    try:
        model = Sam2VideoModel.from_pretrained(str(path), local_files_only=True, **dtype_kwargs(dtype))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"model {model_name}: {path}: not a transformers Sam2VideoModel checkpoint ({exc})") from exc
    return model.eval().to(device), processor


class Sam2VideoTracker:
    """One video in a SAM 2 session (module doc). ``frames``: ``(H, W, 3) uint8`` RGB arrays (or PIL images) in
    order; ``dtype``: the session's dtype (as the model's); ``offload_video``: keep the processed frames on the CPU."""

    def __init__(self, model: Any, processor: Any, frames: Sequence[Any], *, device: str = "cpu",
                 dtype: str = "float32", offload_video: bool = False) -> None:
        from refbench.adapters.hf import torch_dtype

        if not len(frames):
            raise AdapterError("SAM 2: a video without frames")
        self.model, self.processor = model, processor
        self.session = processor.init_video_session(
            video=list(frames), inference_device=device, dtype=torch_dtype(dtype),
            video_storage_device="cpu" if offload_video else device)
        self.height = int(self.session.video_height)
        self.width = int(self.session.video_width)
        self.num_frames = len(frames)

    def add_masks(self, frame: int, masks: Sequence[tuple[int, np.ndarray]]) -> None:
        """Prompt objects on frame index ``frame``: ``[(obj_id, (H, W) bool mask at the original size), ...]``. All of
        one frame's prompts go in one call: transformers marks only the objects of the latest call as having new
        inputs, so a second call on the same session before propagating would drop the first one's."""
        ids, ms = [], []
        for obj_id, mask in masks:
            m = np.asarray(mask, dtype=bool)
            if m.shape != (self.height, self.width):
                raise AdapterError(f"SAM 2: prompt of object {obj_id} is {m.shape}, the video "
                                   f"{self.height}x{self.width}")
            ids.append(int(obj_id))
            ms.append(m)
        if not 0 <= frame < self.num_frames:
            raise AdapterError(f"SAM 2: prompt on frame {frame}, outside the {self.num_frames} frames")
        if ids:
            self.processor.add_inputs_to_inference_session(self.session, frame_idx=int(frame), obj_ids=ids,
                                                           input_masks=ms)

    def add_mask(self, obj_id: int, frame: int, mask: np.ndarray) -> None:
        """Prompt one object with ``mask`` on frame index ``frame`` (:meth:`add_masks`)."""
        self.add_masks(frame, [(obj_id, mask)])

    def reset(self) -> None:
        """Drop every prompt and output (the processed frames and their cached features stay)."""
        self.session.reset_tracking_data()

    def propagate(self, start: int | None = None, reverse: bool = False) -> Iterator[tuple[int, list[int], Any]]:
        """``(frame index, object ids, low-res logits (K, 1, h, w))`` per frame, from ``start`` (default: the earliest
        prompt frame) forward, or backward to frame 0 when ``reverse``."""
        import torch

        with torch.inference_mode():
            for out in self.model.propagate_in_video_iterator(self.session, start_frame_idx=start, reverse=reverse):
                yield int(out.frame_idx), list(out.object_ids), out.pred_masks

    def to_original(self, low: Any) -> np.ndarray:
        """Low-res logits ``(K, 1, h, w)`` (or ``(1, h, w)``) -> ``(K, H, W)`` float32 logits at the video's size."""
        import torch

        t = low if low.dim() == 4 else low.unsqueeze(0)
        with torch.inference_mode():
            up = self.processor.post_process_masks([t.float()], original_sizes=[[self.height, self.width]],
                                                   binarize=False)[0]
        return up[:, 0].detach().to("cpu", torch.float32).numpy()

    def close(self) -> None:
        self.session = None


@dataclass
class TrackResult:
    """Per object, the low-res logits of every frame it was tracked on (:func:`track_objects`)."""

    tracker: Sam2VideoTracker
    objects: list[int]
    low: dict[int, dict[int, Any]] = field(default_factory=dict)
    mode: str = "joint"

    def logits(self, frame: int) -> np.ndarray:
        """``(K, H, W)`` float32 logits of every object (in ``objects`` order) on frame ``frame``; ``NO_OBJ_SCORE``
        where an object was not tracked. Each object is upsampled on its own, as SAM 2 does per object."""
        out = np.full((len(self.objects), self.tracker.height, self.tracker.width), NO_OBJ_SCORE, np.float32)
        for i, o in enumerate(self.objects):
            low = self.low.get(o, {}).get(frame)
            if low is not None:
                out[i] = self.tracker.to_original(low)[0]
        return out

    def tracked(self, obj: int) -> list[int]:
        return sorted(self.low.get(obj, {}))


def _collect(tracker: Sam2VideoTracker, store: dict[int, dict[int, Any]], start: int, reverse: bool,
             only: set[int] | None = None) -> None:
    for frame, ids, low in tracker.propagate(start, reverse):
        for k, o in enumerate(ids):
            if only is not None and o not in only:
                continue
            slot = store.setdefault(o, {})
            if reverse and frame in slot:
                continue  # the start frame, revisited: keep its forward (conditioning) output
            slot[frame] = low[k:k + 1].detach().to("cpu")


def track_objects(tracker: Sam2VideoTracker, prompts: Sequence[tuple[int, int, np.ndarray]], *,
                  direction: str = "forward", mode: str = "joint") -> TrackResult:
    """Prompt and propagate as SAM 2's ``tools/vos_inference.py`` does (module doc). ``prompts``: ``(obj_id, frame
    index, (H, W) bool mask)``; objects are kept in that order."""
    if direction not in DIRECTIONS:
        raise AdapterError(f"SAM 2: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if mode not in MODES:
        raise AdapterError(f"SAM 2: mode must be one of {', '.join(MODES)}, got {mode!r}")
    objects = [int(o) for o, _f, _m in prompts]
    res = TrackResult(tracker, objects, mode=mode)
    if not prompts:
        return res
    if mode == "joint":
        frames = {f for _o, f, _m in prompts}
        if len(frames) > 1:
            raise AdapterError(f"SAM 2: joint propagation needs every prompt on one frame (vos_inference.py prompts "
                               f"frame 0 only), got frames {sorted(frames)}; use per-object propagation")
        tracker.reset()
        start = frames.pop()
        tracker.add_masks(start, [(o, m) for o, _f, m in prompts])
        _collect(tracker, res.low, start, False)
        if direction == "both":
            _collect(tracker, res.low, start, True)
        return res
    for o, f, m in prompts:
        tracker.reset()
        tracker.add_mask(o, f, m)
        _collect(tracker, res.low, f, False, {int(o)})
        if direction == "both":
            _collect(tracker, res.low, f, True, {int(o)})
    tracker.reset()
    return res


__all__ = ["DIRECTIONS", "MODES", "NO_OBJ_SCORE", "Sam2VideoTracker", "TrackResult", "load_sam2_video",
           "track_objects"]
