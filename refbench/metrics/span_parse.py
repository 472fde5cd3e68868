"""Free-text answer -> one temporal span ``[start, end]`` (seconds), per official parser.

Video LLMs answer temporal-grounding prompts in free text ("The event happens in the
20.8 - 30.0 seconds."). Each benchmark turns that text into a span with its own
heuristics, and the heuristics change the reported numbers, so :func:`parse_span`
offers one *style* per official parser. Every style is a clean-room re-implementation
that reproduces the official output; only facts about the behaviour were taken from
the official code, cited per style below.

Styles
------
``"lmms-eval"``
    ``extract_time`` of EvolvingLMMs-Lab/lmms-eval,
    ``lmms_eval/tasks/charades_sta/utils.py`` @ 75571cfe0fa36ca5ec2e6aa2bb268f9d38295af3
    (the parser after the 2025-10 rewrite f1e52005). Checked on the 163 golden cases of
    ``charades_sta/lmms_eval_cases.json`` and the 500 texts of
    ``timechat_example_pred_texts.json``.
``"timechat"``
    ``extract_time`` of RenShuhuai-Andy/TimeChat, ``utils/format_tvg.py``
    (@ c60b332b38a6327b976ebcee363c938ca95b610d, unchanged since a918705). Checked on the
    500 texts of ``timechat_example_pred_texts.json``.
``"vtimellm"``
    The answer regex of huangb23/VTimeLLM ``vtimellm/eval/eval.py::iou``
    (@ 673312a8f7e18caec9af716cf7b44d3b70ccebfd): two 2-digit numbers joined by " to " or
    " and ", each divided by 100, i.e. a span in *fractions of the video*, not seconds.

Linear-time matching
---------------------
The official number patterns backtrack quadratically (TimeChat's ``\\d+\\.*\\d*``
cubically) on long digit runs. The patterns here find the same first match in linear
time, with plain ``re`` syntax (Python >= 3.10):

* a ``(?<!\\d)`` guard: no attempt starts inside a digit run. An attempt starting
  inside a run can only succeed where the attempt at the run's first digit, which the
  scan tries earlier, has already succeeded, so the first match is unchanged.
* unambiguous quantifiers: ``\\d+(?:\\.+\\d*)?`` for TimeChat's ``\\d+\\.*\\d*`` (the same
  strings, but only one way to split them) and ``\\s*(?:s\\s*)?`` for lmms-eval's
  ``\\s*s?\\s*``. Every backtracking step then fails after one character.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["SPAN_STYLES", "parse_span"]

# --------------------------------------------------------------------------- shared

# Sentence split used by both lmms-eval and TimeChat: only "!", "?" and "\n" end a
# sentence ("." does not, and "\r" does not).
_SENTENCE_SPLIT = re.compile(r"[!?\n]")

# Keyword filter of both parsers. The official lists are ["starts", "ends", "happens in",
# "start time", "end time", "start", "end", "happen"], tested as substrings; every entry
# contains "start", "end" or "happen", so these three decide the same sentences.
_KEYWORDS = ("start", "end", "happen")

# First plain number of a sentence: a word-bounded integer or decimal. Equivalent to
# lmms-eval's r"\b(\d+(?:\.\d+)?)\b" and TimeChat's r"\b(\d+\.\d+\b|\b\d+)\b": a decimal
# whose fraction runs into a letter ("12.5s") falls back to its integer part ("12").
_FIRST_NUMBER = re.compile(r"\b(\d+(?:\.\d+)?)\b")


def _keyword_sentences(sentences: list[str]) -> list[str]:
    """Sentences containing a time keyword, in order."""
    return [s for s in sentences if any(k in s for k in _KEYWORDS)]


def _ordered(start: float, end: float) -> list[float]:
    """``[start, end]``, swapped unless ``end > start`` (both official parsers)."""
    return [start, end] if end > start else [end, start]


def _first_pair(values: list[float]) -> list[float]:
    """The first two values as an ordered span, or ``[]`` when fewer than two.

    Both parsers pair a flat list of lone times two by two, drop an odd last one and
    keep only the first pair.
    """
    return _ordered(values[0], values[1]) if len(values) >= 2 else []


def _first_number_per_sentence(sentences: list[str]) -> list[float]:
    """The first plain number of each sentence that has one (shape: one per sentence)."""
    found = (_FIRST_NUMBER.search(s) for s in sentences)
    return [float(m.group(1)) for m in found if m is not None]


# ------------------------------------------------------------------------- lmms-eval

_LMMS_PROMPT_EXAMPLE = "A specific example is : 20.8 - 30.0 seconds".lower()

# Range separators: ASCII hyphen-minus and en-dash (U+2013). Not em-dash, "~" or U+2212.
_DASH = "[\u2013-]"
# H:MM or HH:MM, optionally :SS.
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?"
# A number as the lmms-eval patterns see it: digits, optionally "." and digits.
_NUM = r"(?<!\d)(\d+(?:\.\d+)?)"

_LMMS_CLOCK_RANGE = re.compile(rf"\b({_CLOCK})\s*{_DASH}\s*({_CLOCK})\b")
_LMMS_NUMBER_RANGE = re.compile(rf"{_NUM}\s*{_DASH}\s*(\d+(?:\.\d+)?)")
_LMMS_CLOCK = re.compile(rf"\b({_CLOCK})\b")
# Last resort: a unit "s" may sit between the first number and the dash ("12.5s-20s").
# The official pattern also eats a trailing "\s*s?", which never changes the first match.
_LMMS_SUFFIXED_RANGE = re.compile(rf"{_NUM}\s*(?:s\s*)?{_DASH}\s*(\d+(?:\.\d+)?)")


def _clock_to_seconds(clock: str) -> float:
    """``"H:MM"``/``"HH:MM:SS"`` -> seconds, as float arithmetic ``h*3600 + m*60 + s``."""
    parts = [float(p) for p in clock.split(":")]
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return parts[0] * 60 + parts[1]


def _first_range(pattern: re.Pattern[str], sentences: list[str]) -> tuple[str, str] | None:
    """The first range match in the first sentence that has one."""
    for sentence in sentences:
        match = pattern.search(sentence)
        if match is not None:
            return match.group(1), match.group(2)
    return None


def _parse_lmms_eval(text: str) -> list[float]:
    """lmms-eval ``extract_time`` (commit 75571cfe), re-implemented.

    Steps, each a fact of the official function:

    1. lower-case; delete the prompt's example sentence
       ``"a specific example is : 20.8 - 30.0 seconds"``; replace *every* ``"to"`` with
       ``"-"``, also inside words ("bottom" -> "bot-m", "photo 3 to 5" -> "3 - 5").
    2. split into sentences on ``!``, ``?``, ``\\n``; the candidates are the sentences with
       a time keyword, or all sentences when none has one.
    3. try, in order, keeping the first hit:
       a. a clock range ``M:SS - M:SS`` / ``H:MM:SS - H:MM:SS`` (first sentence that has one);
       b. a number range ``a - b`` (``-`` or en-dash);
       c. all lone clock times over the candidates, paired;
       d. the first plain number of each candidate sentence, paired;
       e. a number range with an ``s`` unit after the first number.
    4. keep the first span only; swap it unless ``end > start``.
    """
    lowered = text.lower().replace(_LMMS_PROMPT_EXAMPLE, "").replace("to", "-")
    sentences = _SENTENCE_SPLIT.split(lowered)
    candidates = _keyword_sentences(sentences) or sentences

    clock_range = _first_range(_LMMS_CLOCK_RANGE, candidates)
    if clock_range is not None:
        return _ordered(*(_clock_to_seconds(c) for c in clock_range))

    number_range = _first_range(_LMMS_NUMBER_RANGE, candidates)
    if number_range is not None:
        return _ordered(*(float(n) for n in number_range))

    clocks = [_clock_to_seconds(c) for s in candidates for c in _LMMS_CLOCK.findall(s)]
    if len(clocks) >= 2:
        return _first_pair(clocks)

    numbers = _first_number_per_sentence(candidates)
    if len(numbers) >= 2:
        return _first_pair(numbers)

    suffixed = _first_range(_LMMS_SUFFIXED_RANGE, candidates)
    if suffixed is not None:
        return _ordered(*(float(n) for n in suffixed))
    return []


# -------------------------------------------------------------------------- TimeChat

# TimeChat's range: digits, any number of dots, digits; ASCII hyphen only.
_TIMECHAT_NUM = r"\d+(?:\.+\d*)?"
_TIMECHAT_RANGE = re.compile(rf"(?<!\d)({_TIMECHAT_NUM})\s*-\s*({_TIMECHAT_NUM})")


def _parse_timechat(text: str) -> list[float]:
    """TimeChat ``utils/format_tvg.py::extract_time``, re-implemented.

    Facts of the official function reproduced here:

    1. lower-case only. The prompt example is *not* removed (the official code calls
       ``paragraph.replace(prompt, '')`` and drops the result) and ``"to"`` is kept.
    2. the range pattern ``digits dots* digits* - ...`` is searched over the *whole*
       text, not only the keyword sentences, and its first match wins.
    3. otherwise the first plain number of each keyword sentence (no fall-back to all
       sentences), paired. Its third stage (``HH:MM:SS`` clocks of keyword sentences) can
       never produce a span: every sentence with such a clock already contributed a
       number to stage 2, so stage 3 only runs when it would find fewer than two times.
    4. first span only, swapped unless ``end > start``.

    Not reproduced: when *any* range match is not a valid float ("1..5 - 7"), the
    official ``float()`` raises ``ValueError`` and the whole formatting run stops; here
    such a text parses to ``[]`` (unparseable).
    """
    lowered = text.lower()
    ranges = [(m.group(1), m.group(2)) for m in _TIMECHAT_RANGE.finditer(lowered)]
    if ranges:
        try:
            spans = [(float(a), float(b)) for a, b in ranges]
        except ValueError:
            return []
        return _ordered(*spans[0])
    candidates = _keyword_sentences(_SENTENCE_SPLIT.split(lowered))
    return _first_pair(_first_number_per_sentence(candidates))


# -------------------------------------------------------------------------- VTimeLLM

_VTIMELLM_RANGE = re.compile(r"(\d{2}) (?:to|and) (\d{2})")


def _parse_vtimellm(text: str) -> list[float]:
    """VTimeLLM's answer parse: ``"NN to MM"``/``"NN and MM"`` -> ``[NN/100, MM/100]``.

    Case-sensitive, first match, no swap, fractions of the video duration
    (VTimeLLM ``vtimellm/eval/eval.py::iou``).
    """
    match = _VTIMELLM_RANGE.search(text)
    if match is None:
        return []
    return [float(match.group(1)) / 100, float(match.group(2)) / 100]


# ------------------------------------------------------------------------------ API

_PARSERS: dict[str, Callable[[str], list[float]]] = {
    "lmms-eval": _parse_lmms_eval,
    "timechat": _parse_timechat,
    "vtimellm": _parse_vtimellm,
}

#: The accepted ``style`` names of :func:`parse_span`.
SPAN_STYLES: tuple[str, ...] = tuple(_PARSERS)


def parse_span(text: str, style: str = "lmms-eval") -> list[float]:
    """Parse one model answer into ``[start, end]``, or ``[]`` when nothing parses.

    Args:
        text: the model's free-text answer.
        style: which official parser to reproduce: ``"lmms-eval"`` (default),
            ``"timechat"`` or ``"vtimellm"`` (see the module docstring).

    Returns:
        ``[start, end]`` as two floats (seconds; fractions of the video for
        ``"vtimellm"``), or ``[]``. lmms-eval and TimeChat return ``start <= end``.

    Raises:
        ValueError: unknown ``style``.
        TypeError: ``text`` is not a ``str``.
    """
    parser = _PARSERS.get(style)
    if parser is None:
        raise ValueError(f"unknown span style {style!r}; valid styles: {', '.join(SPAN_STYLES)}")
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return parser(text)
