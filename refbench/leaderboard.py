"""Leaderboards: long-format CSVs (one metric per row) of reported and reproduced numbers.

One CSV per task family (``refvos.csv``, ``tsg.csv``, ``res.csv``, ``vos.csv``) with the columns
:data:`COLUMNS`. ``reported`` rows are numbers published by the authors or a challenge report, each with a
citable ``source``; ``reproduced`` rows come from refbench runs (:func:`rows_from_summary`,
:func:`append_rows`) and carry the run id, refbench version, date and a fingerprint. Values are always
percent (0-100), the scale of refbench's summaries (:mod:`refbench.evaluate.result`).

The packaged leaderboards live in the checkout's ``leaderboards/`` folder, or in ``refbench/_cards/leaderboards``
inside a wheel; ``$REFBENCH_LEADERBOARD`` and ``--dir`` add user folders (see :func:`leaderboard_dirs`).

This module never imports torch, numpy or pandas. Library functions raise (:class:`LeaderboardError` for a
malformed file, with a one-line ``"<file>:<line>: <problem>"`` message, a usage error: exit 2);
:func:`leaderboard_command` raises them too, and the ``refbench`` command line (:mod:`refbench.cli`) turns them
into one line and the exit code.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import click

from refbench.errors import RefbenchInputError

COLUMNS: tuple[str, ...] = (
    "dataset", "model", "metric", "value", "scale", "protocol", "kind", "source", "date", "refbench_version",
    "run_id", "fingerprint", "notes",
)

#: Dataset-card task -> leaderboard file stem.
FAMILIES: dict[str, str] = {"refvos": "refvos", "tsg": "tsg", "res": "res", "vos": "vos"}

KINDS: tuple[str, ...] = ("reported", "reproduced")

#: Headline metrics, in display order. Everything in a leaderboard is percent.
HEADLINE_METRICS: tuple[str, ...] = (
    "J&F", "J", "F", "A", "R", "cIoU", "gIoU", "R@0.3", "R@0.5", "R@0.7", "mIoU",
)

#: ReVOS summaries also publish per-category values (VISA ``tools/eval_revos.py``: referring / reasoning);
#: the "overall" category equals the headline J, F, J&F, A, R and is not repeated.
REVOS_CATEGORIES: tuple[str, ...] = ("referring", "reasoning")
CATEGORY_METRICS: tuple[str, ...] = tuple(
    f"{m} ({cat})" for cat in REVOS_CATEGORIES for m in ("J&F", "J", "F", "A", "R")
)
METRICS: tuple[str, ...] = HEADLINE_METRICS + CATEGORY_METRICS

#: Splits that are only scored by a challenge server and have no dataset card (no public data to check a
#: layout against), but whose published numbers belong on a leaderboard: name -> (task, description).
CHALLENGE_SPLITS: dict[str, tuple[str, str]] = {
    "mevis_test": (
        "refvos",
        "MeViS test: the challenge-phase split (PVUW / LSVOS), scored only by the challenge server; "
        "each challenge year's test phase is its own number",
    ),
    "mose_test": (
        "vos",
        "MOSE test: the challenge-phase split of the PVUW MOSE track (part of the MOSE test set plus new videos), "
        "scored only by the challenge server; each challenge year's test phase is its own number",
    ),
}

#: Order of families in the formatted output.
_FAMILY_ORDER = ("refvos", "vos", "tsg", "res")
_ENV = "REFBENCH_LEADERBOARD"


class LeaderboardError(RefbenchInputError):
    """A malformed leaderboard file or row; the message is one line, ``"<file>:<line>: <problem>"`` (exit 2;
    also a ValueError)."""


# ----------------------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """Shortest text that round-trips ``value`` after dropping float noise beyond 12 significant digits."""
    return repr(float(f"{value:.12g}"))


def _check_date(text: str) -> None:
    if not text:
        return
    try:
        _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"date {text!r} is not an ISO date (YYYY-MM-DD or an ISO timestamp)") from None


@dataclass(frozen=True)
class Row:
    """One leaderboard row: one metric of one model on one dataset (value in percent)."""

    dataset: str
    model: str
    metric: str
    value: float
    scale: str = "percent"
    protocol: str = ""
    kind: str = "reported"
    source: str = ""
    date: str = ""
    refbench_version: str = ""
    run_id: str = ""
    fingerprint: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "value":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"value {v!r} is not a number")
                object.__setattr__(self, "value", float(v))
            elif not isinstance(v, str):
                raise ValueError(f"{f.name} must be a string, got {type(v).__name__}")
            elif f.name != "notes" and ("\n" in v or "\r" in v):
                raise ValueError(f"{f.name} contains a line break")
        self._check()

    def _check(self) -> None:
        for name in ("dataset", "model", "metric"):
            if not getattr(self, name).strip():
                raise ValueError(f"empty {name}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.scale != "percent":
            raise ValueError(f"scale {self.scale!r}: leaderboard values are always percent (scale 'percent')")
        if not math.isfinite(self.value) or not 0.0 <= self.value <= 100.0:
            raise ValueError(f"value {self.value!r} is not a percentage in [0, 100]")
        if not self.source.strip():
            raise ValueError("empty source: a reported row needs a citable source, a reproduced row its run")
        if self.kind == "reproduced":
            missing = [n for n in ("date", "refbench_version", "run_id", "fingerprint") if not getattr(self, n)]
            if missing:
                raise ValueError(f"reproduced row without {', '.join(missing)}")
        _check_date(self.date)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Row":
        """A row from a CSV record or any mapping with the :data:`COLUMNS` keys (missing text fields = "")."""
        unknown = set(data) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}")
        if "value" not in data or data["value"] in (None, ""):
            raise ValueError("missing value")
        raw = data["value"]
        if isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise ValueError(f"value {raw!r} is not a number") from None
        else:
            value = raw
        kwargs: dict[str, Any] = {}
        for name in COLUMNS:
            if name == "value":
                continue
            v = data.get(name)
            kwargs[name] = "" if v is None else v
        if not kwargs["scale"]:
            kwargs["scale"] = "percent"
        return cls(value=value, **kwargs)

    def to_dict(self) -> dict[str, str]:
        """The row as CSV text fields, in :data:`COLUMNS` order."""
        d = asdict(self)
        d["value"] = format_value(self.value)
        return {k: d[k] for k in COLUMNS}


def known_datasets() -> dict[str, str]:
    """Dataset names a leaderboard row may use -> task: the dataset cards plus :data:`CHALLENGE_SPLITS`."""
    from refbench.cards import dataset_cards

    names = {name: card.task for name, card in dataset_cards().items()}
    for name, (task, _desc) in CHALLENGE_SPLITS.items():
        names.setdefault(name, task)
    return names


def family_of(task: str) -> str:
    """Leaderboard file stem of a dataset-card task (``refvos`` -> ``refvos``)."""
    if task not in FAMILIES:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[task]


def family_of_dataset(dataset: str) -> str:
    """Leaderboard file stem for a dataset card name (``mevis_val_u`` -> ``refvos``)."""
    names = known_datasets()
    if dataset not in names:
        from refbench.cards import suggest

        raise ValueError(f"unknown dataset {dataset!r}{suggest(dataset, names)}")
    return family_of(names[dataset])


def leaderboard_file(dataset: str, directory: str | os.PathLike) -> Path:
    """The CSV in ``directory`` that rows of ``dataset`` belong to (e.g. ``<directory>/refvos.csv``)."""
    return Path(directory) / f"{family_of_dataset(dataset)}.csv"


def validate_row(row: Row) -> None:
    """Checks beyond a row's own shape: a known dataset name and an allowed metric name (ValueError)."""
    names = known_datasets()
    if row.dataset not in names:
        from refbench.cards import suggest

        raise ValueError(f"unknown dataset {row.dataset!r}{suggest(row.dataset, names)}")
    if row.metric not in METRICS:
        raise ValueError(f"metric {row.metric!r} is not one of {', '.join(METRICS)}")


# ----------------------------------------------------------------------------------------------------------
# Where leaderboards live
# ----------------------------------------------------------------------------------------------------------


#: where ``refbench run`` appends reproduced rows when neither --leaderboard nor $REFBENCH_LEADERBOARD is set
LOCAL_RUNS_DIR = os.path.join("runs", "leaderboards")


def leaderboard_dirs(extra: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """Leaderboard folders, in reading order.

    The packaged leaderboards (``refbench/_cards/leaderboards`` in a wheel, else the checkout's
    ``leaderboards/``), then the folders in ``$REFBENCH_LEADERBOARD`` (``os.pathsep``-separated; ones that do
    not exist yet are skipped; when it is unset, ``./runs/leaderboards`` if present), then ``extra`` (kept even when missing, so a mistyped ``--dir`` is an error).
    """
    here = Path(__file__).resolve().parent
    dirs: list[Path] = []
    for candidate in (here / "_cards" / "leaderboards", here.parent / "leaderboards"):
        if candidate.is_dir():
            dirs.append(candidate)
            break
    env = os.environ.get(_ENV, "")
    for part in env.split(os.pathsep):
        if part.strip() and Path(part).exists():
            dirs.append(Path(part))
    if not env.strip() and Path(LOCAL_RUNS_DIR).is_dir():
        dirs.append(Path(LOCAL_RUNS_DIR))  # where `refbench run` appends by default
    if extra is not None:
        if isinstance(extra, (str, os.PathLike)):
            extra = [extra]
        dirs.extend(Path(p) for p in extra)
    unique: list[Path] = []
    seen: set[Path] = set()
    for d in dirs:
        r = d.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(d)
    return unique


def _csv_files(paths_or_dirs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    files: list[Path] = []
    for p in map(Path, paths_or_dirs):
        if p.is_dir():
            files.extend(sorted(p.glob("*.csv")))
        elif p.is_file():
            files.append(p)
        else:
            raise LeaderboardError(f"{p}: no such leaderboard file or folder")
    return files


# ----------------------------------------------------------------------------------------------------------
# Locking: one exclusive lock file beside each CSV (refbench.files.file_lock)
# ----------------------------------------------------------------------------------------------------------


def _lock_file(path: Path) -> Path:
    """``<file>.lock`` beside a leaderboard CSV: what :func:`append_rows` holds while it appends."""
    return path.with_name(path.name + ".lock")


@contextmanager
def _read_lock(path: Path) -> Iterator[None]:
    """Readers take the writers' lock when a writer has left its lock file, so an append is seen whole or not at
    all; a CSV no refbench process ever appended to (the packaged ones, possibly in a read-only folder) has none
    and is read without creating one."""
    lock = _lock_file(path)
    if lock.is_file():
        from refbench.files import file_lock

        with file_lock(lock):
            yield
    else:
        yield


# ----------------------------------------------------------------------------------------------------------
# Reading and appending
# ----------------------------------------------------------------------------------------------------------


def _parse(text: str, path: Path, strict: bool) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    header_seen = False
    for record in reader:
        line = reader.line_num
        if not header_seen:
            header_seen = True
            if tuple(c.strip() for c in record) != COLUMNS:
                raise LeaderboardError(
                    f"{path}:{line}: header must be {','.join(COLUMNS)}; got {','.join(record)}"
                )
            continue
        if not record or all(not c.strip() for c in record):
            continue  # blank line
        if len(record) != len(COLUMNS):
            raise LeaderboardError(f"{path}:{line}: {len(record)} fields, expected {len(COLUMNS)}")
        try:
            row = Row.from_dict(dict(zip(COLUMNS, record)))
            if strict:
                validate_row(row)
        except ValueError as exc:
            raise LeaderboardError(f"{path}:{line}: {exc}") from None
        rows.append(row)
    return rows


def read_rows(paths_or_dirs: str | os.PathLike | Iterable[str | os.PathLike], strict: bool = True) -> list[Row]:
    """All rows of the given CSV files and of the ``*.csv`` files in the given folders, in order.

    Every file must have the :data:`COLUMNS` header and every row must be valid (:class:`Row`); with
    ``strict`` (default) dataset names must be known (:func:`known_datasets`) and metric names in
    :data:`METRICS`. An empty file holds no rows. Raises :class:`LeaderboardError` ``"<file>:<line>: ..."``.
    A file that :func:`append_rows` has written is read under its lock, so a concurrent append is seen whole or
    not at all.
    """
    rows: list[Row] = []
    for path in _csv_files(paths_or_dirs):
        try:
            with _read_lock(path), open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise LeaderboardError(f"{path}:0: cannot read: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise LeaderboardError(f"{path}:{line}: not UTF-8 text") from None
        if text.strip():
            rows.extend(_parse(text, path, strict))
    return rows


def _encode(rows: Iterable[Row], header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        d = row.to_dict()
        writer.writerow([d[c] for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def append_rows(path: str | os.PathLike, rows: Iterable[Row], strict: bool = True) -> None:
    """Append ``rows`` to the leaderboard CSV at ``path``, safely when several processes append at once.

    The file (and its folder) is created when missing; the header is written when the file is empty, and an
    existing file's header is checked first. All rows go out in one ``write`` under an exclusive lock on the
    sibling ``<file>.lock`` (:func:`refbench.files.file_lock`), then are flushed and fsynced.
    """
    path = Path(path)
    rows = list(rows)
    for row in rows:
        if not isinstance(row, Row):
            raise TypeError(f"append_rows takes Row objects, got {type(row).__name__}")
        if strict:
            validate_row(row)
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    from refbench.files import file_lock

    with file_lock(_lock_file(path)), open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        prefix = b""
        if size:
            fh.seek(0)
            first = fh.readline().decode("utf-8-sig", errors="replace").strip()
            if tuple(c.strip() for c in first.split(",")) != COLUMNS:
                raise LeaderboardError(f"{path}:1: header must be {','.join(COLUMNS)}; got {first}")
            fh.seek(size - 1)
            if fh.read(1) not in (b"\n", b"\r"):
                prefix = b"\n"
        data = prefix + _encode(rows, header=size == 0)
        view = memoryview(data)
        while view:  # one write call in practice; a short write on a regular file is continued, still locked
            written = os.write(fh.fileno(), view)
            view = view[written:]
        fh.flush()
        os.fsync(fh.fileno())


def rows_from_summary(
    summary: Mapping[str, Any],
    model: str,
    run_id: str,
    fingerprint: str,
    source: str,
    metrics: Iterable[str] | None = None,
    notes: str = "",
) -> list[Row]:
    """Reproduced rows from a refbench summary (the dict :func:`refbench.evaluate.run.evaluate` returns).

    ``summary`` needs ``dataset``, ``protocol``, ``metrics`` {name: value} in percent, ``scale`` ("percent")
    and ``provenance`` {``refbench_version``, ``date``}; a summary written before the one-scale change
    (``scale`` "fraction") is refused with a line saying how to rescore it. By default the headline metrics
    present (:data:`HEADLINE_METRICS`) and the ReVOS
    per-category values (``"J&F (referring)"``, ...) are kept, in the summary's order; ``metrics`` names
    others explicitly. ``source`` is the run directory or commit.
    """
    for key in ("dataset", "metrics", "scale"):
        if key not in summary:
            raise ValueError(f"summary has no {key!r}")
    scale = summary["scale"]
    if scale == "fraction":
        raise ValueError(f"summary of {summary.get('dataset')!r} was written on the old fraction scale (before "
                         "refbench used one scale); rescore it with refbench eval --run DIR --json DIR/summary.json")
    if scale != "percent":
        raise ValueError(f"summary scale {scale!r} is not 'percent'")
    values: Mapping[str, Any] = summary["metrics"]
    if metrics is None:
        names = [n for n in values if n in METRICS]
    else:
        names = list(metrics)
        absent = [n for n in names if n not in values]
        if absent:
            raise ValueError(f"summary has no metric {', '.join(map(repr, absent))}; it has {', '.join(values)}")
    prov = summary.get("provenance") or {}
    rows: list[Row] = []
    for name in names:
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"metric {name!r} is not a number: {v!r}")
        try:
            rows.append(Row(
                dataset=str(summary["dataset"]), model=model, metric=name, value=float(v),
                scale="percent", protocol=str(summary.get("protocol") or ""), kind="reproduced", source=source,
                date=str(prov.get("date") or ""), refbench_version=str(prov.get("refbench_version") or ""),
                run_id=run_id, fingerprint=fingerprint, notes=notes,
            ))
        except ValueError as exc:
            raise ValueError(f"{summary['dataset']} {name}: {exc}") from None
    return rows


# ----------------------------------------------------------------------------------------------------------
# Selecting and formatting
# ----------------------------------------------------------------------------------------------------------


def select(
    rows: Iterable[Row],
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
    kind: str | None = None,
) -> list[Row]:
    """Rows matching every filter given (dataset and model compare case-insensitively)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    out = []
    for r in rows:
        if dataset is not None and r.dataset.lower() != dataset.lower():
            continue
        if model is not None and r.model.lower() != model.lower():
            continue
        if metric is not None and r.metric != metric:
            continue
        if kind is not None and r.kind != kind:
            continue
        out.append(r)
    return out


def _short(value: float) -> str:
    s = f"{value:.2f}"
    return s[:-1] if s.endswith("0") else s


def _metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    known = [m for m in METRICS if m in names]
    return known + sorted(names - set(known))


def _dataset_order(datasets: Iterable[str]) -> list[str]:
    try:
        tasks = known_datasets()
    except Exception:  # pragma: no cover - cards unreadable: plain name order
        tasks = {}

    def key(name: str):
        fam = FAMILIES.get(tasks.get(name, ""), "")
        rank = _FAMILY_ORDER.index(fam) if fam in _FAMILY_ORDER else len(_FAMILY_ORDER)
        return (rank, name)

    return sorted(set(datasets), key=key)


def _label(protocol: str) -> str:
    """The protocol as shown beside every number: its convention where it has one (``refdavis_b (convention
    B)``), ``-`` when the source does not say."""
    if not protocol:
        return "-"
    try:
        from refbench.protocols import protocol_label

        return protocol_label(protocol)
    except Exception:  # noqa: BLE001 - unreadable protocol cards cost only the label
        return protocol


def _pivot(rows: list[Row]) -> list[tuple[str, list[str], list[list[str]], list[str]]]:
    """Per (dataset, protocol): (title, header, body lines, footnotes), one line per (model, kind, source/run).

    Numbers of different protocols are never ranked in one table: a reproduced row is only compared with the
    reported rows of its own protocol (Ref-DAVIS17's conventions A and B, a challenge server's ``server``)."""
    out = []
    for ds in _dataset_order(r.dataset for r in rows):
        protocols = sorted({r.protocol for r in rows if r.dataset == ds}, key=lambda p: (p == "", p))
        for protocol in protocols:
            out.append(_pivot_one(ds, protocol, [r for r in rows if r.dataset == ds and r.protocol == protocol],
                                  several=len(protocols) > 1))
    return out


def _pivot_one(ds: str, protocol: str, these: list[Row],
               several: bool) -> tuple[str, list[str], list[list[str]], list[str]]:
    metrics = _metric_order(r.metric for r in these)
    lines: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in these:
        ident = r.run_id if r.kind == "reproduced" else r.source
        k = (r.model, r.kind, r.protocol, ident)
        entry = lines.setdefault(k, {"values": {}, "row": r})
        entry["values"][r.metric] = r.value
    primary = next((m for m in metrics if m in HEADLINE_METRICS), metrics[0])
    ordered = sorted(
        lines.items(),
        key=lambda kv: (-kv[1]["values"].get(primary, -1.0), kv[0][0].lower(), kv[0][1]),
    )
    notes: list[str] = []
    body = []
    for (model, kind, _protocol, _ident), entry in ordered:
        r: Row = entry["row"]
        if kind == "reproduced":
            ref = f"run {r.run_id}: {r.source} (refbench {r.refbench_version}, {r.date})"
        else:
            ref = r.source + (f" ({r.date})" if r.date else "")
        if r.notes:
            ref += f"; {r.notes}"
        if ref not in notes:
            notes.append(ref)
        cells = [model, kind, _label(protocol)]
        cells += [_short(entry["values"][m]) if m in entry["values"] else "" for m in metrics]
        cells.append(f"[{notes.index(ref) + 1}]")
        body.append(cells)
    title = f"{ds}, protocol {_label(protocol)}" if protocol else f"{ds}, protocol not stated by the source"
    if several:
        title += " (other protocols of this dataset: own tables; not comparable)"
    return title, ["model", "kind", "protocol", *metrics, "ref"], body, notes


def format_rows(rows: Iterable[Row], fmt: str = "table") -> str:
    """Text for ``rows``: ``table`` (aligned text), ``markdown`` (GitHub tables) or ``csv`` (the long rows).

    ``table`` and ``markdown`` pivot each (dataset, protocol) into its own table, since numbers of different
    protocols are not comparable: one line per (model, kind, source or run), one column per metric (percent),
    sorted by the dataset's primary metric; the protocol column names the convention where the protocol has one
    (Ref-DAVIS17 ``refdavis_a (convention A)`` / ``refdavis_b (convention B)``); the ``kind`` column says
    ``reported`` or ``reproduced`` (bold in markdown) and ``[n]`` points to the numbered sources below.
    """
    rows = list(rows)
    if fmt == "csv":
        return _encode(rows, header=True).decode("utf-8")
    if fmt not in ("table", "markdown"):
        raise ValueError(f"format {fmt!r} is not one of table, markdown, csv")
    if not rows:
        return "(no leaderboard rows match)"
    blocks = []
    for ds, header, body, notes in _pivot(rows):
        if fmt == "markdown":
            lines = [f"### {ds}", "", "| " + " | ".join(header) + " |",
                     "|" + "|".join("---:" if i >= 3 and i < len(header) - 1 else "---"
                                    for i in range(len(header))) + "|"]
            for cells in body:
                cells = list(cells)
                if cells[1] == "reproduced":
                    cells[1] = "**reproduced**"
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
            lines += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
        else:
            widths = [max(len(header[i]), *(len(c[i]) for c in body)) for i in range(len(header))]

            def fmt_line(cells: list[str]) -> str:
                parts = [c.ljust(w) if i < 3 or i == len(cells) - 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))]
                return "  " + "  ".join(parts).rstrip()

            lines = [f"{ds}  (percent; reported = published, reproduced = refbench run)", fmt_line(header),
                     "  " + "  ".join("-" * w for w in widths)]
            lines += [fmt_line(c) for c in body]
            lines += [f"  [{i}] {n}" for i, n in enumerate(notes, 1)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def _examples():
    from refbench.clikit import examples

    return examples("refbench leaderboard --dataset mevis_val_u",
                    "refbench leaderboard --kind reproduced --format markdown",
                    "refbench leaderboard --dataset charades_sta_test --json - | jq '.[].value'")


@click.command("leaderboard", epilog=_examples())
@click.option("--dataset", "dataset", metavar="D", help="only this dataset (a dataset card name)")
@click.option("--model", "model", metavar="M", help="only this model / variant")
@click.option("--kind", type=click.Choice(KINDS), help="only reported or only reproduced rows")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv"]), default="table",
              show_default=True, help="aligned text, GitHub markdown, or the long CSV rows")
@click.option("--dir", "dirs", multiple=True, type=click.Path(), metavar="DIR",
              help="extra leaderboard folder or CSV (repeatable); $REFBENCH_LEADERBOARD adds more")
@click.option("--json", "json_out", metavar="FILE|-",
              help="Write the selected rows as JSON here (a list); - writes them to standard output instead of the "
                   "table.")
def leaderboard_command(dataset, model, kind, fmt, dirs, json_out):
    """Show the leaderboards: reported numbers (with sources) and reproduced refbench runs."""
    from refbench.clikit import Console, check_json_path

    check_json_path(None, None, json_out)
    if dataset is not None and dataset.lower() not in {d.lower() for d in known_datasets()}:
        from refbench.cards import suggest

        raise RefbenchInputError(f"--dataset: unknown dataset {dataset!r}{suggest(dataset, known_datasets())}")
    rows = read_rows(leaderboard_dirs(extra=list(dirs)))
    rows = select(rows, dataset=dataset, model=model, kind=kind)
    con = Console(json_out)
    con.emit_json([{**r.to_dict(), "value": r.value} for r in rows], what="rows")
    if not con.json_to_stdout:
        text = format_rows(rows, fmt)
        con.result(text[:-1] if text.endswith("\n") else text)
