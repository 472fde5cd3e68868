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
@click.option("--device", default="cpu", show_default=True, help="torch device for scoring (cpu, cuda, cuda:1).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@click.option("--seed", default=0, show_default=True, help="Seed of the procedurally generated demo videos.")
@_fail_cleanly
def demo_cmd(device: str, json_out: str | None, seed: int) -> None:
    """Score a procedurally generated MeViS-style demo set (no data or GPU needed)."""
    import json

    from refbench.demo import run_demo

    summary = run_demo(device=device, seed=seed)
    click.echo(summary["table"])
    if json_out:
        with open(json_out, "w") as fh:
            json.dump({k: v for k, v in summary.items() if k != "table"}, fh, indent=2)
        click.echo(f"summary written to {json_out}")


@main.command("eval")
@click.option("--dataset", required=True, help="Dataset card name (refbench datasets list).")
@click.option("--pred", required=True, type=click.Path(exists=True), help="Predictions: PNG folder, zip or JSON.")
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
@_fail_cleanly
def eval_cmd(dataset, pred, root, protocol, missing, json_out, csv_out, device, values, parse_style, subset, unknown) -> None:
    """Score existing predictions exactly as the dataset's official evaluator would."""
    from refbench.evaluate.run import evaluate, format_table, write_csv, write_json

    given = {"values": values, "parse_style": parse_style, "subset": subset, "unknown": unknown}
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
