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
        except (ValueError, FileNotFoundError, KeyError, TypeError, RuntimeError) as exc:
            raise RefbenchError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
