"""Reading a finished run directory for ``refbench compare``, ``report`` and ``fuse``.

A run directory (``refbench run``, ``refbench demo`` or ``refbench fuse``) holds ``summary.json`` (the
evaluation), ``per_sample.csv`` (one row per sample, first column the sample id), ``run.json`` (configuration and
provenance), the predictions ``refbench eval`` reads (``predictions.json``, or the path ``run.json`` names under
``predictions``) and, with ``--per-frame``, ``per_frame.csv``. What each command needs is checked when it asks
(:meth:`RunDir.need`); a missing or malformed file is a :class:`RunDirError` naming it.
"""

from __future__ import annotations

import ast
import csv
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from refbench.errors import RefbenchInputError

SUMMARY = "summary.json"
PER_SAMPLE = "per_sample.csv"
RUN_JSON = "run.json"
PREDICTIONS = "predictions.json"


class RunDirError(RefbenchInputError):
    """A run directory lacks a file a command needs, or holds a malformed one (the message names it)."""


def _number(text: str) -> Any:
    """A CSV cell as Python value: '' -> None, numbers -> float, True/False -> bool, lists / dicts -> parsed."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        pass
    if text[:1] in "[{(":
        try:
            return ast.literal_eval(text.replace("nan", "None"))
        except (ValueError, SyntaxError):
            return text
    return text


@dataclass
class RunDir:
    """One run directory, read lazily. ``label``: how it is named in messages (the path as given)."""

    path: Path
    label: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.label = self.label or str(self.path)
        if not self.path.is_dir():
            raise RunDirError(f"{self.label}: not a run directory (no such folder)")

    # ------------------------------------------------------------------ files

    def file(self, name: str) -> Path:
        return self.path / name

    def need(self, *names: str, why: str = "") -> None:
        """Raise naming the first of ``names`` that is absent."""
        for name in names:
            if not self.file(name).is_file():
                hint = f" ({why})" if why else ""
                raise RunDirError(f"{self.file(name)}: not found; {self.label} is not a scored refbench run{hint}")

    def _json(self, name: str) -> dict[str, Any]:
        from refbench.files import load_json

        if name not in self._cache:
            self.need(name)
            doc = load_json(self.file(name), RunDirError, name)
            if not isinstance(doc, dict):
                raise RunDirError(f"{self.file(name)}: expected a JSON object")
            self._cache[name] = doc
        return self._cache[name]

    @property
    def summary(self) -> dict[str, Any]:
        doc = self._json(SUMMARY)
        for key in ("dataset", "protocol", "metrics"):
            if key not in doc:
                raise RunDirError(f"{self.file(SUMMARY)}: no {key!r}; not a refbench summary")
        if doc.get("scale", "percent") != "percent":
            raise RunDirError(f"{self.file(SUMMARY)}: written on the old fraction scale; rescore it with refbench eval "
                              f"--run {self.label} --json {self.file(SUMMARY)}")
        return doc

    @property
    def meta(self) -> dict[str, Any] | None:
        """``run.json``, or None when the folder has none (a bare ``refbench eval`` output)."""
        return self._json(RUN_JSON) if self.file(RUN_JSON).is_file() else None

    @cached_property
    def rows(self) -> list[dict[str, str]]:
        """``per_sample.csv``: one dict of text cells per row (:func:`value` parses a cell)."""
        from refbench.files import read_regular

        self.need(PER_SAMPLE)
        text = read_regular(self.file(PER_SAMPLE), RunDirError, "per-sample CSV").decode("utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise RunDirError(f"{self.file(PER_SAMPLE)}: empty")
        out = [{k: (v or "") for k, v in rec.items()} for rec in reader]
        if not out:
            raise RunDirError(f"{self.file(PER_SAMPLE)}: no rows")
        self._cache["key_column"] = reader.fieldnames[0]
        return out

    @property
    def key_column(self) -> str:
        """The per-sample CSV's first column: the sample id."""
        _ = self.rows
        return self._cache["key_column"]

    def keys(self) -> list[str]:
        col = self.key_column
        return [r[col] for r in self.rows]

    # ------------------------------------------------------------------ identity

    @property
    def dataset(self) -> str:
        if self.file(SUMMARY).is_file():
            return str(self.summary["dataset"])
        meta = self.meta or {}
        try:
            return str(meta["header"]["dataset"])
        except (KeyError, TypeError):
            raise RunDirError(f"{self.label}: neither {SUMMARY} nor {RUN_JSON} names the dataset") from None

    @property
    def protocol(self) -> str | None:
        return str(self.summary["protocol"]) if self.file(SUMMARY).is_file() else None

    @property
    def task(self) -> str:
        from refbench.cards import dataset_card

        return dataset_card(self.dataset).task

    @property
    def model(self) -> str:
        meta = self.meta or {}
        run = (self.summary.get("run") or {}) if self.file(SUMMARY).is_file() else {}
        return str(run.get("model") or (meta.get("header") or {}).get("adapter") or self.path.name)

    @property
    def fingerprint(self) -> str | None:
        meta = self.meta or {}
        fp = (meta.get("header") or {}).get("fingerprint")
        if fp is None and self.file(SUMMARY).is_file():
            fp = (self.summary.get("run") or {}).get("fingerprint")
        return str(fp) if fp else None

    @property
    def annotation_sha256(self) -> str | None:
        meta = self.meta or {}
        sha = (meta.get("header") or {}).get("annotation_sha256")
        if sha is None and self.file(SUMMARY).is_file():
            sha = (self.summary.get("provenance") or {}).get("annotation_sha256")
        return str(sha) if sha else None

    @property
    def root(self) -> str | None:
        """The data root the run used (run.json ``config.root``, else the summary's provenance)."""
        meta = self.meta or {}
        root = (meta.get("config") or {}).get("root")
        if root is None and self.file(SUMMARY).is_file():
            root = (self.summary.get("provenance") or {}).get("data_root")
        return str(root) if root else None

    def predictions(self) -> Path:
        """The predictions ``refbench eval --run`` scores: run.json's ``predictions`` (relative to the run) when it
        names one, else ``predictions.json``."""
        meta = self.meta or {}
        name = meta.get("predictions") if isinstance(meta.get("predictions"), str) else PREDICTIONS
        path = self.path / name
        if not path.exists():
            raise RunDirError(f"{path}: not found; {self.label} holds no predictions")
        return path


def value(row: dict[str, str], column: str) -> Any:
    """One per-sample cell as a Python value (:func:`_number`); an absent column is None."""
    return _number(row.get(column, "") or "")


def number(row: dict[str, str], column: str) -> float:
    """One per-sample cell as a float; empty or absent is NaN."""
    v = value(row, column)
    if v is None or isinstance(v, (bool, str, list, dict, tuple)):
        return float("nan")
    return float(v)


def open_run(path: str | Path, label: str | None = None) -> RunDir:
    return RunDir(Path(path), label or str(path))


__all__ = ["PER_SAMPLE", "PREDICTIONS", "RUN_JSON", "SUMMARY", "RunDir", "RunDirError", "number", "open_run", "value"]
