"""Stub remote-code checkpoints for the MomentSeg and Sa2VA adapters, written by the tests themselves.

Each stub is a checkpoint folder as the official conversion scripts write one: ``config.json`` with ``auto_map`` to
a configuration and a modeling file (written here), ``model.safetensors`` and a tokenizer built with ``tokenizers``.
The adapters load it through the same ``AutoModel.from_pretrained(..., trust_remote_code=True)`` path users hit.
The modeling files implement the official method names, signatures and return keys (ADAPTERS.md 1.2, 2.1;
Dmmm1997/MomentSeg @ a118d15 ``modeling_momentseg.py``; bytedance/Sa2VA @ 0d8f983 ``modeling_sa2va_qwen.py`` and the
InternVL ``modeling_sa2va_chat.py``/``sam2.py``), compute deterministic outputs from the pixels they receive (masks:
pixels brighter than the frame's mean), and append what they received to the JSON-lines file named by
``$REFBENCH_STUB_LOG`` (frame hashes, sizes, modes, prompts, knobs, device, dtype), so tests assert the calls.

Text controls the stubs: an expression containing "nothing" yields no ``[SEG]``; "twice" yields two.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

WORDS = ("[UNK]", "[SEG]", "[FIND]", "<image>", "<video>", "the", "a", "please", "segment", "in", "this", "image",
         "video", "[PAD]")

_COMMON = r'''
import hashlib, json, os
import numpy as np
import torch


def _h(img):
    return hashlib.md5(np.asarray(img).tobytes()).hexdigest()[:12]


def _frames(video):
    return {"n": len(video), "hashes": [_h(f) for f in video], "sizes": sorted({tuple(f.size) for f in video}),
            "modes": sorted({f.mode for f in video}), "types": sorted({type(f).__name__ for f in video})}


def _bright(img):
    a = np.asarray(img.convert("L"), dtype=np.float64)
    return a > a.mean()


def _log(kind, **rec):
    path = os.environ.get("REFBENCH_STUB_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"call": kind, **rec}, default=str) + "\n")


def _n_seg(text):
    none = ["nothing"] + [w for w in os.environ.get("REFBENCH_STUB_NOSEG", "").split(",") if w]
    if any(w in (text or "") for w in none):
        return 0
    return 2 if "twice" in (text or "") else 1
'''

_MS_CONFIG = r'''
import json, os
from transformers import PretrainedConfig


class StubMomentSegConfig(PretrainedConfig):
    model_type = "stub_momentseg_chat"

    def __init__(self, mllm_path=None, min_pixels=3136, max_pixels=200704, **kwargs):
        super().__init__(**kwargs)
        self.mllm_path = mllm_path
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.base_model_type = None
        if mllm_path is not None:
            # as MomentSegConfig.__init__: the base Qwen2.5-VL config is read here, relative to the working directory
            with open(os.path.join(mllm_path, "config.json")) as fh:
                self.base_model_type = json.load(fh).get("model_type")
'''

_MS_MODEL = _COMMON + r'''
from transformers import PreTrainedModel
from .configuration_stub_momentseg import StubMomentSegConfig


class StubMomentsegModel(PreTrainedModel):
    config_class = StubMomentSegConfig
    main_input_name = "pixel_values"

    def __init__(self, config, use_flash_attn=True, **kwargs):
        super().__init__(config)
        self.proj = torch.nn.Linear(4, 4)
        self.use_flash_attn_given = use_flash_attn
        self.video_min_pixels = None
        self.video_max_pixels = None
        self.min_pixels = config.min_pixels
        self.max_pixels = config.max_pixels
        self.post_init()

    def _where(self):
        return {"device": str(self.proj.weight.device), "dtype": str(self.proj.weight.dtype),
                "flash": self.use_flash_attn_given, "base_model_type": self.config.base_model_type}

    def predict_forward_find_seg(self, image=None, video=None, text=None, find_text=None, past_text='',
                                 tokenizer=None, num_frames=8, video_max_frames=100, inference_mode="multi-frame"):
        n = _n_seg(text)
        _log("predict_forward_find_seg", frames=_frames(video), text=text, find_text=find_text,
             num_frames=num_frames, video_max_frames=video_max_frames, inference_mode=inference_mode,
             video_min_pixels=self.video_min_pixels, video_max_pixels=self.video_max_pixels,
             tokenizer=type(tokenizer).__name__, **self._where())
        bright = np.stack([_bright(f) for f in video])
        masks = [bright] + ([~bright] if n == 2 else [])
        logits = np.array([b.mean() for b in bright])
        center = int(np.argmax(logits))
        idx = sorted({int(round(x)) for x in np.linspace(0, len(video) - 1, min(num_frames, len(video)))})
        return {"prediction": "Sure, " + " ".join(["[SEG]"] * n) if n else "There is no such object.",
                "prediction_masks": masks[:n], "find_logits": logits, "sample_center": center,
                "sample_index": idx}

    def predict_keyframe(self, image=None, video=None, text=None, find_text=None, past_text='', mask_prompts=None,
                         tokenizer=None, num_frames=5, video_max_frames=100, inference_mode="combine",
                         dynamic_image_size=False, query_text="", threshold=0.3):
        means = [float(np.asarray(f.convert("L"), dtype=np.float64).mean()) for f in video]
        _log("predict_keyframe", frames=_frames(video), text=text, find_text=find_text, num_frames=num_frames,
             video_max_frames=video_max_frames, inference_mode=inference_mode, query_text=query_text,
             threshold=threshold, means=[round(m, 2) for m in means], video_min_pixels=self.video_min_pixels,
             video_max_pixels=self.video_max_pixels, **self._where())
        lit = [i for i, f in enumerate(video) if np.asarray(f).max() >= 250]
        s, e = (lit[0], lit[-1]) if lit else (0, len(video) - 1)
        return {"prediction": f"({0.0:.2f}, {1.0:.2f})", "prediction_masks": [],
                "temporal_grounding_dict": {"pred_start": 0, "pred_end": len(video) - 1,
                                            "pred_start_find": s, "pred_end_find": e}}

    def predict_forward(self, image=None, video=None, text=None, past_text='', mask_prompts=None, tokenizer=None,
                        num_frames=5, video_max_frames=50, inference_mode="combine", dynamic_image_size=False, **kw):
        n = _n_seg(text)
        _log("predict_forward", frames=_frames([image]), text=text, min_pixels=self.min_pixels,
             max_pixels=self.max_pixels, **self._where())
        m = _bright(image)[None]
        masks = [m] + ([~m] if n == 2 else [])
        return {"prediction": " ".join(["[SEG]"] * n), "prediction_masks": masks[:n]}
'''

_SA_CONFIG = r'''
from transformers import PretrainedConfig


class Sa2VAChatConfig(PretrainedConfig):
    model_type = "sa2va_chat"

    def __init__(self, template="internlm2_chat", **kwargs):
        super().__init__(**kwargs)
        self.template = template


class Sa2VAChatConfigQwen(Sa2VAChatConfig):
    pass
'''

_SA_GROUNDING = r'''
class _StubSAM2VideoPredictor:
    """add_language_embd / propagate_in_video as the remote sam2.py's SAM2VideoPredictor: logits per frame;
    frames before the first prompted one stay empty (forward propagation only)."""

    def add_language_embd(self, inference_state, frame_idx, obj_id, language_embd, inference=False):
        inference_state["prompted"].append(int(frame_idx))

    def propagate_in_video(self, inference_state):
        first = min(inference_state["prompted"])
        for i, f in enumerate(inference_state["frames"]):
            b = torch.from_numpy(_bright(f))
            if i < first:
                b = torch.zeros_like(b)
            yield i, [100], torch.where(b, 10.0, -10.0)[None, None]


class StubGroundingEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sam2_model = _StubSAM2VideoPredictor()

    def get_sam2_embeddings(self, frames):
        return {"frames": list(frames), "prompted": []}

    def language_embd_inference(self, inference_state, language_embd):
        # the remote code: a prompt on frames 0 .. len(language_embd) - 1, then propagation over the whole video
        for frame_idx in range(len(language_embd)):
            for obj_idx in range(len(language_embd[0])):
                self.sam2_model.add_language_embd(inference_state, frame_idx, obj_idx + 100,
                                                  language_embd[frame_idx][obj_idx][None][None], inference=True)
        return torch.cat([m for _f, _o, m in self.sam2_model.propagate_in_video(inference_state)], dim=0)


def _masks(model, video, n):
    out, prompted = [], []
    k = min(5, len(video))
    for _ in range(n):
        state = model.grounding_encoder.get_sam2_embeddings(video)
        logits = model.grounding_encoder.language_embd_inference(state, [torch.zeros(1, 4)] * k)
        prompted.append(list(state["prompted"]))
        out.append((logits[:, 0] > 0).numpy())
    return out, prompted


def _image_mask(image, i):
    m = _bright(image)
    if i == 1:  # a second [SEG]: the left half, so union and first differ
        m = np.zeros_like(m)
        m[:, : m.shape[1] // 2] = True
    return m[None]
'''

_SA_INTERNVL = _COMMON + _SA_GROUNDING + r'''
from transformers import PreTrainedModel
from .configuration_sa2va_chat import Sa2VAChatConfig


class Sa2VAChatModel(PreTrainedModel):
    config_class = Sa2VAChatConfig
    main_input_name = "pixel_values"

    def __init__(self, config, vision_model=None, language_model=None, use_flash_attn=True):
        super().__init__(config)
        self.proj = torch.nn.Linear(4, 4)
        self.grounding_encoder = StubGroundingEncoder()
        self.init_prediction_config = False
        self.post_init()

    def preparing_for_generation(self, tokenizer, max_new_tokens=2048, torch_dtype=torch.bfloat16):
        self.tokenizer = tokenizer
        self.init_prediction_config = True
        self.transformer = lambda img: _h(img)  # the per-frame MLLM transform (T.Compose in the real code)

    def predict_forward(self, image=None, video=None, text=None, past_text='', mask_prompts=None, tokenizer=None):
        if not self.init_prediction_config:
            assert tokenizer
            self.preparing_for_generation(tokenizer=tokenizer)
        n = _n_seg(text)
        where = {"device": str(self.proj.weight.device), "dtype": str(self.proj.weight.dtype)}
        if video is not None:
            mllm = []
            for frame_idx, frame_image in enumerate(video):
                if frame_idx < 5:
                    mllm.append(self.transformer(frame_image))
            masks, prompted = _masks(self, video, n)
            _log("sa2va.predict_forward", variant="internvl", frames=_frames(video), mllm=mllm, prompted=prompted,
                 text=text, **where)
        else:
            masks = [_image_mask(image, i) for i in range(n)]
            _log("sa2va.predict_forward", variant="internvl", frames=_frames([image]), text=text, **where)
        return {"prediction": " ".join(["[SEG]"] * n) if n else "no", "prediction_masks": masks}
'''

_SA_QWEN = _COMMON + _SA_GROUNDING + r'''
from transformers import PreTrainedModel
from .configuration_sa2va_chat import Sa2VAChatConfigQwen


def process_vision_info(messages):
    """As qwen_vl_utils.process_vision_info: the images of the messages, in order (and no videos)."""
    images = [c["image"] for m in messages for c in m["content"] if c.get("type") == "image"]
    return images, None


class Sa2VAChatModelQwen(PreTrainedModel):
    config_class = Sa2VAChatConfigQwen
    main_input_name = "pixel_values"

    def __init__(self, config, model=None, use_flash_attn=True):
        super().__init__(config)
        self.proj = torch.nn.Linear(4, 4)
        self.grounding_encoder = StubGroundingEncoder()
        self.post_init()

    def predict_forward(self, image=None, video=None, text=None, past_text='', mask_prompts=None, tokenizer=None,
                        processor=None):
        assert processor is not None
        n = _n_seg(text)
        where = {"device": str(self.proj.weight.device), "dtype": str(self.proj.weight.dtype),
                 "processor": type(processor).__name__}
        if video is not None:
            content = []
            for frame_idx, frame_image in enumerate(video):
                if frame_idx < 5:
                    content.append({"type": "image", "image": frame_image})
            content.append({"type": "text", "text": text})
            image_inputs, _ = process_vision_info([{"role": "user", "content": content}])
            masks, prompted = _masks(self, video, n)
            _log("sa2va.predict_forward", variant="qwen", frames=_frames(video), mllm=[_h(i) for i in image_inputs],
                 prompted=prompted, text=text, **where)
        else:
            masks = [_image_mask(image, i) for i in range(n)]
            _log("sa2va.predict_forward", variant="qwen", frames=_frames([image]), text=text, **where)
        return {"prediction": " ".join(["[SEG]"] * n) if n else "no", "prediction_masks": masks}
'''


def _tokenizer(d: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "pad_token": "[PAD]",
        "additional_special_tokens": ["[SEG]", "[FIND]"]}))


def _weights(d: Path) -> None:
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    save_file({"proj.weight": torch.randn(4, 4, generator=g).to(torch.bfloat16),
               "proj.bias": torch.zeros(4).to(torch.bfloat16)}, str(d / "model.safetensors"))


def write_momentseg(d: Path, mllm_path: str | None = None) -> Path:
    """A MomentSeg-like checkpoint in ``d``; ``mllm_path`` goes into config.json as the conversion script puts it."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "configuration_stub_momentseg.py").write_text(_MS_CONFIG)
    (d / "modeling_stub_momentseg.py").write_text(_MS_MODEL)
    cfg = {"architectures": ["StubMomentsegModel"], "model_type": "stub_momentseg_chat", "torch_dtype": "bfloat16",
           "mllm_path": mllm_path, "min_pixels": 3136, "max_pixels": 200704,
           "auto_map": {"AutoConfig": "configuration_stub_momentseg.StubMomentSegConfig",
                        "AutoModel": "modeling_stub_momentseg.StubMomentsegModel",
                        "AutoModelForCausalLM": "modeling_stub_momentseg.StubMomentsegModel"}}
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    _weights(d)
    _tokenizer(d)
    return d


def write_sa2va(d: Path, variant: str = "internvl") -> Path:
    """A Sa2VA-like checkpoint in ``d`` (``variant`` internvl or qwen, told apart only by ``auto_map``)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "configuration_sa2va_chat.py").write_text(_SA_CONFIG)
    if variant == "qwen":
        (d / "modeling_sa2va_qwen.py").write_text(_SA_QWEN)
        cls, cfg_cls, mod = "Sa2VAChatModelQwen", "Sa2VAChatConfigQwen", "modeling_sa2va_qwen"
    else:
        (d / "modeling_sa2va_chat.py").write_text(_SA_INTERNVL)
        cls, cfg_cls, mod = "Sa2VAChatModel", "Sa2VAChatConfig", "modeling_sa2va_chat"
    cfg = {"architectures": [cls], "model_type": "sa2va_chat", "torch_dtype": "bfloat16",
           "auto_map": {"AutoConfig": f"configuration_sa2va_chat.{cfg_cls}", "AutoModel": f"{mod}.{cls}",
                        "AutoModelForCausalLM": f"{mod}.{cls}"}}
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    _weights(d)
    _tokenizer(d)
    return d


def frame_hash(img) -> str:
    """The stubs' frame hash of a PIL image (or an RGB array)."""
    return hashlib.md5(np.asarray(img).tobytes()).hexdigest()[:12]


def read_log(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
