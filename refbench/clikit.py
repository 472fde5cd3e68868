"""Pieces every ``refbench`` command shares: output streams, ``--json`` / ``--quiet``, progress, help examples,
``KEY=VALUE`` lists and ``--config`` files. Nothing here imports torch.

* **Streams** (:class:`Console`). A command's answer (its table) and its notes go to standard output; warnings,
  errors and progress to standard error. ``--json PATH`` also writes the command's JSON document to PATH;
  ``--json -`` writes it to standard output instead, and then *nothing else* goes there (table and notes move
  to standard error), so ``refbench ... --json - | jq`` always reads one JSON document. ``--quiet`` drops
  progress and notes; the answer, warnings and errors stay.
* **Options**: :func:`json_option`, :func:`quiet_option`, :func:`config_option` -- the same flag, help and
  checks on every command that has them.
* **Help**: :func:`examples` builds the ``Examples:`` epilog that every ``--help`` ends with.
* **Progress** (:class:`Progress`): a tqdm bar when standard error is a terminal; otherwise (logs, CI, pipes)
  one plain line every ``REFBENCH_PROGRESS_SECONDS`` seconds (default 30).
* **Lists of options** (:func:`split_pairs`): ``--model-arg a=1,b=2`` as lmms-eval writes it; a value that
  holds a comma is quoted, ``a="x,y"``.
* **Config files** (:func:`config_option`): ``--config FILE`` (YAML) holds a command's options; flags given on
  the command line override it; an unknown key is refused, naming it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Callable, Iterable

import click

#: ``--json -``: the JSON document goes to standard output
STDOUT = "-"


class UsageProblem(click.ClickException):
    """Bad usage found while reading the options: one line ``Error: ...`` (no usage text), exit code 2."""

    exit_code = 2

#: seconds between two plain progress lines when standard error is not a terminal
PROGRESS_ENV = "REFBENCH_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 30.0


# ----------------------------------------------------------------------------------------------
# Streams
# ----------------------------------------------------------------------------------------------


class Console:
    """Where a command's output goes (module doc): ``result`` and ``note`` to standard output, or to standard
    error when the JSON document takes standard output (``--json -``); ``log`` (progress-like messages) and
    ``warn`` to standard error. ``quiet`` drops ``note`` and ``log``."""

    def __init__(self, json_path: str | None = None, quiet: bool = False) -> None:
        self.json_path = json_path
        self.quiet = bool(quiet)

    @property
    def json_to_stdout(self) -> bool:
        return self.json_path == STDOUT

    def result(self, text: str) -> None:
        """The command's answer (a table, a status line): always shown."""
        click.echo(text, err=self.json_to_stdout)

    def note(self, text: str) -> None:
        """An informational line (where a file went, what was reused); dropped by ``--quiet``."""
        if not self.quiet:
            click.echo(text, err=self.json_to_stdout)

    def log(self, text: str) -> None:
        """A message about work in progress, on standard error; dropped by ``--quiet``."""
        if not self.quiet:
            click.echo(text, err=True)

    def warn(self, text: str) -> None:
        """A warning, on standard error; never dropped."""
        click.echo(text, err=True)

    def emit_json(self, doc: Any, flag: str = "--json", what: str = "summary", announce: bool = True) -> None:
        """Write ``doc`` where ``--json`` says: standard output for ``-``, else the file, atomically (then, with
        ``announce``, a note ``<what>: <path>``). Nothing happens without ``--json``."""
        if not self.json_path:
            return
        text = json.dumps(doc, indent=2, default=str) + "\n"
        if self.json_to_stdout:
            click.echo(text, nl=False)
            return
        from refbench.files import atomic_write

        atomic_write(self.json_path, text, flag)
        if announce:
            self.note(f"{what}: {self.json_path}")

    def progress(self, desc: str) -> "Progress":
        """A progress reporter for ``progress(done, total)`` callbacks; silent under ``--quiet``."""
        return Progress(desc, enabled=not self.quiet)


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------


def progress_seconds() -> float:
    """``$REFBENCH_PROGRESS_SECONDS`` (a number >= 0), else 30."""
    raw = os.environ.get(PROGRESS_ENV, "").strip()
    if not raw:
        return DEFAULT_PROGRESS_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        from refbench.errors import RefbenchInputError

        raise RefbenchInputError(f"{PROGRESS_ENV}={raw!r}: expected a number of seconds >= 0")
    return value


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """``progress(done, total)`` callbacks shown as a tqdm bar on a terminal, else as plain lines on standard
    error every ``interval`` seconds (:func:`progress_seconds`): ``<desc>: 120/793 samples (15%), 2.1/s,
    ETA 5m20s``. The first plain line comes after one interval, so short jobs print none; once a line was
    printed, :meth:`close` prints the final state. ``enabled=False`` (``--quiet``) shows nothing."""

    def __init__(self, desc: str, enabled: bool = True, tty: bool | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, write: Callable[[str], None] | None = None) -> None:
        self.desc, self.enabled = desc, enabled
        self._tty = tty
        self._interval = interval
        self._clock = clock
        self._write = write or (lambda line: click.echo(line, err=True))
        self._bar = None
        self._start: tuple[float, int] | None = None
        self._last = 0.0
        self._state: tuple[int, int] | None = None
        self._printed: tuple[int, int] | None = None
        self._lines = 0

    def _on_tty(self) -> bool:
        if self._tty is None:
            try:
                self._tty = bool(sys.stderr.isatty())
            except (AttributeError, ValueError):
                self._tty = False
        return self._tty

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._on_tty():
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=self.desc, unit="sample", leave=False, file=sys.stderr)
            self._bar.update(done - self._bar.n)
            return
        now = self._clock()
        if self._start is None:
            if self._interval is None:
                self._interval = progress_seconds()
            self._start, self._last = (now, done), now
        self._state = (done, total)
        if now - self._last >= self._interval and (self._lines == 0 or self._printed != self._state):
            self._line(now)

    def _line(self, now: float) -> None:
        assert self._state is not None and self._start is not None
        done, total = self._state
        t0, done0 = self._start
        pct = f" ({100.0 * done / total:.0f}%)" if total else ""
        text = f"{self.desc}: {done:,}/{total:,} samples{pct}"
        elapsed = now - t0
        if elapsed > 0 and done > done0:
            rate = (done - done0) / elapsed
            text += f", {rate:.3g}/s"
            if total and done < total:
                text += f", ETA {_duration((total - done) / rate)}"
        self._write(text)
        self._last, self._printed = now, self._state
        self._lines += 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines and self._state is not None and self._printed != self._state:
            self._line(self._clock())


# ----------------------------------------------------------------------------------------------
# Options shared by every command
# ----------------------------------------------------------------------------------------------


def check_json_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value == STDOUT:
        return value
    from pathlib import Path

    p = Path(value)
    if p.is_dir():
        raise UsageProblem(f"--json {value}: is a folder; give a file path, or - for standard output")
    parent = p.parent if str(p.parent) else Path(".")
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise UsageProblem(f"--json {value}: {up} is a file, not a folder")
            break
    if not parent.is_dir():
        raise UsageProblem(f"--json {value}: folder {parent} does not exist")
    return value


def json_option(help: str = "Write the result as JSON to FILE; - writes it to standard output (and everything "
                            "else to standard error)."):
    """``--json FILE|-`` (parameter ``json_out``): the command's JSON document (:meth:`Console.emit_json`)."""
    return click.option("--json", "json_out", metavar="FILE|-", callback=check_json_path, help=help)


def quiet_option():
    """``--quiet`` / ``-q`` (parameter ``quiet``): no progress and no notes; results, warnings, errors stay."""
    return click.option("--quiet", "-q", "quiet", is_flag=True,
                        help="No progress and no notes: only the result, warnings and errors.")


def examples(*lines: str, note: str | None = None) -> str:
    """The ``--help`` epilog: ``Examples:`` and one command per line, kept as written (click's ``\\b``)."""
    text = "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)
    return text + (f"\n\n{note}" if note else "")


# ----------------------------------------------------------------------------------------------
# KEY=VALUE lists
# ----------------------------------------------------------------------------------------------


def split_pairs(items: Iterable[str], flag: str) -> list[tuple[str, str]]:
    """``KEY=VALUE`` items of a repeatable option, each of which may hold several pairs separated by commas
    (``a=1,b=2``, as lmms-eval's ``--model_args``). A value that holds a comma is quoted, ``a="x,y"`` or
    ``a='x,y'``: a quote opens only as a value's first character and must close before the next comma, and the
    value is returned with its quotes (a YAML reader then takes it as text). A key given twice is refused.
    Returns ``[(key, raw value)]`` in order; a :class:`UsageProblem` (exit 2) names what is wrong."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    hint = "; quote a value that holds a comma, e.g. key=\"a,b\""
    for item in items:
        s, i, n = str(item), 0, len(str(item))
        while True:
            eq = s.find("=", i)
            comma = s.find(",", i)
            if eq < 0 or 0 <= comma < eq:
                piece = s[i:comma if comma >= 0 else n]
                raise UsageProblem(f"{flag} {item!r}: {piece!r} is not KEY=VALUE{hint}")
            key = s[i:eq].strip()
            if not key:
                raise UsageProblem(f"{flag} {item!r}: a pair has no key (expected KEY=VALUE)")
            i = eq + 1
            if i < n and s[i] in "\"'":
                close = s.find(s[i], i + 1)
                if close < 0:
                    raise UsageProblem(f"{flag} {item!r}: the quote {s[i]} after {key}= is not closed")
                raw, i = s[i:close + 1], close + 1
                if i < n and s[i] != ",":
                    raise UsageProblem(f"{flag} {item!r}: text after the closing quote of {key}= "
                                           "(put the whole value in the quotes)")
            else:
                end = s.find(",", i)
                end = n if end < 0 else end
                raw, i = s[i:end], end
            if key in seen:
                raise UsageProblem(f"{flag}: {key} is given twice")
            seen.add(key)
            out.append((key, raw))
            if i >= n:
                break
            i += 1  # the comma
            if i >= n:
                raise UsageProblem(f"{flag} {item!r}: ends with a comma (expected KEY=VALUE after it)")
    return out


def unquote(raw: str) -> str:
    """A :func:`split_pairs` value as plain text: surrounding quotes removed, whitespace stripped."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


# ----------------------------------------------------------------------------------------------
# --config FILE
# ----------------------------------------------------------------------------------------------

#: where a command finds what its --config file held beyond plain option values (ctx.meta key)
CONFIG_META = "refbench.config"


def _config_keys(command: click.Command) -> dict[str, click.Option]:
    """Config key -> option: each long flag without its dashes, ``-`` and ``_`` alike (``model_arg`` /
    ``model-arg``), and the plural of a repeatable one or of ``dataset`` (``model_args``, ``datasets``)."""
    keys: dict[str, click.Option] = {}
    for p in command.params:
        if not isinstance(p, click.Option) or p.name in ("config", "help"):
            continue
        for opt in p.opts:
            if opt.startswith("--"):
                key = opt[2:].replace("-", "_")
                keys[key] = p
                if p.multiple or key == "dataset":
                    keys[key + "s"] = p
    return keys


def _pairs_from_config(value: Any, where: str) -> dict[str, Any]:
    """A repeatable KEY=VALUE option in a config: a mapping, or a list of ``KEY=VALUE`` text items."""
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str) or not k]
        if bad:
            raise ValueError(f"{where}: keys must be names, got {bad[0]!r}")
        return dict(value)
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        import yaml

        out: dict[str, Any] = {}
        for key, raw in split_pairs(value, where):
            try:
                out[key] = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                out[key] = raw
        return out
    raise ValueError(f"{where}: expected a mapping (key: value) or a list of KEY=VALUE items")


def read_config(path: str, command: click.Command, extra: dict[str, str] | None = None) -> tuple[dict, dict]:
    """Read ``--config`` file ``path`` (YAML) for ``command``: ``(defaults, meta)``. ``defaults`` maps option
    names to values for click's ``default_map`` (so flags given on the command line win); ``meta`` holds the
    repeatable ``KEY=VALUE`` options as mappings (a command merges them with the flags, the flags winning key
    by key) and the config-only keys of ``extra`` (``name -> description``, each a mapping of dataset -> path).
    Unknown keys and values the option cannot take raise ValueError naming the file and the key."""
    import yaml

    from refbench.files import read_regular

    data_bytes = read_regular(path, what="config file")
    try:
        data = yaml.safe_load(data_bytes.decode("utf-8")) if data_bytes.strip() else {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: not a YAML file ({' '.join(str(exc).split())})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file is a mapping of option names to values")
    keys = _config_keys(command)
    extra = dict(extra or {})
    defaults: dict[str, Any] = {}
    meta: dict[str, Any] = {"path": path}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        where = f"{path}: {raw_key}"
        if key in extra:
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in value.items()):
                raise ValueError(f"{where}: expected a mapping of dataset name -> path")
            meta[key] = dict(value)
            continue
        if key not in keys:
            from refbench.cards import suggest

            allowed = sorted({*keys, *extra})
            raise ValueError(f"{where}: unknown key{suggest(key, allowed)} (refbench {command.name} takes "
                             f"{', '.join(allowed)})")
        opt = keys[key]
        if opt.name in defaults or opt.name in meta:
            raise ValueError(f"{where}: {opt.name} is given twice")
        if opt.multiple:
            meta[opt.name] = _pairs_from_config(value, where)
            continue
        if opt.name == "dataset" and isinstance(value, list):
            if not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"{where}: expected dataset or suite names")
            value = ",".join(value)
        if opt.is_flag and not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        if isinstance(value, (dict, list)):
            raise ValueError(f"{where}: expected one value, got a {'mapping' if isinstance(value, dict) else 'list'}")
        if value is not None and not opt.is_flag:
            try:
                opt.type.convert(value if not isinstance(value, bool) else str(value).lower(), opt, None)
            except click.BadParameter as exc:
                raise ValueError(f"{where}: {exc.message}") from None
        defaults[opt.name] = value
    return defaults, meta


def config_option(extra: dict[str, str] | None = None):
    """``--config FILE``: a YAML file holding this command's options (:func:`read_config`); flags on the command
    line override it. ``extra``: config-only keys (``{"roots": "dataset -> data root"}``). Read before every
    other option; what it held beyond plain values is in ``ctx.meta[CONFIG_META]`` (:func:`config_meta`)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            defaults, meta = read_config(value, ctx.command, extra)
        except (ValueError, OSError) as exc:
            raise UsageProblem(f"--config {' '.join(str(exc).split())}") from None
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        ctx.meta[CONFIG_META] = meta
        return value

    keys = ", ".join(sorted(extra or {}))
    return click.option("--config", "config", metavar="FILE", is_eager=True, expose_value=False, callback=callback,
                        help="YAML file of this command's options (keys: the long option names, e.g. model, "
                             "model_args, datasets" + (f"; also {keys}" if keys else "") + "); flags given here "
                             "override it. See the README's 'Config files'.")


def config_meta(ctx: click.Context | None = None) -> dict[str, Any]:
    """What ``--config`` held beyond plain option values: ``{option name: {key: value}}`` for repeatable
    ``KEY=VALUE`` options and the config-only keys; ``{}`` without ``--config``."""
    ctx = ctx or click.get_current_context(silent=True)
    return dict(ctx.meta.get(CONFIG_META, {})) if ctx is not None else {}


__all__ = ["CONFIG_META", "Console", "DEFAULT_PROGRESS_SECONDS", "PROGRESS_ENV", "Progress", "STDOUT", "UsageProblem",
           "config_meta",
           "config_option", "examples", "json_option", "progress_seconds", "quiet_option", "read_config",
           "split_pairs", "unquote"]
