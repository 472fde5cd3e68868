"""Video mask predictions: PNG folders, zips of them, and RLE JSON files, read lazily per sample.

Accepted shapes (``open_mask_source`` picks the reader from the path):

* **PNG folder, expression layout** (MeViS / ReVOS / Ref-DAVIS17 convention B submissions;
  henghuiding/MeViS ``tools/eval_mevis.py`` and cilinyan/VISA ``tools/eval_revos.py`` read
  ``<pred>/<video>/<exp_id>/<frame>.png``): one grey PNG per listed frame, read as the official scripts read
  it (``cv2.imread(p, cv2.IMREAD_GRAYSCALE)``): an ``'L'`` PNG as is, other modes converted to grey as OpenCV
  converts them (:mod:`refbench.png_decode` reads masks fast with the same values); any non-zero value is foreground for J and F, the raw values are kept for ReVOS's A and R. Nested video names
  (ReVOS ``UVO/all/<id>``) are nested folders. A single top folder ``Annotations/`` (the Ref-YouTube-VOS
  submission zip) is stepped into.
* **PNG folder, sequence layout** (DAVIS-2017 / MOSE; davis2017-evaluation ``davis2017/results.py``
  ``Results._read_mask``: ``np.array(Image.open(p))``): ``<pred>/<seq>/<frame>.png`` palette PNGs read as
  palette **indices**, never colours (an RGB PNG is refused).
* **Zip** of either layout: members are read directly with :mod:`zipfile` (nothing is extracted); a member
  whose name has a ``..`` component, is absolute or holds a backslash is refused.
* **RLE JSON** (Sa2VA-style; expression layout only): ``{"<video>": {"<exp_id>": [RLE or null per frame]}}``
  or flat ``{"<video>_<exp_id>": [...]}``; each RLE is COCO ``{"size": [H, W], "counts": str}`` (a list of
  ints as ``counts`` is taken as an uncompressed RLE); ``null`` is an empty mask for that frame. The list is
  aligned with the dataset's frames for that expression and must have exactly that length. Decoded masks are
  0/1 (so ReVOS's A and R see binary values, the ``expected_binary.json`` case).
* **RLE JSON, sequence layout** (DAVIS-2017 / MOSE): ``{"<seq>": {"<object id>": [RLE or null per frame]}}``,
  object ids 1-254 as strings; each frame's index map paints every object's mask with its id. Two objects on
  one pixel are refused (a palette PNG cannot hold both, so the official reader never sees an overlap).
* **Frame-keyed RLE JSON** (every VOS protocol; what ``refbench run`` writes for the ``vos`` task):
  ``{"<video>": {"<object id>": {"<frame>": RLE or null}}}`` (:mod:`refbench.preds.vos_json`).

The scorers of J and F take masks as bit-packed words (:meth:`MaskSource.read_packed`): PNG frames are
packed as they are decoded, RLE frames are decoded straight into words (:func:`refbench.rle.decode_rle_words`).
An RLE JSON file is indexed, not held (:mod:`refbench.preds.json_index`): each expression's list is parsed
when it is read. Sources opened before a scoring process forks are reopened in it (:meth:`after_fork`).

Every problem raises :class:`refbench.data.base.PredictionError` naming the file (and zip member): a wrong
frame size, an unreadable PNG, malformed JSON, ids that are not in the dataset, unsafe path components.
What is *missing* (a whole video, an expression, single frames) is reported by :meth:`MaskSource.status`
and :meth:`MaskSource.missing_report`; the evaluator decides what a missing prediction means.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np

from refbench.data.base import PredictionError, safe_component
from refbench.files import load_json, open_regular
from refbench.png import MAX_FRAME_PIXELS, max_png_bytes, png_size, walk_png
from refbench.rle import decode_rle, decode_rle_words, rle_size

PathLike = Union[str, Path]

#: ``"expression"``: ``<video>/<exp_id>/<frame>.png``; ``"sequence"``: ``<seq>/<frame>.png`` (DAVIS).
LAYOUTS = ("expression", "sequence")
_IGNORED_TOP = ("__MACOSX",)


@dataclass(frozen=True)
class SampleStatus:
    """What a source holds for one sample: whether its video / expression exist and which frames lack."""

    video_present: bool
    expression_present: bool
    missing_frames: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.video_present and self.expression_present and not self.missing_frames


@dataclass
class MissingReport:
    """Missing predictions over a list of samples.

    videos: videos with nothing predicted; expressions: sample keys whose expression is absent while the
    video exists; frames: ``{sample key: [frame names]}`` for partially predicted samples.
    """

    videos: list[str] = field(default_factory=list)
    expressions: list[str] = field(default_factory=list)
    frames: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.videos or self.expressions or self.frames)

    def summary(self, limit: int = 5) -> str:
        """One line: counts and the first few names of each kind."""
        parts = []
        if self.videos:
            parts.append(f"{len(self.videos)} video(s) missing: {', '.join(self.videos[:limit])}"
                         + (" ..." if len(self.videos) > limit else ""))
        if self.expressions:
            parts.append(f"{len(self.expressions)} expression(s) missing: {', '.join(self.expressions[:limit])}"
                         + (" ..." if len(self.expressions) > limit else ""))
        if self.frames:
            n = sum(len(v) for v in self.frames.values())
            ex = [f"{k}/{v[0]}" for k, v in list(self.frames.items())[:limit]]
            parts.append(f"{n} frame(s) missing in {len(self.frames)} sample(s), e.g. {', '.join(ex)}")
        return "; ".join(parts) if parts else "nothing missing"


def _of(dataset: Any) -> str:
    """`` (<dataset file>)`` for messages about ids that do not match the dataset, so they name both files."""
    return f" ({dataset})" if dataset else ""


def _check_video_name(video: str, source: PathLike) -> str:
    """Video names may be nested (ReVOS ``UVO/all/<id>``); each component must be a safe name."""
    if not isinstance(video, str) or not video or video.startswith("/"):
        raise PredictionError(f"{source}: video {video!r} is not a valid name")
    for part in video.split("/"):
        safe_component(part, "video name component", source)
    return video


def _indices(im: Any, where: str) -> np.ndarray:
    """Palette indices of a 'P' PNG (or the values of an 'L' / '1' PNG), as davis2017 reads them."""
    if im.mode not in ("P", "L", "1"):
        raise PredictionError(
            f"{where}: DAVIS predictions must be indexed ('P') or grey ('L') PNGs holding object ids, found mode "
            f"{im.mode!r} (colours are not read as ids)"
        )
    arr = np.array(im)
    return arr.astype(np.uint8, copy=False)


def decode_png(data: bytes, where: str, values: str = "grey", size: Sequence[int] | None = None) -> np.ndarray:
    """Decode PNG bytes to (H, W) uint8 as the official reader does; ``values``: ``"grey"`` (MeViS / ReVOS:
    ``cv2.imread(p, cv2.IMREAD_GRAYSCALE)``) or ``"index"`` (DAVIS: ``np.array(Image.open(p))``, indexed or
    grey PNGs only).

    ``size``: the frame size ``(H, W)`` the dataset expects. The PNG's chunks and declared size are checked
    first (:func:`refbench.png.walk_png`), so a corrupt file or one declaring another size is refused before
    anything is inflated. Masks then take the fast path of :mod:`refbench.png_decode` (libdeflate and
    vectorised filters, the same values); every other PNG is read by the official reader itself."""
    from refbench.png_decode import decode_fast

    chunks = walk_png(data, where, size, PredictionError)[2]
    arr = decode_fast(data, values, chunks)
    if arr is not None:
        return arr
    if values == "index":
        return _decode_png_pil(data, where)
    import cv2

    try:
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    except cv2.error as exc:
        raise PredictionError(f"{where}: cannot read PNG ({exc})") from exc
    if arr is None:
        raise PredictionError(f"{where}: cannot read PNG (OpenCV could not decode it)")
    return arr


def _decode_png_pil(data: bytes, where: str) -> np.ndarray:
    """``np.array(Image.open(...))`` of a checked PNG, indexed or grey only (DAVIS)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise PredictionError(f"{where}: not a PNG file (format {im.format})")
            im.load()
            arr = _indices(im, where)
    except PredictionError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PredictionError(f"{where}: cannot read PNG ({exc})") from exc
    if arr.ndim != 2:
        raise PredictionError(f"{where}: expected a single-channel PNG, got shape {arr.shape}")
    return arr


def _rle_frames(path: Path, label: str, rles: list, frames: Sequence[str], size: tuple[int, int]):
    """Yield ``(t, mask, where)`` for every non-null RLE of a per-frame list, each checked
    (:func:`refbench.rle.check_rle`: well-formed counts adding up to H x W, the frame's size) before decoding."""
    if len(rles) != len(frames):
        raise PredictionError(f"{path}: {label} has {len(rles)} RLE entries, the dataset {len(frames)} frames")
    for t, rle in enumerate(rles):
        if rle is None:
            continue
        where = f"{path}: {label} frame {t} ({frames[t]})"
        yield t, decode_rle(rle, where, size, PredictionError), where


def _rle_words(path: Path, label: str, rles: list, frames: Sequence[str], size: tuple[int, int],
               out: np.ndarray) -> None:
    """The frames of a per-frame RLE list as words into ``out`` ((T, H, ceil(W / 64)) uint64, zeros where the
    entry is null), each RLE checked as :func:`_rle_frames` checks it."""
    if len(rles) != len(frames):
        raise PredictionError(f"{path}: {label} has {len(rles)} RLE entries, the dataset {len(frames)} frames")
    for t, rle in enumerate(rles):
        if rle is not None:
            decode_rle_words(rle, f"{path}: {label} frame {t} ({frames[t]})", size, PredictionError, out=out[t])


def _first_rle_size(path: Path, video: str, lists: Iterable[list]) -> tuple[int, int] | None:
    """(H, W) of the first RLE with a ``size`` in per-frame RLE lists; None when every entry is null."""
    for rles in lists:
        for t, rle in enumerate(rles):
            if rle is not None:
                return rle_size(rle, f"{path}: {video} frame {t}", PredictionError)
    return None


class MaskSource(ABC):
    """Per-sample reader of predicted masks (see the module doc for the formats).

    ``video`` is the dataset's video (or DAVIS sequence) name; ``exp_id`` the expression id, or None in the
    sequence layout.
    """

    path: Path
    layout: str

    @abstractmethod
    def status(self, video: str, exp_id: str | None, frames: Sequence[str]) -> SampleStatus:
        """What is present for one sample (listing only; nothing is decoded)."""

    @abstractmethod
    def read(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        """(T, H, W) uint8 masks of ``frames``; a missing frame raises unless ``fill_missing`` (zeros)."""

    def read_packed(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        """The masks of :meth:`read` as the scorers' words: (T, H, ceil(W / 64)) uint64, bit x % 64 of word
        x // 64 set where the value is non-zero (:func:`refbench.metrics._bits.pack_numpy`). Sources that can
        decode straight into words override this."""
        from refbench.metrics._bits import pack_numpy

        return pack_numpy(self.read(video, exp_id, frames, size, fill_missing))

    def iter_frames(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> Iterator[np.ndarray | None]:
        """The frames of :meth:`read` one at a time, (H, W) uint8 each, None for a missing frame filled with
        zeros (``fill_missing``); the same checks and errors. Sources that can read frame by frame override
        this so that no (T, H, W) array is built."""
        yield from self.read(video, exp_id, frames, size, fill_missing)

    def after_fork(self) -> None:
        """In a forked scoring process: reopen what must not be shared with the parent (file offsets)."""

    @abstractmethod
    def check_known(self, known: Mapping[str, Iterable[str] | None], dataset: Any = None) -> None:
        """Raise PredictionError if the source holds videos / expressions not in ``known``
        (``{video: exp_ids}``; ``None`` as exp_ids in the sequence layout); ``dataset`` (its annotation file) is
        named in the message."""

    def missing_report(self, samples: Iterable[Any]) -> MissingReport:
        """Missing videos, expressions and frames over ``samples`` (objects with ``video``, ``frames`` and,
        in the expression layout, ``exp_id`` and ``key``)."""
        rep = MissingReport()
        seen_videos: set[str] = set()
        for s in samples:
            exp_id = getattr(s, "exp_id", None) if self.layout == "expression" else None
            key = getattr(s, "key", s.video) if exp_id is not None else s.video
            st = self.status(s.video, exp_id, s.frames)
            if not st.video_present:
                if s.video not in seen_videos:
                    rep.videos.append(s.video)
                    seen_videos.add(s.video)
            elif not st.expression_present:
                rep.expressions.append(key)
            elif st.missing_frames:
                rep.frames[key] = list(st.missing_frames)
        return rep

    def frame_size(self, video: str, exp_id: str | None, frames: Sequence[str]) -> tuple[int, int] | None:
        """(H, W) of the first stored prediction of one sample (a PNG header or an RLE ``size``); None when the
        source holds none for it. Exporters use it when the dataset cannot tell a frame's size."""
        return None

    def describe(self, video: str, exp_id: str | None, frame: str) -> str:
        """Where the prediction of one frame is (or would be) stored, for messages."""
        return f"{self.path}: {video}/{exp_id}/{frame}" if exp_id is not None else f"{self.path}: {video}/{frame}"

    def close(self) -> None:
        """Release open files (zips)."""

    def __enter__(self) -> "MaskSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# PNG trees: a folder or a zip
# ----------------------------------------------------------------------------------------------


class _PngTree(MaskSource):
    """Common part of folder and zip: a listing of relative PNG paths below a base prefix."""

    def __init__(self, path: Path, layout: str, values: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
        self.path = path
        self.layout = layout
        self.values = values
        files = self._list()  # relative POSIX paths of every file
        tops = {f.split("/", 1)[0] for f in files if "/" in f and f.split("/", 1)[0] not in _IGNORED_TOP}
        self.base = "Annotations/" if tops == {"Annotations"} else ""
        self._pngs: set[str] = {
            f[len(self.base):] for f in files if f.startswith(self.base) and f.lower().endswith(".png")
            and f.split("/", 1)[0] not in _IGNORED_TOP
        }
        self._dirs: set[str] = set()
        for f in self._pngs:
            parts = f.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                self._dirs.add("/".join(parts[:i]))

    @abstractmethod
    def _list(self) -> list[str]: ...

    @abstractmethod
    def _read_bytes(self, rel: str, limit: int) -> bytes:
        """The file's bytes; more than ``limit`` is a PredictionError (read no more than that)."""

    @abstractmethod
    def _read_head(self, rel: str, n: int) -> bytes:
        """The file's first ``n`` bytes (a PNG header)."""

    @abstractmethod
    def _where(self, rel: str) -> str: ...

    def _folder(self, video: str, exp_id: str | None) -> str:
        _check_video_name(video, self.path)
        if self.layout == "expression":
            if exp_id is None:
                raise ValueError("the expression layout needs an exp_id")
            return f"{video}/{safe_component(exp_id, 'expression id', self.path)}"
        return video

    def status(self, video: str, exp_id: str | None, frames: Sequence[str]) -> SampleStatus:
        folder = self._folder(video, exp_id)
        if video not in self._dirs:
            return SampleStatus(False, False, tuple(frames))
        if folder not in self._dirs:
            return SampleStatus(True, False, tuple(frames))
        missing = tuple(f for f in frames if f"{folder}/{safe_component(f, 'frame name', self.path)}.png" not in self._pngs)
        return SampleStatus(True, True, missing)

    def read(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        folder = self._folder(video, exp_id)
        out = np.zeros((len(frames), *size), dtype=np.uint8)
        for t, frame in enumerate(frames):
            rel = f"{folder}/{safe_component(frame, 'frame name', self.path)}.png"
            if rel not in self._pngs:
                if fill_missing:
                    continue
                raise PredictionError(f"{self._where(rel)}: prediction PNG missing")
            where = self._where(rel)
            # the PNG's declared size is checked against the frame's before anything is inflated
            out[t] = decode_png(self._read_bytes(rel, max_png_bytes(*size)), where, self.values, size)
        return out

    def iter_frames(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> Iterator[np.ndarray | None]:
        folder = self._folder(video, exp_id)
        limit = max_png_bytes(*size)
        for frame in frames:
            rel = f"{folder}/{safe_component(frame, 'frame name', self.path)}.png"
            if rel not in self._pngs:
                if fill_missing:
                    yield None
                    continue
                raise PredictionError(f"{self._where(rel)}: prediction PNG missing")
            yield decode_png(self._read_bytes(rel, limit), self._where(rel), self.values, size)

    def read_packed(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        """As :meth:`read`, packed frame by frame (no (T, H, W) array is built)."""
        from refbench.metrics._bits import n_words, pack_numpy

        folder = self._folder(video, exp_id)
        out = np.zeros((len(frames), size[0], n_words(size[1])), dtype=np.uint64)
        limit = max_png_bytes(*size)
        for t, frame in enumerate(frames):
            rel = f"{folder}/{safe_component(frame, 'frame name', self.path)}.png"
            if rel not in self._pngs:
                if fill_missing:
                    continue
                raise PredictionError(f"{self._where(rel)}: prediction PNG missing")
            pack_numpy(decode_png(self._read_bytes(rel, limit), self._where(rel), self.values, size), out=out[t])
        return out

    def frame_size(self, video: str, exp_id: str | None, frames: Sequence[str]) -> tuple[int, int] | None:
        folder = self._folder(video, exp_id)
        for frame in frames:
            rel = f"{folder}/{safe_component(frame, 'frame name', self.path)}.png"
            if rel in self._pngs:
                where = self._where(rel)
                h, w = png_size(self._read_head(rel, 33), where, PredictionError)
                if h * w > MAX_FRAME_PIXELS:
                    raise PredictionError(f"{where}: PNG declares {h}x{w} pixels, more than the "
                                          f"{MAX_FRAME_PIXELS:,} refbench decodes")
                return h, w
        return None

    def describe(self, video: str, exp_id: str | None, frame: str) -> str:
        return self._where(f"{self._folder(video, exp_id)}/{safe_component(frame, 'frame name', self.path)}.png")

    def listed_frames(self, video: str, exp_id: str | None = None) -> list[str]:
        """The frame names (PNG stems, unsorted) stored in one sample's folder, whatever the dataset lists; for
        evaluators that, like MOSE v2's ``score.py``, name frames by their position in the prediction listing."""
        folder = self._folder(video, exp_id) + "/"
        return [f[len(folder):-4] for f in self._pngs
                if f.startswith(folder) and "/" not in f[len(folder):] and not f[len(folder):].startswith(".")]

    def check_known(self, known: Mapping[str, Iterable[str] | None], dataset: Any = None) -> None:
        if self.layout == "expression":
            allowed = {f"{v}/{e}" for v, exps in known.items() for e in (exps or ())}
        else:
            allowed = set(known)
        bad = sorted(f for f in self._pngs if f.rsplit("/", 1)[0] not in allowed or "/" not in f)
        if bad:
            what = "<video>/<exp_id>" if self.layout == "expression" else "<sequence>"
            raise PredictionError(
                f"{self._where(bad[0])}: not under a {what} folder of the dataset{_of(dataset)} ({len(bad)} such PNG "
                "file(s); "
                "unknown video or expression id, or a different folder layout)"
            )


class PngFolderSource(_PngTree):
    """PNGs below a folder: ``<video>/<exp_id>/<frame>.png`` or ``<seq>/<frame>.png``."""

    def __init__(self, path: PathLike, layout: str = "expression", values: str = "grey") -> None:
        path = Path(path)
        if not path.is_dir():
            raise PredictionError(f"{path}: prediction folder not found")
        super().__init__(path, layout, values)

    def _list(self) -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self.path, followlinks=True):
            rel = Path(dirpath).relative_to(self.path).as_posix()
            prefix = "" if rel == "." else rel + "/"
            out.extend(prefix + f for f in files)
        return out

    def _read_bytes(self, rel: str, limit: int) -> bytes:
        p = self.path / (self.base + rel)
        with open_regular(p, PredictionError, "prediction PNG") as fh:  # a FIFO is refused, never waited on
            try:
                data = fh.read(limit + 1)
            except OSError as exc:
                raise PredictionError(f"{p}: cannot read ({exc.strerror or exc})") from exc
        if len(data) > limit:
            raise PredictionError(f"{p}: {len(data) - 1:,}+ bytes, more than a PNG of the frame's size can hold "
                                  f"({limit:,})")
        return data

    def _read_head(self, rel: str, n: int) -> bytes:
        p = self.path / (self.base + rel)
        with open_regular(p, PredictionError, "prediction PNG") as fh:
            try:
                return fh.read(n)
            except OSError as exc:
                raise PredictionError(f"{p}: cannot read ({exc.strerror or exc})") from exc

    def _where(self, rel: str) -> str:
        return str(self.path / (self.base + rel))


class PngZipSource(_PngTree):
    """The same layouts inside a .zip, read member by member (never extracted)."""

    def __init__(self, path: PathLike, layout: str = "expression", values: str = "grey") -> None:
        path = Path(path)
        fh = open_regular(path, PredictionError, "prediction zip")
        self._fh = fh
        try:
            self._zip = zipfile.ZipFile(fh)
        except (OSError, EOFError, ValueError, NotImplementedError, zipfile.BadZipFile) as exc:
            fh.close()
            raise PredictionError(f"{path}: cannot open zip ({exc})") from exc
        try:
            super().__init__(path, layout, values)
        except BaseException:
            self.close()
            raise

    def _list(self) -> list[str]:
        out = []
        for name in self._zip.namelist():
            parts = name.split("/")
            if (
                "\\" in name
                or name.startswith("/")
                or (len(name) > 1 and name[1] == ":")
                or "\x00" in name
                or any(p in ("..",) for p in parts)
            ):
                raise PredictionError(f"{self.path}: unsafe zip member {name!r} ('..', absolute path or backslash)")
            if not name.endswith("/"):
                out.append("/".join(p for p in parts if p not in ("", ".")))
        if len(set(out)) != len(out):
            seen: set[str] = set()
            dup = next(n for n in out if n in seen or seen.add(n))  # type: ignore[func-returns-value]
            raise PredictionError(f"{self.path}: zip member {dup!r} appears twice (which one is the prediction?)")
        return out

    def _read_bytes(self, rel: str, limit: int) -> bytes:
        member = self.base + rel
        where = f"{self.path}:{member}"
        try:
            info = self._zip.getinfo(member)
            if info.file_size > limit:  # refused before inflating a byte
                raise PredictionError(f"{where}: zip member inflates to {info.file_size:,} bytes, more than a PNG "
                                      f"of the frame's size can hold ({limit:,})")
            with self._zip.open(info) as fh:
                data = fh.read(limit + 1)  # zipfile also stops at the declared size
        except PredictionError:
            raise
        except (KeyError, OSError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, NotImplementedError,
                zlib.error) as exc:
            raise PredictionError(f"{where}: cannot read zip member ({exc})") from exc
        if len(data) > limit:
            raise PredictionError(f"{where}: zip member inflates to more than {limit:,} bytes, more than a PNG of "
                                  "the frame's size can hold")
        return data

    def _read_head(self, rel: str, n: int) -> bytes:
        member = self.base + rel
        try:
            with self._zip.open(member) as fh:
                return fh.read(n)
        except (KeyError, OSError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, NotImplementedError,
                zlib.error) as exc:
            raise PredictionError(f"{self.path}:{member}: cannot read zip member ({exc})") from exc

    def _where(self, rel: str) -> str:
        return f"{self.path}:{self.base + rel}"

    def after_fork(self) -> None:
        """In a forked worker process: open the zip again (a file offset shared with the parent would mix
        their reads). The parent's objects are left alone (closing them here would only close this
        process's copy, but nothing is gained)."""
        fh = open_regular(self.path, PredictionError, "prediction zip")
        self._fh = fh
        self._zip = zipfile.ZipFile(fh)

    def close(self) -> None:
        self._zip.close()
        self._fh.close()  # ZipFile leaves a file object it was given open


# ----------------------------------------------------------------------------------------------
# RLE JSON
# ----------------------------------------------------------------------------------------------


class RleJsonSource(MaskSource):
    """Sa2VA-style RLE JSON (module doc): nested ``{video: {exp_id: [...]}}`` or flat ``{"<video>_<exp_id>": [...]}``.

    ``keys``: the dataset's ``{sample key: (video, exp_id)}``, needed to resolve the flat form (video names
    may contain ``_``).
    """

    layout = "expression"
    _fd: int | None = None  # the indexed file, open for os.pread (subclasses that hold parsed lists have none)

    def __init__(self, path: PathLike, keys: Mapping[str, tuple[str, str]]) -> None:
        from refbench.files import DuplicateKeyError
        from refbench.preds.json_index import JsonShapeError, index_members

        self.path = Path(path)
        self._entries: dict[tuple[str, str], Any] = {}  # a list, or where it lies in the file (json_index)
        self._fd: int | None = None
        try:
            members = index_members(self.path, error=PredictionError, what="prediction file")
        except (JsonShapeError, DuplicateKeyError, RecursionError):
            members = None  # parsed whole: load_json and the shape checks say what is wrong, in their words
        if members is None:  # (or not ASCII)
            self._load_whole(keys)
        else:
            self._index(members, keys)
            self._fd = os.open(self.path, os.O_RDONLY)
        self._videos = {v for v, _ in self._entries}

    _EXPECTED = "expected a non-empty object {video: {exp_id: [RLE|null]}} or {\"<video>_<exp_id>\": [RLE|null]}"

    def _load_whole(self, keys: Mapping[str, tuple[str, str]]) -> None:
        doc = load_json(self.path, PredictionError, "prediction file")
        if not isinstance(doc, dict) or not doc:
            raise PredictionError(f"{self.path}: {self._EXPECTED}")
        if all(isinstance(v, dict) for v in doc.values()):
            for video, exps in doc.items():
                _check_video_name(video, self.path)
                for exp_id, rles in exps.items():
                    safe_component(str(exp_id), "expression id", self.path)
                    self._put((video, str(exp_id)), rles)
        elif all(isinstance(v, list) for v in doc.values()):
            for key, rles in doc.items():
                if key not in keys:
                    raise PredictionError(f"{self.path}: key {key!r} is not a <video>_<exp_id> of the dataset")
                self._put(keys[key], rles)
        else:
            self._mixed()

    def _index(self, members: list, keys: Mapping[str, tuple[str, str]]) -> None:
        """The same checks as :meth:`_load_whole`, on the member index; values stay in the file."""
        top = [m for m in members if len(m.keys) == 1]
        if not top:
            raise PredictionError(f"{self.path}: {self._EXPECTED}")
        kinds = {m.kind for m in top}
        if kinds == {"object"}:
            for m in top:
                _check_video_name(m.keys[0], self.path)
            for m in members:
                if len(m.keys) == 2:
                    safe_component(m.keys[1], "expression id", self.path)
                    self._put((m.keys[0], m.keys[1]), m, m.kind == "list")
        elif kinds == {"list"}:
            for m in top:
                if m.keys[0] not in keys:
                    raise PredictionError(f"{self.path}: key {m.keys[0]!r} is not a <video>_<exp_id> of the dataset")
                self._put(keys[m.keys[0]], m, True)
        else:
            self._mixed()

    def _mixed(self) -> None:
        raise PredictionError(f"{self.path}: mixes the nested {{video: {{exp_id: [...]}}}} and flat "
                              "{\"<video>_<exp_id>\": [...]} forms, or has values that are neither")

    def _put(self, ident: tuple[str, str], rles: Any, is_list: bool | None = None) -> None:
        if not (isinstance(rles, list) if is_list is None else is_list):
            raise PredictionError(f"{self.path}: {ident[0]}/{ident[1]} is not a list of RLE or null per frame")
        self._entries[ident] = rles

    def _rles(self, ident: tuple[str, str]) -> list | None:
        """The per-frame list of one expression (parsed from the file now when it was only indexed)."""
        entry = self._entries.get(ident)
        if entry is None or isinstance(entry, list):
            return entry
        from refbench.preds.json_index import read_value

        try:
            return read_value(self._fd, entry, f"{self.path}: {ident[0]}/{ident[1]}", PredictionError)  # type: ignore[arg-type]
        except OSError as exc:
            raise PredictionError(f"{self.path}: {ident[0]}/{ident[1]}: cannot read ({exc.strerror or exc})") from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def status(self, video: str, exp_id: str | None, frames: Sequence[str]) -> SampleStatus:
        if video not in self._videos:
            return SampleStatus(False, False, tuple(frames))
        if (video, exp_id) not in self._entries:
            return SampleStatus(True, False, tuple(frames))
        return SampleStatus(True, True, ())

    def read(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        rles = self._rles((video, exp_id))  # type: ignore[arg-type]
        out = np.zeros((len(frames), *size), dtype=np.uint8)
        if rles is None:
            if fill_missing:
                return out
            raise PredictionError(f"{self.path}: no prediction for {video}/{exp_id}")
        for t, m, _where in _rle_frames(self.path, f"{video}/{exp_id}", rles, frames, size):
            out[t] = m
        return out

    def read_packed(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        """As :meth:`read`, each frame decoded straight into words (no (T, H, W) array, no dense frame)."""
        from refbench.metrics._bits import n_words

        rles = self._rles((video, exp_id))  # type: ignore[arg-type]
        out = np.zeros((len(frames), size[0], n_words(size[1])), dtype=np.uint64)
        if rles is None:
            if fill_missing:
                return out
            raise PredictionError(f"{self.path}: no prediction for {video}/{exp_id}")
        _rle_words(self.path, f"{video}/{exp_id}", rles, frames, size, out)
        return out

    def frame_size(self, video: str, exp_id: str | None, frames: Sequence[str]) -> tuple[int, int] | None:
        return _first_rle_size(self.path, video, [self._rles((video, exp_id)) or []])  # type: ignore[arg-type]

    def check_known(self, known: Mapping[str, Iterable[str] | None], dataset: Any = None) -> None:
        sets = {v: set(e or ()) for v, e in known.items()}
        for video, exp_id in self._entries:
            if video not in sets:
                raise PredictionError(f"{self.path}: video {video!r} is not in the dataset{_of(dataset)}")
            if exp_id not in sets[video]:
                raise PredictionError(f"{self.path}: expression {video}/{exp_id} is not in the dataset{_of(dataset)}")


class RleSequenceSource(MaskSource):
    """DAVIS / MOSE predictions as RLE JSON, ``{seq: {obj_id: [RLE or null per frame]}}`` (module doc)."""

    layout = "sequence"

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        doc = load_json(self.path, PredictionError, "prediction file")
        if not isinstance(doc, dict) or not doc:
            raise PredictionError(f"{self.path}: expected a non-empty object {{seq: {{obj_id: [RLE|null]}}}}")
        self._seqs: dict[str, dict[int, list]] = {}
        for seq, objs in doc.items():
            _check_video_name(seq, self.path)
            if not isinstance(objs, dict):
                raise PredictionError(f"{self.path}: {seq}: expected {{obj_id: [RLE or null per frame]}}")
            parsed: dict[int, list] = {}
            for oid, rles in objs.items():
                try:
                    k = int(oid)
                except (TypeError, ValueError):
                    k = -1
                if not 1 <= k <= 254 or str(k) != str(oid):
                    raise PredictionError(f"{self.path}: {seq}: object id {oid!r} is not an integer 1-254")
                if not isinstance(rles, list):
                    raise PredictionError(f"{self.path}: {seq}/{oid} is not a list of RLE or null per frame")
                parsed[k] = rles
            self._seqs[seq] = parsed

    def status(self, video: str, exp_id: str | None, frames: Sequence[str]) -> SampleStatus:
        if video not in self._seqs:
            return SampleStatus(False, False, tuple(frames))
        return SampleStatus(True, True, ())

    def read(
        self, video: str, exp_id: str | None, frames: Sequence[str], size: tuple[int, int], fill_missing: bool = False
    ) -> np.ndarray:
        out = np.zeros((len(frames), *size), dtype=np.uint8)
        objs = self._seqs.get(video)
        if objs is None:
            if fill_missing:
                return out
            raise PredictionError(f"{self.path}: no prediction for {video}")
        for oid, rles in sorted(objs.items()):
            for t, m, where in _rle_frames(self.path, f"{video}/{oid}", rles, frames, size):
                fg = m != 0
                clash = fg & (out[t] != 0)
                if clash.any():
                    other = int(out[t][clash][0])
                    raise PredictionError(f"{where}: object {oid} overlaps object {other} on {int(clash.sum())} "
                                          "pixel(s); DAVIS predictions hold one id per pixel")
                out[t][fg] = oid
        return out

    def frame_size(self, video: str, exp_id: str | None, frames: Sequence[str]) -> tuple[int, int] | None:
        return _first_rle_size(self.path, video, self._seqs.get(video, {}).values())

    def check_known(self, known: Mapping[str, Iterable[str] | None], dataset: Any = None) -> None:
        for seq in self._seqs:
            if seq not in known:
                raise PredictionError(f"{self.path}: sequence {seq!r} is not in the dataset{_of(dataset)}")


def missing_error(source: Any, samples: Sequence[Any], where: Any, hint: str,
                  report: MissingReport | None = None) -> PredictionError | None:
    """One error naming the predictions ``source`` lacks for ``samples`` (counts, first names, the first
    missing file), or None when nothing is missing. ``hint`` says how to go on ("(pass missing='empty' ...)");
    ``report``: an already computed :meth:`MaskSource.missing_report`."""
    report = source.missing_report(samples) if report is None else report
    if report.empty:
        return None
    first = ""
    if report.frames:
        key, frames = next(iter(report.frames.items()))
        s = next(x for x in samples if getattr(x, "key", x.video) == key)
        first = f"; first missing file: {source.describe(s.video, getattr(s, 'exp_id', None), frames[0])}"
    return PredictionError(f"{where}: predictions missing: {report.summary()}{first} {hint}")


def open_mask_source(
    path: PathLike,
    layout: str = "expression",
    values: str = "grey",
    keys: Mapping[str, tuple[str, str]] | None = None,
) -> MaskSource:
    """Open a prediction folder, ``.zip`` or ``.json`` (module doc). ``layout``: ``"expression"`` or
    ``"sequence"``; ``values``: ``"grey"`` or ``"index"`` for PNGs; ``keys``: ``{"<video>_<exp_id>":
    (video, exp_id)}`` of the dataset, used by the flat RLE JSON form."""
    path = Path(path)
    if path.is_dir():
        return PngFolderSource(path, layout, values)
    if not path.exists():
        raise PredictionError(f"{path}: predictions not found")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return PngZipSource(path, layout, values)
    if suffix == ".json":
        if values == "index":  # VOS: the frame-keyed form refbench run writes (refbench.preds.vos_json)
            from refbench.preds.vos_json import open_frame_keyed

            keyed = open_frame_keyed(path, layout)
            if keyed is not None:
                return keyed
        if layout == "sequence":
            return RleSequenceSource(path)
        return RleJsonSource(path, keys or {})
    raise PredictionError(f"{path}: expected a folder of PNGs, a .zip or an RLE .json")


__all__ = [
    "LAYOUTS",
    "MaskSource",
    "MissingReport",
    "PngFolderSource",
    "PngZipSource",
    "RleJsonSource",
    "RleSequenceSource",
    "SampleStatus",
    "decode_png",
    "missing_error",
    "open_mask_source",
]
