"""Stub source trees of the repository-based models (ReferDINO, MPG-SAM 2), written by the tests themselves.

Each stub is a folder laid out like the official clone, with the official entry points the adapters call:

* ReferDINO (iSEE-Laboratory/ReferDINO @ 9a4cda16): ``models/__init__.py`` with ``build_model(args)`` returning
  ``(model, criterion, postprocessors)``, whose model has ``infer(samples, captions, targets, crop_len=36)``
  returning ``pred_logits [1, T, Q, 1]``, ``pred_masks [1, T, Q, h, w]``, ``pred_boxes [1, T, Q, 4]``; ``misc.py``
  with ``NestedTensor`` / ``nested_tensor_from_videos_list``; ``configs/{mevis,ytvos,davis}_swinb.yaml`` in the
  official ``{key: {value: ...}}`` layout; empty ``torch.save`` checkpoints under ``ckpt/`` and ``pretrained/``.
* MPG-SAM 2 (rongfu-dsb/MPG-SAM2 @ 54291e04): ``opts.py`` with ``get_args_parser()`` (the inference flags) and
  ``models/__init__.py`` with ``build_model(args)``, whose model is called ``model([imgs], [imgs_beit], [exp],
  [target])`` and returns ``pred_masks [1, T, Q, h, w]``; a weights folder with a ``config.json``.

The stub models compute deterministic outputs from the pixels they receive and append what they received to the
JSON-lines file named by ``$REFBENCH_STUB_LOG`` (tensor shapes and per-frame sha256, captions, targets, knobs).
ReferDINO's masks are larger than the resized frames by an 8-pixel band of positive logits, so only the official
unpadding keeps them out of the output. Queries: 0 = pixels brighter than the frame mean (mean score 0.7), 1 = the
left third of the frame (mean score 0.4, alternating 0.1 / 0.7 over frames), 2 = nothing (0.05); an expression
containing "nothing" drops every score below 0.2 with query 1 the highest (the top-1 fallback).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

_LOG = '''
import hashlib, json, os
import torch


def _log(kind, **rec):
    path = os.environ.get("REFBENCH_STUB_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"call": kind, **rec}, default=str) + "\\n")


def _sha(t):
    return [hashlib.sha256(x.detach().float().contiguous().cpu().numpy().tobytes()).hexdigest()[:16] for x in t]
'''

_MISC = '''
import torch


class NestedTensor:
    def __init__(self, tensors, mask):
        self.tensors = tensors
        self.mask = mask

    def decompose(self):
        return self.tensors, self.mask

    @property
    def device(self):
        return self.tensors.device


def nested_tensor_from_videos_list(videos_list, size_divisibility=1):
    shapes = [list(v.shape) for v in videos_list]
    t, c, h, w = (max(s[i] for s in shapes) for i in range(4))
    if size_divisibility > 1:
        h = (h + size_divisibility - 1) // size_divisibility * size_divisibility
        w = (w + size_divisibility - 1) // size_divisibility * size_divisibility
    out = torch.zeros((len(videos_list), t, c, h, w), dtype=videos_list[0].dtype, device=videos_list[0].device)
    mask = torch.ones((len(videos_list), t, h, w), dtype=torch.bool, device=videos_list[0].device)
    for v, o, m in zip(videos_list, out, mask):
        o[: v.shape[0], :, : v.shape[2], : v.shape[3]].copy_(v)
        m[: v.shape[0], : v.shape[2], : v.shape[3]] = False
    return NestedTensor(out, mask)
'''

_REFERDINO_MODELS = _LOG + '''
import math
from torch import nn

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _logit(p):
    return math.log(p / (1 - p))


class StubReferDINO(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.args = args

    def infer(self, samples, captions, targets, crop_len=36, **kw):
        x = samples.tensors[0]  # [T, 3, H, W]
        t, _, h, w = x.shape
        img_h, img_w = (int(v) for v in targets[0]["size"].tolist())
        rgb = x.float().cpu() * STD + MEAN
        gray = rgb.mean(1)  # [T, H, W]
        bright = gray > gray.mean(dim=(1, 2), keepdim=True)
        q = 3
        masks = torch.full((t, q, h + 8, w + 8), 10.0)  # the band outside the frame: positive garbage
        masks[:, 0, :h, :w] = torch.where(bright, torch.tensor(6.0), torch.tensor(-6.0))
        masks[:, 1, :h, :w] = -6.0
        masks[:, 1, :h, : w // 3] = 6.0
        masks[:, 2, :h, :w] = -6.0
        nothing = "nothing" in captions[0]
        logits = torch.empty((t, q, 1))
        for i in range(t):
            p = [0.7, 0.1 if i % 2 == 0 else 0.7, 0.05]
            if t % 2 == 1 and i == t - 1:
                p[1] = 0.4
            if nothing:
                p = [0.1, 0.15, 0.05]
            logits[i, :, 0] = torch.tensor([_logit(v) for v in p])
        _log("infer", shape=list(samples.tensors.shape), pad_mask_any=bool(samples.mask.any()),
             dtype=str(x.dtype), device=str(x.device), captions=list(captions), target_size=[img_h, img_w],
             target_keys=sorted(targets[0]), crop_len=crop_len, frame_sha=_sha(x),
             tracking_alpha=float(self.args.GroundingDINO.tracking_alpha), training=self.training,
             autocast=torch.is_autocast_enabled(x.device.type))
        dev = x.device
        return {"pred_logits": logits[None].to(dev), "pred_masks": masks[None].to(dev),
                "pred_boxes": torch.zeros((1, t, q, 4), device=dev)}


def build_model(args):
    gd = args.GroundingDINO
    torch.load(gd.pretrained_path, map_location="cpu")  # as build_groundingdino does
    _log("build", pretrained_path=gd.pretrained_path, text_encoder_type=gd.text_encoder_type,
         tracking_alpha=float(gd.tracking_alpha), device=args.device, keys=sorted(args),
         num_queries=gd.num_queries, script={k: args.get(k) for k in ("obj_threshold", "top1", "subset_size",
                                                                     "split", "checkpoint_path", "config_path")})
    return StubReferDINO(args), None, None
'''


def _config(tracking_alpha: float, dataset: str) -> str:
    return textwrap.dedent(f'''\
        # * Train
        lr:
          desc: main model learning rate
          value: 1e-4
        enable_amp:
          desc: whether to enable automatic mixed precision during training
          value: false
        seed:
          value: 42
        GroundingDINO:
          desc: "the parameter of GroundingDINO"
          value:
            backbone: "swin_B_384_22k"
            num_queries: 900
            backbone_freeze_keywords: None
            text_encoder_type: "bert-base-uncased"
            pretrained_path: "pretrained/groundingdino_swinb_cogcoor.pth"
            tracking_alpha: {tracking_alpha}
            SegHead:
              mask_dim: 256
              n_layers: 3
        dataset_name:
          value: {dataset}
        ''')


def write_referdino(root: Path) -> Path:
    """A stub ReferDINO clone at ``root`` (module doc)."""
    import torch

    (root / "models").mkdir(parents=True)
    (root / "models" / "__init__.py").write_text(_REFERDINO_MODELS)
    (root / "misc.py").write_text(_MISC)
    (root / "configs").mkdir()
    for name, alpha, ds in (("mevis", 0.3, "mevis"), ("ytvos", 0.25, "ref_youtube_vos"), ("davis", 0.25, "ref_davis")):
        (root / "configs" / f"{name}_swinb.yaml").write_text(_config(alpha, ds))
    (root / "pretrained").mkdir()
    torch.save({"model": {}}, root / "pretrained" / "groundingdino_swinb_cogcoor.pth")
    (root / "ckpt").mkdir()
    for name in ("mevis_swinb.pth", "ryt_swinb.pth"):
        torch.save({"model_state_dict": {}}, root / "ckpt" / name)
    return root


_MPG_OPTS = '''
import argparse


def get_args_parser():
    parser = argparse.ArgumentParser("stub MPG-SAM 2", add_help=False)
    parser.add_argument("--with_box_refine", default=False, action="store_true")
    parser.add_argument("--binary", action="store_true")
    parser.add_argument("--freeze_text_encoder", action="store_true")
    parser.add_argument("--masks", action="store_true")
    parser.add_argument("--inference", action="store_true", default=False)
    parser.add_argument("--precision", default="bf16", type=str)
    parser.add_argument("--version", default="./your_weights/beit3.spm", type=str)
    parser.add_argument("--resume", default="", type=str)
    parser.add_argument("--threshold", default=0.5, type=float)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--ngpu", default=4, type=int)
    parser.add_argument("--split", default="valid", type=str, choices=["valid", "test"])
    parser.add_argument("--dataset_file", default="ytvos")
    parser.add_argument("--num_frames", default=6, type=int)
    return parser
'''

_MPG_MODELS = _LOG + '''
import torch.nn.functional as F
from torch import nn

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class StubMPG(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.args = args

    def forward(self, samples, img_evfs_sap, captions, targets):
        x, b = samples[0], img_evfs_sap[0]
        t = x.shape[0]
        gray = (x.float().cpu() * STD + MEAN).mean(1, keepdim=True)  # [T, 1, 1024, 1024]
        small = F.avg_pool2d(gray, 4)[:, 0]  # [T, 256, 256]
        bright = small > small.mean(dim=(1, 2), keepdim=True)
        q0 = torch.where(bright, torch.tensor(4.0), torch.tensor(-4.0))
        masks = torch.stack([q0, -q0, torch.full_like(q0, -8.0)], dim=1)  # [T, 3, 256, 256]
        _log("forward", shape=list(x.shape), beit_shape=list(b.shape), dtype=str(self.weight.dtype),
             device=str(x.device), captions=list(captions), target_size=[int(v) for v in targets[0]["size"].tolist()],
             frame_sha=_sha(x), beit_sha=_sha(b), training=self.training)
        return {"pred_masks": masks[None].to(x.device), "sen_feat": torch.zeros((1, t, 1, 1))}


def build_model(args):
    with open(os.path.join(args.version, "config.json")) as fh:
        json.load(fh)  # as EvfSamModel.from_pretrained(args.version)
    _log("build", args={k: v for k, v in vars(args).items()})
    return StubMPG(args), None, None
'''


def write_mpg_sam2(root: Path) -> tuple[Path, Path]:
    """A stub MPG-SAM 2 clone at ``root`` and a weights folder (``root/weights/ytvos``) (module doc)."""
    (root / "models").mkdir(parents=True)
    (root / "models" / "__init__.py").write_text(_MPG_MODELS)
    (root / "opts.py").write_text(_MPG_OPTS)
    weights = root / "weights" / "ytvos"
    weights.mkdir(parents=True)
    (weights / "config.json").write_text('{"model_type": "evf_sam2", "hidden_size": 1024}\n')
    return root, weights
