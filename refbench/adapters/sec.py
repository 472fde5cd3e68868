"""SeC-4B (OpenIXCLab/SeC, HF ``OpenIXCLab/SeC-4B``) for semi-supervised VOS, driven as its
``vos_evaluation/vos_inference.py`` drives it (OpenIXCLab/SeC @ 1981ac42; INFERENCE.md runs every benchmark with
``--track_object_appearing_later_in_video``, and SA-V / SeCVOS with ``--per_obj_png_file``; ADAPTERS.md 4.1).

The model is not on PyPI and not an ``AutoModel``: it comes from the user's clone of the official repository
(``--model-arg repo=DIR``), whose ``inference`` package is imported (``inference.configuration_sec.SeCConfig``,
``inference.modeling_sec.SeCModel``), with the checkpoint from the Hugging Face cache or ``--model-arg checkpoint=DIR``.

* Load: ``SeCConfig.from_pretrained(ckpt)``; ``config.apply_postprocessing = False`` (the script's default, no
  ``--apply_postprocessing``); ``config.hydra_overrides_extra = ["++model.non_overlap_masks=" + ("false" if
  per-object PNGs else "true")]``; ``SeCModel.from_pretrained(ckpt, config=config, torch_dtype=bfloat16,
  use_flash_attn=True).eval().to(device)``; ``AutoTokenizer.from_pretrained(ckpt, trust_remote_code=True)``.
* Per video, under ``torch.inference_mode()`` and ``torch.autocast("cuda", bfloat16)``: ``state =
  model.grounding_encoder.init_state(video_path=<the video's JPEG folder>, async_loading_frames=False)`` (SeC reads the
  frames itself, names sorted as integers; when the folder holds other files than the request's frames, a folder of
  links to exactly those frames is made); then per object, in ascending id order: ``grounding_encoder.reset_state``,
  ``grounding_encoder.add_new_mask(inference_state=state, frame_idx=<prompt frame>, obj_id=<id>, mask=<prompt>)``,
  ``model.propagate_in_video(state, start_frame_idx=<prompt frame>, reverse=False, init_mask=<prompt>,
  tokenizer=tokenizer)``, which yields ``(frame_idx, obj_ids, logits)`` at the original size, forward only.
* Merge: the per-object scores of each frame (``NO_OBJ_SCORE`` -1024 where an object was not tracked) get SAM 2's
  non-overlapping constraint unless the benchmark keeps one PNG per object, then ``> score_thresh`` 0.0
  (:mod:`refbench.adapters.vos_merge`).

Its environment: python 3.10, transformers 4.42.3, peft 0.11.1 and the repo's other imports (SeC README,
``requirements.txt``); the code calls ``.cuda()`` in ``predict_forward``, so a real run needs a GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from refbench.adapters import hf
from refbench.adapters.base import Adapter, AdapterError, RunContext, VosPrediction, VosRequest
from refbench.adapters.vos_merge import model_object_ids, scores_to_masks

NO_OBJ_SCORE = -1024.0
#: the protocols whose official format is one PNG per object (vos_inference.py --per_obj_png_file)
PER_OBJECT_PNG = ("sav", "secvos")


def repo_hash(repo: Path) -> dict[str, Any]:
    """sha256 over the repository's inference code and configs (``inference/**/*.py``, ``*.yaml``, ``*.json``)."""
    root = Path(repo) / "inference"
    h = hashlib.sha256()
    n = 0
    for f in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml", ".json") and p.is_file()):
        h.update(f"{f.relative_to(root).as_posix()}\0".encode() + hashlib.sha256(f.read_bytes()).digest())
        n += 1
    return {"sha256": h.hexdigest(), "files": n}


def _int_names(names: Sequence[str], video: str) -> list[int]:
    try:
        return [int(n) for n in names]
    except ValueError:
        raise AdapterError(f"sec: {video}: frame names must be integers (SeC's init_state sorts them as integers), "
                           f"got {names[0]!r}") from None


@contextlib.contextmanager
def video_folder(req: VosRequest):
    """The JPEG folder SeC reads for ``req``: the frames' own folder when its ``.jpg``/``.jpeg`` files, sorted as
    integers, are exactly the request's frames; else a temporary folder of links to them. Yields ``(folder, linked)``."""
    paths = [Path(p) for p in req.frames.paths]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise AdapterError(f"sec: {missing[0]}: frame not found (SeC reads the JPEGs itself; put JPEGImages on disk)")
    names = list(req.frames.names)
    order = _int_names(names, req.video)
    if order != sorted(order):
        raise AdapterError(f"sec: {req.video}: the frames are not in integer order")
    parents = {p.parent for p in paths}
    if len(parents) == 1:
        folder = parents.pop()
        listed = [p for p in folder.iterdir() if p.suffix in (".jpg", ".jpeg", ".JPG", ".JPEG")]
        if sorted(int(p.stem) for p in listed if p.stem.isdigit()) == order and len(listed) == len(order):
            yield folder, False
            return
    tmp = Path(tempfile.mkdtemp(prefix="refbench-sec-"))
    try:
        for p in paths:
            os.symlink(p.resolve(), tmp / p.name)
        yield tmp, True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



class SeCAdapter(Adapter):
    name = "sec"
    tasks = frozenset({"vos"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self.tokenizer: Any = None
        self._state: dict[str, Any] = {}

    def _import_repo(self, card: str) -> tuple[Any, Any, Path]:
        repo = self.options.get("repo")
        if not repo:
            raise AdapterError(f"model {card}: SeC runs from a clone of the official repository: pass --model-arg "
                               "repo=DIR (git clone https://github.com/OpenIXCLab/SeC; the adapter follows commit "
                               "1981ac42)")
        root = Path(str(repo)).expanduser().resolve()
        for rel in ("inference/configuration_sec.py", "inference/modeling_sec.py"):
            if not (root / rel).is_file():
                raise AdapterError(f"model {card}: --model-arg repo={repo}: {root / rel} not found (not a clone of "
                                   "OpenIXCLab/SeC)")
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            from inference.configuration_sec import SeCConfig
            from inference.modeling_sec import SeCModel
        except ImportError as exc:
            raise AdapterError(f"model {card}: importing SeC's inference package from {root} failed ({exc}); build its "
                               f"environment: refbench env create {card}") from exc
        return SeCConfig, SeCModel, root

    def setup(self, context: RunContext) -> None:
        from refbench.adapters.registry import adapter_card

        card = adapter_card(self.card_name or self.name)
        o = self.options
        hf.offline_unless(bool(o.get("download")))
        SeCConfig, SeCModel, root = self._import_repo(card.name)
        path, prov = hf.resolve_checkpoint(card.name, card.weights, o)
        per_obj_png = False
        if context.dataset:
            from refbench.cards import dataset_card

            per_obj_png = dataset_card(context.dataset).protocol in PER_OBJECT_PNG
        config = SeCConfig.from_pretrained(str(path))
        config.apply_postprocessing = bool(o.get("apply_postprocessing", False))
        config.hydra_overrides_extra = ["++model.non_overlap_masks=" + ("false" if per_obj_png else "true")]
        code = hf.code_hash(path)
        hf.trust_notice(card.name, path, code["sha256"])
        self.device = context.device
        try:
            model = SeCModel.from_pretrained(str(path), config=config, torch_dtype=hf.torch_dtype(str(o.get("dtype"))),
                                             use_flash_attn=bool(o.get("flash_attn", True)))
        except ImportError as exc:
            raise AdapterError(f"model {card.name}: SeC's code needs a package this Python lacks ({exc}); build its "
                               f"environment: refbench env create {card.name}") from exc
        self.model = model.eval().to(self.device)
        self.tokenizer = hf.load_tokenizer(card.name, path)
        self._state = {"transformers": hf.transformers_version(), "repo_code": repo_hash(root)["sha256"],
                       "remote_code": code["sha256"], "revision": prov.get("revision"),
                       "weights_source": prov.get("source"),
                       "hydra_overrides_extra": list(config.hydra_overrides_extra)}

    def fingerprint_state(self) -> dict[str, Any]:
        return dict(self._state)

    def _context(self):
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if bool(self.options.get("autocast", True)) and str(self.device).startswith("cuda"):
            stack.enter_context(torch.autocast(device_type="cuda", dtype=torch.bfloat16))
        return stack

    def predict_vos(self, requests: Sequence[VosRequest]) -> list[VosPrediction]:
        if self.model is None:
            raise AdapterError(f"model {self.name}: predict before setup")
        o = self.options
        enc = self.model.grounding_encoder
        out = []
        for r in requests:
            t0 = time.perf_counter()
            n = len(r.frames)
            if not r.prompts:
                out.append(VosPrediction({}, {"objects": 0}))
                continue
            ids = model_object_ids(r.objects)
            order = sorted(range(len(ids)), key=lambda i: ids[i])
            scores: dict[int, dict[int, Any]] = {}
            extra = {} if int(o.get("mllm_memory_size", 7)) == 7 else {"mllm_memory_size": int(o["mllm_memory_size"])}
            with hf.PeakMemory(self.device) as peak, video_folder(r) as (folder, linked), self._context():
                state = enc.init_state(video_path=str(folder), async_loading_frames=False)
                for i in order:
                    p = r.prompts[i]
                    mask = p.mask()
                    enc.reset_state(state)
                    enc.add_new_mask(inference_state=state, frame_idx=p.frame, obj_id=ids[i], mask=mask)
                    got = scores.setdefault(ids[i], {})
                    for frame_idx, _obj_ids, logits in self.model.propagate_in_video(
                            state, start_frame_idx=p.frame, reverse=False, init_mask=mask, tokenizer=self.tokenizer,
                            **extra):
                        got[int(frame_idx)] = logits.detach().to("cpu")
                del state
            merge = str(o.get("merge", "auto"))
            constrain = merge == "non_overlap" or (merge == "auto" and r.overlap == "exclusive")
            thresh = float(o.get("score_thresh", 0.0))
            masks = {r.objects[i]: np.zeros((n, *r.size), bool) for i in order}
            for t in range(n):
                s = np.full((len(order), *r.size), NO_OBJ_SCORE, np.float32)
                for k, i in enumerate(order):
                    lg = scores[ids[i]].get(t)
                    if lg is not None:
                        a = lg.float().numpy().reshape(-1, *lg.shape[-2:])[0]
                        if a.shape != tuple(r.size):
                            raise AdapterError(f"sec: {r.video}: logits of frame {t} are {a.shape}, the video {r.size}")
                        s[k] = a
                m = scores_to_masks(s, thresh, constrain)
                for k, i in enumerate(order):
                    masks[r.objects[i]][t] = m[k]
            diag = {"prompt_frames": {p.obj_id: r.frames.names[p.frame] for p in r.prompts}, "non_overlap": constrain,
                    "frames_tracked": {r.objects[i]: len(scores[ids[i]]) for i in order}, "linked_frames": linked,
                    "seconds": round(time.perf_counter() - t0, 3)}
            if peak.mib is not None:
                diag["peak_cuda_mib"] = peak.mib
            out.append(VosPrediction(masks, diag))
        return out

    def close(self) -> None:
        self.model = None
        self.tokenizer = None


__all__ = ["SeCAdapter", "repo_hash", "video_folder"]
