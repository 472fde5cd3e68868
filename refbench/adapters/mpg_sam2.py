"""MPG-SAM 2 (rongfu-dsb/MPG-SAM2, ICCV 2025; weights HF ``ReeF2025/MPG-SAM2``): referring VOS, run from the
user's clone of the official repository and called exactly as its inference scripts call it.

Read at rongfu-dsb/MPG-SAM2 @ 54291e049362db976c8d9441927728261032cbac (``inference_ytvos.py``,
``inference_mevis.py``, ``opts.py``, ``models/referformer.py``, ``scripts/dist_pre_fine_ytvos.sh``,
``scripts/dist_train_test_mevis.sh``, ``scripts/dist_test_davis.sh``):

* Build: the scripts' own argument parser (``opts.get_args_parser()`` of the clone) parses the flags the shell
  scripts pass: ``--with_box_refine --binary --freeze_text_encoder --inference --precision=fp32
  --version=<weights folder>`` (``opts.py``'s ``--precision`` default is ``bf16``; every shell script passes
  ``fp32``); then ``args.masks = True``, ``args.device``. ``model, criterion, post = models.build_model(args)``
  (``EvfSamModel.from_pretrained(args.version, torch_dtype=...)`` and the tokenizer of that folder with an added
  ``[SEG]``); ``model.to(bfloat16 | half)`` when ``precision`` says so, ``model.to(device)``, ``eval()``.
* Frames: PIL RGB, ``T.Resize([1024, 1024])`` (aspect not kept) and ``T.Resize([224, 224])`` (for BEiT-3), each
  ``ToTensor`` + ImageNet normalisation (:mod:`refbench.adapters.imaging`), stacked; ``target = {"size": (1024,
  1024)}``.
* Call: ``outputs = model([imgs], [imgs_beit], [exp], [target])`` under ``torch.no_grad()``, the raw expression.
  ``outputs["pred_masks"][0][:, 0]`` (query 0 on every frame), bilinear to the original size, ``sigmoid``.
  Ref-YouTube-VOS (and Ref-DAVIS17, whose ``inference_davis.py`` the DAVIS script names but the repository does not
  ship; the same ytvos-trained weights): the whole video in one call, foreground ``sigmoid > threshold`` (0.5).
  MeViS: non-overlapping 24-frame clips, one call each, probabilities below 0.5 set to 0 and the rest written as
  ``p * 255`` PNGs, i.e. foreground ``sigmoid >= 0.5``. ``clip_len`` and the comparison follow the dataset card's
  family (``auto``: MeViS = the ``mevis`` protocol or loader), both recorded in the fingerprint state.

Environment: the README's Python 3.8 / torch 2.0.1 + torchvision 0.15.2 (cu118); refbench's worker installs on
Python >= 3.10 only, and torch 2.0.1 has cp310 wheels, so the card accepts 3.8-3.10 and ``refbench env create``
picks 3.10 where this Python does not fit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from refbench.adapters import hf, repo as R
from refbench.adapters.base import Adapter, AdapterError, RunContext, VideoPrediction, VideoRequest
from refbench.adapters.imaging import transform
from refbench.adapters.referdino import family_of

SOURCE = "https://github.com/rongfu-dsb/MPG-SAM2"
ENTRY_POINTS = {"models/__init__.py": "models.build_model(args) builds the model",
                "opts.py": "opts.get_args_parser() holds the inference flags"}
#: the flags every official inference command line passes (scripts/*.sh), before --version and --precision
FLAGS = ("--with_box_refine", "--binary", "--freeze_text_encoder", "--inference")
SIZE, BEIT_SIZE, MEVIS_CLIP = (1024, 1024), (224, 224), 24


def clips(n: int, clip_len: int) -> list[list[int]]:
    """Non-overlapping clips of ``clip_len`` frames (the last may be shorter); one clip when ``clip_len`` is 0."""
    if clip_len <= 0:
        return [list(range(n))]
    return [list(range(s, min(s + clip_len, n))) for s in range(0, n, clip_len)]


class MPGSAM2Adapter(Adapter):
    name = "mpg-sam2"
    tasks = frozenset({"refvos"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self._state: dict[str, Any] = {}

    def setup(self, context: RunContext) -> None:
        import argparse

        import torch

        o = self.options
        card = self.card_name or self.name
        hf.offline_unless(bool(o.get("download")))
        family, why = family_of(context.dataset)
        self.family = family
        clip_len = o.get("clip_len", "auto")
        self.clip_len = (MEVIS_CLIP if family == "mevis" else 0) if clip_len == "auto" else int(clip_len)
        rule = o.get("threshold_rule", "auto")
        self.rule = (">=" if family == "mevis" else ">") if rule == "auto" else str(rule)
        repo = R.open_repo(card, o.get("repo"), ENTRY_POINTS, SOURCE)
        version = o.get("version")
        if not version:
            raise AdapterError(f"model {card}: pass --model-arg version=DIR, the MPG-SAM 2 weights folder (HF "
                               "ReeF2025/MPG-SAM2: its ytvos or mevis folder; `huggingface-cli download "
                               "ReeF2025/MPG-SAM2 --local-dir DIR`)")
        vdir = repo.file(version)
        if not (vdir / "config.json").is_file():
            raise AdapterError(f"model {card}: --model-arg version={version}: no config.json in {vdir} (the "
                               "EvfSamModel folder the scripts pass as --version)")
        precision = str(o.get("precision", "fp32"))
        opts = R.import_module(repo, "opts")
        R.require_attrs(repo, opts, ["get_args_parser"], "opts.py")
        parser = argparse.ArgumentParser("refbench MPG-SAM 2", parents=[opts.get_args_parser()])
        argv = [*FLAGS, f"--precision={precision}", f"--version={vdir}", f"--resume={vdir}",
                f"--threshold={float(o.get('threshold', 0.5))}", f"--device={context.device}"]
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            raise AdapterError(f"model {card}: {repo.path / 'opts.py'} does not take the official flags "
                               f"{' '.join(argv)}") from exc
        args.masks = True
        self.args_seen = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool)) or v is None}
        models = R.import_module(repo, "models")
        R.require_attrs(repo, models, ["build_model"], "models/__init__.py")
        try:
            built = models.build_model(args)
        except ImportError as exc:
            raise AdapterError(f"model {card}: building it imports {getattr(exc, 'name', exc)}, which this Python "
                               f"lacks: build its environment (refbench env create {card})") from exc
        model = built[0] if isinstance(built, (tuple, list)) else built
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        elif precision == "fp16":
            model = model.to(torch.half)
        self.device = context.device
        self.model = model.to(self.device).eval()
        self._state = {
            "repo": R.code_state(repo),
            "version": {"name": vdir.name, "config_sha256": hf.files_hash(vdir, (
                "config.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")),
                "weights": _weights_state(vdir)},
            "precision": precision, "family": family, "family_from": why, "clip_len": self.clip_len,
            "threshold_rule": self.rule, "torch": torch.__version__,
        }
        if family == "mevis" and self.clip_len != MEVIS_CLIP:
            print(f"refbench: model {card}: MeViS clips of {self.clip_len} frames (the official script uses 24)",
                  file=sys.stderr)

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def close(self) -> None:
        self.model = None

    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        return [self._one(r) for r in requests]

    def _one(self, r: VideoRequest) -> VideoPrediction:
        import torch
        import torch.nn.functional as F

        threshold = float(self.options.get("threshold", 0.5))
        t0 = time.perf_counter()
        out = np.zeros((len(r.frames), *r.size), dtype=bool)
        n_calls = 0
        with hf.PeakMemory(self.device) as mem:
            for clip in clips(len(r.frames), self.clip_len):
                pil = [r.frames.pil(i) for i in clip]
                imgs = torch.stack([transform(p, list(SIZE)) for p in pil]).to(self.device)
                beit = torch.stack([transform(p, list(BEIT_SIZE)) for p in pil]).to(self.device)
                target = {"size": torch.as_tensor([int(imgs.shape[-2]), int(imgs.shape[-1])]).to(self.device)}
                with torch.no_grad():
                    res = self.model([imgs], [beit], [r.text], [target])
                n_calls += 1
                masks = res["pred_masks"][0]  # [t, q, h, w]
                if masks.ndim != 4 or masks.shape[0] != len(clip):
                    raise AdapterError(f"model {self.card_name}: {r.sample_id}: pred_masks {tuple(res['pred_masks'].shape)} "
                                       f"for a clip of {len(clip)} frames (expected [1, T, Q, h, w])")
                t = len(clip)
                m = masks[range(t), torch.tensor([0] * t, device=masks.device), ...].unsqueeze(0)
                m = F.interpolate(m, size=tuple(r.size), mode="bilinear", align_corners=False).sigmoid()[0]
                fg = (m >= threshold) if self.rule == ">=" else (m > threshold)
                out[clip] = fg.detach().cpu().numpy()
        diag: dict[str, Any] = {"calls": n_calls, "clip_len": self.clip_len, "seconds": round(time.perf_counter() - t0, 4)}
        if mem.mib is not None:
            diag["peak_gpu_mib"] = mem.mib
        if not out.any():
            diag["flags"] = ["empty"]
        return VideoPrediction(out, diag)


def _weights_state(vdir: Path) -> list[dict[str, Any]]:
    files = sorted([*vdir.glob("*.safetensors"), *vdir.glob("*.bin"), *vdir.glob("*.pth")])
    return [{"name": f.name, **R.file_digest(f, head=64 << 20)} for f in files]


__all__ = ["BEIT_SIZE", "FLAGS", "MPGSAM2Adapter", "SIZE", "clips"]
