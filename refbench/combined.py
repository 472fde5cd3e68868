"""Several datasets in one command (``--dataset a,b`` or a suite): each dataset's outcome, one combined table, one
JSON document, one exit code.

Each dataset runs on its own; one that fails is reported and the others still run (``--fail-fast`` stops at
the first failure instead). The command then exits with the most serious code among the failures: 70 (a bug)
over 2 (bad input) over 1 (a check failed); 0 when every dataset finished. Ctrl-C stops the whole command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

#: the order in which failures decide the exit code (most serious first)
_SEVERITY = (70, 2, 1)


@dataclass
class Outcome:
    """One dataset's result in a multi-dataset command. ``status``: ``ok`` (scored on the whole official
    split), ``partial`` (scored, but not on the whole split: ``summary["partial_reasons"]``), ``submission``
    (a server-scored split: a zip was written), ``predicted`` (predictions stored, nothing scored, e.g. a
    limited run of a server split) or ``failed`` (``error``, ``exit_code``)."""

    dataset: str
    status: str
    summary: dict[str, Any] | None = None
    protocol: str | None = None  # without a summary: the protocol the dataset would be scored with
    error: str | None = None
    exit_code: int = 0
    run_dir: str | None = None
    submission: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def protocol_name(self) -> str | None:
        return (self.summary or {}).get("protocol") or self.protocol

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "status": self.status, "protocol": self.protocol_name,
                "metrics": (self.summary or {}).get("metrics"),
                "partial_reasons": (self.summary or {}).get("partial_reasons") or [],
                "error": self.error, "exit_code": self.exit_code, "run_dir": self.run_dir,
                "submission": self.submission, "notes": list(self.notes), "summary": self.summary}


def scored(dataset: str, summary: dict[str, Any], **kw: Any) -> Outcome:
    return Outcome(dataset, "partial" if summary.get("partial") else "ok", summary=summary, **kw)


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """0 when every dataset finished, else the most serious failure's code (module doc)."""
    codes = {o.exit_code for o in outcomes if o.status == "failed"}
    for code in _SEVERITY:
        if code in codes:
            return code
    return max(codes) if codes else 0


def _headline(summary: dict[str, Any]) -> list[str]:
    """The protocol card's headline metrics that the summary has (its first six metrics without a card)."""
    metrics = list(summary.get("metrics") or {})
    try:
        from refbench.protocols import protocol_cards

        card = protocol_cards().get(str(summary.get("protocol")))
    except Exception:  # noqa: BLE001 - unreadable protocol cards cost only the column choice
        card = None
    names = [m for m in (card.metrics if card else ()) if m in metrics]
    return names or metrics[:6]


def _label(protocol: Any) -> str:
    if not protocol:
        return "-"
    try:
        from refbench.protocols import protocol_label

        return protocol_label(str(protocol))
    except Exception:  # noqa: BLE001
        return str(protocol)


def combined_table(outcomes: Sequence[Outcome], total: int | None = None) -> str:
    """One line per dataset: dataset, protocol, the headline metrics (percent, 2 decimals; a metric column
    for every headline metric of any dataset, blank where a dataset has none) and the status; below it, why each
    partial score is partial and why each failed dataset failed. ``total``: the datasets asked for (more than
    ``outcomes`` when ``--fail-fast`` stopped early)."""
    columns: list[str] = []
    for o in outcomes:
        if o.summary:
            columns += [m for m in _headline(o.summary) if m not in columns]
    status = {"ok": "ok", "partial": "PARTIAL", "submission": "zip", "predicted": "stored"}
    rows = []
    for o in outcomes:
        metrics = (o.summary or {}).get("metrics") or {}
        cells = [f"{metrics[m]:.2f}" if isinstance(metrics.get(m), (int, float)) else "" for m in columns]
        st = status.get(o.status, f"FAILED (exit {o.exit_code})")
        rows.append([o.dataset, _label(o.protocol_name), *cells, st])
    header = ["dataset", "protocol", *columns, "status"]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < 2 or i == len(cells) - 1 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(header), *(line(r) for r in rows)]
    n_ok = sum(o.status != "failed" for o in outcomes)
    total = max(total or 0, len(outcomes))
    left = total - len(outcomes)
    out.append(f"(percent; {n_ok} of {total} datasets finished" + (f", {left} not run)" if left else ")"))
    for o in outcomes:
        if o.status == "partial":
            out.append(f"PARTIAL {o.dataset}: not the official split's score: "
                       + "; ".join((o.summary or {}).get("partial_reasons") or []))
        elif o.status == "submission":
            out.append(f"zip {o.dataset}: {o.submission}")
        elif o.status == "failed":
            out.append(f"FAILED {o.dataset}: {o.error}")
    return "\n".join(out)


def combined_doc(command: str, spec: Any, outcomes: Sequence[Outcome], total: int | None = None) -> dict[str, Any]:
    """The JSON document of a multi-dataset command: what was asked, the exit code, and every dataset's outcome
    (its full summary included); ``not_run``: how many datasets ``--fail-fast`` left out."""
    return {"command": command, "datasets": [o.dataset for o in outcomes], "asked": spec,
            "not_run": max(0, (total or 0) - len(outcomes)),
            "ok": exit_code(outcomes) == 0, "exit_code": exit_code(outcomes), "scale": "percent",
            "results": [o.to_dict() for o in outcomes]}


__all__ = ["Outcome", "combined_doc", "combined_table", "exit_code", "scored"]
