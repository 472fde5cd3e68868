"""Run in the ``sam`` environment by tests/adapters/test_sam3.py: drives refbench's SAM 3 adapter on demo frames
with a tiny checkpoint and reports, as one JSON line, what the model was asked (every ``Sam3VideoModel.forward``
call: frame index and direction), the raw per-frame instances the adapter merged, its merged masks under both
instance policies, and that refbench's preprocessing equals torchvision's. Usage::

    python tests/adapters/sam3_probe.py CHECKPOINT FRAME_PATH...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(ckpt: str, paths: list[str]) -> dict:
    import numpy as np
    import torch
    import torchvision.transforms as T
    from PIL import Image
    from transformers import Sam3VideoModel

    from refbench.adapters import imaging
    from refbench.adapters.base import Frames, RunContext, VideoRequest
    from refbench.adapters.registry import load_adapter
    from refbench.runs.store import encode_masks

    out: dict = {}
    # refbench's torchvision-free preprocessing against torchvision itself (ReferDINO / MPG-SAM 2 sizes)
    imgs = [Image.open(p).convert("RGB") for p in paths]
    same = {}
    for size in (360, [1024, 1024], [224, 224]):
        tv = T.Compose([T.Resize(size), T.ToTensor(), T.Normalize(imaging.IMAGENET_MEAN, imaging.IMAGENET_STD)])
        same[str(size)] = all(torch.equal(tv(im), imaging.transform(im, size)) for im in imgs[:3])
    out["torchvision_equal"] = same

    calls: list[list] = []
    original = Sam3VideoModel.forward

    def spy(self, inference_session, frame_idx=None, frame=None, reverse=False, **kw):
        calls.append([int(frame_idx), bool(reverse)])
        return original(self, inference_session, frame_idx=frame_idx, frame=frame, reverse=reverse, **kw)

    Sam3VideoModel.forward = spy
    req = VideoRequest("probe/0", "probe", "0", "the red circle", Frames([Path(p).stem for p in paths], paths),
                       (imgs[0].height, imgs[0].width))
    for label, opts in (("both", {}), ("forward_best", {"propagation": "forward"}),
                        ("forward_union", {"propagation": "forward", "instances": "union", "score_threshold": 0.0})):
        calls.clear()
        a, _card = load_adapter("sam3", {"checkpoint": ckpt, "ignore_pins": True, **opts})
        a.setup(RunContext(device="cpu", dataset="demo_mevis_val_u"))
        raw, visited = a._propagate([req.frames.pil(i) for i in range(len(req.frames))], req.text)
        asked = list(calls)
        pred = a.predict_video([req])[0]
        out[label] = {"calls": asked, "visited": visited, "diagnostics": pred.diagnostics,
                      "masks": encode_masks(pred.masks),
                      "raw": [{"object_ids": f["object_ids"], "scores": f["scores"],
                               "masks": encode_masks(f["masks"]) if len(f["object_ids"]) else None} for f in raw],
                      "state": dict(a.fingerprint_state()), "fingerprint": a.fingerprint()}
    Sam3VideoModel.forward = original
    return out


if __name__ == "__main__":  # pragma: no cover - run in the sam environment by a test
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
