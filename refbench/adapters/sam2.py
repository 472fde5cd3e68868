"""SAM 2.1 (Hiera tiny / small / base-plus / large) as a semi-supervised VOS baseline, on transformers'
``Sam2VideoModel`` (HF ``facebook/sam2.1-hiera-*``), prompted and propagated as facebookresearch/sam2's
``tools/vos_inference.py`` (@ 5994d562) does for its VOS numbers.

Per video (:mod:`refbench.adapters.sam2_video`): every frame, in order, PIL RGB at its original size, into
``processor.init_video_session``; each object prompted with its mask on its prompt frame (the benchmark's protocol:
:mod:`refbench.runs.vos`); ``inference: auto`` propagates jointly when every prompt is on one frame (``vos_inference``,
DAVIS / MOSE / SA-V) and per object otherwise (``vos_separate_inference_per_object``, the
``--track_object_appearing_later_in_video`` flag for YouTube-VOS / LVOS); forward only (``direction: both`` adds a
reverse pass from the prompt frame). Objects are merged by ``merge``: ``auto`` applies SAM 2's non-overlapping
constraint where the benchmark stores one id per pixel and none where each object has its own PNG (vos_inference.py's
``non_overlap_masks = not per_obj_png_file``); then ``logit > score_thresh`` (0.0, ``--score_thresh``).

``dtype: float32`` by default (transformers' plain dtype; the original script runs under CUDA bf16 autocast, which
transformers has no equivalent of -- ``dtype: bfloat16`` loads bf16 weights instead; huggingface/transformers#46493
traced SAM-family gaps to bf16 casts). Frames are resized by transformers' ``Sam2VideoVideoProcessor``, not the
original repo's PIL resize, so numbers are transformers SAM 2.1's.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from refbench.adapters import hf
from refbench.adapters.base import Adapter, AdapterError, RunContext, VosPrediction, VosRequest
from refbench.adapters.vos_merge import model_object_ids, scores_to_masks

_CONFIG_FILES = ("config.json", "processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")



class Sam2VideoAdapter(Adapter):
    name = "sam2.1"
    tasks = frozenset({"vos"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self.processor: Any = None
        self._state: dict[str, Any] = {}

    def setup(self, context: RunContext) -> None:
        from refbench.adapters.registry import adapter_card

        card = adapter_card(self.card_name or self.name)
        o = self.options
        hf.offline_unless(bool(o.get("download")))
        path, prov = hf.resolve_checkpoint(card.name, card.weights, o)
        from refbench.adapters.sam2_video import load_sam2_video

        self.device = context.device
        self.dtype = str(o.get("dtype", "float32"))
        self.model, self.processor = load_sam2_video(card.name, path, dtype=self.dtype, device=self.device)
        import torch

        self._state = {"transformers": hf.transformers_version(), "torch": torch.__version__,
                       "revision": prov.get("revision"), "weights_source": prov.get("source"),
                       "config_sha256": hf.files_hash(path, _CONFIG_FILES)}

    def fingerprint_state(self) -> dict[str, Any]:
        return dict(self._state)

    def predict_vos(self, requests: Sequence[VosRequest]) -> list[VosPrediction]:
        from refbench.adapters.sam2_video import Sam2VideoTracker, track_objects

        if self.model is None:
            raise AdapterError(f"model {self.name}: predict before setup")
        o = self.options
        out = []
        for r in requests:
            t0 = time.perf_counter()
            n = len(r.frames)
            if not r.prompts:
                out.append(VosPrediction({}, {"objects": 0}))
                continue
            ids = model_object_ids(r.objects)
            order = sorted(range(len(ids)), key=lambda i: ids[i])  # SAM 2 tracks (and breaks ties) in id order
            prompts = [(ids[i], r.prompts[i].frame, r.prompts[i].mask()) for i in order]
            mode = str(o.get("inference", "auto"))
            if mode == "auto":
                mode = "joint" if len({p.frame for p in r.prompts}) == 1 else "per_object"
            with hf.PeakMemory(self.device) as peak:
                tracker = Sam2VideoTracker(self.model, self.processor, [r.frames[t] for t in range(n)],
                                           device=self.device, dtype=self.dtype,
                                           offload_video=bool(o.get("offload_video", False)))
                try:
                    res = track_objects(tracker, prompts, direction=str(o.get("direction", "forward")), mode=mode)
                    merge = str(o.get("merge", "auto"))
                    constrain = merge == "non_overlap" or (merge == "auto" and r.overlap == "exclusive")
                    thresh = float(o.get("score_thresh", 0.0))
                    masks = {r.objects[i]: np.zeros((n, *r.size), bool) for i in order}
                    for t in range(n):
                        m = scores_to_masks(res.logits(t), thresh, constrain)
                        for k, i in enumerate(order):
                            masks[r.objects[i]][t] = m[k]
                    tracked = {r.objects[i]: len(res.tracked(ids[i])) for i in order}
                finally:
                    tracker.close()
            diag = {"mode": mode, "direction": o.get("direction", "forward"),
                    "non_overlap": constrain, "prompt_frames": {p.obj_id: r.frames.names[p.frame] for p in r.prompts},
                    "frames_tracked": tracked, "seconds": round(time.perf_counter() - t0, 3)}
            if peak.mib is not None:
                diag["peak_cuda_mib"] = peak.mib
            out.append(VosPrediction(masks, diag))
        return out

    def close(self) -> None:
        self.model = None
        self.processor = None


__all__ = ["Sam2VideoAdapter"]
