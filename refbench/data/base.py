"""Cheap sample descriptions shared by every loader.

A sample names what is to be scored (ids, text, frame names and paths, spans); masks and frames are decoded
only when asked, through the loader that produced the sample, so listing a whole benchmark never decodes a
mask and memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refbench.errors import RefbenchInputError


class DatasetError(RefbenchInputError):
    """A dataset on disk is not in the expected layout; the message names the file and the problem."""


class PredictionError(RefbenchInputError):
    """Predictions are missing, malformed or do not fit the dataset; the message names the file."""


@dataclass(frozen=True)
class VideoExpression:
    """One referring expression of a video (MeViS, ReVOS, Ref-YouTube-VOS, Ref-DAVIS17).

    ``frames`` are the frame names in scoring order (e.g. "00000"); ``anno_ids`` the annotation ids whose
    union is the ground truth (empty when the GT is not public or the expression has no target).
    """

    video: str
    exp_id: str
    text: str
    frames: tuple[str, ...]
    anno_ids: tuple[str, ...] = ()
    obj_ids: tuple[int, ...] = ()
    type_id: int | None = None
    height: int | None = None
    width: int | None = None

    @property
    def key(self) -> str:
        """The official per-expression key, ``<video>_<exp_id>``."""
        return f"{self.video}_{self.exp_id}"


@dataclass(frozen=True)
class VideoSequence:
    """One video of a semi-supervised / unsupervised VOS benchmark (DAVIS-2017, MOSE)."""

    video: str
    frames: tuple[str, ...]


@dataclass(frozen=True)
class GroundingQuery:
    """One temporal grounding query: a sentence and its ground-truth span in seconds."""

    qid: str
    video: str
    query: str
    span: tuple[float, float] | None
    duration: float | None = None


@dataclass(frozen=True)
class ImageExpression:
    """One referring sentence on an image (RefCOCO/+/g, ReasonSeg)."""

    sample_id: str
    image_id: str
    file_name: str
    text: str
    height: int
    width: int
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def safe_component(name: str, what: str, source: Path | str) -> str:
    """Reject ids that could escape a folder when used as a path component."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise PredictionError(f"{source}: {what} {name!r} is not a valid name (empty, '..' or a path separator)")
    return name


def read_json_object(path: Path, error: type[ValueError], not_found: str, expected: str) -> dict[str, Any]:
    """Read a JSON file that must hold an object; every failure raises ``error`` naming the file (and the
    line of a syntax error, or a key given twice: :func:`refbench.files.load_json`)."""
    from refbench.files import load_json

    if not path.exists():
        raise error(f"{path}: {not_found}")
    data = load_json(path, error)
    if not isinstance(data, dict):
        raise error(f"{path}: {expected}, got {type(data).__name__}")
    return data
