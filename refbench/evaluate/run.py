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
    per_frame: bool = False,
    **options: Any,
) -> tuple[EvalResult, dict[str, Any]]:
    """Score predictions at ``pred`` on dataset card ``dataset``. Returns (result, summary JSON dict).

    ``loader``: an already opened loader of the card (e.g. one restricted to a subset of samples by
    ``refbench run --limit``); default: the card's loader on ``root``. ``annotation_sha256``: the
    :func:`annotation_hash` of the card's files under ``root`` when the caller has it already (a run does).
    ``per_frame``: video tasks also return every sample's per-frame J and F (``result.per_frame``,
    :mod:`refbench.evaluate.per_frame`); other tasks refuse it."""
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
    if per_frame and card.task not in ("refvos", "vos"):
        raise ValueError(f"--per-frame applies to video datasets (refvos, vos); {card.name} is a {card.task} "
                         "dataset without frames")
    data_root = card.resolve_root(root)
    if loader is None:
        loader = card.open(data_root)
    if card.task in ("refvos", "vos"):
        from refbench.evaluate.video import evaluate_video

        result = evaluate_video(card, loader, pred_path, protocol=protocol, missing=missing, device=device,
                                progress=progress, per_frame=per_frame, **options)
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
    partial = partial_reasons(card, loader, result, missing, data_root)
    summary = {
        "dataset": card.name,
        "protocol": result.protocol,
        "metrics": result.metrics,
        "scale": result.scale,  # always "percent"; the official printout's own scale is details.official.scale
        "partial": bool(partial),
        "partial_reasons": partial,
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


def partial_reasons(card: DatasetCard, loader: Any, result: EvalResult, missing: str,
                    data_root: Path | None = None) -> list[str]:
    """Why a score does not stand for the card's whole official split ([] when it does).

    The samples at this root differ from the card's official counts (a part of the split, e.g. the golden
    subsets or ``refbench run --limit``); predictions missing for some samples and scored by ``--missing empty``
    or ``official``; grounding queries left out by ``--subset predicted`` or a sample limit."""
    from refbench.data.check import found_counts

    reasons: list[str] = []
    try:
        found = found_counts(card, list(loader.samples()))
    except Exception:  # noqa: BLE001 - a loader without the usual samples: nothing to compare
        found = {}
    where = f" at {data_root}" if data_root is not None else ""
    keys = [k for k in (card.counts or {}) if k in found]
    if any(found[k] != card.counts[k] for k in keys):
        have = ", ".join(f"{found[k]:,} {k}" for k in keys)
        want = ", ".join(f"{card.counts[k]:,} {k}" for k in keys)
        reasons.append(f"{card.name}{where} has {have}; the official split has {want}")
    counts = result.counts
    total = int(counts.get("samples", len(result.per_sample)))
    if counts.get("missing"):
        reasons.append(f"{counts['missing']:,} of {total:,} samples have no prediction and were scored by "
                       f"--missing {missing}")
    if counts.get("not_in_subset"):
        reasons.append(f"{counts['not_in_subset']:,} queries without a prediction were left out (--subset predicted)")
    if counts.get("not_sampled"):
        reasons.append(f"{counts['not_sampled']:,} queries were left out by the sample limit")
    return reasons


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


def format_table(result: EvalResult, dataset: str, partial: list[str] | None = None) -> str:
    """A compact table of the headline metrics (percent, 2 decimals): one row, or one line per metric when there
    are many. ``partial``: the :func:`partial_reasons` of the evaluation, which label the table."""
    names = list(result.metrics)
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    footer = f"(percent; {counts})"
    if partial:
        footer += "\nPARTIAL: not the official split's score: " + "; ".join(partial)
    protocol = _protocol_label(result.protocol)
    if len(names) <= 6:
        pw = max(12, len(protocol))
        head = f"{'dataset':<20} {'protocol':<{pw}} " + " ".join(f"{n:>9}" for n in names)
        vals = " ".join(f"{result.metrics[n]:>9.2f}" for n in names)
        return "\n".join([head, f"{dataset:<20} {protocol:<{pw}} {vals}", footer])
    width = max(len(n) for n in names)
    lines = [f"{dataset} ({protocol})"] + [f"  {n:<{width}} {result.metrics[n]:>9.2f}" for n in names]
    return "\n".join(lines + [footer])


def _protocol_label(protocol: str) -> str:
    """``refdavis_a (convention A)`` for a protocol whose card names a convention, else the name."""
    try:
        from refbench.protocols import protocol_label

        return protocol_label(protocol)
    except Exception:  # noqa: BLE001 - an unreadable protocol card costs only the label
        return protocol
