"""Baselines that need no weights and no pixels: ``oracle``, ``empty`` and ``prior``.

* ``oracle`` returns the ground truth. Every protocol must score it 100 (a check of the whole path: loader,
  store, export, scorer); it is the only adapter that sees ground truth (``uses_ground_truth``).
* ``empty`` returns empty masks and zero-length spans at 0 s: what empty frames (and a missing answer) are
  worth on each benchmark.
* ``prior`` is blind: it never looks at the video, image or text. RefVOS / RES: the mean training mask (every
  training frame resized to a ``grid`` x ``grid`` map and averaged), thresholded, resized to each frame.
  ``threshold: auto`` picks the level whose mask covers the mean training foreground fraction. TSG: the most
  frequent normalised (start, end) pair of the training queries on a ``bins`` grid (``objective: mode``) or
  the grid span with the best mean IoU on the training queries (``objective: miou``), scaled by each test
  video's duration.

The training split is the evaluated card's name with its split replaced by ``train`` (``charades_sta_test`` ->
``charades_sta_train``, ``mevis_val_u`` -> ``mevis_train``), or ``--model-arg train=CARD``.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Mapping, Sequence

import numpy as np

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

_SPLIT_SUFFIX = re.compile(r"_(val_u|val1|val_1|valid_u|valid|val|testA|testB|test)$")


class _Sleepy(Adapter):
    """``sleep`` option: seconds to wait per request, to simulate a slow model (tests of kill and resume)."""

    def _nap(self, n: int) -> None:
        delay = float(self.options.get("sleep") or 0.0)
        if delay > 0:
            time.sleep(delay * n)


class OracleAdapter(_Sleepy):
    name = "oracle"
    tasks = frozenset({"refvos", "tsg", "res"})
    needs_pixels = False
    uses_ground_truth = True

    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        self._nap(len(requests))
        out = []
        for r in requests:
            if r.reference is None:
                raise AdapterError(f"oracle: {r.sample_id}: no ground truth (is it public for this dataset?)")
            out.append(VideoPrediction(np.asarray(r.reference()) != 0))
        return out

    def predict_grounding(self, requests: Sequence[GroundingRequest]) -> list[GroundingPrediction]:
        self._nap(len(requests))
        out = []
        for r in requests:
            if r.reference is None:
                raise AdapterError(f"oracle: {r.sample_id}: no ground-truth span")
            out.append(GroundingPrediction([tuple(r.reference)]))
        return out

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        self._nap(len(requests))
        out = []
        for r in requests:
            if r.reference is None:
                raise AdapterError(f"oracle: {r.sample_id}: no ground-truth mask")
            out.append(ImagePrediction(np.asarray(r.reference()) != 0))
        return out


class EmptyAdapter(_Sleepy):
    name = "empty"
    tasks = frozenset({"refvos", "tsg", "res"})
    needs_pixels = False

    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        self._nap(len(requests))
        return [VideoPrediction(np.zeros((len(r.frames), *r.size), bool)) for r in requests]

    def predict_grounding(self, requests: Sequence[GroundingRequest]) -> list[GroundingPrediction]:
        self._nap(len(requests))
        return [GroundingPrediction([(0.0, 0.0)]) for _ in requests]

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        self._nap(len(requests))
        return [ImagePrediction(np.zeros(r.size, bool)) for r in requests]


# ----------------------------------------------------------------------------------------------
# The blind prior
# ----------------------------------------------------------------------------------------------


def training_card_name(dataset: str) -> str:
    """``charades_sta_test`` -> ``charades_sta_train``; raises ValueError when no split suffix is recognised."""
    base, n = _SPLIT_SUFFIX.subn("", dataset)
    if not n:
        raise ValueError(f"prior: cannot tell the training split of {dataset!r}; pass --model-arg train=CARD")
    return f"{base}_train"


def _stride_pick(n: int, limit: int | None) -> list[int]:
    """At most ``limit`` indices spread evenly over range(n) (deterministic)."""
    if not limit or limit >= n:
        return list(range(n))
    return sorted({int(i * n / limit) for i in range(limit)})


def fit_span_prior(spans: Sequence[tuple[float, float]], bins: int, objective: str) -> tuple[float, float]:
    """The normalised span prior from training spans already divided by their video durations (0..1)."""
    if not spans:
        raise ValueError("prior: no training spans")
    arr = np.clip(np.asarray(spans, dtype=np.float64), 0.0, 1.0)
    grid = np.arange(bins + 1) / bins
    if objective == "mode":
        s_idx = np.rint(arr[:, 0] * bins).astype(int)
        e_idx = np.rint(arr[:, 1] * bins).astype(int)
        e_idx = np.maximum(e_idx, s_idx + 1).clip(max=bins)
        s_idx = np.minimum(s_idx, e_idx - 1)
        counts = np.zeros((bins + 1, bins + 1), np.int64)
        np.add.at(counts, (s_idx, e_idx), 1)
        i, j = np.unravel_index(int(np.argmax(counts)), counts.shape)  # first maximum: lowest (start, end)
        return float(grid[i]), float(grid[j])
    if objective == "miou":
        s, e = np.meshgrid(grid, grid, indexing="ij")  # candidate (start, end)
        ok = e > s
        cs, ce = s[ok][:, None], e[ok][:, None]
        gs, ge = arr[None, :, 0], arr[None, :, 1]
        inter = np.clip(np.minimum(ce, ge) - np.maximum(cs, gs), 0, None)
        union = np.maximum(ce, ge) - np.minimum(cs, gs)
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0).mean(axis=1)
        k = int(np.argmax(iou))
        return float(cs[k, 0]), float(ce[k, 0])
    raise ValueError(f"prior: objective must be 'mode' or 'miou', got {objective!r}")


def _to_grid(mask: np.ndarray, grid: int) -> np.ndarray:
    import cv2

    return cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)


def threshold_prior(mean: np.ndarray, fg_fraction: float, threshold: Any) -> np.ndarray:
    """The thresholded prior map: at a fixed level, or (``"auto"``) at the level whose area matches the mean
    training foreground fraction (ties broken by keeping every cell at that level)."""
    if threshold == "auto":
        k = int(round(fg_fraction * mean.size))
        if k <= 0:
            return np.zeros_like(mean, bool)
        level = np.sort(mean, axis=None)[::-1][k - 1]
        return mean >= level
    return mean >= float(threshold)


class PriorAdapter(_Sleepy):
    name = "prior"
    tasks = frozenset({"refvos", "tsg", "res"})
    needs_pixels = False

    def setup(self, context: RunContext) -> None:
        from refbench.cards import dataset_card

        if context.dataset is None:
            raise AdapterError("prior: needs the evaluated dataset's name to find its training split")
        train = self.options.get("train") or "auto"
        train_name = training_card_name(context.dataset) if train == "auto" else str(train)
        try:
            card = dataset_card(train_name)
        except KeyError as exc:
            raise AdapterError(f"prior: training split {train_name!r} has no dataset card ({exc}); pass "
                               "--model-arg train=CARD") from exc
        eval_card = dataset_card(context.dataset)
        root = self.options.get("train_root")
        if root is None and context.root is not None and card.default_root == eval_card.default_root:
            root = context.root  # the same folder holds both splits (e.g. Charades-STA, MeViS)
        train_root = card.resolve_root(root)
        self.train_card = card.name
        self.task = eval_card.task
        if card.task != eval_card.task:
            raise AdapterError(f"prior: training card {card.name} has task {card.task}, {context.dataset} has "
                               f"{eval_card.task}")
        loader = card.open(train_root)
        from refbench.evaluate.run import annotation_files, annotation_hash

        self.train_hash = annotation_hash(annotation_files(card, train_root), train_root)
        if self.task == "tsg":
            self._fit_spans(loader)
        else:
            self._fit_masks(loader)

    # -- TSG ----------------------------------------------------------------------------------------
    def _fit_spans(self, loader: Any) -> None:
        norm = []
        skipped = 0
        for q in loader.samples():
            if q.span is None or not q.duration or q.duration <= 0 or q.span[1] < q.span[0]:
                skipped += 1
                continue
            norm.append((q.span[0] / q.duration, q.span[1] / q.duration))
        self.n_train = len(norm)
        self.span = fit_span_prior(norm, int(self.options.get("bins") or 20), str(self.options.get("objective")))
        self.fit_info = {"train": self.train_card, "train_queries": len(norm), "skipped": skipped,
                         "normalised_span": list(self.span)}

    def predict_grounding(self, requests: Sequence[GroundingRequest]) -> list[GroundingPrediction]:
        self._nap(len(requests))
        out = []
        for r in requests:
            if not r.duration or r.duration <= 0:
                raise AdapterError(f"prior: {r.sample_id}: video {r.video} has no duration; the prior is "
                                   "normalised by it")
            s, e = self.span
            out.append(GroundingPrediction([(s * r.duration, e * r.duration)]))
        return out

    # -- masks ----------------------------------------------------------------------------------------
    def _fit_masks(self, loader: Any) -> None:
        grid = int(self.options.get("grid") or 64)
        samples = loader.samples()
        picked = _stride_pick(len(samples), self.options.get("max_train"))
        acc = np.zeros((grid, grid), np.float64)
        n_frames = 0
        fg = 0.0
        for i in picked:
            s = samples[i]
            if self.task == "res":
                masks = np.asarray(loader.gt_mask(s))[None]
            else:
                masks = loader.gt_masks(s)
            for m in masks:
                m = m != 0
                acc += _to_grid(m, grid)
                fg += float(m.mean())
                n_frames += 1
        if n_frames == 0:
            raise AdapterError(f"prior: training split {self.train_card} has no masks")
        mean = acc / n_frames
        self.fg_fraction = fg / n_frames
        self.prior = threshold_prior(mean, self.fg_fraction, self.options.get("threshold", "auto"))
        self.n_train = len(picked)
        self.fit_info = {"train": self.train_card, "train_samples": len(picked), "train_frames": n_frames,
                         "fg_fraction": self.fg_fraction, "prior_fraction": float(self.prior.mean())}
        self._resized: dict[tuple[int, int], np.ndarray] = {}

    def _mask(self, size: tuple[int, int]) -> np.ndarray:
        import cv2

        hit = self._resized.get(size)
        if hit is None:
            hit = cv2.resize(self.prior.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST) != 0
            self._resized[size] = hit
        return hit

    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        self._nap(len(requests))
        return [VideoPrediction(np.broadcast_to(self._mask(r.size), (len(r.frames), *r.size))) for r in requests]

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        self._nap(len(requests))
        return [ImagePrediction(self._mask(r.size)) for r in requests]

    def fingerprint_state(self) -> Mapping[str, Any]:
        state: dict[str, Any] = {"train": getattr(self, "train_card", None),
                                 "train_annotations": getattr(self, "train_hash", None)}
        if getattr(self, "prior", None) is not None:
            state["prior"] = hashlib.sha256(np.packbits(self.prior).tobytes()).hexdigest()[:16]
        if getattr(self, "span", None) is not None:
            state["span"] = list(self.span)
        return state


__all__ = ["EmptyAdapter", "OracleAdapter", "PriorAdapter", "fit_span_prior", "threshold_prior",
           "training_card_name"]
