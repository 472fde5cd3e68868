"""The shared command-line pieces: KEY=VALUE lists, progress lines, output streams."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner
import pytest

from refbench.clikit import Console, Progress, UsageProblem, examples, split_pairs, unquote


def test_split_pairs_commas_quotes_and_repeats():
    assert split_pairs(["a=1,b=2", "c=x"], "--model-arg") == [("a", "1"), ("b", "2"), ("c", "x")]
    assert split_pairs(['prompt="x, y",n=3'], "--model-arg") == [("prompt", '"x, y"'), ("n", "3")]
    assert split_pairs(["p='a,b=c'"], "--model-arg") == [("p", "'a,b=c'")]
    # a quote inside a value (not its first character) is text; '=' in a value is text
    assert split_pairs(["text=it's,url=a=b"], "--model-arg") == [("text", "it's"), ("url", "a=b")]
    assert split_pairs(["empty="], "--model-arg") == [("empty", "")]
    assert unquote('"x, y"') == "x, y" and unquote(" 3 ") == "3"


@pytest.mark.parametrize("item, message", [
    ("a=1,oops", "'oops' is not KEY=VALUE; quote a value"),
    ("path=/x,y", "'y' is not KEY=VALUE"),
    ("a=1,", "ends with a comma"),
    ("=1", "has no key"),
    ('a="x,y', "is not closed"),
    ('a="x"y,b=1', "text after the closing quote"),
])
def test_split_pairs_refuses_with_the_reason(item, message):
    with pytest.raises(UsageProblem, match=message):
        split_pairs([item], "--model-arg")


def test_split_pairs_refuses_a_key_twice():
    with pytest.raises(UsageProblem, match="a is given twice"):
        split_pairs(["a=1", "b=2,a=3"], "--model-arg")


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_progress_plain_lines_every_interval():
    clock, lines = _Clock(), []
    p = Progress("eval x", tty=False, interval=10.0, clock=clock, write=lines.append)
    p(0, 100)
    clock.t += 5
    p(10, 100)
    assert lines == []  # nothing before one interval
    clock.t += 5
    p(20, 100)
    assert lines == ["eval x: 20/100 samples (20%), 2/s, ETA 40s"]
    clock.t += 1
    p(25, 100)
    assert len(lines) == 1
    clock.t += 9
    p(30, 100)
    clock.t += 10
    p(100, 100)
    p.close()
    assert lines[1:] == ["eval x: 30/100 samples (30%), 1.5/s, ETA 47s", "eval x: 100/100 samples (100%), 3.33/s"]


def test_progress_short_job_prints_nothing_and_quiet_nothing_at_all():
    clock, lines = _Clock(), []
    p = Progress("run", tty=False, interval=30.0, clock=clock, write=lines.append)
    p(0, 5)
    clock.t += 1
    p(5, 5)
    p.close()
    assert lines == []
    q = Progress("run", enabled=False, tty=False, interval=0.0, clock=clock, write=lines.append)
    q(0, 5)
    q(5, 5)
    q.close()
    assert lines == []


def test_progress_on_a_terminal_is_a_tqdm_bar_and_no_plain_lines(capsys):
    lines = []
    p = Progress("eval x", tty=True, interval=0.0, write=lines.append)
    p(0, 10)
    p(4, 10)
    p(10, 10)
    p.close()
    assert lines == []  # no plain line on a terminal
    err = capsys.readouterr().err
    assert err.startswith("\reval x:") and "/10 [" in err and "sample/s" in err  # a tqdm bar, redrawn in place


def test_progress_interval_from_the_environment(monkeypatch):
    from refbench.clikit import progress_seconds
    from refbench.errors import RefbenchInputError

    monkeypatch.delenv("REFBENCH_PROGRESS_SECONDS", raising=False)
    assert progress_seconds() == 30.0
    monkeypatch.setenv("REFBENCH_PROGRESS_SECONDS", "2.5")
    assert progress_seconds() == 2.5
    monkeypatch.setenv("REFBENCH_PROGRESS_SECONDS", "-1")
    with pytest.raises(RefbenchInputError, match="REFBENCH_PROGRESS_SECONDS"):
        progress_seconds()


def test_console_json_to_stdout_moves_everything_else_to_stderr(tmp_path):
    @click.command()
    @click.option("--json", "json_out")
    @click.option("--quiet", is_flag=True)
    def cmd(json_out, quiet):
        con = Console(json_out, quiet)
        con.result("TABLE")
        con.note("note")
        con.log("log")
        con.warn("warning")
        con.emit_json({"a": 1})

    runner = CliRunner()
    r = runner.invoke(cmd, ["--json", "-"])
    assert json.loads(r.stdout) == {"a": 1}
    assert r.stderr.splitlines() == ["TABLE", "note", "log", "warning"]
    out = tmp_path / "x.json"
    r = runner.invoke(cmd, ["--json", str(out)])
    assert r.stdout.splitlines() == ["TABLE", "note", f"summary: {out}"]
    assert r.stderr.splitlines() == ["log", "warning"] and json.loads(out.read_text()) == {"a": 1}
    r = runner.invoke(cmd, ["--quiet"])
    assert r.stdout.splitlines() == ["TABLE"] and r.stderr.splitlines() == ["warning"]


def test_examples_epilog_keeps_lines():
    @click.command(epilog=examples("refbench a --long-option-that-would-wrap value1 value2 value3 value4 value5",
                                   "refbench b"))
    def cmd():
        """Do it."""

    r = CliRunner().invoke(cmd, ["--help"])
    assert "Examples:" in r.output
    assert "  refbench a --long-option-that-would-wrap value1 value2 value3 value4 value5\n" in r.output
    assert "  refbench b\n" in r.output
