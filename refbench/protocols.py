"""Protocol cards: what each ``--protocol`` reproduces, where from, and its quirks. Reading them never imports torch.

One YAML card per protocol in the repository's ``protocols/`` folder (``refbench/_cards/protocols/`` in a wheel;
field reference in ``protocols/README.md``). The prose of each protocol is a section of ``docs/protocols.md``
under the anchor ``<a id="NAME"></a>`` (:func:`doc_ref`); a wheel carries that file as
``refbench/_docs/protocols.md`` (:func:`docs_file`).

The CLI lists the cards in ``--help`` (:func:`protocol_names`), checks ``--protocol`` against them, prints a
dataset's protocols in ``refbench datasets show`` (:func:`protocols_for`) and labels numbers with
:func:`protocol_label` (Ref-DAVIS17 ``refdavis_a (convention A)``). Adding a protocol is adding a card, a doc
section and its evaluator; nothing here changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from refbench.cards import CardError, card_dirs, read_card_mapping, suggest

TASK_ORDER: tuple[str, ...] = ("refvos", "vos", "tsg", "res")
DOC = "docs/protocols.md"

_REQUIRED = ("name", "title", "task", "loaders", "references", "official", "metrics", "quirks")
_OPTIONAL = ("convention", "server")


@dataclass(frozen=True)
class ProtocolCard:
    """One protocol: ``name`` (the ``--protocol`` value), the ``task`` and ``loaders`` it scores, the official
    code it reproduces (``references``: repo, file, commit), the official printout's ``scale`` and what it
    ``prints``, refbench's headline ``metrics`` (percent), its ``quirks``, an optional ``convention`` label and
    ``server`` (scored only by a challenge server)."""

    name: str
    title: str
    task: str
    loaders: tuple[str, ...]
    references: tuple[dict[str, Any], ...]
    official_scale: str
    prints: str
    metrics: tuple[str, ...]
    quirks: tuple[str, ...]
    convention: str | None = None
    server: bool = False
    path: Path | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """The name with its convention, e.g. ``refdavis_b (convention B)``."""
        return f"{self.name} (convention {self.convention})" if self.convention else self.name

    @property
    def doc(self) -> str:
        """Where the protocol is described: ``docs/protocols.md#<name>``."""
        return doc_ref(self.name)


def _read(path: Path) -> ProtocolCard:
    data = read_card_mapping(path, "protocol card")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CardError(f"{path}: protocol card misses {', '.join(missing)}")
    extra = set(data) - set(_REQUIRED) - set(_OPTIONAL)
    if extra:
        raise CardError(f"{path}: unknown protocol card fields {sorted(extra)}")
    if data["name"] != path.stem:
        raise CardError(f"{path}: protocol name {data['name']!r} differs from its file name")
    if data["task"] not in TASK_ORDER:
        raise CardError(f"{path}: task {data['task']!r} is not one of {', '.join(TASK_ORDER)}")
    official = data["official"]
    if not isinstance(official, dict) or official.get("scale") not in ("fraction", "percent"):
        raise CardError(f"{path}: official must map scale (fraction or percent) and prints")
    refs = data["references"] or []
    if not isinstance(refs, list) or not all(isinstance(r, dict) and r.get("repo") and r.get("file") for r in refs):
        raise CardError(f"{path}: references must be a list of {{repo, file, commit}}")
    for key in ("loaders", "metrics", "quirks"):
        if not isinstance(data[key], list) or not all(isinstance(x, str) and x for x in data[key]):
            raise CardError(f"{path}: {key} must be a list of strings")
    return ProtocolCard(
        name=data["name"], title=str(data["title"]), task=data["task"], loaders=tuple(data["loaders"]),
        references=tuple(dict(r) for r in refs), official_scale=official["scale"],
        prints=str(official.get("prints") or ""), metrics=tuple(data["metrics"]), quirks=tuple(data["quirks"]),
        convention=str(data["convention"]) if data.get("convention") else None, server=bool(data.get("server")),
        path=path,
    )


@lru_cache(maxsize=None)
def protocol_cards() -> dict[str, ProtocolCard]:
    """All protocol cards by name, in task order then name (the wheel's copy wins over the checkout's)."""
    cards: dict[str, ProtocolCard] = {}
    for d in card_dirs("protocols"):
        for path in sorted(d.glob("*.yaml")):
            if path.stem not in cards:
                cards[path.stem] = _read(path)
    order = sorted(cards.values(), key=lambda c: (TASK_ORDER.index(c.task), c.name))
    return {c.name: c for c in order}


def protocol_card(name: str) -> ProtocolCard:
    cards = protocol_cards()
    if name not in cards:
        raise CardError(f"unknown protocol {name!r}{suggest(name, cards)} (refbench eval --help lists them)")
    return cards[name]


def protocol_names(task: str | None = None) -> list[str]:
    """Protocol names, optionally of one task, in :data:`TASK_ORDER` order."""
    return [n for n, c in protocol_cards().items() if task is None or c.task == task]


def protocols_for(card: Any) -> list[ProtocolCard]:
    """The protocols a dataset card can be scored with: its default first, then every protocol of its task whose
    ``loaders`` list the card's loader. A split scored only by a server has just its card's protocol (what the
    server computes); a split with public ground truth never lists a server-only protocol."""
    cards = protocol_cards()
    out = [cards[card.protocol]] if card.protocol in cards else []
    if getattr(card, "ground_truth", "public") != "public":
        return out
    out += [c for c in cards.values() if c.task == card.task and card.loader in c.loaders and c.name != card.protocol
            and not c.server]
    return out


def check_protocol_for(card: Any, name: str) -> ProtocolCard:
    """The protocol card ``name`` if dataset ``card`` can use it; else CardError listing the ones it can."""
    proto = protocol_card(name)
    usable = protocols_for(card)
    if proto not in usable:
        names = ", ".join(p.name for p in usable) or "none"
        raise CardError(f"protocol {name!r} does not apply to dataset {card.name} (its protocols: {names}; "
                        f"refbench datasets show {card.name})")
    return proto


def protocol_label(name: str) -> str:
    """``refdavis_a (convention A)`` when the card names a convention; the plain name otherwise (also for names
    without a card, such as the leaderboards' ``server``)."""
    card = protocol_cards().get(name)
    return card.label if card is not None else name


def doc_ref(name: str) -> str:
    return f"{DOC}#{name}"


def docs_file() -> Path | None:
    """The protocol documentation shipped with this installation: the wheel's ``refbench/_docs/protocols.md``,
    else the checkout's ``docs/protocols.md``; None when neither exists."""
    here = Path(__file__).resolve().parent
    for path in (here / "_docs" / "protocols.md", here.parent / "docs" / "protocols.md"):
        if path.is_file():
            return path
    return None


def help_text() -> str:
    """The ``--protocol`` choices by task, for ``--help``."""
    groups = []
    for task in TASK_ORDER:
        names = protocol_names(task)
        if names:
            groups.append(f"{task}: {', '.join(names)}")
    return "; ".join(groups)


__all__ = ["DOC", "ProtocolCard", "TASK_ORDER", "check_protocol_for", "doc_ref", "docs_file", "help_text",
           "protocol_card", "protocol_cards", "protocol_label", "protocol_names", "protocols_for"]
