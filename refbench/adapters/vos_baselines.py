"""Semi-supervised VOS baselines that need no weights and no pixels.

``first-frame``: each prompted object's mask copied unchanged to every later frame (empty before its prompt frame).
It is the floor that shows how much each benchmark moves: a static object scores 100 and everything the objects do
after their prompt costs points. Where the benchmark holds one id per pixel, an object prompted later overlapping an
older object's copy is resolved by the ``merge`` option (:func:`refbench.adapters.vos_merge.merge_binary`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from refbench.adapters.base import Adapter, VosPrediction, VosRequest
from refbench.adapters.vos_merge import merge_binary


class FirstFrameAdapter(Adapter):
    name = "first-frame"
    tasks = frozenset({"vos"})
    needs_pixels = False

    def predict_vos(self, requests: Sequence[VosRequest]) -> list[VosPrediction]:
        rule = str(self.options.get("merge", "latest"))
        out = []
        for r in requests:
            n = len(r.frames)
            masks: dict[str, np.ndarray] = {}
            for p in r.prompts:
                m = np.zeros((n, *r.size), dtype=bool)
                m[p.frame:] = p.mask()
                masks[p.obj_id] = m
            frames = {p.obj_id: p.frame for p in r.prompts}
            if r.overlap == "exclusive" and len(masks) > 1:
                masks = merge_binary(masks, r.objects, frames, rule)
            out.append(VosPrediction(masks, {"prompt_frames": {o: r.frames.names[t] for o, t in frames.items()},
                                             "merge": rule if r.overlap == "exclusive" else "none (overlap allowed)"}))
        return out


__all__ = ["FirstFrameAdapter"]
