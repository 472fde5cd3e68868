"""MomentSeg (Dmmm1997/MomentSeg, arXiv 2510.09274): referring VOS, temporal grounding and RES, called exactly as
its official eval scripts call it (Dmmm1997/MomentSeg @ a118d151618cdfc0607aadaa63267a68e887ff73).

All inference lives in the checkpoint's remote code (``config.json`` ``auto_map`` -> ``modeling_momentseg.
MomentsegModel``); this adapter loads it, feeds frames and prompts, sets the knobs the scripts set, and maps outputs:

* RefVOS (``evaluation/ref_vos_eval.py`` + ``evaluation/dataset/refVOS.py``, ``test.sh``): every frame, sorted, PIL
  RGB at its original size; ``predict_forward_find_seg(video=frames, text=SEG_PROMPT, find_text=FIND_PROMPT,
  tokenizer=tok, num_frames=8, video_max_frames=100, inference_mode="multi-frame")`` (``test.sh``'s flags; the
  argparse defaults 5 / "video" are not the reported setting); ``model.video_min_pixels = 4*4*28*28``,
  ``model.video_max_pixels = 6*6*28*28`` set before the first call (the remote code builds its preprocessor then).
  The first ``[SEG]``'s masks are the prediction (``prediction_masks[0]``); no ``[SEG]`` gives empty masks (flag
  ``no_seg``).
* TSG (``evaluation/tvg_eval.py`` + ``evaluation/dataset/TVG.py``): the video decoded at exactly 1 fps
  (:mod:`refbench.video`; the official eval reads 1-fps videos, so frame index = second, end inclusive);
  ``predict_keyframe(video=frames, text=None, find_text=TSG_PROMPT, tokenizer=tok, num_frames=8,
  inference_mode="multi-frame", video_max_frames=100, query_text=query, threshold=0.4)`` (``test.sh`` passes 0.4;
  the argparse default is 0.3), video pixels 4*4*28*28 .. 8*8*28*28. The span is ``pred_start_find, pred_end_find``
  (``tsg_span=find``: the ``*_find.json`` the README numbers use) or the text-parsed ``pred_start, pred_end``
  (``tsg_span=text``), as seconds.
* RES (``evaluation/refcoco_eval.py`` + ``evaluation/dataset/RES.py``): ``predict_forward(image=PIL,
  text="<image>\\n Please segment {sent} in this image.", tokenizer=tok)`` with ``model.min_pixels = 16*16*28*28``,
  ``model.max_pixels = 24*24*28*28``; the first mask, or no mask (``None``: the protocol's null rule) without
  ``[SEG]``. (The released ``refcoco_eval.py`` imports a module missing at that commit; the call is the one it makes.)

Loading trap: ``MomentSegConfig.__init__`` reads the base Qwen2.5-VL config from ``config.json``'s ``mllm_path``
(a relative ``./pretrained/Qwen2.5-VL-{3B,7B}-Instruct`` in the released conversion script), and the first call loads
the Qwen processor from it. ``--model-arg mllm_path=DIR`` builds the config from a patched copy of ``config.json``
(the checkpoint is never touched); passing it to ``from_pretrained`` as a keyword does not work (it is applied after
``__init__``). Needs transformers 4.51.3 (its ``forward`` uses ``self.model.embed_tokens`` and ``self.rope_deltas``,
gone in 4.57); the card's environment pins it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from refbench.adapters import hf
from refbench.adapters.base import (
    Adapter,
    AdapterError,
    GroundingPrediction,
    GroundingRequest,
    ImagePrediction,
    ImageRequest,
    RunContext,
    VideoPrediction,
    VideoRequest,
)

#: ``evaluation/dataset/refVOS.py`` (no question mark; "resoluton" sic; the same for ``?`` expressions)
FIND_PROMPT = ("<video>\nHere is a low-resolution video you can refer to. Can you find the key frames range of the "
               "text query '{}' in this video")
SEG_PROMPT = "<video>\nThis is a low-resoluton video. <image>\nPlease segment {} in this video."
#: ``evaluation/dataset/TVG.py``
TSG_PROMPT = ("<video>\nThis is a low-resolution video. Can you find the key frames range of the text query '{}' in "
              "this video?")
#: ``evaluation/dataset/RES.py::get_questions``
RES_PROMPT = "<image>\n Please segment {} in this image."

#: the knobs each task sets on the model before its first call: (attribute, option)
_KNOBS = {
    "refvos": (("video_min_pixels", "video_min_pixels"), ("video_max_pixels", "video_max_pixels")),
    "tsg": (("video_min_pixels", "tsg_video_min_pixels"), ("video_max_pixels", "tsg_video_max_pixels")),
    "res": (("min_pixels", "res_min_pixels"), ("max_pixels", "res_max_pixels")),
}
_BASE_FILES = ("config.json", "preprocessor_config.json", "tokenizer_config.json", "chat_template.json",
               "generation_config.json", "video_preprocessor_config.json")


class MomentSegAdapter(Adapter):
    name = "momentseg"
    tasks = frozenset({"refvos", "tsg", "res"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self.tokenizer: Any = None
        self._knobs: dict[str, Any] | None = None
        self._state: dict[str, Any] = {}

    # -- loading ------------------------------------------------------------------------------------
    def setup(self, context: RunContext) -> None:
        from refbench.adapters.registry import adapter_card

        card = adapter_card(self.card_name or self.name)
        o = self.options
        hf.offline_unless(bool(o.get("download")))
        path, prov = hf.resolve_checkpoint(card.name, card.weights, o)
        code = hf.code_hash(path)
        hf.trust_notice(card.name, path, code["sha256"])
        self.device = context.device
        config = self._config(card.name, path, o.get("mllm_path"))
        self.model = hf.load_model(card.name, path, dtype=str(o.get("dtype", "bfloat16")), device=self.device,
                                   device_map=o.get("device_map"), flash_attn=bool(o.get("flash_attn", True)),
                                   config=config)
        self.tokenizer = hf.load_tokenizer(card.name, path)
        self.checkpoint = path
        self._state = {"remote_code": code["sha256"], "transformers": hf.transformers_version(),
                       "revision": prov.get("revision"), "weights_source": prov.get("source"),
                       "mllm": self._mllm_hash}

    def _config(self, model: str, path: Path, mllm_path: str | None) -> Any:
        """The checkpoint's config with ``mllm_path`` patched in (module doc), or None to let transformers read it."""
        raw = hf.read_config(path)
        self._mllm_hash = None
        if not mllm_path:
            given = raw.get("mllm_path")
            if given and not Path(given).is_absolute() and not Path(given).exists():
                raise AdapterError(f"model {model}: {path / 'config.json'} reads the base model from mllm_path="
                                   f"{given!r}, which does not exist from {Path.cwd()}: pass --model-arg mllm_path=DIR "
                                   "(a local Qwen2.5-VL-Instruct folder of the same size)")
            if given and Path(given).is_dir():
                self._mllm_hash = hf.files_hash(Path(given), _BASE_FILES)
            return None
        base = Path(str(mllm_path)).expanduser().resolve()
        if not (base / "config.json").is_file():
            raise AdapterError(f"model {model}: --model-arg mllm_path={mllm_path}: no config.json there (a local "
                               "Qwen2.5-VL-Instruct folder)")
        self._mllm_hash = hf.files_hash(base, _BASE_FILES)
        ref = (raw.get("auto_map") or {}).get("AutoConfig")
        if not ref:
            raise AdapterError(f"model {model}: {path / 'config.json'} has no auto_map.AutoConfig")
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        cls = get_class_from_dynamic_module(ref, str(path), local_files_only=True)
        patched = {**raw, "mllm_path": str(base)}
        return cls.from_dict(patched)

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def close(self) -> None:
        self.model = self.tokenizer = None

    # -- knobs ------------------------------------------------------------------------------------------
    def _set_knobs(self, task: str) -> dict[str, Any]:
        """Set the task's pixel limits on the model before its first call; the remote code builds its
        preprocessors on that call, so another task's limits cannot take effect later in the same process."""
        want = {attr: int(self.options[opt]) for attr, opt in _KNOBS[task]}
        if self._knobs is None:
            for attr, value in want.items():
                setattr(self.model, attr, value)
            self._knobs = {"task": task, **want}
        elif any(self._knobs.get(a) != v for a, v in want.items() if a in self._knobs) or \
                any(a not in self._knobs for a in want):
            first = self._knobs["task"]
            raise AdapterError(f"model {self.name}: the remote code fixed its preprocessor on the first {first} call; "
                               f"a {task} request needs other pixel limits: use a new run (process) per task")
        return want

    # -- predictions ------------------------------------------------------------------------------------
    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        self._set_knobs("refvos")
        o = self.options
        out = []
        for r in requests:
            frames = [r.frames.pil(i) for i in range(len(r.frames))]
            t = time.perf_counter()
            with hf.PeakMemory(self.device) as mem, hf.no_grad():
                res = self.model.predict_forward_find_seg(
                    video=frames, text=SEG_PROMPT.format(r.text), find_text=FIND_PROMPT.format(r.text),
                    tokenizer=self.tokenizer, num_frames=int(o["num_frames"]),
                    video_max_frames=int(o["video_max_frames"]), inference_mode=str(o["inference_mode"]))
            masks_list = list(res.get("prediction_masks") or [])
            diag = _diag(res, len(masks_list), time.perf_counter() - t, mem.mib)
            diag.update({k: _plain(res.get(k)) for k in ("find_logits", "sample_center", "sample_index")})
            if masks_list:
                masks = np.asarray(masks_list[0]).astype(bool)  # ref_vos_eval.py: prediction_masks[0]
            else:
                masks = np.zeros((len(frames), *r.size), bool)
            out.append(VideoPrediction(masks, diag))
        return out

    def predict_grounding(self, requests: Sequence[GroundingRequest]) -> list[GroundingPrediction]:
        from refbench.video import VideoError, decode_1fps

        self._set_knobs("tsg")
        o = self.options
        out = []
        for r in requests:
            if r.video_path is None:
                raise AdapterError(f"model {self.name}: {r.sample_id}: the dataset gives no video path for {r.video}")
            try:
                dec = decode_1fps(r.video_path)
            except VideoError as exc:
                raise AdapterError(f"model {self.name}: {r.sample_id}: {exc}") from exc
            t = time.perf_counter()
            with hf.PeakMemory(self.device) as mem, hf.no_grad():
                res = self.model.predict_keyframe(
                    video=dec.frames, text=None, find_text=TSG_PROMPT.format(r.query), tokenizer=self.tokenizer,
                    num_frames=int(o["tsg_num_frames"]), inference_mode=str(o["tsg_inference_mode"]),
                    video_max_frames=int(o["tsg_video_max_frames"]), query_text=r.query,
                    threshold=float(o["tsg_threshold"]))
            tg = dict(res.get("temporal_grounding_dict") or {})
            keys = ("pred_start_find", "pred_end_find") if o["tsg_span"] == "find" else ("pred_start", "pred_end")
            try:
                span = (float(tg[keys[0]]), float(tg[keys[1]]))  # 1-fps frame indices = seconds, end inclusive
            except (KeyError, TypeError, ValueError) as exc:
                raise AdapterError(f"model {self.name}: {r.sample_id}: temporal_grounding_dict lacks {keys} "
                                   f"(got {sorted(tg)})") from exc
            diag = _diag(res, None, time.perf_counter() - t, mem.mib)
            diag.update({"temporal_grounding": {k: _plain(v) for k, v in tg.items()}, "frames_1fps": len(dec.frames),
                         "video_fps": dec.fps, "frames_decoded": dec.n_decoded})
            out.append(GroundingPrediction([span], text=str(res.get("prediction", "")), diagnostics=diag))
        return out

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        from PIL import Image

        self._set_knobs("res")
        out = []
        for r in requests:
            with Image.open(r.image_path) as im:
                image = im.convert("RGB")
            t = time.perf_counter()
            with hf.PeakMemory(self.device) as mem, hf.no_grad():
                res = self.model.predict_forward(image=image, text=RES_PROMPT.format(r.text), tokenizer=self.tokenizer)
            masks_list = list(res.get("prediction_masks") or [])
            diag = _diag(res, len(masks_list), time.perf_counter() - t, mem.mib)
            mask = np.asarray(masks_list[0])[0].astype(bool) if masks_list else None  # refcoco_eval.py: [0], or None
            out.append(ImagePrediction(mask, diag))
        return out


def _plain(x: Any) -> Any:
    """numpy / torch values as JSON-ready lists and numbers."""
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _diag(res: Mapping[str, Any], n_seg: int | None, seconds: float, peak: float | None) -> dict[str, Any]:
    text = str(res.get("prediction", ""))
    d: dict[str, Any] = {"text": text, "seconds": round(seconds, 4)}
    if n_seg is not None:
        d["seg_count"] = n_seg
        if n_seg == 0:
            d["flags"] = ["no_seg"]
    if "find_prediction" in res:  # the first ([FIND]) generation's text, where the remote code returns it
        d["find_text"] = str(res["find_prediction"])
    if peak is not None:
        d["peak_gpu_mib"] = peak
    return d


__all__ = ["FIND_PROMPT", "MomentSegAdapter", "RES_PROMPT", "SEG_PROMPT", "TSG_PROMPT"]
