"""Reading input files safely and writing output files atomically.

* :func:`read_regular` reads regular files only (a FIFO or device named ``*.png`` or ``*.json`` is refused
  without blocking: the file is opened with ``O_NONBLOCK`` and checked with ``fstat`` before a byte is read),
  and at most ``limit`` bytes.
* :func:`load_json` parses a JSON file strictly enough to trust what it returns: a key twice in one object
  (``json`` keeps the last one silently) is refused naming the file and the key; nesting deep enough to
  exhaust the parser's recursion, numbers beyond Python's limits and invalid UTF-8 are one error naming the
  file, never a traceback.
* :func:`atomic_write` / :func:`atomic_output` write a temporary file beside the target, ``fsync`` it and
  rename it onto the target, so a full disk or a crash never leaves a truncated or 0-byte output behind;
  a failure removes the temporary file and leaves an existing target as it was.
* :func:`file_lock` serialises processes that change one file (a leaderboard CSV, the demo build): an
  exclusive ``filelock.FileLock`` on a lock file beside it, released by the OS if the process dies.

Every failure raises the caller's error class (:class:`~refbench.errors.RefbenchInputError` by default)
with a message that starts with the file's path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Union

from refbench.errors import RefbenchInputError

PathLike = Union[str, os.PathLike]


class DuplicateKeyError(ValueError):
    """Raised inside :func:`load_json`'s parser hook; reported as the caller's error class."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: PathLike, error: type[Exception] = RefbenchInputError, what: str = "file") -> IO[bytes]:
    """Open ``path`` for binary reading if it is a regular file (following symlinks); ``error`` otherwise.
    Never blocks on a FIFO."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot open {what} ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: {what} is {_kind(st.st_mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: PathLike, error: type[Exception] = RefbenchInputError, what: str = "file",
                 limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; at most ``limit`` bytes are read (more is an ``error``)."""
    with open_regular(path, error, what) as fh:
        try:
            data = fh.read() if limit is None else fh.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if limit is not None and len(data) > limit:
        raise error(f"{path}: {what} is larger than the {limit:,} bytes it can be")
    return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return out


#: the ``object_pairs_hook`` :func:`load_json` uses (raises DuplicateKeyError); for parsers that index files
unique_keys = _unique_keys


def parse_json(data: bytes | str, where: str, error: type[Exception] = RefbenchInputError,
               what: str = "JSON file", allow_duplicates: bool = False) -> Any:
    """Parse JSON text (see :func:`load_json`); ``where`` names the source in messages."""
    try:
        return json.loads(data, object_pairs_hook=None if allow_duplicates else _unique_keys)
    except DuplicateKeyError as exc:
        raise error(f"{where}: key {exc.args[0]!r} appears twice in one object; {what} must name each "
                    "key once") from None
    except json.JSONDecodeError as exc:
        raise error(f"{where}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{where}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise error(f"{where}: {what} is nested too deeply to be read") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer literal of more than 4300 digits
        raise error(f"{where}: {what} is not valid JSON ({exc})") from None


def load_json(path: PathLike, error: type[Exception] = RefbenchInputError, what: str = "JSON file",
              allow_duplicates: bool = False, limit: int | None = None) -> Any:
    """Read and parse a JSON file (a regular file, at most ``limit`` bytes). Refused with ``error``: a missing
    or non-regular file, invalid JSON (line and column), a key twice in one object (unless ``allow_duplicates``),
    nesting too deep for the parser, invalid UTF-8."""
    return parse_json(read_regular(path, error, what, limit), str(path), error, what, allow_duplicates)


# ----------------------------------------------------------------------------------------------
# Atomic outputs
# ----------------------------------------------------------------------------------------------


class OutputError(RefbenchInputError):
    """An output file cannot be written (a missing or read-only folder, a full disk); names the file."""


def _describe_os_error(path: Path, exc: OSError, flag: str | None) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        why = "the disk is full" if exc.errno != errno.EFBIG else "the file is too large for this file system"
    else:
        why = exc.strerror or str(exc)
    hint = f"; choose another {flag}" if flag else ""
    return f"{path}: cannot write ({why}){hint}; nothing was written there"


@contextlib.contextmanager
def atomic_output(path: PathLike, mode: str = "w", flag: str | None = None, **open_kwargs: Any) -> Iterator[IO]:
    """Write ``path`` atomically: yields a file open on a temporary file in the same folder; on a clean exit
    it is flushed, ``fsync``-ed and renamed onto ``path``; on any error it is removed and ``path`` is left as
    it was. OS errors become :class:`OutputError` naming ``path`` (and ``flag``, the option that names it)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file path" + (f" to {flag}" if flag else ""))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(_describe_os_error(path, exc, flag)) from None
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, mode, **open_kwargs) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(_describe_os_error(path, exc, flag)) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def file_lock(lock: PathLike) -> Iterator[None]:
    """Hold an exclusive inter-process lock on the file ``lock`` (created when missing and left in place)
    for the block: ``filelock.FileLock`` (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows), which the
    OS releases when the process dies. Blocks until the lock is free."""
    from filelock import FileLock

    with FileLock(os.fspath(lock)):
        yield


def atomic_write(path: PathLike, data: bytes | str, flag: str | None = None) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (:func:`atomic_output`)."""
    with atomic_output(path, "wb", flag) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


__all__ = ["DuplicateKeyError", "OutputError", "atomic_output", "atomic_write", "file_lock", "load_json",
           "open_regular", "parse_json", "read_regular", "unique_keys"]
