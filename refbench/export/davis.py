"""DAVIS-style palette PNG zips: Ref-DAVIS17 convention A result trees, and DAVIS / MOSE sequence results.

* **Ref-DAVIS17 convention A** (:class:`refbench.data.davis.RefDavisLoader`; wjn922/ReferFormer
  ``inference_davis.py``, commit 9a2d4f65e7da887b5699166be11cb5dbf865957c): per-expression predictions are
  merged per annotator set with :func:`refbench.data.davis.merge_annotator_masks` (label ``i + 1`` for the
  ``i``-th object of the set, the earlier object wins on overlap) and written as
  ``anno_<k>/<video>/<frame>.png`` for k = 0..3 and every listed frame. ReferFormer names the files by frame
  index (``'{:05d}.png'.format(t)``); DAVIS frames are named ``00000, 00001, ...`` so that is the frame name,
  which is what is written here. Each ``anno_<k>`` folder is what ReferFormer's ``eval_davis.py`` (DAVIS
  unsupervised) reads as ``--results_path``; ``refbench eval --protocol davis_unsup`` on a DAVIS-2017 root
  scores it the same way.
* **DAVIS-2017 / MOSE** (:class:`refbench.data.davis.DavisLoader`): sequence predictions
  ``<seq>/<frame>.png`` re-written with their palette indices unchanged, one PNG per listed frame.

PNGs are ``'P'`` mode with the DAVIS palette, the PASCAL VOC colour map that DAVIS annotations carry
(davis2017-evaluation ``davis2017/utils.py::_pascal_color_map``; the palette of the DAVIS annotation PNGs and of
the official result PNGs in ``shared/data/davis_osvos13``): index ``i`` gets, for bit ``j`` of ``i`` taken
three at a time, red from bit ``3j``, green from ``3j + 1`` and blue from ``3j + 2``, placed at bit ``7 - j``
of the channel. The zip is deterministic and written atomically by :func:`refbench.export.zips.write_zip`
(sorted entries, fixed timestamp, temporary file + :func:`os.replace`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from refbench.data.base import DatasetError, PredictionError
from refbench.export.zips import _EMPTY_HINT
from refbench.preds.masks import missing_error

PathLike = Union[str, os.PathLike]

#: ``"official"`` is accepted as ``"empty"``: ReferFormer writes every map and davis2017 stops on a missing file.
MISSING_MODES = ("error", "empty", "official")


def davis_palette() -> list[int]:
    """The 256-colour DAVIS palette (PASCAL VOC colour map) as a flat ``[r0, g0, b0, r1, ...]`` list."""
    idx = np.arange(256, dtype=np.int64)
    rgb = np.zeros((256, 3), dtype=np.int64)
    for j in range(8):
        for c in range(3):
            rgb[:, c] |= ((idx >> (3 * j + c)) & 1) << (7 - j)
    return [int(v) for v in rgb.reshape(-1)]


def _missing_frames(source: Any, sample: Any, exp_id: str | None) -> int:
    st = source.status(sample.video, exp_id, sample.frames)
    if not (st.video_present and st.expression_present):
        return len(sample.frames)
    return len(st.missing_frames)


def _gate(source: Any, samples: list[Any], missing: str) -> None:
    if missing == "error":
        err = missing_error(source, samples, source.path, _EMPTY_HINT)
        if err is not None:
            raise err


def _refdavis_entries(loader: Any, source: Any, missing: str, palette: list[int]) -> tuple[dict[str, bytes], dict]:
    from refbench.export.zips import encode_png

    samples = loader.samples()
    if not samples:
        raise DatasetError(f"{loader.meta_path}: the dataset lists no expressions")
    known: dict[str, set[str]] = {}
    for s in samples:
        known.setdefault(s.video, set()).add(s.exp_id)
    for video, exps in known.items():
        if len(exps) % 4:
            raise DatasetError(f"{loader.meta_path}: video {video!r} has {len(exps)} expressions, not a multiple of "
                               "4 (one per annotator set and object)")
    source.check_known(known)
    _gate(source, samples, missing)
    entries: dict[str, bytes] = {}
    filled = 0
    for video in sorted(loader.videos()):
        h, w = loader.frame_size(video)
        exps = [s for s in samples if s.video == video]
        frames = exps[0].frames if exps else ()
        if not frames:
            raise DatasetError(f"{loader.meta_path}: video {video!r} lists no frames")

        def read(s: Any) -> np.ndarray:
            nonlocal filled
            n_missing = _missing_frames(source, s, s.exp_id)
            filled += n_missing
            return source.read(s.video, s.exp_id, s.frames, (h, w), fill_missing=bool(n_missing))

        maps = loader.merged_sets(video, read, (len(frames), h, w))
        for k, m in maps.items():
            for t, frame in enumerate(frames):
                entries[f"anno_{k}/{video}/{frame}.png"] = encode_png(m[t], palette)
    info = {"videos": len(known), "expressions": len(samples), "filled": filled}
    return entries, info


def _sequence_entries(loader: Any, source: Any, missing: str, palette: list[int]) -> tuple[dict[str, bytes], dict]:
    from refbench.export.zips import encode_png

    from refbench.data.refytvos import read_palette_png

    seqs = loader.samples()
    if not seqs:
        raise DatasetError(f"{type(loader).__name__}: the dataset lists no sequences")
    source.check_known({s.video: None for s in seqs})
    _gate(source, seqs, missing)
    entries: dict[str, bytes] = {}
    filled = 0
    for seq in sorted(seqs, key=lambda s: s.video):
        paths = [p for p in loader.annotation_paths(seq)[:1] if p.is_file()]
        if paths:
            h, w = read_palette_png(paths[0]).shape
        else:
            from refbench.data.mevis import image_size

            jpg = loader.frame_paths(seq)[0]
            if not jpg.is_file():
                raise DatasetError(f"cannot tell the frame size of {seq.video!r}: neither {jpg} nor an annotation")
            h, w = image_size(jpg)
        n_missing = _missing_frames(source, seq, None)
        filled += n_missing
        idx = source.read(seq.video, None, seq.frames, (h, w), fill_missing=bool(n_missing))
        for t, frame in enumerate(seq.frames):
            entries[f"{seq.video}/{frame}.png"] = encode_png(idx[t], palette)
    return entries, {"videos": len(seqs), "expressions": 0, "filled": filled}


def export_davis(card: Any, loader: Any, source: Any, out: PathLike, missing: str = "error",
                 overwrite: bool = False) -> Any:
    """Write the palette PNG zip of ``source``'s predictions to ``out`` (module doc for the two layouts).

    card: the dataset card (gives ``submission.server`` if any; may be None). loader: a ``RefDavisLoader``
    (convention A tree ``anno_<k>/<video>/<frame>.png``) or a ``DavisLoader`` (``<seq>/<frame>.png``).
    source: an open :class:`refbench.preds.masks.MaskSource` (expression layout for Ref-DAVIS17, sequence
    layout with ``values="index"`` for DAVIS / MOSE) or a path, opened here. out: the zip to write (its folder
    must exist; an existing file is refused unless ``overwrite``). missing: ``"error"`` raises
    :class:`PredictionError` listing what is missing; ``"empty"`` (or ``"official"``) writes missing frames as
    empty masks, counted in ``filled`` (frames).
    Returns an :class:`refbench.export.zips.ExportReport` with ``format="davis"``; ``frames`` counts the PNGs
    written (for Ref-DAVIS17: 4 per listed frame).
    """
    from refbench.export.zips import ExportReport, write_zip
    from refbench.preds.masks import MaskSource, open_mask_source

    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_MODES)}, got {missing!r}")
    ref = callable(getattr(loader, "merged_sets", None))
    if not ref and not callable(getattr(loader, "annotation_paths", None)):
        raise DatasetError(f"export_davis needs a RefDavisLoader or a DavisLoader, got {type(loader).__name__}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --overwrite to replace it)")
    owned = not isinstance(source, MaskSource) and isinstance(source, (str, os.PathLike))
    if owned:
        if ref:
            keys = {s.key: (s.video, s.exp_id) for s in loader.samples()}
            source = open_mask_source(source, "expression", "grey", keys)
        else:
            source = open_mask_source(source, "sequence", "index")
    try:
        want = "expression" if ref else "sequence"
        if getattr(source, "layout", want) != want:
            raise PredictionError(f"{source.path}: export_davis for {type(loader).__name__} needs the {want!r} "
                                  f"layout, got {source.layout!r}")
        palette = davis_palette()
        if ref:
            entries, info = _refdavis_entries(loader, source, missing, palette)
        else:
            entries, info = _sequence_entries(loader, source, missing, palette)
    finally:
        if owned:
            source.close()
    n = write_zip(out, ((name, entries[name]) for name in sorted(entries)), overwrite=overwrite)
    submission = getattr(card, "submission", None) or {}
    return ExportReport(path=out, format="davis", videos=info["videos"], expressions=info["expressions"],
                        frames=n, server=submission.get("server"), filled=info["filled"])


__all__ = ["MISSING_MODES", "davis_palette", "export_davis"]
