"""Where each expression's list lies in a prediction JSON file, found without holding the parsed file.

An RLE prediction file of a large set (10,000 expressions x 80 frames) parses into millions of Python
objects, several times the file's size. :func:`index_members` reads the file in blocks, parses one member
value at a time with the C JSON decoder (:meth:`json.JSONDecoder.raw_decode`), records where it lies (byte
offsets) and lets it go; :func:`read_value` parses one recorded value again when it is scored. Memory is one
block plus one value. Only ASCII files are indexed (byte and character offsets agree; RLE counts are ASCII);
:func:`index_members` returns None for others and the caller parses the whole file as before.

The index is as strict as :func:`refbench.files.load_json`: a key twice in one object (at the indexed levels
or inside a value) raises :class:`refbench.files.DuplicateKeyError`, nesting too deep for the parser
``RecursionError``, anything else malformed :class:`JsonShapeError`; a caller that wants
``load_json``'s exact message for such a file asks it (the file is then parsed whole, on the error path only).
The file is opened with :func:`refbench.files.open_regular` (a FIFO is refused).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

_BLOCK = 1 << 22
_WS = " \t\n\r"


class JsonShapeError(ValueError):
    """The file is JSON-like but not an object of the expected shape (message without the file name)."""


@dataclass(frozen=True)
class Member:
    """One member value: ``keys`` is (outer,) or (outer, inner); ``kind`` the value's JSON type ("list",
    "object", "other"); bytes [start, end) of the file hold it."""

    keys: tuple[str, ...]
    kind: str
    start: int
    end: int


class _Reader:
    """A growing ASCII text window over a file: ``text[i]`` is byte ``base + i``."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.text = ""
        self.base = 0
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        block = self.fh.read(_BLOCK)
        if not block:
            self.eof = True
            return False
        if not block.isascii():
            raise UnicodeError("non-ASCII")
        self.text += block.decode("ascii")
        return True

    def drop(self, i: int) -> int:
        """Forget text before index i; returns the new index of that position (0)."""
        if i > _BLOCK:
            self.text = self.text[i:]
            self.base += i
            return 0
        return i

    def skip_ws(self, i: int) -> int:
        while True:
            while i < len(self.text) and self.text[i] in _WS:
                i += 1
            if i < len(self.text) or not self.more():
                return i

    def char(self, i: int) -> str:
        i = self.skip_ws(i)
        return self.text[i] if i < len(self.text) else ""

    def value(self, i: int, decoder: json.JSONDecoder) -> tuple[Any, int]:
        """Parse the JSON value at i (reading more of the file while it is cut off); (value, end index)."""
        while True:
            try:
                return decoder.raw_decode(self.text, i)
            except json.JSONDecodeError as exc:
                if self.eof or not self.more():
                    raise JsonShapeError(f"invalid JSON at byte {self.base + exc.pos}: {exc.msg}") from exc


def _kind(v: Any) -> str:
    return "list" if isinstance(v, list) else ("object" if isinstance(v, dict) else "other")


def _members(r: _Reader, i: int, decoder: json.JSONDecoder, keys: tuple[str, ...], depth: int,
             out: list[Member]) -> int:
    """Index the members of the object whose '{' is at i; inner objects (depth 2) are walked too."""
    from refbench.files import DuplicateKeyError

    i = r.skip_ws(i) + 1
    if r.char(i) == "}":
        return r.skip_ws(i) + 1
    seen: set[str] = set()
    while True:
        i = r.skip_ws(i)
        if r.char(i) != '"':
            raise JsonShapeError(f"expected a member name at byte {r.base + i}")
        key, i = r.value(i, decoder)
        if key in seen:
            raise DuplicateKeyError(key)
        seen.add(key)
        if r.char(i) != ":":
            raise JsonShapeError(f"expected ':' at byte {r.base + i}")
        i = r.skip_ws(r.skip_ws(i) + 1)
        if depth > 1 and r.char(i) == "{":
            inner: list[Member] = []
            start = r.base + i
            i = _members(r, i, decoder, (*keys, key), depth - 1, inner)
            out.append(Member((*keys, key), "object", start, r.base + i))
            out.extend(inner)
        else:
            start = r.base + i
            v, i = r.value(i, decoder)
            out.append(Member((*keys, key), _kind(v), start, r.base + i))
            del v
        c = r.char(i)
        i = r.skip_ws(i) + 1
        if c == "}":
            return i
        if c != ",":
            raise JsonShapeError(f"expected ',' or '}}' at byte {r.base + i - 1}")
        i = r.drop(i)


def index_members(path: str | os.PathLike, depth: int = 2, error: type[Exception] = OSError,
                  what: str = "JSON file") -> list[Member] | None:
    """Members of the top-level JSON object of ``path`` (and of its object members, to ``depth``), in file
    order, each with its byte range. An inner object is listed before its own members. None when the file is
    not ASCII. Raises JsonShapeError when the top level is not an object or the JSON is invalid,
    DuplicateKeyError / RecursionError (module doc), and ``error`` (``open_regular``) when the file is not a
    readable regular file."""
    from refbench.files import open_regular, unique_keys

    decoder = json.JSONDecoder(object_pairs_hook=unique_keys)
    with open_regular(path, error, what) as fh:
        r = _Reader(fh)
        try:
            i = r.skip_ws(0)
            if r.char(i) != "{":
                raise JsonShapeError("the top level is not a JSON object")
            out: list[Member] = []
            i = _members(r, i, decoder, (), depth, out)
            if r.char(i) != "":
                raise JsonShapeError(f"extra data after the top-level object at byte {r.base + r.skip_ws(i)}")
        except UnicodeError:
            return None
    return out


def read_value(fd: int, member: Member, where: str = "JSON file", error: type[Exception] = ValueError) -> Any:
    """Parse one indexed value again (``fd``: the file open for reading; ``os.pread`` keeps no shared offset,
    so forked workers can read it too), as strictly as :func:`refbench.files.parse_json`."""
    from refbench.files import parse_json

    data = os.pread(fd, member.end - member.start, member.start)
    if len(data) != member.end - member.start:
        raise error(f"{where}: the file changed while it was read")
    return parse_json(data, where, error)


def iter_values(path: Path, members: list[Member]) -> Iterator[tuple[Member, Any]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        for m in members:
            yield m, read_value(fd, m)
    finally:
        os.close(fd)


__all__ = ["JsonShapeError", "Member", "index_members", "iter_values", "read_value"]
