"""ReferDINO-Plus (iSEE-Laboratory/ReferDINO-Plus, PVUW 2025 MeViS track 2nd, test J&F 60.43): ReferDINO's kept
queries each seed SAM 2.1 with their mask on their best frame, SAM 2 propagates forward and backward, and a
conditional fusion decides per expression between SAM 2's masks and SAM 2's united with ReferDINO's.

Read at iSEE-Laboratory/ReferDINO-Plus @ 04b1a18bf70f2c984cc429d847f9b22ba741307d (``refine_from_refdino.py``, its
vendored ``sam2/``, ``sam2/configs/sam2.1/sam2.1_hiera_l.yaml``, README). The official pipeline has two stages: a
ReferDINO run saves, per expression, ``scores [T, Q]``, ``boxes [T, Q, 4]`` and ``masks [T, Q, h, w]``
(``Annotations_intermediate``, released on Google Drive; the script that writes it is not public), then
``refine_from_refdino.py`` does, per expression:

* kept queries: ``valid = scores > 0.275``; ``avg = (scores * valid).sum(0) / (valid.sum(0) + 1e-6)`` (the mean
  over the frames where the query scores above the threshold); keep the queries with ``avg > 0.275``
  (``keep_threshold``). None kept: every frame empty (no top-1 fallback; ``fallback``);
* ReferDINO's masks: ``F.interpolate(masks, (H, W), bilinear, align_corners=False) > 0`` per kept query;
* seeds: for each kept query, its best frame ``scores.argmax(0)`` (the first frame of its highest score) and its
  mask there; ``use_mask=True`` (box and point prompts exist in the script but are off);
* SAM 2.1 Hiera-L (``checkpoints/sam2.1_hiera_large.pt``), one session per expression, object ``k`` = kept query
  ``k``, ``add_new_mask`` on each seed frame; ``propagate_in_video(state)`` then ``propagate_in_video(state,
  reverse=True)``: both start at the earliest seed frame (SAM 2's default), so frames after it come from the forward
  pass and frames before it from the reverse pass; masks ``logits > 0`` at the video's size
  (``direction``, ``sam_threshold``);
* conditional fusion: per frame ``ori`` = union of ReferDINO's kept masks, ``sam`` = union of SAM 2's;
  ``area(m) = (row_max - row_min) * (col_max - col_min)`` of the mask's bounding box (no +1; 0 when empty);
  a frame is valid when both areas are > 0 and counts when ``area_sam * 3 < area_ori * 2``; the expression is
  "several objects" when ``count * 2 > valid`` (``fusion_area_ratio`` 2/3, ``fusion_vote`` 1/2). Several: each
  frame is ``sam | ori``; one: ``sam`` alone (``fusion``). The PVUW 2025 report (arXiv 2504.11326, section 4)
  describes the same rule: "single object: SAM2's masks only; several objects: ReferDINO's and SAM2's combined".

What refbench does differently, and why:

* Two processes, as the official pipeline has two stages: the ReferDINO stage (:class:`ReferDINOStage`, the
  ``referdino-swinb`` adapter's exact call, in the ``referdino`` environment: torch 2.5.1, transformers 4.48.3)
  returns the union of the kept masks as its prediction, with the kept queries, their scores, best frames and seed
  masks (RLE) in its diagnostics; the SAM stage (:class:`ReferDINOPlusAdapter`, the card's ``sam`` environment:
  transformers 5.24.0, whose ``Sam2VideoModel`` needs >= 4.56) drives SAM 2.1 and fuses. No single environment holds
  both stacks. The scores the official intermediate files hold are taken to be ``sigmoid(pred_logits)`` (max over
  the class axis, K = 1), the masks ReferDINO's ``pred_masks`` unpadded to the resized frame as in its eval scripts.
  How ReferDINO was run for the intermediates is not published; refbench runs it as ``inference_mevis.py`` does
  (whole video, ``tracking_alpha`` 0.1 on MeViS, ``mevis_swinb.pth``).
* SAM 2.1 is transformers' ``Sam2VideoModel`` (HF ``facebook/sam2.1-hiera-large``). The vendored predictor runs
  with ``samurai_mode: True`` (SAMURAI's Kalman-filter memory selection, in ``sam2_base.py``) under CUDA fp16
  autocast; transformers has neither, so ``dtype`` float32 is the default and the SAM masks are plain SAM 2.1's.
* The vendored predictor is SAM 2's first release, which batches all objects on shared conditioning frames: an
  object gets a placeholder (``NO_OBJ_SCORE``, an empty mask) on every other object's seed frame, both as output
  and as memory. transformers tracks each object on its own; ``other_seed_frames: empty`` (default) reproduces the
  output part (the object's mask is emptied on the other objects' seed frames), not the memory part.

Nothing here is imported before ``setup``; torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np

from refbench.adapters import hf
from refbench.adapters.base import Adapter, AdapterError, RunContext, VideoPrediction, VideoRequest
from refbench.adapters.referdino import ReferDINOAdapter

SOURCE = "https://github.com/iSEE-Laboratory/ReferDINO-Plus @ 04b1a18bf70f2c984cc429d847f9b22ba741307d"
STAGE_CODE = "refbench.adapters.referdino_plus:ReferDINOStage"
#: the card whose environment (and options) the ReferDINO stage uses
REFERDINO_CARD = "referdino-swinb"
#: options handed to the ReferDINO stage (``referdino_checkpoint`` is its ``checkpoint``)
STAGE_OPTIONS = ("repo", "config", "weights", "groundingdino_ckpt", "text_encoder", "download", "short_side",
                 "crop_len", "tracking_alpha", "amp", "keep_threshold", "fallback")
FUSIONS = ("conditional", "sam", "union", "referdino")
_CONFIG_FILES = ("config.json", "processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")


# ----------------------------------------------------------------------------------------------
# The official rules (module doc), on plain arrays
# ----------------------------------------------------------------------------------------------


def keep_queries(scores: Any, threshold: float) -> tuple[list[int], list[float]]:
    """``(kept query ids, every query's average)`` from ``scores: (T, Q)`` as refine_from_refdino.py computes them:
    the mean over the frames above ``threshold``, kept when it is above ``threshold`` too (float32 torch, as there)."""
    import torch

    s = torch.as_tensor(scores, dtype=torch.float32)
    valid = (s > threshold).float()
    avg = (s * valid).sum(0) / (valid.sum(0) + 1e-6)
    kept = torch.nonzero(avg > threshold).flatten().tolist()
    return [int(i) for i in kept], [float(x) for x in avg.tolist()]


def best_frames(scores: Any, queries: Sequence[int]) -> list[int]:
    """Each query's seed frame: ``scores[:, q].argmax()`` (the first frame of its highest score)."""
    import torch

    s = torch.as_tensor(scores, dtype=torch.float32)
    if not len(queries):
        return []
    return [int(x) for x in s[:, list(queries)].argmax(0).tolist()]


def box_area(mask: np.ndarray) -> int:
    """refine_from_refdino.py's ``get_bounding_box`` area: ``(row_max - row_min) * (col_max - col_min)``, 0 when empty
    (a one-row or one-column mask has area 0 too)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return 0
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[-1] - rows[0]) * int(cols[-1] - cols[0])


def several_objects(ori: np.ndarray, sam: np.ndarray, ratio: Fraction = Fraction(2, 3),
                    vote: Fraction = Fraction(1, 2)) -> tuple[bool, int, int]:
    """``(several, counted, valid)`` over frames: ``ori``, ``sam`` ``(T, H, W)`` bool unions. A frame is valid when both
    box areas are > 0, counted when ``area_sam < ratio * area_ori``; several when ``counted > vote * valid`` (exact
    rationals: 2/3 and 1/2 give the script's ``area_sam * 3 < area_ori * 2`` and ``cnt * 2 > valid_frames``)."""
    counted = valid = 0
    for t in range(len(ori)):
        a_ori, a_sam = box_area(ori[t]), box_area(sam[t])
        if a_ori > 0 and a_sam > 0:
            valid += 1
            if a_sam * ratio.denominator < a_ori * ratio.numerator:
                counted += 1
    return counted * vote.denominator > valid * vote.numerator, counted, valid


def fuse(ori: np.ndarray, sam: np.ndarray, rule: str, several: bool) -> np.ndarray:
    """The output masks ``(T, H, W)`` bool: ``conditional`` (sam | ori when several, else sam), ``sam``, ``union``
    (always sam | ori), ``referdino`` (ori: ReferDINO's kept queries united, SAM unused)."""
    if rule == "conditional":
        return sam | ori if several else sam.copy()
    if rule == "sam":
        return sam.copy()
    if rule == "union":
        return sam | ori
    if rule == "referdino":
        return ori.copy()
    raise AdapterError(f"ReferDINO-Plus: fusion must be one of {', '.join(FUSIONS)}, got {rule!r}")


def fraction(text: Any, option: str, model: str) -> Fraction:
    """``"2/3"`` (or ``0.5``) as an exact positive fraction, or an error naming ``--model-arg option``."""
    try:
        f = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise AdapterError(f"model {model}: --model-arg {option}={text}: not a fraction like 2/3") from exc
    if f <= 0:
        raise AdapterError(f"model {model}: --model-arg {option}={text}: must be above 0")
    return f


# ----------------------------------------------------------------------------------------------
# Stage 1: ReferDINO, in its own environment
# ----------------------------------------------------------------------------------------------


class ReferDINOStage(ReferDINOAdapter):
    """ReferDINO called as the ``referdino-swinb`` adapter calls it (whole video), with ReferDINO-Plus's query rule:
    the prediction is the union of the kept queries' masks; the diagnostics carry ``kept``, ``avg_scores``,
    ``seed_frames`` and ``seed_rles`` (each kept query's mask on its best frame, COCO RLE counts)."""

    name = "referdino-plus-stage1"
    version = "1"

    def setup(self, context: RunContext) -> None:
        self.options = {**self.options, "subset_size": 0}
        super().setup(context)
        for k in ("query_select", "query_select_from"):
            self._state.pop(k, None)
        self._state["queries"] = {"rule": "referdino-plus", "keep_threshold": float(self.options.get("keep_threshold",
                                                                                                     0.275)),
                                  "fallback": str(self.options.get("fallback", "empty"))}

    def _one(self, r: VideoRequest) -> VideoPrediction:
        import torch.nn.functional as F

        from refbench.runs.store import encode_mask

        o = self.options
        t0 = time.perf_counter()
        n = len(r.frames)
        logits, masks, (img_h, img_w) = self.infer_frames(r, list(range(n)))
        scores = logits.float().sigmoid().max(-1)[0].cpu()  # [T, Q]
        thr = float(o.get("keep_threshold", 0.275))
        kept, avg = keep_queries(scores, thr)
        fallback = False
        if not kept and str(o.get("fallback", "empty")) == "top1":
            kept, fallback = [int(scores.mean(0).argmax())], True
        out = np.zeros((n, *r.size), dtype=bool)
        seeds, rles = best_frames(scores, kept), []
        if kept:
            m = masks[:, kept].float().cpu()[:, :, :img_h, :img_w]
            full = (F.interpolate(m, size=tuple(r.size), mode="bilinear", align_corners=False) > 0.0).numpy()
            out = full.any(axis=1)
            rles = [encode_mask(full[f, k])["counts"] for k, f in enumerate(seeds)]
        diag: dict[str, Any] = {
            "queries": int(scores.shape[1]), "kept": kept, "fallback": fallback,
            "avg_scores": [round(avg[q], 6) for q in kept], "seed_frames": seeds, "seed_rles": rles,
            "seed_scores": [round(float(scores[f, q]), 6) for q, f in zip(kept, seeds)],
            "resized": [img_h, img_w], "deform_attn": self.op, "seconds": round(time.perf_counter() - t0, 4)}
        return VideoPrediction(out, diag)


# ----------------------------------------------------------------------------------------------
# Stage 2: SAM 2.1 and the fusion (the card's adapter)
# ----------------------------------------------------------------------------------------------


class ReferDINOPlusAdapter(Adapter):
    name = "referdino-plus"
    tasks = frozenset({"refvos"})
    version = "1"
    needs_pixels = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: Any = None
        self.processor: Any = None
        self.stage: Any = None
        self._state: dict[str, Any] = {}

    def setup(self, context: RunContext) -> None:
        from refbench.adapters.registry import adapter_card
        from refbench.adapters.sam2_video import load_sam2_video

        card = adapter_card(self.card_name or self.name)
        o = self.options
        name = card.name
        self.ratio = fraction(o.get("fusion_area_ratio", "2/3"), "fusion_area_ratio", name)
        self.vote = fraction(o.get("fusion_vote", "1/2"), "fusion_vote", name)
        hf.offline_unless(bool(o.get("download")))
        self.device = context.device
        self.dtype = str(o.get("dtype", "float32"))
        self.stage = self._start_stage(name, context)
        try:
            path, prov = hf.resolve_checkpoint(name, card.weights, {"checkpoint": o.get("sam_checkpoint"),
                                                                    "revision": o.get("sam_revision"),
                                                                    "download": o.get("download")})
            self.model, self.processor = load_sam2_video(name, path, dtype=self.dtype, device=self.device)
        except BaseException:
            self.close()  # the ReferDINO worker must not outlive a failed setup
            raise
        import torch

        self._state = {
            "referdino": {"fingerprint": self.stage.fingerprint(), "state": dict(self.stage.fingerprint_state())},
            "sam": {"transformers": hf.transformers_version(), "torch": torch.__version__,
                    "revision": prov.get("revision"), "weights_source": prov.get("source"),
                    "config_sha256": hf.files_hash(path, _CONFIG_FILES)},
            "fusion_area_ratio": str(self.ratio), "fusion_vote": str(self.vote),
        }

    def _start_stage(self, name: str, context: RunContext) -> Adapter:
        """The ReferDINO stage: in this interpreter when it has the referdino-swinb card's pins (or
        ``referdino_ignore_pins``), else in that card's environment (or ``referdino_python``) through the worker."""
        from refbench.adapters.options import not_output
        from refbench.adapters.registry import adapter_card
        from refbench.adapters.worker import WorkerAdapter
        from refbench.envs import EnvError, env_dir, worker_python

        o = self.options
        opts = {k: o[k] for k in STAGE_OPTIONS if k in o}
        if o.get("referdino_checkpoint"):
            opts["checkpoint"] = o["referdino_checkpoint"]
        rd_card = adapter_card(REFERDINO_CARD)
        python = o.get("referdino_python")
        if not python and not o.get("referdino_ignore_pins"):
            try:
                python = worker_python(rd_card)
            except EnvError as exc:
                raise EnvError(f"model {name}: its ReferDINO stage needs the environment of {REFERDINO_CARD} "
                               f"({rd_card.environment.name}, missing at {env_dir(rd_card.environment.name)}): create "
                               f"it with `refbench env create {REFERDINO_CARD}` (or pass --model-arg "
                               "referdino_python=PATH, or --model-arg referdino_ignore_pins=true)") from exc
        hidden = not_output(rd_card.specs) | {"checkpoint"}
        stage: Adapter
        if python:
            stage = WorkerAdapter(STAGE_CODE, str(python), name, **opts)
        else:
            stage = ReferDINOStage(**opts)
            stage.card_name = name
        stage.not_output_options = stage.not_output_options | hidden
        try:
            stage.setup(context)
        except BaseException:
            stage.close()
            raise
        return stage

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        if self.model is None or self.stage is None:
            raise AdapterError(f"model {self.name}: predict before setup")
        from refbench.runs.store import decode_masks

        first = self.stage.predict_payloads("refvos", list(requests))
        return [self._one(r, decode_masks(p), dict(d)) for r, (p, d) in zip(requests, first)]

    def _one(self, r: VideoRequest, ori: np.ndarray, d1: dict[str, Any]) -> VideoPrediction:
        from refbench.adapters.sam2_video import Sam2VideoTracker, track_seeded
        from refbench.rle import decode_rle

        o = self.options
        t0 = time.perf_counter()
        n = len(r.frames)
        kept, seeds, rles = list(d1.pop("kept", [])), list(d1.pop("seed_frames", [])), list(d1.pop("seed_rles", []))
        if not (len(kept) == len(seeds) == len(rles)):
            raise AdapterError(f"model {self.name}: {r.sample_id}: the ReferDINO stage gave {len(kept)} queries, "
                               f"{len(seeds)} seed frames and {len(rles)} seed masks")
        diag: dict[str, Any] = {"referdino": d1, "kept": kept, "seed_frames": seeds,
                                "seed_frame_names": [r.frames.names[f] for f in seeds]}
        if not kept:  # refine_from_refdino.py: every frame empty
            diag.update({"objects": 0, "several": None, "flags": ["empty"], "seconds": round(time.perf_counter() - t0, 4)})
            return VideoPrediction(np.zeros((n, *r.size), bool), diag)
        size = {"size": list(r.size)}
        prompts = [(k, f, decode_rle({**size, "counts": c}, f"{r.sample_id}: seed mask of query {kept[k]}",
                                        tuple(r.size), AdapterError) != 0)
                   for k, (f, c) in enumerate(zip(seeds, rles))]
        thresh = float(o.get("sam_threshold", 0.0))
        with hf.PeakMemory(self.device) as peak:
            tracker = Sam2VideoTracker(self.model, self.processor, [r.frames[t] for t in range(n)],
                                       device=self.device, dtype=self.dtype,
                                       offload_video=bool(o.get("offload_video", False)))
            try:
                res = track_seeded(tracker, prompts, direction=str(o.get("direction", "both")))
                per_obj = np.zeros((len(prompts), n, *r.size), bool)
                for t in range(n):
                    per_obj[:, t] = res.logits(t) > thresh
                tracked = [len(res.tracked(k)) for k in range(len(prompts))]
            finally:
                tracker.close()
        if str(o.get("other_seed_frames", "empty")) == "empty":
            for k, f in enumerate(seeds):
                for f2 in set(seeds) - {f}:
                    per_obj[k, f2] = False
        sam = per_obj.any(axis=0)
        several, counted, valid = several_objects(ori, sam, self.ratio, self.vote)
        rule = str(o.get("fusion", "conditional"))
        out = fuse(ori, sam, rule, several)
        diag.update({"objects": len(prompts), "frames_tracked": tracked, "several": several,
                     "fusion": {"rule": rule, "counted": counted, "valid": valid},
                     "seconds": round(time.perf_counter() - t0, 4)})
        if peak.mib is not None:
            diag["peak_gpu_mib"] = peak.mib
        if not out.any():
            diag["flags"] = ["empty"]
        return VideoPrediction(out, diag)

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()
        self.stage = None
        self.model = None
        self.processor = None


__all__ = ["FUSIONS", "ReferDINOPlusAdapter", "ReferDINOStage", "best_frames", "box_area", "fraction", "fuse",
           "keep_queries", "several_objects"]
