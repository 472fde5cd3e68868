"""The ``refbench`` command line: a thin layer over the Python API.

Heavy libraries (torch, cv2, pycocotools) are imported inside the commands that need them, so
``refbench --help`` stays instant. Library code raises; only this module turns errors into one-line
messages and exit codes. What every command shares -- ``--json FILE|-``, ``--quiet``, ``--config``, progress,
the ``Examples:`` of each ``--help`` -- is in :mod:`refbench.clikit`; a new command uses those.
"""

from __future__ import annotations

import sys

import click

from refbench import __version__
from refbench.clikit import Console, config_meta, config_option, examples, json_option, quiet_option, split_pairs


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


# ----------------------------------------------------------------------------------------------
# Several datasets per command (--dataset a,b or a suite), data roots, KEY=VALUE options
# ----------------------------------------------------------------------------------------------

#: the exit codes, in `refbench --help` and the README
EXIT_CODES = ("Exit codes: 0 success; 1 a check failed (regress found a drifted metric, datasets check or env "
              "check found problems); 2 bad usage or bad input (an option, a file, a card); 70 an internal "
              "error, a bug (REFBENCH_DEBUG=1 shows the traceback); 130 interrupted (Ctrl-C). A command over "
              "several datasets finishes the others when one fails and exits with the most serious code of its "
              "failures (70, then 2, then 1).")

PLACEHOLDER = "{dataset}"


def _for_dataset(template: str | None, name: str) -> str | None:
    """``template`` with ``{dataset}`` replaced by ``name`` (``--out``, ``--pred``, ``--csv``, ``--root``)."""
    return template.replace(PLACEHOLDER, name) if template else template


def _need_placeholder(value: str | None, flag: str, names: list[str], example: str) -> None:
    if value and len(names) > 1 and PLACEHOLDER not in value:
        raise RefbenchError(f"{flag} {value}: names one path, but there are {len(names)} datasets "
                            f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}); put {PLACEHOLDER} in it, "
                            f"e.g. {flag} {example}")


def _root_for(name: str, root: str | None, roots: dict) -> str | None:
    """A dataset's data root: its entry under ``roots:`` in --config, else --root (``{dataset}`` replaced)."""
    return roots.get(name) or _for_dataset(root, name)


def _check_shared_root(names: list[str], root: str | None, roots: dict) -> None:
    """One --root for several datasets must be where all of them live: refused when their cards' default
    folders differ (and --root has no ``{dataset}``)."""
    if not root or PLACEHOLDER in root:
        return
    from refbench.cards import dataset_card

    served = [n for n in names if n not in roots]
    folders = sorted({dataset_card(n).default_root for n in served})
    if len(folders) > 1:
        raise RefbenchError(f"--root {root}: one folder for {len(served)} datasets whose data live in different "
                            f"folders ({', '.join(folders)}); set REFBENCH_DATA to their parent instead, put "
                            f"{PLACEHOLDER} in --root, or give each its root under roots: in --config")


def _pairs(items, flag: str) -> list[str]:
    """``--model-arg`` / ``--protocol-arg`` items as ``KEY=VALUE`` strings, commas split (``a=1,b=2``)."""
    return [f"{k}={v}" for k, v in split_pairs(items, flag)]


def _parse_model_args(items) -> dict:
    """``--model-arg`` values (commas split, quotes kept for YAML), over the ``model_args`` of --config."""
    from refbench.adapters.registry import parse_model_args

    return {**config_meta().get("model_args", {}), **parse_model_args(_pairs(items, "--model-arg"))}


def _config_text(value) -> str:
    """A protocol option's value from a YAML config as the text a flag would give (``false``, ``0.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _each_dataset(items: list, work, con: Console, fail_fast: bool, label=str) -> list:
    """``work(item) -> Outcome`` for each item (a dataset, or what names one: ``label(item)``), in order. One
    that fails becomes a failed Outcome with the one-line message and exit code it would have had alone
    (:func:`describe_error`), said on stderr at once; the others still run unless ``fail_fast``. Ctrl-C stops
    everything."""
    import os

    from refbench.combined import Outcome

    outcomes = []
    for i, item in enumerate(items):
        name = label(item)
        try:
            outcomes.append(work(item))
        except KeyboardInterrupt:
            raise
        except click.ClickException as exc:
            outcomes.append(Outcome(name, "failed", error=_one_line(exc.format_message()), exit_code=exc.exit_code))
        except Exception as exc:  # noqa: BLE001 - reported as that dataset's failure
            message, code = describe_error(exc, click.get_current_context(silent=True))
            if code == 70 and os.environ.get("REFBENCH_DEBUG") == "1":
                raise
            outcomes.append(Outcome(name, "failed", error=message, exit_code=code))
        if outcomes[-1].status == "failed":
            con.warn(f"FAILED {name}: {outcomes[-1].error}")
            if fail_fast and i < len(items) - 1:
                con.warn(f"--fail-fast: {len(items) - i - 1} dataset(s) not run")
                break
    return outcomes


def _finish_many(command: str, spec, outcomes: list, con: Console, total: int, notes: tuple = ()) -> None:
    """The end of a multi-dataset command: its JSON document, the combined table, ``notes``, the exit code."""
    from refbench.combined import combined_doc, combined_table, exit_code

    con.emit_json(combined_doc(command, spec, outcomes, total), announce=False)
    con.result(combined_table(outcomes, total))
    if con.json_path and not con.json_to_stdout:
        con.note(f"summary: {con.json_path}")
    for note in notes:
        con.note(note)
    code = exit_code(outcomes)
    if code:
        failed = sum(o.status == "failed" for o in outcomes)
        con.warn(f"Error: {failed} of {total} datasets failed" + (f", {total - len(outcomes)} not run"
                                                                   if len(outcomes) < total else ""))
        sys.exit(code)


_FAIL_FAST_HELP = ("With several datasets: stop at the first that fails (default: finish the others, report each "
                   "failure, exit non-zero).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog=examples("refbench run                                   # the blind prior on the embedded demo",
                             "refbench run --model prior --dataset demo_all  # every demo task, one combined table",
                             "refbench eval --dataset mevis_val_u --root /data/mevis --pred results/ --json -",
                             "refbench datasets list --json - | jq '.datasets[].name'",
                             "refbench COMMAND --help                        # options and examples of COMMAND",
                             note=EXIT_CODES))
@click.version_option(__version__, prog_name="refbench")
def main() -> None:
    """refbench: exact, fast evaluation for RefVOS, temporal grounding and RES.

    Every command takes --json FILE (- for standard output, and then nothing else goes there) where it has a
    result, and --quiet; run and eval take several datasets (--dataset a,b or a suite) and --config FILE.
    """


@main.command("demo", epilog=examples("refbench demo", "refbench demo --no-leaderboard --json demo.json",
                                      "refbench demo --json - --quiet | jq '.runs[].metrics'"))
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda, cuda:1).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the demo's run directories, <out>/<dataset>/<model>-<fingerprint> as refbench run "
                   "names them (so both share one run). Re-running resumes them.")
@click.option("--no-leaderboard", is_flag=True, help="Do not append leaderboard rows (and show no table).")
@json_option("Write every run's summary metrics and run directory here (- for standard output).")
@quiet_option()
@_fail_cleanly
def demo_cmd(device: str, out: str, no_leaderboard: bool, json_out: str | None, quiet: bool) -> None:
    """Run the whole path on the embedded demo (no data or GPU needed): the blind prior and the oracle on
    MeViS-, Charades-STA- and RefCOCO-style splits (predict, store, score, leaderboard), then the prior on a
    split without public ground truth (submission zip)."""
    import time

    con = Console(json_out, quiet)
    _check_device(device)
    _check_output_dir(out, "--out")
    from refbench.demo import demo_leaderboard, ensure_demo, run_demo

    t0 = time.perf_counter()
    con.note(f"demo data: {ensure_demo()}")
    board = None if no_leaderboard else _default_leaderboard_dir()
    runs = run_demo(out=out, device=device, leaderboard=board, on_run=lambda r: con.result(r.line()))
    if all(r.result.predicted == 0 for r in runs):
        con.note(f"all {len(runs)} runs were already stored under {out}: predictions reused, scores recomputed")
    if board is None:
        con.note("leaderboard: not written (--no-leaderboard)")
    else:
        appended = sum(r.result.leaderboard_rows for r in runs)
        present = sum(r.leaderboard == "present" for r in runs)
        con.note(f"leaderboard {board}: {appended} rows appended"
                 + (f"; {present} runs' rows already there, not appended again" if present else ""))
        con.result(demo_leaderboard(board))
    con.emit_json({"out": out, "device": device, "leaderboard": board, "runs": [r.to_dict() for r in runs]})
    con.note(f"demo done in {time.perf_counter() - t0:.1f} s")


@main.command("eval", epilog=examples(
    "refbench eval --dataset mevis_val_u --root /data/mevis --pred results/mevis_valid_u/ --json mevis.json "
    "--csv mevis.csv",
    "refbench eval --dataset charades_sta_test --root /data/charades_sta --pred answers.json --json - | jq .metrics",
    "refbench eval --dataset refcoco_all --root /data/refer_seg --pred 'preds/{dataset}.json' --csv 'out/{dataset}.csv'",
    "refbench eval --dataset refdavis17_val --root /data/ref_davis --pred results/ --protocol refdavis_b",
    "refbench eval --run runs/mevis_val_u/prior-1a2b3c4d --run runs/refcoco_val/prior-5e6f7a8b --json both.json",
    "refbench eval --config eval.yaml --device cuda",
    note="With several datasets (names separated by commas, or a suite such as refcoco_all) the command prints one "
         "combined table and writes one combined --json; a dataset that fails is reported and the others still "
         "run (--fail-fast stops instead)."))
@click.option("--dataset", help="Dataset card(s) or suite(s), separated by commas (refbench datasets list); "
              "default: the run's with --run.")
@click.option("--pred", help="Predictions: PNG folder, zip or JSON; with several datasets a path holding "
              "{dataset} (e.g. 'preds/{dataset}.json').")
@click.option("--run", "run_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Rescore a refbench run directory (its predictions.json, dataset and root), e.g. with "
                   "another --protocol; repeatable (one combined table).")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>; "
              "{dataset} in it is replaced by each dataset's name).")
@_protocol_option("Scoring protocol (default: the dataset card's).")
@click.option("--missing", type=click.Choice(["error", "empty", "official"]), default="error", show_default=True,
              help="A missing prediction: an error, an empty mask / failed span, or the official script's rule.")
@json_option("Write the summary JSON here (several datasets: one combined document); - writes it to standard "
             "output and everything else to standard error.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False),
              help="Write the per-sample CSV here (several datasets: a path holding {dataset}).")
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
@click.option("--protocol-arg", "protocol_args", multiple=True, metavar="KEY=VALUE[,KEY=VALUE]",
              help="A protocol option (SA-V, SeCVOS, LVOS, MOSE v2, ReasonVOS; docs/protocols.md), e.g. "
                   "skip_first_last=false; repeatable, or several separated by commas.")
@click.option("--per-frame", "per_frame_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Video datasets: write every sample's per-frame J and F, the scorer's own values, to this CSV "
                   "(first column as the per-sample CSV's; format in refbench/evaluate/per_frame.py); with several "
                   "datasets a path holding {dataset}.")
@click.option("--fail-fast", is_flag=True, help=_FAIL_FAST_HELP)
@quiet_option()
@config_option({"roots": "dataset -> data root", "preds": "dataset -> predictions"})
@_fail_cleanly
def eval_cmd(dataset, pred, run_dirs, root, protocol, missing, json_out, csv_out, device, values, parse_style, subset,
             unknown, bad_spans, protocol_args, per_frame_out, fail_fast, quiet) -> None:
    """Score existing predictions exactly as the dataset's official evaluator would."""
    import os

    from refbench.suites import is_multi

    con = Console(json_out, quiet)
    jobs = _eval_jobs(dataset, pred, run_dirs, root, config_meta())
    names = [j[0] for j in jobs]
    multi = len(jobs) > 1 or is_multi(dataset)
    _need_placeholder(csv_out, "--csv", names, "'out/{dataset}.csv'")
    _need_placeholder(per_frame_out, "--per-frame", names, "'out/{dataset}_frames.csv'")
    if multi and csv_out and len(set(names)) != len(names):
        raise RefbenchError(f"--csv {csv_out}: several runs of one dataset would share a file")
    pargs = {k: _config_text(v) for k, v in config_meta().get("protocol_args", {}).items()}
    pargs.update(_parse_protocol_args(_pairs(protocol_args, "--protocol-arg")))
    given = {"values": values, "parse_style": parse_style, "subset": subset, "unknown": unknown,
             "bad_spans": bad_spans, "protocol_args": pargs or None}
    options = {k: v for k, v in given.items() if v is not None}
    for name in dict.fromkeys(names):  # every usage error before torch is imported
        _protocol_applies(name, protocol)
        _check_eval_options(name, protocol, options)
    _check_device(device)
    for name in names:
        _check_output_file(_for_dataset(csv_out, name), "--csv")
        _check_output_file(_for_dataset(per_frame_out, name), "--per-frame")
        if per_frame_out:
            _check_per_frame_task(name)

    def score(job):
        from refbench.evaluate.run import evaluate, write_csv

        name, data_root, pred_path = job
        if not pred_path or not os.path.exists(pred_path):
            raise RefbenchError(f"--pred {pred_path}: not found")
        bar = con.progress(f"eval {name}")
        try:
            result, summary = evaluate(name, pred_path, root=data_root, protocol=protocol, missing=missing,
                                       device=device, progress=bar, per_frame=bool(per_frame_out), **options)
        finally:
            bar.close()
        # the outputs first (atomically): if one cannot be written, no score table claims success
        if csv_out:
            write_csv(result.per_sample, _for_dataset(csv_out, name), "--csv")
        if per_frame_out:
            from refbench.evaluate.per_frame import write_per_frame

            write_per_frame(result.per_frame or [], _for_dataset(per_frame_out, name), "--per-frame")
        return result, summary

    if not multi:
        from refbench.evaluate.run import format_table

        result, summary = score(jobs[0])
        con.emit_json(summary, announce=False)
        partial = summary["partial_reasons"]
        con.result(format_table(result, names[0], partial))
        if partial:
            con.warn(f"warning: partial evaluation, not the official {names[0]} score: " + "; ".join(partial))
        if json_out and not con.json_to_stdout:
            con.note(f"summary: {json_out}")
        if csv_out:
            con.note(f"per-sample: {csv_out}")
        if per_frame_out:
            con.note(f"per-frame: {per_frame_out}")
        return

    from refbench.combined import scored

    def work(item):
        _result, summary = score(item[:3])
        if summary["partial_reasons"]:
            con.warn(f"warning: partial evaluation of {item[0]}: " + "; ".join(summary["partial_reasons"]))
        con.log(f"eval {item[0]}: done")
        return scored(item[0], summary, run_dir=item[3])

    items = [(*job, run_dirs[i] if run_dirs else None) for i, job in enumerate(jobs)]
    outcomes = _each_dataset(items, work, con, fail_fast, label=lambda item: item[0])
    _finish_many("eval", dataset or list(run_dirs), outcomes, con, len(jobs),
                 notes=tuple(f"{what}: {path}" for what, path in (("per-sample", csv_out),
                                                                  ("per-frame", per_frame_out)) if path))


def _eval_jobs(dataset: str | None, pred: str | None, run_dirs, root: str | None,
               cfg: dict) -> list[tuple[str, str | None, str | None]]:
    """``(dataset, root, predictions)`` per dataset to score: from --run directories, or from --dataset (names
    and suites) with --pred / the ``preds:`` of --config, roots from --root / ``roots:``."""
    from refbench.suites import expand_datasets, is_multi

    roots, preds = cfg.get("roots") or {}, cfg.get("preds") or {}
    if run_dirs:
        if len(run_dirs) > 1 and (dataset or pred):
            raise RefbenchError("eval: --run given several times; each run brings its dataset and predictions, so "
                                "leave out --dataset and --pred")
        if dataset and is_multi(dataset):
            raise RefbenchError(f"--dataset {dataset}: with --run, one dataset (the run's own by default)")
        jobs = []
        for d in run_dirs:
            name, run_root, pred_path = _from_run(d, dataset, None, pred)
            jobs.append((name, _root_for(name, root, roots) or run_root, pred_path))
        return jobs
    if not dataset or not (pred or preds):
        raise RefbenchError("eval: give --dataset and --pred, or --run DIR")
    names = expand_datasets(dataset)
    multi = len(names) > 1 or is_multi(dataset)
    if pred and multi and PLACEHOLDER not in pred and not all(n in preds for n in names):
        _need_placeholder(pred, "--pred", names, "'preds/{dataset}.json'")
    _check_shared_root(names, root, roots)
    unknown = sorted(set(preds) - set(names))
    if unknown:
        raise RefbenchError(f"{cfg.get('path')}: preds: {', '.join(unknown)} not among the datasets being scored")
    jobs = [(n, _root_for(n, root, roots), preds.get(n) or _for_dataset(pred, n)) for n in names]
    lacking = [n for n, _r, p in jobs if not p]
    if lacking:
        raise RefbenchError(f"eval: no predictions for {', '.join(lacking)} (give --pred, or preds: in --config)")
    return jobs


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


class _LimitType(click.ParamType):
    """``--limit``: a whole number N >= 1 (the first N samples) or a fraction 0 < x < 1 (the first ceil(x * all))."""

    name = "N|FRACTION"

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            self.fail(f"{value!r}: expected a number of samples or a fraction between 0 and 1", param, ctx)
        if isinstance(value, (int, float)):
            number = value
        else:
            text = str(value).strip()
            try:
                number = int(text)
            except ValueError:
                try:
                    number = float(text)
                except ValueError:
                    self.fail(f"{value!r}: expected a number of samples or a fraction between 0 and 1", param, ctx)
        if isinstance(number, float):
            if not 0 < number < 1:
                self.fail(f"{value!r}: a fraction must lie between 0 and 1; give a whole number of samples "
                          "otherwise", param, ctx)
            return number
        if number < 1:
            self.fail(f"{value!r}: must be >= 1 (or a fraction between 0 and 1)", param, ctx)
        return int(number)


@main.command("run", epilog=examples(
    "refbench run                                        # the blind prior on the embedded demo",
    "refbench run --model prior --dataset demo_all       # three demo tasks, one combined table",
    "refbench run --model sa2va-4b --dataset refcoco_all --root /data/refer_seg --device cuda --json -",
    "refbench run --model momentseg --dataset mevis_val_u --root /data/mevis --device cuda "
    "--model-arg checkpoint=./MomentSeg-3B,mllm_path=./Qwen2.5-VL-3B-Instruct",
    "refbench run --model prior --dataset charades_sta_test --limit 0.1 --seed 1 --quiet",
    "refbench run --config eval.yaml --device cuda:1     # a whole evaluation in a file; flags override it",
    "torchrun --nproc-per-node 8 -m refbench run --model sa2va --dataset mevis_val_u --device cuda",
    note="With several datasets (names separated by commas, or a suite) each is its own run; the command prints "
         "one combined table and writes one combined --json, finishes the others when one fails (--fail-fast "
         "stops instead) and then exits non-zero."))
@click.option("--model", default=None, help="Adapter name (refbench models list). Default: prior.")
@click.option("--dataset", default=None, help="Dataset card(s) or suite(s), separated by commas (refbench datasets "
              "list). Default: the embedded demo_mevis_val_u.")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>; "
              "{dataset} in it is replaced by each dataset's name).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory (default: runs/<dataset>/<model>-<fingerprint>); with several datasets a path "
                   "holding {dataset}. Re-running resumes it.")
@click.option("--limit", type=_LimitType(), help="Only the first N samples, or a fraction (0.1: the first 10%, "
              "rounded up); scored on those, labelled partial, not added to the leaderboard.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Requests per model call and per store "
              "transaction (default: the adapter's; does not change predictions or the fingerprint).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seeds Python's random, NumPy and torch (CPU and CUDA) before the model is built, here and in "
                   "a model's worker process; recorded in run.json and given to the adapter (RunContext.seed).")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda; under torchrun each "
              "rank takes its LOCAL_RANK GPU).")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE[,KEY=VALUE]",
              help="Override adapter options: repeatable, or several separated by commas (a=1,b=2); quote a value "
                   "that holds a comma: a=\"x,y\". Values are read as YAML scalars (0.5, true, null, text).")
@_protocol_option("Scoring protocol (default: the dataset card's).")
@click.option("--leaderboard", "leaderboard_dir", type=click.Path(file_okay=False),
              help="Append reproduced rows to <dir>/<family>.csv (default: $REFBENCH_LEADERBOARD or runs/leaderboards).")
@click.option("--no-leaderboard", is_flag=True, help="Do not append leaderboard rows.")
@click.option("--overwrite", is_flag=True, help="Discard predictions already stored in the run directory.")
@click.option("--fail-fast", is_flag=True, help=_FAIL_FAST_HELP)
@click.option("--per-frame", "per_frame", is_flag=True,
              help="Video datasets: also write <run dir>/per_frame.csv, every sample's per-frame J and F as the "
                   "scorer computed them.")
@click.option("--protocol-arg", "protocol_args", multiple=True, metavar="KEY=VALUE[,KEY=VALUE]",
              help="A scoring protocol option, as for refbench eval (e.g. short_videos=official); repeatable, or "
                   "several separated by commas; a run scored with one is not added to the leaderboard.")
@json_option("Also write the summary JSON here (several datasets: one combined document); - writes it to "
             "standard output and everything else to standard error.")
@quiet_option()
@config_option({"roots": "dataset -> data root"})
@_fail_cleanly
def run_cmd(model, dataset, root, out, limit, batch_size, seed, device, model_args, protocol, leaderboard_dir,
            no_leaderboard, overwrite, fail_fast, per_frame, protocol_args, json_out, quiet) -> None:
    """Run a model over one or more datasets: predict (resumable), score or export, append the leaderboard.

    With no options: the blind prior on the embedded demo set (generated on first use; no data, no GPU).
    Under torchrun (torchrun --nproc-per-node N -m refbench run ...) samples are sharded by video.
    """
    from refbench.adapters.registry import adapter_card, default_model, resolve_options
    from refbench.suites import expand_datasets, is_multi

    con = Console(json_out, quiet)
    roots = config_meta().get("roots") or {}
    # every usage error before torch or the adapter's code is imported
    model = model or default_model()
    parsed = _parse_model_args(model_args)
    resolve_options(adapter_card(model), parsed)
    from refbench.runs.runner import DEFAULT_DATASET

    names = expand_datasets(dataset or DEFAULT_DATASET)
    multi = len(names) > 1 or is_multi(dataset)
    _need_placeholder(out, "--out", names, "'runs/mine/{dataset}'")
    unknown = sorted(set(roots) - set(names))
    if unknown:
        raise RefbenchError(f"{config_meta().get('path')}: roots: {', '.join(unknown)} not among the datasets run")
    _check_shared_root(names, root, roots)
    pargs = {k: _config_text(v) for k, v in config_meta().get("protocol_args", {}).items()}
    pargs.update(_parse_protocol_args(_pairs(protocol_args, "--protocol-arg")))
    for name in names:
        _protocol_applies(name, protocol)
        if per_frame:
            _check_per_frame_task(name)
        if pargs:
            _check_eval_options(name, protocol, {"protocol_args": pargs})
    _check_device(device)
    for name in names:
        _check_output_dir(_for_dataset(out, name), "--out")
    _check_output_dir(leaderboard_dir, "--leaderboard")

    from refbench.runs import dist as D
    from refbench.runs.runner import RunConfig, run

    main_rank = D.from_env().is_main
    board = None if no_leaderboard else (leaderboard_dir or _default_leaderboard_dir())

    def one(name):
        config = RunConfig(model=model, dataset=name, root=_root_for(name, root, roots), out=_for_dataset(out, name),
                           limit=limit, device=device, model_args=parsed, protocol=protocol, leaderboard=board,
                           overwrite=overwrite, batch_size=batch_size, seed=seed, per_frame=per_frame,
                           protocol_args=pargs)
        bar = con.progress(f"{config.model} on {config.dataset}") if main_rank else None
        try:
            result = run(config, progress=bar, log=con.log if main_rank else None)
        finally:
            if bar is not None:
                bar.close()
        if main_rank:
            con.note(f"{config.model} on {config.dataset}: {result.predicted} predicted, {result.reused} reused, "
                     f"{result.total} samples; run dir {result.run_dir}")
        return config, result

    try:
        if not multi:
            config, result = one(names[0])
            if not main_rank:
                return
            if result.summary is not None:
                con.emit_json(result.summary, announce=False)
            else:
                con.emit_json(_run_outcome(config, result).to_dict(), announce=False)
            if result.table:
                con.result(result.table)
            if result.leaderboard_rows:
                con.note(f"leaderboard: {result.leaderboard_rows} rows appended to {config.leaderboard}")
            for note in result.notes:
                con.note(note)
            if json_out and not con.json_to_stdout:
                con.note(f"summary: {json_out}")
            return

        def work(name):
            config, result = one(name)
            if main_rank:
                for note in result.notes:
                    con.note(f"{name}: {note}")
            return _run_outcome(config, result)

        outcomes = _each_dataset(names, work, con, fail_fast)
    except KeyboardInterrupt:
        con.warn("interrupted: every finished batch is stored; run the same command again to resume")
        sys.exit(130)
    if main_rank:
        _finish_many("run", dataset, outcomes, con, len(names))
    else:
        from refbench.combined import exit_code

        if exit_code(outcomes):
            sys.exit(exit_code(outcomes))


def _run_outcome(config, result):
    """A run's :class:`refbench.combined.Outcome`: scored (ok / partial), a submission zip, or stored only."""
    from refbench.combined import Outcome, scored

    from refbench.cards import dataset_card

    where = {"run_dir": str(result.run_dir), "notes": list(result.notes),
             "protocol": config.protocol or dataset_card(config.dataset).protocol}
    if result.summary is not None:
        return scored(config.dataset, result.summary, **where)
    if result.submission is not None:
        return Outcome(config.dataset, "submission", submission=str(result.submission), **where)
    return Outcome(config.dataset, "predicted", **where)


@main.group("models", epilog=examples("refbench models list", "refbench models list --task res --json -",
                                      "refbench models show sa2va-4b"))
def models_group() -> None:
    """List the model adapters refbench knows (cards and installed entry points)."""


@models_group.command("list", epilog=examples("refbench models list", "refbench models list --task tsg",
                                              "refbench models list --json - | jq '.[].name'"))
@click.option("--task", help="Only adapters of this task (refvos, vos, tsg, res).")
@json_option("Write the cards as JSON here (a list, aliases on their card); - for standard output.")
@_fail_cleanly
def models_list(task: str | None, json_out: str | None) -> None:
    """List adapter cards (reads YAML and entry-point metadata only)."""
    from refbench.adapters.registry import list_models

    con = Console(json_out)
    cards = [c for c in list_models() if not (task and c.tasks and task not in c.tasks)]
    con.emit_json([c.to_dict() for c in cards], what="models")
    if con.json_to_stdout:
        return
    lines = [f"{'name':<20} {'tasks':<16} {'pixels':<7} {'env':<13} title"]
    for c in cards:
        tasks = ",".join(c.tasks) or "?"
        env = c.environment.name if c.environment else "-"
        lines.append(f"{c.name:<20} {tasks:<16} {'yes' if c.needs_pixels else 'no':<7} {env:<13} {c.title}")
        for alias in c.aliases:
            lines.append(f"{alias:<20} {'(alias of ' + c.name + ')'}")
    con.result("\n".join(lines))


@models_group.command("show", epilog=examples("refbench models show momentseg", "refbench models show sa2va-4b --json -"))
@click.argument("name")
@json_option("Write the card as JSON here; - for standard output.")
@_fail_cleanly
def models_show(name: str, json_out: str | None) -> None:
    """Print model NAME's card: options (default, type or allowed values, doc), weights, environment, status."""
    from refbench.adapters.registry import adapter_card
    from refbench.envs import env_dir, env_python, unmet_pins

    c = adapter_card(name)
    con = Console(json_out)
    con.emit_json(c.to_dict(), what="card")
    if con.json_to_stdout:
        return
    echo = con.result
    alias = f" (alias {name})" if name != c.name else ""
    echo(f"{c.name}{alias}: {c.title}")
    echo(f"  code: {c.code}")
    echo(f"  tasks: {', '.join(c.tasks)}")
    if c.aliases:
        echo(f"  aliases: {', '.join(c.aliases)}")
    if c.status:
        echo(f"  status: {c.status}")
    if c.trust_remote_code:
        echo("  trust_remote_code: true (runs the Python code shipped in the checkpoint; its sha256 is in the "
             "fingerprint)")
    if c.weights:
        w = c.weights
        for key in ("hub", "modelscope", "base_model"):
            if w.get(key):
                echo(f"  weights.{key}: {w[key]}")
        echo(f"  weights.revision: {w.get('revision') or 'not pinned'}"
             + (f" ({w['revision_note']})" if w.get("revision_note") else ""))
    if c.environment:
        e = c.environment
        here = unmet_pins(e)
        echo(f"  environment: {e.name} (python {e.python or 'any'}; pins {', '.join(e.pins) or '-'})")
        echo(f"    packages: {', '.join(e.packages) or '-'}" + (f"; optional: {', '.join(e.optional)}"
                                                                 if e.optional else ""))
        where = ("this Python (pins met)" if not here else
                 f"{env_dir(e.name)}" + ("" if env_python(e.name).exists() else
                                          f" (missing: refbench env create {c.name})"))
        echo(f"    runs in: {where}")
    if c.reported:
        src = c.reported.get("source") if isinstance(c.reported, dict) else c.reported
        echo(f"  reported numbers: {src}")
    echo("  options:")
    for key, spec in c.specs.items():
        flag = "" if spec.output else " [not in fingerprint]"
        echo(f"    {key} = {spec.default!r}  ({spec.allowed()}){flag}")
        if spec.doc:
            echo(f"        {spec.doc}")
    if c.notes:
        echo(f"  notes: {c.notes}")


@main.group("env", epilog=examples("refbench env list", "refbench env create momentseg",
                                   "refbench env check sa2va-4b --json -"))
def env_group() -> None:
    """Per-model Python environments (models pin incompatible transformers versions)."""


@env_group.command("create", epilog=examples(
    "refbench env create momentseg",
    "refbench env create sa2va-4b --torch 'torch==2.6.0+cu124' --torch-index-url https://download.pytorch.org/whl/cu124",
    "refbench env create sa2va-4b --minimal --find-links /opt/wheels"))
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
@json_option("Write what was built as JSON here; - for standard output.")
@quiet_option()
@_fail_cleanly
def env_create(name, torch_req, torch_index_url, find_links, minimal, python, installer, force, json_out,
               quiet) -> None:
    """Build the environment model NAME's card names (or environment NAME), with refbench installed in it."""
    from refbench.envs import create

    con = Console(json_out, quiet)
    rep = create(name, torch=torch_req, torch_index_url=torch_index_url, find_links=find_links, minimal=minimal,
                 python=python, installer=installer, force=force, log=con.log)
    con.emit_json({"name": rep.name, "path": str(rep.path), "installer": rep.installer, "seconds": rep.seconds,
                   "requirements": list(rep.requirements)}, what="environment")
    con.result(f"environment {rep.name}: {rep.path} ({rep.installer}, {rep.seconds:.1f} s; "
               f"{', '.join(rep.requirements)})")


@env_group.command("list", epilog=examples("refbench env list", "refbench env list --json -"))
@json_option("Write the environments as JSON here (a list); - for standard output.")
@_fail_cleanly
def env_list(json_out: str | None) -> None:
    """The environments the cards name, whether each exists, and which models use it."""
    from refbench.envs import list_envs

    con = Console(json_out)
    rows = list_envs()
    con.emit_json(rows, what="environments")
    if con.json_to_stdout:
        return
    lines = [f"{'environment':<14} {'state':<10} {'pins':<22} models / path"]
    for row in rows:
        state = "here" if row["here"] else ("built" if row["exists"] else "missing")
        if row["exists"] and row.get("minimal"):
            state += "*"
        lines.append(f"{row['name']:<14} {state:<10} {', '.join(row['pins']):<22} {', '.join(row['cards'])}")
        lines.append(f"{'':<14} {'':<10} {'':<22} {row['path']}")
    lines.append("(here: this Python has the pins; built*: built with --minimal)")
    con.result("\n".join(lines))


@env_group.command("check", epilog=examples("refbench env check momentseg", "refbench env check sa2va-legacy --json -"))
@click.argument("name")
@json_option("Write the check's result as JSON here; - for standard output.")
@_fail_cleanly
def env_check(name, json_out) -> None:
    """Check that environment NAME (or model NAME's) imports torch, transformers and refbench at the pinned versions."""
    from refbench.envs import check

    con = Console(json_out)
    rep = check(name)
    con.emit_json({"name": rep.name, "path": str(rep.path), "ok": rep.ok, "exists": rep.exists,
                   "problems": rep.problems, "warnings": rep.warnings, "versions": rep.versions,
                   "python": rep.python}, what="check")
    for w in rep.warnings:
        con.result(f"warning: {w}")
    if not rep.ok:
        for p in rep.problems:
            con.result(f"problem: {p}")
        raise CheckFailed(f"environment {rep.name}: {len(rep.problems)} problem(s)")
    vs = ", ".join(f"{k} {v}" for k, v in rep.versions.items() if v)
    con.result(f"environment {rep.name}: ok ({rep.path}; python {rep.python}; {vs})")


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


#: the file name of a submission zip, for refbench run and refbench export alike
SUBMISSION_ZIP = "submission.zip"

#: submission formats that fit each task's predictions (a card without a format of its own)
_FORMATS_FOR_TASK = {"refvos": ("mevis", "refytvos", "davis"), "vos": ("davis", "ytvos")}


def _submission_format(dataset: str, fmt: str | None) -> str:
    """``--format``, else the card's; a card without one is a usage error saying which formats fit."""
    if fmt:
        return fmt
    from refbench.cards import dataset_card

    card = dataset_card(dataset)
    own = (card.submission or {}).get("format")
    if own:
        return own
    fits = _FORMATS_FOR_TASK.get(card.task)
    if not fits:
        raise RefbenchError(f"export: {card.name} is a {card.task} dataset; no server takes a submission zip of its "
                            "predictions (refbench eval scores them)")
    raise RefbenchError(f"export: {card.name} names no submission format; pass --format, one of {', '.join(fits)} "
                        f"(the {card.task} formats)")


@main.command("export", epilog=examples(
    "refbench export --run runs/mevis_val/prior-1a2b3c4d              # -> <run>/submission.zip, the card's format",
    "refbench export --dataset refytvos_val --root /data/refytvos --pred preds.json --out refytvos.zip",
    "refbench export --run runs/refdavis17_val/sa2va-4b-0f1e2d3c --format davis --out davis.zip --missing empty"))
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="A refbench run directory (its predictions.json and dataset).")
@click.option("--dataset", help="Dataset card name (with --pred; default: the run's).")
@click.option("--pred", type=click.Path(exists=True), help="Predictions to export instead of a run's.")
@click.option("--format", "fmt", type=click.Choice(["mevis", "refytvos", "davis", "ytvos"]),
              help="Submission format (default: the card's, shown by refbench datasets show NAME).")
@click.option("--out", type=click.Path(dir_okay=False),
              help=f"Zip to write (default: <run>/{SUBMISSION_ZIP}, the name refbench run gives it).")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: the run's, or the card's).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing zip.")
@json_option("Write what was exported as JSON here; - for standard output.")
@quiet_option()
@_fail_cleanly
def export_cmd(run_dir, dataset, pred, fmt, out, root, missing, overwrite, json_out, quiet) -> None:
    """Write a CodaLab/Codabench submission zip (MeViS, Ref-YouTube-VOS, DAVIS / MOSE and YouTube-VOS palette PNGs)."""
    from pathlib import Path

    con = Console(json_out, quiet)
    if run_dir:
        dataset, root, pred = _from_run(run_dir, dataset, root, pred)
    if not dataset or not pred:
        raise RefbenchError("export: give --run DIR, or --dataset and --pred")
    fmt = _submission_format(dataset, fmt)
    if out is None:
        if not run_dir:
            raise RefbenchError("export: give --out ZIP")
        out = str(Path(run_dir) / SUBMISSION_ZIP)
    _check_output_file(out, "--out", overwrite=overwrite)
    from refbench.export import export_submission

    rep = export_submission(dataset, pred, out, fmt=fmt, root=root, missing=missing, overwrite=overwrite)
    con.emit_json({"dataset": dataset, "path": str(rep.path), "format": rep.format, "videos": rep.videos,
                   "expressions": rep.expressions, "frames": rep.frames, "filled": rep.filled,
                   "server": rep.server}, what="export")
    con.result(f"{rep.path}: {rep.format} submission, {rep.videos} videos, {rep.expressions} expressions, "
               f"{rep.frames} frames" + (f" ({rep.filled} filled empty)" if rep.filled else ""))
    if rep.server:
        con.note(f"upload to {rep.server}")


@main.command("regress", epilog=examples(
    "refbench regress --baseline .ci/baseline.json --run runs/charades_sta_test/prior-1a2b3c4d",
    "refbench regress --baseline base.json --run runs/a --run runs/b --tolerance 0.05 --strict --json -",
    "refbench regress --baseline base.json --run runs/a --write     # record the run as the baseline"))
@click.option("--baseline", required=True, type=click.Path(dir_okay=False), help="Baseline JSON.")
@click.option("--run", "run_dirs", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="Run directory to check (repeatable).")
@click.option("--tolerance", type=float, help="Absolute tolerance (default: the baseline file's).")
@click.option("--strict", is_flag=True, help="Every baseline entry must be among the runs.")
@click.option("--write", is_flag=True, help="Write/update the baseline from the runs instead of checking.")
@json_option("Write the check's result (every drift, the notes) as JSON here; - for standard output.")
@quiet_option()
@_fail_cleanly
def regress_cmd(baseline, run_dirs, tolerance, strict, write, json_out, quiet) -> None:
    """Exit 1, naming each metric, when a run's metrics moved beyond tolerance from the baseline."""
    import math

    from refbench.regress import compare, read_baseline, read_run, write_baseline

    con = Console(json_out, quiet)
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise RefbenchError(f"--tolerance {tolerance}: must be a finite number >= 0")
    runs = [read_run(d) for d in run_dirs]
    if write:
        write_baseline(baseline, runs, tolerance if tolerance is not None else 1e-9)
        con.emit_json({"baseline": baseline, "written": [r.key for r in runs]}, what="result")
        con.result(f"{baseline}: {len(runs)} entr{'y' if len(runs) == 1 else 'ies'} written")
        return
    report = compare(read_baseline(baseline), runs, tolerance=tolerance, strict=strict)
    con.emit_json({"baseline": baseline, "ok": report.ok, "checked": report.checked, "runs": [r.key for r in runs],
                   "drifts": [{"key": d.key, "metric": d.metric, "baseline": d.baseline, "value": d.value,
                               "tolerance": d.tolerance, "line": d.line()} for d in report.drifts],
                   "notes": list(report.notes)}, what="result")
    for note in report.notes:
        con.note(f"note: {note}")
    if not report.ok:
        for d in report.drifts:
            con.result(f"drift: {d.line()}")
        raise CheckFailed(f"{len(report.drifts)} metric(s) drifted from {baseline}")
    con.result(f"ok: {report.checked} metric(s) of {len(runs)} run(s) within tolerance of {baseline}")


@main.group("datasets", epilog=examples("refbench datasets list", "refbench datasets show refcoco_all",
                                        "refbench datasets check --dataset mevis_val_u --root /data/mevis"))
def datasets_group() -> None:
    """List the benchmark splits (and suites) refbench knows and check data on disk."""


@datasets_group.command("list", epilog=examples("refbench datasets list", "refbench datasets list --task res",
                                                "refbench datasets list --json - | jq '.suites[].name'",
                                                note="Your own cards: put datasets/NAME.yaml (and suites/, "
                                                     "adapters/) in a folder named by REFBENCH_CARDS."))
@click.option("--task", help="Only this task family (refvos, vos, tsg, res).")
@json_option("Write the dataset and suite cards as JSON here ({datasets: [...], suites: [...]}); - for standard "
             "output.")
@_fail_cleanly
def datasets_list(task: str | None, json_out: str | None) -> None:
    """List dataset cards, then suites (reads YAML only)."""
    from refbench.cards import dataset_cards
    from refbench.suites import expand_datasets, suite_cards

    con = Console(json_out)
    all_cards = dataset_cards()
    cards = [c for c in all_cards.values() if task is None or c.task == task]
    suites = [s for s in suite_cards().values()
              if task is None or any(all_cards[n].task == task for n in expand_datasets(s.name))]
    con.emit_json({"datasets": [c.to_dict() for c in cards], "suites": [s.to_dict() for s in suites]},
                  what="cards")
    if con.json_to_stdout:
        return
    lines = [f"{'name':<22} {'task':<7} {'gt':<7} {'protocol':<11} counts"]
    for c in cards:
        counts = ", ".join(f"{k} {v:,}" for k, v in (c.counts or {}).items()) or "-"
        mark = "" if c.origin == "built-in" else f"  ({c.origin})"
        lines.append(f"{c.name:<22} {c.task:<7} {c.ground_truth:<7} {c.protocol:<11} {counts}{mark}")
    if suites:
        lines += ["", f"{'suite':<22} datasets (--dataset SUITE runs each; refbench datasets show SUITE)"]
        for s in suites:
            names = expand_datasets(s.name)
            mark = "" if s.origin == "built-in" else f"  ({s.origin})"
            lines.append(f"{s.name:<22} {', '.join(names)}{mark}")
    con.result("\n".join(lines))


def _dataset_arg(name: str | None, dataset: str | None, command: str) -> str:
    """The dataset of ``refbench datasets show/check``: the NAME argument or ``--dataset`` (the same value if
    both are given)."""
    if name and dataset and name != dataset:
        raise RefbenchError(f"datasets {command}: NAME {name!r} and --dataset {dataset!r} differ; give one")
    if not (name or dataset):
        raise RefbenchError(f"datasets {command}: give a dataset, e.g. refbench datasets {command} --dataset "
                            "mevis_val_u")
    return name or dataset  # type: ignore[return-value]


@datasets_group.command("show", epilog=examples("refbench datasets show mevis_val_u",
                                                "refbench datasets show --dataset refdavis17_val --json -",
                                                "refbench datasets show refcoco_all      # a suite"))
@click.argument("name", required=False)
@click.option("--dataset", help="Dataset card or suite name (the same as NAME).")
@json_option("Write the card and its protocols as JSON here; - for standard output.")
@_fail_cleanly
def datasets_show(name: str | None, dataset: str | None, json_out: str | None) -> None:
    """Print dataset card NAME and the protocols it can be scored with: their sources and quirks (YAML only).
    NAME may be a suite: its datasets are listed."""
    from refbench.cards import dataset_card, dataset_cards
    from refbench.suites import suite_cards

    con = Console(json_out)
    name = _dataset_arg(name, dataset, "show")
    if name in suite_cards() and name not in dataset_cards():
        suite = suite_cards()[name]
        con.emit_json(suite.to_dict(), what="suite")
        if not con.json_to_stdout:
            con.result(format_suite(suite))
        return
    card = dataset_card(name)
    if con.json_path:
        from refbench.protocols import protocols_for

        doc = card.to_dict()
        doc["protocols"] = [{"name": p.name, "title": p.title, "label": p.label, "references": list(p.references),
                             "metrics": list(p.metrics), "official_scale": p.official_scale, "prints": p.prints,
                             "quirks": list(p.quirks), "server": p.server, "doc": p.doc}
                            for p in protocols_for(card)]
        con.emit_json(doc, what="card")
    if not con.json_to_stdout:
        con.result(format_dataset(card))


def format_suite(suite) -> str:
    """The text of ``refbench datasets show SUITE``."""
    from refbench.cards import dataset_cards
    from refbench.suites import expand_datasets

    cards = dataset_cards()
    out = [f"{suite.name}: {suite.title}", f"  {'suite':<16}{', '.join(suite.datasets)}", "  datasets:"]
    for n in expand_datasets(suite.name):
        c = cards[n]
        out.append(f"    {n:<20} {c.task:<7} {c.ground_truth:<7} {c.protocol:<11} {c.title}")
    if suite.notes:
        out.append(f"  {'notes':<16}{' '.join(str(suite.notes).split())}")
    if suite.path:
        out.append(f"  {'card':<16}{suite.path}")
    return "\n".join(out)


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




@datasets_group.command("check", epilog=examples(
    "refbench datasets check mevis_val_u --root /data/mevis",
    "refbench datasets check --dataset charades_sta_test --root /data/charades_sta --annotations-only",
    "refbench datasets check --dataset refcoco_all --root /data/refer_seg --json -"))
@click.argument("name", required=False)
@click.option("--dataset", help="Dataset card(s) or suite(s), separated by commas (the same as NAME).")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>; "
              "{dataset} in it is replaced by each dataset's name).")
@click.option("--annotations-only", is_flag=True, help="Do not require frames / images on disk.")
@json_option("Write every dataset's problems, notes and counts as JSON here ({ok, results: [...]}); - for "
             "standard output.")
@quiet_option()
@_fail_cleanly
def datasets_check(name: str | None, dataset: str | None, root: str | None, annotations_only: bool,
                   json_out: str | None, quiet: bool) -> None:
    """Verify layout, readable files and official counts of dataset NAME; list every problem found. Exit 1 when
    there are problems."""
    from refbench.cards import dataset_card
    from refbench.data.check import check_dataset
    from refbench.suites import expand_datasets, is_multi

    con = Console(json_out, quiet)
    spec = _dataset_arg(name, dataset, "check")
    names = expand_datasets(spec)
    multi = len(names) > 1 or is_multi(spec)
    _check_shared_root(names, root, {})
    results: list[dict] = []

    def one(n: str) -> dict:
        problems, notes, found = check_dataset(dataset_card(n), _for_dataset(root, n),
                                               require_media=not annotations_only)
        summary = ", ".join(f"{k} {v:,}" for k, v in found.items()) or "nothing"
        for note in notes:
            con.note(note)
        for p in problems:
            con.result(f"problem: {p}")
        line = f"{n}: {len(problems)} problem(s) found ({summary})" if problems else f"{n}: ok ({summary})"
        return {"dataset": n, "ok": not problems, "problems": problems, "notes": notes, "found": found,
                "line": line}

    if not multi:
        res = one(names[0])
        line = res.pop("line")
        con.emit_json({"ok": res["ok"], "results": [res]}, what="check")
        if not res["ok"]:
            raise CheckFailed(line)
        con.result(line)
        return

    from refbench.combined import Outcome, exit_code

    def work(n: str):
        res = one(n)
        con.result(res.pop("line"))
        results.append(res)
        return Outcome(n, "ok" if res["ok"] else "failed", exit_code=0 if res["ok"] else 1,
                       error=None if res["ok"] else f"{len(res['problems'])} problem(s)")

    outcomes = _each_dataset(names, work, con, fail_fast=False)
    by = {r["dataset"]: r for r in results}
    doc = [by.get(o.dataset) or {"dataset": o.dataset, "ok": False, "problems": [], "notes": [], "found": {},
                                 "error": o.error, "exit_code": o.exit_code} for o in outcomes]
    con.emit_json({"ok": exit_code(outcomes) == 0, "results": doc}, what="check")
    bad = [o for o in outcomes if o.status == "failed"]
    con.result(f"{len(outcomes) - len(bad)} of {len(outcomes)} datasets ok")
    if bad:
        con.warn(f"Error: {', '.join(o.dataset for o in bad)}: problems or errors (see above)")
        sys.exit(exit_code(outcomes))


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
