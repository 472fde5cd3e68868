"""A Python API for notebooks: score in-memory predictions against a dataset card and get pandas DataFrames.

    >>> from refbench.api import score_masks, score_spans, score_res
    >>> per_sample, summary = score_masks("mevis_val_u", {"<video>/<exp_id>": masks_THW_bool, ...}, root="/data/mevis")
    >>> scores = score_spans("charades_sta_test", {"0": (2.5, 9.0), ...})
    >>> scores.summary        # one row per metric: metric, value (percent), dataset, protocol, official name
    >>> scores.per_sample     # the per-sample table (what per_sample.csv holds), indexed by its first column
    >>> scores.per_frame      # with per_frame=True (video datasets): the scorer's per-frame J and F

The predictions are written, in a temporary folder, in the format ``refbench eval`` reads, and scored by
:func:`refbench.evaluate.run.evaluate`, the function behind ``refbench eval``: the numbers are the command's, bit for
bit (tested), with every protocol option (``protocol``, ``missing``, ``device``, ``protocol_args``, ``values``,
``parse_style``, ``subset``, ``unknown``, ``bad_spans``).

Keys:

* RefVOS (``score_masks`` on a refvos card): ``"<video>/<exp_id>"``, the per-sample key ``"<video>_<exp_id>"`` or a
  ``(video, exp_id)`` tuple; value (T, H, W), non-zero = foreground, T = the expression's frames in dataset order.
* VOS (``score_masks`` on a vos card): the sequence name, value (T, H, W) integer object ids (0 background) over the
  sequence's frames; SA-V-style per-object layouts take ``"<video>/<object>"`` keys with binary masks.
* Grounding (``score_spans``): the query id, value ``(start, end)`` in seconds, a ranked list of spans, or None.
* RES (``score_res``): the sample id, value (H, W) non-zero = foreground, or None (no mask).

Importing this module imports neither torch nor pandas; they are imported when a function scores.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping


@dataclass
class Scores:
    """The result of one scoring: DataFrames, the metrics (percent) and the full summary (``summary.json``)."""

    per_sample: Any  # pandas.DataFrame
    summary: Any  # pandas.DataFrame
    per_frame: Any  # pandas.DataFrame or None
    metrics: dict[str, float]
    raw: dict[str, Any]

    def __iter__(self) -> Iterator[Any]:
        """``per_sample, summary = score_masks(...)``."""
        yield self.per_sample
        yield self.summary


def _rle(mask: Any) -> dict[str, Any] | None:
    import numpy as np
    from pycocotools import mask as mu

    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {m.shape}")
    e = mu.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode("ascii")}


def _frames(mask: Any, where: str) -> Any:
    import numpy as np

    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise ValueError(f"{where}: expected (T, H, W) masks, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        raise ValueError(f"{where}: masks must be bool or integer, got {arr.dtype}")
    return arr


def _tables(result: Any, summary: dict[str, Any]) -> Scores:
    import pandas as pd

    per_sample = pd.DataFrame(result.per_sample)
    if len(per_sample.columns):
        per_sample = per_sample.set_index(per_sample.columns[0], drop=False)
    official = (summary.get("details") or {}).get("official") or {}
    names = official.get("metrics") or {}
    summary_df = pd.DataFrame([{"metric": k, "value": v, "dataset": summary["dataset"],
                                "protocol": summary["protocol"], "official": names.get(k)}
                               for k, v in summary["metrics"].items()])
    per_frame = pd.DataFrame(result.per_frame) if result.per_frame is not None else None
    return Scores(per_sample, summary_df, per_frame, dict(summary["metrics"]), summary)


def _score(dataset: str, write: Any, root: Any, per_frame: bool = False, **options: Any) -> Scores:
    from refbench.cards import dataset_card
    from refbench.evaluate.run import evaluate

    card = dataset_card(dataset)
    with tempfile.TemporaryDirectory(prefix="refbench-api-") as tmp:
        pred = write(card, Path(tmp))
        result, summary = evaluate(card.name, pred, root=root, per_frame=per_frame,
                                   **{k: v for k, v in options.items() if v is not None})
    summary["provenance"]["predictions"] = "in-memory (refbench.api)"
    summary["details"]["predictions"] = "in-memory (refbench.api)"
    return _tables(result, summary)


def _refvos_doc(card: Any, root: Any, masks: Mapping[Any, Any]) -> dict[str, Any]:
    loader = card.open(card.resolve_root(root))
    by: dict[Any, tuple[str, str]] = {}
    samples = list(loader.samples())
    pooled = getattr(loader, "pooled_samples", None)
    if callable(pooled):
        samples += list(pooled())
    for s in samples:
        for k in (f"{s.video}/{s.exp_id}", s.key, (s.video, s.exp_id)):
            by.setdefault(k, (s.video, s.exp_id))
    doc: dict[str, dict[str, list]] = {}
    for key, m in masks.items():
        if key not in by:
            raise ValueError(f"{card.name}: {key!r} is not an expression of the dataset (keys: '<video>/<exp_id>')")
        video, exp = by[key]
        arr = _frames(m, f"{video}/{exp}")
        doc.setdefault(video, {})[exp] = [_rle(f) if (f != 0).any() else None for f in arr]
    return doc


_PNG_ONLY = ("sav", "secvos", "lvos", "mosev2")


def _write_vos(card: Any, tmp: Path, masks: Mapping[Any, Any], protocol: str | None) -> Path:
    import numpy as np

    used = protocol or card.protocol
    if used not in _PNG_ONLY:
        doc: dict[str, dict[str, list]] = {}
        for seq, m in masks.items():
            arr = _frames(m, str(seq))
            ids = sorted(int(v) for v in np.unique(arr) if v != 0)
            doc[str(seq)] = {str(k): [_rle(f == k) if (f == k).any() else None for f in arr] for k in ids}
        path = tmp / "predictions.json"
        path.write_text(json.dumps(doc))
        return path
    raise ValueError(f"protocol {used!r} reads PNG trees; write the predictions as PNGs and use refbench eval "
                     "(the API scores VOS id maps as RLE JSON, which DAVIS / MOSE read)")


def score_masks(dataset: str, masks: Mapping[Any, Any], root: Any = None, *, protocol: str | None = None,
                missing: str = "error", device: str = "cpu", per_frame: bool = False, values: str | None = None,
                protocol_args: Mapping[str, Any] | None = None) -> Scores:
    """Score in-memory video masks (RefVOS expressions or VOS id maps) against ``dataset`` at ``root``."""
    from refbench.cards import dataset_card

    card = dataset_card(dataset)
    if card.task not in ("refvos", "vos"):
        raise ValueError(f"score_masks scores video datasets; {card.name} is a {card.task} dataset "
                         f"({'score_spans' if card.task == 'tsg' else 'score_res'})")

    def write(card: Any, tmp: Path) -> Path:
        if card.task == "refvos":
            path = tmp / "predictions.json"
            path.write_text(json.dumps(_refvos_doc(card, root, masks)))
            return path
        return _write_vos(card, tmp, masks, protocol)

    return _score(dataset, write, root, per_frame=per_frame, protocol=protocol, missing=missing, device=device,
                  values=values, protocol_args=dict(protocol_args) if protocol_args else None)


def score_spans(dataset: str, spans: Mapping[Any, Any], root: Any = None, *, protocol: str | None = None,
                missing: str = "error", device: str = "cpu", subset: str | None = None,
                bad_spans: str | None = None) -> Scores:
    """Score in-memory spans ``{query_id: (start, end) | [(start, end), ...] | None}`` (seconds)."""
    from refbench.cards import dataset_card

    card = dataset_card(dataset)
    if card.task != "tsg":
        raise ValueError(f"score_spans scores temporal grounding datasets; {card.name} is a {card.task} dataset")

    def write(card: Any, tmp: Path) -> Path:
        doc: dict[str, Any] = {}
        for qid, sp in spans.items():
            if sp is None:
                doc[str(qid)] = []
            elif len(sp) == 2 and all(isinstance(x, (int, float)) for x in sp):
                doc[str(qid)] = [float(sp[0]), float(sp[1])]
            else:
                doc[str(qid)] = [[float(a), float(b)] for a, b in sp]
        path = tmp / "spans.json"
        path.write_text(json.dumps(doc))
        return path

    return _score(dataset, write, root, protocol=protocol, missing=missing, device=device, subset=subset,
                  bad_spans=bad_spans)


def score_res(dataset: str, masks: Mapping[Any, Any], root: Any = None, *, protocol: str | None = None,
              missing: str = "error", device: str = "cpu", unknown: str | None = None) -> Scores:
    """Score in-memory image masks ``{sample_id: (H, W) mask | None}`` against a RES dataset."""
    from refbench.cards import dataset_card

    card = dataset_card(dataset)
    if card.task != "res":
        raise ValueError(f"score_res scores referring expression segmentation datasets; {card.name} is a "
                         f"{card.task} dataset")

    def write(card: Any, tmp: Path) -> Path:
        path = tmp / "masks.json"
        path.write_text(json.dumps({str(k): (None if m is None else _rle(m)) for k, m in masks.items()}))
        return path

    return _score(dataset, write, root, protocol=protocol, missing=missing, device=device, unknown=unknown)


__all__ = ["Scores", "score_masks", "score_res", "score_spans"]
