"""Sa2VA (magic-research/Sa2VA v1, bytedance/Sa2VA v2; HF ``ByteDance/Sa2VA-*``): referring VOS and RES, called
exactly as the official v2 eval scripts call it (bytedance/Sa2VA @ 9832e1a80e74ed513e8072bf882a09bdd80566c4,
``projects/sa2va/evaluation/sa2va_eval_ref_vos.py`` + ``dataset/refVOS.py``, ``sa2va_eval_refcoco.py`` +
``dataset/RES.py``; v1 = magic-research/Sa2VA @ d01bf3fa8ee239325a007e7b64ee2fd22578b045).

* RefVOS: every frame, sorted, PIL RGB at its original size; ``predict_forward(video=frames, text=prompt,
  tokenizer=tok, processor=proc)``; prompt ``"<image>\\nPlease segment {exp}."``, or for an expression containing
  ``?``: ``"<image>\\n {exp} Please respond with a segmentation mask."`` (v2; ``question_prompt=v1`` passes the raw
  expression as v1 did). The first ``[SEG]``'s masks (``prediction_masks[0]``); none gives empty masks (flag
  ``no_seg``).
* RES: ``predict_forward(image=PIL, text="<image>\\n Please segment {sent} in this image.", ...)``; several ``[SEG]``
  are united (v2; ``res_multi_seg=first`` is v1's first mask); no ``[SEG]`` gives no mask (``None``: the protocol's
  null rule; Sa2VA's own skips it in the cIoU sums).
* The family is read from ``config.json``'s ``auto_map.AutoModel`` (``modeling_sa2va_qwen.Sa2VAChatModelQwen`` ->
  Qwen, which also gets ``AutoProcessor``; else InternVL), never from the folder name: the official script tests
  ``'qwen' in model_path`` and so gives a Qwen checkpoint in a folder without "qwen" no processor.
* ``mllm_frames``: which 5 frames the MLLM sees and SAM 2 is prompted on. ``first5`` is the official call above
  (the remote ``predict_forward`` takes frames 0..4). ``uniform`` (not in the official code, which has no knob for
  it) takes 5 frames spread over the video (:func:`refbench.adapters.keyframes.uniform`) for both: during the call it
  hands the MLLM the key frames in place of frames 0..4 (InternVL: the model's ``transformer``, the per-frame image
  transform, is wrapped; Qwen: the remote module's ``process_vision_info`` is wrapped) and replaces
  ``grounding_encoder.language_embd_inference`` by the same steps with the key frames' indices
  (``sam2_model.add_language_embd(state, k, 100 + obj, embd, inference=True)`` for each key frame ``k``, then
  ``sam2_model.propagate_in_video(state)``). Written against the remote code as published in bytedance/Sa2VA @
  0d8f983 (``projects/sa2va/hf/models_qwen/modeling_sa2va_qwen.py``) and the InternVL ``modeling_sa2va_chat.py`` /
  ``sam2.py`` of the same lineage; the HF checkpoints' own copies could not be read here, so the adapter checks that
  those attributes exist and refuses ``uniform`` with a clear error when they do not.

Environments: InternVL2.5 checkpoints (Sa2VA-1B/4B/8B/26B) need transformers 4.49.0 (InternLM2's ``generate`` is
gone from 4.50), InternVL3 / Qwen ones 4.57.0 (the v2 ``pyproject.toml``'s ``legacy`` / ``latest`` extras); none
runs on 5.x (the remote classes never call ``post_init``).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import time
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from refbench.adapters import hf
from refbench.adapters.base import (
    Adapter,
    AdapterError,
    ImagePrediction,
    ImageRequest,
    RunContext,
    VideoPrediction,
    VideoRequest,
)
from refbench.adapters.keyframes import key_frames

VIDEO_PROMPT = "<image>\nPlease segment {}."
VIDEO_QUESTION_PROMPT = "<image>\n {} Please respond with a segmentation mask."  # v2, expressions with '?'
IMAGE_PROMPT = "<image>\n Please segment {} in this image."
N_KEY_FRAMES = 5  # the remote predict_forward's fixed count


def video_prompt(exp: str, style: str = "v2") -> str:
    """The official ref-VOS prompt of an expression (``dataset/refVOS.py``): v2's '?' rule, or v1's raw question."""
    if "?" in exp:
        return VIDEO_QUESTION_PROMPT.format(exp) if style == "v2" else exp
    return VIDEO_PROMPT.format(exp)


def variant_of(config: Mapping[str, Any]) -> str:
    """``qwen`` or ``internvl`` from ``auto_map.AutoModel`` (module doc)."""
    ref = hf.auto_map_class(config, "AutoModel")
    if not ref:
        raise AdapterError("config.json has no auto_map.AutoModel: not a Sa2VA remote-code checkpoint")
    return "qwen" if "qwen" in ref.lower() else "internvl"


class Sa2VAAdapter(Adapter):
    name = "sa2va"
    tasks = frozenset({"refvos", "res"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self._state: dict[str, Any] = {}

    def setup(self, context: RunContext) -> None:
        from refbench.adapters.registry import adapter_card

        card = adapter_card(self.card_name or self.name)
        o = self.options
        hf.offline_unless(bool(o.get("download")))
        path, prov = hf.resolve_checkpoint(card.name, card.weights, o)
        code = hf.code_hash(path)
        hf.trust_notice(card.name, path, code["sha256"])
        found = variant_of(hf.read_config(path))
        variant = found if o.get("variant", "auto") == "auto" else str(o["variant"])
        self.device = context.device
        self.model = hf.load_model(card.name, path, dtype=str(o.get("dtype", "bfloat16")), device=self.device,
                                   device_map=o.get("device_map"), flash_attn=bool(o.get("flash_attn", True)))
        self.tokenizer = hf.load_tokenizer(card.name, path)
        self.processor = hf.load_processor(card.name, path) if variant == "qwen" else None
        self.variant = variant
        try:
            params = inspect.signature(self.model.predict_forward).parameters
        except (TypeError, ValueError):
            params = {}
        self._pass_processor = "processor" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        if variant == "qwen" and not self._pass_processor:
            raise AdapterError(f"model {card.name}: a Qwen checkpoint whose predict_forward takes no processor")
        self._state = {"remote_code": code["sha256"], "transformers": hf.transformers_version(),
                       "revision": prov.get("revision"), "weights_source": prov.get("source"), "variant": variant}
        if o.get("mllm_frames") == "uniform":
            if variant == "internvl" and getattr(self.model, "transformer", None) is None and \
                    callable(getattr(self.model, "preparing_for_generation", None)):
                # what the remote predict_forward does on its first call (it builds ``transformer`` there)
                self.model.preparing_for_generation(tokenizer=self.tokenizer)
            _check_uniform_hooks(self.model, variant, card.name)

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def close(self) -> None:
        self.model = None

    def _call(self, **kw: Any) -> dict[str, Any]:
        if self._pass_processor:
            kw["processor"] = self.processor
        with hf.no_grad():
            return self.model.predict_forward(tokenizer=self.tokenizer, **kw)

    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        o = self.options
        out = []
        for r in requests:
            frames = [r.frames.pil(i) for i in range(len(r.frames))]
            prompt = video_prompt(r.text, str(o.get("question_prompt", "v2")))
            keys = key_frames("uniform" if o.get("mllm_frames") == "uniform" else "first", len(frames), N_KEY_FRAMES)
            t = time.perf_counter()
            with hf.PeakMemory(self.device) as mem:
                if o.get("mllm_frames") == "uniform":
                    with uniform_key_frames(self.model, self.variant, frames, keys):
                        res = self._call(video=frames, text=prompt)
                else:
                    res = self._call(video=frames, text=prompt)
            masks_list = list(res.get("prediction_masks") or [])
            diag = _diag(res, len(masks_list), time.perf_counter() - t, mem.mib)
            diag["key_frames"] = keys
            masks = (np.asarray(masks_list[0]).astype(bool) if masks_list  # sa2va_eval_ref_vos.py: [0]
                     else np.zeros((len(frames), *r.size), bool))
            out.append(VideoPrediction(masks, diag))
        return out

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        from PIL import Image

        out = []
        for r in requests:
            with Image.open(r.image_path) as im:
                image = im.convert("RGB")
            t = time.perf_counter()
            with hf.PeakMemory(self.device) as mem:
                res = self._call(image=image, text=IMAGE_PROMPT.format(r.text))
            masks_list = list(res.get("prediction_masks") or [])
            diag = _diag(res, len(masks_list), time.perf_counter() - t, mem.mib)
            if not masks_list:
                mask = None
            elif self.options.get("res_multi_seg", "union") == "union":  # v2 sa2va_eval_refcoco.py
                mask = np.any(np.stack([np.asarray(m)[0] for m in masks_list]), axis=0)
            else:  # v1 refcoco_eval.py
                mask = np.asarray(masks_list[0])[0].astype(bool)
            out.append(ImagePrediction(mask, diag))
        return out


# ----------------------------------------------------------------------------------------------
# mllm_frames=uniform: key frames other than 0..4, on the remote code's own pieces
# ----------------------------------------------------------------------------------------------


def _check_uniform_hooks(model: Any, variant: str, card: str) -> None:
    missing = []
    enc = getattr(model, "grounding_encoder", None)
    if enc is None or not callable(getattr(enc, "language_embd_inference", None)):
        missing.append("grounding_encoder.language_embd_inference")
    sam = getattr(enc, "sam2_model", None)
    for name in ("add_language_embd", "propagate_in_video"):
        if not callable(getattr(sam, name, None)):
            missing.append(f"grounding_encoder.sam2_model.{name}")
    if variant == "qwen":
        if not callable(getattr(sys.modules.get(type(model).__module__), "process_vision_info", None)):
            missing.append(f"{type(model).__module__}.process_vision_info")
    elif not callable(getattr(model, "transformer", None)):
        missing.append("transformer (the per-frame image transform)")
    if missing:
        raise AdapterError(f"model {card}: --model-arg mllm_frames=uniform needs the remote code's "
                           f"{', '.join(missing)}, which this checkpoint's code lacks; use mllm_frames=first5")


@contextlib.contextmanager
def uniform_key_frames(model: Any, variant: str, frames: Sequence[Any], keys: Sequence[int]) -> Iterator[None]:
    """For one ``predict_forward`` call: the MLLM sees ``frames[keys]`` and SAM 2 is prompted on ``keys`` (module
    doc). Everything is restored afterwards, also on error."""
    enc = model.grounding_encoder
    sam = enc.sam2_model
    restore: list[tuple[Any, str, Any, bool]] = []

    def patch(obj: Any, attr: str, value: Any) -> None:
        had = attr in getattr(obj, "__dict__", {})
        restore.append((obj, attr, getattr(obj, attr, None), had))
        setattr(obj, attr, value)

    def language_embd_inference(inference_state: Any, language_embd: Sequence[Any], *a: Any, **kw: Any) -> Any:
        import torch

        if len(language_embd) != len(keys):
            raise AdapterError(f"mllm_frames=uniform: the remote code prompted {len(language_embd)} frames, "
                               f"expected {len(keys)}")
        device_type = "cuda" if str(model.device).startswith("cuda") else "cpu"
        ctx = torch.autocast(device_type=device_type, dtype=torch.bfloat16) if device_type == "cuda" \
            else contextlib.nullcontext()
        with ctx:
            for i, k in enumerate(keys):
                for obj_idx in range(len(language_embd[i])):
                    sam.add_language_embd(inference_state, int(k), obj_idx + 100, language_embd[i][obj_idx][None][None],
                                          inference=True)
            masks = [m for _f, _o, m in sam.propagate_in_video(inference_state)]
        return torch.cat(masks, dim=0)

    patch(enc, "language_embd_inference", language_embd_inference)
    if variant == "qwen":
        mod = sys.modules[type(model).__module__]
        original = mod.process_vision_info

        def process_vision_info(messages: Any, *a: Any, **kw: Any) -> Any:
            swapped = []
            for msg in messages:
                content, j = [], 0
                for item in msg.get("content", []):
                    if isinstance(item, dict) and item.get("type") == "image" and j < len(keys):
                        item = {**item, "image": frames[keys[j]]}
                        j += 1
                    content.append(item)
                swapped.append({**msg, "content": content})
            return original(swapped, *a, **kw)

        patch(mod, "process_vision_info", process_vision_info)
    else:
        calls = {"i": 0}
        transform = model.transformer

        def key_transform(frame: Any) -> Any:
            i = calls["i"]  # the remote code transforms frames 0..4 in order, one call each
            calls["i"] += 1
            return transform(frames[keys[i]] if i < len(keys) else frame)

        patch(model, "transformer", key_transform)
    try:
        yield
    finally:
        for obj, attr, old, had in reversed(restore):
            if had:
                setattr(obj, attr, old)
            else:
                try:
                    delattr(obj, attr)
                except AttributeError:
                    setattr(obj, attr, old)


def _diag(res: Mapping[str, Any], n_seg: int, seconds: float, peak: float | None) -> dict[str, Any]:
    d: dict[str, Any] = {"text": str(res.get("prediction", "")), "seg_count": n_seg, "seconds": round(seconds, 4)}
    if n_seg == 0:
        d["flags"] = ["no_seg"]
    if peak is not None:
        d["peak_gpu_mib"] = peak
    return d


__all__ = ["IMAGE_PROMPT", "Sa2VAAdapter", "VIDEO_PROMPT", "VIDEO_QUESTION_PROMPT", "uniform_key_frames",
           "variant_of", "video_prompt"]
