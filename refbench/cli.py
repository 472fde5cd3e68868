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
    """An expected failure: printed as one line, exit code 1."""


def _fail_cleanly(fn):
    """Turn library errors (ValueError, FileNotFoundError, ...) into one-line messages."""

    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, FileNotFoundError, KeyError, TypeError, RuntimeError, ImportError) as exc:
            from refbench.cards import CardError

            msg = str(exc) if isinstance(exc, CardError) else f"{type(exc).__name__}: {exc}"
            raise RefbenchError(msg) from exc

    return wrapper


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
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the demo's run directories (<out>/<dataset>/<model>). Re-running resumes them.")
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
        doc = {"out": out, "device": device, "leaderboard": board, "runs": [r.to_dict() for r in runs]}
        with open(json_out, "w") as fh:
            json.dump(doc, fh, indent=2)
        click.echo(f"summary: {json_out}")
    click.echo(f"demo done in {time.perf_counter() - t0:.1f} s")


@main.command("eval")
@click.option("--dataset", help="Dataset card name (refbench datasets list); default: the run's with --run.")
@click.option("--pred", type=click.Path(exists=True), help="Predictions: PNG folder, zip or JSON.")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="Rescore a refbench run directory (its predictions.json, dataset and root), e.g. with "
                   "another --protocol.")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $REFBENCH_DATA/<card default>).")
@click.option("--protocol", help="Protocol name (default: the card's).")
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
@click.option("--protocol-arg", "protocol_args", multiple=True, metavar="KEY=VALUE",
              help="A protocol option (SA-V, SeCVOS, LVOS, MOSE v2, ReasonVOS; docs/protocols_vos.md), e.g. "
                   "skip_first_last=false.")
@_fail_cleanly
def eval_cmd(dataset, pred, run_dir, root, protocol, missing, json_out, csv_out, device, values, parse_style, subset,
             unknown, protocol_args) -> None:
    """Score existing predictions exactly as the dataset's official evaluator would."""
    from refbench.evaluate.run import evaluate, format_table, write_csv, write_json

    if run_dir:
        dataset, root, pred = _from_run(run_dir, dataset, root, pred)
    if not dataset or not pred:
        raise RefbenchError("eval: give --dataset and --pred, or --run DIR")

    given = {"values": values, "parse_style": parse_style, "subset": subset, "unknown": unknown,
             "protocol_args": _parse_protocol_args(protocol_args) or None}
    if protocol_args:
        from refbench.cards import dataset_card

        if dataset_card(dataset).task not in ("refvos", "vos"):
            raise RefbenchError(f"--protocol-arg: dataset {dataset} has no protocol options (video protocols only)")
    options = {k: v for k, v in given.items() if v is not None}
    bar = _ProgressBar(f"eval {dataset}")
    try:
        result, summary = evaluate(dataset, pred, root=root, protocol=protocol, missing=missing, device=device,
                                   progress=bar, **options)
    finally:
        bar.close()
    click.echo(format_table(result, dataset))
    if json_out:
        write_json(summary, json_out)
        click.echo(f"summary: {json_out}")
    if csv_out:
        write_csv(result.per_sample, csv_out)
        click.echo(f"per-sample: {csv_out}")


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
@click.option("--protocol", help="Scoring protocol (default: the card's).")
@click.option("--leaderboard", "leaderboard_dir", type=click.Path(file_okay=False),
              help="Append reproduced rows to <dir>/<family>.csv (default: $REFBENCH_LEADERBOARD or runs/leaderboards).")
@click.option("--no-leaderboard", is_flag=True, help="Do not append leaderboard rows.")
@click.option("--overwrite", is_flag=True, help="Discard predictions already stored in the run directory.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the summary JSON here.")
@_fail_cleanly
def run_cmd(model, dataset, root, out, limit, device, model_args, protocol, leaderboard_dir, no_leaderboard,
            overwrite, json_out) -> None:
    """Run a model over a dataset: predict (resumable), score or export, append the leaderboard.

    With no options: the blind prior on the embedded demo set (generated on first use; no data, no GPU).
    Under torchrun (torchrun --nproc-per-node N -m refbench run ...) samples are sharded by video.
    """
    from refbench.adapters.registry import default_model, parse_model_args
    from refbench.runs import dist as D
    from refbench.runs.runner import DEFAULT_DATASET, RunConfig, run

    config = RunConfig(model=model or default_model(), dataset=dataset or DEFAULT_DATASET, root=root, out=out,
                       limit=limit, device=device, model_args=parse_model_args(model_args), protocol=protocol,
                       leaderboard=None if no_leaderboard else (leaderboard_dir or _default_leaderboard_dir()),
                       overwrite=overwrite)
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

        write_json(result.summary, json_out)
        click.echo(f"summary: {json_out}")


@main.group("models")
def models_group() -> None:
    """List the model adapters refbench knows (cards and installed entry points)."""


@models_group.command("list")
@click.option("--task", help="Only adapters of this task (refvos, tsg, res).")
@_fail_cleanly
def models_list(task: str | None) -> None:
    """List adapter cards (reads YAML and entry-point metadata only)."""
    from refbench.adapters.registry import list_models

    click.echo(f"{'name':<14} {'tasks':<16} {'pixels':<7} {'extra':<10} title")
    for c in list_models():
        if task and c.tasks and task not in c.tasks:
            continue
        tasks = ",".join(c.tasks) or "?"
        click.echo(f"{c.name:<14} {tasks:<16} {'yes' if c.needs_pixels else 'no':<7} {c.extra or '-':<10} {c.title}")


def _from_run(run_dir: str, dataset: str | None, root: str | None, pred: str | None) -> tuple[str, str | None, str]:
    """(dataset, root, predictions) of a run directory, each overridable."""
    import json
    from pathlib import Path

    meta_path = Path(run_dir) / "run.json"
    try:
        meta = json.loads(meta_path.read_text())
        run_dataset, run_root = meta["header"]["dataset"], meta["config"].get("root")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RefbenchError(f"{meta_path}: not a refbench run ({exc})") from exc
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
    from refbench.regress import compare, read_baseline, read_run, write_baseline

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
        raise RefbenchError(f"{len(report.drifts)} metric(s) drifted from {baseline}")
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
        raise RefbenchError(f"{name}: {len(problems)} problem(s) found ({summary})")
    click.echo(f"{name}: ok ({summary})")


def _register_leaderboard() -> None:
    from refbench.leaderboard import leaderboard_command

    main.add_command(leaderboard_command)


_register_leaderboard()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
