"""``evaluate()``: one entry point over the task evaluators, plus the traceable summary it writes."""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any, Callable

from refbench import __version__
from refbench.cards import DatasetCard, dataset_card
from refbench.evaluate.result import MISSING_MODES, EvalResult


_MEDIA = (".jpg", ".jpeg", ".mp4", ".mkv", ".webm", ".avi")


def annotation_files(card: DatasetCard, root: Path) -> list[Path]:
    """The card's annotation files present under ``root``: layout entries, with ``<placeholders>`` expanded
    as globs, leaving out frames, images and videos."""
    import re

    files: set[Path] = set()
    for entry in card.layout:
        if entry.lower().endswith(_MEDIA):
            continue
        if "<" in entry:
            files.update(p for p in root.glob(re.sub(r"<[^>]*>", "*", entry)) if p.is_file())
        elif (root / entry).is_file():
            files.add(root / entry)
    return sorted(files)


def annotation_hash(files: list[Path], root: Path) -> str:
    """sha256 over (relative name, content) of the annotation files, so a number can be traced."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def evaluate(
    dataset: str,
    pred: str | os.PathLike,
    root: str | os.PathLike | None = None,
    protocol: str | None = None,
    missing: str = "error",
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    loader: Any = None,
    annotation_sha256: str | None = None,
    **options: Any,
) -> tuple[EvalResult, dict[str, Any]]:
    """Score predictions at ``pred`` on dataset card ``dataset``. Returns (result, summary JSON dict).

    ``loader``: an already opened loader of the card (e.g. one restricted to a subset of samples by
    ``refbench run --limit``); default: the card's loader on ``root``. ``annotation_sha256``: the
    :func:`annotation_hash` of the card's files under ``root`` when the caller has it already (a run does)."""
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_MODES)}, got {missing!r}")
    card = dataset_card(dataset)
    if not card.has_public_gt:
        raise ValueError(
            f"{card.name}: ground truth is not public (scored on the server); export a submission instead"
        )
    pred_path = Path(pred)
    if not pred_path.exists():
        raise FileNotFoundError(f"{pred_path}: predictions not found")
    data_root = card.resolve_root(root)
    if loader is None:
        loader = card.open(data_root)
    if card.task in ("refvos", "vos"):
        from refbench.evaluate.video import evaluate_video

        result = evaluate_video(card, loader, pred_path, protocol=protocol, missing=missing, device=device,
                                progress=progress, **options)
    elif card.task == "tsg":
        from refbench.evaluate.grounding import evaluate_grounding

        result = evaluate_grounding(card, loader, pred_path, protocol=protocol, missing=missing, device=device,
                                    **options)
        if progress is not None:
            progress(len(result.per_sample), len(result.per_sample))
    elif card.task == "res":
        from refbench.evaluate.res import evaluate_res

        result = evaluate_res(card, loader, pred_path, protocol=protocol, missing=missing, device=device, **options)
        if progress is not None:
            progress(len(result.per_sample), len(result.per_sample))
    else:  # pragma: no cover - cards are validated
        raise ValueError(f"{card.name}: unknown task {card.task!r}")
    files = annotation_files(card, data_root)
    summary = {
        "dataset": card.name,
        "protocol": result.protocol,
        "metrics": result.metrics,
        "scale": result.scale,
        "counts": result.counts,
        "reference": result.reference or card.reference,
        "details": result.details,
        "provenance": {
            "refbench_version": __version__,
            "dataset_card": str(card.path) if card.path else card.name,
            "data_root": str(data_root),
            "annotation_files": [str(p.relative_to(data_root)) for p in sorted(files)],
            "annotation_sha256": annotation_sha256 or annotation_hash(files, data_root),
            "predictions": str(pred_path),
            "missing": missing,
            "device": device,
            "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    return result, summary


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike, flag: str | None = None) -> None:
    """The per-sample CSV: one row per expression / object / query / sentence. Written atomically
    (:func:`refbench.files.atomic_output`); ``flag`` names the option that chose ``path``, for errors."""
    from refbench.files import atomic_output

    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with atomic_output(path, "w", flag, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def write_json(summary: dict[str, Any], path: str | os.PathLike, flag: str | None = None) -> None:
    """The summary JSON, written atomically (:func:`refbench.files.atomic_output`)."""
    from refbench.files import atomic_output

    with atomic_output(path, "w", flag) as fh:
        json.dump(summary, fh, indent=2, default=str)
        fh.write("\n")


def format_table(result: EvalResult, dataset: str) -> str:
    """A compact table of the headline metrics: one row, or one line per metric when there are many."""
    names = list(result.metrics)
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    footer = f"({result.scale}; {counts})"
    if len(names) <= 6:
        head = f"{'dataset':<20} {'protocol':<12} " + " ".join(f"{n:>12}" for n in names)
        vals = " ".join(f"{result.metrics[n]:>12.4f}" for n in names)
        return "\n".join([head, f"{dataset:<20} {result.protocol:<12} {vals}", footer])
    width = max(len(n) for n in names)
    lines = [f"{dataset} ({result.protocol})"] + [f"  {n:<{width}} {result.metrics[n]:>12.4f}" for n in names]
    return "\n".join(lines + [footer])
