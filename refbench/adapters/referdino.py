"""ReferDINO (iSEE-Laboratory/ReferDINO, ICCV 2025; weights HF ``liangtm/referdino``): referring VOS, run from the
user's clone of the official repository and called exactly as its eval scripts call it.

Read at iSEE-Laboratory/ReferDINO @ 9a4cda16388f5186dd9b7ad8adaca0338d7f3558 (the index copy read was the fork
diegomaureira/ReferDINO @ 5cfadd66, whose ``eval/inference_{ytvos,mevis,davis}.py``, ``configs/*_swinb.yaml`` and
``models/GroundingDINO/groundingdino.py`` match the facts in ADAPTERS.md section 3):

* Build: the YAML config (``configs/{ytvos,mevis,davis}_swinb.yaml``, every key ``{value: ...}``) becomes
  ``{key: value}``, merged with the script's argparse values into an ``EasyDict`` ``args``; the MeViS script then
  sets ``args.GroundingDINO.tracking_alpha = args.tracking_alpha`` (its ``--tracking_alpha`` default 0.1; the
  Ref-YouTube-VOS and DAVIS scripts keep the config's). ``model, criterion, post = models.build_model(args)``
  (which ``torch.load``\\ s ``GroundingDINO.pretrained_path`` and loads ``text_encoder_type`` through transformers),
  ``model.to(device)``, ``model.load_state_dict(torch.load(ckpt)["model_state_dict"], strict=False)``, ``eval()``.
  refbench resolves the config's relative paths against the clone (the scripts run from its root) and lets
  ``groundingdino_ckpt`` / ``text_encoder`` replace them.
* Frames: every frame, PIL RGB, ``T.Resize(360)`` (shorter side 360), ``ToTensor``, ImageNet normalisation
  (:mod:`refbench.adapters.imaging`, equal to torchvision's bit for bit), stacked, ``samples =
  misc.nested_tensor_from_videos_list(imgs[None], size_divisibility=1)`` (the clone's own function); ``target =
  {"size": (h, w) after resizing}`` (Ref-YouTube-VOS adds ``frames_idx``, DAVIS ``video_name`` / ``exp_idx``).
* Call: ``model.infer(samples, [exp], [target], crop_len=36)`` under ``torch.no_grad()`` and ``autocast`` with the
  config's ``enable_amp`` (false); the model appends "." and its uncased BERT tokenizer lower-cases, so the raw
  expression is passed as the scripts pass it. ``infer`` encodes the frames in ``crop_len``-frame chunks.
* Query choice (``query_select``): ``top1`` (``inference_ytvos.py`` / ``inference_davis.py``): mean over frames of
  ``sigmoid(pred_logits)``, max over classes, the argmax query on every frame; masks ``[:img_h, :img_w]`` (unpad),
  bilinear to the original size, ``sigmoid > 0.5``. ``threshold`` (``inference_mevis.py``): every query whose mean
  score is ``> obj_threshold`` (0.2), the top-1 query when none is; masks moved to the CPU, unpadded, bilinear to
  the original size, ``> 0``, summed over the kept queries and clamped (their union). ``auto`` takes the dataset
  card's family: ``threshold`` for MeViS (the ``mevis`` protocol or loader), ``top1`` otherwise (Ref-YouTube-VOS,
  Ref-DAVIS17; ReVOS, Ref-SAV and ReasonVOS have no official ReferDINO script, so they get the Ref-YouTube-VOS
  rule). The resolved choice and where it came from are in the fingerprint state.
* ``subset_size`` (MeViS ``--subset_size``, default 0 = the whole video): ``ceil(T / subset_size)`` interleaved
  frame subsets (frame ``i`` in subset ``i % step``), each inferred as its own video; masks go back to their frames.

Known difference: ``inference_davis.py`` merges an annotator's objects by an argmax over their *probabilities*
(below 0.5 set to 0, background 0.1); refbench's ``refdavis_a`` protocol merges the per-expression binary masks
(earlier object wins on overlap, as ReferFormer). Only overlapping pixels can differ.

CPU: the clone's ``MultiScaleDeformableAttention`` import is guarded; on a CPU tensor the attention runs the
repository's PyTorch fallback (``F.grid_sample``): correct but slow (Swin-B, 900 queries). The op in use is in the
fingerprint state and printed once.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from refbench.adapters import hf, repo as R
from refbench.adapters.base import Adapter, AdapterError, RunContext, VideoPrediction, VideoRequest
from refbench.adapters.imaging import resized_size, transform

SOURCE = "https://github.com/iSEE-Laboratory/ReferDINO"
ENTRY_POINTS = {"models/__init__.py": "models.build_model(args) builds the model",
                "misc.py": "misc.nested_tensor_from_videos_list batches the frames"}
#: ``weights=auto``: the released checkpoint the paper evaluates on each family (README model zoo)
AUTO_WEIGHTS = {"mevis": "mevis_swinb.pth", "ytvos": "ryt_swinb.pth", "davis": "ryt_swinb.pth"}
#: ``config=auto``: the config its eval script is run with
AUTO_CONFIG = {"mevis": "configs/mevis_swinb.yaml", "ytvos": "configs/ytvos_swinb.yaml",
               "davis": "configs/davis_swinb.yaml"}
_NOTICED: set[str] = set()


def family_of(dataset: str | None) -> tuple[str, str]:
    """``(family, why)``: ``mevis``, ``davis`` or ``ytvos`` for a dataset card (module doc, ``query_select=auto``)."""
    if not dataset:
        return "ytvos", "no dataset given: the Ref-YouTube-VOS rule"
    try:
        from refbench.cards import dataset_card

        card = dataset_card(dataset)
    except Exception:  # noqa: BLE001 - an entry-point or unknown dataset: the generic rule
        return "ytvos", f"dataset {dataset}: unknown card, the Ref-YouTube-VOS rule"
    loader = card.loader.rsplit(":", 1)[-1]
    if card.protocol == "mevis" or loader == "MevisLoader":
        return "mevis", f"dataset {dataset} (protocol {card.protocol}, loader {loader}): the MeViS script"
    if card.protocol in ("refdavis_a", "refdavis_b") or loader == "RefDavisLoader":
        return "davis", f"dataset {dataset} (protocol {card.protocol}): the DAVIS script"
    if card.protocol == "refytvos":
        return "ytvos", f"dataset {dataset} (protocol refytvos): the Ref-YouTube-VOS script"
    return "ytvos", f"dataset {dataset} (protocol {card.protocol}): no official ReferDINO script, the Ref-YouTube-VOS rule"


class AttrDict(dict):
    """What ``easydict.EasyDict`` gives the official code (attribute access, nested mappings converted), for
    environments without easydict; the real environment uses EasyDict itself."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        for k, v in (data or {}).items():
            self[k] = v

    @staticmethod
    def _conv(v: Any) -> Any:
        if isinstance(v, Mapping) and not isinstance(v, AttrDict):
            return AttrDict(v)
        if isinstance(v, list):
            return [AttrDict._conv(x) for x in v]
        return v

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, self._conv(value))

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


def read_config(path: Path, model: str) -> tuple[dict[str, Any], str]:
    """The official ``{key: {value: ...}}`` YAML as ``{key: value}`` (ruamel's safe pure loader as the scripts use
    it when ruamel.yaml is installed, else PyYAML); ``(config, loader name)``."""
    from refbench.files import read_regular

    try:
        text = read_regular(path, AdapterError, "config (--model-arg config)", limit=1 << 20).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AdapterError(f"model {model}: {path}: cannot read the config ({exc})") from exc
    try:
        from ruamel.yaml import YAML  # type: ignore[import-not-found]

        raw, loader = YAML(typ="safe", pure=True).load(text), "ruamel.yaml"
    except ImportError:
        import yaml

        try:
            raw, loader = yaml.safe_load(text), "pyyaml"
        except yaml.YAMLError as exc:
            raise AdapterError(f"model {model}: {path}: not YAML ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - ruamel's parse errors
        raise AdapterError(f"model {model}: {path}: not YAML ({exc})") from exc
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) and "value" in v for v in raw.values()):
        raise AdapterError(f"model {model}: {path}: not an official ReferDINO config (every key must be "
                           "{value: ...})")
    config = {str(k): v["value"] for k, v in raw.items()}
    if not isinstance(config.get("GroundingDINO"), Mapping):
        raise AdapterError(f"model {model}: {path}: the config has no GroundingDINO block")
    return config, loader


def _easydict(data: Mapping[str, Any]) -> tuple[Any, str]:
    try:
        from easydict import EasyDict  # type: ignore[import-not-found]

        return EasyDict(dict(data)), "easydict"
    except ImportError:
        return AttrDict(data), "refbench AttrDict"


def _deform_attn_op() -> bool:
    import importlib.util

    return importlib.util.find_spec("MultiScaleDeformableAttention") is not None


def select_queries(logits: Any, mode: str, obj_threshold: float) -> tuple[Any, list[int], list[float]]:
    """The official query choice (module doc) on ``logits: (T, Q, K)``: ``(index for pred_masks[:, index],
    chosen query ids, their mean scores)``."""
    import torch

    scores = logits.sigmoid().mean(0)  # [q, k]
    per_query = scores.max(-1)[0]  # [q]; = squeeze(-1) for the released K = 1
    if mode == "top1":
        idx = torch.argmax(per_query).reshape(1)
    else:
        keep = per_query > obj_threshold
        idx = torch.nonzero(keep).flatten() if bool(keep.any()) else per_query.topk(1, sorted=False)[1]
    chosen = [int(i) for i in idx.tolist()]
    return idx, chosen, [round(float(per_query[i]), 6) for i in chosen]


def masks_from_queries(pred_masks: Any, idx: Any, mode: str, resized: tuple[int, int], size: tuple[int, int],
                       mask_threshold: float = 0.5) -> np.ndarray:
    """``(T, H, W) bool`` from ``pred_masks: (T, Q, h, w)`` logits and the chosen queries, as the scripts compute it
    (module doc): unpad to the resized size, bilinear to the original ``size``, then ``sigmoid > 0.5`` (``top1``)
    or ``> 0`` summed and clamped (``threshold``)."""
    import torch.nn.functional as F

    img_h, img_w = resized
    if mode == "top1":
        t = pred_masks.shape[0]
        m = pred_masks[range(t), idx.repeat(t).to(pred_masks.device), ...].unsqueeze(0)  # [1, t, h, w]
        m = m[:, :, :img_h, :img_w]
        m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        return (m.sigmoid() > mask_threshold).squeeze(0).detach().cpu().numpy()
    m = pred_masks[:, idx.to(pred_masks.device), :, :].cpu()  # [t, n, h, w]
    m = m[:, :, :img_h, :img_w]
    m = F.interpolate(m, size=size, mode="bilinear", align_corners=False) > 0.0
    return m.sum(dim=1).clamp(max=1).numpy().astype(bool)


def subsets(n: int, subset_size: int) -> list[list[int]]:
    """Frame indices of MeViS ``--subset_size`` subsets: ``step = ceil(n / subset_size)``, frame ``i`` in subset
    ``i % step``; one subset of every frame when ``subset_size`` is 0."""
    if subset_size <= 0:
        return [list(range(n))]
    step = (n + subset_size - 1) // subset_size
    out: list[list[int]] = [[] for _ in range(step)]
    for i in range(n):
        out[i % step].append(i)
    return [s for s in out if s]


class ReferDINOAdapter(Adapter):
    name = "referdino"
    tasks = frozenset({"refvos"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self._state: dict[str, Any] = {}

    # -- loading ------------------------------------------------------------------------------------
    def setup(self, context: RunContext) -> None:
        import torch

        o = self.options
        card = self.card_name or self.name
        hf.offline_unless(bool(o.get("download")))
        family, why = family_of(context.dataset)
        self.family = family
        mode = str(o.get("query_select", "auto"))
        self.mode = ("threshold" if family == "mevis" else "top1") if mode == "auto" else mode
        repo = R.open_repo(card, o.get("repo"), ENTRY_POINTS, SOURCE)
        self.repo = repo
        cfg_path = repo.file(o.get("config") or AUTO_CONFIG[family])
        if not cfg_path.is_file():
            raise AdapterError(f"model {card}: config {cfg_path} does not exist (--model-arg config=PATH; the clone's "
                               f"configs/ holds the official ones)")
        config, yaml_loader = read_config(cfg_path, card)
        ckpt = self._checkpoint(card, repo, family)
        gd = dict(config["GroundingDINO"])
        gd_ckpt = repo.file(o.get("groundingdino_ckpt") or gd.get("pretrained_path") or "")
        if not gd_ckpt.is_file():
            raise AdapterError(f"model {card}: the GroundingDINO weights {gd_ckpt} do not exist (the config's "
                               "pretrained_path, relative to the clone; README: download groundingdino_swinb_cogcoor.pth "
                               "into pretrained/, or pass --model-arg groundingdino_ckpt=PATH)")
        text_encoder = str(o.get("text_encoder") or gd.get("text_encoder_type") or "bert-base-uncased")
        te_path = Path(text_encoder).expanduser()
        if o.get("text_encoder") and not te_path.exists() and ("/" in text_encoder or text_encoder.startswith(".")):
            raise AdapterError(f"model {card}: --model-arg text_encoder={text_encoder}: no such folder")
        # the scripts' argparse values (inference_mevis.py / inference_ytvos.py), then the config under them
        script = {"config_path": str(cfg_path), "checkpoint_path": str(ckpt), "version": "refer_dino",
                  "visualize": False, "num_gpus": 1, "device": context.device}
        if family == "mevis":
            script.update({"split": "valid", "obj_threshold": float(o.get("obj_threshold", 0.2)),
                           "top1": self.mode == "top1", "subset_size": int(o.get("subset_size", 0)),
                           "tracking_alpha": 0.1})
        args, args_class = _easydict({**config, **script})
        alpha = o.get("tracking_alpha")
        if alpha is not None:
            args.GroundingDINO.tracking_alpha = float(alpha)
        elif family == "mevis":
            args.GroundingDINO.tracking_alpha = args.tracking_alpha  # inference_mevis.py
        args.GroundingDINO.pretrained_path = str(gd_ckpt)
        args.GroundingDINO.text_encoder_type = str(te_path) if te_path.exists() else text_encoder
        amp = o.get("amp")
        self.amp = bool(config.get("enable_amp", False)) if amp is None else bool(amp)
        self.device = context.device

        models = R.import_module(repo, "models")
        R.require_attrs(repo, models, ["build_model"], "models/__init__.py")
        misc = R.import_module(repo, "misc")
        R.require_attrs(repo, misc, ["nested_tensor_from_videos_list"], "misc.py")
        self._nested = misc.nested_tensor_from_videos_list
        op = _deform_attn_op()
        self.op = "cuda" if op and self.device.startswith("cuda") else "pytorch"
        if self.op == "pytorch" and card not in _NOTICED:
            _NOTICED.add(card)
            why_op = "the compiled op is not installed" if not op else "the run is on the CPU"
            print(f"refbench: model {card}: multi-scale deformable attention runs the repository's PyTorch fallback "
                  f"({why_op}): correct but slow", file=sys.stderr)
        try:
            built = models.build_model(args)
        except ImportError as exc:
            raise AdapterError(f"model {card}: building it imports {getattr(exc, 'name', exc)}, which this Python "
                               f"lacks: build its environment (refbench env create {card})") from exc
        model = built[0] if isinstance(built, (tuple, list)) else built
        if not callable(getattr(model, "infer", None)):
            raise AdapterError(f"model {card}: models.build_model returned {type(model).__name__} without infer()")
        model.to(self.device)
        state, how = _load_checkpoint(card, ckpt)
        missing, unexpected = model.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not (k.endswith("total_params") or k.endswith("total_ops"))]
        if missing:
            print(f"refbench: model {card}: {len(missing)} missing keys loading {ckpt.name} (strict=False, as the "
                  f"official script): {missing[:5]}{' ...' if len(missing) > 5 else ''}", file=sys.stderr)
        self.model = model.eval()
        self._state = {
            "repo": R.code_state(repo, {"config": cfg_path}),
            "config": R.plain(config["GroundingDINO"]), "yaml_loader": yaml_loader, "args_class": args_class,
            "checkpoint": {"name": ckpt.name, **R.file_digest(ckpt, head=64 << 20), "load": how,
                           "missing_keys": len(missing), "unexpected_keys": len(unexpected)},
            "groundingdino": {"name": gd_ckpt.name, **R.file_digest(gd_ckpt, head=64 << 20)},
            "text_encoder": _text_encoder_state(te_path if te_path.exists() else None, text_encoder),
            "family": family, "query_select": self.mode, "query_select_from": why if mode == "auto" else "option",
            "tracking_alpha": float(args.GroundingDINO.tracking_alpha), "amp": self.amp, "deform_attn": self.op,
            "torch": torch.__version__, "transformers": _version("transformers"),
        }

    def _checkpoint(self, card: str, repo: R.Repo, family: str) -> Path:
        o = self.options
        if o.get("checkpoint"):
            path = repo.file(o["checkpoint"])
            if not path.is_file():
                raise AdapterError(f"model {card}: --model-arg checkpoint={o['checkpoint']}: no such file")
            return path
        name = str(o.get("weights", "auto"))
        name = AUTO_WEIGHTS[family] if name == "auto" else name
        path = repo.file(Path("ckpt") / name)
        if not path.is_file():
            raise AdapterError(f"model {card}: no checkpoint: {path} does not exist (README model zoo: "
                               f"`huggingface-cli download liangtm/referdino {name} --local-dir {repo.path / 'ckpt'}`, "
                               "or pass --model-arg checkpoint=PATH)")
        return path

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def close(self) -> None:
        self.model = None

    # -- prediction ---------------------------------------------------------------------------------
    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        return [self._one(r) for r in requests]

    def _one(self, r: VideoRequest) -> VideoPrediction:
        import torch

        o = self.options
        size = int(o.get("short_side", 360))
        crop_len = int(o.get("crop_len", 36))
        t0 = time.perf_counter()
        out = np.zeros((len(r.frames), *r.size), dtype=bool)
        diag: dict[str, Any] = {"query_select": self.mode, "subsets": [], "deform_attn": self.op}
        with hf.PeakMemory(self.device) as mem:
            for sub in subsets(len(r.frames), int(o.get("subset_size", 0))):
                imgs = torch.stack([transform(r.frames.pil(i), size) for i in sub]).to(self.device)
                samples = self._nested(imgs[None], size_divisibility=1)
                img_h, img_w = (int(x) for x in imgs.shape[-2:])
                target: dict[str, Any] = {"size": torch.as_tensor([img_h, img_w]).to(self.device)}
                if self.family == "ytvos":
                    target["frames_idx"] = range(len(sub))
                elif self.family == "davis":
                    target.update({"video_name": r.video,
                                   "exp_idx": int(r.exp_id) // 4 if str(r.exp_id).isdigit() else 0})
                with torch.no_grad(), torch.autocast(R.device_kind(self.device), enabled=self.amp):
                    res = self.model.infer(samples, [r.text], [target], crop_len=crop_len)
                logits, masks = res["pred_logits"][0], res["pred_masks"][0]
                if logits.shape[0] != len(sub) or masks.shape[:2] != logits.shape[:2]:
                    raise AdapterError(f"model {self.card_name}: {r.sample_id}: infer returned pred_logits "
                                       f"{tuple(res['pred_logits'].shape)} and pred_masks {tuple(res['pred_masks'].shape)} "
                                       f"for {len(sub)} frames (expected [1, T, Q, K] and [1, T, Q, h, w])")
                idx, chosen, scores = select_queries(logits.float(), self.mode, float(o.get("obj_threshold", 0.2)))
                m = masks_from_queries(masks, idx, self.mode, (img_h, img_w), tuple(r.size),
                                       float(o.get("mask_threshold", 0.5)))
                out[sub] = m
                diag["subsets"].append({"frames": len(sub), "queries": int(logits.shape[1]), "chosen": chosen,
                                        "scores": scores, "resized": [img_h, img_w],
                                        "chunks": math.ceil(len(sub) / crop_len)})
        diag["seconds"] = round(time.perf_counter() - t0, 4)
        if mem.mib is not None:
            diag["peak_gpu_mib"] = mem.mib
        if not out.any():
            diag["flags"] = ["empty"]
        return VideoPrediction(out, diag)


def _load_checkpoint(card: str, path: Path) -> tuple[dict[str, Any], str]:
    """``torch.load(path)["model_state_dict"]``: tensors only when the file allows it (``weights_only=True``), else
    the full unpickling the official script (torch < 2.6) does, said once."""
    import pickle

    import torch

    try:
        ck, how = torch.load(str(path), map_location="cpu", weights_only=True), "weights_only"
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError):
        print(f"refbench: model {card}: {path} holds more than tensors; unpickling it fully, as the official script's "
              "torch.load does", file=sys.stderr)
        ck, how = torch.load(str(path), map_location="cpu", weights_only=False), "full unpickling"
    except OSError as exc:
        raise AdapterError(f"model {card}: {path}: cannot read the checkpoint ({exc})") from exc
    if not isinstance(ck, Mapping) or not isinstance(ck.get("model_state_dict"), Mapping):
        raise AdapterError(f"model {card}: {path}: not a ReferDINO checkpoint (no model_state_dict)")
    return dict(ck["model_state_dict"]), how


def _text_encoder_state(path: Path | None, name: str) -> dict[str, Any]:
    if path is None:
        return {"name": name, "source": "hugging face cache (offline unless download=true)"}
    return {"name": path.name, "config_sha256": hf.files_hash(path, ("config.json", "tokenizer_config.json",
                                                                        "vocab.txt", "tokenizer.json"))}


def _version(dist: str) -> str | None:
    from refbench.envs import installed_version

    return installed_version(dist)


__all__ = ["AUTO_CONFIG", "AUTO_WEIGHTS", "AttrDict", "ReferDINOAdapter", "family_of", "masks_from_queries",
           "read_config", "select_queries", "subsets"]
