"""SAM 3 as a zero-shot referring baseline (transformers' port of facebookresearch/sam3; weights HF
``facebook/sam3``): the expression is the concept (text) prompt, and the instances SAM 3 finds become one referring
mask by a stated policy. Not a referring model: it segments *every* instance of the concept; the numbers are a
baseline, with no official protocol to reproduce.

* RefVOS (``Sam3VideoModel`` + ``Sam3VideoProcessor``, transformers 5.x): ``session =
  processor.init_video_session(video=<every frame, PIL RGB>, inference_device=<run device>, dtype=<dtype>)``,
  ``processor.add_text_prompt(session, expression)``, then ``model.propagate_in_video_iterator(session,
  start_frame_idx=0)`` over every frame with ``processor.postprocess_outputs(session, out)`` per frame (object ids,
  detection scores, binary masks at the original size). ``propagation=both`` (default) continues on the same
  session with ``reverse=True`` from the last frame back to frame 0 (transformers' reverse order starts one frame
  before ``start_frame_idx``, so frames ``T-2 .. 0``), and a frame's outputs are those of the later pass, as the
  original predictor's ``propagation_direction="both"`` streams them (huggingface/transformers#46493: the port was
  used forward-only and in bf16, and scored below the original; the original runs float32 and both directions).
  ``propagation=forward`` stops after the first pass.
* RES (``Sam3Model`` + ``Sam3Processor``): ``inputs = processor(images=image, text=sentence)``, ``outputs =
  model(**inputs)``, ``processor.post_process_instance_segmentation(outputs, threshold=score_threshold,
  mask_threshold=0.5, target_sizes=original_sizes)``.
* ``instances`` -- how the instances become one mask: ``best`` (default) the single instance with the highest score
  (video: the object id whose score, averaged over every frame with 0 where it is absent, is highest; its mask on
  every frame), ``union`` every instance whose score is ``>= score_threshold`` (video: per frame). No instance gives
  an empty mask (flag ``no_instance``).
* ``dtype`` float32 by default (the original's precision; bf16 and fp16 load the weights in that dtype).
* The optional ``kernels`` package's ``kernels-community/cv-utils`` (NMS, hole filling, sprinkle removal in the
  video post-processing) changes outputs: refbench tries to load it once at setup (it is fetched from the Hugging
  Face Hub, so with the hub offline -- the default unless ``download=true`` -- it loads only from the local cache)
  and records ``loaded`` / ``not installed`` / ``failed`` in the fingerprint state and every sample's diagnostics.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np

from refbench.adapters import hf
from refbench.adapters.base import (Adapter, AdapterError, ImagePrediction, ImageRequest, RunContext,
                                    VideoPrediction, VideoRequest)


def merge_video(per_frame: Sequence[Mapping[str, Any]], size: tuple[int, int], policy: str,
                threshold: float) -> tuple[np.ndarray, dict[str, Any]]:
    """One ``(T, H, W) bool`` referring mask from SAM 3's per-frame outputs (``{"object_ids": [n], "scores": [n],
    "masks": (n, H, W) bool}``), by ``policy`` (module doc), and what was chosen."""
    t = len(per_frame)
    out = np.zeros((t, *size), dtype=bool)
    if policy == "best":
        totals: dict[int, float] = {}
        for f in per_frame:
            for oid, s in zip(f["object_ids"], f["scores"]):
                totals[int(oid)] = totals.get(int(oid), 0.0) + float(s)
        if not totals:
            return out, {"object": None, "mean_score": None}
        best = min(totals, key=lambda k: (-totals[k], k))  # highest mean score; the lower id on a tie
        for i, f in enumerate(per_frame):
            ids = [int(x) for x in f["object_ids"]]
            if best in ids:
                out[i] = np.asarray(f["masks"][ids.index(best)], dtype=bool)
        return out, {"object": best, "mean_score": round(totals[best] / max(t, 1), 6)}
    kept = set()
    for i, f in enumerate(per_frame):
        for j, (oid, s) in enumerate(zip(f["object_ids"], f["scores"])):
            if float(s) >= threshold:
                out[i] |= np.asarray(f["masks"][j], dtype=bool)
                kept.add(int(oid))
    return out, {"objects": sorted(kept)}


def merge_image(scores: Sequence[float], masks: Any, size: tuple[int, int], policy: str,
                threshold: float) -> tuple[np.ndarray, dict[str, Any]]:
    """One ``(H, W) bool`` mask from SAM 3's kept instances (``masks: (n, H, W)``, ``scores: (n,)``)."""
    out = np.zeros(size, dtype=bool)
    keep = [j for j, s in enumerate(scores) if float(s) >= threshold]
    if not keep:
        return out, {"chosen": []}
    if policy == "best":
        keep = [min(keep, key=lambda j: (-float(scores[j]), j))]
    for j in keep:
        out |= np.asarray(masks[j], dtype=bool)
    return out, {"chosen": keep}


def kernel_state() -> str:
    """``loaded``, ``not installed`` or ``failed``: the cv-utils kernel of transformers' SAM 3 video code, loaded
    now if it was not tried yet (module doc)."""
    from transformers.models.sam3_video import modeling_sam3_video as mod
    from transformers.utils import is_kernels_available

    if not is_kernels_available():
        return "not installed"
    loader = getattr(mod, "_load_cv_utils_kernel_once", None)
    if callable(loader):
        loader()
    k = getattr(mod, "cv_utils_kernel", None)
    return "loaded" if k else "failed"


class Sam3Adapter(Adapter):
    name = "sam3"
    tasks = frozenset({"refvos", "res"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.video_model: Any = None
        self.image_model: Any = None
        self._state: dict[str, Any] = {}

    def setup(self, context: RunContext) -> None:
        from refbench.adapters.registry import adapter_card

        o = self.options
        card = adapter_card(self.card_name or self.name)
        hf.offline_unless(bool(o.get("download")))
        try:
            import torchvision  # noqa: F401 - SAM 3's modeling and processors require it
            import transformers
        except ImportError as exc:
            raise AdapterError(f"model {card.name} needs transformers 5 and torchvision ({exc}): build its "
                               f"environment (refbench env create {card.name})") from exc
        if not hasattr(transformers, "Sam3VideoModel"):
            raise AdapterError(f"model {card.name}: transformers {transformers.__version__} has no Sam3VideoModel "
                               f"(SAM 3 is in transformers 5): refbench env create {card.name}")
        path, prov = hf.resolve_checkpoint(card.name, card.weights, o)
        self.path = path
        self.device = context.device
        self.dtype = hf.torch_dtype(str(o.get("dtype", "float32")))
        self._state = {"transformers": transformers.__version__, "revision": prov.get("revision"),
                       "weights_source": prov.get("source"), "config_sha256": hf.files_hash(path, (
                           "config.json", "processor_config.json", "preprocessor_config.json", "tokenizer_config.json")),
                       "cv_utils_kernel": kernel_state()}

    def _video(self) -> tuple[Any, Any]:
        if self.video_model is None:
            from transformers import Sam3VideoModel, Sam3VideoProcessor

            self.video_model = Sam3VideoModel.from_pretrained(str(self.path), dtype=self.dtype,
                                                              local_files_only=True).to(self.device).eval()
            self.video_processor = Sam3VideoProcessor.from_pretrained(str(self.path), local_files_only=True)
        return self.video_model, self.video_processor

    def _image(self) -> tuple[Any, Any]:
        if self.image_model is None:
            from transformers import Sam3Model, Sam3Processor

            self.image_model = Sam3Model.from_pretrained(str(self.path), dtype=self.dtype,
                                                         local_files_only=True).to(self.device).eval()
            self.image_processor = Sam3Processor.from_pretrained(str(self.path), local_files_only=True)
        return self.image_model, self.image_processor

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def close(self) -> None:
        self.video_model = self.image_model = None

    # -- RefVOS -------------------------------------------------------------------------------------
    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        return [self._video_one(r) for r in requests]

    def _propagate(self, frames: list[Any], text: str) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
        import torch

        model, proc = self._video()
        session = proc.init_video_session(video=frames, inference_device=self.device, dtype=self.dtype)
        proc.add_text_prompt(session, text)
        t = len(frames)
        per_frame: list[dict[str, Any] | None] = [None] * t
        visited: dict[str, list[int]] = {"forward": [], "reverse": []}
        passes = [("forward", 0, False)]
        if self.options.get("propagation", "both") == "both" and t > 1:
            passes.append(("reverse", t - 1, True))
        with torch.inference_mode():
            for label, start, reverse in passes:
                for out in model.propagate_in_video_iterator(inference_session=session, start_frame_idx=start,
                                                             reverse=reverse):
                    res = proc.postprocess_outputs(session, out)
                    i = int(out.frame_idx)
                    visited[label].append(i)
                    per_frame[i] = {"object_ids": [int(x) for x in res["object_ids"].tolist()],
                                    "scores": [float(x) for x in res["scores"].float().tolist()],
                                    "masks": res["masks"].detach().cpu().numpy().astype(bool)}
        missing = [i for i, f in enumerate(per_frame) if f is None]
        if missing:
            raise AdapterError(f"model {self.card_name}: SAM 3 propagation gave no output for frames {missing[:5]}")
        return per_frame, visited  # type: ignore[return-value]

    def _video_one(self, r: VideoRequest) -> VideoPrediction:
        o = self.options
        t0 = time.perf_counter()
        frames = [r.frames.pil(i) for i in range(len(r.frames))]
        with hf.PeakMemory(self.device) as mem:
            per_frame, visited = self._propagate(frames, r.text)
        masks, chosen = merge_video(per_frame, tuple(r.size), str(o.get("instances", "best")),
                                    float(o.get("score_threshold", 0.5)))
        diag: dict[str, Any] = {"propagation": o.get("propagation", "both"), "frames_forward": visited["forward"],
                                "frames_reverse": visited["reverse"], "instances": o.get("instances", "best"),
                                "objects_per_frame": [len(f["object_ids"]) for f in per_frame],
                                "cv_utils_kernel": self._state.get("cv_utils_kernel"), **chosen,
                                "seconds": round(time.perf_counter() - t0, 4)}
        if mem.mib is not None:
            diag["peak_gpu_mib"] = mem.mib
        if not any(f["object_ids"] for f in per_frame) or not masks.any():
            diag["flags"] = ["no_instance"]
        return VideoPrediction(masks, diag)

    # -- RES ----------------------------------------------------------------------------------------
    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        import torch
        from PIL import Image

        o = self.options
        model, proc = self._image()
        threshold = float(o.get("score_threshold", 0.5))
        out = []
        for r in requests:
            t0 = time.perf_counter()
            with Image.open(r.image_path) as im:
                image = im.convert("RGB")
            inputs = proc(images=image, text=r.text, return_tensors="pt").to(self.device)
            if self.dtype != torch.float32:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            with hf.PeakMemory(self.device) as mem, torch.inference_mode():
                outputs = model(**inputs)
            res = proc.post_process_instance_segmentation(outputs, threshold=threshold,
                                                          mask_threshold=float(o.get("mask_threshold", 0.5)),
                                                          target_sizes=inputs["original_sizes"].tolist())[0]
            scores = [float(x) for x in res["scores"].float().tolist()]
            mask, chosen = merge_image(scores, res["masks"].detach().cpu().numpy(), tuple(r.size),
                                       str(o.get("instances", "best")), threshold)
            diag: dict[str, Any] = {"instances": o.get("instances", "best"), "scores": [round(s, 6) for s in scores],
                                    **chosen, "seconds": round(time.perf_counter() - t0, 4)}
            if mem.mib is not None:
                diag["peak_gpu_mib"] = mem.mib
            if not mask.any():
                diag["flags"] = ["no_instance"]
            out.append(ImagePrediction(mask, diag))
        return out


__all__ = ["Sam3Adapter", "kernel_state", "merge_image", "merge_video"]
