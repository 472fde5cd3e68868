"""The ``refbench`` command line: a thin layer over the Python API.

Heavy libraries (torch, cv2, pycocotools) are imported inside the commands that need them, so
``refbench --help`` stays instant. Library code raises; only this module turns errors into one-line
messages and exit codes.
"""

from __future__ import annotations

import sys

import click

from refbench import __version__


class RefbenchError(click.ClickException):
    """A usage error found by the command line itself: printed as one line, exit code 2."""

    exit_code = 2


class CheckFailed(click.ClickException):
    """A check ran and failed (a metric drifted, a dataset has problems): one line, exit code 1."""

    exit_code = 1


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _flag_for(path: str, ctx: click.Context | None) -> str | None:
    """The command-line option whose value is ``path`` or a folder above / a file below it (for messages)."""
    import os

    if ctx is None or not path:
        return None
    target = os.path.abspath(os.fspath(path))
    for param in ctx.command.params:
        value = ctx.params.get(param.name) if param.name else None
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if not isinstance(v, str) or not v or not isinstance(param, click.Option):
                continue
            given = os.path.abspath(v)
            if target == given or target.startswith(given.rstrip(os.sep) + os.sep) or \
                    given.startswith(target.rstrip(os.sep) + os.sep):
                return max(param.opts, key=len)
    return None


def describe_error(exc: BaseException, ctx: click.Context | None = None) -> tuple[str, int]:
    """``(one-line message, exit code)`` for an exception that reached the command line (module doc of
    :mod:`refbench.errors`): refbench's typed errors as they are; the expected classes (OS, SQLite, arithmetic,
    image decoder, recursion, memory, plain ValueError / ImportError) named with the file and the option; any
    other exception is a bug (exit 70)."""
    import sqlite3

    from refbench.errors import BUG_HINT, EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, RefbenchError as LibraryError

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C); nothing was written after the last completed step", EXIT_INTERRUPTED
    if isinstance(exc, LibraryError):
        return _one_line(str(exc)), exc.exit_code
    if isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else None
        if name is None:
            return _one_line(str(exc)), EXIT_INPUT
        flag = _flag_for(str(name), ctx)
        why = exc.strerror or str(exc)
        if exc.filename2:
            why += f" (and {exc.filename2})"
        return _one_line(f"{name}: {why}" + (f"; check {flag}" if flag else "")), EXIT_INPUT
    if isinstance(exc, sqlite3.Error):
        return _one_line(f"prediction store: {exc} (choose another --out, or free disk space)"), EXIT_INPUT
    if isinstance(exc, MemoryError):
        return _one_line(f"out of memory ({exc or 'an input is larger than this machine can hold'})"), EXIT_INPUT
    if isinstance(exc, RecursionError):
        return "an input file is nested too deeply to be read", EXIT_INPUT
    if isinstance(exc, ArithmeticError):
        return _one_line(f"a value is out of range ({exc})"), EXIT_INPUT
    module = type(exc).__module__ or ""
    if module.startswith(("PIL", "cv2", "zipfile", "zlib")):
        return _one_line(f"cannot decode an input file ({exc})"), EXIT_INPUT
    if isinstance(exc, (ValueError, ImportError)):
        return _one_line(str(exc)), EXIT_INPUT
    return _one_line(f"internal error {type(exc).__name__}: {exc}; {BUG_HINT}"), EXIT_BUG


def _fail_cleanly(fn):
    """Run a command: every exception becomes one line on stderr and an exit code (:func:`describe_error`);
    with ``REFBENCH_DEBUG=1`` an unexpected exception keeps its traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import os

        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            ctx = click.get_current_context(silent=True)
            message, code = describe_error(exc, ctx)
            if code == 70 and os.environ.get("REFBENCH_DEBUG") == "1":
                raise
            click.echo(f"Error: {message}", err=True)
            sys.exit(code)

    return wrapper


def _check_device(device: str) -> None:
    """``--device``: cpu, cuda or cuda:N (mps where torch has it); CUDA must exist in this torch build. Only a
    CUDA device imports torch."""
    import re

    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device or ""):
        raise RefbenchError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
            raise RefbenchError(f"--device {device}: this torch ({torch.__version__}, {build}) has no CUDA device; "
                                "use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise RefbenchError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")


def _check_output_file(path: str | None, flag: str, overwrite: bool = True) -> None:
    """An output file option: not a folder, its folder exists and is a folder, and (``overwrite=False``) the
    file does not exist yet."""
    from pathlib import Path

    if not path:
        return
    p = Path(path)
    if p.is_dir():
        raise RefbenchError(f"{flag} {path}: is a folder; give a file path")
    parent = p.parent if str(p.parent) else Path(".")
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise RefbenchError(f"{flag} {path}: {up} is a file, not a folder")
            break
    if not parent.is_dir():
        raise RefbenchError(f"{flag} {path}: folder {parent} does not exist")
    if not overwrite and p.exists():
        raise RefbenchError(f"{flag} {path}: already exists; pass --overwrite to replace it")


def _check_output_dir(path: str | None, flag: str) -> None:
    """A run-directory option: neither a file nor below one."""
    from pathlib import Path

    if not path:
        return
    p = Path(path)
    for up in (p, *p.parents):
        if up.exists():
            if not up.is_dir():
                where = "is a file" if up == p else f"lies below {up}, which is a file"
                raise RefbenchError(f"{flag} {path}: {where}; choose another {flag}")
            break
class _ProtocolOption(click.Option):
    """``--protocol``: its help lists the protocol cards by task, read when the help is shown (YAML only, no
    torch); a value that is no protocol card is a usage error (exit 2) suggesting close names."""

    def get_help_record(self, ctx):
        from refbench.protocols import help_text

        saved = self.help
        try:
            self.help = f"{saved} Choices: {help_text()}. See refbench datasets show NAME and docs/protocols.md."
            return super().get_help_record(ctx)
        finally:
            self.help = saved


def _check_protocol(ctx, param, value):
    if value is None:
        return value
    from refbench.cards import CardError
    from refbench.protocols import protocol_card

    try:
        protocol_card(value)
    except CardError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def _protocol_applies(dataset: str, protocol: str | None) -> None:
    """A --protocol that the dataset's loader cannot be scored with is a usage error naming the ones it can."""
    if protocol is None:
        return
    from refbench.cards import CardError, dataset_card
    from refbench.protocols import check_protocol_for

    try:
        check_protocol_for(dataset_card(dataset), protocol)
    except CardError as exc:
        raise click.BadParameter(str(exc), param_hint="--protocol") from None


def _protocol_option(help_text: str):
    return click.option("--protocol", cls=_ProtocolOption, metavar="NAME", callback=_check_protocol,
                        help=help_text)


class _ProgressBar:
    """A tqdm bar (samples/s, ETA) driven by ``progress(done, total)`` callbacks; silent when never called."""

    def __init__(self, desc: str):
        self.desc = desc
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.desc, unit="sample", leave=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="refbench")
def main() -> None:
    """refbench: exact, fast evaluation for RefVOS, temporal grounding and RES."""


@main.command("demo")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda, cuda:1).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the demo's run directories, <out>/<dataset>/<model>-<fingerprint> as refbench run "
                   "names them (so both share one run). Re-running resumes them.")
@click.option("--no-leaderboard", is_flag=True, help="Do not append leaderboard rows (and show no table).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False),
              help="Write every run's summary metrics and run directory here.")
@_fail_cleanly
def demo_cmd(device: str, out: str, no_leaderboard: bool, json_out: str | None) -> None:
    """Run the whole path on the embedded demo (no data or GPU needed): the blind prior and the oracle on
    MeViS-, Charades-STA- and RefCOCO-style splits (predict, store, score, leaderboard), then the prior on a
    split without public ground truth (submission zip)."""
    import json
    import time

    _check_device(device)
    _check_output_dir(out, "--out")
    _check_output_file(json_out, "--json")
    from refbench.demo import demo_leaderboard, ensure_demo, run_demo

    t0 = time.perf_counter()
    click.echo(f"demo data: {ensure_demo()}")
    board = None if no_leaderboard else _default_leaderboard_dir()
    runs = run_demo(out=out, device=device, leaderboard=board, on_run=lambda r: click.echo(r.line()))
    if all(r.result.predicted == 0 for r in runs):
        click.echo(f"all {len(runs)} runs were already stored under {out}: predictions reused, scores recomputed")
    if board is None:
        click.echo("leaderboard: not written (--no-leaderboard)")
    else:
        appended = sum(r.result.leaderboard_rows for r in runs)
        present = sum(r.leaderboard == "present" for r in runs)
        click.echo(f"leaderboard {board}: {appended} rows appended"
                   + (f"; {present} runs' rows already there, not appended again" if present else ""))
        click.echo(demo_leaderboard(board))
    if json_out:
        from refbench.files import atomic_write

        doc = {"out": out, "device": device, "leaderboard": board, "runs": [r.to_dict() for r in runs]}
        atomic_write(json_out, json.dumps(doc, indent=2), "--json")
        click.echo(f"summary: {json_out}")
    click.echo(f"demo done in {time.perf_counter() - t0:.1f} s")


@main.command("eval")
@click.option("--dataset", help="Dataset card name (refbench datasets list); default: the run's with --run.")
@click.option("--pred", type=click.Path(exists=True), help="Predictions: PNG folder, zip or JSON.")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="Rescore a refbench run directory (its predictions.json, dataset and root), e.g. with "
                   "another --protocol.")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>).")
@_protocol_option("Scoring protocol (default: the dataset card's).")
@click.option("--missing", type=click.Choice(["error", "empty", "official"]), default="error", show_default=True,
              help="A missing prediction: an error, an empty mask / failed span, or the official script's rule.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Write the per-sample CSV here.")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda, cuda:1).")
@click.option("--values", type=click.Choice(["official", "binary"]),
              help="ReVOS: A and R on the raw PNG values (official) or on 0/1 masks.")
@click.option("--parse-style", type=click.Choice(["lmms-eval", "timechat", "vtimellm"]),
              help="Grounding: how free-text answers are parsed (default lmms-eval).")
@click.option("--subset", type=click.Choice(["all", "predicted"]),
              help="Grounding: score all queries (default) or only those in the prediction file (e.g. TimeChat's 500).")
@click.option("--unknown", type=click.Choice(["error", "ignore"]),
              help="RES: predictions for ids outside the split are an error (default) or ignored and counted.")
@click.option("--bad-spans", type=click.Choice(["error", "official"]),
              help="Grounding: a predicted span with start > end or start < 0 is an error naming the query "
                   "(default), or scored as the official script scores it (IoU of the span as given).")
@click.option("--protocol-arg", "protocol_args", multiple=True, metavar="KEY=VALUE",
              help="A protocol option (SA-V, SeCVOS, LVOS, MOSE v2, ReasonVOS; docs/protocols.md), e.g. "
                   "skip_first_last=false.")
@click.option("--per-frame", "per_frame_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Video datasets: write every sample's per-frame J and F, the scorer's own values, to this CSV "
                   "(first column as the per-sample CSV's; format in refbench/evaluate/per_frame.py).")
@_fail_cleanly
def eval_cmd(dataset, pred, run_dir, root, protocol, missing, json_out, csv_out, device, values, parse_style, subset,
             unknown, bad_spans, protocol_args, per_frame_out) -> None:
    """Score existing predictions exactly as the dataset's official evaluator would."""
    if run_dir:
        dataset, root, pred = _from_run(run_dir, dataset, root, pred)
    if not dataset or not pred:
        raise RefbenchError("eval: give --dataset and --pred, or --run DIR")
    _protocol_applies(dataset, protocol)

    given = {"values": values, "parse_style": parse_style, "subset": subset, "unknown": unknown,
             "bad_spans": bad_spans, "protocol_args": _parse_protocol_args(protocol_args) or None}
    options = {k: v for k, v in given.items() if v is not None}
    _check_eval_options(dataset, protocol, options)  # every usage error before torch is imported
    _check_device(device)
    _check_output_file(json_out, "--json")
    _check_output_file(csv_out, "--csv")
    _check_output_file(per_frame_out, "--per-frame")
    if per_frame_out:
        _check_per_frame_task(dataset)

    from refbench.evaluate.run import evaluate, format_table, write_csv, write_json

    bar = _ProgressBar(f"eval {dataset}")
    try:
        result, summary = evaluate(dataset, pred, root=root, protocol=protocol, missing=missing, device=device,
                                   progress=bar, per_frame=bool(per_frame_out), **options)
    finally:
        bar.close()
    # the outputs first (atomically): if one cannot be written, no score table claims success
    if json_out:
        write_json(summary, json_out, "--json")
    if csv_out:
        write_csv(result.per_sample, csv_out, "--csv")
    if per_frame_out:
        from refbench.evaluate.per_frame import write_per_frame

        write_per_frame(result.per_frame or [], per_frame_out, "--per-frame")
    partial = summary["partial_reasons"]
    click.echo(format_table(result, dataset, partial))
    if partial:
        click.echo(f"warning: partial evaluation, not the official {dataset} score: " + "; ".join(partial), err=True)
    if json_out:
        click.echo(f"summary: {json_out}")
    if csv_out:
        click.echo(f"per-sample: {csv_out}")
    if per_frame_out:
        click.echo(f"per-frame: {per_frame_out}")


def _check_per_frame_task(dataset: str) -> None:
    """--per-frame needs frames: refuse it on a grounding or RES dataset (reads the card's YAML only)."""
    from refbench.cards import dataset_card

    card = dataset_card(dataset)
    if card.task not in ("refvos", "vos"):
        raise RefbenchError(f"--per-frame applies to video datasets (refvos, vos); {card.name} is a {card.task} "
                            "dataset without frames")


#: eval options that only apply to some tasks (and, for --values, one protocol)
_EVAL_OPTION_TASKS = {"values": (("refvos",), "--values", "ReVOS (protocol revos)"),
                      "parse_style": (("tsg",), "--parse-style", "temporal grounding"),
                      "subset": (("tsg",), "--subset", "temporal grounding"),
                      "bad_spans": (("tsg",), "--bad-spans", "temporal grounding"),
                      "unknown": (("res",), "--unknown", "referring expression segmentation"),
                      "protocol_args": (("refvos", "vos"), "--protocol-arg",
                                        "video protocols with options (SA-V, SeCVOS, LVOS, MOSE v2, ReasonVOS)")}


def _check_eval_options(dataset: str, protocol: str | None, options: dict) -> None:
    """Refuse an option the dataset's task does not take (reads the card's YAML only)."""
    from refbench.cards import dataset_card

    card = dataset_card(dataset)
    for key in options:
        tasks, flag, what = _EVAL_OPTION_TASKS[key]
        used = protocol or card.protocol
        if card.task not in tasks or (key == "values" and used != "revos"):
            raise RefbenchError(f"{flag} applies to {what}; {card.name} is a {card.task} dataset scored with "
                                f"protocol {used}")


def _parse_protocol_args(items) -> dict[str, str]:
    """``KEY=VALUE`` strings of ``--protocol-arg`` as a dict (the protocol checks names and values)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RefbenchError(f"--protocol-arg {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _default_leaderboard_dir() -> str:
    """The first folder of $REFBENCH_LEADERBOARD, else runs/leaderboards (what `refbench leaderboard` reads)."""
    import os

    env = [p for p in os.environ.get("REFBENCH_LEADERBOARD", "").split(os.pathsep) if p.strip()]
    return env[0] if env else os.path.join("runs", "leaderboards")


@main.command("run")
@click.option("--model", default=None, help="Adapter name (refbench models list). Default: prior.")
@click.option("--dataset", default=None, help="Dataset card name (refbench datasets list). Default: the embedded "
              "demo_mevis_val_u.")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory (default: runs/<dataset>/<model>-<fingerprint>). Re-running resumes it.")
@click.option("--limit", type=int, help="Only the first N samples (scored on those; not added to the leaderboard).")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda; under torchrun each "
              "rank takes its LOCAL_RANK GPU).")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Override an adapter option.")
@_protocol_option("Scoring protocol (default: the dataset card's).")
@click.option("--leaderboard", "leaderboard_dir", type=click.Path(file_okay=False),
              help="Append reproduced rows to <dir>/<family>.csv (default: $REFBENCH_LEADERBOARD or runs/leaderboards).")
@click.option("--no-leaderboard", is_flag=True, help="Do not append leaderboard rows.")
@click.option("--overwrite", is_flag=True, help="Discard predictions already stored in the run directory.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the summary JSON here.")
@click.option("--per-frame", "per_frame", is_flag=True,
              help="Video datasets: also write <run dir>/per_frame.csv, every sample's per-frame J and F as the "
                   "scorer computed them.")
@click.option("--protocol-arg", "protocol_args", multiple=True, metavar="KEY=VALUE",
              help="A scoring protocol option, as for refbench eval (e.g. short_videos=official); a run scored with "
                   "one is not added to the leaderboard.")
@_fail_cleanly
def run_cmd(model, dataset, root, out, limit, device, model_args, protocol, leaderboard_dir, no_leaderboard,
            overwrite, json_out, per_frame, protocol_args) -> None:
    """Run a model over a dataset: predict (resumable), score or export, append the leaderboard.

    With no options: the blind prior on the embedded demo set (generated on first use; no data, no GPU).
    Under torchrun (torchrun --nproc-per-node N -m refbench run ...) samples are sharded by video.
    """
    from refbench.adapters.registry import adapter_card, default_model, parse_model_args, resolve_options

    # every usage error before torch or the adapter's code is imported
    parsed = parse_model_args(model_args)
    resolve_options(adapter_card(model or default_model()), parsed)
    if limit is not None and limit < 1:
        raise RefbenchError(f"--limit must be >= 1, got {limit}")
    _check_device(device)
    _check_output_dir(out, "--out")
    _check_output_dir(leaderboard_dir, "--leaderboard")
    _check_output_file(json_out, "--json")

    from refbench.runs import dist as D
    from refbench.runs.runner import DEFAULT_DATASET, RunConfig, run

    _protocol_applies(dataset or DEFAULT_DATASET, protocol)
    if per_frame:
        _check_per_frame_task(dataset or DEFAULT_DATASET)
    pargs = _parse_protocol_args(protocol_args)
    if pargs:
        _check_eval_options(dataset or DEFAULT_DATASET, protocol, {"protocol_args": pargs})
    config = RunConfig(model=model or default_model(), dataset=dataset or DEFAULT_DATASET, root=root, out=out,
                       limit=limit, device=device, model_args=parsed, protocol=protocol,
                       leaderboard=None if no_leaderboard else (leaderboard_dir or _default_leaderboard_dir()),
                       overwrite=overwrite, per_frame=per_frame, protocol_args=pargs)
    main_rank = D.from_env().is_main
    bar = _ProgressBar(f"{config.model} on {config.dataset}") if main_rank else None
    try:
        result = run(config, progress=bar, log=(lambda m: click.echo(m, err=True)) if main_rank else None)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        click.echo("interrupted: every finished batch is stored; run the same command again to resume", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
    if not main_rank:
        return
    click.echo(f"{config.model} on {config.dataset}: {result.predicted} predicted, {result.reused} reused, "
               f"{result.total} samples; run dir {result.run_dir}")
    if result.table:
        click.echo(result.table)
    if result.leaderboard_rows:
        click.echo(f"leaderboard: {result.leaderboard_rows} rows appended to {config.leaderboard}")
    for note in result.notes:
        click.echo(note)
    if json_out and result.summary is not None:
        from refbench.evaluate.run import write_json

        write_json(result.summary, json_out, "--json")
        click.echo(f"summary: {json_out}")


@main.group("models")
def models_group() -> None:
    """List the model adapters refbench knows (cards and installed entry points)."""


@models_group.command("list")
@click.option("--task", help="Only adapters of this task (refvos, vos, tsg, res).")
@_fail_cleanly
def models_list(task: str | None) -> None:
    """List adapter cards (reads YAML and entry-point metadata only)."""
    from refbench.adapters.registry import list_models

    click.echo(f"{'name':<20} {'tasks':<16} {'pixels':<7} {'env':<13} title")
    for c in list_models():
        if task and c.tasks and task not in c.tasks:
            continue
        tasks = ",".join(c.tasks) or "?"
        env = c.environment.name if c.environment else "-"
        click.echo(f"{c.name:<20} {tasks:<16} {'yes' if c.needs_pixels else 'no':<7} {env:<13} {c.title}")
        for alias in c.aliases:
            click.echo(f"{alias:<20} {'(alias of ' + c.name + ')'}")


@models_group.command("show")
@click.argument("name")
@_fail_cleanly
def models_show(name: str) -> None:
    """Print model NAME's card: options (default, type or allowed values, doc), weights, environment, status."""
    from refbench.adapters.registry import adapter_card
    from refbench.envs import env_dir, env_python, unmet_pins

    c = adapter_card(name)
    alias = f" (alias {name})" if name != c.name else ""
    click.echo(f"{c.name}{alias}: {c.title}")
    click.echo(f"  code: {c.code}")
    click.echo(f"  tasks: {', '.join(c.tasks)}")
    if c.aliases:
        click.echo(f"  aliases: {', '.join(c.aliases)}")
    if c.status:
        click.echo(f"  status: {c.status}")
    if c.trust_remote_code:
        click.echo("  trust_remote_code: true (runs the Python code shipped in the checkpoint; its sha256 is in the "
                   "fingerprint)")
    if c.weights:
        w = c.weights
        for key in ("hub", "modelscope", "base_model"):
            if w.get(key):
                click.echo(f"  weights.{key}: {w[key]}")
        click.echo(f"  weights.revision: {w.get('revision') or 'not pinned'}"
                   + (f" ({w['revision_note']})" if w.get("revision_note") else ""))
    if c.environment:
        e = c.environment
        here = unmet_pins(e)
        click.echo(f"  environment: {e.name} (python {e.python or 'any'}; pins {', '.join(e.pins) or '-'})")
        click.echo(f"    packages: {', '.join(e.packages) or '-'}" + (f"; optional: {', '.join(e.optional)}"
                                                                       if e.optional else ""))
        where = ("this Python (pins met)" if not here else
                 f"{env_dir(e.name)}" + ("" if env_python(e.name).exists() else
                                          f" (missing: refbench env create {c.name})"))
        click.echo(f"    runs in: {where}")
    if c.reported:
        src = c.reported.get("source") if isinstance(c.reported, dict) else c.reported
        click.echo(f"  reported numbers: {src}")
    click.echo("  options:")
    for key, spec in c.specs.items():
        flag = "" if spec.output else " [not in fingerprint]"
        click.echo(f"    {key} = {spec.default!r}  ({spec.allowed()}){flag}")
        if spec.doc:
            click.echo(f"        {spec.doc}")
    if c.notes:
        click.echo(f"  notes: {c.notes}")


@main.group("env")
def env_group() -> None:
    """Per-model Python environments (models pin incompatible transformers versions)."""


@env_group.command("create")
@click.argument("name")
@click.option("--torch", "torch_req", help="torch requirement(s) to install (default: this Python's torch version, "
              "e.g. 'torch==2.6.0+cu124').")
@click.option("--torch-index-url", help="Extra index for torch builds (e.g. https://download.pytorch.org/whl/cu124).")
@click.option("--find-links", multiple=True, help="Local wheel folder (repeatable); PIP_FIND_LINKS is passed on too.")
@click.option("--minimal", is_flag=True, help="Only torch, the pinned packages and refbench (enough for the offline "
              "stub tests; the real remote code needs the card's packages too).")
@click.option("--python", "python", help="Base interpreter of the environment (default: this one).")
@click.option("--installer", type=click.Choice(["auto", "uv", "pip"]), default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Rebuild an existing environment.")
@_fail_cleanly
def env_create(name, torch_req, torch_index_url, find_links, minimal, python, installer, force) -> None:
    """Build the environment model NAME's card names (or environment NAME), with refbench installed in it."""
    from refbench.envs import create

    rep = create(name, torch=torch_req, torch_index_url=torch_index_url, find_links=find_links, minimal=minimal,
                 python=python, installer=installer, force=force, log=lambda m: click.echo(m, err=True))
    click.echo(f"environment {rep.name}: {rep.path} ({rep.installer}, {rep.seconds:.1f} s; "
               f"{', '.join(rep.requirements)})")


@env_group.command("list")
@_fail_cleanly
def env_list() -> None:
    """The environments the cards name, whether each exists, and which models use it."""
    from refbench.envs import list_envs

    click.echo(f"{'environment':<14} {'state':<10} {'pins':<22} models / path")
    for row in list_envs():
        state = "here" if row["here"] else ("built" if row["exists"] else "missing")
        if row["exists"] and row.get("minimal"):
            state += "*"
        click.echo(f"{row['name']:<14} {state:<10} {', '.join(row['pins']):<22} {', '.join(row['cards'])}")
        click.echo(f"{'':<14} {'':<10} {'':<22} {row['path']}")
    click.echo("(here: this Python has the pins; built*: built with --minimal)")


@env_group.command("check")
@click.argument("name")
@_fail_cleanly
def env_check(name) -> None:
    """Check that environment NAME (or model NAME's) imports torch, transformers and refbench at the pinned versions."""
    from refbench.envs import check

    rep = check(name)
    for w in rep.warnings:
        click.echo(f"warning: {w}")
    if not rep.ok:
        for p in rep.problems:
            click.echo(f"problem: {p}")
        raise CheckFailed(f"environment {rep.name}: {len(rep.problems)} problem(s)")
    vs = ", ".join(f"{k} {v}" for k, v in rep.versions.items() if v)
    click.echo(f"environment {rep.name}: ok ({rep.path}; python {rep.python}; {vs})")


def _from_run(run_dir: str, dataset: str | None, root: str | None, pred: str | None) -> tuple[str, str | None, str]:
    """(dataset, root, predictions) of a run directory, each overridable."""
    from pathlib import Path

    from refbench.errors import RefbenchInputError

    from refbench.files import load_json

    meta_path = Path(run_dir) / "run.json"
    if not meta_path.is_file():
        raise RefbenchInputError(f"{meta_path}: not a refbench run (no run.json); check --run")
    meta = load_json(meta_path, RefbenchInputError, "run.json")
    try:
        run_dataset, run_root = meta["header"]["dataset"], meta["config"].get("root")
        if not isinstance(run_dataset, str) or not (run_root is None or isinstance(run_root, str)):
            raise TypeError("dataset / root are not names")
    except (KeyError, TypeError, AttributeError) as exc:
        raise RefbenchInputError(f"{meta_path}: not a refbench run (no header.dataset / config.root: {exc})") from exc
    return dataset or run_dataset, root or run_root, pred or str(Path(run_dir) / "predictions.json")


@main.command("export")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="A refbench run directory (its predictions.json and dataset).")
@click.option("--dataset", help="Dataset card name (with --pred; default: the run's).")
@click.option("--pred", type=click.Path(exists=True), help="Predictions to export instead of a run's.")
@click.option("--format", "fmt", type=click.Choice(["mevis", "refytvos", "davis", "ytvos"]),
              help="Submission format (default: the card's).")
@click.option("--out", type=click.Path(dir_okay=False), help="Zip to write (default: <run>/submission-<format>.zip).")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: the run's, or the card's).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing zip.")
@_fail_cleanly
def export_cmd(run_dir, dataset, pred, fmt, out, root, missing, overwrite) -> None:
    """Write a CodaLab/Codabench submission zip (MeViS, Ref-YouTube-VOS, DAVIS / MOSE and YouTube-VOS palette PNGs)."""
    from pathlib import Path

    from refbench.export import export_submission

    if run_dir:
        dataset, root, pred = _from_run(run_dir, dataset, root, pred)
    if not dataset or not pred:
        raise RefbenchError("export: give --run DIR, or --dataset and --pred")
    if out is None:
        if not run_dir:
            raise RefbenchError("export: give --out ZIP")
        out = str(Path(run_dir) / f"submission-{fmt or 'default'}.zip")
    _check_output_file(out, "--out", overwrite=overwrite)
    rep = export_submission(dataset, pred, out, fmt=fmt, root=root, missing=missing, overwrite=overwrite)
    click.echo(f"{rep.path}: {rep.format} submission, {rep.videos} videos, {rep.expressions} expressions, "
               f"{rep.frames} frames" + (f" ({rep.filled} filled empty)" if rep.filled else ""))
    if rep.server:
        click.echo(f"upload to {rep.server}")


@main.command("regress")
@click.option("--baseline", required=True, type=click.Path(dir_okay=False), help="Baseline JSON.")
@click.option("--run", "run_dirs", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="Run directory to check (repeatable).")
@click.option("--tolerance", type=float, help="Absolute tolerance (default: the baseline file's).")
@click.option("--strict", is_flag=True, help="Every baseline entry must be among the runs.")
@click.option("--write", is_flag=True, help="Write/update the baseline from the runs instead of checking.")
@_fail_cleanly
def regress_cmd(baseline, run_dirs, tolerance, strict, write) -> None:
    """Exit non-zero, naming each metric, when a run's metrics moved beyond tolerance from the baseline."""
    import math

    from refbench.regress import compare, read_baseline, read_run, write_baseline

    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise RefbenchError(f"--tolerance {tolerance}: must be a finite number >= 0")
    runs = [read_run(d) for d in run_dirs]
    if write:
        write_baseline(baseline, runs, tolerance if tolerance is not None else 1e-9)
        click.echo(f"{baseline}: {len(runs)} entr{'y' if len(runs) == 1 else 'ies'} written")
        return
    report = compare(read_baseline(baseline), runs, tolerance=tolerance, strict=strict)
    for note in report.notes:
        click.echo(f"note: {note}")
    if not report.ok:
        for d in report.drifts:
            click.echo(f"drift: {d.line()}")
        raise CheckFailed(f"{len(report.drifts)} metric(s) drifted from {baseline}")
    click.echo(f"ok: {report.checked} metric(s) of {len(runs)} run(s) within tolerance of {baseline}")


@main.group("datasets")
def datasets_group() -> None:
    """List the benchmark splits refbench knows and check data on disk."""


@datasets_group.command("list")
@click.option("--task", help="Only this task family (refvos, vos, tsg, res).")
@_fail_cleanly
def datasets_list(task: str | None) -> None:
    """List dataset cards (reads YAML only)."""
    from refbench.cards import dataset_cards

    cards = [c for c in dataset_cards().values() if task is None or c.task == task]
    click.echo(f"{'name':<22} {'task':<7} {'gt':<7} {'protocol':<11} counts")
    for c in cards:
        counts = ", ".join(f"{k} {v:,}" for k, v in (c.counts or {}).items()) or "-"
        click.echo(f"{c.name:<22} {c.task:<7} {c.ground_truth:<7} {c.protocol:<11} {counts}")


@datasets_group.command("show")
@click.argument("name")
@_fail_cleanly
def datasets_show(name: str) -> None:
    """Print dataset card NAME and the protocols it can be scored with: their sources and quirks (YAML only)."""
    from refbench.cards import dataset_card

    click.echo(format_dataset(dataset_card(name)))


def format_dataset(card) -> str:
    """The text of ``refbench datasets show``: the card, then each usable protocol (default first)."""
    from refbench.protocols import docs_file, protocols_for

    def field(label: str, value) -> list[str]:
        lines = [value] if isinstance(value, str) else list(value)
        lines = lines or ["-"]
        return [f"  {label:<16}{lines[0]}"] + [f"  {'':<16}{ln}" for ln in lines[1:]]

    args = ", ".join(f"{k}={v}" for k, v in card.loader_args.items())
    counts = ", ".join(f"{k} {v:,}" for k, v in (card.counts or {}).items()) or "-"
    gt = ("public: refbench eval and refbench run score it offline" if card.has_public_gt
          else f"{card.ground_truth}: not public; refbench run writes a submission zip")
    out = [f"{card.name}: {card.title}"]
    out += field("task", card.task)
    out += field("loader", card.loader + (f" ({args})" if args else ""))
    out += field("data root", "generated demo data (built on first use)" if card.generate
                 else f"--root DIR, else $REFBENCH_DATA/{card.default_root}")
    out += field("layout", card.layout)
    out += field("official counts", counts)
    out += field("ground truth", gt)
    if card.submission:
        sub = card.submission
        out += field("submission", [f"format {sub.get('format')}: {sub.get('layout', '')}".rstrip(": ")]
                     + ([f"server {sub['server']}"] if sub.get("server") else []))
    if card.notes:
        out += field("notes", str(card.notes).strip())
    if card.path:
        out += field("card", str(card.path))
    doc = docs_file()
    out += ["", "protocols (default first; refbench shows percent, the official printout is kept in "
                "summary.json details.official):"]
    for i, p in enumerate(protocols_for(card)):
        head = p.label
        if i == 0:
            head = f"{p.name} (convention {p.convention}, default)" if p.convention else f"{p.name} (default)"
        out.append(f"  {head}: {p.title}")
        refs = [f"{r['repo']} {r['file']} @ {r.get('commit') or 'no commit'}" for r in p.references]
        out += ["  " + ln for ln in field("source", refs or ["no official script"])]
        shown = "shown x 100" if p.official_scale == "fraction" else "shown unchanged"
        out += ["  " + ln for ln in field("prints", f"{p.prints} -> {shown}, in percent")]
        out += ["  " + ln for ln in field("metrics", ", ".join(p.metrics))]
        if p.server:
            out += ["  " + ln for ln in field("scored by", "a challenge server only (submission zip)")]
        out += ["  " + ln for ln in field("quirks", [f"- {q}" for q in p.quirks])]
        out += ["  " + ln for ln in field("doc", p.doc + (f"  ({doc})" if doc else ""))]
    return "\n".join(out)


@datasets_group.command("check")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>).")
@click.option("--annotations-only", is_flag=True, help="Do not require frames / images on disk.")
@_fail_cleanly
def datasets_check(name: str, root: str | None, annotations_only: bool) -> None:
    """Verify layout, readable files and official counts of dataset NAME; list every problem found."""
    from refbench.cards import dataset_card

    card = dataset_card(name)
    from refbench.data.check import check_dataset

    problems, notes, found = check_dataset(card, root, require_media=not annotations_only)
    summary = ", ".join(f"{k} {v:,}" for k, v in found.items()) or "nothing"
    for note in notes:
        click.echo(note)
    if problems:
        for p in problems:
            click.echo(f"problem: {p}")
        raise CheckFailed(f"{name}: {len(problems)} problem(s) found ({summary})")
    click.echo(f"{name}: ok ({summary})")


def _register_leaderboard() -> None:
    from refbench.leaderboard import leaderboard_command

    if not getattr(leaderboard_command.callback, "_fails_cleanly", False):
        leaderboard_command.callback = _fail_cleanly(leaderboard_command.callback)
        leaderboard_command.callback._fails_cleanly = True  # type: ignore[attr-defined]
    main.add_command(leaderboard_command)


_register_leaderboard()


def _register_analysis() -> None:
    from refbench.analysis.commands import register

    register(main)


_register_analysis()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
