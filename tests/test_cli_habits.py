"""Command-line habits: examples in every --help, exit codes, --json - (and nothing else on stdout), --quiet,
progress lines in logs, KEY=VALUE lists, --config files, several datasets per command, export's defaults."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from refbench.cli import main
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _demo(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REFBENCH_DEMO_DIR", str(tmp_path_factory.getbasetemp() / "demo-cli-habits"))
    monkeypatch.delenv("REFBENCH_PROGRESS_SECONDS", raising=False)


def _cli(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def _commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


# ------------------------------------------------------------------------------------------------------
# Help and exit codes
# ------------------------------------------------------------------------------------------------------


def test_every_help_has_examples_that_name_the_command():
    seen = []
    for path, _cmd in [((), main), *_commands(main)]:
        r = _cli(*path, "--help")
        assert r.exit_code == 0, (path, r.output)
        assert "Examples:" in r.output, f"refbench {' '.join(path)} --help has no Examples"
        block = r.output.split("Examples:", 1)[1]
        if path:
            assert f"refbench {' '.join(path)}" in block or "torchrun" in block, path
        seen.append(" ".join(path))
    assert {"run", "eval", "export", "regress", "demo", "leaderboard", "datasets check", "datasets list",
            "models list", "env create"} <= set(seen)


def test_exit_codes_are_in_the_main_help_and_the_readme():
    r = _cli("--help")
    text = " ".join(r.output.split())
    for piece in ("Exit codes: 0 success", "1 a check failed", "2 bad usage or bad input", "70 an internal error",
                  "130 interrupted"):
        assert piece in text
    readme = (ROOT / "README.md").read_text()
    assert "## Exit codes" in readme
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 70 |", "| 130 |"):
        assert code in readme


# ------------------------------------------------------------------------------------------------------
# --json - : one JSON document on stdout, nothing else there
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Finished demo runs of the prior: RefVOS, grounding, RES, and the server-scored demo split."""
    import os

    base = tmp_path_factory.mktemp("runs")
    old = os.environ.get("REFBENCH_DEMO_DIR")
    os.environ["REFBENCH_DEMO_DIR"] = str(tmp_path_factory.getbasetemp() / "demo-cli-habits")
    try:
        r = CliRunner().invoke(main, ["run", "--dataset", "demo_all,demo_mevis_val", "--out", str(base / "{dataset}"),
                                      "--no-leaderboard", "--quiet"])
        assert r.exit_code == 0, r.output
    finally:
        if old is None:
            os.environ.pop("REFBENCH_DEMO_DIR")
        else:
            os.environ["REFBENCH_DEMO_DIR"] = old
    return base


@pytest.mark.parametrize("args, code", [
    (("datasets", "list"), 0),
    (("datasets", "show", "mevis_val_u"), 0),
    (("models", "list", "--task", "res"), 0),
    (("models", "show", "prior"), 0),
    (("env", "list"), 0),
    (("leaderboard", "--dataset", "mevis_val_u"), 0),
    (("datasets", "check", "--dataset", "demo_charades_test"), 0),
    (("run", "--model", "prior", "--dataset", "demo_charades_test", "--no-leaderboard"), 0),
])
def test_json_to_stdout_is_the_only_stdout(args, code):
    r = _cli(*args, "--json", "-")
    assert r.exit_code == code, r.output
    json.loads(r.stdout)  # the whole of stdout is one document


def test_json_to_stdout_for_eval_regress_export_and_a_failing_check(demo_runs, tmp_path):
    run = demo_runs / "demo_charades_test"
    r = _cli("eval", "--run", run, "--json", "-")
    assert r.exit_code == 0 and json.loads(r.stdout)["dataset"] == "demo_charades_test"
    assert "lmms-eval" in r.stderr  # the table went to stderr
    r = _cli("eval", "--run", run)
    assert "lmms-eval" in r.stdout and r.stderr == ""
    # regress: write a baseline, check it (exit 0), then a drift (exit 1); JSON both times
    base = tmp_path / "base.json"
    assert _cli("regress", "--baseline", base, "--run", run, "--write", "--json", "-").exit_code == 0
    r = _cli("regress", "--baseline", base, "--run", run, "--json", "-")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["ok"] is True and doc["checked"] == 4 and doc["drifts"] == []
    b = json.loads(base.read_text())
    key = next(iter(b["entries"]))
    b["entries"][key]["metrics"]["mIoU"] += 1
    base.write_text(json.dumps(b))
    r = _cli("regress", "--baseline", base, "--run", run, "--json", "-")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["ok"] is False and [d["metric"] for d in doc["drifts"]] == ["mIoU"]
    assert "drift: " in r.stderr and "Error: 1 metric(s) drifted" in r.stderr
    # datasets check that finds problems: exit 1, the JSON still says which
    r = _cli("datasets", "check", "charades_sta_test", "--root", tmp_path / "absent", "--json", "-")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["ok"] is False and doc["results"][0]["problems"]
    # export
    r = _cli("export", "--run", demo_runs / "demo_mevis_val", "--out", tmp_path / "x.zip", "--json", "-")
    assert r.exit_code == 0 and json.loads(r.stdout)["format"] == "mevis"
    # compare (main's analysis commands take the same --json -)
    a = demo_runs / "demo_mevis_val_u"
    r = _cli("compare", a, a, "--resamples", "20", "--json", "-")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and "J&F" in r.stderr  # the table went to stderr
    assert doc["metrics"]["J&F"]["difference"] == 0.0 and doc["metrics"]["J&F"]["a"] == doc["metrics"]["J&F"]["b"]


# ------------------------------------------------------------------------------------------------------
# --quiet and progress
# ------------------------------------------------------------------------------------------------------


def test_quiet_keeps_only_the_table(demo_runs):
    r = _cli("run", "--dataset", "demo_charades_test", "--out", demo_runs / "demo_charades_test", "--no-leaderboard",
             "--quiet")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].split()[:2] == ["dataset", "protocol"] and r.stderr == ""
    loud = _cli("run", "--dataset", "demo_charades_test", "--out", demo_runs / "demo_charades_test",
                "--no-leaderboard")
    assert "0 predicted, 12 reused, 12 samples" in loud.stdout and "run dir" in loud.stderr


def test_progress_is_plain_periodic_lines_off_a_terminal(demo_runs, monkeypatch):
    monkeypatch.setenv("REFBENCH_PROGRESS_SECONDS", "0")
    r = _cli("eval", "--run", demo_runs / "demo_mevis_val_u")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("eval demo_mevis_val_u: ")]
    assert lines and lines[-1].startswith("eval demo_mevis_val_u: 15/15 samples (100%)")
    assert "\r" not in r.stderr  # no tqdm bar in a log
    r = _cli("eval", "--run", demo_runs / "demo_mevis_val_u", "--quiet")
    assert r.stderr == ""
    monkeypatch.setenv("REFBENCH_PROGRESS_SECONDS", "soon")
    r = _cli("eval", "--run", demo_runs / "demo_mevis_val_u")
    assert r.exit_code == 2 and "REFBENCH_PROGRESS_SECONDS='soon'" in r.output


# ------------------------------------------------------------------------------------------------------
# --model-arg a=1,b=2
# ------------------------------------------------------------------------------------------------------


def test_model_args_with_commas_equal_repeated_flags(tmp_path):
    a = _cli("run", "--model", "prior", "--dataset", "demo_charades_test", "--no-leaderboard", "--out", tmp_path / "a",
             "--model-arg", "objective=miou,bins=10", "--json", "-")
    b = _cli("run", "--model", "prior", "--dataset", "demo_charades_test", "--no-leaderboard", "--out", tmp_path / "b",
             "--model-arg", "objective=miou", "--model-arg", "bins=10", "--json", "-")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.stdout)["metrics"] == json.loads(b.stdout)["metrics"]
    opts = json.loads((tmp_path / "a" / "run.json").read_text())["adapter"]["options"]
    assert opts["objective"] == "miou" and opts["bins"] == 10
    r = _cli("run", "--model", "prior", "--model-arg", "objective=miou,10")
    assert r.exit_code == 2 and "'10' is not KEY=VALUE; quote a value that holds a comma" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = _cli("run", "--model", "prior", "--model-arg", "bins=10", "--model-arg", "bins=12")
    assert r.exit_code == 2 and "bins is given twice" in r.output
    # a quoted value keeps its comma (and reaches the option's own check as text)
    r = _cli("run", "--model", "prior", "--model-arg", 'objective="miou,mode"', "--no-leaderboard")
    assert r.exit_code == 2 and "miou,mode" in r.output


# ------------------------------------------------------------------------------------------------------
# --config FILE
# ------------------------------------------------------------------------------------------------------


def _readme_config() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- config example -->\s*```yaml\n(.*?)```", text, re.S)
    assert block, "README has no config example"
    return block.group(1)


def test_the_readme_config_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.yaml").write_text(_readme_config())
    r = _cli("run", "--config", "demo.yaml")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "results.json").read_text())
    cfg = yaml.safe_load(_readme_config())
    assert doc["datasets"] == ["demo_mevis_val_u", "demo_charades_test", "demo_refcoco_val"]
    run = json.loads((Path(doc["results"][1]["run_dir"]) / "run.json").read_text())
    assert run["config"]["seed"] == cfg["seed"] and run["config"]["limit"] == cfg["limit"]
    assert run["adapter"]["options"]["objective"] == cfg["model_args"]["objective"]
    assert all(r["status"] == "partial" for r in doc["results"])  # limit 0.5


def test_flags_override_the_config_and_model_args_merge(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": "prior", "datasets": ["demo_charades_test"], "no_leaderboard": True,
                                   "model_args": {"objective": "miou", "bins": 10}, "limit": 4,
                                   "out": str(tmp_path / "from-config")}))
    r = _cli("run", "--config", cfg, "--model-arg", "bins=12", "--limit", "6", "--out", tmp_path / "flag")
    assert r.exit_code == 0, r.output
    run = json.loads((tmp_path / "flag" / "run.json").read_text())
    assert run["adapter"]["options"]["objective"] == "miou" and run["adapter"]["options"]["bins"] == 12
    assert run["config"]["limit"] == 6 and not (tmp_path / "from-config").exists()


@pytest.mark.parametrize("doc, message", [
    ({"modle": "prior"}, "c.yaml: modle: unknown key; did you mean model"),
    ({"limit": "many"}, "c.yaml: limit: 'many': expected a number of samples"),
    ({"no_leaderboard": "yes"}, "c.yaml: no_leaderboard: expected true or false"),
    ({"model_args": 3}, "c.yaml: model_args: expected a mapping"),
    ({"roots": ["/data"]}, "c.yaml: roots: expected a mapping of dataset name -> path"),
    ({"device": {"a": 1}}, "c.yaml: device: expected one value, got a mapping"),
    ({"dataset": "demo_charades_test", "protocol_args": {"skip_first_last": False}},
     "--protocol-arg applies to video protocols with options"),
])
def test_bad_config_keys_and_values_are_one_line(tmp_path, doc, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    r = _cli("run", "--config", cfg)
    assert r.exit_code == 2 and message in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_config_of_eval_with_roots_and_preds(demo_runs, tmp_path):
    cfg = tmp_path / "e.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "demo_charades_test,demo_refcoco_val",
                                   "preds": {n: str(demo_runs / n / "predictions.json")
                                             for n in ("demo_charades_test", "demo_refcoco_val")},
                                   "json": str(tmp_path / "e.json")}))
    r = _cli("eval", "--config", cfg)
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "e.json").read_text())
    assert [x["status"] for x in doc["results"]] == ["ok", "ok"]
    r = _cli("eval", "--config", cfg, "--json", "-")  # a flag overrides the config's json
    assert json.loads(r.stdout)["exit_code"] == 0
    cfg.write_text(yaml.safe_dump({"dataset": "demo_charades_test", "model": "prior"}))
    r = _cli("eval", "--config", cfg)
    assert r.exit_code == 2 and "model: unknown key" in r.output and "refbench eval takes" in r.output


# ------------------------------------------------------------------------------------------------------
# Several datasets per command
# ------------------------------------------------------------------------------------------------------


def test_eval_several_datasets_one_table_one_json_failures_reported(demo_runs, tmp_path):
    pred = str(demo_runs / "{dataset}" / "predictions.json")
    r = _cli("eval", "--dataset", "demo_all,demo_mevis_val", "--pred", pred, "--json", tmp_path / "all.json",
             "--csv", tmp_path / "{dataset}.csv")
    assert r.exit_code == 2, r.output  # demo_mevis_val has no public ground truth: reported, the others scored
    doc = json.loads((tmp_path / "all.json").read_text())
    assert [(x["dataset"], x["status"]) for x in doc["results"]] == [
        ("demo_mevis_val_u", "ok"), ("demo_charades_test", "ok"), ("demo_refcoco_val", "ok"),
        ("demo_mevis_val", "failed")]
    assert doc["exit_code"] == 2 and "ground truth is not public" in doc["results"][3]["error"]
    table = r.stdout.splitlines()
    assert table[0].split() == ["dataset", "protocol", "J&F", "J", "F", "R@0.3", "R@0.5", "R@0.7", "mIoU", "cIoU",
                                "gIoU", "status"]
    assert table[4].split()[-3:] == ["FAILED", "(exit", "2)"]
    assert "FAILED demo_mevis_val: " in r.stderr and "Error: 1 of 4 datasets failed" in r.stderr
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["demo_charades_test.csv", "demo_mevis_val_u.csv",
                                                             "demo_refcoco_val.csv"]
    single = json.loads(_cli("eval", "--run", demo_runs / "demo_refcoco_val", "--json", "-").stdout)
    assert doc["results"][2]["metrics"] == single["metrics"]
    # --fail-fast stops at the first failure
    r = _cli("eval", "--dataset", "demo_mevis_val,demo_all", "--pred", pred, "--fail-fast", "--json", "-")
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and [x["dataset"] for x in doc["results"]] == ["demo_mevis_val"] and doc["not_run"] == 3
    # several runs, one table
    r = _cli("eval", "--run", demo_runs / "demo_charades_test", "--run", demo_runs / "demo_refcoco_val", "--json", "-")
    assert r.exit_code == 0 and json.loads(r.stdout)["datasets"] == ["demo_charades_test", "demo_refcoco_val"]


@pytest.mark.parametrize("args, message", [
    (("eval", "--dataset", "demo_all", "--pred", "preds.json"), "--pred preds.json: names one path, but there are 3"),
    (("eval", "--dataset", "demo_all", "--pred", "{dataset}.json", "--csv", "out.csv"), "--csv out.csv: names one"),
    (("run", "--dataset", "demo_all", "--out", "runs/x"), "--out runs/x: names one path, but there are 3 datasets"),
    (("run", "--dataset", "refcoco_val,charades_sta_test", "--root", "/data"), "different folders (charades_sta, "
                                                                             "refer_seg)"),
    (("run", "--dataset", "demo_all", "--protocol", "mevis"), "protocol 'mevis' does not apply to dataset "
                                                              "demo_charades_test"),
    (("eval", "--dataset", "demo_all", "--pred", "{dataset}", "--parse-style", "timechat"),
     "--parse-style applies to temporal grounding; demo_mevis_val_u is a refvos dataset"),
    (("run", "--dataset", "demo_all", "--protocol-arg", "a=1,b=2"),
     "--protocol-arg applies to video protocols with options (SA-V, SeCVOS, LVOS, MOSE v2, ReasonVOS); "
     "demo_charades_test is a tsg dataset"),
    (("run", "--protocol-arg", "a=1,b"), "--protocol-arg 'a=1,b': 'b' is not KEY=VALUE"),
])
def test_several_datasets_usage_errors_come_first(args, message):
    r = _cli(*args)
    assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output


def test_datasets_check_by_option_positional_and_suite(tmp_path):
    a = _cli("datasets", "check", "demo_charades_test")
    b = _cli("datasets", "check", "--dataset", "demo_charades_test")
    assert a.exit_code == b.exit_code == 0 and a.output == b.output
    assert _cli("datasets", "check", "demo_charades_test", "--dataset", "demo_refcoco_val").exit_code == 2
    assert _cli("datasets", "check").exit_code == 2
    r = _cli("datasets", "check", "--dataset", "demo_all,charades_sta_test", "--json", "-")
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and [x["ok"] for x in doc["results"]] == [True, True, True, False]
    assert "REFBENCH_DATA" in doc["results"][3]["error"] and "3 of 4 datasets ok" in r.stderr


# ------------------------------------------------------------------------------------------------------
# export: the card's format, one zip name
# ------------------------------------------------------------------------------------------------------


def test_export_uses_the_cards_format_and_the_runs_zip_name(demo_runs, tmp_path):
    run = demo_runs / "demo_mevis_val"
    assert (run / "submission.zip").is_file()  # what refbench run wrote
    r = _cli("export", "--run", run)
    assert r.exit_code == 2 and "submission.zip: already exists" in r.output
    before = (run / "submission.zip").read_bytes()
    r = _cli("export", "--run", run, "--overwrite")
    assert r.exit_code == 0 and r.stdout.startswith(f"{run / 'submission.zip'}: mevis submission")
    assert (run / "submission.zip").read_bytes() == before  # run and export write the same zip
    with zipfile.ZipFile(run / "submission.zip") as z:
        assert z.namelist()[0].count("/") == 2  # <video>/<exp_id>/<frame>.png at the root (mevis format)


def test_export_without_a_format_says_which_fit(demo_runs, tmp_path):
    r = _cli("export", "--run", demo_runs / "demo_mevis_val_u", "--out", tmp_path / "z.zip")
    assert r.exit_code == 2
    assert "demo_mevis_val_u names no submission format; pass --format, one of mevis, refytvos, davis" in r.output
    r = _cli("export", "--run", demo_runs / "demo_charades_test", "--out", tmp_path / "z.zip")
    assert r.exit_code == 2 and "demo_charades_test is a tsg dataset; no server takes a submission zip" in r.output
    r = _cli("export", "--run", demo_runs / "demo_mevis_val_u", "--out", tmp_path / "z.zip", "--format", "refytvos")
    assert r.exit_code == 0 and "refytvos submission" in r.output
