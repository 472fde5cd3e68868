"""The crash-safe prediction store of a run: one SQLite file per process (``part-<rank>.sqlite``).

Why SQLite: each batch of predictions is one transaction in a write-ahead log with ``synchronous=FULL``, so
killing the process at any moment leaves every committed sample intact and no partial one (SQLite rolls an
unfinished transaction back on the next open); it needs no server and no extra package, and one file per rank
means ranks never contend for a lock. A run directory's store is bound to one header -- adapter name and
fingerprint, dataset card, annotation hash, task -- written when the file is created; opening it with any other
header raises :class:`StoreMismatch` instead of silently reusing predictions made under other settings.

Payloads are JSON text (readable with the ``sqlite3`` shell): RefVOS ``{"size": [H, W], "rles": [counts, ...]}``
(one COCO compressed RLE string per frame), RES ``{"size": [H, W], "counts": str}``, TSG
``{"spans": [[s, e], ...], "text": str | null}``, semi-supervised VOS ``{"size": [H, W], "frames": [names],
"objects": {obj_id: [counts, ...]}}`` (one RLE per object and frame; :mod:`refbench.runs.vos`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

import numpy as np

from refbench.errors import RefbenchInputError

SCHEMA = 1
HEADER_KEYS = ("schema", "adapter", "fingerprint", "dataset", "task", "annotation_sha256")


class StoreError(RefbenchInputError, RuntimeError):
    """A part file cannot be read or written (corrupt, not a store, a full disk); the message names it."""


class StoreMismatch(StoreError):
    """A run directory holds predictions made under another adapter fingerprint or dataset."""


class HeaderMismatch(StoreMismatch):
    """The part file is a store, made under another header (adapter, fingerprint, dataset, annotations)."""


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
    """``(T, H, W) bool`` -> ``{"size": [H, W], "rles": [counts, ...]}`` (COCO compressed RLE per frame)."""
    from pycocotools import mask as mask_utils

    t, h, w = masks.shape
    if t == 0:
        return {"size": [h, w], "rles": []}
    enc = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return {"size": [h, w], "rles": [e["counts"].decode("ascii") for e in enc]}


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W) bool`` -> ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as mask_utils

    e = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": e["counts"].decode("ascii")}


def decode_masks(payload: Mapping[str, Any], where: str = "stored prediction") -> np.ndarray:
    """Inverse of :func:`encode_masks`: ``(T, H, W) bool``; every RLE is checked first
    (:func:`refbench.rle.check_rle`), a malformed one is a :class:`StoreError` naming ``where``."""
    from refbench.rle import decode_rle, rle_size

    if not isinstance(payload, Mapping) or not isinstance(payload.get("rles"), list):
        raise StoreError(f"{where}: payload is not {{'size': [H, W], 'rles': [...]}}")
    h, w = rle_size(dict(payload), where, StoreError)
    rles = payload["rles"]
    out = np.zeros((len(rles), h, w), bool)
    for t, c in enumerate(rles):
        out[t] = decode_rle({"size": [h, w], "counts": c}, f"{where} frame {t}", (h, w), StoreError) != 0
    return out


# ----------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------


def _connect(path: Path, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    if immutable:  # reads the file as it is: no lock, no -wal / -shm file created beside it
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    elif readonly:
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=60, check_same_thread=False)
    else:
        con = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
    return con


class RunStore:
    """One part file of a run's store. ``header``: the values of :data:`HEADER_KEYS` (``schema`` filled in)."""

    def __init__(self, path: str | Path, header: Mapping[str, Any], readonly: bool = False,
                 immutable: bool = False) -> None:
        self.path = Path(path)
        self.header = {"schema": SCHEMA, **{k: header.get(k) for k in HEADER_KEYS if k != "schema"}}
        readonly = readonly or immutable
        if readonly and not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such store")
        self._blank = False
        try:
            self._con = _connect(self.path, readonly, immutable)
        except sqlite3.Error as exc:
            raise _db_error(self.path, exc) from exc
        try:
            self._open(readonly)
        except BaseException:
            self._con.close()
            raise

    def _open(self, readonly: bool) -> None:
        try:
            if not readonly:
                self._create()
            elif not self._con.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone():
                # created by a process that died (or is starting) before its tables were committed: empty
                self._blank = True
                return
            self._check_header()
        except sqlite3.Error as exc:
            raise _db_error(self.path, exc) from exc

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
        try:
            have = {k: json.loads(v) for k, v in self._con.execute("SELECT key, value FROM meta")}
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{self.path}: corrupt store header ({exc}); use another --out directory, or "
                             "--overwrite to discard it") from exc
        diffs = [f"{k}: stored {have.get(k)!r}, now {v!r}" for k, v in self.header.items() if have.get(k) != v]
        if diffs:
            raise HeaderMismatch(
                f"{self.path}: holds predictions made under other settings ({'; '.join(diffs)}); use another "
                "--out directory, or --overwrite to discard them"
            )

    # -- reading --------------------------------------------------------------------------------
    def done(self) -> set[str]:
        if self._blank:
            return set()
        with self._errors():
            return {r[0] for r in self._con.execute("SELECT sample_id FROM predictions")}

    def __len__(self) -> int:
        if self._blank:
            return 0
        with self._errors():
            return int(self._con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def get(self, sample_id: str) -> Stored | None:
        if self._blank:
            return None
        with self._errors():
            row = self._con.execute("SELECT sample_id, video, payload, diagnostics, seconds FROM predictions "
                                    "WHERE sample_id = ?", (sample_id,)).fetchone()
            return self._row(row) if row else None

    def items(self) -> Iterator[Stored]:
        if self._blank:
            return
        with self._errors():
            for row in self._con.execute("SELECT sample_id, video, payload, diagnostics, seconds FROM predictions"):
                yield self._row(row)

    def _row(self, row: tuple) -> Stored:
        try:
            payload, diagnostics = json.loads(row[2]), json.loads(row[3])
            # a RES payload may be null: the adapter found no mask (scored by the protocol's null rule)
            if not isinstance(row[0], str) or not (isinstance(payload, dict) or payload is None):
                raise ValueError("not a sample id and a JSON object")
            return Stored(row[0], str(row[1]), payload, diagnostics, float(row[4]))
        except (ValueError, TypeError, RecursionError) as exc:
            raise StoreError(f"{self.path}: corrupt stored prediction {row[0]!r} ({exc}); use --overwrite to "
                             "discard the store") from exc

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(_sqlite_message(self.path, exc)) from exc

    # -- writing --------------------------------------------------------------------------------
    def put_many(self, items: Iterable[Stored]) -> None:
        """Store a batch in one transaction: after this returns the batch survives a crash; if the process
        dies inside it, none of the batch is stored."""
        rows = [(s.sample_id, s.video, json.dumps(s.payload, separators=(",", ":")),
                 json.dumps(s.diagnostics, default=jsonable, separators=(",", ":")), float(s.seconds))
                for s in items]
        with self._errors(), self._con:
            self._con.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _db_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A file that is no SQLite database (or a corrupt one) is a mismatch; other errors say what happened."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StoreMismatch(f"{path}: not a refbench prediction store ({exc}); use another --out directory, or "
                             "--overwrite to discard it")
    return StoreError(_sqlite_message(path, exc))


def _sqlite_message(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "disk is full" in text or "disk I/O error" in text:
        return (f"{path}: cannot write the prediction store ({text}); free space there or choose another --out; "
                "every batch stored so far is kept, run the same command again to resume")
    return f"{path}: prediction store error ({text})"


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


__all__ = ["HEADER_KEYS", "HeaderMismatch", "RunStore", "SCHEMA", "Stored", "StoreError", "StoreMismatch", "decode_masks", "encode_mask",
           "encode_masks", "jsonable", "part_path", "part_paths"]
