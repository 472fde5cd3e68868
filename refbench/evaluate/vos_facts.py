"""Facts of the SA-V, SeCVOS, LVOS, MOSE v2, Ref-SAV and ReasonVOS protocols: one record per protocol.

Each :class:`ProtocolFacts` names the official evaluator it reproduces (repository, files, commit), the section of
``docs/protocols.md`` that describes it (a stable anchor), its quirks in one line each, what ``--missing``
means for it, and its ``--protocol-arg`` options with their default and the value that reproduces the official
command. :data:`VOS_PROTOCOL_FACTS` holds them all; registering a protocol elsewhere (``refbench datasets show``,
``refbench.evaluate.video.REFERENCES``) reads this one table.

Import-light on purpose (no torch, no numpy): listing protocol facts stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

DOC = "docs/protocols.md"


class ProtocolArgError(ValueError):
    """A ``--protocol-arg`` that the protocol does not have, or a value outside its choices."""


@dataclass(frozen=True)
class ProtocolOption:
    """One ``--protocol-arg NAME=VALUE`` of a protocol.

    default: refbench's value (an error or an honest score where the official code drops or mis-scores);
    official: the value that reproduces the official command as documented; choices: every accepted value.
    """

    name: str
    default: str
    choices: tuple[str, ...]
    official: str
    doc: str


@dataclass(frozen=True)
class ProtocolFacts:
    """What one protocol reproduces and how (module doc)."""

    name: str
    title: str
    reference: Mapping[str, str]
    anchor: str
    quirks: tuple[str, ...]
    missing: Mapping[str, str]
    options: tuple[ProtocolOption, ...] = ()
    headline: str = "J&F"
    notes: tuple[str, ...] = field(default=())

    @property
    def doc(self) -> str:
        """``docs/protocols.md#<anchor>``."""
        return f"{DOC}#{self.anchor}"

    def option(self, name: str) -> ProtocolOption:
        for opt in self.options:
            if opt.name == name:
                return opt
        known = ", ".join(o.name for o in self.options) or "none"
        raise ProtocolArgError(f"protocol {self.name!r} has no --protocol-arg {name!r} (it has: {known})")

    def resolve(self, args: Mapping[str, Any] | None) -> dict[str, str]:
        """Every option's value: ``args`` checked against the choices, defaults for the rest."""
        out = {o.name: o.default for o in self.options}
        for name, value in (args or {}).items():
            opt = self.option(str(name))
            text = str(value).strip().lower() if isinstance(value, (bool, str)) else str(value)
            if isinstance(value, bool):
                text = "true" if value else "false"
            if text not in opt.choices:
                raise ProtocolArgError(f"--protocol-arg {opt.name}={value}: expected one of {', '.join(opt.choices)}")
            out[opt.name] = text
        return out

    def official_args(self) -> dict[str, str]:
        """The option values that reproduce the official command."""
        return {o.name: o.official for o in self.options}

    def describe(self) -> dict[str, Any]:
        """A plain-dict view (for JSON summaries and ``datasets show``)."""
        return {
            "protocol": self.name,
            "title": self.title,
            "reference": dict(self.reference),
            "doc": self.doc,
            "headline": self.headline,
            "quirks": list(self.quirks),
            "missing": dict(self.missing),
            "options": [{"name": o.name, "default": o.default, "official": o.official, "choices": list(o.choices),
                         "doc": o.doc} for o in self.options],
        }


_SKIP = ProtocolOption(
    "skip_first_last", "true", ("true", "false"), "true",
    "drop each object's own first and last annotated frame (the official default; 'false' is "
    "--do_not_skip_first_and_last_frame)",
)

SAV = ProtocolFacts(
    name="sav",
    title="SA-V val / test (sam2 sav_evaluator.py)",
    reference={"repo": "facebookresearch/sam2",
               "file": "sav_dataset/sav_evaluator.py, sav_dataset/utils/sav_benchmark.py",
               "commit": "2b90b9f5ceec907a1c18123530e92e794ad901a4"},
    anchor="sav",
    quirks=(
        "each object's own first and last annotated frame are dropped (--do_not_skip_first_and_last_frame keeps them)",
        "a video without a prediction folder is silently left out by the default (non-strict) CLI",
        "an object's per-frame list starts at the first scored frame where its GT or its prediction is non-empty",
        "J and F per object are means over its list times 100; the global J and F are plain means over all objects",
        "an SA-V PNG may hold at most 2 distinct values; > 0 is foreground",
        "DAVIS-like video folders (one indexed PNG per frame) are scored per label; labels only predicted are dropped",
    ),
    missing={
        "error": "one error listing the missing videos, object folders and frames (default)",
        "empty": "every missing video, object or frame is scored as an empty mask, counted",
        "official": "a video without a prediction folder is left out, as the CLI's default (non-strict) run does, "
                    "counted and named in the summary; a missing object folder or frame inside a predicted video "
                    "stops the official run (AssertionError), so those are scored as empty",
    },
    options=(_SKIP,),
)

SECVOS = ProtocolFacts(
    name="secvos",
    title="SeCVOS (SeC vos_evaluation/sav_evaluator.py with --scene_info)",
    reference={"repo": "OpenIXCLab/SeC",
               "file": "vos_evaluation/sav_evaluator.py, vos_evaluation/utils/sav_benchmark.py, "
                       "vos_evaluation/EVALUATE.md",
               "commit": "1981ac42616bdcb5408859514af42fb5a042e030"},
    anchor="secvos",
    quirks=(
        "the SA-V evaluator, run four times: first_segment, second_segment, remain_segments (no first/last skipping, "
        "videos without predictions left out) and overall (the documented command: --strict, skipping first/last)",
        "a segment [start, end] takes the object's GT frames s with '%05d.png' % start <= s < '%05d.png' % (end + 1)",
        "the object's first GT frame is prepended to a segment that does not contain it",
        "a video missing from scene_info.json (or with an empty list) uses all frames in first_segment and is left "
        "out of second_segment and remain_segments",
        "which of the four numbers the SeC paper's SeCVOS J&F is, is not stated in the code; refbench's headline "
        "is overall",
    ),
    missing={
        "error": "one error listing the missing videos, object folders and frames (default)",
        "empty": "every missing video, object or frame is scored as an empty mask in every run, counted",
        "official": "the three segment runs leave out videos without a prediction folder; the overall run is "
                    "--strict in the documented command, which exits 1 on a missing video, so that is an error; "
                    "missing object folders or frames in a predicted video are scored as empty (the official run "
                    "stops on them)",
    },
    options=(
        ProtocolOption("skip_first_last", "true", ("true", "false"), "true",
                       "overall run: drop each object's first and last annotated frame (EVALUATE.md's command; "
                       "'false' is --do_not_skip_first_and_last_frame, its referring mode)"),
        ProtocolOption("segment_order", "numeric", ("numeric", "official"), "official",
                       "how a segment selects frames: 'numeric' compares frame numbers; 'official' compares "
                       "'%05d.png' strings as the code does (the same for 5-digit names, wrong for other widths)"),
    ),
)

LVOS = ProtocolFacts(
    name="lvos",
    title="LVOS v2 val (lvos-evaluation evaluation_method.py)",
    reference={"repo": "LingyiHongfd/lvos-evaluation", "file": "evaluation_method.py, lvos/evaluation.py, "
               "lvos/lvos_seperate.py, lvos/metrics.py, lvos/utils.py, lvos/results.py",
               "commit": "25cb02d1455b5d0c964a9836ff5242fb51df55ee"},
    anchor="lvos",
    quirks=(
        "per object, the frames start, start+5, ... below end of its own frame_range; the first one and the one at "
        "position frame_nums-1 are skipped",
        "no void: pixels 255 are simply not the object",
        "V = sqrt(round(population variance of (J+F)/2 over frames, 4)): the variance is rounded before the root",
        "the headline averages the seen and the unseen split means: J&F = ((Js + Fs) + (Ju + Fu)) / 4; an empty "
        "split makes it NaN",
        "unseen videos are those listed in unseen_videos.txt (read from the data root here, from the working "
        "directory by the official CLI)",
        "J-Decay and F-Decay are always 0 (1 x n arrays); not reported",
    ),
    missing={
        "error": "one error listing the missing sequences and frames (default)",
        "empty": "every missing frame is scored as an empty mask, counted",
        "official": "the official script prints 'frame not found', exits with status 0 and writes no result, so: "
                    "as empty",
    },
    options=(
        ProtocolOption("frame_ranges", "error", ("error", "official"), "official",
                       "an object whose frame_range yields fewer than frame_nums-1 frames (or frame_nums < 3): "
                       "'error', or 'official': the unfilled slots count as J = F = 0 (no slot at all gives NaN)"),
    ),
)

MOSEV2 = ProtocolFacts(
    name="mosev2",
    title="MOSE v2 (MOSE-api MOSEv2/sam2_rcms/tools/score.py)",
    reference={"repo": "henghuiding/MOSE-api",
               "file": "MOSEv2/sam2_rcms/tools/score.py, MOSEv2/sam2_rcms/tools/metricsv2.py",
               "commit": "241977ae2ceceee054fa2a2c8a2690838c451369"},
    anchor="mosev2",
    headline="J&F (J&F_new: smoothed J and the adaptive boundary measure)",
    quirks=(
        "the headline J&F is J&F_new = (J + F_new) / 2, not DAVIS's J&F: a smoothed J and an adaptive boundary F",
        "J = (|P and G| + 1) / (|P or G| + 1), 1 when the union is empty",
        "F_new dilates with radius ceil(0.1 * sqrt(|G|)) when that is below d = 0.008 * ||(H, W)||; otherwise "
        "both F and F_new use the unrounded d (skimage disk of a non-integer radius: off-centre)",
        "scored frames are 1 .. length-2; a video with length <= 2 scores J = F = 0, counted",
        "a video without a prediction folder scores 0, counted",
        "frame names are taken by position from the sorted prediction listing, so one missing frame shifts the "
        "names instead of failing",
        "disappearance / reappearance segments over the scored frames; a segment that starts at the first scored "
        "frame is not a disappearance",
        "every printed value is rounded to 2 decimals (percent)",
    ),
    missing={
        "error": "one error listing the missing videos and frames (default)",
        "empty": "every missing video or frame is scored as an empty mask, counted",
        "official": "a video without a prediction folder scores J = F = 0 for each object, counted; frame names "
                    "are taken by position from the sorted prediction listing (one missing frame shifts the later "
                    "names, two or more stop the official run: an error)",
    },
    options=(
        ProtocolOption("short_videos", "error", ("error", "official"), "official",
                       "a video with length <= 2 has no scored frame: 'error', or 'official': its objects score "
                       "J = F = 0 and are counted"),
    ),
)

REFSAV = ProtocolFacts(
    name="refsav",
    title="Ref-SAV (MomentSeg / Sa2VA v2 tools/eval/eval_ref_sav.py)",
    reference={"repo": "Dmmm1997/MomentSeg", "file": "tools/eval/eval_ref_sav.py",
               "commit": "a118d151618cdfc0607aadaa63267a68e887ff73",
               "also": "bytedance/Sa2VA@9832e1a80e74ed513e8072bf882a09bdd80566c4 tools/eval/eval_ref_sav.py; metrics "
                       "module magic-research/Sa2VA@d01bf3fa8ee239325a007e7b64ee2fd22578b045 "
                       "third_parts/revos/utils/metrics.py"},
    anchor="refsav",
    quirks=(
        "GT per frame is the uint8 sum of the expression's objects; A = mean(G == P) on the raw values, so overlapping "
        "objects (G = 2) count as mismatches",
        "each expression's J, F, A are rounded to 2 decimals in percent before averaging",
        "type_id 0 is reported as 'long', 1 as 'short'; overall = mean of the two categories",
        "an expression whose scoring fails (missing, too few frames, wrong size) silently disappears from the means",
    ),
    missing={
        "error": "one error listing the missing videos and expressions (default)",
        "empty": "a missing expression is scored as empty masks, counted",
        "official": "a missing expression, or one with fewer predicted frames than listed or of the wrong size, is "
                    "left out of every mean (the official worker dies on it), counted and named in the summary",
    },
)

REASONVOS = ProtocolFacts(
    name="reasonvos",
    title="ReasonVOS (MomentSeg tools/eval/eval_reasonvos.py)",
    reference={"repo": "Dmmm1997/MomentSeg",
               "file": "tools/eval/eval_reasonvos.py, tools/utils/convert_reasonvos_format.py",
               "commit": "a118d151618cdfc0607aadaa63267a68e887ff73",
               "also": "metrics module magic-research/Sa2VA@d01bf3fa8ee239325a007e7b64ee2fd22578b045 "
                       "third_parts/revos/utils/metrics.py"},
    anchor="reasonvos",
    quirks=(
        "expression-weighted DAVIS J and F over all listed frames, no categories",
        "J, F and J&F are round(100 * mean, 2) (Python rounding of the float)",
        "H, W come from each expression's first predicted RLE; a GT frame that fails to decode at that size is left "
        "empty by a bare except (printing '<source> <vid_id>')",
        "anno_id is a single integer (convert_reasonvos_format.py); an expression whose scoring fails silently "
        "disappears from the means",
    ),
    missing={
        "error": "one error listing the missing videos and expressions (default)",
        "empty": "a missing expression is scored as empty masks, counted",
        "official": "a missing expression, or one with fewer predicted frames than listed, is left out of the means "
                    "(the official worker dies on it), counted and named in the summary",
    },
    options=(
        ProtocolOption("gt_size", "error", ("error", "official"), "official",
                       "a GT RLE whose size differs from the frame size: 'error', or 'official': the frame size is "
                       "the first predicted RLE's and such GT frames are left empty"),
    ),
)

VOS_PROTOCOL_FACTS: dict[str, ProtocolFacts] = {p.name: p for p in (SAV, SECVOS, LVOS, MOSEV2, REFSAV, REASONVOS)}
"""Every protocol of this module by name."""


def protocol_facts(name: str) -> ProtocolFacts:
    if name not in VOS_PROTOCOL_FACTS:
        raise KeyError(f"no VOS protocol facts for {name!r}; known: {', '.join(VOS_PROTOCOL_FACTS)}")
    return VOS_PROTOCOL_FACTS[name]


__all__ = ["DOC", "ProtocolArgError", "ProtocolFacts", "ProtocolOption", "VOS_PROTOCOL_FACTS", "protocol_facts"]
