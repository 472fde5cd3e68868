"""``refbench datasets check``: a loader's own checks, the media on disk and the card's official counts.

Media: the frames (RefVOS, VOS), videos (grounding) and images (RES) the card's layout lists must be on disk
unless ``require_media=False`` (``--annotations-only``). Video loaders check their frames themselves
(``require_frames``); for grounding and RES, whose loaders treat media as optional, :func:`media_problems`
checks them here, one line per kind of file with how many are missing."""

from __future__ import annotations

import inspect
import os

from refbench.cards import DatasetCard


def found_counts(card: DatasetCard, samples: list) -> dict[str, int]:
    """What the samples amount to, in the card's count names."""
    found: dict[str, int] = {}
    if card.task == "refvos":
        found = {"videos": len({s.video for s in samples}), "expressions": len(samples)}
        found["frames"] = sum(len(fr) for fr in {s.video: s.frames for s in samples}.values())
    elif card.task == "vos":
        found = {"videos": len(samples), "frames": sum(len(s.frames) for s in samples)}
        if samples and hasattr(samples[0], "objects"):  # SA-V, SeCVOS, LVOS, MOSE v2 samples list their objects
            found["objects"] = sum(len(s.objects) for s in samples)
    elif card.task == "tsg":
        found = {"videos": len({s.video for s in samples}), "queries": len(samples)}
    elif card.task == "res":
        found = {"images": len({s.image_id for s in samples}), "sentences": len(samples)}
    return found


def _missing_line(paths: list, what: str, folder) -> list[str]:
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return []
    return [f"{folder}: {len(missing):,} of {len(paths):,} {what} missing (first {missing[0].name}); "
            "--annotations-only checks the annotations alone"]


def media_problems(card: DatasetCard, loader, samples: list) -> list[str]:
    """Missing videos (grounding) or images (RES) of ``samples``, one line each; [] for other tasks, for loaders
    that cannot name their media files and for cards whose layout lists no media."""
    from pathlib import Path

    from refbench.evaluate.run import _MEDIA

    if not any(entry.lower().endswith(_MEDIA) or entry.endswith("<file_name>") for entry in card.layout):
        return []  # the card lists no media (the demo's grounding split has no videos)
    if card.task == "tsg" and callable(getattr(loader, "video_path", None)):
        videos = list(dict.fromkeys(s.video for s in samples))
        paths = [Path(loader.video_path(v)) for v in videos]
        return _missing_line(paths, "videos", paths[0].parent if paths else loader.root)
    if card.task == "res" and callable(getattr(loader, "image_path", None)):
        image_root = getattr(loader, "image_root", None)
        if image_root is not None and Path(image_root).is_dir():
            return []  # RefCOCOLoader.check lists missing images itself when its image folder exists
        by_image = {s.image_id: s for s in samples}
        paths = [Path(loader.image_path(s)) for s in by_image.values()]
        if image_root is not None:
            return [f"{image_root}: image folder missing ({len(paths):,} images of {card.name}); "
                    "--annotations-only checks the annotations alone"]
        return _missing_line(paths, "images", paths[0].parent if paths else "")
    return []


def check_dataset(
    card: DatasetCard, root: str | os.PathLike | None = None, require_media: bool = True
) -> tuple[list[str], list[str], dict[str, int]]:
    """Run the loader's checks and compare counts with the card.

    Returns (problems, notes, found counts); notes are facts about the official data (a loader's lines
    starting with 'note:'), not damage."""
    root_path = card.resolve_root(root)
    if not root_path.is_dir():
        return [f"{root_path}: data root does not exist"], [], {}
    loader = card.open(root_path)
    params = inspect.signature(loader.check).parameters
    kwargs = {}
    for name in ("require_frames", "require_media", "require_images"):
        if name in params:
            kwargs[name] = require_media
    problems = list(loader.check(**kwargs))
    notes = [p for p in problems if p.startswith("note:")]
    problems = [p for p in problems if not p.startswith("note:")]
    try:
        samples = loader.samples()
    except (ValueError, OSError) as exc:
        return problems + [str(exc)], notes, {}
    if require_media and not kwargs:
        problems += media_problems(card, loader, samples)
    found = found_counts(card, samples)
    for key, want in (card.counts or {}).items():
        if key in found and found[key] != want:
            problems.append(f"{root_path}: {found[key]:,} {key} found, the official {card.name} has {want:,}")
    return problems, notes, {k: v for k, v in found.items() if not card.counts or k in card.counts}
