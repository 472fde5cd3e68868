"""The analysis commands of the command line: ``refbench compare``, ``refbench report``, ``refbench fuse``.

Registered on :data:`refbench.cli.main` by :func:`register` (called at the end of :mod:`refbench.cli`); they use
its error handling (:func:`refbench.cli._fail_cleanly`: one line, exit 2 for bad input). Only click is imported
here; each command imports numpy, torch or PIL when it runs.
"""

from __future__ import annotations

import click

from refbench.cli import RefbenchError, _check_output_dir, _check_output_file, _fail_cleanly
from refbench.clikit import Console, examples, json_option, quiet_option


@click.command("compare", epilog=examples(
    "refbench compare runs/mevis_val_u/sa2va-4b-1a2b3c4d runs/mevis_val_u/sa2va-4b-5e6f7a8b --resamples 10000",
    "refbench compare RUN_A RUN_B --top 20 --json diff.json",
    "refbench compare RUN_A RUN_B --json - | jq '.metrics'"))
@click.argument("run_a", metavar="RUN_A", type=click.Path(exists=True, file_okay=False))
@click.argument("run_b", metavar="RUN_B", type=click.Path(exists=True, file_okay=False))
@click.option("--resamples", default=1000, show_default=True, type=int, help="Paired bootstrap resamples.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the resampling (numpy PCG64).")
@click.option("--top", default=10, show_default=True, type=int, help="How many samples that moved most to list.")
@json_option("Also write the comparison as JSON here; - writes it to standard output (the table to standard "
             "error).")
@quiet_option()
@_fail_cleanly
def compare_cmd(run_a, run_b, resamples, seed, top, json_out, quiet) -> None:
    """Per metric, B - A with a paired bootstrap 95% interval and p-value over the samples, each resample scored
    with the protocol's own aggregation; then the samples that moved most."""
    if resamples < 1:
        raise RefbenchError(f"--resamples {resamples}: must be at least 1")
    if top < 0:
        raise RefbenchError(f"--top {top}: must be 0 or more")
    con = Console(json_out, quiet)
    from refbench.analysis.compare import compare_runs
    from refbench.analysis.rundir import open_run

    result = compare_runs(open_run(run_a), open_run(run_b), resamples=resamples, seed=seed, top=top)
    con.emit_json(result.to_dict(), announce=False)
    con.result(result.table())
    if json_out and not con.json_to_stdout:
        con.note(f"comparison: {json_out}")


@click.command("fuse", epilog=examples(
    "refbench fuse runs/mevis_val_u/sa2va-8b-1a2b3c4d runs/mevis_val_u/sa2va-26b-5e6f7a8b "
    "runs/mevis_val_u/momentseg-7b-9c0d1e2f --out runs/mevis_val_u/fuse-3",
    "refbench fuse RUN_A RUN_B RUN_C --out runs/fused --device cuda --overwrite"))
@click.argument("runs", metavar="RUN RUN [RUN ...]", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write the fused run to.")
@click.option("--root", type=click.Path(file_okay=False), help="Data root to score on (default: the first run's).")
@click.option("--device", default="cpu", show_default=True, help="torch device for scoring (cpu, cuda, cuda:1).")
@click.option("--overwrite", is_flag=True, help="Replace the files of an existing, non-empty --out.")
@_fail_cleanly
def fuse_cmd(runs, out, root, device, overwrite) -> None:
    """Pixel-wise majority vote of several runs' masks (a pixel is foreground where more than half of the runs say
    so; a tie is background; VOS: per object id), written as a run that eval, export and report accept."""
    from refbench.cli import _check_device

    _check_device(device)
    _check_output_dir(out, "--out")
    from refbench.analysis.fuse import fuse_runs
    from refbench.analysis.rundir import open_run

    res = fuse_runs([open_run(r) for r in runs], out, overwrite=overwrite, device=device, root=root)
    counts = ", ".join(f"{k} {v}" for k, v in res.counts.items())
    click.echo(f"fused {res.runs} runs of {res.dataset} ({res.task}; {counts}) into {res.out}: fingerprint "
               f"{res.fingerprint[:12]}, {res.seconds:.1f} s")
    if res.table:
        click.echo(res.table)
    for note in res.notes:
        click.echo(f"note: {note}")


@click.command("report", epilog=examples(
    "refbench report runs/demo_mevis_val_u/prior-1a2b3c4d --out report.html",
    "refbench report runs/mevis_val_u/sa2va-4b-* runs/mevis_val_u/fuse-3 --out mevis.html --worst 20"))
@click.argument("runs", metavar="RUN [RUN ...]", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@click.option("--worst", default=8, show_default=True, type=int, help="How many worst samples to show with images.")
@click.option("--frames", default=4, show_default=True, type=int, help="Overlay frames per worst video sample.")
@click.option("--image-width", default=320, show_default=True, type=int, help="Width of each overlay (pixels).")
@click.option("--root", type=click.Path(file_okay=False), help="Data root (frames, ground truth; default: the run's).")
@_fail_cleanly
def report_cmd(runs, out, worst, frames, image_width, root) -> None:
    """One self-contained HTML page (no network) about finished runs: headline table beside the reported numbers
    of the same protocol, per-sample distributions, per-video bars, J against F, the worst samples with overlays
    and per-frame curves, and each run's provenance. Runs of one dataset are shown side by side."""
    if worst < 0 or frames < 1 or image_width < 32:
        raise RefbenchError("--worst must be >= 0, --frames >= 1 and --image-width >= 32")
    _check_output_file(out, "--out")
    from refbench.analysis.report import ReportOptions, build_report
    from refbench.analysis.rundir import open_run

    res = build_report([open_run(r) for r in runs], out, ReportOptions(worst=worst, frames=frames,
                                                                        image_width=image_width, root=root))
    click.echo(f"{res.path}: {res.bytes / 1024:.0f} KiB, {res.images} images, {len(runs)} run(s), "
               f"{res.seconds:.1f} s")
    for note in res.notes:
        click.echo(f"note: {note}")


def register(main: click.Group) -> None:
    """Add the analysis commands to the ``refbench`` group."""
    for cmd in (compare_cmd, fuse_cmd, report_cmd):
        if cmd.name not in main.commands:
            main.add_command(cmd)


__all__ = ["compare_cmd", "fuse_cmd", "register", "report_cmd"]
