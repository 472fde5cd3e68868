"""``refbench datasets check``: a loader's own checks plus the card's official counts."""

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
    found = found_counts(card, samples)
    for key, want in (card.counts or {}).items():
        if key in found and found[key] != want:
            problems.append(f"{root_path}: {found[key]:,} {key} found, the official {card.name} has {want:,}")
    return problems, notes, {k: v for k, v in found.items() if not card.counts or k in card.counts}
