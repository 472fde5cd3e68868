"""Submission zips for the evaluation servers: MeViS and Ref-YouTube-VOS (CodaLab); DAVIS is delegated.

Formats (``docs/protocols.md`` #mevis, #refytvos, #refdavis_a; the dataset cards' ``submission`` entries):

* ``"mevis"`` -- henghuiding/MeViS valid server (CodaLab competition 15094): ``<video>/<exp_id>/<frame>.png``
  at the zip root, no top folder; one ``'L'`` PNG with values 0 / 255 per listed frame of every expression.
* ``"refytvos"`` -- Ref-YouTube-VOS valid server (CodaLab competition 3282): the same below ``Annotations/``.
* ``"davis"`` -- palette PNGs (Ref-DAVIS17 convention A, MOSE v1 / v2), written by
  :func:`refbench.export.davis.export_davis`.
* ``"ytvos"`` -- YouTube-VOS (2019 valid, CodaLab competition 6066): the same palette PNGs below ``Annotations/``,
  written by :func:`refbench.export.vos.export_ytvos`.

A zip holds **exactly** the frames the server expects: every frame listed for every sample of the card's
loader, and nothing else. Masks have the frame's size: the sample's ``height`` / ``width`` when the meta has
them, else the first JPEG header of the video, else the prediction's own size, else (splits with public GT)
the ground truth's. Any non-zero predicted value is foreground, as the official scorers read PNGs
(``cv2.imread(p, cv2.IMREAD_GRAYSCALE)``), and is written as 255.

The zip is deterministic -- same predictions, byte-identical zip, whatever the source format (PNG folder, zip,
RLE JSON): entries sorted, no directory entries, fixed timestamp (``1980-01-01 00:00:00``), permissions and
creator system, ``ZIP_DEFLATED`` at the default level, PNGs encoded by Pillow with a fixed
``compress_level`` and no metadata. It is written to a temporary file beside ``out`` and moved into place with
:func:`os.replace`, so a failed export leaves nothing behind and never a half-written zip.
"""

from __future__ import annotations

import inspect
import io
import os
import tempfile
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar, Union

import numpy as np

from refbench.data.base import DatasetError, PredictionError
from refbench.preds.masks import missing_error

#: how to go on when predictions are missing (the exporters' missing="empty")
_EMPTY_HINT = "(--missing empty writes them as empty masks)"

PathLike = Union[str, os.PathLike]
Progress = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")

#: Submission formats: MeViS zip root, Ref-YouTube-VOS ``Annotations/``, DAVIS palette PNGs, YouTube-VOS palette PNGs
#: below ``Annotations/`` (:mod:`refbench.export.vos`).
FORMATS = ("mevis", "refytvos", "davis", "ytvos")
#: ``"error"``: a missing prediction raises; ``"empty"``: it is written as an empty mask and counted.
MISSING_MODES = ("error", "empty")
#: Every zip entry gets this timestamp (the earliest a zip can store), so zips do not depend on the clock.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: zlib level of the PNG encoder (Pillow's default); fixed so that PNG bytes are reproducible.
PNG_COMPRESS_LEVEL = 6

_TOP_FOLDER = {"mevis": "", "refytvos": "Annotations/"}


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote.

    path: the zip; format: one of :data:`FORMATS`; videos / expressions / frames: counts written;
    server: where to upload (the card's ``submission.server``), if known; filled: frames written empty
    because the prediction lacked them (``missing="empty"`` only).
    """

    path: Path
    format: str
    videos: int
    expressions: int
    frames: int
    server: str | None
    filled: int = 0


# ----------------------------------------------------------------------------------------------
# Building blocks (also usable by other exporters)
# ----------------------------------------------------------------------------------------------


def encode_png(mask: np.ndarray, palette: Sequence[int] | None = None) -> bytes:
    """PNG bytes of an ``(H, W)`` uint8 array, reproducibly: an ``'L'`` PNG, or a ``'P'`` PNG with
    ``palette`` (a flat list of up to 768 RGB values); fixed zlib level, no metadata chunks."""
    from PIL import Image

    arr = np.ascontiguousarray(mask, dtype=np.uint8)
    if arr.ndim != 2:
        raise ValueError(f"encode_png: expected an (H, W) array, got shape {arr.shape}")
    im = Image.fromarray(arr, mode="L") if palette is None else Image.fromarray(arr, mode="P")
    if palette is not None:
        im.putpalette(list(palette))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def binary_png(mask: np.ndarray) -> bytes:
    """The server encoding of one mask: ``'L'`` PNG, 255 where ``mask`` is non-zero, else 0."""
    return encode_png(np.where(np.asarray(mask) != 0, np.uint8(255), np.uint8(0)))


def safe_entry_name(name: str) -> str:
    """A zip entry name that cannot escape the extraction folder: relative, ``/``-separated, no empty,
    ``.`` or ``..`` component, no backslash, NUL or drive letter. Returns ``name``; raises ValueError."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or (len(name) > 1 and name[1] == ":")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(f"unsafe zip entry name {name!r} (empty, absolute, '..' or '.' component, or backslash)")
    return name


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever the platform, so the header bytes do not vary
    info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
    return info


def write_zip(out: PathLike, entries: Iterable[tuple[str, bytes]], overwrite: bool = False) -> int:
    """Write ``(name, data)`` entries, in the order given, to the zip ``out`` atomically and reproducibly.

    The zip is built in a temporary file in ``out``'s folder and moved onto ``out`` only when every entry is
    written; on any error the temporary file is removed and ``out`` is untouched. Refuses an existing ``out``
    unless ``overwrite``, unsafe names (:func:`safe_entry_name`) and duplicates. Returns the entry count.
    """
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a folder; give the path of the .zip to write")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --overwrite to replace it)")
    folder = out.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: output folder does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    n = 0
    try:
        seen: set[str] = set()
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                safe_entry_name(name)
                if name in seen:
                    raise ValueError(f"{out}: duplicate zip entry {name!r}")
                seen.add(name)
                zf.writestr(_zip_info(name), data)
                n += 1
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    return n


def ordered_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, yielding results in input order with at most
    ``2 * workers`` results pending (bounded memory). The first exception is raised; the rest is cancelled."""
    if workers <= 1:
        for x in items:
            yield fn(x)
        return
    window: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for x in items:
                window.append(pool.submit(fn, x))
                if len(window) >= 2 * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()


# ----------------------------------------------------------------------------------------------
# Frame sizes
# ----------------------------------------------------------------------------------------------


def prediction_size(source: Any, video: str, exp_id: str | None, frames: Sequence[str]) -> tuple[int, int] | None:
    """(H, W) of the first stored prediction of one sample (``MaskSource.frame_size``); None when the source
    holds none for it or cannot tell."""
    own = getattr(source, "frame_size", None)
    size = own(video, exp_id, frames) if callable(own) else None
    return (int(size[0]), int(size[1])) if size else None


def _video_size(loader: Any, source: Any, group: Sequence[Any]) -> tuple[int, int]:
    """(H, W) of one video's frames (module doc for the order of the sources asked)."""
    from refbench.data.mevis import image_size

    for s in group:
        if getattr(s, "height", None) and getattr(s, "width", None):
            return int(s.height), int(s.width)
    first = group[0]
    frame_paths = getattr(loader, "frame_paths", None)
    tried: list[str] = []
    if callable(frame_paths):
        paths = frame_paths(first)
        if paths and Path(paths[0]).parent.is_dir():
            path = next((Path(p) for p in paths if Path(p).is_file()), None)
            if path is not None:
                return image_size(path)
        if paths:
            tried.append(f"no frame at {paths[0]}")
    for s in group:
        size = prediction_size(source, s.video, getattr(s, "exp_id", None), s.frames)
        if size:
            return size
    tried.append("no stored prediction")
    if getattr(loader, "has_gt", False) and callable(getattr(loader, "gt_masks", None)):
        gt = loader.gt_masks(first)
        return int(gt.shape[1]), int(gt.shape[2])
    raise DatasetError(f"cannot tell the frame size of video {first.video!r}: {', '.join(tried)}, and the ground "
                       "truth is not public (put the JPEG frames under the data root)")


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------


def _is_source(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("status", "read", "check_known", "missing_report"))


def _export_davis(card: Any, loader: Any, pred: Any, out: Path, missing: str, overwrite: bool) -> ExportReport:
    try:
        from refbench.export.davis import export_davis
    except ModuleNotFoundError as exc:
        if exc.name != "refbench.export.davis":
            raise
        raise ValueError("davis export needs refbench.export.davis") from exc
    samples = loader.samples()
    per_expression = bool(samples) and hasattr(samples[0], "exp_id")
    kwargs = {"overwrite": overwrite} if "overwrite" in inspect.signature(export_davis).parameters else {}
    if _is_source(pred):
        return export_davis(card, loader, pred, out, missing, **kwargs)
    from refbench.preds.masks import open_mask_source

    if per_expression:
        keys = {s.key: (s.video, s.exp_id) for s in samples}
        source = open_mask_source(pred, "expression", "grey", keys)
    else:
        source = open_mask_source(pred, "sequence", "index")
    with source:
        return export_davis(card, loader, source, out, missing, **kwargs)


def export_submission(
    dataset: Any,
    pred: PathLike | Any,
    out: PathLike,
    fmt: str | None = None,
    root: PathLike | None = None,
    missing: str = "error",
    overwrite: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Write the server submission zip of predictions ``pred`` for dataset ``dataset``.

    dataset: a dataset card name (or a :class:`refbench.cards.DatasetCard`).
    pred: a PNG folder ``<video>/<exp_id>/<frame>.png``, a zip of one, a Sa2VA-style RLE JSON
        (:mod:`refbench.preds.masks`), or an open :class:`~refbench.preds.masks.MaskSource` (any object with
        its interface; left open).
    out: the zip to write (its folder must exist); an existing file is refused unless ``overwrite``.
    fmt: one of :data:`FORMATS`; default ``card.submission["format"]``.
    root: the data root (default: the card's, below ``$REFBENCH_DATA``).
    missing: ``"error"`` (default: raise :class:`PredictionError` listing what is missing) or ``"empty"``
        (write empty masks, counted in ``ExportReport.filled``).
    workers: PNG encoding threads (default ``min(8, CPUs)``); progress: ``callable(n_done, n_total)`` per sample.
    """
    from refbench.cards import DatasetCard, dataset_card

    card = dataset if isinstance(dataset, DatasetCard) else dataset_card(dataset)
    submission = card.submission or {}
    if fmt is None:
        fmt = submission.get("format")
        if fmt is None:
            raise ValueError(f"{card.name}: the card names no submission format; pass --format, one of {', '.join(FORMATS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown submission format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_MODES)}, got {missing!r}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --overwrite to replace it)")
    if not _is_source(pred):
        if not isinstance(pred, (str, os.PathLike)):
            raise TypeError(f"pred must be a path or a MaskSource, got {type(pred).__name__}")
        if not Path(pred).exists():
            raise PredictionError(f"{pred}: predictions not found")
    loader = card.open(root)
    if fmt == "davis":
        return _export_davis(card, loader, pred, out, missing, overwrite)
    if fmt == "ytvos":
        from refbench.export.vos import export_ytvos

        return export_ytvos(card, loader, pred, out, missing, overwrite)

    samples = list(loader.samples())
    if not samples:
        raise DatasetError(f"{card.name}: the dataset lists no expressions")
    if not hasattr(samples[0], "exp_id"):
        raise ValueError(f"{card.name}: format {fmt!r} writes one folder per expression, but the dataset has "
                         "sequences (use fmt='davis')")
    keys = {s.key: (s.video, s.exp_id) for s in samples}
    known: dict[str, set[str]] = {}
    for s in samples:
        known.setdefault(s.video, set()).add(s.exp_id)

    if _is_source(pred):
        source, owned, where = pred, False, getattr(pred, "path", type(pred).__name__)
    else:
        from refbench.preds.masks import open_mask_source

        source, owned, where = open_mask_source(pred, "expression", "grey", keys), True, pred
    try:
        if getattr(source, "layout", "expression") != "expression":
            raise PredictionError(f"{where}: format {fmt!r} needs per-expression predictions "
                                  f"(<video>/<exp_id>/<frame>.png), got the {source.layout!r} layout")
        source.check_known(known)
        if missing == "error":
            err = missing_error(source, samples, where, _EMPTY_HINT)
            if err is not None:
                raise err
        top = _TOP_FOLDER[fmt]
        # entries sorted: samples by their folder name, frames by file name
        order = sorted(samples, key=lambda s: f"{s.video}/{s.exp_id}/")
        groups: dict[str, list[Any]] = {}
        for s in samples:
            groups.setdefault(s.video, []).append(s)
        sizes = {video: _video_size(loader, source, group) for video, group in groups.items()}
        empty_png: dict[tuple[int, int], bytes] = {}

        def encode(s: Any) -> tuple[list[tuple[str, bytes]], int]:
            size = sizes[s.video]
            st = source.status(s.video, s.exp_id, s.frames)
            filled = len(s.frames) if not (st.video_present and st.expression_present) else len(st.missing_frames)
            if filled and missing == "error":  # the source changed since the check, or reports inconsistently
                raise PredictionError(f"{where}: predictions missing for {s.key}")
            masks = source.read(s.video, s.exp_id, s.frames, size, fill_missing=bool(filled))
            if tuple(masks.shape) != (len(s.frames), *size):
                raise PredictionError(f"{where}: {s.key}: read {tuple(masks.shape)} masks, expected "
                                      f"{(len(s.frames), *size)}")
            entries = []
            for t, frame in enumerate(s.frames):
                m = masks[t]
                if m.any():
                    data = binary_png(m)
                else:
                    data = empty_png.get(size) or empty_png.setdefault(size, binary_png(m))
                entries.append((f"{top}{s.video}/{s.exp_id}/{frame}.png", data))
            entries.sort(key=lambda e: e[0])
            return entries, filled

        n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        stats = {"filled": 0, "done": 0}

        def stream() -> Iterator[tuple[str, bytes]]:
            for entries, filled in ordered_map(encode, order, n_workers):
                stats["filled"] += filled
                stats["done"] += 1
                if progress is not None:
                    progress(stats["done"], len(order))
                yield from entries

        n = write_zip(out, stream(), overwrite=overwrite)
    finally:
        if owned:
            source.close()
    return ExportReport(path=out, format=fmt, videos=len(groups), expressions=len(samples), frames=n,
                        server=submission.get("server"), filled=stats["filled"])


__all__ = [
    "FORMATS",
    "MISSING_MODES",
    "ExportReport",
    "binary_png",
    "encode_png",
    "export_submission",
    "ordered_map",
    "prediction_size",
    "safe_entry_name",
    "write_zip",
]
