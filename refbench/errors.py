"""Typed errors of the library, and the exit code the command line gives each.

Library code raises these (never exits); :mod:`refbench.cli` prints ``str(exc)`` as one line and exits with
``exc.exit_code``. Every message names the file (and key, frame or query) and, where a user can change
something, the command-line flag to change (``--missing empty``, ``--overwrite``), never a Python argument.

* :class:`RefbenchInputError` (exit 2): bad input or usage -- an unreadable or malformed file, a bad option.
  Also a :class:`ValueError`, so code that catches ``ValueError`` keeps working.
  :class:`refbench.data.base.DatasetError` and :class:`refbench.data.base.PredictionError` derive from it.
* :class:`RefbenchCheckError` (exit 1): a check ran and failed (``regress`` drift, ``datasets check``).
* :class:`RefbenchInterrupted` (exit 130): stopped by Ctrl-C.

Exit codes: 0 success, 1 a check failed, 2 bad input or usage, 130 interrupted, 70 an internal error (a bug).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK = 1
EXIT_INPUT = 2
EXIT_BUG = 70  # sysexits EX_SOFTWARE: an exception no refbench code expected
EXIT_INTERRUPTED = 130

#: what the command line says about an exception no refbench code expected
BUG_HINT = ("this is a bug in refbench; please report it with the command you ran and this line "
            "(REFBENCH_DEBUG=1 shows the traceback)")


class RefbenchError(Exception):
    """Base of every expected refbench failure: ``str(exc)`` is the one-line message."""

    exit_code = EXIT_INPUT


class RefbenchInputError(RefbenchError, ValueError):
    """Bad input or usage: a file that cannot be read or does not fit, an option out of range (exit 2)."""

    exit_code = EXIT_INPUT


class RefbenchCheckError(RefbenchError):
    """A check ran and failed: a metric drifted, a dataset has problems (exit 1)."""

    exit_code = EXIT_CHECK


class RefbenchInterrupted(RefbenchError):
    """Stopped by the user (Ctrl-C); the message says what was kept (exit 130)."""

    exit_code = EXIT_INTERRUPTED


__all__ = ["EXIT_BUG", "EXIT_CHECK", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "BUG_HINT", "RefbenchCheckError",
           "RefbenchError", "RefbenchInputError", "RefbenchInterrupted"]
