"""refbench.metrics.span_parse against the official parsers' golden outputs.

Golden data (shared/data/charades_sta, see PROVENANCE.md section 5):
* lmms_eval_cases.json: 163 texts with lmms-eval ``extract_time`` output (@ 75571cfe).
* timechat_example_pred_texts.json: 500 texts with TimeChat's parse (format_tvg.py).
* expected_lmms.json: lmms-eval's parse of the same 500 texts (``per_qid``).
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from refbench.metrics import span_parse
from refbench.metrics.span_parse import SPAN_STYLES, parse_span


def _official_form(span: list[float]) -> list[list[float]]:
    """The official parsers return a list of at most one span."""
    return [span] if span else []


def _load(shared_data: Path, name: str):
    return json.loads((shared_data / "charades_sta" / name).read_text(encoding="utf-8"))


# ------------------------------------------------------------------- golden data


def test_lmms_eval_all_163_golden_cases(shared_data: Path) -> None:
    golden = _load(shared_data, "lmms_eval_cases.json")
    assert "75571cfe0fa36ca5ec2e6aa2bb268f9d38295af3" in golden["extract_time_source"]
    cases = golden["cases"]
    assert len(cases) == 163
    got = [_official_form(parse_span(c["text"])) for c in cases]
    wrong = [(c["text"], c["parsed"], g) for c, g in zip(cases, got) if g != c["parsed"]]
    assert wrong == []


def test_lmms_eval_on_500_rendered_texts(shared_data: Path) -> None:
    texts = _load(shared_data, "timechat_example_pred_texts.json")
    per_qid = _load(shared_data, "expected_lmms.json")["per_qid"]
    assert len(texts) == 500 and set(texts) == set(per_qid)
    wrong = [q for q, v in texts.items() if _official_form(parse_span(v["text"])) != per_qid[q]["parsed"]]
    assert wrong == []
    assert sum(1 for v in texts.values() if not parse_span(v["text"])) == 280


def test_timechat_on_500_rendered_texts(shared_data: Path) -> None:
    texts = _load(shared_data, "timechat_example_pred_texts.json")
    published = _load(shared_data, "timechat_example_pred.json")
    assert len(texts) == 500
    wrong = [q for q, v in texts.items() if _official_form(parse_span(v["text"], "timechat")) != v["timechat_parsed"]]
    assert wrong == []
    # ... and those parses are TimeChat's published spans.
    for q, v in texts.items():
        assert _official_form(parse_span(v["text"], "timechat")) == published[q]["timestamp"]
    assert sum(1 for v in texts.values() if parse_span(v["text"], "timechat")) == 220


# ------------------------------------------------------------ documented quirks

LMMS_QUIRKS = [
    # "to" -> "-" everywhere, also inside words.
    ("photo 3 to 5", [3.0, 5.0]),
    ("tomorrow at 10 - 11", [10.0, 11.0]),
    ("The person at the bottom of the stairs starts at 5 and ends at 9.", []),
    # Clock ranges, H:MM and HH:MM:SS.
    ("00:01:05 - 00:01:20", [65.0, 80.0]),
    ("1:02 - 1:30", [62.0, 90.0]),
    ("0:15 ~ 0:20", [15.0, 20.0]),  # "~" is no separator, but two lone clocks pair up
    # Reversed -> swapped; only the first span.
    ("30 - 10", [10.0, 30.0]),
    ("1 - 2 - 3 - 4", [1.0, 2.0]),
    # The prompt's example sentence is deleted.
    ("A specific example is : 20.8 - 30.0 seconds", []),
    # Only ! ? \n split sentences; keyword sentences take priority.
    ("The event happens? 1.0 - 2.0", []),
    ("start 1\nend 2\nstart 3", [1.0, 2.0]),
    # Number fragments.
    ("The event happens in the .5 - 2 seconds.", [2.0, 5.0]),
    ("The event happens in the 1e2 - 2e2 seconds.", [2.0, 2.0]),
    ("The event happens in the 1,5 - 2,5 seconds.", [2.0, 5.0]),
    # En-dash yes; em-dash, minus sign and "--" no.
    ("12.0\u201315.5 seconds", [12.0, 15.5]),
    ("The event happens in the 15 \u2014  20 seconds.", []),
    ("3.0 \u2212 5.0", []),
    # Unit "s" fallback.
    ("12.5s-20s", [12.5, 20.0]),
    ("", []),
]

TIMECHAT_QUIRKS = [
    # The prompt example is NOT removed (the official replace() result is discarded).
    ("A specific example is : 20.8 - 30.0 seconds", [20.8, 30.0]),
    # No "to" replacement, no fallback to non-keyword sentences.
    ("from 12.5 to 20 seconds", []),
    # The range is searched in the whole text, not only keyword sentences.
    ("The event happens? 1.0 - 2.0", [1.0, 2.0]),
    # Dots are free-form: "1." is a number; an en-dash is no separator.
    ("The event happens in the 1. - 2. seconds.", [1.0, 2.0]),
    ("12.0\u201315.5 seconds", []),
    ("The event happens in the 30.5 - 12.0 seconds.", [12.0, 30.5]),
    ("Start time: 5.5 seconds\nEnd time: 19.1 seconds", [5.5, 19.1]),
    ("It happens at 7 seconds.", []),
    # Official float("1..5") raises; here: unparseable.
    ("1..5 - 7", []),
    ("2 - 3 and 1..5 - 7", []),
]

VTIMELLM_QUIRKS = [
    ("from 10 to 45", [0.10, 0.45]),
    ("between 45 and 10", [0.45, 0.10]),  # no swap
    ("From 10 To 45", []),  # case-sensitive
    ("5 to 9", []),  # two digits each
    ("100 to 200", [0.0, 0.2]),  # unanchored: "00 to 20"
]


@pytest.mark.parametrize(("text", "expected"), LMMS_QUIRKS)
def test_lmms_eval_quirks(text: str, expected: list[float]) -> None:
    assert parse_span(text) == expected
    assert parse_span(text, "lmms-eval") == expected


@pytest.mark.parametrize(("text", "expected"), TIMECHAT_QUIRKS)
def test_timechat_quirks(text: str, expected: list[float]) -> None:
    assert parse_span(text, "timechat") == expected


@pytest.mark.parametrize(("text", "expected"), VTIMELLM_QUIRKS)
def test_vtimellm_parse(text: str, expected: list[float]) -> None:
    # NN / 100 is correctly rounded, so it equals the decimal literal exactly.
    assert parse_span(text, "vtimellm") == expected


def test_results_are_floats_and_ordered() -> None:
    for style in ("lmms-eval", "timechat"):
        span = parse_span("The event happens in the 30 - 10 seconds.", style)
        assert span == [10.0, 30.0] and all(type(v) is float for v in span)


# ----------------------------------------------------------------- API contract


def test_unknown_style_names_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        parse_span("1 - 2", "nope")
    for style in SPAN_STYLES:
        assert style in str(err.value)
    assert set(SPAN_STYLES) == {"lmms-eval", "timechat", "vtimellm"}


def test_non_string_raises_type_error() -> None:
    with pytest.raises(TypeError):
        parse_span(None)  # type: ignore[arg-type]


def test_module_does_not_import_torch() -> None:
    tree = ast.parse(Path(span_parse.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"re", "collections", "__future__"}


ADVERSARIAL = [
    "1" * 50_000 + "x",
    "1." * 25_000 + "x",
    "1" + "." * 50_000 + "x",
    "1" + " " * 25_000 + "s" + " " * 25_000 + "x",
    "start " + "9" * 50_000 + "s",
    ("1" * 500 + ".") * 100 + "x",
]


@pytest.mark.parametrize("style", ["lmms-eval", "timechat", "vtimellm"])
def test_linear_time_on_adversarial_input(style: str) -> None:
    start = time.perf_counter()
    for text in ADVERSARIAL:
        parse_span(text, style)
    # The official patterns backtrack: about 2 minutes (lmms-eval) or far longer (TimeChat) here.
    assert time.perf_counter() - start < 2.0
