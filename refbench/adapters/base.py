"""The adapter contract: typed requests in, typed predictions out.

An adapter sees one kind of request per task and never a dataset or a metric:

* ``refvos`` -- :class:`VideoRequest`: a video's ordered frames (decoded lazily) and one expression; the
  adapter returns a :class:`VideoPrediction` with one mask per frame at the original resolution,
  ``masks: (T, H, W) bool``.
* ``tsg`` -- :class:`GroundingRequest`: a video (path, duration) and a query; returns a
  :class:`GroundingPrediction` with spans in seconds, best first (the top-1 span is scored).
* ``res`` -- :class:`ImageRequest`: an image (path, size) and a sentence; returns an :class:`ImagePrediction`,
  ``mask: (H, W) bool``.
* ``vos`` (semi-supervised VOS) -- :class:`VosRequest`: a video's ordered frames and, for each object, its prompt:
  the ground-truth mask on the frame the benchmark's protocol gives it (:class:`VosPrompt`, carried as COCO RLE;
  :mod:`refbench.runs.vos` says which frame per benchmark). The adapter returns a :class:`VosPrediction`: **one
  mask per object and frame**, ``masks: {obj_id: (T, H, W) bool}``, one entry per prompted object. Where the
  benchmark stores one id per pixel (``VosRequest.overlap == "exclusive"``: DAVIS, MOSE, YouTube-VOS, LVOS) the
  objects' masks must not overlap -- the adapter resolves overlaps by its own named merge option (recorded in its
  fingerprint) and :func:`check_vos_prediction` refuses any that remain; SA-V and SeCVOS (one PNG per object,
  ``"allowed"``) keep them. Prompts are protocol input, not ground truth: an adapter that uses them is no oracle.

Every prediction carries free-form ``diagnostics`` (raw text, sampled frame indices, timings) that the run
stores beside it; ``diagnostics["flags"]`` (a list of short names, e.g. ``["no_seg"]``) is counted per name in the
run's summary (``summary["run"]["flags"]``). An adapter declares the tasks it supports, whether it needs pixels at all (blind baselines
run where only annotations are on disk), and a fingerprint of every option that changes its output; the run
store refuses to mix predictions made under different fingerprints.

Requests come in batches (``Adapter.batch_size``); the runner decodes the frames of the next batch in a
background thread while the adapter works on the current one (only when ``needs_pixels``).
"""

from __future__ import annotations

from refbench.errors import RefbenchInputError

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

TASKS = ("refvos", "tsg", "res", "vos")
#: the overlap rules of a vos request (:attr:`VosRequest.overlap`)
OVERLAP_RULES = ("exclusive", "allowed")


class AdapterError(RefbenchInputError, RuntimeError):
    """An adapter cannot run (bad option, missing package, unsupported task) or returned a malformed result."""


# ----------------------------------------------------------------------------------------------
# Lazy frames
# ----------------------------------------------------------------------------------------------


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB of an image file; a clear error naming the file when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError as exc:
        raise AdapterError(f"{path}: frame not found (the adapter needs pixels; is JPEGImages on disk?)") from exc
    except OSError as exc:
        raise AdapterError(f"{path}: cannot decode image ({exc})") from exc


class Frames(Sequence[np.ndarray]):
    """The ordered frames of a video, decoded on first access and kept until :meth:`release`.

    ``frames[i]`` is ``(H, W, 3) uint8`` RGB; ``frames.names`` the dataset's frame names; ``frames.paths`` the
    files. :meth:`preload` decodes them all (the runner calls it from a prefetch thread).
    """

    def __init__(self, names: Sequence[str], paths: Sequence[Path]) -> None:
        if len(names) != len(paths):
            raise ValueError("Frames: names and paths differ in length")
        self.names = tuple(names)
        self.paths = tuple(Path(p) for p in paths)
        self._cache: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        with self._lock:
            hit = self._cache.get(i)
        if hit is not None:
            return hit
        img = read_rgb(self.paths[i])
        with self._lock:
            self._cache[i] = img
        return img

    def pil(self, i: int):
        """Frame ``i`` as a PIL RGB image (what transformers' processors and Sa2VA take)."""
        from PIL import Image

        return Image.fromarray(self[i])

    def preload(self) -> None:
        for i in range(len(self)):
            self[i]

    def release(self) -> None:
        with self._lock:
            self._cache.clear()


# ----------------------------------------------------------------------------------------------
# Requests
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoRequest:
    """One expression on one video. ``size`` is the original (H, W) every returned mask must have."""

    sample_id: str
    video: str
    exp_id: str
    text: str
    frames: Frames
    size: tuple[int, int]
    reference: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    """Ground truth ``(T, H, W)``; set only for adapters that declare ``uses_ground_truth`` (the oracle)."""


@dataclass(frozen=True)
class GroundingRequest:
    """One query on one video; ``duration`` in seconds (None when the dataset does not give it)."""

    sample_id: str
    video: str
    query: str
    duration: float | None
    video_path: Path | None
    reference: tuple[float, float] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ImageRequest:
    """One sentence on one image of size ``size`` (H, W)."""

    sample_id: str
    image_id: str
    text: str
    image_path: Path
    size: tuple[int, int]
    reference: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def image(self) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB, decoded now."""
        return read_rgb(self.image_path)


@dataclass(frozen=True)
class VosPrompt:
    """One object's prompt in a semi-supervised VOS request: its ground-truth mask on frame ``frame`` (an index into
    the request's frames), as a COCO RLE ``{"size": [H, W], "counts": str}``. ``obj_id`` is the benchmark's name of
    the object: the palette id as text for DAVIS / MOSE / YouTube-VOS / LVOS (``"1"``), the object folder for SA-V
    and SeCVOS (``"000"``)."""

    obj_id: str
    frame: int
    rle: Mapping[str, Any] = field(repr=False)

    def mask(self) -> np.ndarray:
        """``(H, W) bool``, decoded through :func:`refbench.rle.decode_rle` (a malformed RLE is refused)."""
        from refbench.rle import decode_rle

        return decode_rle(dict(self.rle), f"prompt of object {self.obj_id} (frame {self.frame})") != 0


@dataclass(frozen=True)
class VosRequest:
    """One video of a semi-supervised VOS benchmark (module doc). ``size`` is the original (H, W) of every returned
    mask; ``prompts`` are in the benchmark's object order; ``overlap`` is the benchmark's rule for the returned masks
    (:data:`OVERLAP_RULES`)."""

    sample_id: str
    video: str
    frames: Frames
    size: tuple[int, int]
    prompts: tuple[VosPrompt, ...]
    overlap: str = "exclusive"

    @property
    def objects(self) -> tuple[str, ...]:
        return tuple(p.obj_id for p in self.prompts)


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------


@dataclass
class VideoPrediction:
    masks: np.ndarray  # (T, H, W) bool
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroundingPrediction:
    spans: list[tuple[float, float]]  # seconds, best first; empty = no answer (scores IoU 0)
    text: str | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImagePrediction:
    """``mask: (H, W) bool``, or None for "no mask" (e.g. no ``[SEG]`` generated): stored as ``null`` and scored
    by the protocol's own rule for it (LISA: an empty mask; Sa2VA: skipped in the cIoU sums)."""

    mask: np.ndarray | None  # (H, W) bool, or None = no mask
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class VosPrediction:
    """``masks``: ``{obj_id: (T, H, W) bool}``, one entry per prompted object of the request (module doc)."""

    masks: Mapping[str, np.ndarray]
    diagnostics: dict[str, Any] = field(default_factory=dict)


def check_vos_prediction(req: VosRequest, pred: Any, adapter: str) -> dict[str, np.ndarray]:
    """The prediction's masks as ``{obj_id: C-contiguous (T, H, W) bool}`` in prompt order, or an AdapterError saying
    what is off: a missing or unknown object, a wrong shape, or (``overlap == "exclusive"``) two objects on one
    pixel."""
    if not isinstance(pred, VosPrediction):
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: expected a VosPrediction, got {type(pred).__name__}")
    got = {str(k): v for k, v in dict(pred.masks).items()}
    want = req.objects
    missing = [o for o in want if o not in got]
    extra = sorted(set(got) - set(want))
    if missing or extra:
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: masks for objects {sorted(got)}, expected one per "
                           f"prompted object {list(want)}")
    shape = (len(req.frames), *req.size)
    out: dict[str, np.ndarray] = {}
    for o in want:
        m = np.asarray(got[o])
        if m.shape != shape:
            raise AdapterError(f"adapter {adapter}: {req.sample_id}: object {o}: masks have shape {m.shape}, expected "
                               f"{shape} (one mask per frame at the original resolution)")
        out[o] = m if m.dtype == bool and m.flags.c_contiguous else np.ascontiguousarray(m != 0)
    if req.overlap == "exclusive" and len(out) > 1:
        count = np.zeros(req.size, np.uint16)  # frame by frame: a long video's (T, H, W) counts would not fit
        for t in range(shape[0]):
            count[...] = 0
            for m in out.values():
                count += m[t]
            if (count > 1).any():
                both = [o for o in want if out[o][t][count > 1].any()][:2]
                raise AdapterError(f"adapter {adapter}: {req.sample_id}: objects {both[0]} and {both[1]} overlap on "
                                   f"frame {t} ({req.frames.names[t]}); this benchmark holds one object per pixel, so "
                                   "the adapter must resolve overlaps (its merge option)")
    return out


def check_video_prediction(req: VideoRequest, pred: Any, adapter: str) -> np.ndarray:
    """The prediction's masks as a C-contiguous ``(T, H, W) bool`` array, or an AdapterError saying what is off."""
    if not isinstance(pred, VideoPrediction):
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: expected a VideoPrediction, got {type(pred).__name__}")
    m = np.asarray(pred.masks)
    want = (len(req.frames), *req.size)
    if m.shape != want:
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: masks have shape {m.shape}, expected {want} "
                           "(one mask per frame at the original resolution)")
    if m.dtype == np.bool_ and m.flags.c_contiguous:
        return m  # already what is asked for: no (T, H, W) copy
    return np.ascontiguousarray(m != 0)


def check_grounding_prediction(req: GroundingRequest, pred: Any, adapter: str) -> list[tuple[float, float]]:
    if not isinstance(pred, GroundingPrediction):
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: expected a GroundingPrediction, "
                           f"got {type(pred).__name__}")
    spans = []
    for s in pred.spans:
        try:
            a, b = (float(s[0]), float(s[1]))
        except (TypeError, ValueError, IndexError) as exc:
            raise AdapterError(f"adapter {adapter}: {req.sample_id}: span {s!r} is not (start, end)") from exc
        if not (np.isfinite(a) and np.isfinite(b)):
            raise AdapterError(f"adapter {adapter}: {req.sample_id}: span {s!r} is not finite")
        spans.append((a, b))
    return spans


def check_image_prediction(req: ImageRequest, pred: Any, adapter: str) -> np.ndarray | None:
    """The prediction's mask as a C-contiguous ``(H, W) bool`` array, None for "no mask", or an AdapterError."""
    if not isinstance(pred, ImagePrediction):
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: expected an ImagePrediction, got {type(pred).__name__}")
    if pred.mask is None:
        return None
    m = np.asarray(pred.mask)
    if m.shape != tuple(req.size):
        raise AdapterError(f"adapter {adapter}: {req.sample_id}: mask has shape {m.shape}, expected {tuple(req.size)}")
    return np.ascontiguousarray(m != 0)


# ----------------------------------------------------------------------------------------------
# Run context and the adapter base class
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What an adapter may know about the run: the device, the dataset card name and its data root (for
    baselines that learn from the matching training split), the run directory (for caches), and the run's
    ``--seed`` (already applied to random, NumPy and torch: :mod:`refbench.runs.seeding`; an adapter whose
    output depends on it puts it in its ``fingerprint_state``)."""

    device: str = "cpu"
    dataset: str | None = None
    root: Path | None = None
    run_dir: Path | None = None
    seed: int | None = None


class Adapter:
    """Base class. Subclasses set the class attributes and implement ``predict_*`` for their tasks.

    Options come from the adapter card (defaults) overridden by ``--model-arg key=value``; they arrive as one
    dict, ``self.options``. Everything that changes outputs must be an option (or part of
    :meth:`fingerprint_state`) so that the fingerprint changes with it.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[frozenset[str]] = frozenset()
    version: ClassVar[str] = "1"  # bump when a code change alters outputs
    needs_pixels: ClassVar[bool] = True
    uses_ground_truth: ClassVar[bool] = False
    batch_size: int = 1
    #: the card this adapter was built from (set by the registry and the worker; None outside them)
    card_name: str | None = None
    #: options that cannot change outputs, kept out of the fingerprint (the registry adds the card's
    #: ``output: false`` options)
    not_output_options: frozenset[str]

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = dict(options)
        self.not_output_options = _NOT_OUTPUT_OPTIONS
        self.batch_size = int(self.options.get("batch_size", type(self).batch_size) or 1)

    # -- lifecycle --------------------------------------------------------------------------------
    def setup(self, context: RunContext) -> None:
        """Load weights / fit priors. Called once per process before the first request."""

    def close(self) -> None:
        """Release resources."""

    # -- predictions ------------------------------------------------------------------------------
    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        raise AdapterError(f"adapter {self.name} does not support task 'refvos'")

    def predict_grounding(self, requests: Sequence[GroundingRequest]) -> list[GroundingPrediction]:
        raise AdapterError(f"adapter {self.name} does not support task 'tsg'")

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        raise AdapterError(f"adapter {self.name} does not support task 'res'")

    def predict_vos(self, requests: Sequence[VosRequest]) -> list[VosPrediction]:
        raise AdapterError(f"adapter {self.name} does not support task 'vos'")

    def predict_payloads(self, task: str, requests: Sequence[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Predict ``requests`` of ``task`` and encode each checked prediction for storage:
        ``(payload, diagnostics)`` per request, the payload in the store's format (:mod:`refbench.runs.store`:
        RLE masks per frame, spans with the raw text, one RLE image mask, or RLE masks per object and frame). The run and the worker process
        both call this; a worker proxy overrides it to return the worker's payloads as they are.
        :meth:`predictions` then :meth:`encode_payloads` (the run calls the two apart to encode one batch
        while the model predicts the next)."""
        return self.encode_payloads(task, requests, self.predictions(task, requests))

    def predictions(self, task: str, requests: Sequence[Any]) -> list[Any]:
        """The typed predictions of ``requests`` (``predict_video`` / ``_grounding`` / ``_image`` / ``_vos`` by
        ``task``), one per request."""
        if task == "refvos":
            preds: list[Any] = self.predict_video(requests)
        elif task == "tsg":
            preds = self.predict_grounding(requests)
        elif task == "res":
            preds = self.predict_image(requests)
        elif task == "vos":
            preds = self.predict_vos(requests)
        else:
            raise AdapterError(f"adapter {self.name}: unknown task {task!r}; expected one of {', '.join(TASKS)}")
        if len(preds) != len(requests):
            raise AdapterError(f"adapter {self.name}: returned {len(preds)} predictions for {len(requests)} requests")
        return preds

    def encode_payloads(self, task: str, requests: Sequence[Any], preds: Sequence[Any]
                        ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Check each prediction against its request and encode it for storage (see :meth:`predict_payloads`)."""
        from refbench.runs.store import encode_mask, encode_masks

        out = []
        for r, p in zip(requests, preds):
            if task == "refvos":
                payload = encode_masks(check_video_prediction(r, p, self.name))
            elif task == "tsg":
                payload = {"spans": [list(x) for x in check_grounding_prediction(r, p, self.name)], "text": p.text}
            elif task == "vos":
                from refbench.runs.vos import encode_vos

                payload = encode_vos(r, check_vos_prediction(r, p, self.name))
            else:
                mask = check_image_prediction(r, p, self.name)
                payload = None if mask is None else encode_mask(mask)
            out.append((payload, dict(p.diagnostics)))
        return out

    # -- identity ---------------------------------------------------------------------------------
    def fingerprint_state(self) -> Mapping[str, Any]:
        """Extra output-changing state known after :meth:`setup` (e.g. a hash of the training data a prior
        was fitted on, a checkpoint's revision)."""
        return {}

    def fingerprint(self) -> str:
        """sha256 over the adapter's code identity, version, options and :meth:`fingerprint_state`."""
        cls = type(self)
        doc = {
            "code": f"{cls.__module__}:{cls.__qualname__}",
            "name": self.name,
            "version": self.version,
            "options": {k: v for k, v in sorted(self.options.items()) if k not in self.not_output_options},
            "state": dict(self.fingerprint_state()),
        }
        blob = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


#: options that do not change outputs and so stay out of the fingerprint
_NOT_OUTPUT_OPTIONS = frozenset({"batch_size", "sleep", "python"})


__all__ = [
    "Adapter",
    "AdapterError",
    "Frames",
    "GroundingPrediction",
    "GroundingRequest",
    "ImagePrediction",
    "ImageRequest",
    "RunContext",
    "OVERLAP_RULES",
    "TASKS",
    "VideoPrediction",
    "VideoRequest",
    "VosPrediction",
    "VosPrompt",
    "VosRequest",
    "check_grounding_prediction",
    "check_image_prediction",
    "check_video_prediction",
    "check_vos_prediction",
    "read_rgb",
]
