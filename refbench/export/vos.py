"""YouTube-VOS submission zips: ``Annotations/<video>/<frame>.png`` palette PNGs for every frame of
``valid/JPEGImages``.

The YouTube-VOS 2019 valid server (CodaLab competition 6066; ychfan/youtube-vos.org ``_pages/dataset/vos.md``
@ 5a7a0c42) scores a zip holding, below a top folder ``Annotations/``, one indexed PNG per frame of each video's
``valid/JPEGImages`` folder (the 6 fps frames), object ids as in the first-appearance annotations. It is the DAVIS
palette zip of :mod:`refbench.export.davis` (same palette, same deterministic bytes) with that top folder; MOSE v1 and
v2 take the DAVIS zip itself (video folders at the root).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

from refbench.data.base import DatasetError, PredictionError

PathLike = Union[str, os.PathLike]

TOP_FOLDER = "Annotations/"


def export_ytvos(card: Any, loader: Any, source: Any, out: PathLike, missing: str = "error",
                 overwrite: bool = False) -> Any:
    """Write the YouTube-VOS zip of ``source``'s sequence predictions (``<seq>/<frame>.png`` indices) to ``out``.

    loader: a sequence loader (``DavisLoader`` or :class:`refbench.data.ytvos.FirstFrameVosLoader`); every frame of
    its samples is written. missing: ``"error"`` or ``"empty"`` (missing frames written empty, counted)."""
    from refbench.export.davis import MISSING_MODES, _sequence_entries, davis_palette
    from refbench.export.zips import ExportReport, write_zip
    from refbench.preds.masks import MaskSource, open_mask_source

    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_MODES)}, got {missing!r}")
    if not callable(getattr(loader, "annotation_paths", None)):
        raise DatasetError(f"the ytvos format needs a sequence loader, got {type(loader).__name__}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite=True to replace it)")
    owned = not isinstance(source, MaskSource) and isinstance(source, (str, os.PathLike))
    if owned:
        source = open_mask_source(source, "sequence", "index")
    try:
        if getattr(source, "layout", "sequence") != "sequence":
            raise PredictionError(f"{source.path}: the ytvos format needs <video>/<frame>.png predictions, got the "
                                  f"{source.layout!r} layout")
        entries, info = _sequence_entries(loader, source, missing, davis_palette())
    finally:
        if owned:
            source.close()
    n = write_zip(out, ((TOP_FOLDER + name, entries[name]) for name in sorted(entries)), overwrite=overwrite)
    submission = getattr(card, "submission", None) or {}
    return ExportReport(path=out, format="ytvos", videos=info["videos"], expressions=0, frames=n,
                        server=submission.get("server"), filled=info["filled"])


__all__ = ["TOP_FOLDER", "export_ytvos"]
