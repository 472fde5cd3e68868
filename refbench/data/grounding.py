"""Loaders for temporal sentence grounding: Charades-STA and ActivityNet Captions.

Both loaders return :class:`~refbench.data.base.GroundingQuery` objects in file order and never read videos.

Charades-STA (Gao et al. 2017, files as shipped by 2D-TAN ``data/Charades-STA``, see ``shared/data/PROVENANCE.md``
section 5): ``charades_sta_<split>.txt`` holds one query per line, ``<vid> <start> <end>##<sentence>``; the
video durations are the ``length`` column of ``Charades_v1_<split>.csv`` (keyed by ``id``). The official test file
has 3,720 queries over 1,334 videos; 562 of its queries end after the video duration (verified on the byte copy;
2D-TAN clips them with ``min(end, duration)``), and the train file (12,408 queries over 5,338 videos) has 1,805 such
ends and 4 queries with start > end (lines 8252, 8440, 9623, 9624, 1-based), which 2D-TAN drops
(``if s_time < e_time``). The query id is the 0-based line index as a string: TimeChat's
``metrics/tvg/example_gt_file.json`` numbers the 3,720 test queries that way and keeps each sentence verbatim
(checked line by line against ``shared/data/charades_sta/timechat_example_gt.json``), so sentences are kept
verbatim here too (2D-TAN strips the trailing ``.``; nothing else is normalised).

ActivityNet Captions (Krishna et al. 2017): ``<split>.json`` is ``{vid: {"duration", "timestamps": [[s, e], ...],
"sentences": [...]}}``; ``val_1`` has 4,917 videos / 17,505 sentences (``docs/protocols.md#lmms-eval``). 2D-TAN renames
``val_1.json`` to ``val.json`` and ``val_2.json`` to ``test.json`` (PROVENANCE.md section 6); the loader accepts
those names. The query id is ``<vid>_<i>`` with ``i`` the 0-based sentence index within the video. Sentences are
kept verbatim (many start with a space in the official file). 134 of the val_1 spans end after the video duration
(verified on the byte copy).

``check()`` returns human-readable problems, each naming the file (and line for text files). Lines starting with
``note:`` describe facts of the official data that scorers must handle (e.g. ends beyond the duration) rather than
damage; ``[p for p in problems if not p.startswith("note:")]`` keeps only the damage.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

from refbench.data.base import DatasetError, GroundingQuery, read_json_object

PathLike = Union[str, Path]

#: Query / video counts of the official files (verified on the byte copies in ``shared/data``).
OFFICIAL_COUNTS: dict[tuple[str, str], dict[str, int]] = {
    ("charades_sta", "test"): {"queries": 3720, "videos": 1334},
    ("charades_sta", "train"): {"queries": 12408, "videos": 5338},
    ("activitynet", "val_1"): {"queries": 17505, "videos": 4917},
}

NOTE = "note:"


def _count_problems(source: Path, samples: list[GroundingQuery], expected: Mapping[str, int] | None) -> list[str]:
    """Compare query / video counts with ``expected`` (keys ``queries`` and/or ``videos``)."""
    if not expected:
        return []
    unknown = set(expected) - {"queries", "videos"}
    if unknown:
        raise ValueError(f"expected counts take the keys 'queries' and 'videos', got {sorted(unknown)}")
    got = {"queries": len(samples), "videos": len({s.video for s in samples})}
    return [
        f"{source}: {key} count {got[key]} != expected {int(want)}"
        for key, want in expected.items()
        if got[key] != int(want)
    ]


def _span_notes(source: Path, samples: list[GroundingQuery], where: dict[str, str]) -> list[str]:
    """Spans beyond the duration (a count, as a note) and missing durations (problems)."""
    out: list[str] = []
    beyond = [s for s in samples if s.span is not None and s.duration is not None and s.span[1] > s.duration]
    if beyond:
        first = where[beyond[0].qid]
        out.append(
            f"{NOTE} {source}: {len(beyond)} of {len(samples)} queries end after the video duration "
            f"(first at {first}); 2D-TAN clips the GT end to the duration, other scorers use it as is"
        )
    missing = [s for s in samples if s.duration is None]
    if missing:
        videos = sorted({s.video for s in missing})
        out.append(
            f"{source}: {len(missing)} queries over {len(videos)} videos have no duration "
            f"(first at {where[missing[0].qid]}; videos {', '.join(videos[:5])}{' ...' if len(videos) > 5 else ''})"
        )
    return out


# ----------------------------------------------------------------------------------------------
# Charades-STA
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ParsedLine:
    index: int
    video: str
    start: float
    end: float
    sentence: str


class CharadesSTALoader:
    """Charades-STA ``<root>/charades_sta_<split>.txt`` with durations from ``<root>/Charades_v1_<split>.csv``.

    Videos, if present, are ``<root>/videos/<vid>.mp4`` (optional; see :meth:`video_path`).
    """

    name = "charades_sta"

    def __init__(self, root: PathLike, split: str = "test") -> None:
        self.root = Path(root)
        self.split = split
        if not split or "/" in split or "\\" in split:
            raise DatasetError(f"{self.root}: invalid Charades-STA split name {split!r}")
        self.path = self.root / f"charades_sta_{split}.txt"
        self.csv_path = self.root / f"Charades_v1_{split}.csv"
        self._samples: list[GroundingQuery] | None = None

    # -- reading ---------------------------------------------------------------------------------

    def _read_lines(self) -> list[str]:
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: Charades-STA annotation file not found")
        try:
            text = self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{self.path}: not UTF-8 text ({exc})") from exc
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def _parse(self) -> tuple[list[_ParsedLine], list[str]]:
        """Every well-formed line, and one problem per malformed line (``path:line: ...``)."""
        parsed: list[_ParsedLine] = []
        problems: list[str] = []
        for i, line in enumerate(self._read_lines()):
            where = f"{self.path}:{i + 1}"
            if "##" not in line:
                problems.append(f"{where}: malformed line (no '##' between span and sentence): {line[:80]!r}")
                continue
            head, sentence = line.split("##", 1)
            parts = head.split(" ")
            if len(parts) != 3 or not all(parts):
                problems.append(f"{where}: malformed line (expected '<vid> <start> <end>##<sentence>'): {line[:80]!r}")
                continue
            vid, s_txt, e_txt = parts
            try:
                start, end = float(s_txt), float(e_txt)
            except ValueError:
                problems.append(f"{where}: malformed line (start/end not numbers): {line[:80]!r}")
                continue
            if not (math.isfinite(start) and math.isfinite(end)):
                problems.append(f"{where}: malformed line (start/end not finite): {line[:80]!r}")
                continue
            parsed.append(_ParsedLine(i, vid, start, end, sentence))
        return parsed, problems

    def durations(self) -> dict[str, float]:
        """``{video id: length}`` from ``Charades_v1_<split>.csv``; {} when the csv is absent.

        Raises :class:`DatasetError` when the csv lacks the ``id``/``length`` columns or a length is not a number.
        """
        durations, problems = self._read_durations()
        if problems:
            raise DatasetError(problems[0])
        return durations

    def _read_durations(self) -> tuple[dict[str, float], list[str]]:
        if not self.csv_path.is_file():
            return {}, []
        out: dict[str, float] = {}
        problems: list[str] = []
        with self.csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            if "id" not in fields or "length" not in fields:
                raise DatasetError(f"{self.csv_path}: expected columns 'id' and 'length', got {fields}")
            for row in reader:
                try:
                    length = float(row["length"])
                except (TypeError, ValueError):
                    problems.append(f"{self.csv_path}:{reader.line_num}: length {row['length']!r} is not a number")
                    continue
                if not math.isfinite(length) or length <= 0:
                    problems.append(f"{self.csv_path}:{reader.line_num}: length {row['length']!r} is not positive")
                    continue
                out[row["id"]] = length
        return out, problems

    # -- public API ------------------------------------------------------------------------------

    def samples(self) -> list[GroundingQuery]:
        """All queries in file order; qid = 0-based line index. Raises :class:`DatasetError` on a malformed line.

        ``duration`` is None when the csv is absent or has no row for the video (see :meth:`check`).
        """
        if self._samples is None:
            parsed, problems = self._parse()
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise DatasetError(problems[0] + more)
            durations = self.durations()
            self._samples = [
                GroundingQuery(
                    qid=str(p.index), video=p.video, query=p.sentence, span=(p.start, p.end),
                    duration=durations.get(p.video),
                )
                for p in parsed
            ]
        return list(self._samples)

    def video_path(self, video: str | GroundingQuery) -> Path:
        """``<root>/videos/<vid>.mp4`` (may not exist: videos are optional)."""
        vid = video.video if isinstance(video, GroundingQuery) else video
        return self.root / "videos" / f"{vid}.mp4"

    def check(self, expected: Mapping[str, int] | None = None) -> list[str]:
        """Problems of the files, each with its path and line; [] when clean.

        Reports malformed lines, empty sentences, negative starts, start > end, queries whose video has no
        duration (csv absent or row missing), bad csv lengths, and counts differing from ``expected``
        (``{"queries": n, "videos": m}``, e.g. ``OFFICIAL_COUNTS[("charades_sta", "test")]``). Ends beyond the
        duration are counted in one ``note:`` line (562 in the official test file). Raises only when the
        annotation file is missing or unreadable.
        """
        parsed, problems = self._parse()
        if not self.csv_path.is_file():
            problems.append(f"{self.csv_path}: duration csv not found")
            durations: dict[str, float] = {}
        else:
            durations, csv_problems = self._read_durations()
            problems.extend(csv_problems)
        where = {str(p.index): f"{self.path}:{p.index + 1}" for p in parsed}
        for p in parsed:
            if not p.sentence.strip():
                problems.append(f"{where[str(p.index)]}: empty sentence")
            if p.start < 0:
                problems.append(f"{where[str(p.index)]}: negative start {p.start}")
            if p.start > p.end:
                msg = f"{where[str(p.index)]}: start {p.start} > end {p.end} (2D-TAN drops such queries)"
                # The official train file has 4 such lines (8252, 8440, 9623, 9624); in a training split they
                # are a property of the data to know about, not a broken download.
                problems.append(f"note: {msg}" if self.split == "train" else msg)
        samples = [
            GroundingQuery(str(p.index), p.video, p.sentence, (p.start, p.end), durations.get(p.video)) for p in parsed
        ]
        if self.csv_path.is_file():
            problems.extend(_span_notes(self.path, samples, where))
        problems.extend(_count_problems(self.path, samples, expected))
        return problems


# ----------------------------------------------------------------------------------------------
# ActivityNet Captions
# ----------------------------------------------------------------------------------------------

#: File names tried for each split, first match wins: 2D-TAN ships val_1 as ``val.json`` and val_2 as ``test.json``.
ANET_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "val_1": ("val_1.json", "val.json"),
    "val_2": ("val_2.json", "test.json"),
    "val": ("val.json", "val_1.json"),
    "test": ("test.json", "val_2.json"),
}


class ActivityNetLoader:
    """ActivityNet Captions ``<root>/<split>.json`` (also 2D-TAN's renamed ``val.json`` / ``test.json``).

    ``split="val_1"`` reads ``val_1.json``, else ``val.json`` (2D-TAN's name for the same file);
    ``"val_2"`` reads ``val_2.json``, else ``test.json``. Other names read ``<split>.json``.
    :attr:`note` says when a renamed file was used.
    """

    name = "activitynet"

    def __init__(self, root: PathLike, split: str = "val_1") -> None:
        self.root = Path(root)
        self.split = split
        if not split or "/" in split or "\\" in split:
            raise DatasetError(f"{self.root}: invalid ActivityNet split name {split!r}")
        names = ANET_FILE_NAMES.get(split, (f"{split}.json",))
        found = [self.root / n for n in names if (self.root / n).is_file()]
        self.path = found[0] if found else self.root / names[0]
        self.note: str | None = None
        if found and self.path.name != names[0]:
            self.note = (
                f"{self.path}: read as split {split!r} ({names[0]} not found; 2D-TAN renames val_1.json to val.json "
                "and val_2.json to test.json)"
            )
        self._samples: list[GroundingQuery] | None = None

    def _load(self) -> dict[str, Any]:
        if not self.path.is_file():
            tried = ", ".join(ANET_FILE_NAMES.get(self.split, (f"{self.split}.json",)))
            raise DatasetError(f"{self.path}: ActivityNet Captions file not found (tried {tried} in {self.root})")
        return read_json_object(
            self.path, DatasetError, "ActivityNet Captions file not found",
            "expected an object {vid: {duration, timestamps, sentences}}",
        )

    def _parse(self) -> tuple[list[GroundingQuery], list[str]]:
        data = self._load()
        out: list[GroundingQuery] = []
        problems: list[str] = []
        for vid, entry in data.items():
            where = f"{self.path}: video {vid}"
            if not isinstance(entry, dict):
                problems.append(f"{where}: entry is not an object")
                continue
            missing = [k for k in ("timestamps", "sentences") if k not in entry]
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
                continue
            stamps, sents = entry["timestamps"], entry["sentences"]
            if not isinstance(stamps, list) or not isinstance(sents, list):
                problems.append(f"{where}: timestamps and sentences must be lists")
                continue
            if len(stamps) != len(sents):
                problems.append(f"{where}: {len(stamps)} timestamps but {len(sents)} sentences")
                continue
            duration = entry.get("duration")
            if duration is not None and (
                isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration)
            ):
                problems.append(f"{where}: duration {duration!r} is not a number")
                continue
            for i, (stamp, sent) in enumerate(zip(stamps, sents)):
                ok = (
                    isinstance(stamp, (list, tuple))
                    and len(stamp) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in stamp)
                )
                if not ok or not isinstance(sent, str):
                    problems.append(f"{where}: sentence {i}: timestamp {stamp!r} is not [start, end] or text not a str")
                    continue
                out.append(
                    GroundingQuery(
                        qid=f"{vid}_{i}", video=vid, query=sent, span=(float(stamp[0]), float(stamp[1])),
                        duration=None if duration is None else float(duration),
                    )
                )
        return out, problems

    def samples(self) -> list[GroundingQuery]:
        """All sentences in file order (videos as stored, sentences by index); raises :class:`DatasetError`."""
        if self._samples is None:
            samples, problems = self._parse()
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise DatasetError(problems[0] + more)
            self._samples = samples
        return list(self._samples)

    def check(self, expected: Mapping[str, int] | None = None) -> list[str]:
        """Problems of the file, each naming it and the video / sentence; [] when clean.

        Reports malformed entries, empty sentences, negative starts, start > end, missing durations and counts
        differing from ``expected`` (e.g. ``OFFICIAL_COUNTS[("activitynet", "val_1")]``); ends beyond the duration
        are counted in one ``note:`` line (134 in val_1), as is the use of a renamed 2D-TAN file. Raises only
        when the file is missing or is not a JSON object.
        """
        samples, problems = self._parse()
        where = {s.qid: f"{self.path}: video {s.video} sentence {s.qid.rsplit('_', 1)[1]}" for s in samples}
        for s in samples:
            if s.span is None:  # never: _parse always sets a span
                continue
            if not s.query.strip():
                problems.append(f"{where[s.qid]}: empty sentence")
            if s.span[0] < 0:
                problems.append(f"{where[s.qid]}: negative start {s.span[0]}")
            if s.span[0] > s.span[1]:
                problems.append(f"{where[s.qid]}: start {s.span[0]} > end {s.span[1]}")
        problems.extend(_span_notes(self.path, samples, where))
        problems.extend(_count_problems(self.path, samples, expected))
        if self.note:
            problems.append(f"{NOTE} {self.note}")
        return problems


__all__ = ["ANET_FILE_NAMES", "ActivityNetLoader", "CharadesSTALoader", "NOTE", "OFFICIAL_COUNTS"]
