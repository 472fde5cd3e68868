"""The crash-safe prediction store of a run: one SQLite file per process (``part-<rank>.sqlite``).

Why SQLite: each batch of predictions is one transaction in a write-ahead log with ``synchronous=FULL``, so
killing the process at any moment leaves every committed sample intact and no partial one (SQLite rolls an
unfinished transaction back on the next open); it needs no server and no extra package, and one file per rank
means ranks never contend for a lock. A run directory's store is bound to one header -- adapter name and
fingerprint, dataset card, annotation hash, task -- written when the file is created; opening it with any other
header raises :class:`StoreMismatch` instead of silently reusing predictions made under other settings.

Payloads are JSON text (readable with the ``sqlite3`` shell): RefVOS ``{"size": [H, W], "rles": [counts, ...]}``
(one COCO compressed RLE string per frame), RES ``{"size": [H, W], "counts": str}``, TSG
``{"spans": [[s, e], ...], "text": str | null}``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

SCHEMA = 1
HEADER_KEYS = ("schema", "adapter", "fingerprint", "dataset", "task", "annotation_sha256")


class StoreMismatch(RuntimeError):
    """A run directory holds predictions made under another adapter fingerprint or dataset."""


@dataclass(frozen=True)
class Stored:
    sample_id: str
    video: str
    payload: dict[str, Any]
    diagnostics: dict[str, Any]
    seconds: float


# ----------------------------------------------------------------------------------------------
# Mask <-> RLE
# ----------------------------------------------------------------------------------------------


def encode_masks(masks: np.ndarray) -> dict[str, Any]:
    """``(T, H, W) bool`` -> ``{"size": [H, W], "rles": [counts, ...]}`` (COCO compressed RLE per frame).

    Encoded from the row-major frames by :mod:`refbench.runs.rle_encode`: pycocotools' strings byte for byte
    (tested), without transposing the stack into Fortran order first (which cost 4x the encoding)."""
    from refbench.runs.rle_encode import encode_frame

    t, h, w = masks.shape
    return {"size": [h, w], "rles": [encode_frame(m) for m in masks]}


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W) bool`` -> ``{"size": [H, W], "counts": str}``."""
    from refbench.runs.rle_encode import encode_frame

    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": encode_frame(mask)}


def decode_masks(payload: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_masks`: ``(T, H, W) bool``."""
    from pycocotools import mask as mask_utils

    h, w = payload["size"]
    rles = payload["rles"]
    if not rles:
        return np.zeros((0, h, w), bool)
    m = mask_utils.decode([{"size": [h, w], "counts": c.encode("ascii")} for c in rles])
    return np.ascontiguousarray(m.transpose(2, 0, 1) != 0)


# ----------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
    else:
        con = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
    return con


class RunStore:
    """One part file of a run's store. ``header``: the values of :data:`HEADER_KEYS` (``schema`` filled in)."""

    def __init__(self, path: str | Path, header: Mapping[str, Any], readonly: bool = False) -> None:
        self.path = Path(path)
        self.header = {"schema": SCHEMA, **{k: header.get(k) for k in HEADER_KEYS if k != "schema"}}
        if readonly and not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such store")
        self._blank = False
        try:
            self._con = _connect(self.path, readonly)
            if not readonly:
                self._create()
            elif not self._con.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone():
                # created by a process that died (or is starting) before its tables were committed: empty
                self._blank = True
                return
            self._check_header()
        except sqlite3.DatabaseError as exc:
            raise StoreMismatch(f"{self.path}: not a refbench prediction store ({exc})") from exc

    def _create(self) -> None:
        """Tables and header in one explicit transaction, so no reader ever sees a store without its header
        (Python's sqlite3 would otherwise commit each CREATE TABLE on its own)."""
        con = self._con
        con.isolation_level = None
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            con.execute("CREATE TABLE IF NOT EXISTS predictions (sample_id TEXT PRIMARY KEY, video TEXT NOT NULL, "
                        "payload TEXT NOT NULL, diagnostics TEXT NOT NULL, seconds REAL NOT NULL)")
            if not con.execute("SELECT 1 FROM meta LIMIT 1").fetchone():
                con.executemany("INSERT INTO meta VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in self.header.items()])
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.isolation_level = ""

    def _check_header(self) -> None:
        have = {k: json.loads(v) for k, v in self._con.execute("SELECT key, value FROM meta")}
        diffs = [f"{k}: stored {have.get(k)!r}, now {v!r}" for k, v in self.header.items() if have.get(k) != v]
        if diffs:
            raise StoreMismatch(
                f"{self.path}: holds predictions made under other settings ({'; '.join(diffs)}); use another "
                "--out directory, or --overwrite to discard them"
            )

    # -- reading --------------------------------------------------------------------------------
    def done(self) -> set[str]:
        if self._blank:
            return set()
        return {r[0] for r in self._con.execute("SELECT sample_id FROM predictions")}

    def __len__(self) -> int:
        if self._blank:
            return 0
        return int(self._con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def get(self, sample_id: str) -> Stored | None:
        if self._blank:
            return None
        row = self._con.execute("SELECT sample_id, video, payload, diagnostics, seconds FROM predictions "
                                "WHERE sample_id = ?", (sample_id,)).fetchone()
        return self._row(row) if row else None

    def items(self) -> Iterator[Stored]:
        if self._blank:
            return
        for row in self._con.execute("SELECT sample_id, video, payload, diagnostics, seconds FROM predictions"):
            yield self._row(row)

    @staticmethod
    def _row(row: tuple) -> Stored:
        return Stored(row[0], row[1], json.loads(row[2]), json.loads(row[3]), float(row[4]))

    # -- writing --------------------------------------------------------------------------------
    def put_many(self, items: Iterable[Stored]) -> None:
        """Store a batch in one transaction: after this returns the batch survives a crash; if the process
        dies inside it, none of the batch is stored."""
        rows = [(s.sample_id, s.video, json.dumps(s.payload, separators=(",", ":")),
                 json.dumps(s.diagnostics, default=jsonable, separators=(",", ":")), float(s.seconds))
                for s in items]
        with self._con:
            self._con.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def jsonable(x: Any) -> Any:
    """JSON ``default`` for diagnostics: numpy scalars and arrays as numbers and lists, paths as text, anything
    else as its repr."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    return repr(x)


def part_path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / f"part-{rank:05d}.sqlite"


def part_paths(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("part-*.sqlite"))


__all__ = ["HEADER_KEYS", "RunStore", "SCHEMA", "Stored", "StoreMismatch", "decode_masks", "encode_mask",
           "encode_masks", "jsonable", "part_path", "part_paths"]
