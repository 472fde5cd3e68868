"""How VOS adapters turn per-object outputs into the masks a benchmark stores (``VosRequest.overlap``).

Where the benchmark holds one id per pixel (``"exclusive"``: palette PNGs) overlapping objects must be resolved; where
each object has its own PNG (``"allowed"``: SA-V, SeCVOS) they are kept. The rule is the adapter's named ``merge``
option, so it is in the fingerprint:

* :func:`non_overlap` -- SAM 2's non-overlapping constraint on mask logits (facebookresearch/sam2
  ``SAM2Base._apply_non_overlapping_constraints``, applied by ``tools/vos_inference.py`` whenever it writes palette
  PNGs; transformers ``Sam2ImageProcessor._apply_non_overlapping_constraints`` is the same): at each pixel only the
  object with the highest score keeps it, every other object's score is clamped to at most -10; ties go to the
  first object (``argmax``). Then ``score > score_thresh`` is foreground. Comparisons and a clamp only, so numpy and
  torch give the same bits.
* :func:`merge_binary` -- for binary masks (``first-frame``): ``latest`` gives a pixel to the object whose prompt is
  the most recent (its mask is newer ground truth than an older object's copy), the benchmark's object order
  breaking ties; ``lowest_id`` gives it to the first object in the benchmark's order.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

MERGE_BINARY = ("latest", "lowest_id")
#: the clamp of SAM 2's constraint (sigmoid(-10) = 4.54e-05)
SUPPRESSED = -10.0


def non_overlap(scores: np.ndarray) -> np.ndarray:
    """``(K, ...)`` float scores of K objects -> the same with SAM 2's non-overlapping constraint (module doc)."""
    s = np.asarray(scores)
    if s.shape[0] <= 1:
        return s
    winner = np.argmax(s, axis=0)
    keep = winner[None] == np.arange(s.shape[0]).reshape((-1,) + (1,) * (s.ndim - 1))
    return np.where(keep, s, np.minimum(s, np.asarray(SUPPRESSED, dtype=s.dtype)))


def scores_to_masks(scores: np.ndarray, score_thresh: float = 0.0, constrain: bool = True) -> np.ndarray:
    """``(K, ...)`` scores -> ``(K, ...)`` bool: :func:`non_overlap` when ``constrain``, then ``> score_thresh``."""
    s = non_overlap(scores) if constrain else np.asarray(scores)
    return s > np.asarray(score_thresh, dtype=s.dtype)


def merge_binary(masks: Mapping[str, np.ndarray], order: Sequence[str], prompt_frames: Mapping[str, int],
                 rule: str = "latest") -> dict[str, np.ndarray]:
    """Binary ``{obj: (T, H, W)}`` masks made disjoint by ``rule`` (module doc); ``order`` is the benchmark's object
    order, ``prompt_frames`` each object's prompt frame index."""
    if rule not in MERGE_BINARY:
        raise ValueError(f"merge rule must be one of {', '.join(MERGE_BINARY)}, got {rule!r}")
    if rule == "latest":
        pos = {o: i for i, o in enumerate(order)}
        priority = sorted(order, key=lambda o: (-prompt_frames[o], pos[o]))
    else:
        priority = list(order)
    out: dict[str, np.ndarray] = {}
    taken: np.ndarray | None = None
    for o in priority:
        m = np.asarray(masks[o], dtype=bool)
        if taken is None:
            taken = np.zeros(m.shape, dtype=bool)
        m = m & ~taken
        taken |= m
        out[o] = m
    return {o: out[o] for o in order}


def model_object_ids(objects: Sequence[str]) -> list[int]:
    """The integer object ids SAM 2-style predictors track: the benchmark's own ids when they are distinct integers
    (vos_inference.py uses the palette ids and tracks them in ascending order), else 1..K in the benchmark's order."""
    try:
        ids = [int(o) for o in objects]
    except ValueError:
        return list(range(1, len(objects) + 1))
    return ids if len(set(ids)) == len(ids) else list(range(1, len(objects) + 1))


__all__ = ["MERGE_BINARY", "SUPPRESSED", "merge_binary", "model_object_ids", "non_overlap", "scores_to_masks"]
